//! The speech layer's one error enum: what went wrong opening a model,
//! feeding an engine or reading input, each saying what to fix.

use std::path::PathBuf;

/// Errors of the speech layer; each says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsrError {
    /// No model directory for the language and no fallback engine.
    #[error("no speech model for language '{lang}': {hint}")]
    NoModel {
        /// The language asked for.
        lang: String,
        /// What to do about it.
        hint: String,
    },
    /// The model directory does not exist or is not a model of that engine.
    #[error("{engine} model at {path} is not usable: {reason}")]
    BadModel {
        /// Engine name.
        engine: &'static str,
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An unknown engine name was asked for.
    #[error("unknown speech engine '{0}' (expected 'vosk' or 'sphinx')")]
    UnknownEngine(String),
    /// The engine refused a call (a C function returned an error).
    #[error("{engine}: {what}")]
    Engine {
        /// Engine name.
        engine: &'static str,
        /// What failed.
        what: String,
    },
    /// A grammar phrase could not be used.
    #[error("phrase '{phrase}' cannot be used: {reason}")]
    BadPhrase {
        /// The phrase.
        phrase: String,
        /// Why.
        reason: String,
    },
    /// Reading input (audio, phrase list) failed.
    #[error("cannot read {path}: {reason}")]
    Input {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
