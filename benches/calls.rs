//! Concurrent calls against sipp: holds N calls at once (N = 10, 50, 100 by
//! default) and reports the distribution of our own RTP send intervals
//! (deviation from 20 ms: p50/p99/max), packet loss, CPU and resident memory
//! per call. Run: `cargo bench --bench calls` (env: BENCH_CALLS="10,50,100",
//! BENCH_HOLD_S=10). Needs sipp and sox (scripts/setup).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use duecall::config::Config;
use duecall::telephony::leg::LegCommand;
use duecall::telephony::report::PacingStats;
use duecall::telephony::sip::{DialRequest, SipGateway};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_s() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_utime.tv_sec as f64
        + u.ru_utime.tv_usec as f64 / 1e6
        + u.ru_stime.tv_sec as f64
        + u.ru_stime.tv_usec as f64 / 1e6
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn main() {
    let ns: Vec<usize> = std::env::var("BENCH_CALLS")
        .unwrap_or_else(|_| "10,50,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let hold = Duration::from_secs(
        std::env::var("BENCH_HOLD_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    let dir = std::env::temp_dir().join(format!("duecall-bench-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 1 s of a 440 Hz tone as the callee's looping stream.
    let ok = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-t", "ul"])
        .arg(dir.join("callee.ulaw"))
        .args(["synth", "1", "sine", "440"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "sox is needed (scripts/setup)");
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uas_load.xml");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    println!(
        "concurrent calls against sipp, hold {} s each, 2 tokio workers, {} cores",
        hold.as_secs(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:>5} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10} {:>12} {:>12}",
        "calls",
        "p50 dev",
        "p99 dev",
        "max dev",
        "intervals",
        "rx lost",
        "rx pkts",
        "cpu/call",
        "rss/call"
    );
    for n in ns {
        let port = free_port();
        let mp = free_port() & !1;
        let mut sipp = Command::new("sipp")
            .current_dir(&dir)
            .arg("-sf")
            .arg(&scenario)
            .args([
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-nostdin",
                "-p",
                &port.to_string(),
                "-mp",
                &mp.to_string(),
            ])
            .args(["-m", &n.to_string(), "-l", &(n + 10).to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp (scripts/setup)");
        std::thread::sleep(Duration::from_millis(500));
        let (pacing, lost, rx, cpu, rss) = rt.block_on(async {
            let gw = SipGateway::start(Config::default()).await.unwrap();
            let rss0 = rss_kb();
            let mut legs = Vec::new();
            for _ in 0..n {
                legs.push(
                    gw.dial(DialRequest::to(format!("sip:callee@127.0.0.1:{port}")))
                        .await
                        .unwrap(),
                );
            }
            // Let every call answer and settle, then measure over the hold.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let cpu0 = cpu_s();
            let t0 = Instant::now();
            tokio::time::sleep(hold).await;
            let cpu = (cpu_s() - cpu0) / t0.elapsed().as_secs_f64();
            let rss = rss_kb().saturating_sub(rss0);
            let mut pacing = PacingStats::new();
            let (mut lost, mut rx) = (0, 0);
            let mut tasks = Vec::new();
            for mut leg in legs {
                tasks.push(tokio::spawn(async move {
                    leg.send(LegCommand::Hangup).await;
                    leg.wait_end().await
                }));
            }
            for t in tasks {
                if let Ok(Some(r)) = t.await {
                    if let Some(p) = &r.pacing {
                        pacing.merge(p);
                    }
                    lost += r.rtp.received.lost.unwrap_or(0);
                    rx += r.rtp.received.packets;
                }
            }
            (pacing, lost, rx, cpu, rss)
        });
        let _ = sipp.kill();
        let _ = sipp.wait();
        println!(
            "{:>5} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>10} {:>9} {:>10} {:>10.2}%c {:>9} KB",
            n,
            pacing.percentile_us(0.50) as f64 / 1000.0,
            pacing.percentile_us(0.99) as f64 / 1000.0,
            pacing.max_us as f64 / 1000.0,
            pacing.count,
            lost,
            rx,
            cpu * 100.0 / n as f64,
            rss / n as u64,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
