//! What can stop the agent from starting or from placing a call, with what
//! the user needs to fix it. Owns only the words.

use std::path::PathBuf;

use crate::asr::AsrError;
use crate::dialogue::ScriptError;
use crate::intent::IntentError;
use crate::telephony::gateway::GatewayError;

/// What can stop the agent from starting or from placing a call.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A prompts file is missing or invalid.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The intent lexicon is invalid.
    #[error(transparent)]
    Intent(#[from] IntentError),
    /// No recognizer for a language.
    #[error("speech recognition for `{lang}`: {source}")]
    Asr {
        /// Language.
        lang: String,
        /// Why.
        source: AsrError,
    },
    /// Prompt audio could not be rendered or read.
    #[error("prompt audio: {0}")]
    Audio(String),
    /// The gateway could not place the call (SIP stack, origination hook).
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// A language or grammar the config or prompts name cannot be used.
    #[error("config `{key}`: {message}")]
    Config {
        /// Section.
        key: String,
        /// Parser message naming the key.
        message: String,
    },
    /// Writing the outcome or recording directory failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
