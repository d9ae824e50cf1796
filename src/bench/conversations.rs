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

/// The held-out replies, by turn section and labelled intent: written
/// before any result on them (see the file's header).
const FRESH: &str = include_str!("../../tests/data/spoken_fresh.tsv");
/// The development replies (tuned on; see the file's header).
const DEV: &str = include_str!("../../tests/data/spoken_dev.tsv");

/// The voices debtors of the final split speak in, in turn: flite's four
/// English speakers (evaluation only: nothing was tuned or adapted on them),
/// then espeak-ng's `en-us` (the voice the simulated debtors use elsewhere).
pub const VOICES: &[&str] = &[
    "flite:slt",
    "flite:rms",
    "flite:awb",
    "flite:kal16",
    "en-us",
];

/// The voices debtors of the development split speak in: espeak-ng only
/// (the spoken benchmark's development voices).
pub const DEV_VOICES: &[&str] = &[
    "en-us",
    "en-us+f3",
    "en-gb",
    "en-us+m7",
    "en-gb-x-rp",
    "en-us+f4",
];

/// Which replies and voices the benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Set {
    /// `tests/data/spoken_dev.tsv` in espeak-ng voices: tune on this.
    Dev,
    /// `tests/data/spoken_fresh.tsv` in flite voices (and espeak-ng
    /// `en-us`): held out, run once at the end.
    Final,
}

impl Set {
    fn text(self) -> (&'static str, &'static str) {
        match self {
            Set::Dev => ("spoken_dev.tsv", DEV),
            Set::Final => ("spoken_fresh.tsv", FRESH),
        }
    }

    /// The voices of the split, in the order cases take them.
    pub fn voices(self) -> &'static [&'static str] {
        match self {
            Set::Dev => DEV_VOICES,
            Set::Final => VOICES,
        }
    }
}

/// When a debtor says the line a case is about (and, in a reminder case,
/// its identity answer), relative to duecall's prompts. Drawn per case from
/// the seed; the route the words imply never depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// After the prompt ends, with a seeded extra gap of 0-300 ms.
    OnCue,
    /// 1.2-2.5 s after the prompt ends.
    Late,
    /// The identity answer starts 150-600 ms before the non-interruptible
    /// opening ends (people answer as it finishes), and is said again when
    /// the identity question is asked (the opening names nobody, so the
    /// first answer confirms nobody); the rest on cue.
    OverOpening,
    /// The line barges into the interruptible question it answers (the
    /// identity question, or the reminder), 0.5-4 s into it.
    BargeIn,
    /// The reminder reply starts 0.3-2 s before the non-interruptible debt
    /// disclosure ends (only for cases with nothing said after it).
    OverDisclosure,
}

impl Timing {
    /// The name printed in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Timing::OnCue => "on_cue",
            Timing::Late => "late",
            Timing::OverOpening => "over_opening",
            Timing::BargeIn => "barge_in",
            Timing::OverDisclosure => "over_disclosure",
        }
    }
}

/// The opening's length as the debtor hears it (`audio/en/tts/opening.wav`,
/// 8.78 s), then the identity question's start after it.
const OPENING_MS: u64 = 8_780;
/// The debt disclosure's length (`audio/en/tts/debt_disclosure.wav`, 7.15 s).
const DISCLOSURE_MS: u64 = 7_150;
/// Between one prompt's end and the next one's start, about.
const PROMPT_GAP_MS: u64 = 300;

/// SplitMix64: a small seeded generator, so the schedule is the same for
/// the same seed on every machine.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, case: usize) -> Self {
        Rng(seed ^ (case as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi.saturating_sub(lo) + 1)
    }
}

/// The steps that wait for the moment a line is said, by its timing:
/// `into` is where the prompt the line answers starts, counted from the
/// start of the first prompt after the previous line (None: the line
/// answers the prompt right after it; `over` the prompt that cannot be cut
/// before it, when said over its end).
fn wait_for(
    timing: Timing,
    rng: &mut Rng,
    steps: &mut Vec<Step>,
    into: Option<u64>,
    over: Option<u64>,
) {
    match (timing, into, over) {
        (Timing::Late, _, _) => {
            steps.push(Step::WaitPrompt);
            steps.push(Step::Silence(rng.range(1_200, 2_500)));
        }
        (Timing::BargeIn, Some(start), _) => {
            steps.push(Step::IntoPrompt(start + rng.range(500, 4_000)));
        }
        (Timing::OverOpening | Timing::OverDisclosure, _, Some(end)) => {
            let before = if timing == Timing::OverOpening {
                rng.range(150, 600)
            } else {
                rng.range(300, 2_000)
            };
            steps.push(Step::IntoPrompt(end.saturating_sub(before)));
        }
        _ => {
            steps.push(Step::WaitPrompt);
            let extra = rng.range(0, 300);
            if extra > 0 {
                steps.push(Step::Silence(extra));
            }
        }
    }
}

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
    /// When it speaks, relative to duecall's prompts.
    pub timing: Timing,
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

/// Options of a run of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Which replies and voices.
    pub set: Set,
    /// Passes over the replies (each in the next voice).
    pub rounds: usize,
    /// Seeds every case's timing and the debtors' reply gaps.
    pub seed: u64,
    /// At most this many cases, taken evenly spread over the list (0: all).
    pub limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            set: Set::Final,
            rounds: 1,
            seed: 1,
            limit: 0,
        }
    }
}

/// The benchmark's cases, each in one voice: `rounds` passes over the
/// replies, the voice moving on by one per case and per round, each case's
/// timing drawn from the seed (the same seed, the same schedule).
pub fn cases(opts: &Options) -> Result<Vec<Case>, BenchError> {
    let (file, text) = opts.set.text();
    let voices = opts.set.voices();
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
    for raw in text.lines() {
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
                "{file}: unknown intent {label:?}"
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
        return Err(BenchError::Args(format!("{file}: no identity answers")));
    }
    // A promise the dialogue holds the debtor to: no later than the routing's
    // limit (further out goes to a collector).
    let max_days = crate::dialogue::routing::RoutingConfig::default().max_promise_days;
    let mut out = Vec::new();
    let mut n = 0usize;
    for round in 0..opts.rounds.max(1) {
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
            let voice = voices[(n + round) % voices.len()];
            let follow_up = off_topic || *kind == IntentKind::PromiseToPay;
            let mut rng = Rng::new(opts.seed, n);
            let timing = draw_timing(&mut rng, turn, follow_up);
            let mut steps = vec![Step::Silence(300), Step::Say("Hello?".into())];
            if *turn == "reminder" {
                // The identity answer: over the opening's end, or as the
                // case's timing says for the question it answers.
                let t = match timing {
                    Timing::OverDisclosure => Timing::OnCue,
                    Timing::BargeIn => Timing::OnCue,
                    t => t,
                };
                wait_for(
                    t,
                    &mut rng,
                    &mut steps,
                    Some(OPENING_MS + PROMPT_GAP_MS),
                    Some(OPENING_MS),
                );
                let answer = confirmed[n % confirmed.len()].to_string();
                steps.push(Step::Say(answer.clone()));
                if timing == Timing::OverOpening {
                    // The opening never names the debtor, so an answer said
                    // over it confirms nobody (by design: the dialogue's
                    // `a_yes_over_an_opening_that_never_named_the_debtor_confirms_nobody`);
                    // asked "Am I speaking with ...?", a person answers again.
                    steps.push(Step::WaitPrompt);
                    steps.push(Step::Say(answer));
                }
                let t = match timing {
                    Timing::OverOpening => Timing::OnCue,
                    t => t,
                };
                // The reminder starts after the disclosure.
                wait_for(
                    t,
                    &mut rng,
                    &mut steps,
                    Some(DISCLOSURE_MS + PROMPT_GAP_MS),
                    Some(DISCLOSURE_MS),
                );
            } else {
                wait_for(
                    timing,
                    &mut rng,
                    &mut steps,
                    Some(OPENING_MS + PROMPT_GAP_MS),
                    Some(OPENING_MS),
                );
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
                timing,
                off_topic,
                want,
                steps,
            });
            n += 1;
        }
    }
    if opts.limit > 0 && out.len() > opts.limit {
        let total = out.len();
        let keep: std::collections::BTreeSet<usize> =
            (0..opts.limit).map(|i| i * total / opts.limit).collect();
        out = out
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, c)| c)
            .collect();
    }
    Ok(out)
}

/// A case's timing: on cue 35 %, late 20 %, over the opening's end 15 %
/// (identity answers), barge-in 15 %, over the disclosure's end 15 %
/// (reminder replies with nothing said after them); a timing a case cannot
/// have falls back to on cue.
fn draw_timing(rng: &mut Rng, turn: &str, follow_up: bool) -> Timing {
    let t = match rng.range(0, 99) {
        0..=34 => Timing::OnCue,
        35..=54 => Timing::Late,
        55..=69 => Timing::OverOpening,
        70..=84 => Timing::BargeIn,
        _ => Timing::OverDisclosure,
    };
    match t {
        Timing::OverDisclosure if turn != "reminder" || follow_up => Timing::OnCue,
        // The opening asks nothing: only an identity answer is said over it.
        Timing::OverOpening if turn != "reminder" => Timing::OnCue,
        t => t,
    }
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
    /// When the debtor spoke.
    pub timing: String,
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
    /// The split run (`dev` or `final`).
    pub set: Set,
    /// The seed of the cases' timing and the reply gaps.
    pub seed: u64,
    /// By timing of the case's speech (on cue, late, over a prompt).
    pub by_timing: BTreeMap<String, Tally>,
    /// Reply latency the debtors heard (ms), every reply but the greeting's.
    pub reply_latency_ms: LatencyMs,
    /// The wrong calls.
    pub wrong: Vec<WrongCall>,
}

/// Runs every case, `concurrency` calls at a time, and reports.
pub fn run(
    root: &std::path::Path,
    record_dir: &std::path::Path,
    opts: &Options,
    concurrency: usize,
) -> Result<ConversationsReport, BenchError> {
    let cases = cases(opts)?;
    let mut book = PersonaBook::empty();
    for c in &cases {
        book.insert(c.persona());
    }
    let rig = Rig::start_seeded(root, record_dir, book, opts.seed)?;
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
    Ok(summarize(&cases, &placed, recognizer, opts))
}

fn summarize(
    cases: &[Case],
    placed: &[(usize, Placed)],
    recognizer: String,
    opts: &Options,
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
        set: opts.set,
        seed: opts.seed,
        by_timing: BTreeMap::new(),
        reply_latency_ms: LatencyMs::default(),
        wrong: Vec::new(),
    };
    let mut latencies = Vec::new();
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
        r.by_timing
            .entry(c.timing.as_str().to_string())
            .or_default()
            .add(v.right);
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
                timing: c.timing.as_str().to_string(),
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
    writeln!(
        out,
        "conversations ({}, set {:?}, seed {}):",
        r.recognizer, r.set, r.seed
    )?;
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
        "  reply latency       p50 {} / p95 {} / p99 {} ms",
        r.reply_latency_ms.p50, r.reply_latency_ms.p95, r.reply_latency_ms.p99
    )?;
    for (title, m) in [
        ("voice", &r.by_voice),
        ("intent", &r.by_intent),
        ("turn", &r.by_turn),
        ("timing", &r.by_timing),
    ] {
        writeln!(out, "  by {title}:")?;
        for (k, t) in m {
            writeln!(out, "    {k:<20} {}/{} ({:.0} %)", t.right, t.total, pct(t))?;
        }
    }
    for w in &r.wrong {
        writeln!(
            out,
            "  wrong{} {} [{}, {}] {:?} ({}): {}; heard {:?}",
            if w.consequential { " (acts)" } else { "" },
            w.persona,
            w.voice,
            w.timing,
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
        let cases = cases(&Options::default()).unwrap();
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
    fn the_dev_split_speaks_dev_wording_in_espeak_ng_voices_only() {
        let dev = cases(&Options {
            set: Set::Dev,
            ..Options::default()
        })
        .unwrap();
        assert!(dev.len() >= 100, "{} cases", dev.len());
        assert!(dev.iter().all(|c| DEV_VOICES.contains(&c.voice)));
        assert!(dev.iter().all(|c| !c.voice.starts_with("flite:")));
        let fresh: std::collections::BTreeSet<_> = cases(&Options::default())
            .unwrap()
            .into_iter()
            .map(|c| c.line)
            .collect();
        assert!(dev
            .iter()
            .all(|c| DEV.lines().any(|l| l.ends_with(&format!("\t{}", c.line)))));
        // The two files share four sentences (written apart); nothing else.
        let shared = dev.iter().filter(|c| fresh.contains(&c.line)).count();
        assert!(shared <= 4, "{shared} dev cases speak held-out lines");
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_timing_never_changes_the_route() {
        let opts = |seed| Options {
            set: Set::Dev,
            seed,
            ..Options::default()
        };
        let a = cases(&opts(7)).unwrap();
        let b = cases(&opts(7)).unwrap();
        let c = cases(&opts(8)).unwrap();
        let steps = |v: &[Case]| v.iter().map(|c| c.steps.clone()).collect::<Vec<_>>();
        assert_eq!(steps(&a), steps(&b));
        assert_ne!(steps(&a), steps(&c));
        for (x, y) in a.iter().zip(&c) {
            assert_eq!(x.want, y.want, "{}", x.line);
        }
        let timings: std::collections::BTreeSet<_> = a.iter().map(|c| c.timing).collect();
        assert_eq!(timings.len(), 5, "every timing drawn: {timings:?}");
        // A case with something to say after its line never speaks over
        // the disclosure (its next prompt would be the disclosure's end).
        for c in &a {
            if c.timing == Timing::OverDisclosure {
                assert!(!c.off_topic && c.intent != IntentKind::PromiseToPay);
            }
            if c.timing == Timing::OverOpening {
                assert_eq!(c.turn, "reminder");
                // Said over the opening, and again to the question.
                let says: Vec<_> = c
                    .steps
                    .iter()
                    .filter_map(|s| match s {
                        Step::Say(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                assert_eq!(says[1], says[2], "{:?}", c.steps);
            }
        }
    }

    #[test]
    fn a_limit_keeps_cases_spread_over_the_list() {
        let all = cases(&Options {
            set: Set::Dev,
            ..Options::default()
        })
        .unwrap();
        let some = cases(&Options {
            set: Set::Dev,
            limit: 40,
            ..Options::default()
        })
        .unwrap();
        assert_eq!(some.len(), 40);
        assert!(some.iter().any(|c| c.turn == "identity"));
        assert!(some.iter().any(|c| c.turn == "reminder"));
        assert_eq!(some[0].name, all[0].name);
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
