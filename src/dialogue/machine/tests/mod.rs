//! The conversation on simulated time: a keyword reader instead of the
//! classifier, a harness that plays prompts to their end and checks after
//! every step that no debt-bearing prompt played before identity.

use super::*;
use crate::account::Language;
use crate::dialogue::amd::AmdVerdict;
use crate::dialogue::config::{UncertainAs, VoicemailMode};
use crate::dialogue::routing::UnknownRoute;
use crate::intent::Slots;
use crate::outcome::SuppressScope;
use crate::outcome::{Disposition, EndedBy, Route, RouteKind};
use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use std::path::Path;

const T0: &str = "2026-11-23T10:00:00-08:00";

/// A small keyword reader for tests: enough words to reach every intent in
/// English and Mandarin, ISO dates (`2026-11-27`) as the promise slot and
/// `HH:MM` as the callback slot. Not the product's classifier.
struct Keywords;

impl Understand for Keywords {
    fn text(&self, text: &str, at: NaiveDateTime) -> Intent {
        let t = text.to_lowercase();
        let words: Vec<&str> = t
            .split(|c: char| !c.is_alphanumeric() && c != '-' && c != ':')
            .collect();
        let date = words
            .iter()
            .find_map(|w| NaiveDate::parse_from_str(w, "%Y-%m-%d").ok());
        let time = words
            .iter()
            .find_map(|w| chrono::NaiveTime::parse_from_str(w, "%H:%M").ok())
            .map(|tm| date.unwrap_or(at.date()).and_time(tm));
        // "after 18:00": standing hours from that time on
        let hours = words
            .windows(2)
            .find(|w| w[0] == "after")
            .and_then(|w| chrono::NaiveTime::parse_from_str(w[1], "%H:%M").ok())
            .map(|tm| crate::outcome::AskedHours {
                not_before: Some(tm),
                not_after: None,
            });
        let has = |w: &str| words.contains(&w);
        let rules: [(IntentKind, bool); 12] = [
            (
                IntentKind::WrongNumber,
                t.contains("wrong number") || t.contains("打错"),
            ),
            (
                IntentKind::StopCalling,
                t.contains("stop calling") || t.contains("别再打"),
            ),
            (
                IntentKind::Dispute,
                t.contains("don't owe") || t.contains("没有欠"),
            ),
            (
                IntentKind::RequestAgent,
                has("agent") || has("person") || t.contains("人工"),
            ),
            (
                IntentKind::Hardship,
                t.contains("lost my job") || t.contains("失业"),
            ),
            (
                IntentKind::AlreadyPaid,
                t.contains("paid") || t.contains("已经还"),
            ),
            (
                IntentKind::PromiseToPay,
                t.contains("will pay") || t.contains("我会还"),
            ),
            (
                IntentKind::CallbackLater,
                t.contains("call me") || t.contains("晚点"),
            ),
            (
                IntentKind::NotAvailable,
                t.contains("not here") || t.contains("不在"),
            ),
            (
                IntentKind::WhoIsCalling,
                t.contains("who is") || t.contains("你是谁"),
            ),
            (
                IntentKind::IdentityDenied,
                has("no") || t.contains("不是") || t.contains("不对"),
            ),
            (
                IntentKind::IdentityConfirmed,
                has("yes") || t.contains("是") || t.contains("对"),
            ),
        ];
        let mut hits = rules.iter().filter(|(_, hit)| *hit).map(|(k, _)| *k);
        let kind = hits.next().unwrap_or(IntentKind::Unknown);
        let also: Vec<IntentKind> = hits.collect();
        // "maybe": below the intent threshold; "probably": above it, below
        // the confirmation threshold.
        let confidence = if t.contains("maybe") {
            0.3
        } else if t.contains("probably") {
            0.6
        } else if kind == IntentKind::Unknown {
            0.0
        } else {
            0.9
        };
        // Like the classifier: below the intent threshold, unknown.
        if kind != IntentKind::Unknown && confidence < 0.5 {
            return Intent::new(
                IntentKind::Unknown,
                confidence,
                format!("{} below threshold 0.5: {text}", kind.as_str()),
            );
        }
        Intent {
            kind,
            confidence,
            reason: text.to_string(),
            slots: Slots { date, time, hours },
            also,
        }
    }

    fn digit(&self, d: char, confirmed: bool) -> Intent {
        let kind = match (confirmed, d) {
            (false, '1') => IntentKind::IdentityConfirmed,
            (false, '2') => IntentKind::IdentityDenied,
            (true, '1') => IntentKind::AlreadyPaid,
            (true, '2') => IntentKind::PromiseToPay,
            (true, '3') => IntentKind::Hardship,
            (true, '4') => IntentKind::WrongNumber,
            (_, '0') => IntentKind::RequestAgent,
            _ => IntentKind::Unknown,
        };
        let confidence = if kind == IntentKind::Unknown {
            0.0
        } else {
            1.0
        };
        Intent::new(kind, confidence, format!("dtmf {d}"))
    }
}

fn script(lang: &str) -> Arc<Script> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("prompts")
        .join(format!("{lang}.toml"));
    Arc::new(Script::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

fn account(lang: Language) -> Account {
    Account {
        account_id: "A-17".into(),
        name: if lang == Language::Zh {
            "王伟".into()
        } else {
            "Maria Lopez".into()
        },
        phone: "+14155550100".into(),
        amount: Decimal::new(12550, 2),
        currency: None,
        due_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        timezone: Some("America/Los_Angeles".into()),
        language: lang,
        jurisdiction: Some("us".into()),
        alt_phones: vec![],
        days_past_due: None,
        agent_uri: None,
        caller_id: None,
    }
}

fn at(s: &str) -> Option<DateTime<FixedOffset>> {
    Some(DateTime::parse_from_rfc3339(s).unwrap())
}

/// Drives one conversation on simulated time and checks, after every
/// step, that no debt-bearing prompt played before identity was confirmed
/// and that every prompt quoting the amount or due date is flagged.
struct H {
    c: Conversation,
    t: u64,
    log: Vec<(u64, Action)>,
    playing: Option<String>,
    debt_words: Vec<String>,
    /// The route when the call ended (`Some(None)`: ended without one).
    ended_route: Option<Option<Route>>,
}

impl H {
    fn new() -> H {
        H::with(Language::En, |_, _| {})
    }

    fn with(lang: Language, f: impl FnOnce(&mut DialogueConfig, &mut Account)) -> H {
        H::with_script(script(lang.as_str()), f)
    }

    /// A conversation following `s` (its language's account).
    fn with_script(s: Arc<Script>, f: impl FnOnce(&mut DialogueConfig, &mut Account)) -> H {
        let lang = s.meta.language;
        let mut cfg = DialogueConfig::default();
        let mut acc = account(lang);
        f(&mut cfg, &mut acc);
        let call = CallContext::at(DateTime::parse_from_rfc3339(T0).unwrap());
        let today = call.today();
        let debt_words = vec![
            speak::amount_words(acc.amount, acc.currency.as_deref(), lang),
            speak::date_words(acc.due_date, lang, today),
        ];
        H {
            c: Conversation::new(s, acc, cfg, call, Arc::new(Keywords)),
            t: 0,
            log: vec![],
            playing: None,
            debt_words,
            ended_route: None,
        }
    }

    fn at(&mut self, t: u64, e: Event) -> Vec<Action> {
        self.t = t;
        self.c.handle(t, e);
        let mut out = vec![];
        while let Some(a) = self.c.poll_action() {
            match &a {
                Action::Play {
                    prompt: prompt_id,
                    text,
                    mentions_debt,
                    ..
                } => {
                    assert!(
                        !*mentions_debt || self.c.out.identity_confirmed,
                        "{prompt_id} played before identity was confirmed"
                    );
                    for w in &self.debt_words {
                        assert!(
                            *mentions_debt || !text.contains(w.as_str()),
                            "{prompt_id} says {w} unflagged"
                        );
                    }
                    self.playing = Some(prompt_id.to_string());
                }
                Action::StopPlaying { .. } | Action::Hangup => self.playing = None,
                Action::Transfer { .. } => self.playing = None,
                _ => {}
            }
            self.log.push((t, a.clone()));
            out.push(a);
        }
        if self.c.is_ended() {
            let now = self.c.outcome().route;
            let first = self.ended_route.get_or_insert_with(|| now.clone());
            assert_eq!(*first, now, "the route changed after the call ended");
        }
        out
    }

    /// The next timer the conversation runs by design (the safety limits,
    /// call length, utterance length and prompt overrun, are tested on
    /// their own, in `limits`).
    fn next_timer(&self) -> Option<u64> {
        use crate::dialogue::timers::Timer;
        [
            Timer::BargeIn,
            Timer::SpeakDelay,
            Timer::Amd,
            Timer::BeepWait,
            Timer::NoInput,
            Timer::Transfer,
        ]
        .into_iter()
        .filter_map(|t| self.c.timers.get(t))
        .min()
    }

    fn after(&mut self, dt: u64, e: Event) -> Vec<Action> {
        self.at(self.t + dt, e)
    }

    /// Answer; the person says "hello?" (400 ms) and AMD calls it human.
    fn answer_person(&mut self) -> Vec<Action> {
        self.at(0, Event::Answered);
        self.after(300, Event::SpeechStart);
        self.after(400, Event::SpeechEnd);
        let due = self.next_timer().expect("amd timer");
        assert_eq!(due, 700 + 800, "after-greeting silence");
        self.at(due, Event::Timeout)
    }

    /// Plays the current prompt to its end (1 s later).
    fn finish(&mut self) -> Vec<Action> {
        let id = self.playing.take().expect("a prompt is playing");
        self.after(
            1000,
            Event::PlaybackFinished {
                prompt: PromptId::parse(&id).expect("a prompt id"),
            },
        )
    }

    /// Plays prompts to their end until the machine listens or ends.
    fn finish_all(&mut self) -> Vec<Action> {
        let mut out = vec![];
        while self.playing.is_some() {
            out.extend(self.finish());
        }
        out
    }

    fn reply(&mut self, text: &str) -> Vec<Action> {
        self.after(200, Event::SpeechStart);
        self.after(700, Event::SpeechEnd);
        self.after(
            150,
            Event::Final {
                text: text.into(),
                confidence: 0.8,
            },
        )
    }

    fn silence(&mut self) -> Vec<Action> {
        let due = self.next_timer().expect("a timer");
        self.at(due, Event::Timeout)
    }

    fn reach_reminder(&mut self) {
        self.answer_person();
        self.finish_all();
        self.reply("yes, speaking");
        self.finish_all();
    }

    /// Up to the reminder, still playing it.
    fn reach_reminder_playing(&mut self) {
        self.answer_person();
        self.finish_all();
        self.reply("yes, speaking");
        self.finish();
        assert_eq!(self.playing.as_deref(), Some("reminder"));
    }

    fn plays(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Play {
                    prompt: prompt_id, ..
                } => Some(prompt_id.to_string()),
                _ => None,
            })
            .collect()
    }

    fn route(&self) -> Route {
        self.c.outcome().route.expect("a route")
    }

    fn has(&self, f: impl Fn(&Action) -> bool) -> bool {
        self.log.iter().any(|(_, a)| f(a))
    }

    /// The route the call ended with (empty while it runs, or when it
    /// ended without one); `at` checks it never changes afterwards.
    fn emitted_route(&self) -> Vec<Route> {
        self.ended_route.clone().into_iter().flatten().collect()
    }

    fn escalated(&self, reason: &str) -> bool {
        self.c
            .outcome()
            .escalations
            .iter()
            .any(|e| e.reason == reason)
    }

    fn assert_no_debt_said(&self) {
        for (_, a) in &self.log {
            if let Action::Play {
                prompt: prompt_id,
                text,
                mentions_debt,
                ..
            } = a
            {
                assert!(!mentions_debt, "{prompt_id} mentions the debt");
                for w in &self.debt_words {
                    assert!(!text.contains(w.as_str()), "{prompt_id} says {w}");
                }
            }
        }
    }
}

fn play_of(actions: &[Action]) -> Vec<(String, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Play {
                prompt: prompt_id,
                interruptible,
                ..
            } => Some((prompt_id.to_string(), *interruptible)),
            _ => None,
        })
        .collect()
}

mod amd;
mod barge_in;
mod confirm;
mod hangups;
mod limits;
mod mandarin;
mod paths;
mod shape;
mod third_parties;
mod turn_taking;
mod unclear;
