//! The `holds` table: robot contact held on an account by what the person
//! said (a dispute until a person releases it; a case with a collector
//! until its escalation is closed or `agent_hold_days` pass, which the gate
//! counts). Written with the outcome that raised it (same transaction);
//! released by a person (`duecall holds release`) or, for an agent hold,
//! by closing the escalations of its attempt.

use super::db::{params, Db};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::codec::{parse_opt_ts, parse_ts, ts};
use super::{sql, AttemptId, Store, StoreError};
use crate::policy::{Hold, HoldKind};

/// One hold as stored, released or not (for listing).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldRow {
    /// Row id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// The hold itself.
    #[serde(flatten)]
    pub hold: Hold,
    /// The attempt whose outcome raised it.
    pub attempt_id: Option<AttemptId>,
    /// When a person (or the escalation's close) released it.
    pub released_at: Option<DateTime<Utc>>,
    /// Who released it and why.
    pub released_by: Option<String>,
}

impl Store {
    /// Holds robot contact on an account (outside a call's outcome: an
    /// operator, an import). Returns its id.
    pub fn add_hold(
        &mut self,
        account_id: &str,
        kind: HoldKind,
        reason: &str,
        attempt: Option<AttemptId>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        insert_hold(&self.conn, account_id, kind, reason, attempt, now)
    }

    /// Releases the account's holds in force (of one kind, or all), naming
    /// who released them. Returns how many were released.
    pub fn release_holds(
        &mut self,
        account_id: &str,
        kind: Option<HoldKind>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE holds SET released_at = ?3, released_by = ?4
                 WHERE account_id = ?1 AND released_at IS NULL AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2)",
                params![account_id, kind.map(HoldKind::as_str), ts(now), by],
            )
            .map_err(sql("release_holds"))
    }

    /// Every hold (of one account, or all), oldest first.
    pub fn holds(&self, account_id: Option<&str>) -> Result<Vec<HoldRow>, StoreError> {
        const OP: &str = "holds";
        let mut st = self
            .conn
            .prepare(
                "SELECT id, account_id, kind, reason, created_at, attempt_id, released_at, released_by
                 FROM holds WHERE (CAST(?1 AS TEXT) IS NULL OR account_id = ?1) ORDER BY id",
            )
            .map_err(sql(OP))?;
        type Raw = (
            i64,
            String,
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let raws: Vec<Raw> = st.query_all([account_id]).map_err(sql(OP))?;
        raws.into_iter()
            .map(|(id, account_id, kind, reason, since, attempt, rel, by)| {
                Ok(HoldRow {
                    id,
                    account_id,
                    hold: Hold {
                        kind: parse_kind(&kind)?,
                        reason,
                        since: parse_ts(&since)?,
                    },
                    attempt_id: attempt.map(AttemptId),
                    released_at: parse_opt_ts(rel)?,
                    released_by: by,
                })
            })
            .collect()
    }
}

fn parse_kind(s: &str) -> Result<HoldKind, StoreError> {
    HoldKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("hold kind {s:?}")))
}

pub(super) fn insert_hold(
    conn: &Db,
    account_id: &str,
    kind: HoldKind,
    reason: &str,
    attempt: Option<AttemptId>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    conn.query_row(
        "INSERT INTO holds (account_id, kind, reason, attempt_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![
            account_id,
            kind.as_str(),
            reason,
            attempt.map(|a| a.0),
            ts(now)
        ],
        |r| r.get(0),
    )
    .map_err(sql("add_hold"))
}

/// The account's holds in force (not released), for the gate.
pub(super) fn holds_in_force(conn: &Db, account_id: &str) -> Result<Vec<Hold>, StoreError> {
    const OP: &str = "holds_in_force";
    let mut st = conn
        .prepare(
            "SELECT kind, reason, created_at FROM holds
             WHERE account_id = ?1 AND released_at IS NULL ORDER BY id",
        )
        .map_err(sql(OP))?;
    let raws: Vec<(String, String, String)> = st.query_all([account_id]).map_err(sql(OP))?;
    raws.into_iter()
        .map(|(k, reason, since)| {
            Ok(Hold {
                kind: parse_kind(&k)?,
                reason,
                since: parse_ts(&since)?,
            })
        })
        .collect()
}

/// Releases every hold in force on an account (a person released the
/// case), naming who. Returns how many.
pub(super) fn release_all_holds(
    conn: &Db,
    account_id: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE holds SET released_at = ?2, released_by = ?3
         WHERE account_id = ?1 AND released_at IS NULL",
        params![account_id, ts(now), by],
    )
    .map_err(sql("release_all_holds"))
}

/// Releases the agent holds of an attempt whose escalations are all
/// closed (called when one is closed, in its statement's transaction).
pub(super) fn release_agent_holds_of_closed(
    conn: &Db,
    escalation_id: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE holds SET released_at = ?2, released_by = 'escalation ' || ?1 || ' closed'
         WHERE kind = 'agent' AND released_at IS NULL
           AND attempt_id = (SELECT attempt_id FROM escalations WHERE id = ?1)
           AND NOT EXISTS (SELECT 1 FROM escalations e
                           WHERE e.attempt_id = holds.attempt_id AND e.status <> 'closed')",
        params![escalation_id, ts(now)],
    )
    .map_err(sql("release_agent_holds"))
}
