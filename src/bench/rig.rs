//! The bench rig: duecall's caller (gateway + agent with the real
//! recogniser) on its own tokio runtime, the simulated debtors on another
//! (threads named `dc-sim`, so their CPU can be told apart from ours), both
//! on loopback in one process; and one call placed and judged. Owns the two
//! runtimes and shuts them down; never decides anything about a call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::account::{Account, Language};
use crate::agent::{Agent, AgentPaths, AttemptOutcome, CallOptions};
use crate::config::Config;
use crate::sim::{SimCallRecord, SimCallee, SimConfig};
use crate::telephony::sip::SipGateway;

use super::expect::{Expected, BENCH_NOW};
use super::BenchError;

/// Name prefix of the simulated debtors' runtime threads.
pub const SIM_THREADS: &str = "dc-sim";

/// A call gets this long before it counts as hung.
const CALL_LIMIT: Duration = Duration::from_secs(240);

/// One call placed by the rig, with what both ends recorded.
#[derive(Debug)]
pub struct Placed {
    /// What the debtor's script implies.
    pub expected: Expected,
    /// Our outcome, or why the call failed to run.
    pub outcome: Result<AttemptOutcome, String>,
    /// The simulated debtor's record of the call (None: it never ended there).
    pub record: Option<SimCallRecord>,
}

impl Placed {
    /// `Ok` when the route (or disposition) is what the script implies.
    pub fn verdict(&self) -> Result<(), String> {
        match &self.outcome {
            Ok(o) => self.expected.judge(o),
            Err(e) => Err(e.clone()),
        }
    }

    /// Reply latencies the debtor heard (ms), without the greeting's
    /// (what follows "Hello?" is the answering-machine decision, not a reply).
    pub fn reply_latencies_ms(&self) -> Vec<u64> {
        self.record
            .as_ref()
            .map(|r| r.reply_latencies_ms().into_iter().skip(1).collect())
            .unwrap_or_default()
    }
}

/// duecall and the simulated debtors, ready to call.
pub struct Rig {
    agent_rt: Option<tokio::runtime::Runtime>,
    sim_rt: Option<tokio::runtime::Runtime>,
    /// The simulated debtors.
    pub sim: Arc<SimCallee>,
    /// duecall's agent (real gateway, real recogniser).
    pub agent: Arc<Agent>,
    gateway: Arc<SipGateway>,
    /// Where recordings and outcome JSON go.
    pub record_dir: PathBuf,
    /// The English recogniser's engine name.
    pub recognizer: String,
    account: Account,
    now: DateTime<Utc>,
}

impl Rig {
    /// Starts both runtimes, the simulated debtors (ringing 200 ms) and
    /// duecall's gateway and agent (English), with prompts and models
    /// under `root`; recordings go to `record_dir`.
    pub fn start(root: &Path, record_dir: &Path) -> Result<Rig, BenchError> {
        Self::start_with(
            root,
            record_dir,
            crate::sim::persona::PersonaBook::builtin(),
        )
    }

    /// [`Rig::start`] with these simulated debtors instead of the built-in ones.
    pub fn start_with(
        root: &Path,
        record_dir: &Path,
        personas: crate::sim::persona::PersonaBook,
    ) -> Result<Rig, BenchError> {
        Self::start_seeded(root, record_dir, personas, 1)
    }

    /// [`Rig::start_with`], the debtors' reply gaps drawn from `seed`
    /// (same seed, same gaps per call).
    pub fn start_seeded(
        root: &Path,
        record_dir: &Path,
        personas: crate::sim::persona::PersonaBook,
        seed: u64,
    ) -> Result<Rig, BenchError> {
        std::fs::create_dir_all(record_dir).map_err(|e| BenchError::Io {
            path: record_dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let agent_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("duecall-rt")
            .enable_all()
            .build()
            .map_err(|e| BenchError::Runtime(e.to_string()))?;
        let sim_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SIM_THREADS)
            .enable_all()
            .build()
            .map_err(|e| BenchError::Runtime(e.to_string()))?;
        let sim_cfg = SimConfig {
            personas,
            ring_ms: Some(200),
            seed: Some(seed),
            ..SimConfig::default()
        };
        let sim = sim_rt
            .block_on(crate::sim::start(sim_cfg))
            .map_err(BenchError::Sim)?;
        let paths = AgentPaths::under(root);
        let (gateway, agent, recognizer) = agent_rt.block_on(async {
            let cfg = Config::default();
            let gw = Arc::new(
                SipGateway::start(cfg.clone())
                    .await
                    .map_err(|e| BenchError::Gateway(e.to_string()))?,
            );
            let agent = Agent::new(gw.clone(), &cfg, &paths, &[Language::En])
                .map_err(|e| BenchError::Agent(e.to_string()))?;
            let engine = agent
                .check_asr(Language::En)
                .await
                .map_err(|e| BenchError::Agent(e.to_string()))?;
            Ok::<_, BenchError>((gw, Arc::new(agent), engine.to_string()))
        })?;
        let account: Account = serde_json::from_value(serde_json::json!({
            "account_id": "B-0", "name": "Maria Lopez", "phone": "+14155550167",
            "amount": "125.50", "currency": "USD", "due_date": "2026-11-16",
            "timezone": "America/Los_Angeles", "language": "en",
            "agent_uri": "sip:collectors@127.0.0.1:5999"
        }))
        .map_err(|e| BenchError::Agent(format!("bench account: {e}")))?;
        let now = BENCH_NOW
            .parse()
            .map_err(|e| BenchError::Agent(format!("bench time: {e}")))?;
        Ok(Rig {
            agent_rt: Some(agent_rt),
            sim_rt: Some(sim_rt),
            sim: Arc::new(sim),
            agent,
            gateway,
            record_dir: record_dir.to_path_buf(),
            recognizer,
            account,
            now,
        })
    }

    /// Runs `fut` on duecall's runtime.
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        match &self.agent_rt {
            Some(rt) => rt.block_on(fut),
            None => unreachable!("the runtime lives until drop"),
        }
    }

    /// Live tokio tasks on duecall's runtime.
    pub fn alive_tasks(&self) -> usize {
        self.agent_rt
            .as_ref()
            .map(|rt| rt.metrics().num_alive_tasks())
            .unwrap_or(0)
    }

    /// A handle that places calls from tasks.
    pub fn caller(&self) -> Caller {
        Caller {
            sim: self.sim.clone(),
            agent: self.agent.clone(),
            record_dir: self.record_dir.clone(),
            account: self.account.clone(),
            now: self.now,
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.sim.shutdown();
        self.gateway.shutdown();
        if let Some(rt) = self.agent_rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        if let Some(rt) = self.sim_rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Places calls (cheap to clone into a task).
#[derive(Clone)]
pub struct Caller {
    sim: Arc<SimCallee>,
    agent: Arc<Agent>,
    record_dir: PathBuf,
    account: Account,
    now: DateTime<Utc>,
}

impl Caller {
    /// The gate's allow for one call, stored in the rig's own store.
    fn allow(&self, account: &Account) -> Result<crate::policy::AllowedDial, String> {
        let dir = self.record_dir.join("gate");
        let mut store = crate::store::Store::open(&dir).map_err(|e| e.to_string())?;
        store
            .upsert_accounts(std::slice::from_ref(account), self.now)
            .map_err(|e| e.to_string())?;
        let zones = crate::account::tz::zones_for(account).0;
        let policy = crate::policy::PolicyConfig::default();
        let d = crate::campaign::gate::decide_on_store(
            &store, account, None, &zones, &policy, self.now,
        )
        .map_err(|e| e.to_string())?;
        crate::campaign::gate::authorise(&mut store, d, self.now).map_err(|r| match r {
            crate::policy::Refused::Denied(d) => format!(
                "the gate denies {}: {:?}",
                d.account_id,
                d.rules
                    .iter()
                    .filter(|r| !r.passed)
                    .map(|r| &r.detail)
                    .collect::<Vec<_>>()
            ),
            crate::policy::Refused::NotStored(e) => e.to_string(),
        })
    }

    /// Places call number `k` to the debtor `e` and waits for both ends to
    /// finish with it (the debtor's record leaves the simulated callee).
    pub async fn place(&self, k: usize, e: Expected) -> Placed {
        let mut account = self.account.clone();
        account.account_id = format!("B-{k}");
        account.phone = format!("+1415555{:04}", k % 10_000);
        // Every reminder call goes through the gate: one debt and number
        // per call, so no cap is in the way.
        let outcome = match self.allow(&account) {
            Err(e) => Err(e),
            Ok(dial) => {
                let to = self.sim.uri_for_tagged(e.persona, &format!("b{k}"));
                let mut opts = CallOptions::new(&to, self.now, dial);
                opts.record_dir = Some(self.record_dir.clone());
                match tokio::time::timeout(CALL_LIMIT, self.agent.call(&account, opts)).await {
                    Ok(Ok(o)) => Ok(o),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(_) => Err(format!("no outcome in {} s", CALL_LIMIT.as_secs())),
                }
            }
        };
        // The outcome JSON beside its recording, as the campaign runner
        // writes it once the database has the outcome.
        if let Ok(o) = &outcome {
            if let (Some(rec), Ok(json)) = (&o.call.recording, serde_json::to_value(o)) {
                crate::campaign::persist::write_outcome_file(rec, &json);
            }
        }
        let record = match &outcome {
            Ok(o) => {
                self.sim
                    .take_ended(&o.call.call_id, Duration::from_secs(15))
                    .await
            }
            Err(_) => None,
        };
        Placed {
            expected: e,
            outcome,
            record,
        }
    }
}
