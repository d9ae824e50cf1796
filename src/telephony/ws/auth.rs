//! Who may open a media stream: the platform proves it knows `[gateway]
//! stream_secret`, as `?token=` on the stream URL (all Twilio can do),
//! `Authorization: Bearer`, or the password of Basic auth (what Asterisk's
//! websocket_client.conf sends). Without a secret, streams are refused, on
//! loopback too, unless `allow_unauthenticated_loopback` is set and the peer
//! really is on loopback.
//!
//! Owns the decision only (compared in constant time); never logs a secret
//! and never reads the socket.

use std::net::SocketAddr;

use base64::Engine as _;

use super::GatewayConfig;

/// Why a stream was refused (the words go in the log and the 401 body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential came with the stream.
    #[error("no stream token (send ?token= on the stream URL or Authorization: Bearer)")]
    Missing,
    /// A credential came but it is not the secret.
    #[error("wrong stream token")]
    Wrong,
    /// No secret is configured and the peer is not an allowed loopback peer.
    #[error("streams are refused: [gateway] stream_secret is not set (and unauthenticated streams are allowed only from loopback with allow_unauthenticated_loopback = true)")]
    NoSecret,
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The credential a request carries: `token` query value, or the
/// Authorization header (Bearer token, or Basic password).
pub fn presented(token_param: Option<&str>, authorization: Option<&str>) -> Option<String> {
    if let Some(t) = token_param.filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    let h = authorization?.trim();
    let (scheme, rest) = h.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        return text.split_once(':').map(|(_, p)| p.to_string());
    }
    None
}

/// Decides whether a stream from `peer` presenting `credential` may go on.
pub fn check(
    cfg: &GatewayConfig,
    peer: Option<SocketAddr>,
    credential: Option<&str>,
) -> Result<(), AuthError> {
    match (&cfg.stream_secret, credential) {
        (Some(secret), Some(c)) => {
            if constant_time_eq(secret.as_bytes(), c.as_bytes()) {
                Ok(())
            } else {
                Err(AuthError::Wrong)
            }
        }
        (secret, _) => {
            let loopback = peer.is_some_and(|p| p.ip().is_loopback());
            if cfg.allow_unauthenticated_loopback && loopback {
                Ok(())
            } else if secret.is_some() {
                Err(AuthError::Missing)
            } else {
                Err(AuthError::NoSecret)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(secret: Option<&str>, loopback: bool) -> GatewayConfig {
        GatewayConfig {
            stream_secret: secret.map(str::to_string),
            allow_unauthenticated_loopback: loopback,
            ..GatewayConfig::default()
        }
    }

    #[test]
    fn streams_need_the_secret_on_loopback_too_unless_allowed() {
        let lo: Option<SocketAddr> = Some("127.0.0.1:40000".parse().unwrap());
        let far: Option<SocketAddr> = Some("192.0.2.7:40000".parse().unwrap());
        let s = "0123456789abcdef-secret";
        assert_eq!(
            check(&cfg(Some(s), false), lo, None),
            Err(AuthError::Missing)
        );
        assert_eq!(
            check(&cfg(Some(s), false), lo, Some("nope")),
            Err(AuthError::Wrong)
        );
        assert_eq!(check(&cfg(Some(s), false), far, Some(s)), Ok(()));
        assert_eq!(check(&cfg(None, false), lo, None), Err(AuthError::NoSecret));
        assert_eq!(
            check(&cfg(None, false), lo, Some("anything")),
            Err(AuthError::NoSecret)
        );
        assert_eq!(check(&cfg(None, true), lo, None), Ok(()));
        assert_eq!(check(&cfg(None, true), far, None), Err(AuthError::NoSecret));
        assert_eq!(
            check(&cfg(None, true), None, None),
            Err(AuthError::NoSecret),
            "unknown peer is not loopback"
        );
        assert_eq!(
            check(&cfg(Some(s), true), lo, Some("wrong")),
            Err(AuthError::Wrong),
            "a wrong token is wrong even on loopback"
        );
    }

    #[test]
    fn the_token_comes_from_the_url_bearer_or_basic() {
        assert_eq!(presented(Some("abc"), None).as_deref(), Some("abc"));
        assert_eq!(
            presented(None, Some("Bearer  xyz ")).as_deref(),
            Some("xyz")
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("asterisk:s3cret");
        assert_eq!(
            presented(None, Some(&format!("Basic {basic}"))).as_deref(),
            Some("s3cret")
        );
        assert_eq!(presented(None, Some("Digest x")), None);
        assert_eq!(presented(Some(""), None), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
