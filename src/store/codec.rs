//! How values are spelled in the database: times as fixed-width RFC 3339
//! UTC text (text order is time order), dispositions, route kinds, scopes
//! and JSON. Owns the conversions both ways; never runs a query.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};

use super::StoreError;
use crate::outcome::{parse_hhmm, AskedHours, Disposition, RouteKind, SuppressScope};

/// Formats a time the one way the store writes it: RFC 3339, UTC, ms, `Z`.
/// Fixed width, so text order is time order (years 0000-9999).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {s:?}: {e}")))
}

/// The end of a pause that has none: the last moment the fixed-width time
/// text can hold.
pub(super) fn pause_forever() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(super) fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(parse_ts).transpose()
}

pub(crate) fn parse_disposition(s: &str) -> Result<Disposition, StoreError> {
    Disposition::parse(s).ok_or_else(|| StoreError::Corrupt(format!("disposition {s:?}")))
}

pub(super) fn parse_json(s: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what} JSON: {e}")))
}

pub(super) fn parse_route_kind(s: &str) -> Result<RouteKind, StoreError> {
    RouteKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("route kind {s:?}")))
}

/// Reads a route's stored asked hours (`18:00-24:00`).
pub(super) fn parse_asked_hours(s: &str) -> Result<AskedHours, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("route hours: {e}")))
}

/// Reads a stored `HH:MM` bound of asked hours.
pub(super) fn parse_opt_hhmm(s: Option<String>) -> Result<Option<NaiveTime>, StoreError> {
    s.map(|s| parse_hhmm(&s).map_err(|e| StoreError::Corrupt(format!("asked hours: {e}"))))
        .transpose()
}

pub(super) fn parse_scope(s: &str) -> Result<SuppressScope, StoreError> {
    SuppressScope::parse(s).ok_or_else(|| StoreError::Corrupt(format!("suppression scope {s:?}")))
}
