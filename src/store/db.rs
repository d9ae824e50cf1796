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

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use postgres::types::{FromSql as PgFromSql, IsNull, ToSql as PgToSql, Type};

/// A value as the store writes and reads it, whichever engine holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (booleans are 0 and 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text (times in the store's fixed UTC form).
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded SQLite database of one data directory.
    Sqlite,
    /// A PostgreSQL database shared by several nodes.
    Postgres,
}

/// What a query failed with, from either engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What SQLite said.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// What PostgreSQL said (with its detail and hint when it gave them).
    #[error("{}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    /// A query that must return one row returned none.
    #[error("query returned no rows")]
    NoRows,
    /// A column held a value of another type than the code reads.
    #[error("column {index}: expected {expected}, found {found}")]
    Type {
        /// The column's position.
        index: usize,
        /// The Rust type asked for.
        expected: &'static str,
        /// What the row held.
        found: &'static str,
    },
    /// A column index past the row's end.
    #[error("no column {0} in the row")]
    NoColumn(usize),
    /// Anything else the layer refuses (an unusable option, a value a
    /// column cannot hold).
    #[error("{0}")]
    Other(String),
}

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!(" hint: {h}"));
            }
            m
        }
        None => e.to_string(),
    }
}

impl Error {
    /// Whether the engine refused because another connection held a lock
    /// too long (SQLite's busy or locked; PostgreSQL's lock timeout or a
    /// serialization failure): the operation may succeed if retried.
    pub fn is_busy(&self) -> bool {
        match self {
            Error::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Error::Postgres(e) => matches!(
                e.code().map(|c| c.code()),
                Some("55P03" | "40001" | "40P01")
            ),
            _ => false,
        }
    }
}

/// The store's query result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value that can be bound as a query parameter.
pub trait ToSql {
    /// The value as the store encodes it.
    fn to_value(&self) -> Value;
}

impl ToSql for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl ToSql for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl ToSql for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToSql for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl ToSql for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
impl ToSql for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToSql for f32 {
    fn to_value(&self) -> Value {
        Value::Real(f64::from(*self))
    }
}
macro_rules! int_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_to_sql!(i8, i16, i32, i64, u8, u16, u32);
impl ToSql for u64 {
    fn to_value(&self) -> Value {
        // The store's counts and ids fit; a larger value is clamped rather
        // than wrapped into a negative number.
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToSql for usize {
    fn to_value(&self) -> Value {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}
impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToSql + ?Sized> ToSql for Box<T> {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

/// A query's parameters.
pub trait Params {
    /// The parameters in order (`?1` first).
    fn values(self) -> Vec<Value>;
}

impl Params for &[&dyn ToSql] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
impl Params for () {
    fn values(self) -> Vec<Value> {
        Vec::new()
    }
}
impl Params for [&dyn ToSql; 0] {
    fn values(self) -> Vec<Value> {
        Vec::new()
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
        impl<T: ToSql> Params for &[T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);

/// Parameters from an iterator (a filter built at run time).
pub struct ParamsFromIter(Vec<Value>);

impl Params for ParamsFromIter {
    fn values(self) -> Vec<Value> {
        self.0
    }
}

/// Parameters from an iterator of bindable values.
pub fn params_from_iter<I>(iter: I) -> ParamsFromIter
where
    I: IntoIterator,
    I::Item: ToSql,
{
    ParamsFromIter(iter.into_iter().map(|v| v.to_value()).collect())
}

/// A list of parameters of mixed types: `params![a, b, c]`.
#[macro_export]
macro_rules! store_params {
    () => {
        &[] as &[&dyn $crate::store::db::ToSql]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::ToSql),+] as &[&dyn $crate::store::db::ToSql]
    };
}
pub use crate::store_params as params;

/// A value that can be read from a column.
pub trait FromSql: Sized {
    /// Reads the value in column `index` (for the error).
    fn from_value(v: &Value, index: usize) -> Result<Self>;
}

fn mismatch<T>(index: usize, expected: &'static str, v: &Value) -> Result<T> {
    Err(Error::Type {
        index,
        expected,
        found: v.kind(),
    })
}

impl FromSql for Value {
    fn from_value(v: &Value, _: usize) -> Result<Self> {
        Ok(v.clone())
    }
}
impl FromSql for i64 {
    fn from_value(v: &Value, index: usize) -> Result<Self> {
        match v {
            Value::Int(i) => Ok(*i),
            _ => mismatch(index, "integer", v),
        }
    }
}
macro_rules! int_from_sql {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_value(v: &Value, index: usize) -> Result<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).map_err(|_| Error::Type {
                        index,
                        expected: stringify!($t),
                        found: "integer out of range",
                    }),
                    _ => mismatch(index, stringify!($t), v),
                }
            }
        }
    )*};
}
int_from_sql!(i32, u32, u16, u64, usize, i16, u8);
impl FromSql for bool {
    fn from_value(v: &Value, index: usize) -> Result<Self> {
        match v {
            Value::Int(i) => Ok(*i != 0),
            _ => mismatch(index, "bool", v),
        }
    }
}
impl FromSql for f64 {
    fn from_value(v: &Value, index: usize) -> Result<Self> {
        match v {
            Value::Real(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            _ => mismatch(index, "real", v),
        }
    }
}
impl FromSql for f32 {
    fn from_value(v: &Value, index: usize) -> Result<Self> {
        f64::from_value(v, index).map(|f| f as f32)
    }
}
impl FromSql for String {
    fn from_value(v: &Value, index: usize) -> Result<Self> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            _ => mismatch(index, "text", v),
        }
    }
}
impl FromSql for Vec<u8> {
    fn from_value(v: &Value, index: usize) -> Result<Self> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            _ => mismatch(index, "blob", v),
        }
    }
}
impl<T: FromSql> FromSql for Option<T> {
    fn from_value(v: &Value, index: usize) -> Result<Self> {
        match v {
            Value::Null => Ok(None),
            _ => T::from_value(v, index).map(Some),
        }
    }
}

/// One row of a result.
#[derive(Debug)]
pub struct Row {
    values: Vec<Value>,
}

/// A column position (`usize`).
pub trait RowIndex {
    /// The position.
    fn index(&self) -> usize;
}
impl RowIndex for usize {
    fn index(&self) -> usize {
        *self
    }
}
impl RowIndex for i32 {
    fn index(&self) -> usize {
        usize::try_from(*self).unwrap_or(usize::MAX)
    }
}

impl Row {
    /// The value of column `idx` as `T`.
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        let i = idx.index();
        let v = self.values.get(i).ok_or(Error::NoColumn(i))?;
        T::from_value(v, i)
    }
}

/// A row read whole, column by column in order, into a tuple of column
/// values: what every store query maps its rows to before building its own
/// type (`query_all`, `query_one`), so no query spells `r.get(0)?, ...`.
pub trait FromRow: Sized {
    /// The row's columns `0..n` as `Self`.
    fn from_row(r: &Row) -> Result<Self>;
}

macro_rules! from_row_tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FromSql),+> FromRow for ($($t,)+) {
            fn from_row(r: &Row) -> Result<Self> {
                Ok(($(r.get::<usize, $t>($i)?,)+))
            }
        }
    };
}
from_row_tuple!(A 0);
from_row_tuple!(A 0, B 1);
from_row_tuple!(A 0, B 1, C 2);
from_row_tuple!(A 0, B 1, C 2, D 3);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
from_row_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);

/// `Option` for queries that may find nothing.
pub trait OptionalExtension<T> {
    /// `Ok(None)` where the query returned no rows.
    fn optional(self) -> Result<Option<T>>;
}
impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

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

/// Binds a [`Value`] through rusqlite.
struct SqliteValue<'a>(&'a Value);

impl rusqlite::ToSql for SqliteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn pg_args(values: &[Value]) -> Vec<&(dyn PgToSql + Sync)> {
    values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect()
}

/// A [`Value`] is sent as the type PostgreSQL inferred for its parameter
/// (the column it is compared with or written to): an integer becomes a
/// `boolean` for a boolean column, a 32-bit integer for an `integer`; a
/// value that the type cannot hold is an error naming both.
impl PgToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let refuse = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("cannot send a {} as {}", self.kind(), ty).into()
        };
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => {
                i32::try_from(*i).map_err(|_| refuse())?.to_sql(ty, out)
            }
            (Value::Int(i), &Type::INT2) => {
                i16::try_from(*i).map_err(|_| refuse())?.to_sql(ty, out)
            }
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT4) => (*i as f32).to_sql(ty, out),
            (Value::Int(i), &Type::TEXT | &Type::VARCHAR | &Type::UNKNOWN) => {
                i.to_string().to_sql(&Type::TEXT, out)
            }
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (
                Value::Text(s),
                &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN,
            ) => s.as_str().to_sql(&Type::TEXT, out),
            (Value::Text(s), &Type::JSON) => s.as_str().to_sql(&Type::TEXT, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            _ => Err(refuse()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// Reads any column the store writes back into a [`Value`].
struct PgValue(Value);

impl<'a> PgFromSql<'a> for PgValue {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(match *ty {
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
                Value::Text(String::from_sql(&Type::TEXT, raw)?)
            }
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            ref other => {
                return Err(format!(
                    "the store reads no column of type {other} (cast it in the query)"
                )
                .into())
            }
        }))
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The store's SQL (SQLite spelling) in PostgreSQL's: `?N` placeholders
/// become `$N` (a bare `?` takes the next number), outside string literals
/// and quoted names; `json_each(x)` (a JSON array's elements, read as
/// `alias.value`) becomes `json_array_elements_text((x)::json)`.
pub fn pg_sql(sql: &str) -> String {
    placeholders(&json_each(sql))
}

fn json_each(sql: &str) -> String {
    const FROM: &str = "json_each(";
    let mut out = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    while let Some(at) = rest.find(FROM) {
        out.push_str(&rest[..at]);
        let inner_start = at + FROM.len();
        let mut depth = 1;
        let mut end = None;
        for (i, c) in rest[inner_start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(inner_start + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            out.push_str(&rest[at..]);
            return out;
        };
        out.push_str("json_array_elements_text((");
        out.push_str(&rest[inner_start..end]);
        out.push_str(")::json)");
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 0u32;
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The migrations' DDL (SQLite spelling) in PostgreSQL's: `INTEGER PRIMARY
/// KEY` ids become identity columns, every `INTEGER` a `BIGINT` (the store
/// binds 64-bit integers), `REAL` a `DOUBLE PRECISION`, `BLOB` a `BYTEA`.
/// Times stay TEXT in the fixed UTC form, so both engines compare them the
/// same way (the database must use the C collation for text order to be
/// byte order; `duecall migrate` checks).
pub fn pg_ddl(sql: &str) -> String {
    let words = [
        // PostgreSQL's identities never reuse an id, as AUTOINCREMENT.
        (
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        ),
        (
            "INTEGER PRIMARY KEY",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        ),
        ("INTEGER", "BIGINT"),
        ("REAL", "DOUBLE PRECISION"),
        ("BLOB", "BYTEA"),
    ];
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    'outer: while !rest.is_empty() {
        let at_word_start = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if at_word_start {
            for (from, to) in words {
                if let Some(after) = rest.strip_prefix(from) {
                    if after
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
                    {
                        out.push_str(to);
                        rest = after;
                        continue 'outer;
                    }
                }
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
