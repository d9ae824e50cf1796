//! Registration at the trunk (`[sip] register = true`): REGISTER with
//! digest auth at start, a refresh before the granted lifetime runs out, a
//! retry with back-off after a failure, Expires: 0 at shutdown.
//!
//! [`Schedule`] is the pure part (when to refresh, when to retry, whether we
//! count as registered, all from an explicit `now`); [`run`] is the thin
//! driver around rsipstack's `Registration` on the gateway's endpoint.
//! The state is logged at each change and published as
//! [`registration_gauge`] (the `duecall_sip_registered` metric).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::uri::mask_uri;

/// Part of the granted lifetime after which the registration is refreshed
/// (percent).
pub const REFRESH_AT_PERCENT: u32 = 85;

/// First retry after a failed REGISTER; doubles with each failure in a row.
pub const RETRY_FIRST: Duration = Duration::from_secs(2);

/// The longest wait between two tries after failures.
pub const RETRY_MAX: Duration = Duration::from_secs(300);

/// How long one REGISTER (with its digest answer) may take.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(32);

/// How long the un-REGISTER at shutdown may take.
pub const UNREGISTER_WAIT: Duration = Duration::from_secs(3);

/// How a REGISTER ended, as the schedule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 OK: registered for this many seconds.
    Registered {
        /// Granted lifetime, seconds.
        granted: u32,
    },
    /// 423 Interval Too Brief: ask again with at least this lifetime.
    TooBrief {
        /// The registrar's Min-Expires, seconds.
        min_expires: u32,
    },
    /// The registrar will not have us with these credentials (401/407
    /// after our digest answer, 403, 404).
    Refused {
        /// The status code.
        status: u16,
    },
    /// No answer, a transport error or another failure status.
    Failed,
}

impl Answer {
    /// Classifies a final status (and the lifetime granted with a 200, the
    /// Min-Expires of a 423).
    pub fn from_status(status: u16, granted: u32, min_expires: Option<u32>) -> Answer {
        match status {
            200..=299 => Answer::Registered { granted },
            423 => match min_expires {
                Some(m) if m > 0 => Answer::TooBrief { min_expires: m },
                _ => Answer::Failed,
            },
            401 | 403 | 404 | 407 => Answer::Refused { status },
            _ => Answer::Failed,
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// REGISTER again at this moment, asking for `expires` seconds.
    At {
        /// When.
        when: Instant,
        /// The lifetime to ask for.
        expires: u32,
    },
}

/// The registration's clock: refresh time, back-off, validity. Pure: every
/// method takes `now`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The lifetime we ask for (raised by a 423).
    expires: u32,
    /// Failed tries in a row.
    failures: u32,
    /// Until when the last granted registration holds.
    valid_until: Option<Instant>,
}

impl Schedule {
    /// A schedule asking for `expires` seconds.
    pub fn new(expires: u32) -> Schedule {
        Schedule {
            expires: expires.max(1),
            failures: 0,
            valid_until: None,
        }
    }

    /// The lifetime the next REGISTER asks for.
    pub fn expires(&self) -> u32 {
        self.expires
    }

    /// Failed tries in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a granted registration still holds at `now`.
    pub fn is_registered(&self, now: Instant) -> bool {
        self.valid_until.is_some_and(|u| now < u)
    }

    /// Takes in how a REGISTER sent at `now` ended; says when to send the
    /// next one. A refresh comes at [`REFRESH_AT_PERCENT`] of the granted
    /// lifetime (at least a second before it ends); a failure waits
    /// [`RETRY_FIRST`], doubling to [`RETRY_MAX`], but never past the end of
    /// a registration that still holds.
    pub fn on_answer(&mut self, now: Instant, answer: &Answer) -> Next {
        match *answer {
            Answer::Registered { granted } => {
                self.failures = 0;
                let granted = granted.max(1);
                self.valid_until = Some(now + Duration::from_secs(granted as u64));
                let lifetime = Duration::from_secs(granted as u64);
                let refresh = (lifetime * REFRESH_AT_PERCENT / 100)
                    .min(lifetime.saturating_sub(Duration::from_secs(1)))
                    .max(Duration::from_millis(500));
                Next::At {
                    when: now + refresh,
                    expires: self.expires,
                }
            }
            Answer::TooBrief { min_expires } => {
                self.expires = self.expires.max(min_expires);
                Next::At {
                    when: now,
                    expires: self.expires,
                }
            }
            Answer::Refused { .. } | Answer::Failed => {
                let wait = RETRY_FIRST
                    .saturating_mul(1u32 << self.failures.min(16))
                    .min(RETRY_MAX);
                self.failures = self.failures.saturating_add(1);
                let mut when = now + wait;
                if let Some(until) = self.valid_until.filter(|u| *u > now) {
                    // Still registered: try again before it runs out.
                    let half = (until - now) / 2;
                    when = when.min(now + half.max(Duration::from_millis(500)));
                }
                Next::At {
                    when,
                    expires: self.expires,
                }
            }
        }
    }
}

/// The registration state for the metrics: 0 not configured, 1 not
/// registered, 2 registered.
static GAUGE: AtomicU8 = AtomicU8::new(0);

/// Whether the process's SIP gateway is registered at its trunk (None when
/// `[sip] register` is off): the `duecall_sip_registered` gauge.
pub fn registration_gauge() -> Option<bool> {
    match GAUGE.load(Ordering::Relaxed) {
        0 => None,
        v => Some(v == 2),
    }
}

/// One trunk's registration state, shared with its driver (and, by the
/// trunk's name, with `/metrics`).
#[derive(Debug)]
pub struct RegState {
    state: AtomicU8,
    stats: Arc<super::stats::TrunkStats>,
}

impl RegState {
    /// The state of a registration at the trunk whose counters are `stats`.
    pub(super) fn new(stats: Arc<super::stats::TrunkStats>) -> RegState {
        RegState {
            state: AtomicU8::new(0),
            stats,
        }
    }

    fn set(&self, registered: bool) {
        let v = if registered { 2 } else { 1 };
        self.state.store(v, Ordering::Relaxed);
        GAUGE.store(v, Ordering::Relaxed);
        self.stats.set_registered(Some(registered));
    }

    /// Whether the gateway is registered now.
    pub fn registered(&self) -> bool {
        self.state.load(Ordering::Relaxed) == 2
    }
}

/// How the first REGISTER ended (what start-up waits for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstOutcome {
    /// Registered.
    Registered,
    /// Refused: start-up fails.
    Refused {
        /// The status code.
        status: u16,
    },
    /// Failed for now (no answer, 5xx): retried in the background.
    Failed,
}

/// What the driver needs.
pub struct Registrar {
    /// The gateway's endpoint.
    pub endpoint: EndpointInnerRef,
    /// Request-URI of the REGISTER (`sip:domain[:port]`).
    pub server: rsipstack::sip::Uri,
    /// Where to send it when not to the Request-URI's host.
    pub outbound_proxy: Option<std::net::SocketAddr>,
    /// Digest user and password.
    pub credential: Credential,
    /// Lifetime asked for.
    pub expires: u32,
    /// Our Contact, when the stack's own (the UDP address) will not do.
    pub contact: Option<rsipstack::sip::Uri>,
    /// The trunk's name, for the logs.
    pub trunk: String,
}

/// Registers, refreshes and retries until `stop`, then un-registers.
/// `first` hears how the first REGISTER ended.
pub async fn run(
    r: Registrar,
    state: Arc<RegState>,
    stop: CancellationToken,
    first: oneshot::Sender<FirstOutcome>,
) {
    let mut first = Some(first);
    let who = mask_uri(&format!(
        "sip:{}@{}",
        r.credential.username, r.server.host_with_port
    ));
    let mut reg = Registration::new(r.endpoint.clone(), Some(r.credential.clone()));
    reg.outbound_proxy = r.outbound_proxy;
    reg.contact = r.contact.clone().map(|uri| rsipstack::sip::typed::Contact {
        display_name: None,
        uri,
        params: vec![],
    });
    let mut schedule = Schedule::new(r.expires);
    state.set(false);
    let mut was_registered = false;
    loop {
        let now = Instant::now();
        let asked = schedule.expires();
        // A registration that lapses while this REGISTER is still out (a
        // registrar that went away can keep it waiting up to
        // REGISTER_TIMEOUT) shows as lapsed at once, not when it ends.
        let mut lapse = schedule_lapse(&schedule, now, schedule.is_registered(now));
        let res = {
            let sent = tokio::time::timeout(
                REGISTER_TIMEOUT,
                reg.register(r.server.clone(), Some(asked)),
            );
            tokio::pin!(sent);
            loop {
                tokio::select! {
                    res = &mut sent => break Some(res),
                    _ = sleep_opt(lapse), if lapse.is_some() => {
                        lapse = None;
                        if state.registered() {
                            state.set(false);
                            was_registered = false;
                            tracing::warn!(trunk = %r.trunk, aor = %who, "no longer registered at the trunk (the refresh is still unanswered)");
                        }
                    }
                    _ = stop.cancelled() => break None,
                }
            }
        };
        let Some(res) = res else { break };
        let answer = match res {
            Ok(Ok(resp)) => {
                let min = resp.headers.iter().find_map(|h| match h {
                    Header::MinExpires(m) => m.value().trim().parse::<u32>().ok(),
                    _ => None,
                });
                let status = u16::from(resp.status_code.clone());
                if status >= 300 {
                    tracing::debug!(status, "REGISTER answered");
                }
                Answer::from_status(status, reg.expires(), min)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "REGISTER failed");
                Answer::Failed
            }
            Err(_) => Answer::Failed,
        };
        let next = schedule.on_answer(now, &answer);
        let registered = schedule.is_registered(Instant::now());
        match &answer {
            Answer::Registered { granted } => {
                if !was_registered || first.is_some() {
                    tracing::info!(trunk = %r.trunk, aor = %who, granted_s = granted, "registered at the trunk");
                } else {
                    tracing::debug!(trunk = %r.trunk, aor = %who, granted_s = granted, "registration refreshed");
                }
            }
            Answer::TooBrief { min_expires } => {
                tracing::info!(trunk = %r.trunk, aor = %who, min_expires, "registrar wants a longer lifetime; asking again");
            }
            Answer::Refused { status } => {
                tracing::error!(trunk = %r.trunk, aor = %who, status, failures = schedule.failures(),
                    "registration refused: check the trunk's user and password");
            }
            Answer::Failed => {
                tracing::warn!(trunk = %r.trunk, aor = %who, failures = schedule.failures(), still_registered = registered,
                    "registration failed; retrying with back-off");
            }
        }
        if was_registered && !registered {
            tracing::warn!(trunk = %r.trunk, aor = %who, "no longer registered at the trunk");
        }
        was_registered = registered;
        state.set(registered);
        if !matches!(answer, Answer::TooBrief { .. }) {
            if let Some(tx) = first.take() {
                let _ = tx.send(match answer {
                    Answer::Registered { .. } => FirstOutcome::Registered,
                    Answer::Refused { status } => FirstOutcome::Refused { status },
                    _ => FirstOutcome::Failed,
                });
            }
        }
        let Next::At { when, .. } = next;
        // A registration that lapses while we wait shows in the gauge.
        let lapse = schedule_lapse(&schedule, now, registered);
        tokio::select! {
            _ = tokio::time::sleep_until(when) => {}
            _ = sleep_opt(lapse), if lapse.is_some() && lapse < Some(when) => {
                state.set(false);
                tracing::warn!(trunk = %r.trunk, aor = %who, "no longer registered at the trunk");
                was_registered = false;
                tokio::select! {
                    _ = tokio::time::sleep_until(when) => {}
                    _ = stop.cancelled() => break,
                }
            }
            _ = stop.cancelled() => break,
        }
    }
    if was_registered || state.registered() {
        let res =
            tokio::time::timeout(UNREGISTER_WAIT, reg.register(r.server.clone(), Some(0))).await;
        match res {
            Ok(Ok(resp)) if resp.status_code == StatusCode::OK => {
                tracing::info!(trunk = %r.trunk, aor = %who, "un-registered from the trunk")
            }
            Ok(Ok(resp)) => {
                tracing::warn!(trunk = %r.trunk, aor = %who, status = %resp.status_code, "un-REGISTER refused")
            }
            _ => tracing::warn!(trunk = %r.trunk, aor = %who, "un-REGISTER got no answer"),
        }
    }
    state.set(false);
}

/// When the current registration runs out, if it holds at `now`.
fn schedule_lapse(s: &Schedule, now: Instant, registered: bool) -> Option<Instant> {
    if registered {
        s.valid_until.filter(|u| *u > now)
    } else {
        None
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: &Next) -> Instant {
        let Next::At { when, .. } = n;
        *when
    }

    #[test]
    fn a_granted_registration_is_refreshed_at_85_percent_of_what_was_granted() {
        let t0 = Instant::now();
        let mut s = Schedule::new(3600);
        let n = s.on_answer(t0, &Answer::Registered { granted: 600 });
        assert_eq!(at(&n) - t0, Duration::from_secs(510));
        assert!(s.is_registered(t0 + Duration::from_secs(599)));
        assert!(!s.is_registered(t0 + Duration::from_secs(600)));
    }

    #[test]
    fn a_short_lifetime_is_refreshed_before_it_ends() {
        let t0 = Instant::now();
        let mut s = Schedule::new(5);
        let n = s.on_answer(t0, &Answer::Registered { granted: 5 });
        let wait = at(&n) - t0;
        assert!(
            wait >= Duration::from_secs(3) && wait <= Duration::from_secs(4),
            "{wait:?}"
        );
        let mut s = Schedule::new(1);
        let n = s.on_answer(t0, &Answer::Registered { granted: 1 });
        assert!(at(&n) - t0 < Duration::from_secs(1));
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap_and_success_resets_it() {
        let mut now = Instant::now();
        let mut s = Schedule::new(3600);
        let mut waits = Vec::new();
        for _ in 0..10 {
            let n = s.on_answer(now, &Answer::Failed);
            waits.push((at(&n) - now).as_secs());
            now = at(&n);
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert!(!s.is_registered(now));
        s.on_answer(now, &Answer::Registered { granted: 60 });
        assert_eq!(s.failures(), 0);
        let n = s.on_answer(now, &Answer::Failed);
        assert_eq!(at(&n) - now, RETRY_FIRST, "back-off starts over");
    }

    #[test]
    fn a_failed_refresh_retries_before_the_registration_runs_out() {
        let t0 = Instant::now();
        let mut s = Schedule::new(60);
        s.on_answer(t0, &Answer::Registered { granted: 60 });
        // Refresh at 51 s fails five times: the retries stay inside the 9 s left.
        let mut now = t0 + Duration::from_secs(51);
        for _ in 0..5 {
            let n = s.on_answer(now, &Answer::Failed);
            assert!(at(&n) < t0 + Duration::from_secs(60), "retry after expiry");
            assert!(s.is_registered(now));
            now = at(&n);
        }
    }

    #[test]
    fn interval_too_brief_asks_again_at_once_with_the_registrars_minimum() {
        let t0 = Instant::now();
        let mut s = Schedule::new(30);
        let n = s.on_answer(t0, &Answer::TooBrief { min_expires: 120 });
        assert_eq!(
            n,
            Next::At {
                when: t0,
                expires: 120
            }
        );
        // A smaller minimum never lowers what we ask for.
        s.on_answer(t0, &Answer::TooBrief { min_expires: 60 });
        assert_eq!(s.expires(), 120);
    }

    #[test]
    fn statuses_are_told_apart_refused_from_failed() {
        assert_eq!(
            Answer::from_status(200, 300, None),
            Answer::Registered { granted: 300 }
        );
        for s in [401, 403, 404, 407] {
            assert_eq!(
                Answer::from_status(s, 0, None),
                Answer::Refused { status: s }
            );
        }
        for s in [408, 480, 500, 503, 604] {
            assert_eq!(Answer::from_status(s, 0, None), Answer::Failed, "{s}");
        }
        assert_eq!(
            Answer::from_status(423, 0, Some(90)),
            Answer::TooBrief { min_expires: 90 }
        );
        assert_eq!(Answer::from_status(423, 0, None), Answer::Failed);
    }
}
