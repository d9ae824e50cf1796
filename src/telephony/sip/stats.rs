//! Per-trunk counters for `/metrics`, keyed by the trunk's name (never its
//! position): calls placed through it, answered, failed, moved on to the
//! next trunk after a 503 or silence, calls in flight, whether it is
//! registered and whether it answers OPTIONS pings.
//!
//! The registry is process-wide (as the older `duecall_sip_registered`
//! gauge is): the web service renders what every gateway of the process
//! counted. Two gateways with a trunk of the same name share its counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// One trunk's counters and gauges.
#[derive(Debug, Default)]
pub struct TrunkStats {
    placed: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    failed_over: AtomicU64,
    in_flight: AtomicI64,
    /// 0 unknown/not configured, 1 no, 2 yes.
    registered: AtomicU8,
    /// 0 no pings (or none answered yet), 1 down, 2 up.
    options_up: AtomicU8,
}

fn tri(v: Option<bool>) -> u8 {
    match v {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

fn untri(v: u8) -> Option<bool> {
    match v {
        0 => None,
        v => Some(v == 2),
    }
}

impl TrunkStats {
    /// A call was placed through the trunk (it holds one of its slots).
    pub(super) fn placed(&self) {
        self.placed.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A call placed through the trunk let go of it (ended, or moved on).
    pub(super) fn released(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A call through the trunk was answered.
    pub(super) fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// A call through the trunk ended without an answer there.
    pub(super) fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The trunk failed a call (503, silence, a transport error) and the
    /// INVITE moved on to the next trunk.
    pub(super) fn failed_over(&self) {
        self.failed_over.fetch_add(1, Ordering::Relaxed);
    }

    /// Registered at the trunk now (None: the trunk does not register).
    pub(super) fn set_registered(&self, v: Option<bool>) {
        self.registered.store(tri(v), Ordering::Relaxed);
    }

    /// Answers OPTIONS pings now (None: not pinged).
    pub(super) fn set_options_up(&self, v: Option<bool>) {
        self.options_up.store(tri(v), Ordering::Relaxed);
    }

    fn snapshot(&self, trunk: &str) -> TrunkSnapshot {
        TrunkSnapshot {
            trunk: trunk.to_string(),
            placed: self.placed.load(Ordering::Relaxed),
            answered: self.answered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            failed_over: self.failed_over.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed).max(0) as u64,
            registered: untri(self.registered.load(Ordering::Relaxed)),
            options_up: untri(self.options_up.load(Ordering::Relaxed)),
        }
    }
}

/// One trunk's numbers at one moment, for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkSnapshot {
    /// The trunk's name (`[[trunk]] name`, `default` for the `[sip]` keys).
    pub trunk: String,
    /// Calls placed through it (a failover to it counts).
    pub placed: u64,
    /// Calls answered through it.
    pub answered: u64,
    /// Calls that ended without an answer on it (busy, rejected, no
    /// answer, its own failure with no trunk left to move on to).
    pub failed: u64,
    /// Calls it failed (503, silence, transport) that moved on to the next trunk.
    pub failed_over: u64,
    /// Calls through it now.
    pub in_flight: u64,
    /// Registered (None: it does not register).
    pub registered: Option<bool>,
    /// Answers OPTIONS pings (None: not pinged, or no answer yet).
    pub options_up: Option<bool>,
}

fn registry() -> &'static Mutex<BTreeMap<String, Arc<TrunkStats>>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<String, Arc<TrunkStats>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// The counters of the trunk named `name` (created at first use).
pub fn for_trunk(name: &str) -> Arc<TrunkStats> {
    let mut m = registry().lock().unwrap_or_else(|e| e.into_inner());
    m.entry(name.to_string()).or_default().clone()
}

/// Every trunk's numbers, by name.
pub fn trunk_snapshots() -> Vec<TrunkSnapshot> {
    let m = registry().lock().unwrap_or_else(|e| e.into_inner());
    m.iter().map(|(k, v)| v.snapshot(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_kept_per_trunk_name_and_in_flight_follows_place_and_release() {
        let a = for_trunk("stats-test-a");
        let b = for_trunk("stats-test-b");
        a.placed();
        a.placed();
        a.answered();
        a.released();
        b.placed();
        b.failed_over();
        b.released();
        a.set_registered(Some(true));
        b.set_options_up(Some(false));
        let snap = trunk_snapshots();
        let get = |n: &str| snap.iter().find(|s| s.trunk == n).cloned().expect(n);
        let (sa, sb) = (get("stats-test-a"), get("stats-test-b"));
        assert_eq!((sa.placed, sa.answered, sa.in_flight), (2, 1, 1));
        assert_eq!((sb.placed, sb.failed_over, sb.in_flight), (1, 1, 0));
        assert_eq!((sa.registered, sa.options_up), (Some(true), None));
        assert_eq!((sb.registered, sb.options_up), (None, Some(false)));
        assert!(
            Arc::ptr_eq(&a, &for_trunk("stats-test-a")),
            "one set per name"
        );
    }
}
