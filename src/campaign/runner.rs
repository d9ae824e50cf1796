//! The campaign runner: the thin tokio driver around the pure
//! [`Scheduler`](super::scheduler::Scheduler). It owns the loop that moves
//! time and calls: it adapts the scheduler's `Gate` to the real compliance
//! gate (store history and account state into `policy::decide`), writes the
//! policy decision to the store before each INVITE leaves, starts each
//! conversation (`Agent::call`) under a semaphore of `max_concurrent`
//! permits, records every outcome, paces, and shuts down gracefully.
//!
//! It never decides whether a dial is lawful (the policy does), who is next
//! (the scheduler does) or what is said (the dialogue does); and it never
//! logs a full phone number or name.
//!
//! The store is synchronous SQLite; its calls are short (one row, one
//! account's history) and run under `block_in_place` so the runtime moves
//! other tasks off the worker meanwhile.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::scheduler::{
    CampaignAccount, Gate, GateAnswer, RetryDelays, Scheduler, SchedulerAction, SchedulerConfig,
    SchedulerError, SchedulerEvent, Summary,
};
use crate::account::history::AttemptRecord as PolicyAttempt;
use crate::account::{mask_phone, Account};
use crate::agent::{Agent, AgentError, AttemptOutcome as AgentOutcome, CallOptions};
use crate::config::Config;
use crate::outcome::{Disposition, Route, RouteKind, SuppressScope};
use crate::policy::{self, PolicyConfig, PolicyDecision, Suppression};
use crate::store::{self, AttemptId, HistoryRow, NewEscalation, Store, StoreError, TurnRow};

/// What can stop a campaign from starting or make it end early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// The config file is unreadable or a `[sip]`/`[media]` key is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A `[campaign]` key is wrong (named in the message).
    #[error("config `campaign.{key}`: {message}")]
    Settings {
        /// The key under `[campaign]`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The `[policy]` table is wrong, or a file it reads is missing.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The accounts file cannot be used at all.
    #[error("accounts {path}: {message}")]
    Accounts {
        /// The CSV.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file named on the command line could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file the campaign writes (demo files, output) could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed (the campaign stops dialling and drains).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// SIP could not start.
    #[error(transparent)]
    Sip(#[from] crate::telephony::sip::SipError),
    /// The agent could not start (scripts, recognizer, prompt audio).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The scheduler refused its configuration.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The simulated debtors of the demo could not start.
    #[error("simulated debtors: {0}")]
    Sim(String),
}

/// `[campaign]` settings. Every key is optional; unknown keys are refused
/// by name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignSettings {
    /// Calls in flight at most (`--max-concurrent` overrides; 4).
    pub max_concurrent: usize,
    /// Calls started per second at most; 0 = unpaced (1.0).
    pub calls_per_second: f64,
    /// Calls that may start back to back after an idle spell (1).
    pub burst: u32,
    /// Seconds before retrying after `busy` (600).
    pub retry_busy_s: u64,
    /// After `no-answer` (7200).
    pub retry_no_answer_s: u64,
    /// After `voicemail` (86400: next day).
    pub retry_voicemail_s: u64,
    /// After `failed` (1800).
    pub retry_failed_s: u64,
    /// After `rejected` (7200).
    pub retry_rejected_s: u64,
    /// After `cancelled` (1800).
    pub retry_cancelled_s: u64,
    /// After an answered call routed `retry` without a time (7200).
    pub retry_answered_s: u64,
    /// Dials per account in one run at most (none: the policy caps and
    /// `--until` are the limits).
    pub max_attempts: Option<u32>,
    /// Request-URI template; `{phone}` is the E.164 number, `{digits}` the
    /// same without `+` (`sip:{phone}@127.0.0.1:5060`).
    pub dial_uri: String,
    /// Request-URIs by account id or E.164 number, over the template (the
    /// demo points each account at a simulated debtor this way).
    pub dial_uri_by_account: HashMap<String, String>,
    /// On Ctrl-C, how long calls in flight may take to end (60).
    pub shutdown_grace_s: u64,
    /// When the gate denies without a usable time, ask again after (60).
    pub recheck_s: u64,
    /// Seconds between progress lines when stderr is not a terminal (10).
    pub progress_s: u64,
    /// How long a run lasts when `--until` is not given, hours (12).
    pub run_hours: u64,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings {
            max_concurrent: 4,
            calls_per_second: 1.0,
            burst: 1,
            retry_busy_s: 600,
            retry_no_answer_s: 7200,
            retry_voicemail_s: 86400,
            retry_failed_s: 1800,
            retry_rejected_s: 7200,
            retry_cancelled_s: 1800,
            retry_answered_s: 7200,
            max_attempts: None,
            dial_uri: DEFAULT_DIAL_URI.into(),
            dial_uri_by_account: HashMap::new(),
            shutdown_grace_s: 60,
            recheck_s: 60,
            progress_s: 10,
            run_hours: 12,
        }
    }
}

/// The Request-URI template when neither config nor `--trunk` gives one.
pub const DEFAULT_DIAL_URI: &str = "sip:{phone}@127.0.0.1:5060";

fn settings_err(key: &str, message: impl Into<String>) -> CampaignError {
    CampaignError::Settings {
        key: key.into(),
        message: message.into(),
    }
}

impl CampaignSettings {
    /// Reads `[campaign]` from a loaded config (defaults when absent) and
    /// checks it.
    pub fn from_config(config: &Config) -> Result<CampaignSettings, CampaignError> {
        let s: CampaignSettings = match &config.campaign {
            None => CampaignSettings::default(),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| settings_err("*", e.to_string()))?,
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks values whose type is right but whose meaning is not.
    pub fn validate(&self) -> Result<(), CampaignError> {
        if self.max_concurrent == 0 || self.max_concurrent > 10_000 {
            return Err(settings_err(
                "max_concurrent",
                format!("1..=10000 calls (got {})", self.max_concurrent),
            ));
        }
        if !self.calls_per_second.is_finite()
            || self.calls_per_second < 0.0
            || self.calls_per_second > 1e6
        {
            return Err(settings_err(
                "calls_per_second",
                format!(
                    "a rate in 0..=1e6 calls per second, 0 for unpaced (got {})",
                    self.calls_per_second
                ),
            ));
        }
        if self.burst == 0 {
            return Err(settings_err("burst", "at least 1"));
        }
        if self.recheck_s == 0 {
            return Err(settings_err("recheck_s", "at least 1 second"));
        }
        if self.progress_s == 0 {
            return Err(settings_err("progress_s", "at least 1 second"));
        }
        if self.max_attempts == Some(0) {
            return Err(settings_err(
                "max_attempts",
                "at least 1 (leave it out for no limit)",
            ));
        }
        check_template(&self.dial_uri).map_err(|m| settings_err("dial_uri", m))?;
        Ok(())
    }

    /// The scheduler's retry delays.
    pub fn retry_delays(&self) -> RetryDelays {
        let s = |v: u64| Duration::seconds(v.min(i64::MAX as u64 / 2_000) as i64);
        RetryDelays {
            busy: s(self.retry_busy_s),
            no_answer: s(self.retry_no_answer_s),
            voicemail: s(self.retry_voicemail_s),
            failed: s(self.retry_failed_s),
            rejected: s(self.retry_rejected_s),
            cancelled: s(self.retry_cancelled_s),
            answered: s(self.retry_answered_s),
        }
    }

    /// The scheduler configuration for a run ending at `until`.
    pub fn scheduler_config(&self, until: DateTime<Utc>) -> SchedulerConfig {
        SchedulerConfig {
            max_concurrent: self.max_concurrent,
            calls_per_second: if self.calls_per_second > 0.0 {
                Some(self.calls_per_second)
            } else {
                None
            },
            burst: self.burst,
            retry: self.retry_delays(),
            until,
            max_attempts: self.max_attempts,
            recheck: Duration::seconds(self.recheck_s.min(86_400 * 365) as i64),
        }
    }
}

fn check_template(t: &str) -> Result<(), String> {
    if !(t.starts_with("sip:") || t.starts_with("sips:")) {
        return Err(format!(
            "a SIP URI template such as {DEFAULT_DIAL_URI:?} (got {t:?})"
        ));
    }
    if !t.contains("{phone}") && !t.contains("{digits}") {
        return Err(format!(
            "the template must contain {{phone}} or {{digits}} (got {t:?})"
        ));
    }
    Ok(())
}

/// How each number becomes a Request-URI.
#[derive(Debug, Clone, PartialEq)]
pub struct DialPlan {
    /// Template with `{phone}` / `{digits}`.
    pub template: String,
    /// Fixed URIs by account id or by E.164 number (the number wins).
    pub overrides: HashMap<String, String>,
}

impl DialPlan {
    /// A plan from a template (`sip:{phone}@host:port`, or a bare
    /// `host:port` meaning `sip:{phone}@host:port`).
    pub fn new(template: &str) -> Result<DialPlan, CampaignError> {
        let t = template.trim();
        let t = if t.starts_with("sip:") || t.starts_with("sips:") {
            t.to_string()
        } else {
            format!("sip:{{phone}}@{t}")
        };
        check_template(&t).map_err(|m| settings_err("dial_uri", m))?;
        Ok(DialPlan {
            template: t,
            overrides: HashMap::new(),
        })
    }

    /// The Request-URI for `phone` of `account`.
    pub fn uri_for(&self, account_id: &str, phone: &str) -> String {
        if let Some(u) = self
            .overrides
            .get(phone)
            .or_else(|| self.overrides.get(account_id))
        {
            return u.clone();
        }
        let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
        self.template
            .replace("{phone}", phone)
            .replace("{digits}", &digits)
    }
}

/// The campaign's clock: the real one, or a fixed anchor plus the real time
/// elapsed since the run started (`--now`, for tests and replays).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Option<(DateTime<Utc>, tokio::time::Instant)>,
}

impl Clock {
    /// The real clock.
    pub fn real() -> Clock {
        Clock { anchor: None }
    }

    /// `at` now, moving on with real time.
    pub fn anchored(at: DateTime<Utc>) -> Clock {
        Clock {
            anchor: Some((at, tokio::time::Instant::now())),
        }
    }

    /// The campaign's present moment.
    pub fn now(&self) -> DateTime<Utc> {
        match self.anchor {
            None => Utc::now(),
            Some((at, started)) => {
                at + Duration::from_std(started.elapsed()).unwrap_or_else(|_| Duration::zero())
            }
        }
    }
}

/// Runs a synchronous store call without stalling the runtime's other tasks
/// (on a multi-threaded runtime; a current-thread runtime just runs it).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

// ------------------------------------------------------------------- the gate

/// Converts the store's history rows of one account into the policy's shape.
pub fn policy_history(account_id: &str, rows: &[HistoryRow]) -> Vec<PolicyAttempt> {
    rows.iter()
        .map(|r| PolicyAttempt {
            account_id: account_id.to_string(),
            phone: r.phone.clone(),
            at: r.at,
            disposition: r.disposition,
            conversation: r.conversation,
        })
        .collect()
}

/// Converts what the store knows about an account into the policy's state.
pub fn policy_state(s: &store::AccountState) -> policy::AccountState {
    let mut suppressions: Vec<Suppression> = s
        .suppressed_numbers
        .iter()
        .map(|n| Suppression {
            scope: SuppressScope::Number,
            number: Some(n.clone()),
            reason: "stored".into(),
        })
        .collect();
    if s.suppressed_account {
        suppressions.push(Suppression {
            scope: SuppressScope::Account,
            number: None,
            reason: "stored".into(),
        });
    }
    policy::AccountState {
        suppressions,
        pause_until: s.pause_until,
        callback_at: s.callback_at,
        ..policy::AccountState::default()
    }
}

/// The scheduler's `Gate` over the real policy: every question reads the
/// account's history and state from the store (so a decision made a moment
/// ago, an outcome just recorded, a pause a route left, all count), and the
/// allowed decision is kept for the runner to store before the INVITE.
pub struct PolicyGate {
    store: Store,
    accounts: Vec<Account>,
    zones: Vec<Vec<chrono_tz::Tz>>,
    /// E.164 number -> every account id in the store using it (per-number
    /// caps count every dial to the number, whoever it was about).
    by_phone: HashMap<String, Vec<String>>,
    policy: PolicyConfig,
    last_allowed: Mutex<Option<(usize, String, PolicyDecision)>>,
    errors: Mutex<Vec<StoreError>>,
}

impl PolicyGate {
    /// A gate for `accounts` (campaign order) reading `store`. `known` are
    /// all accounts in the store, for numbers shared between debts.
    pub fn new(
        store: Store,
        accounts: Vec<Account>,
        known: &[Account],
        policy: PolicyConfig,
    ) -> PolicyGate {
        let zones = accounts
            .iter()
            .map(|a| crate::account::tz::zones_for(a).0)
            .collect();
        let mut by_phone: HashMap<String, Vec<String>> = HashMap::new();
        for a in known.iter().chain(accounts.iter()) {
            for p in std::iter::once(&a.phone).chain(a.alt_phones.iter()) {
                let v = by_phone.entry(p.clone()).or_default();
                if !v.contains(&a.account_id) {
                    v.push(a.account_id.clone());
                }
            }
        }
        PolicyGate {
            store,
            accounts,
            zones,
            by_phone,
            policy,
            last_allowed: Mutex::new(None),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// The decision that allowed the last `Dial` for `account_idx` on `phone`.
    pub fn take_allowed(&self, account_idx: usize, phone: &str) -> Option<PolicyDecision> {
        let mut g = self.last_allowed.lock().ok()?;
        match g.take() {
            Some((i, p, d)) if i == account_idx && p == phone && d.allowed() => Some(d),
            _ => None,
        }
    }

    /// Store errors met while deciding (each such question was denied).
    pub fn take_errors(&self) -> Vec<StoreError> {
        self.errors
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// The policy decision for one number of one account at `now`.
    pub fn decision(
        &self,
        account_idx: usize,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<PolicyDecision, StoreError> {
        let account = &self.accounts[account_idx];
        let mut history = policy_history(
            &account.account_id,
            &self.store.history_for(&account.account_id)?,
        );
        if let Some(others) = self.by_phone.get(phone) {
            for other in others.iter().filter(|o| **o != account.account_id) {
                let rows: Vec<HistoryRow> = self
                    .store
                    .history_for(other)?
                    .into_iter()
                    .filter(|r| r.phone == phone)
                    .collect();
                history.extend(policy_history(other, &rows));
            }
        }
        let state = policy_state(&self.store.account_state(&account.account_id)?);
        // The question is about this number only: the gate then checks its
        // per-number caps and suppression, and the debt's caps as a whole.
        let view = Account {
            phone: phone.to_string(),
            alt_phones: Vec::new(),
            ..account.clone()
        };
        Ok(policy::decide(
            &view,
            &self.zones[account_idx],
            &history,
            &state,
            &self.policy,
            now,
        ))
    }
}

impl Gate for PolicyGate {
    fn decide(&self, account_idx: usize, phone: &str, now: DateTime<Utc>) -> GateAnswer {
        if account_idx >= self.accounts.len() {
            return GateAnswer::deny(None);
        }
        match self.decision(account_idx, phone, now) {
            Ok(d) if d.allowed() => {
                if let Ok(mut g) = self.last_allowed.lock() {
                    *g = Some((account_idx, phone.to_string(), d));
                }
                GateAnswer::allow()
            }
            Ok(d) => GateAnswer::deny(d.next_allowed_at),
            Err(e) => {
                tracing::error!(account = %self.accounts[account_idx].account_id, error = %e, "store read failed: not dialling");
                if let Ok(mut errs) = self.errors.lock() {
                    errs.push(e);
                }
                GateAnswer::deny(None)
            }
        }
    }
}

// ---------------------------------------------------------------- outcomes

/// One attempt of this run, for the summary and the demo's table.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptResult {
    /// Store id.
    pub attempt_id: AttemptId,
    /// The account.
    pub account_id: String,
    /// The number dialled (E.164; mask it before logging).
    pub phone: String,
    /// How it ended.
    pub disposition: Disposition,
    /// Short reason (`failed`, `cancelled`).
    pub reason: Option<String>,
    /// The deciding intent.
    pub intent: Option<String>,
    /// The last reply heard.
    pub heard: Option<String>,
    /// Where the case goes.
    pub route: Option<Route>,
    /// Two-channel recording.
    pub recording: Option<PathBuf>,
    /// The outcome JSON written next to the recording.
    pub outcome_file: Option<PathBuf>,
}

/// An attempt found in flight at start-up (the last run died).
#[derive(Debug, Clone, Serialize)]
pub struct RecoveredAttempt {
    /// Store id (now `failed_by_crash`, reason `crash`).
    pub attempt_id: AttemptId,
    /// The account.
    pub account_id: String,
    /// Recordings found for it and repaired.
    pub recordings: Vec<PathBuf>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignSummary {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The database file.
    pub database: PathBuf,
    /// Where recordings and outcome JSON went.
    pub recordings: Option<PathBuf>,
    /// The run's start and end on the campaign clock.
    pub started_at: DateTime<Utc>,
    /// End of the run.
    pub ended_at: DateTime<Utc>,
    /// The scheduler's final counts (by disposition and by route).
    pub scheduler: Summary,
    /// Every attempt of this run, in the order they ended.
    pub attempts: Vec<AttemptResult>,
    /// Attempts of a crashed run, recovered at start-up.
    pub recovered: Vec<RecoveredAttempt>,
    /// Whether the run was stopped (Ctrl-C) rather than finished.
    pub interrupted: bool,
}

impl CampaignSummary {
    /// The summary in a few lines for a person.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = &self.scheduler;
        writeln!(
            out,
            "campaign {}: {} accounts, {} dials, {} done ({} blocked by the rules), {} left for a later run",
            if self.interrupted { "stopped" } else { "finished" },
            s.total,
            s.dials,
            s.done,
            s.blocked,
            s.remaining
        )?;
        let mut d: Vec<_> = s
            .by_disposition
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        d.sort();
        writeln!(out, "by disposition: {}", join_counts(&d))?;
        let mut r: Vec<_> = s
            .by_route
            .iter()
            .map(|(k, v)| (route_kind_str(*k), *v))
            .collect();
        r.sort();
        writeln!(out, "by route: {}", join_counts(&r))?;
        if !self.recovered.is_empty() {
            let n: usize = self.recovered.iter().map(|r| r.recordings.len()).sum();
            writeln!(
                out,
                "recovered after a crash: {} attempts (failed, reason crash), {n} recordings repaired",
                self.recovered.len()
            )?;
        }
        if let Some(t) = s.next_at {
            writeln!(
                out,
                "next allowed dial: {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )?;
        }
        writeln!(out, "database: {}", self.database.display())?;
        if let Some(r) = &self.recordings {
            writeln!(out, "recordings and outcomes: {}", r.display())?;
        }
        Ok(())
    }
}

fn join_counts(v: &[(&str, u64)]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The spelling of a route kind in JSON and the store.
pub fn route_kind_str(k: RouteKind) -> &'static str {
    match k {
        RouteKind::Agent => "agent",
        RouteKind::Pause => "pause",
        RouteKind::Suppress => "suppress",
        RouteKind::Retry => "retry",
        RouteKind::Done => "done",
    }
}

/// The store's turn rows for an outcome's turns.
pub fn turn_rows(outcome: &AgentOutcome) -> Vec<TurnRow> {
    outcome
        .turns
        .iter()
        .map(|t| TurnRow {
            prompt: t.prompt.clone(),
            played_ms: t.played_ms,
            finished: t.finished,
            heard: t.heard.clone(),
            intent: t.intent.map(|i| i.as_str().to_string()),
            confidence: t.confidence,
            start_ms: t.prompt_start_ms,
            end_ms: t.end_ms.unwrap_or(t.prompt_start_ms + t.played_ms),
        })
        .collect()
}

/// The escalations an outcome leaves for the collectors: every one the
/// conversation raised, and one for an agent route that no collector took
/// live (no transfer tried, or it failed) when the conversation raised none.
pub fn escalations_for(
    outcome: &AgentOutcome,
    attempt: AttemptId,
    now: DateTime<Utc>,
) -> Vec<NewEscalation> {
    let transcript = serde_json::to_value(&outcome.turns).unwrap_or(serde_json::Value::Null);
    let recording = outcome
        .call
        .recording
        .as_ref()
        .map(|p| p.display().to_string());
    let intent = outcome.intent.map(|i| i.as_str().to_string());
    let mk = |reason: &str, summary: &str| NewEscalation {
        account_id: outcome.account_id.clone(),
        attempt_id: Some(attempt),
        reason: reason.to_string(),
        intent: intent.clone(),
        summary: summary.to_string(),
        transcript: transcript.clone(),
        recording: recording.clone(),
        created_at: now,
    };
    let mut out: Vec<NewEscalation> = outcome
        .escalations
        .iter()
        .map(|e| mk(&e.reason, &e.summary))
        .collect();
    if out.is_empty() {
        if let Some(r) = outcome
            .route
            .as_ref()
            .filter(|r| r.kind == RouteKind::Agent)
        {
            let transferred = outcome.call.transfer.as_ref().is_some_and(|t| t.ok);
            if !transferred {
                let why = match &outcome.call.transfer {
                    Some(t) => format!(
                        "transfer to an agent failed ({})",
                        t.error.as_deref().unwrap_or("no result")
                    ),
                    None => "no live transfer was possible".to_string(),
                };
                out.push(mk(
                    &r.reason,
                    &format!("account {}: {}; {why}", outcome.account_id, r.reason),
                ));
            }
        }
    }
    out
}

/// The store's outcome for a conversation that ended.
pub fn store_outcome(
    outcome: &AgentOutcome,
    attempt: AttemptId,
    now: DateTime<Utc>,
) -> store::AttemptOutcome {
    let reason = outcome
        .call
        .reason
        .and_then(|r| serde_json::to_value(r).ok())
        .and_then(|v| v.as_str().map(str::to_string));
    let mut escalations = escalations_for(outcome, attempt, now);
    store::AttemptOutcome {
        disposition: outcome.call.disposition,
        reason,
        sip_status: outcome.call.sip_status,
        ended_at: now,
        conversation: outcome.conversation,
        outcome_json: serde_json::to_value(outcome).unwrap_or(serde_json::Value::Null),
        recording: outcome
            .call
            .recording
            .as_ref()
            .map(|p| p.display().to_string()),
        turns: turn_rows(outcome),
        route: outcome.route.clone(),
        escalation: if escalations.is_empty() {
            None
        } else {
            Some(escalations.remove(0))
        },
    }
}

/// The store's outcome for an attempt that never got to talk: the agent
/// failed, the task died, or shutdown cut it.
pub fn store_failure(
    disposition: Disposition,
    reason: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> store::AttemptOutcome {
    store::AttemptOutcome {
        disposition,
        reason: Some(reason.to_string()),
        sip_status: None,
        ended_at: now,
        conversation: false,
        outcome_json: serde_json::json!({ "error": detail, "reason": reason, "disposition": disposition }),
        recording: None,
        turns: Vec::new(),
        route: None,
        escalation: None,
    }
}

/// Recordings the agent wrote for an attempt: `<account>-<attempt>-<stamp>.wav`
/// in the recording directory (the agent's naming, with the account id made
/// file-safe the same way).
pub fn recordings_of(dir: &Path, account_id: &str, attempt: AttemptId) -> Vec<PathBuf> {
    let safe: String = account_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let prefix = format!("{safe}-{attempt}-");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "wav")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- the loop

/// Everything one run needs, ready to go.
pub struct CampaignSetup {
    /// The agent that holds each conversation (its gateway places the calls).
    pub agent: Arc<Agent>,
    /// The data directory (the store is `<dir>/duecall.db`).
    pub data_dir: PathBuf,
    /// The accounts of this run (already in the store).
    pub accounts: Vec<Account>,
    /// The compliance rules.
    pub policy: PolicyConfig,
    /// `[campaign]` settings (max_concurrent already overridden by flags).
    pub settings: CampaignSettings,
    /// Request-URIs.
    pub dial: DialPlan,
    /// The campaign clock.
    pub clock: Clock,
    /// No dial starts at or after this moment.
    pub until: DateTime<Utc>,
    /// Where recordings and outcome JSON go (None: not recorded).
    pub record_dir: Option<PathBuf>,
    /// Show a live progress line (stderr is a terminal) or plain lines.
    pub progress: Progress,
}

/// How progress is shown while the campaign runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A line redrawn in place on stderr (a terminal).
    Live,
    /// A plain line on stderr every `progress_s`.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// `Live` when stderr is a terminal, else `Lines`.
    pub fn detect() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Live
        } else {
            Progress::Lines
        }
    }
}

/// How a run is stopped from outside: `stop` ends dialling and lets calls
/// end within the grace period; `abort` also cuts the calls still going.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop dialling; calls in flight may end within the grace period.
    pub stop: CancellationToken,
    /// Cut calls still in flight now (a second Ctrl-C).
    pub abort: CancellationToken,
}

struct Flight {
    account_idx: usize,
    attempt: AttemptId,
    phone: String,
}

type CallResult = Result<AgentOutcome, AgentError>;

/// Marks what a crashed run left in flight as failed attempts (they still
/// count) and repairs their recordings.
pub fn recover(
    store: &mut Store,
    record_dir: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Vec<RecoveredAttempt>, StoreError> {
    let ids = store.recover_after_crash(now)?;
    let mut out = Vec::new();
    for id in ids {
        let Some(rec) = store.attempt(id)? else {
            continue;
        };
        let mut recordings = Vec::new();
        if let Some(dir) = record_dir {
            for p in recordings_of(dir, &rec.account_id, id) {
                match crate::media::recorder::repair(&p) {
                    Ok(_) => recordings.push(p),
                    Err(e) => {
                        tracing::warn!(attempt = %id, error = %e, "recording of a crashed attempt could not be repaired")
                    }
                }
            }
        }
        tracing::warn!(attempt = %id, account = %rec.account_id, repaired = recordings.len(), "attempt in flight at a crash recorded as failed (reason crash)");
        out.push(RecoveredAttempt {
            attempt_id: id,
            account_id: rec.account_id,
            recordings,
        });
    }
    Ok(out)
}

/// Runs a campaign to its end: until the scheduler finishes (nothing more
/// allowed before `until`), or `shutdown` stops it. Crash recovery runs
/// first. Every dial's decision is in the store before the call starts, and
/// every call that started has its outcome recorded before this returns.
pub async fn run(
    setup: CampaignSetup,
    shutdown: Shutdown,
) -> Result<CampaignSummary, CampaignError> {
    let CampaignSetup {
        agent,
        data_dir,
        accounts,
        policy,
        settings,
        dial,
        clock,
        until,
        record_dir,
        progress,
    } = setup;
    let started_at = clock.now();
    let mut writer = blocking(|| Store::open(&data_dir))?;
    let database = writer.path().to_path_buf();
    let recovered = blocking(|| recover(&mut writer, record_dir.as_deref(), started_at))?;
    let reader = blocking(|| Store::open(&data_dir))?;
    let known = blocking(|| reader.accounts())?;
    let campaign_accounts: Vec<CampaignAccount> = accounts
        .iter()
        .map(|a| {
            let mut phones = vec![a.phone.clone()];
            for p in &a.alt_phones {
                if !phones.contains(p) {
                    phones.push(p.clone());
                }
            }
            CampaignAccount {
                account_id: a.account_id.clone(),
                phones,
            }
        })
        .collect();
    let gate = PolicyGate::new(reader, accounts.clone(), &known, policy);
    let mut sched = Scheduler::new(campaign_accounts, settings.scheduler_config(until), gate)?;
    let permits = Arc::new(Semaphore::new(settings.max_concurrent));
    let mut calls: JoinSet<CallResult> = JoinSet::new();
    let mut flights: HashMap<tokio::task::Id, Flight> = HashMap::new();
    let mut results: Vec<AttemptResult> = Vec::new();
    let mut fatal: Option<CampaignError> = None;
    let mut interrupted = false;
    let grace = StdDuration::from_secs(settings.shutdown_grace_s);
    let mut grace_deadline: Option<tokio::time::Instant> = None;
    let tick = match progress {
        Progress::Live => StdDuration::from_millis(500),
        _ => StdDuration::from_secs(settings.progress_s),
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    let mut display = ProgressLine::new(progress);

    let summary = loop {
        if let Some(e) = sched.gate_mut().take_errors().into_iter().next() {
            if fatal.is_none() {
                fatal = Some(e.into());
            }
            sched.stop();
        }
        let now = clock.now();
        let action = blocking(|| sched.poll(now));
        let wait_until = match action {
            SchedulerAction::Dial { account_idx, phone } => {
                let account = &accounts[account_idx];
                let Some(decision) = sched.gate_mut().take_allowed(account_idx, &phone) else {
                    // Never dial without the decision in hand: a driver bug.
                    tracing::error!(account = %account.account_id, "dial without a stored decision refused");
                    let _ = sched.handle(
                        now,
                        SchedulerEvent::CallEnded {
                            account: account_idx,
                            disposition: Disposition::Cancelled,
                            route: None,
                        },
                    );
                    continue;
                };
                let decision_json =
                    serde_json::to_value(&decision).unwrap_or(serde_json::Value::Null);
                let recorded = blocking(|| {
                    let id =
                        writer.record_decision(&account.account_id, &phone, now, &decision_json)?;
                    writer.mark_dialling(id, clock.now())?;
                    Ok::<_, StoreError>(id)
                });
                let attempt = match recorded {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::error!(account = %account.account_id, error = %e, "cannot store the decision: not dialling, stopping");
                        let _ = sched.handle(
                            now,
                            SchedulerEvent::CallEnded {
                                account: account_idx,
                                disposition: Disposition::Cancelled,
                                route: None,
                            },
                        );
                        sched.stop();
                        fatal.get_or_insert(e.into());
                        continue;
                    }
                };
                // The scheduler already keeps to max_concurrent; the permit
                // makes it a hard bound whatever the scheduler says.
                let permit = permits.clone().acquire_owned().await.ok();
                let opts = CallOptions {
                    to: dial.uri_for(&account.account_id, &phone),
                    now: clock.now(),
                    attempt_id: Some(attempt.0),
                    policy: Some(decision_json),
                    record_dir: record_dir.clone(),
                    case_id: Some(format!("{}-{}", account.account_id, attempt)),
                };
                tracing::info!(account = %account.account_id, phone = %mask_phone(&phone), attempt = %attempt, "dialling");
                let agent = agent.clone();
                let acc = account.clone();
                let handle = calls.spawn(async move {
                    let r = agent.call(&acc, opts).await;
                    drop(permit);
                    r
                });
                flights.insert(
                    handle.id(),
                    Flight {
                        account_idx,
                        attempt,
                        phone,
                    },
                );
                let _ = sched.handle(
                    clock.now(),
                    SchedulerEvent::CallStarted {
                        account: account_idx,
                    },
                );
                continue;
            }
            SchedulerAction::Finished(s) => break s,
            SchedulerAction::WaitUntil(t) => Some(t),
            SchedulerAction::WaitForCalls => None,
        };

        let sleep_for = wait_until
            .map(|t| (t - now).to_std().unwrap_or(StdDuration::ZERO))
            .unwrap_or(StdDuration::from_secs(3600))
            .min(StdDuration::from_secs(60));
        let grace_sleep = async move {
            match grace_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            joined = calls.join_next_with_id(), if !calls.is_empty() => {
                let Some(joined) = joined else { continue };
                let now = clock.now();
                let (id, result) = match joined {
                    Ok((id, r)) => (id, Ok(r)),
                    Err(e) => (e.id(), Err(e)),
                };
                let Some(f) = flights.remove(&id) else { continue };
                let account = &accounts[f.account_idx];
                let (outcome, event_route, res) = match result {
                    Ok(Ok(o)) => {
                        let so = store_outcome(&o, f.attempt, now);
                        let extra = escalations_for(&o, f.attempt, now).into_iter().skip(1).collect::<Vec<_>>();
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
                            outcome_file: o.call.recording.as_ref().map(|p| p.with_extension("json")),
                        };
                        (so, (o.route.clone(), extra), res)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(account = %account.account_id, attempt = %f.attempt, error = %e, "call could not be placed");
                        let reason = if matches!(e, AgentError::Sip(_)) { "network" } else { "agent" };
                        let so = store_failure(Disposition::Failed, reason, &e.to_string(), now);
                        (so.clone(), (None, vec![]), failure_result(&f, account, &so))
                    }
                    Err(e) => {
                        let (d, reason) = if e.is_cancelled() { (Disposition::Cancelled, "shutdown") } else { (Disposition::Failed, "agent-panic") };
                        tracing::warn!(account = %account.account_id, attempt = %f.attempt, "call task ended without an outcome ({reason})");
                        let mut so = store_failure(d, reason, &e.to_string(), now);
                        if let Some(dir) = &record_dir {
                            // A cut call still has its audio up to the cut.
                            let recs = recordings_of(dir, &account.account_id, f.attempt);
                            for p in &recs {
                                let _ = crate::media::recorder::repair(p);
                            }
                            so.recording = recs.first().map(|p| p.display().to_string());
                        }
                        (so.clone(), (None, vec![]), failure_result(&f, account, &so))
                    }
                };
                let (route, extra) = event_route;
                let stored = blocking(|| {
                    writer.record_outcome(f.attempt, &outcome)?;
                    for e in &extra {
                        writer.add_escalation(e)?;
                    }
                    Ok::<_, StoreError>(())
                });
                if let Err(e) = stored {
                    tracing::error!(attempt = %f.attempt, error = %e, "cannot record the outcome: stopping");
                    sched.stop();
                    fatal.get_or_insert(e.into());
                }
                tracing::info!(account = %account.account_id, attempt = %f.attempt, disposition = outcome.disposition.as_str(),
                    route = route.as_ref().map(|r| route_kind_str(r.kind)).unwrap_or("-"), "call ended");
                results.push(res);
                let _ = sched.handle(now, SchedulerEvent::CallEnded {
                    account: f.account_idx,
                    disposition: outcome.disposition,
                    route,
                });
            }
            _ = tokio::time::sleep(sleep_for), if wait_until.is_some() => {}
            _ = shutdown.stop.cancelled(), if !interrupted => {
                interrupted = true;
                sched.stop();
                grace_deadline = Some(tokio::time::Instant::now() + grace);
                display.message(&format!(
                    "stopping: no new calls; {} in flight may take up to {} s to end (Ctrl-C again to cut them)",
                    calls.len(), grace.as_secs()
                ));
            }
            _ = shutdown.abort.cancelled(), if grace_deadline.is_some() && !calls.is_empty() => {
                calls.abort_all();
                grace_deadline = None;
            }
            _ = grace_sleep, if !calls.is_empty() => {
                display.message("grace period over: cutting the calls still in flight");
                calls.abort_all();
                grace_deadline = None;
            }
            _ = ticker.tick() => {
                display.show(&sched.summary(), clock.now());
            }
        }
    };
    display.finish();
    let summary = CampaignSummary {
        data_dir,
        database,
        recordings: record_dir,
        started_at,
        ended_at: clock.now(),
        scheduler: summary,
        attempts: results,
        recovered,
        interrupted,
    };
    match fatal {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

fn failure_result(f: &Flight, account: &Account, so: &store::AttemptOutcome) -> AttemptResult {
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

// ---------------------------------------------------------------- progress

/// The progress line: redrawn in place on a terminal, else printed as plain
/// lines. Counts only: no numbers, no names.
struct ProgressLine {
    mode: Progress,
    drawn: bool,
}

impl ProgressLine {
    fn new(mode: Progress) -> Self {
        ProgressLine { mode, drawn: false }
    }

    fn text(s: &Summary, now: DateTime<Utc>) -> String {
        let mut d: Vec<_> = s
            .by_disposition
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        d.sort();
        let next = s
            .next_at
            .map(|t| format!(", next at {}", t.format("%H:%M:%S")))
            .unwrap_or_default();
        format!(
            "{} in flight {}, done {}/{}, remaining {}, dials {}; {}{}",
            now.format("%H:%M:%S"),
            s.in_flight,
            s.done,
            s.total,
            s.remaining,
            s.dials,
            join_counts(&d),
            next
        )
    }

    fn show(&mut self, s: &Summary, now: DateTime<Utc>) {
        let line = Self::text(s, now);
        let mut err = std::io::stderr().lock();
        match self.mode {
            Progress::Live => {
                let _ = write!(err, "\r{line}\x1b[K");
                let _ = err.flush();
                self.drawn = true;
            }
            Progress::Lines => {
                let _ = writeln!(err, "campaign: {line}");
            }
            Progress::Quiet => {}
        }
    }

    fn message(&mut self, m: &str) {
        if self.mode == Progress::Quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.drawn {
            let _ = writeln!(err);
            self.drawn = false;
        }
        let _ = writeln!(err, "campaign: {m}");
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Escalation;
    use crate::dialogue::TurnRecord;
    use crate::intent::IntentKind;
    use crate::outcome::EndedBy;
    use crate::telephony::report::{CallReport, RtpTotals, TransferReport};
    use chrono::TimeZone;
    use rust_decimal::Decimal;
    use std::sync::atomic::{AtomicU32, Ordering};

    static SEQ: AtomicU32 = AtomicU32::new(0);

    fn tmp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "duecall-runner-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn account(id: &str, phone: &str, alt: &[&str]) -> Account {
        Account {
            account_id: id.into(),
            name: "Maria Lopez".into(),
            phone: phone.into(),
            amount: Decimal::new(12550, 2),
            currency: Some("CNY".into()),
            due_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 15).unwrap(),
            timezone: Some("Asia/Shanghai".into()),
            language: crate::account::Language::En,
            jurisdiction: Some("cn".into()),
            alt_phones: alt.iter().map(|s| s.to_string()).collect(),
            days_past_due: None,
            agent_uri: None,
        }
    }

    /// 10:00 in Shanghai on a Friday, day 5 after the due date.
    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap()
    }

    fn report(disposition: Disposition, transfer: Option<TransferReport>) -> CallReport {
        CallReport {
            call_id: "c1".into(),
            to: "sip:x@127.0.0.1".into(),
            disposition,
            reason: None,
            sip_status: Some(200),
            codec: Some("PCMU".into()),
            started_at: t0(),
            answered_at: Some(t0()),
            ended_at: t0(),
            duration_ms: 1000,
            ended_by: EndedBy::Them,
            rtp: RtpTotals::default(),
            dtmf: vec![],
            transfer,
            recording: Some(PathBuf::from("/rec/A1-7-x.wav")),
            pacing: None,
        }
    }

    fn turn(prompt: &str, heard: Option<&str>, intent: Option<IntentKind>) -> TurnRecord {
        TurnRecord {
            prompt: prompt.into(),
            prompt_start_ms: 100,
            played_ms: 2000,
            finished: true,
            cut_at_ms: None,
            heard: heard.map(str::to_string),
            intent,
            confidence: intent.map(|_| 0.9),
            asr_confidence: None,
            reason: None,
            start_ms: heard.map(|_| 2500),
            end_ms: heard.map(|_| 3500),
            ignored: vec![],
        }
    }

    fn outcome(
        route: Option<Route>,
        transfer: Option<TransferReport>,
        escalations: Vec<Escalation>,
    ) -> AgentOutcome {
        AgentOutcome {
            call: report(Disposition::Answered, transfer),
            account_id: "A1".into(),
            attempt_id: Some(7),
            policy: None,
            turns: vec![
                turn("identity", Some("yes"), Some(IntentKind::IdentityConfirmed)),
                turn(
                    "reminder",
                    Some("i lost my job"),
                    Some(IntentKind::Hardship),
                ),
            ],
            route,
            amd: None,
            identity_confirmed: true,
            intent: Some(IntentKind::Hardship),
            escalations,
            conversation: true,
            refused_prompts: vec![],
            reply_timings: vec![],
        }
    }

    fn agent_route() -> Route {
        Route {
            kind: RouteKind::Agent,
            reason: "hardship".into(),
            until: None,
            scope: None,
            follow_up: None,
        }
    }

    #[test]
    fn campaign_settings_default_and_unknown_key_is_named() {
        let c = Config::from_toml("", "t").unwrap();
        let s = CampaignSettings::from_config(&c).unwrap();
        assert_eq!(
            s.retry_delays(),
            RetryDelays::default(),
            "the documented defaults: busy 10 min, no answer 2 h, voicemail next day"
        );
        let c = Config::from_toml("[campaign]\nretry_bussy_s = 5\n", "t").unwrap();
        let e = CampaignSettings::from_config(&c).unwrap_err().to_string();
        assert!(e.contains("retry_bussy_s"), "{e}");
        let c = Config::from_toml("[campaign]\nmax_concurrent = 0\n", "t").unwrap();
        let e = CampaignSettings::from_config(&c).unwrap_err().to_string();
        assert!(e.contains("campaign.max_concurrent"), "{e}");
    }

    #[test]
    fn retry_delays_and_pacing_come_from_the_campaign_table() {
        let c = Config::from_toml(
            "[campaign]\nretry_busy_s = 3\nretry_no_answer_s = 4\nretry_voicemail_s = 5\ncalls_per_second = 0\nmax_attempts = 2\n",
            "t",
        )
        .unwrap();
        let s = CampaignSettings::from_config(&c).unwrap();
        let sc = s.scheduler_config(t0());
        assert_eq!(sc.retry.busy, Duration::seconds(3));
        assert_eq!(sc.retry.no_answer, Duration::seconds(4));
        assert_eq!(sc.retry.voicemail, Duration::seconds(5));
        assert_eq!(sc.calls_per_second, None, "0 means unpaced");
        assert_eq!(sc.max_attempts, Some(2));
    }

    #[test]
    fn dial_plan_fills_the_template_and_prefers_overrides() {
        let mut p = DialPlan::new("sip:{phone}@trunk.example:5060").unwrap();
        assert_eq!(
            p.uri_for("A1", "+8613800000001"),
            "sip:+8613800000001@trunk.example:5060"
        );
        let bare = DialPlan::new("10.0.0.1:5080").unwrap();
        assert_eq!(
            bare.uri_for("A1", "+15550001"),
            "sip:+15550001@10.0.0.1:5080"
        );
        let digits = DialPlan::new("sip:{digits}@gw").unwrap();
        assert_eq!(digits.uri_for("A1", "+15550001"), "sip:15550001@gw");
        p.overrides
            .insert("A2".into(), "sip:paid@127.0.0.1:5070".into());
        p.overrides
            .insert("+15550009".into(), "sip:busy@127.0.0.1:5070".into());
        assert_eq!(p.uri_for("A2", "+15550002"), "sip:paid@127.0.0.1:5070");
        assert_eq!(
            p.uri_for("A2", "+15550009"),
            "sip:busy@127.0.0.1:5070",
            "a number's own URI wins"
        );
        assert!(
            DialPlan::new("sip:fixed@host").is_err(),
            "a template without {{phone}} would dial everyone at one URI"
        );
    }

    #[test]
    fn anchored_clock_starts_at_the_anchor_and_moves_forward() {
        let c = Clock::anchored(t0());
        let a = c.now();
        assert!(a >= t0() && a < t0() + Duration::seconds(5));
        assert!(c.now() >= a);
    }

    #[test]
    fn store_state_becomes_policy_suppressions_pause_and_callback() {
        let s = store::AccountState {
            suppressed_numbers: vec!["+111".into()],
            suppressed_account: true,
            pause_until: Some(t0()),
            callback_at: Some(t0() + Duration::hours(1)),
        };
        let p = policy_state(&s);
        assert_eq!(p.suppressions.len(), 2);
        assert!(p
            .suppressions
            .iter()
            .any(|x| x.scope == SuppressScope::Number && x.number.as_deref() == Some("+111")));
        assert!(p
            .suppressions
            .iter()
            .any(|x| x.scope == SuppressScope::Account));
        assert_eq!(p.pause_until, Some(t0()));
        assert_eq!(p.callback_at, Some(t0() + Duration::hours(1)));
    }

    #[test]
    fn agent_route_without_a_live_transfer_leaves_an_escalation() {
        let none = escalations_for(
            &outcome(Some(agent_route()), None, vec![]),
            AttemptId(7),
            t0(),
        );
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].reason, "hardship");
        assert_eq!(none[0].attempt_id, Some(AttemptId(7)));
        assert_eq!(none[0].intent.as_deref(), Some("hardship"));
        assert_eq!(none[0].recording.as_deref(), Some("/rec/A1-7-x.wav"));
        assert_eq!(
            none[0].transcript.as_array().map(|a| a.len()),
            Some(2),
            "the timed transcript goes with it"
        );

        let failed = TransferReport {
            target: "sip:agent@x".into(),
            ok: false,
            refer_status: Some(603),
            final_status: None,
            error: Some("REFER refused with 603".into()),
        };
        let f = escalations_for(
            &outcome(Some(agent_route()), Some(failed), vec![]),
            AttemptId(7),
            t0(),
        );
        assert_eq!(f.len(), 1);
        assert!(f[0].summary.contains("603"), "{}", f[0].summary);

        let ok = TransferReport {
            target: "sip:agent@x".into(),
            ok: true,
            refer_status: Some(202),
            final_status: Some(200),
            error: None,
        };
        assert!(
            escalations_for(
                &outcome(Some(agent_route()), Some(ok), vec![]),
                AttemptId(7),
                t0()
            )
            .is_empty(),
            "a collector took it live"
        );

        let raised = vec![Escalation {
            reason: "transfer-failed".into(),
            summary: "s".into(),
        }];
        let r = escalations_for(
            &outcome(Some(agent_route()), None, raised),
            AttemptId(7),
            t0(),
        );
        assert_eq!(
            r.len(),
            1,
            "the conversation's own escalation, not a second one"
        );
        assert_eq!(r[0].reason, "transfer-failed");

        let done = Route {
            kind: RouteKind::Done,
            reason: "promise".into(),
            until: None,
            scope: None,
            follow_up: None,
        };
        assert!(escalations_for(&outcome(Some(done), None, vec![]), AttemptId(7), t0()).is_empty());
    }

    #[test]
    fn store_outcome_keeps_turns_route_json_and_recording() {
        let o = outcome(Some(agent_route()), None, vec![]);
        let s = store_outcome(&o, AttemptId(7), t0());
        assert_eq!(s.disposition, Disposition::Answered);
        assert!(s.conversation);
        assert_eq!(s.turns.len(), 2);
        assert_eq!(s.turns[1].intent.as_deref(), Some("hardship"));
        assert_eq!(s.turns[1].end_ms, 3500);
        assert_eq!(s.route.as_ref().map(|r| r.kind), Some(RouteKind::Agent));
        assert_eq!(s.outcome_json["call"]["disposition"], "answered");
        assert_eq!(s.recording.as_deref(), Some("/rec/A1-7-x.wav"));
        assert!(s.escalation.is_some());
    }

    fn store_with(dir: &Path, accounts: &[Account]) -> Store {
        let mut s = Store::open(dir).unwrap();
        s.upsert_accounts(accounts, t0()).unwrap();
        s
    }

    fn ended(store: &mut Store, a: &str, phone: &str, at: DateTime<Utc>, d: Disposition) {
        let id = store
            .record_decision(a, phone, at, &serde_json::json!({"decision": "allow"}))
            .unwrap();
        store.mark_dialling(id, at).unwrap();
        store
            .record_outcome(id, &store_failure(d, "test", "", at))
            .unwrap();
    }

    #[test]
    fn gate_counts_every_dial_to_a_shared_number_and_keeps_the_allowed_decision() {
        let dir = tmp_dir("gate");
        let a = account("A", "+8613800000001", &["+8613800000002"]);
        let b = account("B", "+8613800000001", &[]);
        let mut w = store_with(&dir, &[a.clone(), b.clone()]);
        for k in 0..3 {
            ended(
                &mut w,
                "B",
                "+8613800000001",
                t0() - Duration::minutes(30 - k),
                Disposition::Busy,
            );
        }
        let known = w.accounts().unwrap();
        let gate = PolicyGate::new(
            Store::open(&dir).unwrap(),
            vec![a.clone()],
            &known,
            PolicyConfig::default(),
        );
        let shared = gate.decide(0, "+8613800000001", t0());
        assert!(
            !shared.allow,
            "cn: 3 dials today to the number, whoever they were about"
        );
        let next = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        assert_eq!(
            shared.next_allowed_at,
            Some(next),
            "08:00 Shanghai the next day"
        );
        assert!(
            gate.take_allowed(0, "+8613800000001").is_none(),
            "a denial is never kept for dialling"
        );
        let other = gate.decide(0, "+8613800000002", t0());
        assert!(other.allow);
        let d = gate
            .take_allowed(0, "+8613800000002")
            .expect("the allowed decision is kept");
        assert_eq!(d.number.as_deref(), Some("+8613800000002"));
        assert_eq!(d.account_id, "A");
        assert!(
            gate.take_allowed(0, "+8613800000002").is_none(),
            "taken once"
        );
    }

    #[test]
    fn gate_sees_a_suppression_and_a_pause_left_by_a_route() {
        let dir = tmp_dir("gate-route");
        let a = account("A", "+8613800000001", &[]);
        let mut w = store_with(&dir, std::slice::from_ref(&a));
        let gate = PolicyGate::new(
            Store::open(&dir).unwrap(),
            vec![a.clone()],
            &[],
            PolicyConfig::default(),
        );
        assert!(gate.decide(0, "+8613800000001", t0()).allow);
        let _ = gate.take_allowed(0, "+8613800000001");
        let until = t0() + Duration::days(3);
        w.add_pause("A", "promise_to_pay", until, t0()).unwrap();
        let paused = gate.decide(0, "+8613800000001", t0() + Duration::minutes(1));
        assert!(!paused.allow);
        assert!(paused.next_allowed_at.is_some_and(|t| t >= until));
        w.add_suppression("A", None, "stop_calling", t0()).unwrap();
        let stopped = gate.decide(0, "+8613800000001", t0() + Duration::minutes(2));
        assert_eq!(
            stopped,
            GateAnswer::deny(None),
            "stop calling: no time to ask again"
        );
    }

    #[test]
    fn attempts_in_flight_at_a_crash_become_failed_and_their_recordings_are_repaired() {
        let dir = tmp_dir("recover");
        let rec_dir = dir.join("recordings");
        let a = account("A/1", "+8613800000001", &[]);
        let mut w = store_with(&dir, &[a]);
        let done = w
            .record_decision("A/1", "+8613800000001", t0(), &serde_json::json!({}))
            .unwrap();
        w.mark_dialling(done, t0()).unwrap();
        w.record_outcome(done, &store_failure(Disposition::Busy, "test", "", t0()))
            .unwrap();
        let id = w
            .record_decision("A/1", "+8613800000001", t0(), &serde_json::json!({}))
            .unwrap();
        w.mark_dialling(id, t0()).unwrap();
        // The agent's name for it; the writer dies before its final header.
        let path = rec_dir.join(format!("A_1-{id}-20261120T020000Z.wav"));
        let mut r = crate::media::recorder::StereoRecorder::create(&path).unwrap();
        for _ in 0..30 {
            r.write_frame(&[100; 160], &[-100; 160]).unwrap();
        }
        std::mem::forget(r);
        std::fs::write(
            rec_dir.join(format!("A_1-{}-x.wav", id.0 + 10)),
            b"not ours",
        )
        .unwrap();

        let rec = recover(&mut w, Some(&rec_dir), t0() + Duration::minutes(1)).unwrap();
        assert_eq!(rec.len(), 1, "only the attempt still in flight");
        assert_eq!(rec[0].attempt_id, id);
        assert_eq!(rec[0].recordings, vec![path.clone()]);
        let row = w.attempt(id).unwrap().unwrap();
        assert_eq!(row.state, store::AttemptState::FailedByCrash);
        assert_eq!(row.reason.as_deref(), Some("crash"));
        assert_eq!(
            w.attempt(done).unwrap().unwrap().disposition,
            Some(Disposition::Busy),
            "ended outcomes are kept"
        );
        assert_eq!(
            w.history_for("A/1").unwrap().len(),
            2,
            "the crashed attempt still counts"
        );
        let mut reader = hound::WavReader::open(&path).expect("repaired recording opens");
        assert_eq!(reader.spec().channels, 2);
        let n = reader.samples::<i16>().filter_map(Result::ok).count();
        assert!(
            n >= 160 * 2,
            "audio up to the crash is readable ({n} samples)"
        );
    }
}
