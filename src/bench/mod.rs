//! Capacity and endurance (issue 23): `duecall bench load` keeps N
//! reminder conversations going against the simulated debtors and measures
//! what a contact centre sizes hardware by; `duecall bench soak` places
//! thousands of calls in one process and checks that nothing grows. Owns the load generator, its
//! measurements and reports; it drives the real gateway, agent and
//! recogniser through their public API and never changes what they decide.
//!
//! - `expect`: what each simulated debtor's script implies (pure judge).
//! - `rig`: duecall and the simulated debtors on two runtimes; one call placed.
//! - `load`: the load run's schedule and measuring window.
//! - `soak`: thousands of calls; complete outcomes, nothing grows.
//! - `conversations`: routes right and wrong consequential routes with
//!   debtors in new wording and unadapted voices (issue 18).
//! - `report`: the numbers and their JSON keys (pure).
//! - `procstat`: CPU, memory, fds and threads from `/proc/self`.

pub mod conversations;
mod error;
pub mod expect;
pub mod load;
pub mod procstat;
pub mod report;
pub mod rig;
pub mod soak;

pub use error::BenchError;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// `duecall bench`: capacity and endurance runs.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    cmd: BenchCmd,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum BenchCmd {
    /// Keep N conversations going for S seconds against the simulated
    /// debtors; print conversations held, routes right, reply latency, RTP
    /// pacing, loss, recogniser speed, CPU and memory per call.
    Load(LoadArgs),
    /// Place thousands of calls (K at once) in one process: every outcome
    /// complete, resident memory flat, no fd, thread or task leaked.
    Soak(SoakArgs),
    /// Whole reminder calls against debtors who answer in wording nothing
    /// was tuned on, in flite voices nothing was adapted on, some late:
    /// routes right, wrong consequential routes, stops not honoured.
    Conversations(ConversationsArgs),
}

/// Flags of `duecall bench conversations`.
#[derive(Debug, Clone, clap::Args)]
struct ConversationsArgs {
    /// Which split: `dev` (tests/data/spoken_dev.tsv in espeak-ng voices:
    /// tune on it) or `final` (spoken_fresh.tsv in flite voices: held out).
    #[arg(long, value_enum, default_value_t = conversations::Set::Final)]
    set: conversations::Set,
    /// Seeds each case's timing (on cue, late, over a prompt) and the
    /// debtors' reply gaps: the same seed, the same schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// At most this many cases, evenly spread over the split (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Passes over the replies (each in the next voice).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Calls at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Keep the recordings and outcome JSON in this directory.
    #[arg(long)]
    record_dir: Option<PathBuf>,
}

/// Flags of `duecall bench soak`.
#[derive(Debug, Clone, clap::Args)]
struct SoakArgs {
    /// Calls to place after the warm-up.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Calls in progress at once.
    #[arg(long, default_value_t = 10)]
    overlap: usize,
    /// Calls placed before the baseline is read.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Fail (exit 1) when resident memory grows by this much or more, MB.
    #[arg(long, default_value_t = 5)]
    max_growth_mb: i64,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
    /// Keep the recordings and outcome JSON in this directory (default: each
    /// is checked, then removed).
    #[arg(long)]
    record_dir: Option<PathBuf>,
}

/// Flags of `duecall bench load`.
#[derive(Debug, Clone, clap::Args)]
struct LoadArgs {
    /// Conversations to keep going at once.
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// Seconds during which a new conversation starts whenever one ends
    /// (the run then waits for the last ones to finish).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Keep the recordings and outcome JSON in this directory (default: a
    /// temporary one, removed after the run).
    #[arg(long)]
    record_dir: Option<PathBuf>,
    /// Seconds over which the first N conversations start, evenly spaced
    /// (default: a quarter of the run, at most 5). A ramp as long as a
    /// conversation (about 40 s) spreads the replies as a paced campaign
    /// does; the steady-state latency is reported apart either way.
    #[arg(long)]
    ramp: Option<u64>,
    /// Admission control (`campaign::admission`): a conversation starts only
    /// while the recogniser keeps up (no utterance waited 500 ms for a
    /// decoder lately); one that cannot start within 30 s is counted as
    /// not admitted. Reported as `admission` in the JSON.
    #[arg(long)]
    admission: bool,
}

/// Runs `duecall bench ...`; returns the process exit code.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<i32, BenchError> {
    match &args.cmd {
        BenchCmd::Load(a) => {
            let opts = load::LoadOptions {
                calls: a.calls,
                duration: Duration::from_secs(a.duration),
                root: crate::agent::AgentPaths::default_root(),
                record_dir: a.record_dir.clone().unwrap_or_else(|| scratch("load")),
                keep: a.record_dir.is_some(),
                ramp: a.ramp.map(Duration::from_secs),
                admission: a.admission,
            };
            let r = load::run_load(&opts)?;
            emit(&r, a.json, out, load::print_load)?;
            Ok(0)
        }
        BenchCmd::Conversations(a) => {
            let dir = a
                .record_dir
                .clone()
                .unwrap_or_else(|| scratch("conversations"));
            let r = conversations::run(
                &crate::agent::AgentPaths::default_root(),
                &dir,
                &conversations::Options {
                    set: a.set,
                    rounds: a.rounds,
                    seed: a.seed,
                    limit: a.limit,
                },
                a.concurrency,
            );
            if a.record_dir.is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            let r = r?;
            emit(&r, a.json, out, conversations::print)?;
            Ok(0)
        }
        BenchCmd::Soak(a) => {
            let opts = soak::SoakOptions {
                calls: a.calls,
                overlap: a.overlap,
                warmup: a.warmup,
                root: crate::agent::AgentPaths::default_root(),
                record_dir: a.record_dir.clone().unwrap_or_else(|| scratch("soak")),
                keep: a.record_dir.is_some(),
            };
            let r = soak::run_soak(&opts)?;
            emit(&r, a.json, out, soak::print_soak)?;
            Ok(if soak::passed(&r, a.max_growth_mb * 1024) {
                0
            } else {
                1
            })
        }
    }
}

/// Writes a run's report: one JSON object (`--json`), or `table` in words.
fn emit<R: serde::Serialize>(
    r: &R,
    json: bool,
    out: &mut dyn Write,
    table: fn(&R, &mut dyn Write) -> std::io::Result<()>,
) -> Result<(), BenchError> {
    let written = if json {
        serde_json::to_string(r)
            .map_err(std::io::Error::other)
            .and_then(|s| writeln!(out, "{s}"))
    } else {
        table(r, out)
    };
    written.map_err(|e| BenchError::Io {
        path: PathBuf::from("<stdout>"),
        message: e.to_string(),
    })
}

/// A fresh temporary directory for one run's recordings.
fn scratch(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("duecall-bench-{what}-{}", std::process::id()))
}
