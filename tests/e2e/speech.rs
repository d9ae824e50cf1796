//! Spoken-reply floor tests: quick subsets of the labelled spoken sets
//! rendered as phone-line clips and run through the speech path as calls
//! run it (VAD gate, PocketSphinx with the turn's reply grammar, the
//! phone-line MLLR transform, the intent classifier); each fails below a
//! floor under what was measured. The whole sets are the benchmark
//! (`scripts/eval-speech`). The harness lives in `speech/harness/`, outside
//! the library; `benches/speech_eval.rs` includes it by path.

mod harness;

use std::path::Path;
use std::sync::Arc;

use duecall::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use duecall::asr::turns::GrammarMode;
use duecall::intent::{IntentKind, Lexicon};
use duecall::media::vad::VadConfig;
use duecall::testkit::needs;
use harness::*;

fn prompts() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"))
}

fn lexicon() -> Lexicon {
    duecall::intent::cli::load_lexicon("en", Some(&prompts().join("en.toml"))).expect("lexicon")
}

/// Whether PocketSphinx's English model, espeak-ng and sox are here (under
/// CI their absence fails the test).
fn speech_tools() -> bool {
    needs()
        .file(
            SphinxConfig::default().hmm.join("mdef"),
            "the PocketSphinx English model (pocketsphinx-en-us)",
        )
        .tool("espeak-ng")
        .tool("sox")
        .setup("scripts/setup-speech")
        .met()
}

#[test]
fn spoken_set_parses_with_a_turn_per_row_and_covers_every_intent() {
    let u = parse_utterances(SPEECH_EN_TSV, "speech_en.tsv").unwrap();
    assert!(u.len() >= 60, "{}", u.len());
    assert!(u
        .iter()
        .all(|x| x.turn == "identity" || x.turn == "reminder"));
    for k in &IntentKind::PRIORITY {
        assert!(
            u.iter().any(|x| x.intent == *k),
            "no {k:?} in the spoken set"
        );
    }
    assert!(parse_utterances("yes\tno turn\n", "x").is_err());
}

#[test]
fn variants_are_seeded_in_range_and_differ_in_voice_per_rendering() {
    let a = variant("I already paid", 0);
    assert_eq!(a, variant("I already paid", 0));
    let voices: std::collections::HashSet<_> =
        (0..3).map(|k| variant("I already paid", k).voice).collect();
    assert_eq!(voices.len(), 3);
    for k in 0..50 {
        let v = variant(&format!("t{k}"), k);
        assert!(
            (140..=185).contains(&v.speed)
                && (30..=70).contains(&v.pitch)
                && (15..=25).contains(&v.snr_db),
            "{v:?}"
        );
    }
}

#[test]
fn word_edits_count_substitutions_insertions_and_deletions() {
    let t = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        word_edits(&t("i will pay friday"), &t("i will pay friday")),
        0
    );
    assert_eq!(
        word_edits(&t("i will pay friday"), &t("i pay on monday")),
        3
    );
    assert_eq!(word_edits(&t("a b"), &t("")), 2);
    let lex = lexicon();
    assert_eq!(norm_tokens("I'll pay, OK?", &lex), t("i will pay okay"));
}

/// The quick audio check: 40-45 clips, the reply grammar as calls use it
/// (with the example replies, the phone-line MLLR transform when
/// scripts/adapt-speech made one, wide beams), VAD gate. None when a tool
/// is missing and the test may skip.
fn quick_eval(set: &str, name: &str) -> Option<SpeechReport> {
    if !speech_tools() {
        return None;
    }
    crate::peers::batch_priority();
    let cfg = SphinxConfig::default();
    let utts = parse_utterances(set, name).unwrap();
    let script = duecall::dialogue::script::Script::load(&prompts().join("en.toml")).unwrap();
    let mode = GrammarMode::Replies;
    let lex = lexicon();
    let checker = SphinxRecognizer::new(&cfg).unwrap();
    let known = |w: &str| checker.check_words(&[w.to_string()]).is_empty();
    let replies = duecall::asr::jsgf::load_replies(prompts(), "en", &known)
        .unwrap()
        .map(Arc::new);
    let mut rec = SphinxRecognizer::new(&mode.sphinx_config(&lex, true, replies.clone())).unwrap();
    let clips = quick_subset(utts.len());
    assert!(clips.len() >= 40);
    let r = evaluate(
        &mut rec,
        &known,
        &script,
        &lex,
        &utts,
        &clips,
        mode,
        replies.as_deref(),
        Some(&VadConfig::default()),
        &default_cache_dir(),
    )
    .unwrap();
    eprintln!("{r}");
    Some(r)
}

/// Floors under what the quick subsets measured (see the README).
const DEV_FLOOR: f64 = 0.72; // measured 33/40 = 0.825 (31/40 before 2026-12-03)
const HELDOUT_FLOOR: f64 = 0.68; // measured 34/45 = 0.756
const HELDOUT2_FLOOR: f64 = 0.68; // measured 33/45 = 0.733

/// Runs the quick subset of `tsv` and fails below `floor`.
fn assert_quick_accuracy_at_least(tsv: &str, name: &str, floor: f64) {
    if let Some(r) = quick_eval(tsv, name) {
        assert!(
            r.intent_accuracy() >= floor,
            "{name}: intent accuracy {:.3} < {floor}",
            r.intent_accuracy()
        );
    }
}

/// Guards what was measured on the shipped set's quick subset (was
/// 27/40 with the lexicon grammar; with the reply grammar, the example
/// replies and the phone-line MLLR transform: see the floor) against
/// regressions in the VAD, the decoder, the grammar or the adaptation.
#[test]
fn spoken_replies_through_phone_line_vad_and_sphinx_keep_the_measured_intent_accuracy() {
    assert_quick_accuracy_at_least(SPEECH_EN_TSV, "speech_en.tsv", DEV_FLOOR);
}

/// The same on the held-out set (written by someone who never saw the
/// grammar, the lexicon or the example replies; since 2026-12-03 the
/// development set).
#[test]
fn held_out_spoken_replies_keep_the_measured_intent_accuracy() {
    assert_quick_accuracy_at_least(
        SPEECH_EN_HELDOUT_TSV,
        "speech_en_heldout.tsv",
        HELDOUT_FLOOR,
    );
}

/// The same on the second held-out set (another writer, 2026-12-03),
/// which nothing was tuned on: the honest number.
#[test]
fn second_held_out_spoken_replies_keep_the_measured_intent_accuracy() {
    assert_quick_accuracy_at_least(
        SPEECH_EN_HELDOUT2_TSV,
        "speech_en_heldout2.tsv",
        HELDOUT2_FLOOR,
    );
}

/// The recognizer calls use with Whisper (`asr::call::CallRecognizer`,
/// every turn hybrid: PocketSphinx with the turn's reply grammar and
/// Whisper tiny.en, combined with the calibrated confidence) on a quick
/// subset of the spoken benchmark's development split (espeak-ng voices,
/// phone line, noise, VAD gate), including off-topic speech and silence.
/// None when a tool or model is missing and the test may skip.
fn quick_call_bench() -> Option<BenchReport> {
    use duecall::asr::config::{AsrConfig, TurnEngine};
    let model = duecall::asr::whisper::find_model("en");
    if !speech_tools()
        || !needs()
            .present(
                model.is_some(),
                "the Whisper tiny.en model (.local/models/whisper/ggml-tiny.en-q8_0.bin)",
            )
            .setup("scripts/setup-whisper")
            .met()
    {
        return None;
    }
    crate::peers::batch_priority();
    let utts = parse_utterances(SPOKEN_DEV_TSV, "spoken_dev.tsv").unwrap();
    let script = duecall::dialogue::script::Script::load(&prompts().join("en.toml")).unwrap();
    let lex = lexicon();
    let dict = duecall::asr::sphinx::dictionary(&SphinxConfig::default().dict).expect("dictionary");
    let known = |w: &str| dict.contains_key(w);
    let replies = duecall::asr::jsgf::load_replies(prompts(), "en", &known)
        .unwrap()
        .map(Arc::new);
    let grammars = duecall::asr::turns::call_grammars(
        &script.listen,
        &script.expects,
        &lex,
        replies.as_deref(),
        &known,
    );
    let classifier = Arc::new(duecall::intent::Classifier::new(lex));
    let mut config = AsrConfig::default();
    for t in script.listen.keys() {
        config.turns.insert(t.clone(), TurnEngine::Hybrid);
    }
    // Clips arrive faster than real time (no end silence for the
    // speculative decode to use): this measures what the rule hears, not
    // the deadline, which the latency bench measures.
    config.whisper.deadline_ms = Some(5000);
    let c2 = classifier.clone();
    let meaning: duecall::asr::call::Meaning = Arc::new(move |t: &str| {
        let i = c2.classify(
            t,
            duecall::intent::eval::eval_today(),
            chrono::NaiveTime::from_hms_opt(10, 0, 0),
        );
        (i.kind, i.confidence)
    });
    let mut rec =
        duecall::asr::call::open_call("en", &config, replies.clone(), Some(meaning)).unwrap();
    // The engine is chosen per listening turn (the default for a call before
    // any turn is the grammar engine): on a listening turn it must be hybrid,
    // i.e. Whisper really loaded, not a silent fall-back to the grammar alone.
    let first_turn = script
        .listen
        .keys()
        .next()
        .expect("a listening turn")
        .clone();
    duecall::asr::Recognizer::listen(&mut rec, &first_turn, &[]).unwrap();
    assert_eq!(rec.turn_engine(), TurnEngine::Hybrid, "turn {first_turn}");
    // Every seventh reply (silence and off-topic rows included), one voice each.
    let clips: Vec<(usize, Variant)> = (0..utts.len())
        .filter(|i| i % 7 == 3)
        .map(|i| (i, variant_in(&utts[i].text, 0, DEV_VOICES)))
        .collect();
    assert!(clips.len() >= 45, "{}", clips.len());
    let r = run_bench(
        "quick spoken_dev.tsv, hybrid",
        &mut rec,
        &grammars,
        &classifier,
        &utts,
        &clips,
        &VadConfig::default(),
        &default_cache_dir(),
    )
    .unwrap();
    eprintln!("{r}");
    Some(r)
}

/// Floors under what the quick development subset measured with Whisper
/// (see the README).
/// With `asr::hybrid::HybridRule::CALLS` (2026-12-07, every turn hybrid):
/// replies 28/42 = 0.667 (0.524 under the earlier `asr::confidence` rule),
/// off-topic 3/7 = 0.429 (5/7 before): the rule keeps the grammar sentence
/// unless Whisper finds its own text far likelier, trading rejection of
/// off-topic speech for right replies (on the reminder turn's 444 dev clips:
/// 79.2 % off-topic rejected, 69.3 % replies; README "Speech models").
const CALL_REPLY_FLOOR: f64 = 0.55;
const CALL_OFF_TOPIC_FLOOR: f64 = 0.28;

/// Guards the combination calls use (the grammar engine, Whisper, their
/// agreement and the calibrated confidence) against regressions: reply
/// intents right, off-topic speech rejected, silence heard as nothing, and
/// a confidence that is higher on the replies heard right than on the ones
/// heard wrong.
#[test]
fn whisper_and_the_grammar_engine_together_keep_the_measured_accuracy_and_rejection() {
    let Some(r) = quick_call_bench() else { return };
    let (ra, rn) = r.reply_accuracy();
    let (oa, on) = r.off_topic_rejected();
    let (sa, sn) = r.silence_quiet();
    assert!(rn >= 25 && on >= 4 && sn >= 1, "{rn} {on} {sn}");
    assert!(
        ra as f64 >= CALL_REPLY_FLOOR * rn as f64,
        "reply intents {ra}/{rn} below {CALL_REPLY_FLOOR}"
    );
    assert!(
        oa as f64 >= CALL_OFF_TOPIC_FLOOR * on as f64,
        "off-topic rejected {oa}/{on} below {CALL_OFF_TOPIC_FLOOR}"
    );
    assert_eq!(sa, sn, "silence heard as an intent");
    let mean = |right: bool| {
        let v: Vec<f32> = r
            .spoken()
            .filter(|c| !c.heard.is_empty() && c.right() == right)
            .map(|c| c.confidence)
            .collect();
        v.iter().sum::<f32>() / v.len().max(1) as f32
    };
    assert!(
        mean(true) > mean(false),
        "confidence right {:.2} <= wrong {:.2}",
        mean(true),
        mean(false)
    );
}
