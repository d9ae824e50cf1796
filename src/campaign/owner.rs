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
//! The node's lease lives with the lock: taken when the first part enters,
//! renewed by a heartbeat thread every third of it while any part is in,
//! given back when the last one leaves. Every attempt a part decides names
//! the node ([`DataDirOwner::node`], `Store::act_for`), so another node
//! sharing the store never takes a living call of this process for a dead
//! one (a campaign run inside it renews the same lease and leaves its
//! release to this owner).
//!
//! Owns the lock's life, the lease's and that recovery; never decides a
//! dial (two deciders inside the process are kept apart by `gate::claim`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::recovery::recover_as;
use crate::store::nodes::{node_id_of, Asking};
use crate::store::{DataDirLock, Location, StoreError};

/// The shared hold on a data directory; see the module's comment.
pub struct DataDirOwner {
    at: Location,
    record_dir: Option<PathBuf>,
    lease: Duration,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    users: usize,
    lock: Option<DataDirLock>,
    /// This node's id while the lock is held.
    node: Option<String>,
    /// Stops the lease's heartbeat thread, which gives the lease back.
    heartbeat: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// One user's share of the data directory; the lock is given back when the
/// last share is dropped.
pub struct DataDirUse {
    owner: Arc<DataDirOwner>,
}

impl DataDirOwner {
    /// An owner of the data directory of `at` (not holding it yet; the
    /// store it recovers in is `at`'s, shared or not). `record_dir` is where
    /// recordings and outcome JSON of crashed attempts are looked for,
    /// `lease` this node's lease (`[store] lease_s`), `clock` the time
    /// recovered attempts are stamped with.
    pub fn new(
        at: Location,
        record_dir: Option<PathBuf>,
        lease: Duration,
        clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    ) -> Arc<DataDirOwner> {
        Arc::new(DataDirOwner {
            at,
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
            let lock = DataDirLock::acquire(self.at.dir())?;
            let node = self.recover()?;
            held.heartbeat = self.keep_lease(node.clone());
            held.node = Some(node);
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

    /// This node's id while some part of the process is in (`None`
    /// otherwise): name it on every attempt decided (`Store::act_for`).
    pub fn node(&self) -> Option<String> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .node
            .clone()
    }

    /// Takes the lease and recovers; returns the node's id.
    fn recover(&self) -> Result<String, StoreError> {
        let mut store = self.at.open()?;
        let node = node_id_of(self.at.dir())?;
        let lease_now = Utc::now();
        store.take_lease(&node, std::process::id(), lease_now, self.lease)?;
        let recovered = recover_as(
            &mut store,
            self.at.dir(),
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
        Ok(node)
    }

    /// Renews `node`'s lease every third of it, on a connection of its own,
    /// until the returned flag is set; then gives the lease back (join the
    /// thread to know it has). A lease
    /// found lost (the process was paused past it, or the store was
    /// unreachable that long) is logged at error and taken again: other
    /// nodes may have recorded this process's calls in flight as crashed.
    fn keep_lease(&self, node: String) -> Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)> {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, at, lease) = (stop.clone(), self.at.clone(), self.lease);
        let beat = (lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(10))
            .max(std::time::Duration::from_millis(200));
        let spawned = std::thread::Builder::new()
            .name("duecall-lease".into())
            .spawn(move || {
                let mut store = None;
                let mut next = std::time::Instant::now() + beat;
                while !flag.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    if std::time::Instant::now() < next {
                        continue;
                    }
                    next = std::time::Instant::now() + beat;
                    if let Err(e) = beat_once(&at, &mut store, &node, lease) {
                        tracing::warn!(node = %node, error = %e, "lease not renewed (tried again at the next beat)");
                        store = None;
                    }
                }
                let s = match store {
                    Some(s) => Ok(s),
                    None => at.open(),
                };
                if let Err(e) = s.and_then(|mut s| s.release_lease(&node, Utc::now())) {
                    tracing::warn!(node = %node, error = %e, "lease not given back (it expires by itself)");
                }
            });
        match spawned {
            Ok(t) => Some((stop, t)),
            Err(e) => {
                tracing::error!(error = %e, "no thread to renew the node's lease: it expires while the data directory is held");
                None
            }
        }
    }
}

/// One heartbeat of [`DataDirOwner::keep_lease`].
fn beat_once(
    at: &Location,
    store: &mut Option<crate::store::Store>,
    node: &str,
    lease: Duration,
) -> Result<(), StoreError> {
    let s = match store {
        Some(s) => s,
        None => store.insert(at.open()?),
    };
    if !s.renew_lease(node, Utc::now(), lease)? {
        tracing::error!(node = %node, "this node's lease expired while the data directory was held (the process was paused?): taken again; other nodes may have recorded its calls in flight as crashed");
        s.take_lease(node, std::process::id(), Utc::now(), lease)?;
    }
    Ok(())
}

impl Drop for DataDirUse {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|p| p.into_inner());
        held.users = held.users.saturating_sub(1);
        if held.users == 0 {
            if let Some((stop, thread)) = held.heartbeat.take() {
                // The heartbeat thread gives the lease back as it ends
                // (within one 50 ms nap), before the lock is: the next
                // holder finds it given back.
                stop.store(true, Ordering::SeqCst);
                let _ = thread.join();
            }
            held.node = None;
            held.lock = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{t0, tmp_dir};
    use super::*;
    use crate::store::{AttemptState, Store};

    fn owner(dir: &std::path::Path) -> Arc<DataDirOwner> {
        DataDirOwner::new(
            Location::local(dir),
            None,
            Duration::seconds(30),
            Arc::new(t0),
        )
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

    #[test]
    fn the_nodes_lease_is_held_and_renewed_while_a_part_is_in_and_given_back_when_the_last_leaves()
    {
        let dir = tmp_dir("owner-lease");
        let o = DataDirOwner::new(
            Location::local(&dir),
            None,
            Duration::milliseconds(600),
            Arc::new(t0),
        );
        assert_eq!(o.node(), None);
        let a = o.enter().unwrap();
        let node = o.node().expect("named while in");
        let s = Store::open(&dir).unwrap();
        let lease = |s: &Store| {
            s.nodes()
                .unwrap()
                .into_iter()
                .find(|n| n.node_id == node)
                .expect("the node's row")
        };
        let first = lease(&s);
        assert!(first.stopped_at.is_none(), "held while a part is in");
        // Past the first lease's end: renewed by the heartbeat meanwhile.
        std::thread::sleep(std::time::Duration::from_millis(900));
        let later = lease(&s);
        assert!(later.stopped_at.is_none());
        assert!(
            later.lease_until > first.lease_until && later.lease_until > Utc::now(),
            "renewed: {} then {}",
            first.lease_until,
            later.lease_until
        );
        drop(a);
        assert!(
            lease(&s).stopped_at.is_some(),
            "given back when the last part leaves"
        );
        assert_eq!(o.node(), None);
    }
}
