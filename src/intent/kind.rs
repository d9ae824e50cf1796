//! The fixed set of intents (ARCHITECTURE.md "Words") and their priority.

use serde::{Deserialize, Serialize};

/// What a reply means. The set is fixed; the lexicon that finds them lives in
/// `prompts/<lang>.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentKind {
    /// The callee is not the debtor and does not know them.
    WrongNumber,
    /// Asks for no more calls.
    StopCalling,
    /// Disputes the debt or the amount.
    Dispute,
    /// Asks for a person.
    RequestAgent,
    /// Cannot pay: job loss, illness, disaster.
    Hardship,
    /// Says it is paid.
    AlreadyPaid,
    /// Will pay (slot: date).
    PromiseToPay,
    /// Call me later (slot: time).
    CallbackLater,
    /// Someone else answered; the debtor is not there.
    NotAvailable,
    /// Asks who is calling.
    WhoIsCalling,
    /// "No, that's not me."
    IdentityDenied,
    /// "Yes, speaking."
    IdentityConfirmed,
    /// Nothing recognised with enough confidence.
    Unknown,
}

impl IntentKind {
    /// Every intent, in priority order: when a reply matches several, the
    /// first in this list wins (`Unknown` last).
    pub const PRIORITY: [IntentKind; 13] = [
        IntentKind::WrongNumber,
        IntentKind::StopCalling,
        IntentKind::Dispute,
        IntentKind::RequestAgent,
        IntentKind::Hardship,
        IntentKind::AlreadyPaid,
        IntentKind::PromiseToPay,
        IntentKind::CallbackLater,
        IntentKind::NotAvailable,
        IntentKind::WhoIsCalling,
        IntentKind::IdentityDenied,
        IntentKind::IdentityConfirmed,
        IntentKind::Unknown,
    ];

    /// The snake_case name used in JSON, TOML and TSV.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentKind::WrongNumber => "wrong_number",
            IntentKind::StopCalling => "stop_calling",
            IntentKind::Dispute => "dispute",
            IntentKind::RequestAgent => "request_agent",
            IntentKind::Hardship => "hardship",
            IntentKind::AlreadyPaid => "already_paid",
            IntentKind::PromiseToPay => "promise_to_pay",
            IntentKind::CallbackLater => "callback_later",
            IntentKind::NotAvailable => "not_available",
            IntentKind::WhoIsCalling => "who_is_calling",
            IntentKind::IdentityDenied => "identity_denied",
            IntentKind::IdentityConfirmed => "identity_confirmed",
            IntentKind::Unknown => "unknown",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::PRIORITY.iter().copied().find(|k| k.as_str() == s)
    }

    /// Rank in the priority order (0 wins).
    pub fn rank(self) -> usize {
        Self::PRIORITY
            .iter()
            .position(|k| *k == self)
            .unwrap_or(usize::MAX)
    }
}
