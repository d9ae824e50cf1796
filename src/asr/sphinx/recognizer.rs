//! The decoder: [`SphinxRecognizer`], one PocketSphinx decoder for one call
//! at a time, fed 8 kHz audio upsampled to the model's 16 kHz, with one
//! compiled search per distinct phrase set.
//!
//! Owns: the decoder's life (init, searches, utterances, free), adding the
//! grammar's words from the dictionary, and turning segments into timed
//! words. Must never be used by two threads at once.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::Arc;

use super::config::{SphinxConfig, SphinxSearch};
use super::dictionary::{dictionary, small_dict_file, tokens};
use super::ffi::*;
use super::grammar::{
    build_jsgf, build_jsgf_glued, garbage_words, rule_ref, sample_replies, LEAD_RULE,
    NGRAM_SAMPLES_PER_RULE, TAIL_RULE,
};
use super::ENGINE;
use crate::asr::jsgf::ReplyGrammar;
use crate::asr::ngram::NgramModel;
use crate::asr::{AsrError, Partial, Recognizer, Transcript, Word};
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
    /// The phone-loop model and whether its search is loaded.
    phone_loop: Option<std::path::PathBuf>,
    phone_loop_loaded: bool,
    /// This utterance's 16 kHz audio, for the phone-loop pass (at most
    /// [`PHONE_LOOP_MAX_SAMPLES`]).
    utt16: Vec<i16>,
    last_gap: Option<f32>,
}

/// Beams of the phone-loop search (PocketSphinx's defaults are 1e-48):
/// it only has to find a good phone string, not a grammar's end.
const PHONE_LOOP_BEAMS: &[(&str, f64)] = &[("-beam", 1e-40), ("-pbeam", 1e-40)];

/// The phone-loop search's name.
const PHONE_LOOP: &str = "phone_loop";
/// The longest utterance scored against the phone loop (30 s at 16 kHz);
/// longer ones keep their first 30 s.
const PHONE_LOOP_MAX_SAMPLES: usize = 30 * 16_000;

/// Path scores are logarithms in the decoder's log base (`-logbase`,
/// default 1.0001); this turns them into natural-log units (only the
/// scale of a calibration feature: the logistic model absorbs it).
const ASCR_TO_LN: f32 = 0.000_099_995;

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
            active: String::new(),
            phone_loop: config.phone_loop.clone(),
            phone_loop_loaded: false,
            utt16: Vec::new(),
            last_gap: None,
        })
    }

    /// Sum of the acoustic scores of the last utterance's segments (all of
    /// them: words, silence, fillers) and how many segments there were.
    fn path_ascr(&self) -> (i64, usize) {
        let (mut sum, mut n) = (0i64, 0usize);
        // SAFETY: ps live; the iterator is walked to its end, where ps_seg_next frees it.
        unsafe {
            let mut seg = ps_seg_iter(self.ps);
            while !seg.is_null() {
                let (mut a, mut l, mut b) = (0, 0, 0);
                ps_seg_prob(seg, &mut a, &mut l, &mut b);
                sum += a as i64;
                n += 1;
                seg = ps_seg_next(seg);
            }
        }
        (sum, n)
    }

    /// Decodes this utterance's audio again with the free phone loop and
    /// returns its acoustic score, then makes the grammar search active
    /// again. None when the phone loop is off or could not run.
    fn phone_loop_ascr(&mut self) -> Result<Option<i64>, AsrError> {
        let Some(path) = self.phone_loop.clone() else {
            return Ok(None);
        };
        let name = CString::new(PHONE_LOOP).unwrap_or_default();
        if !self.phone_loop_loaded {
            let cp = CString::new(path.to_string_lossy().as_bytes()).unwrap_or_default();
            // The search reads its beams from the decoder's config when it is
            // made: give it narrow ones (the turn grammars' wide beams would
            // leave a loop over every phone unpruned), then put them back.
            let keys: Vec<CString> = PHONE_LOOP_BEAMS
                .iter()
                .map(|(k, _)| CString::new(*k).unwrap_or_default())
                .collect();
            // SAFETY: config is the decoder's live config; keys name float options.
            let saved: Vec<f64> = keys
                .iter()
                .map(|k| unsafe { cmd_ln_float_r(self.config, k.as_ptr()) })
                .collect();
            for (k, (_, v)) in keys.iter().zip(PHONE_LOOP_BEAMS) {
                // SAFETY: as above.
                unsafe { cmd_ln_set_float_r(self.config, k.as_ptr(), *v) };
            }
            // SAFETY: ps live; strings NUL-terminated; the file is read in the call.
            let loaded = unsafe { ps_set_allphone_file(self.ps, name.as_ptr(), cp.as_ptr()) };
            for (k, v) in keys.iter().zip(saved) {
                // SAFETY: as above.
                unsafe { cmd_ln_set_float_r(self.config, k.as_ptr(), v) };
            }
            if loaded < 0 {
                return Err(AsrError::BadModel {
                    engine: ENGINE,
                    path,
                    reason: "the phone-loop language model was rejected (ps_set_allphone_file)"
                        .into(),
                });
            }
            self.phone_loop_loaded = true;
        }
        let active = CString::new(self.active.as_str()).unwrap_or_default();
        let n = self.utt16.len();
        // SAFETY: ps live, not in an utterance; the searches named exist;
        // utt16 holds n samples.
        let score = unsafe {
            if ps_set_search(self.ps, name.as_ptr()) < 0 || ps_start_utt(self.ps) < 0 {
                ps_set_search(self.ps, active.as_ptr());
                return Ok(None);
            }
            let r = ps_process_raw(self.ps, self.utt16.as_ptr(), n, 0, 0);
            let e = ps_end_utt(self.ps);
            let (ascr, segs) = self.path_ascr();
            let score = (r >= 0 && e >= 0 && segs > 0).then_some(ascr);
            if ps_set_search(self.ps, active.as_ptr()) < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    what: "ps_set_search back to the turn grammar failed".into(),
                });
            }
            score
        };
        self.frames_before += n as u64 / 160;
        Ok(score)
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
        if self.phone_loop.is_some() && self.utt16.len() < PHONE_LOOP_MAX_SAMPLES {
            let room = PHONE_LOOP_MAX_SAMPLES - self.utt16.len();
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
        let frames = self.frames_in_utt;
        self.end_utt()?;
        let words = self.hyp_words(base);
        self.last_gap = None;
        if !words.is_empty() && frames > 0 {
            let (grammar, _) = self.path_ascr();
            if let Some(phones) = self.phone_loop_ascr()? {
                let gap = (grammar - phones) as f32 / frames as f32 * ASCR_TO_LN;
                self.last_gap = Some(gap.min(0.0));
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
        self.last_gap = None;
        self.up = Upsampler2x::new();
        self.last_partial.clear();
    }

    fn phone_loop_gap(&self) -> Option<f32> {
        self.last_gap
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::testutil::{speak_8k, sphinx_tools, TempDir};
    use std::path::Path;

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
        sphinx_tools()
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
        if !ready()
            || !crate::testkit::needs()
                .file(data.join("cards/001.wav"), "pocketsphinx-testdata")
                .met()
        {
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
    fn grammar_changes_between_turns_and_a_reset_decoder_serves_the_next_call() {
        if !ready() {
            return;
        }
        let d = TempDir::new("sphinx2");
        let mut rec = SphinxRecognizer::new(&SphinxConfig::default()).unwrap();
        let pcm = speak_8k(&d.0, "wn", "en-us", 160, "wrong number", true);
        rec.set_phrases(&["wrong number".into(), "yes".into()])
            .unwrap();
        feed(&mut rec, &pcm);
        assert_eq!(rec.finish().unwrap().text, "wrong number");
        rec.set_phrases(&["yes".into(), "no".into()]).unwrap();
        feed(&mut rec, &pcm);
        assert_ne!(rec.finish().unwrap().text, "wrong number");
        // Half an utterance, then the call ends: the agent resets the decoder
        // and lends it to the next call, which must hear only its own audio.
        rec.accept(&pcm[..pcm.len() / 2]).unwrap();
        rec.reset();
        rec.set_phrases(&["wrong number".into(), "yes".into()])
            .unwrap();
        feed(&mut rec, &pcm);
        assert_eq!(rec.finish().unwrap().text, "wrong number");
    }
}
