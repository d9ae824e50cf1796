//! Just enough TwiML for the bridge: `<Connect><Stream url="...">` with its
//! `<Parameter name=".." value=".."/>`s, and `<Dial><Sip>uri</Sip></Dial>`.
//! A scanner, not an XML parser: attributes in double or single quotes,
//! the five predefined entities unescaped.

/// A `<Stream>` to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTwiml {
    /// The WebSocket URL.
    pub url: String,
    /// Its `<Parameter>`s, in order.
    pub params: Vec<(String, String)>,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The value of attribute `name` inside one tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest[..i].ends_with(char::is_whitespace);
        let after = rest[i + name.len()..].trim_start();
        if before_ok {
            if let Some(after_eq) = after.strip_prefix('=') {
                let after_eq = after_eq.trim_start();
                let q = after_eq.chars().next()?;
                if q == '"' || q == '\'' {
                    let body = &after_eq[1..];
                    let end = body.find(q)?;
                    return Some(unescape(&body[..end]));
                }
            }
        }
        rest = &rest[i + name.len()..];
    }
    None
}

/// Each `<name ...>` tag's inside text, in order.
fn tags<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        if after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            if let Some(end) = after.find('>') {
                out.push(&after[..end]);
                rest = &after[end..];
                continue;
            }
        }
        rest = after;
    }
    out
}

/// The `<Stream>` of a `<Connect>` TwiML document.
pub fn parse_stream(twiml: &str) -> Option<StreamTwiml> {
    let stream = tags(twiml, "Stream").into_iter().next()?;
    let url = attr(stream, "url")?;
    let params = tags(twiml, "Parameter")
        .into_iter()
        .filter_map(|p| Some((attr(p, "name")?, attr(p, "value").unwrap_or_default())))
        .collect();
    Some(StreamTwiml { url, params })
}

/// The URI of `<Dial><Sip>uri</Sip></Dial>`.
pub fn parse_dial_sip(twiml: &str) -> Option<String> {
    let start = twiml.find("<Sip")?;
    let after = &twiml[start..];
    let open_end = after.find('>')?;
    let body = &after[open_end + 1..];
    let close = body.find("</Sip>")?;
    Some(unescape(body[..close].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_and_parameters_are_read() {
        let t = r#"<Response><Connect><Stream url="wss://d.example/ws/twilio?token=abc"><Parameter name="attempt_id" value="42"/><Parameter name='name' value="Ann &amp; Bo"/></Stream></Connect></Response>"#;
        let s = parse_stream(t).unwrap();
        assert_eq!(s.url, "wss://d.example/ws/twilio?token=abc");
        assert_eq!(
            s.params,
            vec![
                ("attempt_id".into(), "42".into()),
                ("name".into(), "Ann & Bo".into())
            ]
        );
        assert_eq!(
            parse_dial_sip("<Response><Dial><Sip>sip:a@h?X-Duecall-Case=c1&amp;X-Duecall-Intent=hardship</Sip></Dial></Response>")
                .as_deref(),
            Some("sip:a@h?X-Duecall-Case=c1&X-Duecall-Intent=hardship")
        );
        assert!(parse_stream("<Response><Say>hi</Say></Response>").is_none());
    }
}
