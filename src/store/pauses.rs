//! The `pauses` table: collection on an account paused until a moment
//! (promise to pay, hardship, verification of a payment).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::codec::ts;
use super::{sql, Store, StoreError};

impl Store {
    /// Pauses collection on an account until a time.
    pub fn add_pause(
        &mut self,
        account_id: &str,
        reason: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_pause(&self.conn, account_id, reason, until, now)
    }
}

pub(super) fn insert_pause(
    conn: &Connection,
    account_id: &str,
    reason: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO pauses (account_id, reason, until, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![account_id, reason, ts(until), ts(now)],
    )
    .map(drop)
    .map_err(sql("add_pause"))
}
