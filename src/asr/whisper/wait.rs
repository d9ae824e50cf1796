//! How long a call may wait for Whisper's final decode: whether a new
//! decode is admitted at all given the pool's queue (else the grammar
//! engine's result stands), and how much of the deadline after the end of
//! the utterance is left.
//!
//! Owns: [`WhisperUse`] (what became of Whisper in one utterance, as QA and
//! the benchmarks see it), the admission rule ([`admits`]) and the deadline
//! arithmetic ([`time_left`]). Pure: the pool's state and the times are
//! passed in; no clock, no queue.

use std::time::Duration;

use serde::Serialize;

/// The default deadline for Whisper after the end of the utterance (ms):
/// `[asr.whisper] deadline_ms`. A tiny.en decode of a 1-3 s reply takes
/// ~250-450 ms on one core, so one decode per worker fits; with more
/// replies in the queue than the workers can finish in time, the turn
/// answers with the grammar engine (measured in the README's "Speech
/// models").
pub const DEFAULT_DEADLINE_MS: u64 = 700;
/// The least and the most `[asr.whisper] deadline_ms` may be (ms).
pub const DEADLINE_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=5000;

/// What became of Whisper in one utterance of a turn that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhisperUse {
    /// Its result came in time and the turn's rule saw it.
    Used,
    /// Not asked: the pool's queue held more work than the workers could
    /// finish before the deadline; the grammar engine's result stands.
    Busy,
    /// Asked, but the result did not come before the deadline; the grammar
    /// engine's result stands.
    Late,
}

impl WhisperUse {
    /// The name in the outcome JSON ("busy").
    pub fn as_str(self) -> &'static str {
        match self {
            WhisperUse::Used => "used",
            WhisperUse::Busy => "busy",
            WhisperUse::Late => "late",
        }
    }
}

/// When a new final decode would be done (ms from now), with `ahead`
/// decodes running or queued before it on `workers` workers that take
/// `decode_ms` each. A decode ahead counts whole (it may be nearly done:
/// the estimate errs long, so the turn falls back rather than waits).
pub fn expected_done_ms(ahead: usize, workers: usize, decode_ms: u64) -> u64 {
    let rounds = ahead / workers.max(1) + 1;
    rounds as u64 * decode_ms
}

/// Whether a new final decode is worth asking for: a worker is free (the
/// deadline still bounds the wait, and the decode keeps the estimate of a
/// decode's time current on a machine that got faster again), or it is
/// expected done within `budget_ms` ([`expected_done_ms`]; an unknown
/// decode time, `decode_ms` 0, never is).
pub fn admits(ahead: usize, workers: usize, decode_ms: u64, budget_ms: u64) -> bool {
    ahead < workers.max(1)
        || (decode_ms > 0 && expected_done_ms(ahead, workers, decode_ms) <= budget_ms)
}

/// What is left of a `deadline_ms` deadline `elapsed` after it started
/// (zero once it has passed).
pub fn time_left(deadline_ms: u64, elapsed: Duration) -> Duration {
    Duration::from_millis(deadline_ms).saturating_sub(elapsed)
}

/// The running estimate of one decode's time (ms): an exponential average
/// weighting the newest decode by a quarter; the first decode sets it.
pub fn next_estimate(previous_ms: u64, decode_ms: u64) -> u64 {
    if previous_ms == 0 {
        decode_ms
    } else {
        (previous_ms * 3 + decode_ms).div_ceil(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_worker_admits_and_a_full_queue_falls_back() {
        // Two workers, 400 ms a decode, 700 ms budget.
        assert!(admits(0, 2, 400, 700));
        assert!(admits(1, 2, 400, 700));
        // Both busy: the new decode would end at ~800 ms.
        assert!(!admits(2, 2, 400, 700));
        assert!(!admits(7, 2, 400, 700));
        // Fast decodes: a second round still fits.
        assert!(admits(3, 2, 300, 700));
        assert!(!admits(4, 2, 300, 700));
    }

    #[test]
    fn an_unknown_decode_time_admits_only_onto_a_free_worker() {
        assert!(admits(1, 2, 0, 700));
        assert!(!admits(2, 2, 0, 700));
        // No workers reported: treated as one.
        assert!(admits(0, 0, 0, 700));
        assert!(!admits(1, 0, 0, 700));
    }

    #[test]
    fn a_free_worker_admits_even_a_slow_decode_and_a_busy_pool_never_does() {
        // The deadline bounds the wait; the estimate keeps learning.
        assert!(admits(0, 2, 900, 700));
        assert!(admits(1, 2, 900, 700));
        assert!(!admits(2, 2, 900, 700));
        assert!(!admits(2, 2, 100, 0));
        assert_eq!(expected_done_ms(0, 2, 900), 900);
        assert_eq!(expected_done_ms(5, 2, 100), 300);
    }

    #[test]
    fn the_deadline_counts_down_and_stops_at_zero() {
        assert_eq!(
            time_left(700, Duration::from_millis(250)),
            Duration::from_millis(450)
        );
        assert_eq!(time_left(700, Duration::from_millis(900)), Duration::ZERO);
    }

    #[test]
    fn the_decode_estimate_follows_the_newest_decodes() {
        assert_eq!(next_estimate(0, 380), 380);
        assert_eq!(next_estimate(400, 800), 500);
        assert_eq!(next_estimate(400, 400), 400);
        let mut e = 0;
        for _ in 0..20 {
            e = next_estimate(e, 200);
        }
        assert_eq!(e, 200);
    }

    #[test]
    fn the_outcome_names_are_what_qa_reads() {
        for (u, n) in [
            (WhisperUse::Used, "used"),
            (WhisperUse::Busy, "busy"),
            (WhisperUse::Late, "late"),
        ] {
            assert_eq!(u.as_str(), n);
            assert_eq!(serde_json::to_string(&u).unwrap(), format!("\"{n}\""));
        }
    }
}
