//! Bridged (attended) transfer: duecall dials the collector on a second leg
//! while the debtor hears the "transferring you" prompt, and once the
//! collector answers it moves each leg's heard frames into the other leg's
//! media session (jitter buffer and pacing on both sides), so the debtor's
//! recording keeps running through the hand-over: right = the debtor,
//! left = what duecall sends the debtor (the bot, then the collector).
//!
//! Owns the `[transfer]` config, the pure [`Bridge`] state (what to do when
//! the collector answers, fails or hangs up, or the debtor hangs up) and the
//! bridge's report. Never: moves frames or touches SIP (the agent's pump and
//! the legs do), decides whether to transfer (the dialogue does).

use serde::{Deserialize, Serialize};

use crate::outcome::Disposition;

/// How a live transfer reaches the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    /// Blind transfer: a REFER, and our leg ends once the debtor's phone
    /// reached the collector.
    #[default]
    Refer,
    /// duecall dials the collector and bridges the two legs, recording all.
    Bridge,
}

/// `[transfer]`: how live transfers are carried out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferConfig {
    /// `refer` (default) or `bridge`.
    pub mode: TransferMode,
}

/// Context headers on the collector's INVITE: what the dialogue put on the
/// transfer (account, intent, case) plus the attempt and the reason.
pub fn collector_headers(
    transfer_headers: &[(String, String)],
    attempt_id: Option<i64>,
    reason: &str,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = transfer_headers.to_vec();
    if let Some(id) = attempt_id {
        h.push(("X-Duecall-Attempt".into(), id.to_string()));
    }
    h.push(("X-Duecall-Reason".into(), reason.to_string()));
    h.push(("X-Duecall-Transfer".into(), "bridge".into()));
    h
}

/// Who ended a bridged call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BridgeEnd {
    /// The debtor hung up (we sent BYE to the collector).
    Debtor,
    /// The collector hung up (we sent BYE to the debtor).
    Collector,
}

/// What happened on the collector's leg, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeInput {
    /// The collector answered. `conversation_waiting`: the conversation
    /// still waits for the transfer's result (it has not given up).
    CollectorAnswered {
        /// Whether the conversation still waits for the result.
        conversation_waiting: bool,
    },
    /// The collector's leg ended (before or after the answer).
    CollectorEnded {
        /// Its disposition.
        disposition: Disposition,
        /// Final SIP status of the INVITE, if one came.
        status: Option<u16>,
    },
    /// The collector could not be dialled at all.
    DialFailed(String),
    /// The debtor's leg ended.
    DebtorEnded,
}

/// What the driver must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeAction {
    /// Tell the conversation how the transfer went.
    TransferResult {
        /// Did the collector answer?
        ok: bool,
    },
    /// Hang up (or cancel) the collector's leg.
    HangUpCollector,
    /// Hang up the debtor's leg.
    HangUpDebtor,
}

/// Where a bridged transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgePhase {
    /// The collector's phone is being dialled.
    Dialling,
    /// Both legs are talking to each other.
    Bridged,
    /// Over: failed, or one side hung up.
    Over,
}

/// How a bridged transfer went, in the outcome's `call.transfer.bridge`.
/// Times are the debtor call's clock (ms since the dial, as the turns').
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BridgeReport {
    /// `bridge`.
    pub mode: String,
    /// The collector leg's Call-ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector_call_id: Option<String>,
    /// When the collector was dialled (the hand-over started).
    pub dialled_at_ms: u64,
    /// When the collector answered (the hand-over: bot before, collector after).
    pub answered_at_ms: Option<u64>,
    /// When the collector answered, wall clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// How long the two legs were bridged.
    pub bridged_ms: u64,
    /// Who ended the bridged call (None: it never was bridged).
    pub ended_by: Option<BridgeEnd>,
    /// The collector leg's disposition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector_disposition: Option<Disposition>,
    /// Frames moved debtor -> collector.
    pub frames_to_collector: u64,
    /// Frames moved collector -> debtor.
    pub frames_to_debtor: u64,
}

/// The pure state of one bridged transfer: inputs in, at most one action out.
#[derive(Debug, Clone)]
pub struct Bridge {
    phase: BridgePhase,
    report: BridgeReport,
    status: Option<u16>,
    error: Option<String>,
}

impl Bridge {
    /// A transfer whose collector is dialled at `at_ms`.
    pub fn new(at_ms: u64) -> Bridge {
        Bridge {
            phase: BridgePhase::Dialling,
            report: BridgeReport {
                mode: "bridge".into(),
                dialled_at_ms: at_ms,
                ..BridgeReport::default()
            },
            status: None,
            error: None,
        }
    }

    /// Where the transfer is.
    pub fn phase(&self) -> BridgePhase {
        self.phase
    }

    /// Whether frames move between the legs now.
    pub fn is_bridged(&self) -> bool {
        self.phase == BridgePhase::Bridged
    }

    /// One input at `at_ms`; the action the driver must take, if any.
    pub fn on(&mut self, at_ms: u64, input: BridgeInput) -> Option<BridgeAction> {
        match (self.phase, input) {
            (
                BridgePhase::Dialling,
                BridgeInput::CollectorAnswered {
                    conversation_waiting: true,
                },
            ) => {
                self.phase = BridgePhase::Bridged;
                self.report.answered_at_ms = Some(at_ms);
                Some(BridgeAction::TransferResult { ok: true })
            }
            (
                BridgePhase::Dialling,
                BridgeInput::CollectorAnswered {
                    conversation_waiting: false,
                },
            ) => {
                // The conversation gave up (its transfer timeout) and moved
                // on to the fallback: the collector is too late.
                self.phase = BridgePhase::Over;
                self.error = Some("the collector answered after the transfer timeout".into());
                Some(BridgeAction::HangUpCollector)
            }
            (
                BridgePhase::Dialling,
                BridgeInput::CollectorEnded {
                    disposition,
                    status,
                },
            ) => {
                self.phase = BridgePhase::Over;
                self.status = status;
                self.report.collector_disposition = Some(disposition);
                self.error = Some(failure_reason(disposition, status));
                Some(BridgeAction::TransferResult { ok: false })
            }
            (BridgePhase::Dialling, BridgeInput::DialFailed(e)) => {
                self.phase = BridgePhase::Over;
                self.error = Some(format!("cannot dial the collector: {e}"));
                Some(BridgeAction::TransferResult { ok: false })
            }
            (BridgePhase::Dialling, BridgeInput::DebtorEnded) => {
                self.phase = BridgePhase::Over;
                self.error = Some("the debtor hung up before the collector answered".into());
                Some(BridgeAction::HangUpCollector)
            }
            (
                BridgePhase::Bridged,
                BridgeInput::CollectorEnded {
                    disposition,
                    status,
                },
            ) => {
                self.end(at_ms, BridgeEnd::Collector);
                self.status = status.or(self.status);
                self.report.collector_disposition = Some(disposition);
                Some(BridgeAction::HangUpDebtor)
            }
            (BridgePhase::Bridged, BridgeInput::DebtorEnded) => {
                self.end(at_ms, BridgeEnd::Debtor);
                Some(BridgeAction::HangUpCollector)
            }
            (BridgePhase::Bridged, BridgeInput::CollectorAnswered { .. })
            | (BridgePhase::Bridged, BridgeInput::DialFailed(_)) => None,
            (
                BridgePhase::Over,
                BridgeInput::CollectorEnded {
                    disposition,
                    status,
                },
            ) => {
                // The collector's report after we hung it up: keep what it says.
                self.status = self.status.or(status);
                self.report.collector_disposition.get_or_insert(disposition);
                None
            }
            (BridgePhase::Over, BridgeInput::CollectorAnswered { .. }) => {
                Some(BridgeAction::HangUpCollector)
            }
            (BridgePhase::Over, _) => None,
        }
    }

    fn end(&mut self, at_ms: u64, by: BridgeEnd) {
        self.phase = BridgePhase::Over;
        self.report.ended_by = Some(by);
        if let Some(a) = self.report.answered_at_ms {
            self.report.bridged_ms = at_ms.saturating_sub(a);
        }
    }

    /// Did the collector take the call?
    pub fn answered(&self) -> bool {
        self.report.answered_at_ms.is_some() && self.error.is_none()
    }

    /// The collector INVITE's final status, if one came.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Why the transfer failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The report so far.
    pub fn report(&self) -> &BridgeReport {
        &self.report
    }

    /// The report, for the driver to fill in what only it knows (the
    /// collector's Call-ID, wall-clock time, frame counts).
    pub fn report_mut(&mut self) -> &mut BridgeReport {
        &mut self.report
    }
}

/// Why the collector's leg did not become a bridge, in words.
pub fn failure_reason(disposition: Disposition, status: Option<u16>) -> String {
    let why = match disposition {
        Disposition::Busy => "the collector is busy",
        Disposition::NoAnswer => "the collector did not answer",
        Disposition::Rejected => "the collector declined",
        Disposition::NotFound => "the collector's address was not found",
        Disposition::Cancelled => "the collector's call was cancelled",
        Disposition::Answered | Disposition::Voicemail => "the collector's leg ended at once",
        Disposition::Failed => "the collector's call failed",
    };
    match status {
        Some(s) => format!("{why} ({s})"),
        None => why.to_string(),
    }
}

/// Frames of bridged audio a media session holds before it drops the
/// oldest (120 ms): the two legs' clocks never wait for each other.
pub const BRIDGE_QUEUE_FRAMES: usize = 6;

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(b: &mut Bridge, at: u64) -> Option<BridgeAction> {
        b.on(
            at,
            BridgeInput::CollectorAnswered {
                conversation_waiting: true,
            },
        )
    }

    #[test]
    fn an_answer_bridges_and_the_collector_hanging_up_ends_the_debtor_leg() {
        let mut b = Bridge::new(1000);
        assert_eq!(b.phase(), BridgePhase::Dialling);
        assert_eq!(
            answered(&mut b, 4000),
            Some(BridgeAction::TransferResult { ok: true })
        );
        assert!(b.is_bridged());
        let a = b.on(
            9500,
            BridgeInput::CollectorEnded {
                disposition: Disposition::Answered,
                status: Some(200),
            },
        );
        assert_eq!(a, Some(BridgeAction::HangUpDebtor));
        assert!(!b.is_bridged());
        assert!(b.answered());
        let r = b.report();
        assert_eq!(r.answered_at_ms, Some(4000));
        assert_eq!(r.bridged_ms, 5500);
        assert_eq!(r.ended_by, Some(BridgeEnd::Collector));
        // The debtor's leg ending afterwards changes nothing.
        assert_eq!(b.on(9600, BridgeInput::DebtorEnded), None);
        assert_eq!(b.report().ended_by, Some(BridgeEnd::Collector));
    }

    #[test]
    fn the_debtor_hanging_up_while_bridged_hangs_up_the_collector() {
        let mut b = Bridge::new(0);
        answered(&mut b, 2000);
        assert_eq!(
            b.on(3000, BridgeInput::DebtorEnded),
            Some(BridgeAction::HangUpCollector)
        );
        assert_eq!(b.report().ended_by, Some(BridgeEnd::Debtor));
        assert_eq!(b.report().bridged_ms, 1000);
        assert!(b.error().is_none());
    }

    #[test]
    fn a_busy_or_declining_or_silent_collector_is_a_failed_transfer_with_its_reason() {
        for (disp, status, words) in [
            (Disposition::Busy, Some(486), "busy (486)"),
            (Disposition::NoAnswer, Some(480), "did not answer (480)"),
            (Disposition::NoAnswer, None, "did not answer"),
            (Disposition::Rejected, Some(603), "declined (603)"),
        ] {
            let mut b = Bridge::new(0);
            let a = b.on(
                5000,
                BridgeInput::CollectorEnded {
                    disposition: disp,
                    status,
                },
            );
            assert_eq!(a, Some(BridgeAction::TransferResult { ok: false }));
            assert_eq!(b.phase(), BridgePhase::Over);
            assert!(!b.answered());
            assert_eq!(b.status(), status);
            let e = b.error().expect("a reason");
            assert!(e.contains(words), "{e}");
            assert_eq!(b.report().ended_by, None);
            assert_eq!(b.report().collector_disposition, Some(disp));
        }
        let mut b = Bridge::new(0);
        assert_eq!(
            b.on(1, BridgeInput::DialFailed("bad uri".into())),
            Some(BridgeAction::TransferResult { ok: false })
        );
        assert!(b.error().unwrap().contains("bad uri"));
    }

    #[test]
    fn a_collector_answering_after_the_conversation_gave_up_is_hung_up() {
        let mut b = Bridge::new(0);
        assert_eq!(
            b.on(
                12_000,
                BridgeInput::CollectorAnswered {
                    conversation_waiting: false
                }
            ),
            Some(BridgeAction::HangUpCollector)
        );
        assert!(!b.answered());
        assert!(!b.is_bridged());
        assert!(b.error().unwrap().contains("timeout"));
    }

    #[test]
    fn the_debtor_leaving_while_the_collector_rings_cancels_it() {
        let mut b = Bridge::new(0);
        assert_eq!(
            b.on(500, BridgeInput::DebtorEnded),
            Some(BridgeAction::HangUpCollector)
        );
        // A late answer on the cancelled leg is hung up too.
        assert_eq!(answered(&mut b, 600), Some(BridgeAction::HangUpCollector));
        assert!(!b.answered());
        // Its end only fills in the report.
        assert_eq!(
            b.on(
                700,
                BridgeInput::CollectorEnded {
                    disposition: Disposition::Cancelled,
                    status: Some(487)
                }
            ),
            None
        );
        assert_eq!(b.status(), Some(487));
    }

    #[test]
    fn collector_headers_carry_the_dialogue_context_the_attempt_and_the_reason() {
        let h = collector_headers(
            &[("X-Duecall-Account".into(), "A-1".into())],
            Some(42),
            "hardship",
        );
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("X-Duecall-Account"), Some("A-1"));
        assert_eq!(get("X-Duecall-Attempt"), Some("42"));
        assert_eq!(get("X-Duecall-Reason"), Some("hardship"));
        assert_eq!(get("X-Duecall-Transfer"), Some("bridge"));
    }

    #[test]
    fn transfer_mode_reads_refer_by_default_and_bridge() {
        let c: TransferConfig = toml::from_str("").unwrap();
        assert_eq!(c.mode, TransferMode::Refer);
        let c: TransferConfig = toml::from_str("mode = \"bridge\"").unwrap();
        assert_eq!(c.mode, TransferMode::Bridge);
        assert!(toml::from_str::<TransferConfig>("mode = \"warm\"").is_err());
        assert!(toml::from_str::<TransferConfig>("mod = \"bridge\"").is_err());
    }
}
