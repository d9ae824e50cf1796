//! One language's kit, loaded once per process: the script, the intent
//! classifier the conversation asks, the prompt audio and, when the
//! language runs on PocketSphinx, every question's grammar (checked against
//! the dictionary at start-up, so a contact centre's edit fails before any
//! call). Never places a call.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{AgentError, AgentPaths};
use crate::account::Language;
use crate::asr::jsgf::ReplyGrammar;
use crate::asr::sphinx::SphinxConfig;
use crate::asr::AsrConfig;
use crate::dialogue::{Listen, Script, Understand};
use crate::intent::{Classifier, DtmfContext, Intent, Lexicon};
use crate::media::tts::PromptAudio;

pub(super) const EN_TOML: &str = include_str!("../../prompts/en.toml");
pub(super) const ZH_TOML: &str = include_str!("../../prompts/zh.toml");

/// One language's script, classifier, voice and grammars.
pub(super) struct LangKit {
    /// Per question, the grammar PocketSphinx gets: the turn's phrases
    /// plus the lexicon's (so a reply worded like the lexicon is not forced
    /// onto the nearest listen phrase). None when the language runs on Vosk,
    /// whose grammar stays the listen phrases.
    pub sphinx_grammars: Option<HashMap<String, Vec<String>>>,
    /// The reply grammar the `<intent>` phrases of `sphinx_grammars` name.
    pub replies: Option<Arc<ReplyGrammar>>,
    pub script: Arc<Script>,
    pub understand: Arc<dyn Understand + Send + Sync>,
    pub audio: PromptAudio,
}

impl LangKit {
    /// Loads `lang`'s script (the file under `paths.prompts`, else the copy
    /// built in), its lexicon (the classifier applies `intent_threshold`,
    /// once) and, on PocketSphinx, its grammars.
    pub fn load(
        lang: Language,
        paths: &AgentPaths,
        asr: &AsrConfig,
        intent_threshold: f32,
    ) -> Result<LangKit, AgentError> {
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
        let (sphinx_grammars, replies) = if runs_on_sphinx(asr, lang) {
            let dict =
                crate::asr::sphinx::dictionary(&crate::asr::sphinx::SphinxConfig::default().dict)
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
        let classifier = Classifier::new(lexicon).with_threshold(intent_threshold);
        let voice = if script.meta.voice.is_empty() {
            match lang {
                Language::En => "en-us".to_string(),
                Language::Zh => "cmn-latn-pinyin".to_string(),
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
        Ok(LangKit {
            sphinx_grammars,
            replies,
            script: Arc::new(script),
            understand: Arc::new(ClassifierUnderstand(classifier)),
            audio,
        })
    }

    /// The grammar the recognizer gets for `turn`: the PocketSphinx
    /// grammar when there is one, else the listen phrases.
    pub fn grammar(&self, turn: Listen, phrases: Vec<String>) -> Vec<String> {
        self.sphinx_grammars
            .as_ref()
            .and_then(|g| g.get(turn.as_str()))
            .cloned()
            .unwrap_or(phrases)
    }
}

/// PocketSphinx as English calls configure `turn`, from the prompts under
/// `paths`: the decoder configuration ([`SphinxConfig::for_calls`] with the
/// language's reply grammar) and the turn's grammar, built by the same
/// [`LangKit`] a call uses. For benchmarks that measure the recogniser calls
/// run without placing a call.
pub fn sphinx_as_calls(
    paths: &AgentPaths,
    turn: Listen,
) -> Result<(SphinxConfig, Vec<String>), AgentError> {
    let asr = AsrConfig {
        engine: Some("sphinx".into()),
        ..AsrConfig::default()
    };
    let threshold = crate::dialogue::DialogueConfig::default().intent_threshold;
    let kit = LangKit::load(Language::En, paths, &asr, threshold)?;
    let mut config = SphinxConfig::for_calls();
    config.replies = kit.replies.clone();
    Ok((config, kit.grammar(turn, Vec::new())))
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

/// Will `asr::open` pick PocketSphinx for this language?
fn runs_on_sphinx(asr: &AsrConfig, lang: Language) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::jsgf::ReplyGrammar;

    /// Whether the PocketSphinx dictionary is here (under CI its absence
    /// fails the test).
    fn has_dictionary() -> bool {
        crate::testkit::needs()
            .file(
                crate::asr::sphinx::SphinxConfig::default().dict,
                "the PocketSphinx dictionary (pocketsphinx-en-us)",
            )
            .met()
    }

    #[test]
    fn reply_grammar_word_missing_from_the_dictionary_fails_start_up_naming_it() {
        if !has_dictionary() {
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
    fn sphinx_as_calls_gives_the_reply_grammar_and_the_turns_rules() {
        if !has_dictionary() {
            return;
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (config, phrases) =
            sphinx_as_calls(&AgentPaths::under(root), Listen::Reminder).unwrap();
        assert!(config.replies.is_some(), "the call's reply grammar");
        assert!(
            phrases.contains(&"<already_paid>".to_string())
                && !phrases.contains(&"<identity_confirmed>".to_string()),
            "{phrases:?}"
        );
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
