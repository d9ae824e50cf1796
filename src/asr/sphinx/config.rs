//! How a PocketSphinx decoder is made: model paths, search beams, the
//! phone-line adaptation and the experiment switches read from the
//! environment.
//!
//! Owns: [`SphinxConfig`], [`SphinxSearch`], [`WIDE_BEAMS`] and where the
//! MLLR transform and the second pass's language model are found. Never creates a decoder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::asr::jsgf::ReplyGrammar;

/// Cepstral mean after several phone-line utterances (see [`SphinxConfig::cmninit`]).
const PHONE_CMNINIT: &str = "51.3,-6.4,0.5,22.5,-0.5,-11.5,-11.9,-0.9,-11.0,4.8,-7.5,1.3,-3.9";

/// Wider search beams than PocketSphinx's defaults (1e-48, 1e-48, 7e-29).
/// With a grammar of ~1,000 phrases the default beams prune the right path
/// early: an empty result (no path reached the grammar's end) was the most
/// common error. Measured on 90 clips: listen+lexicon 43% -> 62% intent,
/// at ~8x the decoding time (still ~8x faster than real time).
pub const WIDE_BEAMS: &[&str] = &["-beam", "1e-80", "-pbeam", "1e-80", "-wbeam", "1e-60"];

/// Default vocabulary of the general-language second pass (its most
/// probable words): the whole model has 72,547, which would add ~70k
/// dictionary entries to every decoder.
pub const SECOND_PASS_VOCAB: usize = 10_000;

/// Default weight of the domain model in the second pass's interpolated
/// language model (see [`SphinxConfig::second_pass_domain`]).
pub const SECOND_PASS_DOMAIN: f32 = 0.5;

/// Where the English model lives and how the grammar rejects.
#[derive(Debug, Clone)]
pub struct SphinxConfig {
    /// Acoustic model directory (16 kHz).
    pub hmm: PathBuf,
    /// Pronunciation dictionary the grammar words are looked up in.
    pub dict: PathBuf,
    /// JSGF weight of the garbage alternative relative to the phrases (1.0);
    /// 0 (the default) leaves it out. Measured here: with the common-word
    /// garbage loop at any weight from 0.05 down to 1e-7, 3 of 4 in-grammar
    /// espeak replies went to garbage (the weight barely moved the decision),
    /// so rejection is left to the dialogue (confidence, confirmation, DTMF).
    /// `DUECALL_SPHINX_GARBAGE_WEIGHT` sets it for experiments.
    pub garbage_weight: f32,
    /// Starting cepstral mean (`-cmninit`): measured on 8 kHz u-law speech
    /// upsampled to 16 kHz, so a fresh decoder's first utterance is not lost
    /// while the mean adapts from the model's wideband default.
    pub cmninit: String,
    /// Words allowed around and between the phrases (empty, the default:
    /// the utterance must be exactly one phrase). With glue the grammar is
    /// `<glue>* <phrase> (<phrase> | <glue>)*`, so "um I paid it yesterday"
    /// is not forced onto one whole phrase. Words missing from the
    /// dictionary are skipped. Measured by `scripts/eval-speech`.
    pub glue: Vec<String>,
    /// How a turn's phrases constrain the decoder (default
    /// [`SphinxSearch::Grammar`]; `DUECALL_SPHINX_SEARCH=ngram` for experiments).
    pub search: SphinxSearch,
    /// Further decoder flags (`["-beam", "1e-80"]`); never one of the flags
    /// set here (-hmm -dict -logfn -samprate -cmninit: a repeat fails).
    /// Default: `DUECALL_SPHINX_ARGS` split on whitespace, for experiments.
    pub extra_args: Vec<String>,
    /// The reply grammar (`prompts/en.replies.jsgf`): phrases of the form
    /// `<rule>` in [`Recognizer::set_phrases`] name its rules, and the turn's
    /// grammar becomes `[<lead>] (phrases | rules) [<tail>]`. None (the
    /// default): plain phrases only.
    pub replies: Option<Arc<ReplyGrammar>>,
    /// MLLR transform of the model's means for the phone line (`-mllr`),
    /// made by `scripts/adapt-speech`. Default: [`find_phone_mllr`]. On the
    /// spoken set it took intent accuracy from 71% to 87% (one rendering
    /// each, `scripts/eval-speech`), and human speech from 4 to 5 of 5.
    pub mllr: Option<PathBuf>,
    /// The general-language second pass: after the grammar pass ends an
    /// utterance, the same audio is decoded again with this n-gram language
    /// model (PocketSphinx's general English `en-us.lm.bin`) as a second
    /// search in the same decoder, and its text is kept
    /// ([`crate::asr::Recognizer::second_pass`]): off-topic speech the
    /// grammar forced onto one of its sentences comes out as other words.
    /// `DUECALL_SPHINX_SECOND_PASS` = `lm` (the model's `en-us.lm.bin`), a
    /// path, or `none`; default none. On the development split it takes
    /// reply intents from 65.3 % to 67.7 % and, at `reject_threshold` 0.40,
    /// rejects 62 % of off-topic replies, but in the compliance e2e it heard
    /// "please call me after six" as "clean call me out of work they"
    /// (hardship, 0.83): README "Confidence and rejection".
    pub second_pass: Option<PathBuf>,
    /// Words of the second pass's vocabulary: the language model's most
    /// probable unigrams found in the dictionary (plus the grammars' words).
    /// `DUECALL_SPHINX_SECOND_PASS_VOCAB`; default [`SECOND_PASS_VOCAB`].
    pub second_pass_vocab: usize,
    /// Weight of the domain's own trigram model (trained on samples of the
    /// reply grammar's intent rules and their example replies) interpolated
    /// with the general model in the second pass (0: the general model
    /// alone; needs [`SphinxConfig::replies`]).
    /// `DUECALL_SPHINX_SECOND_PASS_DOMAIN`; default [`SECOND_PASS_DOMAIN`].
    pub second_pass_domain: f32,
    /// Copies of the second pass's model a process reads and its decoders
    /// share (each used by one decoder at a time; a decoder takes the least
    /// used). `DUECALL_SPHINX_SECOND_PASS_COPIES`; default: the number of cores.
    pub second_pass_copies: usize,
}

/// Where the phone-line MLLR transform is: `DUECALL_SPHINX_MLLR` (a path, or
/// `none` for no transform), else `.local/models/en-us-phone.mllr` in the
/// working directory or the source tree this binary was built from (what
/// `scripts/adapt-speech` writes); None when there is none.
pub fn find_phone_mllr() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("DUECALL_SPHINX_MLLR") {
        return (!v.is_empty() && v != "none").then(|| PathBuf::from(v));
    }
    [
        PathBuf::from(".local/models/en-us-phone.mllr"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/models/en-us-phone.mllr"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// What the decoder searches with the phrases of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SphinxSearch {
    /// A JSGF grammar: the reply must be one whole phrase (or glue around them).
    Grammar,
    /// A trigram model trained on the phrases ([`crate::asr::ngram`]); a
    /// phrase given twice weighs twice. Replies may join pieces of phrases.
    Ngram,
}

/// The second pass's language model for a setting `v` (`lm`: the model
/// directory's `en-us.lm.bin`; `none` or empty: None; else a path).
fn second_pass_in(base: &Path, v: &str) -> Option<PathBuf> {
    match v {
        "lm" => Some(base.join("en-us.lm.bin")),
        "" | "none" => None,
        path => Some(PathBuf::from(path)),
    }
}

impl SphinxConfig {
    /// The second pass's language model for a setting (`lm`, `none`, a
    /// path), next to this configuration's acoustic model.
    pub fn second_pass_model(&self, v: &str) -> Option<PathBuf> {
        let base = self.hmm.parent().unwrap_or(Path::new("."));
        second_pass_in(base, v)
    }

    /// The settings calls use: the defaults plus wide search beams, unless
    /// `DUECALL_SPHINX_ARGS` says otherwise. With the lexicon-sized grammars
    /// the agent sends, the default beams often let no hypothesis reach the
    /// end of the grammar; wide beams took intent accuracy from 46.7% to
    /// 58.1% on the spoken set (`scripts/eval-speech`) at ~8x the decoding
    /// cost (still ~7x faster than real time). The general-language second
    /// pass is off unless `DUECALL_SPHINX_SECOND_PASS` or `[asr]
    /// second_pass` ([`crate::asr::open_with`]) turns it on.
    pub fn for_calls() -> Self {
        let mut c = SphinxConfig::default();
        if std::env::var_os("DUECALL_SPHINX_ARGS").is_none() {
            c.extra_args
                .extend(WIDE_BEAMS.iter().map(|s| s.to_string()));
        }
        c
    }
}

impl Default for SphinxConfig {
    fn default() -> Self {
        let base = std::env::var_os("DUECALL_SPHINX_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/pocketsphinx/model/en-us"));
        let garbage_weight = std::env::var("DUECALL_SPHINX_GARBAGE_WEIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let extra_args = std::env::var("DUECALL_SPHINX_ARGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let cmninit =
            std::env::var("DUECALL_SPHINX_CMNINIT").unwrap_or_else(|_| PHONE_CMNINIT.to_string());
        SphinxConfig {
            hmm: base.join("en-us"),
            dict: base.join("cmudict-en-us.dict"),
            garbage_weight,
            cmninit,
            glue: Vec::new(),
            search: match std::env::var("DUECALL_SPHINX_SEARCH").as_deref() {
                Ok("ngram") => SphinxSearch::Ngram,
                _ => SphinxSearch::Grammar,
            },
            extra_args,
            replies: None,
            mllr: find_phone_mllr(),
            second_pass: std::env::var("DUECALL_SPHINX_SECOND_PASS")
                .ok()
                .and_then(|v| second_pass_in(&base, &v)),
            second_pass_vocab: std::env::var("DUECALL_SPHINX_SECOND_PASS_VOCAB")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(SECOND_PASS_VOCAB),
            second_pass_domain: std::env::var("DUECALL_SPHINX_SECOND_PASS_DOMAIN")
                .ok()
                .and_then(|v| v.parse::<f32>().ok())
                .filter(|w| (0.0..1.0).contains(w))
                .unwrap_or(SECOND_PASS_DOMAIN),
            second_pass_copies: std::env::var("DUECALL_SPHINX_SECOND_PASS_COPIES")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        }
    }
}
