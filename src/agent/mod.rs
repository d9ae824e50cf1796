//! The agent: the thin tokio driver that runs one reminder conversation over
//! a `CallLeg`. It owns the per-process resources every call shares (scripts,
//! intent lexicons, prompt audio, a pool of recognizers) and, per call, moves
//! events between the leg, the VAD, the recognizer thread and the pure
//! `dialogue::Conversation`. It never decides what to say or where a case
//! goes: the conversation does. Recognition runs on its own thread so a busy
//! recognizer never delays a packet.

mod call;
mod files;
mod hooks;

pub use call::{AttemptOutcome, CallOptions, ReplyTiming};
pub use files::{attempt_file_prefix, attempt_file_stem};
pub use hooks::{TransferHook, TransferStarted};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::account::Language;
use crate::asr::jsgf::ReplyGrammar;
use crate::asr::{AsrError, Recognizer};
use crate::config::Config;
use crate::dialogue::{Script, ScriptError, Understand};
use crate::intent::{Classifier, DtmfContext, Intent, IntentError, Lexicon};
use crate::media::tts::PromptAudio;
use crate::telephony::sip::{SipError, SipGateway};

/// What can stop the agent from starting or from placing a call.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A prompts file is missing or invalid.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The intent lexicon is invalid.
    #[error(transparent)]
    Intent(#[from] IntentError),
    /// No recognizer for a language.
    #[error("speech recognition for `{lang}`: {source}")]
    Asr {
        /// Language.
        lang: String,
        /// Why.
        source: AsrError,
    },
    /// Prompt audio could not be rendered or read.
    #[error("prompt audio: {0}")]
    Audio(String),
    /// Signalling failed to start the call.
    #[error(transparent)]
    Sip(#[from] SipError),
    /// The `[dialogue]` or `[asr]` config section is invalid.
    #[error("config `{key}`: {message}")]
    Config {
        /// Section.
        key: String,
        /// Parser message naming the key.
        message: String,
    },
    /// Writing the outcome or recording directory failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// `[dialogue]` config: conversation timings and where agents are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialogueSettings {
    /// Silence after a question before re-asking.
    pub no_input_ms: u64,
    /// How long the callee must talk over a prompt to cut it.
    pub barge_in_min_speech_ms: u64,
    /// VAD: speech shorter than this is not speech.
    pub min_speech_ms: u32,
    /// VAD: silence that ends an utterance.
    pub end_silence_ms: u32,
    /// Pause before the first prompt.
    pub speak_delay_ms: u64,
    /// `leave_message` or `hang_up` when a machine answers.
    pub voicemail: crate::dialogue::VoicemailMode,
    /// Answering-machine detection on/off.
    pub amd: bool,
    /// Default agent URI for live transfers (an account's own wins).
    pub agent_uri: Option<String>,
    /// Intent confidence threshold.
    pub intent_threshold: f32,
    /// Detect in-band DTMF tones when the carrier sends no RFC 4733 events.
    pub inband_dtmf: bool,
}

impl Default for DialogueSettings {
    fn default() -> Self {
        DialogueSettings {
            no_input_ms: 5000,
            barge_in_min_speech_ms: 300,
            min_speech_ms: 200,
            end_silence_ms: 300,
            speak_delay_ms: 0,
            voicemail: crate::dialogue::VoicemailMode::LeaveMessage,
            amd: true,
            agent_uri: None,
            intent_threshold: 0.5,
            inband_dtmf: true,
        }
    }
}

/// `[asr]` config: engines, models per language, Whisper and the engine
/// per listening turn (owned by `asr`).
pub type AsrSettings = crate::asr::AsrConfig;

/// Where the agent finds its files.
#[derive(Debug, Clone)]
pub struct AgentPaths {
    /// `prompts/` (en.toml, zh.toml); missing files fall back to the copies
    /// compiled into the binary.
    pub prompts: PathBuf,
    /// `audio/` (recordings and `tts/` renders per language).
    pub audio: PathBuf,
    /// Cache for prompts rendered on demand.
    pub cache: PathBuf,
}

impl AgentPaths {
    /// The project's layout relative to `root` (a checkout), cache under it.
    pub fn under(root: &Path) -> AgentPaths {
        AgentPaths {
            prompts: root.join("prompts"),
            audio: root.join("audio"),
            cache: root.join(".local").join("cache").join("prompts"),
        }
    }

    /// The checkout this binary was built from when it still exists, else
    /// the current directory.
    pub fn default_root() -> PathBuf {
        let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        if Path::new("prompts").is_dir() {
            PathBuf::from(".")
        } else if built.join("prompts").is_dir() {
            built
        } else {
            PathBuf::from(".")
        }
    }
}

const EN_TOML: &str = include_str!("../../prompts/en.toml");
const ZH_TOML: &str = include_str!("../../prompts/zh.toml");

/// One language's script, lexicon and voice.
struct LangKit {
    /// Per listen turn, the grammar PocketSphinx gets: the turn's phrases
    /// plus the lexicon's (so a reply worded like the lexicon is not forced
    /// onto the nearest listen phrase). None when the language runs on Vosk,
    /// whose grammar stays the listen phrases.
    sphinx_grammars: Option<HashMap<String, Vec<String>>>,
    /// The reply grammar the `<intent>` phrases of `sphinx_grammars` name.
    replies: Option<Arc<ReplyGrammar>>,
    script: Arc<Script>,
    understand: Arc<dyn Understand + Send + Sync>,
    audio: PromptAudio,
}

/// The shared resources of every call the process places.
pub struct Agent {
    gateway: Arc<SipGateway>,
    kits: HashMap<Language, LangKit>,
    recognizers: Mutex<HashMap<Language, Vec<Box<dyn Recognizer>>>>,
    asr: AsrSettings,
    dialogue: DialogueSettings,
}

/// The real classifier, as the conversation asks for it.
struct ClassifierUnderstand(Classifier);

impl Understand for ClassifierUnderstand {
    fn text(&self, text: &str, at: chrono::NaiveDateTime) -> Intent {
        self.0.classify(text, at.date(), Some(at.time()))
    }
    fn digit(&self, digit: char, identity_confirmed: bool) -> Intent {
        let ctx = if identity_confirmed {
            DtmfContext::AfterIdentity
        } else {
            DtmfContext::BeforeIdentity
        };
        self.0.classify_dtmf(digit, ctx)
    }
}

fn section<T: for<'de> Deserialize<'de> + Default>(
    v: &Option<toml::Value>,
    key: &str,
) -> Result<T, AgentError> {
    match v {
        None => Ok(T::default()),
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| AgentError::Config {
                key: key.into(),
                message: e.to_string(),
            }),
    }
}

/// Will `asr::open` pick PocketSphinx for this language?
fn runs_on_sphinx(asr: &AsrSettings, lang: Language) -> bool {
    match (asr.engine.as_deref(), asr.models.get(lang.as_str())) {
        (Some(e), _) => e.eq_ignore_ascii_case("sphinx"),
        (None, Some(m)) => m == Path::new("sphinx"),
        (None, None) => {
            lang == Language::En && crate::asr::find_vosk_model(lang.as_str()).is_none()
        }
    }
}

/// Fails when the reply grammar has words PocketSphinx cannot say, naming
/// them (a contact centre's edit should fail at start-up, not mid-call).
fn check_reply_words(g: &ReplyGrammar, lang: Language) -> Result<(), AgentError> {
    let Ok(dict) =
        crate::asr::sphinx::dictionary(&crate::asr::sphinx::SphinxConfig::default().dict)
    else {
        // No PocketSphinx here: opening the recognizer reports that.
        return Ok(());
    };
    let missing: Vec<String> = g
        .words()
        .into_iter()
        .filter(|w| !dict.contains_key(w))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(AgentError::Config {
        key: format!("prompts/{}.replies.jsgf", lang.as_str()),
        message: format!(
            "words not in the PocketSphinx dictionary: {} (use words it has, or add them to it)",
            missing.join(", ")
        ),
    })
}

/// The grammar of every listen turn PocketSphinx decodes with
/// ([`crate::asr::turns::call_grammars`]); words the PocketSphinx dictionary
/// lacks are left out.
fn sphinx_grammars(
    script: &Script,
    lexicon: &Lexicon,
    replies: Option<&ReplyGrammar>,
) -> HashMap<String, Vec<String>> {
    // The same cached dictionary the decoders add their grammar words from.
    let dict = crate::asr::sphinx::dictionary(&crate::asr::sphinx::SphinxConfig::default().dict)
        .unwrap_or_default();
    let known = |w: &str| dict.contains_key(w);
    crate::asr::turns::call_grammars(&script.listen, &script.expects, lexicon, replies, &known)
}

impl Agent {
    /// Loads the scripts and lexicons for `languages` (checked up front) and
    /// readies prompt audio. Recognizers are opened lazily, once per
    /// concurrent call, and reused.
    pub fn new(
        gateway: Arc<SipGateway>,
        config: &Config,
        paths: &AgentPaths,
        languages: &[Language],
    ) -> Result<Agent, AgentError> {
        let dialogue: DialogueSettings = section(&config.dialogue, "dialogue")?;
        let asr: AsrSettings = section(&config.asr, "asr")?;
        let mut kits = HashMap::new();
        for &lang in languages {
            let file = paths.prompts.join(format!("{}.toml", lang.as_str()));
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(_) => match lang {
                    Language::En => EN_TOML.to_string(),
                    Language::Zh => ZH_TOML.to_string(),
                },
            };
            let origin = file.display().to_string();
            let script = Script::parse(&text, &origin)?;
            let lexicon = Lexicon::from_toml_str(&text, lang.as_str())?;
            let (sphinx_grammars, replies) = if runs_on_sphinx(&asr, lang) {
                let dict = crate::asr::sphinx::dictionary(
                    &crate::asr::sphinx::SphinxConfig::default().dict,
                )
                .unwrap_or_default();
                let known = |w: &str| dict.contains_key(w);
                let replies = crate::asr::jsgf::load_replies(&paths.prompts, lang.as_str(), &known)
                    .map_err(|e| AgentError::Config {
                        key: format!("prompts/{}.replies.jsgf", lang.as_str()),
                        message: e.to_string(),
                    })?
                    .map(Arc::new);
                if let Some(g) = &replies {
                    check_reply_words(g, lang)?;
                }
                (
                    Some(sphinx_grammars(&script, &lexicon, replies.as_deref())),
                    replies,
                )
            } else {
                (None, None)
            };
            let classifier = Classifier::new(lexicon).with_threshold(dialogue.intent_threshold);
            let voice = if script.meta.voice.is_empty() {
                match lang {
                    Language::En => "en-us".to_string(),
                    Language::Zh => "cmn".to_string(),
                }
            } else {
                script.meta.voice.clone()
            };
            let audio = PromptAudio::new(
                &paths.audio,
                lang.as_str(),
                &paths.cache,
                &voice,
                script.meta.speed,
            );
            kits.insert(
                lang,
                LangKit {
                    sphinx_grammars,
                    replies,
                    script: Arc::new(script),
                    understand: Arc::new(ClassifierUnderstand(classifier)),
                    audio,
                },
            );
        }
        Ok(Agent {
            gateway,
            kits,
            recognizers: Mutex::new(HashMap::new()),
            asr,
            dialogue,
        })
    }

    /// The gateway calls go out on.
    pub fn gateway(&self) -> &Arc<SipGateway> {
        &self.gateway
    }

    /// Opens (or reuses) a recognizer for `lang`.
    fn take_recognizer(&self, lang: Language) -> Result<Box<dyn Recognizer>, AgentError> {
        if let Ok(mut pool) = self.recognizers.lock() {
            if let Some(r) = pool.get_mut(&lang).and_then(|v| v.pop()) {
                return Ok(r);
            }
        }
        let kit = self.kits.get(&lang);
        let replies = kit.and_then(|k| k.replies.clone());
        // What a text means, for the agreement between the two engines.
        let meaning = kit.map(|k| {
            let understand = k.understand.clone();
            let m: crate::asr::call::Meaning = Arc::new(move |text: &str| {
                understand
                    .text(text, chrono::Local::now().naive_local())
                    .kind
            });
            m
        });
        crate::asr::call::open_call(lang.as_str(), &self.asr, replies, meaning)
            .map(|r| Box::new(r) as Box<dyn Recognizer>)
            .map_err(|source| AgentError::Asr {
                lang: lang.as_str().into(),
                source,
            })
    }

    /// Returns a recognizer to the pool for the next call.
    fn give_back(&self, lang: Language, mut r: Box<dyn Recognizer>) {
        r.reset();
        if let Ok(mut pool) = self.recognizers.lock() {
            pool.entry(lang).or_default().push(r);
        }
    }

    /// Checks that a recognizer can be opened for `lang` (for start-up errors
    /// before any call is placed).
    pub fn check_asr(&self, lang: Language) -> Result<&'static str, AgentError> {
        let r = self.take_recognizer(lang)?;
        let engine = r.engine();
        self.give_back(lang, r);
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_grammar_word_missing_from_the_dictionary_fails_start_up_naming_it() {
        if !crate::testkit::needs()
            .file(
                crate::asr::sphinx::SphinxConfig::default().dict,
                "the PocketSphinx dictionary (pocketsphinx-en-us)",
            )
            .met()
        {
            return;
        }
        let bad = ReplyGrammar::parse("<already_paid> = i paid with zorblatt;", "t").unwrap();
        let e = check_reply_words(&bad, Language::En)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("zorblatt") && e.contains("en.replies.jsgf"),
            "{e}"
        );
        let good = ReplyGrammar::parse("<already_paid> = i paid;", "t").unwrap();
        assert!(check_reply_words(&good, Language::En).is_ok());
    }

    #[test]
    fn call_grammars_name_the_reply_rules_of_the_intents_each_turn_expects() {
        let script = Script::parse(EN_TOML, "en.toml").unwrap();
        let lexicon = Lexicon::from_toml_str(EN_TOML, "en").unwrap();
        let g = ReplyGrammar::parse(crate::asr::jsgf::EN_REPLIES, "en.replies.jsgf").unwrap();
        let grammars = sphinx_grammars(&script, &lexicon, Some(&g));
        let identity = &grammars["identity"];
        assert!(
            identity.contains(&"<identity_confirmed>".to_string()),
            "{identity:?}"
        );
        assert!(
            !identity.contains(&"<already_paid>".to_string()),
            "{identity:?}"
        );
        let reminder = &grammars["reminder"];
        assert!(
            reminder.contains(&"<promise_to_pay>".to_string()),
            "{reminder:?}"
        );
        assert!(reminder.contains(&"<other>".to_string()), "{reminder:?}");
        assert!(
            reminder.contains(&"i already paid".to_string()),
            "the listen phrases stay"
        );
    }
}
