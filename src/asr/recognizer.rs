//! What every recognizer is and gives: the [`Recognizer`] trait the call
//! driver feeds with 20 ms frames of 8 kHz audio, and its results (timed
//! [`Word`]s, the [`Transcript`] of an utterance, [`Partial`] hypotheses,
//! what a [`SecondPass`] heard). Owns only these shapes; never opens a model
//! (that is [`super::open()`]) nor decides what words mean.

use serde::Serialize;

use super::error::AsrError;

/// Samples per 20 ms frame at 8 kHz: the unit the recognizers are fed with.
pub const FRAME_SAMPLES: usize = 160;
/// Sample rate of everything fed to a [`Recognizer`].
pub const SAMPLE_RATE: u32 = 8000;

/// One recognised word with its time inside the utterance (seconds from the
/// first sample fed after the last `reset`/`finish`) and a 0..1 confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    /// The word as the engine spells it.
    pub word: String,
    /// Start in seconds.
    pub start: f32,
    /// End in seconds.
    pub end: f32,
    /// Confidence 0..1.
    pub conf: f32,
}

/// The final result of one utterance.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Transcript {
    /// The words joined by spaces; empty when nothing (or only garbage) was heard.
    pub text: String,
    /// Timed words.
    pub words: Vec<Word>,
    /// Utterance confidence 0..1 (mean word confidence; 0 when empty).
    pub confidence: f32,
}

impl Transcript {
    /// Builds a transcript from words, computing text and mean confidence.
    pub fn from_words(words: Vec<Word>) -> Self {
        let text = words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let confidence = if words.is_empty() {
            0.0
        } else {
            words.iter().map(|w| w.conf).sum::<f32>() / words.len() as f32
        };
        Transcript {
            text,
            words,
            confidence,
        }
    }
}

/// A partial (not yet final) hypothesis, reported when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partial {
    /// Words heard so far in this utterance.
    pub text: String,
}

/// A streaming recognizer for one call: fed 20 ms frames of 8 kHz i16 audio,
/// reused across the turns of the call (never shared between calls at once).
pub trait Recognizer: Send {
    /// Feeds audio (any length; 160 samples = 20 ms is the usual unit).
    /// Returns a partial result when the hypothesis changed.
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError>;
    /// Sets the phrases expected in the next utterance (grammar / hot
    /// phrases); empty = free recognition where the engine supports it.
    /// Call between utterances (after `finish` or `reset`).
    fn set_phrases(&mut self, phrases: &[String]) -> Result<(), AsrError>;
    /// Ends the current utterance and returns its final result; the
    /// recognizer is then ready for the next utterance.
    fn finish(&mut self) -> Result<Transcript, AsrError>;
    /// Sets the listening turn (a dialogue turn id: `identity`, `reminder`,
    /// ...) and its phrases; engines that do not choose by turn take the
    /// phrases as [`Recognizer::set_phrases`]. Call between utterances.
    fn listen(&mut self, turn: &str, phrases: &[String]) -> Result<(), AsrError> {
        let _ = turn;
        self.set_phrases(phrases)
    }
    /// Drops whatever was fed since the last `finish` (between turns, no reload).
    fn reset(&mut self);
    /// The engine's name ("vosk" or "sphinx").
    fn engine(&self) -> &'static str;
    /// What a general-language second pass heard in the last finished
    /// utterance (the same audio decoded again with a general n-gram model
    /// instead of the turn's grammar; empty when it heard no words). None
    /// when the engine has no second pass, it is off, or the first pass
    /// heard nothing.
    fn second_pass(&self) -> Option<SecondPass> {
        None
    }
    /// What became of Whisper in the last finished utterance, where the
    /// turn uses it (used, skipped as busy, late). None for engines without
    /// Whisper.
    fn whisper_use(&self) -> Option<super::whisper::WhisperUse> {
        None
    }
}

/// What a general-language second pass heard in an utterance
/// ([`Recognizer::second_pass`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SecondPass {
    /// Its words (empty when it heard none).
    pub text: String,
    /// How alike its words and the first pass's sentence sound: 1 minus
    /// the edit distance between their phone strings over the longer
    /// ([`super::confidence::phone_similarity`]).
    pub phone_sim: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_confidence_is_mean_of_words_and_zero_when_empty() {
        let t = Transcript::from_words(vec![
            Word {
                word: "a".into(),
                start: 0.0,
                end: 0.1,
                conf: 1.0,
            },
            Word {
                word: "b".into(),
                start: 0.1,
                end: 0.2,
                conf: 0.5,
            },
        ]);
        assert_eq!(t.text, "a b");
        assert!((t.confidence - 0.75).abs() < 1e-6);
        assert_eq!(Transcript::from_words(vec![]).confidence, 0.0);
    }
}
