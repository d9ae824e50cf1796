//! The signalling layer's error: what went wrong placing or carrying calls
//! over SIP, with what the user needs to fix it. Owns only the words; never
//! decides what a failure means for a call (that is the call report's).

use std::net::{IpAddr, SocketAddr};

use super::resolve;

/// Errors of the signalling layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The WebRTC media (`[sip] webrtc_media = "direct"`) could not be set up.
    #[error("webrtc media: {0}")]
    WebRtc(#[from] crate::telephony::webrtc::WebRtcError),
    /// A URI could not be parsed or is unsafe to write into a message.
    #[error("`{uri}` is not a SIP URI ({reason}); expected e.g. sip:user@127.0.0.1:5070")]
    BadUri {
        /// What was given (control characters escaped).
        uri: String,
        /// Why.
        reason: String,
    },
    /// An extra header for the INVITE is unsafe to write.
    #[error("header `{name}` refused: {reason}")]
    BadHeader {
        /// The header's name (control characters escaped).
        name: String,
        /// Why.
        reason: String,
    },
    /// The gateway is shutting down: no new calls.
    #[error("the SIP gateway is shutting down; no new calls")]
    ShuttingDown,
    /// Every trunk is at its `max_concurrent`: the call waits (a campaign
    /// asks `Gateway::ready` first and does not get here).
    #[error("every trunk is at its max_concurrent; no call placed")]
    TrunksFull,
    /// The stack refused to start.
    #[error("SIP stack: {0}")]
    Stack(String),
    /// The trunk's host name leads to no SIP server.
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
    /// The TLS settings cannot be used (a CA file, a client certificate).
    #[error("SIP TLS: {0}")]
    Tls(String),
    /// A trunk's registrar refused our REGISTER (`register = true`).
    #[error(
        "the registrar {registrar} refused to register `{user_key}` ({status}): check {user_key} and password"
    )]
    RegisterRefused {
        /// The config key of the user it refused: `[sip] user` for the
        /// old single trunk, `trunk.<name>.user` for a `[[trunk]]` table.
        user_key: String,
        /// The registrar's URI.
        registrar: String,
        /// The final status.
        status: u16,
    },
}
