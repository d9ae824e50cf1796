//! `/api/v1/stats`: the campaign dashboard's figures over a time range:
//! calls, calls in flight, outcomes, right-party contact and promise-to-pay
//! rates, escalations, reply latency percentiles, and per-day series for
//! the charts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::store::browse::DayStats;
use crate::web::auth::{Authed, SeeStats};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::ApiQuery;
use crate::web::state::AppState;

/// The range of the statistics.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// From this instant (RFC 3339; default: today 00:00 UTC).
    pub since: Option<DateTime<Utc>>,
    /// Before this instant (RFC 3339; default: now + 1 day).
    pub until: Option<DateTime<Utc>>,
}

/// The dashboard's figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    /// Range start.
    pub since: DateTime<Utc>,
    /// Range end.
    pub until: DateTime<Utc>,
    /// Calls decided in the range.
    pub attempts: u64,
    /// Calls in flight now.
    pub in_flight: u64,
    /// Ended calls by disposition.
    pub by_disposition: BTreeMap<String, u64>,
    /// Routes by kind.
    pub by_route: BTreeMap<String, u64>,
    /// Calls by the last intent heard.
    pub by_intent: BTreeMap<String, u64>,
    /// Answered calls.
    pub answered: u64,
    /// Calls where the right person was spoken with.
    pub right_party_contacts: u64,
    /// Right-party contacts over calls (0-1).
    pub right_party_contact_rate: f64,
    /// Calls with a promise to pay.
    pub promises: u64,
    /// Promises over right-party contacts (0-1).
    pub promise_to_pay_rate: f64,
    /// Escalations raised in the range.
    pub escalations_raised: u64,
    /// Escalations open or claimed now.
    pub escalations_open: u64,
    /// Replies measured.
    pub replies: u64,
    /// Reply latency, median, ms.
    pub reply_latency_p50_ms: Option<u64>,
    /// Reply latency, 95th percentile, ms.
    pub reply_latency_p95_ms: Option<u64>,
    /// Reply latencies in 100 ms bins up to 2 s (the last bin: 2 s and more).
    pub reply_latency_histogram: Vec<u64>,
    /// Per day, for the charts.
    pub per_day: Vec<DayStats>,
}

pub use crate::stats::quantile;

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The campaign's figures over a range.
#[utoipa::path(get, path = "/api/v1/stats", tag = "stats",
    params(StatsQuery),
    responses((status = 200, body = Stats),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn stats(
    State(st): State<AppState>,
    _who: Authed<SeeStats>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<Stats>, WebError> {
    let now = st.now();
    let since = q.since.unwrap_or_else(|| {
        now.date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now)
    });
    let until = q.until.unwrap_or(now + Duration::days(1));
    if until <= since {
        return Err(WebError::bad("until", "must be after since"));
    }
    if until - since > Duration::days(3660) {
        return Err(WebError::bad("since", "the range is at most 10 years"));
    }
    let s = st.db.run(move |s| s.campaign_stats(since, until)).await?;
    let mut lat = s.reply_latency_ms.clone();
    lat.sort_unstable();
    let mut hist = vec![0u64; 21];
    for ms in &lat {
        hist[((*ms / 100) as usize).min(20)] += 1;
    }
    Ok(Json(Stats {
        since,
        until,
        attempts: s.attempts,
        in_flight: s.in_flight,
        by_disposition: s.by_disposition,
        by_route: s.by_route,
        by_intent: s.by_intent,
        answered: s.answered,
        right_party_contacts: s.right_party_contacts,
        right_party_contact_rate: ratio(s.right_party_contacts, s.attempts),
        promises: s.promises,
        promise_to_pay_rate: ratio(s.promises, s.right_party_contacts),
        escalations_raised: s.escalations_raised,
        escalations_open: s.escalations_open,
        replies: lat.len() as u64,
        reply_latency_p50_ms: quantile(&lat, 0.5),
        reply_latency_p95_ms: quantile(&lat, 0.95),
        reply_latency_histogram: hist,
        per_day: s.per_day,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.95), Some(95));
        assert_eq!(quantile(&[7], 0.95), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
