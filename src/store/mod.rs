//! The store: everything duecall must remember between calls and between
//! runs (accounts, attempts with their policy decision and outcome, turns,
//! routes, the collectors' escalation queue, pauses, suppressions, callbacks,
//! payments), in an embedded SQLite database (`<data dir>/duecall.db`, WAL).
//!
//! It owns persistence only: it never decides whether to dial (the policy
//! does) or what an outcome means (the conversation does), never reads the
//! clock (every time is passed in, like the pure cores), and never logs a
//! full phone number. All calls are synchronous; the campaign runner calls
//! them off the async workers.
//!
//! One file per table or concern: `attempts` (with turns and routes),
//! `history` (what the gate counts), `accounts`, `escalations`, `pauses`,
//! `suppressions`, `dnc` (the do-not-call list), `callbacks`, `payments`, `holds`, `state` (an account's state for
//! the gate), `routes` (what a route leaves behind), `export`; `schema` holds
//! the one versioned list of migrations (append a table's migration there);
//! `codec` how values are spelled. The service's tables (`duecall serve`)
//! follow the same rule: `users`, `tokens`, `sessions`, `audit`,
//! `casework` (claims, notes, closures, released and extended pauses),
//! `qa_labels`, `outbox` (webhook events and deliveries), with their
//! migrations in `web_schema`; `browse` holds the service's read-only views.
//!
//! Written so that PostgreSQL can take over when several nodes share one
//! queue: the SQL uses only what both engines accept (`ON CONFLICT` instead of
//! `INSERT OR REPLACE`, `RETURNING id` instead of `last_insert_rowid()`, times
//! as fixed-form UTC text that compares like `timestamptz`), and every work
//! claim is one `UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING`, whose
//! PostgreSQL form is noted where it is written.

mod accounts;
mod attempts;
pub mod audit;
pub mod browse;
mod callbacks;
pub mod campaigns;
pub mod casework;
pub mod cli;
mod codec;
mod dnc;
mod error;
mod escalations;
mod export;
pub mod files;
mod history;
mod holds;
mod lock;
pub mod outbox;
mod pauses;
mod payments;
pub mod qa_labels;
mod routes;
mod schema;
pub mod sessions;
mod state;
mod suppressions;
pub mod tokens;
pub mod users;
mod web_schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use attempts::{AttemptId, AttemptRecord, AttemptState, EndedAttempt, TurnRow};
pub(crate) use codec::ts;
pub use dnc::SuppressionRow;
pub(crate) use error::sql;
pub use error::StoreError;
pub use escalations::{Escalation, EscalationStatus, NewEscalation};
pub use export::ExportFormat;
pub use holds::HoldRow;
pub use lock::{DataDirLock, LOCK_FILE};
pub use pauses::{EndedPause, PAID_REASON};

/// The database file inside a data directory.
pub const DB_FILE: &str = "duecall.db";

/// An open database in a data directory. Not `Sync`: give each thread its
/// own `Store` (several may be open on one directory at once), or share one
/// behind a mutex.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the data directory and `<dir>/duecall.db`,
    /// switches it to WAL and applies any pending migrations.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        files::create_private_dir(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        files::touch_private(&path).map_err(|source| StoreError::DataDir {
            path: path.clone(),
            source,
        })?;
        Self::open_file(&path, schema::LATEST)
    }

    /// Opens the database of a directory that must already hold one (for
    /// reading commands such as `export`, where creating an empty database
    /// would hide a mistyped path).
    pub fn open_existing(dir: &Path) -> Result<Store, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::NoDatabase { path });
        }
        Self::open_file(&path, schema::LATEST)
    }

    fn open_file(path: &Path, target: i64) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        // Writers queue behind each other instead of failing at once.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::InvalidParameterName(format!(
                    "journal_mode stayed {mode}, WAL refused"
                )),
            });
        }
        // FULL: a committed row survives a power cut, not only a crash of
        // this process. The rows written here (the decision before a dial,
        // a suppression, a pause) are what keep a person from being called
        // again; a few ms of fsync per call is cheap for that.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        schema::migrate(&mut conn, path, target)?;
        // A database (and its WAL) made by an older duecall under the
        // default umask becomes owner-only; SQLite gives new WAL and
        // shared-memory files the database's own mode.
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            files::make_private(Path::new(&p)).map_err(|source| StoreError::DataDir {
                path: PathBuf::from(p),
                source,
            })?;
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// How long a write waits for another connection's lock before it
    /// fails (10 s by default).
    pub fn set_busy_timeout(&mut self, t: Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(t).map_err(sql("busy_timeout"))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::current_version(&self.conn).map_err(sql("schema_version"))
    }

    fn write_tx(&mut self, op: &'static str) -> Result<Transaction<'_>, StoreError> {
        // IMMEDIATE takes the write lock up front, so a read-then-write
        // transaction never fails half-way on a concurrent writer.
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(op))
    }

    /// Writes attempts that ended since `since` for the lender's systems.
    /// See `export` for the columns.
    pub fn export(
        &self,
        since: DateTime<Utc>,
        format: ExportFormat,
        out: &mut dyn std::io::Write,
    ) -> Result<usize, StoreError> {
        export::export(self, since, format, out)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod web_tests;
