//! How an ended attempt reaches the disk: the database first (the source
//! of truth), then the outcome JSON beside the recording for QA, best
//! effort. When the database refuses (held locked by another connection,
//! disk full), the outcome is never dropped: an exact copy goes to
//! `<data dir>/pending/` and the runner retries until the database takes
//! it (then the copy goes); if the process dies first, recovery imports the
//! copy at the next start.
//!
//! It decides nothing about the outcome; it only makes sure it lands.

use std::path::{Path, PathBuf};

use super::recovery::{pending_file, PendingOutcome};
use crate::store::files::{create_private_dir, write_private};
use crate::store::{AttemptId, EndedAttempt, Store, StoreError};

/// Outcomes the database refused, waiting for a retry.
#[derive(Debug, Default)]
pub struct Unstored {
    waiting: Vec<PendingOutcome>,
}

impl Unstored {
    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Stores `outcome` of attempt `attempt`: into the database, or, if it
    /// refuses, into a pending copy and the retry queue. The error says why
    /// the database refused (the outcome is kept either way).
    pub fn record(
        &mut self,
        store: &mut Store,
        data_dir: &Path,
        attempt: AttemptId,
        account_id: &str,
        ended: EndedAttempt,
    ) -> Result<(), StoreError> {
        match store.record_outcome(attempt, &ended) {
            Ok(()) => {
                // The write-ahead copy the call task kept is done with.
                let _ = std::fs::remove_file(pending_file(data_dir, attempt));
                Ok(())
            }
            Err(e) => {
                let p = PendingOutcome {
                    attempt_id: attempt,
                    account_id: account_id.to_string(),
                    ended,
                };
                match keep_pending(data_dir, &p) {
                    Ok(file) => {
                        tracing::error!(attempt = %attempt, error = %e, file = %file.display(), "the database refused the outcome: kept, retrying")
                    }
                    Err(io) => {
                        tracing::error!(attempt = %attempt, error = %e, copy_error = %io, "the database refused the outcome and no copy could be written: kept in memory, retrying")
                    }
                }
                self.waiting.push(p);
                Err(e)
            }
        }
    }

    /// Tries every waiting outcome again, oldest first; the stored ones
    /// leave the queue and lose their pending copy. Returns the first error
    /// (the rest stay for the next retry).
    pub fn retry(&mut self, store: &mut Store, data_dir: &Path) -> Result<(), StoreError> {
        while let Some(p) = self.waiting.first() {
            match store.record_outcome(p.attempt_id, &p.ended) {
                Ok(()) => {}
                // Stored meanwhile (recovered by another start): nothing to do.
                Err(StoreError::WrongState { .. }) => {}
                Err(e) => return Err(e),
            }
            let p = self.waiting.remove(0);
            tracing::info!(attempt = %p.attempt_id, "outcome stored after a retry");
            let _ = std::fs::remove_file(pending_file(data_dir, p.attempt_id));
        }
        Ok(())
    }

    /// The pending copies still waiting (for the final error message).
    pub fn files(&self, data_dir: &Path) -> Vec<PathBuf> {
        self.waiting
            .iter()
            .map(|p| pending_file(data_dir, p.attempt_id))
            .collect()
    }
}

/// Keeps an exact copy of an outcome in `<data dir>/pending/` (0600, whole
/// or not at all) until the database has it.
pub fn keep_pending(data_dir: &Path, p: &PendingOutcome) -> std::io::Result<PathBuf> {
    let file = pending_file(data_dir, p.attempt_id);
    if let Some(dir) = file.parent() {
        create_private_dir(dir)?;
    }
    let bytes = serde_json::to_vec_pretty(p).map_err(std::io::Error::other)?;
    write_private(&file, &bytes)?;
    Ok(file)
}

/// Writes the outcome JSON beside its recording (`<recording>.json`, 0600),
/// after the database has it. Best effort: a full disk or a bad name is
/// logged and returns `None`; the outcome is already stored.
pub fn write_outcome_file(recording: &Path, outcome: &serde_json::Value) -> Option<PathBuf> {
    let path = recording.with_extension("json");
    let written = serde_json::to_vec_pretty(outcome)
        .map_err(std::io::Error::other)
        .and_then(|b| write_private(&path, &b));
    match written {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "outcome JSON not written (the database has the outcome)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::outcomes::store_failure;
    use super::super::test_support::{t0, tmp_dir};
    use super::*;
    use crate::outcome::Disposition;

    #[test]
    fn an_outcome_the_locked_database_refuses_is_kept_and_stored_on_retry() {
        let dir = tmp_dir("persist-locked");
        let mut store = Store::open(&dir).unwrap();
        store
            .set_busy_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let id = store
            .record_decision("L1", "+8613800000001", t0(), &serde_json::json!({}))
            .unwrap();
        store.mark_dialling(id, t0()).unwrap();
        // Another connection holds the write lock (a backup, a console).
        let other = rusqlite::Connection::open(dir.join(crate::store::DB_FILE)).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut q = Unstored::default();
        let ended = store_failure(Disposition::Busy, "test", "", t0());
        assert!(q.record(&mut store, &dir, id, "L1", ended.clone()).is_err());
        assert_eq!(q.len(), 1);
        let copy: PendingOutcome =
            serde_json::from_slice(&std::fs::read(pending_file(&dir, id)).unwrap()).unwrap();
        assert_eq!(copy.ended, ended, "an exact copy on disk");
        assert!(q.retry(&mut store, &dir).is_err(), "still locked");
        assert_eq!(q.len(), 1);
        other.execute_batch("COMMIT").unwrap();
        q.retry(&mut store, &dir).unwrap();
        assert!(q.is_empty());
        assert_eq!(
            store.attempt(id).unwrap().unwrap().disposition,
            Some(Disposition::Busy)
        );
        assert!(
            !pending_file(&dir, id).exists(),
            "the copy goes once stored"
        );
    }

    #[test]
    fn an_outcome_json_that_cannot_be_written_is_only_a_warning() {
        let dir = tmp_dir("persist-json");
        let rec = dir.join(format!("{}.wav", "x".repeat(300)));
        assert_eq!(write_outcome_file(&rec, &serde_json::json!({})), None);
        let ok = write_outcome_file(&dir.join("a.wav"), &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(ok, dir.join("a.json"));
    }
}
