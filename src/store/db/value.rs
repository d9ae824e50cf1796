//! What travels between the store and either engine: [`Value`], the
//! conversions into it (`ToSql`, `Params`, `params!`) and out of it
//! (`FromSql`, `Row`, `FromRow`), and the one error type. Pure shapes; the
//! connection is `db`'s.

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
    pub(super) fn kind(&self) -> &'static str {
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

pub(super) fn pg_message(e: &postgres::Error) -> String {
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
    pub(super) values: Vec<Value>,
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
