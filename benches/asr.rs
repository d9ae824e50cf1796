//! Speech benchmarks (prints numbers; `cargo bench --bench asr`):
//! real-time factor per engine and mode, memory per recognizer (RSS delta
//! from /proc/self/status), and N concurrent recognizers.
//! Audio is rendered with espeak-ng into a temp dir (scripts/setup-speech
//! installs it). Env: BENCH_THREADS (default 2), BENCH_N (default 8).

use duecall::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use duecall::asr::vosk::{VoskModel, VoskRecognizer};
use duecall::asr::{find_vosk_model, Recognizer};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn speak(dir: &Path, name: &str, voice: &str, speed: u32, text: &str) -> Vec<i16> {
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
            .arg("-R")
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-e", "u-law"])
            .arg(&ul)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
        && Command::new("sox")
            .arg("-R")
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

/// Decodes every clip in 20 ms frames; returns (audio s, cpu s, correct).
fn run(rec: &mut dyn Recognizer, clips: &[(String, Vec<i16>)]) -> (f64, f64, usize) {
    let (mut audio, mut right) = (0.0, 0);
    let t0 = Instant::now();
    for (want, pcm) in clips {
        for f in pcm.chunks(160) {
            rec.accept(f).expect("accept");
        }
        let t = rec.finish().expect("finish");
        right += (t.text == want.to_lowercase()) as usize;
        audio += pcm.len() as f64 / 8000.0;
    }
    (audio, t0.elapsed().as_secs_f64(), right)
}

fn report(name: &str, (audio, cpu, right): (f64, f64, usize), n: usize) {
    println!("{name:<34} audio {audio:6.1} s  cpu {cpu:6.2} s  x real time {:6.1}  (rtf {:.4})  exact {right}/{n}", audio / cpu, cpu / audio);
}

fn concurrent<F>(name: &str, n: usize, clips: Arc<Vec<(String, Vec<i16>)>>, make: F)
where
    F: Fn() -> Box<dyn Recognizer> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let recs: Vec<Box<dyn Recognizer>> = (0..n).map(|_| make()).collect();
    let t0 = Instant::now();
    let hs: Vec<_> = recs
        .into_iter()
        .map(|mut r| {
            let clips = clips.clone();
            std::thread::spawn(move || run(r.as_mut(), &clips).0)
        })
        .collect();
    let audio: f64 = hs.into_iter().map(|h| h.join().expect("thread")).sum();
    let wall = t0.elapsed().as_secs_f64();
    println!("{name:<34} {n} recognizers at once: {audio:.1} s of audio in {wall:.2} s wall = {:.1}x real time in total", audio / wall);
}

fn main() {
    let dir = std::env::temp_dir().join(format!("duecall-bench-asr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let n_conc: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    println!(
        "machine: {} cores; {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH
    );

    // PocketSphinx, English grammar.
    let replies = [
        "I already paid",
        "wrong number",
        "I lost my job",
        "call me back later",
        "yes speaking",
        "stop calling me",
        "I will pay next week",
    ];
    let mut en = Vec::new();
    for (i, r) in replies.iter().enumerate() {
        for (j, v) in ["en-us", "en-us+f3", "en-gb"].iter().enumerate() {
            en.push((r.to_string(), speak(&dir, &format!("en{i}_{j}"), v, 160, r)));
        }
    }
    let phrases: Vec<String> = replies.iter().map(|s| s.to_string()).collect();
    let before = rss_mib();
    let mut sp = SphinxRecognizer::new(&SphinxConfig::default()).expect("sphinx");
    sp.set_phrases(&phrases).expect("grammar");
    let after = rss_mib();
    run(&mut sp, &en[..3]); // warm-up (cepstral mean)
    report(
        "sphinx grammar (reused decoder)",
        run(&mut sp, &en),
        en.len(),
    );
    println!(
        "{:<34} RSS +{:.1} MiB for one decoder with its grammar",
        "sphinx memory",
        after - before
    );
    let en = Arc::new(en);
    let p2 = phrases.clone();
    concurrent("sphinx grammar", n_conc, en.clone(), move || {
        let mut r = SphinxRecognizer::new(&SphinxConfig::default()).expect("sphinx");
        r.set_phrases(&p2).expect("grammar");
        Box::new(r)
    });

    // PocketSphinx as calls run it: wide beams, the phone-line MLLR
    // transform, and the reminder turn's grammar (listen phrases + reply
    // rules + example replies), the largest of the call grammars.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (call_cfg, call_phrases) = duecall::agent::sphinx_as_calls(
        &duecall::agent::AgentPaths::under(root),
        duecall::dialogue::Listen::Reminder,
    )
    .expect("the reminder turn's call grammar");
    let call_config = || call_cfg.clone();
    let before = rss_mib();
    let t0 = std::time::Instant::now();
    let mut sc = SphinxRecognizer::new(&call_config()).expect("sphinx");
    sc.set_phrases(&call_phrases).expect("call grammar");
    let setup = t0.elapsed().as_secs_f64();
    let after = rss_mib();
    run(&mut sc, &en[..3]);
    report(
        "sphinx call grammar (reminder)",
        run(&mut sc, &en),
        en.len(),
    );
    println!(
        "{:<34} RSS +{:.1} MiB for one decoder with its grammar, set up in {:.0} ms (mllr: {})",
        "sphinx call memory",
        after - before,
        setup * 1000.0,
        call_config()
            .mllr
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none".into())
    );
    let p3 = call_phrases.clone();
    let cfg3 = call_config();
    concurrent("sphinx call grammar", n_conc, en.clone(), move || {
        let mut r = SphinxRecognizer::new(&cfg3).expect("sphinx");
        r.set_phrases(&p3).expect("grammar");
        Box::new(r)
    });

    // Vosk on the Korean model.
    let Some(ko_dir) = find_vosk_model("ko") else {
        println!("vosk: SKIP, no Korean model (scripts/setup-speech)");
        return;
    };
    let ko_phr = ["안녕하세요", "아니요", "네", "다음 낼게요", "돈이 없어요"];
    let mut ko = Vec::new();
    for (i, p) in ["아니요", "네", "다음 낼게요"].iter().enumerate() {
        for (j, s) in [130u32, 140].iter().enumerate() {
            ko.push((
                p.to_string(),
                speak(&dir, &format!("ko{i}_{j}"), "ko", *s, p),
            ));
        }
    }
    let ko_phrases: Vec<String> = ko_phr.iter().map(|s| s.to_string()).collect();
    let r0 = rss_mib();
    let t0 = Instant::now();
    let model = VoskModel::shared(&ko_dir).expect("model");
    println!(
        "{:<34} load {:.2} s, RSS +{:.0} MiB",
        "vosk ko model",
        t0.elapsed().as_secs_f64(),
        rss_mib() - r0
    );
    let r1 = rss_mib();
    let mut g = VoskRecognizer::with_phrases(model.clone(), &ko_phrases).expect("rec");
    run(&mut g, &ko[..1]);
    println!(
        "{:<34} RSS +{:.1} MiB for one grammar recognizer (after first utterance)",
        "vosk memory",
        rss_mib() - r1
    );
    report("vosk ko grammar (reused)", run(&mut g, &ko), ko.len());
    let r2 = rss_mib();
    let mut f = VoskRecognizer::new(model.clone()).expect("rec");
    run(&mut f, &ko[..1]);
    println!(
        "{:<34} RSS +{:.1} MiB for one free recognizer (after first utterance)",
        "vosk memory",
        rss_mib() - r2
    );
    report("vosk ko free (reused, warm)", run(&mut f, &ko), ko.len());
    let t = Instant::now();
    let mut switches = 0;
    for _ in 0..5 {
        g.set_phrases(&ko_phrases[..2]).expect("grm");
        g.set_phrases(&ko_phrases).expect("grm");
        switches += 2;
    }
    println!(
        "{:<34} {:.1} ms per set_grm",
        "vosk grammar switch",
        t.elapsed().as_secs_f64() * 1000.0 / switches as f64
    );
    let ko = Arc::new(ko);
    let m2 = model.clone();
    concurrent("vosk ko grammar", n_conc, ko, move || {
        Box::new(VoskRecognizer::with_phrases(m2.clone(), &ko_phrases).expect("rec"))
    });
    let _ = std::fs::remove_dir_all(&dir);
}
