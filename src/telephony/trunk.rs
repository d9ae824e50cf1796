//! The trunk chooser: which of several trunks a call tries, in what order.
//! Pure: the trunks' settings, their calls in flight and whether each is
//! down come in, an order comes out; the caller supplies the randomness (a
//! roll) and owns the clocks and sockets.
//!
//! The order: trunks at their `max_concurrent` are left out; trunks that
//! are up come before trunks that are down (a failed INVITE or failed
//! OPTIONS pings mark a trunk down for a while: it is tried last, not never);
//! within those, lower `priority` first; within a priority, a weighted
//! draw without replacement (a trunk of weight 3 comes first three times
//! as often as one of weight 1).

/// One trunk as the chooser sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunkState {
    /// Lower is tried first.
    pub priority: u32,
    /// Share within its priority (0 is treated as 1).
    pub weight: u32,
    /// Calls in flight at most (None: no cap).
    pub max_concurrent: Option<usize>,
    /// Calls in flight through it now.
    pub in_flight: usize,
    /// Recently failed (a timeout, a 503, a transport error, OPTIONS pings
    /// unanswered): tried after every trunk that is up.
    pub down: bool,
}

impl TrunkState {
    /// Whether it is at its cap (no new call may use it).
    pub fn full(&self) -> bool {
        self.max_concurrent.is_some_and(|m| self.in_flight >= m)
    }
}

/// The order in which a call tries `trunks` (indices into it); empty when
/// every trunk is full (the dial waits). `roll(n)` returns a number in
/// `0..n` (the caller's random source; tests pass a fixed one).
pub fn order(trunks: &[TrunkState], mut roll: impl FnMut(u64) -> u64) -> Vec<usize> {
    let mut open: Vec<usize> = (0..trunks.len()).filter(|&i| !trunks[i].full()).collect();
    // Up before down, then by priority; the sort is stable, so equal
    // trunks keep the configured order until the draw below.
    open.sort_by_key(|&i| (trunks[i].down, trunks[i].priority));
    let mut out = Vec::with_capacity(open.len());
    let mut rest = &open[..];
    while let Some(&first) = rest.first() {
        let key = (trunks[first].down, trunks[first].priority);
        let n = rest
            .iter()
            .take_while(|&&i| (trunks[i].down, trunks[i].priority) == key)
            .count();
        let mut group: Vec<usize> = rest[..n].to_vec();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|&i| weight(&trunks[i])).sum();
            let mut r = roll(total).min(total.saturating_sub(1));
            let mut pick = 0;
            for (k, &i) in group.iter().enumerate() {
                let w = weight(&trunks[i]);
                if r < w {
                    pick = k;
                    break;
                }
                r -= w;
            }
            out.push(group.remove(pick));
        }
        rest = &rest[n..];
    }
    out
}

fn weight(t: &TrunkState) -> u64 {
    u64::from(t.weight.max(1))
}

/// Whether every trunk is at its cap (a campaign waits before dialling).
/// False without trunks: calls then route by the Request-URI.
pub fn all_full(trunks: &[TrunkState]) -> bool {
    !trunks.is_empty() && trunks.iter().all(TrunkState::full)
}

/// Why an INVITE's failure marks its trunk down: the trunk did not take
/// the call (503, 408, no answer at all, a transport error), as opposed to
/// the callee's answer (486 busy, 404, ...), which says nothing about the trunk.
pub fn trunk_failed(status: Option<u16>) -> bool {
    matches!(status, None | Some(503) | Some(408))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(priority: u32, weight: u32) -> TrunkState {
        TrunkState {
            priority,
            weight,
            max_concurrent: None,
            in_flight: 0,
            down: false,
        }
    }

    #[test]
    fn lower_priority_comes_first_whatever_the_weights() {
        let trunks = [t(2, 100), t(0, 1), t(1, 50)];
        for r in 0..200 {
            assert_eq!(order(&trunks, |n| r % n), vec![1, 2, 0]);
        }
    }

    #[test]
    fn weights_share_the_first_place_within_a_priority() {
        let trunks = [t(0, 3), t(0, 1)];
        // Every roll 0..4 once: weight 3 comes first for three of them.
        let firsts: Vec<usize> = (0..4u64).map(|r| order(&trunks, |_| r)[0]).collect();
        assert_eq!(firsts.iter().filter(|&&i| i == 0).count(), 3);
        assert_eq!(firsts.iter().filter(|&&i| i == 1).count(), 1);
        // The other is still tried after it.
        assert_eq!(order(&trunks, |_| 3), vec![1, 0]);
        assert_eq!(order(&trunks, |_| 0), vec![0, 1]);
    }

    #[test]
    fn a_full_trunk_is_skipped_and_all_full_means_wait() {
        let mut a = t(0, 1);
        a.max_concurrent = Some(1);
        a.in_flight = 1;
        let b = t(1, 1);
        assert_eq!(order(&[a, b], |_| 0), vec![1]);
        assert!(!all_full(&[a, b]));
        let mut b_full = b;
        b_full.max_concurrent = Some(2);
        b_full.in_flight = 2;
        assert!(order(&[a, b_full], |_| 0).is_empty());
        assert!(all_full(&[a, b_full]));
        assert!(!all_full(&[]), "no trunks: route by the Request-URI");
        a.in_flight = 0;
        assert_eq!(order(&[a, b_full], |_| 0), vec![0]);
    }

    #[test]
    fn a_down_trunk_is_tried_last_not_never() {
        let mut a = t(0, 1);
        a.down = true;
        let b = t(5, 1);
        assert_eq!(order(&[a, b], |_| 0), vec![1, 0]);
        let mut b_down = b;
        b_down.down = true;
        assert_eq!(
            order(&[a, b_down], |_| 0),
            vec![0, 1],
            "both down: priority"
        );
    }

    #[test]
    fn a_roll_out_of_range_still_picks_a_trunk() {
        let trunks = [t(0, 1), t(0, 1)];
        assert_eq!(order(&trunks, |n| n + 10).len(), 2);
        let zero = [t(0, 0), t(0, 0)];
        assert_eq!(order(&zero, |n| n - 1), vec![1, 0], "weight 0 counts as 1");
    }

    #[test]
    fn only_the_trunks_own_failures_mark_it_down() {
        assert!(trunk_failed(None) && trunk_failed(Some(503)) && trunk_failed(Some(408)));
        assert!(!trunk_failed(Some(486)) && !trunk_failed(Some(404)) && !trunk_failed(Some(480)));
    }
}
