//! The holds the collectors see and change: pauses listed, released or
//! extended (each change a row of `hold_changes` with its audit line, in
//! the same transaction; closing a case ends the account's pauses here
//! too), suppressions and callbacks listed. Owns `hold_changes`; writes
//! `pauses.until`. Never decides whether a call may be placed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::audit::{self, Actor};
use super::codec::{parse_ts, ts};
use super::db::{params, OptionalExtension, Transaction};
use super::{sql, Store, StoreError};

/// A pause as the holds page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PauseRow {
    /// Store id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// Why (`hardship`, `promise_to_pay`, `dispute`, ...).
    pub reason: String,
    /// When it ends (9999-12-31 for a hold until a person lifts it).
    pub until: DateTime<Utc>,
    /// When it was set.
    pub created_at: DateTime<Utc>,
}

/// A suppression as the holds page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressionRow {
    /// Store id (of `suppressions`, or of `dnc_numbers` for an entry of the
    /// do-not-call list by number alone).
    pub id: i64,
    /// The account (none: a number on the do-not-call list for every
    /// account that lists it).
    pub account_id: Option<String>,
    /// The number, for scope `number`.
    pub phone: Option<String>,
    /// `number` or `account`.
    pub scope: String,
    /// Why.
    pub reason: String,
    /// `call` (a route or a collector's close) or `list` (the lender's
    /// do-not-call list).
    pub source: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A requested callback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallbackRow {
    /// Store id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// Not before this time.
    pub at: DateTime<Utc>,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
}

/// Ends every pause of the account still in force at `now` (a closed
/// case), each change recorded; returns their ids.
pub(super) fn end_pauses(
    tx: &Transaction<'_>,
    account_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    const OP: &str = "release_pauses";
    let mut st = tx
        .prepare("SELECT id, until FROM pauses WHERE account_id = ?1 AND until > ?2 ORDER BY id")
        .map_err(sql(OP))?;
    let live: Vec<(i64, String)> = st
        .query_all(params![account_id, ts(now)])
        .map_err(sql(OP))?;
    for (id, old) in &live {
        change_pause(tx, *id, old, now, "release", actor, now)?;
    }
    Ok(live.into_iter().map(|(id, _)| id).collect())
}

fn change_pause(
    tx: &Transaction<'_>,
    pause_id: i64,
    old_until: &str,
    new_until: DateTime<Utc>,
    action: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    const OP: &str = "change_pause";
    tx.execute(
        "UPDATE pauses SET until = ?2 WHERE id = ?1",
        params![pause_id, ts(new_until)],
    )
    .map_err(sql(OP))?;
    tx.execute(
        "INSERT INTO hold_changes (pause_id, action, old_until, new_until, changed_by, changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            pause_id,
            action,
            old_until,
            ts(new_until),
            actor.id,
            ts(now)
        ],
    )
    .map_err(sql(OP))?;
    audit::append(
        tx,
        now,
        actor,
        &format!("pause.{action}"),
        &format!("pause:{pause_id}"),
        &serde_json::json!({"old_until": old_until, "new_until": ts(new_until)}),
    )
}

fn cook_pause(
    (id, account_id, reason, until, created): (i64, String, String, String, String),
) -> Result<PauseRow, StoreError> {
    Ok(PauseRow {
        id,
        account_id,
        reason,
        until: parse_ts(&until)?,
        created_at: parse_ts(&created)?,
    })
}

impl Store {
    /// Pauses (and holds), newest first: only those still in force at `now`
    /// unless `all`; optionally of one account.
    pub fn list_pauses(
        &self,
        now: DateTime<Utc>,
        all: bool,
        account_id: Option<&str>,
    ) -> Result<Vec<PauseRow>, StoreError> {
        const OP: &str = "list_pauses";
        let mut st = self
            .conn
            .prepare(
                "SELECT id, account_id, reason, until, created_at FROM pauses
                 WHERE (?1 OR until > ?2) AND (CAST(?3 AS TEXT) IS NULL OR account_id = ?3)
                 ORDER BY created_at DESC, id DESC",
            )
            .map_err(sql(OP))?;
        let raws: Vec<(i64, String, String, String, String)> = st
            .query_all(params![all, ts(now), account_id])
            .map_err(sql(OP))?;
        raws.into_iter().map(cook_pause).collect()
    }

    /// One pause by id.
    pub fn pause(&self, id: i64) -> Result<Option<PauseRow>, StoreError> {
        self.conn
            .query_one::<(i64, String, String, String, String), _>(
                "SELECT id, account_id, reason, until, created_at FROM pauses WHERE id = ?1",
                [id],
            )
            .optional()
            .map_err(sql("pause"))?
            .map(cook_pause)
            .transpose()
    }

    /// Ends a pause now. `Ok(None)`: no such pause; `Ok(Some(false))`: it
    /// had already ended.
    pub fn release_pause(
        &mut self,
        id: i64,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        const OP: &str = "release_pause";
        let tx = self.write_tx(OP)?;
        let until: Option<String> = tx
            .query_row("SELECT until FROM pauses WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql(OP))?;
        let Some(until) = until else {
            return Ok(None);
        };
        if parse_ts(&until)? <= now {
            return Ok(Some(false));
        }
        change_pause(&tx, id, &until, now, "release", actor, now)?;
        tx.commit().map_err(sql(OP))?;
        Ok(Some(true))
    }

    /// Moves the end of a pause later. `Ok(None)`: no such pause;
    /// `Ok(Some(Err(old)))`: the new end is not after the old one.
    pub fn extend_pause(
        &mut self,
        id: i64,
        until: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Result<(), DateTime<Utc>>>, StoreError> {
        const OP: &str = "extend_pause";
        let tx = self.write_tx(OP)?;
        let old: Option<String> = tx
            .query_row("SELECT until FROM pauses WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql(OP))?;
        let Some(old) = old else {
            return Ok(None);
        };
        let old_t = parse_ts(&old)?;
        if until <= old_t || until <= now {
            return Ok(Some(Err(old_t)));
        }
        change_pause(&tx, id, &old, until, "extend", actor, now)?;
        tx.commit().map_err(sql(OP))?;
        Ok(Some(Ok(())))
    }

    /// Suppressions, newest first; optionally of one account.
    pub fn list_suppressions(
        &self,
        account_id: Option<&str>,
    ) -> Result<Vec<SuppressionRow>, StoreError> {
        const OP: &str = "list_suppressions";
        let mut st = self
            .conn
            .prepare(
                "SELECT id, account_id, phone, scope, reason, source, created_at FROM suppressions
                 WHERE (CAST(?1 AS TEXT) IS NULL OR account_id = ?1)
                 UNION ALL
                 SELECT d.id, NULL, d.phone, d.scope, d.reason, 'list', d.created_at FROM dnc_numbers d
                 WHERE CAST(?1 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = ?1
                     AND (a.phone = d.phone OR EXISTS (SELECT 1 FROM json_each(a.alt_phones) j
                         WHERE j.value = d.phone)))
                 ORDER BY 7 DESC, 1 DESC",
            )
            .map_err(sql(OP))?;
        type Raw = (
            i64,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            String,
        );
        let raws: Vec<Raw> = st.query_all(params![account_id]).map_err(sql(OP))?;
        raws.into_iter()
            .map(|(id, account_id, phone, scope, reason, source, created)| {
                Ok(SuppressionRow {
                    id,
                    account_id,
                    phone,
                    scope,
                    reason,
                    source,
                    created_at: parse_ts(&created)?,
                })
            })
            .collect()
    }

    /// Callbacks not yet due at `now` (or all), soonest first.
    pub fn list_callbacks(
        &self,
        now: DateTime<Utc>,
        all: bool,
        account_id: Option<&str>,
    ) -> Result<Vec<CallbackRow>, StoreError> {
        const OP: &str = "list_callbacks";
        let mut st = self
            .conn
            .prepare(
                "SELECT id, account_id, at, created_at FROM callbacks
                 WHERE (?1 OR at > ?2) AND (CAST(?3 AS TEXT) IS NULL OR account_id = ?3) ORDER BY at, id",
            )
            .map_err(sql(OP))?;
        let raws: Vec<(i64, String, String, String)> = st
            .query_all(params![all, ts(now), account_id])
            .map_err(sql(OP))?;
        raws.into_iter()
            .map(|(id, account_id, at, created)| {
                Ok(CallbackRow {
                    id,
                    account_id,
                    at: parse_ts(&at)?,
                    created_at: parse_ts(&created)?,
                })
            })
            .collect()
    }
}
