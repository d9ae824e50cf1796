//! What the agent tells the world while a call is still going: the moment
//! a live transfer starts (the REFER leaves), with the case so far, so that
//! a collector's desktop has the context before the call lands. The agent
//! only reports through the hook its caller gave; it never stores or sends
//! anything itself, and the hook must never block (the runner's hook puts
//! the event on a channel).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::dialogue::{DialogueOutcome, Turn};

/// A live transfer started: the REFER toward the collector left.
#[derive(Debug, Clone)]
pub struct TransferStarted {
    /// The account on the call.
    pub account_id: String,
    /// The store's attempt id.
    pub attempt_id: Option<i64>,
    /// Where the call goes (agent or queue URI).
    pub agent_uri: String,
    /// The intent that led to the transfer (`unknown` if none).
    pub intent: String,
    /// Why: the route's reason when one is decided, else the intent.
    pub reason: String,
    /// When (the call's clock).
    pub at: DateTime<Utc>,
    /// The timed transcript so far, both sides.
    pub transcript: Vec<Turn>,
}

/// Called when a transfer starts; must return at once.
#[derive(Clone)]
pub struct TransferHook(pub Arc<dyn Fn(TransferStarted) + Send + Sync>);

impl TransferHook {
    /// A hook from a closure.
    pub fn new(f: impl Fn(TransferStarted) + Send + Sync + 'static) -> TransferHook {
        TransferHook(Arc::new(f))
    }
}

impl std::fmt::Debug for TransferHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransferHook")
    }
}

/// The pump's way to report a transfer: the caller's hook and the call's ids.
pub(super) struct TransferReporter {
    pub hook: TransferHook,
    pub account_id: String,
    pub attempt_id: Option<i64>,
    /// When the call was placed (the gate's clock).
    pub placed_at: DateTime<Utc>,
}

impl TransferReporter {
    /// Tells the hook a transfer to `agent_uri` starts `call_ms` into the
    /// call, with the case as the conversation has it so far.
    pub fn report(&self, so_far: DialogueOutcome, agent_uri: &str, call_ms: u64) {
        let intent = so_far
            .intent
            .map(|i| i.as_str().to_string())
            .unwrap_or_else(|| "unknown".into());
        (self.hook.0)(TransferStarted {
            account_id: self.account_id.clone(),
            attempt_id: self.attempt_id,
            agent_uri: agent_uri.to_string(),
            reason: so_far
                .route
                .as_ref()
                .map(|r| r.reason.clone())
                .unwrap_or_else(|| intent.clone()),
            intent,
            at: self.placed_at
                + chrono::Duration::milliseconds(call_ms.min(i64::MAX as u64) as i64),
            transcript: so_far.turns,
        });
    }
}
