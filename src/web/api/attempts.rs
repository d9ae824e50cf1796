//! `/api/v1/attempts`: calls as the campaigns left them: the list with
//! filters, one call whole (outcome JSON, turns, timed transcript, QA
//! labels), and its recording with range requests. Reading a transcript
//! or a recording writes an audit line first.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{self, Page, TranscriptLine};
use crate::account::mask_phone;
use crate::intent::IntentKind;
use crate::store::audit::Actor;
use crate::store::browse::{AttemptFilter, AttemptSummary};
use crate::store::qa_labels::Label;
use crate::store::AttemptId;
use crate::web::auth::{Authed, ReadCalls};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::{ApiQuery, Id};
use crate::web::recording;
use crate::web::state::AppState;

/// Filters of the attempt list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptQuery {
    /// Only this account.
    pub account_id: Option<String>,
    /// Only this disposition.
    #[param(inline)]
    pub disposition: Option<DispositionParam>,
    /// Only calls routed this way.
    #[param(inline)]
    pub route: Option<RouteParam>,
    /// Only calls where some reply had this intent (`already_paid`, `hardship`, ...; empty: any).
    pub intent: Option<String>,
    /// Only calls decided at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only calls decided before this instant (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Only calls with a reply below this intent confidence (0-1).
    #[param(minimum = 0.0, maximum = 1.0)]
    pub max_confidence: Option<f64>,
    /// Only calls with (true) or without (false) a QA label.
    pub labelled: Option<bool>,
    /// `newest` (default) or `oldest` first.
    #[param(inline)]
    pub order: Option<Order>,
    /// At most this many (1-500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Skip this many.
    #[param(minimum = 0, maximum = 10000000)]
    pub offset: Option<u32>,
}

/// A disposition (ARCHITECTURE.md "Words").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DispositionParam {
    /// A person (or not yet known) answered.
    Answered,
    /// A machine answered.
    Voicemail,
    /// Busy.
    Busy,
    /// No answer.
    NoAnswer,
    /// Rejected.
    Rejected,
    /// Not found.
    NotFound,
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl DispositionParam {
    fn as_str(self) -> &'static str {
        match self {
            DispositionParam::Answered => "answered",
            DispositionParam::Voicemail => "voicemail",
            DispositionParam::Busy => "busy",
            DispositionParam::NoAnswer => "no-answer",
            DispositionParam::Rejected => "rejected",
            DispositionParam::NotFound => "not-found",
            DispositionParam::Failed => "failed",
            DispositionParam::Cancelled => "cancelled",
        }
    }
}

/// A route kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteParam {
    /// To a person.
    Agent,
    /// Paused.
    Pause,
    /// Suppressed.
    Suppress,
    /// Retried.
    Retry,
    /// Done.
    Done,
}

impl RouteParam {
    fn as_str(self) -> &'static str {
        match self {
            RouteParam::Agent => "agent",
            RouteParam::Pause => "pause",
            RouteParam::Suppress => "suppress",
            RouteParam::Retry => "retry",
            RouteParam::Done => "done",
        }
    }
}

/// List order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Newest first.
    Newest,
    /// Oldest first.
    Oldest,
}

/// Checks an intent name against the fixed set.
pub fn intent_param(field: &str, v: Option<String>) -> Result<Option<String>, WebError> {
    match crate::web::input::filter(v) {
        None => Ok(None),
        Some(s) => match IntentKind::parse(&s) {
            Some(k) => Ok(Some(k.as_str().to_string())),
            None => Err(WebError::bad(
                field,
                format!("{s:?} is not an intent (already_paid, promise_to_pay, hardship, wrong_number, not_available, dispute, stop_calling, request_agent, callback_later, identity_confirmed, identity_denied, who_is_calling, unknown)"),
            )),
        },
    }
}

/// One call in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptItem {
    /// Attempt id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// The number dialled, masked.
    pub phone_masked: String,
    /// When the gate allowed it.
    pub decided_at: DateTime<Utc>,
    /// When the INVITE left.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// `decided`, `dialling`, `ended`, `failed_by_crash`.
    pub state: String,
    /// How it ended.
    pub disposition: Option<String>,
    /// Why, for `failed`.
    pub reason: Option<String>,
    /// The right person was spoken with.
    pub conversation: bool,
    /// Route kind.
    pub route: Option<String>,
    /// Route reason.
    pub route_reason: Option<String>,
    /// The last intent recognised.
    pub intent: Option<String>,
    /// The lowest intent confidence of the call.
    pub min_confidence: Option<f64>,
    /// Number of turns.
    pub turns: u32,
    /// QA labels on the call.
    pub labels: u32,
    /// Where its recording is served, if one was kept.
    pub recording_url: Option<String>,
    /// `duecall`, or `import` for history from another dialler.
    pub source: String,
}

impl From<AttemptSummary> for AttemptItem {
    fn from(a: AttemptSummary) -> Self {
        AttemptItem {
            recording_url: a.has_recording.then(|| views::recording_url(a.id)),
            id: a.id,
            account_id: a.account_id,
            phone_masked: mask_phone(&a.phone),
            decided_at: a.decided_at,
            started_at: a.started_at,
            ended_at: a.ended_at,
            state: a.state,
            disposition: a.disposition,
            reason: a.reason,
            conversation: a.conversation,
            route: a.route,
            route_reason: a.route_reason,
            intent: a.intent,
            min_confidence: a.min_confidence,
            turns: a.turns,
            labels: a.labels,
            source: a.source,
        }
    }
}

/// Lists calls: a JSON list, newest first (`X-Total-Count` has the
/// number of matches before paging).
#[utoipa::path(get, path = "/api/v1/attempts", tag = "attempts",
    params(AttemptQuery),
    responses(
        (status = 200, body = Vec<AttemptItem>, headers(("x-total-count" = u64, description = "Matches before paging"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(st): State<AppState>,
    _who: Authed<ReadCalls>,
    ApiQuery(q): ApiQuery<AttemptQuery>,
) -> Result<impl IntoResponse, WebError> {
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .get()?;
    if let Some(c) = q.max_confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(WebError::bad("max_confidence", "must be between 0 and 1"));
        }
    }
    let f = AttemptFilter {
        account_id: crate::web::input::filter(q.account_id),
        disposition: q.disposition.map(|d| d.as_str().to_string()),
        route: q.route.map(|r| r.as_str().to_string()),
        intent: intent_param("intent", q.intent)?,
        since: q.since,
        until: q.until,
        max_confidence: q.max_confidence,
        labelled: q.labelled,
        oldest_first: q.order == Some(Order::Oldest),
        limit,
        offset,
    };
    let (rows, total) = st.db.run(move |s| s.list_attempts(&f)).await?;
    let mut h = HeaderMap::new();
    h.insert("x-total-count", total.into());
    Ok((
        h,
        Json(rows.into_iter().map(AttemptItem::from).collect::<Vec<_>>()),
    ))
}

/// One call whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptDetail {
    /// Attempt id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// The number dialled, masked.
    pub phone_masked: String,
    /// When the gate allowed it.
    pub decided_at: DateTime<Utc>,
    /// When the INVITE left.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Life-cycle state.
    pub state: String,
    /// How it ended.
    pub disposition: Option<String>,
    /// Why, for `failed`.
    pub reason: Option<String>,
    /// Final SIP status.
    pub sip_status: Option<u16>,
    /// The right person was spoken with.
    pub conversation: bool,
    /// The policy decision that allowed the dial (every rule and its figures).
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
    /// The outcome JSON (ARCHITECTURE.md "Shapes"), as stored.
    #[schema(value_type = Object, nullable)]
    pub outcome: Option<serde_json::Value>,
    /// The route.
    #[schema(value_type = Object, nullable)]
    pub route: Option<serde_json::Value>,
    /// The timed transcript.
    pub transcript: Vec<TranscriptLine>,
    /// The language the call was held in (the account's: `en`, `zh`);
    /// `None` when the account is no longer stored.
    pub language: Option<String>,
    /// ms since the dial at which the recording starts.
    pub recording_offset_ms: Option<u64>,
    /// Where the recording is served.
    pub recording_url: Option<String>,
    /// QA labels, oldest first.
    pub labels: Vec<Label>,
}

/// One call with its outcome JSON, transcript and labels. Audited
/// (`transcript.read`).
#[utoipa::path(get, path = "/api/v1/attempts/{id}", tag = "attempts",
    params(("id" = i64, Path, description = "Attempt id", minimum = 1)),
    responses(
        (status = 200, body = AttemptDetail),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn detail(
    State(st): State<AppState>,
    who: Authed<ReadCalls>,
    Id(id): Id,
) -> Result<Json<AttemptDetail>, WebError> {
    let now = st.now();
    let actor = who.who.actor.clone();
    let found = st
        .db
        .run(move |s| {
            let Some(rec) = s.attempt(AttemptId(id))? else {
                return Ok(None);
            };
            let account = s.account(&rec.account_id)?;
            let labels = s.labels_of(id)?;
            s.audit(
                now,
                &actor,
                "transcript.read",
                &format!("attempt:{id}"),
                &serde_json::json!({}),
            )?;
            Ok(Some((rec, account, labels)))
        })
        .await?;
    let Some((rec, account, labels)) = found else {
        return Err(WebError::NotFound {
            what: "attempt",
            id: id.to_string(),
        });
    };
    let offset = rec.outcome.as_ref().and_then(views::recording_offset_ms);
    // The outcome JSON's turns carry reply times; the store's rows are the
    // fallback for attempts without one.
    let stored_turns;
    let turns = match rec.outcome.as_ref().and_then(|o| o.get("turns")) {
        Some(t) if t.as_array().is_some_and(|a| !a.is_empty()) => t,
        _ => {
            stored_turns = serde_json::to_value(&rec.turns).unwrap_or_default();
            &stored_turns
        }
    };
    let transcript = views::account_transcript(
        turns,
        offset,
        &st.scripts,
        account.as_ref(),
        rec.decided_at.date_naive(),
    );
    Ok(Json(AttemptDetail {
        id,
        account_id: rec.account_id,
        phone_masked: mask_phone(&rec.phone),
        decided_at: rec.decided_at,
        started_at: rec.started_at,
        ended_at: rec.ended_at,
        state: rec.state.as_str().to_string(),
        disposition: rec.disposition.map(|d| d.as_str().to_string()),
        reason: rec.reason,
        sip_status: rec.sip_status,
        conversation: rec.conversation,
        policy: rec.policy,
        outcome: rec.outcome,
        route: views::route_json(rec.route.as_ref()),
        transcript,
        language: account.as_ref().map(|a| a.language.as_str().to_string()),
        recording_offset_ms: offset,
        recording_url: rec.recording.is_some().then(|| views::recording_url(id)),
        labels,
    }))
}

/// The call's two-channel recording (left: what duecall played, right:
/// what it heard) as `audio/wav`, with `Range` requests (206). Audited
/// (`recording.read`). Only files inside the data directory (or the
/// configured recordings directory) are served, after symlinks resolve.
#[utoipa::path(get, path = "/api/v1/attempts/{id}/recording", tag = "attempts",
    params(("id" = i64, Path, description = "Attempt id", minimum = 1),
           ("Range" = Option<String>, Header, description = "bytes=START-END")),
    responses(
        (status = 200, description = "The whole WAV", content_type = "audio/wav"),
        (status = 206, description = "The range asked for", content_type = "audio/wav"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 416, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn recording(
    State(st): State<AppState>,
    who: Authed<ReadCalls>,
    Id(id): Id,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let stored = st
        .db
        .run(move |s| Ok(s.attempt(AttemptId(id))?.map(|a| a.recording)))
        .await?;
    let not_found = || WebError::NotFound {
        what: "recording of attempt",
        id: id.to_string(),
    };
    let Some(Some(stored)) = stored else {
        return Err(not_found());
    };
    let path = recording::locate(&stored, &st.data_dir, &st.recording_roots).ok_or_else(|| {
        tracing::warn!(
            attempt = id,
            "recording path is missing or outside the data directory"
        );
        not_found()
    })?;
    audit_read(&st, &who.who.actor, id, &headers).await?;
    recording::serve_file(&path, &headers).await
}

/// Every request is logged; `continued` marks a range that does not start
/// at the first byte (a player seeking in a file it is already reading).
async fn audit_read(
    st: &AppState,
    actor: &Actor,
    id: i64,
    headers: &HeaderMap,
) -> Result<(), WebError> {
    let continuing = headers
        .get(axum::http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|r| !r.trim().starts_with("bytes=0-"));
    let now = st.now();
    let actor = actor.clone();
    st.db
        .run(move |s| {
            s.audit(
                now,
                &actor,
                "recording.read",
                &format!("attempt:{id}"),
                &serde_json::json!({"continued": continuing}),
            )
        })
        .await
}
