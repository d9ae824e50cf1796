//! The `duecall transcribe` command: a WAV file in, JSON out.
//!
//! Owns argument parsing for the command and the JSON shape; the lead wires
//! [`TranscribeArgs`] into `main.rs`. Never prints: returns the value.

use super::{
    open_with, read_phrases, AsrError, Recognizer, Transcript, FRAME_SAMPLES, SAMPLE_RATE,
};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `duecall transcribe`.
#[derive(clap::Args, Debug, Clone)]
pub struct TranscribeArgs {
    /// WAV file (any rate, channels, 8/16/24/32-bit int or float).
    pub wav: PathBuf,
    /// Engine: vosk or sphinx (default: Vosk when a model for --lang is installed, else sphinx for English).
    #[arg(long)]
    pub engine: Option<String>,
    /// Vosk model directory (default: DUECALL_VOSK_MODEL_<LANG>, DUECALL_VOSK_MODEL, .local/models/<lang>).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Language of the speech.
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// File with one phrase per line: recognise with this grammar (required
    /// for sphinx). A line `<promise_to_pay>` names a rule of the reply
    /// grammar (`<prompts>/<lang>.replies.jsgf`), as call grammars do.
    #[arg(long)]
    pub phrases: Option<PathBuf>,
    /// Prompts directory holding the reply grammar and example replies
    /// (default: ./prompts when it has them, else the built-in English ones).
    #[arg(long, default_value = "prompts")]
    pub prompts: PathBuf,
}

/// Runs the recognizer over the whole file in 20 ms frames and returns
/// `{text, words:[{word,start,end,confidence}], engine, audio_seconds,
/// processing_seconds, missing_words}`.
pub fn run_transcribe(args: &TranscribeArgs) -> Result<serde_json::Value, AsrError> {
    let pcm = crate::media::wav::read_mono_8k(&args.wav).map_err(|e| AsrError::Input {
        path: args.wav.clone(),
        reason: e.to_string(),
    })?;
    let phrases = match &args.phrases {
        Some(p) => read_phrases(p)?,
        None => Vec::new(),
    };
    let replies = if phrases.iter().any(|p| super::sphinx::rule_ref(p).is_some()) {
        let dict = super::sphinx::dictionary(&super::sphinx::SphinxConfig::default().dict)?;
        let known = |w: &str| dict.contains_key(w);
        super::jsgf::load_replies(&args.prompts, &args.lang, &known)
            .map_err(|e| AsrError::Input {
                path: args.prompts.clone(),
                reason: e.to_string(),
            })?
            .map(std::sync::Arc::new)
    } else {
        None
    };
    let mut rec = open_with(
        args.engine.as_deref(),
        &args.lang,
        args.model.as_deref(),
        replies,
        None,
        None,
    )?;
    if !phrases.is_empty() || rec.engine() == "sphinx" {
        if phrases.is_empty() {
            return Err(AsrError::BadPhrase {
                phrase: String::new(),
                reason: "the sphinx engine needs --phrases (a grammar); free recognition needs a Vosk model".into(),
            });
        }
        rec.set_phrases(&phrases)?;
    }
    let started = Instant::now();
    let t = transcribe_pcm(rec.as_mut(), &pcm)?;
    let processing = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "text": t.text,
        "words": t.words.iter().map(|w| serde_json::json!({
            "word": w.word, "start": round3(w.start), "end": round3(w.end), "confidence": round3(w.conf)
        })).collect::<Vec<_>>(),
        "confidence": round3(t.confidence),
        "engine": rec.engine(),
        "audio_seconds": round3((pcm.len() as f64 / SAMPLE_RATE as f64) as f32),
        "processing_seconds": (processing * 1000.0).round() / 1000.0,
    }))
}

/// Feeds `pcm` in 20 ms frames and returns the final transcript.
pub fn transcribe_pcm(rec: &mut dyn Recognizer, pcm: &[i16]) -> Result<Transcript, AsrError> {
    for frame in pcm.chunks(FRAME_SAMPLES) {
        rec.accept(frame)?;
    }
    rec.finish()
}

fn round3(x: f32) -> f64 {
    (x as f64 * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::testutil::{sphinx_tools, TempDir};

    #[test]
    fn unreadable_wav_is_an_input_error_naming_the_file() {
        let args = TranscribeArgs {
            wav: "/nonexistent/a.wav".into(),
            engine: None,
            model: None,
            lang: "en".into(),
            phrases: None,
            prompts: "prompts".into(),
        };
        let e = run_transcribe(&args).unwrap_err();
        assert!(
            matches!(e, AsrError::Input { .. }) && e.to_string().contains("/nonexistent/a.wav"),
            "{e}"
        );
    }

    /// `text` spoken by espeak-ng into `d`, and sphinx arguments for it with
    /// `phrases` as the grammar; None (with a note) when a tool is missing.
    fn sphinx_case(d: &TempDir, text: &str, phrases: &str) -> Option<TranscribeArgs> {
        if !sphinx_tools() {
            return None;
        }
        let raw = d.0.join("a.wav");
        let st = crate::media::tts::espeak_stdin(
            std::process::Command::new("espeak-ng")
                .args(["-v", "en-us", "-w"])
                .arg(&raw)
                .arg("--stdin"),
            text,
        )
        .unwrap()
        .status;
        assert!(st.success());
        let ph = d.0.join("p.txt");
        std::fs::write(&ph, phrases).unwrap();
        Some(TranscribeArgs {
            wav: raw,
            engine: Some("sphinx".into()),
            model: None,
            lang: "en".into(),
            phrases: Some(ph),
            prompts: d.0.join("no-prompts-here"),
        })
    }

    #[test]
    fn transcribe_english_file_with_sphinx_grammar_gives_timed_words_json() {
        let d = TempDir::new("cli");
        let phrases = "I already paid\nwrong number\nI lost my job\n";
        let Some(args) = sphinx_case(&d, "I lost my job", phrases) else {
            return;
        };
        let v = run_transcribe(&args).unwrap();
        assert_eq!(v["text"], "i lost my job", "{v}");
        assert_eq!(v["engine"], "sphinx");
        assert_eq!(v["words"].as_array().map(|a| a.len()), Some(4));
        assert!(v["audio_seconds"].as_f64().unwrap() > 0.5);
        assert!(v["words"][3]["end"].as_f64() > v["words"][0]["start"].as_f64());
    }

    #[test]
    fn reply_grammar_rule_phrase_hears_a_whole_reply_no_phrase_lists() {
        let d = TempDir::new("cli-rules");
        let said = "I'm going to make the payment on Friday";
        let phrases = "wrong number\n<promise_to_pay>\n<already_paid>\n";
        let Some(args) = sphinx_case(&d, said, phrases) else {
            return;
        };
        let v = run_transcribe(&args).unwrap();
        // The decoder may hear another wording of the rule; what counts is
        // that a reply no phrase lists comes out as a promise for Friday.
        let text = v["text"].as_str().unwrap_or_default();
        let lexicon =
            crate::intent::Lexicon::from_toml_str(include_str!("../../prompts/en.toml"), "en")
                .unwrap();
        let intent = crate::intent::Classifier::new(lexicon).classify(
            text,
            chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
            None,
        );
        assert_eq!(intent.kind, crate::intent::IntentKind::PromiseToPay, "{v}");
        assert!(text.ends_with("friday"), "{v}");
    }
}
