//! The conversation's timers in one fixed table, after quinn-proto's
//! `TimerTable`: one slot per kind of timer, set and stopped as the state
//! changes, the next deadline found by a scan of a small array (no list
//! built per `poll_timeout`). Owns only deadlines; what a timer means is the
//! machine's business.

use super::Millis;

/// Every timer a conversation can run. The order breaks ties: when two are
/// due at the same moment, the earlier in this list fires first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The whole call has run its maximum length.
    CallLimit,
    /// The caller has talked over a prompt long enough to cut it.
    BargeIn,
    /// One utterance has gone on longer than any reply.
    Utterance,
    /// The pause before the opening is over.
    SpeakDelay,
    /// Answering-machine detection comes to a verdict.
    Amd,
    /// Time to leave the voicemail message.
    BeepWait,
    /// A prompt should have finished playing by now.
    Playback,
    /// Nothing was said after a question.
    NoInput,
    /// A live transfer gave no result.
    Transfer,
}

const COUNT: usize = 9;

impl Timer {
    const ALL: [Timer; COUNT] = [
        Timer::CallLimit,
        Timer::BargeIn,
        Timer::Utterance,
        Timer::SpeakDelay,
        Timer::Amd,
        Timer::BeepWait,
        Timer::Playback,
        Timer::NoInput,
        Timer::Transfer,
    ];
}

/// One optional deadline per `Timer`.
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    at: [Option<Millis>; COUNT],
}

impl TimerTable {
    /// Runs `timer` until `at` (replacing any earlier setting).
    pub fn set(&mut self, timer: Timer, at: Millis) {
        self.at[timer as usize] = Some(at);
    }

    /// Stops `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }

    /// When `timer` fires, if it runs.
    pub fn get(&self, timer: Timer) -> Option<Millis> {
        self.at[timer as usize]
    }

    /// Is `timer` running?
    pub fn is_set(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// Stops every timer.
    pub fn clear(&mut self) {
        self.at = [None; COUNT];
    }

    /// The earliest deadline, if any timer runs.
    pub fn next_timeout(&self) -> Option<Millis> {
        self.at.iter().flatten().copied().min()
    }

    /// The first timer due at or before `now` (earliest deadline, ties in
    /// `Timer` order), stopped and returned with its deadline.
    pub fn pop_expired(&mut self, now: Millis) -> Option<(Timer, Millis)> {
        let mut best: Option<(Timer, Millis)> = None;
        for t in Timer::ALL {
            if let Some(at) = self.at[t as usize] {
                if at <= now && best.is_none_or(|(_, b)| at < b) {
                    best = Some((t, at));
                }
            }
        }
        if let Some((t, _)) = best {
            self.stop(t);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_due_timer_fires_first_and_ties_go_by_kind() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::NoInput, 500);
        t.set(Timer::BargeIn, 500);
        t.set(Timer::Amd, 300);
        assert_eq!(t.next_timeout(), Some(300));
        assert_eq!(t.pop_expired(200), None);
        assert_eq!(t.pop_expired(600), Some((Timer::Amd, 300)));
        assert_eq!(t.pop_expired(600), Some((Timer::BargeIn, 500)));
        assert_eq!(t.pop_expired(600), Some((Timer::NoInput, 500)));
        assert_eq!(t.pop_expired(600), None);
        t.set(Timer::Transfer, 9);
        t.stop(Timer::Transfer);
        assert!(!t.is_set(Timer::Transfer));
    }
}
