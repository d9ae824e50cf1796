//! The stream hub: pairs a stream that has just connected (and passed
//! `auth`) with the attempt duecall placed for it, or hands it to the
//! direct-stream handler when `[gateway] allow_direct_streams` is on, or
//! refuses it.
//!
//! An originated attempt registers a `stream_id` (a random UUID: the
//! AudioSocket call id, and a Twilio/Asterisk parameter) and its
//! `attempt_id`; a stream names either in its parameters. The registration
//! is removed when the attempt stops waiting (dropped guard): a late stream
//! for an attempt that gave up is refused. Owns the waiting list only; never
//! touches a socket or the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::oneshot;

use super::driver::StreamPipe;
use super::GatewayConfig;

/// Starts the conversation of a stream no attempt was waiting for (set by
/// `duecall serve` when direct streams are allowed).
pub type DirectHandler = Arc<dyn Fn(StreamPipe) + Send + Sync>;

/// Why a stream was not taken (closed with this reason, logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It names no attempt and direct streams are off.
    #[error("the stream names no attempt duecall is waiting for (attempt_id/stream_id), and [gateway] allow_direct_streams is off")]
    UnknownAttempt,
    /// Direct streams are on but nobody runs them here.
    #[error("direct streams are allowed but this process does not run conversations for them")]
    NoDirectHandler,
}

struct Waiting {
    tx: oneshot::Sender<StreamPipe>,
    attempt_id: Option<String>,
}

/// The waiting list.
pub struct StreamHub {
    cfg: GatewayConfig,
    waiting: Mutex<HashMap<String, Waiting>>,
    direct: Mutex<Option<DirectHandler>>,
    parked: Mutex<HashMap<String, StreamPipe>>,
}

/// The target prefix that dials a parked stream (`stream:<key>`).
pub const PARKED_PREFIX: &str = "stream:";

/// Held by an attempt while it waits for its stream; dropping it removes
/// the registration.
pub struct Expected {
    hub: Arc<StreamHub>,
    stream_id: String,
    /// Fires with the stream when it connects.
    pub stream: oneshot::Receiver<StreamPipe>,
}

impl Drop for Expected {
    fn drop(&mut self) {
        if let Ok(mut w) = self.hub.waiting.lock() {
            w.remove(&self.stream_id);
        }
    }
}

impl Expected {
    /// The id the stream must present.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }
}

/// A parameter as text (platforms send strings; some send numbers).
pub fn param_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl StreamHub {
    /// An empty hub.
    pub fn new(cfg: GatewayConfig) -> Arc<StreamHub> {
        Arc::new(StreamHub {
            cfg,
            waiting: Mutex::new(HashMap::new()),
            direct: Mutex::new(None),
            parked: Mutex::new(HashMap::new()),
        })
    }

    /// The `[gateway]` settings.
    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    /// Sets who runs direct streams.
    pub fn set_direct_handler(&self, h: DirectHandler) {
        if let Ok(mut d) = self.direct.lock() {
            *d = Some(h);
        }
    }

    /// Registers an attempt waiting for its stream.
    pub fn expect(self: &Arc<Self>, stream_id: String, attempt_id: Option<i64>) -> Expected {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(
                stream_id.clone(),
                Waiting {
                    tx,
                    attempt_id: attempt_id.map(|a| a.to_string()),
                },
            );
        }
        Expected {
            hub: self.clone(),
            stream_id,
            stream: rx,
        }
    }

    /// Parks a direct stream until the agent dials it; returns the target
    /// to dial (`stream:<key>`).
    pub fn park(&self, pipe: StreamPipe) -> String {
        let key = new_stream_id();
        if let Ok(mut p) = self.parked.lock() {
            p.insert(key.clone(), pipe);
        }
        format!("{PARKED_PREFIX}{key}")
    }

    /// Takes a parked stream (`key` without the prefix).
    pub fn unpark(&self, key: &str) -> Option<StreamPipe> {
        self.parked.lock().ok().and_then(|mut p| p.remove(key))
    }

    /// Attempts waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// Takes a connected stream: to its attempt, to the direct handler, or
    /// refuses it (the pipe is dropped: its socket task closes the stream).
    pub fn arrive(&self, pipe: StreamPipe) -> Result<(), Refusal> {
        let stream_id = pipe.info.params.get("stream_id").and_then(param_text);
        let attempt_id = pipe.info.params.get("attempt_id").and_then(param_text);
        let found = self.waiting.lock().ok().and_then(|mut w| {
            let key = match &stream_id {
                Some(s) if w.contains_key(s) => Some(s.clone()),
                _ => attempt_id.as_ref().and_then(|a| {
                    w.iter()
                        .find(|(_, x)| x.attempt_id.as_deref() == Some(a.as_str()))
                        .map(|(k, _)| k.clone())
                }),
            };
            key.and_then(|k| w.remove(&k))
        });
        if let Some(waiting) = found {
            // The attempt may have given up this very moment: then the
            // stream comes back and is refused like an unknown one.
            return match waiting.tx.send(pipe) {
                Ok(()) => Ok(()),
                Err(_pipe) => Err(Refusal::UnknownAttempt),
            };
        }
        if !self.cfg.allow_direct_streams {
            return Err(Refusal::UnknownAttempt);
        }
        let handler = self.direct.lock().ok().and_then(|d| d.clone());
        match handler {
            Some(h) => {
                h(pipe);
                Ok(())
            }
            None => Err(Refusal::NoDirectHandler),
        }
    }
}

/// A fresh random (version 4) UUID.
pub fn new_stream_id() -> String {
    crate::ids::random_uuid()
}
