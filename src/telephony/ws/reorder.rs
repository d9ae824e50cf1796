//! Puts a stream's messages back in `sequenceNumber` order. Over one TCP
//! socket messages normally arrive in order, but platforms do not promise it
//! (Telnyx says so outright); a media frame that overtook another would
//! garble what the recognizer hears and the recording.
//!
//! Owns the order only: messages are released in sequence; a gap is waited
//! for until `window` later messages are held or `max_hold_ticks` ticks have
//! passed, then given up (counted). A message older than the release point
//! is handed back marked late (the caller drops late audio but keeps late
//! control events). Never reads a clock (the driver calls [`Resequencer::tick`]
//! every 20 ms) and never holds more than `window` messages.

use std::collections::BTreeMap;

/// Counters of the reordering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// Messages that arrived ahead of an earlier one and were held.
    pub reordered: u64,
    /// Sequence numbers never seen when the wait for them was given up.
    pub skipped: u64,
    /// Messages that arrived after their place was released.
    pub late: u64,
    /// Second copies of a message already released (dropped).
    pub duplicates: u64,
}

/// A message the resequencer lets go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released<T> {
    /// In order.
    InOrder(T),
    /// Older than what was already released (not a duplicate).
    Late(T),
}

/// Reorders messages by a `u64` sequence number.
#[derive(Debug)]
pub struct Resequencer<T> {
    next: Option<u64>,
    held: BTreeMap<u64, T>,
    window: usize,
    max_hold_ticks: u32,
    held_ticks: u32,
    /// Bit i set: sequence `next - 1 - i` was released.
    released: u128,
    stats: ReorderStats,
}

impl<T> Resequencer<T> {
    /// Holds at most `window` messages, for at most `max_hold_ticks` ticks.
    pub fn new(window: usize, max_hold_ticks: u32) -> Self {
        Resequencer {
            next: None,
            held: BTreeMap::new(),
            window: window.max(1),
            max_hold_ticks: max_hold_ticks.max(1),
            held_ticks: 0,
            released: 0,
            stats: ReorderStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Messages waiting for an earlier one.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn release(&mut self, seq: u64, item: T, out: &mut Vec<Released<T>>) {
        out.push(Released::InOrder(item));
        let advance = seq + 1 - self.next.unwrap_or(seq);
        self.released = if advance >= 128 {
            0
        } else {
            self.released << advance
        };
        self.released |= 1;
        self.next = Some(seq + 1);
    }

    fn drain(&mut self, out: &mut Vec<Released<T>>) {
        while let Some(next) = self.next {
            match self.held.remove(&next) {
                Some(item) => self.release(next, item, out),
                None => break,
            }
        }
        if self.held.is_empty() {
            self.held_ticks = 0;
        }
    }

    /// Gives up on the gap before the oldest held message.
    fn skip_gap(&mut self, out: &mut Vec<Released<T>>) {
        if let (Some(&first), Some(next)) = (self.held.keys().next(), self.next) {
            let gap = first.saturating_sub(next);
            self.stats.skipped += gap;
            self.released = if gap >= 128 { 0 } else { self.released << gap };
            self.next = Some(first);
            self.drain(out);
        }
    }

    /// Takes one message; messages without a number pass straight through.
    pub fn push(&mut self, seq: Option<u64>, item: T, out: &mut Vec<Released<T>>) {
        let Some(seq) = seq else {
            out.push(Released::InOrder(item));
            return;
        };
        let next = *self.next.get_or_insert(seq);
        if seq == next {
            self.release(seq, item, out);
            self.drain(out);
        } else if seq > next {
            if self.held.contains_key(&seq) {
                self.stats.duplicates += 1;
                return;
            }
            self.stats.reordered += 1;
            self.held.insert(seq, item);
            while self.held.len() > self.window {
                self.skip_gap(out);
            }
        } else {
            let age = next - 1 - seq;
            if age < 128 && (self.released >> age) & 1 == 1 {
                self.stats.duplicates += 1;
            } else {
                self.stats.late += 1;
                out.push(Released::Late(item));
            }
        }
    }

    /// One 20 ms tick: a gap waited on too long is given up.
    pub fn tick(&mut self, out: &mut Vec<Released<T>>) {
        if self.held.is_empty() {
            self.held_ticks = 0;
            return;
        }
        self.held_ticks += 1;
        if self.held_ticks >= self.max_hold_ticks {
            self.skip_gap(out);
        }
    }

    /// Releases everything held, in order (the stream ended).
    pub fn flush(&mut self, out: &mut Vec<Released<T>>) {
        while !self.held.is_empty() {
            self.skip_gap(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn order(r: &mut Resequencer<u64>, seqs: &[u64]) -> Vec<Released<u64>> {
        let mut out = Vec::new();
        for &s in seqs {
            r.push(Some(s), s, &mut out);
        }
        out
    }

    #[test]
    fn a_swapped_pair_comes_out_in_order() {
        let mut r = Resequencer::new(8, 10);
        let out = order(&mut r, &[1, 2, 4, 3, 5]);
        let got: Vec<u64> = out
            .iter()
            .map(|x| match x {
                Released::InOrder(v) | Released::Late(v) => *v,
            })
            .collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        assert_eq!(r.stats().reordered, 1);
    }

    #[test]
    fn a_lost_message_is_given_up_after_the_window_or_the_hold_time() {
        let mut r = Resequencer::new(3, 100);
        let out = order(&mut r, &[1, 3, 4, 5, 6]);
        assert_eq!(
            out.len(),
            5,
            "3..6 released once the window overflowed: {out:?}"
        );
        assert_eq!(r.stats().skipped, 1);
        let mut r = Resequencer::new(50, 5);
        let mut out = order(&mut r, &[1, 3]);
        assert_eq!(out.len(), 1);
        for _ in 0..5 {
            r.tick(&mut out);
        }
        assert_eq!(out.last(), Some(&Released::InOrder(3)));
    }

    #[test]
    fn late_and_duplicate_messages_are_told_apart() {
        let mut r = Resequencer::new(2, 100);
        let out = order(&mut r, &[1, 3, 4, 5, 2, 4]);
        assert!(out.contains(&Released::Late(2)), "{out:?}");
        assert_eq!(r.stats().duplicates, 1);
    }

    proptest! {
        #[test]
        fn every_message_comes_out_once_and_in_order_ones_ascend(
            perm in Just((1u64..=60).collect::<Vec<_>>()).prop_shuffle(),
            window in 1usize..20,
        ) {
            let mut r = Resequencer::new(window, 1000);
            let mut out = order(&mut r, &perm);
            r.flush(&mut out);
            let mut seen: Vec<u64> = out.iter().map(|x| match x { Released::InOrder(v) | Released::Late(v) => *v }).collect();
            let in_order: Vec<u64> = out.iter().filter_map(|x| match x { Released::InOrder(v) => Some(*v), _ => None }).collect();
            prop_assert!(in_order.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(r.held() == 0);
            seen.sort();
            prop_assert_eq!(seen, (1u64..=60).collect::<Vec<_>>());
        }
    }
}
