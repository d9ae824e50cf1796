//! Retry delays: how long a campaign waits before it dials an account
//! again, by how its last call ended and where the conversation routed it.
//! The scheduler keeps them after its own calls; a claim keeps them after
//! any node's call (`campaign::gate::claim`). Pure: explicit times, no
//! clock, no store.

use chrono::{DateTime, Duration, Utc};

use crate::outcome::{Disposition, Route, RouteEffect, SuppressScope};

/// How long to wait before the next attempt, by how the last one ended,
/// when the route does not name a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryDelays {
    /// After `busy` (default 10 min).
    pub busy: Duration,
    /// After `no-answer` (default 2 h).
    pub no_answer: Duration,
    /// After `voicemail` (default 24 h: next day).
    pub voicemail: Duration,
    /// After `failed` (default 30 min).
    pub failed: Duration,
    /// After `rejected` (default 2 h, like no answer).
    pub rejected: Duration,
    /// After `cancelled` (default 30 min).
    pub cancelled: Duration,
    /// After an answered call routed `retry` without a time
    /// (not_available, identity_denied; default 2 h).
    pub answered: Duration,
}

impl Default for RetryDelays {
    fn default() -> Self {
        RetryDelays {
            busy: Duration::minutes(10),
            no_answer: Duration::hours(2),
            voicemail: Duration::hours(24),
            failed: Duration::minutes(30),
            rejected: Duration::hours(2),
            cancelled: Duration::minutes(30),
            answered: Duration::hours(2),
        }
    }
}

/// What a call's route asks of the next dial, read from its steps: the
/// scheduler's own retry after a call and the wait a claim keeps to after
/// another node's call ([`RetryDelays::not_before`]) both come from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RouteAsks {
    /// A person, a pause, a suppression of the account or a finished case:
    /// no robot retry (the gate's holds, pauses and suppressions govern).
    pub(super) terminal: bool,
    /// The number is wrong or gone: the next number, at once.
    pub(super) drop_number: bool,
    /// A retry step: `Some(Some(t))` at the time asked, `Some(None)` after
    /// the disposition's delay.
    pub(super) retry: Option<Option<DateTime<Utc>>>,
}

impl RouteAsks {
    pub(super) fn of(disposition: Disposition, route: Option<&Route>) -> RouteAsks {
        let mut asks = RouteAsks {
            terminal: false,
            drop_number: disposition == Disposition::NotFound,
            retry: None,
        };
        for step in route.into_iter().flat_map(Route::steps) {
            match step.effect() {
                RouteEffect::Agent | RouteEffect::Pause(_) | RouteEffect::Done => {
                    asks.terminal = true
                }
                RouteEffect::Suppress(SuppressScope::Number) => asks.drop_number = true,
                RouteEffect::Suppress(SuppressScope::Account) => asks.terminal = true,
                RouteEffect::Retry(until) => {
                    if asks.retry.is_none() {
                        asks.retry = Some(until.map(|t| t.with_timezone(&Utc)));
                    }
                }
            }
        }
        asks
    }
}

impl RetryDelays {
    /// When a campaign may dial an account again after a call that ended at
    /// `ended_at` as `disposition`, routed `route` (a call any node made,
    /// read from the shared store when a dial is claimed): the wait this
    /// scheduler keeps after its own calls. `None` when the call asks for
    /// no wait: a terminal route (the gate's holds, pauses and suppressions
    /// govern), a number dropped (the next one is dialled at once), an
    /// answered call that routed nowhere (nothing more to say), or a call
    /// our side cut (`crash`, `shutdown`: the next run goes on at once, as
    /// a restarted node always has).
    pub fn not_before(
        &self,
        ended_at: DateTime<Utc>,
        disposition: Disposition,
        reason: Option<&str>,
        route: Option<&Route>,
    ) -> Option<DateTime<Utc>> {
        if matches!(reason, Some("crash" | "shutdown")) {
            return None;
        }
        let asks = RouteAsks::of(disposition, route);
        if asks.terminal || asks.drop_number {
            return None;
        }
        match asks.retry {
            Some(Some(t)) => Some(t),
            Some(None) => Some(ended_at + self.after(disposition)),
            None if disposition == Disposition::Answered => None,
            None => Some(ended_at + self.after(disposition)),
        }
    }

    /// The delay after a disposition (`not-found` moves to the next number
    /// at once).
    pub fn after(&self, d: Disposition) -> Duration {
        match d {
            Disposition::Busy => self.busy,
            Disposition::NoAnswer => self.no_answer,
            Disposition::Voicemail => self.voicemail,
            Disposition::Failed => self.failed,
            Disposition::Rejected => self.rejected,
            Disposition::Cancelled => self.cancelled,
            Disposition::Answered => self.answered,
            Disposition::NotFound => Duration::zero(),
        }
    }
}
