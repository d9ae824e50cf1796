//! `duecall export`, `duecall holds`, `duecall suppress` and `duecall
//! payments`: the command-line entries of the store. Owns the argument
//! shape and the default data directory; the lead wires it into clap.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{ExportFormat, Store, StoreError};

/// Where data lives when neither `--data-dir` nor `DUECALL_DATA` says.
pub const DEFAULT_DATA_DIR: &str = "./duecall-data";

/// Arguments of `duecall export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Export attempts from this day on (00:00 UTC), e.g. 2026-01-31.
    #[arg(long)]
    pub since: chrono::NaiveDate,
    /// `jsonl` (one outcome JSON per line) or `csv` (with a header).
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// The data directory (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The data directory: the flag, else `$DUECALL_DATA`, else `./duecall-data`.
pub fn data_dir(flag: Option<&PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d.clone();
    }
    match std::env::var_os("DUECALL_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(DEFAULT_DATA_DIR),
    }
}

/// Runs `duecall export`, writing to `out`. The data directory must already
/// hold a database (a mistyped path is an error, not an empty export).
pub fn run_export(args: &ExportArgs, out: &mut dyn Write) -> Result<(), StoreError> {
    let format: ExportFormat = args.format.parse()?;
    let dir = data_dir(args.data_dir.as_ref());
    let store = Store::open_existing(&dir)?;
    let since = args.since.and_time(chrono::NaiveTime::MIN).and_utc();
    store.export(since, format, out)?;
    Ok(())
}

/// Arguments of `duecall holds`.
#[derive(Debug, Clone, Args)]
pub struct HoldsArgs {
    /// What to do.
    #[command(subcommand)]
    pub cmd: HoldsCmd,
    /// The data directory (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// `duecall holds list` / `duecall holds release`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum HoldsCmd {
    /// Every hold (one JSON object per line), released ones with who released them.
    List {
        /// Only this account's.
        #[arg(long)]
        account: Option<String>,
    },
    /// Releases an account's holds in force (after verifying a disputed
    /// debt, or when a collector is done with the case).
    Release {
        /// The account.
        account_id: String,
        /// Who releases it and why (kept with the hold), e.g. "J. Doe: debt verified, letter sent".
        #[arg(long)]
        by: String,
        /// Only holds of this kind (`dispute` or `agent`); default both.
        #[arg(long)]
        kind: Option<String>,
    },
}

/// Runs `duecall holds`, writing to `out`; `now` stamps a release.
pub fn run_holds(
    args: &HoldsArgs,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
) -> Result<(), StoreError> {
    let dir = data_dir(args.data_dir.as_ref());
    match &args.cmd {
        HoldsCmd::List { account } => {
            let store = Store::open_existing(&dir)?;
            for h in store.holds(account.as_deref())? {
                serde_json::to_writer(&mut *out, &h).map_err(StoreError::Json)?;
                writeln!(out).map_err(StoreError::Write)?;
            }
        }
        HoldsCmd::Release {
            account_id,
            by,
            kind,
        } => {
            let kind = match kind.as_deref() {
                None => None,
                Some(k) => Some(crate::policy::HoldKind::parse(k).ok_or_else(|| {
                    StoreError::BadArgument(format!("--kind {k:?}: expected dispute or agent"))
                })?),
            };
            if by.trim().is_empty() {
                return Err(StoreError::BadArgument(
                    "--by must name who releases the hold".into(),
                ));
            }
            let mut store = Store::open_existing(&dir)?;
            let n = store.release_holds(account_id, kind, by, now)?;
            writeln!(out, "{n} hold(s) released on {account_id}").map_err(StoreError::Write)?;
        }
    }
    Ok(())
}

/// Arguments of `duecall suppress`.
#[derive(Debug, Clone, Args)]
pub struct SuppressArgs {
    /// What to do.
    #[command(subcommand)]
    pub cmd: SuppressCmd,
    /// The data directory (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// `duecall suppress import` / `duecall suppress list`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SuppressCmd {
    /// Imports a do-not-call list (CSV: `phone` or `account_id`, `scope`,
    /// `reason`), all or nothing: a bad row stops the import, naming its line.
    Import {
        /// The CSV.
        csv: PathBuf,
        /// Region for numbers written without + (default US).
        #[arg(long, default_value = "US")]
        region: String,
    },
    /// Every suppression (from calls and lists), one JSON object per line.
    List,
}

/// Arguments of `duecall payments`.
#[derive(Debug, Clone, Args)]
pub struct PaymentsArgs {
    /// The payments CSV (`account_id,amount,paid_at`).
    pub csv: PathBuf,
    /// The data directory (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

fn read_file(path: &std::path::Path) -> Result<std::fs::File, StoreError> {
    std::fs::File::open(path)
        .map_err(|e| StoreError::BadArgument(format!("cannot read {}: {e}", path.display())))
}

/// Runs `duecall suppress`, writing to `out`; `now` stamps an import.
pub fn run_suppress(
    args: &SuppressArgs,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
) -> Result<(), StoreError> {
    let dir = data_dir(args.data_dir.as_ref());
    match &args.cmd {
        SuppressCmd::Import { csv, region } => {
            let entries = crate::account::lists::read_do_not_call(read_file(csv)?, region)
                .map_err(|e| {
                    StoreError::BadArgument(format!("{}: {e} (nothing imported)", csv.display()))
                })?;
            let mut store = Store::open(&dir)?;
            let n = store.import_do_not_call_as(
                &entries,
                Some(&super::audit::Actor::cli("suppress import")),
                now,
            )?;
            writeln!(
                out,
                "{n} new do-not-call entries ({} rows read)",
                entries.len()
            )
            .map_err(StoreError::Write)?;
        }
        SuppressCmd::List => {
            let store = Store::open_existing(&dir)?;
            for s in store.suppressions()? {
                serde_json::to_writer(&mut *out, &s).map_err(StoreError::Json)?;
                writeln!(out).map_err(StoreError::Write)?;
            }
        }
    }
    Ok(())
}

/// Runs `duecall payments`: imports the payments, all or nothing.
pub fn run_payments(args: &PaymentsArgs, out: &mut dyn Write) -> Result<(), StoreError> {
    let payments = crate::account::lists::read_payments(read_file(&args.csv)?).map_err(|e| {
        StoreError::BadArgument(format!("{}: {e} (nothing imported)", args.csv.display()))
    })?;
    let mut store = Store::open(&data_dir(args.data_dir.as_ref()))?;
    let n = store.import_payments_as(
        &payments,
        Some((&super::audit::Actor::cli("payments"), chrono::Utc::now())),
    )?;
    writeln!(out, "{n} new payments ({} rows read)", payments.len()).map_err(StoreError::Write)?;
    Ok(())
}
