//! The `suppressions` table: no robot calls to a number of an account
//! (wrong number) or to the whole account (stop calling).

use super::db::{params, Db};
use chrono::{DateTime, Utc};

use super::codec::ts;
use super::{sql, Store, StoreError};
use crate::outcome::SuppressScope;

impl Store {
    /// Suppresses robot calls: to one number of the account (`phone` given)
    /// or to the whole account (`None`).
    pub fn add_suppression(
        &mut self,
        account_id: &str,
        phone: Option<&str>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_suppression(&self.conn, account_id, phone, reason, now)
    }
}

pub(super) fn insert_suppression(
    conn: &Db,
    account_id: &str,
    phone: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let scope = if phone.is_some() {
        SuppressScope::Number
    } else {
        SuppressScope::Account
    };
    conn.execute(
        "INSERT INTO suppressions (account_id, phone, scope, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account_id, phone, scope.as_str(), reason, ts(now)],
    )
    .map(drop)
    .map_err(sql("add_suppression"))
}
