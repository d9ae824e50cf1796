//! `duecall run <csv>`: the campaign's command-line entry, wired into clap
//! by main.rs. Owns reading the files the command names (config, accounts,
//! history), putting the accounts into the store, starting SIP and the
//! agent, Ctrl-C handling, and printing the summary. The loop itself is
//! `runner::run`.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, Utc};

use super::clock::Clock;
use super::runner::{self, CampaignSetup, Shutdown};
use super::settings::DialPlan;
use super::{CampaignError, CampaignSummary, Progress};
use crate::account::csv::{load_accounts_with, LoadOptions};
use crate::account::history::load_history;
use crate::account::history::PastAttempt;
use crate::account::{Account, Language};
use crate::agent::{Agent, AgentPaths};
use crate::config::Config;
use crate::policy::PolicyError;
use crate::store::{DataDirLock, Store};

/// Arguments of `duecall run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The accounts CSV (see `duecall check`).
    pub csv: PathBuf,
    /// TOML configuration (`[sip]`, `[dialogue]`, `[policy]`, `[campaign]`, ...).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory for the database and recordings (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// No dial starts at or after this moment (RFC 3339; default: now + `campaign.run_hours`).
    #[arg(long)]
    pub until: Option<DateTime<FixedOffset>>,
    /// Calls in flight at most (overrides `campaign.max_concurrent`).
    #[arg(long)]
    pub max_concurrent: Option<usize>,
    /// Start the campaign clock at this moment (RFC 3339); it then runs at real speed. Default: the real clock.
    /// For tests and demos: refused unless every dial target is loopback.
    #[arg(long)]
    pub now: Option<DateTime<FixedOffset>>,
    /// Attempts made by another dialler (JSON lines), imported so the caps count them.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// The trunk: the name of a `[[trunk]]` table, or an address (`host:port`,
    /// `sips:host`) for a one-off trunk (a bare `host:port` is also the
    /// Request-URI's host unless `campaign.dial_uri` is set). The old form, a
    /// Request-URI template with `{phone}`, still sets the template.
    #[arg(long)]
    pub trunk: Option<String>,
    /// The shared PostgreSQL database several nodes dial one campaign from
    /// (`postgres://user@host:port/db`; default: $DUECALL_STORE, else
    /// `[store] url`); without it, the data directory's SQLite. The data
    /// directory stays this node's own (its lock, node id, recordings).
    #[arg(long)]
    pub store: Option<String>,
    /// Take AudioSocket connections on this address (`127.0.0.1:PORT`;
    /// overrides `[gateway] audiosocket`), for calls placed through `[origination]`.
    #[arg(long)]
    pub audiosocket: Option<std::net::SocketAddr>,
}

impl RunArgs {
    /// A run of the accounts in `csv` under `config`, on the data directory
    /// `data_dir`, with every other setting at its default (the real clock,
    /// `campaign.run_hours`, the data directory's SQLite): what `duecall run
    /// CSV --config C --data-dir D` means. The setters below add the rest.
    pub fn new(csv: PathBuf, config: PathBuf, data_dir: PathBuf) -> RunArgs {
        RunArgs {
            csv,
            config: Some(config),
            data_dir: Some(data_dir),
            until: None,
            max_concurrent: None,
            now: None,
            history: None,
            trunk: None,
            store: None,
            audiosocket: None,
        }
    }

    /// No dial starts at or after `until` (`--until`).
    pub fn until(mut self, until: DateTime<FixedOffset>) -> RunArgs {
        self.until = Some(until);
        self
    }

    /// The campaign clock starts at `now` (`--now`; loopback targets only).
    pub fn now(mut self, now: DateTime<FixedOffset>) -> RunArgs {
        self.now = Some(now);
        self
    }

    /// Calls in flight at most (`--max-concurrent`).
    pub fn max_concurrent(mut self, calls: usize) -> RunArgs {
        self.max_concurrent = Some(calls);
        self
    }

    /// The trunk (`--trunk NAME|ADDRESS`, or the old Request-URI template).
    pub fn trunk(mut self, trunk: impl Into<String>) -> RunArgs {
        self.trunk = Some(trunk.into());
        self
    }

    /// The shared PostgreSQL store (`--store URL`); `None` keeps the data
    /// directory's SQLite (or `$DUECALL_STORE` / `[store] url`).
    pub fn store(mut self, url: Option<String>) -> RunArgs {
        self.store = url;
        self
    }
}

/// `run --trunk X`: a `[[trunk]]` name picks that trunk; a template with
/// `{phone}`/`{digits}` is the old meaning, the Request-URI template; a
/// bare `host:port` with no trunk configured also keeps its old meaning,
/// the Request-URI's host (calls go straight there, and the per-account
/// `dial_uri_by_account` URIs to theirs); any other address makes a
/// one-off trunk (a bare `host:port` is then also the Request-URI's host
/// while `campaign.dial_uri` is the default). Returns the Request-URI
/// template the flag sets, if any.
pub fn pick_trunk(
    config: &mut Config,
    trunk: Option<&str>,
) -> Result<Option<String>, CampaignError> {
    let Some(t) = trunk else {
        return Ok(None);
    };
    if t.contains("{phone}") || t.contains("{digits}") {
        tracing::warn!(
            "--trunk with a Request-URI template is deprecated: set `[campaign] dial_uri`"
        );
        return Ok(Some(t.to_string()));
    }
    let bare = !t.contains("://") && !t.starts_with("sip:") && !t.starts_with("sips:");
    let named = config.trunks().iter().any(|c| c.name == t);
    if bare && !named && config.trunks().is_empty() {
        crate::config::parse_proxy("--trunk", t)?;
        return Ok(Some(t.to_string()));
    }
    let address = config.select_trunk(t)?;
    Ok(
        (address && bare && config.campaign.dial_uri == super::settings::DEFAULT_DIAL_URI)
            .then(|| t.to_string()),
    )
}

fn read_accounts(path: &Path, region: &str) -> Result<(Vec<Account>, ContactMap), CampaignError> {
    let file = std::fs::File::open(path).map_err(|source| CampaignError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let report = load_accounts_with(
        BufReader::new(file),
        &LoadOptions {
            default_region: region.to_string(),
        },
    );
    for e in &report.errors {
        eprintln!(
            "{}: line {}: {} (row skipped)",
            path.display(),
            e.line,
            e.reason
        );
    }
    for w in &report.warnings {
        eprintln!("{}: warning: {w}", path.display());
    }
    if report.accounts.is_empty() {
        let message = if report.errors.is_empty() {
            "no accounts in the file".to_string()
        } else {
            format!(
                "no usable account ({} rows rejected, see above)",
                report.errors.len()
            )
        };
        return Err(CampaignError::Accounts {
            path: path.to_path_buf(),
            message,
        });
    }
    Ok((report.accounts, report.contact))
}

type ContactMap = std::collections::BTreeMap<String, crate::account::hours::ContactPrefs>;

fn read_history(path: &Path, region: &str) -> Result<Vec<PastAttempt>, CampaignError> {
    let file = std::fs::File::open(path).map_err(|source| CampaignError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let report = load_history(BufReader::new(file), region);
    // Fail closed: a line that cannot be read may be an attempt the caps
    // must count; skipping it could allow one call too many.
    if let Some(e) = report.errors.first() {
        return Err(CampaignError::Policy(PolicyError::History {
            path: path.to_path_buf(),
            line: e.line as u64,
            reason: e.reason.clone(),
        }));
    }
    Ok(report.records)
}

/// Runs `duecall run` with Ctrl-C handling (first: stop dialling and let
/// calls end within `campaign.shutdown_grace_s`; second: cut them) and
/// prints the summary on stdout.
pub async fn run_campaign(args: &RunArgs) -> Result<CampaignSummary, CampaignError> {
    let (shutdown, watcher) = ctrl_c_shutdown();
    let result = run_campaign_with(args, shutdown, Progress::detect()).await;
    watcher.abort();
    let print = |summary: &CampaignSummary| {
        summary
            .write_text(&mut std::io::stdout().lock())
            .map_err(|source| CampaignError::Write {
                path: PathBuf::from("<stdout>"),
                source,
            })
    };
    match result {
        Ok(summary) => {
            print(&summary)?;
            Ok(summary)
        }
        // What the node did is printed; the lost lease is the error.
        Err(e @ CampaignError::LeaseLost { .. }) => {
            if let CampaignError::LeaseLost { summary, .. } = &e {
                print(summary)?;
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// A shutdown driven by Ctrl-C or SIGTERM: the first stops dialling and
/// ends the calls in flight politely (closing line, hang-up) within the
/// grace period ([`Shutdown::terminate`]), the second cuts them. Abort the returned task when the run is over.
pub fn ctrl_c_shutdown() -> (Shutdown, tokio::task::JoinHandle<()>) {
    let shutdown = Shutdown::default();
    let s = shutdown.clone();
    let watcher = tokio::spawn(async move {
        // SIGTERM (a service manager, `kill`) stops the run like Ctrl-C.
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            let term_recv = async {
                match term.as_mut() {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            };
            let got = tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = term_recv => r.is_some(),
            };
            if !got {
                return;
            }
            if s.stop.is_cancelled() {
                s.abort.cancel();
                return;
            }
            s.terminate();
        }
    });
    (shutdown, watcher)
}

/// `duecall run` without the signal handling and printing: reads the
/// files, stores the accounts (and the history), starts SIP and the agent,
/// and runs the campaign until it finishes or `shutdown` stops it.
pub async fn run_campaign_with(
    args: &RunArgs,
    shutdown: Shutdown,
    progress: Progress,
) -> Result<CampaignSummary, CampaignError> {
    let mut config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(a) = args.audiosocket {
        config.gateway.audiosocket = Some(a);
    }
    let mut settings = config.campaign.clone();
    if let Some(m) = args.max_concurrent {
        settings.max_concurrent = m;
        settings.validate()?;
    }
    let policy = config.policy.clone();
    let clock = match args.now {
        Some(t) => Clock::anchored(t.with_timezone(&Utc)),
        None => Clock::real(),
    };
    let now = clock.now();
    let until = match args.until {
        Some(t) => t.with_timezone(&Utc),
        None => now + Duration::hours(settings.run_hours.min(24 * 366) as i64),
    };
    // Through a streaming platform the hook gets the number (`{phone}`);
    // over the SIP trunk, a Request-URI.
    let template = pick_trunk(&mut config, args.trunk.as_deref())?;
    let mut dial = match (&config.origination, &template) {
        (Some(_), None) => DialPlan::numbers(),
        _ => DialPlan::new(template.as_deref().unwrap_or(&settings.dial_uri))?,
    };
    dial.overrides = settings.dial_uri_by_account.clone();

    let (accounts, contact) = read_accounts(&args.csv, &policy.default_region)?;
    if args.now.is_some() {
        // A test clock never dials a real person.
        let mut targets: Vec<String> = config.trunk_addresses();
        match &config.origination {
            // The platform places the calls: it must be on this machine.
            Some(o) => targets.push(crate::telephony::ws::origination::hook_host(&o.url)),
            None => {
                for a in &accounts {
                    for p in std::iter::once(&a.phone).chain(&a.alt_phones) {
                        targets.push(dial.uri_for(&a.account_id, p));
                    }
                }
            }
        }
        super::loopback::require_loopback(targets.iter().map(String::as_str))?;
    }
    let history = match &args.history {
        Some(p) => Some(read_history(p, &policy.default_region)?),
        None => None,
    };
    let data_dir = crate::store::cli::data_dir(args.data_dir.as_ref());
    let store_url = crate::store::cli::store_url(args.store.as_deref(), Some(&config.store))?;
    // One dialling process per data directory, for the whole run.
    let _lock = DataDirLock::acquire(&data_dir)?;
    {
        let mut store = Store::open_at(&data_dir, store_url.as_deref())?;
        store.upsert_accounts(&accounts, now)?;
        store.set_contact_prefs(&contact)?;
        if let Some(h) = &history {
            let added = store.import_history(h)?;
            eprintln!(
                "history: {added} new attempts imported ({} lines read)",
                h.len()
            );
        }
    }
    let record_dir = if config.recording.enabled {
        Some(if config.recording.dir.is_absolute() {
            config.recording.dir.clone()
        } else {
            data_dir.join(&config.recording.dir)
        })
    } else {
        None
    };

    let mut languages: Vec<Language> = Vec::new();
    for a in &accounts {
        if !languages.contains(&a.language) {
            languages.push(a.language);
        }
    }
    let gw = crate::telephony::gateway::open(&config).await?;
    tracing::info!(gateway = gw.kind(), "calls go out through the gateway");
    let paths = AgentPaths::under(&AgentPaths::default_root());
    let agent = Arc::new(Agent::new(gw.clone(), &config, &paths, &languages)?);
    for &l in &languages {
        let engine = agent.check_asr(l).await?;
        tracing::info!(language = l.as_str(), engine, "recognizer ready");
    }
    tracing::info!(accounts = accounts.len(), data_dir = %data_dir.display(), until = %until, "campaign starting");
    let setup = CampaignSetup {
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
        store_url,
        lease: config.store.lease(),
        recovery: crate::store::nodes::Asking::StartUp,
        keep_attempts: true,
        shared_recordings: config.store.recordings.clone(),
    };
    let result = runner::run(setup, shutdown).await;
    gw.shutdown();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::from_toml(text, "t").unwrap()
    }

    #[test]
    fn run_trunk_keeps_its_old_meanings_and_picks_or_makes_a_trunk() {
        // No trunk configured: a bare address is the Request-URI's host, as before.
        let mut c = cfg("");
        let t = pick_trunk(&mut c, Some("127.0.0.1:9")).unwrap();
        assert_eq!(t.as_deref(), Some("127.0.0.1:9"));
        assert!(
            c.trunks().is_empty(),
            "no outbound proxy behind the overrides"
        );
        // A template is the Request-URI template.
        let t = pick_trunk(&mut c, Some("sip:{phone}@gw.example")).unwrap();
        assert_eq!(t.as_deref(), Some("sip:{phone}@gw.example"));
        assert!(pick_trunk(&mut c, Some("not a host")).is_err());
        // A table's name picks it; an address makes a one-off trunk.
        let two = "[[trunk]]\nname = \"a\"\naddress = \"127.0.0.1:5060\"\n\
                   [[trunk]]\nname = \"b\"\naddress = \"127.0.0.1:5062\"\n";
        let mut c = cfg(two);
        assert_eq!(pick_trunk(&mut c, Some("b")).unwrap(), None);
        assert_eq!(c.trunk_addresses(), vec!["127.0.0.1:5062"]);
        let mut c = cfg(two);
        let t = pick_trunk(&mut c, Some("127.0.0.1:5070")).unwrap();
        assert_eq!(t.as_deref(), Some("127.0.0.1:5070"));
        assert_eq!(c.trunk_addresses(), vec!["127.0.0.1:5070"]);
        assert!(
            pick_trunk(&mut cfg(two), Some("c")).is_err(),
            "a misspelt name"
        );
    }
}
