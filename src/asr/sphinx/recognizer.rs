//! The decoder: [`SphinxRecognizer`], one PocketSphinx decoder for one call
//! at a time, fed 8 kHz audio upsampled to the model's 16 kHz, with one
//! compiled search per distinct phrase set.
//!
//! Owns: the decoder's life (init, searches, utterances, free), adding the
//! grammar's words from the dictionary, and turning segments into timed
//! words. The second pass's shared model is [`super::second_pass`]'s.
//! Must never be used by two threads at once.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_long};
use std::sync::Arc;

use super::config::{SphinxConfig, SphinxSearch};
use super::dictionary::{dictionary, small_dict_file, tokens};
use super::ffi::*;
use super::grammar::{
    build_jsgf, build_jsgf_glued, garbage_words, rule_ref, sample_replies, LEAD_RULE,
    NGRAM_SAMPLES_PER_RULE, TAIL_RULE,
};
use super::scratch::write_arpa;
use super::second_pass::{
    domain_corpus, load_second_pass, second_pass_settings, shared_lm, LmKey, LmSource, SharedLm,
    SECOND_PASS, SECOND_PASS_MAX_SAMPLES,
};
use super::ENGINE;
use crate::asr::confidence::phone_similarity;
use crate::asr::jsgf::ReplyGrammar;
use crate::asr::ngram::NgramModel;
use crate::asr::{AsrError, Partial, Recognizer, SecondPass, Transcript, Word};
use crate::media::resample::Upsampler2x;

/// Frames per second of the en-us model (10 ms frames).
const FRAME_RATE: f32 = 100.0;

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
    /// The active grammar search's name.
    active: String,
    /// The second pass's language model and whether its search is loaded.
    second_pass: Option<std::path::PathBuf>,
    second_pass_vocab: usize,
    second_pass_domain: f32,
    second_pass_copies: usize,
    /// The second pass's language model, shared with other decoders.
    lm: Option<Arc<SharedLm>>,
    /// Words were added to the dictionary since the second pass's search
    /// was made: an n-gram search sizes its word tables when it is made,
    /// so it is made again before its next use.
    lm_stale: bool,
    /// This utterance's 16 kHz audio, for the second pass (at most
    /// [`SECOND_PASS_MAX_SAMPLES`]).
    utt16: Vec<i16>,
    /// The second pass's result for the last finished utterance.
    last_lm: Option<SecondPass>,
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
        // Checked here, when a call's recogniser first opens (start-up's
        // `check_asr`), not at the first utterance, where it is read.
        if let Some(m) = config.second_pass.as_ref().filter(|m| !m.is_file()) {
            return Err(AsrError::BadModel {
                engine: ENGINE,
                path: m.clone(),
                reason: "no language model there for the second pass: set [asr] second_pass \
                         (or DUECALL_SPHINX_SECOND_PASS) to \"lm\", \"none\" or a language model's path"
                    .into(),
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
        let mut rec = SphinxRecognizer {
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
            active: String::new(),
            second_pass: config.second_pass.clone(),
            second_pass_vocab: config.second_pass_vocab,
            second_pass_domain: config.second_pass_domain,
            second_pass_copies: config.second_pass_copies,
            lm: None,
            lm_stale: true,
            utt16: Vec::new(),
            last_lm: None,
        };
        // The second pass's model is read and its search made now, when
        // the recogniser opens, not at a call's first utterance.
        if let Some(path) = rec.second_pass.clone() {
            rec.read_second_pass(&path)?;
            rec.build_second_pass()?;
        }
        Ok(rec)
    }

    /// Takes the second pass's model from the process's shared copies
    /// (reading one when there are fewer than [`SphinxConfig::second_pass_copies`])
    /// and adds its vocabulary to the decoder.
    fn read_second_pass(&mut self, path: &std::path::Path) -> Result<(), AsrError> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        if self.second_pass_domain > 0.0 {
            domain_corpus(self.replies.as_deref()).hash(&mut h);
        }
        let key = LmKey {
            path: path.to_path_buf(),
            vocab: self.second_pass_vocab,
            domain: self.second_pass_domain.to_bits(),
            corpus: h.finish(),
        };
        let shared = shared_lm(key, self.second_pass_copies, || {
            let source = LmSource {
                config: self.config,
                // SAFETY: ps live.
                logmath: unsafe { ps_get_logmath(self.ps) },
                owner: self.ps,
                dict: &self.dict,
                vocab: self.second_pass_vocab,
                domain: self.second_pass_domain,
                replies: self.replies.as_deref(),
            };
            let loaded = load_second_pass(&source, path)?;
            // The models keep a bare pointer to the log tables of the decoder
            // that read them (sphinxbase does not retain it), and this decoder
            // goes away with its call while the copy serves others: one more
            // reference keeps the tables alive as long as the copy (the
            // process). Without it, second passes after the first call
            // interpolated with freed memory (the e2e calls crashed, SIGSEGV).
            // SAFETY: ps live; the log tables are reference counted.
            unsafe { logmath_retain(ps_get_logmath(self.ps)) };
            Ok(loaded)
        })?;
        for w in &shared.words {
            if self.known.contains(w) {
                continue;
            }
            let Some(ph) = self.dict.get(w) else {
                continue;
            };
            let (cw, cph) = (
                CString::new(w.as_str()).unwrap_or_default(),
                CString::new(ph.as_str()).unwrap_or_default(),
            );
            // SAFETY: ps live; strings NUL-terminated.
            if unsafe { ps_add_word(self.ps, cw.as_ptr(), cph.as_ptr(), 0) } >= 0 {
                self.known.insert(w.clone());
            }
        }
        self.lm = Some(shared);
        self.lm_stale = true;
        Ok(())
    }

    /// Makes the second pass's search from the language model read, with
    /// the settings of `second_pass_settings` in the decoder's config meanwhile.
    fn build_second_pass(&mut self) -> Result<(), AsrError> {
        let (floats, ints) = second_pass_settings();
        let fkeys: Vec<CString> = floats
            .iter()
            .map(|(k, _)| CString::new(k.as_str()).unwrap_or_default())
            .collect();
        let ikeys: Vec<CString> = ints
            .iter()
            .map(|(k, _)| CString::new(k.as_str()).unwrap_or_default())
            .collect();
        let name = CString::new(SECOND_PASS).unwrap_or_default();
        let Some(shared) = self.lm.clone() else {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "the second pass's language model was not read".into(),
            });
        };
        // The model's reference count and caches are not thread-safe: every
        // use of it, here and by the other decoders sharing it, holds its lock.
        let _guard = shared.lock();
        // SAFETY: ps, config and the model live; keys name float / int
        // options; ps_set_lm takes its own reference to the model.
        let loaded = unsafe {
            let fsaved: Vec<f64> = fkeys
                .iter()
                .map(|k| cmd_ln_float_r(self.config, k.as_ptr()))
                .collect();
            let isaved: Vec<c_long> = ikeys
                .iter()
                .map(|k| cmd_ln_int_r(self.config, k.as_ptr()))
                .collect();
            for (k, (_, v)) in fkeys.iter().zip(&floats) {
                cmd_ln_set_float_r(self.config, k.as_ptr(), *v);
            }
            for (k, (_, v)) in ikeys.iter().zip(&ints) {
                cmd_ln_set_int_r(self.config, k.as_ptr(), *v as c_long);
            }
            let loaded = ps_set_lm(self.ps, name.as_ptr(), shared.lm);
            for (k, v) in fkeys.iter().zip(fsaved) {
                cmd_ln_set_float_r(self.config, k.as_ptr(), v);
            }
            for (k, v) in ikeys.iter().zip(isaved) {
                cmd_ln_set_int_r(self.config, k.as_ptr(), v);
            }
            loaded
        };
        // ps_set_lm: 0 made, 1 the search could not be made, <0 an error.
        if loaded != 0 {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "the second pass's language model was rejected (ps_set_lm)".into(),
            });
        }
        self.lm_stale = false;
        Ok(())
    }

    /// Decodes this utterance's audio again with the general language
    /// model and returns its text (words only, no fillers), then makes the
    /// grammar search active again. None when the second pass is off or
    /// could not run.
    fn second_pass_text(&mut self) -> Result<Option<String>, AsrError> {
        let Some(path) = self.second_pass.clone() else {
            return Ok(None);
        };
        if self.lm.is_none() {
            self.read_second_pass(&path)?;
        }
        if self.lm_stale {
            self.build_second_pass()?;
        }
        let shared = self.lm.clone();
        let _guard = shared.as_ref().map(|s| s.lock());
        let name = CString::new(SECOND_PASS).unwrap_or_default();
        let active = CString::new(self.active.as_str()).unwrap_or_default();
        let n = self.utt16.len();
        // SAFETY: ps live, not in an utterance; the searches named exist;
        // utt16 holds n samples; the hypothesis string is copied before the
        // decoder is used again.
        let text = unsafe {
            if ps_set_search(self.ps, name.as_ptr()) < 0 || ps_start_utt(self.ps) < 0 {
                ps_set_search(self.ps, active.as_ptr());
                return Ok(None);
            }
            let r = ps_process_raw(self.ps, self.utt16.as_ptr(), n, 0, 0);
            let e = ps_end_utt(self.ps);
            let mut score = 0i32;
            let p = ps_get_hyp(self.ps, &mut score);
            let text = (r >= 0 && e >= 0).then(|| {
                if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p)
                        .to_string_lossy()
                        .split_whitespace()
                        .map(|w| w.split('(').next().unwrap_or(w))
                        .filter(|w| !w.starts_with('<') && !w.starts_with('['))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            });
            if ps_set_search(self.ps, active.as_ptr()) < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    what: "ps_set_search back to the turn grammar failed".into(),
                });
            }
            text
        };
        self.frames_before += n as u64 / 160;
        Ok(text)
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
        let path = write_arpa(self.ps, name, &model)?;
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
        if self.second_pass.is_some() && self.utt16.len() < SECOND_PASS_MAX_SAMPLES {
            let room = SECOND_PASS_MAX_SAMPLES - self.utt16.len();
            self.utt16
                .extend_from_slice(&self.buf16[..self.buf16.len().min(room)]);
        }
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
            self.active.clone_from(name);
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
        // ps_add_word also adds the word to the model of every n-gram search
        // the decoder holds: the shared second-pass model, so under its lock.
        let shared = self.lm.clone();
        let guard = shared.as_ref().map(|s| s.lock());
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
            self.lm_stale = true;
        }
        drop(guard);
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
        self.active.clone_from(&name);
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
        self.last_lm = None;
        if !words.is_empty() && !self.utt16.is_empty() {
            if let Some(text) = self.second_pass_text()? {
                let phones = |ws: &mut dyn Iterator<Item = &str>| -> Vec<String> {
                    ws.filter_map(|w| self.dict.get(w))
                        .flat_map(|p| p.split_whitespace().map(str::to_string))
                        .collect()
                };
                let first = phones(&mut words.iter().map(|w| w.word.as_str()));
                let second = phones(&mut text.split_whitespace());
                self.last_lm = Some(SecondPass {
                    phone_sim: phone_similarity(&first, &second),
                    text,
                });
            }
        }
        self.utt16.clear();
        self.up = Upsampler2x::new();
        self.last_partial.clear();
        Ok(Transcript::from_words(words))
    }

    fn reset(&mut self) {
        let _ = self.end_utt();
        self.utt16.clear();
        self.last_lm = None;
        self.up = Upsampler2x::new();
        self.last_partial.clear();
    }

    fn second_pass(&self) -> Option<SecondPass> {
        self.last_lm.clone()
    }

    fn engine(&self) -> &'static str {
        ENGINE
    }
}

impl Drop for SphinxRecognizer {
    fn drop(&mut self) {
        let _ = self.end_utt();
        // Freeing the decoder releases its reference to the shared model.
        let shared = self.lm.take();
        let guard = shared.as_ref().map(|s| s.lock());
        // SAFETY: ps and config were created here and are freed once.
        unsafe {
            ps_free(self.ps);
            cmd_ln_free_r(self.config);
        }
        drop(guard);
    }
}

#[cfg(test)]
#[path = "recognizer_tests.rs"]
mod tests;
