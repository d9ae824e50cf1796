//! Admission when the machine is full (issue 23): a dialer that cannot hear
//! another conversation well does not start it. Beyond the recogniser's
//! capacity a new conversation waits (or is refused) instead of being
//! misheard, and so are the ones already in progress.
//!
//! The rule is pure (the caller passes the time and the recognisers' load;
//! no clock, no I/O): a limit on conversations in progress. It starts low
//! ([`AdmissionRule::initial`]) and, while the recognisers keep up and the
//! limit is what holds calls back, grows by half every
//! [`AdmissionRule::slow_start_every`] (slow start) until the first
//! congestion;
//! from then on it is cut on congestion and raised one at a time while calm
//! (additive increase, multiplicative decrease). Two signals count as
//! congestion ([`Load`]): the PocketSphinx pool's backlog (an utterance
//! waiting for a decoder at least [`AdmissionRule::congested_wait`], now or
//! within the pool's recent window), and the Whisper pool's queue (a final
//! queued at least [`AdmissionRule::whisper_congested_wait`], a final given
//! up late, or a queue a new final could not get through before the
//! deadline: the hybrid turn would fall back as Busy). A conversation
//! admitted now first speaks to the recogniser seconds later, so the signal
//! lags: after a cut the limit is not cut again for
//! [`AdmissionRule::cooldown`], while the backlog of what was already
//! admitted drains; slow start keeps what is admitted before the first
//! signal small.
//! Owns: the limit. Never: reads the clock, asks a pool, places or holds a
//! call.

use std::time::Duration;

use serde::Serialize;

pub use crate::asr::sphinx::Backlog;
pub use crate::asr::whisper::pool::WhisperBacklog;

/// A moment the rule can measure time between: `std::time::Instant` (the
/// load bench) or the campaign clock's `DateTime<Utc>` (the scheduler).
pub trait Moment: Copy {
    /// How long after `earlier` this is (zero if it is not after).
    fn since(self, earlier: Self) -> Duration;
}

impl Moment for std::time::Instant {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Moment for chrono::DateTime<chrono::Utc> {
    fn since(self, earlier: Self) -> Duration {
        (self - earlier).to_std().unwrap_or(Duration::ZERO)
    }
}

/// What the recognisers' pools say at one moment: the rule's input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// The PocketSphinx decoder pools (`asr::sphinx::backlog()`).
    pub sphinx: Backlog,
    /// The Whisper pools (`asr::whisper::pool::backlog()`); `None` when no
    /// turn uses Whisper.
    pub whisper: Option<WhisperBacklog>,
}

impl Load {
    /// Only the PocketSphinx backlog (no Whisper pool).
    pub fn sphinx(backlog: Backlog) -> Load {
        Load {
            sphinx: backlog,
            whisper: None,
        }
    }
}

/// The admission rule's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionRule {
    /// A wait for a decoder this long means the recogniser is behind
    /// (replies then come late; at 100 conversations waits up to 3.7 s
    /// still kept every route right, at 200 waits of 30 s did not).
    pub congested_wait: Duration,
    /// A final Whisper decode queued this long means the Whisper pool is
    /// behind: with a decode of 250-450 ms it misses the 700 ms deadline,
    /// and the hybrid turn falls back (`Late`).
    pub whisper_congested_wait: Duration,
    /// The Whisper deadline a new final must fit in (ms; the
    /// `[asr.whisper] deadline_ms` default): a queue that cannot get a new
    /// final through in time is congestion (the turn would be `Busy`).
    pub whisper_budget_ms: u64,
    /// After a cut, no new cut for this long.
    pub cooldown: Duration,
    /// Without congestion for this long (and the limit in the way), the
    /// limit rises by one (after slow start).
    pub raise_after: Duration,
    /// In slow start, without congestion for this long (and the limit in
    /// the way), the limit rises by [`AdmissionRule::slow_start_percent`].
    /// As long as the signal's lag: a conversation is greeted for several
    /// seconds before its first reply reaches a decoder (with 3 s the bench
    /// at 200 grew the limit to 135 before the first wait showed).
    pub slow_start_every: Duration,
    /// In slow start a raise adds this percentage of the limit (at least
    /// one).
    pub slow_start_percent: usize,
    /// A cut sets the limit to this percentage of the conversations in
    /// progress.
    pub cut_to_percent: usize,
    /// The limit at the start (slow start grows it from here).
    pub initial: usize,
    /// The limit never falls below this.
    pub min_limit: usize,
}

impl Default for AdmissionRule {
    fn default() -> Self {
        AdmissionRule {
            congested_wait: Duration::from_millis(500),
            whisper_congested_wait: Duration::from_millis(300),
            whisper_budget_ms: crate::asr::whisper::wait::DEFAULT_DEADLINE_MS,
            cooldown: Duration::from_secs(10),
            raise_after: Duration::from_secs(3),
            slow_start_every: Duration::from_secs(10),
            slow_start_percent: 50,
            cut_to_percent: 85,
            // Four per core on this 2-core machine: the grammar pool opens
            // four decoders per core, and conversations speak a fraction
            // of the time, so 8 never queues; slow start finds the rest
            // (8 -> 12 -> 18 -> 27 -> 40 -> 60 -> 90 in 60 s).
            initial: 8,
            min_limit: 1,
        }
    }
}

impl AdmissionRule {
    /// Whether `load` says the recognisers are behind.
    pub fn congested(&self, load: &Load) -> bool {
        let s = &load.sphinx;
        if s.oldest_wait >= self.congested_wait || s.recent_wait >= self.congested_wait {
            return true;
        }
        load.whisper.is_some_and(|w| {
            w.oldest_final_wait >= self.whisper_congested_wait
                || w.recent_final_wait >= self.whisper_congested_wait
                || w.recent_late > 0
                || !crate::asr::whisper::wait::admits(
                    w.ahead,
                    w.workers,
                    w.decode_ms,
                    self.whisper_budget_ms,
                )
        })
    }
}

/// What admission control did, for progress lines and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct AdmissionSummary {
    /// Conversations allowed in progress now.
    pub limit: usize,
    /// The lowest limit a cut set (the maximum before any cut).
    pub lowest: usize,
    /// The highest limit so far.
    pub highest: usize,
    /// Times the limit was cut.
    pub cuts: u64,
    /// Still in slow start (no congestion seen yet).
    pub slow_start: bool,
    /// Observations that said the recognisers were behind.
    pub congested: u64,
}

/// The admission state: the current limit on conversations in progress,
/// on the caller's time `T`.
#[derive(Debug, Clone)]
pub struct Admission<T = std::time::Instant> {
    rule: AdmissionRule,
    max: usize,
    limit: usize,
    lowest: usize,
    highest: usize,
    cuts: u64,
    congested: u64,
    slow_start: bool,
    last_cut: Option<T>,
    calm_since: Option<T>,
}

impl<T: Moment> Admission<T> {
    /// Starts with the limit at the rule's `initial` (at most `max`, the
    /// campaign's `max_concurrent`), in slow start.
    pub fn new(rule: AdmissionRule, max: usize) -> Admission<T> {
        let max = max.max(rule.min_limit).max(1);
        let limit = rule.initial.clamp(rule.min_limit.max(1), max);
        Admission {
            rule,
            max,
            limit,
            lowest: max,
            highest: limit,
            cuts: 0,
            congested: 0,
            slow_start: true,
            last_cut: None,
            calm_since: None,
        }
    }

    /// Observes the load at `now` with `in_progress` conversations and
    /// says whether one more may start now.
    pub fn admit(&mut self, now: T, in_progress: usize, load: Load) -> bool {
        self.observe(now, in_progress, load);
        in_progress < self.limit
    }

    /// Updates the limit from the load at `now`.
    pub fn observe(&mut self, now: T, in_progress: usize, load: Load) {
        let r = &self.rule;
        if r.congested(&load) {
            self.congested += 1;
            self.calm_since = None;
            // The first congestion ends slow start, cut or not.
            self.slow_start = false;
            let cooled = self.last_cut.is_none_or(|t| now.since(t) >= r.cooldown);
            if cooled {
                let cut = in_progress * r.cut_to_percent / 100;
                self.limit = cut.min(self.limit).max(r.min_limit);
                self.lowest = self.lowest.min(self.limit);
                self.last_cut = Some(now);
                self.cuts += 1;
            }
            return;
        }
        // Calm counts only while the limit is what holds calls back: a
        // limit far above the load says nothing about capacity.
        if in_progress + 1 < self.limit {
            self.calm_since = None;
            return;
        }
        let calm = *self.calm_since.get_or_insert(now);
        let every = if self.slow_start {
            r.slow_start_every
        } else {
            r.raise_after
        };
        if now.since(calm) >= every && self.limit < self.max {
            let step = if self.slow_start {
                (self.limit * r.slow_start_percent / 100).max(1)
            } else {
                1
            };
            self.limit = (self.limit + step).min(self.max);
            self.highest = self.highest.max(self.limit);
            self.calm_since = Some(now);
        }
    }

    /// Conversations allowed in progress now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The lowest limit a cut set (the maximum before any cut).
    pub fn lowest(&self) -> usize {
        self.lowest
    }

    /// Times the limit was cut.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }

    /// Whether the limit still grows by half (no congestion seen yet).
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// What it did so far.
    pub fn summary(&self) -> AdmissionSummary {
        AdmissionSummary {
            limit: self.limit,
            lowest: self.lowest,
            highest: self.highest,
            cuts: self.cuts,
            slow_start: self.slow_start,
            congested: self.congested,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn behind(ms: u64) -> Load {
        Load::sphinx(Backlog {
            waiting: 1,
            oldest_wait: Duration::from_millis(ms),
            recent_wait: Duration::ZERO,
        })
    }

    const CALM: Load = Load {
        sphinx: Backlog {
            waiting: 0,
            oldest_wait: Duration::ZERO,
            recent_wait: Duration::ZERO,
        },
        whisper: None,
    };

    /// The rule without slow start: the limit starts at the maximum.
    fn aimd() -> AdmissionRule {
        AdmissionRule {
            initial: usize::MAX,
            ..AdmissionRule::default()
        }
    }

    #[test]
    fn a_recogniser_that_keeps_up_admits_up_to_the_maximum() {
        let t0 = Instant::now();
        let mut a: Admission = Admission::new(aimd(), 100);
        assert!(a.admit(t0, 0, CALM));
        assert!(a.admit(t0, 99, CALM));
        assert!(!a.admit(t0, 100, CALM), "max_concurrent still holds");
        // Short waits (a decoder busy for a moment) are not congestion.
        assert!(a.admit(t0, 50, behind(200)));
        assert_eq!(a.limit(), 100);
    }

    #[test]
    fn a_recogniser_behind_stops_new_conversations_below_what_is_in_progress() {
        let t0 = Instant::now();
        let mut a: Admission = Admission::new(aimd(), 200);
        assert!(!a.admit(t0, 120, behind(800)));
        assert_eq!(a.limit(), 102, "cut to 85 % of the 120 in progress");
        // As conversations end, none starts until fewer than the limit run.
        assert!(!a.admit(t0 + Duration::from_secs(1), 110, CALM));
        assert!(a.admit(t0 + Duration::from_secs(2), 101, CALM));
    }

    #[test]
    fn a_recent_long_wait_counts_as_much_as_one_going_on() {
        let t0 = Instant::now();
        let mut a: Admission = Admission::new(aimd(), 200);
        let b = Load::sphinx(Backlog {
            waiting: 0,
            oldest_wait: Duration::ZERO,
            recent_wait: Duration::from_secs(2),
        });
        assert!(!a.admit(t0, 100, b));
        assert_eq!(a.limit(), 85);
    }

    #[test]
    fn the_backlog_of_what_was_admitted_does_not_cut_twice_within_the_cooldown() {
        let t0 = Instant::now();
        let mut a: Admission = Admission::new(aimd(), 200);
        a.observe(t0, 100, behind(600));
        assert_eq!(a.limit(), 85);
        // Still behind 5 s later with 90 in progress: the same lag, not a
        // new overload.
        a.observe(t0 + Duration::from_secs(5), 90, behind(3000));
        assert_eq!(a.limit(), 85);
        // After the cooldown, still behind: cut again.
        a.observe(t0 + Duration::from_secs(11), 85, behind(3000));
        assert_eq!(a.limit(), 72);
        assert_eq!(a.cuts(), 2);
        assert_eq!(a.lowest(), 72);
    }

    #[test]
    fn the_limit_rises_one_at_a_time_while_the_recogniser_keeps_up_and_the_limit_binds() {
        let t0 = Instant::now();
        let mut a: Admission = Admission::new(aimd(), 100);
        a.observe(t0, 50, behind(1000));
        assert_eq!(a.limit(), 42);
        // Calm but far below the limit: no evidence of more capacity.
        a.observe(t0 + Duration::from_secs(1), 10, CALM);
        a.observe(t0 + Duration::from_secs(10), 10, CALM);
        assert_eq!(a.limit(), 42);
        // At the limit and calm for 3 s: one more, then 3 s again.
        a.observe(t0 + Duration::from_secs(11), 42, CALM);
        a.observe(t0 + Duration::from_secs(14), 42, CALM);
        assert_eq!(a.limit(), 43);
        a.observe(t0 + Duration::from_secs(15), 43, CALM);
        assert_eq!(a.limit(), 43);
        a.observe(t0 + Duration::from_secs(17), 43, CALM);
        assert_eq!(a.limit(), 44);
        // Congestion resets the calm.
        a.observe(t0 + Duration::from_secs(18), 44, behind(100));
        a.observe(t0 + Duration::from_secs(30), 44, behind(900));
        assert_eq!(a.limit(), 37);
    }

    #[test]
    fn the_limit_never_falls_below_its_floor_nor_rises_above_the_maximum() {
        let t0 = Instant::now();
        let rule = AdmissionRule {
            min_limit: 4,
            ..aimd()
        };
        let mut a: Admission = Admission::new(rule, 6);
        a.observe(t0, 2, behind(5000));
        assert_eq!(a.limit(), 4);
        for s in 1..100 {
            a.observe(t0 + Duration::from_secs(s * 4), a.limit(), CALM);
        }
        assert_eq!(a.limit(), 6);
        assert!(a.admit(t0 + Duration::from_secs(500), 5, CALM));
        assert!(!a.admit(t0 + Duration::from_secs(500), 6, CALM));
    }

    fn whisper(w: WhisperBacklog) -> Load {
        Load {
            sphinx: CALM.sphinx,
            whisper: Some(w),
        }
    }

    /// Two workers, 400 ms a decode, nothing queued.
    const IDLE_WHISPER: WhisperBacklog = WhisperBacklog {
        workers: 2,
        ahead: 0,
        decode_ms: 400,
        oldest_final_wait: Duration::ZERO,
        recent_final_wait: Duration::ZERO,
        recent_late: 0,
    };

    #[test]
    fn slow_start_begins_low_and_grows_by_half_while_the_limit_binds() {
        let t0 = Instant::now();
        let mut a: Admission = Admission::new(AdmissionRule::default(), 200);
        assert_eq!(a.limit(), 8);
        assert!(a.in_slow_start());
        assert!(!a.admit(t0, 8, CALM), "the limit holds from the start");
        let mut t = t0;
        t += Duration::from_secs(9);
        a.observe(t, 8, CALM);
        assert_eq!(a.limit(), 8, "not before the signal's lag");
        t = t0;
        for want in [12, 18, 27, 40, 60, 90, 135, 200, 200] {
            t += Duration::from_secs(10);
            a.observe(t, a.limit(), CALM);
            assert_eq!(a.limit(), want);
        }
        assert!(a.in_slow_start());
        // Calm far below the limit is no evidence: no growth.
        let mut b: Admission = Admission::new(AdmissionRule::default(), 200);
        for s in 0..20 {
            b.observe(t0 + Duration::from_secs(s * 10), 2, CALM);
        }
        assert_eq!(b.limit(), 8);
    }

    #[test]
    fn the_first_congestion_ends_slow_start_and_growth_is_one_at_a_time_after() {
        let t0 = Instant::now();
        let mut a: Admission = Admission::new(AdmissionRule::default(), 200);
        a.observe(t0, 8, CALM);
        let mut t = t0;
        for _ in 0..4 {
            t += Duration::from_secs(10);
            a.observe(t, a.limit(), CALM);
        }
        assert_eq!(a.limit(), 40);
        t += Duration::from_secs(1);
        a.observe(t, 40, behind(700));
        assert!(!a.in_slow_start());
        assert_eq!(a.limit(), 34, "cut to 85 % of the 40 in progress");
        assert_eq!(a.cuts(), 1);
        // Calm from the first calm observation on, then +1 every 3 s.
        for want in [34, 35, 36, 37] {
            t += Duration::from_secs(3);
            a.observe(t, a.limit(), CALM);
            assert_eq!(a.limit(), want);
        }
        assert!(!a.in_slow_start());
        let s = a.summary();
        assert_eq!((s.limit, s.lowest, s.highest, s.cuts), (37, 34, 40, 1));
    }

    #[test]
    fn congestion_during_the_cooldown_ends_slow_start_but_does_not_cut_again() {
        let t0 = Instant::now();
        let mut a: Admission = Admission::new(aimd(), 100);
        a.observe(t0, 100, behind(600));
        assert_eq!(a.limit(), 85);
        // A Whisper queue too long for the deadline is congestion too, but
        // within the cooldown it is the same lag.
        let busy = WhisperBacklog {
            ahead: 6,
            ..IDLE_WHISPER
        };
        a.observe(t0 + Duration::from_secs(9), 90, whisper(busy));
        assert_eq!(a.limit(), 85);
        assert_eq!(a.cuts(), 1);
        assert_eq!(a.summary().congested, 2);
        a.observe(t0 + Duration::from_secs(10), 80, whisper(busy));
        assert_eq!(a.limit(), 68);
        assert_eq!(a.cuts(), 2);
    }

    #[test]
    fn the_whisper_queue_counts_as_congestion_when_a_reply_would_fall_back() {
        let rule = AdmissionRule::default();
        assert!(!rule.congested(&whisper(IDLE_WHISPER)));
        // Both workers busy with one final each: a new one waits a whole
        // decode (800 ms > 700 ms deadline): the turn would be Busy.
        let full = WhisperBacklog {
            ahead: 2,
            ..IDLE_WHISPER
        };
        assert!(rule.congested(&whisper(full)));
        // One busy worker, one free: fine.
        let one = WhisperBacklog {
            ahead: 1,
            ..IDLE_WHISPER
        };
        assert!(!rule.congested(&whisper(one)));
        // A final that queued long, now or lately, or one given up late.
        for w in [
            WhisperBacklog {
                oldest_final_wait: Duration::from_millis(300),
                ..IDLE_WHISPER
            },
            WhisperBacklog {
                recent_final_wait: Duration::from_millis(450),
                ..IDLE_WHISPER
            },
            WhisperBacklog {
                recent_late: 1,
                ..IDLE_WHISPER
            },
        ] {
            assert!(rule.congested(&whisper(w)), "{w:?}");
        }
        let short = WhisperBacklog {
            recent_final_wait: Duration::from_millis(100),
            ..IDLE_WHISPER
        };
        assert!(!rule.congested(&whisper(short)));
    }

    #[test]
    fn slow_start_never_grows_past_the_maximum_and_cuts_never_below_the_floor() {
        let t0 = Instant::now();
        let rule = AdmissionRule {
            min_limit: 3,
            ..AdmissionRule::default()
        };
        let mut a: Admission = Admission::new(rule.clone(), 10);
        assert_eq!(a.limit(), 8);
        a.observe(t0 + Duration::from_secs(3), 8, CALM);
        a.observe(t0 + Duration::from_secs(13), 8, CALM);
        assert_eq!(a.limit(), 10, "12 capped at max_concurrent");
        assert!(!a.admit(t0 + Duration::from_secs(14), 10, CALM));
        a.observe(t0 + Duration::from_secs(15), 1, behind(5000));
        assert_eq!(a.limit(), 3);
        // A maximum below the initial limit is where it starts.
        let b: Admission = Admission::new(AdmissionRule::default(), 4);
        assert_eq!(b.limit(), 4);
    }

    #[test]
    fn the_scheduler_clock_works_as_well_as_an_instant() {
        let t0 = chrono::Utc::now();
        let mut a: Admission<chrono::DateTime<chrono::Utc>> =
            Admission::new(AdmissionRule::default(), 50);
        a.observe(t0, 8, CALM);
        a.observe(t0 + chrono::Duration::seconds(9), 8, CALM);
        assert_eq!(a.limit(), 8);
        a.observe(t0 + chrono::Duration::seconds(10), 8, CALM);
        assert_eq!(a.limit(), 12);
        // Time going backwards (a clock step) is no time at all.
        a.observe(t0, 12, CALM);
        assert_eq!(a.limit(), 12);
    }
}
