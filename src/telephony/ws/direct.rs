//! Direct streams: a stream that names no attempt duecall placed (the
//! platform dialled on its own, or the debtor called in), accepted only
//! with `[gateway] allow_direct_streams = true`. The account comes in the
//! stream's parameters (the account JSON fields: `account_id`, `name`,
//! `phone`, `amount`, ...). The conversation is stored like any attempt: a
//! row in the data directory's store, its recording, transcript and route.
//!
//! Owns turning a direct stream into an attempt: the account read from the
//! parameters (a bad one refuses the stream, naming the field), the store
//! rows, and handing the stream to the agent through the gateway as a
//! `stream:<key>` target. It never bypasses the compliance gate: the
//! account goes through `campaign::gate` like any dial (the platform placed
//! the call, but duecall is about to talk about a debt on it), and a denied
//! stream is closed with the gate's reason before a word is played. On
//! shutdown every conversation says its closing line and hangs up, and new
//! streams are refused; `DirectRunner::wait` lets the process wait for
//! their outcomes before it exits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::driver::{Outgoing, StreamPipe};
use super::hub::{DirectHandler, StreamHub, PARKED_PREFIX};
use super::origination::{dial_if_parked, StreamDialError};
use crate::account::{mask_phone, Account};
use crate::agent::{Agent, CallOptions};
use crate::campaign::gate::{claim_with, decide_on_store, settle_due, NotClaimedNow};
use crate::campaign::owner::{DataDirOwner, DataDirUse};
use crate::campaign::persist::write_outcome_file;
use crate::policy::{AllowedDial, PolicyConfig, PolicyDecision, Refused};
use crate::store::{AttemptId, Location, StoreError};
use crate::telephony::gateway::{DialFuture, Gateway, GatewayError};

/// The stream parameters that are not account fields.
const NOT_ACCOUNT: &[&str] = &["attempt_id", "stream_id", "token"];

/// Reads the account from a direct stream's parameters; the error names
/// the field that is wrong.
pub fn account_from_params(params: &Map<String, Value>) -> Result<Account, String> {
    let fields: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| !NOT_ACCOUNT.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !fields.contains_key("account_id") {
        return Err("the stream's parameters carry no account_id (a direct stream brings its account's JSON fields)".into());
    }
    let de = serde_json::Value::Object(fields);
    serde_path_to_error::deserialize::<_, Account>(&de).map_err(|e| {
        let path = e.path().to_string();
        format!("account field `{path}`: {}", e.into_inner())
    })
}

/// The gate's answer for a direct stream: the dial it allows (its
/// decision stored, the attempt marked dialling), or why not.
pub enum DirectVerdict {
    /// Allowed: converse, and store the outcome on this attempt, holding
    /// the data directory (`hold`) until the outcome is stored.
    Allowed {
        /// The dial the gate allowed.
        dial: AllowedDial,
        /// The stream's share of the process's hold on the data directory.
        hold: DataDirUse,
    },
    /// Denied: the stream is refused with this reason (the failed rules and
    /// the next allowed time, or the call in flight), nothing is played.
    Denied(String),
}

/// Puts a direct stream's account to the compliance gate, exactly as a
/// campaign dial: the account is put in the store, its ended pauses
/// settled, and the dial claimed (`gate::claim_with`) under the store's
/// write lock: refused while the account or the number the platform is
/// connected to (`phone`) has a call in flight (the service's campaign is
/// dialling it, or another stream is on it), otherwise decided on what the
/// store knows (its attempts, every dial to the number, suppressions, the
/// do-not-call list, pauses, holds, calling hours, caps) with no other
/// decision able to come in between, and an allow stored as the attempt
/// before anything is played. The stream holds the data directory through
/// `owner`, shared with the service's dialler (a campaign dialling does
/// not refuse it); another process dialling from the directory does.
pub fn gate_direct(
    owner: &Arc<DataDirOwner>,
    at: &Location,
    account: &Account,
    policy: &PolicyConfig,
    now: DateTime<Utc>,
) -> Result<DirectVerdict, String> {
    let hold = owner.enter().map_err(|e| match e {
        StoreError::Locked { pid, .. } => format!(
            "the gate cannot decide: another process{} dials from this data directory",
            pid.map(|p| format!(" (PID {p})")).unwrap_or_default()
        ),
        e => format!("the data directory: {e}"),
    })?;
    let stored = |e: StoreError| format!("the store: {e}");
    let mut store = at.open().map_err(stored)?;
    // The attempt names this node, whose lease the owner keeps while the
    // stream holds the directory: no other node takes the call for a dead one.
    if let Some(node) = owner.node() {
        store.act_for(&node);
    }
    store
        .upsert_accounts(std::slice::from_ref(account), now)
        .map_err(stored)?;
    settle_due(&mut store, account, policy, now).map_err(stored)?;
    let reader = at.open().map_err(stored)?;
    // The platform is connected to this number: the question is about it.
    let view = Account {
        alt_phones: Vec::new(),
        ..account.clone()
    };
    let zones = crate::account::tz::zones_for(account).0;
    let claimed = claim_with(&mut store, &account.account_id, &account.phone, now, || {
        decide_on_store(&reader, account, Some(&view), &zones, policy, now)
    });
    match claimed {
        Ok(dial) => {
            store
                .mark_dialling(AttemptId(dial.attempt_id()), now)
                .map_err(stored)?;
            Ok(DirectVerdict::Allowed { dial, hold })
        }
        Err(NotClaimedNow::InFlight) => Ok(DirectVerdict::Denied(format!(
            "account {} or its number has a call in flight (a campaign's or another stream's): not rung twice at once",
            account.account_id
        ))),
        Err(NotClaimedNow::Refused(Refused::Denied(d))) => {
            Ok(DirectVerdict::Denied(denial_reason(&d)))
        }
        Err(NotClaimedNow::Refused(Refused::NotStored(e))) => {
            Err(format!("the decision could not be stored: {e}"))
        }
    }
}

/// A denial in one line: the rules that failed and when a call is next
/// allowed (no phone number, no name).
pub fn denial_reason(d: &PolicyDecision) -> String {
    let failed: Vec<String> = d
        .rules
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.rule.to_string())
        .collect();
    let mut why = format!(
        "the compliance gate denies account {}: {}",
        d.account_id,
        if failed.is_empty() {
            "no number allowed".to_string()
        } else {
            failed.join(", ")
        }
    );
    if let Some(t) = d.next_allowed_at {
        why.push_str(&format!("; next allowed {}", t.to_rfc3339()));
    }
    why
}

/// A gateway that places no call of its own: it only "dials" the direct
/// streams parked in its hub (`stream:<key>` targets), for a process that
/// converses on direct streams without a SIP trunk of its own (`duecall
/// serve`, whose dialler keeps its own). Any other target is refused,
/// naming it.
pub struct ParkedStreams {
    hub: Arc<StreamHub>,
    shutdown: CancellationToken,
}

impl ParkedStreams {
    /// A gateway over `hub`; `shutdown` cuts the streamed calls it ran
    /// (each hangs up at once, no closing line). The polite end is the
    /// agent's (`CallOptions::shutdown`): give this gateway a token of its
    /// own, cancelled after the grace period, never a child of that one.
    pub fn new(hub: Arc<StreamHub>, shutdown: CancellationToken) -> ParkedStreams {
        ParkedStreams { hub, shutdown }
    }
}

impl Gateway for ParkedStreams {
    fn dial(&self, req: crate::telephony::sip::DialRequest) -> DialFuture<'_> {
        Box::pin(async move {
            match dial_if_parked(&self.hub, &req, None, &self.shutdown) {
                Some(leg) => Ok(leg?),
                None => Err(GatewayError::Stream(StreamDialError::Config {
                    key: "to".into(),
                    expected: format!(
                        "a parked direct stream ({PARKED_PREFIX}<key>): this gateway places no calls"
                    ),
                    got: mask_phone(&req.to),
                })),
            }
        })
    }

    fn kind(&self) -> &'static str {
        "stream"
    }

    fn shutdown(&self) {
        self.shutdown.cancel();
    }

    fn stream_hub(&self) -> Option<&Arc<StreamHub>> {
        Some(&self.hub)
    }
}

/// What direct conversations need.
pub struct DirectRunner {
    /// The agent (its gateway must take `stream:` targets: the
    /// `StreamGateway`, `DirectStreams` or `ParkedStreams`).
    pub agent: Arc<Agent>,
    /// The store that gets the attempt (the data directory's, or the
    /// database the service shares with other nodes).
    pub store: Location,
    /// The process's hold on the data directory, shared with its dialler.
    pub owner: Arc<DataDirOwner>,
    /// Where recordings go (None: `[recording] enabled = false`).
    pub record_dir: Option<PathBuf>,
    /// Where finished recordings go for every node (`[store] recordings`).
    pub shared_recordings: Option<PathBuf>,
    /// The compliance rules the gate applies (`[policy]`).
    pub policy: Arc<PolicyConfig>,
    /// The service's clock.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// The hub the streams are parked in.
    pub hub: Arc<super::hub::StreamHub>,
    /// Cancelled when the process shuts down: every conversation holds a
    /// child of it, says its closing line and hangs up (stored
    /// `cut_short: shutdown`).
    pub shutdown: CancellationToken,
    /// The conversations in flight (see [`DirectRunner::wait`]).
    pub tasks: TaskTracker,
}

impl DirectRunner {
    /// The handler to give the hub.
    pub fn handler(self: Arc<Self>) -> DirectHandler {
        Arc::new(move |pipe: StreamPipe| {
            let me = self.clone();
            self.tasks.spawn(async move { me.run(pipe).await });
        })
    }

    /// After `shutdown` fired: waits until every conversation in flight has
    /// said its closing line and stored its outcome, `grace` at most.
    /// Returns how many were still going when the grace ran out.
    pub async fn wait(&self, grace: Duration) -> usize {
        self.tasks.close();
        match tokio::time::timeout(grace, self.tasks.wait()).await {
            Ok(()) => 0,
            Err(_) => self.tasks.len(),
        }
    }

    async fn run(&self, pipe: StreamPipe) {
        if self.shutdown.is_cancelled() {
            tracing::info!(call_id = %pipe.info.call_id, "direct stream refused: shutting down");
            refuse(
                pipe,
                "duecall is shutting down; no new conversation starts".into(),
            );
            return;
        }
        let account = match account_from_params(&pipe.info.params) {
            Ok(a) => a,
            Err(why) => {
                tracing::warn!(call_id = %pipe.info.call_id, why = %why, "direct stream refused");
                refuse(pipe, why);
                return;
            }
        };
        let now = (self.clock)();
        let (owner, at, policy, acc) = (
            self.owner.clone(),
            self.store.clone(),
            self.policy.clone(),
            account.clone(),
        );
        let verdict =
            tokio::task::spawn_blocking(move || gate_direct(&owner, &at, &acc, &policy, now)).await;
        let (dial, hold) = match verdict {
            Ok(Ok(DirectVerdict::Allowed { dial, hold })) => (dial, hold),
            Ok(Ok(DirectVerdict::Denied(why))) => {
                tracing::info!(call_id = %pipe.info.call_id, why = %why, "direct stream refused by the gate");
                refuse(pipe, why);
                return;
            }
            Ok(Err(why)) => {
                tracing::warn!(call_id = %pipe.info.call_id, why = %why, "direct stream refused: no gate decision");
                refuse(pipe, why);
                return;
            }
            Err(e) => {
                tracing::error!(call_id = %pipe.info.call_id, error = %e, "direct stream refused: the gate's task failed");
                refuse(pipe, "the gate's task failed".into());
                return;
            }
        };
        let id = AttemptId(dial.attempt_id());
        tracing::info!(account = %account.account_id, phone = %mask_phone(&account.phone), attempt = id.0, protocol = pipe.info.protocol.name(), "direct stream: the gate allows; conversation starts");
        let key = self.hub.park(pipe);
        let opts = CallOptions {
            to: key,
            now,
            dial,
            record_dir: self.record_dir.clone(),
            case_id: Some(format!("attempt-{}", id.0)),
            on_transfer: None,
            shutdown: self.shutdown.child_token(),
        };
        let result = self.agent.call(&account, opts).await;
        let end = (self.clock)();
        let ended = match &result {
            Ok(out) => crate::campaign::outcomes::store_outcome(out, id, end),
            Err(e) => crate::campaign::outcomes::store_failure(
                crate::outcome::Disposition::Failed,
                "agent",
                &e.to_string(),
                end,
            ),
        };
        let at = self.store.clone();
        let shared = self.shared_recordings.clone();
        let saved = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut ended = ended;
            crate::campaign::persist::publish_ended(&mut ended, id, shared.as_deref());
            let recording = ended.recording.clone().map(PathBuf::from);
            let mut store = at.open().map_err(|e| e.to_string())?;
            store
                .record_outcome(id, &ended)
                .map_err(|e| e.to_string())?;
            if let Some(rec) = &recording {
                write_outcome_file(rec, &ended.outcome_json);
            }
            Ok(())
        })
        .await;
        match saved {
            Ok(Ok(())) => tracing::info!(attempt = id.0, "direct stream: outcome stored"),
            other => {
                tracing::error!(attempt = id.0, error = ?other, "direct stream: the outcome could not be stored (the outcome JSON beside the recording keeps it)")
            }
        }
        // Only now may the data directory be given back: a process taking
        // it next recovers what is still in flight.
        drop(hold);
    }
}

/// Closes a stream nobody will converse on, with the reason.
fn refuse(pipe: StreamPipe, why: String) {
    let _ = pipe.outgoing.try_send(Outgoing::Refuse(why));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_comes_from_the_parameters_and_a_bad_field_is_named() {
        let p: Map<String, Value> = serde_json::from_str(
            r#"{"attempt_id":"x","account_id":"A-9","name":"Ann Lee","phone":"+14155550123","amount":"80.00","currency":"USD","due_date":"2026-11-16","timezone":"America/Los_Angeles","language":"en"}"#,
        )
        .unwrap();
        let a = account_from_params(&p).unwrap();
        assert_eq!(a.account_id, "A-9");
        let mut bad = p.clone();
        bad.insert("due_date".into(), "tomorrow".into());
        let e = account_from_params(&bad).unwrap_err();
        assert!(e.contains("due_date"), "{e}");
        let mut none = p;
        none.remove("account_id");
        assert!(account_from_params(&none)
            .unwrap_err()
            .contains("account_id"));
    }
}
