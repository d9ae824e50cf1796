//! Crash recovery at start-up: attempts a dead run left in flight become
//! failed attempts (reason `crash`; they still count against the caps) and
//! their recordings are repaired so QA can play them.
//!
//! It never dials and never forgets an attempt: every row it finds stays.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{AttemptId, Store, StoreError};

/// An attempt found in flight at start-up (the last run died).
#[derive(Debug, Clone, Serialize)]
pub struct RecoveredAttempt {
    /// Store id (now `failed_by_crash`, reason `crash`).
    pub attempt_id: AttemptId,
    /// The account.
    pub account_id: String,
    /// Recordings found for it and repaired.
    pub recordings: Vec<PathBuf>,
}

/// Recordings the agent wrote for an attempt: `<account>-<attempt>-<stamp>.wav`
/// in the recording directory (named by `agent::attempt_file_stem`, found by
/// its prefix).
pub fn recordings_of(dir: &Path, account_id: &str, attempt: AttemptId) -> Vec<PathBuf> {
    let prefix = crate::agent::attempt_file_prefix(account_id, attempt.0);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "wav")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    v.sort();
    v
}

/// Marks what a crashed run left in flight as failed attempts (they still
/// count) and repairs their recordings.
pub fn recover(
    store: &mut Store,
    record_dir: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Vec<RecoveredAttempt>, StoreError> {
    let ids = store.recover_after_crash(now)?;
    let mut out = Vec::new();
    for id in ids {
        let Some(rec) = store.attempt(id)? else {
            continue;
        };
        let mut recordings = Vec::new();
        if let Some(dir) = record_dir {
            for p in recordings_of(dir, &rec.account_id, id) {
                match crate::media::recorder::repair(&p) {
                    Ok(_) => recordings.push(p),
                    Err(e) => {
                        tracing::warn!(attempt = %id, error = %e, "recording of a crashed attempt could not be repaired")
                    }
                }
            }
        }
        tracing::warn!(attempt = %id, account = %rec.account_id, repaired = recordings.len(), "attempt in flight at a crash recorded as failed (reason crash)");
        out.push(RecoveredAttempt {
            attempt_id: id,
            account_id: rec.account_id,
            recordings,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::outcomes::store_failure;
    use super::super::test_support::{account, t0, tmp_dir};
    use super::*;
    use crate::outcome::Disposition;
    use chrono::Duration;

    fn store_with(dir: &Path, accounts: &[crate::account::Account]) -> Store {
        let mut s = Store::open(dir).unwrap();
        s.upsert_accounts(accounts, t0()).unwrap();
        s
    }

    #[test]
    fn attempts_in_flight_at_a_crash_become_failed_and_their_recordings_are_repaired() {
        let dir = tmp_dir("recover");
        let rec_dir = dir.join("recordings");
        let a = account("A/1", "+8613800000001", &[]);
        let mut w = store_with(&dir, &[a]);
        let done = w
            .record_decision("A/1", "+8613800000001", t0(), &serde_json::json!({}))
            .unwrap();
        w.mark_dialling(done, t0()).unwrap();
        w.record_outcome(done, &store_failure(Disposition::Busy, "test", "", t0()))
            .unwrap();
        let id = w
            .record_decision("A/1", "+8613800000001", t0(), &serde_json::json!({}))
            .unwrap();
        w.mark_dialling(id, t0()).unwrap();
        // The agent's name for it; the writer dies before its final header.
        let path = rec_dir.join(format!("A_1-{id}-20261120T020000Z.wav"));
        let mut r = crate::media::recorder::StereoRecorder::create(&path).unwrap();
        for _ in 0..30 {
            r.write_frame(&[100; 160], &[-100; 160]).unwrap();
        }
        std::mem::forget(r);
        std::fs::write(
            rec_dir.join(format!("A_1-{}-x.wav", id.0 + 10)),
            b"not ours",
        )
        .unwrap();

        let rec = recover(&mut w, Some(&rec_dir), t0() + Duration::minutes(1)).unwrap();
        assert_eq!(rec.len(), 1, "only the attempt still in flight");
        assert_eq!(rec[0].attempt_id, id);
        assert_eq!(rec[0].recordings, vec![path.clone()]);
        let row = w.attempt(id).unwrap().unwrap();
        assert_eq!(row.state, crate::store::AttemptState::FailedByCrash);
        assert_eq!(row.reason.as_deref(), Some("crash"));
        assert_eq!(
            w.attempt(done).unwrap().unwrap().disposition,
            Some(Disposition::Busy),
            "ended outcomes are kept"
        );
        assert_eq!(
            w.history_for("A/1").unwrap().len(),
            2,
            "the crashed attempt still counts"
        );
        let mut reader = hound::WavReader::open(&path).expect("repaired recording opens");
        assert_eq!(reader.spec().channels, 2);
        let n = reader.samples::<i16>().filter_map(Result::ok).count();
        assert!(
            n >= 160 * 2,
            "audio up to the crash is readable ({n} samples)"
        );
    }
}
