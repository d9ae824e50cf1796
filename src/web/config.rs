//! The service's config sections: `[serve]` (where it listens, TLS, who may
//! read the metrics, sessions, webhook retry timing) and `[[webhooks]]`
//! (where events are posted, signed with which secret). Owns their shape,
//! defaults and checks; imports nothing else of the crate (`config` embeds
//! these types and reports the checks' findings under its own error).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// `[serve]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on (`--listen` wins). Default 127.0.0.1:8080.
    pub listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `GET /metrics` without a token.
    pub metrics_open: bool,
    /// Console sessions last this long.
    pub session_hours: u32,
    /// Mark the session cookie `Secure` even without TLS here (behind a
    /// proxy that terminates TLS). Default: only when serving TLS.
    pub secure_cookies: Option<bool>,
    /// First webhook retry after this long; doubles each try.
    pub webhook_retry_base_ms: u64,
    /// Longest wait between two tries of one delivery.
    pub webhook_retry_max_s: u64,
    /// A receiver that has not answered in this long has failed this try.
    pub webhook_timeout_s: u64,
    /// Delivered events and unread old events are forgotten after this many days.
    pub event_retention_days: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            metrics_open: false,
            session_hours: 12,
            secure_cookies: None,
            webhook_retry_base_ms: 1000,
            webhook_retry_max_s: 600,
            webhook_timeout_s: 10,
            event_retention_days: 30,
        }
    }
}

/// One `[[webhooks]]` endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// The HMAC-SHA256 key of `X-Duecall-Signature`.
    pub secret: String,
    /// The events it wants (default: all four).
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

fn all_events() -> Vec<String> {
    EVENT_NAMES.iter().map(|s| s.to_string()).collect()
}

/// The event names a webhook may ask for.
pub const EVENT_NAMES: [&str; 4] = [
    "escalation.created",
    "transfer.started",
    "route.decided",
    "call.ended",
];

/// A value of the right type that makes no sense: the dotted key, what was
/// expected, what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted key (`serve.tls_key`, `webhooks[0].url`).
    pub key: String,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub got: String,
}

fn invalid(key: impl Into<String>, expected: &str, got: impl std::fmt::Display) -> Invalid {
    Invalid {
        key: key.into(),
        expected: expected.into(),
        got: got.to_string(),
    }
}

/// `value` must be 1 to `max` (`unit` names what it counts).
fn one_to(key: &str, value: u64, max: u64, unit: &str) -> Result<(), Invalid> {
    if value == 0 || value > max {
        return Err(invalid(key, &format!("1..={max} {unit}"), value));
    }
    Ok(())
}

/// Checks `[serve]` and `[[webhooks]]` beyond their types.
pub fn check(serve: &ServeConfig, webhooks: &[WebhookConfig]) -> Result<(), Invalid> {
    match (&serve.tls_cert, &serve.tls_key) {
        (Some(_), None) => {
            return Err(invalid(
                "serve.tls_key",
                "set together with serve.tls_cert",
                "missing",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "serve.tls_cert",
                "set together with serve.tls_key",
                "missing",
            ))
        }
        _ => {}
    }
    one_to(
        "serve.session_hours",
        serve.session_hours.into(),
        24 * 30,
        "hours",
    )?;
    one_to(
        "serve.webhook_retry_base_ms",
        serve.webhook_retry_base_ms,
        3_600_000,
        "ms",
    )?;
    one_to(
        "serve.webhook_retry_max_s",
        serve.webhook_retry_max_s,
        86_400,
        "s",
    )?;
    one_to("serve.webhook_timeout_s", serve.webhook_timeout_s, 300, "s")?;
    if serve.event_retention_days == 0 {
        return Err(invalid(
            "serve.event_retention_days",
            "at least 1 day",
            serve.event_retention_days,
        ));
    }
    let mut seen = Vec::new();
    for (i, w) in webhooks.iter().enumerate() {
        let key = |k: &str| format!("webhooks[{i}].{k}");
        let scheme_ok = w.url.starts_with("http://") || w.url.starts_with("https://");
        if !scheme_ok || w.url.contains(char::is_whitespace) || w.url.len() < 10 {
            return Err(invalid(key("url"), "an http:// or https:// URL", &w.url));
        }
        if seen.contains(&&w.url) {
            return Err(invalid(
                key("url"),
                "each webhook URL once",
                format!("{} again", w.url),
            ));
        }
        seen.push(&w.url);
        if w.secret.len() < 16 {
            return Err(invalid(
                key("secret"),
                "a secret of at least 16 characters",
                format!("{} characters", w.secret.len()),
            ));
        }
        if w.events.is_empty() {
            return Err(invalid(key("events"), "at least one event", "[]"));
        }
        for e in &w.events {
            if !EVENT_NAMES.contains(&e.as_str()) {
                return Err(invalid(
                    key("events"),
                    "escalation.created, transfer.started, route.decided or call.ended",
                    e,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str, secret: &str, events: &[&str]) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            secret: secret.into(),
            events: events.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_listen_on_loopback_and_pass_the_checks() {
        let s = ServeConfig::default();
        assert!(s.listen.ip().is_loopback());
        assert_eq!(check(&s, &[]), Ok(()));
    }

    #[test]
    fn a_certificate_without_its_key_is_named() {
        let s = ServeConfig {
            tls_cert: Some("c.pem".into()),
            ..ServeConfig::default()
        };
        assert_eq!(check(&s, &[]).unwrap_err().key, "serve.tls_key");
    }

    #[test]
    fn numbers_out_of_range_name_their_key_and_range() {
        let cases = [
            (
                ServeConfig {
                    session_hours: 721,
                    ..ServeConfig::default()
                },
                ("serve.session_hours", "1..=720 hours", "721"),
            ),
            (
                ServeConfig {
                    webhook_retry_base_ms: 0,
                    ..ServeConfig::default()
                },
                ("serve.webhook_retry_base_ms", "1..=3600000 ms", "0"),
            ),
            (
                ServeConfig {
                    webhook_retry_max_s: 86_401,
                    ..ServeConfig::default()
                },
                ("serve.webhook_retry_max_s", "1..=86400 s", "86401"),
            ),
            (
                ServeConfig {
                    webhook_timeout_s: 301,
                    ..ServeConfig::default()
                },
                ("serve.webhook_timeout_s", "1..=300 s", "301"),
            ),
        ];
        for (s, (key, expected, got)) in cases {
            let e = check(&s, &[]).unwrap_err();
            assert_eq!(
                (e.key.as_str(), e.expected.as_str(), e.got.as_str()),
                (key, expected, got)
            );
        }
        let edge = ServeConfig {
            session_hours: 720,
            webhook_retry_base_ms: 3_600_000,
            webhook_retry_max_s: 86_400,
            webhook_timeout_s: 300,
            ..ServeConfig::default()
        };
        assert_eq!(check(&edge, &[]), Ok(()));
    }

    #[test]
    fn bad_webhooks_name_their_index_and_key() {
        let s = ServeConfig::default();
        let ok = hook("http://127.0.0.1:9/h", "0123456789abcdef", &["call.ended"]);
        assert_eq!(check(&s, std::slice::from_ref(&ok)), Ok(()));
        let e = check(
            &s,
            &[ok.clone(), hook("ftp://x/y", "0123456789abcdef", &[])],
        )
        .unwrap_err();
        assert_eq!(e.key, "webhooks[1].url");
        let e = check(
            &s,
            &[hook("http://127.0.0.1:9/h", "short", &["call.ended"])],
        )
        .unwrap_err();
        assert_eq!(e.key, "webhooks[0].secret");
        let e = check(
            &s,
            &[hook(
                "http://127.0.0.1:9/h",
                "0123456789abcdef",
                &["call.started"],
            )],
        )
        .unwrap_err();
        assert_eq!(e.key, "webhooks[0].events");
        assert!(e.got.contains("call.started"));
        let e = check(&s, &[ok.clone(), ok]).unwrap_err();
        assert_eq!(e.key, "webhooks[1].url");
    }
}
