//! The campaign runner: the thin tokio driver around the pure
//! [`Scheduler`]. It owns the loop that moves time and calls: it answers
//! the scheduler's questions with the real compliance gate (`gate`), writes
//! each allowed decision to the store before the INVITE leaves, starts each
//! conversation (`Agent::call`) under a semaphore of `max_concurrent`
//! permits, records every outcome, shows progress, and shuts down
//! gracefully. With admission control on it samples the recognisers'
//! pools every [`ADMISSION_SAMPLE`] and feeds them to the scheduler
//! (`SchedulerEvent::Load`), which decides.
//!
//! It never decides whether a dial is lawful (the policy does), who is next
//! (the scheduler does) or what is said (the dialogue does); and it never
//! logs a full phone number or name.
//!
//! The store is synchronous SQLite; its calls are short (one row, one
//! account's history) and run under `block_in_place` so the runtime moves
//! other tasks off the worker meanwhile.

mod ended;
mod lease;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::admission::Load;
use super::clock::Clock;
use super::error::CampaignError;
use super::gate::{claim, settle_due, verdict, NotClaimed, PolicyGate};
use super::hooks;
use super::outcomes::{store_outcome, AttemptResult};
use super::persist::{keep_pending, Unstored};
use super::progress::{CampaignSummary, Progress, ProgressLine};
use super::recovery::{recover_as, PendingOutcome, RecoveredAttempt};
use super::scheduler::{
    CampaignAccount, RetryDelays, Scheduler, SchedulerAction, SchedulerEvent, Summary,
};
use super::settings::{CampaignSettings, DialPlan};
use crate::account::{mask_phone, Account};
use crate::agent::{
    Agent, AgentError, AttemptOutcome as AgentOutcome, CallOptions, TransferHook, TransferStarted,
};
use crate::policy::{PolicyConfig, PolicyDecision, Refused};
use crate::stats::Durations;
use crate::store::nodes::Asking;
use crate::store::{self, AttemptId, EndedAttempt, Store};

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
    /// The shared PostgreSQL database several nodes dial from (`--store`);
    /// `None`: the data directory's SQLite.
    pub store_url: Option<String>,
    /// How long this node's lease lasts without a heartbeat (`[store] lease_s`).
    pub lease: chrono::Duration,
    /// What the run takes over as it starts: `StartUp` when it alone holds
    /// the data directory (`duecall run`: this node's previous incarnation
    /// is dead), `Running` when other parts of its process may have calls
    /// in flight (`duecall serve`, whose `owner::DataDirOwner` recovered
    /// when it took the directory): only dead nodes' attempts.
    pub recovery: Asking,
    /// Keep every ended attempt for the summary (`duecall run`, the demo).
    /// `false` for a run that lasts days (`duecall serve`): the summary then
    /// counts them only, and the run's memory does not grow with its calls.
    pub keep_attempts: bool,
    /// Where finished recordings go for every node to find (`[store]
    /// recordings`); `None`: they stay in `record_dir`.
    pub shared_recordings: Option<PathBuf>,
}

/// How a run is stopped from outside. `stop` ends dialling; `end_calls`
/// also ends the calls in flight politely (each call holds a child of it:
/// its conversation says the closing line, hangs up, and the attempt is
/// stored `cut_short: shutdown`); calls still going when the grace period
/// is over, or when `abort` fires, are cut (`cancelled`).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop dialling; calls in flight run on, cut at the end of the grace
    /// period (the service's dialler restarting on a campaign change).
    pub stop: CancellationToken,
    /// Stop dialling and end every call in flight with its closing line
    /// (Ctrl-C, SIGTERM): see [`Shutdown::terminate`].
    pub end_calls: CancellationToken,
    /// Cut calls still in flight now (a second Ctrl-C).
    pub abort: CancellationToken,
}

impl Shutdown {
    /// Stops the run the graceful way: no new dial, and every call in
    /// flight says its closing line and hangs up within the grace period.
    pub fn terminate(&self) {
        // `end_calls` first: a loop woken by `stop` already sees it.
        self.end_calls.cancel();
        self.stop.cancel();
    }

    /// Resolves once dialling should stop (`stop` or `end_calls`).
    async fn stopping(&self) {
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = self.end_calls.cancelled() => {}
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

/// One call in flight.
struct Flight {
    account_idx: usize,
    attempt: AttemptId,
    phone: String,
}

/// What a call task hands back: the conversation's outcome with the store's
/// row for it (already kept in `pending/`), or why no call was held.
type CallResult = Result<(AgentOutcome, EndedAttempt), AgentError>;

/// The run's state between turns of the loop.
struct Runner {
    agent: Arc<Agent>,
    accounts: Vec<Account>,
    dial: DialPlan,
    clock: Clock,
    record_dir: Option<PathBuf>,
    /// `CampaignSetup::shared_recordings`.
    shared_recordings: Option<PathBuf>,
    data_dir: PathBuf,
    /// When a store that failed is asked again (the `recheck_s` setting).
    recheck: chrono::Duration,
    /// The retry delays the claim keeps after any node's call.
    retry: RetryDelays,
    sched: Scheduler<PolicyDecision>,
    gate: PolicyGate,
    writer: Store,
    /// Outcomes the database refused, retried until it takes them.
    unstored: Unstored,
    permits: Arc<Semaphore>,
    calls: JoinSet<CallResult>,
    flights: HashMap<tokio::task::Id, Flight>,
    results: Vec<AttemptResult>,
    fatal: Option<CampaignError>,
    /// Transfers the calls started (for `transfer.started`): the agent's
    /// hook only sends here, the loop stores them.
    transfers: tokio::sync::mpsc::UnboundedReceiver<TransferStarted>,
    transfer_hook: TransferHook,
    /// The run's `end_calls`: every call's shutdown token is a child of it.
    end_calls: CancellationToken,
    /// This node's id (its lease in `nodes`, named on its attempts).
    node: String,
    /// How long its lease lasts without a heartbeat.
    lease: chrono::Duration,
    /// The store is shared with other nodes (PostgreSQL). On the data
    /// directory's SQLite no other node can exist (`duecall.lock`), so a
    /// lease that expired while the process was paused is simply taken again.
    shared_store: bool,
    /// When this node's lease runs out unless renewed (monotonic: it runs
    /// on while the process is paused, as the lease in the store does).
    lease_deadline: std::time::Instant,
    /// How long each claim took (the summary's percentiles).
    claims: Durations,
    /// Keep each ended attempt in `results` (`CampaignSetup::keep_attempts`).
    keep_attempts: bool,
    /// How many attempts ended.
    attempts_ended: u64,
    /// Other nodes' calls taken over while running (their leases expired).
    taken_over: Vec<RecoveredAttempt>,
}

/// What the loop does after a scheduler action.
enum Next {
    /// Poll the scheduler again at once.
    Poll,
    /// Wait for a call to end, a timer, or a signal; until this moment at most.
    Wait(Option<DateTime<Utc>>),
    /// The campaign is over.
    Done(Box<Summary>),
}

/// How often the recognisers' pools are sampled for admission control.
const ADMISSION_SAMPLE: StdDuration = StdDuration::from_millis(250);

/// What the recognisers' pools say now (admission control's input).
fn pools_load() -> Load {
    Load {
        sphinx: crate::asr::sphinx::backlog(),
        whisper: crate::asr::whisper::pool::backlog(),
    }
}

/// How often outcomes the database refused are tried again.
const STORE_RETRY: StdDuration = StdDuration::from_secs(2);

/// After the last call, how long outcomes the database still refuses are
/// retried before the run gives up on them (they stay in `pending/`, and the
/// next start imports them).
const STORE_RETRY_AFTER_END: StdDuration = StdDuration::from_secs(60);

/// Runs a campaign to its end: until the scheduler finishes (nothing more
/// allowed before `until`), or `shutdown` stops it. Crash recovery runs
/// first. Every dial's decision is in the store before the call starts, and
/// every call that started has its outcome stored before this returns (or,
/// if the database refuses it to the end, kept in `pending/` and named in
/// the error; the next start imports it).
pub async fn run(
    setup: CampaignSetup,
    shutdown: Shutdown,
) -> Result<CampaignSummary, CampaignError> {
    let started_at = setup.clock.now();
    let (mut runner, recovered, database) =
        Runner::start(&setup, started_at, shutdown.end_calls.clone())?;
    let grace = StdDuration::from_secs(setup.settings.shutdown_grace_s);
    let mut grace_deadline: Option<tokio::time::Instant> = None;
    let mut interrupted = false;
    let tick = match setup.progress {
        Progress::Live => StdDuration::from_millis(500),
        _ => StdDuration::from_secs(setup.settings.progress_s),
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    let mut display = ProgressLine::new(setup.progress);

    // The heartbeat: a third of the lease, so two may be missed.
    let beat = (setup.lease / 3)
        .to_std()
        .unwrap_or(StdDuration::from_secs(10))
        .max(StdDuration::from_millis(500));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let admission = setup.settings.admission;
    let mut sample = tokio::time::interval(ADMISSION_SAMPLE);
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut give_up_storing: Option<tokio::time::Instant> = None;
    let mut lease_lost = false;
    let summary = loop {
        if !interrupted && runner.lease_ran_out() {
            // Woken after the lease ran out (paused, or the database
            // unreachable through every heartbeat): no dial, even one the
            // scheduler already allows, before the heartbeat could see it.
            interrupted = true;
            lease_lost = true;
            runner.sched.stop();
            grace_deadline = Some(tokio::time::Instant::now() + grace);
            display
                .message("lease lost: another node may take over this node's calls; no new calls");
        }
        let now = runner.clock.now();
        let wait_until = match runner.step(now).await {
            Next::Poll => continue,
            Next::Done(s) if runner.unstored.is_empty() => break *s,
            Next::Done(s) => {
                let deadline = *give_up_storing
                    .get_or_insert_with(|| tokio::time::Instant::now() + STORE_RETRY_AFTER_END);
                if tokio::time::Instant::now() >= deadline {
                    break *s;
                }
                Some(now + chrono::Duration::seconds(STORE_RETRY.as_secs() as i64))
            }
            Next::Wait(t) => t,
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
            Some(t) = runner.transfers.recv() => runner.transfer_started(t),
            joined = runner.calls.join_next_with_id(), if !runner.calls.is_empty() => {
                if let Some(joined) = joined {
                    runner.call_ended(joined);
                }
            }
            _ = tokio::time::sleep(sleep_for), if wait_until.is_some() => {}
            _ = tokio::time::sleep(STORE_RETRY), if !runner.unstored.is_empty() => {
                runner.retry_unstored();
            }
            _ = shutdown.stopping(), if !interrupted => {
                interrupted = true;
                runner.sched.stop();
                grace_deadline = Some(tokio::time::Instant::now() + grace);
                let how = if shutdown.end_calls.is_cancelled() {
                    "say their closing line and hang up"
                } else {
                    "may take"
                };
                display.message(&format!(
                    "stopping: no new calls; {} in flight {how} (up to {} s; Ctrl-C again to cut them)",
                    runner.calls.len(), grace.as_secs()
                ));
            }
            _ = shutdown.abort.cancelled(), if grace_deadline.is_some() && !runner.calls.is_empty() => {
                runner.calls.abort_all();
                grace_deadline = None;
            }
            _ = grace_sleep, if !runner.calls.is_empty() => {
                display.message("grace period over: cutting the calls still in flight");
                runner.calls.abort_all();
                grace_deadline = None;
            }
            _ = ticker.tick() => {
                display.show(&runner.sched.summary(), runner.clock.now());
            }
            _ = sample.tick(), if admission && !interrupted => {
                let _ = runner.sched.handle(runner.clock.now(), SchedulerEvent::Load(pools_load()));
            }
            _ = heartbeat.tick() => {
                if !runner.heartbeat() && !interrupted {
                    // The lease is lost: other nodes may take this node's
                    // calls over; it dials no more (calls in flight end),
                    // and the run ends in `LeaseLost`.
                    interrupted = true;
                    lease_lost = true;
                    runner.sched.stop();
                    grace_deadline = Some(tokio::time::Instant::now() + grace);
                    display.message("lease lost: another node may take over this node's calls; no new calls");
                }
            }
        }
    };
    display.finish();
    // Inside `serve` (other parts of the process may have calls in
    // flight) the lease is the process's, given back by its
    // `owner::DataDirOwner` when the last part leaves.
    if setup.recovery == Asking::StartUp {
        let (writer, node) = (&mut runner.writer, runner.node.clone());
        let now = Utc::now();
        if let Err(e) = blocking(|| writer.release_lease(&node, now)) {
            tracing::warn!(node = %node, error = %e, "lease not given back (it expires by itself)");
        }
    }
    let mut recovered = recovered;
    recovered.append(&mut runner.taken_over);
    let summary = CampaignSummary {
        data_dir: setup.data_dir.clone(),
        database,
        recordings: setup.record_dir.clone(),
        started_at,
        ended_at: runner.clock.now(),
        scheduler: summary,
        attempts: runner.results,
        attempts_ended: runner.attempts_ended,
        recovered,
        interrupted,
        claims: std::mem::take(&mut runner.claims),
    };
    if !runner.unstored.is_empty() {
        let files = runner.unstored.files(&runner.data_dir);
        return Err(CampaignError::Unstored {
            count: files.len(),
            dir: runner.data_dir.join(super::recovery::PENDING_DIR),
        });
    }
    match runner.fatal {
        Some(e) => Err(e),
        None if lease_lost => Err(CampaignError::LeaseLost {
            node: runner.node.clone(),
            lease_s: runner.lease.num_seconds(),
            summary: Box::new(summary),
        }),
        None => Ok(summary),
    }
}

impl Runner {
    /// Opens the store, recovers what a crashed run left in flight, and
    /// readies the scheduler and the gate.
    fn start(
        setup: &CampaignSetup,
        now: DateTime<Utc>,
        end_calls: CancellationToken,
    ) -> Result<(Runner, Vec<RecoveredAttempt>, PathBuf), CampaignError> {
        let url = setup.store_url.as_deref();
        let mut writer = blocking(|| Store::open_at(&setup.data_dir, url))?;
        let database = writer.path().to_path_buf();
        // This node's lease first (real time: leases are about processes,
        // not the campaign clock), then what its previous incarnation, or
        // a node whose lease has expired, left in flight.
        let node = store::nodes::node_id_of(&setup.data_dir)?;
        let lease_now = Utc::now();
        let lease_deadline = std::time::Instant::now() + setup.lease.to_std().unwrap_or_default();
        blocking(|| writer.take_lease(&node, std::process::id(), lease_now, setup.lease))?;
        tracing::info!(node = %node, lease_s = setup.lease.num_seconds(), "node lease taken");
        let recovered = blocking(|| {
            recover_as(
                &mut writer,
                &setup.data_dir,
                setup.record_dir.as_deref(),
                setup.recovery,
                now,
                lease_now,
            )
        })?;
        let reader = blocking(|| Store::open_at(&setup.data_dir, url))?;
        let campaign_accounts: Vec<CampaignAccount> = setup
            .accounts
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
        let until = setup.until;
        let sched = Scheduler::new(campaign_accounts, setup.settings.scheduler_config(until))?;
        let gate = PolicyGate::new(reader, setup.accounts.clone(), setup.policy.clone());
        let (transfer_tx, transfers) = tokio::sync::mpsc::unbounded_channel();
        let transfer_hook = TransferHook::new(move |t| {
            let _ = transfer_tx.send(t);
        });
        let runner = Runner {
            agent: setup.agent.clone(),
            accounts: setup.accounts.clone(),
            dial: setup.dial.clone(),
            clock: setup.clock,
            record_dir: setup.record_dir.clone(),
            shared_recordings: setup.shared_recordings.clone(),
            data_dir: setup.data_dir.clone(),
            recheck: chrono::Duration::seconds(setup.settings.recheck_s.min(86_400) as i64),
            retry: setup.settings.retry_delays(),
            sched,
            gate,
            writer,
            unstored: Unstored::default(),
            permits: Arc::new(Semaphore::new(setup.settings.max_concurrent)),
            calls: JoinSet::new(),
            flights: HashMap::new(),
            results: Vec::new(),
            fatal: None,
            transfers,
            transfer_hook,
            end_calls,
            node,
            lease: setup.lease,
            shared_store: setup.store_url.is_some(),
            claims: Durations::default(),
            keep_attempts: setup.keep_attempts,
            attempts_ended: 0,
            lease_deadline,
            taken_over: Vec::new(),
        };
        Ok((runner, recovered, database))
    }

    /// Polls the scheduler once and carries out what it asks.
    async fn step(&mut self, now: DateTime<Utc>) -> Next {
        match self.sched.poll(now) {
            SchedulerAction::Decide { account_idx, phone } => {
                self.decide(account_idx, phone, now);
                Next::Poll
            }
            SchedulerAction::Dial {
                account_idx,
                phone,
                permit,
            } => {
                self.dial(account_idx, phone, permit, now).await;
                Next::Poll
            }
            SchedulerAction::Finished(s) => Next::Done(Box::new(s)),
            SchedulerAction::WaitUntil(t) => Next::Wait(Some(t)),
            SchedulerAction::WaitForCalls => Next::Wait(None),
        }
    }

    /// Answers the scheduler's question with the gate's decision. A store
    /// that cannot be read denies (never allows); the account asks again
    /// after `recheck_s`.
    fn decide(&mut self, account_idx: usize, phone: String, now: DateTime<Utc>) {
        // Ended pauses settle first (a claimed payment verified or sent to
        // a collector), as the gate's read already counts them.
        let (writer, account, policy) = (
            &mut self.writer,
            &self.accounts[account_idx],
            self.gate.policy(),
        );
        if let Err(e) = blocking(|| settle_due(writer, account, policy, now)) {
            tracing::error!(account = %account.account_id, error = %e, "ended pauses not settled (the gate still counts them; the next decision tries again)");
        }
        let answer = match blocking(|| self.gate.decision(account_idx, &phone, now)) {
            Ok(d) => {
                if d.human_queue {
                    self.hand_to_collectors(account_idx, &d, now);
                }
                verdict(d)
            }
            Err(e) => {
                tracing::error!(account = %self.accounts[account_idx].account_id, error = %e, "store read failed: not dialling, asking again later");
                super::scheduler::Verdict::deny(Some(now + self.recheck))
            }
        };
        let _ = self.sched.handle(
            now,
            SchedulerEvent::Decided {
                account: account_idx,
                phone,
                verdict: answer,
            },
        );
    }

    /// An account past the last robot day goes to the collectors' queue, as
    /// an escalation with reason `stage-ended`, once per account (the gate
    /// said so: `human_queue`). A store that refuses is logged; the next
    /// run asks again.
    fn hand_to_collectors(&mut self, account_idx: usize, d: &PolicyDecision, now: DateTime<Utc>) {
        let account = &self.accounts[account_idx];
        let stage = d.rules.iter().find(|r| r.rule == "stage");
        let e = store::NewEscalation {
            account_id: account.account_id.clone(),
            attempt_id: None,
            reason: "stage-ended".into(),
            intent: None,
            summary: format!(
                "account {}: {}; the robot calls no more",
                account.account_id,
                stage
                    .map(|r| r.detail.as_str())
                    .unwrap_or("past the last robot day")
            ),
            transcript: serde_json::json!([]),
            recording: None,
            created_at: now,
        };
        let writer = &mut self.writer;
        match blocking(|| writer.add_escalation_once(&e)) {
            Ok(Some(id)) => {
                tracing::info!(account = %account.account_id, escalation = id, "past the last robot day: handed to the collectors")
            }
            Ok(None) => {}
            Err(err) => {
                tracing::error!(account = %account.account_id, error = %err, "stage-ended escalation not stored (the next run tries again)")
            }
        }
    }

    /// Stores the decision (the attempt counts from here on), then places
    /// the call under a concurrency permit. A decision the store refuses is
    /// no dial: the account asks again after `recheck_s`.
    async fn dial(
        &mut self,
        account_idx: usize,
        phone: String,
        decision: PolicyDecision,
        now: DateTime<Utc>,
    ) {
        let account = &self.accounts[account_idx];
        let clock = self.clock;
        if !self.agent.gateway().ready() {
            // The trunk does not answer its OPTIONS pings: no decision is
            // stored (nothing counts against the caps), and the account
            // asks again after `recheck_s`.
            tracing::debug!(account = %account.account_id, "the trunk is down: not dialling");
            let _ = self.sched.handle(
                now,
                SchedulerEvent::NotPlaced {
                    account: account_idx,
                    retry_at: now + self.recheck,
                },
            );
            return;
        }
        let (writer, gate, retry) = (&mut self.writer, &self.gate, &self.retry);
        // The scheduler's allow is put to the gate again under the store's
        // write lock, as the decision is stored (another node may have
        // dialled since): `claim`.
        drop(decision);
        let asked = std::time::Instant::now();
        let claimed = blocking(|| claim(writer, gate, retry, account_idx, &phone, now));
        self.claims
            .record(u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX));
        let dial = match claimed {
            Ok(d) => d,
            Err(not) => {
                let retry_at = match not {
                    NotClaimed::InFlight => {
                        tracing::info!(account = %account.account_id, "the account or its number has a call in flight (another node's): asking again later");
                        now + self.recheck
                    }
                    NotClaimed::TooSoon { until } => {
                        tracing::info!(account = %account.account_id, until = %until, "the account's last call (another node's, or an earlier run's) ended within its retry delay: asking again then");
                        until
                    }
                    NotClaimed::Refused(Refused::NotStored(e)) => {
                        tracing::error!(account = %account.account_id, error = %e, "cannot store the decision: not dialling, asking again later");
                        now + self.recheck
                    }
                    NotClaimed::Refused(Refused::Denied(d)) => {
                        tracing::info!(account = %account.account_id, decision = ?d.decision, "the gate, asked again as the dial was claimed, denied (another node dialled first): not dialling");
                        d.next_allowed_at
                            .filter(|t| *t > now)
                            .unwrap_or(now + self.recheck)
                    }
                };
                let _ = self.sched.handle(
                    now,
                    SchedulerEvent::NotPlaced {
                        account: account_idx,
                        retry_at,
                    },
                );
                return;
            }
        };
        let attempt = AttemptId(dial.attempt_id());
        hooks::reached("decided", &self.data_dir, attempt);
        // The decision is stored: the dial is lawful and counts. `dialling`
        // only says the INVITE is leaving; a store too busy to say so does
        // not stop the call.
        if let Err(e) = blocking(|| writer.mark_dialling(attempt, clock.now())) {
            tracing::warn!(attempt = %attempt, error = %e, "attempt not marked dialling (its decision is stored)");
        }
        hooks::reached("dialling", &self.data_dir, attempt);
        // The scheduler already keeps to max_concurrent; the permit makes it
        // a hard bound whatever the scheduler says.
        let permit = self.permits.clone().acquire_owned().await.ok();
        let opts = CallOptions {
            to: self.dial.uri_for(&account.account_id, &phone),
            now: self.clock.now(),
            dial,
            record_dir: self.record_dir.clone(),
            case_id: Some(format!("{}-{}", account.account_id, attempt)),
            on_transfer: Some(self.transfer_hook.clone()),
            // Ending the run politely ends this call politely.
            shutdown: self.end_calls.child_token(),
        };
        tracing::info!(account = %account.account_id, phone = %mask_phone(&phone), attempt = %attempt, "dialling");
        let agent = self.agent.clone();
        let acc = account.clone();
        let (data_dir, clock) = (self.data_dir.clone(), self.clock);
        let handle = self.calls.spawn(async move {
            let r = agent.call(&acc, opts).await;
            drop(permit);
            let o = r?;
            // Write-ahead, in the call's own task: the outcome is on disk
            // before the loop (perhaps waiting on a locked database) sees
            // it, so a kill from here on loses nothing; recovery imports it.
            let ended = store_outcome(&o, attempt, clock.now());
            let pending = PendingOutcome {
                attempt_id: attempt,
                account_id: acc.account_id.clone(),
                ended,
            };
            let dir = data_dir.clone();
            let p = tokio::task::spawn_blocking(move || {
                if let Err(e) = keep_pending(&dir, &pending) {
                    tracing::warn!(attempt = %attempt, error = %e, "outcome not kept ahead of the database (it is stored next)");
                }
                hooks::reached("ended", &dir, attempt);
                pending
            })
            .await
            .map_err(|e| AgentError::Audio(format!("outcome write-ahead task: {e}")))?;
            Ok((o, p.ended))
        });
        self.flights.insert(
            handle.id(),
            Flight {
                account_idx,
                attempt,
                phone,
            },
        );
        let _ = self.sched.handle(
            self.clock.now(),
            SchedulerEvent::CallStarted {
                account: account_idx,
            },
        );
    }
}
