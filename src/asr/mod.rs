//! Offline speech recognition behind one trait.
//!
//! Owns: the [`Recognizer`] trait the call driver feeds with 20 ms frames of
//! 8 kHz audio, the result types, the engine choice ([`open`]) and the two
//! engines: Vosk ([`vosk`], a thin FFI over libvosk with one model shared by
//! every call) and PocketSphinx ([`sphinx`], English, JSGF grammar per turn);
//! which phrases a turn's grammar holds ([`turns`]); Whisper ([`whisper`],
//! a decode pool shared by every call) and the recognizer a call uses
//! ([`call`]: the engine per listening turn from `[asr]` ([`config`]), the
//! two hypotheses combined with a calibrated confidence ([`confidence`];
//! in hybrid turns by the rule of [`hybrid`]),
//! free text normalised for the lexicon ([`normalize`])). The spoken-reply
//! evaluation lives outside the library (`tests/e2e/speech/harness`).
//! Never decides what a reply means (that is `intent`), never reads the
//! clock or opens sockets; endpointing is done outside by `media::vad`, which
//! calls [`Recognizer::finish`] when the caller stops talking.

pub mod call;
pub mod cli;
pub mod confidence;
pub mod config;
pub mod hybrid;
pub mod jsgf;
pub mod ngram;
pub mod normalize;
pub mod sphinx;
pub mod turns;
pub mod vosk;
pub mod whisper;

mod error;
mod open;
mod recognizer;
#[cfg(test)]
pub(crate) mod testutil;

pub use config::{AsrConfig, TurnEngine};
pub use error::AsrError;
pub use open::{open, open_with, read_phrases};
pub use recognizer::{
    Partial, Recognizer, SecondPass, Transcript, Word, FRAME_SAMPLES, SAMPLE_RATE,
};
pub use vosk::{find_vosk_model, model_env_var};
