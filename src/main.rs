//! The `duecall` command line. Thin: parses flags, loads the config, calls
//! into the library, prints. `anyhow` lives here and nowhere else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use duecall::config::Config;
use duecall::telephony::leg::{LegCommand, LegEvent};
use duecall::telephony::sip::DialRequest;

#[derive(Parser)]
#[command(
    name = "duecall",
    version,
    about = "Offline voice agent for payment-reminder calls over SIP"
)]
struct Cli {
    /// Log filter (e.g. `info`, `duecall=debug`); default: warn, or $RUST_LOG.
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Place one call: with --account, hold the whole reminder conversation;
    /// without, play a file, record both sides and report what happened.
    Call(Box<CallArgs>),
    /// Recognise speech in a WAV file (JSON: text, words with times, engine).
    Transcribe(duecall::asr::cli::TranscribeArgs),
    /// Classify replies into intents (TEXT, or one utterance per stdin line).
    Classify(duecall::intent::cli::ClassifyArgs),
    /// Validate an accounts CSV: every bad row with its line and reason.
    Check(duecall::policy::cli::CheckArgs),
    /// What the compliance gate decides for every account at a moment (no side effects).
    Plan(duecall::policy::cli::PlanArgs),
    /// Export attempts and outcomes for the lender's systems.
    Export(duecall::store::cli::ExportArgs),
    /// Bring the store's schema to this build's version (SQLite in the data directory, or `--store postgres://...`).
    Migrate(duecall::store::cli::MigrateArgs),
    /// Holds on robot contact (disputes, cases with a collector): list, release.
    Holds(duecall::store::cli::HoldsArgs),
    /// The do-not-call list: import a CSV, list every suppression.
    Suppress(duecall::store::cli::SuppressArgs),
    /// Import payments (`account_id,amount,paid_at`): claimed payments and promises settle against them.
    Payments(duecall::store::cli::PaymentsArgs),
    /// Serve simulated debtors on loopback (`sip:<persona>@127.0.0.1:5070`).
    Sim(duecall::sim::SimArgs),
    /// Run a campaign: dial the accounts of a CSV under the compliance gate until nothing more is allowed.
    Run(duecall::campaign::cli::RunArgs),
    /// The main job on an embedded default: a campaign against simulated debtors, with a report.
    Demo(duecall::campaign::demo::DemoArgs),
    /// The service: JSON API, console, webhooks, metrics (`duecall serve --data-dir D`).
    Serve(duecall::web::cli::ServeArgs),
    /// Users of the service (`duecall user add NAME --role collector --password-stdin`).
    User(duecall::web::cli::UserArgs),
    /// API tokens (`duecall token create --role admin --name crm`).
    Token(duecall::web::cli::TokenArgs),
    /// Capacity and endurance: `bench load --calls N --duration S [--json]`, `bench soak --calls 2000`.
    Bench(duecall::bench::BenchArgs),
}

#[derive(clap::Args)]
struct CallArgs {
    /// Who to call: `sip:user@host:port` over the SIP trunk, or the number
    /// (`+14155550123`) when `[origination]` places calls through a
    /// streaming platform.
    uri: String,
    /// TOML configuration file (command-line flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Account JSON (name, amount, due_date, language, ...): hold the whole
    /// reminder conversation and route the case.
    #[arg(long)]
    account: Option<PathBuf>,
    /// The moment the call is placed, for the gate, dates and the script (default: now).
    /// For tests and demos: refused unless the target (and every trunk) is loopback.
    #[arg(long)]
    now: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// With --account: the data directory whose store the gate reads and the
    /// attempt is stored in (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// With --account: the shared PostgreSQL database several nodes dial
    /// from (`postgres://user@host:port/db`; default: $DUECALL_STORE, else
    /// `[store] url`); without it, the data directory's SQLite.
    #[arg(long)]
    store: Option<String>,
    /// Directory for the recording and outcome JSON of a conversation.
    #[arg(long, default_value = "recordings")]
    out_dir: PathBuf,
    /// From URI (caller ID).
    #[arg(long)]
    from: Option<String>,
    /// Digest user for 401/407.
    #[arg(long)]
    user: Option<String>,
    /// Digest password.
    #[arg(long)]
    password: Option<String>,
    /// The trunk: the name of a `[[trunk]]` table, or an address
    /// (`host:port`, `sips:host`, `ws://host:port/path`) for a one-off trunk.
    #[arg(long)]
    trunk: Option<String>,
    /// The old name of `--trunk` (kept for a release).
    #[arg(long)]
    proxy: Option<String>,
    /// WAV to play once answered (any rate; converted to 8 kHz mono).
    #[arg(long)]
    play: Option<PathBuf>,
    /// Two-channel WAV to record to (left: sent, right: heard).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Seconds to stay connected after the answer (or until the far end hangs up).
    #[arg(long, default_value_t = 10.0)]
    hold: f64,
    /// Blind-transfer (REFER) to this URI after the playback, instead of hanging up.
    #[arg(long)]
    refer_to: Option<String>,
    /// DTMF digits to send after the answer.
    #[arg(long)]
    send_dtmf: Option<String>,
    /// Ring timeout in seconds (default from config: 30).
    #[arg(long)]
    ring_timeout: Option<u64>,
    /// Take AudioSocket connections on this address (`127.0.0.1:PORT`;
    /// overrides `[gateway] audiosocket`), for calls placed through `[origination]`.
    #[arg(long)]
    audiosocket: Option<std::net::SocketAddr>,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        // One line a person can act on (the chain of causes), no backtrace.
        eprintln!("duecall: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn".into());
    // rsipstack logs whole SIP messages (numbers and names in From/To) at
    // info: keep it at warn unless asked for by name.
    let filter = if filter.contains("rsipstack") {
        filter
    } else {
        format!("{filter},rsipstack=warn")
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).context("bad --log filter")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let stdout = std::io::stdout();
    match cli.cmd {
        Cmd::Call(args) => {
            let config = match &args.config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let code = if args.account.is_some() {
                rt.block_on(converse(config, *args))?
            } else {
                rt.block_on(call(config, *args))?
            };
            std::process::exit(code);
        }
        Cmd::Transcribe(a) => {
            let v = duecall::asr::cli::run_transcribe(&a)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Cmd::Classify(a) => {
            let stdin = std::io::stdin();
            duecall::intent::cli::run_classify(&a, &mut stdin.lock(), &mut stdout.lock())?;
        }
        Cmd::Check(a) => {
            let code = duecall::policy::cli::run_check(&a, &mut stdout.lock())?;
            std::process::exit(code);
        }
        Cmd::Plan(a) => duecall::policy::cli::run_plan(&a, &mut stdout.lock())?,
        Cmd::Export(a) => duecall::store::cli::run_export(&a, &mut stdout.lock())?,
        Cmd::Migrate(a) => duecall::store::cli::run_migrate(&a, &mut stdout.lock())?,
        Cmd::Suppress(a) => {
            duecall::store::cli::run_suppress(&a, chrono::Utc::now(), &mut stdout.lock())?
        }
        Cmd::Payments(a) => duecall::store::cli::run_payments(&a, &mut stdout.lock())?,
        Cmd::Holds(a) => {
            duecall::store::cli::run_holds(&a, chrono::Utc::now(), &mut stdout.lock())?
        }
        Cmd::Sim(a) => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(duecall::sim::run_sim(&a))?;
        }
        Cmd::Run(a) => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(duecall::campaign::cli::run_campaign(&a))?;
        }
        Cmd::Demo(a) => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let run = rt.block_on(duecall::campaign::demo::run_demo(&a))?;
            duecall::web::cli::demo_login(&run.dir, &mut stdout.lock())?;
        }
        Cmd::Serve(a) => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(duecall::web::cli::run_serve(&a))?;
        }
        Cmd::User(a) => {
            let stdin = std::io::stdin();
            duecall::web::cli::run_user(&a, &mut stdin.lock(), &mut stdout.lock())?;
        }
        Cmd::Token(a) => duecall::web::cli::run_token(&a, &mut stdout.lock())?,
        Cmd::Bench(a) => {
            // The bench builds its own runtimes (duecall's and the simulated debtors').
            let code = duecall::bench::run(&a, &mut stdout.lock())?;
            std::process::exit(code);
        }
    }
    Ok(())
}

/// `duecall call --account F`: the whole reminder conversation, through the
/// campaign's gate on a data directory (exit 3 when it denies).
async fn converse(mut config: Config, a: CallArgs) -> anyhow::Result<i32> {
    apply_call_flags(&mut config, &a)?;
    let path = a.account.as_ref().context("--account")?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --account {}", path.display()))?;
    let account: duecall::account::Account = serde_json::from_str(&text)
        .with_context(|| format!("--account {}: not an account JSON", path.display()))?;
    if a.now.is_some() {
        // Through a streaming platform, the platform places the call: it
        // must be on this machine.
        let target = match &config.origination {
            Some(o) => duecall::telephony::ws::origination::hook_host(&o.url),
            None => a.uri.clone(),
        };
        let trunks = config.trunk_addresses();
        let targets = std::iter::once(target.as_str()).chain(trunks.iter().map(String::as_str));
        duecall::campaign::loopback::require_loopback(targets)?;
    }
    let clock = match a.now {
        Some(t) => duecall::campaign::clock::Clock::anchored(t.with_timezone(&chrono::Utc)),
        None => duecall::campaign::clock::Clock::real(),
    };
    let policy = config.policy.clone();
    let gw = duecall::telephony::gateway::open(&config).await?;
    let paths = duecall::agent::AgentPaths::under(&duecall::agent::AgentPaths::default_root());
    let agent = duecall::agent::Agent::new(gw, &config, &paths, &[account.language])?;
    agent.check_asr(account.language).await?;
    let at = duecall::store::Location::new(
        duecall::store::cli::data_dir(a.data_dir.as_ref()),
        duecall::store::cli::store_url(a.store.as_deref(), Some(&config.store))?,
    );
    let lease = config.store.lease();
    let mut manual = duecall::campaign::manual::ManualCall::open(
        &at,
        Some(&a.out_dir),
        lease,
        &account,
        clock.now(),
    )?
    .share_recordings(config.store.recordings.clone());
    let dial = match manual.authorise(&account, &policy, clock.now())? {
        Ok(dial) => dial,
        Err(denied) => {
            if a.json {
                let v = serde_json::json!({ "account_id": account.account_id, "policy": denied });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("not called: the gate denies {}", account.account_id);
                for r in denied.rules.iter().filter(|r| !r.passed) {
                    println!("  {}: {}", r.rule, r.detail);
                }
                if let Some(t) = denied.next_allowed_at {
                    println!("  next allowed at {}", t.to_rfc3339());
                }
            }
            return Ok(3);
        }
    };
    let attempt = dial.attempt_id();
    let mut opts = duecall::agent::CallOptions::new(&a.uri, clock.now(), dial);
    opts.record_dir = Some(a.out_dir.clone());
    opts.case_id = Some(format!("{}-{attempt}", account.account_id));
    // Ctrl-C ends the conversation politely (closing line, BYE); the
    // outcome is still stored and printed.
    let shutdown = opts.shutdown.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            shutdown.cancel();
        }
    });
    let stop_lease = tokio_util::sync::CancellationToken::new();
    let keeper = tokio::spawn(duecall::campaign::manual::keep_lease(
        at.clone(),
        manual.node().to_owned(),
        lease,
        stop_lease.clone(),
    ));
    let result = agent.call(&account, opts).await;
    watcher.abort();
    stop_lease.cancel();
    let _ = keeper.await;
    manual.finish(attempt, &result, clock.now())?;
    let outcome = result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        for t in &outcome.turns {
            println!(
                "{:<22} played {:>5} ms{} heard: {:<40} intent: {}",
                t.prompt,
                t.played_ms,
                if t.finished { "        " } else { " (cut)  " },
                t.heard.as_deref().unwrap_or("-"),
                t.intent.map(|i| i.as_str()).unwrap_or("-"),
            );
        }
        println!(
            "disposition: {}  route: {}{}",
            outcome.call.disposition.as_str(),
            outcome
                .route
                .as_ref()
                .map(|r| format!("{:?} ({})", r.kind, r.reason))
                .unwrap_or_else(|| "-".into()),
            outcome
                .call
                .recording
                .as_ref()
                .map(|p| format!("  recording: {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

fn apply_call_flags(config: &mut Config, a: &CallArgs) -> anyhow::Result<()> {
    match (&a.trunk, &a.proxy) {
        (Some(_), Some(_)) => anyhow::bail!(
            "--trunk and --proxy both given: --proxy is the old name of --trunk; give one"
        ),
        (Some(t), None) | (None, Some(t)) => {
            config.select_trunk(t)?;
        }
        (None, None) => {}
    }
    if a.user.is_some() || a.password.is_some() {
        config.set_credentials(a.user.clone(), a.password.clone());
    }
    if let Some(rt) = a.ring_timeout {
        config.sip.ring_timeout_s = rt;
    }
    if let Some(f) = &a.from {
        config.sip.from = Some(f.clone());
    }
    if let Some(s) = a.audiosocket {
        config.gateway.audiosocket = Some(s);
    }
    config.validate()?;
    Ok(())
}

async fn call(mut config: Config, a: CallArgs) -> anyhow::Result<i32> {
    apply_call_flags(&mut config, &a)?;
    let audio: Option<Arc<[i16]>> = match &a.play {
        Some(p) => Some(
            duecall::media::wav::read_mono_8k(p)
                .with_context(|| format!("cannot use --play {}", p.display()))?
                .into(),
        ),
        None => None,
    };
    let speak_delay = Duration::from_millis(config.dialogue.speak_delay_ms);
    let gw = duecall::telephony::gateway::open(&config).await?;
    let mut req = DialRequest::to(&a.uri);
    req.from = a.from.clone();
    req.record = a.record.clone();
    let mut leg = gw.dial(req).await?;
    let hold = Duration::from_secs_f64(a.hold.max(0.0));
    let mut hold_timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut transfer_pending = false;
    let report = loop {
        tokio::select! {
            ev = leg.next_event() => {
                let Some(ev) = ev else { anyhow::bail!("call task ended without a report") };
                match ev {
                    LegEvent::Answered { .. } => {
                        hold_timer = Some(Box::pin(tokio::time::sleep(hold)));
                        if !speak_delay.is_zero() {
                            tokio::time::sleep(speak_delay).await;
                        }
                        if let Some(pcm) = &audio {
                            leg.send(LegCommand::Play { id: "play".into(), pcm: pcm.clone() }).await;
                        }
                        if let Some(d) = &a.send_dtmf {
                            leg.send(LegCommand::SendDtmf(d.clone())).await;
                        }
                        if audio.is_none() {
                            if let Some(t) = &a.refer_to {
                                transfer_pending = true;
                                leg.send(LegCommand::Transfer { target: t.clone(), headers: vec![] }).await;
                            }
                        }
                    }
                    LegEvent::PlayFinished { .. } => {
                        if let Some(t) = &a.refer_to {
                            if !transfer_pending {
                                transfer_pending = true;
                                leg.send(LegCommand::Transfer { target: t.clone(), headers: vec![] }).await;
                            }
                        }
                    }
                    LegEvent::TransferResult { ok: false, .. } => {
                        leg.send(LegCommand::Hangup).await;
                    }
                    LegEvent::Ended(r) => break *r,
                    _ => {}
                }
            }
            _ = async { match hold_timer.as_mut() { Some(s) => s.await, None => std::future::pending().await } } => {
                hold_timer = None;
                leg.send(LegCommand::Hangup).await;
            }
        }
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "call": report }))?
        );
    } else {
        println!(
            "{} {} status={} duration={}ms codec={} sent={}pkts received={}pkts lost={} dtmf={}{}",
            report.call_id,
            report.disposition.as_str(),
            report
                .sip_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            report.duration_ms,
            report.codec.as_deref().unwrap_or("-"),
            report.rtp.sent.packets,
            report.rtp.received.packets,
            report.rtp.received.lost.unwrap_or(0),
            report.dtmf.iter().map(|d| d.digit).collect::<String>(),
            report
                .recording
                .as_ref()
                .map(|p| format!(" recording={}", p.display()))
                .unwrap_or_default(),
        );
    }
    Ok(
        if report.disposition == duecall::outcome::Disposition::Answered {
            0
        } else {
            2
        },
    )
}
