//! The stream endpoints: `GET /ws/twilio` and `GET /ws/asterisk`
//! (WebSocket upgrades, mounted on `duecall serve`'s router or served on
//! their own), and the AudioSocket TCP listener. Authenticates before the
//! upgrade (401 and nothing else for a wrong or missing token), limits the
//! message size, then hands the socket to its protocol.
//!
//! Owns accepting streams; never runs a call (the hub and the driver do).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::driver::Protocol;
use super::hub::StreamHub;
use super::{asterisk_socket, auth, twilio_socket};

/// The stream routes, for any router state (they carry their own).
pub fn routes<S: Clone + Send + Sync + 'static>(hub: Arc<StreamHub>) -> Router<S> {
    Router::new()
        .route("/ws/twilio", get(twilio))
        .route("/ws/asterisk", get(asterisk))
        .with_state(hub)
}

async fn twilio(State(hub): State<Arc<StreamHub>>, req: Request) -> Response {
    upgrade(hub, req, Protocol::Twilio).await
}

async fn asterisk(State(hub): State<Arc<StreamHub>>, req: Request) -> Response {
    upgrade(hub, req, Protocol::Asterisk).await
}

/// The query string's parameters (`token`, `attempt_id`, ...), last wins.
pub fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn upgrade(hub: Arc<StreamHub>, req: Request, protocol: Protocol) -> Response {
    let (mut parts, _body) = req.into_parts();
    // Present when the server was started with connect info (as `serve` is).
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let query = query_params(parts.uri.query());
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let credential = auth::presented(query.get("token").map(String::as_str), authorization);
    if let Err(e) = auth::check(hub.config(), peer, credential.as_deref()) {
        tracing::warn!(?peer, protocol = protocol.name(), reason = %e, "media stream refused");
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let max = hub.config().max_frame_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|e| tracing::warn!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| async move {
            match protocol {
                Protocol::Twilio => twilio_socket::run(socket, hub, peer, query).await,
                Protocol::Asterisk => asterisk_socket::run(socket, hub, peer, query).await,
                Protocol::AudioSocket => {}
            }
        })
}

/// Serves `router` (the stream routes, or a whole application that mounts
/// them) on `listener` with the peer address known to the handlers, until
/// `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// Starts the AudioSocket listener on `listener`.
pub fn spawn_audiosocket(listener: TcpListener, hub: Arc<StreamHub>, shutdown: CancellationToken) {
    tokio::spawn(super::audiosocket_socket::serve(listener, hub, shutdown));
}
