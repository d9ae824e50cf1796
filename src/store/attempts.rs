//! The `attempts` table and its `turns` and `routes`: one row per dial,
//! written in the attempt's life order: `decided` (the gate's allow, before
//! the INVITE leaves), `dialling`, then `ended` with the outcome in one
//! transaction (turns, route and what the route implies, escalations), or
//! `failed_by_crash` when a restart finds it in flight. Never decides
//! anything about the attempt; it stores what it is given.

use super::db::{params, Db, OptionalExtension};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::attempt_id::AttemptId;
use super::codec::{
    parse_asked_hours, parse_disposition, parse_json, parse_opt_ts, parse_route_kind, parse_scope,
    parse_ts, ts,
};
use super::escalations::{insert_escalation, NewEscalation};
use super::outbox::{attempt_order_key, enqueue, EventKind};
use super::routes::apply_route;
use super::{sql, Store, StoreError};
use crate::outcome::{Disposition, Route, SuppressScope};

/// Where an attempt is in its life. `decided` is written before the INVITE
/// leaves, so a crash between the two still leaves a trace that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// The policy allowed the dial; the INVITE may or may not have left.
    Decided,
    /// The INVITE left.
    Dialling,
    /// The outcome is recorded.
    Ended,
    /// The process died while the attempt was in flight; found at restart.
    FailedByCrash,
}

impl AttemptState {
    /// The spelling in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Decided => "decided",
            AttemptState::Dialling => "dialling",
            AttemptState::Ended => "ended",
            AttemptState::FailedByCrash => "failed_by_crash",
        }
    }

    /// Parses the `state` column.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "decided" => AttemptState::Decided,
            "dialling" => AttemptState::Dialling,
            "ended" => AttemptState::Ended,
            "failed_by_crash" => AttemptState::FailedByCrash,
            _ => return None,
        })
    }
}

/// One turn as stored (the same keys as `turns[]` in the outcome JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRow {
    /// Prompt id played.
    pub prompt: String,
    /// How much of it was played, ms.
    pub played_ms: u64,
    /// Whether it played to the end (false: barge-in or hang-up).
    pub finished: bool,
    /// What was heard after it.
    #[serde(default)]
    pub heard: Option<String>,
    /// The intent recognised.
    #[serde(default)]
    pub intent: Option<String>,
    /// Its confidence, 0..1.
    #[serde(default)]
    pub confidence: Option<f32>,
    /// Turn start, ms from answer.
    pub start_ms: u64,
    /// Turn end, ms from answer.
    pub end_ms: u64,
}

/// How an attempt ended, written in one transaction by `record_outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndedAttempt {
    /// The disposition.
    pub disposition: Disposition,
    /// For `failed` (`auth`, `network`, ...), or another short reason.
    pub reason: Option<String>,
    /// Final SIP status of the INVITE, if one came.
    pub sip_status: Option<u16>,
    /// When the call ended.
    pub ended_at: DateTime<Utc>,
    /// Whether the right person was reached and spoken with (for the
    /// "after a conversation" and "contacts" rules).
    pub conversation: bool,
    /// The whole outcome JSON (ARCHITECTURE.md), kept as given.
    pub outcome_json: serde_json::Value,
    /// Path of the two-channel recording.
    pub recording: Option<String>,
    /// The turns, in order.
    pub turns: Vec<TurnRow>,
    /// Where the case goes. Its pause, suppression and callback are written
    /// with the outcome (see `record_outcome`).
    pub route: Option<Route>,
    /// The escalations to queue with the outcome, in the same transaction
    /// (the conversation decided them; an agent route no collector took
    /// live always has one).
    pub escalations: Vec<NewEscalation>,
}

fn insert_decision(
    conn: &super::db::Db,
    node: Option<&str>,
    account_id: &str,
    phone: &str,
    decided_at: DateTime<Utc>,
    decision: &serde_json::Value,
) -> Result<AttemptId, StoreError> {
    let decision = serde_json::to_string(decision).map_err(StoreError::Json)?;
    conn.query_row(
        "INSERT INTO attempts (account_id, phone, decided_at, policy, state, node)
         VALUES (?1, ?2, ?3, ?4, 'decided', ?5) RETURNING id",
        params![account_id, phone, ts(decided_at), decision, node],
        |r| r.get(0),
    )
    .map(AttemptId)
    .map_err(sql("record_decision"))
}

/// A dial being claimed under its locks ([`Store::begin_claim`]): check that neither the account nor the number
/// has a call in flight, let the gate decide afresh, then record the
/// decision (which commits). Dropped without recording: nothing is stored.
pub struct Claim<'a> {
    tx: super::db::Transaction<'a>,
    node: Option<String>,
}

/// An account's latest ended call, as a claim reads it ([`Claim::last_call`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LastCall {
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// How it ended.
    pub disposition: Disposition,
    /// Why, in a word (`crash`, `shutdown`, `busy`, ...).
    pub reason: Option<String>,
    /// Where the conversation routed the case, if it did.
    pub route: Option<Route>,
}

impl Claim<'_> {
    /// Whether the account, or the number about any account, has an
    /// attempt in flight (`decided` or `dialling`): another node is calling
    /// it, and one person is never rung twice at once.
    pub fn in_flight(&self, account_id: &str, phone: &str) -> Result<bool, StoreError> {
        self.tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM attempts
                     WHERE state IN ('decided', 'dialling') AND (account_id = ?1 OR phone = ?2))",
                params![account_id, phone],
                |r| r.get::<_, bool>(0),
            )
            .map_err(sql("claim in_flight"))
    }

    /// The account's latest call that has ended, whichever node made it
    /// (crash-recovered ones too; history imported from another dialler
    /// is left out): what a claim needs to keep to the campaign's retry
    /// delays after another node's call.
    pub fn last_call(&self, account_id: &str) -> Result<Option<LastCall>, StoreError> {
        const OP: &str = "claim last_call";
        let raw: Option<(i64, String, String, Option<String>)> = self
            .tx
            .query_one(
                "SELECT id, ended_at, disposition, reason FROM attempts
                 WHERE account_id = ?1 AND state IN ('ended', 'failed_by_crash')
                   AND source = 'duecall' AND ended_at IS NOT NULL AND disposition IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                [account_id],
            )
            .optional()
            .map_err(sql(OP))?;
        let Some((id, ended_at, disposition, reason)) = raw else {
            return Ok(None);
        };
        Ok(Some(LastCall {
            ended_at: parse_ts(&ended_at)?,
            disposition: parse_disposition(&disposition)?,
            reason,
            route: read_route(&self.tx, AttemptId(id))?,
        }))
    }

    /// Records the decision (naming this node) and commits: the attempt
    /// counts from here on, on every node.
    pub fn record_decision(
        self,
        account_id: &str,
        phone: &str,
        decided_at: DateTime<Utc>,
        decision: &serde_json::Value,
    ) -> Result<AttemptId, StoreError> {
        let id = insert_decision(
            &self.tx,
            self.node.as_deref(),
            account_id,
            phone,
            decided_at,
            decision,
        )?;
        self.tx.commit().map_err(sql("record_decision"))?;
        Ok(id)
    }
}

/// One attempt read back whole.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// Its id.
    pub id: AttemptId,
    /// The account.
    pub account_id: String,
    /// The number dialled.
    pub phone: String,
    /// When the policy allowed it.
    pub decided_at: DateTime<Utc>,
    /// The policy decision JSON.
    pub policy: serde_json::Value,
    /// When the INVITE left.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub disposition: Option<Disposition>,
    /// Reason for `failed` (or `crash`).
    pub reason: Option<String>,
    /// Final SIP status.
    pub sip_status: Option<u16>,
    /// Whether the right person was spoken with.
    pub conversation: bool,
    /// The outcome JSON.
    pub outcome: Option<serde_json::Value>,
    /// Recording path.
    pub recording: Option<String>,
    /// Life-cycle state.
    pub state: AttemptState,
    /// The turns, in order.
    pub turns: Vec<TurnRow>,
    /// The route.
    pub route: Option<Route>,
}

impl Store {
    /// Records that the policy allowed a dial, before the INVITE leaves.
    /// The attempt counts from here on, even if the process dies next.
    pub fn record_decision(
        &mut self,
        account_id: &str,
        phone: &str,
        decided_at: DateTime<Utc>,
        decision: &serde_json::Value,
    ) -> Result<AttemptId, StoreError> {
        insert_decision(
            &self.conn,
            self.node.as_deref(),
            account_id,
            phone,
            decided_at,
            decision,
        )
    }

    /// Starts claiming a dial to `account_id` on `phone`, until the claim
    /// records its decision or is dropped. On SQLite it takes the store's
    /// one write lock (`BEGIN IMMEDIATE`). On PostgreSQL it locks only this
    /// account's and this number's rows (`SELECT ... FOR UPDATE SKIP
    /// LOCKED` in `claim_locks`, not the store's advisory write lock), so
    /// nodes claiming other accounts on other numbers go on side by side;
    /// `None` when another node holds either row (it is claiming the same
    /// person right now: ask again later). Either way, whatever the gate
    /// reads while the claim is held is what every node has committed, and
    /// no other decision about this account or number can slip in before
    /// this one: the caps, counted per account and per number, hold.
    pub fn begin_claim(
        &mut self,
        account_id: &str,
        phone: &str,
    ) -> Result<Option<Claim<'_>>, StoreError> {
        const OP: &str = "begin_claim";
        let node = self.node.clone();
        if self.conn.dialect() == super::db::Dialect::Sqlite {
            let tx = self.write_tx(OP)?;
            return Ok(Some(Claim { tx, node }));
        }
        let keys = [format!("account:{account_id}"), format!("number:{phone}")];
        for k in &keys {
            // Outside the claim's transaction: the row exists for every
            // node from now on (a concurrent insert of the same key waits
            // only for that one-row autocommit).
            self.conn
                .execute(
                    "INSERT INTO claim_locks (key) VALUES (?1) ON CONFLICT (key) DO NOTHING",
                    [k],
                )
                .map_err(sql(OP))?;
        }
        let tx = self.conn.claim_tx().map_err(sql(OP))?;
        let locked: Vec<(String,)> = {
            let mut st = tx
                .prepare("SELECT key FROM claim_locks WHERE key IN (?1, ?2) FOR UPDATE SKIP LOCKED")
                .map_err(sql(OP))?;
            st.query_all(params![keys[0], keys[1]]).map_err(sql(OP))?
        };
        if locked.len() < keys.len() {
            // Dropped: rolled back, the row this claim did get is free again.
            return Ok(None);
        }
        Ok(Some(Claim { tx, node }))
    }

    /// Records that the INVITE left.
    pub fn mark_dialling(
        &mut self,
        id: AttemptId,
        started_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE attempts SET state = 'dialling', started_at = ?2 WHERE id = ?1 AND state = 'decided'",
                params![id.0, ts(started_at)],
            )
            .map_err(sql("mark_dialling"))?;
        if n == 0 {
            return Err(self.state_error(id, "decided")?);
        }
        Ok(())
    }

    /// Explains why an update guarded by state touched nothing.
    fn state_error(&self, id: AttemptId, expected: &'static str) -> Result<StoreError, StoreError> {
        let state: Option<String> = self
            .conn
            .query_row("SELECT state FROM attempts WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("attempt state"))?;
        Ok(match state {
            None => StoreError::UnknownAttempt(id),
            Some(state) => StoreError::WrongState {
                id,
                state,
                expected,
            },
        })
    }

    /// Records how an attempt ended, in one transaction: the attempt row, its
    /// turns, its route, what the route implies for later calls (a `pause`
    /// row, a `suppress` row for the dialled number or the whole account, a
    /// callback for a `retry` with a time; follow-ups too), and the
    /// escalation if one is given. Fails with `WrongState` if the outcome was
    /// already recorded.
    pub fn record_outcome(
        &mut self,
        id: AttemptId,
        outcome: &EndedAttempt,
    ) -> Result<(), StoreError> {
        const OP: &str = "record_outcome";
        let outcome_json =
            serde_json::to_string(&outcome.outcome_json).map_err(StoreError::Json)?;
        let tx = self.write_tx(OP)?;
        let row: Option<(String, String)> = tx
            .query_one(
                "UPDATE attempts SET state = 'ended', ended_at = ?2, disposition = ?3, reason = ?4,
                     sip_status = ?5, conversation = ?6, outcome = ?7, recording = ?8
                 WHERE id = ?1 AND state IN ('decided', 'dialling')
                 RETURNING account_id, phone",
                params![
                    id.0,
                    ts(outcome.ended_at),
                    outcome.disposition.as_str(),
                    outcome.reason,
                    outcome.sip_status,
                    outcome.conversation,
                    outcome_json,
                    outcome.recording,
                ],
            )
            .optional()
            .map_err(sql(OP))?;
        let Some((account_id, phone)) = row else {
            drop(tx);
            return Err(self.state_error(id, "decided or dialling")?);
        };
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO turns (attempt_id, idx, prompt, played_ms, finished, heard, intent,
                         confidence, start_ms, end_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(sql(OP))?;
            for (i, t) in outcome.turns.iter().enumerate() {
                st.execute(params![
                    id.0,
                    i as i64,
                    t.prompt,
                    t.played_ms as i64,
                    t.finished,
                    t.heard,
                    t.intent,
                    t.confidence.map(f64::from),
                    t.start_ms as i64,
                    t.end_ms as i64,
                ])
                .map_err(sql(OP))?;
            }
        }
        if let Some(route) = &outcome.route {
            let follow_up = route
                .follow_up
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(StoreError::Json)?;
            tx.execute(
                "INSERT INTO routes (attempt_id, kind, reason, until, scope, follow_up, hours)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id.0,
                    route.kind.as_str(),
                    route.reason,
                    route.until.map(|t| ts(t.with_timezone(&Utc))),
                    route.scope.map(SuppressScope::as_str),
                    follow_up,
                    route.hours.map(|h| h.to_string()),
                ],
            )
            .map_err(sql(OP))?;
            apply_route(&tx, &account_id, &phone, id, route, outcome.ended_at)?;
        }
        let mut escalation_ids = Vec::with_capacity(outcome.escalations.len());
        for e in &outcome.escalations {
            escalation_ids.push(insert_escalation(&tx, e)?);
        }
        enqueue_outcome_events(&tx, id, &account_id, &phone, outcome, &escalation_ids)?;
        tx.commit().map_err(sql(OP))
    }

    /// After a restart: every attempt still `decided` or `dialling` belonged
    /// to the process that died. They are marked `failed_by_crash`
    /// (disposition `failed`, reason `crash`, ended `now`) and keep counting
    /// as attempts. Returns their ids.
    ///
    /// Several nodes on PostgreSQL: add a `node` column and recover only the
    /// dead node's rows (`... AND node = $1`), or the living would lose
    /// their calls in flight.
    pub fn recover_after_crash(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Vec<AttemptId>, StoreError> {
        const OP: &str = "recover_after_crash";
        let mut st = self
            .conn
            .prepare(
                "UPDATE attempts SET state = 'failed_by_crash', disposition = 'failed', reason = 'crash',
                     ended_at = ?1
                 WHERE state IN ('decided', 'dialling')
                 RETURNING id",
            )
            .map_err(sql(OP))?;
        let mut ids: Vec<AttemptId> = st
            .query_map([ts(now)], |r| r.get(0).map(AttemptId))
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        ids.sort();
        Ok(ids)
    }

    /// Attempts still `decided` or `dialling`, oldest first, with their
    /// accounts: after a restart, those the dead process left in flight.
    pub fn in_flight(&self) -> Result<Vec<(AttemptId, String)>, StoreError> {
        const OP: &str = "in_flight";
        let mut st = self
            .conn
            .prepare(
                "SELECT id, account_id FROM attempts WHERE state IN ('decided', 'dialling') ORDER BY id",
            )
            .map_err(sql(OP))?;
        let rows = st
            .query_map([], |r| Ok((AttemptId(r.get(0)?), r.get(1)?)))
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        Ok(rows)
    }

    /// Marks one attempt left in flight by a dead process `failed_by_crash`
    /// (disposition `failed`, reason `crash`, ended `now`); it keeps
    /// counting as an attempt. Returns false if it was no longer in flight.
    pub fn mark_crashed(&mut self, id: AttemptId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE attempts SET state = 'failed_by_crash', disposition = 'failed', reason = 'crash',
                     ended_at = ?2
                 WHERE id = ?1 AND state IN ('decided', 'dialling')",
                params![id.0, ts(now)],
            )
            .map(|n| n == 1)
            .map_err(sql("mark_crashed"))
    }

    /// One attempt with its turns and route.
    pub fn attempt(&self, id: AttemptId) -> Result<Option<AttemptRecord>, StoreError> {
        const OP: &str = "attempt";
        type Raw = (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<u16>,
            bool,
            Option<String>,
            Option<String>,
            String,
        );
        let raw: Option<Raw> = self
            .conn
            .query_one("SELECT account_id, phone, decided_at, policy, started_at, ended_at, disposition, reason,
                        sip_status, conversation, outcome, recording, state
                 FROM attempts WHERE id = ?1",
                [id.0])
            .optional()
            .map_err(sql(OP))?;
        let Some((
            account_id,
            phone,
            decided_at,
            policy,
            started,
            ended,
            disp,
            reason,
            sip,
            conv,
            outcome,
            rec,
            state,
        )) = raw
        else {
            return Ok(None);
        };
        Ok(Some(AttemptRecord {
            id,
            account_id,
            phone,
            decided_at: parse_ts(&decided_at)?,
            policy: parse_json(&policy, "policy")?,
            started_at: parse_opt_ts(started)?,
            ended_at: parse_opt_ts(ended)?,
            disposition: disp.as_deref().map(parse_disposition).transpose()?,
            reason,
            sip_status: sip,
            conversation: conv,
            outcome: outcome
                .as_deref()
                .map(|o| parse_json(o, "outcome"))
                .transpose()?,
            recording: rec,
            state: AttemptState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("attempt state {state:?}")))?,
            turns: self.turns_of(id)?,
            route: self.route_of(id)?,
        }))
    }

    fn turns_of(&self, id: AttemptId) -> Result<Vec<TurnRow>, StoreError> {
        const OP: &str = "turns";
        let mut st = self
            .conn
            .prepare(
                "SELECT prompt, played_ms, finished, heard, intent, confidence, start_ms, end_ms
                 FROM turns WHERE attempt_id = ?1 ORDER BY idx",
            )
            .map_err(sql(OP))?;
        let rows = st
            .query_map([id.0], |r| {
                Ok(TurnRow {
                    prompt: r.get(0)?,
                    played_ms: r.get::<_, i64>(1)?.max(0) as u64,
                    finished: r.get(2)?,
                    heard: r.get(3)?,
                    intent: r.get(4)?,
                    confidence: r.get::<_, Option<f64>>(5)?.map(|c| c as f32),
                    start_ms: r.get::<_, i64>(6)?.max(0) as u64,
                    end_ms: r.get::<_, i64>(7)?.max(0) as u64,
                })
            })
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        Ok(rows)
    }

    fn route_of(&self, id: AttemptId) -> Result<Option<Route>, StoreError> {
        read_route(&self.conn, id)
    }
}

/// The route stored for attempt `id`, read on `conn` (the store's
/// connection, or a claim's transaction).
fn read_route(conn: &super::db::Db, id: AttemptId) -> Result<Option<Route>, StoreError> {
    const OP: &str = "route";
    type Raw = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let raw: Option<Raw> = conn
        .query_one(
            "SELECT kind, reason, until, scope, follow_up, hours FROM routes WHERE attempt_id = ?1",
            [id.0],
        )
        .optional()
        .map_err(sql(OP))?;
    let Some((kind, reason, until, scope, follow_up, hours)) = raw else {
        return Ok(None);
    };
    Ok(Some(Route {
        kind: parse_route_kind(&kind)?,
        reason,
        until: parse_opt_ts(until)?.map(|t| t.fixed_offset()),
        scope: scope.as_deref().map(parse_scope).transpose()?,
        hours: hours.as_deref().map(parse_asked_hours).transpose()?,
        follow_up: follow_up
            .as_deref()
            .map(|f| {
                serde_json::from_str(f)
                    .map_err(|e| StoreError::Corrupt(format!("follow_up JSON: {e}")))
            })
            .transpose()?,
    }))
}

/// The events an ended attempt reports, appended inside `record_outcome`'s
/// transaction (the outcome and its events are stored together or not at
/// all): one `escalation.created` per escalation queued, `route.decided`
/// when the call has a route, then `call.ended`. Phones are masked; the
/// receiver looks the account up by its id.
fn enqueue_outcome_events(
    conn: &Db,
    attempt: AttemptId,
    account_id: &str,
    phone: &str,
    outcome: &EndedAttempt,
    escalation_ids: &[i64],
) -> Result<(), StoreError> {
    let key = attempt_order_key(attempt);
    let at = outcome.ended_at;
    for (e, id) in outcome.escalations.iter().zip(escalation_ids) {
        enqueue(
            conn,
            EventKind::EscalationCreated,
            e.created_at,
            &key,
            serde_json::json!({
                "escalation_id": id,
                "account_id": e.account_id,
                "attempt_id": e.attempt_id.map(|a| a.0),
                "reason": e.reason,
                "intent": e.intent,
                "summary": e.summary,
                "transcript": e.transcript,
            }),
        )?;
    }
    if let Some(route) = &outcome.route {
        enqueue(
            conn,
            EventKind::RouteDecided,
            at,
            &key,
            serde_json::json!({
                "attempt_id": attempt.0,
                "account_id": account_id,
                "route": route,
            }),
        )?;
    }
    enqueue(
        conn,
        EventKind::CallEnded,
        at,
        &key,
        serde_json::json!({
            "attempt_id": attempt.0,
            "account_id": account_id,
            "phone": crate::account::mask_phone(phone),
            "disposition": outcome.disposition.as_str(),
            "reason": outcome.reason,
            "sip_status": outcome.sip_status,
            "conversation": outcome.conversation,
            "intent": outcome.outcome_json.get("intent"),
            "route": outcome.route.as_ref().map(|r| r.kind.as_str()),
            "escalations": escalation_ids,
            "recording": outcome.recording.is_some(),
        }),
    )?;
    Ok(())
}
