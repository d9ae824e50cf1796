//! The media streams a WebSocket gateway sends to the service (`/ws/*`:
//! Twilio Media Streams, Asterisk chan_websocket, ...). This is the one
//! place their routes are mounted: add them to [`stream_routes`]. They sit
//! outside the API's auth layer and authenticate with the gateway's stream
//! secret themselves; the service's hardening headers and request
//! counters still apply. Owns the mounting only, never a call.

use axum::Router;

use super::state::AppState;

/// The `/ws/*` routes, merged into the service's router by `server::app`.
pub fn stream_routes() -> Router<AppState> {
    Router::new()
}
