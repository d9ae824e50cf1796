//! The `callbacks` table: when the debtor asked to be called back, and the
//! standing hours they asked for ("after six"), which the gate honours on
//! every later call until a newer callback asks for other hours.

use super::db::{params, Db};
use chrono::{DateTime, Utc};

use super::codec::ts;
use super::{sql, Store, StoreError};
use crate::outcome::AskedHours;

impl Store {
    /// Records that the debtor asked to be called back at `at`, with the
    /// standing hours they asked for, if any.
    pub fn add_callback(
        &mut self,
        account_id: &str,
        at: DateTime<Utc>,
        hours: Option<AskedHours>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_callback(&self.conn, account_id, at, hours, now)
    }
}

pub(super) fn insert_callback(
    conn: &Db,
    account_id: &str,
    at: DateTime<Utc>,
    hours: Option<AskedHours>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let hhmm = |t: Option<chrono::NaiveTime>| t.map(|t| t.format("%H:%M").to_string());
    let h = hours.unwrap_or_default();
    conn.execute(
        "INSERT INTO callbacks (account_id, at, created_at, not_before, not_after)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            account_id,
            ts(at),
            ts(now),
            hhmm(h.not_before),
            hhmm(h.not_after)
        ],
    )
    .map(drop)
    .map_err(sql("add_callback"))
}
