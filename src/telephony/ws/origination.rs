//! Placing calls through a media-streaming platform: `[origination]` is an
//! HTTP hook (Twilio's Calls API, Asterisk ARI, a contact centre's own) that
//! asks the platform to dial `{phone}` and stream the answered call back to
//! duecall, naming `{attempt_id}` / `{stream_id}`; the `StreamGateway` then
//! waits for that stream and runs the call over it. No stream within
//! `answer_timeout_s` is `no-answer`; a hook the platform refuses is
//! `failed`. `[origination.transfer]` is the hook that moves a call to a
//! collector (Twilio: update the call with `<Dial><Sip>`; ARI: redirect).
//!
//! Owns the attempt from the hook to the stream's arrival; never decides
//! whether to dial (the gate did) and never logs a phone number in full.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use super::hub::new_stream_id;
pub use super::origination_config::{
    hook_host, OriginationConfig, ORIGINATION_VALUES, TRANSFER_VALUES,
};

use super::driver::{self, CallSide};
use super::hook::{HookError, HttpHook};
use super::hub::StreamHub;
use super::server;
use crate::account::mask_phone;
use crate::config::Config;
use crate::outcome::{Disposition, EndedBy, FailReason};
use crate::telephony::leg::{event_channel, CallLeg, LegCommand, LegEvent, LegEventSender};
use crate::telephony::sip::DialRequest;

/// Why a streamed call could not be placed at all.
#[derive(Debug, thiserror::Error)]
pub enum StreamDialError {
    /// `[origination]` is missing or wrong.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// `[gateway]` is wrong.
    #[error("config `{key}`: {expected} (got {got})")]
    Config {
        /// Key.
        key: String,
        /// Expected.
        expected: String,
        /// Got.
        got: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen for media streams on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Places calls through the origination hook and runs them over the
/// streams the platform sends back.
pub struct StreamGateway {
    hub: Arc<StreamHub>,
    origination: Arc<HttpHook>,
    transfer: Option<Arc<HttpHook>>,
    cfg: OriginationConfig,
    stream_url: String,
    listen: Option<SocketAddr>,
    audiosocket: Option<SocketAddr>,
    shutdown: CancellationToken,
}

/// `url` with `token` added as a query parameter.
pub fn with_token(url: &str, token: Option<&str>) -> String {
    match token {
        None => url.to_string(),
        Some(t) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}token={}", super::hook::percent_encode(t))
        }
    }
}

/// Binds a listener on `addr`, with the address it got (port 0: the OS
/// picks).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StreamDialError> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| StreamDialError::Bind { addr, source })?;
    let local = l
        .local_addr()
        .map_err(|source| StreamDialError::Bind { addr, source })?;
    Ok((l, local))
}

impl StreamGateway {
    /// The gateway without listeners (`duecall serve` mounts the stream
    /// routes on its own router: see [`StreamGateway::hub`]).
    pub fn new(config: &Config) -> Result<StreamGateway, StreamDialError> {
        let gw = config.gateway.clone();
        gw.check()
            .map_err(|(key, expected, got)| StreamDialError::Config { key, expected, got })?;
        let cfg = config
            .origination
            .clone()
            .ok_or_else(|| StreamDialError::Config {
                key: "origination".into(),
                expected: "an [origination] section (url, form or json, stream_url)".into(),
                got: "none".into(),
            })?;
        cfg.check()?;
        let origination = Arc::new(HttpHook::new(
            &cfg.hook(),
            ORIGINATION_VALUES,
            "origination",
        )?);
        let transfer = match &cfg.transfer {
            Some(t) => Some(Arc::new(HttpHook::new(
                t,
                TRANSFER_VALUES,
                "origination.transfer",
            )?)),
            None => None,
        };
        Ok(StreamGateway {
            hub: StreamHub::new(gw.clone()),
            origination,
            transfer,
            stream_url: cfg.stream_url.clone().unwrap_or_default(),
            cfg,
            listen: gw.listen,
            audiosocket: gw.audiosocket,
            shutdown: CancellationToken::new(),
        })
    }

    /// The gateway for `duecall serve`'s dialler: its streams arrive at the
    /// service's `hub` (whose `/ws/*` routes the service mounts on its own
    /// listener, so this gateway starts none), and `{stream_url}` is
    /// `[origination] stream_url`, else `default_stream_url` (the service's
    /// own address); neither is an error naming the key.
    pub fn on_hub(
        config: &Config,
        hub: Arc<StreamHub>,
        default_stream_url: Option<String>,
    ) -> Result<StreamGateway, StreamDialError> {
        let mut g = StreamGateway::new(config)?;
        g.hub = hub;
        g.listen = None;
        g.audiosocket = None;
        if g.stream_url.is_empty() {
            g.stream_url = default_stream_url.ok_or_else(|| StreamDialError::Config {
                key: "origination.stream_url".into(),
                expected: "the URL platforms reach the service's /ws/twilio at (the service listens on every interface, so it cannot tell)".into(),
                got: "none".into(),
            })?;
        }
        Ok(g)
    }

    /// The gateway with its own listeners on `[gateway] listen` (the
    /// WebSocket routes) and `[gateway] audiosocket`, for `duecall run` and
    /// `duecall call`.
    pub async fn start(config: &Config) -> Result<StreamGateway, StreamDialError> {
        let mut g = StreamGateway::new(config)?;
        if let Some(addr) = g.listen {
            let (l, local) = bind(addr).await?;
            g.listen = Some(local);
            if g.stream_url.is_empty() {
                g.stream_url = format!("ws://{local}/ws/twilio");
            }
            let router = server::routes(g.hub.clone());
            let token = g.shutdown.clone();
            tokio::spawn(async move {
                if let Err(e) = server::serve(l, router, token).await {
                    tracing::warn!(error = %e, "media stream server stopped");
                }
            });
            tracing::info!(%local, "media streams: /ws/twilio and /ws/asterisk");
        }
        if let Some(addr) = g.audiosocket {
            let (l, local) = bind(addr).await?;
            g.audiosocket = Some(local);
            server::spawn_audiosocket(l, g.hub.clone(), g.shutdown.clone());
            tracing::info!(%local, "media streams: AudioSocket");
        }
        if g.stream_url.is_empty() {
            return Err(StreamDialError::Config {
                key: "origination.stream_url".into(),
                expected: "the URL platforms connect to (or [gateway] listen to derive it)".into(),
                got: "none".into(),
            });
        }
        Ok(g)
    }

    /// The hub streams arrive at (mount `server::routes(hub)`).
    pub fn hub(&self) -> &Arc<StreamHub> {
        &self.hub
    }

    /// Where the WebSocket routes listen, when this gateway serves them.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// Where AudioSocket listens, when it does.
    pub fn audiosocket_addr(&self) -> Option<SocketAddr> {
        self.audiosocket
    }

    /// Sets `{stream_url}` (when the routes are mounted elsewhere).
    pub fn set_stream_url(&mut self, url: String) {
        self.stream_url = url;
    }

    /// Ends calls in progress and stops the listeners.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Runs the hook and returns the leg at once; the stream, when it
    /// comes, carries the call.
    pub async fn dial(&self, req: DialRequest) -> Result<CallLeg, StreamDialError> {
        if let Some(leg) = dial_if_parked(&self.hub, &req, self.transfer.clone(), &self.shutdown) {
            return leg;
        }
        let stream_id = new_stream_id();
        let expected = self.hub.expect(stream_id.clone(), req.attempt_id);
        let (ev_tx, ev_rx) = event_channel();
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let attempt = req.attempt_id.map(|a| a.to_string()).unwrap_or_default();
        let vars: BTreeMap<String, String> = [
            ("phone", req.to.clone()),
            ("attempt_id", attempt.clone()),
            (
                "stream_url",
                with_token(&self.stream_url, self.hub.config().stream_secret.as_deref()),
            ),
            ("caller_id", self.cfg.caller_id.clone().unwrap_or_default()),
            ("stream_id", stream_id.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let transfer_vars: BTreeMap<String, String> = [
            ("attempt_id".to_string(), attempt),
            ("stream_id".to_string(), stream_id.clone()),
            ("phone".to_string(), req.to.clone()),
        ]
        .into();
        tracing::info!(stream_id = %stream_id, to = %mask_phone(&req.to), "placing call through the origination hook");
        let task = Attempt {
            hook: self.origination.clone(),
            transfer: self.transfer.clone(),
            vars,
            transfer_vars,
            expected,
            answer_timeout: Duration::from_secs(self.cfg.answer_timeout_s),
            events: ev_tx,
            commands: cmd_rx,
            req,
            max_bad_frames: self.hub.config().max_bad_frames,
            shutdown: self.shutdown.child_token(),
        };
        tokio::spawn(task.run());
        Ok(CallLeg {
            call_id: stream_id,
            events: ev_rx,
            commands: cmd_tx,
        })
    }
}

impl Drop for StreamGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct Attempt {
    hook: Arc<HttpHook>,
    transfer: Option<Arc<HttpHook>>,
    vars: BTreeMap<String, String>,
    transfer_vars: BTreeMap<String, String>,
    expected: super::hub::Expected,
    answer_timeout: Duration,
    events: LegEventSender,
    commands: mpsc::Receiver<LegCommand>,
    req: DialRequest,
    max_bad_frames: u32,
    shutdown: CancellationToken,
}

enum Waited {
    Stream(super::driver::StreamPipe),
    Cancelled,
    Timeout,
    Lost,
}

impl Attempt {
    /// Ends an attempt no stream came for. The hub forgets it first (its
    /// registration dropped), then the end is reported: whoever hears of
    /// the end finds nothing waiting, and a late stream is refused.
    async fn end(
        self,
        disposition: Disposition,
        reason: Option<FailReason>,
        by: EndedBy,
        started: chrono::DateTime<Utc>,
    ) {
        let Attempt {
            expected,
            events,
            req,
            ..
        } = self;
        let stream_id = expected.stream_id().to_string();
        drop(expected);
        let r = driver::unconnected_report(&stream_id, &req.to, started, disposition, reason, by);
        events.control(LegEvent::Ended(Box::new(r)));
    }

    async fn run(mut self) {
        let started = Utc::now();
        // Commands given before the answer (a prompt queued early) wait for
        // it, also those given while the hook is still in flight.
        let mut early = Vec::new();
        // 1. Ask the platform to dial (a hang-up meanwhile cancels).
        let hooked = tokio::select! {
            r = self.hook.call(&self.vars) => Some(r),
            _ = wait_hangup(&mut self.commands, &mut early) => None,
            _ = self.shutdown.cancelled() => None,
        };
        match hooked {
            None => {
                return self
                    .end(Disposition::Cancelled, None, EndedBy::Us, started)
                    .await
            }
            Some(Err(e)) => {
                tracing::warn!(stream_id = %self.expected.stream_id(), error = %e, "the origination hook failed");
                let reason = match e.status() {
                    Some(401 | 403 | 407) => FailReason::Auth,
                    Some(_) => FailReason::Server,
                    None => FailReason::Network,
                };
                return self
                    .end(Disposition::Failed, Some(reason), EndedBy::Them, started)
                    .await;
            }
            Some(Ok(status)) => {
                tracing::debug!(status, "origination hook accepted");
                self.events.control(LegEvent::Ringing);
            }
        }
        // 2. Wait for the platform's stream.
        let deadline = tokio::time::sleep(self.answer_timeout);
        tokio::pin!(deadline);
        let waited = loop {
            tokio::select! {
                p = &mut self.expected.stream => break match p { Ok(p) => Waited::Stream(p), Err(_) => Waited::Lost },
                c = self.commands.recv() => match c {
                    Some(LegCommand::Hangup) | None => break Waited::Cancelled,
                    Some(c) => keep_early(&mut early, c),
                },
                _ = &mut deadline => break Waited::Timeout,
                _ = self.shutdown.cancelled() => break Waited::Cancelled,
            }
        };
        match waited {
            Waited::Stream(pipe) => {
                let call = CallSide {
                    events: self.events,
                    commands: self.commands,
                    record: self.req.record.clone(),
                    to: self.req.to.clone(),
                    started_at: started,
                    transfer: self.transfer,
                    vars: self.transfer_vars,
                    max_bad_frames: self.max_bad_frames,
                    shutdown: self.shutdown,
                    early,
                };
                driver::run(pipe, call).await;
            }
            Waited::Cancelled => {
                self.end(Disposition::Cancelled, None, EndedBy::Us, started)
                    .await
            }
            Waited::Timeout | Waited::Lost => {
                tracing::info!(stream_id = %self.expected.stream_id(), "no stream from the platform in time: no-answer");
                self.end(Disposition::NoAnswer, None, EndedBy::Timeout, started)
                    .await
            }
        }
    }
}

/// Most commands kept for the answer; more are dropped with a warning.
const MAX_EARLY_COMMANDS: usize = 64;

/// Keeps a command given before the stream connected, for the session to
/// run first when it does.
fn keep_early(early: &mut Vec<LegCommand>, c: LegCommand) {
    if early.len() < MAX_EARLY_COMMANDS {
        early.push(c);
    } else {
        tracing::warn!("command dropped: too many before the answer");
    }
}

/// Returns when the agent hangs up (or drops the leg); every other command
/// meanwhile is kept in `early` (cancel-safe: a command is either in the
/// channel or in `early`).
async fn wait_hangup(commands: &mut mpsc::Receiver<LegCommand>, early: &mut Vec<LegCommand>) {
    loop {
        match commands.recv().await {
            Some(LegCommand::Hangup) | None => return,
            Some(c) => keep_early(early, c),
        }
    }
}

/// Runs the parked stream `req.to` names (`parked:<key>`, see
/// [`dial_parked`]) with a child of `shutdown`; `None` when `req.to` names
/// no parked stream.
pub fn dial_if_parked(
    hub: &StreamHub,
    req: &DialRequest,
    transfer: Option<Arc<HttpHook>>,
    shutdown: &CancellationToken,
) -> Option<Result<CallLeg, StreamDialError>> {
    let key = req.to.strip_prefix(super::hub::PARKED_PREFIX)?;
    Some(dial_parked(
        hub,
        key,
        req.clone(),
        transfer,
        shutdown.child_token(),
    ))
}

/// Runs a parked (direct) stream as a call: the leg at once, the stream
/// already connected.
pub fn dial_parked(
    hub: &StreamHub,
    key: &str,
    req: DialRequest,
    transfer: Option<Arc<HttpHook>>,
    shutdown: CancellationToken,
) -> Result<CallLeg, StreamDialError> {
    let pipe = hub.unpark(key).ok_or_else(|| StreamDialError::Config {
        key: "to".into(),
        expected: "a parked stream".into(),
        got: format!("{}{key} (gone)", super::hub::PARKED_PREFIX),
    })?;
    let (ev_tx, ev_rx) = event_channel();
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let call_id = pipe.info.call_id.clone();
    let attempt = req.attempt_id.map(|a| a.to_string()).unwrap_or_default();
    let call = CallSide {
        events: ev_tx,
        commands: cmd_rx,
        record: req.record.clone(),
        to: pipe
            .info
            .params
            .get("phone")
            .and_then(super::hub::param_text)
            .unwrap_or_default(),
        started_at: Utc::now(),
        transfer,
        vars: [("attempt_id".to_string(), attempt)].into(),
        max_bad_frames: hub.config().max_bad_frames,
        shutdown,
        early: Vec::new(),
    };
    tokio::spawn(driver::run(pipe, call));
    Ok(CallLeg {
        call_id,
        events: ev_rx,
        commands: cmd_tx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = "[origination]\nurl = \"http://127.0.0.1:9/Calls.json\"\nform = { To = \"{phone}\", Twiml = \"{stream_url}\" }\n";

    #[test]
    fn on_a_services_hub_the_stream_url_is_the_configured_one_else_the_services_own_else_an_error_naming_the_key(
    ) {
        let cfg = Config::from_toml(HOOK, "t").unwrap();
        let hub = StreamHub::new(cfg.gateway.clone());
        let own = Some("ws://127.0.0.1:8/ws/twilio".to_string());
        let g = StreamGateway::on_hub(&cfg, hub.clone(), own.clone()).unwrap();
        assert_eq!(g.stream_url, "ws://127.0.0.1:8/ws/twilio");
        assert!(
            Arc::ptr_eq(g.hub(), &hub),
            "streams come to the service's hub"
        );
        assert_eq!((g.listen_addr(), g.audiosocket_addr()), (None, None));
        let e = StreamGateway::on_hub(&cfg, hub.clone(), None)
            .err()
            .expect("no URL to give the platform")
            .to_string();
        assert!(e.contains("origination.stream_url"), "{e}");
        let set = Config::from_toml(
            &format!("{HOOK}stream_url = \"wss://calls.example.com/ws/twilio\"\n"),
            "t",
        )
        .unwrap();
        let g = StreamGateway::on_hub(&set, hub, own).unwrap();
        assert_eq!(g.stream_url, "wss://calls.example.com/ws/twilio");
    }
}
