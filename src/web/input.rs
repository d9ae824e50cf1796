//! Reading request input so that every mistake names its field: JSON
//! bodies, query strings and numeric ids in the path. Owns the translation
//! of parser errors into `WebError::BadInput`; never touches the store.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::WebError;

/// Largest JSON body a route takes.
pub const JSON_LIMIT: usize = 256 * 1024;

/// The field a serde error is about: the path serde_path_to_error found,
/// else the name in a "missing field `x`" / "unknown field `x`" message.
fn field_of(path: &str, message: &str) -> String {
    let from_msg = || {
        let start = message.find('`')? + 1;
        let len = message[start..].find('`')?;
        Some(message[start..start + len].to_string())
    };
    if path.is_empty() || path == "." {
        from_msg().unwrap_or_else(|| "body".to_string())
    } else if message.starts_with("missing field") {
        match from_msg() {
            Some(f) => format!("{path}.{f}"),
            None => path.to_string(),
        }
    } else {
        path.to_string()
    }
}

/// A JSON body whose errors name the key at fault.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let v = v.trim().to_ascii_lowercase();
                v.starts_with("application/json")
                    || v.starts_with("application/") && v.contains("+json")
            });
        if !is_json {
            return Err(WebError::bad(
                "content-type",
                "send the body as application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::TooLarge { limit: JSON_LIMIT })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, naming the key at fault on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WebError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        if inner.is_syntax() || inner.is_eof() {
            WebError::bad("body", format!("not valid JSON: {message}"))
        } else {
            WebError::bad(field_of(&path, &message), message)
        }
    })?;
    de.end()
        .map_err(|e| WebError::bad("body", format!("not valid JSON: {e}")))?;
    Ok(v)
}

/// A query string whose errors name the parameter at fault.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, WebError> {
        let q = parts.uri.query().unwrap_or("");
        parse_query(q).map(ApiQuery)
    }
}

/// Parses a query string, naming the parameter at fault on error.
pub fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, WebError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        WebError::bad(field_of(&path, &message), message)
    })
}

/// A numeric id from the last `{id}` segment of the path. Anything but a
/// positive integer (`..`, `%2F`, letters) is bad input naming `id`; it is
/// never used to build a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        let axum::extract::Path(raw): axum::extract::Path<String> =
            axum::extract::Path::from_request_parts(parts, state)
                .await
                .map_err(|e| WebError::bad("id", e.body_text()))?;
        parse_id(&raw).map(Id)
    }
}

/// Parses a path id: 1..=i64::MAX, digits only.
pub fn parse_id(raw: &str) -> Result<i64, WebError> {
    if raw.is_empty() || raw.len() > 19 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebError::bad(
            "id",
            format!("{:?} is not an id (a positive integer)", clip(raw)),
        ));
    }
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(WebError::bad(
            "id",
            format!("{:?} is not an id (a positive integer)", clip(raw)),
        )),
    }
}

/// A text filter from a query string: empty means no filter.
pub fn filter(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Largest CSV one upload takes (accounts, do-not-call list, payments).
pub const CSV_LIMIT: usize = 16 * 1024 * 1024;

/// Checks that an upload is sent as CSV (`text/csv`, or `text/plain`).
pub fn require_csv(headers: &axum::http::HeaderMap) -> Result<(), WebError> {
    let csv_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v.starts_with("text/csv") || v.starts_with("text/plain")
        });
    if csv_type {
        Ok(())
    } else {
        Err(WebError::bad("content-type", "send the file as text/csv"))
    }
}

/// A CSV row that refuses the whole file: 400 naming `csv line N` and what
/// is wrong there, saying that nothing was stored.
pub fn bad_csv_line(line: u64, reason: &str, more: usize) -> WebError {
    let more = if more > 0 {
        format!(" (and {more} more bad rows)")
    } else {
        String::new()
    };
    WebError::bad(
        format!("csv line {line}"),
        format!("{reason}{more}; the whole file was refused, nothing was stored"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        until: chrono::DateTime<chrono::Utc>,
        #[serde(default)]
        note: Option<String>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        score: u8,
    }

    fn field(e: WebError) -> String {
        match e {
            WebError::BadInput { field, .. } => field,
            other => panic!("not bad input: {other}"),
        }
    }

    #[test]
    fn json_errors_name_the_key() {
        let e = parse_json::<Body>(br#"{"until": 5}"#).unwrap_err();
        assert_eq!(field(e), "until");
        let e = parse_json::<Body>(br#"{"note": "x"}"#).unwrap_err();
        assert_eq!(field(e), "until");
        let e =
            parse_json::<Body>(br#"{"until": "2026-01-01T00:00:00Z", "bogus": 1}"#).unwrap_err();
        assert_eq!(field(e), "bogus");
        let e =
            parse_json::<Body>(br#"{"until": "2026-01-01T00:00:00Z", "inner": {"score": 900}}"#)
                .unwrap_err();
        assert_eq!(field(e), "inner.score");
        let e = parse_json::<Body>(b"{not json").unwrap_err();
        assert_eq!(field(e), "body");
        let e = parse_json::<Body>(br#"{"until": "2026-01-01T00:00:00Z"} trailing"#).unwrap_err();
        assert_eq!(field(e), "body");
        assert!(parse_json::<Body>(br#"{"until": "2026-01-01T00:00:00Z"}"#).is_ok());
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        account_id: Option<String>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = parse_query::<Q>("limit=ten").unwrap_err();
        assert_eq!(field(e), "limit");
        let q: Q = parse_query("account_id=A%2F1&limit=5").unwrap();
        assert_eq!(q.account_id.as_deref(), Some("A/1"));
        assert_eq!(q.limit, Some(5));
    }

    #[test]
    fn ids_are_positive_integers_and_nothing_else() {
        assert_eq!(parse_id("12").unwrap(), 12);
        assert_eq!(parse_id("9223372036854775807").unwrap(), i64::MAX);
        for bad in [
            "",
            "0",
            "-1",
            "..",
            "1%2F..",
            "../1",
            "1e3",
            "9223372036854775808",
            "99999999999999999999",
            " 1",
        ] {
            assert!(parse_id(bad).is_err(), "{bad:?}");
        }
    }
}
