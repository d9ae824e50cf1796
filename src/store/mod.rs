//! The store: everything duecall must remember between calls and between
//! runs (accounts, attempts with their policy decision and outcome, turns,
//! routes, the collectors' escalation queue, pauses, suppressions, callbacks,
//! payments), in an embedded SQLite database (`<data dir>/duecall.db`, WAL)
//! or a shared PostgreSQL database.
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
//! `casework` (claims, notes, closures), `holdwork` (pauses released and
//! extended, suppressions and callbacks listed),
//! `qa_labels`, `outbox` (webhook events and deliveries), with their
//! migrations in `web_schema`; `browse` holds the service's read-only views.
//!
//! Two engines behind one interface (`db`): SQLite in the data directory
//! (the embedded default) and PostgreSQL, which several nodes share
//! (`Store::open_postgres`, `--store URL`). The SQL is written once, in what
//! both engines accept (`ON CONFLICT` instead of `INSERT OR REPLACE`,
//! `RETURNING id` instead of `last_insert_rowid()`, times as fixed-form UTC
//! text that compares like `timestamptz`); `db` translates the rest. Every
//! work claim is one `UPDATE ... WHERE id = (SELECT ... LIMIT 1)
//! RETURNING` inside a write transaction, which on PostgreSQL holds the
//! store's advisory write lock. `pg_cluster` starts the tests' throwaway
//! PostgreSQL.

mod accounts;
mod attempts;
pub mod audit;
pub mod browse;
mod callbacks;
pub mod campaigns;
pub mod casework;
pub mod cli;
mod codec;
pub mod db;
mod dnc;
mod error;
mod escalations;
mod export;
pub mod files;
mod history;
mod holds;
pub mod holdwork;
mod location;
mod lock;
pub mod nodes;
pub mod outbox;
mod pauses;
mod payments;
pub mod pg_cluster;
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
use db::{Db, Transaction};

pub use attempts::{
    AttemptId, AttemptRecord, AttemptState, Claim, EndedAttempt, LastCall, TurnRow,
};
pub(crate) use codec::ts;
pub use dnc::SuppressionRow;
pub(crate) use error::sql;
pub use error::StoreError;
pub use escalations::{Escalation, EscalationStatus, NewEscalation};
pub use export::ExportFormat;
pub use holds::HoldRow;
pub use location::Location;
pub use lock::{DataDirLock, LOCK_FILE};
pub use pauses::{EndedPause, PAID_REASON};

/// The database file inside a data directory.
pub const DB_FILE: &str = "duecall.db";

/// An open database in a data directory. Not `Sync`: give each thread its
/// own `Store` (several may be open on one directory at once), or share one
/// behind a mutex.
pub struct Store {
    conn: Db,
    path: PathBuf,
    /// The node named on the attempts this connection decides (its lease:
    /// `nodes`); `None` before `take_lease`.
    node: Option<String>,
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
        let open_err = |source: rusqlite::Error| StoreError::Open {
            path: path.to_path_buf(),
            source: source.into(),
        };
        let conn = rusqlite::Connection::open(path).map_err(open_err)?;
        // Writers queue behind each other instead of failing at once.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                source: db::Error::Other(format!("journal_mode stayed {mode}, WAL refused")),
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
        let conn = Db::sqlite(conn);
        schema::migrate(&conn, path, target)?;
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
            node: None,
        })
    }

    /// Opens the shared PostgreSQL database at `url`
    /// (`postgres://user@host:port/db`, several nodes on one campaign) and
    /// applies any pending migrations (several nodes may start at once: the
    /// migrations take the store's write lock).
    pub fn open_postgres(url: &str) -> Result<Store, StoreError> {
        Self::open_postgres_at(url, schema::LATEST)
    }

    fn open_postgres_at(url: &str, target: i64) -> Result<Store, StoreError> {
        let shown = PathBuf::from(redact_url(url));
        let conn = Db::postgres(url).map_err(|source| StoreError::Open {
            path: shown.clone(),
            source,
        })?;
        schema::migrate(&conn, &shown, target)?;
        Ok(Store {
            conn,
            path: shown,
            node: None,
        })
    }

    /// Opens the store a command names: the shared database at `url` when
    /// one is given (`--store` or `[store] url`), otherwise the embedded
    /// SQLite database of the data directory (created if needed).
    pub fn open_at(dir: &Path, url: Option<&str>) -> Result<Store, StoreError> {
        match url {
            Some(u) => Self::open_postgres(u),
            None => Self::open(dir),
        }
    }

    /// As [`Store::open_at`], for reading commands: without a shared
    /// database the data directory must already hold one.
    pub fn open_existing_at(dir: &Path, url: Option<&str>) -> Result<Store, StoreError> {
        match url {
            Some(u) => Self::open_postgres(u),
            None => Self::open_existing(dir),
        }
    }

    /// Which engine holds this store.
    pub fn dialect(&self) -> db::Dialect {
        self.conn.dialect()
    }

    /// How long a write waits for another connection's lock before it
    /// fails (10 s by default).
    pub fn set_busy_timeout(&mut self, t: Duration) -> Result<(), StoreError> {
        self.conn.set_busy_timeout(t).map_err(sql("busy_timeout"))
    }

    /// The database file (for PostgreSQL, its URL without the password).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::current_version(&self.conn).map_err(sql("schema_version"))
    }

    fn write_tx(&mut self, op: &'static str) -> Result<Transaction<'_>, StoreError> {
        // The write lock up front (SQLite's IMMEDIATE; PostgreSQL's
        // advisory write lock), so a read-then-write transaction never
        // fails half-way on, or races, a concurrent writer.
        self.conn.write_tx().map_err(sql(op))
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

/// A database URL as it may be shown: without its password.
pub fn redact_url(url: &str) -> String {
    // postgres://user:password@host/db -> postgres://user:***@host/db
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    if url.contains("password=") {
        return url
            .split_whitespace()
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=***"
                } else {
                    kv
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    url.to_owned()
}
