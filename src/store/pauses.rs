//! The `pauses` table: collection on an account paused until a moment
//! (promise to pay, hardship, verification of a payment).

use super::db::{params, Db};
use chrono::{DateTime, Utc};

use super::codec::{parse_ts, ts};
use super::escalations::{insert_escalation, NewEscalation};
use super::holds::insert_hold;
use super::suppressions::insert_suppression;
use super::{sql, Store, StoreError};
use crate::policy::{HoldKind, Settlement};

/// A pause whose end has passed and that has not settled yet.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedPause {
    /// Row id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// The route's reason (`verify-payment`, `promise_to_pay`, `hardship`).
    pub reason: String,
    /// When the call that paused it ended.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub until: DateTime<Utc>,
}

/// The suppression reason of a case the payments closed.
pub const PAID_REASON: &str = "paid";

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

    /// The account's pauses that ended at or before `now` and have not
    /// settled, oldest first.
    pub fn ended_pauses(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<EndedPause>, StoreError> {
        const OP: &str = "ended_pauses";
        let mut st = self
            .conn
            .prepare(
                "SELECT id, reason, created_at, until FROM pauses
                 WHERE account_id = ?1 AND until <= ?2 AND settled_at IS NULL ORDER BY until, id",
            )
            .map_err(sql(OP))?;
        let raws: Vec<(i64, String, String, String)> = st
            .query_all(params![account_id, ts(now)])
            .map_err(sql(OP))?;
        raws.into_iter()
            .map(|(id, reason, created, until)| {
                Ok(EndedPause {
                    id,
                    account_id: account_id.to_string(),
                    reason,
                    created_at: parse_ts(&created)?,
                    until: parse_ts(&until)?,
                })
            })
            .collect()
    }

    /// Writes how an ended pause settled, once (false if it already had):
    /// `paid` suppresses the account (reason `paid`); an escalation is
    /// queued with a hold on robot calls from the pause's end; a retry
    /// leaves nothing but the mark.
    pub fn settle_pause(
        &mut self,
        pause: &EndedPause,
        settlement: Settlement,
        escalation: Option<&NewEscalation>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "settle_pause";
        let tx = self.write_tx(OP)?;
        let n = tx
            .execute(
                "UPDATE pauses SET settled_at = ?2, settlement = ?3 WHERE id = ?1 AND settled_at IS NULL",
                params![pause.id, ts(now), settlement.as_str()],
            )
            .map_err(sql(OP))?;
        if n == 1 {
            match settlement {
                Settlement::Paid => {
                    insert_suppression(&tx, &pause.account_id, None, PAID_REASON, now)?
                }
                Settlement::Escalate { reason } => {
                    if let Some(e) = escalation {
                        insert_escalation(&tx, e)?;
                    }
                    insert_hold(
                        &tx,
                        &pause.account_id,
                        HoldKind::Agent,
                        reason,
                        None,
                        pause.until,
                    )?;
                }
                Settlement::Retry => {}
            }
        }
        tx.commit().map_err(sql(OP))?;
        Ok(n == 1)
    }
}

pub(super) fn insert_pause(
    conn: &Db,
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
