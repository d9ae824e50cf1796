//! Opening a store: the data directory and its database file (private,
//! WAL), or a shared PostgreSQL database; migrations to the latest schema;
//! the write transaction every change takes; the export for the lender.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::db::{self, Db, Transaction};
use super::{export, files, redact_url, schema, sql, ExportFormat, Store, StoreError, DB_FILE};

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

    pub(super) fn open_file(path: &Path, target: i64) -> Result<Store, StoreError> {
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

    pub(super) fn open_postgres_at(url: &str, target: i64) -> Result<Store, StoreError> {
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

    pub(super) fn write_tx(&mut self, op: &'static str) -> Result<Transaction<'_>, StoreError> {
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
