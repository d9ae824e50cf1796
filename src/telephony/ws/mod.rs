//! WebSocket (and TCP) media gateways: a platform connects to duecall and
//! streams a call's audio, and the same conversation runs over it as over
//! SIP/RTP. Three protocols: Twilio Media Streams (`/ws/twilio`, the schema
//! many CPaaS copy), Asterisk `chan_websocket` (`/ws/asterisk`) and
//! AudioSocket (a TCP port).
//!
//! Layers, as in the SIP half: the frame formats (`twilio`, `asterisk`,
//! `audiosocket`: text and bytes to values, never a panic), the order of
//! messages (`reorder`), one streamed call's media as a sans-IO state machine
//! (`session`), and the thin tokio drivers that move bytes and time for each
//! protocol (`driver`). The `hub` pairs an arriving stream with the attempt
//! that was placed for it (or, when allowed, starts a direct one), after
//! `auth` has checked the stream's secret. Owns the transport only: the
//! agent converses over the `CallLeg` it is handed, and nothing here decides
//! anything about the case.

pub mod asterisk;
mod asterisk_socket;
pub mod audiosocket;
mod audiosocket_socket;
pub mod auth;
pub mod bridge;
pub mod direct;
pub mod driver;
pub mod hook;
pub mod hub;
pub mod origination;
pub mod origination_config;
pub mod reorder;
pub mod server;
pub mod session;
pub mod twilio;
mod twilio_socket;

use std::net::SocketAddr;

use serde::Deserialize;

/// A frame that cannot be used, naming what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON (or not an object).
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// A required field is missing.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field has a value that cannot be used.
    #[error("field `{field}`: {reason}")]
    Bad {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An event this protocol does not define (or duecall does not handle).
    #[error("unknown event `{0}`")]
    UnknownEvent(String),
    /// Larger than the limit.
    #[error("{what} larger than {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// `[gateway]`: how media streams are accepted.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Where `duecall run` and `duecall call` serve `/ws/twilio` and
    /// `/ws/asterisk` when calls go through `[origination]` (`duecall serve`
    /// mounts them on its own listener).
    pub listen: Option<SocketAddr>,
    /// Where AudioSocket connections are taken (`--audiosocket` overrides).
    pub audiosocket: Option<SocketAddr>,
    /// The shared secret a stream must present, as `?token=` on the stream
    /// URL or `Authorization: Bearer` (or the password of Basic auth, which
    /// Asterisk's websocket_client.conf sends). Without one every stream is
    /// refused, unless `allow_unauthenticated_loopback` and the peer is on
    /// loopback.
    pub stream_secret: Option<String>,
    /// Accept unauthenticated streams from 127.0.0.0/8 and ::1 (tests, a
    /// platform on the same host). Never from anywhere else.
    pub allow_unauthenticated_loopback: bool,
    /// Accept a stream that names no attempt duecall placed: the account
    /// comes in the stream's parameters (the account JSON fields).
    pub allow_direct_streams: bool,
    /// Largest WebSocket message (and AudioSocket frame) accepted, bytes.
    pub max_frame_bytes: usize,
    /// Audio sent ahead of the platform's playout on buffering platforms
    /// (Twilio, chan_websocket), ms. A barge-in discards at most this much
    /// of what was sent.
    pub send_ahead_ms: u64,
    /// Nothing from the platform for this long ends the call
    /// (`failed`/`media-timeout`), ms.
    pub stall_timeout_ms: u64,
    /// A prompt's mark not returned this long after its audio should have
    /// ended counts the prompt played anyway (logged), ms.
    pub mark_grace_ms: u64,
    /// A stream must send its `start` (MEDIA_START, the UUID frame) within
    /// this long after connecting, ms.
    pub start_timeout_ms: u64,
    /// Frames the reorder buffer holds while waiting for a missing
    /// `sequenceNumber`.
    pub reorder_window: usize,
    /// Unreadable frames tolerated in one stream before it is ended
    /// (`failed`/`network`).
    pub max_bad_frames: u32,
    /// Jitter buffer depth for the recording's callee channel, frames.
    pub jitter_frames: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: None,
            audiosocket: None,
            stream_secret: None,
            allow_unauthenticated_loopback: false,
            allow_direct_streams: false,
            max_frame_bytes: 64 * 1024,
            send_ahead_ms: 100,
            stall_timeout_ms: 10_000,
            mark_grace_ms: 3000,
            start_timeout_ms: 5000,
            reorder_window: 10,
            max_bad_frames: 20,
            jitter_frames: 3,
        }
    }
}

impl GatewayConfig {
    /// Checks values that parse but make no sense; the error names the key.
    pub fn check(&self) -> Result<(), (String, String, String)> {
        let bad = |k: &str, e: &str, g: String| Err((format!("gateway.{k}"), e.to_string(), g));
        if let Some(s) = &self.stream_secret {
            if s.len() < 16 {
                return bad(
                    "stream_secret",
                    "at least 16 characters",
                    format!("{} characters", s.len()),
                );
            }
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_frame_bytes) {
            return bad(
                "max_frame_bytes",
                "1024 to 16777216",
                self.max_frame_bytes.to_string(),
            );
        }
        if self.send_ahead_ms > 10_000 {
            return bad(
                "send_ahead_ms",
                "at most 10000",
                self.send_ahead_ms.to_string(),
            );
        }
        if self.stall_timeout_ms < 200 {
            return bad(
                "stall_timeout_ms",
                "at least 200",
                self.stall_timeout_ms.to_string(),
            );
        }
        if self.reorder_window == 0 || self.reorder_window > 1000 {
            return bad(
                "reorder_window",
                "1 to 1000",
                self.reorder_window.to_string(),
            );
        }
        Ok(())
    }
}
