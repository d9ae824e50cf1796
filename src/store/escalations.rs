//! The collectors' escalation queue: raised with an outcome (same
//! transaction) or on its own, claimed by exactly one collector, closed.

use super::db::{params, Db, OptionalExtension};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::{parse_json, parse_ts, ts};
use super::holds::release_agent_holds_of_closed;
use super::{sql, AttemptId, Store, StoreError};

/// An escalation to be queued for the collectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEscalation {
    /// The account.
    pub account_id: String,
    /// The attempt it came from, if any.
    pub attempt_id: Option<AttemptId>,
    /// Why (`hardship`, `dispute`, `paid-unverified`, ...).
    pub reason: String,
    /// The intent that led here.
    pub intent: Option<String>,
    /// One line for the queue.
    pub summary: String,
    /// The timed transcript (the outcome's `turns`).
    pub transcript: serde_json::Value,
    /// Path of the recording.
    pub recording: Option<String>,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
}

/// Status of an escalation in the collectors' queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationStatus {
    /// Waiting for a collector.
    Open,
    /// A collector has it.
    Claimed,
    /// Dealt with.
    Closed,
}

impl EscalationStatus {
    /// The spelling in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationStatus::Open => "open",
            EscalationStatus::Claimed => "claimed",
            EscalationStatus::Closed => "closed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "open" => EscalationStatus::Open,
            "claimed" => EscalationStatus::Claimed,
            "closed" => EscalationStatus::Closed,
            other => return Err(StoreError::Corrupt(format!("escalation status {other:?}"))),
        })
    }
}

/// An escalation as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    /// Queue id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// The attempt it came from, if any.
    pub attempt_id: Option<AttemptId>,
    /// Why.
    pub reason: String,
    /// The intent that led here.
    pub intent: Option<String>,
    /// One line for the queue.
    pub summary: String,
    /// The timed transcript.
    pub transcript: serde_json::Value,
    /// Path of the recording.
    pub recording: Option<String>,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
    /// Open, claimed or closed.
    pub status: EscalationStatus,
    /// The collector who claimed it.
    pub claimed_by: Option<String>,
}

impl Store {
    /// Queues an escalation for the collectors. Returns its id.
    pub fn add_escalation(&mut self, e: &NewEscalation) -> Result<i64, StoreError> {
        insert_escalation(&self.conn, e)
    }

    /// Queues `e` unless the account already has an escalation with the
    /// same reason (any status): for escalations that must happen once per
    /// account (`stage-ended`). Returns the new id, or `None` if one exists.
    pub fn add_escalation_once(&mut self, e: &NewEscalation) -> Result<Option<i64>, StoreError> {
        const OP: &str = "add_escalation_once";
        let tx = self.write_tx(OP)?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM escalations WHERE account_id = ?1 AND reason = ?2)",
                params![e.account_id, e.reason],
                |r| r.get(0),
            )
            .map_err(sql(OP))?;
        let id = if exists {
            None
        } else {
            Some(insert_escalation(&tx, e)?)
        };
        tx.commit().map_err(sql(OP))?;
        Ok(id)
    }

    /// Hands the oldest open escalation to `collector`, or `None` if the
    /// queue is empty. Two collectors never get the same one: the pick and
    /// the claim are one statement under the write lock.
    pub fn claim_escalation(
        &mut self,
        collector: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Escalation>, StoreError> {
        // PostgreSQL (several nodes): the same statement with the row locked
        // and skipped by concurrent claimers instead of waited on:
        //   UPDATE escalations SET status = 'claimed', claimed_by = $1, claimed_at = $2
        //   WHERE id = (SELECT id FROM escalations WHERE status = 'open'
        //               ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
        //   RETURNING ...
        // The outer `status = 'open'` re-check keeps it correct at READ
        // COMMITTED even without the row lock.
        let sql_text = format!(
            "UPDATE escalations SET status = 'claimed', claimed_by = ?1, claimed_at = ?2
             WHERE id = (SELECT id FROM escalations WHERE status = 'open' ORDER BY created_at, id LIMIT 1)
               AND status = 'open'
             RETURNING {ESCALATION_COLUMNS}"
        );
        let raw = self
            .conn
            .query_row(&sql_text, params![collector, ts(now)], raw_escalation)
            .optional()
            .map_err(sql("claim_escalation"))?;
        raw.map(RawEscalation::into_escalation).transpose()
    }

    /// Closes an escalation (dealt with). Returns false if it was not open
    /// or claimed.
    /// Closing the last open escalation of an attempt also releases the
    /// agent hold that attempt left (a dispute hold stays: it needs a
    /// person's release after verification).
    pub fn close_escalation(&mut self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        const OP: &str = "close_escalation";
        let tx = self.write_tx(OP)?;
        let closed = tx
            .execute(
                "UPDATE escalations SET status = 'closed', closed_at = ?2 WHERE id = ?1 AND status IN ('open', 'claimed')",
                params![id, ts(now)],
            )
            .map(|n| n == 1)
            .map_err(sql(OP))?;
        if closed {
            release_agent_holds_of_closed(&tx, id, now)?;
        }
        tx.commit().map_err(sql(OP))?;
        Ok(closed)
    }

    /// Escalations with a status (or all), oldest first.
    pub fn escalations(
        &self,
        status: Option<EscalationStatus>,
    ) -> Result<Vec<Escalation>, StoreError> {
        const OP: &str = "escalations";
        // Two statements rather than `?1 IS NULL OR status = ?1`, whose
        // untyped parameter PostgreSQL cannot infer.
        let (filter, args) = match status {
            Some(s) => ("WHERE status = ?1", vec![s.as_str()]),
            None => ("", vec![]),
        };
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {ESCALATION_COLUMNS} FROM escalations {filter} ORDER BY created_at, id"
            ))
            .map_err(sql(OP))?;
        let raws: Vec<RawEscalation> = st
            .query_map(super::db::params_from_iter(args), raw_escalation)
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        raws.into_iter()
            .map(RawEscalation::into_escalation)
            .collect()
    }
}

const ESCALATION_COLUMNS: &str =
    "id, account_id, attempt_id, reason, intent, summary, transcript, recording, created_at, status, claimed_by";

struct RawEscalation {
    id: i64,
    account_id: String,
    attempt_id: Option<i64>,
    reason: String,
    intent: Option<String>,
    summary: String,
    transcript: String,
    recording: Option<String>,
    created_at: String,
    status: String,
    claimed_by: Option<String>,
}

fn raw_escalation(r: &super::db::Row) -> super::db::Result<RawEscalation> {
    Ok(RawEscalation {
        id: r.get(0)?,
        account_id: r.get(1)?,
        attempt_id: r.get(2)?,
        reason: r.get(3)?,
        intent: r.get(4)?,
        summary: r.get(5)?,
        transcript: r.get(6)?,
        recording: r.get(7)?,
        created_at: r.get(8)?,
        status: r.get(9)?,
        claimed_by: r.get(10)?,
    })
}

impl RawEscalation {
    fn into_escalation(self) -> Result<Escalation, StoreError> {
        Ok(Escalation {
            id: self.id,
            account_id: self.account_id,
            attempt_id: self.attempt_id.map(AttemptId),
            reason: self.reason,
            intent: self.intent,
            summary: self.summary,
            transcript: parse_json(&self.transcript, "transcript")?,
            recording: self.recording,
            created_at: parse_ts(&self.created_at)?,
            status: EscalationStatus::parse(&self.status)?,
            claimed_by: self.claimed_by,
        })
    }
}

pub(super) fn insert_escalation(conn: &Db, e: &NewEscalation) -> Result<i64, StoreError> {
    let transcript = serde_json::to_string(&e.transcript).map_err(StoreError::Json)?;
    conn.query_row(
        "INSERT INTO escalations (account_id, attempt_id, reason, intent, summary, transcript, recording,
             created_at, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open') RETURNING id",
        params![
            e.account_id,
            e.attempt_id.map(|a| a.0),
            e.reason,
            e.intent,
            e.summary,
            transcript,
            e.recording,
            ts(e.created_at)
        ],
        |r| r.get(0),
    )
    .map_err(sql("add_escalation"))
}
