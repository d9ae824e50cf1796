//! The words every layer shares about how an attempt ended: disposition,
//! who ended it, and the route a case takes. This module owns those shapes
//! (and their JSON spelling); it never decides anything.

use serde::{Deserialize, Serialize};

/// How one dial ended, one list everywhere (ARCHITECTURE.md "Words").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// A person (or not yet known) answered.
    Answered,
    /// A machine answered.
    Voicemail,
    /// 486 or 600.
    Busy,
    /// Ring timeout and our CANCEL, 408, 480, 487.
    NoAnswer,
    /// 603 or 607.
    Rejected,
    /// 404, 484, 604.
    NotFound,
    /// Any other final status, no media, a transport error (see `FailReason`).
    Failed,
    /// We cancelled for another reason (shutdown, operator).
    Cancelled,
}

impl Disposition {
    /// The kebab-case spelling used in JSON, CSV and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Voicemail => "voicemail",
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no-answer",
            Disposition::Rejected => "rejected",
            Disposition::NotFound => "not-found",
            Disposition::Failed => "failed",
            Disposition::Cancelled => "cancelled",
        }
    }

    /// Parses the kebab-case spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "answered" => Disposition::Answered,
            "voicemail" => Disposition::Voicemail,
            "busy" => Disposition::Busy,
            "no-answer" => Disposition::NoAnswer,
            "rejected" => Disposition::Rejected,
            "not-found" => Disposition::NotFound,
            "failed" => Disposition::Failed,
            "cancelled" => Disposition::Cancelled,
            _ => return None,
        })
    }
}

/// Why a `failed` attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailReason {
    /// 401/403/407 we could not satisfy.
    Auth,
    /// 488/606 or an answer whose SDP we cannot use.
    NoCommonCodec,
    /// Answered but no media arrived.
    MediaTimeout,
    /// Transport error, unreachable peer, transaction timeout.
    Network,
    /// 5xx or another final status.
    Server,
}

/// Who ended an answered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndedBy {
    /// duecall hung up (or cancelled).
    Us,
    /// The far end hung up (or rejected).
    Them,
    /// A timer ended it (ring timeout, hold time, media timeout).
    Timeout,
}

/// Maps a final SIP status of an INVITE to a disposition (and reason for
/// `failed`). A 487 after a CANCEL for another reason than the ring timeout
/// is re-labelled `cancelled` by the caller, which knows why it cancelled.
pub fn disposition_for_status(status: u16) -> (Disposition, Option<FailReason>) {
    match status {
        200..=299 => (Disposition::Answered, None),
        486 | 600 => (Disposition::Busy, None),
        408 | 480 | 487 => (Disposition::NoAnswer, None),
        603 | 607 => (Disposition::Rejected, None),
        404 | 484 | 604 => (Disposition::NotFound, None),
        401 | 403 | 407 => (Disposition::Failed, Some(FailReason::Auth)),
        488 | 606 => (Disposition::Failed, Some(FailReason::NoCommonCodec)),
        _ => (Disposition::Failed, Some(FailReason::Server)),
    }
}

/// Where a case goes after a call (ARCHITECTURE.md "route").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// Live transfer to a collector, or an escalation carrying the transcript.
    Agent,
    /// Collection pauses until a date.
    Pause,
    /// No more robot calls (scope number or account).
    Suppress,
    /// Call again, not before a moment.
    Retry,
    /// Nothing more to do for this case.
    Done,
}

/// What a suppression covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressScope {
    /// This phone number, for this account.
    Number,
    /// Every number of the account.
    Account,
}

/// A route with its reason and parameters, as written to the outcome JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The kind of route.
    pub kind: RouteKind,
    /// Why (e.g. `hardship`, `paid-unverified`, `stop_calling`).
    pub reason: String,
    /// For `pause` and `retry`: until / earliest (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// For `suppress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<SuppressScope>,
    /// A second route that also applies (hardship: agent, then pause 30 days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<Box<Route>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_map_to_the_documented_dispositions() {
        assert_eq!(disposition_for_status(486).0, Disposition::Busy);
        assert_eq!(disposition_for_status(600).0, Disposition::Busy);
        assert_eq!(disposition_for_status(480).0, Disposition::NoAnswer);
        assert_eq!(disposition_for_status(487).0, Disposition::NoAnswer);
        assert_eq!(disposition_for_status(603).0, Disposition::Rejected);
        assert_eq!(disposition_for_status(404).0, Disposition::NotFound);
        assert_eq!(disposition_for_status(604).0, Disposition::NotFound);
        assert_eq!(
            disposition_for_status(503),
            (Disposition::Failed, Some(FailReason::Server))
        );
        assert_eq!(
            disposition_for_status(407),
            (Disposition::Failed, Some(FailReason::Auth))
        );
        assert_eq!(
            disposition_for_status(488),
            (Disposition::Failed, Some(FailReason::NoCommonCodec))
        );
    }

    #[test]
    fn disposition_spelling_round_trips() {
        for d in [
            Disposition::Answered,
            Disposition::Voicemail,
            Disposition::Busy,
            Disposition::NoAnswer,
            Disposition::Rejected,
            Disposition::NotFound,
            Disposition::Failed,
            Disposition::Cancelled,
        ] {
            assert_eq!(Disposition::parse(d.as_str()), Some(d));
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!("\"{}\"", d.as_str())
            );
        }
    }
}
