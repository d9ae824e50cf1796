//! The store's one error enum: every variant names what to fix (the path,
//! the attempt, the operation that failed).

use std::path::PathBuf;

use super::AttemptId;

/// Errors of the store layer. Each names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created or read.
    #[error("data directory {path}: {source} (give a writable directory with --data-dir or DUECALL_DATA)")]
    DataDir {
        /// The directory asked for.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The data directory path exists but is not a directory.
    #[error("data directory {path} exists and is not a directory (give a directory with --data-dir or DUECALL_DATA)")]
    NotADirectory {
        /// The path asked for.
        path: PathBuf,
    },
    /// Another process holds the data directory (`duecall.lock`).
    #[error("data directory {dir} is in use by another duecall{} (stop it first, or give another --data-dir)", match pid { Some(p) => format!(" (pid {p})"), None => String::new() })]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The holder's process id, as it wrote it in the lock file.
        pid: Option<u32>,
    },
    /// No database where one was expected (export of a directory never used).
    #[error("no duecall database at {path} (point --data-dir or DUECALL_DATA at the directory a campaign used)")]
    NoDatabase {
        /// The database file looked for.
        path: PathBuf,
    },
    /// The database file could not be opened or is not a SQLite database (or PostgreSQL refused the connection).
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What the database said.
        #[source]
        source: super::db::Error,
    },
    /// The database was written by a newer duecall.
    #[error("database {path} has schema version {found}, newer than this duecall knows ({known}); upgrade duecall")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A schema migration failed; the database stays at the version before it.
    #[error("schema migration {version} failed: {source}")]
    Migration {
        /// The migration that failed.
        version: i64,
        /// What the database said.
        #[source]
        source: super::db::Error,
    },
    /// A query failed.
    #[error("store: {op}: {source}")]
    Sql {
        /// The store operation that ran the query.
        op: &'static str,
        /// What the database said.
        #[source]
        source: super::db::Error,
    },
    /// No attempt with this id.
    #[error("attempt {0} does not exist")]
    UnknownAttempt(AttemptId),
    /// The attempt is not in the state the operation needs (an outcome
    /// recorded twice, or an attempt marked dialling after it ended).
    #[error("attempt {id} is {state}, expected {expected}")]
    WrongState {
        /// The attempt.
        id: AttemptId,
        /// Its state in the store.
        state: String,
        /// The state(s) the operation needs.
        expected: &'static str,
    },
    /// A stored value could not be read back (edited by hand, or a bug).
    #[error("malformed value in the store: {0}")]
    Corrupt(String),
    /// A command-line argument is wrong (named in the message).
    #[error("{0}")]
    BadArgument(String),
    /// An export format other than `jsonl` or `csv`.
    #[error("unknown export format {0:?}: use jsonl or csv")]
    UnknownFormat(String),
    /// Writing the export failed.
    #[error("writing the export: {0}")]
    Write(#[source] std::io::Error),
    /// Writing the CSV export failed.
    #[error("writing the CSV export: {0}")]
    Csv(#[source] csv::Error),
    /// A value could not be encoded as JSON.
    #[error("encoding JSON for the store: {0}")]
    Json(#[source] serde_json::Error),
}

pub(crate) fn sql(op: &'static str) -> impl FnOnce(super::db::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}
