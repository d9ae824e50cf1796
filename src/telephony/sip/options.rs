//! OPTIONS pings to each trunk (`[sip] options_ping_s`): is the carrier
//! there before we dial? A campaign whose trunk has gone away would
//! otherwise store a decision for every account it tries (each counts
//! against the caps) and fail each INVITE after its 32 s timer; with pings,
//! it stops dialling while the trunk does not answer and goes on when it
//! answers again.
//!
//! [`TrunkHealth`] is the pure part (what one answer, or its absence, means
//! for the trunk's state); [`run`] is the thin driver sending an OPTIONS on
//! the gateway's endpoint every interval. It owns no call and never ends
//! one. The state is logged at each change and published as
//! [`trunk_gauge`] (the `duecall_sip_trunk_up` metric).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::{Method, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tokio_util::sync::CancellationToken;

/// Pings in a row without an answer after which a trunk that answered
/// before counts as gone (one lost UDP datagram is not an outage).
pub const DOWN_AFTER: u32 = 2;

/// How long one OPTIONS may wait for its answer.
pub const PING_TIMEOUT: Duration = Duration::from_secs(4);

/// What one ping got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// A final answer from the trunk (any status but 503: a 404 or 405 to
    /// OPTIONS still says the trunk is there and routing).
    Answered,
    /// 503 Service Unavailable: there, but taking no calls.
    Unavailable,
    /// No answer within [`PING_TIMEOUT`], or the request could not be sent.
    NoAnswer,
}

impl Ping {
    /// Classifies a final status.
    pub fn from_status(status: u16) -> Ping {
        if status == 503 {
            Ping::Unavailable
        } else {
            Ping::Answered
        }
    }
}

/// The trunk's state as the pings tell it. Pure: no clock, no socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkHealth {
    /// `None` before the first ping's answer.
    up: Option<bool>,
    /// Pings in a row without a good answer.
    misses: u32,
}

impl TrunkHealth {
    /// Whether the trunk is taking calls: `None` before the first ping
    /// ended.
    pub fn up(&self) -> Option<bool> {
        self.up
    }

    /// Takes one ping's result; returns the new state when it changed.
    /// A trunk that never answered is down at its first miss; one that
    /// answered before after [`DOWN_AFTER`] misses in a row; a 503 means
    /// down at once (the carrier says so); any other answer, up.
    pub fn on_ping(&mut self, ping: Ping) -> Option<bool> {
        let before = self.up;
        match ping {
            Ping::Answered => {
                self.misses = 0;
                self.up = Some(true);
            }
            Ping::Unavailable => {
                self.misses += 1;
                self.up = Some(false);
            }
            Ping::NoAnswer => {
                self.misses += 1;
                if self.up != Some(true) || self.misses >= DOWN_AFTER {
                    self.up = Some(false);
                }
            }
        }
        (self.up != before).then_some(self.up == Some(true))
    }
}

static GAUGE: AtomicU8 = AtomicU8::new(0);

/// Whether the process's trunk answers its OPTIONS pings (None when
/// `[sip] options_ping_s` is off or before the first answer): the
/// `duecall_sip_trunk_up` gauge.
pub fn trunk_gauge() -> Option<bool> {
    decode(GAUGE.load(Ordering::Relaxed))
}

fn decode(v: u8) -> Option<bool> {
    match v {
        0 => None,
        v => Some(v == 2),
    }
}

/// One trunk's ping state, shared with its driver (and, by the trunk's
/// name, with `/metrics`).
#[derive(Debug)]
pub struct TrunkState {
    state: AtomicU8,
    stats: Arc<super::stats::TrunkStats>,
}

impl TrunkState {
    /// The ping state of the trunk whose counters are `stats`.
    pub(super) fn new(stats: Arc<super::stats::TrunkStats>) -> TrunkState {
        TrunkState {
            state: AtomicU8::new(0),
            stats,
        }
    }

    fn set(&self, up: Option<bool>) {
        let v = match up {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        self.state.store(v, Ordering::Relaxed);
        GAUGE.store(v, Ordering::Relaxed);
        self.stats.set_options_up(up);
    }

    /// Whether the trunk answers now (None before the first ping ended).
    pub fn up(&self) -> Option<bool> {
        decode(self.state.load(Ordering::Relaxed))
    }
}

/// Sends one OPTIONS to `target` (Request-URI `uri`) and waits for its
/// final answer.
async fn ping(endpoint: &EndpointInnerRef, uri: &rsipstack::sip::Uri, target: &SipAddr) -> Ping {
    let sent = async {
        let via = endpoint.get_via(None, None)?;
        let from = rsipstack::sip::typed::From {
            display_name: None,
            uri: uri.clone(),
            params: vec![],
        }
        .with_tag(rsipstack::transaction::make_tag());
        let to = rsipstack::sip::typed::To {
            display_name: None,
            uri: uri.clone(),
            params: vec![],
        };
        let request = endpoint.make_request(Method::Options, uri.clone(), via, from, to, 1, None);
        let key = TransactionKey::from_request(&request, TransactionRole::Client)?;
        let mut tx = Transaction::new_client(key, request, endpoint.clone(), None);
        tx.destination = Some(target.clone());
        tx.send().await?;
        while let Some(msg) = tx.receive().await {
            if let SipMessage::Response(resp) = msg {
                if resp.status_code == StatusCode::Trying {
                    continue;
                }
                return Ok(Ping::from_status(u16::from(resp.status_code)));
            }
        }
        Ok::<Ping, rsipstack::Error>(Ping::NoAnswer)
    };
    match tokio::time::timeout(PING_TIMEOUT, sent).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "OPTIONS to the trunk not sent");
            Ping::NoAnswer
        }
        Err(_) => Ping::NoAnswer,
    }
}

/// Pings `target` every `interval` until `stop`, keeping `state` (and the
/// gauge) up to date and logging each change. The first ping goes at once;
/// `first` hears when it ended, so start-up can wait for it.
pub async fn run(
    endpoint: EndpointInnerRef,
    name: String,
    target: SipAddr,
    interval: Duration,
    state: Arc<TrunkState>,
    stop: CancellationToken,
    first: tokio::sync::oneshot::Sender<()>,
) {
    let uri = match super::uri::parse_uri(&format!("sip:{}", target.addr)) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(trunk = %name, server = %target.addr, error = %e, "cannot ping the trunk");
            return;
        }
    };
    let mut first = Some(first);
    let mut health = TrunkHealth::default();
    state.set(None);
    loop {
        let result = tokio::select! {
            p = ping(&endpoint, &uri, &target) => p,
            _ = stop.cancelled() => break,
        };
        if let Some(up) = health.on_ping(result) {
            if up {
                tracing::info!(trunk = %name, server = %target.addr, "the trunk answers OPTIONS: dialling");
            } else {
                tracing::warn!(trunk = %name, server = %target.addr, ping = ?result,
                    "the trunk does not answer OPTIONS: no new calls until it does");
            }
        }
        state.set(health.up());
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => break,
        }
    }
    state.set(None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trunk_that_never_answered_is_down_at_its_first_miss() {
        let mut h = TrunkHealth::default();
        assert_eq!(h.up(), None);
        assert_eq!(h.on_ping(Ping::NoAnswer), Some(false));
        assert_eq!(h.up(), Some(false));
        assert_eq!(h.on_ping(Ping::Answered), Some(true));
    }

    #[test]
    fn one_lost_ping_is_not_an_outage_two_in_a_row_are() {
        let mut h = TrunkHealth::default();
        assert_eq!(h.on_ping(Ping::Answered), Some(true));
        assert_eq!(h.on_ping(Ping::NoAnswer), None, "still up after one miss");
        assert_eq!(h.up(), Some(true));
        assert_eq!(h.on_ping(Ping::Answered), None);
        assert_eq!(h.on_ping(Ping::NoAnswer), None);
        assert_eq!(h.on_ping(Ping::NoAnswer), Some(false), "down after two");
        assert_eq!(h.on_ping(Ping::NoAnswer), None, "no change reported twice");
        assert_eq!(
            h.on_ping(Ping::Answered),
            Some(true),
            "back at the first answer"
        );
    }

    #[test]
    fn a_503_is_down_at_once_and_any_other_answer_is_up() {
        assert_eq!(Ping::from_status(503), Ping::Unavailable);
        for s in [200, 404, 405, 481, 500] {
            assert_eq!(Ping::from_status(s), Ping::Answered, "{s}");
        }
        let mut h = TrunkHealth::default();
        h.on_ping(Ping::Answered);
        assert_eq!(h.on_ping(Ping::Unavailable), Some(false));
    }
}
