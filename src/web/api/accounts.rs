//! `/api/v1/accounts`: the debts and their state for the collectors: what
//! stops or delays calls (pauses, holds, suppressions, callbacks) and when
//! the gate would next allow a dial and why not now, decided by the real
//! policy over the stored history (the same gate the campaigns use).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::attempts::AttemptItem;
use super::escalations::{state_view, AccountStateView};
use super::views::{self, AccountBrief, Page};
use crate::account::{mask_phone, Account};
use crate::campaign::gate::{state_on_store, PolicyGate};
use crate::policy::PolicyDecision;
use crate::store::browse::AttemptFilter;
use crate::store::StoreError;
use crate::web::auth::{Authed, WorkCases};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::ApiQuery;
use crate::web::state::AppState;

/// Filters of the account list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    /// Only accounts whose id or name contains this (case-insensitive).
    pub q: Option<String>,
    /// At most this many (1-500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Skip this many.
    #[param(minimum = 0, maximum = 10000000)]
    pub offset: Option<u32>,
}

/// An account in a list, with what holds it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountItem {
    /// The account (number masked).
    #[serde(flatten)]
    pub brief: AccountBrief,
    /// What the gate reads about it.
    pub state: AccountStateView,
}

/// Accounts by id (`X-Total-Count` has the number of matches).
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    params(AccountQuery),
    responses((status = 200, body = Vec<AccountItem>, headers(("x-total-count" = u64, description = "Matches before paging"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(st): State<AppState>,
    _who: Authed<WorkCases>,
    ApiQuery(q): ApiQuery<AccountQuery>,
) -> Result<impl IntoResponse, WebError> {
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .get()?;
    let now = st.now();
    let needle = crate::web::input::filter(q.q).map(|s| s.to_lowercase());
    let policy = st.policy.clone();
    let (rows, total) = st
        .db
        .run(move |s| {
            let all: Vec<Account> = s
                .accounts()?
                .into_iter()
                .filter(|a| {
                    needle.as_ref().is_none_or(|n| {
                        a.account_id.to_lowercase().contains(n) || a.name.to_lowercase().contains(n)
                    })
                })
                .collect();
            let total = all.len() as u64;
            let mut out = Vec::new();
            for a in all.into_iter().skip(offset as usize).take(limit as usize) {
                let state = state_on_store(s, &a, &policy, now)?;
                out.push((a, state));
            }
            Ok((out, total))
        })
        .await?;
    let today = views::today(now);
    let items: Vec<AccountItem> = rows
        .iter()
        .map(|(a, s)| AccountItem {
            brief: views::brief(a, today),
            state: state_view(s, now),
        })
        .collect();
    let mut h = HeaderMap::new();
    h.insert("x-total-count", total.into());
    Ok((h, Json(items)))
}

/// When the gate would next allow a dial.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NextDial {
    /// A dial is allowed now.
    pub allowed_now: bool,
    /// The earliest allowed instant (none: not within the search horizon,
    /// e.g. suppressed or past the robot's stage).
    pub next_allowed_at: Option<DateTime<Utc>>,
    /// The rules that deny now, each with its figures.
    pub blocked_by: Vec<String>,
    /// The whole decision (every rule and its figures).
    #[schema(value_type = Object)]
    pub decision: serde_json::Value,
}

/// One account whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDetail {
    /// The account as the CSV gave it (numbers in full: collectors call back).
    #[schema(value_type = Object)]
    pub account: serde_json::Value,
    /// The brief (masked number, days past due).
    pub brief: AccountBrief,
    /// What the gate reads about it.
    pub state: AccountStateView,
    /// When the gate would next allow a dial, and why not now.
    pub next_dial: Option<NextDial>,
    /// Everything paid towards the debt (imported payments; exact decimal).
    #[schema(example = "125.50")]
    pub paid_total: String,
    /// Its calls, newest first (at most 50).
    pub attempts: Vec<AttemptItem>,
}

fn decide(
    at: &crate::store::Location,
    account: &Account,
    policy: &crate::policy::PolicyConfig,
    now: DateTime<Utc>,
) -> Result<PolicyDecision, StoreError> {
    // The campaigns' own gate (it reads every dial to the number too).
    let store = at.open_existing()?;
    let gate = PolicyGate::new(store, vec![account.clone()], policy.clone());
    gate.decision(0, &account.phone, now)
}

/// One account with its state, the gate's next allowed dial and its calls.
#[utoipa::path(get, path = "/api/v1/accounts/{account_id}", tag = "accounts",
    params(("account_id" = String, Path, description = "The lender's account id")),
    responses((status = 200, body = AccountDetail),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn detail(
    State(st): State<AppState>,
    _who: Authed<WorkCases>,
    Path(account_id): Path<String>,
) -> Result<Json<AccountDetail>, WebError> {
    let now = st.now();
    let policy = st.policy.clone();
    let at = st.db.location().clone();
    let id = account_id.clone();
    let found = st
        .db
        .run(move |s| {
            let Some(a) = s.account(&id)? else {
                return Ok(None);
            };
            let state = state_on_store(s, &a, &policy, now)?;
            let paid = s.paid_total(&id)?;
            let (attempts, _) = s.list_attempts(&AttemptFilter {
                account_id: Some(id.clone()),
                limit: 50,
                ..AttemptFilter::default()
            })?;
            let decision = decide(&at, &a, &policy, now);
            Ok(Some((a, state, attempts, decision, paid)))
        })
        .await?;
    let Some((a, state, attempts, decision, paid)) = found else {
        return Err(WebError::NotFound {
            what: "account",
            id: account_id,
        });
    };
    let next_dial = match decision {
        Ok(d) => Some(NextDial {
            allowed_now: d.allowed(),
            next_allowed_at: d.next_allowed_at,
            blocked_by: d
                .rules
                .iter()
                .filter(|r| !r.passed)
                .map(|r| format!("{}: {}", r.rule, r.detail))
                .collect(),
            decision: serde_json::to_value(&d).unwrap_or_default(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot compute the next allowed dial");
            None
        }
    };
    let mut account = serde_json::to_value(&a).unwrap_or_default();
    account["phone_masked"] = mask_phone(&a.phone).into();
    Ok(Json(AccountDetail {
        brief: views::brief(&a, views::today(now)),
        account,
        state: state_view(&state, now),
        next_dial,
        paid_total: {
            // Cents shown even when the payments were whole amounts.
            let mut p = paid;
            if p.scale() < 2 {
                p.rescale(2);
            }
            p.to_string()
        },
        attempts: attempts.into_iter().map(AttemptItem::from).collect(),
    }))
}
