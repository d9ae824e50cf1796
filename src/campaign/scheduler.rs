//! The campaign scheduler: decides which account is dialled next, on which
//! number, and when; retries by disposition; callbacks at the time asked;
//! concurrency and pacing; when the campaign is finished.
//!
//! Pure and sans-IO, in the str0m style: no clock, no sockets, no threads,
//! no store. The driver (the campaign runner) feeds it events stamped with
//! an explicit `now` through [`Scheduler::handle`] and drains
//! [`Scheduler::poll`], which answers with at most one [`SchedulerAction`]:
//! dial this account, wait until a moment, wait for a call to end, or
//! finished. It never decides whether a dial is lawful: every dial is first
//! put to the [`Gate`] (the compliance policy), and a denial's
//! `next_allowed_at` is when it asks again.
//!
//! The driver's loop:
//!
//! 1. `poll(now)`. `Dial` → record the decision, start the call, `poll`
//!    again at once (more dials may be due).
//! 2. `WaitUntil(t)` → sleep until `t` or until a call ends, whichever is
//!    first. `WaitForCalls` → sleep until a call ends.
//! 3. When a call ends: `handle(now, CallEnded { .. })`, then `poll` again.
//! 4. `Finished(summary)` → done; every later `poll` says the same.
//!
//! Every `Dial` must be answered by exactly one `CallEnded` for that account
//! (with disposition `failed` or `cancelled` if the call never started), or
//! the account stays in flight and the campaign never finishes.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::outcome::{Disposition, Route, RouteKind, SuppressScope};

/// One account of the campaign as the scheduler sees it: an id for the
/// summary and the numbers it may dial, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignAccount {
    /// The lender's id.
    pub account_id: String,
    /// Numbers, main first (E.164).
    pub phones: Vec<String>,
}

/// The gate's answer for one prospective dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateAnswer {
    /// Whether the dial may happen now.
    pub allow: bool,
    /// When denied: the earliest moment it could be allowed, or `None` if no
    /// moment is known (the account is then not dialled in this campaign).
    pub next_allowed_at: Option<DateTime<Utc>>,
}

impl GateAnswer {
    /// Allowed now.
    pub fn allow() -> GateAnswer {
        GateAnswer {
            allow: true,
            next_allowed_at: None,
        }
    }

    /// Denied, with the moment to ask again (or `None`: do not ask again).
    pub fn deny(next_allowed_at: Option<DateTime<Utc>>) -> GateAnswer {
        GateAnswer {
            allow: false,
            next_allowed_at,
        }
    }
}

/// The compliance check the scheduler puts every dial to. The runner adapts
/// the policy gate (windows, caps, suppressions, pauses) to this.
pub trait Gate {
    /// May `account_idx` (index into the campaign's accounts) be dialled on
    /// `phone` at `now`?
    fn decide(&self, account_idx: usize, phone: &str, now: DateTime<Utc>) -> GateAnswer;
}

impl<F> Gate for F
where
    F: Fn(usize, &str, DateTime<Utc>) -> GateAnswer,
{
    fn decide(&self, account_idx: usize, phone: &str, now: DateTime<Utc>) -> GateAnswer {
        self(account_idx, phone, now)
    }
}

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

impl RetryDelays {
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
}

/// What the driver feeds in.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerEvent {
    /// The INVITE for a `Dial` left (for the progress display).
    CallStarted {
        /// The account index of the `Dial`.
        account: usize,
    },
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
pub enum SchedulerAction {
    /// Dial this account on this number now (the gate allowed it).
    Dial {
        /// Index into the campaign's accounts.
        account_idx: usize,
        /// The number to dial.
        phone: String,
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

/// The scheduler of one campaign. See the module doc for the driver loop.
pub struct Scheduler<G: Gate> {
    config: SchedulerConfig,
    gate: G,
    slots: Vec<Slot>,
    /// Waiting accounts by (eligible from, index): the earliest first, ties
    /// in campaign order.
    queue: BTreeSet<(DateTime<Utc>, usize)>,
    pacer: Option<Pacer>,
    in_flight: usize,
    dials: u64,
    started: u64,
    by_disposition: HashMap<Disposition, u64>,
    by_route: HashMap<RouteKind, u64>,
    stopped: bool,
    finished: Option<Summary>,
}

impl<G: Gate> std::fmt::Debug for Scheduler<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("summary", &self.summary())
            .finish()
    }
}

impl<G: Gate> Scheduler<G> {
    /// A campaign over `accounts`, all eligible at once. Accounts with no
    /// number are done from the start.
    pub fn new(
        accounts: Vec<CampaignAccount>,
        config: SchedulerConfig,
        gate: G,
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
        Ok(Scheduler {
            config,
            gate,
            slots,
            queue,
            pacer,
            in_flight: 0,
            dials: 0,
            started: 0,
            by_disposition: HashMap::new(),
            by_route: HashMap::new(),
            stopped: false,
            finished: None,
        })
    }

    /// The gate, for a driver that keeps it up to date (e.g. with the
    /// outcomes it stores).
    pub fn gate_mut(&mut self) -> &mut G {
        &mut self.gate
    }

    /// The account id of an index.
    pub fn account_id(&self, account_idx: usize) -> Option<&str> {
        self.slots.get(account_idx).map(|s| s.account_id.as_str())
    }

    /// Stops handing out dials (operator, shutdown). Calls in flight still
    /// end through `handle`; then `poll` says `Finished`.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// What to do next at `now`. Returns at most one dial; call again after
    /// a `Dial`, after every `handle`, and when a `WaitUntil` moment comes.
    pub fn poll(&mut self, now: DateTime<Utc>) -> SchedulerAction {
        if let Some(s) = &self.finished {
            return SchedulerAction::Finished(s.clone());
        }
        let open = !self.stopped && now < self.config.until;
        if open && self.in_flight < self.config.max_concurrent {
            while let Some(&(at, idx)) = self.queue.first() {
                if at > now {
                    break;
                }
                if let Some(ready) = self.pacer.as_ref().and_then(Pacer::ready_at) {
                    if ready > now {
                        return SchedulerAction::WaitUntil(ready.min(self.config.until));
                    }
                }
                self.queue.remove(&(at, idx));
                if let Some(phone) = self.ask_gate(idx, now) {
                    return SchedulerAction::Dial {
                        account_idx: idx,
                        phone,
                    };
                }
            }
            if let Some(&(at, _)) = self.queue.first() {
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

    /// Puts a due account to the gate, on each of its numbers from the
    /// preferred one. Allowed: the account goes in flight and the number is
    /// returned. Denied on all: it waits for the earliest time the gate
    /// named, or is done (blocked) if none falls before `until`.
    fn ask_gate(&mut self, idx: usize, now: DateTime<Utc>) -> Option<String> {
        let slot = &self.slots[idx];
        let n = slot.phones.len();
        let mut retry_at: Option<DateTime<Utc>> = None;
        for k in 0..n {
            let p = (slot.cursor + k) % n;
            let answer = self.gate.decide(idx, &slot.phones[p], now);
            if answer.allow {
                let phone = slot.phones[p].clone();
                let slot = &mut self.slots[idx];
                slot.dialled = p;
                slot.attempts += 1;
                slot.state = SlotState::InFlight;
                self.in_flight += 1;
                self.dials += 1;
                if let Some(pacer) = &mut self.pacer {
                    pacer.take(now);
                }
                return Some(phone);
            }
            if let Some(t) = answer.next_allowed_at {
                // A time not after now would have us ask again at once, forever.
                let t = if t > now {
                    t
                } else {
                    now + self.config.recheck
                };
                retry_at = Some(retry_at.map_or(t, |r| r.min(t)));
            }
        }
        match retry_at {
            Some(t) if t < self.config.until => self.wait(idx, t),
            _ => self.slots[idx].state = SlotState::Done(DoneWhy::Blocked),
        }
        None
    }

    fn wait(&mut self, idx: usize, at: DateTime<Utc>) {
        self.slots[idx].state = SlotState::Waiting(at);
        self.queue.insert((at, idx));
    }

    /// Feeds an event. An event that does not fit (unknown account, no call
    /// in flight) is refused and changes nothing.
    pub fn handle(
        &mut self,
        now: DateTime<Utc>,
        event: SchedulerEvent,
    ) -> Result<(), SchedulerError> {
        let account = match &event {
            SchedulerEvent::CallStarted { account } | SchedulerEvent::CallEnded { account, .. } => {
                *account
            }
        };
        let total = self.slots.len();
        let slot = self
            .slots
            .get(account)
            .ok_or(SchedulerError::UnknownAccount { account, total })?;
        if slot.state != SlotState::InFlight {
            return Err(SchedulerError::NotInFlight {
                account,
                account_id: slot.account_id.clone(),
            });
        }
        match event {
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
        let mut terminal = false;
        let mut drop_number = disposition == Disposition::NotFound;
        let mut retry: Option<Option<DateTime<Utc>>> = None;
        let mut r = route;
        while let Some(step) = r {
            match step.kind {
                RouteKind::Agent | RouteKind::Pause | RouteKind::Done => terminal = true,
                RouteKind::Suppress => match step.scope {
                    Some(SuppressScope::Number) => drop_number = true,
                    // No scope: the wider reading, never the narrower.
                    Some(SuppressScope::Account) | None => terminal = true,
                },
                RouteKind::Retry => {
                    if retry.is_none() {
                        retry = Some(step.until.map(|t| t.with_timezone(&Utc)));
                    }
                }
            }
            r = step.follow_up.as_deref();
        }

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
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 13, 0, 0).unwrap()
    }

    fn accounts(n: usize) -> Vec<CampaignAccount> {
        (0..n)
            .map(|i| CampaignAccount {
                account_id: format!("a{i}"),
                phones: vec![format!("+1415555{i:04}")],
            })
            .collect()
    }

    fn always(_: usize, _: &str, _: DateTime<Utc>) -> GateAnswer {
        GateAnswer::allow()
    }

    fn done_route() -> Option<Route> {
        Some(Route {
            kind: RouteKind::Done,
            reason: "reminded".into(),
            until: None,
            scope: None,
            follow_up: None,
        })
    }

    fn retry_at(t: DateTime<Utc>) -> Option<Route> {
        Some(Route {
            kind: RouteKind::Retry,
            reason: "callback_later".into(),
            until: Some(t.fixed_offset()),
            scope: None,
            follow_up: None,
        })
    }

    /// One dial as the simulated driver saw it.
    #[derive(Debug, Clone, PartialEq)]
    struct DialLog {
        at: DateTime<Utc>,
        account: usize,
        phone: String,
        attempt: u32,
    }

    /// What a simulated call does: how long it lasts and how it ends.
    type Script<'a> = dyn FnMut(usize, u32, &str) -> (Duration, Disposition, Option<Route>) + 'a;

    /// Drives the scheduler on simulated time like the runner would, and
    /// checks the concurrency limit at every step.
    fn simulate<G: Gate>(
        s: &mut Scheduler<G>,
        start: DateTime<Utc>,
        script: &mut Script<'_>,
    ) -> (Vec<DialLog>, Summary, usize) {
        let mut now = start;
        type Ending = (usize, Disposition, Option<Route>);
        let mut ends: BTreeMap<(DateTime<Utc>, u64), Ending> = BTreeMap::new();
        let mut seq = 0u64;
        let mut log = Vec::new();
        let mut attempts: HashMap<usize, u32> = HashMap::new();
        let mut max_in_flight = 0;
        for _ in 0..1_000_000 {
            while let Some((&(at, k), _)) = ends.first_key_value() {
                if at > now {
                    break;
                }
                let (idx, d, r) = ends.remove(&(at, k)).unwrap();
                s.handle(
                    now,
                    SchedulerEvent::CallEnded {
                        account: idx,
                        disposition: d,
                        route: r,
                    },
                )
                .unwrap();
            }
            match s.poll(now) {
                SchedulerAction::Dial { account_idx, phone } => {
                    let n = attempts.entry(account_idx).or_default();
                    *n += 1;
                    assert!(
                        !ends.values().any(|(i, _, _)| *i == account_idx),
                        "account {account_idx} dialled while its call is in flight"
                    );
                    log.push(DialLog {
                        at: now,
                        account: account_idx,
                        phone: phone.clone(),
                        attempt: *n,
                    });
                    s.handle(
                        now,
                        SchedulerEvent::CallStarted {
                            account: account_idx,
                        },
                    )
                    .unwrap();
                    let (dur, d, r) = script(account_idx, *n, &phone);
                    ends.insert((now + dur, seq), (account_idx, d, r));
                    seq += 1;
                    max_in_flight = max_in_flight.max(ends.len());
                    assert_eq!(s.summary().in_flight, ends.len());
                }
                SchedulerAction::WaitUntil(t) => {
                    assert!(t > now, "WaitUntil({t}) at {now} would spin");
                    now = ends.keys().next().map_or(t, |(e, _)| t.min(*e));
                }
                SchedulerAction::WaitForCalls => {
                    let (e, _) = ends
                        .keys()
                        .next()
                        .expect("WaitForCalls with no call in flight");
                    now = now.max(*e);
                }
                SchedulerAction::Finished(summary) => {
                    assert!(ends.is_empty(), "finished with calls in flight");
                    return (log, summary, max_in_flight);
                }
            }
        }
        panic!("simulation did not finish");
    }

    fn cfg(max_concurrent: usize, cps: Option<f64>, hours: i64) -> SchedulerConfig {
        SchedulerConfig {
            max_concurrent,
            calls_per_second: cps,
            ..SchedulerConfig::until(t0() + Duration::hours(hours))
        }
    }

    #[test]
    fn concurrency_is_never_exceeded() {
        let mut s = Scheduler::new(accounts(40), cfg(3, None, 48), always).unwrap();
        let (log, summary, max_seen) = simulate(&mut s, t0(), &mut |i, n, _| {
            let d = match (i + n as usize) % 4 {
                0 => Disposition::Busy,
                1 => Disposition::NoAnswer,
                _ => Disposition::Answered,
            };
            (Duration::seconds(20 + (i as i64 * 7) % 90), d, None)
        });
        assert!(max_seen <= 3, "saw {max_seen} calls in flight, limit 3");
        assert_eq!(max_seen, 3, "the limit is used, not just respected");
        assert_eq!(summary.done, 40);
        assert!(log.len() > 40, "retries happened");
    }

    #[test]
    fn pacing_spaces_call_starts_at_the_configured_rate() {
        let mut s = Scheduler::new(accounts(10), cfg(100, Some(0.5), 24), always).unwrap();
        let (log, _, _) = simulate(&mut s, t0(), &mut |_, _, _| {
            (Duration::minutes(5), Disposition::Answered, done_route())
        });
        assert_eq!(log.len(), 10);
        for w in log.windows(2) {
            assert_eq!(w[1].at - w[0].at, Duration::seconds(2), "{:?}", w);
        }
    }

    #[test]
    fn pacing_burst_lets_the_first_calls_start_together_then_keeps_the_rate() {
        let config = SchedulerConfig {
            burst: 3,
            ..cfg(100, Some(1.0), 24)
        };
        let mut s = Scheduler::new(accounts(6), config, always).unwrap();
        let (log, _, _) = simulate(&mut s, t0(), &mut |_, _, _| {
            (Duration::minutes(5), Disposition::Answered, done_route())
        });
        let offsets: Vec<i64> = log.iter().map(|d| (d.at - t0()).num_seconds()).collect();
        assert_eq!(offsets, vec![0, 0, 0, 1, 2, 3]);
    }

    #[test]
    fn retry_timing_follows_the_disposition() {
        let cases = [
            (Disposition::Busy, Duration::minutes(10)),
            (Disposition::NoAnswer, Duration::hours(2)),
            (Disposition::Voicemail, Duration::hours(24)),
            (Disposition::Failed, Duration::minutes(30)),
        ];
        for (d, delay) in cases {
            let mut s = Scheduler::new(accounts(1), cfg(1, None, 72), always).unwrap();
            let call = Duration::seconds(30);
            let (log, summary, _) = simulate(&mut s, t0(), &mut |_, n, _| {
                if n == 1 {
                    (call, d, None)
                } else {
                    (call, Disposition::Answered, done_route())
                }
            });
            assert_eq!(log.len(), 2, "{d:?}");
            assert_eq!(log[1].at - (log[0].at + call), delay, "{d:?}");
            assert_eq!(summary.by_disposition.get(&d), Some(&1));
        }
    }

    #[test]
    fn retry_delays_are_configurable() {
        let mut config = cfg(1, None, 72);
        config.retry.busy = Duration::minutes(3);
        let mut s = Scheduler::new(accounts(1), config, always).unwrap();
        let (log, _, _) = simulate(&mut s, t0(), &mut |_, n, _| {
            if n == 1 {
                (Duration::zero(), Disposition::Busy, None)
            } else {
                (Duration::zero(), Disposition::Answered, done_route())
            }
        });
        assert_eq!(log[1].at - log[0].at, Duration::minutes(3));
    }

    #[test]
    fn account_is_not_redialled_while_in_flight() {
        let mut s = Scheduler::new(accounts(1), cfg(5, None, 24), always).unwrap();
        let now = t0();
        assert!(matches!(
            s.poll(now),
            SchedulerAction::Dial { account_idx: 0, .. }
        ));
        assert_eq!(s.poll(now), SchedulerAction::WaitForCalls);
        assert_eq!(
            s.poll(now + Duration::hours(3)),
            SchedulerAction::WaitForCalls
        );
        s.handle(
            now + Duration::hours(3),
            SchedulerEvent::CallEnded {
                account: 0,
                disposition: Disposition::Busy,
                route: None,
            },
        )
        .unwrap();
        assert_eq!(
            s.poll(now + Duration::hours(3)),
            SchedulerAction::WaitUntil(now + Duration::hours(3) + Duration::minutes(10))
        );
    }

    #[test]
    fn finishes_when_the_gate_allows_nothing_before_until() {
        let until = t0() + Duration::hours(8);
        let gate = move |_: usize, _: &str, _: DateTime<Utc>| {
            GateAnswer::deny(Some(until + Duration::hours(11)))
        };
        let mut s = Scheduler::new(accounts(3), cfg(2, Some(1.0), 8), gate).unwrap();
        match s.poll(t0()) {
            SchedulerAction::Finished(sum) => {
                assert_eq!(sum.dials, 0);
                assert_eq!(sum.blocked, 3);
                assert_eq!(sum.done, 3);
            }
            other => panic!("expected Finished, got {other:?}"),
        }
        // Finished stays finished.
        assert!(matches!(
            s.poll(t0() + Duration::hours(1)),
            SchedulerAction::Finished(_)
        ));
    }

    #[test]
    fn gate_denial_waits_until_the_time_it_names_then_dials() {
        let opens = t0() + Duration::minutes(45);
        let gate = move |_: usize, _: &str, now: DateTime<Utc>| {
            if now >= opens {
                GateAnswer::allow()
            } else {
                GateAnswer::deny(Some(opens))
            }
        };
        let mut s = Scheduler::new(accounts(1), cfg(1, None, 8), gate).unwrap();
        assert_eq!(s.poll(t0()), SchedulerAction::WaitUntil(opens));
        assert_eq!(
            s.poll(opens - Duration::seconds(1)),
            SchedulerAction::WaitUntil(opens)
        );
        assert!(matches!(s.poll(opens), SchedulerAction::Dial { .. }));
    }

    #[test]
    fn retry_that_falls_after_until_ends_the_campaign() {
        let mut s = Scheduler::new(accounts(1), cfg(1, None, 1), always).unwrap();
        let (log, summary, _) = simulate(&mut s, t0() + Duration::minutes(55), &mut |_, _, _| {
            (Duration::seconds(30), Disposition::Busy, None)
        });
        assert_eq!(log.len(), 1);
        assert_eq!(
            summary.remaining, 1,
            "the account is left for a later campaign"
        );
        assert_eq!(
            summary.next_at,
            Some(t0() + Duration::minutes(55) + Duration::seconds(30) + Duration::minutes(10))
        );
    }

    #[test]
    fn callbacks_are_honoured_at_the_time_asked() {
        let asked = t0() + Duration::hours(3) + Duration::minutes(17);
        let mut s = Scheduler::new(accounts(2), cfg(2, None, 12), always).unwrap();
        let (log, summary, _) = simulate(&mut s, t0(), &mut |i, n, _| match (i, n) {
            (0, 1) => (Duration::minutes(1), Disposition::Answered, retry_at(asked)),
            _ => (Duration::minutes(1), Disposition::Answered, done_route()),
        });
        let a0: Vec<_> = log.iter().filter(|d| d.account == 0).collect();
        assert_eq!(a0.len(), 2);
        assert_eq!(
            a0[1].at, asked,
            "called back at the time asked, not before or after"
        );
        assert_eq!(
            a0[1].phone, a0[0].phone,
            "called back on the number that asked"
        );
        assert_eq!(summary.by_route.get(&RouteKind::Retry), Some(&1));
    }

    #[test]
    fn callback_asked_after_until_is_not_dialled_in_this_campaign() {
        let mut s = Scheduler::new(accounts(1), cfg(1, None, 2), always).unwrap();
        let (log, summary, _) = simulate(&mut s, t0(), &mut |_, _, _| {
            (
                Duration::minutes(1),
                Disposition::Answered,
                retry_at(t0() + Duration::hours(5)),
            )
        });
        assert_eq!(log.len(), 1);
        assert_eq!(summary.remaining, 1);
    }

    #[test]
    fn wrong_number_moves_to_the_next_phone_and_stop_calling_ends_the_account() {
        let two = vec![CampaignAccount {
            account_id: "a".into(),
            phones: vec!["+1111".into(), "+2222".into()],
        }];
        let mut s = Scheduler::new(two.clone(), cfg(1, None, 12), always).unwrap();
        let (log, summary, _) = simulate(&mut s, t0(), &mut |_, n, _| {
            if n == 1 {
                let r = Route {
                    kind: RouteKind::Suppress,
                    reason: "wrong_number".into(),
                    until: None,
                    scope: Some(SuppressScope::Number),
                    follow_up: None,
                };
                (Duration::minutes(1), Disposition::Answered, Some(r))
            } else {
                let r = Route {
                    kind: RouteKind::Suppress,
                    reason: "stop_calling".into(),
                    until: None,
                    scope: Some(SuppressScope::Account),
                    follow_up: None,
                };
                (Duration::minutes(1), Disposition::Answered, Some(r))
            }
        });
        assert_eq!(
            log.iter().map(|d| d.phone.as_str()).collect::<Vec<_>>(),
            vec!["+1111", "+2222"]
        );
        assert_eq!(
            log[1].at,
            log[0].at + Duration::minutes(1),
            "next number at once"
        );
        assert_eq!(summary.done, 1);

        let mut s = Scheduler::new(two, cfg(1, None, 12), always).unwrap();
        let (log, summary, _) = simulate(&mut s, t0(), &mut |_, _, _| {
            (Duration::seconds(5), Disposition::NotFound, None)
        });
        assert_eq!(log.len(), 2, "each dead number tried once");
        assert_eq!(summary.done, 1);
    }

    #[test]
    fn unreached_account_alternates_between_its_numbers() {
        let two = vec![CampaignAccount {
            account_id: "a".into(),
            phones: vec!["+1111".into(), "+2222".into()],
        }];
        let config = SchedulerConfig {
            max_attempts: Some(3),
            ..cfg(1, None, 24)
        };
        let mut s = Scheduler::new(two, config, always).unwrap();
        let (log, _, _) = simulate(&mut s, t0(), &mut |_, _, _| {
            (Duration::seconds(30), Disposition::NoAnswer, None)
        });
        assert_eq!(
            log.iter().map(|d| d.phone.as_str()).collect::<Vec<_>>(),
            vec!["+1111", "+2222", "+1111"]
        );
    }

    #[test]
    fn gate_denying_one_number_dials_another() {
        let two = vec![CampaignAccount {
            account_id: "a".into(),
            phones: vec!["+1111".into(), "+2222".into()],
        }];
        let gate = |_: usize, phone: &str, now: DateTime<Utc>| {
            if phone == "+1111" {
                GateAnswer::deny(Some(now + Duration::hours(1)))
            } else {
                GateAnswer::allow()
            }
        };
        let mut s = Scheduler::new(two, cfg(1, None, 12), gate).unwrap();
        assert_eq!(
            s.poll(t0()),
            SchedulerAction::Dial {
                account_idx: 0,
                phone: "+2222".into()
            }
        );
    }

    #[test]
    fn hardship_agent_route_with_pause_follow_up_ends_the_account() {
        let mut s = Scheduler::new(accounts(1), cfg(1, None, 12), always).unwrap();
        let (log, summary, _) = simulate(&mut s, t0(), &mut |_, _, _| {
            let pause = Route {
                kind: RouteKind::Pause,
                reason: "hardship".into(),
                until: Some((t0() + Duration::days(30)).fixed_offset()),
                scope: None,
                follow_up: None,
            };
            let r = Route {
                kind: RouteKind::Agent,
                reason: "hardship".into(),
                until: None,
                scope: None,
                follow_up: Some(Box::new(pause)),
            };
            (Duration::minutes(2), Disposition::Answered, Some(r))
        });
        assert_eq!(log.len(), 1);
        assert_eq!(summary.by_route.get(&RouteKind::Agent), Some(&1));
        assert_eq!(summary.done, 1);
    }

    #[test]
    fn stop_lets_calls_in_flight_end_then_finishes() {
        let mut s = Scheduler::new(accounts(5), cfg(2, None, 12), always).unwrap();
        assert!(matches!(
            s.poll(t0()),
            SchedulerAction::Dial { account_idx: 0, .. }
        ));
        s.stop();
        assert_eq!(s.poll(t0()), SchedulerAction::WaitForCalls);
        s.handle(
            t0(),
            SchedulerEvent::CallEnded {
                account: 0,
                disposition: Disposition::Cancelled,
                route: None,
            },
        )
        .unwrap();
        match s.poll(t0()) {
            SchedulerAction::Finished(sum) => {
                assert_eq!(sum.dials, 1);
                assert_eq!(sum.remaining, 5);
            }
            other => panic!("expected Finished, got {other:?}"),
        }
    }

    #[test]
    fn events_for_accounts_not_in_flight_are_refused() {
        let mut s = Scheduler::new(accounts(2), cfg(2, None, 12), always).unwrap();
        let ended = |account| SchedulerEvent::CallEnded {
            account,
            disposition: Disposition::Busy,
            route: None,
        };
        assert!(matches!(
            s.handle(t0(), ended(0)),
            Err(SchedulerError::NotInFlight { .. })
        ));
        assert!(matches!(
            s.handle(t0(), ended(7)),
            Err(SchedulerError::UnknownAccount {
                account: 7,
                total: 2
            })
        ));
        assert_eq!(s.summary().remaining, 2);
    }

    #[test]
    fn bad_configuration_is_refused() {
        let bad = |c: SchedulerConfig| Scheduler::new(accounts(1), c, always).unwrap_err();
        assert_eq!(bad(cfg(0, None, 1)), SchedulerError::ZeroConcurrency);
        assert!(matches!(
            bad(cfg(1, Some(0.0), 1)),
            SchedulerError::BadPacing(_)
        ));
        assert!(matches!(
            bad(cfg(1, Some(f64::NAN), 1)),
            SchedulerError::BadPacing(_)
        ));
        assert_eq!(
            bad(SchedulerConfig {
                burst: 0,
                ..cfg(1, None, 1)
            }),
            SchedulerError::ZeroBurst
        );
    }

    #[test]
    fn gate_giving_a_past_time_is_rechecked_later_not_in_a_loop() {
        let gate = |_: usize, _: &str, now: DateTime<Utc>| {
            GateAnswer::deny(Some(now - Duration::hours(1)))
        };
        let mut s = Scheduler::new(accounts(1), cfg(1, None, 1), gate).unwrap();
        assert_eq!(
            s.poll(t0()),
            SchedulerAction::WaitUntil(t0() + Duration::minutes(1))
        );
    }

    #[test]
    fn accounts_without_numbers_are_done_from_the_start() {
        let a = vec![CampaignAccount {
            account_id: "x".into(),
            phones: vec![],
        }];
        let mut s = Scheduler::new(a, cfg(1, None, 1), always).unwrap();
        assert!(matches!(
            s.poll(t0()),
            SchedulerAction::Finished(Summary {
                done: 1,
                dials: 0,
                ..
            })
        ));
    }
}
