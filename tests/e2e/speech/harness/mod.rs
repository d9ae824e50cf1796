//! The audio evaluation of the English speech path, end to end, outside
//! the library: spoken replies (espeak-ng, several voices/speeds/pitches,
//! pink noise, 8 kHz u-law like a phone line) -> 20 ms frames -> VAD gate ->
//! PocketSphinx with the turn's grammar -> intent classifier. Used by the
//! floor tests (`cargo test --release --test e2e speech`, quick subsets) and by
//! `benches/speech_eval.rs` (`scripts/eval-speech`, whole sets), which
//! includes this directory by path.
//!
//! Owns, one concern per file: the labelled sets ([`sets`]), rendering and
//! caching clips ([`render`]), running clips through the pipeline
//! ([`run`]) and the report ([`report`]). Never changes what the recognizer
//! or classifier do.
#![allow(dead_code, unused_imports)]

pub mod bench;
pub mod render;
pub mod report;
pub mod run;
pub mod sets;

pub use bench::{fit_calibration, run_bench, BenchClip, BenchReport};
pub use render::{
    default_cache_dir, fnv64, render, variant, variant_in, Synth, Variant, Voice, DEV_VOICES,
    EVAL_VOICES, SILENCE, VOICES,
};
pub use report::{norm_tokens, word_edits, ClipResult, SpeechReport};
pub use run::{decode_clip, evaluate};
pub use sets::{
    full_set, parse_utterances, quick_subset, Utterance, SPEECH_EN_HELDOUT2_TSV,
    SPEECH_EN_HELDOUT_TSV, SPEECH_EN_TSV, SPOKEN_DEV_TSV, SPOKEN_FINAL_TSV, SPOKEN_FRESH_TSV,
};
