//! `duecall export`: the command-line entry of the store. Owns the argument
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
