//! The audio evaluation of English replies, whole set (`scripts/eval-speech`,
//! `cargo bench --bench speech_eval`): every utterance of
//! tests/data/speech_en.tsv rendered SPEECH_VARIANTS times (default 3;
//! seeded voice/speed/pitch/noise), through 8 kHz u-law, the VAD gate,
//! PocketSphinx with the turn's grammar and the intent classifier.
//! Prints intent accuracy, exact transcripts, WER, real-time factor, the
//! breakdowns and the confusion table for each grammar mode.
//! Env: SPEECH_VARIANTS, SPEECH_MODES (comma list of `listen`,
//! `listen+lexicon`, `listen+glue`, `listen+lexicon+glue`; default the
//! first two: glue is slow and worse), SPEECH_BEAMS (`default`, `wide`;
//! default both), SPEECH_NO_VAD=1 adds a run that feeds
//! whole clips (what the gate costs), DUECALL_SPEECH_CACHE (clip cache).

use duecall::asr::eval::{
    default_cache_dir, evaluate, full_set, parse_utterances, GrammarMode, SPEECH_EN_TSV,
};
use duecall::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use duecall::dialogue::script::Script;
use duecall::media::vad::VadConfig;
use std::path::Path;
use std::time::Instant;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = SphinxConfig::default();
    if !cfg.hmm.join("mdef").is_file() {
        eprintln!("speech_eval: no PocketSphinx English model (run scripts/setup-speech)");
        std::process::exit(2);
    }
    let variants: u32 = std::env::var("SPEECH_VARIANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let modes: Vec<GrammarMode> = std::env::var("SPEECH_MODES")
        .unwrap_or_else(|_| "listen,listen+lexicon".into())
        .split(',')
        .filter_map(|m| GrammarMode::parse(m.trim()))
        .collect();
    let utts = parse_utterances(SPEECH_EN_TSV, "tests/data/speech_en.tsv").expect("spoken set");
    let script = Script::load(&root.join("prompts/en.toml")).expect("prompts/en.toml");
    let lexicon = duecall::intent::cli::load_lexicon("en", Some(&root.join("prompts/en.toml")))
        .expect("lexicon");
    let checker = SphinxRecognizer::new(&cfg).expect("decoder");
    let known = |w: &str| checker.check_words(&[w.to_string()]).is_empty();
    let clips = full_set(utts.len(), variants);
    let cache = default_cache_dir();
    println!(
        "speech_eval: {} utterances x {variants} renderings = {} clips (cache {})",
        utts.len(),
        clips.len(),
        cache.display()
    );
    let vad = VadConfig::default();
    let beams: Vec<bool> = match std::env::var("SPEECH_BEAMS").as_deref() {
        Ok("default") => vec![false],
        Ok("wide") => vec![true],
        _ => vec![false, true],
    };
    let mut runs: Vec<(GrammarMode, bool, bool)> = Vec::new();
    for &wide in &beams {
        runs.extend(modes.iter().map(|m| (*m, wide, true)));
        if std::env::var("SPEECH_NO_VAD").is_ok_and(|v| v == "1") {
            runs.extend(modes.iter().map(|m| (*m, wide, false)));
        }
    }
    for (mode, wide, with_vad) in runs {
        let mut rec = SphinxRecognizer::new(&mode.sphinx_config(&lexicon, wide)).expect("decoder");
        let t0 = Instant::now();
        let r = evaluate(
            &mut rec,
            &known,
            &script,
            &lexicon,
            &utts,
            &clips,
            mode,
            with_vad.then_some(&vad),
            &cache,
        )
        .expect("evaluation");
        println!(
            "\n=== {}, {} beams, {} ({:.1} s wall incl. rendering) ===",
            mode.name(),
            if wide { "wide" } else { "default" },
            if with_vad {
                "with VAD gate"
            } else {
                "whole clips, no VAD"
            },
            t0.elapsed().as_secs_f64()
        );
        print!("{r}");
    }
}
