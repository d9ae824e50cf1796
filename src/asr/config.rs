//! The `[asr]` configuration section: which engines hear a call and where
//! their models are.
//!
//! ```toml
//! [asr]
//! engine = "sphinx"        # the streaming grammar engine: "vosk" or "sphinx" (unset: Vosk when a model is installed)
//! models = { en = "/opt/vosk-model-small-en-us-0.15" }
//!
//! [asr.whisper]
//! models = { en = ".local/models/whisper/ggml-tiny.en-q8_0.bin" }  # default: what scripts/setup installs
//! workers = 2              # decode threads shared by every call (default: the cores)
//! enabled = true           # false: grammar engines only
//! deadline_ms = 700        # the most a reply waits for Whisper after the VAD ends it (100-5000);
//!                          # a busier queue or a later result: the grammar engine's result
//!
//! [asr.turns]              # the engine per listening turn (dialogue turn ids; unset: DEFAULT_TURNS
//! reminder = "hybrid"      # in English (reminder "hybrid", identity "checked"), else "grammar", or
//! identity = "checked"     # Whisper where the language has no grammar engine): "grammar", "whisper",
//!                          # "hybrid" or "checked" (grammar; Whisper hears again what would be acted on)
//! ```
//!
//! Owns: the section's shape and defaults, and the engine choice per turn
//! ([`AsrConfig::engine_for`]). Never opens a model.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::whisper::wait::{DEADLINE_RANGE_MS, DEFAULT_DEADLINE_MS};

/// A value in `[asr]` outside what it may be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("config key `{key}`: expected {expected}, got {got}")]
pub struct AsrConfigError {
    /// Dotted key, e.g. `asr.whisper.deadline_ms`.
    pub key: String,
    /// What it may be.
    pub expected: String,
    /// What it was.
    pub got: String,
}

/// Which engines hear a listening turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnEngine {
    /// The streaming grammar engine alone (PocketSphinx or Vosk).
    Grammar,
    /// Whisper alone (free text; no grammar).
    Whisper,
    /// Both: the grammar engine streams (partials, short answers), Whisper
    /// says what a longer reply says, and their agreement is the confidence.
    Hybrid,
    /// The grammar engine hears the turn; a reply it hears as a
    /// consequential intent, or one longer than a short answer
    /// ([`super::hybrid::CheckRule`]), is heard again by Whisper and
    /// decided as in a hybrid turn. Short answers cost nothing extra; a
    /// forced consequential sentence is checked before it is acted on.
    Checked,
}

impl TurnEngine {
    /// Whether the streaming grammar engine runs in this turn.
    pub fn uses_grammar(self) -> bool {
        matches!(
            self,
            TurnEngine::Grammar | TurnEngine::Hybrid | TurnEngine::Checked
        )
    }

    /// Whether Whisper runs in this turn.
    pub fn uses_whisper(self) -> bool {
        matches!(
            self,
            TurnEngine::Whisper | TurnEngine::Hybrid | TurnEngine::Checked
        )
    }

    /// The name in the config ("hybrid").
    pub fn as_str(self) -> &'static str {
        match self {
            TurnEngine::Grammar => "grammar",
            TurnEngine::Whisper => "whisper",
            TurnEngine::Hybrid => "hybrid",
            TurnEngine::Checked => "checked",
        }
    }
}

/// The engine of English listening turns `[asr.turns]` does not name,
/// where not the grammar engine (English only: the hybrid rule was fitted
/// on English replies with PocketSphinx). The reminder turn, whose replies
/// are open (why the debtor cannot pay, what it disputes), is on hybrid:
/// held out, its replies right 82.3 % against 74.0 % on the grammar engine
/// and off-topic rejected 62.5 % against 25.0 %; whole calls in new wording
/// and flite voices (`duecall bench conversations`, 2026-12-07) 42/56
/// routes right against 36/56. It costs reply latency: a reply waits for
/// Whisper up to `[asr.whisper] deadline_ms` (700) after its end silence
/// (25 conversations at once: p95 1279 ms against 339 ms). The identity
/// turn is checked ([`TurnEngine::Checked`]): its short answers stay on the
/// grammar engine, and what it would act on (a consequential sentence, or
/// a reply longer than a short answer) is heard again by Whisper, which
/// also scores the turn's phrases. On the development split (402 identity
/// clips in six espeak-ng voices) that took replies heard as a
/// consequential intent not meant, and acted on without confirming, from
/// 56 to 2 (README, "The checked identity turn"). Other closed turns
/// (confirmations, dates) stay on the grammar engine. `[asr.turns]
/// reminder = "grammar"` / `identity = "grammar"` put them back.
pub const DEFAULT_TURNS: &[(&str, TurnEngine)] = &[
    ("reminder", TurnEngine::Hybrid),
    ("identity", TurnEngine::Checked),
];

fn is_english(lang: &str) -> bool {
    let l = lang.to_ascii_lowercase();
    l == "en" || l.starts_with("en-") || l.starts_with("en_")
}

/// `[asr.whisper]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhisperConfig {
    /// A ggml model file per language (default: `.local/models/whisper/`,
    /// what `scripts/setup` converts).
    pub models: HashMap<String, PathBuf>,
    /// Decode threads shared by every call (default: the cores).
    pub workers: Option<usize>,
    /// False: grammar engines only, even where a Whisper model is installed.
    pub enabled: Option<bool>,
    /// The most a reply in a hybrid turn waits for Whisper after the VAD
    /// ended it (ms; default [`DEFAULT_DEADLINE_MS`]): a decode not
    /// expected done by then is not asked for, one not done by then is
    /// dropped, and the grammar engine's result stands.
    pub deadline_ms: Option<u64>,
}

/// `[asr]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsrConfig {
    /// The streaming grammar engine: `vosk`, `sphinx`, or unset (Vosk when
    /// a model is installed, else PocketSphinx for English).
    pub engine: Option<String>,
    /// Vosk model directory per language (`en`, `zh`), or `sphinx`.
    pub models: HashMap<String, PathBuf>,
    /// Whisper.
    pub whisper: WhisperConfig,
    /// The engine per listening turn (`identity`, `reminder`, `ask_date`,
    /// `confirm_promise`, `better_time`); unset turns use
    /// [`DEFAULT_TURNS`] in English, else the grammar engine where the
    /// language has one, else Whisper.
    pub turns: HashMap<String, TurnEngine>,
    /// The grammar engine's general-language second pass (PocketSphinx):
    /// `lm` (the model's general English n-gram), `none`, or a language
    /// model's path; unset: `DUECALL_SPHINX_SECOND_PASS`, else the default
    /// ([`crate::asr::sphinx::SphinxConfig::for_calls`]: none).
    pub second_pass: Option<String>,
    /// PocketSphinx decoders the process keeps at most, shared by every
    /// call one utterance at a time (unset:
    /// [`crate::asr::sphinx::default_decoders`]).
    pub decoders: Option<usize>,
}

impl AsrConfig {
    /// Whether Whisper may be used at all.
    pub fn whisper_enabled(&self) -> bool {
        self.whisper.enabled.unwrap_or(true)
    }

    /// How long a reply may wait for Whisper after the VAD ended it (ms).
    pub fn whisper_deadline_ms(&self) -> u64 {
        self.whisper.deadline_ms.unwrap_or(DEFAULT_DEADLINE_MS)
    }

    /// Checks the numbers the types cannot: the Whisper deadline's range.
    pub fn validate(&self) -> Result<(), AsrConfigError> {
        if self.decoders == Some(0) {
            return Err(AsrConfigError {
                key: "asr.decoders".into(),
                expected: "at least 1".into(),
                got: "0".into(),
            });
        }
        if let Some(ms) = self.whisper.deadline_ms {
            if !DEADLINE_RANGE_MS.contains(&ms) {
                return Err(AsrConfigError {
                    key: "asr.whisper.deadline_ms".into(),
                    expected: format!(
                        "milliseconds from {} to {}",
                        DEADLINE_RANGE_MS.start(),
                        DEADLINE_RANGE_MS.end()
                    ),
                    got: ms.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The engine `turn` asks for in `lang`: `[asr.turns]`, else
    /// [`DEFAULT_TURNS`] in English, else the grammar engine.
    pub fn wanted(&self, lang: &str, turn: &str) -> TurnEngine {
        if let Some(e) = self.turns.get(turn) {
            return *e;
        }
        DEFAULT_TURNS
            .iter()
            .find(|(t, _)| *t == turn && is_english(lang))
            .map_or(TurnEngine::Grammar, |(_, e)| *e)
    }

    /// Whether some turn in `lang` asks for Whisper, by `[asr.turns]` or
    /// by default (else it is loaded only for a language without a
    /// grammar engine).
    pub fn any_turn_uses_whisper(&self, lang: &str) -> bool {
        self.turns.values().any(|e| e.uses_whisper())
            || DEFAULT_TURNS
                .iter()
                .any(|(t, _)| self.wanted(lang, t).uses_whisper())
    }

    /// The engine for `turn` in `lang` given which engines are available
    /// for the call's language; an engine asked for that is not available
    /// falls back to the one that is. None when neither is.
    pub fn engine_for(
        &self,
        lang: &str,
        turn: &str,
        grammar: bool,
        whisper: bool,
    ) -> Option<TurnEngine> {
        let wanted = self.wanted(lang, turn);
        match (wanted, grammar, whisper) {
            (_, false, false) => None,
            (TurnEngine::Hybrid, true, true) => Some(TurnEngine::Hybrid),
            (TurnEngine::Checked, true, true) => Some(TurnEngine::Checked),
            (TurnEngine::Grammar, true, _) => Some(TurnEngine::Grammar),
            (TurnEngine::Whisper, _, true) => Some(TurnEngine::Whisper),
            (_, true, false) => Some(TurnEngine::Grammar),
            (_, false, true) => Some(TurnEngine::Whisper),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AsrConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn turn_engines_parse_and_unknown_keys_are_refused_naming_them() {
        let c = parse(
            "engine = \"sphinx\"\n[whisper]\nworkers = 2\n[turns]\nidentity = \"grammar\"\nreminder = \"hybrid\"\n",
        )
        .unwrap();
        assert_eq!(c.turns["identity"], TurnEngine::Grammar);
        assert_eq!(c.whisper.workers, Some(2));
        let e = parse("[turns]\nidentity = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("loud"), "{e}");
        let e = parse("[whisper]\nthreads = 2\n").unwrap_err().to_string();
        assert!(e.contains("threads"), "{e}");
    }

    #[test]
    fn the_whisper_deadline_defaults_and_refuses_what_would_hang_or_skip_every_reply() {
        let c = parse("").unwrap();
        assert_eq!(c.whisper_deadline_ms(), DEFAULT_DEADLINE_MS);
        assert_eq!(c.validate(), Ok(()));
        let c = parse("[whisper]\ndeadline_ms = 500\n").unwrap();
        assert_eq!(c.whisper_deadline_ms(), 500);
        assert_eq!(c.validate(), Ok(()));
        for bad in [0, 99, 5001, 60_000] {
            let c = parse(&format!("[whisper]\ndeadline_ms = {bad}\n")).unwrap();
            let e = c.validate().unwrap_err();
            assert_eq!(e.key, "asr.whisper.deadline_ms");
            assert!(e.to_string().contains(&bad.to_string()), "{e}");
        }
        let e = parse("[whisper]\ndeadline_ms = \"fast\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("deadline_ms"), "{e}");
    }

    #[test]
    fn the_second_pass_setting_parses_and_names_a_model() {
        assert_eq!(parse("").unwrap().second_pass, None);
        let c = parse("second_pass = \"lm\"\n").unwrap();
        assert_eq!(c.second_pass.as_deref(), Some("lm"));
        let sphinx = crate::asr::sphinx::SphinxConfig::default();
        let lm = sphinx.second_pass_model("lm").unwrap();
        assert!(lm.ends_with("en-us.lm.bin"), "{lm:?}");
        assert_eq!(sphinx.second_pass_model("none"), None);
        assert_eq!(
            sphinx.second_pass_model("/models/my.lm.bin"),
            Some(std::path::PathBuf::from("/models/my.lm.bin"))
        );
        let e = parse("second_pass = 1\n").unwrap_err().to_string();
        assert!(e.contains("second_pass"), "{e}");
    }

    #[test]
    fn english_reminder_is_hybrid_and_identity_checked_unless_the_config_says_otherwise() {
        let c = AsrConfig::default();
        for turn in ["ask_date", "confirm_promise", "better_time"] {
            assert_eq!(c.wanted("en", turn), TurnEngine::Grammar, "{turn}");
        }
        assert_eq!(c.wanted("en", "reminder"), TurnEngine::Hybrid);
        assert_eq!(c.wanted("en", "identity"), TurnEngine::Checked);
        for turn in [
            "identity",
            "reminder",
            "ask_date",
            "confirm_promise",
            "better_time",
        ] {
            assert_eq!(c.wanted("zh", turn), TurnEngine::Grammar, "{turn}");
        }
        assert!(c.any_turn_uses_whisper("en"));
        let c = parse("[turns]\nreminder = \"grammar\"\nidentity = \"grammar\"\n").unwrap();
        assert_eq!(c.wanted("en", "reminder"), TurnEngine::Grammar);
        assert!(!c.any_turn_uses_whisper("en"));
        let c = parse("[turns]\nreminder = \"grammar\"\n").unwrap();
        assert_eq!(c.wanted("en", "identity"), TurnEngine::Checked);
        assert!(
            c.any_turn_uses_whisper("en"),
            "the identity turn still checks"
        );
        let c = parse("[turns]\nidentity = \"grammar\"\n").unwrap();
        assert_eq!(c.wanted("en", "reminder"), TurnEngine::Hybrid);
        assert_eq!(c.wanted("en", "identity"), TurnEngine::Grammar);
        assert!(c.any_turn_uses_whisper("en"));
        // Whisper disabled or missing: the grammar engine.
        assert_eq!(
            c.engine_for("en", "reminder", true, false),
            Some(TurnEngine::Grammar)
        );
    }

    #[test]
    fn the_engine_falls_back_to_what_the_language_has() {
        let mut c = AsrConfig::default();
        c.turns.insert("reminder".into(), TurnEngine::Grammar);
        assert_eq!(
            c.engine_for("en", "identity", true, true),
            Some(TurnEngine::Checked)
        );
        c.turns.insert("identity".into(), TurnEngine::Grammar);
        assert_eq!(
            c.engine_for("en", "identity", true, true),
            Some(TurnEngine::Grammar)
        );
        assert!(!c.any_turn_uses_whisper("en"));
        c.turns.insert("ask_date".into(), TurnEngine::Hybrid);
        assert!(c.any_turn_uses_whisper("en"));
        assert_eq!(
            c.engine_for("en", "ask_date", true, true),
            Some(TurnEngine::Hybrid)
        );
        assert_eq!(
            c.engine_for("en", "identity", true, false),
            Some(TurnEngine::Grammar)
        );
        assert_eq!(
            c.engine_for("en", "identity", false, true),
            Some(TurnEngine::Whisper)
        );
        assert_eq!(c.engine_for("en", "identity", false, false), None);
        c.turns.insert("reminder".into(), TurnEngine::Whisper);
        c.turns.insert("identity".into(), TurnEngine::Grammar);
        assert_eq!(
            c.engine_for("en", "reminder", true, true),
            Some(TurnEngine::Whisper)
        );
        assert_eq!(
            c.engine_for("en", "reminder", true, false),
            Some(TurnEngine::Grammar)
        );
        assert_eq!(
            c.engine_for("en", "identity", false, true),
            Some(TurnEngine::Whisper)
        );
    }
}
