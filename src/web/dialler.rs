//! The service's dialler: runs the accounts of every running campaign
//! continuously, across days, with the campaign runner (`campaign::runner`)
//! as `duecall run` does: each dial asked of the gate, every outcome
//! stored. One runner at a time over the union of the running campaigns'
//! accounts (one process owns the calls in flight of a data directory, so
//! crash recovery at a run's start never takes a living call for a dead
//! one). When campaigns change (started, paused, stopped, fed accounts) or a
//! collector closes a case, the runner is stopped gracefully (no new dials;
//! calls in flight end) and started again over the new set; when it finds
//! nothing more to do it waits for the next change or a re-check. On the
//! service's shutdown the runner stops the same way within its grace period
//! and the service exits; a restart resumes the running campaigns.
//!
//! Like `duecall run`, a run holds the data directory's lock
//! (`duecall.lock`) while it dials, so `duecall run` or `duecall call
//! --account` on the same directory waits its turn instead of counting
//! caps against live calls. It holds it through the service's
//! `DataDirOwner`, which its direct streams share: a stream taken while a
//! campaign dials is decided under the store's write lock like each of the
//! campaign's dials (`gate::claim`: never while the account or the number
//! has a call in flight), and a run started while streams converse takes
//! over no call in flight at its start (the owner recovered dead ones
//! when it took the directory). On a test clock (`serve --now`) every dial
//! target must be loopback.
//!
//! Calls go out through the SIP trunk, or with `[origination]` through the
//! streaming platform's hook (as `duecall run`): the platform dials the
//! number and streams the answered call to the service's own `/ws/twilio`
//! or `/ws/asterisk`, where the stream finds its attempt in the hub.
//!
//! Owns starting and stopping runs and the gateway they share; never
//! decides whether or when an account is dialled (the gate and the
//! scheduler do: every dial goes through `campaign::runner`, which asks
//! the compliance gate and places the call only with its `AllowedDial`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::state::AppState;
use crate::account::Language;
use crate::agent::{Agent, AgentPaths};
use crate::campaign::loopback::require_loopback;
use crate::campaign::runner::{self, CampaignSetup, Shutdown};
use crate::campaign::settings::DialPlan;
use crate::campaign::Progress;
use crate::store::nodes::Asking;
use crate::telephony::gateway::Gateway;
use crate::telephony::sip::SipGateway;
use crate::telephony::ws::origination::{hook_host, StreamGateway};

/// The dialler's task; `stop` waits for it to end.
pub struct Dialler {
    task: JoinHandle<()>,
}

impl Dialler {
    /// Waits for the dialler to end (after the service's shutdown token
    /// fired: calls in flight ended or were cut after the grace period).
    pub async fn stop(self) {
        let _ = self.task.await;
    }
}

/// How long a runner that found nothing to do waits before looking again
/// without being woken (pauses that end, callbacks that come due).
const RECHECK: StdDuration = StdDuration::from_secs(60);
/// A runner that failed is started again after this long.
const BACKOFF: StdDuration = StdDuration::from_secs(30);
/// How far ahead one run plans (it is restarted long before).
const HORIZON_DAYS: i64 = 366;

/// Starts the dialler. `stream_url` is where a streaming platform reaches
/// the service's `/ws/twilio` (its own address), for `[origination]`
/// without a `stream_url` of its own (`None`: the service listens on every
/// interface and cannot tell).
pub fn start(st: AppState, stream_url: Option<String>) -> Dialler {
    Dialler {
        task: tokio::spawn(run(st, stream_url)),
    }
}

/// The gateway the service's campaigns dial through: the origination hook
/// when `[origination]` is set (the platform dials, and streams the call to
/// the service's `/ws/*` routes, the hub its direct streams arrive at too),
/// else the SIP trunk.
async fn open_gateway(
    st: &AppState,
    stream_url: Option<String>,
) -> Result<Arc<dyn Gateway>, String> {
    let config = &*st.config;
    match &config.origination {
        Some(_) => {
            let g = StreamGateway::on_hub(config, st.streams.clone(), stream_url)
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(g))
        }
        None => Ok(Arc::new(
            SipGateway::start(config.clone())
                .await
                .map_err(|e| e.to_string())?,
        )),
    }
}

async fn run(st: AppState, stream_url: Option<String>) {
    let shutdown = st.shutdown.clone();
    let mut gateway: Option<Arc<dyn Gateway>> = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let accounts = match st.db.run(|s| s.running_accounts()).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "dialler: cannot read the running campaigns");
                if wait(&st, &shutdown, BACKOFF).await {
                    break;
                }
                continue;
            }
        };
        if accounts.is_empty() {
            tokio::select! {
                _ = st.dialler.changed() => continue,
                _ = shutdown.cancelled() => break,
            }
        }
        // One dialling process per data directory, as `duecall run`.
        let owner = st.owner.clone();
        let lock = match tokio::task::spawn_blocking(move || owner.enter()).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "dialler: the data directory is dialled by another process; campaigns wait");
                if wait(&st, &shutdown, BACKOFF).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "dialler: taking the data directory failed; campaigns wait");
                if wait(&st, &shutdown, BACKOFF).await {
                    break;
                }
                continue;
            }
        };
        let gw = match &gateway {
            Some(g) => g.clone(),
            None => match open_gateway(&st, stream_url.clone()).await {
                Ok(g) => {
                    tracing::info!(
                        gateway = g.kind(),
                        "dialler: calls go out through the gateway"
                    );
                    gateway = Some(g.clone());
                    g
                }
                Err(e) => {
                    tracing::error!(error = %e, "dialler: the gateway cannot start; campaigns wait");
                    if wait(&st, &shutdown, BACKOFF).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let setup = match setup(&st, gw, accounts).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "dialler: cannot prepare the campaign; campaigns wait");
                if wait(&st, &shutdown, BACKOFF).await {
                    break;
                }
                continue;
            }
        };
        let n = setup.accounts.len();
        tracing::info!(accounts = n, "dialler: running campaigns");
        st.metrics.set_dialling_accounts(n as u64);
        let stop = Shutdown::default();
        let mut task = tokio::spawn(runner::run(setup, stop.clone()));
        let finished = tokio::select! {
            r = &mut task => Some(r),
            _ = st.dialler.changed() => None,
            _ = shutdown.cancelled() => None,
        };
        let woken = finished.is_none() && !shutdown.is_cancelled();
        let result = match finished {
            Some(r) => r,
            None if woken => {
                // A campaign changed: no new dials; calls in flight run on
                // (cut at the end of the grace period) and the new set starts.
                stop.stop.cancel();
                task.await
            }
            None => {
                // The service stops: calls in flight say their closing line
                // and hang up within the grace period.
                stop.terminate();
                task.await
            }
        };
        drop(lock);
        match result {
            Ok(Ok(summary)) => tracing::info!(
                attempts = summary.attempts_ended,
                interrupted = summary.interrupted,
                "dialler: run ended"
            ),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "dialler: run failed");
                if wait(&st, &shutdown, BACKOFF).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "dialler: run panicked");
                if wait(&st, &shutdown, BACKOFF).await {
                    break;
                }
                continue;
            }
        }
        // Woken: start over the new set at once. Finished by itself (nothing
        // more allowed before the horizon): look again later or when woken.
        if !woken && wait(&st, &shutdown, RECHECK).await {
            break;
        }
    }
    st.metrics.set_dialling_accounts(0);
    if let Some(g) = gateway {
        g.shutdown();
    }
}

/// Waits `d`, or until woken; true when the service is stopping.
async fn wait(st: &AppState, shutdown: &CancellationToken, d: StdDuration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = st.dialler.changed() => false,
        _ = shutdown.cancelled() => true,
    }
}

async fn setup(
    st: &AppState,
    gw: Arc<dyn Gateway>,
    accounts: Vec<crate::account::Account>,
) -> Result<CampaignSetup, String> {
    let config = &*st.config;
    let settings = config.campaign.clone();
    // Through a streaming platform the hook gets the number (`{phone}`);
    // over the SIP trunk, a Request-URI (as `duecall run`).
    let mut dial = match &config.origination {
        Some(_) => DialPlan::numbers(),
        None => DialPlan::new(&settings.dial_uri).map_err(|e| e.to_string())?,
    };
    dial.overrides = settings.dial_uri_by_account.clone();
    if st.clock.is_anchored() {
        // A test clock never dials a real person (as `duecall run --now`).
        let mut targets: Vec<String> = config.trunk_addresses();
        match &config.origination {
            // The platform places the calls: it must be on this machine.
            Some(o) => targets.push(hook_host(&o.url)),
            None => {
                for a in &accounts {
                    for p in std::iter::once(&a.phone).chain(&a.alt_phones) {
                        targets.push(dial.uri_for(&a.account_id, p));
                    }
                }
            }
        }
        require_loopback(targets.iter().map(String::as_str)).map_err(|e| e.to_string())?;
    }
    let mut languages: Vec<Language> = Vec::new();
    for a in &accounts {
        if !languages.contains(&a.language) {
            languages.push(a.language);
        }
    }
    let paths = AgentPaths::under(&AgentPaths::default_root());
    let agent = Agent::new(gw, config, &paths, &languages).map_err(|e| e.to_string())?;
    for &l in &languages {
        agent.check_asr(l).await.map_err(|e| e.to_string())?;
    }
    let record_dir = record_dir(config, &st.data_dir);
    let now = st.now();
    Ok(CampaignSetup {
        agent: Arc::new(agent),
        data_dir: st.data_dir.clone(),
        accounts,
        policy: (*st.policy).clone(),
        settings,
        dial,
        clock: st.clock,
        until: now + Duration::days(HORIZON_DAYS),
        record_dir,
        progress: Progress::Quiet,
        store_url: st.db.location().url().map(str::to_owned),
        lease: config.store.lease(),
        // The service's direct streams may be conversing: the owner
        // recovered when it took the directory.
        recovery: Asking::Running,
        // The run lasts days: its summary counts attempts, it does not keep them.
        keep_attempts: false,
        shared_recordings: config.store.recordings.clone(),
    })
}

/// Where the service's recordings and outcome JSON go (`[recording]`;
/// `None`: not recorded).
pub fn record_dir(config: &crate::config::Config, data_dir: &Path) -> Option<PathBuf> {
    config.recording.enabled.then(|| {
        if config.recording.dir.is_absolute() {
            config.recording.dir.clone()
        } else {
            data_dir.join(&config.recording.dir)
        }
    })
}
