//! PocketSphinx engine (English), a small FFI of our own over Debian's
//! libpocketsphinx 5prealpha.
//!
//! Owns, one concern per file: the C declarations and process-wide logging
//! ([`ffi`]), how a decoder is configured ([`config`]), the shared
//! pronunciation dictionary ([`dictionary`]), the JSGF text a turn's
//! phrases compile to ([`grammar`]) and the decoder itself
//! ([`recognizer`]: `Send`, one thread at a time, 8 -> 16 kHz upsampling,
//! one compiled search per phrase set), the second pass's shared language
//! model (`second_pass`) and the scratch files PocketSphinx reads
//! (`scratch`). Every `ps_init` loads its own
//! acoustic model (there is no API to share it), so calls do not own
//! decoders: [`pool`] lends one per utterance from a process-wide pool.
//! Must never share one decoder between threads at once, nor pass the same
//! argument twice to `cmd_ln_parse_r` (it fails).

pub mod config;
pub mod dictionary;
mod ffi;
pub mod grammar;
pub mod pool;
pub mod recognizer;
mod scratch;
mod second_pass;

pub use config::{find_phone_mllr, SphinxConfig, SphinxSearch, WIDE_BEAMS};
pub use dictionary::{dictionary, tokens};
pub use grammar::{build_jsgf, build_jsgf_glued, rule_ref, LEAD_RULE, TAIL_RULE};
pub use pool::{
    backlog, default_decoders, pool_stats, Backlog, DecoderPool, PoolStats, PooledSphinx,
};
pub use recognizer::SphinxRecognizer;

/// The engine's name in results and errors.
const ENGINE: &str = "sphinx";
