//! The INVITE until its final response: provisional responses (ringing,
//! early media), the ring timeout and our CANCEL, a hang-up asked for by
//! the driver (or implied by a dropped leg, or a shutdown) before the
//! answer, and the mapping of the final status to a disposition.

use std::time::Duration;

use rsipstack::dialog::dialog::DialogState;
use tokio::sync::mpsc;

use super::call::{CallTask, InviteJoin, Setup};
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
        let shutdown = self.shutdown.clone();
        loop {
            // Why to cancel now, if anything asks for it.
            let cancel_now: Option<EndedBy> = tokio::select! {
                r = &mut invite => return self.final_response(r, cancelled_by),
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
                    return Setup::Failed {
                        status: None,
                        disposition: if heard_anything { Disposition::NoAnswer } else { Disposition::Failed },
                        reason: if heard_anything { None } else { Some(FailReason::Network) },
                        ended_by: EndedBy::Timeout,
                        failover: false,
                    };
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

/// The SIP status an rsipstack error carries, if any.
pub(super) fn status_of_error(e: &rsipstack::Error) -> Option<u16> {
    match e {
        rsipstack::Error::DialogError(_, _, code) => Some(code.code()),
        _ => None,
    }
}
