//! The audio evaluation of English replies, whole set (`scripts/eval-speech`,
//! `cargo bench --bench speech_eval`): every utterance of
//! tests/data/speech_en.tsv rendered SPEECH_VARIANTS times (default 3;
//! seeded voice/speed/pitch/noise), through 8 kHz u-law, the VAD gate,
//! PocketSphinx with the turn's grammar and the intent classifier.
//! Prints intent accuracy, exact transcripts, WER, real-time factor, the
//! breakdowns and the confusion table for each grammar mode.
//! Env: SPEECH_SET (`heldout`: tests/data/speech_en_heldout.tsv, written by
//! someone who never saw the grammar; `heldout2`: a second such set, kept
//! unseen while the first served for development; default the shipped set),
//! SPEECH_VARIANTS, SPEECH_MODES (comma list of `listen`, `listen+lexicon`,
//! `listen+glue`, `listen+lexicon+glue`, `ngram`, `replies`,
//! `replies+lexicon`, `replies-ngram`; default `listen,listen+lexicon`),
//! SPEECH_BEAMS (`default`, `wide`; default both), SPEECH_NO_VAD=1 adds a
//! run that feeds whole clips (what the gate costs), SPEECH_EXAMPLES=0 (the
//! reply grammar without prompts/en.replies.tsv), SPEECH_PROMPTS (another
//! prompts directory), DUECALL_SPEECH_CACHE (clip cache).

#[path = "../tests/e2e/speech/harness/mod.rs"]
mod harness;

use duecall::asr::jsgf::load_replies;
use duecall::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use duecall::asr::turns::GrammarMode;
use duecall::dialogue::script::Script;
use duecall::media::vad::VadConfig;
use harness::{
    default_cache_dir, evaluate, full_set, parse_utterances, SPEECH_EN_HELDOUT2_TSV,
    SPEECH_EN_HELDOUT_TSV, SPEECH_EN_TSV,
};
use std::path::Path;
use std::sync::Arc;
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
    // SPEECH_SET=heldout / heldout2: sets written by people who never saw the grammar.
    let (set_name, set_text) = match std::env::var("SPEECH_SET").as_deref() {
        Ok("heldout") => ("tests/data/speech_en_heldout.tsv", SPEECH_EN_HELDOUT_TSV),
        Ok("heldout2") => ("tests/data/speech_en_heldout2.tsv", SPEECH_EN_HELDOUT2_TSV),
        _ => ("tests/data/speech_en.tsv", SPEECH_EN_TSV),
    };
    let utts = parse_utterances(set_text, set_name).expect("spoken set");
    // SPEECH_PROMPTS: another prompts directory (script, lexicon, reply grammar).
    let prompts = std::env::var_os("SPEECH_PROMPTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("prompts"));
    let script = Script::load(&prompts.join("en.toml")).expect("prompts/en.toml");
    let lexicon =
        duecall::intent::cli::load_lexicon("en", Some(&prompts.join("en.toml"))).expect("lexicon");
    let checker = SphinxRecognizer::new(&cfg).expect("decoder");
    let known = |w: &str| checker.check_words(&[w.to_string()]).is_empty();
    // SPEECH_EXAMPLES=0: the reply grammar without the example replies.
    let replies = if std::env::var("SPEECH_EXAMPLES").is_ok_and(|v| v == "0") {
        let text = std::fs::read_to_string(prompts.join("en.replies.jsgf")).expect("grammar");
        Some(duecall::asr::jsgf::ReplyGrammar::parse(&text, "en.replies.jsgf").expect("grammar"))
    } else {
        load_replies(&prompts, "en", &known).expect("prompts/en.replies.jsgf")
    }
    .map(Arc::new);
    let clips = full_set(utts.len(), variants);
    let cache = default_cache_dir();
    println!(
        "speech_eval: {set_name}: {} utterances x {variants} renderings = {} clips (cache {})",
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
        let mut rec = SphinxRecognizer::new(&mode.sphinx_config(&lexicon, wide, replies.clone()))
            .expect("decoder");
        let t0 = Instant::now();
        let r = evaluate(
            &mut rec,
            &known,
            &script,
            &lexicon,
            &utts,
            &clips,
            mode,
            replies.as_deref(),
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
