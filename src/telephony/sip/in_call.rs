//! The answered call: the driver's commands (play, DTMF, transfer, hang
//! up), the peer's in-dialog requests (BYE, re-INVITE, NOTIFY, ...), the
//! transfer's deadline and the media session's own end, until one of them
//! ends the call. A dropped leg or a shutdown hangs up (BYE).

use std::time::Duration;

use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::sip::{Header, StatusCode};
use tokio::sync::mpsc;

use super::call::{CallTask, Running};
use super::mask_uri;
use super::setup::status_of_error;
use super::transfer::{parse_sipfrag_notify, refer_to};
use crate::outcome::EndedBy;
use crate::telephony::leg::{LegCommand, LegEvent};
use crate::telephony::media_session::{MediaCmd, MediaEnd};
use crate::telephony::report::{CallReport, TransferReport};
use crate::telephony::sdp::{self, Negotiated};

/// What the peer's re-INVITE (or UPDATE) offer comes to.
enum Reoffer {
    /// A usable offer: answer it, move the media.
    Accept(Negotiated),
    /// No body: the peer asks for our offer (RFC 3261 14.2).
    AskingForOffer,
    /// An offer we cannot use (no common codec, unreadable): 488, and the
    /// call goes on as it was.
    Refuse(String),
}

impl CallTask {
    /// The answered call: commands in, dialog events in, until someone hangs up.
    pub(super) async fn connected(
        &mut self,
        running: &mut Running,
        states: &mut rsipstack::dialog::dialog::DialogStateReceiver,
        cmds: &mut mpsc::Receiver<LegCommand>,
        report: &mut CallReport,
    ) -> (EndedBy, Option<MediaEnd>) {
        let mut session_version = self.offer_params.session_version;
        let mut transfer: Option<TransferReport> = None;
        let mut transfer_deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let shutdown = self.shutdown.clone();
        let result = loop {
            tokio::select! {
                st = states.recv() => {
                    let Some(st) = st else { break (EndedBy::Them, None) };
                    match st {
                        DialogState::Terminated(_, reason) => {
                            let by = match reason {
                                TerminatedReason::UasBye => EndedBy::Them,
                                TerminatedReason::Timeout => EndedBy::Timeout,
                                _ => EndedBy::Us,
                            };
                            break (by, None);
                        }
                        DialogState::Updated(_, req, handle) => {
                            match self.reoffer(&req.body) {
                                Reoffer::Accept(n) => {
                                    session_version += 1;
                                    let mut p = self.offer_params.clone();
                                    p.session_version = session_version;
                                    running.negotiated(&n).await;
                                    // `negotiate` gives our side's direction: a peer
                                    // that holds us (sendonly) leaves us recvonly.
                                    let body = sdp::build_answer(&p, &n).into_bytes();
                                    let hdrs = vec![Header::ContentType("application/sdp".into())];
                                    handle.respond(StatusCode::OK, Some(hdrs), Some(body)).await.ok();
                                }
                                Reoffer::AskingForOffer => {
                                    session_version += 1;
                                    let mut p = self.offer_params.clone();
                                    p.session_version = session_version;
                                    let body = sdp::build_offer(&p).into_bytes();
                                    let hdrs = vec![Header::ContentType("application/sdp".into())];
                                    handle.respond(StatusCode::OK, Some(hdrs), Some(body)).await.ok();
                                }
                                Reoffer::Refuse(why) => {
                                    tracing::info!(call_id = %self.call_id, reason = %why, "re-INVITE refused (488): the call goes on as it was");
                                    handle.reply(StatusCode::NotAcceptableHere).await.ok();
                                }
                            }
                        }
                        DialogState::Notify(_, req, handle) => {
                            handle.reply(StatusCode::OK).await.ok();
                            if let (Some(t), Some((code, terminated))) = (transfer.as_mut(), parse_sipfrag_notify(&req)) {
                                if code >= 200 || terminated {
                                    t.final_status = Some(code);
                                    t.ok = (200..300).contains(&code);
                                    if !t.ok { t.error = Some(format!("transferee reported {code}")); }
                                    transfer_deadline = None;
                                    self.events.control(LegEvent::TransferResult { ok: t.ok, status: Some(code) });
                                    if t.ok {
                                        // The transferee is with the agent now: our leg ends.
                                        // `reply` only queues the 200 for the NOTIFY; give it
                                        // time to leave before the BYE, or a strict peer sees
                                        // the BYE first and aborts the call.
                                        tokio::time::sleep(Duration::from_millis(200)).await;
                                        self.hang_up().await;
                                        break (EndedBy::Us, None);
                                    }
                                }
                            }
                        }
                        DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle)
                        | DialogState::Message(_, _, handle) => { handle.reply(StatusCode::OK).await.ok(); }
                        DialogState::Refer(_, _, handle) => { handle.reply(StatusCode::NotAcceptableHere).await.ok(); }
                        _ => {}
                    }
                }
                cmd = cmds.recv() => {
                    match cmd {
                        None => {
                            // The driver dropped the leg (an error, a crash of
                            // its task): nobody will end this call but us.
                            tracing::info!(call_id = %self.call_id, "leg dropped: hanging up");
                            self.hang_up().await;
                            break (EndedBy::Us, None);
                        }
                        Some(LegCommand::Hangup) => {
                            self.hang_up().await;
                            break (EndedBy::Us, None);
                        }
                        Some(LegCommand::Play { id, pcm }) => { let _ = running.media_cmd.send(MediaCmd::Play(id, pcm)).await; }
                        Some(LegCommand::ClearPlayQueue) => { let _ = running.media_cmd.send(MediaCmd::Clear).await; }
                        Some(LegCommand::SendDtmf(d)) => { let _ = running.media_cmd.send(MediaCmd::Dtmf(d)).await; }
                        // A bridged frame must never hold this task up: a full queue drops it.
                        Some(LegCommand::Feed(pcm)) => { let _ = running.media_cmd.try_send(MediaCmd::Feed(pcm)); }
                        Some(LegCommand::Transfer { target, headers }) => {
                            let t = self.start_transfer(&target, &headers).await;
                            if t.ok_so_far() {
                                transfer_deadline = Some(Box::pin(tokio::time::sleep(Duration::from_secs(self.cfg.sip.transfer_timeout_s))));
                            }
                            transfer = Some(t.report);
                        }
                    }
                }
                _ = async { match transfer_deadline.as_mut() { Some(s) => s.await, None => std::future::pending().await } } => {
                    transfer_deadline = None;
                    if let Some(t) = transfer.as_mut() {
                        t.error = Some("no final NOTIFY before the transfer timeout".into());
                    }
                    self.events.control(LegEvent::TransferResult { ok: false, status: None });
                }
                Some(end) = running.ended_by_itself() => {
                    // The media task only ends by itself on a timeout or a
                    // socket failure: the callee must not be left on a dead line.
                    tracing::info!(call_id = %self.call_id, ?end, "media ended: hanging up");
                    self.hang_up().await;
                    break (EndedBy::Timeout, Some(end));
                }
                addr = trunk_gone(&mut self.closed, self.signalling) => {
                    // Nothing more can come from the trunk on this call (a BYE
                    // included): end it, and try a BYE on a new connection.
                    tracing::warn!(call_id = %self.call_id, trunk = %addr, "the trunk's connection closed mid-call: ending the call");
                    self.hang_up().await;
                    break (EndedBy::Them, Some(MediaEnd::SocketError));
                }
                _ = shutdown.cancelled() => {
                    tracing::info!(call_id = %self.call_id, "shutting down: hanging up");
                    self.hang_up().await;
                    break (EndedBy::Us, None);
                }
            }
        };
        report.transfer = transfer;
        result
    }

    /// Judges the SDP of a re-INVITE or UPDATE.
    fn reoffer(&self, body: &[u8]) -> Reoffer {
        if self.bridge.is_some() {
            // Direct WebRTC media is negotiated once (no ICE restart yet).
            return Reoffer::Refuse("re-INVITE on direct WebRTC media".into());
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Reoffer::AskingForOffer;
        }
        match sdp::parse_bytes(body).and_then(|s| sdp::negotiate(&s, &self.offer_params.codecs)) {
            Ok(n) => Reoffer::Accept(n),
            Err(e) => Reoffer::Refuse(e.to_string()),
        }
    }

    /// Sends the REFER (after checking the target: one that could break a
    /// header is refused here, never sent) and reports a refusal at once.
    async fn start_transfer(&self, target: &str, headers: &[(String, String)]) -> TransferStart {
        let mut t = TransferReport {
            target: target.escape_debug().to_string(),
            ok: false,
            refer_status: None,
            final_status: None,
            error: None,
            bridge: None,
        };
        let value = match refer_to(target, headers) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "transfer target refused");
                t.error = Some(format!("transfer target refused: {e}"));
                self.events.control(LegEvent::TransferResult {
                    ok: false,
                    status: None,
                });
                return TransferStart {
                    report: t,
                    pending: false,
                };
            }
        };
        tracing::info!(call_id = %self.call_id, target = %mask_uri(target), "transferring (REFER)");
        let mut pending = false;
        match self.dialog.refer(value, None, None).await {
            Ok(Some(resp)) => {
                let code = resp.status_code.code();
                t.refer_status = Some(code);
                if (200..300).contains(&code) {
                    pending = true;
                } else {
                    t.error = Some(format!("REFER refused with {code}"));
                    self.events.control(LegEvent::TransferResult {
                        ok: false,
                        status: Some(code),
                    });
                }
            }
            Ok(None) => {
                t.error = Some("REFER got no response".into());
                self.events.control(LegEvent::TransferResult {
                    ok: false,
                    status: None,
                });
            }
            Err(e) => {
                t.error = Some(format!("REFER failed: {e}"));
                self.events.control(LegEvent::TransferResult {
                    ok: false,
                    status: status_of_error(&e),
                });
            }
        }
        TransferStart { report: t, pending }
    }
}

/// Resolves when the connection to `signalling` closes (never for UDP).
async fn trunk_gone(
    closed: &mut tokio::sync::broadcast::Receiver<std::net::SocketAddr>,
    signalling: Option<std::net::SocketAddr>,
) -> std::net::SocketAddr {
    let Some(trunk) = signalling else {
        return std::future::pending().await;
    };
    loop {
        match closed.recv().await {
            Ok(a) if a == trunk => return a,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                return std::future::pending().await
            }
        }
    }
}

/// A REFER sent (or refused before sending).
struct TransferStart {
    report: TransferReport,
    /// Accepted (202): its final NOTIFY is awaited.
    pending: bool,
}

impl TransferStart {
    fn ok_so_far(&self) -> bool {
        self.pending
    }
}
