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
    default_cache_dir, evaluate, fit_calibration, full_set, parse_utterances, run_bench,
    variant_in, Variant, DEV_VOICES, EVAL_VOICES, SPEECH_EN_HELDOUT2_TSV, SPEECH_EN_HELDOUT_TSV,
    SPEECH_EN_TSV, SPOKEN_DEV_TSV, SPOKEN_FINAL_TSV, SPOKEN_FRESH_TSV,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    if std::env::var("SPEECH_SET").as_deref() == Ok("zh") {
        zh_bench();
        return;
    }
    if let Ok(set @ ("dev" | "final" | "fresh")) = std::env::var("SPEECH_SET").as_deref() {
        call_bench(set);
        return;
    }
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
    let vad = vad_config();
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

/// The spoken benchmark of the recognizer calls use (`SPEECH_SET=dev` or
/// `final`): every reply of the split rendered SPEECH_VARIANTS times
/// (default 3) in the split's voices (dev: espeak-ng; final: the evaluation
/// voices; SPEECH_VOICES=dev|eval overrides), through the phone line, the
/// VAD gate, `asr::call::CallRecognizer` with each turn's grammar, the
/// classifier. SPEECH_ENGINES: comma list of `hybrid`, `grammar`,
/// `whisper` (one run each, every turn on that engine; default `hybrid`).
/// SPEECH_FIT=1 fits the calibration on the run and prints it and the
/// report under it; SPEECH_REJECT=t sets the rejection threshold (default
/// `[dialogue] reject_threshold`);
/// SPEECH_WRONG=1 lists every wrong clip; SPEECH_LIMIT=N takes N clips.
/// SPEECH_ENGINE_TURNS (comma list of turns, e.g. `reminder`): only these
/// turns run on the engine, the others on the grammar engine (what calls
/// would do with `[asr] turns = { reminder = "hybrid" }`); SPEECH_TURNS
/// (comma list): only the clips of these turns.
fn call_bench(set: &str) {
    use duecall::asr::config::{AsrConfig, TurnEngine};
    use duecall::intent::eval::eval_today;
    use duecall::intent::Classifier;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (name, text, default_voices) = match set {
        "dev" => ("tests/data/spoken_dev.tsv", SPOKEN_DEV_TSV, "dev"),
        "fresh" => ("tests/data/spoken_fresh.tsv", SPOKEN_FRESH_TSV, "eval"),
        _ => ("tests/data/spoken_final.tsv", SPOKEN_FINAL_TSV, "eval"),
    };
    let voices = match std::env::var("SPEECH_VOICES")
        .unwrap_or_else(|_| default_voices.into())
        .as_str()
    {
        "eval" => EVAL_VOICES,
        _ => DEV_VOICES,
    };
    let utts = parse_utterances(text, name).expect("spoken split");
    let variants: u32 = std::env::var("SPEECH_VARIANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut clips: Vec<(usize, Variant)> = (0..variants)
        .flat_map(|k| (0..utts.len()).map(move |i| (i, k)))
        .map(|(i, k)| (i, variant_in(&utts[i].text, k, voices)))
        .collect();
    if let Ok(turns) = std::env::var("SPEECH_TURNS") {
        let turns: Vec<&str> = turns.split(',').map(str::trim).collect();
        clips.retain(|(i, _)| turns.contains(&utts[*i].turn.as_str()));
    }
    if let Some(n) = std::env::var("SPEECH_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        clips.truncate(n);
    }
    let prompts = root.join("prompts");
    let script = Script::load(&prompts.join("en.toml")).expect("prompts/en.toml");
    let lexicon =
        duecall::intent::cli::load_lexicon("en", Some(&prompts.join("en.toml"))).expect("lexicon");
    let dict = duecall::asr::sphinx::dictionary(&SphinxConfig::default().dict).expect("dictionary");
    let known = |w: &str| dict.contains_key(w);
    let replies = load_replies(&prompts, "en", &known)
        .expect("prompts/en.replies.jsgf")
        .map(Arc::new);
    let grammars = duecall::asr::turns::call_grammars(
        &script.listen,
        &script.expects,
        &lexicon,
        replies.as_deref(),
        &known,
    );
    let classifier = Arc::new(Classifier::new(lexicon.clone()));
    let cache = default_cache_dir();
    let vad = vad_config();
    println!(
        "speech_eval: {name}: {} replies, {} clips in {} voices (cache {})",
        utts.len(),
        clips.len(),
        voices.len(),
        cache.display()
    );
    let engines = std::env::var("SPEECH_ENGINES").unwrap_or_else(|_| "hybrid".into());
    for engine in engines.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let turn_engine = match engine {
            "grammar" => TurnEngine::Grammar,
            "whisper" => TurnEngine::Whisper,
            "checked" => TurnEngine::Checked,
            _ => TurnEngine::Hybrid,
        };
        let mut config = AsrConfig::default();
        let engine_turns = std::env::var("SPEECH_ENGINE_TURNS").ok();
        for t in script.listen.keys() {
            let on = engine_turns
                .as_deref()
                .is_none_or(|l| l.split(',').any(|x| x.trim() == t));
            let e = if on { turn_engine } else { TurnEngine::Grammar };
            config.turns.insert(t.clone(), e);
        }
        // Clips arrive faster than real time: measure what the rule hears,
        // not the deadline (the latency bench measures that).
        config.whisper.deadline_ms = Some(5000);
        let c2 = classifier.clone();
        let meaning: duecall::asr::call::Meaning = Arc::new(move |t: &str| {
            let i = c2.classify(t, eval_today(), chrono::NaiveTime::from_hms_opt(10, 0, 0));
            (i.kind, i.confidence)
        });
        let mut rec = duecall::asr::call::open_call("en", &config, replies.clone(), Some(meaning))
            .expect("recognizer");
        let t0 = Instant::now();
        let title = format!(
            "{name}, {engine}{}, voices {}",
            engine_turns
                .as_deref()
                .map(|l| format!(" in turns {l} (others grammar)"))
                .unwrap_or_default(),
            if std::ptr::eq(voices, EVAL_VOICES) {
                "eval (flite, festival)"
            } else {
                "dev (espeak-ng)"
            }
        );
        let r = run_bench(
            &title,
            &mut rec,
            &grammars,
            &classifier,
            &utts,
            &clips,
            &vad,
            &cache,
        )
        .expect("benchmark");
        // What the dialogue acts on: replies less sure than the rejection
        // threshold are not understood (SPEECH_REJECT overrides the default).
        let reject = std::env::var("SPEECH_REJECT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(duecall::dialogue::config::DialogueConfig::default().reject_threshold);
        let r = r.rejecting_below(reject);
        print!("{r}");
        println!(
            "  ({:.1} s wall incl. rendering)",
            t0.elapsed().as_secs_f64()
        );
        if let Some(path) = std::env::var_os("SPEECH_DUMP") {
            let path = std::path::PathBuf::from(path).with_extension(format!("{engine}.jsonl"));
            r.dump(&path).expect("dump");
            println!("  clips written to {}", path.display());
        }
        if std::env::var("SPEECH_FIT").is_ok_and(|v| v == "1") {
            let spoken: Vec<_> = r.spoken().collect();
            let (m, loss) = fit_calibration(&spoken);
            println!("  fitted calibration (log-loss {loss:.4}):\n  {m:?}");
            println!("\n  --- the same clips under the fitted calibration ---");
            print!("{}", r.with_model(&m));
        }
    }
}

/// The VAD the calls use, or `SPEECH_VAD="MIN_SPEECH_MS,MAX_GAP_MS"` to
/// compare another (e.g. `200,100`, the defaults before 2026-12-07).
fn vad_config() -> VadConfig {
    let mut vad = VadConfig::default();
    if let Ok(v) = std::env::var("SPEECH_VAD") {
        let n: Vec<u32> = v
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .expect("SPEECH_VAD: MIN_SPEECH_MS,MAX_GAP_MS")
            })
            .collect();
        assert_eq!(n.len(), 2, "SPEECH_VAD: MIN_SPEECH_MS,MAX_GAP_MS");
        vad.min_speech_ms = n[0];
        vad.max_gap_ms = n[1];
        println!(
            "speech_eval: VAD min_speech_ms {} max_gap_ms {}",
            n[0], n[1]
        );
    }
    vad
}

/// The Mandarin test speech: espeak-ng's Mandarin voice read as pinyin (`cmn-latn-pinyin`; plain `cmn` reads most characters as English-spoken pinyin) and three
/// of its variants (synthetic speech; no human Mandarin is in the
/// registries here). Nothing was tuned or fitted on these renderings.
const ZH_VOICES: &[harness::Voice] = &[
    zh_voice("cmn-latn-pinyin"),
    zh_voice("cmn-latn-pinyin+f3"),
    zh_voice("cmn-latn-pinyin+m3"),
    zh_voice("cmn-latn-pinyin+f4"),
];

const fn zh_voice(name: &'static str) -> harness::Voice {
    harness::Voice {
        synth: harness::Synth::Espeak,
        name,
    }
}

/// The turn a call hears a reply meaning `intent` in.
fn zh_turn(intent: duecall::intent::IntentKind) -> &'static str {
    use duecall::intent::IntentKind::*;
    match intent {
        IdentityConfirmed | IdentityDenied | WhoIsCalling | WrongNumber | NotAvailable => {
            "identity"
        }
        _ => "reminder",
    }
}

/// The labelled Mandarin replies (sections dev, holdout, fresh).
const INTENTS_ZH_TSV: &str = include_str!("../tests/data/intents_zh.tsv");

/// Characters that carry speech (CJK, letters, digits): what the character
/// error rate counts, after traditional -> simplified.
fn zh_chars(text: &str) -> Vec<char> {
    duecall::asr::normalize::normalize_zh(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Levenshtein distance between two character strings.
fn char_edits(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The Mandarin spoken benchmark (`SPEECH_SET=zh scripts/eval-speech`):
/// every reply of tests/data/intents_zh.tsv (heard in the identity turn
/// when it answers the identity question, else in the reminder turn, with
/// that turn's listen phrases; its sections `dev`, `holdout` and `fresh`
/// reported apart) rendered SPEECH_VARIANTS times
/// (default 1) in espeak-ng Mandarin voices ([`ZH_VOICES`]) at seeded
/// speeds (140-185 wpm), pitches, levels and pink noise (15-25 dB SNR),
/// through 8 kHz u-law and the VAD gate, into the recognizer a `zh` call
/// opens (`asr::call::open_call("zh", ...)`: Whisper base when no Vosk
/// Mandarin model is installed), Whisper's text made simplified
/// (`asr::normalize`), then the zh classifier. Prints the harness report
/// (intent accuracy per intent, section and voice, confusion), the
/// character error rate against the written reply and Whisper's time per
/// reply. SPEECH_LIMIT=N takes N clips; SPEECH_WRONG=1 lists the misses.
fn zh_bench() {
    use duecall::asr::config::AsrConfig;
    use duecall::intent::eval::eval_today;
    use duecall::intent::Classifier;
    use std::collections::{BTreeMap, HashMap};

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let name = "tests/data/intents_zh.tsv";
    let mut utts = parse_utterances(INTENTS_ZH_TSV, name).expect("Mandarin replies");
    // The set's sections (dev, holdout, fresh) are kept for the report; each
    // reply is heard in the turn a call would hear it in: the identity
    // question's answers there, everything else after the reminder.
    let sections: Vec<String> = utts.iter().map(|u| u.turn.clone()).collect();
    for u in &mut utts {
        u.turn = zh_turn(u.intent).to_string();
    }
    let script = duecall::dialogue::script::Script::load(&root.join("prompts/zh.toml"))
        .expect("prompts/zh.toml");
    let grammars: HashMap<String, Vec<String>> = script
        .listen
        .iter()
        .map(|(t, p)| (t.clone(), p.clone()))
        .collect();
    let variants: u32 = std::env::var("SPEECH_VARIANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut clips: Vec<(usize, Variant)> = (0..variants)
        .flat_map(|k| (0..utts.len()).map(move |i| (i, k)))
        .map(|(i, k)| (i, variant_in(&utts[i].text, k, ZH_VOICES)))
        .collect();
    if let Some(n) = std::env::var("SPEECH_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        clips.truncate(n);
    }
    let lexicon = duecall::intent::cli::load_lexicon("zh", Some(&root.join("prompts/zh.toml")))
        .expect("zh lexicon");
    let classifier = Arc::new(Classifier::new(lexicon));
    let c2 = classifier.clone();
    let meaning: duecall::asr::call::Meaning = Arc::new(move |t: &str| {
        let i = c2.classify(t, eval_today(), chrono::NaiveTime::from_hms_opt(10, 0, 0));
        (i.kind, i.confidence)
    });
    let config = AsrConfig::default();
    let mut rec =
        duecall::asr::call::open_call("zh", &config, None, Some(meaning)).unwrap_or_else(|e| {
            eprintln!("speech_eval zh: no recognizer for zh ({e})");
            std::process::exit(2);
        });
    let engine = duecall::asr::Recognizer::engine(&rec);
    let cache = default_cache_dir();
    let vad = VadConfig::default();
    println!(
        "speech_eval zh: {name}: {} replies, {} clips in espeak-ng Mandarin voices {:?}, engine {engine} (cache {})",
        utts.len(),
        clips.len(),
        ZH_VOICES.iter().map(|v| v.name).collect::<Vec<_>>(),
        cache.display()
    );
    let t0 = Instant::now();
    let r = run_bench(
        &format!("{name}, zh, {engine}, espeak-ng Mandarin (synthetic)"),
        &mut rec,
        &grammars,
        &classifier,
        &utts,
        &clips,
        &vad,
        &cache,
    )
    .expect("benchmark");
    let wall = t0.elapsed().as_secs_f64();
    let reject = duecall::dialogue::config::DialogueConfig::default().reject_threshold;
    println!("--- as heard (no rejection) ---");
    print!("{r}");
    println!("--- as the dialogue acts on it (reject_threshold {reject:.2}) ---");
    print!("{}", r.rejecting_below(reject));
    // Intent accuracy (as heard) and character error rate per section.
    let mut by: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
    for c in &r.clips {
        let u = &utts[c.utt];
        let raw = c
            .detail
            .as_ref()
            .and_then(|d| d.whisper_raw.clone())
            .unwrap_or_default();
        let (want, got) = (zh_chars(&u.text), zh_chars(&raw));
        let e = char_edits(&want, &got);
        for key in [sections[c.utt].clone(), "all".to_string()] {
            let s = by.entry(key).or_default();
            s.0 += c.right() as usize;
            s.1 += 1;
            s.2 += e;
            s.3 += want.len();
        }
    }
    println!("  by section of intents_zh.tsv (as heard; CER of Whisper's own text, made simplified, against the written reply):");
    for (k, (ok, n, e, chars)) in &by {
        println!(
            "    {k:<8} intents {ok:>4}/{n:<4} {:5.1}%   CER {e:>5}/{chars:<5} {:5.1}%",
            100.0 * *ok as f64 / (*n).max(1) as f64,
            100.0 * *e as f64 / (*chars).max(1) as f64
        );
    }
    let stood_in = r
        .clips
        .iter()
        .filter(|c| {
            c.detail.as_ref().is_some_and(|d| {
                d.whisper_raw
                    .as_deref()
                    .is_some_and(|raw| zh_chars(raw) != zh_chars(&d.verdict.text))
            })
        })
        .count();
    println!(
        "  a listen phrase stood in for Whisper's text: {stood_in}/{} clips",
        r.clips.len()
    );
    // Whisper's time per reply.
    let mut ms: Vec<(u64, f64)> = r
        .clips
        .iter()
        .filter_map(|c| Some((c.detail.as_ref()?.whisper_ms?.0, c.audio_s)))
        .collect();
    ms.sort_by_key(|m| m.0);
    if !ms.is_empty() {
        let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize].0;
        let decode: u64 = ms.iter().map(|m| m.0).sum();
        let audio: f64 = ms.iter().map(|m| m.1).sum();
        println!(
            "  Whisper decode per reply: p50 {} ms, p95 {} ms, max {} ms over {} replies; {:.2} s of decoding per s of clip; {wall:.1} s wall incl. rendering",
            at(0.5),
            at(0.95),
            at(1.0),
            ms.len(),
            decode as f64 / 1000.0 / audio.max(1e-9)
        );
    }
}
