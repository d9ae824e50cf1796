//! HTTP hooks: how duecall asks a platform to place a call (origination)
//! or to move one to a collector (transfer). One request per hook, from a
//! template: `url` (values percent-encoded), `method`, `headers` (values
//! must not hold line breaks), and a body built from `form` fields
//! (form-encoded) or a `json` tree (JSON-encoded): so a value never breaks
//! the request it goes into. `{name}` inserts a value; `{name|xml}` escapes
//! it for XML (a TwiML attribute or element); `{name|url}` percent-encodes it;
//! `{{` and `}}` are literal braces.
//!
//! Owns the templates (checked when the config is loaded: an unknown name
//! is an error naming the key) and the request. Never logs a rendered URL,
//! header or body (they hold phone numbers and credentials).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

/// What went wrong with a hook.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A template names an unknown value or is malformed (config time).
    #[error("config `{key}`: {message}")]
    Template {
        /// Dotted config key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value would break a header (line break).
    #[error("hook header `{name}`: the value holds a line break")]
    HeaderValue {
        /// Header name.
        name: String,
    },
    /// The request could not be sent or got no answer.
    #[error("hook request failed: {0}")]
    Request(String),
    /// The platform answered with an error status.
    #[error("hook answered HTTP {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The start of the answer's body (the platform's reason).
        body: String,
    },
}

impl HookError {
    /// The HTTP status, when the platform answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HookError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One hook as configured (`[origination]` or `[origination.transfer]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Request URL template.
    pub url: String,
    /// HTTP method (default POST).
    #[serde(default)]
    pub method: Option<String>,
    /// Header templates (e.g. `Authorization = "Basic ..."`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Form fields (sent `application/x-www-form-urlencoded`).
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
    /// A JSON body (string leaves are templates).
    #[serde(default)]
    pub json: Option<toml::Value>,
    /// Seconds to wait for the answer (default 10).
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Var(String, Filter),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Filter {
    None,
    Xml,
    Url,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses `text`, allowing only the names in `known`.
    pub fn parse(text: &str, known: &[&str], key: &str) -> Result<Template, HookError> {
        let err = |m: String| HookError::Template {
            key: key.to_string(),
            message: m,
        };
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut it = text.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '{' if it.peek() == Some(&'{') => {
                    it.next();
                    lit.push('{');
                }
                '}' if it.peek() == Some(&'}') => {
                    it.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match it.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(err(format!("`{{{name}` is not closed"))),
                        }
                    }
                    let (n, f) = match name.split_once('|') {
                        None => (name.as_str(), Filter::None),
                        Some((n, "xml")) => (n, Filter::Xml),
                        Some((n, "url")) => (n, Filter::Url),
                        Some((_, f)) => {
                            return Err(err(format!("unknown filter `{f}` (xml, url)")))
                        }
                    };
                    let n = n.trim();
                    if !known.contains(&n) {
                        return Err(err(format!(
                            "unknown value `{{{n}}}` (known: {})",
                            known.join(", ")
                        )));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(n.to_string(), f));
                }
                '}' => return Err(err("a lone `}` (write `}}`)".into())),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template(pieces))
    }

    /// The names the template uses.
    pub fn names(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .filter_map(|p| match p {
                Piece::Var(n, _) => Some(n.as_str()),
                Piece::Lit(_) => None,
            })
            .collect()
    }

    /// Renders with `vars` (a missing value renders empty); `default` is the
    /// encoding applied to values without a filter.
    fn render_with(&self, vars: &BTreeMap<String, String>, url_default: bool) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(n, f) => {
                    let v = vars.get(n).map(String::as_str).unwrap_or("");
                    match (f, url_default) {
                        (Filter::Xml, _) => out.push_str(&xml_escape(v)),
                        (Filter::Url, _) | (Filter::None, true) => out.push_str(&percent_encode(v)),
                        (Filter::None, false) => out.push_str(v),
                    }
                }
            }
        }
        out
    }

    /// Renders for a body, header or form field (values as they are).
    pub fn render(&self, vars: &BTreeMap<String, String>) -> String {
        self.render_with(vars, false)
    }
}

/// Escapes text for XML content and attributes.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Form(Vec<(String, Template)>),
    Json(JsonTemplate),
}

#[derive(Debug, Clone)]
enum JsonTemplate {
    Str(Template),
    Other(serde_json::Value),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    fn parse(v: &toml::Value, known: &[&str], key: &str) -> Result<JsonTemplate, HookError> {
        Ok(match v {
            toml::Value::String(s) => JsonTemplate::Str(Template::parse(s, known, key)?),
            toml::Value::Array(a) => JsonTemplate::Array(
                a.iter()
                    .map(|x| JsonTemplate::parse(x, known, key))
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(t) => JsonTemplate::Object(
                t.iter()
                    .map(|(k, x)| {
                        Ok((
                            k.clone(),
                            JsonTemplate::parse(x, known, &format!("{key}.{k}"))?,
                        ))
                    })
                    .collect::<Result<_, HookError>>()?,
            ),
            other => JsonTemplate::Other(serde_json::to_value(other).map_err(|e| {
                HookError::Template {
                    key: key.to_string(),
                    message: e.to_string(),
                }
            })?),
        })
    }

    fn render(&self, vars: &BTreeMap<String, String>) -> serde_json::Value {
        match self {
            JsonTemplate::Str(t) => serde_json::Value::String(t.render(vars)),
            JsonTemplate::Other(v) => v.clone(),
            JsonTemplate::Array(a) => {
                serde_json::Value::Array(a.iter().map(|x| x.render(vars)).collect())
            }
            JsonTemplate::Object(o) => serde_json::Value::Object(
                o.iter().map(|(k, x)| (k.clone(), x.render(vars))).collect(),
            ),
        }
    }
}

/// A request as rendered (for tests and the bridge's checks).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Method.
    pub method: String,
    /// URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body and its content type.
    pub body: Option<(String, Vec<u8>)>,
}

/// A checked hook, ready to call.
#[derive(Debug, Clone)]
pub struct HttpHook {
    method: String,
    url: Template,
    headers: Vec<(String, Template)>,
    body: Body,
    timeout: Duration,
    client: reqwest::Client,
}

impl HttpHook {
    /// Checks every template against `known` names; `key` is the config
    /// section (`origination`, `origination.transfer`) for error messages.
    pub fn new(cfg: &HookConfig, known: &[&str], key: &str) -> Result<HttpHook, HookError> {
        let url = Template::parse(&cfg.url, known, &format!("{key}.url"))?;
        if !(cfg.url.starts_with("http://") || cfg.url.starts_with("https://")) {
            return Err(HookError::Template {
                key: format!("{key}.url"),
                message: "must start with http:// or https://".into(),
            });
        }
        let method = cfg
            .method
            .clone()
            .unwrap_or_else(|| "POST".into())
            .to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
            return Err(HookError::Template {
                key: format!("{key}.method"),
                message: format!("`{method}` is not GET, POST, PUT, PATCH or DELETE"),
            });
        }
        let headers = cfg
            .headers
            .iter()
            .map(|(k, v)| {
                if k.is_empty()
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(HookError::Template {
                        key: format!("{key}.headers"),
                        message: format!("`{k}` is not a header name"),
                    });
                }
                Ok((
                    k.clone(),
                    Template::parse(v, known, &format!("{key}.headers.{k}"))?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let body = match (&cfg.form, &cfg.json) {
            (Some(_), Some(_)) => {
                return Err(HookError::Template {
                    key: key.to_string(),
                    message: "give `form` or `json`, not both".into(),
                })
            }
            (Some(f), None) => Body::Form(
                f.iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            Template::parse(v, known, &format!("{key}.form.{k}"))?,
                        ))
                    })
                    .collect::<Result<_, HookError>>()?,
            ),
            (None, Some(j)) => Body::Json(JsonTemplate::parse(j, known, &format!("{key}.json"))?),
            (None, None) => Body::None,
        };
        let timeout = Duration::from_secs(cfg.timeout_s.unwrap_or(10).clamp(1, 120));
        // HTTPS needs the process's crypto provider for rustls.
        crate::crypto::install_crypto();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HookError::Request(e.to_string()))?;
        Ok(HttpHook {
            method,
            url,
            headers,
            body,
            timeout,
            client,
        })
    }

    /// The request these values make.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<Rendered, HookError> {
        let headers = self
            .headers
            .iter()
            .map(|(k, t)| {
                let v = t.render(vars);
                if v.contains(['\r', '\n']) {
                    Err(HookError::HeaderValue { name: k.clone() })
                } else {
                    Ok((k.clone(), v))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let body = match &self.body {
            Body::None => None,
            Body::Form(fields) => {
                let pairs: Vec<String> = fields
                    .iter()
                    .map(|(k, t)| format!("{}={}", form_encode(k), form_encode(&t.render(vars))))
                    .collect();
                Some((
                    "application/x-www-form-urlencoded".to_string(),
                    pairs.join("&").into_bytes(),
                ))
            }
            Body::Json(j) => Some((
                "application/json".to_string(),
                j.render(vars).to_string().into_bytes(),
            )),
        };
        Ok(Rendered {
            method: self.method.clone(),
            url: self.url.render_with(vars, true),
            headers,
            body,
        })
    }

    /// How long one call of the hook may take before it counts as failed.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the request; a 2xx answer is `Ok(status)`.
    pub async fn call(&self, vars: &BTreeMap<String, String>) -> Result<u16, HookError> {
        let r = self.render(vars)?;
        let method = reqwest::Method::from_bytes(r.method.as_bytes())
            .map_err(|e| HookError::Request(e.to_string()))?;
        let mut req = self.client.request(method, &r.url).timeout(self.timeout);
        for (k, v) in &r.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some((ct, body)) = r.body {
            if !r
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                req = req.header("content-type", ct);
            }
            req = req.body(body);
        }
        // The error text of reqwest holds the URL (and so the phone number):
        // keep only its kind.
        let resp = req.send().await.map_err(|e| {
            HookError::Request(if e.is_timeout() {
                "no answer in time".into()
            } else if e.is_connect() {
                "cannot connect".into()
            } else {
                "transport error".into()
            })
        })?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(status);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(HookError::Status {
            status,
            body: super::twilio::clip(&body),
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
pub fn form_encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b' ' => o.push('+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') => {
                o.push(b as char)
            }
            b => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["phone", "attempt_id", "stream_url", "caller_id", "target"];

    fn vars() -> BTreeMap<String, String> {
        [
            ("phone", "+1 415 555&0100"),
            ("attempt_id", "42"),
            ("stream_url", "wss://d.example/ws/twilio?token=abc"),
            ("caller_id", "+14155550199"),
            (
                "target",
                "sip:agent@pbx?X-Duecall-Case=c1&X-Duecall-Intent=hardship",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn values_never_break_the_request_they_go_into() {
        let cfg: HookConfig = toml::from_str(
            r#"
url = "https://api.example/Calls.json?to={phone}"
headers = { Authorization = "Basic QUM6dG9r" }
form = { To = "{phone}", Twiml = "<Response><Connect><Stream url=\"{stream_url|xml}\"><Parameter name=\"attempt_id\" value=\"{attempt_id}\"/></Stream></Connect></Response>" }
"#,
        )
        .unwrap();
        let h = HttpHook::new(&cfg, KNOWN, "origination").unwrap();
        let r = h.render(&vars()).unwrap();
        assert_eq!(
            r.url,
            "https://api.example/Calls.json?to=%2B1%20415%20555%260100"
        );
        let (ct, body) = r.body.unwrap();
        assert_eq!(ct, "application/x-www-form-urlencoded");
        let body = String::from_utf8(body).unwrap();
        let fields: BTreeMap<String, String> = body
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        assert_eq!(fields["To"], "%2B1+415+555%260100");
        assert!(fields["Twiml"].contains("token%3Dabc"), "{body}");
        let t = HttpHook::new(
            &toml::from_str(
                r#"url = "http://x/{target|url}"
form = { Twiml = "<Dial><Sip>{target|xml}</Sip></Dial>" }"#,
            )
            .unwrap(),
            KNOWN,
            "origination.transfer",
        )
        .unwrap()
        .render(&vars())
        .unwrap();
        let body = String::from_utf8(t.body.unwrap().1).unwrap();
        assert!(
            body.contains("c1%26amp%3BX-Duecall"),
            "XML-escaped then form-encoded: {body}"
        );
        assert!(t
            .url
            .starts_with("http://x/sip%3Aagent%40pbx%3FX-Duecall-Case%3Dc1%26"));
    }

    #[test]
    fn json_bodies_are_encoded_by_the_serializer() {
        let cfg: HookConfig = toml::from_str(
            r#"
url = "http://127.0.0.1:1/ari/channels"
method = "post"
json = { endpoint = "PJSIP/{phone}@trunk", variables = { DUECALL_ATTEMPT_ID = "{attempt_id}" }, timeout = 30 }
"#,
        )
        .unwrap();
        let r = HttpHook::new(&cfg, KNOWN, "origination")
            .unwrap()
            .render(&vars())
            .unwrap();
        let (ct, body) = r.body.unwrap();
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["endpoint"], "PJSIP/+1 415 555&0100@trunk");
        assert_eq!(v["variables"]["DUECALL_ATTEMPT_ID"], "42");
        assert_eq!(v["timeout"], 30);
        assert_eq!(r.method, "POST");
    }

    #[test]
    fn bad_templates_fail_at_load_naming_the_key() {
        let e = HttpHook::new(
            &toml::from_str(r#"url = "http://x/{phon}""#).unwrap(),
            KNOWN,
            "origination",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("origination.url") && e.to_string().contains("phon"),
            "{e}"
        );
        let e = HttpHook::new(
            &toml::from_str(
                r#"url = "http://x/"
form = { A = "{phone|html}" }"#,
            )
            .unwrap(),
            KNOWN,
            "origination",
        )
        .unwrap_err();
        assert!(e.to_string().contains("origination.form.A"), "{e}");
        let e =
            HttpHook::new(&toml::from_str(r#"url = "ftp://x/""#).unwrap(), KNOWN, "o").unwrap_err();
        assert!(e.to_string().contains("http"), "{e}");
        assert!(Template::parse("{{literal}} {phone}", KNOWN, "k").is_ok());
        assert!(Template::parse("{phone", KNOWN, "k").is_err());
    }

    #[test]
    fn a_value_with_a_line_break_never_reaches_a_header() {
        let h = HttpHook::new(
            &toml::from_str(
                r#"url = "http://x/"
headers = { X-Caller = "{caller_id}" }"#,
            )
            .unwrap(),
            KNOWN,
            "o",
        )
        .unwrap();
        let mut v = vars();
        v.insert("caller_id".into(), "+1\r\nX-Evil: 1".into());
        assert!(matches!(h.render(&v), Err(HookError::HeaderValue { .. })));
    }
}
