//! `/api/v1/pauses`, `/api/v1/suppressions`, `/api/v1/callbacks`: who the
//! robot may not call, why and until when; a pause released early or
//! extended (audited with its old and new end, in the store's transaction).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{self, AccountBrief};
use crate::account::mask_phone;
use crate::store::holdwork::PauseRow;
use crate::store::{Store, StoreError};
use crate::web::auth::{Authed, WorkCases};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::{filter, ApiJson, ApiQuery, Id};
use crate::web::state::AppState;

/// Filters of the holds lists.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HoldQuery {
    /// Only this account.
    pub account_id: Option<String>,
    /// Also those that have ended (default: only those in force).
    pub all: Option<bool>,
}

/// A pause (or a hold until a person lifts it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PauseItem {
    /// Pause id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// The account, number masked.
    pub account: Option<AccountBrief>,
    /// Why.
    pub reason: String,
    /// When it ends.
    pub until: DateTime<Utc>,
    /// A hold: no end of its own, until a person releases it.
    pub hold: bool,
    /// In force now.
    pub active: bool,
    /// When it was set.
    pub created_at: DateTime<Utc>,
}

fn pause_item(p: PauseRow, account: Option<AccountBrief>, now: DateTime<Utc>) -> PauseItem {
    PauseItem {
        // A hold is stored as a pause to the last representable day.
        hold: chrono::Datelike::year(&p.until) >= 9999,
        active: p.until > now,
        id: p.id,
        account_id: p.account_id,
        account,
        reason: p.reason,
        until: p.until,
        created_at: p.created_at,
    }
}

/// Runs `change` on pause `id` (`None`: no such pause) and reads the pause
/// after it, in one go; a 404 when there is no such pause.
async fn on_pause<R: Send + 'static>(
    st: &AppState,
    id: i64,
    change: impl FnOnce(&mut Store) -> Result<Option<R>, StoreError> + Send + 'static,
) -> Result<(R, PauseRow), WebError> {
    let (r, p) = st
        .db
        .run(move |s| {
            let r = change(s)?;
            Ok((r, s.pause(id)?))
        })
        .await?;
    match (r, p) {
        (Some(r), Some(p)) => Ok((r, p)),
        _ => Err(WebError::NotFound {
            what: "pause",
            id: id.to_string(),
        }),
    }
}

/// Pauses and holds, newest first.
#[utoipa::path(get, path = "/api/v1/pauses", tag = "holds",
    params(HoldQuery),
    responses((status = 200, body = Vec<PauseItem>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn pauses(
    State(st): State<AppState>,
    _who: Authed<WorkCases>,
    ApiQuery(q): ApiQuery<HoldQuery>,
) -> Result<Json<Vec<PauseItem>>, WebError> {
    let now = st.now();
    let all = q.all.unwrap_or(false);
    let rows = st
        .db
        .run(move |s| {
            let rows = s.list_pauses(now, all, filter(q.account_id).as_deref())?;
            views::with_accounts(s, rows, |p| &p.account_id)
        })
        .await?;
    let today = views::today(now);
    Ok(Json(
        rows.into_iter()
            .map(|(p, a)| pause_item(p, a.as_ref().map(|a| views::brief(a, today)), now))
            .collect(),
    ))
}

/// Ends a pause or hold now (the account may be called again when the
/// other rules allow).
#[utoipa::path(post, path = "/api/v1/pauses/{id}/release", tag = "holds",
    params(("id" = i64, Path, description = "Pause id", minimum = 1)),
    responses((status = 200, body = PauseItem),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn release(
    State(st): State<AppState>,
    who: Authed<WorkCases>,
    Id(id): Id,
) -> Result<Json<PauseItem>, WebError> {
    let now = st.now();
    let actor = who.who.actor.clone();
    let (released, p) = on_pause(&st, id, move |s| s.release_pause(id, &actor, now)).await?;
    if !released {
        return Err(WebError::Conflict(format!("pause {id} has already ended")));
    }
    // The account may be callable again now.
    st.dialler.wake();
    Ok(Json(pause_item(p, None, now)))
}

/// A new end for a pause.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// The new end (RFC 3339): later than the current end and now, within 400 days.
    pub until: DateTime<Utc>,
}

/// Moves a pause's end later.
#[utoipa::path(post, path = "/api/v1/pauses/{id}/extend", tag = "holds",
    params(("id" = i64, Path, description = "Pause id", minimum = 1)),
    request_body = ExtendBody,
    responses((status = 200, body = PauseItem),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn extend(
    State(st): State<AppState>,
    who: Authed<WorkCases>,
    Id(id): Id,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<Json<PauseItem>, WebError> {
    let now = st.now();
    if body.until > now + Duration::days(400) {
        return Err(WebError::bad("until", "must be within 400 days"));
    }
    let actor = who.who.actor.clone();
    let until = body.until;
    match on_pause(&st, id, move |s| s.extend_pause(id, until, &actor, now)).await? {
        (Err(old), _) => Err(WebError::bad(
            "until",
            format!(
                "must be later than the pause's end ({}) and than now",
                old.to_rfc3339()
            ),
        )),
        (Ok(()), p) => Ok(Json(pause_item(p, None, now))),
    }
}

/// A suppression: no more robot calls to a number or an account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuppressionItem {
    /// Suppression id (entries of the do-not-call list by number alone are
    /// numbered apart).
    pub id: i64,
    /// The account (null: a number on the do-not-call list, for every
    /// account that lists it).
    pub account_id: Option<String>,
    /// `number` or `account`.
    pub scope: String,
    /// The number, masked (scope `number`).
    pub phone_masked: Option<String>,
    /// Why (`stop_calling`, `wrong_number`, ...).
    pub reason: String,
    /// `call` (a route, a collector's close) or `list` (the do-not-call list).
    pub source: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Suppressions (from calls and the do-not-call list), newest first.
#[utoipa::path(get, path = "/api/v1/suppressions", tag = "holds",
    params(HoldQuery),
    responses((status = 200, body = Vec<SuppressionItem>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn suppressions(
    State(st): State<AppState>,
    _who: Authed<WorkCases>,
    ApiQuery(q): ApiQuery<HoldQuery>,
) -> Result<Json<Vec<SuppressionItem>>, WebError> {
    let rows = st
        .db
        .run(move |s| s.list_suppressions(filter(q.account_id).as_deref()))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| SuppressionItem {
                id: r.id,
                account_id: r.account_id,
                scope: r.scope,
                phone_masked: r.phone.as_deref().map(mask_phone),
                reason: r.reason,
                source: r.source,
                created_at: r.created_at,
            })
            .collect(),
    ))
}

/// A callback the debtor asked for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallbackItem {
    /// Callback id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// Not before this time.
    pub at: DateTime<Utc>,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
}

/// Callbacks still to come (or all), soonest first.
#[utoipa::path(get, path = "/api/v1/callbacks", tag = "holds",
    params(HoldQuery),
    responses((status = 200, body = Vec<CallbackItem>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn callbacks(
    State(st): State<AppState>,
    _who: Authed<WorkCases>,
    ApiQuery(q): ApiQuery<HoldQuery>,
) -> Result<Json<Vec<CallbackItem>>, WebError> {
    let now = st.now();
    let all = q.all.unwrap_or(false);
    let rows = st
        .db
        .run(move |s| s.list_callbacks(now, all, filter(q.account_id).as_deref()))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| CallbackItem {
                id: c.id,
                account_id: c.account_id,
                at: c.at,
                created_at: c.created_at,
            })
            .collect(),
    ))
}
