//! The gateway's trunks at run time: each `[[trunk]]`'s calls in flight and
//! whether it failed lately, the order a new call tries them in (the pure
//! chooser in `telephony::trunk` decides), and a guard per call that holds
//! its trunk's slot until the call ends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::TrunkConfig;
use crate::telephony::trunk::{self, TrunkState};

/// How long a trunk that failed a call (503, 408, silence, a transport
/// error) is tried after the others.
pub const DOWN_FOR: Duration = Duration::from_secs(60);

struct Slot {
    in_flight: usize,
    down_until: Option<Instant>,
}

/// The trunks of one gateway.
pub(super) struct Trunks {
    /// The configured trunks, in config order.
    pub(super) cfg: Vec<TrunkConfig>,
    /// The one tried first (whose pings `trunk_up` reports).
    pub(super) primary: Option<usize>,
    slots: Mutex<Vec<Slot>>,
    /// Each trunk's counters for `/metrics` (by name, process-wide).
    pub(super) stats: Vec<Arc<super::stats::TrunkStats>>,
}

/// A call's hold on one trunk: counts against its `max_concurrent` until dropped.
pub(super) struct TrunkGuard {
    trunks: Arc<Trunks>,
    /// Index into the trunks.
    pub(super) idx: usize,
}

impl Drop for TrunkGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.trunks.slots.lock() {
            if let Some(slot) = s.get_mut(self.idx) {
                slot.in_flight = slot.in_flight.saturating_sub(1);
            }
        }
        if let Some(st) = self.trunks.stats.get(self.idx) {
            st.released();
        }
    }
}

impl Trunks {
    /// The trunks of `cfg` (none: calls route by the Request-URI).
    pub(super) fn new(cfg: Vec<TrunkConfig>, primary: Option<&str>) -> Arc<Trunks> {
        let primary = primary.and_then(|p| cfg.iter().position(|t| t.name == p));
        let slots = cfg
            .iter()
            .map(|_| Slot {
                in_flight: 0,
                down_until: None,
            })
            .collect();
        let stats = cfg
            .iter()
            .map(|t| super::stats::for_trunk(&t.name))
            .collect();
        Arc::new(Trunks {
            cfg,
            primary,
            slots: Mutex::new(slots),
            stats,
        })
    }

    fn states(&self, now: Instant, pings_down: &[bool]) -> Vec<TrunkState> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        self.cfg
            .iter()
            .zip(slots.iter())
            .enumerate()
            .map(|(i, (c, s))| TrunkState {
                priority: c.priority,
                weight: c.weight,
                max_concurrent: c.max_concurrent,
                in_flight: s.in_flight,
                down: s.down_until.is_some_and(|t| t > now)
                    || pings_down.get(i).copied().unwrap_or(false),
            })
            .collect()
    }

    /// The order a new call tries the trunks in (empty: every one is
    /// full); `pings_down[i]`: trunk `i`'s OPTIONS pings say it is gone.
    pub(super) fn order(&self, pings_down: &[bool]) -> Vec<usize> {
        let states = self.states(Instant::now(), pings_down);
        trunk::order(&states, |n| rand::random::<u64>() % n.max(1))
    }

    /// Whether every trunk is at its cap.
    pub(super) fn all_full(&self) -> bool {
        trunk::all_full(&self.states(Instant::now(), &[]))
    }

    /// A slot on trunk `idx` for one call; None when it is full.
    pub(super) fn acquire(self: &Arc<Self>, idx: usize) -> Option<TrunkGuard> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let cap = self.cfg.get(idx)?.max_concurrent;
        let slot = slots.get_mut(idx)?;
        if cap.is_some_and(|m| slot.in_flight >= m) {
            return None;
        }
        slot.in_flight += 1;
        if let Some(st) = self.stats.get(idx) {
            st.placed();
        }
        Some(TrunkGuard {
            trunks: self.clone(),
            idx,
        })
    }

    /// Trunk `idx` failed a call: tried after the others for [`DOWN_FOR`].
    pub(super) fn mark_down(&self, idx: usize) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slots.get_mut(idx) {
            s.down_until = Some(Instant::now() + DOWN_FOR);
        }
        if let Some(t) = self.cfg.get(idx) {
            tracing::warn!(trunk = %t.name, "trunk failed a call: tried last for {}s", DOWN_FOR.as_secs());
        }
    }

    /// Trunk `idx` carried a call: it is up again.
    pub(super) fn mark_up(&self, idx: usize) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slots.get_mut(idx) {
            s.down_until = None;
        }
    }

    /// Calls in flight through trunk `idx`.
    #[cfg(test)]
    pub(super) fn in_flight(&self, idx: usize) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.get(idx).map_or(0, |s| s.in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_holds_a_slot_until_dropped_and_the_cap_refuses_more() {
        let mut a = TrunkConfig::new("a", Some("127.0.0.1:5060".into()));
        a.max_concurrent = Some(1);
        let mut b = TrunkConfig::new("b", Some("127.0.0.1:5062".into()));
        b.priority = 1;
        let t = Trunks::new(vec![a, b], Some("a"));
        let g = t.acquire(0).expect("a free slot");
        assert!(t.acquire(0).is_none(), "a is at its cap");
        assert_eq!(t.order(&[]), vec![1], "a full trunk is skipped");
        assert!(!t.all_full());
        drop(g);
        assert_eq!(t.in_flight(0), 0);
        assert_eq!(t.order(&[]), vec![0, 1], "by priority");
        t.mark_down(0);
        assert_eq!(t.order(&[]), vec![1, 0], "a failed trunk goes last");
        t.mark_up(0);
        assert_eq!(t.order(&[true, false]), vec![1, 0], "pings down on a");
        assert_eq!(t.order(&[false, true]), vec![0, 1], "pings down on b");
    }
}
