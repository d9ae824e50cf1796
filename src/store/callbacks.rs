//! The `callbacks` table: when the debtor asked to be called back.

use super::db::{params, Db};
use chrono::{DateTime, Utc};

use super::codec::ts;
use super::{sql, Store, StoreError};

impl Store {
    /// Records that the debtor asked to be called back at `at`.
    pub fn add_callback(
        &mut self,
        account_id: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_callback(&self.conn, account_id, at, now)
    }
}

pub(super) fn insert_callback(
    conn: &Db,
    account_id: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO callbacks (account_id, at, created_at) VALUES (?1, ?2, ?3)",
        params![account_id, ts(at), ts(now)],
    )
    .map(drop)
    .map_err(sql("add_callback"))
}
