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

/// Packets and payload bytes one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtpCount {
    /// RTP packets.
    pub packets: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Packets certainly lost (receive side only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
}

/// RTP totals for a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtpTotals {
    /// What duecall sent.
    pub sent: RtpCount,
    /// What duecall received.
    pub received: RtpCount,
}

/// One DTMF digit heard, with its time since the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtmfDigit {
    /// 0-9, *, #, A-D.
    pub digit: char,
    /// Milliseconds since the call was answered.
    pub at_ms: u64,
}

/// How a blind transfer (REFER) went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReport {
    /// The Refer-To target (without its URI headers).
    pub target: String,
    /// Did the transferee reach the target (final NOTIFY sipfrag 2xx)?
    pub ok: bool,
    /// Response to the REFER itself (202 expected).
    pub refer_status: Option<u16>,
    /// Final status reported in the NOTIFY sipfrag.
    pub final_status: Option<u16>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `call` object of an outcome (ARCHITECTURE.md "Shapes"): what happened
/// on the wire, whatever the conversation was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    /// SIP Call-ID.
    pub call_id: String,
    /// The dialled URI.
    pub to: String,
    /// How it ended.
    pub disposition: Disposition,
    /// For `failed`.
    pub reason: Option<FailReason>,
    /// Final SIP status of the INVITE (None when no response came).
    pub sip_status: Option<u16>,
    /// Negotiated codec ("PCMU" | "PCMA").
    pub codec: Option<String>,
    /// When the INVITE left.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When the 2xx arrived.
    pub answered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the call ended.
    pub ended_at: chrono::DateTime<chrono::Utc>,
    /// Answered duration in milliseconds (0 if never answered).
    pub duration_ms: u64,
    /// Who ended it.
    pub ended_by: EndedBy,
    /// RTP totals.
    pub rtp: RtpTotals,
    /// DTMF digits heard.
    pub dtmf: Vec<DtmfDigit>,
    /// Blind transfer result, when one was attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferReport>,
    /// Two-channel recording (left: sent, right: heard).
    pub recording: Option<std::path::PathBuf>,
    /// Our own RTP send pacing (for benchmarks; not part of the JSON).
    #[serde(skip)]
    pub pacing: Option<crate::telephony::media_session::PacingStats>,
}
