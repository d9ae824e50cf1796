//! The INVITE until its final response: provisional responses (ringing,
//! early media), the ring timeout and our CANCEL, a hang-up asked for by
//! the driver (or implied by a dropped leg, or a shutdown) before the
//! answer, a special information tone (SIT) in early media and our CANCEL
//! after it, and the mapping of the final status (and the SIT) to a
//! disposition.

use std::time::Duration;

use rsipstack::dialog::dialog::DialogState;
use tokio::sync::mpsc;

use super::call::{CallTask, InviteJoin, Setup};
use crate::media::sit::{Sit, SitKind};
use crate::outcome::{disposition_for_status, Disposition, EndedBy, FailReason};
use crate::telephony::leg::{LegCommand, LegEvent};

/// After our CANCEL, how long to wait for the INVITE's final response when
/// the far end had answered provisionally (it must send 487), and when it
/// had sent nothing at all (CANCEL cannot even be sent, RFC 3261 9.1).
const CANCEL_WAIT_HEARD: Duration = Duration::from_secs(32);
const CANCEL_WAIT_SILENT: Duration = Duration::from_secs(2);
/// How long a trunk server may stay silent (not even 100 Trying) before
/// the INVITE goes to the trunk's next server, when it has one.
pub const FAILOVER_SILENCE: Duration = Duration::from_secs(3);
/// After a SIT in early media, how long the INVITE's final response may
/// take before our CANCEL: the announcement that follows the tone tells a
/// machine nothing more, and the far end may play it until the ring timeout.
pub const SIT_GRACE: Duration = Duration::from_secs(3);

impl CallTask {
    /// INVITE until a final response, cancelling on the ring timeout, a
    /// hang-up command, a dropped leg or a shutdown.
    pub(super) async fn setup(
        &mut self,
        mut invite: InviteJoin,
        states: &mut rsipstack::dialog::dialog::DialogStateReceiver,
        cmds: &mut mpsc::Receiver<LegCommand>,
        ring_timeout: Duration,
    ) -> Setup {
        let ring_deadline = tokio::time::sleep(ring_timeout);
        tokio::pin!(ring_deadline);
        // A server that says nothing at all this long is passed over when
        // the trunk has another.
        let silence = tokio::time::sleep(FAILOVER_SILENCE);
        tokio::pin!(silence);
        let may_fail_over = !self.next_targets.is_empty();
        let mut cancelled_by: Option<EndedBy> = None;
        let mut heard_anything = false;
        let mut give_up: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        // Set once a SIT is heard: the CANCEL after it, if nothing ends the
        // INVITE first.
        let mut sit_deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut cancelled_for_sit = false;
        let shutdown = self.shutdown.clone();
        loop {
            // Why to cancel now, if anything asks for it.
            let cancel_now: Option<EndedBy> = tokio::select! {
                r = &mut invite => {
                    let setup = self.final_response(r, cancelled_by);
                    return after_sit(setup, self.heard_sit, cancelled_for_sit);
                }
                Some(st) = states.recv() => {
                    match st {
                        DialogState::Trying(_) => heard_anything = true,
                        DialogState::Early(_, resp) => {
                            heard_anything = true;
                            self.events.control(LegEvent::Ringing);
                            self.early_media(&resp).await;
                        }
                        DialogState::Terminated(_, reason) => {
                            tracing::debug!(?reason, "terminated during setup");
                        }
                        _ => {}
                    }
                    None
                }
                _ = &mut ring_deadline, if cancelled_by.is_none() => {
                    tracing::info!(call_id = %self.call_id, "ring timeout: cancelling");
                    Some(EndedBy::Timeout)
                }
                _ = async { match give_up.as_mut() { Some(s) => s.await, None => std::future::pending().await } } => {
                    let setup = Setup::Failed {
                        status: None,
                        disposition: if heard_anything { Disposition::NoAnswer } else { Disposition::Failed },
                        reason: if heard_anything { None } else { Some(FailReason::Network) },
                        ended_by: EndedBy::Timeout,
                        failover: false,
                    };
                    return after_sit(setup, self.heard_sit, cancelled_for_sit);
                }
                Some(sit) = next_sit(&mut self.sit_rx), if self.heard_sit.is_none() => {
                    tracing::info!(call_id = %self.call_id, kind = sit.kind.as_str(), "special information tone in early media");
                    self.heard_sit = Some(sit.kind);
                    sit_deadline = Some(Box::pin(tokio::time::sleep(SIT_GRACE)));
                    None
                }
                _ = async { match sit_deadline.as_mut() { Some(s) => s.await, None => std::future::pending().await } }, if cancelled_by.is_none() => {
                    tracing::info!(call_id = %self.call_id, "no final response after the SIT: cancelling");
                    cancelled_for_sit = true;
                    Some(EndedBy::Us)
                }
                _ = &mut silence, if may_fail_over && !heard_anything && cancelled_by.is_none() => {
                    tracing::info!(call_id = %self.call_id, "no answer from this trunk server");
                    return Setup::Failed {
                        status: None,
                        disposition: Disposition::Failed,
                        reason: Some(FailReason::Network),
                        ended_by: EndedBy::Timeout,
                        failover: true,
                    };
                }
                _ = shutdown.cancelled(), if cancelled_by.is_none() => {
                    tracing::info!(call_id = %self.call_id, "shutting down: cancelling");
                    Some(EndedBy::Us)
                }
                cmd = cmds.recv(), if cancelled_by.is_none() => match cmd {
                    Some(LegCommand::Hangup) => Some(EndedBy::Us),
                    None => {
                        tracing::info!(call_id = %self.call_id, "leg dropped before the answer: cancelling");
                        Some(EndedBy::Us)
                    }
                    // Play/transfer before the answer make no sense; dropped.
                    Some(_) => None,
                },
            };
            if let Some(by) = cancel_now {
                cancelled_by = Some(by);
                self.dialog.cancel().await.ok();
                // Nothing ever answered: CANCEL cannot be sent (RFC 3261
                // 9.1); do not wait for Timer B as well.
                let wait = if heard_anything {
                    CANCEL_WAIT_HEARD
                } else {
                    CANCEL_WAIT_SILENT
                };
                give_up = Some(Box::pin(tokio::time::sleep(wait)));
            }
        }
    }

    /// The INVITE's outcome as a set-up result.
    fn final_response(
        &self,
        r: Result<rsipstack::dialog::invitation::InviteAsyncResult, impl std::fmt::Display>,
        cancelled_by: Option<EndedBy>,
    ) -> Setup {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "invite task failed");
                return Setup::Failed {
                    status: None,
                    disposition: Disposition::Failed,
                    reason: Some(FailReason::Network),
                    ended_by: EndedBy::Us,
                    failover: false,
                };
            }
        };
        match r {
            Ok((_id, Some(resp))) => {
                let code = resp.status_code.code();
                if (200..300).contains(&code) {
                    if let Some(by) = cancelled_by {
                        // 2xx crossed our CANCEL: the stack BYEs it.
                        return Setup::Failed {
                            status: Some(code),
                            disposition: if by == EndedBy::Timeout {
                                Disposition::NoAnswer
                            } else {
                                Disposition::Cancelled
                            },
                            reason: None,
                            ended_by: by,
                            failover: false,
                        };
                    }
                    return Setup::Answered(resp);
                }
                let (mut disposition, reason) = disposition_for_status(code);
                let ended_by = cancelled_by.unwrap_or(EndedBy::Them);
                if code == 487 && cancelled_by == Some(EndedBy::Us) {
                    disposition = Disposition::Cancelled;
                }
                Setup::Failed {
                    status: Some(code),
                    disposition,
                    reason,
                    ended_by,
                    failover: code == 503 && cancelled_by.is_none(),
                }
            }
            Ok((_id, None)) => Setup::Failed {
                status: None,
                disposition: Disposition::Failed,
                reason: Some(FailReason::Network),
                ended_by: EndedBy::Timeout,
                failover: cancelled_by.is_none(),
            },
            Err(e) => {
                tracing::info!(call_id = %self.call_id, error = %e, "INVITE failed");
                match status_of_error(&e) {
                    Some(code) => {
                        let (d, r) = disposition_for_status(code);
                        Setup::Failed {
                            status: Some(code),
                            disposition: d,
                            reason: r,
                            ended_by: EndedBy::Them,
                            failover: code == 503 && cancelled_by.is_none(),
                        }
                    }
                    None => Setup::Failed {
                        status: None,
                        disposition: Disposition::Failed,
                        reason: Some(FailReason::Network),
                        ended_by: EndedBy::Timeout,
                        failover: cancelled_by.is_none(),
                    },
                }
            }
        }
    }
}

/// The next SIT the early media session heard (never, without a session
/// listening).
async fn next_sit(rx: &mut Option<mpsc::Receiver<Sit>>) -> Option<Sit> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What a SIT says of a call that then fails, when its code says anything:
/// vacant code and intercept are a dead number (`not-found`, reason
/// `dead-number`), no circuit and reorder a network failure (`failed`,
/// reason `no-circuit` or `reorder`). `None` for a SIT of no known code.
pub fn sit_disposition(kind: SitKind) -> Option<(Disposition, Option<FailReason>)> {
    match kind {
        SitKind::VacantCode | SitKind::Intercept => {
            Some((Disposition::NotFound, Some(FailReason::DeadNumber)))
        }
        SitKind::NoCircuit => Some((Disposition::Failed, Some(FailReason::NoCircuit))),
        SitKind::Reorder => Some((Disposition::Failed, Some(FailReason::Reorder))),
        SitKind::Other => None,
    }
}

/// A failed set-up as the SIT heard before it says (pure): the SIT's
/// disposition wins over the final status; a SIT of no known code leaves
/// the status's, or, when our CANCEL after it ended the INVITE, makes it
/// `no-answer` as the ring timeout would have. No SIT: unchanged.
pub(super) fn after_sit(setup: Setup, sit: Option<SitKind>, cancelled_for_sit: bool) -> Setup {
    let (
        Some(kind),
        Setup::Failed {
            status,
            disposition,
            reason,
            ended_by,
            failover,
        },
    ) = (sit, &setup)
    else {
        return setup;
    };
    let (disposition, reason) = match sit_disposition(kind) {
        Some(d) => d,
        None if cancelled_for_sit => (Disposition::NoAnswer, None),
        None => (*disposition, *reason),
    };
    Setup::Failed {
        status: *status,
        disposition,
        reason,
        ended_by: *ended_by,
        // The network answered: another server would say the same.
        failover: *failover && sit_disposition(kind).is_none(),
    }
}

/// The SIP status an rsipstack error carries, if any.
pub(super) fn status_of_error(e: &rsipstack::Error) -> Option<u16> {
    match e {
        rsipstack::Error::DialogError(_, _, code) => Some(code.code()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(status: u16) -> Setup {
        let (disposition, reason) = disposition_for_status(status);
        Setup::Failed {
            status: Some(status),
            disposition,
            reason,
            ended_by: EndedBy::Them,
            failover: false,
        }
    }

    fn words(s: &Setup) -> (Disposition, Option<FailReason>) {
        match s {
            Setup::Failed {
                disposition,
                reason,
                ..
            } => (*disposition, *reason),
            Setup::Answered(_) => panic!("answered"),
        }
    }

    #[test]
    fn a_vacant_or_intercept_sit_makes_any_failure_a_dead_number() {
        for kind in [SitKind::VacantCode, SitKind::Intercept] {
            for status in [404, 480, 487, 500, 503] {
                assert_eq!(
                    words(&after_sit(failed(status), Some(kind), false)),
                    (Disposition::NotFound, Some(FailReason::DeadNumber)),
                    "{kind} then {status}"
                );
            }
        }
    }

    #[test]
    fn no_circuit_and_reorder_sits_are_failures_with_their_reason() {
        assert_eq!(
            words(&after_sit(failed(480), Some(SitKind::NoCircuit), false)),
            (Disposition::Failed, Some(FailReason::NoCircuit))
        );
        assert_eq!(
            words(&after_sit(failed(404), Some(SitKind::Reorder), true)),
            (Disposition::Failed, Some(FailReason::Reorder))
        );
    }

    #[test]
    fn without_a_known_code_the_status_stands_unless_we_cancelled_for_the_tone() {
        assert_eq!(
            words(&after_sit(failed(480), None, false)),
            (Disposition::NoAnswer, None)
        );
        assert_eq!(
            words(&after_sit(failed(404), Some(SitKind::Other), false)),
            (Disposition::NotFound, None)
        );
        assert_eq!(
            words(&after_sit(failed(487), Some(SitKind::Other), true)),
            (Disposition::NoAnswer, None)
        );
    }
}
