//! Who am I, the audit log, users and tokens (admins). Creating a user or
//! a token here does what the command line does (`web::access`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::store::audit::{AuditEntry, AuditFilter};
use crate::store::users::Role;
use crate::web::access;
use crate::web::auth::{Administer, AnyRole, Authed, Credential};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::{ApiJson, ApiQuery};
use crate::web::state::AppState;

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user:<name>` or `token:<name>`.
    pub actor: String,
    /// The name.
    pub name: String,
    /// The role.
    pub role: Role,
    /// For a console session: the token to send as `X-CSRF-Token` with every change.
    pub csrf_token: Option<String>,
}

/// Who the caller is and what role they have.
#[utoipa::path(get, path = "/api/v1/me", tag = "access",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn me(who: Authed<AnyRole>) -> Json<Me> {
    let p = who.who;
    Json(Me {
        name: p.actor.name().to_string(),
        actor: p.actor.id.clone(),
        role: p.role,
        csrf_token: match p.credential {
            Credential::Session { csrf, .. } => Some(csrf),
            Credential::Token => None,
        },
    })
}

/// Filters of the audit log.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this actor (`user:alice`, `token:crm`).
    pub actor: Option<String>,
    /// Only this action (`recording.read`, `transcript.read`, `escalation.close`, ...).
    pub action: Option<String>,
    /// Only this target (`attempt:12`, `escalation:3`).
    pub target: Option<String>,
    /// Only entries with a smaller id (paging back).
    #[param(minimum = 1)]
    pub before_id: Option<i64>,
    /// At most this many (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "access",
    params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn audit(
    State(st): State<AppState>,
    _who: Authed<Administer>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, WebError> {
    if q.before_id.is_some_and(|b| b < 1) {
        return Err(WebError::bad("before_id", "must be at least 1"));
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(WebError::bad("limit", "must be 1..=1000"));
    }
    let f = AuditFilter {
        actor: crate::web::input::filter(q.actor),
        action: crate::web::input::filter(q.action),
        target: crate::web::input::filter(q.target),
        before_id: q.before_id,
        limit,
    };
    Ok(Json(st.db.run(move |s| s.audit_log(&f)).await?))
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserItem {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Cannot log in.
    pub disabled: bool,
}

/// Every user.
#[utoipa::path(get, path = "/api/v1/users", tag = "access",
    responses((status = 200, body = Vec<UserItem>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn users(
    State(st): State<AppState>,
    _who: Authed<Administer>,
) -> Result<Json<Vec<UserItem>>, WebError> {
    let users = st.db.run(|s| s.users()).await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserItem {
                name: u.name,
                role: u.role,
                created_at: u.created_at,
                disabled: u.disabled,
            })
            .collect(),
    ))
}

/// A user to create (or whose role and password to replace).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    /// Login name (letters, digits, `. _ @ -`; at most 64).
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub name: String,
    /// Role.
    pub role: Role,
    /// Password (10-1024 characters).
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
}

/// Creates a user, or replaces an existing user's role and password (and
/// ends their sessions).
#[utoipa::path(post, path = "/api/v1/users", tag = "access",
    request_body = UserBody,
    responses((status = 201, body = UserItem), (status = 200, body = UserItem),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_user(
    State(st): State<AppState>,
    who: Authed<Administer>,
    ApiJson(b): ApiJson<UserBody>,
) -> Result<(StatusCode, Json<UserItem>), WebError> {
    access::check_name("name", &b.name)?;
    access::check_password(&b.password)?;
    let now = st.now();
    let actor = who.who.actor.clone();
    let name = b.name.clone();
    let role = b.role;
    let new = st
        .db
        .run_web(move |s| access::put_user(s, &b.name, b.role, &b.password, &actor, now))
        .await?;
    Ok((
        if new {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(UserItem {
            name,
            role,
            created_at: now,
            disabled: false,
        }),
    ))
}

/// A token as listed (never the token itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenItem {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The token's first characters.
    pub prefix: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Every token, newest first.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "access",
    responses((status = 200, body = Vec<TokenItem>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn tokens(
    State(st): State<AppState>,
    _who: Authed<Administer>,
) -> Result<Json<Vec<TokenItem>>, WebError> {
    let t = st.db.run(|s| s.tokens()).await?;
    Ok(Json(
        t.into_iter()
            .map(|t| TokenItem {
                name: t.name,
                role: t.role,
                prefix: t.prefix,
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                revoked_at: t.revoked_at,
            })
            .collect(),
    ))
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// Its name (who or what uses it; letters, digits, `. _ @ -`).
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// A new token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The token: send it as `Authorization: Bearer <token>`. Not shown again.
    pub token: String,
}

/// Creates a token (409 if a live token has that name).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "access",
    request_body = TokenBody,
    responses((status = 201, body = NewToken),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_token(
    State(st): State<AppState>,
    who: Authed<Administer>,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<(StatusCode, Json<NewToken>), WebError> {
    access::check_name("name", &b.name)?;
    let now = st.now();
    let actor = who.who.actor.clone();
    let (name, role) = (b.name.clone(), b.role);
    let token = st
        .db
        .run_web(move |s| access::create_token(s, &b.name, b.role, &actor, now))
        .await?;
    Ok((StatusCode::CREATED, Json(NewToken { name, role, token })))
}

/// Revokes a token by name.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "access",
    params(("name" = String, Path, description = "The token's name")),
    responses((status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_token(
    State(st): State<AppState>,
    who: Authed<Administer>,
    Path(name): Path<String>,
) -> Result<StatusCode, WebError> {
    let now = st.now();
    let actor = who.who.actor.clone();
    let n = name.clone();
    let done = st
        .db
        .run(move |s| {
            let done = s.revoke_token(&n, now)?;
            if done {
                s.audit(
                    now,
                    &actor,
                    "token.revoke",
                    &format!("token:{n}"),
                    &serde_json::json!({}),
                )?;
            }
            Ok(done)
        })
        .await?;
    if done {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WebError::NotFound {
            what: "live token",
            id: name,
        })
    }
}
