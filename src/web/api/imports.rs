//! `/api/v1/imports/...`: the lender's do-not-call list and payments file
//! uploaded through the API. The same readers and the same store imports as
//! `duecall suppress import` and `duecall payments` (`account::lists`,
//! `Store::import_do_not_call_as` / `import_payments_as`): one parser, one
//! write. A file is read whole or refused whole (400 naming its first bad
//! line), so nothing already stored is lost or half-replaced; an import and
//! its audit line land in one transaction. Admins only. The dialler is woken
//! after an import: the gate reads the new list and payments at its next
//! decision.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::account::lists::{read_do_not_call, read_payments};
use crate::web::auth::{Administer, Authed};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::{bad_csv_line, require_csv, ApiQuery};
use crate::web::state::AppState;

/// What an import did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Imported {
    /// Rows read (every one of them valid).
    pub rows: u64,
    /// Of which new to the store (a row already imported is not stored twice).
    pub added: u64,
    /// What did not refuse the file but deserves a look (a payment for an
    /// account the store does not know yet).
    pub warnings: Vec<String>,
}

/// Options of a do-not-call import.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DncQuery {
    /// ISO 3166 region for numbers written without `+` (default: the
    /// policy's `default_region`).
    #[param(pattern = "^[A-Za-z]{2}$")]
    pub region: Option<String>,
}

/// Imports a do-not-call list (CSV: `phone` and/or `account_id`, `scope`
/// `number|account`, `reason`), as `duecall suppress import` does. A bad row
/// refuses the whole file (400 naming its line), storing nothing.
#[utoipa::path(post, path = "/api/v1/imports/do-not-call", tag = "imports",
    params(DncQuery),
    request_body(content = String, content_type = "text/csv", description = "Do-not-call CSV"),
    responses((status = 200, body = Imported), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn do_not_call(
    State(st): State<AppState>,
    who: Authed<Administer>,
    ApiQuery(q): ApiQuery<DncQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Imported>, WebError> {
    require_csv(&headers)?;
    let region = match crate::web::input::filter(q.region) {
        Some(r) if r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()) => {
            r.to_ascii_uppercase()
        }
        Some(_) => {
            return Err(WebError::bad(
                "region",
                "must be a two-letter ISO 3166 region (US, GB, CN, ...)",
            ))
        }
        None => st.policy.default_region.clone(),
    };
    let entries =
        read_do_not_call(&body[..], &region).map_err(|e| bad_csv_line(e.line, &e.reason, 0))?;
    if entries.is_empty() {
        return Err(WebError::bad("body", "no entries in the file"));
    }
    let now = st.now();
    let actor = who.who.actor.clone();
    let rows = entries.len() as u64;
    let added = st
        .db
        .run(move |s| s.import_do_not_call_as(&entries, Some(&actor), now))
        .await?;
    st.dialler.wake();
    Ok(Json(Imported {
        rows,
        added: added as u64,
        warnings: vec![],
    }))
}

/// Imports payments (CSV: `account_id,amount,paid_at`), as `duecall
/// payments` does: claimed payments and promises settle against them at the
/// gate's next decision. A bad row refuses the whole file (400 naming its
/// line), storing nothing; a payment already imported is not counted twice.
#[utoipa::path(post, path = "/api/v1/imports/payments", tag = "imports",
    request_body(content = String, content_type = "text/csv", description = "Payments CSV"),
    responses((status = 200, body = Imported), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn payments(
    State(st): State<AppState>,
    who: Authed<Administer>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Imported>, WebError> {
    require_csv(&headers)?;
    let payments = read_payments(&body[..]).map_err(|e| bad_csv_line(e.line, &e.reason, 0))?;
    if payments.is_empty() {
        return Err(WebError::bad("body", "no payments in the file"));
    }
    let now = st.now();
    let actor = who.who.actor.clone();
    let rows = payments.len() as u64;
    let (added, unknown) = st
        .db
        .run(move |s| {
            let mut unknown: Vec<String> = Vec::new();
            for p in &payments {
                if !unknown.contains(&p.account_id) && s.account(&p.account_id)?.is_none() {
                    unknown.push(p.account_id.clone());
                }
            }
            let added = s.import_payments_as(&payments, Some((&actor, now)))?;
            Ok((added, unknown))
        })
        .await?;
    st.dialler.wake();
    let warnings = if unknown.is_empty() {
        vec![]
    } else {
        vec![format!(
            "{} account(s) not in the store yet (kept; they count once the account is uploaded): {}",
            unknown.len(),
            unknown.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        )]
    };
    Ok(Json(Imported {
        rows,
        added: added as u64,
        warnings,
    }))
}
