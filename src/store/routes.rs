//! What a route leaves behind for later calls: the `pause`, `suppression`,
//! `hold` and `callback` rows written with the outcome, follow-ups included.

use super::db::Transaction;
use chrono::{DateTime, Utc};

use super::callbacks::insert_callback;
use super::codec::pause_forever;
use super::holds::insert_hold;
use super::pauses::insert_pause;
use super::suppressions::insert_suppression;
use super::{AttemptId, StoreError};
use crate::outcome::{Route, RouteEffect, SuppressScope};
use crate::policy::HoldKind;

/// Writes what a route means for later calls, follow-ups included, as
/// `Route::effect` says (the store does not interpret a route), and the
/// hold `policy::HoldKind::for_route` says an `agent` step leaves
/// (escalations are explicit in the outcome).
pub(super) fn apply_route(
    tx: &Transaction<'_>,
    account_id: &str,
    phone: &str,
    attempt: AttemptId,
    route: &Route,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for step in route.steps() {
        // What holds a step leaves is the policy's to say.
        if let Some(kind) = HoldKind::for_route(step) {
            insert_hold(tx, account_id, kind, &step.reason, Some(attempt), now)?;
        }
        match step.effect() {
            RouteEffect::Pause(until) => {
                // A pause without an end holds until a person lifts it.
                let until = until
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(pause_forever);
                insert_pause(tx, account_id, &step.reason, until, now)?;
            }
            RouteEffect::Suppress(scope) => {
                let number = match scope {
                    SuppressScope::Number => Some(phone),
                    SuppressScope::Account => None,
                };
                insert_suppression(tx, account_id, number, &step.reason, now)?;
            }
            RouteEffect::Retry(Some(at)) => {
                insert_callback(tx, account_id, at.with_timezone(&Utc), step.hours, now)?;
            }
            RouteEffect::Retry(None) | RouteEffect::Agent | RouteEffect::Done => {}
        }
    }
    Ok(())
}
