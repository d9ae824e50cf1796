//! Intent recognition (pure): a transcript or DTMF digit in, an `Intent` out.
//! Owns the fixed intent set and its priority order; never touches audio,
//! sockets or the clock (today's date comes in as an argument).

pub mod classify;
pub mod cli;
pub mod dates;
pub mod eval;
pub mod kind;
pub mod lexicon;
pub mod text;
pub use classify::Classifier;
pub use kind::IntentKind;
pub use lexicon::{DtmfContext, IntentError, Lexicon};

use serde::{Deserialize, Serialize};

/// Values an intent carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slots {
    /// promise_to_pay: the promised date, resolved against "today".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<chrono::NaiveDate>,
    /// callback_later: the asked-for moment (local date and time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<chrono::NaiveDateTime>,
    /// callback_later: standing hours asked for ("after six": not before
    /// 18:00 on every later call), beside the one-off moment in `time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours: Option<crate::outcome::AskedHours>,
}

/// What one reply means, with how sure we are and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The intent.
    #[serde(rename = "intent")]
    pub kind: IntentKind,
    /// 0..1; below the threshold the kind is `Unknown`.
    pub confidence: f32,
    /// The words or digit that decided it (and, for mixed replies, why this one won).
    pub reason: String,
    /// Date/time slots.
    pub slots: Slots,
    /// Other intents the same reply also carries, in priority order ("yes,
    /// and I already paid": `already_paid`, also `identity_confirmed`), so
    /// a reply that answers more than was asked can be taken whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<IntentKind>,
}

impl Intent {
    /// An intent with no slots and nothing else carried.
    pub fn new(kind: IntentKind, confidence: f32, reason: impl Into<String>) -> Intent {
        Intent {
            kind,
            confidence,
            reason: reason.into(),
            slots: Slots::default(),
            also: Vec::new(),
        }
    }

    /// True when the reply also says `kind` (beside its winning intent).
    pub fn also_says(&self, kind: IntentKind) -> bool {
        self.also.contains(&kind)
    }
}
