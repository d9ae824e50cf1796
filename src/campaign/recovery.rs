//! Crash recovery at start-up. For every attempt a dead run left in flight
//! it looks for the outcome the run could not store: first the exact copy
//! the runner keeps in `<data dir>/pending/` when the database refused a
//! write, then the outcome JSON beside the recording. Found: the outcome is
//! stored as if the call had just ended (its route, pause, suppression and
//! escalations included). Not found: the attempt becomes a failed attempt
//! (reason `crash`; it still counts against the caps). Either way its
//! recordings are repaired so QA can play them.
//!
//! It never dials and never forgets an attempt or a route it can still
//! find: every row stays, and a file it cannot read is kept, not deleted.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::outcome::{Disposition, Route};
use crate::store::nodes::Asking;
use crate::store::{AttemptId, EndedAttempt, NewEscalation, Store, StoreError, TurnRow};

/// Where a run keeps outcomes the database refused, inside the data dir.
pub const PENDING_DIR: &str = "pending";

/// An attempt found in flight at start-up (the last run died).
#[derive(Debug, Clone, Serialize)]
pub struct RecoveredAttempt {
    /// Store id.
    pub attempt_id: AttemptId,
    /// The account.
    pub account_id: String,
    /// The file its outcome was imported from (`None`: none was found, the
    /// attempt is now `failed_by_crash`, reason `crash`).
    pub imported_from: Option<PathBuf>,
    /// Recordings found for it and repaired.
    pub recordings: Vec<PathBuf>,
}

/// An outcome the database refused, as the runner keeps it until it can be
/// stored: exactly what `record_outcome` would have written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingOutcome {
    /// The attempt.
    pub attempt_id: AttemptId,
    /// Its account.
    pub account_id: String,
    /// The outcome.
    pub ended: EndedAttempt,
}

/// The file a pending outcome is kept in.
pub fn pending_file(data_dir: &Path, attempt: AttemptId) -> PathBuf {
    data_dir
        .join(PENDING_DIR)
        .join(format!("attempt-{attempt}.json"))
}

/// Recordings the agent wrote for an attempt: `<account>-<attempt>-<stamp>.wav`
/// in the recording directory (named by `agent::attempt_file_stem`, found by
/// its prefix).
pub fn recordings_of(dir: &Path, account_id: &str, attempt: AttemptId) -> Vec<PathBuf> {
    files_of(dir, account_id, attempt, "wav")
}

fn files_of(dir: &Path, account_id: &str, attempt: AttemptId, ext: &str) -> Vec<PathBuf> {
    let prefix = crate::agent::attempt_file_prefix(account_id, attempt.0);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == ext)
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    v.sort();
    v
}

/// Reads an outcome JSON as `duecall` writes it beside a recording
/// (ARCHITECTURE.md "Shapes": `call`, `turns`, `route`, plus the
/// conversation's `escalations` and `conversation` flag) back into the
/// store's row for attempt `attempt`. Fails, naming the key, when the file
/// is not the outcome of that attempt.
pub fn imported_outcome(
    v: &Value,
    attempt: AttemptId,
    now: DateTime<Utc>,
) -> Result<EndedAttempt, String> {
    if v["attempt_id"].as_i64() != Some(attempt.0) {
        return Err(format!(
            "attempt_id {} is not attempt {attempt}",
            v["attempt_id"]
        ));
    }
    let call = v
        .get("call")
        .filter(|c| c.is_object())
        .ok_or("no call object")?;
    let disposition = call["disposition"]
        .as_str()
        .and_then(Disposition::parse)
        .ok_or("call.disposition missing or unknown")?;
    let ended_at = call["ended_at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let recording = call["recording"].as_str().map(str::to_string);
    let route: Option<Route> = match &v["route"] {
        Value::Null => None,
        r => Some(serde_json::from_value(r.clone()).map_err(|e| format!("route: {e}"))?),
    };
    let turns: Vec<TurnRow> = v["turns"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|t| {
            let start = t["prompt_start_ms"].as_u64().unwrap_or(0);
            let played = t["played_ms"].as_u64().unwrap_or(0);
            TurnRow {
                prompt: t["prompt"].as_str().unwrap_or("").to_string(),
                played_ms: played,
                finished: t["finished"].as_bool().unwrap_or(false),
                heard: t["heard"].as_str().map(str::to_string),
                intent: t["intent"].as_str().map(str::to_string),
                confidence: t["confidence"].as_f64().map(|c| c as f32),
                start_ms: start,
                end_ms: t["end_ms"].as_u64().unwrap_or(start + played),
            }
        })
        .collect();
    let account_id = v["account_id"].as_str().unwrap_or("").to_string();
    let intent = v["intent"].as_str().map(str::to_string);
    let mk = |reason: &str, summary: &str| NewEscalation {
        account_id: account_id.clone(),
        attempt_id: Some(attempt),
        reason: reason.to_string(),
        intent: intent.clone(),
        summary: summary.to_string(),
        transcript: v["turns"].clone(),
        recording: recording.clone(),
        created_at: ended_at,
    };
    let escalations: Vec<NewEscalation> = v["escalations"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|e| {
            mk(
                e["reason"].as_str().unwrap_or("unknown"),
                e["summary"].as_str().unwrap_or(""),
            )
        })
        .collect();
    Ok(EndedAttempt {
        disposition,
        reason: call["reason"].as_str().map(str::to_string),
        sip_status: call["sip_status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok()),
        ended_at,
        conversation: v["conversation"].as_bool().unwrap_or(false),
        outcome_json: v.clone(),
        recording,
        turns,
        route,
        escalations,
    })
}

/// The outcome a dead run left for `attempt`, and the file it came from.
fn find_outcome(
    data_dir: &Path,
    record_dir: Option<&Path>,
    attempt: AttemptId,
    account_id: &str,
    now: DateTime<Utc>,
) -> Option<(EndedAttempt, PathBuf)> {
    let pending = pending_file(data_dir, attempt);
    if let Ok(bytes) = std::fs::read(&pending) {
        match serde_json::from_slice::<PendingOutcome>(&bytes) {
            Ok(p) if p.attempt_id == attempt => return Some((p.ended, pending)),
            Ok(_) => {
                tracing::warn!(file = %pending.display(), "pending outcome names another attempt: kept, not imported")
            }
            Err(e) => {
                tracing::warn!(file = %pending.display(), error = %e, "pending outcome unreadable: kept, not imported")
            }
        }
    }
    for json in record_dir
        .map(|d| files_of(d, account_id, attempt, "json"))
        .unwrap_or_default()
    {
        let parsed = std::fs::read(&json)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
            .and_then(|v| imported_outcome(&v, attempt, now));
        match parsed {
            Ok(ended) => return Some((ended, json)),
            Err(e) => {
                tracing::warn!(file = %json.display(), error = %e, "outcome JSON not imported")
            }
        }
    }
    None
}

/// Recovers what a crashed run left in flight: imports the outcomes it can
/// find (pending copies first, then outcome JSON beside recordings), marks
/// the rest failed (reason `crash`), repairs recordings, and removes pending
/// copies of outcomes that are now in the store.
pub fn recover(
    store: &mut Store,
    data_dir: &Path,
    record_dir: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Vec<RecoveredAttempt>, StoreError> {
    recover_as(store, data_dir, record_dir, Asking::StartUp, now, now)
}

/// As [`recover`], for a node on a store others may share: only the
/// attempts this node may take over (`store::nodes::may_take_over`: at
/// start-up its own previous incarnation's; any time, those of a node whose
/// lease ended before `lease_now`, the real time leases are kept in).
/// `now` (the campaign clock) stamps what it ends. Another node's attempt
/// has no outcome here (its data directory is on its own disk): it becomes
/// `failed_by_crash`.
pub fn recover_as(
    store: &mut Store,
    data_dir: &Path,
    record_dir: Option<&Path>,
    asking: Asking,
    now: DateTime<Utc>,
    lease_now: DateTime<Utc>,
) -> Result<Vec<RecoveredAttempt>, StoreError> {
    let mut out = Vec::new();
    let me = store.node().map(str::to_owned);
    for (id, account_id) in store.in_flight_to_take_over(asking, lease_now)? {
        // Another node's attempt: its outcome and recordings are on its
        // own disk; only this node's are looked for here.
        let holder = store.attempt_node(id)?;
        let own = holder.is_none() || holder == me;
        let mut recordings = Vec::new();
        if let (Some(dir), true) = (record_dir, own) {
            for p in recordings_of(dir, &account_id, id) {
                match crate::media::recorder::repair(&p) {
                    Ok(_) => recordings.push(p),
                    Err(e) => {
                        tracing::warn!(attempt = %id, error = %e, "recording of a crashed attempt could not be repaired")
                    }
                }
            }
        }
        let found = if own {
            find_outcome(data_dir, record_dir, id, &account_id, now)
        } else {
            None
        };
        let imported_from = match found {
            Some((ended, file)) => {
                store.record_outcome(id, &ended)?;
                tracing::warn!(attempt = %id, account = %account_id, file = %file.display(), "outcome of an attempt in flight at a crash imported");
                Some(file)
            }
            None => {
                // Under the write lock, the holder's lease read again: a
                // node that renewed in between keeps its call.
                if !store.take_over_crashed(id, asking, now, lease_now)? {
                    continue;
                }
                tracing::warn!(attempt = %id, account = %account_id, node = holder.as_deref().unwrap_or("-"), repaired = recordings.len(), "attempt in flight at a crash recorded as failed (reason crash)");
                None
            }
        };
        out.push(RecoveredAttempt {
            attempt_id: id,
            account_id,
            imported_from,
            recordings,
        });
    }
    if asking == Asking::StartUp {
        clear_stored_pending(store, data_dir)?;
    }
    Ok(out)
}

/// Removes pending copies whose attempt has ended in the store (a run that
/// stored them late, then died before removing the file). Others are kept.
fn clear_stored_pending(store: &Store, data_dir: &Path) -> Result<(), StoreError> {
    let Ok(rd) = std::fs::read_dir(data_dir.join(PENDING_DIR)) else {
        return Ok(());
    };
    for p in rd.flatten().map(|e| e.path()) {
        let id = p
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.strip_prefix("attempt-"))
            .and_then(|s| s.parse::<i64>().ok())
            .map(AttemptId);
        let Some(id) = id else { continue };
        // Only a copy whose outcome is stored goes; an attempt marked
        // crashed keeps its copy (it may be the only trace of a route).
        let stored = store
            .attempt(id)?
            .is_some_and(|a| a.state == crate::store::AttemptState::Ended);
        if stored {
            let _ = std::fs::remove_file(&p);
        } else {
            tracing::warn!(file = %p.display(), "pending outcome for an attempt the store does not have in flight: kept");
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
