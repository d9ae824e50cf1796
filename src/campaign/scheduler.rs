//! The campaign scheduler: decides which account is dialled next, on which
//! number, and when; retries by disposition; callbacks at the time asked;
//! concurrency and pacing; when the campaign is finished.
//!
//! Pure and sans-IO, in the str0m style: no clock, no sockets, no threads,
//! no store, and it never calls out. The driver (the campaign runner) feeds
//! it events stamped with an explicit `now` through [`Scheduler::handle`]
//! and drains [`Scheduler::poll`], which answers with at most one
//! [`SchedulerAction`]. It never decides whether a dial is lawful: before
//! every dial it asks the driver to put the question to the compliance gate
//! (`Decide`), and dials only on an allow answered with the gate's permit
//! (`Decided` carrying [`Verdict::Allow`]); a denial's `next_allowed_at` is
//! when it asks again.
//!
//! The driver's loop:
//!
//! 1. `poll(now)`. `Decide { account, phone }` → ask the gate, answer with
//!    `handle(now, Decided { .. })`, `poll` again at once.
//! 2. `Dial { permit, .. }` → start the call with the permit the gate gave,
//!    `poll` again at once (more dials may be due).
//! 3. `WaitUntil(t)` → sleep until `t` or until a call ends, whichever is
//!    first. `WaitForCalls` → sleep until a call ends.
//! 4. When a call ends: `handle(now, CallEnded { .. })`, then `poll` again.
//! 5. `Finished(summary)` → done; every later `poll` says the same.
//!
//! Every `Dial` must be answered by exactly one `CallEnded` for that account
//! (with disposition `failed` or `cancelled` if the call never started), or
//! the account stays in flight and the campaign never finishes. A `Decide`
//! left unanswered is asked again by the next `poll`.
//!
//! The permit type `P` is the driver's: the runner passes the gate's
//! `AllowedDial`, so the only way to a `Dial` is through an allow.
//!
//! With admission control on ([`SchedulerConfig::admission`]), the driver
//! also feeds what the recognisers' pools say (`Load`, with its time); the
//! scheduler asks the gate about a new dial only while fewer calls are in
//! flight than min(`max_concurrent`, the admission limit), so a call the
//! machine could not hear is never put to the gate and uses up no attempt.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::admission::{Admission, AdmissionRule, AdmissionSummary, Load};
pub use super::retry::RetryDelays;
use super::retry::RouteAsks;
use crate::outcome::{Disposition, Route, RouteKind};

/// One account of the campaign as the scheduler sees it: an id for the
/// summary and the numbers it may dial, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignAccount {
    /// The lender's id.
    pub account_id: String,
    /// Numbers, main first (E.164).
    pub phones: Vec<String>,
}

/// The gate's answer to a `Decide`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<P> {
    /// The dial may happen now; the permit travels with the `Dial`.
    Allow(P),
    /// It may not.
    Deny {
        /// The earliest moment it could be allowed, or `None` if no moment
        /// is known (the account is then not dialled in this campaign).
        next_allowed_at: Option<DateTime<Utc>>,
    },
}

impl<P> Verdict<P> {
    /// Denied, with the moment to ask again (or `None`: do not ask again).
    pub fn deny(next_allowed_at: Option<DateTime<Utc>>) -> Self {
        Verdict::Deny { next_allowed_at }
    }
}

/// What a campaign may do and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Calls in flight at most (at least 1).
    pub max_concurrent: usize,
    /// Calls started per second at most (`None`: no pacing).
    pub calls_per_second: Option<f64>,
    /// Calls that may start back to back after an idle spell (at least 1).
    pub burst: u32,
    /// Retry delays by disposition.
    pub retry: RetryDelays,
    /// No dial starts at or after this moment.
    pub until: DateTime<Utc>,
    /// Dials per account in this campaign at most (`None`: the gate's caps
    /// and `until` are the only limits).
    pub max_attempts: Option<u32>,
    /// When the gate denies without a usable time (`next_allowed_at` not
    /// after now), ask again after this long (default 1 min).
    pub recheck: Duration,
    /// Admission control (`campaign::admission`): `Some` holds calls in
    /// flight to the rule's limit as `Load` events move it; `None`: only
    /// `max_concurrent` holds them.
    pub admission: Option<AdmissionRule>,
}

impl SchedulerConfig {
    /// Defaults (4 concurrent, 1 call/s, default retries, 1 min recheck)
    /// running until `until`.
    pub fn until(until: DateTime<Utc>) -> SchedulerConfig {
        SchedulerConfig {
            max_concurrent: 4,
            calls_per_second: Some(1.0),
            burst: 1,
            retry: RetryDelays::default(),
            until,
            max_attempts: None,
            recheck: Duration::minutes(1),
            admission: None,
        }
    }
}

/// A configuration the scheduler cannot run, or an event that does not fit
/// its state (a driver bug: the scheduler is left unchanged).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// `max_concurrent` was 0.
    #[error("campaign max_concurrent must be at least 1")]
    ZeroConcurrency,
    /// Pacing not a positive, finite rate.
    #[error("campaign pacing {0} calls/s must be a positive number (at most 1e9)")]
    BadPacing(f64),
    /// `burst` was 0.
    #[error("campaign pacing burst must be at least 1")]
    ZeroBurst,
    /// `recheck` was not positive.
    #[error("campaign recheck interval must be positive")]
    BadRecheck,
    /// An event named an account index outside the campaign.
    #[error("no account {account} in this campaign of {total}")]
    UnknownAccount {
        /// The index given.
        account: usize,
        /// Accounts in the campaign.
        total: usize,
    },
    /// An event for an account with no call in flight.
    #[error("account {account_id} (index {account}) has no call in flight")]
    NotInFlight {
        /// The index given.
        account: usize,
        /// Its id.
        account_id: String,
    },
    /// A `Decided` that answers no pending `Decide`.
    #[error("no gate question is pending for account index {account} on that number")]
    NotAsked {
        /// The index given.
        account: usize,
    },
}

/// What the driver feeds in.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerEvent<P> {
    /// The gate's answer to the pending `Decide`.
    Decided {
        /// The account index of the `Decide`.
        account: usize,
        /// The number of the `Decide`.
        phone: String,
        /// Allow (with the permit the `Dial` will carry) or deny.
        verdict: Verdict<P>,
    },
    /// A `Dial` could not be placed (its decision could not be stored, so
    /// no INVITE left): the dial is taken back, and the account asks the
    /// gate again from `retry_at`.
    NotPlaced {
        /// The account index of the `Dial`.
        account: usize,
        /// When to try again.
        retry_at: DateTime<Utc>,
    },
    /// The INVITE for a `Dial` left (for the progress display).
    CallStarted {
        /// The account index of the `Dial`.
        account: usize,
    },
    /// What the recognisers' pools say now (admission control; ignored
    /// when it is off).
    Load(Load),
    /// The call of a `Dial` is over (or never started).
    CallEnded {
        /// The account index of the `Dial`.
        account: usize,
        /// How it ended.
        disposition: Disposition,
        /// Where the case goes, if the conversation routed it.
        route: Option<Route>,
    },
}

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum SchedulerAction<P> {
    /// Put this dial to the compliance gate now and answer with
    /// `SchedulerEvent::Decided`.
    Decide {
        /// Index into the campaign's accounts.
        account_idx: usize,
        /// The number the dial would go to.
        phone: String,
    },
    /// Dial this account on this number now: the gate allowed it.
    Dial {
        /// Index into the campaign's accounts.
        account_idx: usize,
        /// The number to dial.
        phone: String,
        /// What the gate gave with its allow.
        permit: P,
    },
    /// Nothing to do before this moment (or before a call ends).
    WaitUntil(DateTime<Utc>),
    /// Nothing to do until a call in flight ends.
    WaitForCalls,
    /// The campaign is over: no call in flight and no dial allowed before
    /// `until` (or stopped).
    Finished(Summary),
}

/// Progress of a campaign, for the display and the final report.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Summary {
    /// Accounts in the campaign.
    pub total: usize,
    /// Accounts with a call in flight.
    pub in_flight: usize,
    /// Accounts that need nothing more from this campaign (routed done,
    /// agent, pause or suppress; out of numbers; out of attempts).
    pub done: usize,
    /// Accounts the gate allowed no dial for before `until` (of `done`).
    pub blocked: usize,
    /// Accounts waiting for a first dial or a retry.
    pub remaining: usize,
    /// Dials handed out.
    pub dials: u64,
    /// Calls that started (`CallStarted` events).
    pub started: u64,
    /// Ended calls by disposition.
    pub by_disposition: HashMap<Disposition, u64>,
    /// Ended calls by route kind (the first route, not its follow-up).
    pub by_route: HashMap<RouteKind, u64>,
    /// When the next waiting account becomes eligible, if any.
    pub next_at: Option<DateTime<Utc>>,
    /// Admission control's limit and cuts (`None` when it is off).
    pub admission: Option<AdmissionSummary>,
}

/// Why an account needs nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DoneWhy {
    Routed,
    Answered,
    NoNumbers,
    MaxAttempts,
    Blocked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// In the queue, eligible from the time stored with it there.
    Waiting(DateTime<Utc>),
    InFlight,
    Done(DoneWhy),
}

#[derive(Debug, Clone)]
struct Slot {
    account_id: String,
    /// Numbers still usable, main first.
    phones: Vec<String>,
    /// The number the next dial prefers.
    cursor: usize,
    /// The number of the call in flight.
    dialled: usize,
    attempts: u32,
    state: SlotState,
}

/// Generic cell rate pacer: a token bucket on explicit time. `tat` is the
/// theoretical arrival time of the next call at the steady rate.
#[derive(Debug, Clone)]
struct Pacer {
    interval: Duration,
    /// How far ahead of `tat` a call may start: (burst - 1) intervals.
    tolerance: Duration,
    tat: Option<DateTime<Utc>>,
}

impl Pacer {
    fn ready_at(&self) -> Option<DateTime<Utc>> {
        self.tat.map(|t| t - self.tolerance)
    }

    fn take(&mut self, now: DateTime<Utc>) {
        let base = match self.tat {
            Some(t) if t > now => t,
            _ => now,
        };
        self.tat = Some(base + self.interval);
    }
}

/// A gate question in progress: which account, which of its numbers is
/// being asked about, and the earliest time named by the denials so far.
#[derive(Debug, Clone)]
struct Asking {
    idx: usize,
    /// How many of the account's numbers were asked about (the current one
    /// is `(cursor + tried) % n`).
    tried: usize,
    retry_at: Option<DateTime<Utc>>,
}

/// The scheduler of one campaign. See the module doc for the driver loop.
pub struct Scheduler<P> {
    config: SchedulerConfig,
    slots: Vec<Slot>,
    /// Waiting accounts by (eligible from, index): the earliest first, ties
    /// in campaign order.
    queue: BTreeSet<(DateTime<Utc>, usize)>,
    pacer: Option<Pacer>,
    /// The gate question awaiting its `Decided`.
    asking: Option<Asking>,
    /// An allowed dial not yet handed out by `poll`.
    ready: Option<(usize, String, P)>,
    in_flight: usize,
    /// Admission control, on the campaign clock.
    admission: Option<Admission<DateTime<Utc>>>,
    dials: u64,
    started: u64,
    by_disposition: HashMap<Disposition, u64>,
    by_route: HashMap<RouteKind, u64>,
    stopped: bool,
    finished: Option<Summary>,
}

impl<P> std::fmt::Debug for Scheduler<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("summary", &self.summary())
            .finish()
    }
}

impl<P> Scheduler<P> {
    /// A campaign over `accounts`, all eligible at once. Accounts with no
    /// number are done from the start.
    pub fn new(
        accounts: Vec<CampaignAccount>,
        config: SchedulerConfig,
    ) -> Result<Self, SchedulerError> {
        if config.max_concurrent == 0 {
            return Err(SchedulerError::ZeroConcurrency);
        }
        if config.burst == 0 {
            return Err(SchedulerError::ZeroBurst);
        }
        if config.recheck <= Duration::zero() {
            return Err(SchedulerError::BadRecheck);
        }
        let pacer = match config.calls_per_second {
            None => None,
            Some(r) if r.is_finite() && r > 0.0 && r <= 1e9 => {
                let interval = Duration::nanoseconds((1e9 / r).round() as i64);
                Some(Pacer {
                    interval,
                    tolerance: interval * (config.burst as i32 - 1),
                    tat: None,
                })
            }
            Some(r) => return Err(SchedulerError::BadPacing(r)),
        };
        let mut queue = BTreeSet::new();
        let slots = accounts
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let state = if a.phones.is_empty() {
                    SlotState::Done(DoneWhy::NoNumbers)
                } else {
                    queue.insert((DateTime::<Utc>::MIN_UTC, i));
                    SlotState::Waiting(DateTime::<Utc>::MIN_UTC)
                };
                Slot {
                    account_id: a.account_id,
                    phones: a.phones,
                    cursor: 0,
                    dialled: 0,
                    attempts: 0,
                    state,
                }
            })
            .collect();
        let admission = config
            .admission
            .clone()
            .map(|rule| Admission::new(rule, config.max_concurrent));
        Ok(Scheduler {
            admission,
            config,
            slots,
            queue,
            pacer,
            asking: None,
            ready: None,
            in_flight: 0,
            dials: 0,
            started: 0,
            by_disposition: HashMap::new(),
            by_route: HashMap::new(),
            stopped: false,
            finished: None,
        })
    }

    /// The account id of an index.
    pub fn account_id(&self, account_idx: usize) -> Option<&str> {
        self.slots.get(account_idx).map(|s| s.account_id.as_str())
    }

    /// Stops handing out dials (operator, shutdown). Calls in flight still
    /// end through `handle`; then `poll` says `Finished`. An allow not yet
    /// handed out is dropped (the account is left waiting).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// What to do next at `now`. Returns at most one action; call again
    /// after a `Decide` is answered, after a `Dial`, after every `handle`,
    /// and when a `WaitUntil` moment comes.
    pub fn poll(&mut self, now: DateTime<Utc>) -> SchedulerAction<P> {
        if let Some(s) = &self.finished {
            return SchedulerAction::Finished(s.clone());
        }
        let open = !self.stopped && now < self.config.until;
        if let Some((idx, phone, permit)) = self.ready.take() {
            if open {
                return SchedulerAction::Dial {
                    account_idx: idx,
                    phone,
                    permit,
                };
            }
            // Stopped (or past `until`) between the allow and the dial: the
            // permit is dropped and the account waits for a later run.
            self.undo_allow(idx, now);
        }
        if let Some(a) = &self.asking {
            if open {
                let slot = &self.slots[a.idx];
                let p = (slot.cursor + a.tried) % slot.phones.len();
                return SchedulerAction::Decide {
                    account_idx: a.idx,
                    phone: slot.phones[p].clone(),
                };
            }
            let idx = a.idx;
            self.asking = None;
            self.wait(idx, now);
        }
        if open && self.in_flight < self.limit() {
            if let Some(&(at, idx)) = self.queue.first() {
                if at <= now {
                    if let Some(ready) = self.pacer.as_ref().and_then(Pacer::ready_at) {
                        if ready > now {
                            return SchedulerAction::WaitUntil(ready.min(self.config.until));
                        }
                    }
                    self.queue.remove(&(at, idx));
                    let slot = &self.slots[idx];
                    self.asking = Some(Asking {
                        idx,
                        tried: 0,
                        retry_at: None,
                    });
                    return SchedulerAction::Decide {
                        account_idx: idx,
                        phone: slot.phones[slot.cursor % slot.phones.len()].clone(),
                    };
                }
                if at < self.config.until {
                    return SchedulerAction::WaitUntil(at);
                }
            }
        }
        if self.in_flight > 0 {
            return SchedulerAction::WaitForCalls;
        }
        let s = self.summary();
        self.finished = Some(s.clone());
        SchedulerAction::Finished(s)
    }

    /// Calls in flight at most now: `max_concurrent`, or admission's limit
    /// if lower.
    pub fn limit(&self) -> usize {
        let max = self.config.max_concurrent;
        self.admission.as_ref().map_or(max, |a| a.limit().min(max))
    }

    /// The gate allowed `idx` on its number `p`: the account goes in flight
    /// and counts against the concurrency and pacing limits at once.
    fn allow(&mut self, idx: usize, p: usize, now: DateTime<Utc>) {
        let slot = &mut self.slots[idx];
        slot.dialled = p;
        slot.attempts += 1;
        slot.state = SlotState::InFlight;
        self.in_flight += 1;
        self.dials += 1;
        if let Some(pacer) = &mut self.pacer {
            pacer.take(now);
        }
    }

    /// Takes back an allow that was never dialled.
    fn undo_allow(&mut self, idx: usize, now: DateTime<Utc>) {
        let slot = &mut self.slots[idx];
        slot.attempts = slot.attempts.saturating_sub(1);
        self.in_flight -= 1;
        self.dials -= 1;
        self.wait(idx, now);
    }

    /// A denial on one number: ask about the next one, or, when every
    /// number was denied, wait for the earliest time the gate named (done,
    /// blocked, if none falls before `until`).
    fn deny(&mut self, next_allowed_at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        let Some(a) = self.asking.as_mut() else {
            return;
        };
        if let Some(t) = next_allowed_at {
            // A time not after now would have us ask again at once, forever.
            let t = if t > now {
                t
            } else {
                now + self.config.recheck
            };
            a.retry_at = Some(a.retry_at.map_or(t, |r| r.min(t)));
        }
        a.tried += 1;
        let (idx, tried, retry_at) = (a.idx, a.tried, a.retry_at);
        if tried < self.slots[idx].phones.len() {
            return;
        }
        self.asking = None;
        match retry_at {
            Some(t) if t < self.config.until => self.wait(idx, t),
            _ => self.slots[idx].state = SlotState::Done(DoneWhy::Blocked),
        }
    }

    fn wait(&mut self, idx: usize, at: DateTime<Utc>) {
        self.slots[idx].state = SlotState::Waiting(at);
        self.queue.insert((at, idx));
    }

    /// Feeds an event. An event that does not fit (unknown account, no call
    /// in flight, an answer to no question) is refused and changes nothing.
    pub fn handle(
        &mut self,
        now: DateTime<Utc>,
        event: SchedulerEvent<P>,
    ) -> Result<(), SchedulerError> {
        let account = match &event {
            SchedulerEvent::Load(load) => {
                if let Some(a) = &mut self.admission {
                    a.observe(now, self.in_flight, *load);
                }
                return Ok(());
            }
            SchedulerEvent::Decided { account, .. }
            | SchedulerEvent::NotPlaced { account, .. }
            | SchedulerEvent::CallStarted { account }
            | SchedulerEvent::CallEnded { account, .. } => *account,
        };
        let total = self.slots.len();
        let slot = self
            .slots
            .get(account)
            .ok_or(SchedulerError::UnknownAccount { account, total })?;
        if let SchedulerEvent::Decided { phone, verdict, .. } = event {
            let asked = self.asking.as_ref().and_then(|a| {
                let p = (slot.cursor + a.tried) % slot.phones.len();
                (a.idx == account && slot.phones[p] == phone).then_some(p)
            });
            let Some(p) = asked else {
                return Err(SchedulerError::NotAsked { account });
            };
            match verdict {
                Verdict::Allow(permit) => {
                    self.asking = None;
                    self.allow(account, p, now);
                    self.ready = Some((account, phone, permit));
                }
                Verdict::Deny { next_allowed_at } => self.deny(next_allowed_at, now),
            }
            return Ok(());
        }
        let handed_out = self.ready.as_ref().is_none_or(|(i, _, _)| *i != account);
        if slot.state != SlotState::InFlight || !handed_out {
            return Err(SchedulerError::NotInFlight {
                account,
                account_id: slot.account_id.clone(),
            });
        }
        match event {
            SchedulerEvent::Decided { .. } | SchedulerEvent::Load(_) => {}
            SchedulerEvent::NotPlaced { retry_at, .. } => {
                let at = if retry_at > now {
                    retry_at
                } else {
                    now + self.config.recheck
                };
                self.undo_allow(account, at);
            }
            SchedulerEvent::CallStarted { .. } => self.started += 1,
            SchedulerEvent::CallEnded {
                disposition, route, ..
            } => {
                self.in_flight -= 1;
                *self.by_disposition.entry(disposition).or_default() += 1;
                if let Some(r) = &route {
                    *self.by_route.entry(r.kind).or_default() += 1;
                }
                self.after_call(account, now, disposition, route.as_ref());
            }
        }
        Ok(())
    }

    /// Decides what becomes of an account after its call.
    fn after_call(
        &mut self,
        idx: usize,
        now: DateTime<Utc>,
        disposition: Disposition,
        route: Option<&Route>,
    ) {
        let RouteAsks {
            terminal,
            drop_number,
            retry,
        } = RouteAsks::of(disposition, route);

        let slot = &mut self.slots[idx];
        let mut moved = false;
        if drop_number && slot.dialled < slot.phones.len() {
            slot.phones.remove(slot.dialled);
            slot.cursor = if slot.phones.is_empty() {
                0
            } else {
                slot.dialled % slot.phones.len()
            };
            moved = true;
        } else if retry.is_none() && disposition != Disposition::Answered && !slot.phones.is_empty()
        {
            // Unreached on this number: prefer the next one next time.
            slot.cursor = (slot.dialled + 1) % slot.phones.len();
        } else {
            // Reached here (or asked to call back): stay on this number.
            slot.cursor = slot.dialled;
        }

        let why = if terminal {
            Some(DoneWhy::Routed)
        } else if slot.phones.is_empty() {
            Some(DoneWhy::NoNumbers)
        } else if self.config.max_attempts.is_some_and(|m| slot.attempts >= m) {
            Some(DoneWhy::MaxAttempts)
        } else if disposition == Disposition::Answered && retry.is_none() && !moved {
            // A conversation that routed nowhere needs nothing more.
            Some(DoneWhy::Answered)
        } else {
            None
        };
        if let Some(why) = why {
            slot.state = SlotState::Done(why);
            return;
        }
        let at = match retry {
            // A callback at the time asked (never before now).
            Some(Some(t)) => t.max(now),
            Some(None) => now + self.config.retry.after(disposition),
            None if moved => now,
            None => now + self.config.retry.after(disposition),
        };
        self.wait(idx, at);
    }

    /// Progress now.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            total: self.slots.len(),
            in_flight: self.in_flight,
            dials: self.dials,
            started: self.started,
            by_disposition: self.by_disposition.clone(),
            by_route: self.by_route.clone(),
            next_at: self
                .queue
                .first()
                .map(|(t, _)| *t)
                .filter(|t| *t > DateTime::<Utc>::MIN_UTC),
            admission: self.admission.as_ref().map(Admission::summary),
            ..Summary::default()
        };
        for slot in &self.slots {
            match slot.state {
                SlotState::Waiting(_) => s.remaining += 1,
                SlotState::InFlight => {}
                SlotState::Done(why) => {
                    s.done += 1;
                    if why == DoneWhy::Blocked {
                        s.blocked += 1;
                    }
                }
            }
        }
        s
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
