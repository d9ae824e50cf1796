//! Filtered, ordered, paged lists (the web API's list endpoints): a
//! `WHERE` clause built from optional filters with numbered placeholders,
//! and one page of rows with the count of all rows the filter matches.
//! Owns only the query's shape; what each list filters on and how its rows
//! read stay with the list (`browse`, `casework`, `audit`). Never builds SQL
//! from values: every value is a bound parameter.

use super::db::{self, Row, ToSql};
use super::error::sql;
use super::{Store, StoreError};

/// A `WHERE` clause and its bound values, built condition by condition.
#[derive(Default)]
pub(super) struct Where {
    conds: Vec<String>,
    args: Vec<Box<dyn ToSql>>,
}

impl Where {
    /// A condition with one value: each `?` in `cond` becomes this value's
    /// numbered placeholder.
    pub(super) fn bind(&mut self, cond: &str, v: impl ToSql + 'static) {
        self.args.push(Box::new(v));
        self.conds
            .push(cond.replace('?', &format!("?{}", self.args.len())));
    }

    /// `col = value` when the filter is set.
    pub(super) fn eq(&mut self, col: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.bind(&format!("{col} = ?"), v.clone());
        }
    }

    /// A condition without values.
    pub(super) fn raw(&mut self, cond: impl Into<String>) {
        self.conds.push(cond.into());
    }

    /// Any one of `values` in `col` (nothing when empty).
    pub(super) fn any_of(&mut self, col: &str, values: &[&'static str]) {
        if values.is_empty() {
            return;
        }
        let mut ors = Vec::with_capacity(values.len());
        for v in values {
            self.args.push(Box::new(*v));
            ors.push(format!("{col} = ?{}", self.args.len()));
        }
        self.conds.push(format!("({})", ors.join(" OR ")));
    }

    /// `WHERE a AND b ...`, or nothing when no filter is set.
    fn clause(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conds.join(" AND "))
        }
    }
}

/// One page: which rows, in which order, how many.
pub(super) struct Page<'a> {
    /// The `FROM` part: a table, or tables joined.
    pub from: &'a str,
    /// The selected columns.
    pub columns: &'a str,
    /// The `ORDER BY` part (ends with a unique column, so pages are stable).
    pub order: &'a str,
    /// Rows in the page.
    pub limit: u32,
    /// Rows skipped before it (`None`: no `OFFSET`, and no total counted).
    pub offset: Option<u32>,
}

impl Store {
    /// The page's rows read by `row`, and how many rows the filter matches
    /// in all (counted only when the page has an offset; else 0).
    pub(super) fn page<T>(
        &self,
        op: &'static str,
        mut filter: Where,
        page: Page<'_>,
        row: impl FnMut(&Row) -> db::Result<T>,
    ) -> Result<(Vec<T>, u64), StoreError> {
        let clause = filter.clause();
        let Page {
            from,
            columns,
            order,
            limit,
            offset,
        } = page;
        let total = match offset {
            Some(_) => {
                let n: i64 = self
                    .conn
                    .query_row(
                        &format!("SELECT COUNT(*) FROM {from} {clause}"),
                        db::params_from_iter(filter.args.iter()),
                        |r| r.get(0),
                    )
                    .map_err(sql(op))?;
                n.max(0) as u64
            }
            None => 0,
        };
        filter.args.push(Box::new(i64::from(limit)));
        let mut text = format!(
            "SELECT {columns} FROM {from} {clause} ORDER BY {order} LIMIT ?{}",
            filter.args.len()
        );
        if let Some(off) = offset {
            filter.args.push(Box::new(i64::from(off)));
            text.push_str(&format!(" OFFSET ?{}", filter.args.len()));
        }
        let mut st = self.conn.prepare(&text).map_err(sql(op))?;
        let rows = st
            .query_map(db::params_from_iter(filter.args.iter()), row)
            .map_err(sql(op))?
            .collect::<Result<Vec<T>, _>>()
            .map_err(sql(op))?;
        Ok((rows, total))
    }
}
