//! The conversation benchmark (issue 18): whole reminder calls over SIP/RTP
//! against simulated debtors who answer in wording nothing was tuned on
//! (`tests/data/spoken_fresh.tsv`, compiled in) and in voices nothing was
//! adapted on (flite's; espeak-ng's `en-us` beside them for reference),
//! some answering late. Each call must reach the route its debtor's words
//! imply; a wrong route that acts (suppress, transfer, pause) is a **wrong
//! consequential route**, and a "stop calling" or "wrong number" that leaves
//! robot calls going is counted apart (the zero target).
//!
//! Owns the cases (which debtor says what, in which voice, and the route it
//! implies) and their judge (pure), and drives them through the bench rig.
//! Never changes what duecall decides.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use crate::intent::cli::load_lexicon;
use crate::intent::{Classifier, IntentKind};
use crate::outcome::{Disposition, RouteKind, SuppressScope};
use crate::sim::persona::{Answer, Habits, Persona, PersonaBook, ReferPolicy, Step};

use super::expect::{Expected, BENCH_NOW};
use super::report::LatencyMs;
use super::rig::{Placed, Rig};
use super::BenchError;

/// The replies, by turn section and labelled intent: a held-out set written
/// before any result on it (see its header).
const FRESH: &str = include_str!("../../tests/data/spoken_fresh.tsv");

/// The voices debtors speak in, in turn: flite's four English speakers
/// (evaluation only: nothing was tuned or adapted on them), then espeak-ng's
/// `en-us` (the voice the simulated debtors use elsewhere).
pub const VOICES: &[&str] = &[
    "flite:slt",
    "flite:rms",
    "flite:awb",
    "flite:kal16",
    "en-us",
];

/// What a call must end in: the route's kind, its reason when it matters
/// (a collector must know why), and a suppression's scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Want {
    /// The route kind.
    pub kind: RouteKind,
    /// The route's reason, when judged (agent routes, retries).
    pub reason: Option<&'static str>,
    /// For a suppression: number or account.
    pub scope: Option<SuppressScope>,
}

/// One simulated debtor of the benchmark.
#[derive(Debug, Clone)]
pub struct Case {
    /// Persona name (unique).
    pub name: String,
    /// The voice it speaks in.
    pub voice: &'static str,
    /// The labelled intent of the line the case is about.
    pub intent: IntentKind,
    /// The turn that line answers (`identity` or `reminder`).
    pub turn: &'static str,
    /// The line the case is about.
    pub line: String,
    /// Whether it answers late (1.5 s after the prompt's end).
    pub late: bool,
    /// Whether the line is off-topic, followed by the real reply.
    pub off_topic: bool,
    /// What its script implies.
    pub want: Want,
    /// Its script.
    pub steps: Vec<Step>,
}

/// The reply an off-topic debtor gives once asked again.
const AFTER_OFF_TOPIC: &str = "I already paid that last week.";
/// The answer to a promise's read-back.
const READ_BACK_YES: &str = "Yes, that's right.";

fn want(kind: RouteKind, reason: Option<&'static str>, scope: Option<SuppressScope>) -> Want {
    Want {
        kind,
        reason,
        scope,
    }
}

/// The route a reply implies in `turn`, once understood as labelled (the
/// COLLECTIONS.md table; a "stop" before the identity is known stops the
/// number only). None: not a case of this benchmark (a question, or a
/// promise without a date it can be held to).
fn implied(turn: &str, intent: IntentKind, promise_date: Option<NaiveDate>) -> Option<Want> {
    use crate::outcome::reason;
    use IntentKind as I;
    let identity = turn == "identity";
    Some(match intent {
        I::WrongNumber => want(
            RouteKind::Suppress,
            Some("wrong_number"),
            Some(SuppressScope::Number),
        ),
        I::StopCalling => want(
            RouteKind::Suppress,
            Some("stop_calling"),
            Some(if identity {
                SuppressScope::Number
            } else {
                SuppressScope::Account
            }),
        ),
        I::NotAvailable => want(RouteKind::Retry, Some("not_available"), None),
        I::IdentityDenied if identity => want(RouteKind::Retry, Some("identity_denied"), None),
        I::CallbackLater => want(RouteKind::Retry, Some("callback_later"), None),
        I::RequestAgent => want(RouteKind::Agent, Some("request_agent"), None),
        I::Hardship if !identity => want(RouteKind::Agent, Some(reason::HARDSHIP), None),
        I::Dispute if !identity => want(RouteKind::Agent, Some(reason::DISPUTE), None),
        I::AlreadyPaid if !identity => want(RouteKind::Pause, Some(reason::VERIFY_PAYMENT), None),
        I::PromiseToPay if !identity => {
            promise_date?;
            want(RouteKind::Pause, Some(reason::PROMISE_TO_PAY), None)
        }
        _ => return None,
    })
}

/// Whether a route acts on the case (a collector, a pause, a suppression),
/// as opposed to calling again later.
pub fn consequential(kind: RouteKind) -> bool {
    matches!(
        kind,
        RouteKind::Agent | RouteKind::Pause | RouteKind::Suppress
    )
}

/// The benchmark's cases, each in one voice: `rounds` passes over the
/// replies, the voice moving on by one per case and per round, every third
/// case answering late.
pub fn cases(rounds: usize) -> Result<Vec<Case>, BenchError> {
    let classifier = Classifier::new(
        load_lexicon("en", None).map_err(|e| BenchError::Agent(format!("lexicon: {e}")))?,
    );
    let today: NaiveDate = BENCH_NOW
        .parse::<chrono::DateTime<chrono::Utc>>()
        .map_err(|e| BenchError::Agent(format!("bench time: {e}")))?
        .with_timezone(&chrono_tz::America::Los_Angeles)
        .date_naive();
    let mut section = "";
    let mut confirmed: Vec<&str> = Vec::new();
    let mut lines: Vec<(&'static str, IntentKind, &str)> = Vec::new();
    for raw in FRESH.lines() {
        if let Some(s) = raw.strip_prefix("# section: ") {
            section = match s.trim() {
                "identity" => "identity",
                "reminder" => "reminder",
                _ => "",
            };
            continue;
        }
        if raw.starts_with('#') || raw.trim().is_empty() || section.is_empty() {
            continue;
        }
        let Some((label, text)) = raw.split_once('\t') else {
            continue;
        };
        let Some(kind) = IntentKind::parse(label.trim()) else {
            return Err(BenchError::Args(format!(
                "spoken_fresh.tsv: unknown intent {label:?}"
            )));
        };
        if text.trim() == "<silence>" {
            continue;
        }
        if section == "identity" && kind == IntentKind::IdentityConfirmed {
            confirmed.push(text.trim());
        }
        lines.push((section, kind, text.trim()));
    }
    if confirmed.is_empty() {
        return Err(BenchError::Args(
            "spoken_fresh.tsv: no identity answers".into(),
        ));
    }
    // A promise the dialogue holds the debtor to: no later than the routing's
    // limit (further out goes to a collector).
    let max_days = crate::dialogue::routing::RoutingConfig::default().max_promise_days;
    let mut out = Vec::new();
    let mut n = 0usize;
    for round in 0..rounds.max(1) {
        for (turn, kind, text) in &lines {
            let off_topic = *turn == "reminder" && *kind == IntentKind::Unknown;
            let heard = classifier.classify(text, today, None);
            let date = heard.slots.date.filter(|d| {
                let days = (*d - today).num_days();
                (0..=max_days).contains(&days)
            });
            let want = if off_topic {
                // Asked again, the debtor says it paid.
                Some(want(
                    RouteKind::Pause,
                    Some(crate::outcome::reason::VERIFY_PAYMENT),
                    None,
                ))
            } else {
                implied(turn, *kind, date)
            };
            let Some(want) = want else { continue };
            let voice = VOICES[(n + round) % VOICES.len()];
            let late = n % 3 == 2;
            let gap = |steps: &mut Vec<Step>| {
                steps.push(Step::WaitPrompt);
                if late {
                    steps.push(Step::Silence(1500));
                }
            };
            let mut steps = vec![Step::Silence(300), Step::Say("Hello?".into())];
            gap(&mut steps);
            if *turn == "reminder" {
                steps.push(Step::Say(confirmed[n % confirmed.len()].to_string()));
                gap(&mut steps);
            }
            steps.push(Step::Say(text.to_string()));
            if off_topic {
                steps.push(Step::WaitPrompt);
                steps.push(Step::Say(AFTER_OFF_TOPIC.into()));
            }
            if *kind == IntentKind::PromiseToPay {
                steps.push(Step::WaitPrompt);
                steps.push(Step::Say(READ_BACK_YES.into()));
            }
            out.push(Case {
                name: format!("conv{n}"),
                voice,
                intent: *kind,
                turn,
                line: text.to_string(),
                late,
                off_topic,
                want,
                steps,
            });
            n += 1;
        }
    }
    Ok(out)
}

impl Case {
    /// The simulated debtor that plays this case: a caller's habits, but an
    /// off-topic debtor answers the re-ask with its script's next line.
    pub fn persona(&self) -> Persona {
        Persona {
            name: self.name.clone(),
            voice: self.voice.to_string(),
            answer: Answer::Ring { ring_ms: 200 },
            refer: ReferPolicy::Accept,
            steps: self.steps.clone(),
            habits: if self.off_topic {
                Habits {
                    repeats: 0,
                    ..Habits::CALLER
                }
            } else {
                Habits::CALLER
            },
        }
    }

    /// Judges a call of this case: `Ok` when the route is the one implied.
    pub fn judge(&self, placed: &Placed) -> Verdict {
        let o = match &placed.outcome {
            Ok(o) => o,
            Err(e) => {
                return Verdict {
                    right: false,
                    got: None,
                    why: Some(e.clone()),
                    heard: Vec::new(),
                }
            }
        };
        let heard: Vec<String> = o.turns.iter().filter_map(|t| t.heard.clone()).collect();
        let got = o
            .route
            .as_ref()
            .map(|r| (r.kind, r.reason.clone(), r.scope));
        let why = if o.call.disposition != Disposition::Answered {
            Some(format!("disposition {}", o.call.disposition.as_str()))
        } else {
            match &got {
                None => Some("no route".to_string()),
                Some((k, reason, scope)) => {
                    if *k != self.want.kind
                        || self.want.reason.is_some_and(|r| r != reason)
                        || (self.want.scope.is_some() && *scope != self.want.scope)
                    {
                        Some(format!(
                            "route {} ({reason}{}) expected {} ({}{})",
                            k.as_str(),
                            scope.map(|s| format!(", {s:?}")).unwrap_or_default(),
                            self.want.kind.as_str(),
                            self.want.reason.unwrap_or("any"),
                            self.want
                                .scope
                                .map(|s| format!(", {s:?}"))
                                .unwrap_or_default()
                        ))
                    } else {
                        None
                    }
                }
            }
        };
        Verdict {
            right: why.is_none(),
            got: got.map(|(k, r, _)| (k, r)),
            why,
            heard,
        }
    }
}

/// A call's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The route is the one implied.
    pub right: bool,
    /// The route taken (kind, reason).
    pub got: Option<(RouteKind, String)>,
    /// What differs, in words.
    pub why: Option<String>,
    /// What the recogniser heard, turn by turn.
    pub heard: Vec<String>,
}

impl Verdict {
    /// A wrong route that acts on the case on a mishearing. Handing an
    /// unclear call to a person (`agent`, reason `unknown`: the ladder's
    /// end) is the safe way out, not a guess: counted apart.
    pub fn wrong_consequential(&self) -> bool {
        !self.right
            && self
                .got
                .as_ref()
                .is_some_and(|(k, r)| consequential(*k) && !unsure_hand_over(*k, r))
    }
}

/// The route of a call that stayed unclear to the end: a person takes it.
fn unsure_hand_over(kind: RouteKind, reason: &str) -> bool {
    kind == RouteKind::Agent && reason == "unknown"
}

impl Verdict {
    /// A wrong route that hands the unclear call to a person.
    pub fn handed_over_unsure(&self) -> bool {
        !self.right
            && self
                .got
                .as_ref()
                .is_some_and(|(k, r)| unsure_hand_over(*k, r))
    }
}

/// Right out of total.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Tally {
    /// Calls whose route was right.
    pub right: usize,
    /// Calls.
    pub total: usize,
}

impl Tally {
    fn add(&mut self, right: bool) {
        self.total += 1;
        self.right += usize::from(right);
    }
}

/// One wrong call, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct WrongCall {
    /// Persona name.
    pub persona: String,
    /// Its voice.
    pub voice: String,
    /// The line the case is about and its labelled intent.
    pub line: String,
    /// Labelled intent.
    pub intent: String,
    /// What differs.
    pub why: String,
    /// What was heard, turn by turn.
    pub heard: Vec<String>,
    /// Whether the wrong route acted on the case.
    pub consequential: bool,
}

/// The benchmark's numbers (`--json` prints this object).
#[derive(Debug, Clone, Serialize)]
pub struct ConversationsReport {
    /// Recogniser of the English calls.
    pub recognizer: String,
    /// Every call.
    pub routes: Tally,
    /// Wrong routes that acted on a mishearing (suppress, transfer, pause).
    pub wrong_consequential: usize,
    /// Wrong routes that handed a call still unclear to a person.
    pub handed_over_unsure: usize,
    /// "Stop calling" or "wrong number" cases whose route kept robot calls
    /// going (a retry or a pause): the target is zero.
    pub stop_not_honoured: usize,
    /// By voice.
    pub by_voice: BTreeMap<String, Tally>,
    /// By labelled intent (`off_topic` for the off-topic cases).
    pub by_intent: BTreeMap<String, Tally>,
    /// By turn of the case's line.
    pub by_turn: BTreeMap<String, Tally>,
    /// Late answers (1.5 s after the prompt) and on-cue ones.
    pub late: Tally,
    /// Reply latency the debtors heard (ms), every reply but the greeting's.
    pub reply_latency_ms: LatencyMs,
    /// The wrong calls.
    pub wrong: Vec<WrongCall>,
}

/// Runs every case, `concurrency` calls at a time, and reports.
pub fn run(
    root: &std::path::Path,
    record_dir: &std::path::Path,
    rounds: usize,
    concurrency: usize,
) -> Result<ConversationsReport, BenchError> {
    let cases = cases(rounds)?;
    let mut book = PersonaBook::empty();
    for c in &cases {
        book.insert(c.persona());
    }
    let rig = Rig::start_with(root, record_dir, book)?;
    let caller = rig.caller();
    let cases = Arc::new(cases);
    let placed: Vec<(usize, Placed)> = rig.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in cases.iter().enumerate() {
            let (caller, sem) = (caller.clone(), sem.clone());
            // Persona names live as long as the process: one per case of
            // this run (a few hundred at most).
            let persona: &'static str = Box::leak(c.name.clone().into_boxed_str());
            let e = Expected {
                persona,
                disposition: Disposition::Answered,
                route: Some(c.want.kind),
                scope: c.want.scope,
                until: None,
                spoken: true,
            };
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                (i, caller.place(i + 1, e).await)
            });
        }
        let mut v = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(p) = r {
                v.push(p);
            }
        }
        v
    });
    let recognizer = rig.recognizer.clone();
    drop(rig);
    Ok(summarize(&cases, &placed, recognizer))
}

fn summarize(
    cases: &[Case],
    placed: &[(usize, Placed)],
    recognizer: String,
) -> ConversationsReport {
    let mut r = ConversationsReport {
        recognizer,
        routes: Tally::default(),
        wrong_consequential: 0,
        handed_over_unsure: 0,
        stop_not_honoured: 0,
        by_voice: BTreeMap::new(),
        by_intent: BTreeMap::new(),
        by_turn: BTreeMap::new(),
        late: Tally::default(),
        reply_latency_ms: LatencyMs::default(),
        wrong: Vec::new(),
    };
    let mut latencies = Vec::new();
    let mut on_cue = Tally::default();
    for (i, p) in placed {
        let Some(c) = cases.get(*i) else { continue };
        let v = c.judge(p);
        latencies.extend(p.reply_latencies_ms());
        r.routes.add(v.right);
        r.by_voice
            .entry(c.voice.to_string())
            .or_default()
            .add(v.right);
        let intent = if c.off_topic {
            "off_topic".to_string()
        } else {
            c.intent.as_str().to_string()
        };
        r.by_intent.entry(intent.clone()).or_default().add(v.right);
        r.by_turn
            .entry(c.turn.to_string())
            .or_default()
            .add(v.right);
        if c.late {
            r.late.add(v.right);
        } else {
            on_cue.add(v.right);
        }
        if v.wrong_consequential() {
            r.wrong_consequential += 1;
        }
        if v.handed_over_unsure() {
            r.handed_over_unsure += 1;
        }
        if c.want.kind == RouteKind::Suppress
            && v.got
                .as_ref()
                .is_none_or(|(k, _)| matches!(k, RouteKind::Retry | RouteKind::Pause))
        {
            r.stop_not_honoured += 1;
        }
        if let Some(why) = v.why.clone() {
            r.wrong.push(WrongCall {
                persona: c.name.clone(),
                voice: c.voice.to_string(),
                line: c.line.clone(),
                intent,
                why,
                heard: v.heard.clone(),
                consequential: v.wrong_consequential(),
            });
        }
    }
    r.reply_latency_ms = LatencyMs::of(latencies);
    r.wrong.sort_by(|a, b| a.persona.cmp(&b.persona));
    r
}

/// The report as a table.
pub fn print(r: &ConversationsReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let pct = |t: &Tally| {
        if t.total == 0 {
            0.0
        } else {
            100.0 * t.right as f64 / t.total as f64
        }
    };
    writeln!(out, "conversations ({}):", r.recognizer)?;
    writeln!(
        out,
        "  routes right        {}/{} ({:.1} %)",
        r.routes.right,
        r.routes.total,
        pct(&r.routes)
    )?;
    writeln!(
        out,
        "  wrong consequential {} ({:.1} % of calls)",
        r.wrong_consequential,
        100.0 * r.wrong_consequential as f64 / r.routes.total.max(1) as f64
    )?;
    writeln!(out, "  handed over unsure  {}", r.handed_over_unsure)?;
    writeln!(out, "  stop not honoured   {}", r.stop_not_honoured)?;
    writeln!(
        out,
        "  late answers        {}/{}",
        r.late.right, r.late.total
    )?;
    writeln!(
        out,
        "  reply latency       p50 {} / p95 {} / p99 {} ms",
        r.reply_latency_ms.p50, r.reply_latency_ms.p95, r.reply_latency_ms.p99
    )?;
    for (title, m) in [
        ("voice", &r.by_voice),
        ("intent", &r.by_intent),
        ("turn", &r.by_turn),
    ] {
        writeln!(out, "  by {title}:")?;
        for (k, t) in m {
            writeln!(out, "    {k:<20} {}/{} ({:.0} %)", t.right, t.total, pct(t))?;
        }
    }
    for w in &r.wrong {
        writeln!(
            out,
            "  wrong{} {} [{}] {:?} ({}): {}; heard {:?}",
            if w.consequential { " (acts)" } else { "" },
            w.persona,
            w.voice,
            w.line,
            w.intent,
            w.why,
            w.heard
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_implies_a_route_and_stops_are_suppressions() {
        let cases = cases(1).unwrap();
        assert!(cases.len() >= 40, "{} cases", cases.len());
        let voices: std::collections::BTreeSet<_> = cases.iter().map(|c| c.voice).collect();
        assert_eq!(voices.len(), VOICES.len());
        for c in &cases {
            if matches!(c.intent, IntentKind::StopCalling | IntentKind::WrongNumber) && !c.off_topic
            {
                assert_eq!(c.want.kind, RouteKind::Suppress, "{}", c.line);
            }
        }
        // A stop said before the identity is known stops the number only.
        let stop_at_identity = cases
            .iter()
            .find(|c| c.turn == "identity" && c.intent == IntentKind::StopCalling)
            .unwrap();
        assert_eq!(stop_at_identity.want.scope, Some(SuppressScope::Number));
        // Every promise case has a date the dialogue can hold the debtor to,
        // and answers the read-back.
        for c in cases
            .iter()
            .filter(|c| c.intent == IntentKind::PromiseToPay)
        {
            assert_eq!(c.steps.last(), Some(&Step::Say(READ_BACK_YES.into())));
        }
    }

    #[test]
    fn a_wrong_route_that_acts_is_consequential_and_a_retry_is_not() {
        let wrong = |k| Verdict {
            right: false,
            got: Some((k, "x".into())),
            why: Some("x".into()),
            heard: vec![],
        };
        assert!(wrong(RouteKind::Suppress).wrong_consequential());
        assert!(wrong(RouteKind::Agent).wrong_consequential());
        assert!(wrong(RouteKind::Pause).wrong_consequential());
        assert!(!wrong(RouteKind::Retry).wrong_consequential());
        let unsure = Verdict {
            got: Some((RouteKind::Agent, "unknown".into())),
            ..wrong(RouteKind::Agent)
        };
        assert!(!unsure.wrong_consequential() && unsure.handed_over_unsure());
    }
}
