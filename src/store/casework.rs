//! The collectors' work on cases: the escalation queue read with filters,
//! claiming one case by id (exactly one winner), notes, closing with an
//! outcome that feeds back into what the gate reads (a pause, a
//! suppression, the release of holds, a retry), and releasing or extending
//! pauses (`holdwork`). Owns `escalation_notes` and `escalation_closures`;
//! writes `escalations` status columns, `pauses.until`,
//! `suppressions`, `callbacks`. Every change writes its audit line in the
//! same transaction. Never decides whether a call may be placed.

use super::db::{params, Db, OptionalExtension, Transaction};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::{self, Actor};
use super::callbacks::insert_callback;
use super::codec::{parse_json, parse_opt_ts, parse_ts, ts};
use super::holds::{release_agent_holds_of_closed, release_all_holds};
use super::holdwork::end_pauses;
use super::listing::{Page, Where};
use super::pauses::insert_pause;
use super::suppressions::insert_suppression;
use super::{sql, AttemptId, Escalation, EscalationStatus, Store, StoreError};
use crate::outcome::SuppressScope;

/// Which escalations to list.
#[derive(Debug, Clone, Default)]
pub struct EscalationFilter {
    /// Only these statuses (empty: open and claimed).
    pub statuses: Vec<EscalationStatus>,
    /// Only this intent.
    pub intent: Option<String>,
    /// Only this reason.
    pub reason: Option<String>,
    /// Only this account.
    pub account_id: Option<String>,
    /// Only cases claimed by this collector.
    pub claimed_by: Option<String>,
    /// Only cases raised at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only cases raised before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// Oldest first (default: newest first).
    pub oldest_first: bool,
    /// At most this many.
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// What the collectors did with a case beyond its status.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct CaseWork {
    /// When it was claimed.
    pub claimed_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Notes, oldest first.
    pub notes: Vec<Note>,
    /// How it was closed.
    pub closure: Option<Closure>,
}

/// A collector's note on a case.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Note {
    /// Store id.
    pub id: i64,
    /// Who wrote it.
    pub author: String,
    /// What they wrote.
    pub text: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// How a case was closed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Closure {
    /// Who closed it.
    pub closed_by: String,
    /// The outcome and its particulars (`{"outcome":"pause","until":...}`).
    #[schema(value_type = Object)]
    pub outcome: serde_json::Value,
    /// When.
    pub closed_at: DateTime<Utc>,
}

/// What closing a case does to later calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CloseOutcome {
    /// No robot calls until a time.
    Pause {
        /// End of the pause.
        until: DateTime<Utc>,
        /// Why (shown to collectors, stored on the pause).
        reason: String,
    },
    /// No more robot calls to the dialled number, or to the whole account.
    Suppress {
        /// `number` or `account`.
        scope: SuppressScope,
        /// Why.
        reason: String,
    },
    /// Lift every pause and hold on the account now.
    Release,
    /// Lift pauses and holds and call again no earlier than `at`.
    Retry {
        /// The earliest next call.
        at: DateTime<Utc>,
    },
    /// Dealt with; nothing changes for later calls.
    Resolved,
}

impl CloseOutcome {
    /// The spelling in `escalation_closures.outcome`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloseOutcome::Pause { .. } => "pause",
            CloseOutcome::Suppress { .. } => "suppress",
            CloseOutcome::Release => "release",
            CloseOutcome::Retry { .. } => "retry",
            CloseOutcome::Resolved => "resolved",
        }
    }
}

/// Why a collector's action on a case was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseRefusal {
    /// No escalation with this id.
    NotFound,
    /// Someone else has the case.
    ClaimedBy(String),
    /// The caller already has it (a second claim is not a second win).
    AlreadyYours,
    /// The case is open: claim it first.
    NotClaimed,
    /// The case is closed.
    Closed,
}

/// The escalation columns this module reads (the store's plus the times).
const CASE_COLUMNS: &str = "id, account_id, attempt_id, reason, intent, summary, transcript, \
     recording, created_at, status, claimed_by, claimed_at, closed_at";

type RawCase = (
    (
        i64,
        String,
        Option<i64>,
        String,
        Option<String>,
        String,
        String,
    ),
    (
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
);

fn raw_case(r: &super::db::Row) -> super::db::Result<RawCase> {
    Ok((
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ),
        (
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
            r.get(12)?,
        ),
    ))
}

fn cook_case(raw: RawCase) -> Result<(Escalation, CaseWork), StoreError> {
    let (
        (id, account_id, attempt_id, reason, intent, summary, transcript),
        (recording, created_at, status, claimed_by, claimed_at, closed_at),
    ) = raw;
    Ok((
        Escalation {
            id,
            account_id,
            attempt_id: attempt_id.map(AttemptId),
            reason,
            intent,
            summary,
            transcript: parse_json(&transcript, "transcript")?,
            recording,
            created_at: parse_ts(&created_at)?,
            status: EscalationStatus::parse(&status)?,
            claimed_by,
        },
        CaseWork {
            claimed_at: parse_opt_ts(claimed_at)?,
            closed_at: parse_opt_ts(closed_at)?,
            notes: vec![],
            closure: None,
        },
    ))
}

fn case_in(tx: &Db, id: i64) -> Result<Option<(Escalation, CaseWork)>, StoreError> {
    tx.query_row(
        &format!("SELECT {CASE_COLUMNS} FROM escalations WHERE id = ?1"),
        [id],
        raw_case,
    )
    .optional()
    .map_err(sql("escalation"))?
    .map(cook_case)
    .transpose()
}

/// Checks that `actor` may work a case: claimed by them (an admin may work
/// any case that is not closed).
fn refuse_unless_worker(e: &Escalation, actor: &Actor, is_admin: bool) -> Result<(), CaseRefusal> {
    match e.status {
        EscalationStatus::Closed => Err(CaseRefusal::Closed),
        _ if is_admin => Ok(()),
        EscalationStatus::Open => Err(CaseRefusal::NotClaimed),
        EscalationStatus::Claimed => match &e.claimed_by {
            Some(by) if by == actor.name() => Ok(()),
            Some(by) => Err(CaseRefusal::ClaimedBy(by.clone())),
            None => Err(CaseRefusal::NotClaimed),
        },
    }
}

impl Store {
    /// The escalation queue with filters (default: open and claimed, newest
    /// first), and the total that matches before paging.
    pub fn list_escalations(
        &self,
        f: &EscalationFilter,
    ) -> Result<(Vec<Escalation>, u64), StoreError> {
        let mut w = Where::default();
        let statuses: Vec<&'static str> = if f.statuses.is_empty() {
            vec![
                EscalationStatus::Open.as_str(),
                EscalationStatus::Claimed.as_str(),
            ]
        } else {
            f.statuses.iter().map(|s| s.as_str()).collect()
        };
        w.any_of("status", &statuses);
        w.eq("intent", &f.intent);
        w.eq("reason", &f.reason);
        w.eq("account_id", &f.account_id);
        w.eq("claimed_by", &f.claimed_by);
        if let Some(t) = f.created_after {
            w.bind("created_at >= ?", ts(t));
        }
        if let Some(t) = f.created_before {
            w.bind("created_at < ?", ts(t));
        }
        let page = Page {
            from: "escalations",
            columns: CASE_COLUMNS,
            order: if f.oldest_first {
                "created_at, id"
            } else {
                "created_at DESC, id DESC"
            },
            limit: f.limit,
            offset: Some(f.offset),
        };
        let (raws, total) = self.page("list_escalations", w, page, raw_case)?;
        let list = raws
            .into_iter()
            .map(|r| cook_case(r).map(|(e, _)| e))
            .collect::<Result<_, _>>()?;
        Ok((list, total))
    }

    /// One escalation with its notes and closure.
    pub fn escalation_case(&self, id: i64) -> Result<Option<(Escalation, CaseWork)>, StoreError> {
        const OP: &str = "escalation_case";
        let Some((e, mut work)) = case_in(&self.conn, id)? else {
            return Ok(None);
        };
        let mut st = self
            .conn
            .prepare(
                "SELECT id, author, text, created_at FROM escalation_notes
                 WHERE escalation_id = ?1 ORDER BY id",
            )
            .map_err(sql(OP))?;
        let raws: Vec<(i64, String, String, String)> = st.query_all([id]).map_err(sql(OP))?;
        for (nid, author, text, at) in raws {
            work.notes.push(Note {
                id: nid,
                author,
                text,
                created_at: parse_ts(&at)?,
            });
        }
        let closure: Option<(String, String, String, String)> = self
            .conn
            .query_one(
                "SELECT closed_by, outcome, detail, closed_at FROM escalation_closures
                 WHERE escalation_id = ?1",
                [id],
            )
            .optional()
            .map_err(sql(OP))?;
        if let Some((by, _outcome, detail, at)) = closure {
            work.closure = Some(Closure {
                closed_by: by,
                outcome: parse_json(&detail, "closure")?,
                closed_at: parse_ts(&at)?,
            });
        }
        Ok(Some((e, work)))
    }

    /// Claims one case for `actor`. Exactly one of any number of concurrent
    /// claims wins: the check and the change are one guarded UPDATE under
    /// the write lock. A second claim by the winner is refused too.
    pub fn claim_case(
        &mut self,
        id: i64,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<Escalation, CaseRefusal>, StoreError> {
        const OP: &str = "claim_case";
        let tx = self.write_tx(OP)?;
        let won = tx
            .execute(
                "UPDATE escalations SET status = 'claimed', claimed_by = ?2, claimed_at = ?3
                 WHERE id = ?1 AND status = 'open'",
                params![id, actor.name(), ts(now)],
            )
            .map_err(sql(OP))?
            == 1;
        let case = case_in(&tx, id)?;
        let result = match (won, case) {
            (_, None) => Err(CaseRefusal::NotFound),
            (true, Some((e, _))) => {
                audit::append(
                    &tx,
                    now,
                    actor,
                    "escalation.claim",
                    &format!("escalation:{id}"),
                    &serde_json::json!({}),
                )?;
                Ok(e)
            }
            (false, Some((e, _))) => Err(match e.status {
                EscalationStatus::Closed => CaseRefusal::Closed,
                _ => match e.claimed_by {
                    Some(by) if by == actor.name() => CaseRefusal::AlreadyYours,
                    Some(by) => CaseRefusal::ClaimedBy(by),
                    None => CaseRefusal::NotClaimed,
                },
            }),
        };
        tx.commit().map_err(sql(OP))?;
        Ok(result)
    }

    /// Puts a claimed case back in the queue (its claimer, or an admin).
    pub fn unclaim_case(
        &mut self,
        id: i64,
        actor: &Actor,
        is_admin: bool,
        now: DateTime<Utc>,
    ) -> Result<Result<Escalation, CaseRefusal>, StoreError> {
        const OP: &str = "unclaim_case";
        let tx = self.write_tx(OP)?;
        let Some((e, _)) = case_in(&tx, id)? else {
            return Ok(Err(CaseRefusal::NotFound));
        };
        if let Err(r) = refuse_unless_worker(&e, actor, is_admin) {
            return Ok(Err(r));
        }
        if e.status == EscalationStatus::Open {
            return Ok(Err(CaseRefusal::NotClaimed));
        }
        tx.execute(
            "UPDATE escalations SET status = 'open', claimed_by = NULL, claimed_at = NULL
             WHERE id = ?1 AND status = 'claimed'",
            [id],
        )
        .map_err(sql(OP))?;
        audit::append(
            &tx,
            now,
            actor,
            "escalation.unclaim",
            &format!("escalation:{id}"),
            &serde_json::json!({"was_claimed_by": e.claimed_by}),
        )?;
        let e = case_in(&tx, id)?.map(|(e, _)| e);
        tx.commit().map_err(sql(OP))?;
        Ok(e.ok_or(CaseRefusal::NotFound))
    }

    /// Adds a note to a case the actor works (or any open one for an admin).
    pub fn add_case_note(
        &mut self,
        id: i64,
        actor: &Actor,
        is_admin: bool,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Note, CaseRefusal>, StoreError> {
        const OP: &str = "add_case_note";
        let tx = self.write_tx(OP)?;
        let Some((e, _)) = case_in(&tx, id)? else {
            return Ok(Err(CaseRefusal::NotFound));
        };
        if let Err(r) = refuse_unless_worker(&e, actor, is_admin) {
            return Ok(Err(r));
        }
        let nid = insert_note(&tx, id, actor, text, now)?;
        audit::append(
            &tx,
            now,
            actor,
            "escalation.note",
            &format!("escalation:{id}"),
            &serde_json::json!({"note_id": nid}),
        )?;
        tx.commit().map_err(sql(OP))?;
        Ok(Ok(Note {
            id: nid,
            author: actor.name().to_string(),
            text: text.to_string(),
            created_at: now,
        }))
    }

    /// Closes a case the actor works, in one transaction: the status, the
    /// closure, what the outcome means for later calls, the note if any,
    /// and the audit line.
    pub fn close_case(
        &mut self,
        id: i64,
        actor: &Actor,
        is_admin: bool,
        outcome: &CloseOutcome,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Closure, CaseRefusal>, StoreError> {
        const OP: &str = "close_case";
        let tx = self.write_tx(OP)?;
        let Some((e, _)) = case_in(&tx, id)? else {
            return Ok(Err(CaseRefusal::NotFound));
        };
        if let Err(r) = refuse_unless_worker(&e, actor, is_admin) {
            return Ok(Err(r));
        }
        let mut detail = serde_json::to_value(outcome).map_err(StoreError::Json)?;
        match outcome {
            CloseOutcome::Pause { until, reason } => {
                insert_pause(&tx, &e.account_id, reason, *until, now)?;
            }
            CloseOutcome::Suppress { scope, reason } => {
                let number = match scope {
                    SuppressScope::Account => None,
                    SuppressScope::Number => Some(dialled_number(&tx, &e)?),
                };
                insert_suppression(&tx, &e.account_id, number.as_deref(), reason, now)?;
            }
            CloseOutcome::Release => {
                let released = end_pauses(&tx, &e.account_id, actor, now)?;
                detail["released_pauses"] = serde_json::json!(released);
                // Released by a person: the holds go too (a dispute verified).
                let holds = release_all_holds(&tx, &e.account_id, actor.name(), now)?;
                detail["released_holds"] = serde_json::json!(holds);
            }
            CloseOutcome::Retry { at } => {
                let released = end_pauses(&tx, &e.account_id, actor, now)?;
                detail["released_pauses"] = serde_json::json!(released);
                let holds = release_all_holds(&tx, &e.account_id, actor.name(), now)?;
                detail["released_holds"] = serde_json::json!(holds);
                insert_callback(&tx, &e.account_id, *at, None, now)?;
            }
            CloseOutcome::Resolved => {}
        }
        tx.execute(
            "UPDATE escalations SET status = 'closed', closed_at = ?2,
                 claimed_by = COALESCE(claimed_by, ?3), claimed_at = COALESCE(claimed_at, ?2)
             WHERE id = ?1",
            params![id, ts(now), actor.name()],
        )
        .map_err(sql(OP))?;
        // The last open escalation of an attempt lets its collector hold go.
        release_agent_holds_of_closed(&tx, id, now)?;
        tx.execute(
            "INSERT INTO escalation_closures (escalation_id, closed_by, outcome, detail, closed_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                actor.name(),
                outcome.as_str(),
                detail.to_string(),
                ts(now)
            ],
        )
        .map_err(sql(OP))?;
        if let Some(text) = note.filter(|t| !t.trim().is_empty()) {
            insert_note(&tx, id, actor, text, now)?;
        }
        audit::append(
            &tx,
            now,
            actor,
            "escalation.close",
            &format!("escalation:{id}"),
            &detail,
        )?;
        tx.commit().map_err(sql(OP))?;
        Ok(Ok(Closure {
            closed_by: actor.name().to_string(),
            outcome: detail,
            closed_at: now,
        }))
    }
}

fn insert_note(
    tx: &Transaction<'_>,
    escalation_id: i64,
    actor: &Actor,
    text: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    tx.query_row(
        "INSERT INTO escalation_notes (escalation_id, author, text, created_at)
         VALUES (?1, ?2, ?3, ?4) RETURNING id",
        params![escalation_id, actor.name(), text, ts(now)],
        |r| r.get(0),
    )
    .map_err(sql("add_case_note"))
}

/// The number the case's call dialled, else the account's main number.
fn dialled_number(tx: &Transaction<'_>, e: &Escalation) -> Result<String, StoreError> {
    const OP: &str = "dialled_number";
    if let Some(a) = e.attempt_id {
        let p: Option<String> = tx
            .query_row("SELECT phone FROM attempts WHERE id = ?1", [a.0], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql(OP))?;
        if let Some(p) = p {
            return Ok(p);
        }
    }
    let p: Option<String> = tx
        .query_row(
            "SELECT phone FROM accounts WHERE account_id = ?1",
            [&e.account_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql(OP))?;
    p.ok_or_else(|| StoreError::Corrupt(format!("account {} of an escalation", e.account_id)))
}
