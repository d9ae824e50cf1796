//! The `Gateway`: how calls are placed, whatever carries them. A SIP trunk
//! (`SipGateway`: INVITE, RTP) or a media-streaming platform
//! (`StreamGateway`: the origination hook asks the platform to dial, and the
//! platform streams the call back over a WebSocket or AudioSocket). Either
//! way the caller gets a `CallLeg` at once, and its events tell how the call
//! goes; the agent converses over it without knowing the transport.
//!
//! Owns the trait and the choice between the two from the config. Never
//! decides whether a call may be placed (the compliance gate does, before).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Config;
use crate::telephony::leg::CallLeg;
use crate::telephony::sip::{DialRequest, SipError, SipGateway};
use crate::telephony::ws::hub::StreamHub;
use crate::telephony::ws::origination::{dial_if_parked, StreamDialError, StreamGateway};
use crate::telephony::ws::server;

/// Why a call could not be placed at all (a call that was placed and
/// failed ends with a disposition in its report instead).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The SIP side.
    #[error(transparent)]
    Sip(#[from] SipError),
    /// The streaming side.
    #[error(transparent)]
    Stream(#[from] StreamDialError),
}

/// What `Gateway::dial` returns.
pub type DialFuture<'a> = Pin<Box<dyn Future<Output = Result<CallLeg, GatewayError>> + Send + 'a>>;

/// Places calls and yields their legs.
pub trait Gateway: Send + Sync {
    /// Places a call and returns its leg at once; the call runs in its own
    /// task and ends with `LegEvent::Ended`.
    fn dial(&self, req: DialRequest) -> DialFuture<'_>;

    /// `sip` or `stream`, for logs and reports.
    fn kind(&self) -> &'static str;

    /// Stops placing calls (calls in progress end).
    fn shutdown(&self);

    /// The hub media streams arrive at, when this gateway takes streams
    /// (`duecall serve` mounts its routes).
    fn stream_hub(&self) -> Option<&Arc<StreamHub>> {
        None
    }

    /// Whether a call placed now can reach anyone: false while the SIP
    /// trunk does not answer its OPTIONS pings, or every trunk is at its
    /// `max_concurrent` (a campaign then stores no decision and waits). True when nothing says otherwise.
    fn ready(&self) -> bool {
        true
    }
}

impl Gateway for SipGateway {
    fn dial(&self, req: DialRequest) -> DialFuture<'_> {
        Box::pin(async move { Ok(SipGateway::dial(self, req).await?) })
    }

    fn kind(&self) -> &'static str {
        "sip"
    }

    fn shutdown(&self) {
        SipGateway::shutdown(self)
    }

    fn ready(&self) -> bool {
        self.trunks_ready()
    }
}

impl Gateway for StreamGateway {
    fn dial(&self, req: DialRequest) -> DialFuture<'_> {
        Box::pin(async move { Ok(StreamGateway::dial(self, req).await?) })
    }

    fn kind(&self) -> &'static str {
        "stream"
    }

    fn shutdown(&self) {
        StreamGateway::shutdown(self)
    }

    fn stream_hub(&self) -> Option<&Arc<StreamHub>> {
        Some(self.hub())
    }
}

/// Calls go out over SIP; direct media streams (`[gateway]
/// allow_direct_streams`) come in and are dialled as `stream:<key>`.
pub struct DirectStreams {
    sip: SipGateway,
    hub: Arc<StreamHub>,
    listen: Option<std::net::SocketAddr>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl DirectStreams {
    /// The SIP gateway plus a hub; the routes are served on `[gateway]
    /// listen` when it is set (else `duecall serve` mounts them).
    pub async fn start(config: &Config) -> Result<DirectStreams, GatewayError> {
        config
            .gateway
            .check()
            .map_err(|(key, expected, got)| StreamDialError::Config { key, expected, got })?;
        let sip = SipGateway::start(config.clone()).await?;
        let hub = StreamHub::new(config.gateway.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut listen = None;
        if let Some(addr) = config.gateway.listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StreamDialError::Bind { addr, source })?;
            listen = l.local_addr().ok();
            let router = server::routes(hub.clone());
            let token = shutdown.clone();
            tokio::spawn(async move {
                if let Err(e) = server::serve(l, router, token).await {
                    tracing::warn!(error = %e, "media stream server stopped");
                }
            });
        }
        Ok(DirectStreams {
            sip,
            hub,
            listen,
            shutdown,
        })
    }

    /// Where the `/ws/*` routes are served (`[gateway] listen`, the port
    /// the OS gave), if this gateway serves them itself.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen
    }
}

impl Gateway for DirectStreams {
    fn dial(&self, req: DialRequest) -> DialFuture<'_> {
        Box::pin(async move {
            match dial_if_parked(&self.hub, &req, None, &self.shutdown) {
                Some(leg) => Ok(leg?),
                None => Ok(SipGateway::dial(&self.sip, req).await?),
            }
        })
    }

    fn kind(&self) -> &'static str {
        "sip"
    }

    fn shutdown(&self) {
        self.shutdown.cancel();
        self.sip.shutdown();
    }

    fn ready(&self) -> bool {
        self.sip.trunks_ready()
    }

    fn stream_hub(&self) -> Option<&Arc<StreamHub>> {
        Some(&self.hub)
    }
}

/// The gateway the config asks for: the origination hook when
/// `[origination]` is set (its streams served on `[gateway] listen` and
/// `[gateway] audiosocket`), else the SIP trunk (taking direct streams too
/// when `[gateway] allow_direct_streams`).
pub async fn open(config: &Config) -> Result<Arc<dyn Gateway>, GatewayError> {
    match &config.origination {
        Some(_) => Ok(Arc::new(StreamGateway::start(config).await?)),
        None if config.gateway.allow_direct_streams => {
            Ok(Arc::new(DirectStreams::start(config).await?))
        }
        None => Ok(Arc::new(SipGateway::start(config.clone()).await?)),
    }
}
