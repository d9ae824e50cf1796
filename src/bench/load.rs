//! `duecall bench load`: keeps N reminder conversations going for S seconds
//! (a new one starts whenever one ends) between duecall and the simulated
//! debtors, over SIP/RTP on loopback through the real recogniser, and
//! measures what a contact centre sizes hardware by: conversations held at
//! once, routes right, reply latency, RTP send pacing, loss, recogniser
//! speed, CPU and memory per conversation. Owns the schedule of calls and
//! the measuring window; the rig places the calls.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::campaign::admission::{Admission, AdmissionRule, Load};
use crate::telephony::report::PacingStats;

use super::expect::LOAD_MIX;
use super::procstat;
use super::report::{AdmissionReport, LatencyMs, LoadReport, SendDevMs, WrongRoute};
use super::rig::{Placed, Rig, SIM_THREADS};
use super::BenchError;

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Conversations to keep going at once.
    pub calls: usize,
    /// How long new conversations keep starting.
    pub duration: Duration,
    /// Where prompts/ and the models are (the agent's root).
    pub root: PathBuf,
    /// Where recordings go (removed after the run unless `keep`).
    pub record_dir: PathBuf,
    /// Keep the recordings.
    pub keep: bool,
    /// Over how long the first N conversations start, evenly spaced (None:
    /// a quarter of the run, at most 5 s). Conversations started after it
    /// measure the steady state: their starts, and so their replies, are
    /// spread as the first wave's were; the first wave's replies come in
    /// bursts when the ramp is shorter than a conversation.
    pub ramp: Option<Duration>,
    /// Start conversations only as admission control allows
    /// (`campaign::admission`); an attempt not admitted within
    /// [`ADMISSION_HOLD`] is counted as refused.
    pub admission: bool,
}

/// The longest an attempt waits for admission before it counts as refused.
pub const ADMISSION_HOLD: Duration = Duration::from_secs(30);

/// How often a waiting attempt asks again.
const ADMISSION_POLL: Duration = Duration::from_millis(100);

/// What became of one attempt: when its conversation started and the
/// call, or None when it was never admitted; how long it waited to start.
type Attempt = (Instant, Option<Placed>, Duration);

/// The default ramp: a quarter of the run, at most 5 s.
pub fn default_ramp(duration: Duration) -> Duration {
    (duration / 4).min(Duration::from_secs(5))
}

/// Runs a load run and returns its report.
pub fn run_load(o: &LoadOptions) -> Result<LoadReport, BenchError> {
    if o.calls == 0 {
        return Err(BenchError::Args("--calls must be at least 1".into()));
    }
    let rig = Rig::start(&o.root, &o.record_dir)?;
    let report = rig.block_on(drive(&rig, o));
    drop(rig);
    if !o.keep {
        let _ = std::fs::remove_dir_all(&o.record_dir);
    }
    report
}

/// A sample of the run, every 100 ms: when, conversations in progress,
/// resident memory (kB).
type Sample = (Instant, usize, u64);

async fn drive(rig: &Rig, o: &LoadOptions) -> Result<LoadReport, BenchError> {
    let caller = rig.caller();
    // Warm-up: models, prompt audio and one decoder ready; the baseline
    // memory is taken after it.
    let warm = caller.place(0, LOAD_MIX[0]).await;
    if let Err(why) = warm.verdict() {
        return Err(BenchError::Warmup(why));
    }
    let rss0 = procstat::rss_kb();

    let n = o.calls;
    let t0 = Instant::now();
    let deadline = t0 + o.duration;
    // Starts are spread over the ramp, as calls arrive on a real trunk, not
    // all in one 20 ms tick.
    let ramp = o
        .ramp
        .unwrap_or_else(|| default_ramp(o.duration))
        .min(o.duration);
    let window_start = t0 + ramp;

    let active = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<Sample>::new()));
    let sampler = {
        let (active, samples) = (active.clone(), samples.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                let at = tick.tick().await;
                if at > deadline {
                    break;
                }
                let s = (at, active.load(Ordering::Relaxed), procstat::rss_kb());
                if let Ok(mut v) = samples.lock() {
                    v.push(s);
                }
            }
        })
    };
    let cpu_at = |t: Instant| async move {
        tokio::time::sleep_until(t).await;
        (
            Instant::now(),
            procstat::process_cpu_s(),
            procstat::threads_cpu_s(SIM_THREADS),
        )
    };
    let cpu_a = tokio::spawn(cpu_at(window_start));
    let cpu_b = tokio::spawn(cpu_at(deadline));

    let admission = o.admission.then(|| {
        Arc::new(std::sync::Mutex::new(Admission::new(
            AdmissionRule::default(),
            n,
        )))
    });
    let mut set = tokio::task::JoinSet::new();
    let mut k = 1usize;
    let spawn = |set: &mut tokio::task::JoinSet<Attempt>, k: usize| {
        let (caller, active, admission) = (caller.clone(), active.clone(), admission.clone());
        let e = LOAD_MIX[k % LOAD_MIX.len()];
        set.spawn(async move {
            let asked = Instant::now();
            if let Some(adm) = admission {
                if !admitted(&adm, &active, asked + ADMISSION_HOLD).await {
                    return (Instant::now(), None, asked.elapsed());
                }
            } else {
                active.fetch_add(1, Ordering::Relaxed);
            }
            let started = Instant::now();
            let p = caller.place(k, e).await;
            active.fetch_sub(1, Ordering::Relaxed);
            (started, Some(p), started - asked)
        });
    };
    for i in 0..n {
        tokio::time::sleep_until(t0 + ramp.mul_f64(i as f64 / n as f64)).await;
        spawn(&mut set, k);
        k += 1;
    }
    let mut placed = Vec::new();
    let mut steady = Vec::new();
    let (mut refused, mut holds) = (0usize, Vec::new());
    while let Some(r) = set.join_next().await {
        match r {
            Ok((started, Some(p), hold)) => {
                if started >= window_start {
                    steady.extend(p.reply_latencies_ms());
                }
                placed.push(p);
                holds.push(hold.as_millis() as u64);
            }
            Ok((_, None, _)) => refused += 1,
            Err(e) => return Err(BenchError::Runtime(format!("a call task failed: {e}"))),
        }
        if Instant::now() < deadline {
            spawn(&mut set, k);
            k += 1;
        }
    }
    let _ = sampler.await;
    let (ta, cpu_a, sim_a) = cpu_a
        .await
        .map_err(|e| BenchError::Runtime(e.to_string()))?;
    let (tb, cpu_b, sim_b) = cpu_b
        .await
        .map_err(|e| BenchError::Runtime(e.to_string()))?;

    let samples = samples.lock().map(|v| v.clone()).unwrap_or_default();
    let admission = admission.map(|a| {
        let a = a.lock().unwrap_or_else(|e| e.into_inner());
        AdmissionReport {
            admitted: placed.len(),
            refused,
            hold_ms_max: holds.iter().copied().max().unwrap_or(0),
            hold_ms: LatencyMs::of(holds),
            limit_lowest: a.lowest(),
            limit_end: a.limit(),
            cuts: a.cuts(),
            limit_highest: a.summary().highest,
            congested: a.summary().congested,
        }
    });
    let mut report = summarize(
        o,
        rig,
        &placed,
        &samples,
        rss0,
        Window {
            ramp,
            steady,
            start: ta,
            end: tb,
            cpu_s: (cpu_b - cpu_a) - (sim_b - sim_a),
            sim_cpu_s: sim_b - sim_a,
        },
    );
    report.admission = admission;
    Ok(report)
}

/// Waits until admission control lets one more conversation start (then
/// counts it in `active`), or until `give_up`: false.
async fn admitted(
    adm: &std::sync::Mutex<Admission>,
    active: &AtomicUsize,
    give_up: Instant,
) -> bool {
    loop {
        let load = Load {
            sphinx: crate::asr::sphinx::backlog(),
            whisper: crate::asr::whisper::pool::backlog(),
        };
        {
            let mut a = adm.lock().unwrap_or_else(|e| e.into_inner());
            // Decided and counted under the lock: two attempts never both
            // take the last place.
            if a.admit(
                Instant::now().into_std(),
                active.load(Ordering::Relaxed),
                load,
            ) {
                active.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        if Instant::now() + ADMISSION_POLL > give_up {
            return false;
        }
        tokio::time::sleep(ADMISSION_POLL).await;
    }
}

/// The measuring window (ramp over to the last start).
struct Window {
    /// How long the first conversations took to start.
    ramp: Duration,
    /// Reply latencies of the conversations started in the window, ms.
    steady: Vec<u64>,
    start: Instant,
    end: Instant,
    /// duecall's CPU seconds in it.
    cpu_s: f64,
    /// The simulated debtors' CPU seconds in it.
    sim_cpu_s: f64,
}

fn summarize(
    o: &LoadOptions,
    rig: &Rig,
    placed: &[Placed],
    samples: &[Sample],
    rss0: u64,
    w: Window,
) -> LoadReport {
    let mut wrong = Vec::new();
    let mut right = 0;
    let mut lat = Vec::new();
    let mut pacing = PacingStats::new();
    let (mut lost, mut rx) = (0u64, 0u64);
    let (mut decode_ms, mut audio_ms) = (0u64, 0u64);
    for p in placed {
        match p.verdict() {
            Ok(()) => right += 1,
            Err(why) => wrong.push(WrongRoute {
                persona: p.expected.persona.to_string(),
                why,
            }),
        }
        lat.extend(p.reply_latencies_ms());
        if let Ok(out) = &p.outcome {
            if let Some(ps) = &out.call.pacing {
                pacing.merge(ps);
            }
            lost += out.call.rtp.received.lost.unwrap_or(0);
            rx += out.call.rtp.received.packets;
            for t in &out.reply_timings {
                decode_ms += t.asr_decode_ms;
                audio_ms += t.asr_audio_ms;
            }
        }
    }
    let in_window: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.0 >= w.start && s.0 <= w.end)
        .collect();
    let held_peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let held_mean = if in_window.is_empty() {
        0.0
    } else {
        in_window.iter().map(|s| s.1 as f64).sum::<f64>() / in_window.len() as f64
    };
    let rss_peak = samples.iter().map(|s| s.2).max().unwrap_or(rss0);
    let secs = (w.end - w.start).as_secs_f64().max(1e-3);
    let cpu_total_pct = w.cpu_s / secs * 100.0;
    let replies = lat.len();
    let steady_replies = w.steady.len();
    LoadReport {
        calls: held_peak,
        routes_right: right,
        routes_total: placed.len(),
        reply_latency_ms: LatencyMs::of(lat),
        reply_latency_steady_ms: LatencyMs::of(w.steady),
        steady_replies,
        ramp_s: w.ramp.as_secs_f64(),
        rtp_send_dev_ms: SendDevMs {
            p50: pacing.percentile_us(0.50) as f64 / 1000.0,
            p99: pacing.percentile_us(0.99) as f64 / 1000.0,
            max: pacing.max_us as f64 / 1000.0,
        },
        rx_lost: lost,
        cpu_per_call_pct: if held_mean > 0.0 {
            cpu_total_pct / held_mean
        } else {
            0.0
        },
        rss_per_call_kb: rss_peak.saturating_sub(rss0) / held_peak.max(1) as u64,
        asr_rtf: if audio_ms > 0 {
            decode_ms as f64 / audio_ms as f64
        } else {
            0.0
        },
        requested: o.calls,
        held_mean,
        duration_s: o.duration.as_secs_f64(),
        peer: "sim".into(),
        recognizer: rig.recognizer.clone(),
        replies,
        rtp_intervals: pacing.count,
        rx_packets: rx,
        cpu_total_pct,
        cpu_sim_pct: w.sim_cpu_s / secs * 100.0,
        rss_baseline_kb: rss0,
        rss_peak_kb: rss_peak,
        wrong,
        asr_decoders: crate::asr::sphinx::pool_stats(),
        admission: None,
    }
}

/// The report as a person reads it.
pub fn print_load(r: &LoadReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "duecall bench load: {} conversations for {:.0} s against the simulated debtors ({}), recogniser {}",
        r.requested, r.duration_s, r.peer, r.recognizer
    )?;
    writeln!(
        out,
        "  held at once       {} (mean {:.1} over the window)",
        r.calls, r.held_mean
    )?;
    writeln!(
        out,
        "  routes right       {}/{}",
        r.routes_right, r.routes_total
    )?;
    writeln!(
        out,
        "  reply latency      p50 {} ms  p95 {} ms  p99 {} ms  ({} replies)",
        r.reply_latency_ms.p50, r.reply_latency_ms.p95, r.reply_latency_ms.p99, r.replies
    )?;
    writeln!(
        out,
        "    steady state     p50 {} ms  p95 {} ms  p99 {} ms  ({} replies of conversations started after the {:.0} s ramp)",
        r.reply_latency_steady_ms.p50,
        r.reply_latency_steady_ms.p95,
        r.reply_latency_steady_ms.p99,
        r.steady_replies,
        r.ramp_s
    )?;
    writeln!(
        out,
        "  RTP send interval  deviation p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} intervals)",
        r.rtp_send_dev_ms.p50, r.rtp_send_dev_ms.p99, r.rtp_send_dev_ms.max, r.rtp_intervals
    )?;
    writeln!(
        out,
        "  packets lost       {} of {} received",
        r.rx_lost, r.rx_packets
    )?;
    writeln!(
        out,
        "  recogniser         {:.3} x real time (decode / audio, wall clock)",
        r.asr_rtf
    )?;
    writeln!(
        out,
        "  CPU per call       {:.2} % of one core (duecall {:.0} %, simulated debtors {:.0} %)",
        r.cpu_per_call_pct, r.cpu_total_pct, r.cpu_sim_pct
    )?;
    writeln!(
        out,
        "  memory per call    {} kB beyond {} kB warm (peak {} kB)",
        r.rss_per_call_kb, r.rss_baseline_kb, r.rss_peak_kb
    )?;
    writeln!(out, "  decoders           {}", r.asr_decoders)?;
    if let Some(a) = &r.admission {
        writeln!(
            out,
            "  admission          {} admitted, {} not admitted (waited {} s); waited to start p50 {} ms p95 {} ms max {} ms; limit lowest {}, at the end {}, highest {}, cut {} times, {} congested samples",
            a.admitted,
            a.refused,
            ADMISSION_HOLD.as_secs(),
            a.hold_ms.p50,
            a.hold_ms.p95,
            a.hold_ms_max,
            a.limit_lowest,
            a.limit_end,
            a.limit_highest,
            a.cuts,
            a.congested
        )?;
    }
    for w in &r.wrong {
        writeln!(out, "  wrong route        {}: {}", w.persona, w.why)?;
    }
    Ok(())
}
