//! Read-only views of the campaign tables for the service's API and
//! console: attempts listed with filters, the figures of the campaign
//! dashboard. Owns no table and writes nothing.

use std::collections::BTreeMap;

use super::db::params;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::codec::{parse_disposition, parse_opt_ts, parse_ts, ts};
use super::listing::{Page, Where};
use super::{sql, Store, StoreError};

/// Which attempts to list.
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    /// Only this account.
    pub account_id: Option<String>,
    /// Only this disposition (`answered`, `busy`, ...).
    pub disposition: Option<String>,
    /// Only attempts routed this way (`agent`, `pause`, ...).
    pub route: Option<String>,
    /// Only attempts where some turn had this intent.
    pub intent: Option<String>,
    /// Only attempts decided at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only attempts decided before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only attempts whose lowest turn confidence is below this.
    pub max_confidence: Option<f64>,
    /// Only attempts with (true) or without (false) a QA label.
    pub labelled: Option<bool>,
    /// Oldest first (default: newest first).
    pub oldest_first: bool,
    /// At most this many.
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// One attempt as a list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptSummary {
    /// Attempt id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// The number dialled (mask it before showing it to people).
    pub phone: String,
    /// When the gate allowed it.
    pub decided_at: DateTime<Utc>,
    /// When the INVITE left.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// `decided`, `dialling`, `ended`, `failed_by_crash`.
    pub state: String,
    /// How it ended.
    pub disposition: Option<String>,
    /// Why, for `failed`.
    pub reason: Option<String>,
    /// Whether the right person was spoken with.
    pub conversation: bool,
    /// Route kind.
    pub route: Option<String>,
    /// Route reason.
    pub route_reason: Option<String>,
    /// The last intent recognised in the call.
    pub intent: Option<String>,
    /// The lowest intent confidence of the call's turns.
    pub min_confidence: Option<f64>,
    /// Number of turns.
    pub turns: u32,
    /// Whether a recording was kept.
    pub has_recording: bool,
    /// QA labels on the call.
    pub labels: u32,
    /// Where the attempt came from (`duecall`, or `import` for history).
    pub source: String,
}

const SUMMARY_COLUMNS: &str =
    "a.id, a.account_id, a.phone, a.decided_at, a.started_at, a.ended_at, a.state,
       a.disposition, a.reason, a.conversation, r.kind, r.reason,
       (SELECT t.intent FROM turns t WHERE t.attempt_id = a.id AND t.intent IS NOT NULL
         ORDER BY t.idx DESC LIMIT 1),
       (SELECT MIN(t.confidence) FROM turns t WHERE t.attempt_id = a.id),
       (SELECT COUNT(*) FROM turns t WHERE t.attempt_id = a.id),
       a.recording IS NOT NULL,
       (SELECT COUNT(*) FROM qa_labels l WHERE l.attempt_id = a.id),
       a.source";
const SUMMARY_FROM: &str = "attempts a LEFT JOIN routes r ON r.attempt_id = a.id";

type Raw = (
    (i64, String, String, String, Option<String>, Option<String>),
    (String, Option<String>, Option<String>, bool, Option<String>),
    (
        Option<String>,
        Option<String>,
        Option<f64>,
        i64,
        bool,
        i64,
        String,
    ),
);

fn raw(r: &super::db::Row) -> super::db::Result<Raw> {
    Ok((
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ),
        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?),
        (
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
            r.get(15)?,
            r.get(16)?,
            r.get(17)?,
        ),
    ))
}

fn cook(raw: Raw) -> Result<AttemptSummary, StoreError> {
    let (
        (id, account_id, phone, decided, started, ended),
        (state, disposition, reason, conversation, route),
        (route_reason, intent, min_conf, turns, has_rec, labels, source),
    ) = raw;
    Ok(AttemptSummary {
        id,
        account_id,
        phone,
        decided_at: parse_ts(&decided)?,
        started_at: parse_opt_ts(started)?,
        ended_at: parse_opt_ts(ended)?,
        state,
        disposition,
        reason,
        conversation,
        route,
        route_reason,
        intent,
        min_confidence: min_conf,
        turns: turns.clamp(0, u32::MAX as i64) as u32,
        has_recording: has_rec,
        labels: labels.clamp(0, u32::MAX as i64) as u32,
        source,
    })
}

/// The campaign dashboard's figures over a time range.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct CampaignStats {
    /// Attempts decided in the range.
    pub attempts: u64,
    /// Attempts decided or dialling now (calls in flight).
    pub in_flight: u64,
    /// Ended attempts by disposition.
    pub by_disposition: BTreeMap<String, u64>,
    /// Routes by kind.
    pub by_route: BTreeMap<String, u64>,
    /// Ended attempts by the last intent of the call.
    pub by_intent: BTreeMap<String, u64>,
    /// Answered attempts.
    pub answered: u64,
    /// Attempts where the right person was spoken with.
    pub right_party_contacts: u64,
    /// Attempts where the debtor promised to pay.
    pub promises: u64,
    /// Escalations raised in the range.
    pub escalations_raised: u64,
    /// Escalations open or claimed now (whenever raised).
    pub escalations_open: u64,
    /// Attempts per day (UTC date of the decision).
    pub per_day: Vec<DayStats>,
    /// Reply latencies (ms) of the calls in the range, from their outcome
    /// JSON: from the debtor's last voiced frame to our next prompt's
    /// first frame.
    pub reply_latency_ms: Vec<u64>,
}

/// One day of the dashboard's chart (the API's `per_day`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DayStats {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Attempts decided that day.
    pub attempts: u64,
    /// Of which answered.
    pub answered: u64,
    /// Of which right-party contacts.
    pub right_party_contacts: u64,
    /// Of which promises to pay.
    pub promises: u64,
}

/// The latency of each reply an outcome JSON records (`reply_timings`):
/// from the end of the debtor's voice to our answer's first frame.
pub fn reply_latencies(outcome: &serde_json::Value) -> Vec<u64> {
    outcome
        .get("reply_timings")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    let end = t.get("voice_end_ms")?.as_u64()?;
                    let started = t.get("started_ms")?.as_u64()?;
                    (started >= end && started > 0).then_some(started - end)
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    /// Attempts with filters, and the total that matches before paging.
    pub fn list_attempts(
        &self,
        f: &AttemptFilter,
    ) -> Result<(Vec<AttemptSummary>, u64), StoreError> {
        let mut w = Where::default();
        w.eq("a.account_id", &f.account_id);
        w.eq("a.disposition", &f.disposition);
        w.eq("r.kind", &f.route);
        if let Some(v) = &f.intent {
            w.bind(
                "EXISTS (SELECT 1 FROM turns t WHERE t.attempt_id = a.id AND t.intent = ?)",
                v.clone(),
            );
        }
        if let Some(v) = f.since {
            w.bind("a.decided_at >= ?", ts(v));
        }
        if let Some(v) = f.until {
            w.bind("a.decided_at < ?", ts(v));
        }
        if let Some(v) = f.max_confidence {
            w.bind(
                "(SELECT MIN(t.confidence) FROM turns t WHERE t.attempt_id = a.id) < ?",
                v,
            );
        }
        match f.labelled {
            Some(true) => w.raw("EXISTS (SELECT 1 FROM qa_labels l WHERE l.attempt_id = a.id)"),
            Some(false) => {
                w.raw("NOT EXISTS (SELECT 1 FROM qa_labels l WHERE l.attempt_id = a.id)")
            }
            None => {}
        }
        let page = Page {
            from: SUMMARY_FROM,
            columns: SUMMARY_COLUMNS,
            order: if f.oldest_first {
                "a.decided_at, a.id"
            } else {
                "a.decided_at DESC, a.id DESC"
            },
            limit: f.limit,
            offset: Some(f.offset),
        };
        let (raws, total) = self.page("list_attempts", w, page, raw)?;
        let list = raws.into_iter().map(cook).collect::<Result<_, _>>()?;
        Ok((list, total))
    }

    /// The dashboard's figures for attempts decided in `[since, until)`.
    pub fn campaign_stats(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<CampaignStats, StoreError> {
        const OP: &str = "campaign_stats";
        let mut s = CampaignStats::default();
        let (a, b) = (ts(since), ts(until));
        let count = |q: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row(q, params![a, b], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(sql(OP))
        };
        let range = "a.decided_at >= ?1 AND a.decided_at < ?2 AND a.source = 'duecall'";
        s.attempts = count(&format!("SELECT COUNT(*) FROM attempts a WHERE {range}"))?;
        s.answered = count(&format!(
            "SELECT COUNT(*) FROM attempts a WHERE {range} AND a.disposition = 'answered'"
        ))?;
        s.right_party_contacts = count(&format!(
            "SELECT COUNT(*) FROM attempts a WHERE {range} AND a.conversation"
        ))?;
        s.promises = count(&format!(
            "SELECT COUNT(*) FROM attempts a WHERE {range} AND EXISTS
               (SELECT 1 FROM turns t WHERE t.attempt_id = a.id AND t.intent = 'promise_to_pay')"
        ))?;
        s.escalations_raised = count(
            "SELECT COUNT(*) FROM escalations e WHERE e.created_at >= ?1 AND e.created_at < ?2",
        )?;
        s.in_flight = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM attempts WHERE state IN ('decided', 'dialling') AND source = 'duecall'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(sql(OP))?
            .max(0) as u64;
        s.escalations_open = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM escalations WHERE status IN ('open', 'claimed')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(sql(OP))?
            .max(0) as u64;
        let grouped = |q: &str| -> Result<BTreeMap<String, u64>, StoreError> {
            let mut st = self.conn.prepare(q).map_err(sql(OP))?;
            let rows: Vec<(Option<String>, i64)> = st.query_all(params![a, b]).map_err(sql(OP))?;
            Ok(rows
                .into_iter()
                .filter_map(|(k, n)| k.map(|k| (k, n.max(0) as u64)))
                .collect())
        };
        s.by_disposition = grouped(&format!(
            "SELECT a.disposition, COUNT(*) FROM attempts a WHERE {range} AND a.disposition IS NOT NULL
             GROUP BY a.disposition"
        ))?;
        s.by_route = grouped(&format!(
            "SELECT r.kind, COUNT(*) FROM attempts a JOIN routes r ON r.attempt_id = a.id WHERE {range}
             GROUP BY r.kind"
        ))?;
        s.by_intent = grouped(&format!(
            "SELECT (SELECT t.intent FROM turns t WHERE t.attempt_id = a.id AND t.intent IS NOT NULL
                     ORDER BY t.idx DESC LIMIT 1) AS i, COUNT(*)
             FROM attempts a WHERE {range} GROUP BY i"
        ))?;
        {
            let mut st = self
                .conn
                .prepare(&format!(
                    "SELECT substr(a.decided_at, 1, 10) AS d, COUNT(*),
                        SUM(CASE WHEN a.disposition = 'answered' THEN 1 ELSE 0 END),
                        SUM(CASE WHEN a.conversation THEN 1 ELSE 0 END),
                        SUM(CASE WHEN EXISTS (SELECT 1 FROM turns t WHERE t.attempt_id = a.id
                                              AND t.intent = 'promise_to_pay') THEN 1 ELSE 0 END)
                     FROM attempts a WHERE {range} GROUP BY d ORDER BY d"
                ))
                .map_err(sql(OP))?;
            s.per_day = st
                .query_map(params![a, b], |r| {
                    Ok(DayStats {
                        day: r.get(0)?,
                        attempts: r.get::<_, i64>(1)?.max(0) as u64,
                        answered: r.get::<_, i64>(2)?.max(0) as u64,
                        right_party_contacts: r.get::<_, i64>(3)?.max(0) as u64,
                        promises: r.get::<_, i64>(4)?.max(0) as u64,
                    })
                })
                .map_err(sql(OP))?
                .collect::<Result<_, _>>()
                .map_err(sql(OP))?;
        }
        {
            let mut st = self
                .conn
                .prepare(&format!(
                    "SELECT a.outcome FROM attempts a WHERE {range} AND a.outcome IS NOT NULL
                       AND a.outcome LIKE '%reply_timings%'"
                ))
                .map_err(sql(OP))?;
            let outs: Vec<String> = st
                .query_map(params![a, b], |r| r.get(0))
                .map_err(sql(OP))?
                .collect::<Result<_, _>>()
                .map_err(sql(OP))?;
            for o in outs {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&o) {
                    s.reply_latency_ms.extend(reply_latencies(&v));
                }
            }
        }
        // Disposition spellings are checked on the way out: a row edited by
        // hand shows up as an error, not as a new category.
        for k in s.by_disposition.keys() {
            parse_disposition(k)?;
        }
        Ok(s)
    }

    /// Attempts that ended with id above `after` (in id order), with their
    /// outcome JSON: what the metrics fold in incrementally. Also returns
    /// the ids at or below the highest returned that are still in flight.
    pub fn ended_outcomes_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String, Option<serde_json::Value>)>, StoreError> {
        const OP: &str = "ended_outcomes_after";
        let mut st = self
            .conn
            .prepare(
                "SELECT id, state, outcome FROM attempts WHERE id > ?1 AND source = 'duecall'
                 ORDER BY id LIMIT ?2",
            )
            .map_err(sql(OP))?;
        let rows: Vec<(i64, String, Option<String>)> =
            st.query_all(params![after, limit]).map_err(sql(OP))?;
        Ok(rows
            .into_iter()
            .map(|(id, state, o)| (id, state, o.and_then(|o| serde_json::from_str(&o).ok())))
            .collect())
    }

    /// The state and outcome JSON of some attempts (the metrics revisit
    /// those that were in flight).
    pub fn outcomes_of(
        &self,
        ids: &[i64],
    ) -> Result<Vec<(i64, String, Option<serde_json::Value>)>, StoreError> {
        const OP: &str = "outcomes_of";
        let mut out = Vec::new();
        let mut st = self
            .conn
            .prepare("SELECT id, state, outcome FROM attempts WHERE id = ?1")
            .map_err(sql(OP))?;
        for id in ids {
            let r: Option<(i64, String, Option<String>)> =
                super::db::OptionalExtension::optional(st.query_one([id])).map_err(sql(OP))?;
            if let Some((id, state, o)) = r {
                out.push((id, state, o.and_then(|o| serde_json::from_str(&o).ok())));
            }
        }
        Ok(out)
    }

    /// Counts for the metrics: attempts by disposition, routes by kind,
    /// escalations open, calls in flight (whole store).
    pub fn metric_counts(&self) -> Result<MetricCounts, StoreError> {
        const OP: &str = "metric_counts";
        let grouped = |q: &str| -> Result<BTreeMap<String, u64>, StoreError> {
            let mut st = self.conn.prepare(q).map_err(sql(OP))?;
            let rows: Vec<(Option<String>, i64)> = st.query_all([]).map_err(sql(OP))?;
            Ok(rows
                .into_iter()
                .filter_map(|(k, n)| k.map(|k| (k, n.max(0) as u64)))
                .collect())
        };
        Ok(MetricCounts {
            attempts_by_disposition: grouped(
                "SELECT disposition, COUNT(*) FROM attempts WHERE source = 'duecall'
                 AND disposition IS NOT NULL AND state IN ('ended', 'failed_by_crash') GROUP BY disposition",
            )?,
            routes_by_kind: grouped("SELECT kind, COUNT(*) FROM routes GROUP BY kind")?,
            escalations_by_status: grouped(
                "SELECT status, COUNT(*) FROM escalations GROUP BY status",
            )?,
            in_flight: self
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM attempts WHERE state IN ('decided', 'dialling') AND source = 'duecall'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(sql(OP))?
                .max(0) as u64,
        })
    }
}

/// Whole-store counts the metrics expose.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricCounts {
    /// Ended attempts by disposition.
    pub attempts_by_disposition: BTreeMap<String, u64>,
    /// Routes by kind.
    pub routes_by_kind: BTreeMap<String, u64>,
    /// Escalations by status.
    pub escalations_by_status: BTreeMap<String, u64>,
    /// Attempts decided or dialling.
    pub in_flight: u64,
}
