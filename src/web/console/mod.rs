//! The console: pages for collectors, QA and admins, served by the same
//! process as the API and built on it (the pages' scripts call `/api/v1`
//! with the session cookie and its CSRF token). Owns the login and logout
//! forms, the session cookie, the page shells and the static assets
//! (shipped in the binary: no CDN, no external host). Never reads the
//! store for page content itself: what a page shows comes from the API,
//! with the API's role checks.

mod html;
mod login;
mod pages;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::state::AppState;
use crate::store::users::Role;

pub use html::escape;

/// The console's routes.
pub fn router(_state: AppState) -> Router<AppState> {
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/", get(home))
        .route("/queue", get(pages::queue))
        .route("/case/{id}", get(pages::case))
        .route("/holds", get(pages::holds))
        .route("/qa", get(pages::qa))
        .route("/qa/{id}", get(pages::qa_call))
        .route("/dashboard", get(pages::dashboard))
        .route("/static/{file}", get(asset))
}

async fn home(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let who = match pages::page_user(&st, &headers, "/").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut links: Vec<(&str, &str)> = html::nav(who.role);
    if who.role == Role::Admin {
        links.push(("/openapi.json", "API document"));
    }
    let mut body = String::new();
    body.push_str("<ul class=\"links\">");
    for (href, text) in links {
        body.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>",
            escape(href),
            escape(text)
        ));
    }
    body.push_str("</ul>");
    html::page("duecall", &who, &body, &[]).into_response()
}

/// The console's static files, compiled in.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("static/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/console.js"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, bytes)) => {
            let mut r = (StatusCode::OK, *bytes).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            r
        }
        None => WebError::NotFound {
            what: "file",
            id: file.chars().take(100).collect(),
        }
        .into_response(),
    }
}
