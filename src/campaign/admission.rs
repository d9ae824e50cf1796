//! Admission when the machine is full (issue 23): a dialer that cannot hear
//! another conversation well does not start it. Beyond the recogniser's
//! capacity a new conversation waits (or is refused) instead of being
//! misheard, and so are the ones already in progress.
//!
//! The rule is pure (the caller passes the time and the recogniser's
//! backlog; no clock, no I/O): a limit on conversations in progress, cut
//! when the recogniser falls behind and raised one at a time while it keeps
//! up (additive increase, multiplicative decrease). The signal is the
//! decoder pool's backlog: an utterance waiting for a decoder at least
//! [`AdmissionRule::congested_wait`] (now, or within the pool's recent
//! window). A conversation admitted now first speaks to the recogniser
//! seconds later, so the signal lags: after a cut the limit is not cut
//! again for [`AdmissionRule::cooldown`], while the backlog of what was
//! already admitted drains.
//! Owns: the limit. Never: reads the clock, places or holds a call.

use std::time::{Duration, Instant};

pub use crate::asr::sphinx::Backlog;

/// The admission rule's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionRule {
    /// A wait for a decoder this long means the recogniser is behind
    /// (replies then come late; at 100 conversations waits up to 3.7 s
    /// still kept every route right, at 200 waits of 30 s did not).
    pub congested_wait: Duration,
    /// After a cut, no new cut for this long.
    pub cooldown: Duration,
    /// Without congestion for this long (and the limit in the way), the
    /// limit rises by one.
    pub raise_after: Duration,
    /// A cut sets the limit to this percentage of the conversations in
    /// progress.
    pub cut_to_percent: usize,
    /// The limit never falls below this.
    pub min_limit: usize,
}

impl Default for AdmissionRule {
    fn default() -> Self {
        AdmissionRule {
            congested_wait: Duration::from_millis(500),
            cooldown: Duration::from_secs(10),
            raise_after: Duration::from_secs(3),
            cut_to_percent: 85,
            min_limit: 1,
        }
    }
}

/// The admission state: the current limit on conversations in progress.
#[derive(Debug, Clone)]
pub struct Admission {
    rule: AdmissionRule,
    max: usize,
    limit: usize,
    lowest: usize,
    cuts: u64,
    last_cut: Option<Instant>,
    calm_since: Option<Instant>,
}

impl Admission {
    /// Starts with the limit at `max` (the campaign's `max_concurrent`).
    pub fn new(rule: AdmissionRule, max: usize) -> Admission {
        let max = max.max(rule.min_limit).max(1);
        Admission {
            rule,
            max,
            limit: max,
            lowest: max,
            cuts: 0,
            last_cut: None,
            calm_since: None,
        }
    }

    /// Observes the backlog at `now` with `in_progress` conversations and
    /// says whether one more may start now.
    pub fn admit(&mut self, now: Instant, in_progress: usize, backlog: Backlog) -> bool {
        self.observe(now, in_progress, backlog);
        in_progress < self.limit
    }

    /// Updates the limit from the backlog at `now`.
    pub fn observe(&mut self, now: Instant, in_progress: usize, backlog: Backlog) {
        let r = &self.rule;
        let congested =
            backlog.oldest_wait >= r.congested_wait || backlog.recent_wait >= r.congested_wait;
        if congested {
            self.calm_since = None;
            let cooled = self
                .last_cut
                .is_none_or(|t| now.saturating_duration_since(t) >= r.cooldown);
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
        if now.saturating_duration_since(calm) >= r.raise_after && self.limit < self.max {
            self.limit += 1;
            self.calm_since = Some(now);
        }
    }

    /// Conversations allowed in progress now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The lowest limit so far.
    pub fn lowest(&self) -> usize {
        self.lowest
    }

    /// Times the limit was cut.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behind(ms: u64) -> Backlog {
        Backlog {
            waiting: 1,
            oldest_wait: Duration::from_millis(ms),
            recent_wait: Duration::ZERO,
        }
    }

    const CALM: Backlog = Backlog {
        waiting: 0,
        oldest_wait: Duration::ZERO,
        recent_wait: Duration::ZERO,
    };

    #[test]
    fn a_recogniser_that_keeps_up_admits_up_to_the_maximum() {
        let t0 = Instant::now();
        let mut a = Admission::new(AdmissionRule::default(), 100);
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
        let mut a = Admission::new(AdmissionRule::default(), 200);
        assert!(!a.admit(t0, 120, behind(800)));
        assert_eq!(a.limit(), 102, "cut to 85 % of the 120 in progress");
        // As conversations end, none starts until fewer than the limit run.
        assert!(!a.admit(t0 + Duration::from_secs(1), 110, CALM));
        assert!(a.admit(t0 + Duration::from_secs(2), 101, CALM));
    }

    #[test]
    fn a_recent_long_wait_counts_as_much_as_one_going_on() {
        let t0 = Instant::now();
        let mut a = Admission::new(AdmissionRule::default(), 200);
        let b = Backlog {
            waiting: 0,
            oldest_wait: Duration::ZERO,
            recent_wait: Duration::from_secs(2),
        };
        assert!(!a.admit(t0, 100, b));
        assert_eq!(a.limit(), 85);
    }

    #[test]
    fn the_backlog_of_what_was_admitted_does_not_cut_twice_within_the_cooldown() {
        let t0 = Instant::now();
        let mut a = Admission::new(AdmissionRule::default(), 200);
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
        let mut a = Admission::new(AdmissionRule::default(), 100);
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
            ..AdmissionRule::default()
        };
        let mut a = Admission::new(rule, 6);
        a.observe(t0, 2, behind(5000));
        assert_eq!(a.limit(), 4);
        for s in 1..100 {
            a.observe(t0 + Duration::from_secs(s * 4), a.limit(), CALM);
        }
        assert_eq!(a.limit(), 6);
        assert!(a.admit(t0 + Duration::from_secs(500), 5, CALM));
        assert!(!a.admit(t0 + Duration::from_secs(500), 6, CALM));
    }
}
