//! One process's hold on its data directory, shared by everything in it
//! that places or takes calls (`duecall serve`: its campaign dialler and
//! its direct streams). The data directory's lock (`duecall.lock`, `flock`)
//! admits one holder per open file, even within a process, so the parts of
//! one process cannot each take it: they enter this owner instead, which
//! takes the lock when the first of them enters and gives it back when the
//! last one leaves. Another process (`duecall run`, `duecall call
//! --account`) is refused while any of them is in, and they are refused
//! while it holds the lock.
//!
//! Crash recovery happens here, at the one moment it is safe: when the lock
//! is taken with nothing of this process in flight, everything left in
//! flight in the store is a dead process's (`recovery::recover_as` at
//! start-up, under this node's lease). Whoever enters later (a campaign
//! run started while a stream converses) must not recover at start-up: it
//! would take a living call for a dead one (`runner::CampaignSetup::recovery`).
//!
//! Owns the lock's life and that recovery; never decides a dial (two
//! deciders inside the process are kept apart by `gate::claim`, under the
//! store's write lock).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::recovery::recover_as;
use crate::store::nodes::{node_id_of, Asking};
use crate::store::{DataDirLock, Store, StoreError};

/// The shared hold on a data directory; see the module's comment.
pub struct DataDirOwner {
    data_dir: PathBuf,
    record_dir: Option<PathBuf>,
    lease: Duration,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    users: usize,
    lock: Option<DataDirLock>,
}

/// One user's share of the data directory; the lock is given back when the
/// last share is dropped.
pub struct DataDirUse {
    owner: Arc<DataDirOwner>,
}

impl DataDirOwner {
    /// An owner of `data_dir` (not holding it yet). `record_dir` is where
    /// recordings and outcome JSON of crashed attempts are looked for,
    /// `lease` this node's lease (`[store] lease_s`), `clock` the time
    /// recovered attempts are stamped with.
    pub fn new(
        data_dir: PathBuf,
        record_dir: Option<PathBuf>,
        lease: Duration,
        clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    ) -> Arc<DataDirOwner> {
        Arc::new(DataDirOwner {
            data_dir,
            record_dir,
            lease,
            clock,
            held: Mutex::new(Held::default()),
        })
    }

    /// Enters: takes the lock if nobody in the process holds it (then
    /// recovers what a dead process left in flight), or shares it. Fails
    /// with `StoreError::Locked` naming the PID while another process holds
    /// the lock. Blocking (the recovery reads and writes the store).
    pub fn enter(self: &Arc<Self>) -> Result<DataDirUse, StoreError> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.lock.is_none() {
            let lock = DataDirLock::acquire(&self.data_dir)?;
            self.recover()?;
            held.lock = Some(lock);
        }
        held.users += 1;
        Ok(DataDirUse {
            owner: self.clone(),
        })
    }

    /// Whether the lock is held now (some part of the process is in).
    pub fn is_held(&self) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lock
            .is_some()
    }

    fn recover(&self) -> Result<(), StoreError> {
        let mut store = Store::open(&self.data_dir)?;
        let node = node_id_of(&self.data_dir)?;
        let lease_now = Utc::now();
        store.take_lease(&node, std::process::id(), lease_now, self.lease)?;
        let recovered = recover_as(
            &mut store,
            &self.data_dir,
            self.record_dir.as_deref(),
            Asking::StartUp,
            (self.clock)(),
            lease_now,
        )?;
        if !recovered.is_empty() {
            tracing::warn!(
                attempts = recovered.len(),
                "data directory taken: attempts a dead process left in flight recovered"
            );
        }
        // Nothing of this process is in flight yet: a clean hand-back (the
        // campaign runner takes the lease again while it dials).
        store.release_lease(&node, lease_now)
    }
}

impl Drop for DataDirUse {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|p| p.into_inner());
        held.users = held.users.saturating_sub(1);
        if held.users == 0 {
            held.lock = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{t0, tmp_dir};
    use super::*;
    use crate::store::AttemptState;

    fn owner(dir: &std::path::Path) -> Arc<DataDirOwner> {
        DataDirOwner::new(dir.to_path_buf(), None, Duration::seconds(30), Arc::new(t0))
    }

    #[test]
    fn parts_of_one_process_share_the_lock_another_process_is_refused_and_the_last_one_out_gives_it_back(
    ) {
        let dir = tmp_dir("owner-share");
        let o = owner(&dir);
        let a = o.enter().expect("the first part takes the lock");
        let b = o.enter().expect("a second part of the process shares it");
        assert!(matches!(
            DataDirLock::acquire(&dir),
            Err(StoreError::Locked { pid: Some(p), .. }) if p == std::process::id()
        ));
        drop(a);
        assert!(o.is_held(), "one part is still in");
        assert!(DataDirLock::acquire(&dir).is_err());
        drop(b);
        assert!(!o.is_held());
        let other = DataDirLock::acquire(&dir).expect("given back when the last part leaves");
        assert!(
            matches!(o.enter(), Err(StoreError::Locked { .. })),
            "refused while another holder has it"
        );
        drop(other);
        assert!(o.enter().is_ok());
    }

    #[test]
    fn taking_the_lock_recovers_a_dead_processs_calls_but_a_second_part_entering_never_takes_a_living_one(
    ) {
        let dir = tmp_dir("owner-recover");
        let mut s = Store::open(&dir).unwrap();
        let dead = s
            .record_decision("A", "+14155550100", t0(), &serde_json::json!({}))
            .unwrap();
        let o = owner(&dir);
        let first = o.enter().unwrap();
        assert_eq!(
            s.attempt(dead).unwrap().unwrap().state,
            AttemptState::FailedByCrash,
            "left in flight by a dead process: recovered when the lock is taken"
        );
        // A call of this process, in flight while another part enters.
        let live = s
            .record_decision("B", "+14155550101", t0(), &serde_json::json!({}))
            .unwrap();
        s.mark_dialling(live, t0()).unwrap();
        let second = o.enter().unwrap();
        assert_eq!(
            s.attempt(live).unwrap().unwrap().state,
            AttemptState::Dialling,
            "a living call is not taken for a dead one"
        );
        drop((first, second));
    }
}
