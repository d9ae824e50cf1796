//! Whisper alone in a turn (a language without a grammar engine, Mandarin
//! today): the turn's listen phrases condition the decode (the initial
//! prompt) and are scored against the same audio, and when Whisper's own
//! text means nothing, the best-scoring phrase that means something may
//! stand in for it ([`pick`]).
//!
//! Owns: the prompt made of the phrases ([`prompt_of`]) and the pure rule
//! ([`pick`], [`PhraseRule`]). Never decodes (the pool scores the phrases,
//! [`super::decode`]) and never classifies (the caller gives each text's
//! intent).

use crate::intent::IntentKind;

/// When a listen phrase stands in for Whisper's own text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhraseRule {
    /// The phrase's mean token log-probability may be at most this much
    /// below the score of Whisper's own text over the same audio (nats per
    /// token): speech the phrases do not describe (off-topic talk) fits
    /// Whisper's own text far better than any phrase, and is not forced
    /// onto one.
    pub max_gap: f32,
    /// Without a score of Whisper's own text: the least mean token
    /// log-probability a phrase needs.
    pub min_score: f32,
}

impl PhraseRule {
    /// Set on the simulated Mandarin debtors' lines (espeak-ng Mandarin
    /// through 8 kHz u-law; the e2e `mandarin::` calls), never on the
    /// Mandarin benchmark: the right phrase scored 0.2-1.9 nats per token
    /// better than Whisper's garbled text of "是我" or "对", and 1.2 below
    /// the free text of "我星期五还" ("我先提不开").
    pub const CALLS: PhraseRule = PhraseRule {
        max_gap: 1.5,
        min_score: -6.0,
    };
}

/// The initial prompt of a decode in a turn expecting `phrases`: the
/// phrases as one sentence in the language's punctuation (Mandarin `，`
/// and `。`; else `, ` and `.`). Empty without phrases.
pub fn prompt_of(phrases: &[String], lang: &str) -> String {
    let phrases: Vec<&str> = phrases
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty() && !p.starts_with('<'))
        .collect();
    if phrases.is_empty() {
        return String::new();
    }
    if lang.to_ascii_lowercase().starts_with("zh") {
        format!("{}。", phrases.join("，"))
    } else {
        format!("{}.", phrases.join(", "))
    }
}

/// One scored listen phrase: what it means and its score over the audio
/// (mean token log-probability; None when it could not be scored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The phrase's intent (None or `Unknown`: it means nothing).
    pub intent: Option<IntentKind>,
    /// Its score.
    pub score: Option<f32>,
}

/// The phrase (index into `phrases`) that stands in for Whisper's own text,
/// or None to keep Whisper's text. Only when that text means nothing
/// (`own_intent` None or `Unknown`) or the decode was unsound; then the
/// best-scoring phrase that means an intent, if it scores within
/// `rule.max_gap` of Whisper's own text (`own_score`), or at least
/// `rule.min_score` when that was not scored.
pub fn pick(
    own_intent: Option<IntentKind>,
    unsound: bool,
    own_score: Option<f32>,
    phrases: &[Scored],
    rule: &PhraseRule,
) -> Option<usize> {
    let means = |i: Option<IntentKind>| i.is_some_and(|k| k != IntentKind::Unknown);
    if means(own_intent) && !unsound {
        return None;
    }
    let (best, score) = phrases
        .iter()
        .enumerate()
        .filter(|(_, p)| means(p.intent))
        .filter_map(|(i, p)| Some((i, p.score?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let floor = match own_score {
        Some(own) => own - rule.max_gap,
        None => rule.min_score,
    };
    (score >= floor).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(intent: IntentKind, score: f32) -> Scored {
        Scored {
            intent: Some(intent),
            score: Some(score),
        }
    }

    #[test]
    fn the_prompt_joins_the_phrases_in_the_languages_punctuation() {
        let p = vec!["是我".to_string(), " 不是 ".into(), "<identity>".into()];
        assert_eq!(prompt_of(&p, "zh"), "是我，不是。");
        assert_eq!(prompt_of(&["yes".into(), "no".into()], "en"), "yes, no.");
        assert_eq!(prompt_of(&[], "zh"), "");
    }

    #[test]
    fn a_text_that_means_something_is_kept_whatever_the_phrases_score() {
        let phrases = [s(IntentKind::IdentityConfirmed, -0.1)];
        let r = PhraseRule::CALLS;
        assert_eq!(
            pick(Some(IntentKind::Hardship), false, Some(-3.0), &phrases, &r),
            None
        );
    }

    #[test]
    fn a_garbled_text_gives_way_to_the_best_phrase_that_means_something() {
        let phrases = [
            s(IntentKind::Unknown, -1.0),
            s(IntentKind::IdentityConfirmed, -3.8),
            s(IntentKind::WrongNumber, -4.4),
        ];
        let r = PhraseRule::CALLS;
        // "比我，比我" for "是我": means nothing, the phrase scores better.
        assert_eq!(
            pick(Some(IntentKind::Unknown), false, Some(-3.95), &phrases, &r),
            Some(1)
        );
        // A little worse than the own text, within the gap: still taken.
        assert_eq!(pick(None, false, Some(-2.5), &phrases, &r), Some(1));
        // An unsound decode counts as meaning nothing.
        assert_eq!(
            pick(Some(IntentKind::Hardship), true, Some(-3.0), &phrases, &r),
            Some(1)
        );
    }

    #[test]
    fn off_topic_speech_that_fits_its_own_text_far_better_is_not_forced_onto_a_phrase() {
        let phrases = [s(IntentKind::IdentityConfirmed, -5.0)];
        let r = PhraseRule::CALLS;
        assert_eq!(
            pick(Some(IntentKind::Unknown), false, Some(-1.0), &phrases, &r),
            None
        );
        // Not scored: the absolute floor.
        assert_eq!(pick(None, false, None, &phrases, &r), Some(0));
        let poor = [s(IntentKind::IdentityConfirmed, -7.0)];
        assert_eq!(pick(None, false, None, &poor, &r), None);
        // No phrase that means anything, or none scored.
        let none = [Scored {
            intent: Some(IntentKind::IdentityConfirmed),
            score: None,
        }];
        assert_eq!(pick(None, false, None, &none, &r), None);
        assert_eq!(pick(None, false, None, &[], &r), None);
    }
}
