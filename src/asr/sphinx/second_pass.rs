//! The grammar engine's second pass's language model: the general English
//! n-gram, interpolated with a domain trigram trained on the reply grammar,
//! read once per copy and shared by the process's decoders ([`SharedLm`],
//! [`shared_lm`]), and the settings its search is made with. Owns reading
//! the model and its vocabulary; never decodes (the recognizer does) and
//! never frees a shared copy (it lives as long as the process).

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::Arc;

use super::ffi::*;
use super::grammar::{sample_replies, NGRAM_SAMPLES_PER_RULE};
use super::scratch::write_arpa;
use super::ENGINE;
use crate::asr::jsgf::ReplyGrammar;
use crate::asr::ngram::NgramModel;
use crate::asr::AsrError;

/// Settings of the second pass's n-gram search, put in the decoder's
/// config only while the search is made (it reads them then): narrower
/// beams than the turn grammars' wide ones, and the forward tree pass only
/// (no flat-lexicon pass, no lattice best path), for speed. Floats first,
/// then integer / boolean (0, 1) settings; `DUECALL_SPHINX_SECOND_PASS_ARGS`
/// ("-beam 1e-48 -fwdflat yes") overrides them for experiments.
const LM_FLOATS: &[(&str, f64)] = &[
    ("-beam", 1e-40),
    ("-pbeam", 1e-40),
    ("-wbeam", 1e-30),
    ("-lpbeam", 1e-30),
    ("-lponlybeam", 1e-25),
];
const LM_INTS: &[(&str, i64)] = &[("-fwdflat", 0), ("-bestpath", 0), ("-maxhmmpf", 3000)];

/// A search setting's name and value.
type Setting<T> = (String, T);

/// The second pass's search settings: [`LM_FLOATS`] and [`LM_INTS`] with
/// `DUECALL_SPHINX_SECOND_PASS_ARGS`'s pairs over them (unknown keys and
/// unparsable values are ignored).
pub(super) fn second_pass_settings() -> (Vec<Setting<f64>>, Vec<Setting<i64>>) {
    let mut floats: Vec<(String, f64)> =
        LM_FLOATS.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut ints: Vec<(String, i64)> = LM_INTS.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let env = std::env::var("DUECALL_SPHINX_SECOND_PASS_ARGS").unwrap_or_default();
    let toks: Vec<&str> = env.split_whitespace().collect();
    for pair in toks.chunks(2) {
        let [k, v] = pair else { continue };
        if let Some(f) = floats.iter_mut().find(|(n, _)| n == k) {
            if let Ok(x) = v.parse() {
                f.1 = x;
            }
        } else if let Some(i) = ints.iter_mut().find(|(n, _)| n == k) {
            i.1 = match *v {
                "yes" | "true" => 1,
                "no" | "false" => 0,
                n => n.parse().unwrap_or(i.1),
            };
        }
    }
    (floats, ints)
}

/// The second pass's search name.
pub(super) const SECOND_PASS: &str = "general_lm";
/// The longest utterance decoded again by the second pass (30 s at
/// 16 kHz); longer ones keep their first 30 s.
pub(super) const SECOND_PASS_MAX_SAMPLES: usize = 30 * 16_000;
/// sphinxbase's `NGRAM_AUTO` file type.
const NGRAM_AUTO: i32 = 0;

/// What makes two second-pass models the same: the model file, the
/// vocabulary size, the domain weight and the domain text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct LmKey {
    pub(super) path: std::path::PathBuf,
    pub(super) vocab: usize,
    pub(super) domain: u32,
    pub(super) corpus: u64,
}

/// A second pass's language model read once and shared by decoders: each
/// decoder's n-gram search holds a reference to it. Its reference count
/// and scoring caches are not thread-safe, so every use (making a search,
/// decoding with it, freeing a decoder that holds it) holds `lock`. Never
/// freed: it lives as long as the process.
pub(super) struct SharedLm {
    pub(super) lm: Ptr,
    pub(super) words: Vec<String>,
    lock: std::sync::Mutex<()>,
}

// SAFETY: the model is only touched with `lock` held.
unsafe impl Send for SharedLm {}
// SAFETY: as above.
unsafe impl Sync for SharedLm {}

impl SharedLm {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The copies of each second-pass model read in this process.
pub(super) type LmCopies = HashMap<LmKey, Vec<Arc<SharedLm>>>;

/// The least used copy of the model `key` (decoders holding it), reading a
/// new one with `load` while there are fewer than `copies`: decoders on
/// different copies run their second passes in parallel.
pub(super) fn shared_lm(
    key: LmKey,
    copies: usize,
    load: impl FnOnce() -> Result<(Ptr, Vec<String>), AsrError>,
) -> Result<Arc<SharedLm>, AsrError> {
    static SHARED: std::sync::OnceLock<std::sync::Mutex<LmCopies>> = std::sync::OnceLock::new();
    let mut all = SHARED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let list = all.entry(key).or_default();
    if list.len() < copies.max(1) {
        let (lm, words) = load()?;
        list.push(Arc::new(SharedLm {
            lm,
            words,
            lock: std::sync::Mutex::new(()),
        }));
    }
    list.iter()
        .min_by_key(|c| Arc::strong_count(c))
        .cloned()
        .ok_or_else(|| AsrError::Engine {
            engine: ENGINE,
            what: "no second-pass model".into(),
        })
}

/// What reading a second-pass model needs from the decoder that reads it.
pub(super) struct LmSource<'a> {
    /// The decoder's config (the model reader takes its settings).
    pub config: Ptr,
    /// The decoder's log tables, which the model's scores are in.
    pub logmath: Ptr,
    /// The decoder itself, naming the scratch files.
    pub owner: Ptr,
    /// The pronunciation dictionary: model words it lacks are never heard.
    pub dict: &'a HashMap<String, String>,
    /// How many of the general model's words to keep.
    pub vocab: usize,
    /// The domain model's weight (0: the general model alone).
    pub domain: f32,
    /// The reply grammar the domain model is trained on.
    pub replies: Option<&'a ReplyGrammar>,
}

/// Sample sentences of the reply grammar's intent rules (their example
/// replies among them): the domain model's training text.
pub(super) fn domain_corpus(replies: Option<&ReplyGrammar>) -> Vec<Vec<String>> {
    let Some(g) = replies else {
        return Vec::new();
    };
    let rules: Vec<String> = g
        .rule_names()
        .filter(|r| {
            crate::intent::IntentKind::parse(r)
                .is_some_and(|k| k != crate::intent::IntentKind::Unknown)
        })
        .map(str::to_string)
        .collect();
    sample_replies(g, &rules, NGRAM_SAMPLES_PER_RULE)
}

/// Reads the domain model trained on [`domain_corpus`] (None when
/// there is no reply grammar) with the decoder's log base.
fn read_domain_model(src: &LmSource) -> Result<Option<(Ptr, Vec<String>)>, AsrError> {
    let corpus = domain_corpus(src.replies);
    if corpus.is_empty() {
        return Ok(None);
    }
    let model = NgramModel::train(corpus.into_iter().map(|t| (t, 1.0)), 3);
    let path = write_arpa(src.owner, "domain", &model)?;
    let cp = CString::new(path.to_string_lossy().as_bytes()).unwrap_or_default();
    // SAFETY: the decoder's config and log tables live; cp NUL-terminated; the file is read in the call.
    let lm = unsafe { ngram_model_read(src.config, cp.as_ptr(), NGRAM_AUTO, src.logmath) };
    let _ = std::fs::remove_file(&path);
    if lm.is_null() {
        return Err(AsrError::Engine {
            engine: ENGINE,
            what: "the second pass's domain model could not be read".into(),
        });
    }
    Ok(Some((lm, model.words())))
}

/// Reads the second pass's language model: the general model, and,
/// with a domain weight and a reply grammar, its interpolation with the
/// domain model. Returns the model (one reference, the caller's) and
/// its vocabulary: the general model's most probable words found in
/// the dictionary (a language-model word the decoder's dictionary lacks
/// is never heard, so this bounds the vocabulary) and the domain's.
pub(super) fn load_second_pass(
    src: &LmSource,
    path: &std::path::Path,
) -> Result<(Ptr, Vec<String>), AsrError> {
    let cp = CString::new(path.to_string_lossy().as_bytes()).unwrap_or_default();
    // SAFETY: the decoder's config and log tables live; cp NUL-terminated; every model read
    // here is freed on the error paths, and returned once otherwise.
    unsafe {
        let lm = ngram_model_read(src.config, cp.as_ptr(), NGRAM_AUTO, src.logmath);
        if lm.is_null() {
            return Err(AsrError::BadModel {
                engine: ENGINE,
                path: path.to_path_buf(),
                reason: "the second pass's language model could not be read".into(),
            });
        }
        let counts = ngram_model_get_counts(lm);
        let n1 = if counts.is_null() { 0 } else { *counts };
        let mut words: Vec<(i32, String)> = Vec::with_capacity(n1 as usize);
        for wid in 0..n1 as i32 {
            let p = ngram_word(lm, wid);
            if p.is_null() {
                continue;
            }
            let w = CStr::from_ptr(p).to_string_lossy().into_owned();
            if w.starts_with('<') || !src.dict.contains_key(&w) {
                continue;
            }
            let score = ngram_score(lm, p, std::ptr::null::<c_char>());
            words.push((score, w));
        }
        words.sort_unstable_by_key(|w| std::cmp::Reverse(w.0));
        let mut words: Vec<String> = words.into_iter().take(src.vocab).map(|(_, w)| w).collect();
        if src.domain <= 0.0 {
            return Ok((lm, words));
        }
        let (domain, dwords) = match read_domain_model(src) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok((lm, words)),
            Err(e) => {
                ngram_model_free(lm);
                return Err(e);
            }
        };
        let mut models = [lm, domain];
        let (n0, n1) = (
            CString::new("general").unwrap_or_default(),
            CString::new("domain").unwrap_or_default(),
        );
        let mut names = [n0.as_ptr() as *mut c_char, n1.as_ptr() as *mut c_char];
        let weights = [1.0 - src.domain, src.domain];
        // The set retains both models; our references go.
        let set = ngram_model_set_init(
            src.config,
            models.as_mut_ptr(),
            names.as_mut_ptr(),
            weights.as_ptr(),
            2,
        );
        ngram_model_free(domain);
        ngram_model_free(lm);
        if set.is_null() {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "the second pass's models could not be interpolated".into(),
            });
        }
        words.extend(dwords);
        Ok((set, words))
    }
}
