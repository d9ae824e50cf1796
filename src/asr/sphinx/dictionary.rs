//! The pronunciation dictionary: cmudict read once per process and shared
//! by every decoder, which adds only the words its grammars use; and the
//! one-word seed dictionary a decoder starts from.
//!
//! Owns: reading and caching the dictionary, how a phrase splits into
//! dictionary words ([`tokens`]). Never touches a decoder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::ENGINE;
use crate::asr::AsrError;

/// Name of the tiny start-up dictionary's only word (ps_init needs a -dict).
const SEED_WORD: &str = "duecall_seed";

/// The pronunciation dictionary at `path` (word -> phones), read once per
/// process and shared.
pub fn dictionary(path: &Path) -> Result<Arc<HashMap<String, String>>, AsrError> {
    type Dict = Arc<HashMap<String, String>>;
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Dict>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = map.get(path) {
        return Ok(d.clone());
    }
    let text = std::fs::read_to_string(path).map_err(|e| AsrError::BadModel {
        engine: ENGINE,
        path: path.to_path_buf(),
        reason: format!("cannot read dictionary: {e} (install pocketsphinx-en-us: scripts/setup)"),
    })?;
    let mut dict = HashMap::new();
    for line in text.lines() {
        let mut it = line.splitn(2, char::is_whitespace);
        let (Some(w), Some(ph)) = (it.next(), it.next()) else {
            continue;
        };
        // Only the first pronunciation: alternates "(2)" would need their own entries.
        if w.ends_with(')') {
            continue;
        }
        dict.entry(w.to_string())
            .or_insert_with(|| ph.trim().to_string());
    }
    let d = Arc::new(dict);
    map.insert(path.to_path_buf(), d.clone());
    Ok(d)
}

/// Words of a phrase as the grammar and dictionary see them.
pub fn tokens(phrase: &str) -> Vec<String> {
    phrase
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The seed dictionary file a decoder is created with (written once per process).
pub(super) fn small_dict_file() -> Result<PathBuf, AsrError> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| {
        let p = std::env::temp_dir().join(format!(
            "duecall-sphinx-garbage-{}.dict",
            std::process::id()
        ));
        std::fs::write(&p, format!("{SEED_WORD} SIL\n"))
            .map(|_| p)
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|e| AsrError::Engine {
        engine: ENGINE,
        what: format!("cannot write the garbage dictionary: {e}"),
    })
}

#[cfg(test)]
mod shipped {
    use crate::asr::jsgf::{ReplyGrammar, EN_EXAMPLES, EN_REPLIES};

    #[test]
    fn shipped_english_reply_grammar_parses_and_every_word_is_in_the_dictionary() {
        let g = ReplyGrammar::parse(EN_REPLIES, "en.replies.jsgf").unwrap();
        crate::intent::eval::parse_tsv(EN_EXAMPLES, "en.replies.tsv").unwrap();
        let cfg = crate::asr::sphinx::SphinxConfig::default();
        if !crate::testkit::needs()
            .file(
                &cfg.dict,
                "the PocketSphinx dictionary (pocketsphinx-en-us)",
            )
            .met()
        {
            return;
        }
        let dict = super::dictionary(&cfg.dict).unwrap();
        let missing: Vec<String> = g
            .words()
            .into_iter()
            .filter(|w| !dict.contains_key(w))
            .collect();
        assert!(missing.is_empty(), "not in the dictionary: {missing:?}");
    }
}
