//! The service's one error type and how each becomes an HTTP answer: a
//! status and a JSON body `{"error": "...", "field": "..."}` that says
//! what to fix. Owns the mapping from store errors to statuses; never
//! reveals a password, a token or a session id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::users::Role;
use crate::store::StoreError;

/// What can go wrong serving a request.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No (valid) credentials.
    #[error("authentication required: send `Authorization: Bearer <token>` (duecall token create) or log in at /login")]
    Unauthorized,
    /// A token or session that is not (or no longer) valid.
    #[error("{0}")]
    BadCredentials(String),
    /// The role may not do this.
    #[error("role `{role}` may not {action}")]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// What was asked.
        action: &'static str,
    },
    /// A state-changing request from the console without its CSRF token.
    #[error("missing or wrong CSRF token: send the session's token in the X-CSRF-Token header")]
    Csrf,
    /// No such thing.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What kind of thing (`attempt`, `escalation`, ...).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Bad input: the field and what is wrong with it. Nothing was changed.
    #[error("{field}: {message}")]
    BadInput {
        /// The field (query parameter, body key, path segment, header).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The request conflicts with the current state (a claimed case).
    #[error("{0}")]
    Conflict(String),
    /// A byte range outside the file.
    #[error("range not satisfiable: the file has {len} bytes")]
    RangeNotSatisfiable {
        /// The file's length.
        len: u64,
    },
    /// Too many failed logins.
    #[error("too many failed logins for this user; try again in {retry_after_s} s")]
    TooManyLogins {
        /// Seconds until the next try is accepted.
        retry_after_s: u64,
    },
    /// The body is larger than this route takes.
    #[error("request body too large: at most {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The database is busy or the service is stopping; retry.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or an environment failure (logged).
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    /// A `BadInput` for a field.
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> WebError {
        WebError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthorized | WebError::BadCredentials(_) => StatusCode::UNAUTHORIZED,
            WebError::Forbidden { .. } | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound { .. } => StatusCode::NOT_FOUND,
            WebError::BadInput { .. } => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            WebError::TooManyLogins { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(e) if is_busy(e) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(_) | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A locked or busy database: the client may retry.
fn is_busy(e: &StoreError) -> bool {
    match e {
        StoreError::Sql { source, .. } | StoreError::Open { source, .. } => source.is_busy(),
        _ => false,
    }
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
    /// The field at fault, for bad input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let field = match &self {
            WebError::BadInput { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.to_string(),
            field,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        match &self {
            WebError::Unauthorized | WebError::BadCredentials(_) => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"duecall\""),
                );
            }
            WebError::RangeNotSatisfiable { len } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            WebError::TooManyLogins { retry_after_s } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            WebError::Unavailable(_) | WebError::Store(_)
                if status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}
