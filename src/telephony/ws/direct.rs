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
//! `stream:<key>` target. The store records that duecall did not dial: the
//! platform did, so no dial decision of duecall's gate exists for it.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::driver::StreamPipe;
use super::hub::DirectHandler;
use crate::account::{mask_phone, Account};
use crate::agent::{Agent, CallOptions};
use crate::store::Store;

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

/// What direct conversations need.
pub struct DirectRunner {
    /// The agent (its gateway must take `stream:` targets: the
    /// `StreamGateway` or `DirectStreams`).
    pub agent: Arc<Agent>,
    /// The data directory (its store gets the attempt).
    pub data_dir: PathBuf,
    /// Where recordings go.
    pub record_dir: PathBuf,
    /// The service's clock.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// The hub the streams are parked in.
    pub hub: Arc<super::hub::StreamHub>,
}

impl DirectRunner {
    /// The handler to give the hub.
    pub fn handler(self: Arc<Self>) -> DirectHandler {
        Arc::new(move |pipe: StreamPipe| {
            let me = self.clone();
            tokio::spawn(async move { me.run(pipe).await });
        })
    }

    async fn run(&self, pipe: StreamPipe) {
        let account = match account_from_params(&pipe.params) {
            Ok(a) => a,
            Err(why) => {
                // Dropping the pipe closes the stream.
                tracing::warn!(call_id = %pipe.call_id, why = %why, "direct stream refused");
                return;
            }
        };
        let now = (self.clock)();
        let decision = serde_json::json!({
            "allowed": true,
            "direct_stream": true,
            "protocol": pipe.protocol.name(),
            "platform_call_id": pipe.call_id,
            "note": "the platform placed this call and streamed it to duecall; duecall's gate did not dial it",
        });
        let data_dir = self.data_dir.clone();
        let (acc_id, phone, dec) = (
            account.account_id.clone(),
            account.phone.clone(),
            decision.clone(),
        );
        let stored = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let mut store = Store::open(&data_dir).map_err(|e| e.to_string())?;
            let id = store
                .record_decision(&acc_id, &phone, now, &dec)
                .map_err(|e| e.to_string())?;
            store.mark_dialling(id, now).map_err(|e| e.to_string())?;
            Ok(id)
        })
        .await;
        let id = match stored {
            Ok(Ok(id)) => id,
            other => {
                tracing::warn!(error = ?other.err(), "direct stream: the attempt could not be stored; refused");
                return;
            }
        };
        tracing::info!(account = %account.account_id, phone = %mask_phone(&account.phone), attempt = id.0, "direct stream: conversation starts");
        let key = self.hub.park(pipe);
        let opts = CallOptions {
            to: key,
            now,
            attempt_id: Some(id.0),
            policy: Some(decision),
            record_dir: Some(self.record_dir.clone()),
            case_id: Some(format!("attempt-{}", id.0)),
            on_transfer: None,
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
        let data_dir = self.data_dir.clone();
        let saved = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut store = Store::open(&data_dir).map_err(|e| e.to_string())?;
            store.record_outcome(id, &ended).map_err(|e| e.to_string())
        })
        .await;
        match saved {
            Ok(Ok(())) => tracing::info!(attempt = id.0, "direct stream: outcome stored"),
            other => {
                tracing::error!(attempt = id.0, error = ?other, "direct stream: the outcome could not be stored (the outcome JSON beside the recording keeps it)")
            }
        }
    }
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
