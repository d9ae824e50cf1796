//! The lender's two other files: the do-not-call list (`duecall suppress
//! import`: columns `phone` or `account_id`, `scope`, `reason`) and the
//! payments file (`duecall payments`: `account_id,amount,paid_at`). Reads
//! them whole or not at all: the first bad row stops the read, naming its
//! line and what is wrong (a do-not-call list read in part would call
//! someone it names; a payment read in part could close or escalate the
//! wrong case). Never writes; never decides.

use std::io::Read;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::csv::normalise_phone;
use crate::outcome::SuppressScope;

/// One do-not-call entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoNotCall {
    /// The number (E.164), if the row names one.
    pub phone: Option<String>,
    /// The account, if the row names one.
    pub account_id: Option<String>,
    /// `number`: that number (of that account, or of every account);
    /// `account`: every number of the account (or of every account that
    /// lists the number).
    pub scope: SuppressScope,
    /// Why (shown in every decision it causes).
    pub reason: String,
}

/// One payment towards a debt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payment {
    /// The debt it pays.
    pub account_id: String,
    /// How much (exact decimal, positive).
    pub amount: Decimal,
    /// When it was paid.
    pub paid_at: DateTime<Utc>,
}

/// A row that stops the read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ListError {
    /// 1-based line (1 is the header).
    pub line: u64,
    /// What is wrong, naming the column.
    pub reason: String,
}

struct Table {
    cols: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

fn read_table<R: Read>(reader: R, known: &[&str]) -> Result<Table, ListError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .has_headers(true)
        .from_reader(reader);
    let headers = rdr.headers().map_err(|e| ListError {
        line: 1,
        reason: format!("cannot read the header: {e}"),
    })?;
    let cols: Vec<String> = headers
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    for c in &cols {
        if !known.contains(&c.as_str()) {
            return Err(ListError {
                line: 1,
                reason: format!("unknown column '{c}' (known: {})", known.join(", ")),
            });
        }
    }
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| ListError {
            line: e.position().map(|p| p.line()).unwrap_or(0),
            reason: format!("unreadable row: {e}"),
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        rows.push((line, rec.iter().map(|f| f.trim().to_string()).collect()));
    }
    Ok(Table { cols, rows })
}

impl Table {
    fn get<'a>(&self, row: &'a [String], col: &str) -> Option<&'a str> {
        let i = self.cols.iter().position(|c| c == col)?;
        row.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }
}

/// Reads a do-not-call list. A row needs `phone` or `account_id` (or both)
/// and a `reason`; `scope` is `number` or `account` (default: `number` when
/// the row names a phone, else `account`).
pub fn read_do_not_call<R: Read>(
    reader: R,
    default_region: &str,
) -> Result<Vec<DoNotCall>, ListError> {
    let t = read_table(reader, &["phone", "account_id", "scope", "reason"])?;
    if !t.cols.iter().any(|c| c == "phone" || c == "account_id") {
        return Err(ListError {
            line: 1,
            reason: "needs a phone or an account_id column".into(),
        });
    }
    let mut out = Vec::new();
    for (line, row) in &t.rows {
        let err = |reason: String| ListError {
            line: *line,
            reason,
        };
        let phone = t
            .get(row, "phone")
            .map(|p| normalise_phone(p, default_region))
            .transpose()
            .map_err(err)?;
        let account_id = t.get(row, "account_id").map(str::to_string);
        if phone.is_none() && account_id.is_none() {
            return Err(err("neither phone nor account_id".into()));
        }
        let scope = match t.get(row, "scope") {
            None if phone.is_some() => SuppressScope::Number,
            None => SuppressScope::Account,
            Some(s) => SuppressScope::parse(&s.to_ascii_lowercase())
                .ok_or_else(|| err(format!("scope '{s}' is not number or account")))?,
        };
        if scope == SuppressScope::Number && phone.is_none() {
            return Err(err("scope number needs a phone".into()));
        }
        let reason = t
            .get(row, "reason")
            .ok_or_else(|| err("reason is empty (it is shown in every decision)".into()))?
            .to_string();
        out.push(DoNotCall {
            phone,
            account_id,
            scope,
            reason,
        });
    }
    Ok(out)
}

/// Reads a payments file: `account_id`, `amount` (positive decimal),
/// `paid_at` (RFC 3339, or a date: that day 00:00 UTC).
pub fn read_payments<R: Read>(reader: R) -> Result<Vec<Payment>, ListError> {
    let t = read_table(reader, &["account_id", "amount", "paid_at"])?;
    for c in ["account_id", "amount", "paid_at"] {
        if !t.cols.iter().any(|h| h == c) {
            return Err(ListError {
                line: 1,
                reason: format!("missing column '{c}' (account_id, amount, paid_at)"),
            });
        }
    }
    let mut out = Vec::new();
    for (line, row) in &t.rows {
        let err = |reason: String| ListError {
            line: *line,
            reason,
        };
        let account_id = t
            .get(row, "account_id")
            .ok_or_else(|| err("account_id is empty".into()))?
            .to_string();
        let raw = t.get(row, "amount").unwrap_or("");
        let amount = Decimal::from_str(raw)
            .ok()
            .filter(|a| *a > Decimal::ZERO)
            .ok_or_else(|| err(format!("amount '{raw}' is not a positive decimal")))?;
        let raw = t.get(row, "paid_at").unwrap_or("");
        let paid_at = DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDate::from_str(raw).map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
            })
            .map_err(|_| {
                err(format!(
                    "paid_at '{raw}' is not an RFC 3339 time or a YYYY-MM-DD date"
                ))
            })?;
        out.push(Payment {
            account_id,
            amount,
            paid_at,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_do_not_call_list_is_read_whole_with_default_scopes() {
        let l = read_do_not_call(
            "phone,account_id,scope,reason\n+14155550100,,,asked by letter\n,A7,,lawyer\n(415) 555-0101,A8,account,deceased\n"
                .as_bytes(),
            "US",
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].scope, SuppressScope::Number);
        assert_eq!(l[0].phone.as_deref(), Some("+14155550100"));
        assert_eq!(l[1].scope, SuppressScope::Account);
        assert_eq!(l[1].account_id.as_deref(), Some("A7"));
        assert_eq!(l[2].phone.as_deref(), Some("+14155550101"));
        assert_eq!(l[2].scope, SuppressScope::Account);
    }

    #[test]
    fn one_bad_row_stops_the_read_naming_its_line() {
        let e = read_do_not_call(
            "phone,reason\n+14155550100,ok\n12ab,bad\n+14155550102,never read\n".as_bytes(),
            "US",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("12ab"), "{e}");
        let e = read_do_not_call("phone,reason\n+14155550100,\n".as_bytes(), "US").unwrap_err();
        assert!(e.reason.contains("reason"), "{e}");
        let e = read_do_not_call("account_id,scope,reason\nA1,number,x\n".as_bytes(), "US")
            .unwrap_err();
        assert!(e.reason.contains("needs a phone"), "{e}");
        let e = read_do_not_call("phon,reason\n".as_bytes(), "US").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn payments_are_exact_and_dated_or_the_line_is_named() {
        let p = read_payments(
            "account_id,amount,paid_at\nA1,100.10,2026-11-20T10:00:00+08:00\nA1,25,2026-11-21\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(p[0].amount, Decimal::from_str("100.10").unwrap());
        assert_eq!(p[0].paid_at.to_rfc3339(), "2026-11-20T02:00:00+00:00");
        assert_eq!(p[1].paid_at.to_rfc3339(), "2026-11-21T00:00:00+00:00");
        let e =
            read_payments("account_id,amount,paid_at\nA1,-3,2026-11-21\n".as_bytes()).unwrap_err();
        assert_eq!(e.line, 2);
        let e = read_payments("account_id,amount\n".as_bytes()).unwrap_err();
        assert!(e.reason.contains("paid_at"), "{e}");
    }
}
