//! The labelled spoken sets: which replies are spoken, what they mean and
//! the dialogue turn whose grammar hears them; and which clips a run takes.
//!
//! Owns: parsing `tests/data/speech_en*.tsv` (sections = dialogue turns)
//! and the clip selections. Never renders or decodes.

use std::path::PathBuf;

use duecall::asr::AsrError;
use duecall::intent::eval::parse_tsv;
use duecall::intent::IntentKind;

/// One spoken reply to render: what is said, what it means, and the turn
/// (`[listen.<turn>]`) whose grammar is active when it is heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// The intent a person would mean by it.
    pub intent: IntentKind,
    /// The words spoken.
    pub text: String,
    /// The dialogue turn it answers ("identity", "reminder").
    pub turn: String,
}

/// Parses the spoken set: TSV `intent<TAB>text`, `# section: <turn>` lines
/// naming the turn; errors name the line.
pub fn parse_utterances(text: &str, source_name: &str) -> Result<Vec<Utterance>, AsrError> {
    let rows = parse_tsv(text, source_name).map_err(|e| AsrError::Input {
        path: PathBuf::from(source_name),
        reason: e.to_string(),
    })?;
    rows.into_iter()
        .map(|r| {
            if r.section.is_empty() {
                return Err(AsrError::Input {
                    path: PathBuf::from(source_name),
                    reason: format!("line {}: no `# section: <turn>` line before it", r.line),
                });
            }
            Ok(Utterance {
                intent: r.intent,
                text: r.text,
                turn: r.section,
            })
        })
        .collect()
}

/// The clips of the quick check: every utterance whose index is 0, 2, 4 or
/// 6 modulo 9 (spread over both turns and every intent), first rendering.
pub fn quick_subset(n_utterances: usize) -> Vec<(usize, u32)> {
    (0..n_utterances)
        .filter(|i| matches!(i % 9, 0 | 2 | 4 | 6))
        .map(|i| (i, 0))
        .collect()
}

/// Every utterance rendered `variants` times.
pub fn full_set(n_utterances: usize, variants: u32) -> Vec<(usize, u32)> {
    (0..variants)
        .flat_map(|k| (0..n_utterances).map(move |i| (i, k)))
        .collect()
}

/// The shipped spoken set.
pub const SPEECH_EN_TSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/speech_en.tsv"
));
/// The held-out spoken set: written by someone who never saw the reply
/// grammar, the lexicon or the other sets (`SPEECH_SET=heldout`).
pub const SPEECH_EN_HELDOUT_TSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/speech_en_heldout.tsv"
));
/// The second held-out spoken set, written later by another writer who never
/// saw the grammar, the lexicon or the other sets (`SPEECH_SET=heldout2`):
/// kept unseen while the first held-out set served as a development set.
pub const SPEECH_EN_HELDOUT2_TSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/speech_en_heldout2.tsv"
));

/// The spoken benchmark's development split (tuned on; espeak-ng voices only).
pub const SPOKEN_DEV_TSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/spoken_dev.tsv"
));
/// A fresh held-out split written for the second pass's last number (run
/// once; evaluation voices only).
pub const SPOKEN_FRESH_TSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/spoken_fresh.tsv"
));
/// The spoken benchmark's final held-out split (never tuned on; evaluation
/// voices only).
pub const SPOKEN_FINAL_TSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/spoken_final.tsv"
));
