//! `/api/v1/campaigns`: campaigns created and fed through the API (an
//! accounts CSV), started, paused and stopped; the service's dialler runs
//! every running campaign continuously. Admins change them; QA and admins
//! read them. A CSV with a bad row is refused whole (the first bad line
//! named), so an upload either lands entirely or changes nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::account::csv::{load_accounts_with, LoadOptions};
use crate::store::campaigns::{CampaignRefusal, CampaignRow, CampaignState};
use crate::web::access::check_name;
use crate::web::auth::{Administer, Authed, SeeStats};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::{bad_csv_line, require_csv, ApiJson, Id};
use crate::web::state::AppState;

pub use crate::web::input::CSV_LIMIT;

/// A campaign.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignItem {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// `draft`, `running`, `paused` or `stopped`.
    #[schema(value_type = String, example = "running")]
    pub state: CampaignState,
    /// How many accounts it calls.
    pub accounts: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<CampaignRow> for CampaignItem {
    fn from(c: CampaignRow) -> CampaignItem {
        CampaignItem {
            id: c.id,
            name: c.name,
            state: c.state,
            accounts: c.accounts,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

fn refused(id: i64, r: CampaignRefusal, wanted: &str) -> WebError {
    match r {
        CampaignRefusal::NotFound => WebError::NotFound {
            what: "campaign",
            id: id.to_string(),
        },
        CampaignRefusal::NameTaken => {
            WebError::Conflict("a campaign with this name exists: choose another name".into())
        }
        CampaignRefusal::State(s) => WebError::Conflict(format!(
            "campaign {id} is {}: it cannot {wanted}",
            s.as_str()
        )),
    }
}

/// Every campaign, newest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns",
    responses((status = 200, body = Vec<CampaignItem>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(st): State<AppState>,
    _who: Authed<SeeStats>,
) -> Result<Json<Vec<CampaignItem>>, WebError> {
    let rows = st.db.run(|s| s.campaigns()).await?;
    Ok(Json(rows.into_iter().map(CampaignItem::from).collect()))
}

/// One campaign.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id", minimum = 1)),
    responses((status = 200, body = CampaignItem), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn detail(
    State(st): State<AppState>,
    _who: Authed<SeeStats>,
    Id(id): Id,
) -> Result<Json<CampaignItem>, WebError> {
    st.db
        .run(move |s| s.campaign(id))
        .await?
        .map(|c| Json(c.into()))
        .ok_or(WebError::NotFound {
            what: "campaign",
            id: id.to_string(),
        })
}

/// A campaign to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// Its unique name (letters, digits, `. _ @ -`).
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub name: String,
}

/// Creates a campaign (a draft: feed it accounts, then start it).
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns",
    request_body = NewCampaign,
    responses((status = 201, body = CampaignItem), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(st): State<AppState>,
    who: Authed<Administer>,
    ApiJson(b): ApiJson<NewCampaign>,
) -> Result<(StatusCode, Json<CampaignItem>), WebError> {
    check_name("name", &b.name)?;
    let now = st.now();
    let actor = who.who.actor.clone();
    let row = st
        .db
        .run_web(move |s| match s.create_campaign(&b.name, &actor, now)? {
            Ok(id) => s
                .campaign(id)?
                .ok_or(WebError::Internal("campaign vanished".into())),
            Err(r) => Err(refused(0, r, "be created")),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// What an accounts upload did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Upload {
    /// The campaign after the upload.
    pub campaign: CampaignItem,
    /// Accounts read (inserted or updated).
    pub rows: u64,
    /// Of which new to this campaign.
    pub added: u64,
    /// What did not reject anything (unknown columns).
    pub warnings: Vec<String>,
}

/// Adds the accounts of a CSV (the `duecall run` format, `text/csv`) to a
/// campaign; accounts already known are updated. A bad row refuses the
/// whole file (400 naming its line and column), changing nothing.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/accounts", tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id", minimum = 1)),
    request_body(content = String, content_type = "text/csv", description = "Accounts CSV"),
    responses((status = 200, body = Upload), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn upload(
    State(st): State<AppState>,
    who: Authed<Administer>,
    Id(id): Id,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Upload>, WebError> {
    require_csv(&headers)?;
    let report = load_accounts_with(
        &body[..],
        &LoadOptions {
            default_region: st.policy.default_region.clone(),
        },
    );
    if let Some(e) = report.errors.first() {
        return Err(bad_csv_line(e.line, &e.reason, report.errors.len() - 1));
    }
    if report.accounts.is_empty() {
        return Err(WebError::bad("body", "no accounts in the file"));
    }
    let now = st.now();
    let actor = who.who.actor.clone();
    let accounts = report.accounts;
    let contact = report.contact;
    let rows = accounts.len() as u64;
    let (added, row) = st
        .db
        .run_web(move |s| {
            let added = s
                .add_campaign_accounts(id, &accounts, &contact, &actor, now)?
                .map_err(|r| refused(id, r, "take accounts"))?;
            let row = s.campaign(id)?.ok_or(WebError::NotFound {
                what: "campaign",
                id: id.to_string(),
            })?;
            Ok((added, row))
        })
        .await?;
    if row.state == CampaignState::Running {
        st.dialler.wake();
    }
    Ok(Json(Upload {
        campaign: row.into(),
        rows,
        added: added as u64,
        warnings: report.warnings,
    }))
}

async fn move_to(
    st: AppState,
    who: Authed<Administer>,
    id: i64,
    to: CampaignState,
    wanted: &'static str,
) -> Result<Json<CampaignItem>, WebError> {
    let now = st.now();
    let actor = who.who.actor.clone();
    let row = st
        .db
        .run_web(move |s| {
            s.set_campaign_state(id, to, &actor, now)?
                .map_err(|r| refused(id, r, wanted))
        })
        .await?;
    st.dialler.wake();
    Ok(Json(row.into()))
}

/// Starts (or resumes) a campaign: its accounts are dialled whenever the
/// gate allows, across days, until it is paused or stopped.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/start", tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id", minimum = 1)),
    responses((status = 200, body = CampaignItem), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn start(
    State(st): State<AppState>,
    who: Authed<Administer>,
    Id(id): Id,
) -> Result<Json<CampaignItem>, WebError> {
    move_to(st, who, id, CampaignState::Running, "start").await
}

/// Pauses a campaign: no new dials (calls in flight end normally).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/pause", tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id", minimum = 1)),
    responses((status = 200, body = CampaignItem), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn pause(
    State(st): State<AppState>,
    who: Authed<Administer>,
    Id(id): Id,
) -> Result<Json<CampaignItem>, WebError> {
    move_to(st, who, id, CampaignState::Paused, "pause").await
}

/// Stops a campaign for good (calls in flight end normally).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/stop", tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id", minimum = 1)),
    responses((status = 200, body = CampaignItem), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn stop(
    State(st): State<AppState>,
    who: Authed<Administer>,
    Id(id): Id,
) -> Result<Json<CampaignItem>, WebError> {
    move_to(st, who, id, CampaignState::Stopped, "stop").await
}
