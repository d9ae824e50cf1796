//! The console's pages: a server-made shell per page (who is signed in,
//! the navigation of their role, the CSRF token) whose content the shipped
//! script (`static/console.js`) fills from the API. A page a role may not
//! use is a 403 page; an anonymous visitor is sent to the login. Owns the
//! page routes and their role rules; never reads the store for content.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::{html, login};
use crate::store::users::Role;
use crate::web::auth::{principal_of, Principal};
use crate::web::error::WebError;
use crate::web::state::AppState;

/// The signed-in user of a page, or the redirect to the login form.
pub async fn page_user(
    st: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<Principal, Response> {
    match principal_of(st, headers).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) | Err(WebError::BadCredentials(_)) => {
            Err(Redirect::to(&format!("/login?next={}", login::encode_next(here))).into_response())
        }
        Err(e) => Err(e.into_response()),
    }
}

/// Which view a page is, who may open it.
struct View {
    page: &'static str,
    title: &'static str,
    roles: &'static [Role],
}

const QUEUE: View = View {
    page: "queue",
    title: "Escalations",
    roles: &[Role::Admin, Role::Collector],
};
const CASE: View = View {
    page: "case",
    title: "Case",
    roles: &[Role::Admin, Role::Collector],
};
const HOLDS: View = View {
    page: "holds",
    title: "Holds",
    roles: &[Role::Admin, Role::Collector],
};
const QA: View = View {
    page: "qa",
    title: "QA review",
    roles: &[Role::Admin, Role::Qa],
};
const QA_CALL: View = View {
    page: "qa-call",
    title: "QA call",
    roles: &[Role::Admin, Role::Qa],
};
const DASHBOARD: View = View {
    page: "dashboard",
    title: "Dashboard",
    roles: &[Role::Admin, Role::Qa],
};

async fn show(
    st: &AppState,
    headers: &HeaderMap,
    here: &str,
    v: &View,
    id: Option<i64>,
) -> Response {
    let who = match page_user(st, headers, here).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !v.roles.contains(&who.role) {
        let body = format!(
            "<h1>Not for your role</h1><p>The {} page is for {}; you are signed in as {}.</p>",
            html::escape(v.title),
            v.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            who.role.as_str()
        );
        let mut r = html::page("Not allowed", &who, &body, &[]);
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    html::view(v.title, &who, v.page, id, &["console.js"])
}

fn parse(id: &str) -> Option<i64> {
    crate::web::input::parse_id(id).ok()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such page").into_response()
}

/// `/queue`.
pub async fn queue(State(st): State<AppState>, headers: HeaderMap) -> Response {
    show(&st, &headers, "/queue", &QUEUE, None).await
}

/// `/case/{id}`.
pub async fn case(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match parse(&id) {
        Some(n) => show(&st, &headers, &format!("/case/{n}"), &CASE, Some(n)).await,
        None => not_found(),
    }
}

/// `/holds`.
pub async fn holds(State(st): State<AppState>, headers: HeaderMap) -> Response {
    show(&st, &headers, "/holds", &HOLDS, None).await
}

/// `/qa`.
pub async fn qa(State(st): State<AppState>, headers: HeaderMap) -> Response {
    show(&st, &headers, "/qa", &QA, None).await
}

/// `/qa/{id}`: one call in the QA player.
pub async fn qa_call(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match parse(&id) {
        Some(n) => show(&st, &headers, &format!("/qa/{n}"), &QA_CALL, Some(n)).await,
        None => not_found(),
    }
}

/// `/dashboard`.
pub async fn dashboard(State(st): State<AppState>, headers: HeaderMap) -> Response {
    show(&st, &headers, "/dashboard", &DASHBOARD, None).await
}
