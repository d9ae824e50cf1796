//! The SIP gateway: one rsipstack endpoint (UDP) shared by every call of the
//! process, and one task per call that runs INVITE -> answer -> media ->
//! BYE, with digest auth, CANCEL on a ring timeout, re-INVITEs answered (hold
//! and unhold, a codec change; an offer we cannot use gets 488 and the call
//! goes on), blind transfer by REFER followed to its final NOTIFY, and early
//! media (a 18x with SDP starts the media session and the recording; the
//! 200 OK's SDP takes over where it differs; a failure keeps what was
//! recorded).
//!
//! Owns signalling and the life of each call: a call always ends with a
//! report, and the callee is never left on a dead line (a dropped leg, a
//! shutdown or a dead media path send CANCEL or BYE; a BYE nobody answers
//! ends the call after [`BYE_WAIT`] all the same). Requests outside any
//! dialog get a cheap answer inline, rate-limited, never a task each.
//! Media lives in `media_session`, and nothing here decides what to say.
//!
//! Files: `mod.rs` the gateway (start, dial, requests outside dialogs,
//! shutdown); `call.rs` one call's task from dial to report; `setup.rs` the
//! INVITE until its final response; `in_call.rs` the answered call;
//! `resolve.rs` where a trunk named in DNS is (RFC 3263);
//! `transfer.rs` REFER; `uri.rs` URIs and headers checked at the boundary.

mod call;
mod dial;
mod error;
mod in_call;
pub mod options;
pub mod register;
pub mod resolve;
mod setup;
pub mod stats;
mod tls;
mod transfer;
mod transport;
mod trunks;
mod uri;
#[cfg(test)]
mod ws_tests;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::dialog::Dialog;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transport::{SipAddr, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, SipTransport, WebRtcMedia};
use crate::media::g711::Codec;
use crate::telephony::leg::{event_channel, CallLeg};
use crate::telephony::sdp::{self, Direction, OfferParams};
use crate::telephony::webrtc::{loopback_of, DirectMedia, WebRtcCodec};

pub use call::BYE_WAIT;
pub use dial::DialRequest;
pub use error::SipError;
pub use options::trunk_gauge;
pub use register::registration_gauge;
pub use stats::{trunk_snapshots, TrunkSnapshot};
pub use transfer::{parse_sipfrag_notify, refer_to, refer_to_with_headers};
pub use uri::{mask_uri, validate_header, validate_uri};

/// How long [`SipGateway::shutdown`] lets calls end (CANCEL or BYE
/// answered) before the endpoint stops.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Answers to requests outside any dialog: at most this many a second
/// (after a burst of twice that); the rest get no answer at all.
pub const STRAY_ANSWERS_PER_SECOND: u32 = 20;

/// How long start-up waits for the first registration before calls go
/// ahead anyway (the registration keeps retrying in the background).
pub const FIRST_REGISTER_WAIT: Duration = Duration::from_secs(10);

/// The process's SIP endpoint: places calls, routes in-dialog requests.
pub struct SipGateway {
    dialog_layer: Arc<DialogLayer>,
    local: SocketAddr,
    cfg: Arc<Config>,
    codecs: Vec<Codec>,
    /// Looks up a trunk named by host name (None for an IP address).
    resolver: Option<Arc<resolve::Resolver>>,
    /// Stops the endpoint (signalling ends).
    cancel: CancellationToken,
    /// Ends every call (each call task holds a child of it).
    calls: CancellationToken,
    tracker: TaskTracker,
    /// The registration tasks, pings and keep-alives, ended after the calls.
    background: TaskTracker,
    /// Each registering trunk's name and registration state.
    registrations: Vec<(String, Arc<register::RegState>)>,
    /// Each trunk's OPTIONS ping state, by trunk index (empty without
    /// `[sip] options_ping_s`; None for a trunk without an address).
    pings: Vec<Option<Arc<options::TrunkState>>>,
    /// The transport to the primary trunk (and, without trunks, to the
    /// callee's host); each trunk may use its own.
    transport: SipTransport,
    /// The trunks, their calls in flight and failures (empty: calls route
    /// by the Request-URI).
    trunks: Arc<trunks::Trunks>,
    /// Remote addresses of stream connections that closed.
    closed: tokio::sync::broadcast::Sender<SocketAddr>,
}

impl SipGateway {
    /// Binds the SIP socket (config `sip.local_ip:local_port`, port 0 = the
    /// OS picks) and starts the stack.
    pub async fn start(cfg: Config) -> Result<SipGateway, SipError> {
        let codecs = cfg.codecs().map_err(|e| SipError::Stack(e.to_string()))?;
        let proxy = cfg
            .proxy_host()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let by_name = |a: &str| {
            crate::config::parse_proxy("", a).is_ok_and(|p| p.host.parse::<IpAddr>().is_err())
        };
        let resolver = match proxy {
            Some(p) if p.host.parse::<IpAddr>().is_err() => {
                Some(Arc::new(resolve::Resolver::new(&cfg.sip.dns_servers)?))
            }
            _ if cfg.trunk_addresses().iter().any(|a| by_name(a)) => {
                Some(Arc::new(resolve::Resolver::new(&cfg.sip.dns_servers)?))
            }
            _ => None,
        };
        let trunks =
            trunks::Trunks::new(cfg.trunks(), cfg.primary_trunk().map(|t| t.name).as_deref());
        let cancel = CancellationToken::new();
        let bind = SocketAddr::new(cfg.sip.local_ip, cfg.sip.local_port);
        let transport_layer = TransportLayer::new(cancel.child_token());
        let sip_transport = cfg.sip_transport();
        // Every transport some trunk speaks: UDP is always bound, a TCP
        // listener when a trunk speaks TCP, the TLS connector when one
        // speaks TLS (trunks on different transports share the endpoint).
        let speaks = |k: SipTransport| {
            sip_transport == k || trunks.cfg.iter().any(|t| t.effective_transport() == k)
        };
        if speaks(SipTransport::Tls) {
            tls::install(tls::client_config(&cfg.sip)?);
        }
        transport::bind(&transport_layer, bind, speaks(SipTransport::Tcp), &cancel).await?;
        if let Some(path) = cfg.ws_path() {
            transport_layer.set_ws_path(path);
        }
        // A closed trunk connection ends its calls: the stack's idle timer
        // (5 min without a byte read) must not close it under a long call.
        transport_layer.set_stream_idle_timeout(transport::STREAM_IDLE);
        let (closed, _) = tokio::sync::broadcast::channel(64);
        let option = EndpointOption {
            callid_suffix: Some(cfg.sip.callid_suffix.clone()),
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.child_token())
            .with_transport_layer(transport_layer)
            .with_user_agent(&cfg.sip.user_agent)
            .with_option(option)
            .with_transport_inspector(Box::new(transport::ClosedConnections {
                tx: closed.clone(),
            }))
            .build();
        let local = endpoint
            .get_addrs()
            .first()
            .and_then(|a| a.addr.to_string().parse().ok())
            .ok_or_else(|| SipError::Stack("endpoint has no local address".into()))?;
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let inner = endpoint.inner.clone();

        let ep_cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = endpoint.serve() => {},
                _ = ep_cancel.cancelled() => {},
            }
        });
        tokio::spawn(route_incoming(incoming, dialog_layer.clone()));
        let mut gw = SipGateway {
            dialog_layer,
            local,
            cfg: Arc::new(cfg),
            codecs,
            resolver,
            cancel,
            calls: CancellationToken::new(),
            tracker: TaskTracker::new(),
            background: TaskTracker::new(),
            registrations: Vec::new(),
            pings: Vec::new(),
            transport: sip_transport,
            trunks,
            closed,
        };
        // A CRLF keep-alive on each trunk's connection (TCP, TLS), unless
        // `[sip] keepalive_s = 0`.
        // (WebSocket: the proxy pings, RFC 6455 ping frames, answered by
        // the stack; a CRLF would be a malformed SIP frame there.)
        for t in gw.trunks.cfg.clone() {
            let over = t.effective_transport();
            let Some(address) = t.address.as_deref() else {
                continue;
            };
            if !matches!(over, SipTransport::Tcp | SipTransport::Tls) || gw.cfg.sip.keepalive_s == 0
            {
                continue;
            }
            if let Some(target) = gw.targets_of("trunk", address, over).await?.pop_front() {
                gw.background.spawn(transport::keepalive(
                    inner.clone(),
                    t.name.clone(),
                    target,
                    Duration::from_secs(gw.cfg.sip.keepalive_s),
                    gw.calls.child_token(),
                ));
            }
        }
        if gw.cfg.sip.options_ping_s > 0 {
            gw.start_pings(inner.clone()).await?;
        }
        if gw.trunks.cfg.iter().any(|t| t.register) {
            gw.start_registrations(inner).await?;
        }
        Ok(gw)
    }

    /// Starts the OPTIONS pings to each trunk with an address and waits
    /// for their first answers together (at most [`options::PING_TIMEOUT`]
    /// and a second), so a campaign's first dial already knows which
    /// trunks are there.
    async fn start_pings(
        &mut self,
        endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    ) -> Result<(), SipError> {
        let mut firsts = Vec::new();
        let mut pings = Vec::new();
        for idx in 0..self.trunks.cfg.len() {
            let t = self.trunks.cfg[idx].clone();
            let target = match t.address.as_deref() {
                Some(a) => self
                    .targets_of("trunk", a, t.effective_transport())
                    .await?
                    .pop_front(),
                None => None,
            };
            let Some(target) = target else {
                pings.push(None);
                continue;
            };
            let state = Arc::new(options::TrunkState::new(self.trunks.stats[idx].clone()));
            let (first_tx, first_rx) = tokio::sync::oneshot::channel();
            self.background.spawn(options::run(
                endpoint.clone(),
                t.name.clone(),
                target,
                std::time::Duration::from_secs(self.cfg.sip.options_ping_s),
                state.clone(),
                self.calls.child_token(),
                first_tx,
            ));
            firsts.push(first_rx);
            pings.push(Some(state));
        }
        if firsts.is_empty() {
            return Err(SipError::Stack(
                "`[sip] options_ping_s` needs a trunk: set [sip] outbound_proxy or a [[trunk]] address"
                    .into(),
            ));
        }
        self.pings = pings;
        let _ = tokio::time::timeout(
            options::PING_TIMEOUT + std::time::Duration::from_secs(1),
            futures_join_all(firsts),
        )
        .await;
        Ok(())
    }

    /// Whether the primary trunk (the one tried first) answers its OPTIONS
    /// pings now (None without `[sip] options_ping_s`, or before the first
    /// ping ended).
    pub fn trunk_up(&self) -> Option<bool> {
        let idx = self.trunks.primary?;
        self.ping_up(idx)
    }

    fn ping_up(&self, idx: usize) -> Option<bool> {
        self.pings.get(idx)?.as_ref()?.up()
    }

    /// Which trunks their OPTIONS pings say are gone, by trunk index.
    fn pings_down(&self) -> Vec<bool> {
        (0..self.trunks.cfg.len())
            .map(|i| self.ping_up(i) == Some(false))
            .collect()
    }

    /// Each pinged trunk's name and whether it answers its pings now.
    pub fn trunks_up(&self) -> Vec<(String, Option<bool>)> {
        (0..self.trunks.cfg.len())
            .filter(|&i| self.pings.get(i).is_some_and(|p| p.is_some()))
            .map(|i| (self.trunks.cfg[i].name.clone(), self.ping_up(i)))
            .collect()
    }

    /// Starts one registration task per trunk with `register = true` and
    /// waits for their first REGISTERs together (up to
    /// [`FIRST_REGISTER_WAIT`]): a refusal by any registrar fails start-up
    /// naming that trunk's user; one that does not answer in time is
    /// retried in the background while calls go ahead.
    async fn start_registrations(
        &mut self,
        endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    ) -> Result<(), SipError> {
        let registering: Vec<usize> = (0..self.trunks.cfg.len())
            .filter(|&i| self.trunks.cfg[i].register)
            .collect();
        let mut firsts = Vec::new();
        for idx in registering {
            match self.start_registration(endpoint.clone(), idx).await {
                Ok(first) => firsts.push(first),
                Err(e) => {
                    self.shutdown();
                    return Err(e);
                }
            }
        }
        let deadline = tokio::time::Instant::now() + FIRST_REGISTER_WAIT;
        for (name, user_key, registrar, rx) in firsts {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(register::FirstOutcome::Registered)) => {}
                Ok(Ok(register::FirstOutcome::Refused { status })) => {
                    self.shutdown();
                    return Err(SipError::RegisterRefused {
                        user_key,
                        registrar,
                        status,
                    });
                }
                _ => {
                    tracing::warn!(
                        trunk = %name,
                        "not registered at the trunk yet; calls go ahead while the registration retries"
                    );
                }
            }
        }
        Ok(())
    }

    /// Starts the registration task of trunk `idx`; returns what start-up
    /// waits on: the trunk's name, its user's config key, the registrar and
    /// the first REGISTER's outcome.
    async fn start_registration(
        &mut self,
        endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
        idx: usize,
    ) -> Result<
        (
            String,
            String,
            String,
            tokio::sync::oneshot::Receiver<register::FirstOutcome>,
        ),
        SipError,
    > {
        let t = self.trunks.cfg[idx].clone();
        let legacy = self.cfg.trunk.is_empty();
        let key = |k: &str| {
            if legacy {
                format!("[sip] {k}")
            } else {
                format!("trunk.{}.{k}", t.name)
            }
        };
        let (Some(user), Some(password)) = (t.user.clone(), t.password.clone()) else {
            return Err(SipError::Stack(format!(
                "`register = true` needs {} and password",
                key("user")
            )));
        };
        let transport = t.effective_transport();
        let targets = match &t.address {
            Some(a) => self.targets_of(&key("address"), a, transport).await?,
            None => VecDeque::new(),
        };
        let first = targets
            .front()
            .and_then(|a| a.addr.to_string().parse().ok());
        let (server, outbound_proxy) = match &t.registrar {
            Some(r) => (uri::parse_uri(r)?, first),
            None => {
                let address = t.address.as_deref().ok_or_else(|| {
                    SipError::Stack(format!(
                        "`register = true` needs {} or an address",
                        key("registrar")
                    ))
                })?;
                let p = crate::config::parse_proxy(&key("address"), address)
                    .map_err(|e| SipError::Stack(e.to_string()))?;
                let host = if p.host.contains(':') {
                    format!("[{}]", p.host)
                } else {
                    p.host.clone()
                };
                let uri = match p.port {
                    Some(port) => format!("sip:{host}:{port}"),
                    None => format!("sip:{host}"),
                };
                let via_dns = p.host.parse::<IpAddr>().is_err();
                (uri::parse_uri(&uri)?, first.filter(|_| via_dns))
            }
        };
        let mut server = server;
        if transport != SipTransport::Udp
            && !server
                .params
                .iter()
                .any(|p| matches!(p, rsipstack::sip::Param::Transport(_)))
        {
            server.params.push(rsipstack::sip::Param::Transport(
                transport::stack_transport(transport),
            ));
        }
        let contact = (transport != SipTransport::Udp)
            .then(|| uri::parse_uri(&transport::contact_uri(&user, self.local, transport)))
            .transpose()?;
        let registrar = server.to_string();
        let state = Arc::new(register::RegState::new(self.trunks.stats[idx].clone()));
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let r = register::Registrar {
            endpoint,
            server,
            outbound_proxy,
            credential: rsipstack::dialog::authenticate::Credential {
                username: user,
                password,
                realm: None,
                auth_username: None,
            },
            expires: t
                .register_expires
                .unwrap_or(crate::config::SipConfig::default().register_expires),
            contact,
            trunk: t.name.clone(),
        };
        self.background.spawn(register::run(
            r,
            state.clone(),
            self.calls.child_token(),
            first_tx,
        ));
        self.registrations.push((t.name.clone(), state));
        let user_key = key("user");
        Ok((t.name, user_key, registrar, first_rx))
    }

    /// Whether the gateway is registered at every trunk that registers
    /// (None when none does).
    pub fn registered(&self) -> Option<bool> {
        (!self.registrations.is_empty())
            .then(|| self.registrations.iter().all(|(_, s)| s.registered()))
    }

    /// Each registering trunk's name and whether it is registered now, in
    /// config order.
    pub fn registrations(&self) -> Vec<(String, bool)> {
        self.registrations
            .iter()
            .map(|(n, s)| (n.clone(), s.registered()))
            .collect()
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

    /// Call tasks still running.
    pub fn active_calls(&self) -> usize {
        self.tracker.len()
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Places a call and returns its leg at once; the call runs in its own
    /// task and ends with `LegEvent::Ended`. Dropping the leg hangs up.
    pub async fn dial(&self, req: DialRequest) -> Result<CallLeg, SipError> {
        if self.calls.is_cancelled() {
            return Err(SipError::ShuttingDown);
        }
        let callee = uri::parse_uri(&req.to)?;
        for (k, v) in &req.headers {
            uri::validate_header(k, v)?;
        }
        // The trunks in the order this call tries them, each with its
        // servers (RFC 3263 order): the INVITE fails over along the list.
        let order = self.trunks.order(&self.pings_down());
        if order.is_empty() && !self.trunks.cfg.is_empty() {
            return Err(SipError::TrunksFull);
        }
        let mut targets: VecDeque<call::Target> = VecDeque::new();
        let mut last_err = None;
        for &idx in &order {
            let trunk = &self.trunks.cfg[idx];
            let parts = Arc::new(self.invite_parts(&req, Some(trunk))?);
            let addrs = match &trunk.address {
                None => Ok(VecDeque::new()),
                Some(a) => {
                    self.targets_of("trunk", a, trunk.effective_transport())
                        .await
                }
            };
            match addrs {
                Ok(addrs) if addrs.is_empty() => targets.push_back(call::Target {
                    trunk: Some(idx),
                    addr: None,
                    parts,
                }),
                Ok(addrs) => targets.extend(addrs.into_iter().map(|a| call::Target {
                    trunk: Some(idx),
                    addr: Some(a),
                    parts: parts.clone(),
                })),
                Err(e) => {
                    tracing::warn!(trunk = %trunk.name, error = %e, "trunk address does not resolve");
                    self.trunks.mark_down(idx);
                    last_err = Some(e);
                }
            }
        }
        if self.trunks.cfg.is_empty() {
            targets.push_back(call::Target {
                trunk: None,
                addr: None,
                parts: Arc::new(self.invite_parts(&req, None)?),
            });
        }
        // The first trunk with a free slot (another call may have taken
        // the last one since the order was drawn).
        let mut guard = None;
        while let Some(t) = targets.front() {
            match t.trunk {
                None => break,
                Some(idx) => match self.trunks.acquire(idx) {
                    Some(g) => {
                        guard = Some(g);
                        break;
                    }
                    None => targets.retain(|o| o.trunk != Some(idx)),
                },
            }
        }
        let Some(first) = targets.pop_front() else {
            return Err(last_err.unwrap_or(SipError::TrunksFull));
        };
        let trunk_name = first.trunk.map(|i| self.trunks.cfg[i].name.clone());
        let parts = first.parts.clone();
        let mut destination = first.addr;
        if destination.is_none() && self.transport != SipTransport::Udp {
            // No trunk: straight to the callee's host, over TCP or TLS.
            let mut d = SipAddr::try_from(&callee).map_err(|e| SipError::BadUri {
                uri: mask_uri(&req.to),
                reason: e.to_string(),
            })?;
            d.r#type = Some(transport::stack_transport(self.transport));
            destination = Some(d);
        }
        let signalling = destination
            .as_ref()
            .filter(|d| {
                d.r#type
                    .is_some_and(|t| t != rsipstack::sip::Transport::Udp)
            })
            .and_then(|d| d.get_socketaddr().ok());
        // Direct WebRTC media: the RTP session talks plain RTP over loopback
        // to the WebRTC driver, whose own socket is on `local_ip`.
        let direct = self.cfg.sip.webrtc_media == WebRtcMedia::Direct;
        let rtp_ip = if direct {
            loopback_of(self.cfg.sip.local_ip)
        } else {
            self.cfg.sip.local_ip
        };
        let rtp = UdpSocket::bind(SocketAddr::new(rtp_ip, 0))
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
            ptime: sdp::DEFAULT_PTIME,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            comfort_noise: true,
            srtp: sdp::SdesOffer::for_mode(self.cfg.sip.srtp),
        };
        let (webrtc, offer) = if direct {
            // `[media] codecs` as listed, opus included (validated at load).
            let codecs = self
                .cfg
                .webrtc_codecs()
                .unwrap_or_else(|_| self.codecs.iter().copied().map(WebRtcCodec::G711).collect());
            let (m, offer) = DirectMedia::offer(
                self.cfg.sip.local_ip,
                &codecs,
                self.cfg.media.dtmf_payload_type,
            )
            .await?;
            (Some(m), offer)
        } else {
            (None, sdp::build_offer(&offer_params))
        };
        let headers = call::headers_for(&req, &parts);
        let opt = InviteOption {
            caller: parts.caller.clone(),
            callee,
            contact: parts.contact.clone(),
            destination,
            credential: parts.credential.clone(),
            content_type: Some("application/sdp".into()),
            offer: Some(offer.into_bytes()),
            headers,
            ..Default::default()
        };
        let (state_tx, state_rx) = self.dialog_layer.new_dialog_state_channel();
        let invite_opt = opt.clone();
        let (dialog, invite) = self
            .dialog_layer
            .do_invite_async(opt, state_tx)
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let call_id = dialog.id().call_id.clone();
        let (ev_tx, ev_rx) = event_channel();
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (sit_tx, sit_rx) = mpsc::channel(4);
        tracing::info!(call_id = %call_id, to = %mask_uri(&req.to), trunk = trunk_name.as_deref().unwrap_or("-"), "dialling");
        let task = call::CallTask {
            dialog,
            dialog_layer: self.dialog_layer.clone(),
            cfg: self.cfg.clone(),
            req,
            offer_params,
            rtp: Some(rtp),
            webrtc,
            bridge: None,
            events: ev_tx,
            call_id: call_id.clone(),
            early: None,
            shutdown: self.calls.child_token(),
            invite_opt,
            next_targets: targets,
            trunks: self.trunks.clone(),
            trunk: guard,
            used: trunk_name.into_iter().collect(),
            sit_tx,
            sit_rx: Some(sit_rx),
            heard_sit: None,
            signalling,
            closed: self.closed.subscribe(),
        };
        self.tracker.spawn(task.run(invite, state_rx, cmd_rx));
        Ok(CallLeg {
            call_id,
            events: ev_rx,
            commands: cmd_tx,
        })
    }

    /// The servers of one trunk address reached over `over`, in failover
    /// order (RFC 3263 when it is a host name).
    async fn targets_of(
        &self,
        key: &str,
        address: &str,
        over: SipTransport,
    ) -> Result<VecDeque<SipAddr>, SipError> {
        let p =
            crate::config::parse_proxy(key, address).map_err(|e| SipError::Stack(e.to_string()))?;
        let speak = match over {
            SipTransport::Udp => resolve::Transport::Udp,
            // WebSocket: a named port (the config checks it), the host's
            // A/AAAA records as for TCP.
            SipTransport::Tcp | SipTransport::Ws => resolve::Transport::Tcp,
            SipTransport::Tls => resolve::Transport::Tls,
        };
        let addrs: Vec<SocketAddr> = match (&self.resolver, p.host.parse::<IpAddr>()) {
            (_, Ok(ip)) => vec![SocketAddr::new(ip, p.port.unwrap_or(speak.default_port()))],
            (Some(r), Err(_)) => r
                .targets(&p.host, p.port, None, &[speak])
                .await?
                .into_iter()
                .map(|t| t.addr)
                .collect(),
            (None, Err(_)) => {
                return Err(SipError::Stack(format!(
                    "no resolver for the trunk `{}`",
                    p.host
                )))
            }
        };
        if addrs.len() > 1 {
            tracing::debug!(trunk = %p.host, servers = addrs.len(), "trunk resolved");
        }
        let kind = transport::stack_transport(over);
        Ok(addrs
            .into_iter()
            .map(|a| {
                let mut t = SipAddr::from(a);
                t.r#type = Some(kind);
                t
            })
            .collect())
    }

    /// The From, Contact and digest credential of a call through `trunk`:
    /// the request's own, else the trunk's, else `[sip]`'s. The caller ID
    /// (the trunk's) becomes the From URI's user.
    fn invite_parts(
        &self,
        req: &DialRequest,
        trunk: Option<&crate::config::TrunkConfig>,
    ) -> Result<call::InviteParts, SipError> {
        let sip = &self.cfg.sip;
        let (t_user, t_password) = match trunk {
            Some(t) => (t.user.clone(), t.password.clone()),
            None => (sip.user.clone(), sip.password.clone()),
        };
        let from = req
            .from
            .clone()
            .or_else(|| sip.from.clone())
            .unwrap_or_else(|| format!("sip:duecall@{}", self.local));
        let mut caller = uri::parse_uri(&from)?;
        // The account's or the campaign's caller ID, else the trunk's; a
        // From given in full (`call --from`) is left alone.
        let caller_id = req
            .from
            .is_none()
            .then(|| {
                req.caller_id
                    .clone()
                    .or_else(|| trunk.and_then(|t| t.caller_id.clone()))
            })
            .flatten();
        if let Some(id) = &caller_id {
            uri::validate_header("From", id)?;
            caller.auth = Some(rsipstack::sip::Auth {
                user: id.clone(),
                password: None,
            });
        }
        let mut headers = Vec::new();
        if let Some(t) = trunk {
            if t.pai && caller_id.is_some() {
                headers.push(Header::Other(
                    "P-Asserted-Identity".into(),
                    format!("<{caller}>"),
                ));
            }
            if let Some(p) = t.privacy {
                headers.push(Header::Other("Privacy".into(), p.as_str().into()));
            }
        }
        let contact_user = req
            .credentials
            .as_ref()
            .map(|c| c.0.clone())
            .or_else(|| t_user.clone())
            .unwrap_or_else(|| "duecall".into());
        let over = trunk.map_or(self.transport, |t| t.effective_transport());
        let contact = uri::parse_uri(&if over == SipTransport::Ws {
            transport::contact_uri(&contact_user, self.local, over)
        } else {
            format!("sip:{contact_user}@{}", self.local)
        })?;
        let credential =
            req.credentials
                .clone()
                .or(t_user.zip(t_password))
                .map(
                    |(username, password)| rsipstack::dialog::authenticate::Credential {
                        username,
                        password,
                        realm: None,
                        auth_username: None,
                    },
                );
        Ok(call::InviteParts {
            caller,
            contact,
            credential,
            headers,
        })
    }

    /// Whether every trunk is at its `max_concurrent` (a campaign waits).
    pub fn trunks_full(&self) -> bool {
        self.trunks.all_full()
    }

    /// Whether some trunk may take a call now: not every one is full, and
    /// the OPTIONS pings do not say every trunk is gone.
    pub fn trunks_ready(&self) -> bool {
        let down = self.pings_down();
        !self.trunks_full() && (down.is_empty() || !down.iter().all(|d| *d))
    }

    /// Ends every call (CANCEL before the answer, BYE after: nobody is left
    /// on a dead line; each reports its end), refuses new ones, and stops
    /// the endpoint once they have ended or after [`SHUTDOWN_GRACE`].
    /// Returns at once; [`SipGateway::closed`] waits for the end.
    pub fn shutdown(&self) {
        if self.calls.is_cancelled() {
            return;
        }
        self.calls.cancel();
        self.tracker.close();
        self.background.close();
        let (tracker, background, endpoint) = (
            self.tracker.clone(),
            self.background.clone(),
            self.cancel.clone(),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
                        tracker.wait().await;
                        background.wait().await;
                    })
                    .await;
                    endpoint.cancel();
                });
            }
            Err(_) => endpoint.cancel(),
        }
    }

    /// Waits until [`SipGateway::shutdown`] has stopped the endpoint.
    pub async fn closed(&self) {
        self.cancel.cancelled().await
    }
}

impl Drop for SipGateway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// In-dialog requests (BYE, re-INVITE, NOTIFY, ...) go to their dialog.
/// Anything else comes from outside any call: duecall only places calls.
/// Those are answered inline (OPTIONS 200 for a trunk's keep-alive, INVITE
/// 403, anything else 481), at most [`STRAY_ANSWERS_PER_SECOND`]; beyond
/// that a scanner or a flood gets silence. No task is started for them.
async fn route_incoming(
    mut incoming: rsipstack::transaction::TransactionReceiver,
    dialogs: Arc<DialogLayer>,
) {
    let mut limit = RateLimit::new(STRAY_ANSWERS_PER_SECOND);
    let mut ignored = 0u64;
    while let Some(mut tx) = incoming.recv().await {
        if let Some(Dialog::Invite(mut d)) = dialogs.match_dialog(&tx) {
            tokio::spawn(async move {
                if let Err(e) = d.handle(&mut tx).await {
                    tracing::debug!(error = %e, "in-dialog request failed");
                }
            });
            continue;
        }
        let status = match tx.original.method {
            Method::Ack => continue,
            Method::Options => StatusCode::OK,
            Method::Invite => StatusCode::Forbidden,
            _ => StatusCode::CallTransactionDoesNotExist,
        };
        if limit.admit(tokio::time::Instant::now()) {
            if let Err(e) = tx.reply(status).await {
                tracing::debug!(error = %e, "answer outside a dialog failed");
            }
        } else {
            ignored += 1;
            if ignored.is_power_of_two() {
                tracing::warn!(
                    ignored,
                    "requests outside any call are arriving faster than we answer: ignoring them"
                );
            }
        }
    }
}

/// Waits for every receiver (whatever each yields).
async fn futures_join_all<T>(rxs: Vec<tokio::sync::oneshot::Receiver<T>>) {
    for rx in rxs {
        let _ = rx.await;
    }
}

/// A rate of `per_second` with a burst of twice that (GCRA: the moment the
/// bucket would be empty again, no floating point).
struct RateLimit {
    interval: Duration,
    burst: u32,
    tat: Option<tokio::time::Instant>,
}

impl RateLimit {
    fn new(per_second: u32) -> Self {
        RateLimit {
            interval: Duration::from_secs(1) / per_second.max(1),
            burst: per_second.max(1) * 2,
            tat: None,
        }
    }

    fn admit(&mut self, now: tokio::time::Instant) -> bool {
        let tat = self.tat.unwrap_or(now).max(now);
        if tat > now + self.interval * (self.burst - 1) {
            return false;
        }
        self.tat = Some(tat + self.interval);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stray_answers_are_rate_limited_after_a_burst() {
        let t0 = tokio::time::Instant::now();
        let mut l = RateLimit::new(10);
        let first: usize = (0..100).filter(|_| l.admit(t0)).count();
        assert_eq!(first, 20, "the burst");
        let later: usize = (0..100)
            .filter(|i| l.admit(t0 + Duration::from_millis(10 * i + 10)))
            .count();
        assert_eq!(later, 10, "one second later: ten more");
    }
}
