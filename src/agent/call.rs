//! One attempt from start to outcome: the conversation set up for the
//! account, prompt audio ready before the INVITE, a recognizer taken from
//! the pool (opened off the async workers), the dial, the pump until the
//! leg ends, then the outcome assembled from the wire report and what the
//! conversation decided (the drivers decide nothing). The outcome JSON
//! beside the recording is the driver's to write, once its store has the
//! outcome (`campaign::persist`).

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ears::Ears;
use super::hooks::TransferReporter;
use super::prompts::Prompts;
use super::pump::Pump;
use super::timing::ReplyTiming;
use super::{recognizer, Agent, AgentError};
use crate::account::{mask_phone, Account};
use crate::dialogue::{AmdResult, CallContext, Conversation, Escalation, PromptId, Turn};
use crate::outcome::Route;
use crate::telephony::report::CallReport;
use crate::telephony::sip::DialRequest;

/// How to place one attempt.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Request-URI to dial.
    pub to: String,
    /// The moment the attempt starts (the gate's clock; `--now`).
    pub now: DateTime<Utc>,
    /// The gate's allow, already stored as an attempt: no reminder call
    /// without one (its decision and attempt id go with the outcome).
    pub dial: crate::policy::AllowedDial,
    /// Directory for the recording and the outcome JSON (None: no files).
    pub record_dir: Option<PathBuf>,
    /// Case id for the X-Duecall-Case header.
    pub case_id: Option<String>,
    /// Told when a live transfer starts (webhooks); None: nobody asks.
    pub on_transfer: Option<super::TransferHook>,
    /// Cancelled when the process shuts down: the conversation says its
    /// closing line and hangs up, and the attempt still ends with an outcome.
    pub shutdown: CancellationToken,
}

impl CallOptions {
    /// Options to call `to` at `now` as the gate allowed in `dial`; no
    /// files, no case id, no transfer hook, a token of its own.
    pub fn new(to: &str, now: DateTime<Utc>, dial: crate::policy::AllowedDial) -> CallOptions {
        CallOptions {
            to: to.to_string(),
            now,
            dial,
            record_dir: None,
            case_id: None,
            on_transfer: None,
            shutdown: CancellationToken::new(),
        }
    }
}

/// The outcome of one attempt (ARCHITECTURE.md "Shapes"): the `call`, the
/// turns, the route, and what AMD decided.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptOutcome {
    /// What happened on the wire (its disposition as the conversation
    /// settled it: a machine's answer is `voicemail`).
    pub call: CallReport,
    /// The account called.
    pub account_id: String,
    /// Store id of the attempt.
    pub attempt_id: Option<i64>,
    /// The decision that allowed the dial.
    pub policy: Option<serde_json::Value>,
    /// Prompts and replies.
    pub turns: Vec<Turn>,
    /// Where the case goes.
    pub route: Option<Route>,
    /// Answering-machine detection.
    pub amd: Option<AmdResult>,
    /// Was the right person confirmed?
    pub identity_confirmed: bool,
    /// The deciding intent.
    pub intent: Option<crate::intent::IntentKind>,
    /// Escalations for the collectors (the conversation decided every one).
    pub escalations: Vec<Escalation>,
    /// Did the callee talk with us (a conversation, for the caps)?
    pub conversation: bool,
    /// Why the conversation ended the call early (`shutdown`, `max-call-length`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_short: Option<String>,
    /// Debt prompts the guard refused (must stay empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused_prompts: Vec<PromptId>,
    /// Per reply answered by a prompt: where the reply latency went.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reply_timings: Vec<ReplyTiming>,
    /// Audio frames the recognizer was too busy to take.
    #[serde(skip_serializing_if = "is_zero")]
    pub asr_frames_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Agent {
    /// Places one reminder call to `account` and holds the whole
    /// conversation; returns when the call is over.
    pub async fn call(
        &self,
        account: &Account,
        opts: CallOptions,
    ) -> Result<AttemptOutcome, AgentError> {
        let lang = account.language;
        let kit = self.kit(lang)?;
        let zone = crate::account::tz::zones_for(account)
            .0
            .first()
            .copied()
            .unwrap_or(chrono_tz::UTC);
        let local: DateTime<FixedOffset> = opts.now.with_timezone(&zone).fixed_offset();
        let call = CallContext {
            started_at: local,
            case_id: opts.case_id.clone(),
            transfer_timeout_ms: self.transfer_timeout_ms,
        };
        let conv = Conversation::new(
            kit.script.clone(),
            account.clone(),
            self.dialogue.clone(),
            call,
            kit.understand.clone(),
        );
        // Every prompt this call can reach, rendered before the INVITE leaves.
        let prompts = Prompts::prepare(&conv, kit).await?;
        let rec = self.take_recognizer(lang).await?;
        let (asr_tx, asr_rx) = mpsc::channel(64);
        let (asr, asr_thread) = recognizer::spawn(rec, asr_tx)
            .map_err(|e| AgentError::Audio(format!("cannot start the recognizer thread: {e}")))?;

        let record = match &opts.record_dir {
            Some(d) => {
                tokio::fs::create_dir_all(d)
                    .await
                    .map_err(|source| AgentError::Write {
                        path: d.clone(),
                        source,
                    })?;
                let stem = super::attempt_file_stem(
                    &account.account_id,
                    Some(opts.dial.attempt_id()),
                    opts.now,
                );
                Some(d.join(format!("{stem}.wav")))
            }
            None => None,
        };
        let mut req = DialRequest::to(&opts.to);
        req.record = record;
        req.attempt_id = Some(opts.dial.attempt_id());
        req.caller_id = account.caller_id.clone().or_else(|| self.caller_id.clone());
        tracing::info!(account = %account.account_id, phone = %mask_phone(&account.phone), "placing reminder call");
        let t0 = Instant::now();
        let leg = self.gateway.dial(req).await?;

        let mut pump = Pump::new(
            conv,
            leg,
            kit,
            Ears::new(&self.dialogue),
            (asr, asr_rx),
            prompts,
            opts.shutdown.clone(),
            t0,
        );
        pump.transfers = opts.on_transfer.clone().map(|hook| TransferReporter {
            hook,
            account_id: account.account_id.clone(),
            attempt_id: Some(opts.dial.attempt_id()),
            placed_at: opts.now,
        });
        if self.transfer_mode == crate::telephony::bridge::TransferMode::Bridge {
            pump.bridger = Some(super::pump::Bridger {
                gateway: self.gateway.clone(),
                attempt_id: Some(opts.dial.attempt_id()),
                // Under the conversation's transfer timeout, so that the
                // collector's CANCEL reaches it before its own timer.
                ring_timeout: std::time::Duration::from_millis(
                    self.transfer_timeout_ms.saturating_sub(1000).max(1000),
                ),
            });
        }
        let ran = pump.run().await;
        let Pump {
            conv, asr, timings, ..
        } = pump;
        let asr_frames_dropped = asr.dropped_frames;
        drop(asr);
        if let Ok(Ok(rec)) = tokio::task::spawn_blocking(move || asr_thread.join()).await {
            self.give_back(lang, rec);
        }
        let mut call = ran?;

        let out = conv.into_outcome();
        let conversation = out.was_conversation(call.disposition);
        call.disposition = out.attempt_disposition(call.disposition);
        let answered = out.disposition.is_some();
        let route = match out.route {
            None if !answered => {
                crate::dialogue::routing::route_unanswered(call.disposition, call.reason)
            }
            r => r,
        };
        let outcome = AttemptOutcome {
            call,
            account_id: account.account_id.clone(),
            attempt_id: Some(opts.dial.attempt_id()),
            policy: serde_json::to_value(opts.dial.decision()).ok(),
            turns: out.turns,
            route,
            amd: answered.then_some(out.amd),
            identity_confirmed: out.identity_confirmed,
            intent: out.intent,
            escalations: out.escalations,
            conversation,
            cut_short: out.cut_short,
            refused_prompts: out.refused_prompts,
            reply_timings: timings.done,
            asr_frames_dropped,
        };
        Ok(outcome)
    }
}
