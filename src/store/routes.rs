//! What a route leaves behind for later calls: the `pause`, `suppression`
//! and `callback` rows written with the outcome, follow-ups included.

use chrono::{DateTime, Utc};
use rusqlite::Transaction;

use super::callbacks::insert_callback;
use super::codec::pause_forever;
use super::pauses::insert_pause;
use super::suppressions::insert_suppression;
use super::StoreError;
use crate::outcome::{Route, RouteKind, SuppressScope};

/// and `done` leave nothing here (an escalation is explicit in the outcome).
pub(super) fn apply_route(
    tx: &Transaction<'_>,
    account_id: &str,
    phone: &str,
    route: &Route,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match route.kind {
        RouteKind::Pause => {
            // A pause without an end holds until a person lifts it; dropping
            // it would let the robot call again.
            let until = route
                .until
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(pause_forever);
            insert_pause(tx, account_id, &route.reason, until, now)?;
        }
        RouteKind::Suppress => {
            let number = match route.scope {
                Some(SuppressScope::Number) => Some(phone),
                // No scope given: the wider one, never the narrower.
                Some(SuppressScope::Account) | None => None,
            };
            insert_suppression(tx, account_id, number, &route.reason, now)?;
        }
        RouteKind::Retry => {
            if let Some(at) = route.until {
                insert_callback(tx, account_id, at.with_timezone(&Utc), now)?;
            }
        }
        RouteKind::Agent | RouteKind::Done => {}
    }
    if let Some(f) = &route.follow_up {
        apply_route(tx, account_id, phone, f, now)?;
    }
    Ok(())
}
