//! Blind transfer (RFC 3515 REFER): the Refer-To value with the context
//! headers for the agent (RFC 3261 19.1.5 URI headers), and reading the
//! NOTIFY sipfrag that says how the transferee's call went.
//! Never: decides whether to transfer or where (the dialogue does).

use super::uri::parse_uri;
use super::SipError;

/// Builds `<sip:agent@host?X-A=1&X-B=2>` (RFC 3261 19.1.5 URI headers,
/// values percent-escaped) so a transferee that copies them hands the
/// context to the agent. The target is checked first: one with a line
/// break, a space or an angle bracket is refused, never written.
pub fn refer_to(target: &str, headers: &[(String, String)]) -> Result<String, SipError> {
    let t = target.trim().trim_start_matches('<').trim_end_matches('>');
    parse_uri(t)?;
    Ok(refer_to_with_headers(t, headers))
}

/// [`refer_to`] without the check, for a target already checked.
pub fn refer_to_with_headers(target: &str, headers: &[(String, String)]) -> String {
    let t = target.trim().trim_start_matches('<').trim_end_matches('>');
    let t = if t.starts_with("sip:") || t.starts_with("sips:") {
        t.to_string()
    } else {
        format!("sip:{t}")
    };
    if headers.is_empty() {
        return format!("<{t}>");
    }
    let q: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{}={}", escape_hvalue(k), escape_hvalue(v)))
        .collect();
    format!("<{t}?{}>", q.join("&"))
}

fn escape_hvalue(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/:+$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The status line of a NOTIFY's message/sipfrag body, and whether the
/// subscription is terminated.
pub fn parse_sipfrag_notify(req: &rsipstack::sip::Request) -> Option<(u16, bool)> {
    let body = std::str::from_utf8(&req.body).ok()?;
    let line = body
        .lines()
        .find(|l| l.trim_start().starts_with("SIP/2.0"))?;
    let code: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let terminated = req.headers.iter().any(|h| {
        let h = h.to_string().to_ascii_lowercase();
        h.starts_with("subscription-state:") && h.contains("terminated")
    });
    Some((code, terminated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_carries_context_headers_escaped() {
        let r = refer_to_with_headers(
            "sip:agent@127.0.0.1:5070",
            &[
                ("X-Duecall-Case".into(), "c 1&2".into()),
                ("X-Duecall-Intent".into(), "hardship".into()),
            ],
        );
        assert_eq!(
            r,
            "<sip:agent@127.0.0.1:5070?X-Duecall-Case=c%201%262&X-Duecall-Intent=hardship>"
        );
        assert_eq!(refer_to_with_headers("agent@h", &[]), "<sip:agent@h>");
    }

    #[test]
    fn a_target_with_a_line_break_never_reaches_the_header() {
        let e = refer_to("sip:agent@pbx.example\r\nX-Evil: 1", &[]).unwrap_err();
        assert!(e.to_string().contains("control character"), "{e}");
        // Header values with line breaks are escaped, not written raw.
        let r = refer_to(
            "sip:agent@pbx.example",
            &[("X-Case".into(), "a\r\nVia: x".into())],
        )
        .unwrap();
        assert!(!r.contains('\r') && !r.contains('\n'), "{r}");
        assert!(r.contains("X-Case=a%0D%0AVia:%20x"), "{r}");
    }
}
