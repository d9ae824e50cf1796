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
    fn cmd_ln_parse_r(inout: Ptr, defn: *const c_void, argc: i32, argv: *const *const c_char, strict: i32) -> Ptr;
    fn cmd_ln_free_r(cmdln: Ptr) -> c_int;
    fn ps_init(config: Ptr) -> Ptr;
    fn ps_free(ps: Ptr) -> c_int;
    fn ps_add_word(ps: Ptr, word: *const c_char, phones: *const c_char, update: c_int) -> c_int;
    fn ps_set_jsgf_string(ps: Ptr, name: *const c_char, jsgf: *const c_char) -> c_int;
    fn ps_set_search(ps: Ptr, name: *const c_char) -> c_int;
    fn ps_start_utt(ps: Ptr) -> c_int;
    fn ps_process_raw(ps: Ptr, data: *const i16, n: usize, no_search: c_int, full_utt: c_int) -> c_int;
    fn ps_end_utt(ps: Ptr) -> c_int;
    fn ps_get_hyp(ps: Ptr, score: *mut i32) -> *const c_char;
    fn ps_get_logmath(ps: Ptr) -> Ptr;
    fn ps_seg_iter(ps: Ptr) -> Ptr;
    fn ps_seg_next(seg: Ptr) -> Ptr;
    fn ps_seg_word(seg: Ptr) -> *const c_char;
    fn ps_seg_frames(seg: Ptr, sf: *mut c_int, ef: *mut c_int);
    fn ps_seg_prob(seg: Ptr, ascr: *mut i32, lscr: *mut i32, lback: *mut i32) -> i32;
    fn logmath_exp(lmath: Ptr, logb_p: c_int) -> c_double;
}

const ENGINE: &str = "sphinx";
/// Prefix of the garbage "words" (one phone each) that absorb speech outside the grammar.
const GARBAGE_PREFIX: &str = "gbg_";
/// Phones of the en-us model used for the garbage loop.
const PHONES: &[&str] = &[
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH", "K", "L", "M",
    "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
];
/// Frames per second of the en-us model (10 ms frames).
const FRAME_RATE: f32 = 100.0;

/// Where the English model lives and how the grammar rejects.
#[derive(Debug, Clone)]
pub struct SphinxConfig {
    /// Acoustic model directory (16 kHz).
    pub hmm: PathBuf,
    /// Pronunciation dictionary the grammar words are looked up in.
    pub dict: PathBuf,
    /// JSGF weight of the garbage alternative relative to the phrases (1.0).
    /// Higher rejects more off-grammar speech and more real replies too.
    pub garbage_weight: f32,
}

impl Default for SphinxConfig {
    fn default() -> Self {
        let base = std::env::var_os("DUECALL_SPHINX_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/pocketsphinx/model/en-us"));
        SphinxConfig { hmm: base.join("en-us"), dict: base.join("cmudict-en-us.dict"), garbage_weight: 0.05 }
    }
}

/// The pronunciation dictionary, read once per process and shared.
fn dictionary(path: &Path) -> Result<Arc<HashMap<String, String>>, AsrError> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<HashMap<String, String>>>>> = OnceLock::new();
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
        let (Some(w), Some(ph)) = (it.next(), it.next()) else { continue };
        // Only the first pronunciation: alternates "(2)" would need their own entries.
        if w.ends_with(')') {
            continue;
        }
        dict.entry(w.to_string()).or_insert_with(|| ph.trim().to_string());
    }
    let d = Arc::new(dict);
    map.insert(path.to_path_buf(), d.clone());
    Ok(d)
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

/// Builds the JSGF text: the phrases as one rule, and a loop of one-phone
/// garbage words with a low weight, so speech far from every phrase goes to
/// garbage instead of being forced onto the nearest phrase.
pub fn build_jsgf(phrases: &[Vec<String>], garbage_weight: f32) -> String {
    let alts: Vec<String> = phrases.iter().map(|p| p.join(" ")).collect();
    let garbage: Vec<String> = PHONES.iter().map(|p| format!("{GARBAGE_PREFIX}{}", p.to_lowercase())).collect();
    format!(
        "#JSGF V1.0;\ngrammar duecall;\npublic <utt> = /1.0/ <phrase> | /{gw}/ <garbage>;\n<phrase> = {};\n<garbage> = ({})+;\n",
        alts.join(" | "),
        garbage.join(" | "),
        gw = garbage_weight.max(1e-4)
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
    up: Upsampler2x,
    buf16: Vec<i16>,
    in_utt: bool,
    has_search: bool,
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
                reason: "no acoustic model (mdef) there: install pocketsphinx-en-us (scripts/setup)".into(),
            });
        }
        let dict = dictionary(&config.dict)?;
        // The decoder needs a -dict file at init: write the garbage words to a
        // small one (real words are added with ps_add_word, which is cheaper
        // than loading 134k entries into every decoder: 8 vs 30 MB).
        let dict_file = small_dict_file()?;
        let args: Vec<CString> = [
            "-hmm",
            &config.hmm.to_string_lossy(),
            "-dict",
            &dict_file.to_string_lossy(),
            "-logfn",
            "/dev/null",
            "-samprate",
            "16000",
        ]
        .iter()
        .map(|s| CString::new(*s).unwrap_or_default())
        .collect();
        let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: argv points to live C strings for the duration of the call.
        let cfg = unsafe { cmd_ln_parse_r(std::ptr::null_mut(), ps_args(), argv.len() as i32, argv.as_ptr(), 1) };
        if cfg.is_null() {
            return Err(AsrError::Engine { engine: ENGINE, what: "cmd_ln_parse_r rejected the arguments".into() });
        }
        // SAFETY: cfg is a valid config; ps_init retains it.
        let ps = unsafe { ps_init(cfg) };
        if ps.is_null() {
            // SAFETY: cfg is ours to free.
            unsafe { cmd_ln_free_r(cfg) };
            return Err(AsrError::BadModel { engine: ENGINE, path: config.hmm.clone(), reason: "ps_init failed".into() });
        }
        Ok(SphinxRecognizer {
            ps,
            config: cfg,
            dict,
            known: HashSet::new(),
            searches: HashMap::new(),
            garbage_weight: config.garbage_weight,
            up: Upsampler2x::new(),
            buf16: Vec::with_capacity(640),
            in_utt: false,
            has_search: false,
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
            if r < 0 {
                return Err(AsrError::Engine { engine: ENGINE, what: "ps_end_utt failed".into() });
            }
        }
        Ok(())
    }

    fn hyp_words(&self) -> Vec<Word> {
        let mut out = Vec::new();
        // SAFETY: ps live; we walk the iterator to its end, where ps_seg_next frees it.
        unsafe {
            let lmath = ps_get_logmath(self.ps);
            let mut seg = ps_seg_iter(self.ps);
            while !seg.is_null() {
                let w = CStr::from_ptr(ps_seg_word(seg)).to_string_lossy().into_owned();
                let (mut sf, mut ef) = (0, 0);
                ps_seg_frames(seg, &mut sf, &mut ef);
                let (mut a, mut l, mut b) = (0, 0, 0);
                let prob = ps_seg_prob(seg, &mut a, &mut l, &mut b);
                let conf = if lmath.is_null() { 0.0 } else { logmath_exp(lmath, prob) as f32 };
                if !(w.starts_with('<') || w.starts_with('[') || w.starts_with(GARBAGE_PREFIX)) {
                    let word = w.split('(').next().unwrap_or(&w).to_string();
                    out.push(Word { word, start: sf as f32 / FRAME_RATE, end: (ef + 1) as f32 / FRAME_RATE, conf: conf.clamp(0.0, 1.0) });
                }
                seg = ps_seg_next(seg);
            }
        }
        out
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
        s.split_whitespace().filter(|w| !w.starts_with(GARBAGE_PREFIX)).collect::<Vec<_>>().join(" ")
    }
}

fn small_dict_file() -> Result<PathBuf, AsrError> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| {
        let p = std::env::temp_dir().join(format!("duecall-sphinx-garbage-{}.dict", std::process::id()));
        let body: String = PHONES.iter().map(|ph| format!("{GARBAGE_PREFIX}{} {ph}\n", ph.to_lowercase())).collect();
        std::fs::write(&p, body).map(|_| p).map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|e| AsrError::Engine { engine: ENGINE, what: format!("cannot write the garbage dictionary: {e}") })
}

impl Recognizer for SphinxRecognizer {
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
        if !self.has_search {
            return Err(AsrError::Engine { engine: ENGINE, what: "no grammar: PocketSphinx needs set_phrases before audio".into() });
        }
        if !self.in_utt {
            // SAFETY: ps live, search set.
            if unsafe { ps_start_utt(self.ps) } < 0 {
                return Err(AsrError::Engine { engine: ENGINE, what: "ps_start_utt failed".into() });
            }
            self.in_utt = true;
        }
        self.buf16.clear();
        self.up.process(pcm, &mut self.buf16);
        // SAFETY: buf16 holds buf16.len() samples.
        let r = unsafe { ps_process_raw(self.ps, self.buf16.as_ptr(), self.buf16.len(), 0, 0) };
        if r < 0 {
            return Err(AsrError::Engine { engine: ENGINE, what: "ps_process_raw failed".into() });
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
        let toks: Vec<Vec<String>> = phrases.iter().map(|p| tokens(p)).filter(|t| !t.is_empty()).collect();
        if toks.is_empty() {
            return Err(AsrError::BadPhrase {
                phrase: String::new(),
                reason: "PocketSphinx runs on a grammar here: free recognition needs a Vosk English model".into(),
            });
        }
        let key = toks.iter().map(|t| t.join(" ")).collect::<Vec<_>>().join("|");
        if let Some(name) = self.searches.get(&key) {
            let c = CString::new(name.as_str()).unwrap_or_default();
            // SAFETY: ps live; the named search exists.
            unsafe { ps_set_search(self.ps, c.as_ptr()) };
            self.has_search = true;
            self.up = Upsampler2x::new();
            self.last_partial.clear();
            return Ok(());
        }
        for w in toks.iter().flatten() {
            if self.known.contains(w) {
                continue;
            }
            let Some(ph) = self.dict.get(w) else {
                return Err(AsrError::BadPhrase {
                    phrase: phrases.iter().find(|p| tokens(p).contains(w)).cloned().unwrap_or_default(),
                    reason: format!("'{w}' is not in the PocketSphinx dictionary"),
                });
            };
            let (cw, cp) = (CString::new(w.as_str()).unwrap_or_default(), CString::new(ph.as_str()).unwrap_or_default());
            // SAFETY: ps live; strings NUL-terminated.
            if unsafe { ps_add_word(self.ps, cw.as_ptr(), cp.as_ptr(), 0) } < 0 {
                return Err(AsrError::Engine { engine: ENGINE, what: format!("ps_add_word({w}) failed") });
            }
            self.known.insert(w.clone());
        }
        let name = format!("g{}", self.searches.len());
        let jsgf = build_jsgf(&toks, self.garbage_weight);
        let (cn, cj) = (CString::new(name.as_str()).unwrap_or_default(), CString::new(jsgf).unwrap_or_default());
        // SAFETY: ps live; strings NUL-terminated.
        unsafe {
            if ps_set_jsgf_string(self.ps, cn.as_ptr(), cj.as_ptr()) < 0 {
                return Err(AsrError::Engine { engine: ENGINE, what: "the JSGF grammar was rejected".into() });
            }
            if ps_set_search(self.ps, cn.as_ptr()) < 0 {
                return Err(AsrError::Engine { engine: ENGINE, what: "ps_set_search failed".into() });
            }
        }
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
        self.end_utt()?;
        let words = self.hyp_words();
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
        Ok(SphinxPool { free: Mutex::new(v), config })
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
            eprintln!("SKIP: pocketsphinx-en-us / espeak-ng / sox missing (run scripts/setup-speech)");
            return false;
        }
        true
    }

    fn feed(rec: &mut dyn Recognizer, pcm: &[i16]) -> Vec<String> {
        let mut audio = vec![0i16; 1600];
        audio.extend_from_slice(pcm);
        audio.extend(std::iter::repeat(0).take(1600));
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
        assert!(g.contains("/0.05/ <garbage>") && g.contains("gbg_aa | gbg_ae"), "{g}");
    }

    #[test]
    fn word_missing_from_dictionary_is_named() {
        if !ready() {
            return;
        }
        let mut r = SphinxRecognizer::new(&SphinxConfig::default()).unwrap();
        let e = r.set_phrases(&["pay with zorblatt".to_string()]).err().expect("error");
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
        let clips = [("I already paid", "en-us"), ("wrong number", "en-us+f3"), ("I lost my job", "en-gb"), ("stop calling me", "en-us")];
        for (i, (text, voice)) in clips.iter().enumerate() {
            let pcm = speak_8k(&d.0, &format!("c{i}"), voice, 160, text, true);
            let partials = feed(&mut rec, &pcm);
            partial_seen |= !partials.is_empty();
            let t = rec.finish().unwrap();
            eprintln!("{text:?} ({voice}) -> {:?} conf {:.2}", t.text, t.confidence);
            if t.text == text.to_lowercase() {
                right += 1;
                let last = t.words.last().expect("words");
                assert!(last.end > t.words[0].start && last.end <= (pcm.len() + 3200) as f32 / 8000.0 + 0.05);
            }
        }
        assert!(partial_seen);
        assert!(right >= 3, "only {right} of {} replies recognised", clips.len());
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
        rec.set_phrases(&["wrong number".into(), "yes".into()]).unwrap();
        feed(&mut rec, &pcm);
        assert_eq!(rec.finish().unwrap().text, "wrong number");
        rec.set_phrases(&["yes".into(), "no".into()]).unwrap();
        feed(&mut rec, &pcm);
        assert_ne!(rec.finish().unwrap().text, "wrong number");
        pool.give_back(rec);
        assert_eq!(pool.idle(), 1);
    }
}
