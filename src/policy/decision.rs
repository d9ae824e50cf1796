//! The gate's shapes: what it reads of an account's state (suppressions,
//! holds, pauses, callbacks) and the decision it writes, with every rule's
//! figures (the audit record). Plain data; `decide` fills them.

use std::borrow::Cow;

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::holds::Hold;
use crate::account::hours::HoursRange;
use crate::outcome::SuppressScope;

/// A "do not call" the debtor or an agent set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// `number`: this number for this account (wrong number); `account`: every number (stop calling).
    pub scope: SuppressScope,
    /// The E.164 number, for scope `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Why (`wrong_number`, `stop_calling`, ...).
    #[serde(default)]
    pub reason: String,
}

/// What the routes left on an account that the gate must respect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    /// Active suppressions.
    #[serde(default)]
    pub suppressions: Vec<Suppression>,
    /// No calls before this instant (pause: promise to pay, hardship, verify payment).
    #[serde(default)]
    pub pause_until: Option<DateTime<Utc>>,
    /// The debtor asked to be called back at this time: not before it.
    #[serde(default)]
    pub callback_at: Option<DateTime<Utc>>,
    /// The debtor asked not to be called before this local time of day.
    #[serde(default)]
    pub asked_not_before: Option<NaiveTime>,
    /// The debtor asked not to be called at or after this local time of day.
    #[serde(default)]
    pub asked_not_after: Option<NaiveTime>,
    /// The debtor consented to calls outside the normal window (cn night calls).
    #[serde(default)]
    pub night_call_consent: bool,
    /// Holds in force: a dispute, a case with a collector.
    #[serde(default)]
    pub holds: Vec<Hold>,
    /// The local hours the debtor asked to be called in (`call_hours`):
    /// inside one of them, and inside the window.
    #[serde(default)]
    pub call_hours: Vec<HoursRange>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The dial may go now.
    Allow,
    /// It may not.
    Deny,
}

/// Numbers behind a rule's verdict, for the audit and the console.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// How many were counted (attempts, conversations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Length of the rolling window in local days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Day after the due date (stage), or day of the quiet period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<i64>,
    /// Local time `HH:MM` in the first candidate zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_time: Option<String>,
    /// The zone that local time is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The window applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// An instant the rule waits for (pause end, callback time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleCheck {
    /// Rule name: `jurisdiction`, `suppression`, `hold`, `stage`, `pause`, `callback`,
    /// `window`, `holiday`, `asked_hours`, `call_hours`, `<counts>_in_<days>_days`,
    /// `quiet_after_conversation`, `number_available`,
    /// `attempts_per_number_per_day`, `hard_cap_per_number_per_day`.
    pub rule: Cow<'static, str>,
    /// Whether it passed.
    pub passed: bool,
    /// In words, with the figures ("cn: 2 of 3 attempts today on +8**********78").
    pub detail: String,
    /// The figures themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
}

/// The gate's answer for one account at one instant (ARCHITECTURE.md "policy decision").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecision {
    /// The account decided on.
    pub account_id: String,
    /// Allow or deny.
    pub decision: Decision,
    /// The number to dial (E.164) when allowed; when denied, the number the per-number figures are about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The jurisdiction preset applied.
    pub jurisdiction: String,
    /// The candidate zones the windows and days were checked in.
    pub zones: Vec<Cow<'static, str>>,
    /// The instant decided for.
    pub at: DateTime<Utc>,
    /// Every rule checked, in a fixed order.
    pub rules: Vec<RuleCheck>,
    /// The earliest instant >= `at` at which every rule passes (`at` itself when
    /// allowed); none when no such instant exists within the search horizon
    /// (suppressed, past the bot stage, ...).
    pub next_allowed_at: Option<DateTime<Utc>>,
    /// The account is past the bot's stage and belongs to a human collector.
    pub human_queue: bool,
}

impl PolicyDecision {
    /// Whether the dial may go.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }
}
