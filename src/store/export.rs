//! Export of attempts and their outcomes for the lender's systems. Owns the
//! two file shapes (CSV with a header, JSON lines); never changes the store.
//!
//! Only attempts duecall made and that have ended (`ended`, or
//! `failed_by_crash`) are exported: in-flight ones have no outcome yet, and
//! imported history came from the lender in the first place.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{sql, ts, AttemptId, AttemptRecord, Store, StoreError};

/// The shape of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV with a header row, one attempt per row (see `CSV_HEADER`).
    Csv,
    /// One JSON object per line: the attempt's outcome JSON
    /// (ARCHITECTURE.md) with `attempt_id`, `account_id`, `policy` and
    /// `state` from the store.
    Jsonl,
}

impl std::str::FromStr for ExportFormat {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" | "ndjson" => Ok(ExportFormat::Jsonl),
            _ => Err(StoreError::UnknownFormat(s.to_string())),
        }
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 19] = [
    "attempt_id",
    "account_id",
    "phone",
    "decided_at",
    "started_at",
    "ended_at",
    "state",
    "disposition",
    "reason",
    "sip_status",
    "conversation",
    "route_kind",
    "route_reason",
    "route_until",
    "route_scope",
    "follow_up_kind",
    "turns",
    "last_intent",
    "recording",
];

/// Writes every ended attempt whose dial started (or was decided) at or
/// after `since`, oldest first. Returns how many were written.
pub(super) fn export(
    store: &Store,
    since: DateTime<Utc>,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<usize, StoreError> {
    const OP: &str = "export";
    let ids: Vec<AttemptId> = {
        let mut st = store
            .conn
            .prepare(
                "SELECT id FROM attempts
                 WHERE source = 'duecall' AND state IN ('ended', 'failed_by_crash')
                   AND COALESCE(started_at, decided_at) >= ?1
                 ORDER BY COALESCE(started_at, decided_at), id",
            )
            .map_err(sql(OP))?;
        st.query_map([ts(since)], |r| r.get(0).map(AttemptId))
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?
    };
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(CSV_HEADER).map_err(StoreError::Csv)?;
            for id in &ids {
                let Some(a) = store.attempt(*id)? else {
                    continue;
                };
                w.write_record(csv_row(&a)).map_err(StoreError::Csv)?;
            }
            w.flush().map_err(StoreError::Write)?;
        }
        ExportFormat::Jsonl => {
            for id in &ids {
                let Some(a) = store.attempt(*id)? else {
                    continue;
                };
                let line = serde_json::to_string(&jsonl_object(&a)).map_err(StoreError::Json)?;
                writeln!(out, "{line}").map_err(StoreError::Write)?;
            }
            out.flush().map_err(StoreError::Write)?;
        }
    }
    Ok(ids.len())
}

fn opt_ts(t: Option<DateTime<Utc>>) -> String {
    t.map(ts).unwrap_or_default()
}

fn csv_row(a: &AttemptRecord) -> Vec<String> {
    let route = a.route.as_ref();
    vec![
        a.id.to_string(),
        a.account_id.clone(),
        a.phone.clone(),
        ts(a.decided_at),
        opt_ts(a.started_at),
        opt_ts(a.ended_at),
        a.state.as_str().to_string(),
        a.disposition
            .map(|d| d.as_str().to_string())
            .unwrap_or_default(),
        a.reason.clone().unwrap_or_default(),
        a.sip_status.map(|s| s.to_string()).unwrap_or_default(),
        a.conversation.to_string(),
        route.map(|r| word(&r.kind)).unwrap_or_default(),
        route.map(|r| r.reason.clone()).unwrap_or_default(),
        opt_ts(route.and_then(|r| r.until).map(|t| t.with_timezone(&Utc))),
        route
            .and_then(|r| r.scope.as_ref())
            .map(word)
            .unwrap_or_default(),
        route
            .and_then(|r| r.follow_up.as_ref())
            .map(|f| word(&f.kind))
            .unwrap_or_default(),
        a.turns.len().to_string(),
        a.turns
            .iter()
            .rev()
            .find_map(|t| t.intent.clone())
            .unwrap_or_default(),
        a.recording.clone().unwrap_or_default(),
    ]
}

/// Serde's spelling of a unit enum (`no_answer`, `number`), without quotes.
fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn jsonl_object(a: &AttemptRecord) -> Value {
    let mut obj = match &a.outcome {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        // A crashed attempt (or one recorded without JSON): build the same
        // shape from the columns, so every line reads alike.
        _ => json!({
            "call": {
                "to": a.phone,
                "disposition": a.disposition.map(|d| d.as_str()),
                "reason": a.reason,
                "sip_status": a.sip_status,
                "started_at": a.started_at.map(ts),
                "ended_at": a.ended_at.map(ts),
                "recording": a.recording,
            },
            "turns": a.turns,
            "route": a.route,
        }),
    };
    if let Value::Object(m) = &mut obj {
        m.insert("attempt_id".into(), json!(a.id.0));
        m.insert("account_id".into(), json!(a.account_id));
        m.insert("policy".into(), a.policy.clone());
        m.insert("state".into(), json!(a.state.as_str()));
        m.insert("conversation".into(), json!(a.conversation));
    }
    obj
}
