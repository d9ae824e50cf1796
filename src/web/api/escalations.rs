//! `/api/v1/escalations`: the collectors' queue. List with filters (newest
//! first), one case with its transcript, claim (exactly one winner, 409
//! for every other claim), give back, note, and close with an outcome that
//! feeds back into what the gate reads. Every change is audited in its own
//! transaction (the store does it); reading a case audits the transcript
//! read.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::attempts::{intent_param, Order};
use super::views::{self, AccountBrief, Page, TranscriptLine};
use crate::outcome::SuppressScope;
use crate::store::casework::{
    CaseRefusal, CaseWork, CloseOutcome, Closure, EscalationFilter, Note,
};
use crate::store::{AttemptId, Escalation, EscalationStatus};
use crate::web::auth::{Authed, WorkCases};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::{filter, ApiJson, ApiQuery, Id};
use crate::web::state::AppState;

/// Longest note or reason.
pub const MAX_TEXT: usize = 4000;

/// Which cases to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusParam {
    /// Waiting for a collector.
    Open,
    /// A collector has it.
    Claimed,
    /// Dealt with.
    Closed,
    /// Open or claimed (the default).
    Active,
    /// Every case.
    All,
}

/// Filters of the escalation queue.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EscalationQuery {
    /// `active` (open or claimed, the default), `open`, `claimed`, `closed`, `all`.
    #[param(inline)]
    pub status: Option<StatusParam>,
    /// Only this intent (`hardship`, `dispute`, ...).
    pub intent: Option<String>,
    /// Only this reason (`hardship`, `paid-unverified`, `unknown`, ...).
    pub reason: Option<String>,
    /// Only this account.
    pub account_id: Option<String>,
    /// Only claimed (true) or unclaimed (false) cases.
    pub claimed: Option<bool>,
    /// Only cases claimed by this collector.
    pub claimed_by: Option<String>,
    /// Only cases at least this many minutes old.
    #[param(minimum = 0)]
    pub min_age_minutes: Option<u32>,
    /// Only cases at most this many minutes old.
    #[param(minimum = 0)]
    pub max_age_minutes: Option<u32>,
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

/// One case in the queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EscalationItem {
    /// Case id.
    pub id: i64,
    /// The account (number masked).
    pub account: Option<AccountBrief>,
    /// The account id.
    pub account_id: String,
    /// The call it came from.
    pub attempt_id: Option<i64>,
    /// Why a person is needed.
    pub reason: String,
    /// The intent that led here.
    pub intent: Option<String>,
    /// That intent's confidence.
    pub confidence: Option<f64>,
    /// One line for the queue.
    pub summary: String,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
    /// Its age in seconds.
    pub age_s: i64,
    /// `open`, `claimed` or `closed`.
    pub status: String,
    /// Who has it.
    pub claimed_by: Option<String>,
}

/// The confidence of the turn that decided: the last one with an intent.
fn deciding_confidence(transcript: &serde_json::Value) -> Option<f64> {
    transcript
        .as_array()?
        .iter()
        .rev()
        .find(|t| t.get("intent").is_some_and(|i| !i.is_null()))
        .and_then(|t| t.get("confidence"))
        .and_then(|c| c.as_f64())
}

fn item(e: &Escalation, account: Option<AccountBrief>, now: DateTime<Utc>) -> EscalationItem {
    EscalationItem {
        id: e.id,
        account,
        account_id: e.account_id.clone(),
        attempt_id: e.attempt_id.map(|a| a.0),
        reason: e.reason.clone(),
        intent: e.intent.clone(),
        confidence: deciding_confidence(&e.transcript),
        summary: e.summary.clone(),
        created_at: e.created_at,
        age_s: (now - e.created_at).num_seconds().max(0),
        status: e.status.as_str().to_string(),
        claimed_by: e.claimed_by.clone(),
    }
}

fn total_header(total: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-total-count", HeaderValue::from(total));
    h
}

/// The queue: a JSON list, newest first (`X-Total-Count` has the number
/// of matches before paging).
#[utoipa::path(get, path = "/api/v1/escalations", tag = "escalations",
    params(EscalationQuery),
    responses(
        (status = 200, body = Vec<EscalationItem>, headers(("x-total-count" = u64, description = "Matches before paging"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(st): State<AppState>,
    _who: Authed<WorkCases>,
    ApiQuery(q): ApiQuery<EscalationQuery>,
) -> Result<impl IntoResponse, WebError> {
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .get()?;
    let now = st.now();
    let mut statuses = match q.status.unwrap_or(StatusParam::Active) {
        StatusParam::Open => vec![EscalationStatus::Open],
        StatusParam::Claimed => vec![EscalationStatus::Claimed],
        StatusParam::Closed => vec![EscalationStatus::Closed],
        StatusParam::Active => vec![EscalationStatus::Open, EscalationStatus::Claimed],
        StatusParam::All => vec![
            EscalationStatus::Open,
            EscalationStatus::Claimed,
            EscalationStatus::Closed,
        ],
    };
    match q.claimed {
        Some(true) => statuses.retain(|s| *s == EscalationStatus::Claimed),
        Some(false) => statuses.retain(|s| *s == EscalationStatus::Open),
        None => {}
    }
    if statuses.is_empty() {
        return Ok((total_header(0), Json(Vec::<EscalationItem>::new())));
    }
    let mins = |m: u32| Duration::minutes(i64::from(m));
    if let (Some(a), Some(b)) = (q.min_age_minutes, q.max_age_minutes) {
        if a > b {
            return Err(WebError::bad(
                "min_age_minutes",
                "must not be more than max_age_minutes",
            ));
        }
    }
    let f = EscalationFilter {
        statuses,
        intent: intent_param("intent", q.intent)?,
        reason: filter(q.reason),
        account_id: filter(q.account_id),
        claimed_by: filter(q.claimed_by),
        created_before: q.min_age_minutes.map(|m| now - mins(m)),
        created_after: q.max_age_minutes.map(|m| now - mins(m)),
        oldest_first: q.order == Some(Order::Oldest),
        limit,
        offset,
    };
    let (rows, total) = st
        .db
        .run(move |s| {
            let (rows, total) = s.list_escalations(&f)?;
            Ok((views::with_accounts(s, rows, |e| &e.account_id)?, total))
        })
        .await?;
    let today = views::today(now);
    let items: Vec<EscalationItem> = rows
        .iter()
        .map(|(e, a)| item(e, a.as_ref().map(|a| views::brief(a, today)), now))
        .collect();
    Ok((total_header(total), Json(items)))
}

/// One case whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationDetail {
    /// The case as the queue shows it.
    #[serde(flatten)]
    pub item: EscalationItem,
    /// When it was claimed.
    pub claimed_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// The timed transcript of the call.
    pub transcript: Vec<TranscriptLine>,
    /// The policy decision that allowed the call (its rules and figures).
    #[schema(value_type = Object, nullable)]
    pub policy: Option<serde_json::Value>,
    /// The call's route.
    #[schema(value_type = Object, nullable)]
    pub route: Option<serde_json::Value>,
    /// ms since the dial at which the recording starts.
    pub recording_offset_ms: Option<u64>,
    /// Where the call's recording is served.
    pub recording_url: Option<String>,
    /// Collectors' notes, oldest first.
    pub notes: Vec<Note>,
    /// How it was closed.
    pub closure: Option<Closure>,
}

/// One case with its transcript, notes and closure. Audited
/// (`transcript.read`).
#[utoipa::path(get, path = "/api/v1/escalations/{id}", tag = "escalations",
    params(("id" = i64, Path, description = "Case id", minimum = 1)),
    responses(
        (status = 200, body = EscalationDetail),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn detail(
    State(st): State<AppState>,
    who: Authed<WorkCases>,
    Id(id): Id,
) -> Result<Json<EscalationDetail>, WebError> {
    let now = st.now();
    let actor = who.who.actor.clone();
    let found = st
        .db
        .run(move |s| {
            let Some((e, work)) = s.escalation_case(id)? else {
                return Ok(None);
            };
            let account = s.account(&e.account_id)?;
            let attempt = match e.attempt_id {
                Some(a) => s.attempt(a)?,
                None => None,
            };
            s.audit(
                now,
                &actor,
                "transcript.read",
                &format!("escalation:{id}"),
                &serde_json::json!({"attempt_id": e.attempt_id.map(|a| a.0)}),
            )?;
            Ok(Some((e, work, account, attempt)))
        })
        .await?;
    let Some((e, work, account, attempt)) = found else {
        return Err(WebError::NotFound {
            what: "escalation",
            id: id.to_string(),
        });
    };
    Ok(Json(case_detail(&st, e, work, account, attempt, now)))
}

fn case_detail(
    st: &AppState,
    e: Escalation,
    work: CaseWork,
    account: Option<crate::account::Account>,
    attempt: Option<crate::store::AttemptRecord>,
    now: DateTime<Utc>,
) -> EscalationDetail {
    let outcome = attempt.as_ref().and_then(|a| a.outcome.as_ref());
    let offset = outcome.and_then(views::recording_offset_ms);
    let day = attempt
        .as_ref()
        .map(|a| a.decided_at.date_naive())
        .unwrap_or_else(|| e.created_at.date_naive());
    let transcript =
        views::account_transcript(&e.transcript, offset, &st.scripts, account.as_ref(), day);
    let has_recording = attempt.as_ref().is_some_and(|a| a.recording.is_some());
    EscalationDetail {
        item: item(
            &e,
            account.as_ref().map(|a| views::brief(a, views::today(now))),
            now,
        ),
        claimed_at: work.claimed_at,
        closed_at: work.closed_at,
        transcript,
        policy: attempt.as_ref().map(|a| a.policy.clone()),
        route: views::route_json(attempt.as_ref().and_then(|a| a.route.as_ref())),
        recording_offset_ms: offset,
        recording_url: match (has_recording, e.attempt_id) {
            (true, Some(AttemptId(a))) => Some(views::recording_url(a)),
            _ => None,
        },
        notes: work.notes,
        closure: work.closure,
    }
}

fn refusal(id: i64, r: CaseRefusal) -> WebError {
    match r {
        CaseRefusal::NotFound => WebError::NotFound {
            what: "escalation",
            id: id.to_string(),
        },
        CaseRefusal::ClaimedBy(by) => {
            WebError::Conflict(format!("escalation {id} is claimed by {by}"))
        }
        CaseRefusal::AlreadyYours => {
            WebError::Conflict(format!("escalation {id} is already claimed by you"))
        }
        CaseRefusal::NotClaimed => WebError::Conflict(format!(
            "escalation {id} is not claimed: claim it first (POST /api/v1/escalations/{id}/claim)"
        )),
        CaseRefusal::Closed => WebError::Conflict(format!("escalation {id} is closed")),
    }
}

/// Claims a case. Of any number of concurrent claims exactly one gets
/// 200; every other (the winner's second claim too) gets 409 naming who
/// has it.
#[utoipa::path(post, path = "/api/v1/escalations/{id}/claim", tag = "escalations",
    params(("id" = i64, Path, description = "Case id", minimum = 1)),
    responses(
        (status = 200, body = EscalationItem),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn claim(
    State(st): State<AppState>,
    who: Authed<WorkCases>,
    Id(id): Id,
) -> Result<Json<EscalationItem>, WebError> {
    let now = st.now();
    let actor = who.who.actor.clone();
    let e = st
        .db
        .run(move |s| s.claim_case(id, &actor, now))
        .await?
        .map_err(|r| refusal(id, r))?;
    Ok(Json(item(&e, None, now)))
}

/// Gives a claimed case back to the queue (its claimer, or an admin).
#[utoipa::path(post, path = "/api/v1/escalations/{id}/unclaim", tag = "escalations",
    params(("id" = i64, Path, description = "Case id", minimum = 1)),
    responses(
        (status = 200, body = EscalationItem),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn unclaim(
    State(st): State<AppState>,
    who: Authed<WorkCases>,
    Id(id): Id,
) -> Result<Json<EscalationItem>, WebError> {
    let now = st.now();
    let admin = who.who.is_admin();
    let actor = who.who.actor.clone();
    let e = st
        .db
        .run(move |s| s.unclaim_case(id, &actor, admin, now))
        .await?
        .map_err(|r| refusal(id, r))?;
    Ok(Json(item(&e, None, now)))
}

/// A note to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// The note (1-4000 characters, not only blanks).
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    pub text: String,
}

fn check_text(field: &str, t: &str) -> Result<(), WebError> {
    if t.trim().is_empty() {
        return Err(WebError::bad(field, "must not be empty"));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(WebError::bad(
            field,
            format!("at most {MAX_TEXT} characters"),
        ));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(WebError::bad(field, "must not contain control characters"));
    }
    Ok(())
}

/// Adds a note to a case you have claimed (admins: any case not closed).
#[utoipa::path(post, path = "/api/v1/escalations/{id}/notes", tag = "escalations",
    params(("id" = i64, Path, description = "Case id", minimum = 1)),
    request_body = NoteBody,
    responses(
        (status = 201, body = Note),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_note(
    State(st): State<AppState>,
    who: Authed<WorkCases>,
    Id(id): Id,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<(StatusCode, Json<Note>), WebError> {
    check_text("text", &body.text)?;
    let now = st.now();
    let admin = who.who.is_admin();
    let actor = who.who.actor.clone();
    let note = st
        .db
        .run(move |s| s.add_case_note(id, &actor, admin, &body.text, now))
        .await?
        .map_err(|r| refusal(id, r))?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// What closing a case does to later calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseKind {
    /// No robot calls until `until`.
    Pause,
    /// No more robot calls to the number called (`scope: number`) or the account (`scope: account`).
    Suppress,
    /// Lift every pause and hold on the account now.
    Release,
    /// Lift pauses and holds; call again no earlier than `at`.
    Retry,
    /// Dealt with; nothing changes for later calls.
    Resolved,
}

/// Suppression scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScopeParam {
    /// The number called.
    Number,
    /// Every number of the account.
    Account,
}

/// How to close a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// The outcome.
    pub outcome: CloseKind,
    /// `pause`: when it ends (RFC 3339, in the future, within 400 days).
    pub until: Option<DateTime<Utc>>,
    /// `retry`: the earliest next call (RFC 3339, not in the past, within 400 days).
    pub at: Option<DateTime<Utc>>,
    /// `suppress`: `number` or `account`.
    pub scope: Option<ScopeParam>,
    /// Why (stored on the pause or suppression; default: the case's reason).
    #[schema(max_length = 4000, pattern = "\\S")]
    pub reason: Option<String>,
    /// A closing note.
    #[schema(max_length = 4000, pattern = "\\S")]
    pub note: Option<String>,
}

/// What closing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CloseResult {
    /// The closure as stored.
    pub closure: Closure,
    /// The account's state for the gate after it.
    pub account_state: AccountStateView,
}

/// What the gate reads about an account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountStateView {
    /// No robot calls to any of its numbers.
    pub suppressed_account: bool,
    /// Numbers with no robot calls (masked).
    pub suppressed_numbers: Vec<String>,
    /// The latest end of any pause (may be past).
    pub pause_until: Option<DateTime<Utc>>,
    /// Whether a pause or hold is in force now.
    pub paused_now: bool,
    /// The latest callback time asked for.
    pub callback_at: Option<DateTime<Utc>>,
}

/// The view of an account's state at `now`.
pub fn state_view(s: &crate::policy::AccountState, now: DateTime<Utc>) -> AccountStateView {
    AccountStateView {
        suppressed_account: s
            .suppressions
            .iter()
            .any(|x| x.scope == SuppressScope::Account),
        suppressed_numbers: s
            .suppressions
            .iter()
            .filter(|x| x.scope == SuppressScope::Number)
            .filter_map(|x| x.number.as_deref())
            .map(crate::account::mask_phone)
            .collect(),
        pause_until: s.pause_until,
        paused_now: s.pause_until.is_some_and(|u| u > now),
        callback_at: s.callback_at,
    }
}

fn close_outcome(
    b: &CloseBody,
    case_reason: &str,
    now: DateTime<Utc>,
) -> Result<CloseOutcome, WebError> {
    let horizon = now + Duration::days(400);
    let reason = match &b.reason {
        Some(r) => {
            check_text("reason", r)?;
            r.clone()
        }
        None => case_reason.to_string(),
    };
    let stray = |field: &str, present: bool| -> Result<(), WebError> {
        if present {
            Err(WebError::bad(
                field,
                format!("does not apply to outcome {:?}", b.outcome),
            ))
        } else {
            Ok(())
        }
    };
    Ok(match b.outcome {
        CloseKind::Pause => {
            stray("at", b.at.is_some())?;
            stray("scope", b.scope.is_some())?;
            let until = b
                .until
                .ok_or_else(|| WebError::bad("until", "a pause needs its end (RFC 3339)"))?;
            if until <= now || until > horizon {
                return Err(WebError::bad(
                    "until",
                    "must be in the future and within 400 days",
                ));
            }
            CloseOutcome::Pause { until, reason }
        }
        CloseKind::Suppress => {
            stray("at", b.at.is_some())?;
            stray("until", b.until.is_some())?;
            let scope = b
                .scope
                .ok_or_else(|| WebError::bad("scope", "number or account"))?;
            CloseOutcome::Suppress {
                scope: match scope {
                    ScopeParam::Number => SuppressScope::Number,
                    ScopeParam::Account => SuppressScope::Account,
                },
                reason,
            }
        }
        CloseKind::Release => {
            stray("at", b.at.is_some())?;
            stray("until", b.until.is_some())?;
            stray("scope", b.scope.is_some())?;
            CloseOutcome::Release
        }
        CloseKind::Retry => {
            stray("until", b.until.is_some())?;
            stray("scope", b.scope.is_some())?;
            let at = b
                .at
                .ok_or_else(|| WebError::bad("at", "a retry needs its earliest time (RFC 3339)"))?;
            if at < now - Duration::minutes(1) || at > horizon {
                return Err(WebError::bad("at", "must not be past and within 400 days"));
            }
            CloseOutcome::Retry { at: at.max(now) }
        }
        CloseKind::Resolved => {
            stray("at", b.at.is_some())?;
            stray("until", b.until.is_some())?;
            stray("scope", b.scope.is_some())?;
            CloseOutcome::Resolved
        }
    })
}

/// Closes a case you have claimed (admins: any case not closed) with an
/// outcome: `pause` (until), `suppress` (scope), `release` (lift pauses and
/// holds), `retry` (at), `resolved`. Bad input changes nothing.
#[utoipa::path(post, path = "/api/v1/escalations/{id}/close", tag = "escalations",
    params(("id" = i64, Path, description = "Case id", minimum = 1)),
    request_body = CloseBody,
    responses(
        (status = 200, body = CloseResult),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn close(
    State(st): State<AppState>,
    who: Authed<WorkCases>,
    Id(id): Id,
    ApiJson(body): ApiJson<CloseBody>,
) -> Result<Json<CloseResult>, WebError> {
    if let Some(n) = &body.note {
        check_text("note", n)?;
    }
    let now = st.now();
    let admin = who.who.is_admin();
    let actor = who.who.actor.clone();
    // The case's reason is the default reason: read it first (a missing
    // case is a 404 before any field is judged).
    let case_reason = st
        .db
        .run(move |s| Ok(s.escalation_case(id)?.map(|(e, _)| e.reason)))
        .await?
        .ok_or_else(|| WebError::NotFound {
            what: "escalation",
            id: id.to_string(),
        })?;
    let outcome = close_outcome(&body, &case_reason, now)?;
    let note = body.note.clone();
    let (closure, state) = st
        .db
        .run(move |s| {
            let r = s.close_case(id, &actor, admin, &outcome, note.as_deref(), now)?;
            let state = match &r {
                Ok(_) => {
                    let acc = s.escalation_case(id)?.map(|(e, _)| e.account_id);
                    match acc {
                        Some(a) => Some(s.account_state(&a)?),
                        None => None,
                    }
                }
                Err(_) => None,
            };
            Ok((r, state))
        })
        .await?;
    let closure = closure.map_err(|r| refusal(id, r))?;
    // A retry or a released hold may make the account callable again.
    st.dialler.wake();
    Ok(Json(CloseResult {
        closure,
        account_state: state_view(&state.unwrap_or_default(), now),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(outcome: CloseKind) -> CloseBody {
        CloseBody {
            outcome,
            until: None,
            at: None,
            scope: None,
            reason: None,
            note: None,
        }
    }

    fn field(r: Result<CloseOutcome, WebError>) -> String {
        match r {
            Err(WebError::BadInput { field, .. }) => field,
            other => panic!("expected bad input, got {other:?}"),
        }
    }

    #[test]
    fn close_bodies_are_checked_field_by_field() {
        let now = Utc::now();
        assert_eq!(
            field(close_outcome(&body(CloseKind::Pause), "hardship", now)),
            "until"
        );
        let mut b = body(CloseKind::Pause);
        b.until = Some(now - Duration::hours(1));
        assert_eq!(field(close_outcome(&b, "hardship", now)), "until");
        b.until = Some(now + Duration::days(30));
        assert!(matches!(
            close_outcome(&b, "hardship", now),
            Ok(CloseOutcome::Pause { reason, .. }) if reason == "hardship"
        ));
        b.scope = Some(ScopeParam::Account);
        assert_eq!(field(close_outcome(&b, "hardship", now)), "scope");
        assert_eq!(
            field(close_outcome(&body(CloseKind::Suppress), "x", now)),
            "scope"
        );
        assert_eq!(
            field(close_outcome(&body(CloseKind::Retry), "x", now)),
            "at"
        );
        let mut r = body(CloseKind::Retry);
        r.at = Some(now + Duration::days(2));
        assert!(matches!(
            close_outcome(&r, "x", now),
            Ok(CloseOutcome::Retry { .. })
        ));
        let mut e = body(CloseKind::Resolved);
        e.reason = Some("   ".into());
        assert_eq!(field(close_outcome(&e, "x", now)), "reason");
    }

    #[test]
    fn the_deciding_confidence_is_the_last_intent_s() {
        let t = serde_json::json!([
            {"intent": "identity_confirmed", "confidence": 0.9},
            {"intent": "hardship", "confidence": 0.75},
            {"intent": null, "confidence": null}
        ]);
        assert_eq!(deciding_confidence(&t), Some(0.75));
    }
}
