//! Attempt history imported from another dialler, so the caps count calls that
//! were placed before duecall took over. Owns the `PastAttempt` shape the
//! policy counts and the JSON-lines import; never decides and never dials.
//!
//! One JSON object per line:
//! `{"account_id":"A1","phone":"+14155550100","at":"2026-11-21T10:05:00-08:00","disposition":"no-answer","conversation":false}`.
//! `phone` is normalised to E.164 (numbers without `+` use the default region);
//! `disposition` is the shared list (`answered`, `voicemail`, `busy`,
//! `no-answer`, `rejected`, `not-found`, `failed`, `cancelled`);
//! `conversation` (default false) says the debtor was reached and spoken to.
//! Extra keys are ignored (other diallers add their own); blank lines are skipped.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outcome::Disposition;

/// One dial that left our side (or another dialler's), as the caps count it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastAttempt {
    /// The debt the call was about.
    pub account_id: String,
    /// The number dialled, E.164.
    pub phone: String,
    /// When the dial left (UTC).
    pub at: DateTime<Utc>,
    /// How it ended.
    pub disposition: Disposition,
    /// Whether the debtor was reached and spoken to (a "contact").
    #[serde(default)]
    pub conversation: bool,
}

/// A history line that could not be used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What was wrong, in words the operator can act on.
    pub reason: String,
}

/// The result of an import: every good record, every bad line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistoryReport {
    /// Records accepted, in file order.
    pub records: Vec<PastAttempt>,
    /// Lines rejected, with their line numbers.
    pub errors: Vec<LineError>,
}

#[derive(Deserialize)]
struct RawLine {
    account_id: Option<String>,
    phone: Option<String>,
    at: Option<String>,
    disposition: Option<String>,
    #[serde(default)]
    conversation: Option<bool>,
}

/// Reads JSON lines of attempts; bad lines are reported and skipped, good ones
/// kept. `default_region` (ISO 3166 like "US") is used for numbers without `+`.
pub fn load_history<R: BufRead>(reader: R, default_region: &str) -> HistoryReport {
    let mut report = HistoryReport::default();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let bytes = match line {
            Ok(b) => b,
            Err(e) => {
                report.errors.push(LineError {
                    line: line_no,
                    reason: format!("read error: {e}"),
                });
                break;
            }
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            report.errors.push(LineError {
                line: line_no,
                reason: "not valid UTF-8".into(),
            });
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match parse_line(text, default_region) {
            Ok(r) => report.records.push(r),
            Err(reason) => report.errors.push(LineError {
                line: line_no,
                reason,
            }),
        }
    }
    report
}

fn parse_line(text: &str, default_region: &str) -> Result<PastAttempt, String> {
    let raw: RawLine = serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let account_id = raw
        .account_id
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or("missing account_id")?;
    let phone_raw = raw.phone.ok_or("missing phone")?;
    let phone = super::csv::normalise_phone(&phone_raw, default_region)?;
    let at_raw = raw.at.ok_or("missing at")?;
    let at = DateTime::parse_from_rfc3339(at_raw.trim())
        .map_err(|e| format!("at '{at_raw}' is not an RFC 3339 time: {e}"))?
        .with_timezone(&Utc);
    let d = raw.disposition.ok_or("missing disposition")?;
    let disposition = Disposition::parse(d.trim()).ok_or_else(|| {
        format!("disposition '{d}' is not one of answered, voicemail, busy, no-answer, rejected, not-found, failed, cancelled")
    })?;
    Ok(PastAttempt {
        account_id,
        phone,
        at,
        disposition,
        conversation: raw.conversation.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_lines_are_kept_and_bad_lines_reported_with_their_numbers() {
        let input = concat!(
            r#"{"account_id":"A1","phone":"+14155550100","at":"2026-11-21T10:05:00-08:00","disposition":"no-answer","conversation":false}"#,
            "\n",
            "\n",
            r#"{"account_id":"A1","phone":"415 555 0101","at":"2026-11-21T18:05:00Z","disposition":"answered","conversation":true,"agent":"x"}"#,
            "\n",
            r#"{"account_id":"A2","phone":"+14155550100","at":"yesterday","disposition":"busy"}"#,
            "\n",
            r#"{"account_id":"A2","phone":"+14155550100","at":"2026-11-21T10:05:00Z","disposition":"hung"}"#,
            "\n",
            "not json\n",
            r#"{"account_id":"A3","phone":"12ab","at":"2026-11-21T10:05:00Z","disposition":"busy"}"#,
            "\n",
        );
        let r = load_history(input.as_bytes(), "US");
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[1].phone, "+14155550101");
        assert!(r.records[1].conversation);
        assert_eq!(r.records[0].at.to_rfc3339(), "2026-11-21T18:05:00+00:00");
        let lines: Vec<usize> = r.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7]);
        assert!(r.errors[0].reason.contains("yesterday"));
        assert!(r.errors[1].reason.contains("hung"));
        assert!(r.errors[3].reason.contains("12ab"));
    }
}
