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
use crate::store::files::{create_private_dir, make_private, write_private};
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

/// Moves a finished recording into the directory every node shares
/// (`[store] recordings`, e.g. an NFS mount), keeping its file name
/// (attempt ids are unique in the shared store, and they are in the name),
/// and returns where it is now: the attempt row names that path, so the
/// service on any node finds it. Whole or not at all: across file systems
/// it is copied to a hidden `.part` file, synced, renamed into place, and
/// only then removed here. A file already there by that name is never
/// overwritten (an error; the recording stays on this node). Owner-only.
pub fn publish_recording(recording: &Path, shared: &Path) -> std::io::Result<PathBuf> {
    let name = recording.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: not a file name", recording.display()),
        )
    })?;
    create_private_dir(shared)?;
    let target = shared.join(name);
    if target.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", target.display()),
        ));
    }
    match std::fs::rename(recording, &target) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let part = shared.join(format!(".{}.part", name.to_string_lossy()));
            let copied = std::fs::copy(recording, &part)
                .and_then(|_| make_private(&part))
                .and_then(|()| std::fs::File::open(&part)?.sync_all())
                .and_then(|()| std::fs::rename(&part, &target));
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
            std::fs::remove_file(recording)?;
        }
        Err(e) => return Err(e),
    }
    make_private(&target)?;
    Ok(target)
}

/// [`publish_recording`] for an ended attempt about to be stored: its
/// `recording` names the shared copy from now on. A move that fails is
/// logged and the attempt keeps naming this node's copy.
pub fn publish_ended(ended: &mut EndedAttempt, attempt: AttemptId, shared: Option<&Path>) {
    let (Some(shared), Some(rec)) = (shared, ended.recording.clone()) else {
        return;
    };
    match publish_recording(Path::new(&rec), shared) {
        Ok(p) => ended.recording = Some(p.display().to_string()),
        Err(e) => {
            tracing::warn!(attempt = %attempt, error = %e, "recording not moved to the shared recordings directory (it stays on this node)")
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
    fn a_published_recording_moves_whole_keeps_its_name_and_never_overwrites() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tmp_dir("publish");
        let shared = dir.join("shared");
        let rec = dir.join("A-1-7.wav");
        std::fs::write(&rec, b"RIFF....").unwrap();
        let moved = publish_recording(&rec, &shared).unwrap();
        assert_eq!(moved, shared.join("A-1-7.wav"));
        assert_eq!(std::fs::read(&moved).unwrap(), b"RIFF....");
        assert!(!rec.exists(), "moved, not copied");
        let mode = std::fs::metadata(&moved).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The same name again: refused, the new file stays here.
        std::fs::write(&rec, b"other").unwrap();
        assert!(publish_recording(&rec, &shared).is_err());
        assert_eq!(std::fs::read(&rec).unwrap(), b"other");
        assert_eq!(std::fs::read(&moved).unwrap(), b"RIFF....");
        // Another file system (tmpfs), when this machine has one: copied
        // whole, then removed here.
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            let far = shm.join(format!("duecall-publish-{}", std::process::id()));
            let rec2 = dir.join("A-2-8.wav");
            std::fs::write(&rec2, b"RIFF2").unwrap();
            let moved = publish_recording(&rec2, &far).unwrap();
            assert_eq!(std::fs::read(&moved).unwrap(), b"RIFF2");
            assert!(!rec2.exists());
            let _ = std::fs::remove_dir_all(&far);
        }
    }

    #[test]
    fn an_ended_attempt_names_its_shared_recording_or_keeps_its_own() {
        let dir = tmp_dir("publish-ended");
        let rec = dir.join("A-1-9.wav");
        std::fs::write(&rec, b"RIFF").unwrap();
        let mut ended = store_failure(Disposition::Failed, "agent", "x", t0());
        ended.recording = Some(rec.display().to_string());
        publish_ended(&mut ended, AttemptId(9), None);
        assert_eq!(ended.recording.as_deref(), Some(rec.to_str().unwrap()));
        publish_ended(&mut ended, AttemptId(9), Some(&dir.join("shared")));
        assert_eq!(
            ended.recording,
            Some(dir.join("shared").join("A-1-9.wav").display().to_string())
        );
        // Gone from where it was: a second move fails and keeps the name.
        let before = ended.recording.clone();
        ended.recording = Some(rec.display().to_string());
        publish_ended(&mut ended, AttemptId(9), Some(&dir.join("shared2")));
        assert_ne!(ended.recording, before);
        assert_eq!(ended.recording.as_deref(), Some(rec.to_str().unwrap()));
    }

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
