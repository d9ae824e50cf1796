//! The store's one database interface over its two backends: SQLite (the
//! embedded default, one node) and PostgreSQL (several nodes sharing one
//! campaign). It owns the connection, transactions, statements with typed
//! parameters and rows, and the few dialect differences, translated in one
//! place (`pg_sql`, `pg_ddl`); the store's SQL is written once, in the
//! SQLite spelling, and never branches on the backend except where a
//! function has no common spelling (`Db::dialect`).
//!
//! The API mirrors the part of rusqlite the store used (`prepare`,
//! `execute`, `query_row`, `query_map`, `optional`, `params!`), so a query
//! reads the same whichever engine runs it. Values travel as [`Value`]: the
//! same integer and text encodings in both engines (times as fixed-form UTC
//! text, booleans as 0/1 when read), converted to the column's own type at
//! the PostgreSQL boundary.
//!
//! It never decides anything and never reads the clock; it never logs
//! parameters (they hold phone numbers and names).
//!
//! - `value`: `Value`, the conversions into and out of it, `Row`, `Error`.
//! - `pg`: PostgreSQL's column types and the SQL translated to its dialect.

mod pg;
mod value;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

pub use crate::store_params as params;
use pg::{pg_args, PgValue, SqliteValue};
pub use pg::{pg_ddl, pg_sql};
pub use value::{
    params_from_iter, Dialect, Error, FromRow, FromSql, OptionalExtension, Params, ParamsFromIter,
    Result, Row, RowIndex, ToSql, Value,
};

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres {
        client: PgClient,
        statements: RefCell<HashMap<String, postgres::Statement>>,
    },
}

/// One connection to the store's database. Not `Sync`: one per thread.
pub struct Db {
    backend: Backend,
    /// Depth of open transactions (0 or 1: the store never nests them).
    in_tx: std::cell::Cell<bool>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dialect", &self.dialect())
            .finish()
    }
}

/// The key of the PostgreSQL advisory lock every write transaction takes
/// (`pg_advisory_xact_lock`): writers queue behind each other as SQLite's
/// `BEGIN IMMEDIATE` makes them, so a read-then-write (the gate's decision
/// after counting the caps) never races another node's.
pub const PG_WRITE_LOCK: i64 = 0x0064_7565_6361_6c6c; // "duecall"

impl Db {
    /// Wraps an open SQLite connection.
    pub fn sqlite(conn: rusqlite::Connection) -> Db {
        Db {
            backend: Backend::Sqlite(conn),
            in_tx: std::cell::Cell::new(false),
        }
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db`).
    pub fn postgres(url: &str) -> Result<Db> {
        let client = off_runtime(|| postgres::Client::connect(url, postgres::NoTls))?;
        Ok(Db {
            backend: Backend::Postgres {
                client: PgClient(Some(Box::new(RefCell::new(client)))),
                statements: RefCell::new(HashMap::new()),
            },
            in_tx: std::cell::Cell::new(false),
        })
    }

    /// Which engine this is.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// The SQLite connection (pragmas, busy timeout), if this is SQLite.
    pub fn sqlite_conn(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(c) => Some(c),
            Backend::Postgres { .. } => None,
        }
    }

    /// How long a statement waits for another connection's lock before it
    /// fails.
    pub fn set_busy_timeout(&self, t: Duration) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.busy_timeout(t)?),
            Backend::Postgres { client, .. } => {
                off_runtime(|| {
                    client
                        .borrow_mut()
                        .batch_execute(&format!("SET lock_timeout = {}", t.as_millis()))
                })?;
                Ok(())
            }
        }
    }

    /// Runs several statements without parameters (migrations). On
    /// PostgreSQL the DDL is translated first (`pg_ddl`).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Postgres { client, .. } => {
                off_runtime(|| client.borrow_mut().batch_execute(&pg_ddl(sql)))?;
                Ok(())
            }
        }
    }

    /// A statement to run (once or many times).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            db: self,
            sql: sql.to_owned(),
        })
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.run_execute(sql, params.values())
    }

    /// Runs a query that must return a row; maps the first.
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row) -> Result<T>,
    {
        let rows = self.run_query(sql, params.values())?;
        match rows.first() {
            Some(r) => f(r),
            None => Err(Error::NoRows),
        }
    }

    /// Runs a query that must return a row; its columns in order as `T`
    /// (a tuple: [`FromRow`]).
    pub fn query_one<T: FromRow, P: Params>(&self, sql: &str, params: P) -> Result<T> {
        self.query_row(sql, params, T::from_row)
    }

    /// Begins a write transaction: SQLite's `BEGIN IMMEDIATE` (the write
    /// lock up front); on PostgreSQL `BEGIN` and the store's advisory write
    /// lock, which serialises writers across every node the same way.
    /// Rolled back when dropped without `commit`.
    pub fn write_tx(&self) -> Result<Transaction<'_>> {
        match &self.backend {
            Backend::Sqlite(c) => c.execute_batch("BEGIN IMMEDIATE")?,
            Backend::Postgres { client, .. } => {
                off_runtime(|| -> Result<()> {
                    let mut c = client.borrow_mut();
                    c.batch_execute("BEGIN")?;
                    if let Err(e) = c.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_WRITE_LOCK])
                    {
                        let _ = c.batch_execute("ROLLBACK");
                        return Err(e.into());
                    }
                    Ok(())
                })?;
            }
        }
        self.in_tx.set(true);
        Ok(Transaction {
            db: self,
            done: false,
        })
    }

    /// Begins a dial claim's transaction: on SQLite `BEGIN IMMEDIATE` (its
    /// one write lock, as [`Db::write_tx`]); on PostgreSQL a plain `BEGIN`
    /// without the store's advisory write lock: the claim then locks only
    /// its own account's and number's rows (`FOR UPDATE SKIP LOCKED` in
    /// `claim_locks`), so claims of different accounts on different numbers
    /// run side by side across nodes. Rolled back when dropped without
    /// `commit`.
    pub fn claim_tx(&self) -> Result<Transaction<'_>> {
        match &self.backend {
            Backend::Sqlite(_) => return self.write_tx(),
            Backend::Postgres { client, .. } => {
                off_runtime(|| client.borrow_mut().batch_execute("BEGIN"))?;
            }
        }
        self.in_tx.set(true);
        Ok(Transaction {
            db: self,
            done: false,
        })
    }

    /// Begins a read transaction: one consistent view across several
    /// queries, taking no write lock.
    pub fn read_tx(&self) -> Result<Transaction<'_>> {
        match &self.backend {
            Backend::Sqlite(c) => c.execute_batch("BEGIN DEFERRED")?,
            Backend::Postgres { client, .. } => client
                .borrow_mut()
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?,
        }
        self.in_tx.set(true);
        Ok(Transaction {
            db: self,
            done: false,
        })
    }

    fn raw_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Postgres { client, .. } => {
                Ok(off_runtime(|| client.borrow_mut().batch_execute(sql))?)
            }
        }
    }

    fn run_execute(&self, sql: &str, values: Vec<Value>) -> Result<usize> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(values.iter().map(SqliteValue)))?)
            }
            Backend::Postgres { client, statements } => {
                let st = self.pg_statement(client, statements, sql)?;
                let args = pg_args(&values);
                let n = off_runtime(|| client.borrow_mut().execute(&st, &args))?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    fn run_query(&self, sql: &str, values: Vec<Value>) -> Result<Vec<Row>> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows =
                    st.query(rusqlite::params_from_iter(values.iter().map(SqliteValue)))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        vals.push(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                            rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                            rusqlite::types::ValueRef::Text(t) => {
                                Value::Text(String::from_utf8_lossy(t).into_owned())
                            }
                            rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        });
                    }
                    out.push(Row { values: vals });
                }
                Ok(out)
            }
            Backend::Postgres { client, statements } => {
                let st = self.pg_statement(client, statements, sql)?;
                let args = pg_args(&values);
                let rows = off_runtime(|| client.borrow_mut().query(&st, &args))?;
                rows.iter()
                    .map(|r| {
                        let mut vals = Vec::with_capacity(r.len());
                        for i in 0..r.len() {
                            vals.push(r.try_get::<_, PgValue>(i)?.0);
                        }
                        Ok(Row { values: vals })
                    })
                    .collect()
            }
        }
    }

    fn pg_statement(
        &self,
        client: &RefCell<postgres::Client>,
        statements: &RefCell<HashMap<String, postgres::Statement>>,
        sql: &str,
    ) -> Result<postgres::Statement> {
        if let Some(st) = statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = off_runtime(|| client.borrow_mut().prepare(&pg_sql(sql)))?;
        statements.borrow_mut().insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

/// Runs a call of the synchronous PostgreSQL client, which blocks on a
/// runtime of its own: inside a worker of a multi-threaded tokio runtime
/// (the campaign runner, the service) it runs under `block_in_place`, which
/// allows that; elsewhere (a plain or a blocking-pool thread) as is.
fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The synchronous PostgreSQL client, dropped where blocking is allowed:
/// its own runtime may not be dropped inside an async context.
struct PgClient(Option<Box<RefCell<postgres::Client>>>);

impl std::ops::Deref for PgClient {
    type Target = RefCell<postgres::Client>;
    fn deref(&self) -> &Self::Target {
        // Only `drop` takes the client out.
        self.0.as_ref().expect("PostgreSQL client used after drop")
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        let Some(client) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(move || drop(client))
            }
            // A current-thread runtime may not block: another thread closes it.
            Ok(_) => {
                std::thread::spawn(move || drop(client));
            }
            Err(_) => drop(client),
        }
    }
}

/// An open transaction; it derefs to the connection, so queries inside it
/// read like queries outside. Rolled back on drop unless committed.
pub struct Transaction<'a> {
    db: &'a Db,
    done: bool,
}

impl Transaction<'_> {
    /// Makes the transaction's writes durable and visible.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.db.in_tx.set(false);
        self.db.raw_batch("COMMIT")
    }

    /// Drops the transaction's writes.
    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.db.in_tx.set(false);
        self.db.raw_batch("ROLLBACK")
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.db.in_tx.set(false);
            // Nothing to do with a failure here: the connection is then
            // broken and its next statement says so.
            let _ = self.db.raw_batch("ROLLBACK");
        }
    }
}

/// A statement bound to a connection (`Db::prepare`).
pub struct Statement<'a> {
    db: &'a Db,
    sql: String,
}

impl Statement<'_> {
    /// Runs it; the number of rows changed.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.db.run_execute(&self.sql, params.values())
    }

    /// Runs it and maps every row.
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row) -> Result<T>,
    {
        let rows = self.db.run_query(&self.sql, params.values())?;
        Ok(rows.iter().map(&mut f).collect::<Vec<_>>().into_iter())
    }

    /// Runs it; every row's columns in order as `T` (a tuple: [`FromRow`]).
    pub fn query_all<T: FromRow, P: Params>(&mut self, params: P) -> Result<Vec<T>> {
        let rows = self.db.run_query(&self.sql, params.values())?;
        rows.iter().map(T::from_row).collect()
    }

    /// Runs it; the first row's columns in order as `T` (`Error::NoRows`
    /// when there is none).
    pub fn query_one<T: FromRow, P: Params>(&mut self, params: P) -> Result<T> {
        self.db.query_one(&self.sql, params)
    }

    /// Runs it; maps the first row (`Error::NoRows` when there is none).
    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row) -> Result<T>,
    {
        self.db.query_row(&self.sql, params, f)
    }
}

#[cfg(test)]
mod tests;
