//! What the runner does as calls end: the transfers they started go to
//! the outbox, each outcome is stored (or kept in `pending/` and retried
//! while the database refuses it), and the scheduler is told.

use std::path::PathBuf;

use crate::account::Account;
use crate::agent::{AgentError, TransferStarted};
use crate::campaign::hooks;
use crate::campaign::outcomes::{store_failure, AttemptResult};
use crate::campaign::persist::{publish_ended, write_outcome_file};
use crate::campaign::recovery::recordings_of;
use crate::campaign::scheduler::SchedulerEvent;
use crate::outcome::Disposition;
use crate::store::{self, AttemptId};

use super::{blocking, CallResult, Flight, Runner};

impl Runner {
    /// Stores a transfer that just started as a `transfer.started` event
    /// (webhooks), in the order of the call's other events. A store that
    /// refuses loses the event, never the call.
    pub(super) fn transfer_started(&mut self, t: TransferStarted) {
        let Some(attempt) = t.attempt_id.map(AttemptId) else {
            return;
        };
        let data = serde_json::json!({
            "attempt_id": attempt.0,
            "account_id": t.account_id,
            "agent_uri": t.agent_uri,
            "intent": t.intent,
            "reason": t.reason,
            "transcript": t.transcript,
        });
        let key = store::outbox::attempt_order_key(attempt);
        let writer = &mut self.writer;
        let stored = blocking(|| {
            writer.enqueue_event(store::outbox::EventKind::TransferStarted, t.at, &key, data)
        });
        if let Err(e) = stored {
            tracing::error!(attempt = %attempt, error = %e, "cannot store the transfer.started event");
        }
    }

    /// Tries the outcomes the database refused again.
    pub(super) fn retry_unstored(&mut self) {
        let (writer, unstored) = (&mut self.writer, &mut self.unstored);
        if let Err(e) = blocking(|| unstored.retry(writer, &self.data_dir)) {
            tracing::warn!(waiting = unstored.len(), error = %e, "the database still refuses outcomes; retrying");
        }
    }

    /// Records how a call ended and tells the scheduler.
    pub(super) fn call_ended(
        &mut self,
        joined: Result<(tokio::task::Id, CallResult), tokio::task::JoinError>,
    ) {
        // A transfer the call reported comes before its end.
        while let Ok(t) = self.transfers.try_recv() {
            self.transfer_started(t);
        }
        let now = self.clock.now();
        let (id, result) = match joined {
            Ok((id, r)) => (id, Ok(r)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(f) = self.flights.remove(&id) else {
            return;
        };
        let account = &self.accounts[f.account_idx];
        let mut qa_json = None;
        let (outcome, route, mut res) = match result {
            Ok(Ok((o, so))) => {
                qa_json = Some(so.outcome_json.clone());
                let res = AttemptResult {
                    attempt_id: f.attempt,
                    account_id: account.account_id.clone(),
                    phone: f.phone.clone(),
                    disposition: so.disposition,
                    reason: so.reason.clone(),
                    intent: o.intent.map(|i| i.as_str().to_string()),
                    heard: o.turns.iter().rev().find_map(|t| t.heard.clone()),
                    route: o.route.clone(),
                    recording: o.call.recording.clone(),
                    outcome_file: None,
                };
                (so, o.route.clone(), res)
            }
            Ok(Err(e)) => {
                tracing::warn!(account = %account.account_id, attempt = %f.attempt, error = %e, "call could not be placed");
                let reason = if matches!(e, AgentError::Gateway(_)) {
                    "network"
                } else {
                    "agent"
                };
                let so = store_failure(Disposition::Failed, reason, &e.to_string(), now);
                let res = failure_result(&f, account, &so);
                (so, None, res)
            }
            Err(e) => {
                let (d, reason) = if e.is_cancelled() {
                    (Disposition::Cancelled, "shutdown")
                } else {
                    (Disposition::Failed, "agent-panic")
                };
                tracing::warn!(account = %account.account_id, attempt = %f.attempt, "call task ended without an outcome ({reason})");
                let mut so = store_failure(d, reason, &e.to_string(), now);
                if let Some(dir) = &self.record_dir {
                    // A cut call still has its audio up to the cut.
                    let recs = recordings_of(dir, &account.account_id, f.attempt);
                    for p in &recs {
                        let _ = crate::media::recorder::repair(p);
                    }
                    so.recording = recs.first().map(|p| p.display().to_string());
                }
                let res = failure_result(&f, account, &so);
                (so, None, res)
            }
        };
        // A finished recording goes where every node finds it, before the
        // row that names it is stored.
        let mut outcome = outcome;
        if self.shared_recordings.is_some() && outcome.recording.is_some() {
            let shared = self.shared_recordings.as_deref();
            blocking(|| publish_ended(&mut outcome, f.attempt, shared));
            if let Some(p) = &outcome.recording {
                res.recording = Some(PathBuf::from(p));
            }
        }
        // The database first; the JSON beside the recording only after it.
        let (writer, unstored) = (&mut self.writer, &mut self.unstored);
        let stored = blocking(|| {
            unstored.record(
                writer,
                &self.data_dir,
                f.attempt,
                &account.account_id,
                outcome.clone(),
            )
        });
        if stored.is_ok() {
            hooks::reached("stored", &self.data_dir, f.attempt);
        }
        if let (Some(rec), Some(json)) = (&res.recording, &qa_json) {
            res.outcome_file = write_outcome_file(rec, json);
        }
        tracing::info!(account = %account.account_id, attempt = %f.attempt, disposition = outcome.disposition.as_str(),
            route = route.as_ref().map(|r| r.kind.as_str()).unwrap_or("-"), "call ended");
        self.attempts_ended += 1;
        if self.keep_attempts {
            self.results.push(res);
        }
        let _ = self.sched.handle(
            now,
            SchedulerEvent::CallEnded {
                account: f.account_idx,
                disposition: outcome.disposition,
                route,
            },
        );
    }
}

fn failure_result(f: &Flight, account: &Account, so: &store::EndedAttempt) -> AttemptResult {
    AttemptResult {
        attempt_id: f.attempt,
        account_id: account.account_id.clone(),
        phone: f.phone.clone(),
        disposition: so.disposition,
        reason: so.reason.clone(),
        intent: None,
        heard: None,
        route: None,
        recording: so.recording.as_ref().map(PathBuf::from),
        outcome_file: None,
    }
}
