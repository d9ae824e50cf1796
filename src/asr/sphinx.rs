//! PocketSphinx engine (English), a small FFI of our own over Debian's
//! libpocketsphinx 5prealpha.
//!
//! Owns: the decoder wrapper ([`SphinxRecognizer`], `Send`, one thread at a
//! time), the per-turn JSGF grammar built from the phrases with a garbage
//! alternative for rejection, the small dictionary (words added from
//! cmudict as grammars need them), the 8->16 kHz upsampling, and a pool of
//! decoders made at start-up ([`SphinxPool`]).
//! Must never share one decoder between threads at once, nor pass the same
//! argument twice to `cmd_ln_parse_r` (it fails).

use super::jsgf::{ReplyGrammar, Sampler};
use super::ngram::NgramModel;
use super::{AsrError, Partial, Recognizer, Transcript, Word};
use crate::media::resample::Upsampler2x;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_double, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

type Ptr = *mut c_void;

extern "C" {
    fn ps_args() -> *const c_void;
    fn cmd_ln_parse_r(
        inout: Ptr,
        defn: *const c_void,
        argc: i32,
        argv: *const *const c_char,
        strict: i32,
    ) -> Ptr;
    fn cmd_ln_free_r(cmdln: Ptr) -> c_int;
    fn ps_init(config: Ptr) -> Ptr;
    fn ps_free(ps: Ptr) -> c_int;
    fn ps_add_word(ps: Ptr, word: *const c_char, phones: *const c_char, update: c_int) -> c_int;
    fn ps_set_jsgf_string(ps: Ptr, name: *const c_char, jsgf: *const c_char) -> c_int;
    fn ps_set_search(ps: Ptr, name: *const c_char) -> c_int;
    fn ps_set_lm_file(ps: Ptr, name: *const c_char, path: *const c_char) -> c_int;
    fn ps_start_utt(ps: Ptr) -> c_int;
    fn ps_process_raw(
        ps: Ptr,
        data: *const i16,
        n: usize,
        no_search: c_int,
        full_utt: c_int,
    ) -> c_int;
    fn ps_end_utt(ps: Ptr) -> c_int;
    fn ps_get_hyp(ps: Ptr, score: *mut i32) -> *const c_char;
    fn ps_get_logmath(ps: Ptr) -> Ptr;
    fn ps_seg_iter(ps: Ptr) -> Ptr;
    fn ps_seg_next(seg: Ptr) -> Ptr;
    fn ps_seg_word(seg: Ptr) -> *const c_char;
    fn ps_seg_frames(seg: Ptr, sf: *mut c_int, ef: *mut c_int);
    fn ps_seg_prob(seg: Ptr, ascr: *mut i32, lscr: *mut i32, lback: *mut i32) -> i32;
    fn logmath_exp(lmath: Ptr, logb_p: c_int) -> c_double;
    fn err_set_logfp(stream: Ptr);
    fn err_set_logfile(path: *const c_char) -> c_int;
}

/// sphinxbase logs through one process-wide FILE*. Passing `-logfn` to every
/// `ps_init` makes each new decoder fclose that FILE* while decoders on other
/// threads may be writing to it: heap corruption under concurrency (seen as
/// `tcache_thread_shutdown(): unaligned tcache chunk` with 16 test threads).
/// So logging is set once per process, before the first decoder, and never
/// through `-logfn`.
fn init_logging_once() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| match std::env::var("DUECALL_SPHINX_LOG") {
        Ok(path) if !path.is_empty() => {
            let c = CString::new(path).unwrap_or_default();
            // SAFETY: c is a valid C string; sphinxbase copies what it needs.
            unsafe { err_set_logfile(c.as_ptr()) };
        }
        // SAFETY: NULL disables logging (sphinxbase err.h).
        _ => unsafe { err_set_logfp(std::ptr::null_mut()) },
    });
}

const ENGINE: &str = "sphinx";
/// Common English words looped as the garbage alternative: speech far from
/// every phrase is matched by these instead of being forced onto a phrase.
/// (A loop of single phones was tried first: it beat the phrases on every
/// clip, because phones fit any audio better than whole words.)
const GARBAGE_WORDS: &[&str] = &[
    "the", "a", "to", "of", "and", "it", "is", "what", "time", "how", "are", "you", "where",
    "when", "why", "who", "this", "that", "with", "for", "on", "in", "at", "be", "have", "do",
    "say", "get", "make", "go", "know", "think", "see", "come", "look", "find", "give", "tell",
    "day", "today", "weather", "good", "nice", "there", "here", "they", "we", "she", "he", "his",
    "her", "my", "your", "our", "an", "as", "but", "or", "so", "if", "not", "all", "about", "up",
    "out", "just", "like", "very", "well", "okay", "hello", "can", "would", "should", "could",
    "did", "was", "were", "been", "one", "two", "three", "new", "old", "big", "little", "home",
    "car", "dog", "food", "music", "movie", "game", "water", "city",
];
/// Name of the tiny start-up dictionary's only word (ps_init needs a -dict).
const SEED_WORD: &str = "duecall_seed";
/// Cepstral mean after several phone-line utterances (see [`SphinxConfig::cmninit`]).
const PHONE_CMNINIT: &str = "51.3,-6.4,0.5,22.5,-0.5,-11.5,-11.9,-0.9,-11.0,4.8,-7.5,1.3,-3.9";
/// Frames per second of the en-us model (10 ms frames).
const FRAME_RATE: f32 = 100.0;

/// Where the English model lives and how the grammar rejects.
#[derive(Debug, Clone)]
pub struct SphinxConfig {
    /// Acoustic model directory (16 kHz).
    pub hmm: PathBuf,
    /// Pronunciation dictionary the grammar words are looked up in.
    pub dict: PathBuf,
    /// JSGF weight of the garbage alternative relative to the phrases (1.0);
    /// 0 (the default) leaves it out. Measured here: with the common-word
    /// garbage loop at any weight from 0.05 down to 1e-7, 3 of 4 in-grammar
    /// espeak replies went to garbage (the weight barely moved the decision),
    /// so rejection is left to the dialogue (confidence, confirmation, DTMF).
    /// `DUECALL_SPHINX_GARBAGE_WEIGHT` sets it for experiments.
    pub garbage_weight: f32,
    /// Starting cepstral mean (`-cmninit`): measured on 8 kHz u-law speech
    /// upsampled to 16 kHz, so a fresh decoder's first utterance is not lost
    /// while the mean adapts from the model's wideband default.
    pub cmninit: String,
    /// Words allowed around and between the phrases (empty, the default:
    /// the utterance must be exactly one phrase). With glue the grammar is
    /// `<glue>* <phrase> (<phrase> | <glue>)*`, so "um I paid it yesterday"
    /// is not forced onto one whole phrase. Words missing from the
    /// dictionary are skipped. Measured in `asr::eval` (scripts/eval-speech).
    pub glue: Vec<String>,
    /// How a turn's phrases constrain the decoder (default
    /// [`SphinxSearch::Grammar`]; `DUECALL_SPHINX_SEARCH=ngram` for experiments).
    pub search: SphinxSearch,
    /// Further decoder flags (`["-beam", "1e-80"]`); never one of the flags
    /// set here (-hmm -dict -logfn -samprate -cmninit: a repeat fails).
    /// Default: `DUECALL_SPHINX_ARGS` split on whitespace, for experiments.
    pub extra_args: Vec<String>,
    /// The reply grammar (`prompts/en.replies.jsgf`): phrases of the form
    /// `<rule>` in [`Recognizer::set_phrases`] name its rules, and the turn's
    /// grammar becomes `[<lead>] (phrases | rules) [<tail>]`. None (the
    /// default): plain phrases only.
    pub replies: Option<Arc<ReplyGrammar>>,
    /// MLLR transform of the model's means for the phone line (`-mllr`),
    /// made by `scripts/adapt-speech`. Default: [`find_phone_mllr`]. On the
    /// spoken set it took intent accuracy from 71% to 87% (one rendering
    /// each, `scripts/eval-speech`), and human speech from 4 to 5 of 5.
    pub mllr: Option<PathBuf>,
}

/// Where the phone-line MLLR transform is: `DUECALL_SPHINX_MLLR` (a path, or
/// `none` for no transform), else `.local/models/en-us-phone.mllr` in the
/// working directory or the source tree this binary was built from (what
/// `scripts/adapt-speech` writes); None when there is none.
pub fn find_phone_mllr() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("DUECALL_SPHINX_MLLR") {
        return (!v.is_empty() && v != "none").then(|| PathBuf::from(v));
    }
    [
        PathBuf::from(".local/models/en-us-phone.mllr"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/models/en-us-phone.mllr"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// What the decoder searches with the phrases of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SphinxSearch {
    /// A JSGF grammar: the reply must be one whole phrase (or glue around them).
    Grammar,
    /// A trigram model trained on the phrases ([`crate::asr::ngram`]); a
    /// phrase given twice weighs twice. Replies may join pieces of phrases.
    Ngram,
}

impl SphinxConfig {
    /// The settings calls use: the defaults plus wide search beams, unless
    /// `DUECALL_SPHINX_ARGS` says otherwise. With the lexicon-sized grammars
    /// the agent sends, the default beams often let no hypothesis reach the
    /// end of the grammar; wide beams took intent accuracy from 46.7% to
    /// 58.1% on the spoken set (`scripts/eval-speech`) at ~8x the decoding
    /// cost (still ~7x faster than real time).
    pub fn for_calls() -> Self {
        let mut c = SphinxConfig::default();
        if std::env::var_os("DUECALL_SPHINX_ARGS").is_none() {
            c.extra_args
                .extend(crate::asr::eval::WIDE_BEAMS.iter().map(|s| s.to_string()));
        }
        c
    }
}

impl Default for SphinxConfig {
    fn default() -> Self {
        let base = std::env::var_os("DUECALL_SPHINX_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/pocketsphinx/model/en-us"));
        let garbage_weight = std::env::var("DUECALL_SPHINX_GARBAGE_WEIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let extra_args = std::env::var("DUECALL_SPHINX_ARGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let cmninit =
            std::env::var("DUECALL_SPHINX_CMNINIT").unwrap_or_else(|_| PHONE_CMNINIT.to_string());
        SphinxConfig {
            hmm: base.join("en-us"),
            dict: base.join("cmudict-en-us.dict"),
            garbage_weight,
            cmninit,
            glue: Vec::new(),
            search: match std::env::var("DUECALL_SPHINX_SEARCH").as_deref() {
                Ok("ngram") => SphinxSearch::Ngram,
                _ => SphinxSearch::Grammar,
            },
            extra_args,
            replies: None,
            mllr: find_phone_mllr(),
        }
    }
}

/// The pronunciation dictionary, read once per process and shared.
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

/// The reply-grammar rule a lead phrase may start with ("um", "well", "yes").
pub const LEAD_RULE: &str = "lead";
/// The reply-grammar rule a reply may end with ("please", "right now").
pub const TAIL_RULE: &str = "tail";
/// Sentences sampled from each reply-grammar rule to train a turn's n-gram model.
const NGRAM_SAMPLES_PER_RULE: usize = 400;

/// The rule name of a `<rule>` phrase.
pub fn rule_ref(phrase: &str) -> Option<&str> {
    phrase
        .trim()
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .filter(|r| !r.is_empty() && !r.contains(char::is_whitespace))
}

/// Seeded sample sentences of `rules`, a lead word before one in four and
/// a tail word after one in four, as n-gram training text.
fn sample_replies(g: &ReplyGrammar, rules: &[String], per_rule: usize) -> Vec<Vec<String>> {
    let mut rng = Sampler::new(0x5eed);
    let mut out = Vec::with_capacity(rules.len() * per_rule);
    for r in rules {
        for i in 0..per_rule {
            let mut s = if i % 4 == 1 {
                g.sample(LEAD_RULE, &mut rng)
            } else {
                Vec::new()
            };
            s.extend(g.sample(r, &mut rng));
            if i % 4 == 2 {
                s.extend(g.sample(TAIL_RULE, &mut rng));
            }
            if !s.is_empty() {
                out.push(s);
            }
        }
    }
    out
}

/// Words of a phrase as the grammar and dictionary see them.
fn tokens(phrase: &str) -> Vec<String> {
    phrase
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The garbage words usable with these phrases (none of the phrases' own words).
fn garbage_words(phrases: &[Vec<String>]) -> Vec<String> {
    let used: HashSet<&str> = phrases.iter().flatten().map(String::as_str).collect();
    GARBAGE_WORDS
        .iter()
        .filter(|w| !used.contains(**w))
        .map(|w| w.to_string())
        .collect()
}

/// Builds the JSGF text: the phrases as one rule, and a loop of common
/// words with a low weight, so speech far from every phrase goes to
/// garbage instead of being forced onto the nearest phrase.
pub fn build_jsgf(phrases: &[Vec<String>], garbage_weight: f32) -> String {
    let alts: Vec<String> = phrases.iter().map(|p| p.join(" ")).collect();
    let garbage = garbage_words(phrases);
    if garbage.is_empty() || garbage_weight <= 0.0 {
        return format!(
            "#JSGF V1.0;\ngrammar duecall;\npublic <utt> = {};\n",
            alts.join(" | ")
        );
    }
    format!(
        "#JSGF V1.0;\ngrammar duecall;\npublic <utt> = /1.0/ <phrase> | /{gw}/ <garbage>;\n<phrase> = {};\n<garbage> = ({})+;\n",
        alts.join(" | "),
        garbage.join(" | "),
        gw = garbage_weight.max(1e-4)
    )
}

/// Builds the JSGF text with glue words: any glue before the first phrase,
/// then phrases and glue in any order.
pub fn build_jsgf_glued(phrases: &[Vec<String>], glue: &[String]) -> String {
    let alts: Vec<String> = phrases.iter().map(|p| p.join(" ")).collect();
    format!(
        "#JSGF V1.0;\ngrammar duecall;\npublic <utt> = <glue>* <phrase> (<phrase> | <glue>)*;\n<phrase> = {};\n<glue> = {};\n",
        alts.join(" | "),
        glue.join(" | ")
    )
}

/// A PocketSphinx decoder for one call (one thread at a time).
pub struct SphinxRecognizer {
    ps: Ptr,
    config: Ptr,
    dict: Arc<HashMap<String, String>>,
    known: HashSet<String>,
    /// Grammar name per phrase set, so a turn's grammar is compiled once per decoder.
    searches: HashMap<String, String>,
    garbage_weight: f32,
    search: SphinxSearch,
    /// Glue words found in the dictionary (see [`SphinxConfig::glue`]).
    glue: Vec<String>,
    /// The reply grammar `<rule>` phrases refer to.
    replies: Option<Arc<ReplyGrammar>>,
    /// Words of the active grammar's phrases: anything else in a hypothesis is garbage.
    vocab: HashSet<String>,
    vocabs: HashMap<String, HashSet<String>>,
    up: Upsampler2x,
    buf16: Vec<i16>,
    in_utt: bool,
    has_search: bool,
    /// 10 ms frames fed before this utterance / in it: the FSG search numbers
    /// segment frames from the decoder's first utterance, not the current one.
    frames_before: u64,
    frames_in_utt: u64,
    last_partial: String,
}

// SAFETY: a decoder has no thread affinity; we own it and every use goes
// through &mut self, so it is used by one thread at a time.
unsafe impl Send for SphinxRecognizer {}

impl SphinxRecognizer {
    /// Creates a decoder on the 16 kHz English model with a tiny starting
    /// dictionary; grammar words are added from `config.dict` per turn.
    pub fn new(config: &SphinxConfig) -> Result<Self, AsrError> {
        if !config.hmm.join("mdef").is_file() {
            return Err(AsrError::BadModel {
                engine: ENGINE,
                path: config.hmm.clone(),
                reason:
                    "no acoustic model (mdef) there: install pocketsphinx-en-us (scripts/setup)"
                        .into(),
            });
        }
        if let Some(m) = config.mllr.as_ref().filter(|m| !m.is_file()) {
            return Err(AsrError::BadModel {
                engine: ENGINE,
                path: m.clone(),
                reason: "no MLLR transform there: run scripts/adapt-speech, or set DUECALL_SPHINX_MLLR=none".into(),
            });
        }
        let dict = dictionary(&config.dict)?;
        let mut glue: Vec<String> = Vec::new();
        for w in config.glue.iter().flat_map(|p| tokens(p)) {
            if dict.contains_key(&w) && !glue.contains(&w) {
                glue.push(w);
            }
        }
        // The decoder needs a -dict file at init: write the garbage words to a
        // small one (real words are added with ps_add_word, which is cheaper
        // than loading 134k entries into every decoder: 8 vs 30 MB).
        let dict_file = small_dict_file()?;
        init_logging_once();
        let args: Vec<CString> = [
            "-hmm",
            &config.hmm.to_string_lossy(),
            "-dict",
            &dict_file.to_string_lossy(),
            "-samprate",
            "16000",
            "-cmninit",
            &config.cmninit,
        ]
        .into_iter()
        .chain(config.extra_args.iter().map(String::as_str))
        .chain(
            config
                .mllr
                .iter()
                .flat_map(|m| ["-mllr".to_string(), m.to_string_lossy().into_owned()])
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )
        .map(|s| CString::new(s).unwrap_or_default())
        .collect();
        let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: argv points to live C strings for the duration of the call.
        let cfg = unsafe {
            cmd_ln_parse_r(
                std::ptr::null_mut(),
                ps_args(),
                argv.len() as i32,
                argv.as_ptr(),
                1,
            )
        };
        if cfg.is_null() {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "cmd_ln_parse_r rejected the arguments".into(),
            });
        }
        // SAFETY: cfg is a valid config; ps_init retains it.
        let ps = unsafe { ps_init(cfg) };
        if ps.is_null() {
            // SAFETY: cfg is ours to free.
            unsafe { cmd_ln_free_r(cfg) };
            return Err(AsrError::BadModel {
                engine: ENGINE,
                path: config.hmm.clone(),
                reason: "ps_init failed".into(),
            });
        }
        Ok(SphinxRecognizer {
            ps,
            config: cfg,
            dict,
            known: HashSet::new(),
            searches: HashMap::new(),
            garbage_weight: config.garbage_weight,
            search: config.search,
            glue,
            replies: config.replies.clone(),
            vocab: HashSet::new(),
            vocabs: HashMap::new(),
            up: Upsampler2x::new(),
            buf16: Vec::with_capacity(640),
            in_utt: false,
            has_search: false,
            frames_before: 0,
            frames_in_utt: 0,
            last_partial: String::new(),
        })
    }

    /// Words of `phrases` missing from the pronunciation dictionary.
    pub fn check_words(&self, phrases: &[String]) -> Vec<String> {
        let mut missing = Vec::new();
        for w in phrases.iter().flat_map(|p| tokens(p)) {
            if !self.dict.contains_key(&w) && !missing.contains(&w) {
                missing.push(w);
            }
        }
        missing
    }

    fn end_utt(&mut self) -> Result<(), AsrError> {
        if self.in_utt {
            // SAFETY: ps live, in an utterance.
            let r = unsafe { ps_end_utt(self.ps) };
            self.in_utt = false;
            self.frames_before += self.frames_in_utt;
            self.frames_in_utt = 0;
            if r < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    what: "ps_end_utt failed".into(),
                });
            }
        }
        Ok(())
    }

    /// Words of the last utterance; `base` is the frame count before it.
    fn hyp_words(&self, base: u64) -> Vec<Word> {
        let mut out = Vec::new();
        // SAFETY: ps live; we walk the iterator to its end, where ps_seg_next frees it.
        unsafe {
            let lmath = ps_get_logmath(self.ps);
            let mut seg = ps_seg_iter(self.ps);
            while !seg.is_null() {
                let w = CStr::from_ptr(ps_seg_word(seg))
                    .to_string_lossy()
                    .into_owned();
                let (mut sf, mut ef) = (0, 0);
                ps_seg_frames(seg, &mut sf, &mut ef);
                // Frame numbers count from the decoder's first utterance in
                // some searches: numbers past this utterance's length say so.
                let utt_len = self.frames_before.saturating_sub(base) as i64;
                let off = if ef as i64 > utt_len + 2 {
                    base as i64
                } else {
                    0
                };
                let (sf, ef) = ((sf as i64 - off).max(0), (ef as i64 - off).max(0));
                let (mut a, mut l, mut b) = (0, 0, 0);
                let prob = ps_seg_prob(seg, &mut a, &mut l, &mut b);
                let conf = if lmath.is_null() {
                    0.0
                } else {
                    logmath_exp(lmath, prob) as f32
                };
                let word = w.split('(').next().unwrap_or(&w).to_string();
                if self.vocab.contains(&word) {
                    out.push(Word {
                        word,
                        start: sf as f32 / FRAME_RATE,
                        end: (ef + 1) as f32 / FRAME_RATE,
                        conf: conf.clamp(0.0, 1.0),
                    });
                }
                seg = ps_seg_next(seg);
            }
        }
        out
    }

    /// Trains a trigram model on `toks` (one sentence each; repeats weigh
    /// more), loads it as search `name` and makes it the active search.
    fn set_ngram(&mut self, name: &str, toks: &[Vec<String>]) -> Result<(), AsrError> {
        let model = NgramModel::train(toks.iter().map(|t| (t.clone(), 1.0)), 3);
        let path = std::env::temp_dir().join(format!(
            "duecall-sphinx-{}-{:p}-{name}.arpa",
            std::process::id(),
            self.ps
        ));
        std::fs::write(&path, model.to_arpa()).map_err(|e| AsrError::Engine {
            engine: ENGINE,
            what: format!("cannot write the n-gram model {}: {e}", path.display()),
        })?;
        let (cn, cp) = (
            CString::new(name).unwrap_or_default(),
            CString::new(path.to_string_lossy().as_bytes()).unwrap_or_default(),
        );
        // SAFETY: ps live; strings NUL-terminated; the file is read in the call.
        let loaded = unsafe { ps_set_lm_file(self.ps, cn.as_ptr(), cp.as_ptr()) };
        let _ = std::fs::remove_file(&path);
        if loaded < 0 {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "the n-gram model was rejected".into(),
            });
        }
        // SAFETY: ps live; the named search was just added.
        if unsafe { ps_set_search(self.ps, cn.as_ptr()) } < 0 {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "ps_set_search failed".into(),
            });
        }
        Ok(())
    }

    /// Compiles the JSGF grammar of `toks` as search `name` and makes it
    /// the active search.
    fn set_jsgf(&mut self, name: &str, toks: &[Vec<String>]) -> Result<(), AsrError> {
        let jsgf = if self.glue.is_empty() {
            build_jsgf(toks, self.garbage_weight)
        } else {
            build_jsgf_glued(toks, &self.glue)
        };
        self.load_jsgf(name, jsgf)
    }

    /// Compiles JSGF text as search `name` and makes it the active search.
    fn load_jsgf(&mut self, name: &str, jsgf: String) -> Result<(), AsrError> {
        let (cn, cj) = (
            CString::new(name).unwrap_or_default(),
            CString::new(jsgf).unwrap_or_default(),
        );
        // SAFETY: ps live; strings NUL-terminated.
        unsafe {
            if ps_set_jsgf_string(self.ps, cn.as_ptr(), cj.as_ptr()) < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    what: "the JSGF grammar was rejected".into(),
                });
            }
            if ps_set_search(self.ps, cn.as_ptr()) < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    what: "ps_set_search failed".into(),
                });
            }
        }
        Ok(())
    }

    fn hyp_text(&self) -> String {
        let mut score = 0i32;
        // SAFETY: ps live; the string is owned by the decoder.
        let p = unsafe { ps_get_hyp(self.ps, &mut score) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-null NUL-terminated string.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy();
        s.split_whitespace()
            .filter(|w| self.vocab.contains(*w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn small_dict_file() -> Result<PathBuf, AsrError> {
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

impl Recognizer for SphinxRecognizer {
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
        if !self.has_search {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "no grammar: PocketSphinx needs set_phrases before audio".into(),
            });
        }
        if !self.in_utt {
            // SAFETY: ps live, search set.
            if unsafe { ps_start_utt(self.ps) } < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    what: "ps_start_utt failed".into(),
                });
            }
            self.in_utt = true;
        }
        self.buf16.clear();
        self.up.process(pcm, &mut self.buf16);
        // SAFETY: buf16 holds buf16.len() samples.
        let r = unsafe { ps_process_raw(self.ps, self.buf16.as_ptr(), self.buf16.len(), 0, 0) };
        self.frames_in_utt += self.buf16.len() as u64 / 160;
        if r < 0 {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "ps_process_raw failed".into(),
            });
        }
        let text = self.hyp_text();
        if text != self.last_partial {
            self.last_partial = text.clone();
            if !text.is_empty() {
                return Ok(Some(Partial { text }));
            }
        }
        Ok(None)
    }

    fn set_phrases(&mut self, phrases: &[String]) -> Result<(), AsrError> {
        self.end_utt()?;
        let mut toks: Vec<Vec<String>> = Vec::new();
        let mut rules: Vec<String> = Vec::new();
        for p in phrases {
            if let Some(name) = rule_ref(p) {
                match &self.replies {
                    Some(g) if g.has_rule(name) => rules.push(name.to_string()),
                    _ => {
                        return Err(AsrError::BadPhrase {
                            phrase: p.clone(),
                            reason: format!("no reply grammar defines <{name}>"),
                        })
                    }
                }
            } else {
                let t = tokens(p);
                if !t.is_empty() {
                    toks.push(t);
                }
            }
        }
        if toks.is_empty() && rules.is_empty() {
            return Err(AsrError::BadPhrase {
                phrase: String::new(),
                reason: "PocketSphinx runs on a grammar here: free recognition needs a Vosk English model".into(),
            });
        }
        let key = toks
            .iter()
            .map(|t| t.join(" "))
            .chain(rules.iter().map(|r| format!("<{r}>")))
            .collect::<Vec<_>>()
            .join("|");
        if let Some(name) = self.searches.get(&key) {
            self.vocab = self.vocabs.get(&key).cloned().unwrap_or_default();
            let c = CString::new(name.as_str()).unwrap_or_default();
            // SAFETY: ps live; the named search exists.
            unsafe { ps_set_search(self.ps, c.as_ptr()) };
            self.has_search = true;
            self.up = Upsampler2x::new();
            self.last_partial.clear();
            return Ok(());
        }
        let rule_words: Vec<String> = match (&self.replies, rules.is_empty()) {
            (Some(g), false) => {
                let mut roots: Vec<&str> = rules.iter().map(String::as_str).collect();
                roots.extend([LEAD_RULE, TAIL_RULE]);
                g.words_of(&roots).into_iter().collect()
            }
            _ => Vec::new(),
        };
        let garbage = garbage_words(&toks);
        for w in toks
            .iter()
            .flatten()
            .chain(rule_words.iter())
            .chain(garbage.iter())
            .chain(self.glue.iter())
        {
            if self.known.contains(w) {
                continue;
            }
            let Some(ph) = self.dict.get(w) else {
                if garbage.contains(w) {
                    continue;
                }
                let phrase = phrases
                    .iter()
                    .find(|p| tokens(p).contains(w))
                    .cloned()
                    .unwrap_or_else(|| "the reply grammar".to_string());
                return Err(AsrError::BadPhrase {
                    phrase,
                    reason: format!("'{w}' is not in the PocketSphinx dictionary"),
                });
            };
            let (cw, cp) = (
                CString::new(w.as_str()).unwrap_or_default(),
                CString::new(ph.as_str()).unwrap_or_default(),
            );
            // SAFETY: ps live; strings NUL-terminated.
            if unsafe { ps_add_word(self.ps, cw.as_ptr(), cp.as_ptr(), 0) } < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    what: format!("ps_add_word({w}) failed"),
                });
            }
            self.known.insert(w.clone());
        }
        let name = format!("g{}", self.searches.len());
        let mut vocab: HashSet<String> = toks.iter().flatten().cloned().collect();
        vocab.extend(rule_words.iter().cloned());
        if self.search == SphinxSearch::Ngram {
            let mut corpus = toks.clone();
            if let Some(g) = self.replies.clone() {
                corpus.extend(sample_replies(&g, &rules, NGRAM_SAMPLES_PER_RULE));
            }
            self.set_ngram(&name, &corpus)?;
        } else {
            match (&self.replies, rules.is_empty()) {
                (Some(g), false) => {
                    let alts: Vec<String> = toks
                        .iter()
                        .map(|t| t.join(" "))
                        .chain(rules.iter().map(|r| format!("<{r}>")))
                        .collect();
                    let jsgf = g.turn_jsgf(&alts, LEAD_RULE, TAIL_RULE);
                    self.load_jsgf(&name, jsgf)?;
                }
                _ => self.set_jsgf(&name, &toks)?,
            }
            vocab.extend(self.glue.iter().cloned());
        }
        self.vocabs.insert(key.clone(), vocab.clone());
        self.vocab = vocab;
        self.searches.insert(key, name);
        self.has_search = true;
        self.up = Upsampler2x::new();
        self.last_partial.clear();
        Ok(())
    }

    fn finish(&mut self) -> Result<Transcript, AsrError> {
        if !self.in_utt {
            return Ok(Transcript::default());
        }
        let base = self.frames_before;
        self.end_utt()?;
        let words = self.hyp_words(base);
        self.up = Upsampler2x::new();
        self.last_partial.clear();
        Ok(Transcript::from_words(words))
    }

    fn reset(&mut self) {
        let _ = self.end_utt();
        self.up = Upsampler2x::new();
        self.last_partial.clear();
    }

    fn engine(&self) -> &'static str {
        ENGINE
    }
}

impl Drop for SphinxRecognizer {
    fn drop(&mut self) {
        let _ = self.end_utt();
        // SAFETY: ps and config were created in new() and are freed once.
        unsafe {
            ps_free(self.ps);
            cmd_ln_free_r(self.config);
        }
    }
}

/// Decoders made at start-up and lent to calls: every `ps_init` loads its own
/// acoustic model (no API shares it), and a fresh decoder's first utterance
/// is weaker while cepstral normalisation adapts.
pub struct SphinxPool {
    free: Mutex<Vec<SphinxRecognizer>>,
    config: SphinxConfig,
}

impl SphinxPool {
    /// Makes `n` decoders now.
    pub fn new(config: SphinxConfig, n: usize) -> Result<Self, AsrError> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(SphinxRecognizer::new(&config)?);
        }
        Ok(SphinxPool {
            free: Mutex::new(v),
            config,
        })
    }

    /// A decoder from the pool, or a new one when all are lent.
    pub fn take(&self) -> Result<SphinxRecognizer, AsrError> {
        let got = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match got {
            Some(r) => Ok(r),
            None => SphinxRecognizer::new(&self.config),
        }
    }

    /// Returns a decoder after its call.
    pub fn give_back(&self, mut r: SphinxRecognizer) {
        r.reset();
        self.free.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }

    /// Decoders waiting in the pool.
    pub fn idle(&self) -> usize {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::testutil::{have, speak_8k, TempDir};

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
        let c = SphinxConfig::default();
        if !c.hmm.join("mdef").is_file() || !have("espeak-ng") || !have("sox") {
            eprintln!(
                "SKIP: pocketsphinx-en-us / espeak-ng / sox missing (run scripts/setup-speech)"
            );
            return false;
        }
        true
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
    fn jsgf_has_phrases_and_weighted_garbage_loop() {
        let g = build_jsgf(&[vec!["wrong".into(), "number".into()]], 0.05);
        assert!(g.contains("<phrase> = wrong number;"), "{g}");
        assert!(
            g.contains("/0.05/ <garbage>") && g.contains("the | a | to"),
            "{g}"
        );
        assert!(!build_jsgf(&[vec!["the".into(), "end".into()]], 0.05).contains("| the |"));
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
        if !ready() || !data.join("cards/001.wav").is_file() {
            eprintln!("SKIP: pocketsphinx-testdata missing (scripts/setup)");
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
    fn grammar_changes_between_turns_and_pool_lends_decoders() {
        if !ready() {
            return;
        }
        let d = TempDir::new("sphinx2");
        let pool = SphinxPool::new(SphinxConfig::default(), 1).unwrap();
        let mut rec = pool.take().unwrap();
        assert_eq!(pool.idle(), 0);
        let pcm = speak_8k(&d.0, "wn", "en-us", 160, "wrong number", true);
        rec.set_phrases(&["wrong number".into(), "yes".into()])
            .unwrap();
        feed(&mut rec, &pcm);
        assert_eq!(rec.finish().unwrap().text, "wrong number");
        rec.set_phrases(&["yes".into(), "no".into()]).unwrap();
        feed(&mut rec, &pcm);
        assert_ne!(rec.finish().unwrap().text, "wrong number");
        pool.give_back(rec);
        assert_eq!(pool.idle(), 1);
    }
}
