//! `duecall bench soak`: thousands of calls in one process, one after
//! another in each of K overlapping slots, through every way the soak mix
//! ends (the five spoken routes, busy, a hang-up mid-prompt). Checks what
//! endurance means for a contact centre: every attempt gets a complete
//! outcome (route as its script implies, recording finalised, outcome JSON
//! beside it), and nothing grows: resident memory, file descriptors,
//! threads and tokio tasks are read at two quiet moments (after the
//! warm-up, after the last call) and compared. Owns the schedule and the
//! checks; each recording is checked, then removed (2,000 two-channel
//! recordings would fill the disk) unless asked to keep them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::expect::SOAK_MIX;
use super::procstat;
use super::report::{slope, SoakReport, WrongRoute};
use super::rig::{Placed, Rig};
use super::BenchError;

/// What a soak does.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Calls to place after the warm-up.
    pub calls: usize,
    /// Calls in progress at once.
    pub overlap: usize,
    /// Calls placed (and ended) before the baseline is read.
    pub warmup: usize,
    /// Where prompts/ and the models are.
    pub root: PathBuf,
    /// Where recordings go.
    pub record_dir: PathBuf,
    /// Keep the recordings (else each is checked and removed).
    pub keep: bool,
}

/// Runs a soak and returns its report.
pub fn run_soak(o: &SoakOptions) -> Result<SoakReport, BenchError> {
    if o.calls == 0 || o.overlap == 0 {
        return Err(BenchError::Args(
            "--calls and --overlap must be at least 1".into(),
        ));
    }
    let rig = Rig::start(&o.root, &o.record_dir)?;
    let report = drive(&rig, o);
    drop(rig);
    if !o.keep {
        let _ = std::fs::remove_dir_all(&o.record_dir);
    }
    report
}

/// Resources at a quiet moment.
#[derive(Debug, Clone, Copy)]
struct Quiet {
    rss_kb: u64,
    fds: usize,
    threads: usize,
    tasks: usize,
}

/// Resources at a quiet moment: after 5 s for ended calls' timers (BYE
/// retransmissions, the 4 s unanswered-BYE guard), writer threads and
/// dialog removal; with a `baseline`, up to 40 s more while fds, threads or
/// tasks are still above it (SIP transactions linger up to 32 s, RFC 3261
/// Timer J), so only what stays is counted as grown.
fn quiet(rig: &Rig, baseline: Option<Quiet>) -> Quiet {
    std::thread::sleep(Duration::from_secs(5));
    let read = || Quiet {
        rss_kb: procstat::rss_kb(),
        fds: procstat::open_fds(),
        threads: procstat::threads(),
        tasks: rig.alive_tasks(),
    };
    let mut q = read();
    if let Some(b) = baseline {
        let settle = std::time::Instant::now() + Duration::from_secs(40);
        while (q.fds > b.fds || q.threads > b.threads || q.tasks > b.tasks)
            && std::time::Instant::now() < settle
        {
            std::thread::sleep(Duration::from_secs(1));
            q = read();
        }
    }
    q
}

fn drive(rig: &Rig, o: &SoakOptions) -> Result<SoakReport, BenchError> {
    let t0 = std::time::Instant::now();
    let mut incomplete = Vec::new();
    // Warm-up: every kind of call at the full overlap, so pools and
    // caches reach the size the run needs before the baseline.
    let warmup = o.warmup.max(SOAK_MIX.len());
    rig.block_on(batch(rig, o, 0, warmup, &mut incomplete, &mut Vec::new()))?;
    let warm = quiet(rig, None);
    let mut curve = Vec::new();
    let done = rig.block_on(batch(rig, o, warmup, o.calls, &mut incomplete, &mut curve))?;
    let end = quiet(rig, Some(warm));
    let peak = curve.iter().map(|p| p.1 as u64).max().unwrap_or(end.rss_kb);
    Ok(SoakReport {
        calls: done,
        overlap: o.overlap,
        complete: done - incomplete.len().min(done),
        incomplete,
        rss_warm_kb: warm.rss_kb,
        rss_end_kb: end.rss_kb,
        rss_peak_kb: peak.max(end.rss_kb),
        rss_growth_kb: end.rss_kb as i64 - warm.rss_kb as i64,
        rss_slope_b_per_call: slope(
            &curve
                .iter()
                .map(|&(x, kb)| (x, kb * 1024.0))
                .collect::<Vec<_>>(),
        ),
        fds: (warm.fds, end.fds),
        threads: (warm.threads, end.threads),
        tasks: (warm.tasks, end.tasks),
        wall_s: t0.elapsed().as_secs_f64(),
        asr_decoders: crate::asr::sphinx::pool_stats(),
    })
}

/// Places calls `first..first+count` with `o.overlap` in progress at once;
/// checks each as it ends; samples resident memory after each into `curve`
/// (calls done, kB). Returns how many were placed.
async fn batch(
    rig: &Rig,
    o: &SoakOptions,
    first: usize,
    count: usize,
    incomplete: &mut Vec<WrongRoute>,
    curve: &mut Vec<(f64, f64)>,
) -> Result<usize, BenchError> {
    let caller = rig.caller();
    let mut set = tokio::task::JoinSet::new();
    let mut next = first;
    let end = first + count;
    let t0 = Instant::now();
    let spawn = |set: &mut tokio::task::JoinSet<Placed>, k: usize| {
        let caller = caller.clone();
        let e = SOAK_MIX[k % SOAK_MIX.len()];
        set.spawn(async move { caller.place(k, e).await });
    };
    // The first calls start 300 ms apart, so the slots drift apart and
    // calls overlap at every phase, not in lock-step.
    while next < end && next - first < o.overlap {
        tokio::time::sleep_until(t0 + Duration::from_millis(300) * (next - first) as u32).await;
        spawn(&mut set, next);
        next += 1;
    }
    let mut done = 0;
    while let Some(r) = set.join_next().await {
        let p = r.map_err(|e| BenchError::Runtime(format!("a call task failed: {e}")))?;
        done += 1;
        if let Err(why) = check(&p, o.keep) {
            incomplete.push(WrongRoute {
                persona: p.expected.persona.to_string(),
                why,
            });
        }
        curve.push((done as f64, procstat::rss_kb() as f64));
        if next < end {
            spawn(&mut set, next);
            next += 1;
        }
    }
    Ok(done)
}

/// A complete outcome: the route its script implies, the debtor's side
/// ended, and for an answered call a finalised recording with the outcome
/// JSON beside it. Removes the files unless `keep`.
fn check(p: &Placed, keep: bool) -> Result<(), String> {
    p.verdict()?;
    let out = p.outcome.as_ref().map_err(|e| e.clone())?;
    if p.record.is_none() {
        return Err(format!(
            "the simulated debtor never saw call {} end",
            out.call.call_id
        ));
    }
    let Some(wav) = &out.call.recording else {
        return match out.call.disposition {
            crate::outcome::Disposition::Answered => Err("answered, but no recording".into()),
            _ => Ok(()),
        };
    };
    let json = wav.with_extension("json");
    let r = recording_complete(wav).and_then(|()| outcome_json_complete(&json));
    if !keep {
        let _ = std::fs::remove_file(wav);
        let _ = std::fs::remove_file(&json);
    }
    r
}

/// The WAV opens, has two channels and audio, and its header counts every
/// byte of audio in the file (the writer finalised it).
fn recording_complete(wav: &Path) -> Result<(), String> {
    let r = hound::WavReader::open(wav).map_err(|e| format!("{}: {e}", wav.display()))?;
    let spec = r.spec();
    let samples = r.len() as u64;
    let bytes = std::fs::metadata(wav).map(|m| m.len()).unwrap_or(0);
    let audio = samples * u64::from(spec.bits_per_sample / 8);
    if spec.channels != 2 || samples == 0 {
        return Err(format!(
            "{}: {} channels, {samples} samples",
            wav.display(),
            spec.channels
        ));
    }
    if bytes < audio || bytes - audio > 4096 {
        return Err(format!(
            "{}: header counts {audio} bytes of audio in a {bytes}-byte file (not finalised)",
            wav.display()
        ));
    }
    Ok(())
}

fn outcome_json_complete(json: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(json).map_err(|e| format!("{}: {e}", json.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    if v.get("call").is_none() {
        return Err(format!("{}: no call report", json.display()));
    }
    Ok(())
}

/// Whether a soak passed: every outcome complete, no fd, thread or task
/// more at the end than after the warm-up, and resident memory growth
/// under `max_growth_kb`.
pub fn passed(r: &SoakReport, max_growth_kb: i64) -> bool {
    r.incomplete.is_empty()
        && r.fds.1 <= r.fds.0
        && r.threads.1 <= r.threads.0
        && r.tasks.1 <= r.tasks.0
        && r.rss_growth_kb < max_growth_kb
}

/// The report as a person reads it.
pub fn print_soak(r: &SoakReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "duecall bench soak: {} calls, {} at once, {:.0} s",
        r.calls, r.overlap, r.wall_s
    )?;
    writeln!(out, "  complete outcomes  {}/{}", r.complete, r.calls)?;
    writeln!(
        out,
        "  resident memory    {} kB after warm-up, {} kB at the end ({:+} kB), peak {} kB, trend {:+.0} B/call",
        r.rss_warm_kb, r.rss_end_kb, r.rss_growth_kb, r.rss_peak_kb, r.rss_slope_b_per_call
    )?;
    writeln!(
        out,
        "  fds / threads / tasks  {} -> {}, {} -> {}, {} -> {}",
        r.fds.0, r.fds.1, r.threads.0, r.threads.1, r.tasks.0, r.tasks.1
    )?;
    writeln!(out, "  decoders           {}", r.asr_decoders)?;
    for w in &r.incomplete {
        writeln!(out, "  incomplete         {}: {}", w.persona, w.why)?;
    }
    Ok(())
}
