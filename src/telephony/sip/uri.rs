//! SIP URIs and header values as they cross into signalling: parsed and
//! checked at the boundary, so nothing a CSV, a config file or a driver
//! hands over can smuggle a line break into a message (header injection),
//! and masked before they reach a log.
//! Never: resolves names or touches sockets.

use super::SipError;
use crate::account::mask_phone;

/// Characters that never belong in a URI or header value we write: control
/// characters (CR, LF, NUL, ...) end or split a header line.
fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// Parses a SIP URI given as `sip:user@host[:port]` (or without the
/// scheme). Refuses control characters, spaces and angle brackets: the URI
/// goes into Request-URI, To and Refer-To as it is.
pub fn parse_uri(s: &str) -> Result<rsipstack::sip::Uri, SipError> {
    let s = s.trim();
    let bad = |reason: &str| SipError::BadUri {
        uri: s.escape_debug().to_string(),
        reason: reason.to_string(),
    };
    if has_control(s) {
        return Err(bad("it contains a control character (a line break?)"));
    }
    if s.contains([' ', '<', '>', '"']) {
        return Err(bad("it contains a space, an angle bracket or a quote"));
    }
    let with_scheme = if s.starts_with("sip:") || s.starts_with("sips:") {
        s.to_string()
    } else {
        format!("sip:{s}")
    };
    rsipstack::sip::Uri::try_from(with_scheme.as_str()).map_err(|e| bad(&e.to_string()))
}

/// Checks a SIP URI a driver or a configuration supplies (a transfer
/// target, an agent URI): the same rules as [`parse_uri`], as a plain check.
pub fn validate_uri(s: &str) -> Result<(), SipError> {
    parse_uri(s).map(|_| ())
}

/// Checks an extra header for an INVITE: a token name, a value without
/// control characters.
pub fn validate_header(name: &str, value: &str) -> Result<(), SipError> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    if !token {
        return Err(SipError::BadHeader {
            name: name.escape_debug().to_string(),
            reason: "a header name is letters, digits and -.!%*_+`'~ only".into(),
        });
    }
    if has_control(value) {
        return Err(SipError::BadHeader {
            name: name.to_string(),
            reason: "its value contains a control character (a line break?)".into(),
        });
    }
    Ok(())
}

/// Masks the user part of a SIP URI for logs (`sip:+1******67@host`).
pub fn mask_uri(uri: &str) -> String {
    let (scheme, rest) = uri.split_once(':').unwrap_or(("sip", uri));
    match rest.split_once('@') {
        Some((user, host)) => format!("{scheme}:{}@{host}", mask_phone(user)),
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_uri_hides_the_number() {
        assert_eq!(mask_uri("sip:+14155550167@trunk"), "sip:+1********67@trunk");
    }

    #[test]
    fn uris_with_line_breaks_or_brackets_are_refused_with_the_reason() {
        for bad in [
            "sip:agent@pbx.example\r\nX-Evil: 1",
            "sip:agent@pbx\u{0}.example",
            "sip:agent@pbx.example>;evil",
            "sip:a gent@pbx.example",
        ] {
            let e = parse_uri(bad).unwrap_err().to_string();
            assert!(e.contains("not a SIP URI"), "{e}");
            assert!(
                !e.contains('\n') && !e.contains('\r'),
                "the error itself is one line: {e:?}"
            );
        }
        assert!(validate_uri("sip:collectors@pbx.example:5060").is_ok());
        assert!(validate_uri("agent@127.0.0.1").is_ok());
    }

    #[test]
    fn header_names_and_values_are_checked() {
        assert!(validate_header("X-Duecall-Case", "c-42").is_ok());
        assert!(validate_header("X-Bad\r\nVia", "1").is_err());
        assert!(validate_header("X-Ok", "a\r\nVia: evil").is_err());
        assert!(validate_header("", "a").is_err());
    }
}
