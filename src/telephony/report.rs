//! The wire call report: what happened on the wire during one dial (the
//! `call` object of an outcome, ARCHITECTURE.md "Shapes"), whatever the
//! conversation was. Owned by telephony, which fills it; read by the agent,
//! the store and the tests. It holds no decision about the case (those words
//! are in `outcome`) and never touches sockets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::media::sit::SitKind;
use crate::outcome::{Disposition, EndedBy, FailReason};

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
    /// RTP from addresses other than the peer's, dropped unheard (receive
    /// side only; someone spraying the port, or a peer moved without SDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strangers: Option<u64>,
}

/// RTP totals for a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtpTotals {
    /// What duecall sent.
    pub sent: RtpCount,
    /// What duecall received.
    pub received: RtpCount,
    /// The SRTP suite both directions used (absent: plain RTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtp: Option<crate::telephony::srtp::Suite>,
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
    /// A bridged transfer (`[transfer] mode = "bridge"`): the collector's
    /// leg, the hand-over time, how long the bridge lasted, who ended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<crate::telephony::bridge::BridgeReport>,
}

impl TransferReport {
    /// What a platform's transfer hook answered: `status` is both the
    /// request's and the final status (the platform moved the call or not).
    pub fn hook_answered(&mut self, ok: bool, status: Option<u16>, error: Option<String>) {
        self.ok = ok;
        self.refer_status = status;
        self.final_status = status;
        self.error = error;
    }
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
    /// Negotiated codec ("PCMU" | "PCMA"; "opus" on a direct WebRTC leg, whose
    /// media session still speaks G.711 with the bridge).
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
    /// RTCP reports exchanged and what they said (RFC 3550: jitter, loss,
    /// round-trip time); absent when no media ran or the carrier has no RTCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcp: Option<crate::telephony::rtcp::RtcpReport>,
    /// A special information tone heard in early media before the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sit: Option<SitKind>,
    /// The trunks the INVITE went through, in order (more than one when
    /// the first failed over within this attempt); empty without trunks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trunks: Vec<String>,
    /// Our own RTP send pacing (for benchmarks; not part of the JSON).
    #[serde(skip)]
    pub pacing: Option<PacingStats>,
}

/// Distribution of our own send intervals (deviation from 20 ms), kept in
/// 0.1 ms buckets: no allocation per packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacingStats {
    buckets: Vec<u64>,
    /// Largest deviation seen, microseconds.
    pub max_us: u64,
    /// Intervals measured.
    pub count: u64,
}

impl Default for PacingStats {
    fn default() -> Self {
        Self::new()
    }
}

impl PacingStats {
    /// An empty distribution.
    pub fn new() -> Self {
        PacingStats {
            buckets: vec![0; 501],
            max_us: 0,
            count: 0,
        }
    }
    /// Records one send interval.
    pub(crate) fn record(&mut self, interval: Duration) {
        let dev = (interval.as_micros() as i64 - 20_000).unsigned_abs();
        self.max_us = self.max_us.max(dev);
        self.count += 1;
        let b = ((dev / 100) as usize).min(self.buckets.len() - 1);
        self.buckets[b] += 1;
    }
    /// Deviation percentile in microseconds (bucket upper edge).
    pub fn percentile_us(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let target = ((self.count as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= target {
                return (i as u64 + 1) * 100;
            }
        }
        self.max_us
    }
    /// Merges another session's distribution (for benchmarks over many calls).
    pub fn merge(&mut self, other: &PacingStats) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.max_us = self.max_us.max(other.max_us);
        self.count += other.count;
    }
}
