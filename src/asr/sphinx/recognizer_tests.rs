//! Tests of `asr/sphinx/recognizer.rs`.

use super::*;

use crate::asr::testutil::{speak_8k, sphinx_tools, TempDir};
use std::path::Path;

pub(crate) const REPLIES: &[&str] = &[
    "I already paid",
    "wrong number",
    "I lost my job",
    "call me back later",
    "yes speaking",
    "stop calling me",
    "I want to talk to a person",
    "I will pay next week",
];

fn ready() -> bool {
    sphinx_tools()
}

fn feed(rec: &mut dyn Recognizer, pcm: &[i16]) -> Vec<String> {
    let mut audio = vec![0i16; 1600];
    audio.extend_from_slice(pcm);
    audio.extend(std::iter::repeat_n(0, 1600));
    let mut partials = Vec::new();
    for chunk in audio.chunks(160) {
        if let Some(p) = rec.accept(chunk).expect("accept") {
            partials.push(p.text);
        }
    }
    partials
}

#[test]
fn a_second_pass_model_that_is_not_there_fails_at_open_naming_the_setting() {
    if !ready() {
        return;
    }
    let config = SphinxConfig {
        second_pass: Some("/nonexistent/lm.bin".into()),
        ..SphinxConfig::default()
    };
    let e = SphinxRecognizer::new(&config).err().expect("refused");
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent/lm.bin") && msg.contains("[asr] second_pass"),
        "{msg}"
    );
}

#[test]
fn word_missing_from_dictionary_is_named() {
    if !ready() {
        return;
    }
    let mut r = SphinxRecognizer::new(&SphinxConfig::default()).unwrap();
    let e = r
        .set_phrases(&["pay with zorblatt".to_string()])
        .unwrap_err();
    assert!(e.to_string().contains("zorblatt"), "{e}");
    assert_eq!(r.check_words(&["I paid zorblatt".into()]), vec!["zorblatt"]);
}

#[test]
fn english_replies_through_ulaw_are_recognised_with_a_grammar() {
    if !ready() {
        return;
    }
    let d = TempDir::new("sphinx");
    let phrases: Vec<String> = REPLIES.iter().map(|s| s.to_string()).collect();
    let mut rec = SphinxRecognizer::new(&SphinxConfig::default()).unwrap();
    rec.set_phrases(&phrases).unwrap();
    // Warm up cepstral normalisation on one reply, as a pooled decoder would be.
    let warm = speak_8k(&d.0, "warm", "en-us", 160, "yes speaking", true);
    feed(&mut rec, &warm);
    rec.finish().unwrap();

    let mut right = 0;
    let mut partial_seen = false;
    let clips = [
        ("I already paid", "en-us"),
        ("wrong number", "en-us+f3"),
        ("I lost my job", "en-gb"),
        ("stop calling me", "en-us"),
    ];
    for (i, (text, voice)) in clips.iter().enumerate() {
        let pcm = speak_8k(&d.0, &format!("c{i}"), voice, 160, text, true);
        let partials = feed(&mut rec, &pcm);
        partial_seen |= !partials.is_empty();
        let t = rec.finish().unwrap();
        eprintln!(
            "{text:?} ({voice}) -> {:?} conf {:.2} {:?}",
            t.text,
            t.confidence,
            t.words.iter().map(|w| (w.start, w.end)).collect::<Vec<_>>()
        );
        if t.text == text.to_lowercase() {
            right += 1;
            let last = t.words.last().expect("words");
            let secs = (pcm.len() + 3200) as f32 / 8000.0;
            assert!(
                last.end > t.words[0].start && last.end <= secs + 0.05,
                "{secs} s of audio: {:?}",
                t.words
            );
        }
    }
    assert!(partial_seen);
    assert!(
        right >= 3,
        "only {right} of {} replies recognised",
        clips.len()
    );
}

/// Human speech (Debian `pocketsphinx-testdata`: read card names and
/// "go forward ten meters", 16 kHz studio) brought down to a phone line
/// (8 kHz, u-law both ways) and decoded the way calls decode: espeak is
/// not a human, so this checks the phone path on real voices.
#[test]
fn human_speech_through_a_phone_line_is_recognised_with_a_grammar() {
    let data = Path::new("/usr/share/pocketsphinx/test/data");
    if !ready()
        || !crate::testkit::needs()
            .file(data.join("cards/001.wav"), "pocketsphinx-testdata")
            .met()
    {
        return;
    }
    let phone_line = |pcm8: Vec<i16>| {
        let mut enc = Vec::new();
        crate::media::g711::encode(crate::media::g711::Codec::Pcmu, &pcm8, &mut enc);
        let mut out = Vec::new();
        crate::media::g711::decode(crate::media::g711::Codec::Pcmu, &enc, &mut out);
        out
    };
    let ranks = [
        "ace", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "jack",
        "queen", "king",
    ];
    let suits = ["clubs", "hearts", "diamonds", "spades"];
    let mut cards: Vec<String> = Vec::new();
    for r in ranks {
        for s in suits {
            cards.push(format!("{r} of {s}"));
            for r0 in ranks {
                cards.push(format!("{r0} {r} of {s}"));
            }
        }
        for r2 in ranks {
            cards.push(format!("{r} {r2}"));
        }
    }
    let mut go: Vec<String> = Vec::new();
    for dir in ["forward", "backward"] {
        for n in &ranks[1..10] {
            for unit in ["", " meter", " meters"] {
                go.push(format!("go {dir} {n}{unit}"));
            }
        }
    }
    let raw = std::fs::read(data.join("goforward.raw")).unwrap();
    let go16: Vec<f32> = raw
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect();
    let card = |n: &str| crate::media::wav::read_mono_8k(data.join(format!("cards/{n}.wav")));
    let mut clips: Vec<(Vec<i16>, &str, &Vec<String>)> = [
        ("001", "ten of clubs"),
        ("002", "four queen of clubs"),
        ("003", "seven of clubs"),
        ("004", "five five"),
    ]
    .into_iter()
    .map(|(n, want)| (card(n).unwrap(), want, &cards))
    .collect();
    clips.push((
        crate::media::resample::to_8k(&go16, 16000),
        "go forward ten meters",
        &go,
    ));
    let mut rec = SphinxRecognizer::new(&SphinxConfig::for_calls()).unwrap();
    let mut right = 0;
    for (pcm, want, phrases) in clips {
        rec.set_phrases(phrases).unwrap();
        feed(&mut rec, &phone_line(pcm));
        let t = rec.finish().unwrap();
        eprintln!("{want:?} -> {:?}", t.text);
        right += usize::from(t.text == want);
    }
    assert!(
        right >= 4,
        "only {right} of 5 human clips recognised exactly"
    );
}

/// Resident memory per decoder with and without the second pass's
/// model (read when the decoder opens), as calls open them: with the
/// reply grammar, one turn's grammar set. A measurement, not a check:
/// `DUECALL_SPHINX_SECOND_PASS=lm cargo test --release --lib
/// memory_per_decoder -- --ignored --nocapture` (and with `none`).
#[test]
#[ignore]
fn memory_per_decoder() {
    if !ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dict = crate::asr::sphinx::dictionary(&SphinxConfig::default().dict).unwrap();
    let known = |w: &str| dict.contains_key(w);
    let replies = crate::asr::jsgf::load_replies(&root.join("prompts"), "en", &known)
        .unwrap()
        .map(Arc::new);
    let config = SphinxConfig {
        replies,
        ..SphinxConfig::for_calls()
    };
    let n: usize = std::env::var("MEM_DECODERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let phrases = vec!["<already_paid>".to_string(), "<stop_calling>".to_string()];
    let rss = crate::bench::procstat::rss_kb;
    let before = rss();
    let mut decs = Vec::new();
    for i in 0..n {
        let t0 = std::time::Instant::now();
        let mut rec = SphinxRecognizer::new(&config).unwrap();
        let opened = t0.elapsed();
        rec.set_phrases(&phrases).unwrap();
        decs.push(rec);
        eprintln!(
            "decoder {}: opened in {:.2} s, RSS {} MB",
            i + 1,
            opened.as_secs_f64(),
            rss() / 1024
        );
    }
    let after = rss();
    eprintln!(
        "second pass {:?} (domain weight {}): {n} decoders, RSS {} -> {} MB, {:.1} MB per decoder",
        config.second_pass,
        config.second_pass_domain,
        before / 1024,
        after / 1024,
        (after - before) as f64 / 1024.0 / n as f64
    );
}

/// The general-language second pass hears in-grammar speech much as
/// the grammar does, and off-topic speech as other words: the grammar
/// forces both onto one of its sentences, the second pass does not, and
/// the calibration fitted with its features trusts the off-topic
/// sentence less.
#[test]
fn a_shared_second_pass_model_outlives_the_decoder_that_read_it() {
    let lm = Path::new("/usr/share/pocketsphinx/model/en-us/en-us.lm.bin");
    if !ready() || !lm.is_file() {
        return;
    }
    let d = TempDir::new("sphinx-lm-shared");
    let config = SphinxConfig {
        second_pass: Some(lm.to_path_buf()),
        second_pass_copies: 1,
        ..SphinxConfig::for_calls()
    };
    let phrases: Vec<String> = REPLIES.iter().map(|s| s.to_string()).collect();
    let pcm = speak_8k(
        &d.0,
        "job",
        "en-us",
        150,
        "i lost my job and i cannot pay right now",
        true,
    );
    let hear = || {
        let mut rec = SphinxRecognizer::new(&config).unwrap();
        rec.set_phrases(&phrases).unwrap();
        feed(&mut rec, &pcm);
        rec.finish().unwrap();
        rec.second_pass().map(|l| l.text)
    };
    // The first decoder reads the copy and goes; the next ones use it.
    // (This passes without the fix too: the next decoder's identical log
    // tables land in the freed memory. The e2e conversations crashed.)
    let first = hear();
    for _ in 0..3 {
        assert_eq!(hear(), first);
    }
    assert!(first.is_some_and(|t| !t.is_empty()));
}

#[test]
fn the_second_pass_hears_other_words_in_off_topic_speech() {
    let lm = Path::new("/usr/share/pocketsphinx/model/en-us/en-us.lm.bin");
    if !ready() || !lm.is_file() {
        return;
    }
    use crate::asr::confidence::{decide, Calibration, Evidence, GrammarSide};
    let lexicon = crate::intent::cli::load_lexicon(
        "en",
        Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/en.toml")),
    )
    .unwrap();
    let classifier = crate::intent::Classifier::new(lexicon);
    let meaning = |t: &str| {
        classifier
            .classify(t, crate::intent::eval::eval_today(), None)
            .kind
    };
    let d = TempDir::new("sphinx-lm");
    let config = SphinxConfig {
        second_pass: Some(lm.to_path_buf()),
        ..SphinxConfig::for_calls()
    };
    let mut rec = SphinxRecognizer::new(&config).unwrap();
    let phrases: Vec<String> = REPLIES.iter().map(|s| s.to_string()).collect();
    rec.set_phrases(&phrases).unwrap();
    let warm = speak_8k(&d.0, "warm", "en-us", 160, "yes speaking", true);
    feed(&mut rec, &warm);
    rec.finish().unwrap();
    let mut heard = |name: &str, text: &str| {
        let pcm = speak_8k(&d.0, name, "en-us", 150, text, true);
        feed(&mut rec, &pcm);
        let t = rec.finish().unwrap();
        let lm = rec.second_pass();
        eprintln!("{text:?} -> grammar {:?}, second pass {lm:?}", t.text);
        let lm_text = lm.as_ref().map(|l| l.text.clone());
        let e = Evidence {
            grammar: Some(GrammarSide {
                intent: Some(meaning(&t.text)),
                lm_intent: lm_text.as_deref().map(&meaning),
                lm_intent_conf: None,
                text: t.text,
                conf: t.confidence,
                whisper_score: None,
                lm_text,
                lm_phone_sim: lm.map(|l| l.phone_sim),
            }),
            whisper: None,
        };
        (e.clone(), decide(&e, &Calibration::GRAMMAR_LM).confidence)
    };
    let (on, on_conf) = heard("on", "stop calling me");
    let (off, off_conf) = heard("off", "hold on let me turn the television down");
    let g = on.grammar.unwrap();
    assert_eq!(g.text, "stop calling me");
    // Its exact words vary between runs ("stop calling week", "stop at
    // all in week": the rendering through sox is not bit-identical), so
    // only that it heard words is asserted; what matters is the
    // confidence below.
    let lm_on = g.lm_text.expect("the second pass ran");
    assert!(!lm_on.trim().is_empty(), "{lm_on:?}");
    let g_off = off.grammar.unwrap();
    assert!(
        !g_off.text.is_empty(),
        "the grammar forces off-topic speech onto a sentence"
    );
    assert!(g_off.lm_text.is_some());
    assert!(
        on_conf > off_conf + 0.1,
        "in-grammar {on_conf:.2}, off-topic {off_conf:.2}"
    );
}

#[test]
fn ngram_search_hears_a_reply_joined_from_pieces_of_two_phrases() {
    if !ready() {
        return;
    }
    let d = TempDir::new("sphinx-ngram");
    let config = SphinxConfig {
        search: SphinxSearch::Ngram,
        ..SphinxConfig::default()
    };
    let mut rec = SphinxRecognizer::new(&config).unwrap();
    let phrases: Vec<String> = [
        "i already paid",
        "paid it last week",
        "wrong number",
        "i lost my job",
        "stop calling me",
        "i will pay on friday",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    rec.set_phrases(&phrases).unwrap();
    let warm = speak_8k(&d.0, "warm", "en-us", 160, "wrong number", true);
    feed(&mut rec, &warm);
    rec.finish().unwrap();
    // Neither phrase is the whole reply: a grammar could only pick one.
    let pcm = speak_8k(
        &d.0,
        "join",
        "en-us",
        150,
        "I already paid it last week",
        true,
    );
    feed(&mut rec, &pcm);
    let t = rec.finish().unwrap();
    assert_eq!(t.text, "i already paid it last week", "{t:?}");
    // Switching back to a grammar-free turn set is a cached search.
    rec.set_phrases(&phrases).unwrap();
    assert_eq!(rec.searches.len(), 1);
}

#[test]
fn grammar_changes_between_turns_and_a_reset_decoder_serves_the_next_call() {
    if !ready() {
        return;
    }
    let d = TempDir::new("sphinx2");
    let mut rec = SphinxRecognizer::new(&SphinxConfig::default()).unwrap();
    let pcm = speak_8k(&d.0, "wn", "en-us", 160, "wrong number", true);
    rec.set_phrases(&["wrong number".into(), "yes".into()])
        .unwrap();
    feed(&mut rec, &pcm);
    assert_eq!(rec.finish().unwrap().text, "wrong number");
    rec.set_phrases(&["yes".into(), "no".into()]).unwrap();
    feed(&mut rec, &pcm);
    assert_ne!(rec.finish().unwrap().text, "wrong number");
    // Half an utterance, then the call ends: the agent resets the decoder
    // and lends it to the next call, which must hear only its own audio.
    rec.accept(&pcm[..pcm.len() / 2]).unwrap();
    rec.reset();
    rec.set_phrases(&["wrong number".into(), "yes".into()])
        .unwrap();
    feed(&mut rec, &pcm);
    assert_eq!(rec.finish().unwrap().text, "wrong number");
}
