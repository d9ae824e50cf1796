//! `GET /metrics` in the Prometheus text format. Owns the service's own
//! counters (HTTP requests, webhook tries) and a fold over the outcomes in
//! the store (reply latency histogram, recogniser time, RTP loss), read
//! incrementally so a scrape costs the calls ended since the last one, not
//! the whole history. Counts that any process may change (attempts by
//! disposition, routes, escalations, calls in flight, webhook backlog) are
//! read from the store at each scrape, so calls placed by `duecall run`
//! beside the service are counted too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Mutex;

use crate::outcome::{Disposition, RouteKind};
use crate::store::browse::{reply_latencies, MetricCounts};
use crate::store::outbox::Backlog;
use crate::store::{Store, StoreError};

/// Reply latency histogram buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 11] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0];

/// A Prometheus histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Counts per bucket (not cumulative), one more for +Inf.
    pub buckets: Vec<u64>,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; LATENCY_BUCKETS.len() + 1];
        }
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += v;
        self.count += 1;
    }
}

/// What the fold over ended calls has gathered.
#[derive(Debug, Default)]
struct Fold {
    /// Highest attempt id looked at.
    cursor: i64,
    /// Ids at or below the cursor that were still in flight then.
    in_flight: BTreeSet<i64>,
    reply_latency: Histogram,
    asr_decode_ms: u64,
    asr_audio_ms: u64,
    rtp_lost: u64,
    rtp_received: u64,
}

impl Fold {
    fn add(&mut self, outcome: &serde_json::Value) {
        for ms in reply_latencies(outcome) {
            self.reply_latency.observe(ms as f64 / 1000.0);
        }
        if let Some(ts) = outcome.get("reply_timings").and_then(|v| v.as_array()) {
            for t in ts {
                self.asr_decode_ms += t.get("asr_decode_ms").and_then(|v| v.as_u64()).unwrap_or(0);
                self.asr_audio_ms += t.get("asr_audio_ms").and_then(|v| v.as_u64()).unwrap_or(0);
            }
        }
        let rx = outcome.pointer("/call/rtp/received");
        self.rtp_lost += rx
            .and_then(|r| r.get("lost"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        self.rtp_received += rx
            .and_then(|r| r.get("packets"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
    }

    /// Folds in attempts ended since the last scrape.
    fn catch_up(&mut self, store: &Store) -> Result<(), StoreError> {
        let revisit: Vec<i64> = self.in_flight.iter().copied().collect();
        for (id, state, outcome) in store.outcomes_of(&revisit)? {
            if state == "decided" || state == "dialling" {
                continue;
            }
            self.in_flight.remove(&id);
            if let Some(o) = outcome {
                self.add(&o);
            }
        }
        loop {
            let batch = store.ended_outcomes_after(self.cursor, 500)?;
            if batch.is_empty() {
                return Ok(());
            }
            for (id, state, outcome) in batch {
                self.cursor = self.cursor.max(id);
                if state == "decided" || state == "dialling" {
                    self.in_flight.insert(id);
                } else if let Some(o) = outcome {
                    self.add(&o);
                }
            }
        }
    }
}

/// The service's metrics registry.
#[derive(Debug, Default)]
pub struct Metrics {
    fold: Mutex<Fold>,
    http: Mutex<BTreeMap<(String, u16), u64>>,
    webhook: Mutex<BTreeMap<&'static str, u64>>,
    dialling_accounts: std::sync::atomic::AtomicU64,
}

impl Metrics {
    /// Counts one HTTP answer by route template and status.
    pub fn http(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.http.lock() {
            *m.entry((route.to_string(), status)).or_insert(0) += 1;
        }
    }

    /// Counts one webhook try by result (`delivered`, `failed`).
    pub fn webhook_try(&self, result: &'static str) {
        if let Ok(mut m) = self.webhook.lock() {
            *m.entry(result).or_insert(0) += 1;
        }
    }

    /// How many accounts the dialler is running now (running campaigns).
    pub fn set_dialling_accounts(&self, n: u64) {
        self.dialling_accounts
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Renders everything, reading what it needs from `store`.
    pub fn render(&self, store: &Store) -> Result<String, StoreError> {
        let counts = store.metric_counts()?;
        let backlog = store.webhook_backlog()?;
        let mut fold = self
            .fold
            .lock()
            .map_err(|_| StoreError::Corrupt("metrics lock poisoned".into()))?;
        fold.catch_up(store)?;
        let http = self.http.lock().map(|m| m.clone()).unwrap_or_default();
        let webhook = self.webhook.lock().map(|m| m.clone()).unwrap_or_default();
        let mut text = render_text(&counts, &backlog, &fold, &http, &webhook);
        let _ = writeln!(
            text,
            "# HELP duecall_campaign_accounts Accounts of the running campaigns the service is dialling.\n\
             # TYPE duecall_campaign_accounts gauge\nduecall_campaign_accounts {}",
            self.dialling_accounts
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        if let Some(r) = crate::telephony::sip::registration_gauge() {
            let _ = writeln!(
                text,
                "# HELP duecall_sip_registered Whether the SIP gateway is registered at its trunk ([sip] register).\n\
                 # TYPE duecall_sip_registered gauge\nduecall_sip_registered {}",
                u8::from(r)
            );
        }
        text.push_str(&render_trunks(&crate::telephony::sip::trunk_snapshots()));
        if let Some(up) = crate::telephony::sip::trunk_gauge() {
            let _ = writeln!(
                text,
                "# HELP duecall_sip_trunk_up Whether the SIP trunk answers OPTIONS pings ([sip] options_ping_s).\n\
                 # TYPE duecall_sip_trunk_up gauge\nduecall_sip_trunk_up {}",
                u8::from(up)
            );
        }
        Ok(text)
    }
}

/// The per-trunk series, labelled by the trunk's name: calls placed,
/// answered, failed and failed over, calls in flight, registered (only
/// trunks that register) and OPTIONS up (only trunks that are pinged).
/// Nothing without trunks.
fn render_trunks(trunks: &[crate::telephony::sip::TrunkSnapshot]) -> String {
    use crate::telephony::sip::TrunkSnapshot;
    let mut o = String::new();
    if trunks.is_empty() {
        return o;
    }
    type Get = fn(&TrunkSnapshot) -> Option<u64>;
    let series: [(&str, &str, &str, Get); 7] = [
        (
            "duecall_trunk_calls_placed_total",
            "counter",
            "Calls placed through the trunk (a failover to it counts).",
            |t| Some(t.placed),
        ),
        (
            "duecall_trunk_calls_answered_total",
            "counter",
            "Calls answered through the trunk.",
            |t| Some(t.answered),
        ),
        (
            "duecall_trunk_calls_failed_total",
            "counter",
            "Calls that ended unanswered on the trunk (busy, rejected, no answer, or its own failure with no trunk left).",
            |t| Some(t.failed),
        ),
        (
            "duecall_trunk_calls_failed_over_total",
            "counter",
            "Calls the trunk failed (503, no answer to the INVITE, a transport error) that moved on to the next trunk.",
            |t| Some(t.failed_over),
        ),
        (
            "duecall_trunk_calls_in_flight",
            "gauge",
            "Calls through the trunk now.",
            |t| Some(t.in_flight),
        ),
        (
            "duecall_trunk_registered",
            "gauge",
            "Whether duecall is registered at the trunk (trunks with register = true).",
            |t| t.registered.map(u64::from),
        ),
        (
            "duecall_trunk_options_up",
            "gauge",
            "Whether the trunk answers OPTIONS pings ([sip] options_ping_s).",
            |t| t.options_up.map(u64::from),
        ),
    ];
    for (name, kind, help, get) in series {
        let rows: Vec<(&str, u64)> = trunks
            .iter()
            .filter_map(|t| get(t).map(|v| (t.trunk.as_str(), v)))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (trunk, v) in rows {
            let _ = writeln!(o, "{name}{{trunk=\"{}\"}} {v}", esc(trunk));
        }
    }
    o
}

/// Escapes a label value.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_text(
    c: &MetricCounts,
    backlog: &[Backlog],
    f: &Fold,
    http: &BTreeMap<(String, u16), u64>,
    webhook: &BTreeMap<&'static str, u64>,
) -> String {
    let mut o = String::new();
    let head = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
    };
    head(
        &mut o,
        "duecall_calls_in_flight",
        "gauge",
        "Attempts decided or dialling now.",
    );
    let _ = writeln!(o, "duecall_calls_in_flight {}", c.in_flight);

    head(
        &mut o,
        "duecall_attempts_total",
        "counter",
        "Ended attempts by disposition.",
    );
    for d in Disposition::ALL.iter().map(|d| d.as_str()) {
        let n = c.attempts_by_disposition.get(d).copied().unwrap_or(0);
        let _ = writeln!(o, "duecall_attempts_total{{disposition=\"{d}\"}} {n}");
    }
    head(
        &mut o,
        "duecall_routes_total",
        "counter",
        "Routes decided, by kind.",
    );
    for k in RouteKind::ALL.iter().map(|k| k.as_str()) {
        let n = c.routes_by_kind.get(k).copied().unwrap_or(0);
        let _ = writeln!(o, "duecall_routes_total{{kind=\"{k}\"}} {n}");
    }
    head(
        &mut o,
        "duecall_escalations_open",
        "gauge",
        "Escalations open or claimed (not closed).",
    );
    let open = c.escalations_by_status.get("open").copied().unwrap_or(0)
        + c.escalations_by_status.get("claimed").copied().unwrap_or(0);
    let _ = writeln!(o, "duecall_escalations_open {open}");
    head(
        &mut o,
        "duecall_escalations",
        "gauge",
        "Escalations by status.",
    );
    for s in ["open", "claimed", "closed"] {
        let n = c.escalations_by_status.get(s).copied().unwrap_or(0);
        let _ = writeln!(o, "duecall_escalations{{status=\"{s}\"}} {n}");
    }

    head(
        &mut o,
        "duecall_reply_latency_seconds",
        "histogram",
        "From the end of the debtor's reply to the first frame of our answer.",
    );
    let mut cum = 0;
    let buckets = if f.reply_latency.buckets.is_empty() {
        vec![0; LATENCY_BUCKETS.len() + 1]
    } else {
        f.reply_latency.buckets.clone()
    };
    for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
        cum += buckets[i];
        let _ = writeln!(
            o,
            "duecall_reply_latency_seconds_bucket{{le=\"{b}\"}} {cum}"
        );
    }
    cum += buckets[LATENCY_BUCKETS.len()];
    let _ = writeln!(
        o,
        "duecall_reply_latency_seconds_bucket{{le=\"+Inf\"}} {cum}"
    );
    let _ = writeln!(
        o,
        "duecall_reply_latency_seconds_sum {}",
        f.reply_latency.sum
    );
    let _ = writeln!(
        o,
        "duecall_reply_latency_seconds_count {}",
        f.reply_latency.count
    );

    head(
        &mut o,
        "duecall_asr_decode_seconds_total",
        "counter",
        "Recogniser time spent decoding replies.",
    );
    let _ = writeln!(
        o,
        "duecall_asr_decode_seconds_total {}",
        f.asr_decode_ms as f64 / 1000.0
    );
    head(
        &mut o,
        "duecall_asr_audio_seconds_total",
        "counter",
        "Reply audio fed to the recogniser.",
    );
    let _ = writeln!(
        o,
        "duecall_asr_audio_seconds_total {}",
        f.asr_audio_ms as f64 / 1000.0
    );
    head(
        &mut o,
        "duecall_asr_real_time_factor",
        "gauge",
        "Recogniser decode time over audio time, all replies so far (below 1: faster than real time).",
    );
    let rtf = if f.asr_audio_ms > 0 {
        f.asr_decode_ms as f64 / f.asr_audio_ms as f64
    } else {
        0.0
    };
    let _ = writeln!(o, "duecall_asr_real_time_factor {rtf}");

    head(
        &mut o,
        "duecall_rtp_packets_lost_total",
        "counter",
        "RTP packets lost on received streams.",
    );
    let _ = writeln!(o, "duecall_rtp_packets_lost_total {}", f.rtp_lost);
    head(
        &mut o,
        "duecall_rtp_packets_received_total",
        "counter",
        "RTP packets received.",
    );
    let _ = writeln!(o, "duecall_rtp_packets_received_total {}", f.rtp_received);

    head(
        &mut o,
        "duecall_webhook_backlog",
        "gauge",
        "Webhook events not yet acknowledged by an endpoint (pending deliveries plus events not fanned out).",
    );
    for b in backlog {
        let _ = writeln!(
            o,
            "duecall_webhook_backlog{{endpoint=\"{}\"}} {}",
            esc(&b.endpoint),
            b.pending + b.unread
        );
    }
    head(
        &mut o,
        "duecall_webhook_tries_total",
        "counter",
        "Webhook POSTs by result.",
    );
    for r in ["delivered", "failed"] {
        let n = webhook.get(r).copied().unwrap_or(0);
        let _ = writeln!(o, "duecall_webhook_tries_total{{result=\"{r}\"}} {n}");
    }

    head(
        &mut o,
        "duecall_http_requests_total",
        "counter",
        "HTTP answers by route and status.",
    );
    for ((route, status), n) in http {
        let _ = writeln!(
            o,
            "duecall_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
            esc(route)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_series_are_labelled_by_name_and_only_registering_or_pinged_trunks_get_those_gauges() {
        use crate::telephony::sip::TrunkSnapshot;
        let a = TrunkSnapshot {
            trunk: "carrier-a".into(),
            placed: 3,
            answered: 1,
            failed: 0,
            failed_over: 2,
            in_flight: 0,
            registered: Some(true),
            options_up: None,
        };
        let b = TrunkSnapshot {
            trunk: "carrier-\"b\"".into(),
            placed: 2,
            answered: 2,
            failed: 0,
            failed_over: 0,
            in_flight: 1,
            registered: None,
            options_up: Some(false),
        };
        let text = render_trunks(&[a, b]);
        for line in [
            "duecall_trunk_calls_placed_total{trunk=\"carrier-a\"} 3",
            "duecall_trunk_calls_failed_over_total{trunk=\"carrier-a\"} 2",
            "duecall_trunk_calls_answered_total{trunk=\"carrier-\\\"b\\\"\"} 2",
            "duecall_trunk_calls_in_flight{trunk=\"carrier-\\\"b\\\"\"} 1",
            "duecall_trunk_registered{trunk=\"carrier-a\"} 1",
            "duecall_trunk_options_up{trunk=\"carrier-\\\"b\\\"\"} 0",
            "# TYPE duecall_trunk_calls_placed_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(!text.contains("registered{trunk=\"carrier-\\\"b"), "{text}");
        assert!(!text.contains("options_up{trunk=\"carrier-a"), "{text}");
        assert_eq!(text.matches("# TYPE").count(), 7);
        assert!(render_trunks(&[]).is_empty());
    }

    #[test]
    fn the_fold_reads_latency_asr_and_rtp_from_an_outcome() {
        let mut f = Fold::default();
        f.add(&serde_json::json!({
            "call": {"rtp": {"received": {"packets": 500, "lost": 3}}},
            "reply_timings": [
                {"voice_end_ms": 1000, "started_ms": 1320, "asr_decode_ms": 50, "asr_audio_ms": 1000},
                {"voice_end_ms": 5000, "started_ms": 7500, "asr_decode_ms": 150, "asr_audio_ms": 1000}
            ]
        }));
        assert_eq!(f.reply_latency.count, 2);
        assert_eq!(f.rtp_lost, 3);
        assert_eq!(f.rtp_received, 500);
        let text = render_text(
            &MetricCounts::default(),
            &[],
            &f,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(
            text.contains("duecall_reply_latency_seconds_bucket{le=\"0.4\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("duecall_reply_latency_seconds_bucket{le=\"2\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("duecall_reply_latency_seconds_bucket{le=\"3\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("duecall_reply_latency_seconds_count 2\n"));
        assert!(
            text.contains("duecall_asr_real_time_factor 0.1\n"),
            "{text}"
        );
        assert!(text.contains("duecall_rtp_packets_lost_total 3\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
