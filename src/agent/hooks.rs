//! What the agent tells the world while a call is still going: the moment
//! a live transfer starts (the REFER leaves), with the case so far, so that
//! a collector's desktop has the context before the call lands. The agent
//! only reports through the hook its caller gave; it never stores or sends
//! anything itself, and the hook must never block (the runner's hook puts
//! the event on a channel).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::dialogue::TurnRecord;

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
    pub transcript: Vec<TurnRecord>,
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
