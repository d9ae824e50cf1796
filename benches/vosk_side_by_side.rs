//! Vosk side by side (issue 23; `cargo bench --bench vosk_side_by_side`, prints its numbers):
//! duecall's own Vosk path (`asr::vosk::VoskRecognizer` on the process's one shared model,
//! a recognizer per stream on its own thread, as a call's recognizer thread runs it) against
//! a Python Vosk WebSocket server speaking vosk-server's protocol
//! (`scripts/bench/vosk_ws_server.py`, PyPI `vosk` + `websockets`, `.local/venv/vosk-server`),
//! in one run on the same machine, on the same Korean audio (espeak-ng renderings of the Korean
//! grammar the lib tests use, 8 kHz u-law then linear), both in grammar mode on that grammar.
//! `right` counts finals that are the phrase spoken; it is shown, not part of the bound.
//!
//! For each N, N streams at once on one side; each stream plays `BENCH_VOSK_UTTS` utterances
//! (clip with 300 ms silence either side) in 20 ms chunks paced in real time (chunk k is sent
//! when its 20 ms have been "spoken"), starts spread over one second. Latency is from the end of
//! an utterance's audio to its final result (duecall: `finish()` returned; server: the final
//! result message arrived after `{"eof" : 1}`). CPU is the side's process (the bench process for
//! duecall, the server process for the server; its client's pacing runs in the bench) over the
//! level's wall time, in % of one core. A side stops rising once its p95 is over the bound.
//! Env: BENCH_VOSK_N (default 1,2,4,8,16,24,32,40,48,56,64,80,96,128), BENCH_VOSK_UTTS (3),
//! BENCH_VOSK_BOUND_MS (500), BENCH_VOSK_SIDES (duecall,server), VOSK_SERVER_THREADS (cores).

use duecall::asr::vosk::{VoskModel, VoskRecognizer};
use duecall::asr::{find_vosk_model, Recognizer};
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The Korean grammar of `asr::vosk`'s tests: phrases the small Korean model hears reliably
/// from espeak-ng's Korean voice at 8 kHz.
const KO_GRAMMAR: &[&str] = &["안녕하세요", "아니요", "네", "다음 낼게요", "돈이 없어요"];
const CHUNK: usize = 160;
/// English replies for the PocketSphinx side (those of `benches/asr.rs`).
const EN_REPLIES: &[&str] = &[
    "I already paid",
    "wrong number",
    "I lost my job",
    "call me back later",
    "yes speaking",
    "stop calling me",
    "I will pay next week",
];

/// PocketSphinx as calls configure it, with the reminder turn's grammar.
fn sphinx_calls(root: &Path) -> Arc<Make> {
    use duecall::asr::sphinx::SphinxRecognizer;
    let (config, phrases) = duecall::agent::sphinx_as_calls(
        &duecall::agent::AgentPaths::under(root),
        duecall::dialogue::Listen::Reminder,
    )
    .expect("the reminder turn's call grammar");
    Arc::new(move || {
        let mut r = SphinxRecognizer::new(&config).expect("sphinx");
        r.set_phrases(&phrases).expect("grammar");
        Box::new(r)
    })
}

fn speak(dir: &Path, name: &str, text: &str) -> Vec<i16> {
    speak_voice(dir, name, "ko", 140, text)
}

fn speak_voice(dir: &Path, name: &str, voice: &str, speed: u32, text: &str) -> Vec<i16> {
    let raw = dir.join(format!("{name}.wav"));
    let ul = dir.join(format!("{name}.ul.wav"));
    let lin = dir.join(format!("{name}.8k.wav"));
    let ok = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &speed.to_string(), "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        && Command::new("sox")
            .arg("-R") // repeatable: no clock-seeded dither
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-e", "u-law"])
            .arg(&ul)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
        && Command::new("sox")
            .arg("-R") // repeatable: no clock-seeded dither
            .arg(&ul)
            .args(["-e", "signed-integer", "-b", "16"])
            .arg(&lin)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    assert!(ok, "espeak-ng and sox are needed (scripts/setup-speech)");
    let mut pcm = vec![0i16; 2400];
    pcm.extend(duecall::media::wav::read_mono_8k(&lin).expect("wav"));
    pcm.extend(vec![0i16; 2400]);
    pcm
}

/// utime + stime of a process, in seconds.
fn cpu_s(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Duecall,
    Server,
    Sphinx,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Duecall => "duecall",
            Side::Server => "server",
            Side::Sphinx => "sphinx-en",
        }
    }
}

/// One utterance's outcome: latency (ms) from the end of its audio to the final, and whether
/// the final text was the phrase spoken.
type Outcome = (f64, bool);

struct Level {
    lat: Vec<f64>,
    right: usize,
    cpu_pct: f64,
    rss_mib: f64,
    wall_s: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Which clip stream `i` speaks as its `u`-th utterance.
fn pick(i: usize, u: usize, n: usize) -> usize {
    (i + u) % n
}

fn stagger(i: usize, n: usize) -> Duration {
    Duration::from_millis((i as u64 * 1000) / n.max(1) as u64)
}

/// Makes one stream's recognizer (with its grammar set).
type Make = dyn Fn() -> Box<dyn Recognizer + Send> + Send + Sync;

/// In-process streams: a recognizer per stream on its own thread (every recognizer is made
/// before the clock starts), fed 20 ms chunks paced in real time.
fn run_local(
    make: &Make,
    clips: &Arc<Vec<(String, Vec<i16>)>>,
    n: usize,
    utts: usize,
) -> Vec<Outcome> {
    let recs: Vec<Box<dyn Recognizer + Send>> = (0..n).map(|_| make()).collect();
    let start = Instant::now() + Duration::from_millis(200);
    let handles: Vec<_> = recs
        .into_iter()
        .enumerate()
        .map(|(i, mut rec)| {
            let clips = clips.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let mut t0 = start + stagger(i, n);
                for u in 0..utts {
                    let (want, pcm) = &clips[pick(i, u, clips.len())];
                    let chunks: Vec<&[i16]> = pcm.chunks(CHUNK).collect();
                    for (k, c) in chunks.iter().enumerate() {
                        let due = t0 + Duration::from_millis(20 * (k as u64 + 1));
                        if let Some(d) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                        rec.accept(c).expect("accept");
                    }
                    let end = t0 + Duration::from_millis(20 * chunks.len() as u64);
                    let t = rec.finish().expect("finish");
                    let done = Instant::now();
                    let right = t.text == want.to_lowercase();
                    if !right && std::env::var_os("BENCH_VOSK_VERBOSE").is_some() {
                        eprintln!("{}: {want:?} heard as {:?}", rec.engine(), t.text);
                    }
                    out.push((
                        done.saturating_duration_since(end).as_secs_f64() * 1000.0,
                        right,
                    ));
                    t0 = done.max(end);
                }
                out
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("stream thread"))
        .collect()
}

/// One utterance over one WebSocket connection, as a vosk-server client sends it.
async fn server_utterance(url: &str, want: &str, pcm: &[i16], t0: Instant) -> (Outcome, Instant) {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect to the Vosk server");
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let mut texts: Vec<String> = Vec::new();
        let mut last = Instant::now();
        let mut finals = 0usize;
        while let Some(m) = rx.next().await {
            let Ok(m) = m else { break };
            if let Message::Text(t) = m {
                last = Instant::now();
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if let Some(s) = v.get("text").and_then(|x| x.as_str()) {
                    finals += 1;
                    if !s.is_empty() {
                        texts.push(s.to_string());
                    }
                }
            }
        }
        (texts.join(" "), last, finals)
    });
    let config =
        serde_json::json!({"config": {"sample_rate": 8000, "words": 1, "phrase_list": KO_GRAMMAR}});
    tx.send(Message::Text(config.to_string().into()))
        .await
        .expect("send config");
    let t0 = t0.max(Instant::now());
    let chunks: Vec<&[i16]> = pcm.chunks(CHUNK).collect();
    for (k, c) in chunks.iter().enumerate() {
        let due = t0 + Duration::from_millis(20 * (k as u64 + 1));
        tokio::time::sleep_until(due.into()).await;
        let bytes: Vec<u8> = c.iter().flat_map(|s| s.to_le_bytes()).collect();
        tx.send(Message::Binary(bytes.into()))
            .await
            .expect("send audio");
    }
    let end = t0 + Duration::from_millis(20 * chunks.len() as u64);
    tx.send(Message::Text(r#"{"eof" : 1}"#.to_string().into()))
        .await
        .expect("send eof");
    let (text, last, _finals) = reader.await.expect("reader");
    let _ = tx.close().await;
    let lat = last.saturating_duration_since(end).as_secs_f64() * 1000.0;
    if text.replace("[unk]", "").trim() != want && std::env::var_os("BENCH_VOSK_VERBOSE").is_some()
    {
        eprintln!("server: {want:?} heard as {text:?}");
    }
    (
        (lat, text.replace("[unk]", "").trim() == want),
        last.max(end),
    )
}

fn run_server(
    rt: &tokio::runtime::Runtime,
    port: u16,
    clips: &Arc<Vec<(String, Vec<i16>)>>,
    n: usize,
    utts: usize,
) -> Vec<Outcome> {
    let url = format!("ws://127.0.0.1:{port}");
    rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(200);
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let clips = clips.clone();
                let url = url.clone();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    let mut t0 = start + stagger(i, n);
                    for u in 0..utts {
                        let (want, pcm) = &clips[pick(i, u, clips.len())];
                        let (o, next) = server_utterance(&url, want, pcm, t0).await;
                        out.push(o);
                        t0 = next;
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("stream task"));
        }
        all
    })
}

fn start_server(root: &Path, model: &Path) -> (Child, u16) {
    let py = root.join(".local/venv/vosk-server/bin/python");
    assert!(
        py.is_file(),
        "{} is missing: scripts/setup installs the Vosk server's venv",
        py.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = Command::new(py)
        .arg(root.join("scripts/bench/vosk_ws_server.py"))
        .arg(model)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the Vosk server");
    let out = child.stdout.take().expect("server stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("server ready line");
    assert!(line.starts_with("listening"), "server said {line:?}");
    (child, port)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some(model_dir) = find_vosk_model("ko") else {
        println!("vosk_side_by_side: SKIP, no Korean model (scripts/setup-speech)");
        return;
    };
    let levels: Vec<usize> = std::env::var("BENCH_VOSK_N")
        .unwrap_or_else(|_| "1,2,4,8,16,24,32,40,48,56,64,80,96,128".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let utts: usize = std::env::var("BENCH_VOSK_UTTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let bound: f64 = std::env::var("BENCH_VOSK_BOUND_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500.0);
    let sides_env =
        std::env::var("BENCH_VOSK_SIDES").unwrap_or_else(|_| "duecall,server,sphinx".into());
    let mut sides: Vec<Side> = Vec::new();
    if sides_env.contains("duecall") {
        sides.push(Side::Duecall);
    }
    if sides_env.contains("server") {
        sides.push(Side::Server);
    }
    if sides_env.contains("sphinx") {
        sides.push(Side::Sphinx);
    }

    let dir = std::env::temp_dir().join(format!("duecall-vosk-sbs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let clips: Arc<Vec<(String, Vec<i16>)>> = Arc::new(
        KO_GRAMMAR
            .iter()
            .enumerate()
            .map(|(i, p)| (p.to_string(), speak(&dir, &format!("ko{i}"), p)))
            .collect(),
    );
    // The English recogniser beside it: PocketSphinx as calls configure it (wide beams, the
    // phone-line MLLR, the reminder turn's reply grammar, the largest), on English replies.
    let en_clips: Arc<Vec<(String, Vec<i16>)>> = Arc::new(
        EN_REPLIES
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    p.to_string(),
                    speak_voice(&dir, &format!("en{i}"), "en-us", 160, p),
                )
            })
            .collect(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let sphinx_make: Option<Arc<Make>> = sides.contains(&Side::Sphinx).then(|| sphinx_calls(&root));

    let t_load = Instant::now();
    let model = VoskModel::shared(&model_dir).expect("Korean model loads");
    let load_s = t_load.elapsed().as_secs_f64();
    // What each clip is heard as with nothing else running (decoded once, unpaced): Vosk on
    // espeak-ng's crude Korean voice mishears some of them (and not always the same way), so
    // `right` below is shown beside the idle figure, not part of the capacity bound.
    let grammar: Vec<String> = KO_GRAMMAR.iter().map(|s| s.to_string()).collect();
    let idle_right = clips
        .iter()
        .filter(|(want, pcm)| {
            let mut rec = VoskRecognizer::with_phrases(model.clone(), &grammar).expect("rec");
            for c in pcm.chunks(CHUNK) {
                rec.accept(c).expect("accept");
            }
            let got = rec.finish().expect("finish").text;
            if got != *want {
                println!("clip {want:?} heard as {got:?} with nothing else running");
            }
            got == *want
        })
        .count();
    println!(
        "{idle_right}/{} clips heard right with nothing else running",
        clips.len()
    );
    let vosk_make: Arc<Make> = {
        let model = model.clone();
        let grammar = grammar.clone();
        Arc::new(move || {
            Box::new(VoskRecognizer::with_phrases(model.clone(), &grammar).expect("recognizer"))
        })
    };
    let audio_s: f64 =
        clips.iter().map(|(_, p)| p.len()).sum::<usize>() as f64 / 8000.0 / clips.len() as f64;

    let (mut server, port) = if sides.contains(&Side::Server) {
        let (c, p) = start_server(&root, &model_dir);
        (Some(c), p)
    } else {
        (None, 0)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let me = std::process::id();
    let server_pid = server.as_ref().map(|c| c.id()).unwrap_or(0);
    println!(
        "vosk side by side: Korean model {} (duecall loaded it in {load_s:.1} s), {} clips of {audio_s:.2} s on average, {utts} utterances per stream, 20 ms chunks paced in real time, bound p95 < {bound:.0} ms; load average at start {}; cores {}",
        model_dir.display(),
        clips.len(),
        load_avg(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    );
    println!(
        "{:<8} {:>4} {:>6} {:>9} {:>9} {:>9} {:>8} {:>9} {:>7} {:>9}",
        "side", "N", "utts", "p50 ms", "p95 ms", "max ms", "right", "CPU %", "RSS MiB", "load"
    );
    let mut best: Vec<(Side, usize)> = sides.iter().map(|s| (*s, 0)).collect();
    let mut done: Vec<Side> = Vec::new();
    for &n in &levels {
        for &side in &sides {
            if done.contains(&side) {
                continue;
            }
            let pid = if side == Side::Server { server_pid } else { me };
            let load = load_avg();
            let c0 = cpu_s(pid);
            let w0 = Instant::now();
            let outs = match side {
                Side::Duecall => run_local(&*vosk_make, &clips, n, utts),
                Side::Server => run_server(&rt, port, &clips, n, utts),
                Side::Sphinx => match &sphinx_make {
                    Some(m) => run_local(&**m, &en_clips, n, utts),
                    None => Vec::new(),
                },
            };
            let wall_s = w0.elapsed().as_secs_f64();
            let mut lat: Vec<f64> = outs.iter().map(|o| o.0).collect();
            lat.sort_by(|a, b| a.total_cmp(b));
            let lv = Level {
                right: outs.iter().filter(|o| o.1).count(),
                cpu_pct: (cpu_s(pid) - c0) / wall_s * 100.0,
                rss_mib: rss_mib(pid),
                wall_s,
                lat,
            };
            let p95 = pct(&lv.lat, 95.0);
            println!(
                "{:<8} {:>4} {:>6} {:>9.0} {:>9.0} {:>9.0} {:>4}/{:<3} {:>9.0} {:>7.0} {:>9}   ({:.1} s)",
                side.name(),
                n,
                lv.lat.len(),
                pct(&lv.lat, 50.0),
                p95,
                lv.lat.last().copied().unwrap_or(f64::NAN),
                lv.right,
                lv.lat.len(),
                lv.cpu_pct,
                lv.rss_mib,
                load,
                lv.wall_s,
            );
            if p95 < bound {
                if let Some(b) = best.iter_mut().find(|b| b.0 == side) {
                    b.1 = n;
                }
            } else {
                done.push(side);
            }
        }
        if done.len() == sides.len() {
            break;
        }
    }
    for (side, n) in &best {
        println!(
            "{}: most concurrent streams with p95 < {bound:.0} ms: {n}",
            side.name()
        );
    }
    let held = |side: Side| best.iter().find(|b| b.0 == side).map(|b| b.1);
    if let (Some(d), Some(s)) = (held(Side::Duecall), held(Side::Server)) {
        if s > 0 {
            println!(
                "ratio duecall / server at p95 < {bound:.0} ms: {:.2} (levels tried: {levels:?}; the last level a side held is a lower bound)",
                d as f64 / s as f64
            );
        }
    }
    println!("load average at end {}", load_avg());
    if let Some(c) = server.as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
}
