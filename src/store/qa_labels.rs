//! QA labels: a reviewer's verdict on a call or on one of its turns (the
//! intent was right, wrong and what it should have been, a script problem,
//! a compliance concern) with a score. Owns the `qa_labels` rows; the
//! export of labelled utterances reads them with the turns they name.

use super::db::{params, OptionalExtension};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::{self, Actor};
use super::codec::{parse_ts, ts};
use super::{sql, Store, StoreError};

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The agent heard and understood right.
    Correct,
    /// The intent was wrong (`right_intent` says what it was).
    WrongIntent,
    /// What the agent said was wrong or badly put.
    ScriptProblem,
    /// Something a compliance officer must look at.
    ComplianceConcern,
}

impl Verdict {
    /// The spelling in the store and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Correct => "correct",
            Verdict::WrongIntent => "wrong_intent",
            Verdict::ScriptProblem => "script_problem",
            Verdict::ComplianceConcern => "compliance_concern",
        }
    }

    fn parse(s: &str) -> Result<Verdict, StoreError> {
        Ok(match s {
            "correct" => Verdict::Correct,
            "wrong_intent" => Verdict::WrongIntent,
            "script_problem" => Verdict::ScriptProblem,
            "compliance_concern" => Verdict::ComplianceConcern,
            other => return Err(StoreError::Corrupt(format!("QA verdict {other:?}"))),
        })
    }
}

/// A label to store (checked by the caller: the turn exists, the intent is
/// one of the fixed set, the score is 1-5).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLabel {
    /// The call.
    pub attempt_id: i64,
    /// The turn (0-based), or the whole call.
    pub turn_idx: Option<u32>,
    /// The verdict.
    pub verdict: Verdict,
    /// For `wrong_intent`: what the reply meant.
    pub right_intent: Option<String>,
    /// What the debtor really said, when the recogniser got it wrong.
    pub right_text: Option<String>,
    /// 1 (bad) to 5 (good).
    pub score: Option<u8>,
    /// Free text.
    pub note: Option<String>,
}

/// A stored label.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Label {
    /// Store id.
    pub id: i64,
    /// The call.
    pub attempt_id: i64,
    /// The turn, or none for the whole call.
    pub turn_idx: Option<u32>,
    /// The verdict.
    pub verdict: Verdict,
    /// For `wrong_intent`: the right intent.
    pub right_intent: Option<String>,
    /// What the debtor really said, if the recogniser got it wrong.
    pub right_text: Option<String>,
    /// 1-5.
    pub score: Option<u8>,
    /// Free text.
    pub note: Option<String>,
    /// The reviewer.
    pub labelled_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A labelled reply, for the speech and intent evaluations: the turn's
/// text, its true intent (the label's, else the recognised one for
/// `correct`), and where its audio is in the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledTurn {
    /// The label.
    pub label: Label,
    /// What the recognizer heard.
    pub heard: Option<String>,
    /// The intent the agent decided.
    pub intent: Option<String>,
    /// Turn start, ms from the answer.
    pub start_ms: u64,
    /// Turn end, ms from the answer.
    pub end_ms: u64,
    /// The call's account (for its language).
    pub account_id: String,
    /// The recording of the call.
    pub recording: Option<String>,
    /// The call's outcome JSON (its turns carry the reply's own times).
    pub outcome: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, attempt_id, turn_idx, verdict, right_intent, right_text, score, note, \
     labelled_by, created_at";

type Raw = (
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
    String,
);

fn cook(
    (id, attempt_id, turn, verdict, right, right_text, score, note, by, at): Raw,
) -> Result<Label, StoreError> {
    Ok(Label {
        id,
        attempt_id,
        turn_idx: turn.map(|t| t.clamp(0, u32::MAX as i64) as u32),
        verdict: Verdict::parse(&verdict)?,
        right_intent: right,
        right_text,
        score: score.map(|s| s.clamp(0, 255) as u8),
        note,
        labelled_by: by,
        created_at: parse_ts(&at)?,
    })
}

impl Store {
    /// Stores a label and its audit line. `Ok(None)` when the attempt (or
    /// the turn) does not exist.
    pub fn add_label(
        &mut self,
        l: &NewLabel,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<Label>, StoreError> {
        const OP: &str = "add_label";
        let tx = self.write_tx(OP)?;
        let exists = match l.turn_idx {
            None => tx
                .query_row(
                    "SELECT 1 FROM attempts WHERE id = ?1",
                    [l.attempt_id],
                    |_| Ok(()),
                )
                .optional(),
            Some(t) => tx
                .query_row(
                    "SELECT 1 FROM turns WHERE attempt_id = ?1 AND idx = ?2",
                    params![l.attempt_id, t],
                    |_| Ok(()),
                )
                .optional(),
        }
        .map_err(sql(OP))?
        .is_some();
        if !exists {
            return Ok(None);
        }
        let id: i64 = tx
            .query_row(
                "INSERT INTO qa_labels (attempt_id, turn_idx, verdict, right_intent, right_text, score,
                     note, labelled_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                params![
                    l.attempt_id,
                    l.turn_idx,
                    l.verdict.as_str(),
                    l.right_intent,
                    l.right_text,
                    l.score,
                    l.note,
                    actor.name(),
                    ts(now)
                ],
                |r| r.get(0),
            )
            .map_err(sql(OP))?;
        audit::append(
            &tx,
            now,
            actor,
            "label.add",
            &format!("attempt:{}", l.attempt_id),
            &serde_json::json!({"label_id": id, "turn": l.turn_idx, "verdict": l.verdict.as_str()}),
        )?;
        tx.commit().map_err(sql(OP))?;
        Ok(Some(Label {
            id,
            attempt_id: l.attempt_id,
            turn_idx: l.turn_idx,
            verdict: l.verdict,
            right_intent: l.right_intent.clone(),
            right_text: l.right_text.clone(),
            score: l.score,
            note: l.note.clone(),
            labelled_by: actor.name().to_string(),
            created_at: now,
        }))
    }

    /// Labels of one call, oldest first.
    pub fn labels_of(&self, attempt_id: i64) -> Result<Vec<Label>, StoreError> {
        const OP: &str = "labels_of";
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM qa_labels WHERE attempt_id = ?1 ORDER BY id"
            ))
            .map_err(sql(OP))?;
        let raws: Vec<Raw> = st.query_all([attempt_id]).map_err(sql(OP))?;
        raws.into_iter().map(cook).collect()
    }

    /// Every label on a turn, with the turn it names, oldest first: what
    /// the export of labelled utterances reads. Only the latest label of
    /// each turn counts (a reviewer may correct themselves).
    pub fn labelled_turns(&self) -> Result<Vec<LabelledTurn>, StoreError> {
        const OP: &str = "labelled_turns";
        let cols = COLUMNS
            .split(", ")
            .map(|c| format!("l.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {cols}, t.heard, t.intent, t.start_ms, t.end_ms, a.account_id, a.recording, a.outcome
                 FROM qa_labels l
                 JOIN turns t ON t.attempt_id = l.attempt_id AND t.idx = l.turn_idx
                 JOIN attempts a ON a.id = l.attempt_id
                 WHERE l.id = (SELECT MAX(m.id) FROM qa_labels m
                               WHERE m.attempt_id = l.attempt_id AND m.turn_idx = l.turn_idx)
                 ORDER BY l.attempt_id, l.turn_idx"
            ))
            .map_err(sql(OP))?;
        type Extra = (
            Option<String>,
            Option<String>,
            i64,
            i64,
            String,
            Option<String>,
            Option<String>,
        );
        let raws: Vec<(Raw, Extra)> = st
            .query_map([], |r| {
                Ok((
                    super::db::FromRow::from_row(r)?,
                    (
                        r.get(10)?,
                        r.get(11)?,
                        r.get(12)?,
                        r.get(13)?,
                        r.get(14)?,
                        r.get(15)?,
                        r.get(16)?,
                    ),
                ))
            })
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        raws.into_iter()
            .map(
                |(r, (heard, intent, start, end, account_id, recording, outcome))| {
                    Ok(LabelledTurn {
                        label: cook(r)?,
                        heard,
                        intent,
                        start_ms: start.max(0) as u64,
                        end_ms: end.max(0) as u64,
                        account_id,
                        recording,
                        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
                    })
                },
            )
            .collect()
    }
}
