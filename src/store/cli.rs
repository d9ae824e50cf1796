//! `duecall export`, `duecall holds`, `duecall suppress`, `duecall
//! payments` and `duecall migrate`: the command-line entries of the store,
//! each on the data directory's SQLite or, with `--store URL` (or
//! `$DUECALL_STORE`), a shared PostgreSQL database. Owns the argument
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
    /// Where the store is (`--data-dir`, `--store`).
    #[command(flatten)]
    pub at: StoreArgs,
}

/// `--data-dir` and `--store`, for a command that opens the store and
/// nothing else (`duecall user`, `duecall token`, `export`, `holds`,
/// `suppress`, `payments`). Global: before or after a subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// The data directory (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// The shared PostgreSQL database (`postgres://user@host:port/db`;
    /// default: $DUECALL_STORE); without it, the data directory's SQLite.
    #[arg(long, global = true)]
    pub store: Option<String>,
}

impl StoreArgs {
    /// Where the store these flags name is.
    pub fn location(&self) -> Result<super::Location, StoreError> {
        Ok(super::Location::new(
            data_dir(self.data_dir.as_ref()),
            store_url(self.store.as_deref(), None)?,
        ))
    }
}

/// The shared database the flag names, else `$DUECALL_STORE`, else the
/// configuration's `[store] url`; `None`: the data directory's SQLite.
/// A URL that is not `postgres://` or `postgresql://` is refused, naming it.
pub fn store_url(
    flag: Option<&str>,
    config: Option<&crate::config::StoreConfig>,
) -> Result<Option<String>, StoreError> {
    let env = std::env::var("DUECALL_STORE")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let url = flag
        .map(str::to_owned)
        .or(env)
        .or_else(|| config.and_then(|c| c.url.clone()));
    match url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Ok(Some(u)),
        Some(u) => Err(StoreError::BadArgument(format!(
            "store {}: give a postgres://user@host:port/db URL (without --store the data directory's SQLite database is used)",
            super::redact_url(&u)
        ))),
        None => Ok(None),
    }
}

/// Arguments of `duecall migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The data directory (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The shared PostgreSQL database (`postgres://user@host:port/db`;
    /// default: $DUECALL_STORE, else `[store] url` of --config); without
    /// it, the data directory's SQLite database.
    #[arg(long)]
    pub store: Option<String>,
    /// TOML configuration (for its `[store] url`).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `duecall migrate`: brings the store's schema to this build's
/// version (each step in its own transaction; several nodes may run it at
/// once) and prints where it is and at which version.
pub fn run_migrate(args: &MigrateArgs, out: &mut dyn Write) -> Result<(), StoreError> {
    let config = match &args.config {
        Some(p) => Some(
            crate::config::Config::load(p).map_err(|e| StoreError::BadArgument(e.to_string()))?,
        ),
        None => None,
    };
    let url = store_url(args.store.as_deref(), config.as_ref().map(|c| &c.store))?;
    let dir = data_dir(args.data_dir.as_ref());
    let store = Store::open_at(&dir, url.as_deref())?;
    let engine = match store.dialect() {
        super::db::Dialect::Sqlite => "sqlite",
        super::db::Dialect::Postgres => "postgresql",
    };
    writeln!(
        out,
        "{engine} {}: schema version {}",
        store.path().display(),
        store.schema_version()?
    )
    .map_err(StoreError::Write)?;
    Ok(())
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
    let store = args.at.location()?.open_existing()?;
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
    /// Where the store is (`--data-dir`, `--store`).
    #[command(flatten)]
    pub at: StoreArgs,
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
    let at = args.at.location()?;
    match &args.cmd {
        HoldsCmd::List { account } => {
            let store = at.open_existing()?;
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
            let mut store = at.open_existing()?;
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
    /// Where the store is (`--data-dir`, `--store`).
    #[command(flatten)]
    pub at: StoreArgs,
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
    /// Where the store is (`--data-dir`, `--store`).
    #[command(flatten)]
    pub at: StoreArgs,
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
    let at = args.at.location()?;
    match &args.cmd {
        SuppressCmd::Import { csv, region } => {
            let entries = crate::account::lists::read_do_not_call(read_file(csv)?, region)
                .map_err(|e| {
                    StoreError::BadArgument(format!("{}: {e} (nothing imported)", csv.display()))
                })?;
            let mut store = at.open()?;
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
            let store = at.open_existing()?;
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
    let mut store = args.at.location()?.open()?;
    let n = store.import_payments_as(
        &payments,
        Some((&super::audit::Actor::cli("payments"), chrono::Utc::now())),
    )?;
    writeln!(out, "{n} new payments ({} rows read)", payments.len()).map_err(StoreError::Write)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Cmd {
        Export(ExportArgs),
        Holds(HoldsArgs),
        Suppress(SuppressArgs),
        Payments(PaymentsArgs),
    }

    fn at(argv: &[&str]) -> StoreArgs {
        match Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Cmd::Export(a)) => a.at,
            Ok(Cmd::Holds(a)) => a.at,
            Ok(Cmd::Suppress(a)) => a.at,
            Ok(Cmd::Payments(a)) => a.at,
            Err(e) => panic!("{argv:?}: {e}"),
        }
    }

    #[test]
    fn store_flags_stand_before_or_after_a_subcommand() {
        Cli::command().debug_assert();
        let flags = ["--data-dir", "/d", "--store", "postgres://h/db"];
        for argv in [
            [&["duecall", "holds"][..], &flags, &["list"]].concat(),
            [&["duecall", "holds", "list"][..], &flags].concat(),
            [&["duecall", "suppress"][..], &flags, &["list"]].concat(),
            [&["duecall", "suppress", "list"][..], &flags].concat(),
            [&["duecall", "export", "--since", "2026-01-31"][..], &flags].concat(),
            [&["duecall", "payments", "p.csv"][..], &flags].concat(),
        ] {
            let a = at(&argv);
            assert_eq!(a.data_dir, Some(PathBuf::from("/d")), "{argv:?}");
            assert_eq!(a.store.as_deref(), Some("postgres://h/db"), "{argv:?}");
        }
        let none = at(&["duecall", "holds", "list"]);
        assert_eq!((none.data_dir, none.store), (None, None));
    }
}
