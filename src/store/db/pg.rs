//! The PostgreSQL side of the one interface: values to and from its column
//! types, and the store's SQLite spelling translated to its dialect
//! (`pg_sql` for statements, `pg_ddl` for migrations), in one place.

use postgres::types::{FromSql as PgFromSql, IsNull, ToSql as PgToSql, Type};

use super::value::Value;

/// Binds a [`Value`] through rusqlite.
pub(super) struct SqliteValue<'a>(pub(super) &'a Value);

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

pub(super) fn pg_args(values: &[Value]) -> Vec<&(dyn PgToSql + Sync)> {
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
pub(super) struct PgValue(pub(super) Value);

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
