//! The process's media clock: RTP sessions run on a runtime of their own
//! (threads `duecall-media`), not on the runtime of the calls that start
//! them, so the 20 ms send tick does not wait behind the calls' own work
//! (SIP, the dialogue, the gate's store, outcome files), and the thread asks
//! the OS for a priority above the recognisers' (issue 23: at 100
//! conversations the send interval's p99 was 20-36 ms off the 20 ms beat,
//! target 2 ms).
//!
//! `DUECALL_MEDIA_THREAD=0` keeps sessions on the caller's runtime (the
//! former behaviour, for comparison). `DUECALL_MEDIA_PRIORITY`: `rt` (the
//! default: SCHED_RR at [`RT_PRIORITY`], as audio servers run their clocks;
//! a session's tick is about 10 µs of work, and the kernel's real-time
//! throttling leaves other threads at least 5 % of each second whatever
//! happens), `nice` (niceness [`MEDIA_NICE`]) or `normal`. A priority the OS
//! refuses (real time needs CAP_SYS_NICE or RLIMIT_RTPRIO, a negative
//! niceness CAP_SYS_NICE or RLIMIT_NICE) falls back to the next (rt, then
//! nice, then normal), logged once. Measured at 100 conversations on a
//! loaded 2-core machine (README Performance): send-interval p99 deviation
//! 20.0 ms with `nice`, 1.1 ms with `rt`.
//! Owns: that runtime and its threads' priority. Never: what a session does.

use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

/// Environment variable: `0` keeps RTP sessions on the caller's runtime.
pub const THREAD_ENV: &str = "DUECALL_MEDIA_THREAD";
/// Environment variable: `rt`, `nice` or `normal`.
pub const PRIORITY_ENV: &str = "DUECALL_MEDIA_PRIORITY";
/// Niceness the media threads ask for with `nice`, or when real time is
/// refused (the recognisers run at 3, the Whisper pool at 5).
pub const MEDIA_NICE: i32 = -10;
/// SCHED_RR priority (`rt`, the default).
pub const RT_PRIORITY: i32 = 10;
/// Media threads: sessions need little CPU (about 10 µs a tick), so one
/// thread holds hundreds; a second keeps a slow tick from delaying others.
const MEDIA_THREADS: usize = 2;

/// What priority the media threads ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaPriority {
    /// SCHED_RR at [`RT_PRIORITY`].
    RealTime,
    /// Niceness [`MEDIA_NICE`].
    Nice,
    /// Whatever the process has.
    Normal,
}

impl MediaPriority {
    /// From `DUECALL_MEDIA_PRIORITY`'s value (unset or unknown: `RealTime`).
    pub fn parse(v: Option<&str>) -> MediaPriority {
        match v.map(str::trim) {
            Some("nice") => MediaPriority::Nice,
            Some("normal") | Some("none") | Some("off") => MediaPriority::Normal,
            _ => MediaPriority::RealTime,
        }
    }
}

/// Whether sessions get the media runtime, from `DUECALL_MEDIA_THREAD`'s
/// value (unset: yes).
pub fn wanted(v: Option<&str>) -> bool {
    !matches!(v.map(str::trim), Some("0") | Some("false") | Some("no"))
}

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// The media runtime's handle (made on first use), or None when turned off
/// or it could not start (sessions then run on the caller's runtime).
pub fn handle() -> Option<Handle> {
    RUNTIME
        .get_or_init(|| {
            if !wanted(std::env::var(THREAD_ENV).ok().as_deref()) {
                return None;
            }
            let prio = MediaPriority::parse(std::env::var(PRIORITY_ENV).ok().as_deref());
            let built = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(MEDIA_THREADS)
                .thread_name("duecall-media")
                .enable_all()
                .on_thread_start(move || raise(prio))
                .build();
            match built {
                Ok(rt) => Some(rt),
                Err(e) => {
                    tracing::warn!(error = %e, "no media runtime: RTP sessions share the calls' runtime");
                    None
                }
            }
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
}

/// Spawns `fut` (an RTP session) on the media runtime, or on the current
/// runtime without one.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match handle() {
        Some(h) => h.spawn(fut),
        None => tokio::spawn(fut),
    }
}

/// Asks for `prio` for the calling thread, falling back to the next one
/// down when refused; a refusal is logged once.
fn raise(prio: MediaPriority) {
    static REFUSED: std::sync::Once = std::sync::Once::new();
    let got = match prio {
        MediaPriority::RealTime if set_rr(RT_PRIORITY) => MediaPriority::RealTime,
        MediaPriority::RealTime | MediaPriority::Nice
            if crate::priority::set_thread_nice(MEDIA_NICE) =>
        {
            MediaPriority::Nice
        }
        _ => MediaPriority::Normal,
    };
    if got != prio {
        REFUSED.call_once(|| {
            tracing::info!(
                asked = ?prio,
                got = ?got,
                "the OS refused the media threads' priority: RTP pacing runs at a lower one"
            );
        });
    }
}

#[cfg(target_os = "linux")]
fn set_rr(prio: i32) -> bool {
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: pid 0 is the calling thread; `param` lives across the call.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn set_rr(_: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_priority_is_real_time_unless_told_otherwise() {
        assert_eq!(MediaPriority::parse(None), MediaPriority::RealTime);
        assert_eq!(MediaPriority::parse(Some("rt")), MediaPriority::RealTime);
        assert_eq!(MediaPriority::parse(Some("nice")), MediaPriority::Nice);
        assert_eq!(
            MediaPriority::parse(Some(" normal ")),
            MediaPriority::Normal
        );
        assert_eq!(MediaPriority::parse(Some("bogus")), MediaPriority::RealTime);
        assert!(wanted(None));
        assert!(wanted(Some("1")));
        assert!(!wanted(Some("0")));
    }

    #[test]
    fn a_session_spawned_on_the_media_clock_runs_on_its_threads() {
        // The process-wide runtime (unless the environment turned it off).
        if !wanted(std::env::var(THREAD_ENV).ok().as_deref()) {
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let name = rt
            .block_on(spawn(async {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                std::thread::current().name().map(str::to_string)
            }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("duecall-media"));
    }
}
