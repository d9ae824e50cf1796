//! The numbers a load run or a soak reports, and the arithmetic that makes
//! them (percentiles, per-call shares). The JSON keys of [`LoadReport`] are
//! the ones issue 23 names; extra keys only add. Pure: no clock, no I/O.

use serde::{Deserialize, Serialize};

/// Nearest-rank percentile of sorted values (`p` in 0..=1); 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Reply latency: end of the debtor's speech to our first voiced packet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Median, ms.
    pub p50: u64,
    /// 95th percentile, ms.
    pub p95: u64,
    /// 99th percentile, ms.
    pub p99: u64,
}

impl LatencyMs {
    /// From unsorted samples.
    pub fn of(mut v: Vec<u64>) -> Self {
        v.sort_unstable();
        LatencyMs {
            p50: percentile(&v, 0.50),
            p95: percentile(&v, 0.95),
            p99: percentile(&v, 0.99),
        }
    }
}

/// Deviation of our RTP send intervals from 20 ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendDevMs {
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Largest, ms.
    pub max: f64,
}

/// A conversation whose route was not the one its debtor's script implies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrongRoute {
    /// The simulated debtor.
    pub persona: String,
    /// What was expected and what came (or the error).
    pub why: String,
}

/// One `duecall bench load` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Conversations held at once: the most in progress at one moment
    /// (sampled every 100 ms), not the number requested.
    pub calls: usize,
    /// Conversations that reached the route their debtor's script implies.
    pub routes_right: usize,
    /// Conversations that ended (or failed) during the run.
    pub routes_total: usize,
    /// Reply latency percentiles, every reply.
    pub reply_latency_ms: LatencyMs,
    /// Reply latency of the conversations started after the ramp (the
    /// steady state; the first wave's replies come in bursts when the ramp
    /// is shorter than a conversation).
    pub reply_latency_steady_ms: LatencyMs,
    /// Replies in `reply_latency_steady_ms`.
    pub steady_replies: usize,
    /// Over how long the first conversations started, s (`--ramp`).
    pub ramp_s: f64,
    /// RTP send-interval deviation.
    pub rtp_send_dev_ms: SendDevMs,
    /// Packets we expected from the callees and never got.
    pub rx_lost: u64,
    /// duecall's CPU per conversation held, % of one core (the simulated
    /// callees' runtime threads are not counted).
    pub cpu_per_call_pct: f64,
    /// Resident memory per conversation held beyond the warm baseline
    /// (models loaded, one conversation done), kB.
    pub rss_per_call_kb: u64,
    /// Recogniser time over audio time (below 1: faster than real time),
    /// wall clock, under the load.
    pub asr_rtf: f64,
    /// Conversations requested (`--calls`).
    pub requested: usize,
    /// Mean conversations in progress over the measured window.
    pub held_mean: f64,
    /// Length of the run (`--duration`), s.
    pub duration_s: f64,
    /// Who answered: `sim`.
    pub peer: String,
    /// The English recogniser the agent used.
    pub recognizer: String,
    /// Reply latency samples.
    pub replies: usize,
    /// RTP send intervals measured.
    pub rtp_intervals: u64,
    /// RTP packets received from the callees.
    pub rx_packets: u64,
    /// duecall's CPU over the window, % of one core.
    pub cpu_total_pct: f64,
    /// The simulated callees' CPU over the window, % of one core.
    pub cpu_sim_pct: f64,
    /// Resident memory after warm-up, kB.
    pub rss_baseline_kb: u64,
    /// Highest resident memory seen during the window, kB.
    pub rss_peak_kb: u64,
    /// Conversations with the wrong route (or none), with why.
    pub wrong: Vec<WrongRoute>,
    /// The PocketSphinx decoder pool at the end (decoders per utterance,
    /// shared by the calls; zero with Vosk).
    #[serde(default)]
    pub asr_decoders: crate::asr::sphinx::PoolStats,
    /// Admission control (`--admission`): None when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionReport>,
}

/// What admission control did in a load run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdmissionReport {
    /// Attempts that started a conversation.
    pub admitted: usize,
    /// Attempts that waited the longest hold and never started.
    pub refused: usize,
    /// How long admitted attempts waited to start, ms.
    pub hold_ms: LatencyMs,
    /// The longest an admitted attempt waited, ms.
    pub hold_ms_max: u64,
    /// The limit on conversations in progress: its lowest, and at the end.
    pub limit_lowest: usize,
    /// The limit at the end of the run.
    pub limit_end: usize,
    /// Times the limit was cut (the recogniser fell behind).
    pub cuts: u64,
    /// The highest the limit rose (it starts at the rule's `initial`).
    #[serde(default)]
    pub limit_highest: usize,
    /// Samples that said a recogniser pool was behind (either pool).
    #[serde(default)]
    pub congested: u64,
}

/// One `duecall bench soak` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakReport {
    /// Calls placed.
    pub calls: usize,
    /// Calls in progress at once.
    pub overlap: usize,
    /// Calls with a complete outcome (route or disposition as expected,
    /// recording and outcome JSON written).
    pub complete: usize,
    /// Calls whose outcome was wrong or incomplete, with why.
    pub incomplete: Vec<WrongRoute>,
    /// Resident memory after warm-up, kB.
    pub rss_warm_kb: u64,
    /// Resident memory at the end (all calls over), kB.
    pub rss_end_kb: u64,
    /// Highest resident memory sampled after warm-up, kB.
    pub rss_peak_kb: u64,
    /// `rss_end_kb - rss_warm_kb` (negative: shrank), kB.
    pub rss_growth_kb: i64,
    /// Least-squares slope of resident memory over calls completed after
    /// warm-up, bytes per call (a per-call leak shows here).
    pub rss_slope_b_per_call: f64,
    /// Open file descriptors after warm-up / at the end.
    pub fds: (usize, usize),
    /// Threads after warm-up / at the end.
    pub threads: (usize, usize),
    /// Live tokio tasks of duecall's runtime after warm-up / at the end.
    pub tasks: (usize, usize),
    /// Wall time, s.
    pub wall_s: f64,
    /// The PocketSphinx decoder pool at the end.
    #[serde(default)]
    pub asr_decoders: crate::asr::sphinx::PoolStats,
}

/// Least-squares slope of `y` over `x`; 0 with fewer than two points.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.95), 7);
    }

    #[test]
    fn latency_sorts_its_samples() {
        let l = LatencyMs::of(vec![900, 100, 300, 200, 400]);
        assert_eq!((l.p50, l.p95, l.p99), (300, 900, 900));
    }

    #[test]
    fn slope_finds_a_per_call_leak_and_not_noise() {
        let leak: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, 1000.0 + 64.0 * i as f64))
            .collect();
        assert!((slope(&leak) - 64.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, 1000.0 + if i % 2 == 0 { 8.0 } else { -8.0 }))
            .collect();
        assert!(slope(&flat).abs() < 1.0);
        assert_eq!(slope(&[(1.0, 2.0)]), 0.0);
    }

    #[test]
    fn the_load_json_has_the_keys_the_issue_names() {
        let r = LoadReport {
            calls: 3,
            routes_right: 3,
            routes_total: 3,
            reply_latency_ms: LatencyMs::default(),
            reply_latency_steady_ms: LatencyMs::default(),
            steady_replies: 0,
            ramp_s: 5.0,
            rtp_send_dev_ms: SendDevMs::default(),
            rx_lost: 0,
            cpu_per_call_pct: 1.0,
            rss_per_call_kb: 10,
            asr_rtf: 0.1,
            requested: 3,
            held_mean: 2.5,
            duration_s: 20.0,
            peer: "sim".into(),
            recognizer: "pocketsphinx".into(),
            replies: 6,
            rtp_intervals: 100,
            rx_packets: 100,
            cpu_total_pct: 3.0,
            cpu_sim_pct: 1.0,
            rss_baseline_kb: 1,
            rss_peak_kb: 2,
            wrong: vec![],
            asr_decoders: Default::default(),
            admission: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        for k in [
            "calls",
            "routes_right",
            "routes_total",
            "rx_lost",
            "cpu_per_call_pct",
            "rss_per_call_kb",
            "asr_rtf",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        for k in ["p50", "p95", "p99"] {
            assert!(v["reply_latency_ms"].get(k).is_some(), "{k}");
        }
        for k in ["p50", "p99", "max"] {
            assert!(v["rtp_send_dev_ms"].get(k).is_some(), "{k}");
        }
    }
}
