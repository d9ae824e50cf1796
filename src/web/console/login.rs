//! Logging in and out. The form (`/login`, fields `username` and
//! `password`) is protected against login CSRF by a double-submit token
//! (a short-lived cookie echoed in a hidden field); a success starts a
//! session (a random id in an HttpOnly, SameSite=Strict cookie, `Secure`
//! over TLS; only its hash is stored) and redirects to the page asked for.
//! Failures are throttled per user name and take as long whether or not
//! the name exists. Logging out needs the session's CSRF token.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html::{escape, with_csp};
use crate::store::audit::Actor;
use crate::web::auth::{
    constant_time_eq, cookie, decoy_hash, principal_of, random_hex, sha256_hex, verify_password,
    Credential, SESSION_COOKIE,
};
use crate::web::error::WebError;
use crate::web::state::AppState;

/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "duecall_login";

/// Where to go after logging in.
#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a path on this site (`/queue`), never `//host` or a URL.
fn safe_next(n: Option<&str>) -> String {
    match n {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(|c| c.is_control())
                && p.len() < 500 =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Percent-encodes a path for the `next` parameter.
pub fn encode_next(p: &str) -> String {
    form_urlencoded::byte_serialize(p.as_bytes()).collect()
}

fn cookie_header(st: &AppState, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if st.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn form_page(st: &AppState, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let token = random_hex();
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Log in · duecall</title><link rel=\"stylesheet\" href=\"/static/console.css\"></head>\
<body class=\"login\"><main><h1>duecall</h1>{err}\
<form method=\"post\" action=\"/login\" class=\"login-form\">\
<input type=\"hidden\" name=\"csrf\" value=\"{token}\"><input type=\"hidden\" name=\"next\" value=\"{next}\">\
<label>User name<input name=\"username\" autocomplete=\"username\" required autofocus></label>\
<label>Password<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\">Log in</button></form></main></body></html>",
        next = escape(next),
    );
    let mut r = (status, Html(body)).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(st, LOGIN_COOKIE, &token, 1800),
    );
    with_csp(r)
}

/// `GET /login`: the form (or straight on, when already logged in).
pub async fn form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if let Ok(Some(_)) = principal_of(&st, &headers).await {
        return Redirect::to(&next).into_response();
    }
    form_page(&st, &next, None, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

/// `POST /login`.
pub async fn submit(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let f: LoginForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            return form_page(
                &st,
                "/",
                Some(&format!(
                    "The form was incomplete: {e}. Give a user name and a password."
                )),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    let next = safe_next(f.next.as_deref());
    let sent = f.csrf.as_deref().unwrap_or("");
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if sent.is_empty() || !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        return form_page(
            &st,
            &next,
            Some("The login form expired or came from another site; please log in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let name = f.username.trim().to_string();
    if let Err(wait) = st.logins.check(&name) {
        let mut r = form_page(
            &st,
            &next,
            Some(&format!(
                "Too many failed logins for this user; try again in {} minutes.",
                wait.div_ceil(60)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let now = st.now();
    let session_hours = i64::from(st.serve().session_hours);
    let (n, password) = (name.clone(), f.password);
    let result = st
        .db
        .run_web(move |s| {
            let found = s.user_with_hash(&n)?;
            let (user, hash) = match &found {
                Some((u, h)) if !u.disabled => (Some(u.clone()), h.as_str()),
                _ => (None, decoy_hash()),
            };
            let ok = verify_password(&password, hash) && user.is_some();
            let Some(user) = user.filter(|_| ok) else {
                s.audit(
                    now,
                    &Actor::user(&n, "-"),
                    "login.failed",
                    &format!("user:{n}"),
                    &serde_json::json!({}),
                )?;
                return Ok(None);
            };
            let sid = random_hex();
            let csrf = random_hex();
            s.create_session(
                &sha256_hex(&sid),
                &user.name,
                &csrf,
                now,
                now + chrono::Duration::hours(session_hours),
            )?;
            s.audit(
                now,
                &Actor::user(&user.name, user.role.as_str()),
                "login",
                &format!("user:{}", user.name),
                &serde_json::json!({}),
            )?;
            Ok(Some(sid))
        })
        .await;
    match result {
        Ok(Some(sid)) => {
            st.logins.succeeded(&name);
            let mut r = Redirect::to(&next).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                cookie_header(&st, SESSION_COOKIE, &sid, session_hours * 3600),
            );
            r.headers_mut()
                .append(header::SET_COOKIE, cookie_header(&st, LOGIN_COOKIE, "", 0));
            r
        }
        Ok(None) => {
            st.logins.failed(&name);
            form_page(
                &st,
                &next,
                Some("Wrong user name or password."),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /logout` (form field `csrf`, or the `X-CSRF-Token` header).
pub async fn logout(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match principal_of(&st, &headers).await {
        Ok(Some(p)) => p,
        _ => return Redirect::to("/login").into_response(),
    };
    let Credential::Session { csrf, id_hash } = &p.credential else {
        return WebError::bad(
            "authorization",
            "log out ends a console session; API tokens are revoked with duecall token revoke",
        )
        .into_response();
    };
    let form: LogoutForm = serde_urlencoded::from_bytes(&body).unwrap_or(LogoutForm { csrf: None });
    let sent = form
        .csrf
        .or_else(|| {
            headers
                .get(crate::web::auth::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    if !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
        return WebError::Csrf.into_response();
    }
    let now = st.now();
    let (h, actor) = (id_hash.clone(), p.actor.clone());
    if let Err(e) = st
        .db
        .run(move |s| {
            s.end_session(&h)?;
            s.audit(
                now,
                &actor,
                "logout",
                &actor.id.clone(),
                &serde_json::json!({}),
            )
        })
        .await
    {
        return e.into_response();
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(&st, SESSION_COOKIE, "", 0),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_only_ever_a_local_path() {
        assert_eq!(safe_next(Some("/queue?x=1")), "/queue?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "queue",
            "/\\evil",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(encode_next("/qa?x=1&y"), "%2Fqa%3Fx%3D1%26y");
    }
}
