//! Choosing and opening a call's recognizer: Vosk when a model for the
//! language is installed (or asked for), else PocketSphinx for English with
//! the reply grammar and its second pass; the phrase-list files. Owns the
//! engine choice only; never feeds audio.

use std::path::Path;

use super::error::AsrError;
use super::recognizer::Recognizer;
use super::vosk::{self, find_vosk_model, model_env_var};
use super::{jsgf, sphinx};

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
    open_with(engine, lang, model_dir, None, None, None)
}

/// [`open`], giving a PocketSphinx decoder the language's reply grammar
/// (`<rule>` phrases; see [`sphinx::SphinxConfig::replies`]) and its
/// second pass (`[asr] second_pass`: `lm`, `none` or a language model's
/// path; None: [`sphinx::SphinxConfig::for_calls`]'s). PocketSphinx
/// recognizers share the process's decoder pool for that configuration, at
/// most `decoders` decoders (`[asr] decoders`; None:
/// [`sphinx::default_decoders`]), one per utterance in progress.
pub fn open_with(
    engine: Option<&str>,
    lang: &str,
    model_dir: Option<&Path>,
    replies: Option<std::sync::Arc<jsgf::ReplyGrammar>>,
    second_pass: Option<&str>,
    decoders: Option<usize>,
) -> Result<Box<dyn Recognizer>, AsrError> {
    let sphinx_config = || {
        let mut c = sphinx::SphinxConfig::for_calls();
        c.replies = replies.clone();
        if let Some(v) = second_pass {
            c.second_pass = c.second_pass_model(v);
        }
        c
    };
    let pooled = || -> Result<Box<dyn Recognizer>, AsrError> {
        let config = sphinx_config();
        let pool =
            sphinx::DecoderPool::shared(&config, decoders.unwrap_or_else(sphinx::default_decoders));
        pool.ensure_one()?;
        Ok(Box::new(sphinx::PooledSphinx::new(pool)))
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
            pooled()
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
                None if is_english(lang) => pooled(),
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
mod tests {
    use super::*;
    use crate::asr::testutil;
    use crate::asr::vosk::find_vosk_model_with;
    use std::path::PathBuf;

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
