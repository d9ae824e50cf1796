//! The SIP gateway: one rsipstack endpoint (UDP) shared by every call of the
//! process, and one task per call that runs INVITE -> answer -> media ->
//! BYE, with digest auth, CANCEL on a ring timeout, re-INVITEs answered (hold
//! and unhold), blind transfer by REFER followed to its final NOTIFY, and
//! early media (a 18x with SDP starts the media session and the recording;
//! the 200 OK's SDP takes over where it differs; a failure keeps what was
//! recorded). Owns signalling only: media lives in `media_session`, and nothing here
//! decides what to say.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{Dialog, DialogState, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transport::{udp::UdpConnection, SipAddr, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::account::mask_phone;
use crate::config::Config;
use crate::media::g711::Codec;
use crate::outcome::{disposition_for_status, Disposition, EndedBy, FailReason};
use crate::telephony::leg::{CallLeg, LegCommand, LegEvent};
use crate::telephony::media_session::{self, MediaCmd, MediaEnd, MediaParams, MediaSummary};
use crate::telephony::report::{CallReport, RtpTotals, TransferReport};
use crate::telephony::sdp::{self, Direction, Negotiated, OfferParams};

/// Errors of the signalling layer.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// The local address could not be bound.
    #[error("cannot bind SIP on {addr}: {source}")]
    Bind {
        /// Address tried.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An RTP port could not be bound.
    #[error("cannot bind an RTP port on {ip}: {source}")]
    RtpBind {
        /// Address tried.
        ip: IpAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A URI could not be parsed.
    #[error("`{uri}` is not a SIP URI ({reason}); expected e.g. sip:user@127.0.0.1:5070")]
    BadUri {
        /// What was given.
        uri: String,
        /// Parser's reason.
        reason: String,
    },
    /// The stack refused to start.
    #[error("SIP stack: {0}")]
    Stack(String),
}

/// A request to place one call.
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// Request-URI (`sip:debtor@trunk`).
    pub to: String,
    /// From URI; defaults to config `sip.from`, else `sip:duecall@<local>`.
    pub from: Option<String>,
    /// Digest user/password (override config).
    pub credentials: Option<(String, String)>,
    /// Where to write the two-channel recording.
    pub record: Option<PathBuf>,
    /// Extra headers on the INVITE.
    pub headers: Vec<(String, String)>,
    /// Ring timeout (overrides config).
    pub ring_timeout: Option<Duration>,
}

impl DialRequest {
    /// A request to `to` with everything else from the config.
    pub fn to(to: impl Into<String>) -> Self {
        DialRequest {
            to: to.into(),
            from: None,
            credentials: None,
            record: None,
            headers: Vec::new(),
            ring_timeout: None,
        }
    }
}

/// The process's SIP endpoint: places calls, routes in-dialog requests.
pub struct SipGateway {
    dialog_layer: Arc<DialogLayer>,
    local: SocketAddr,
    cfg: Arc<Config>,
    codecs: Vec<Codec>,
    cancel: CancellationToken,
}

impl SipGateway {
    /// Binds the SIP socket (config `sip.local_ip:local_port`, port 0 = the
    /// OS picks) and starts the stack.
    pub async fn start(cfg: Config) -> Result<SipGateway, SipError> {
        let codecs = cfg.codecs().map_err(|e| SipError::Stack(e.to_string()))?;
        let cancel = CancellationToken::new();
        let bind = SocketAddr::new(cfg.sip.local_ip, cfg.sip.local_port);
        let transport_layer = TransportLayer::new(cancel.child_token());
        let conn = UdpConnection::create_connection(bind, None, Some(cancel.child_token()))
            .await
            .map_err(|e| SipError::Bind {
                addr: bind,
                source: std::io::Error::other(e.to_string()),
            })?;
        transport_layer.add_transport(conn.into());
        let option = EndpointOption {
            callid_suffix: Some(cfg.sip.callid_suffix.clone()),
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.child_token())
            .with_transport_layer(transport_layer)
            .with_user_agent(&cfg.sip.user_agent)
            .with_option(option)
            .build();
        let local = endpoint
            .get_addrs()
            .first()
            .and_then(sip_addr_to_socket)
            .ok_or_else(|| SipError::Stack("endpoint has no local address".into()))?;
        let mut incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));

        let ep_cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = endpoint.serve() => {},
                _ = ep_cancel.cancelled() => {},
            }
        });
        // In-dialog requests (BYE, re-INVITE, NOTIFY, ...) go to their dialog;
        // anything else is refused: duecall only places calls.
        let dl = dialog_layer.clone();
        tokio::spawn(async move {
            while let Some(mut tx) = incoming.recv().await {
                match dl.match_dialog(&tx) {
                    Some(Dialog::Invite(mut d)) => {
                        tokio::spawn(async move {
                            if let Err(e) = d.handle(&mut tx).await {
                                tracing::debug!(error = %e, "in-dialog request failed");
                            }
                        });
                    }
                    _ => {
                        let status = match tx.original.method {
                            Method::Options => StatusCode::OK,
                            Method::Ack => continue,
                            Method::Invite => StatusCode::TemporarilyUnavailable,
                            _ => StatusCode::CallTransactionDoesNotExist,
                        };
                        tokio::spawn(async move {
                            tx.reply(status).await.ok();
                        });
                    }
                }
            }
        });
        Ok(SipGateway {
            dialog_layer,
            local,
            cfg: Arc::new(cfg),
            codecs,
            cancel,
        })
    }

    /// Our SIP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Dialogs the SIP stack still holds (calls being set up or in
    /// progress). Back to zero once every call has ended: a dialog left
    /// behind is a leak and would swallow a late request meant for a new call.
    pub fn active_dialogs(&self) -> usize {
        self.dialog_layer.len()
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Places a call and returns its leg at once; the call runs in its own
    /// task and ends with `LegEvent::Ended`.
    pub async fn dial(&self, req: DialRequest) -> Result<CallLeg, SipError> {
        let callee = parse_uri(&req.to)?;
        let from = req
            .from
            .clone()
            .or_else(|| self.cfg.sip.from.clone())
            .unwrap_or_else(|| format!("sip:duecall@{}", self.local));
        let caller = parse_uri(&from)?;
        let contact_user = req
            .credentials
            .as_ref()
            .map(|c| c.0.clone())
            .or_else(|| self.cfg.sip.user.clone())
            .unwrap_or_else(|| "duecall".into());
        let contact = parse_uri(&format!("sip:{contact_user}@{}", self.local))?;
        let credential = req
            .credentials
            .clone()
            .or_else(|| self.cfg.sip.user.clone().zip(self.cfg.sip.password.clone()))
            .map(|(username, password)| Credential {
                username,
                password,
                realm: None,
                auth_username: None,
            });
        let destination = self
            .cfg
            .proxy_addr()
            .map_err(|e| SipError::Stack(e.to_string()))?
            .map(SipAddr::from);
        let rtp = UdpSocket::bind(SocketAddr::new(self.cfg.sip.local_ip, 0))
            .await
            .map_err(|source| SipError::RtpBind {
                ip: self.cfg.sip.local_ip,
                source,
            })?;
        let rtp_port = rtp
            .local_addr()
            .map_err(|source| SipError::RtpBind {
                ip: self.cfg.sip.local_ip,
                source,
            })?
            .port();
        let offer_params = OfferParams {
            local_ip: self.cfg.sip.local_ip,
            rtp_port,
            session_id: rand::random::<u32>() as u64,
            session_version: 1,
            codecs: self.codecs.clone(),
            dtmf_payload_type: self.cfg.media.dtmf_payload_type,
            ptime: 20,
            direction: Direction::SendRecv,
        };
        let offer = sdp::build_offer(&offer_params);
        let headers: Vec<Header> = req
            .headers
            .iter()
            .map(|(k, v)| Header::Other(k.clone(), v.clone()))
            .collect();
        let opt = InviteOption {
            caller,
            callee,
            contact,
            destination,
            credential,
            content_type: Some("application/sdp".into()),
            offer: Some(offer.into_bytes()),
            headers: if headers.is_empty() {
                None
            } else {
                Some(headers)
            },
            ..Default::default()
        };
        let (state_tx, state_rx) = self.dialog_layer.new_dialog_state_channel();
        let (dialog, invite) = self
            .dialog_layer
            .do_invite_async(opt, state_tx)
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let call_id = dialog.id().call_id.clone();
        let (ev_tx, ev_rx) = mpsc::channel(1024);
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        tracing::info!(call_id = %call_id, to = %mask_uri(&req.to), "dialling");
        let task = CallTask {
            dialog,
            dialog_layer: self.dialog_layer.clone(),
            cfg: self.cfg.clone(),
            req,
            offer_params,
            rtp: Some(rtp),
            events: ev_tx,
            call_id: call_id.clone(),
            early: None,
        };
        tokio::spawn(task.run(invite, state_rx, cmd_rx));
        Ok(CallLeg {
            call_id,
            events: ev_rx,
            commands: cmd_tx,
        })
    }

    /// Stops the endpoint (calls in progress lose their signalling).
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

impl Drop for SipGateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn sip_addr_to_socket(a: &SipAddr) -> Option<SocketAddr> {
    a.addr.to_string().parse().ok()
}

fn parse_uri(s: &str) -> Result<rsipstack::sip::Uri, SipError> {
    let s = s.trim();
    let with_scheme = if s.starts_with("sip:") || s.starts_with("sips:") {
        s.to_string()
    } else {
        format!("sip:{s}")
    };
    rsipstack::sip::Uri::try_from(with_scheme.as_str()).map_err(|e| SipError::BadUri {
        uri: s.to_string(),
        reason: e.to_string(),
    })
}

/// Masks the user part of a SIP URI for logs (`sip:+1******67@host`).
pub fn mask_uri(uri: &str) -> String {
    let (scheme, rest) = uri.split_once(':').unwrap_or(("sip", uri));
    match rest.split_once('@') {
        Some((user, host)) => format!("{scheme}:{}@{host}", mask_phone(user)),
        None => uri.to_string(),
    }
}

type InviteJoin = rsipstack::platform::JoinHandle<rsipstack::dialog::invitation::InviteAsyncResult>;

struct CallTask {
    dialog: InviteDialog,
    dialog_layer: Arc<DialogLayer>,
    cfg: Arc<Config>,
    req: DialRequest,
    offer_params: OfferParams,
    rtp: Option<UdpSocket>,
    events: mpsc::Sender<LegEvent>,
    call_id: String,
    /// Media started on a 18x's SDP before the answer (early media), with
    /// what it was negotiated from.
    early: Option<(Running, Negotiated)>,
}

/// Where the call is while it is being set up.
enum Setup {
    Answered(rsipstack::sip::Response),
    Failed {
        status: Option<u16>,
        disposition: Disposition,
        reason: Option<FailReason>,
        ended_by: EndedBy,
    },
}

/// A running media session as the call task holds it. The session can end
/// by itself (media timeout, socket failure) while the call task waits on
/// other things, so its result is kept once taken: the task's handle is
/// awaited exactly once, whichever way the call ends.
struct Running {
    media_cmd: mpsc::Sender<MediaCmd>,
    media_stop: CancellationToken,
    media: MediaJoin,
}

enum MediaJoin {
    Running(tokio::task::JoinHandle<MediaSummary>),
    /// The session ended (its summary, None if its task panicked).
    Ended(Option<MediaSummary>),
}

impl Running {
    /// Resolves when the session ends by itself; after that, never again.
    /// Cancel-safe: dropping it mid-wait loses nothing.
    async fn ended_by_itself(&mut self) -> Option<MediaEnd> {
        match &mut self.media {
            MediaJoin::Running(h) => {
                let r = h.await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "media task failed");
                }
                let end = r.as_ref().map(|s| s.end).unwrap_or(MediaEnd::SocketError);
                self.media = MediaJoin::Ended(r.ok());
                Some(end)
            }
            MediaJoin::Ended(_) => std::future::pending().await,
        }
    }

    /// Stops the session (if it still runs) and returns its summary.
    async fn stop(self) -> Option<MediaSummary> {
        self.media_stop.cancel();
        match self.media {
            MediaJoin::Running(h) => match h.await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "media task failed");
                    None
                }
            },
            MediaJoin::Ended(s) => s,
        }
    }
}

impl CallTask {
    async fn run(
        mut self,
        invite: InviteJoin,
        mut states: rsipstack::dialog::dialog::DialogStateReceiver,
        mut cmds: mpsc::Receiver<LegCommand>,
    ) {
        let started_at = Utc::now();
        let ring_timeout = self
            .req
            .ring_timeout
            .unwrap_or(Duration::from_secs(self.cfg.sip.ring_timeout_s));
        let setup = self
            .setup(invite, &mut states, &mut cmds, ring_timeout)
            .await;

        let mut report = CallReport {
            call_id: self.call_id.clone(),
            to: self.req.to.clone(),
            disposition: Disposition::Failed,
            reason: None,
            sip_status: None,
            codec: None,
            started_at,
            answered_at: None,
            ended_at: started_at,
            duration_ms: 0,
            ended_by: EndedBy::Us,
            rtp: RtpTotals::default(),
            dtmf: Vec::new(),
            transfer: None,
            recording: None,
            pacing: None,
        };
        let resp = match setup {
            Setup::Failed {
                status,
                disposition,
                reason,
                ended_by,
            } => {
                report.sip_status = status;
                report.disposition = disposition;
                report.reason = reason;
                report.ended_by = ended_by;
                // An announcement before a failure ("not in service") was
                // early media: its recording and packets stay with the attempt.
                if let Some((running, n)) = self.early.take() {
                    report.codec = Some(n.codec.name().to_string());
                    if let Some(s) = running.stop().await {
                        report.rtp = s.rtp;
                        report.recording = s.recording.map(|r| r.path);
                    }
                }
                report.ended_at = Utc::now();
                self.finish(report).await;
                return;
            }
            Setup::Answered(resp) => resp,
        };
        let answered_at = Utc::now();
        report.answered_at = Some(answered_at);
        report.sip_status = Some(resp.status_code.code());
        report.disposition = Disposition::Answered;

        // The answer's SDP decides the media; one we cannot use ends the call
        // at once (BYE) as failed/no-common-codec rather than hanging.
        let body = String::from_utf8_lossy(&resp.body).to_string();
        let early = self.early.take();
        let negotiated = match (&early, body.trim().is_empty()) {
            // A 200 without SDP confirms the early session (RFC 3261 13.2.1:
            // the answer was in the 18x).
            (Some((_, n)), true) => Ok(n.clone()),
            _ => sdp::parse(&body).and_then(|s| sdp::negotiate(&s, &self.offer_params.codecs)),
        };
        let negotiated = match negotiated {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "answer SDP unusable: hanging up");
                if let Some((running, _)) = early {
                    if let Some(s) = running.stop().await {
                        report.recording = s.recording.map(|r| r.path);
                    }
                }
                self.dialog.hangup().await.ok();
                report.disposition = Disposition::Failed;
                report.reason = Some(FailReason::NoCommonCodec);
                report.ended_at = Utc::now();
                self.finish(report).await;
                return;
            }
        };
        report.codec = Some(negotiated.codec.name().to_string());
        let _ = self
            .events
            .send(LegEvent::Answered {
                codec: negotiated.codec.name(),
            })
            .await;

        let mut running = match early {
            // Early media goes on into the call (same recording); the 200's
            // SDP wins where it differs from the 18x's.
            Some((running, was)) => {
                if was.remote_rtp != negotiated.remote_rtp {
                    let _ = running
                        .media_cmd
                        .send(MediaCmd::Remote(negotiated.remote_rtp))
                        .await;
                }
                if (was.codec, was.payload_type, was.dtmf_payload_type)
                    != (
                        negotiated.codec,
                        negotiated.payload_type,
                        negotiated.dtmf_payload_type,
                    )
                {
                    let _ = running
                        .media_cmd
                        .send(MediaCmd::Format {
                            codec: negotiated.codec,
                            payload_type: negotiated.payload_type,
                            dtmf_payload_type: negotiated.dtmf_payload_type,
                        })
                        .await;
                }
                if was.direction != negotiated.direction {
                    let _ = running
                        .media_cmd
                        .send(MediaCmd::Hold(!negotiated.direction.sends()))
                        .await;
                }
                running
            }
            None => match self.start_media(&negotiated) {
                Some(r) => r,
                None => {
                    report.ended_at = Utc::now();
                    self.finish(report).await;
                    return;
                }
            },
        };
        if negotiated.direction != Direction::SendRecv {
            let _ = running
                .media_cmd
                .send(MediaCmd::Hold(!negotiated.direction.sends()))
                .await;
        }

        let (ended_by, media_end) = self
            .connected(&mut running, &mut states, &mut cmds, &mut report)
            .await;
        let summary = running.stop().await;
        report.ended_by = ended_by;
        report.ended_at = Utc::now();
        report.duration_ms = (report.ended_at - answered_at).num_milliseconds().max(0) as u64;
        if let Some(s) = summary {
            report.rtp = s.rtp;
            report.dtmf = s.dtmf;
            report.recording = s.recording.map(|r| r.path);
            report.pacing = Some(s.pacing);
            match media_end.unwrap_or(s.end) {
                MediaEnd::Timeout => {
                    report.disposition = Disposition::Failed;
                    report.reason = Some(FailReason::MediaTimeout);
                }
                MediaEnd::SocketError => {
                    report.disposition = Disposition::Failed;
                    report.reason = Some(FailReason::Network);
                }
                MediaEnd::Stopped => {}
            }
        }
        self.dialog_layer.remove_dialog(&self.dialog.id());
        self.finish(report).await;
    }

    /// Starts the RTP session on `n` (once per call: it takes the socket).
    fn start_media(&mut self, n: &Negotiated) -> Option<Running> {
        let socket = self.rtp.take()?;
        let (media_cmd, media_rx) = mpsc::channel(64);
        let media_stop = CancellationToken::new();
        let params = MediaParams {
            socket,
            remote: n.remote_rtp,
            codec: n.codec,
            payload_type: n.payload_type,
            dtmf_payload_type: n.dtmf_payload_type,
            jitter_frames: self.cfg.media.jitter_frames,
            record: self.req.record.clone(),
            media_timeout: Duration::from_secs(self.cfg.media.media_timeout_s),
        };
        let media = MediaJoin::Running(tokio::spawn(media_session::run(
            params,
            media_rx,
            self.events.clone(),
            media_stop.clone(),
        )));
        Some(Running {
            media_cmd,
            media_stop,
            media,
        })
    }

    /// A 18x: early media starts on its SDP (played into the recording, not
    /// an answer); a later 18x with a different SDP moves it.
    async fn early_media(&mut self, resp: &rsipstack::sip::Response) {
        if resp.body.is_empty() {
            return;
        }
        let body = String::from_utf8_lossy(&resp.body);
        let n = match sdp::parse(&body).and_then(|s| sdp::negotiate(&s, &self.offer_params.codecs))
        {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(call_id = %self.call_id, error = %e, "18x SDP unusable: no early media");
                return;
            }
        };
        match self.early.as_mut() {
            Some((running, was)) => {
                if was.remote_rtp != n.remote_rtp {
                    let _ = running.media_cmd.send(MediaCmd::Remote(n.remote_rtp)).await;
                }
                *was = Negotiated {
                    remote_rtp: n.remote_rtp,
                    ..was.clone()
                };
            }
            None => {
                if let Some(r) = self.start_media(&n) {
                    tracing::info!(call_id = %self.call_id, status = resp.status_code.code(), codec = n.codec.name(), "early media");
                    self.early = Some((r, n));
                }
            }
        }
    }

    async fn finish(&self, report: CallReport) {
        tracing::info!(
            call_id = %report.call_id,
            disposition = report.disposition.as_str(),
            status = ?report.sip_status,
            duration_ms = report.duration_ms,
            "call ended"
        );
        let _ = self.events.send(LegEvent::Ended(Box::new(report))).await;
    }

    /// INVITE until a final response, cancelling on the ring timeout or a
    /// hang-up command.
    async fn setup(
        &mut self,
        mut invite: InviteJoin,
        states: &mut rsipstack::dialog::dialog::DialogStateReceiver,
        cmds: &mut mpsc::Receiver<LegCommand>,
        ring_timeout: Duration,
    ) -> Setup {
        let ring_deadline = tokio::time::sleep(ring_timeout);
        tokio::pin!(ring_deadline);
        let mut cancelled_by: Option<EndedBy> = None;
        let mut heard_anything = false;
        let mut give_up: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            tokio::select! {
                r = &mut invite => {
                    let r = match r {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(error = %e, "invite task failed");
                            return Setup::Failed { status: None, disposition: Disposition::Failed, reason: Some(FailReason::Network), ended_by: EndedBy::Us };
                        }
                    };
                    return match r {
                        Ok((_id, Some(resp))) => {
                            let code = resp.status_code.code();
                            if (200..300).contains(&code) {
                                if let Some(by) = cancelled_by {
                                    // 2xx crossed our CANCEL: the stack BYEs it.
                                    return Setup::Failed { status: Some(code), disposition: if by == EndedBy::Timeout { Disposition::NoAnswer } else { Disposition::Cancelled }, reason: None, ended_by: by };
                                }
                                Setup::Answered(resp)
                            } else {
                                let (mut disposition, reason) = disposition_for_status(code);
                                let ended_by = match cancelled_by {
                                    Some(by) => by,
                                    None => EndedBy::Them,
                                };
                                if code == 487 && cancelled_by == Some(EndedBy::Us) {
                                    disposition = Disposition::Cancelled;
                                }
                                Setup::Failed { status: Some(code), disposition, reason, ended_by }
                            }
                        }
                        Ok((_id, None)) => Setup::Failed { status: None, disposition: Disposition::Failed, reason: Some(FailReason::Network), ended_by: EndedBy::Timeout },
                        Err(e) => {
                            tracing::info!(call_id = %self.call_id, error = %e, "INVITE failed");
                            let status = status_of_error(&e);
                            match status {
                                Some(code) => {
                                    let (d, r) = disposition_for_status(code);
                                    Setup::Failed { status: Some(code), disposition: d, reason: r, ended_by: EndedBy::Them }
                                }
                                None => Setup::Failed { status: None, disposition: Disposition::Failed, reason: Some(FailReason::Network), ended_by: EndedBy::Timeout },
                            }
                        }
                    };
                }
                Some(st) = states.recv() => {
                    match st {
                        DialogState::Trying(_) => heard_anything = true,
                        DialogState::Early(_, resp) => {
                            heard_anything = true;
                            let _ = self.events.send(LegEvent::Ringing).await;
                            self.early_media(&resp).await;
                        }
                        DialogState::Terminated(_, reason) => {
                            tracing::debug!(?reason, "terminated during setup");
                        }
                        _ => {}
                    }
                }
                _ = &mut ring_deadline, if cancelled_by.is_none() => {
                    tracing::info!(call_id = %self.call_id, "ring timeout: cancelling");
                    cancelled_by = Some(EndedBy::Timeout);
                    self.dialog.cancel().await.ok();
                    if !heard_anything {
                        // Nothing ever answered: CANCEL cannot be sent (RFC 3261
                        // 9.1); do not wait for Timer B as well.
                        give_up = Some(Box::pin(tokio::time::sleep(Duration::from_secs(2))));
                    } else {
                        give_up = Some(Box::pin(tokio::time::sleep(Duration::from_secs(32))));
                    }
                }
                _ = async { match give_up.as_mut() { Some(s) => s.await, None => std::future::pending().await } } => {
                    return Setup::Failed {
                        status: None,
                        disposition: if heard_anything { Disposition::NoAnswer } else { Disposition::Failed },
                        reason: if heard_anything { None } else { Some(FailReason::Network) },
                        ended_by: EndedBy::Timeout,
                    };
                }
                Some(cmd) = cmds.recv(), if cancelled_by.is_none() => {
                    if let LegCommand::Hangup = cmd {
                        cancelled_by = Some(EndedBy::Us);
                        self.dialog.cancel().await.ok();
                        give_up = Some(Box::pin(tokio::time::sleep(Duration::from_secs(if heard_anything { 32 } else { 2 }))));
                    }
                    // Play/transfer before the answer make no sense; dropped.
                }
            }
        }
    }

    /// The answered call: commands in, dialog events in, until someone hangs up.
    async fn connected(
        &mut self,
        running: &mut Running,
        states: &mut rsipstack::dialog::dialog::DialogStateReceiver,
        cmds: &mut mpsc::Receiver<LegCommand>,
        report: &mut CallReport,
    ) -> (EndedBy, Option<MediaEnd>) {
        let mut session_version = self.offer_params.session_version;
        let mut transfer: Option<TransferReport> = None;
        let mut transfer_deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut cmds_open = true;
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
                            // re-INVITE (hold/unhold, new address) or UPDATE.
                            let offer = String::from_utf8_lossy(&req.body).to_string();
                            let mut p = self.offer_params.clone();
                            session_version += 1;
                            p.session_version = session_version;
                            // `negotiate` gives our side's direction: a peer
                            // that holds us (sendonly) leaves us recvonly.
                            let body = match sdp::parse(&offer).and_then(|s| sdp::negotiate(&s, &self.offer_params.codecs)) {
                                Ok(n) => {
                                    let _ = running.media_cmd.send(MediaCmd::Remote(n.remote_rtp)).await;
                                    let _ = running.media_cmd.send(MediaCmd::Hold(!n.direction.sends())).await;
                                    sdp::build_answer(&p, &n)
                                }
                                // No SDP (a re-INVITE asking for our offer) or one
                                // we cannot read: answer with our current session.
                                Err(_) => sdp::build_offer(&p),
                            };
                            let body = body.into_bytes();
                            let hdrs = vec![Header::ContentType("application/sdp".into())];
                            handle.respond(StatusCode::OK, Some(hdrs), Some(body)).await.ok();
                        }
                        DialogState::Notify(_, req, handle) => {
                            handle.reply(StatusCode::OK).await.ok();
                            if let (Some(t), Some((code, terminated))) = (transfer.as_mut(), parse_sipfrag_notify(&req)) {
                                if code >= 200 || terminated {
                                    t.final_status = Some(code);
                                    t.ok = (200..300).contains(&code);
                                    if !t.ok { t.error = Some(format!("transferee reported {code}")); }
                                    transfer_deadline = None;
                                    let _ = self.events.send(LegEvent::TransferResult { ok: t.ok, status: Some(code) }).await;
                                    if t.ok {
                                        // The transferee is with the agent now: our leg ends.
                                        // `reply` only queues the 200 for the NOTIFY; give it
                                        // time to leave before the BYE, or a strict peer sees
                                        // the BYE first and aborts the call.
                                        tokio::time::sleep(Duration::from_millis(200)).await;
                                        self.dialog.hangup().await.ok();
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
                cmd = cmds.recv(), if cmds_open => {
                    match cmd {
                        None => { cmds_open = false; }
                        Some(LegCommand::Hangup) => {
                            self.dialog.hangup().await.ok();
                            break (EndedBy::Us, None);
                        }
                        Some(LegCommand::Play { id, pcm }) => { let _ = running.media_cmd.send(MediaCmd::Play(id, pcm)).await; }
                        Some(LegCommand::ClearPlayQueue) => { let _ = running.media_cmd.send(MediaCmd::Clear).await; }
                        Some(LegCommand::SendDtmf(d)) => { let _ = running.media_cmd.send(MediaCmd::Dtmf(d)).await; }
                        Some(LegCommand::Transfer { target, headers }) => {
                            let refer_to = refer_to_with_headers(&target, &headers);
                            let mut t = TransferReport { target: target.clone(), ok: false, refer_status: None, final_status: None, error: None };
                            tracing::info!(call_id = %self.call_id, target = %mask_uri(&target), "transferring (REFER)");
                            match self.dialog.refer(refer_to, None, None).await {
                                Ok(Some(resp)) => {
                                    let code = resp.status_code.code();
                                    t.refer_status = Some(code);
                                    if (200..300).contains(&code) {
                                        transfer_deadline = Some(Box::pin(tokio::time::sleep(Duration::from_secs(self.cfg.sip.transfer_timeout_s))));
                                    } else {
                                        t.error = Some(format!("REFER refused with {code}"));
                                        let _ = self.events.send(LegEvent::TransferResult { ok: false, status: Some(code) }).await;
                                    }
                                }
                                Ok(None) => {
                                    t.error = Some("REFER got no response".into());
                                    let _ = self.events.send(LegEvent::TransferResult { ok: false, status: None }).await;
                                }
                                Err(e) => {
                                    t.error = Some(format!("REFER failed: {e}"));
                                    let _ = self.events.send(LegEvent::TransferResult { ok: false, status: status_of_error(&e) }).await;
                                }
                            }
                            transfer = Some(t);
                        }
                    }
                }
                _ = async { match transfer_deadline.as_mut() { Some(s) => s.await, None => std::future::pending().await } } => {
                    transfer_deadline = None;
                    if let Some(t) = transfer.as_mut() {
                        t.error = Some("no final NOTIFY before the transfer timeout".into());
                    }
                    let _ = self.events.send(LegEvent::TransferResult { ok: false, status: None }).await;
                }
                Some(end) = running.ended_by_itself() => {
                    // The media task only ends by itself on a timeout or a
                    // socket failure: the callee must not be left on a dead line.
                    tracing::info!(call_id = %self.call_id, ?end, "media ended: hanging up");
                    self.dialog.hangup().await.ok();
                    break (EndedBy::Timeout, Some(end));
                }
            }
        };
        report.transfer = transfer;
        result
    }
}

/// Builds `<sip:agent@host?X-A=1&X-B=2>` (RFC 3261 19.1.5 URI headers,
/// values percent-escaped) so a transferee that copies them hands the
/// context to the agent.
pub fn refer_to_with_headers(target: &str, headers: &[(String, String)]) -> String {
    let t = target.trim().trim_start_matches('<').trim_end_matches('>');
    let t = if t.starts_with("sip:") || t.starts_with("sips:") {
        t.to_string()
    } else {
        format!("sip:{t}")
    };
    if headers.is_empty() {
        return format!("<{t}>");
    }
    let q: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{}={}", escape_hvalue(k), escape_hvalue(v)))
        .collect();
    format!("<{t}?{}>", q.join("&"))
}

fn escape_hvalue(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/:+$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The status line of a NOTIFY's message/sipfrag body, and whether the
/// subscription is terminated.
pub fn parse_sipfrag_notify(req: &rsipstack::sip::Request) -> Option<(u16, bool)> {
    let body = std::str::from_utf8(&req.body).ok()?;
    let line = body
        .lines()
        .find(|l| l.trim_start().starts_with("SIP/2.0"))?;
    let code: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let terminated = req.headers.iter().any(|h| {
        h.to_string()
            .to_ascii_lowercase()
            .starts_with("subscription-state:")
            && h.to_string().to_ascii_lowercase().contains("terminated")
    });
    Some((code, terminated))
}

fn status_of_error(e: &rsipstack::Error) -> Option<u16> {
    match e {
        rsipstack::Error::DialogError(_, _, code) => Some(code.code()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_carries_context_headers_escaped() {
        let r = refer_to_with_headers(
            "sip:agent@127.0.0.1:5070",
            &[
                ("X-Duecall-Case".into(), "c 1&2".into()),
                ("X-Duecall-Intent".into(), "hardship".into()),
            ],
        );
        assert_eq!(
            r,
            "<sip:agent@127.0.0.1:5070?X-Duecall-Case=c%201%262&X-Duecall-Intent=hardship>"
        );
        assert_eq!(refer_to_with_headers("agent@h", &[]), "<sip:agent@h>");
    }

    #[test]
    fn masked_uri_hides_the_number() {
        assert_eq!(mask_uri("sip:+14155550167@trunk"), "sip:+1********67@trunk");
    }
}
