//! One call's task, from the INVITE to the report: set-up (`setup.rs`), the
//! answer's SDP and the media session, the answered call (`in_call.rs`),
//! then the end: media stopped, dialog removed, report sent. Every way out
//! sends the report, and hangs up first when the far end is still there.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::transport::SipAddr;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{mask_uri, DialRequest};
use crate::config::Config;
use crate::media::sit::{Sit, SitKind};
use crate::outcome::{Disposition, EndedBy, FailReason};
use crate::telephony::leg::{LegCommand, LegEvent, LegEventSender};
use crate::telephony::media_session::{self, MediaCmd, MediaEnd, MediaParams, MediaSummary};
use crate::telephony::report::{CallReport, RtpTotals};
use crate::telephony::sdp::{self, Negotiated, OfferParams};
use crate::telephony::webrtc::{Bridge, DirectMedia, WebRtcError};

/// How long a hang-up waits for the answer to its BYE (or CANCEL) before
/// the call is reported ended anyway; the stack keeps retransmitting in the
/// background until its own timer (32 s) gives up.
pub const BYE_WAIT: Duration = Duration::from_secs(4);
/// How long after the answer a WebRTC callee has to complete ICE and
/// DTLS-SRTP with us (`webrtc_media = "direct"`) before the call fails.
pub const WEBRTC_CONNECT_WAIT: Duration = Duration::from_secs(10);

pub(super) type InviteJoin =
    rsipstack::platform::JoinHandle<rsipstack::dialog::invitation::InviteAsyncResult>;

pub(super) struct CallTask {
    pub(super) dialog: InviteDialog,
    pub(super) dialog_layer: Arc<DialogLayer>,
    pub(super) cfg: Arc<Config>,
    pub(super) req: DialRequest,
    pub(super) offer_params: OfferParams,
    pub(super) rtp: Option<UdpSocket>,
    /// Direct WebRTC media: the engine with our offer, until the answer.
    pub(super) webrtc: Option<DirectMedia>,
    /// Direct WebRTC media: the running driver, from the answer on.
    pub(super) bridge: Option<Bridge>,
    pub(super) events: LegEventSender,
    pub(super) call_id: String,
    /// Media started on a 18x's SDP before the answer (early media), with
    /// what it was negotiated from.
    pub(super) early: Option<(Running, Negotiated)>,
    /// Cancelled when the gateway shuts down: end the call politely.
    pub(super) shutdown: CancellationToken,
    /// The INVITE as first sent, for a failover to the trunk's next server.
    pub(super) invite_opt: InviteOption,
    /// The servers not tried yet: the trunk's in RFC 3263 order, then the
    /// next trunks'.
    pub(super) next_targets: VecDeque<Target>,
    /// The gateway's trunks (a failed trunk is marked down).
    pub(super) trunks: Arc<super::trunks::Trunks>,
    /// The trunk carrying the call now (its slot against `max_concurrent`).
    pub(super) trunk: Option<super::trunks::TrunkGuard>,
    /// The trunks' names the INVITE went through, in order.
    pub(super) used: Vec<String>,
    /// Given to the early media session: the SITs it hears.
    pub(super) sit_tx: mpsc::Sender<Sit>,
    /// Where set-up hears them; dropped after set-up, which stops the
    /// session's detector.
    pub(super) sit_rx: Option<mpsc::Receiver<Sit>>,
    /// The SIT heard in early media, if any.
    pub(super) heard_sit: Option<SitKind>,
    /// The trunk's address when signalling runs over a connection (TCP):
    /// that connection closing ends the call.
    pub(super) signalling: Option<std::net::SocketAddr>,
    /// Remote addresses of connections that closed.
    pub(super) closed: tokio::sync::broadcast::Receiver<std::net::SocketAddr>,
}

/// One server a call may try: of which trunk, where, and the From,
/// Contact and credential that trunk wants.
pub(super) struct Target {
    /// Index into the gateway's trunks (None: no trunks configured).
    pub(super) trunk: Option<usize>,
    /// The server (None: routed by the Request-URI).
    pub(super) addr: Option<SipAddr>,
    /// The INVITE's parts for the trunk.
    pub(super) parts: Arc<InviteParts>,
}

/// What differs in an INVITE from one trunk to the next.
pub(super) struct InviteParts {
    pub(super) caller: rsipstack::sip::Uri,
    pub(super) contact: rsipstack::sip::Uri,
    pub(super) credential: Option<rsipstack::dialog::authenticate::Credential>,
    /// `P-Asserted-Identity`, `Privacy`, as the trunk asks.
    pub(super) headers: Vec<rsipstack::sip::Header>,
}

/// The INVITE's extra headers: the request's, then the trunk's.
pub(super) fn headers_for(
    req: &DialRequest,
    parts: &InviteParts,
) -> Option<Vec<rsipstack::sip::Header>> {
    let h: Vec<rsipstack::sip::Header> = req
        .headers
        .iter()
        .map(|(k, v)| rsipstack::sip::Header::Other(k.clone(), v.clone()))
        .chain(parts.headers.iter().cloned())
        .collect();
    (!h.is_empty()).then_some(h)
}

/// Where the call is while it is being set up.
pub(super) enum Setup {
    Answered(rsipstack::sip::Response),
    Failed {
        status: Option<u16>,
        disposition: Disposition,
        reason: Option<FailReason>,
        ended_by: EndedBy,
        /// The server answered 503 or nothing at all, and nobody cancelled:
        /// the trunk's next server may take the call (RFC 3263 4.3).
        failover: bool,
    },
}

/// A running media session as the call task holds it. The session can end
/// by itself (media timeout, socket failure) while the call task waits on
/// other things, so its result is kept once taken: the task's handle is
/// awaited exactly once, whichever way the call ends.
pub(super) struct Running {
    pub(super) media_cmd: mpsc::Sender<MediaCmd>,
    media_stop: CancellationToken,
    media: MediaJoin,
}

enum MediaJoin {
    Running(tokio::task::JoinHandle<MediaSummary>),
    /// The session ended (its summary, None if its task panicked).
    Ended(Option<Box<MediaSummary>>),
}

impl Running {
    /// Resolves when the session ends by itself; after that, never again.
    /// Cancel-safe: dropping it mid-wait loses nothing.
    pub(super) async fn ended_by_itself(&mut self) -> Option<MediaEnd> {
        match &mut self.media {
            MediaJoin::Running(h) => {
                let r = h.await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "media task failed");
                }
                let end = r.as_ref().map(|s| s.end).unwrap_or(MediaEnd::SocketError);
                self.media = MediaJoin::Ended(r.ok().map(Box::new));
                Some(end)
            }
            MediaJoin::Ended(_) => std::future::pending().await,
        }
    }

    /// Stops the session (if it still runs) and returns its summary.
    pub(super) async fn stop(self) -> Option<MediaSummary> {
        self.media_stop.cancel();
        match self.media {
            MediaJoin::Running(h) => match h.await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "media task failed");
                    None
                }
            },
            MediaJoin::Ended(s) => s.map(|s| *s),
        }
    }

    /// Hands the session a new SDP's media (sends never wait long: the
    /// session drains its commands every tick).
    pub(super) async fn negotiated(&self, n: &Negotiated) {
        let _ = self.media_cmd.send(MediaCmd::Negotiated(n.clone())).await;
    }
}

impl CallTask {
    pub(super) async fn run(
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
        let mut setup = self
            .setup(invite, &mut states, &mut cmds, ring_timeout)
            .await;
        // The next server of the trunk, then the next trunk, in a new
        // transaction with the same Call-ID, while one fails with 503 or
        // silence before any media. The gate's decision is for the call:
        // this is still the same attempt.
        while matches!(setup, Setup::Failed { failover: true, .. }) && self.early.is_none() {
            let current = self.trunk.as_ref().map(|g| g.idx);
            let next_trunk = self.next_targets.front().and_then(|t| t.trunk);
            if current.is_some() && next_trunk != current {
                // The last server of this trunk failed too.
                if let Some(idx) = current {
                    self.trunks.mark_down(idx);
                }
            }
            let Some(next) = self.next_targets.pop_front() else {
                break;
            };
            if next.trunk != current {
                let Some(idx) = next.trunk else { break };
                let Some(guard) = self.trunks.acquire(idx) else {
                    // Full by now: its servers are passed over.
                    self.next_targets.retain(|t| t.trunk != Some(idx));
                    continue;
                };
                // The old trunk's slot is freed as the new one is taken.
                if let Some(old) = current {
                    self.trunks.stats[old].failed_over();
                }
                self.trunk = Some(guard);
                self.used.push(self.trunks.cfg[idx].name.clone());
            }
            let Some(addr) = next.addr else {
                continue;
            };
            tracing::info!(call_id = %self.call_id, next = %addr.addr, trunk = self.used.last().map(String::as_str).unwrap_or("-"), "trunk server failed: trying the next");
            self.dialog_layer.remove_dialog(&self.dialog.id());
            let (state_tx, state_rx) = self.dialog_layer.new_dialog_state_channel();
            let mut opt = self.invite_opt.clone();
            // Each trunk its own transport: a connection's close ends the
            // call only when this server is reached over one.
            self.signalling = addr
                .r#type
                .filter(|t| *t != rsipstack::sip::Transport::Udp)
                .and_then(|_| addr.get_socketaddr().ok());
            opt.destination = Some(addr);
            opt.call_id = Some(self.call_id.clone());
            opt.caller = next.parts.caller.clone();
            opt.contact = next.parts.contact.clone();
            opt.credential = next.parts.credential.clone();
            opt.headers = headers_for(&self.req, &next.parts);
            match self.dialog_layer.do_invite_async(opt, state_tx) {
                Ok((dialog, invite)) => {
                    self.dialog = dialog;
                    states = state_rx;
                    setup = self
                        .setup(invite, &mut states, &mut cmds, ring_timeout)
                        .await;
                }
                Err(e) => {
                    tracing::warn!(call_id = %self.call_id, error = %e, "failover INVITE refused");
                    break;
                }
            }
        }
        match (&setup, self.trunk.as_ref()) {
            (Setup::Failed { failover, .. }, Some(g)) => {
                if *failover {
                    self.trunks.mark_down(g.idx);
                }
                self.trunks.stats[g.idx].failed();
            }
            (Setup::Answered(_), Some(g)) => {
                self.trunks.mark_up(g.idx);
                self.trunks.stats[g.idx].answered();
            }
            _ => {}
        }

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
            rtcp: None,
            sit: self.heard_sit,
            trunks: Vec::new(),
            pacing: None,
        };
        // The answer or the end: the early media's detector stops.
        self.sit_rx = None;
        let resp = match setup {
            Setup::Failed {
                status,
                disposition,
                reason,
                ended_by,
                ..
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
                self.finish(report);
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
        let early = self.early.take();
        let negotiated = match self.webrtc.take() {
            // Direct WebRTC media: the browser's answer, ICE and DTLS first.
            Some(direct) => self.answer_webrtc(direct, &resp.body).await.map_err(|e| {
                let reason = match e {
                    WebRtcError::NotConnected(_) | WebRtcError::Io(_) => FailReason::Network,
                    _ => FailReason::NoCommonCodec,
                };
                (e.to_string(), reason)
            }),
            None => match (&early, resp.body.iter().all(u8::is_ascii_whitespace)) {
                // A 200 without SDP confirms the early session (RFC 3261 13.2.1:
                // the answer was in the 18x).
                (Some((_, n)), true) => Ok(n.clone()),
                _ => sdp::parse_bytes(&resp.body)
                    .and_then(|s| sdp::negotiate_answer(&s, &self.offer_params)),
            }
            .map_err(|e| (e.to_string(), FailReason::NoCommonCodec)),
        };
        let negotiated = match negotiated {
            Ok(n) => n,
            Err((e, reason)) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "answer SDP unusable: hanging up");
                if let Some((running, _)) = early {
                    if let Some(s) = running.stop().await {
                        report.recording = s.recording.map(|r| r.path);
                    }
                }
                self.hang_up().await;
                report.disposition = Disposition::Failed;
                report.reason = Some(reason);
                report.ended_at = Utc::now();
                self.dialog_layer.remove_dialog(&self.dialog.id());
                self.finish(report);
                return;
            }
        };
        // Direct WebRTC media: the browser's codec (opus is transcoded to
        // the session's G.711 by the bridge).
        let codec = match &self.bridge {
            Some(b) => b.agreed().peer_codec.name(),
            None => negotiated.codec.name(),
        };
        report.codec = Some(codec.to_string());
        self.events.control(LegEvent::Answered { codec });

        let mut running = match early {
            // Early media goes on into the call (same recording); the 200's
            // SDP wins where it differs from the 18x's.
            Some((running, was)) => {
                if was != negotiated {
                    running.negotiated(&negotiated).await;
                }
                running
            }
            None => match self.start_media(&negotiated, false) {
                Some(r) => {
                    if negotiated.direction != sdp::Direction::SendRecv {
                        r.negotiated(&negotiated).await;
                    }
                    r
                }
                None => {
                    self.hang_up().await;
                    report.ended_at = Utc::now();
                    self.dialog_layer.remove_dialog(&self.dialog.id());
                    self.finish(report);
                    return;
                }
            },
        };

        let (ended_by, media_end) = self
            .connected(&mut running, &mut states, &mut cmds, &mut report)
            .await;
        let summary = running.stop().await;
        if let Some(bridge) = self.bridge.take() {
            if let Some(st) = bridge.stop().await {
                tracing::info!(call_id = %self.call_id, to_peer = st.to_peer, to_session = st.to_session, dropped = st.dropped_from_session, opus = ?st.opus, "webrtc media ended");
            }
        }
        report.ended_by = ended_by;
        report.ended_at = Utc::now();
        report.duration_ms = (report.ended_at - answered_at).num_milliseconds().max(0) as u64;
        if let Some(s) = summary {
            report.rtp = s.rtp;
            report.dtmf = s.dtmf;
            report.rtcp = s.rtcp;
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
        self.finish(report);
    }

    /// Ends the dialog (BYE once answered, CANCEL before) and waits at most
    /// [`BYE_WAIT`] for the far end to answer: one that never does cannot
    /// hold the call open. The transaction goes on retransmitting in the
    /// background until the stack gives up.
    pub(super) async fn hang_up(&self) {
        let dialog = self.dialog.clone();
        let call_id = self.call_id.clone();
        let bye = tokio::spawn(async move {
            if let Err(e) = dialog.hangup().await {
                tracing::debug!(call_id = %call_id, error = %e, "hang-up not answered cleanly");
            }
        });
        if tokio::time::timeout(BYE_WAIT, bye).await.is_err() {
            tracing::info!(call_id = %self.call_id, "no answer to our BYE/CANCEL: the call ends anyway");
        }
    }

    /// Direct WebRTC media: takes the browser's answer, starts the driver
    /// and waits (at most [`WEBRTC_CONNECT_WAIT`]) for DTLS-SRTP; the media
    /// session then speaks plain RTP to the driver over loopback.
    async fn answer_webrtc(
        &mut self,
        direct: DirectMedia,
        body: &[u8],
    ) -> Result<Negotiated, WebRtcError> {
        let session = match self.rtp.as_ref() {
            Some(s) => s.local_addr()?,
            None => return Err(std::io::Error::other("no RTP socket").into()),
        };
        let (n, mut bridge) = direct.answer(body, session).await?;
        bridge.wait_connected(WEBRTC_CONNECT_WAIT).await?;
        self.bridge = Some(bridge);
        Ok(n)
    }

    /// Starts the RTP session on `n` (once per call: it takes the socket);
    /// `early` media also listens for SITs.
    pub(super) fn start_media(&mut self, n: &Negotiated, early: bool) -> Option<Running> {
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
            sit: early.then(|| self.sit_tx.clone()),
            options: media_session::MediaOptions::negotiated(n, &self.offer_params),
        };
        // On the media clock's own threads (`telephony::media_clock`).
        let media = MediaJoin::Running(crate::telephony::media_clock::spawn(media_session::run(
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
    pub(super) async fn early_media(&mut self, resp: &rsipstack::sip::Response) {
        // Direct WebRTC media starts with the answer (no early media).
        if resp.body.is_empty() || self.webrtc.is_some() {
            return;
        }
        let n = match sdp::parse_bytes(&resp.body)
            .and_then(|s| sdp::negotiate_answer(&s, &self.offer_params))
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
                    let moved = Negotiated {
                        remote_rtp: n.remote_rtp,
                        ..was.clone()
                    };
                    running.negotiated(&moved).await;
                    *was = moved;
                }
            }
            None => {
                if let Some(r) = self.start_media(&n, true) {
                    tracing::info!(call_id = %self.call_id, status = resp.status_code.code(), codec = n.codec.name(), "early media");
                    self.early = Some((r, n));
                }
            }
        }
    }

    pub(super) fn finish(&self, mut report: CallReport) {
        report.trunks = self.used.clone();
        tracing::info!(
            call_id = %report.call_id,
            to = %mask_uri(&report.to),
            disposition = report.disposition.as_str(),
            status = ?report.sip_status,
            duration_ms = report.duration_ms,
            "call ended"
        );
        self.events.control(LegEvent::Ended(Box::new(report)));
    }
}
