//! Which text a hybrid turn hears when the grammar engine and Whisper both
//! heard the reply: the rule that plays to each engine's strength.
//!
//! The grammar engine (PocketSphinx with the turn's reply grammar) is right
//! on replies its grammar holds and forces everything else onto its nearest
//! sentence; Whisper hears open wording but loops on short answers and
//! mishears some voices. So Whisper's text is taken only when its decode is
//! sound (not looped, not cut off by its budget, probable enough) and its
//! text is worth acting on: both engines mean the same, or Whisper means
//! another intent with enough classifier confidence (more for a
//! consequential one), or Whisper means nothing and finds its own text far
//! more likely for the audio than the grammar sentence (off-topic speech
//! the grammar forced onto a sentence). Otherwise the grammar sentence
//! stands.
//!
//! Owns: [`HybridRule`] (thresholds fitted on the development split by
//! `scripts/speech/hybrid_rule.py`) and the calibration of hybrid verdicts
//! ([`HYBRID`]). Pure: no audio, no engines, no clock.

use serde::Serialize;

use super::confidence::{
    consequential, whisper_unusable, Calibration, Evidence, Source, Verdict, DISAGREEMENT_CEILING,
};
use crate::intent::IntentKind;

/// Which replies a checked turn ([`super::TurnEngine::Checked`]) has
/// Whisper hear again: those the grammar engine heard as a consequential
/// intent (acting on a forced sentence there transfers, suppresses or
/// pauses a case), and those longer than a short answer (more than the
/// turn's grammar holds: "she's not back from school yet", "yes, and I
/// already paid"). Pure thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CheckRule {
    /// A reply voiced for longer than this (ms) is checked whatever the
    /// grammar engine heard.
    pub longer_than_ms: u32,
}

impl CheckRule {
    /// The rule calls use (hand-set, neither fitted nor measured against
    /// voiced lengths): 1.6 s is meant to leave short answers ("yes",
    /// "yes, speaking", "that's me") unchecked, so they cost no decode.
    pub const CALLS: CheckRule = CheckRule {
        longer_than_ms: 1600,
    };

    /// Whether a reply the grammar engine heard as `grammar_intent`,
    /// voiced for `voiced_ms`, is heard again by Whisper.
    pub fn checks(&self, grammar_intent: Option<IntentKind>, voiced_ms: u32) -> bool {
        grammar_intent.is_some_and(consequential) || voiced_ms > self.longer_than_ms
    }

    /// The verdict on a reply whose check Whisper could not give in time
    /// (its queue too long, or late): a consequential sentence it was to
    /// check is capped at [`DISAGREEMENT_CEILING`], so the dialogue
    /// confirms it instead of acting on an unchecked guess.
    pub fn unchecked(&self, mut v: Verdict, grammar_intent: Option<IntentKind>) -> Verdict {
        if grammar_intent.is_some_and(consequential) {
            v.confidence = v.confidence.min(DISAGREEMENT_CEILING);
        }
        v
    }
}

/// When a hybrid turn takes Whisper's text over the grammar sentence (see
/// the module comment). Pure thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HybridRule {
    /// Least mean token log-probability of Whisper's decode for it to count
    /// as sound (a looped or cut-off decode never does).
    pub min_logprob: f32,
    /// Least classifier confidence in Whisper's intent when the two engines
    /// mean different intents.
    pub min_intent_conf: f32,
    /// Least classifier confidence when either intent is consequential
    /// ([`consequential`]).
    pub min_stakes_conf: f32,
    /// Whisper's own text must score at least this much better (mean token
    /// log-probability) than the grammar sentence for a differing known
    /// intent to be taken (negative: the grammar sentence may score a
    /// little better and Whisper is still taken).
    pub known_gap: f32,
    /// Whisper's own text must score at least this much better than the
    /// grammar sentence for a text meaning nothing to be taken.
    pub unknown_gap: f32,
}

impl HybridRule {
    /// The rule calls use, chosen on the development split (espeak-ng
    /// voices, which understate Whisper) with the reminder turn on hybrid:
    /// `scripts/speech/hybrid_rule.py` on the dump of `SPEECH_SET=dev
    /// SPEECH_ENGINES=hybrid SPEECH_ENGINE_TURNS=reminder
    /// SPEECH_TURNS=reminder` (444 clips): reply intents right 266/384 =
    /// 69.3 % (grammar alone 63.3 %, Whisper alone 44.0 %), off-topic heard
    /// as nothing 38/48 = 79.2 % (grammar 35.4 %), heard as a consequential
    /// intent not meant 30 (grammar 58). A stakes threshold above the
    /// ordinary one cost replies and did not lower the consequential
    /// mistakes on dev, so it is the same (0.5); a lower `unknown_gap`
    /// rejects a few more off-topic replies for many right ones (2.0:
    /// 64.1 %, 83.3 %), a higher one the reverse (4.0: 70.8 %, 60.4 %).
    pub const CALLS: HybridRule = HybridRule {
        min_logprob: -1.0,
        min_intent_conf: 0.5,
        min_stakes_conf: 0.5,
        known_gap: 0.0,
        unknown_gap: 3.0,
    };

    /// Which hypothesis `e` is heard as, and what it means;
    /// `whisper_intent_conf` is the classifier's confidence in Whisper's
    /// intent.
    pub fn choose(
        &self,
        e: &Evidence,
        whisper_intent_conf: Option<f32>,
    ) -> (Source, Option<IntentKind>) {
        let g = e
            .grammar
            .as_ref()
            .filter(|g| g.text.split_whitespace().any(|w| w != ","));
        let w = e.whisper.as_ref().filter(|w| !whisper_unusable(w));
        let (g, w) = match (g, w) {
            (None, None) => return (Source::Nothing, None),
            (None, Some(w)) => return (Source::Whisper, w.intent),
            (Some(g), None) => return (Source::Grammar, g.intent),
            (Some(g), Some(w)) => (g, w),
        };
        let sound = !w.looped && w.mean_logprob >= self.min_logprob;
        if !sound {
            return (Source::Grammar, g.intent);
        }
        let known = |i: Option<IntentKind>| i.unwrap_or(IntentKind::Unknown);
        let (wi, gi) = (known(w.intent), known(g.intent));
        if wi == gi {
            // Both mean the same: Whisper's wording carries the slots.
            return (Source::Whisper, w.intent);
        }
        let gap = match (w.own_score, g.whisper_score) {
            (Some(own), Some(gs)) => Some(own - gs),
            _ => None,
        };
        let take = if wi == IntentKind::Unknown {
            gap.is_some_and(|d| d >= self.unknown_gap)
        } else {
            let least = if consequential(wi) || consequential(gi) {
                self.min_intent_conf.max(self.min_stakes_conf)
            } else {
                self.min_intent_conf
            };
            whisper_intent_conf.unwrap_or(0.0) >= least && gap.is_none_or(|d| d >= self.known_gap)
        };
        if take {
            (Source::Whisper, w.intent)
        } else {
            (Source::Grammar, g.intent)
        }
    }

    /// The verdict: [`Self::choose`]'s text with its confidence under
    /// `model`.
    pub fn decide(
        &self,
        e: &Evidence,
        whisper_intent_conf: Option<f32>,
        model: &Calibration,
    ) -> Verdict {
        let (source, intent) = self.choose(e, whisper_intent_conf);
        let text = match source {
            Source::Whisper => e.whisper.as_ref().map(|w| w.text.clone()),
            Source::Grammar => e.grammar.as_ref().map(|g| g.text.clone()),
            Source::SecondPass | Source::Nothing => None,
        }
        .unwrap_or_default();
        Verdict::of(e, source, text, intent, model)
    }
}

/// The calibration of hybrid verdicts under [`HybridRule::CALLS`], fitted
/// on the same development dump (`hybrid_rule.py --rule
/// -1,0.5,0.5,0,3`; 431 clips with words): ECE 0.054 in sample, 0.050
/// out of fold by reply text (0.9-1.0: 156 clips, 96.2 % right; 0.1-0.2:
/// 20 clips, 5.0 %). Agreement, Whisper's score of the taken text and, on
/// the grammar's side, its word confidence say right; a text meaning
/// nothing, long texts and loops say wrong.
pub const HYBRID: Calibration = Calibration {
    bias: 3.5092,
    agree: 1.3549,
    disagree: -1.3549,
    taken_score: 1.0130,
    gap: 0.1129,
    no_speech: -0.0095,
    grammar_conf: 2.9901,
    unknown: -1.1347,
    words: -0.8914,
    looped: -0.4745,
    lm_unknown: 0.0,
    lm_agree: 0.0,
    lm_overlap: 0.0,
    lm_phone_sim: 0.0,
    lm_intent_conf: 0.0,
    lm_taken: 0.0,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::confidence::{GrammarSide, WhisperSide};

    fn grammar(text: &str, intent: IntentKind, score: f32) -> GrammarSide {
        GrammarSide {
            text: text.into(),
            intent: Some(intent),
            conf: 0.8,
            whisper_score: Some(score),
            lm_text: None,
            lm_intent: None,
            lm_intent_conf: None,
            lm_phone_sim: None,
        }
    }

    fn whisper(text: &str, intent: IntentKind, own: f32) -> WhisperSide {
        WhisperSide {
            text: text.into(),
            intent: Some(intent),
            mean_logprob: -0.3,
            min_p: 0.5,
            no_speech: 0.0,
            looped: false,
            audio_s: 2.0,
            own_score: Some(own),
        }
    }

    fn both(g: GrammarSide, w: WhisperSide) -> Evidence {
        Evidence {
            grammar: Some(g),
            whisper: Some(w),
        }
    }

    const RULE: HybridRule = HybridRule::CALLS;

    #[test]
    fn a_checked_turn_rehears_consequential_or_long_replies_and_not_short_answers() {
        let c = CheckRule::CALLS;
        assert!(!c.checks(Some(IntentKind::IdentityConfirmed), 900));
        assert!(!c.checks(None, 900));
        for kind in [
            IntentKind::RequestAgent,
            IntentKind::NotAvailable,
            IntentKind::WrongNumber,
            IntentKind::StopCalling,
        ] {
            assert!(c.checks(Some(kind), 300), "{kind:?}");
        }
        assert!(c.checks(Some(IntentKind::IdentityConfirmed), 2400));
        assert!(!c.checks(Some(IntentKind::IdentityConfirmed), c.longer_than_ms));
    }

    #[test]
    fn a_consequential_sentence_whisper_could_not_check_in_time_is_confirmed_not_acted_on() {
        let c = CheckRule::CALLS;
        let v = Verdict {
            text: "speak to a rep".into(),
            source: Source::Grammar,
            confidence: 0.8176,
            agree: None,
        };
        let capped = c.unchecked(v.clone(), Some(IntentKind::RequestAgent));
        assert!(capped.confidence <= DISAGREEMENT_CEILING, "{capped:?}");
        assert_eq!(capped.text, v.text);
        // An ordinary answer is left as heard.
        assert_eq!(
            c.unchecked(v.clone(), Some(IntentKind::IdentityConfirmed)),
            v
        );
    }

    #[test]
    fn an_open_reply_outside_the_grammar_is_heard_in_whispers_words() {
        let e = both(
            grammar("i can pay on friday", IntentKind::PromiseToPay, -2.0),
            whisper(
                "my husband handles the bills, i'll ask him to ring you",
                IntentKind::CallbackLater,
                -0.4,
            ),
        );
        let v = RULE.decide(&e, Some(0.7), &HYBRID);
        assert_eq!(v.source, Source::Whisper);
        assert!(v.text.starts_with("my husband"));
        assert_eq!(v.agree, Some(false));
    }

    #[test]
    fn agreement_takes_whispers_wording_and_a_loop_keeps_the_grammar_sentence() {
        // (a looped decode is one `WhisperSide::looped` marks: a repeating
        // text, or one `Decoded::unsound` calls so.)
        let agree = both(
            grammar("i paid it last week", IntentKind::AlreadyPaid, -0.5),
            whisper("i paid it last week already", IntentKind::AlreadyPaid, -0.4),
        );
        assert_eq!(RULE.choose(&agree, Some(0.9)).0, Source::Whisper);
        let mut looped = agree.clone();
        let w = looped.whisper.as_mut().unwrap();
        w.looped = true;
        w.intent = Some(IntentKind::WhoIsCalling);
        assert_eq!(
            RULE.choose(&looped, Some(0.99)),
            (Source::Grammar, Some(IntentKind::AlreadyPaid))
        );
        let mut improbable = agree;
        improbable.whisper.as_mut().unwrap().mean_logprob = RULE.min_logprob - 0.5;
        improbable.whisper.as_mut().unwrap().intent = Some(IntentKind::Dispute);
        assert_eq!(RULE.choose(&improbable, Some(0.99)).0, Source::Grammar);
    }

    #[test]
    fn a_consequential_switch_needs_the_stakes_confidence() {
        let rule = HybridRule {
            min_stakes_conf: 0.8,
            ..RULE
        };
        let e = both(
            grammar("call me later", IntentKind::CallbackLater, -1.5),
            whisper("stop calling me", IntentKind::StopCalling, -0.3),
        );
        assert_eq!(rule.choose(&e, Some(0.7)).0, Source::Grammar);
        assert_eq!(rule.choose(&e, Some(0.8)).0, Source::Whisper);
        // Below the ordinary least confidence nothing switches.
        assert_eq!(RULE.choose(&e, Some(0.4)).0, Source::Grammar);
        // Whisper must not find the grammar sentence likelier than its own.
        let mut closer = e.clone();
        closer.grammar.as_mut().unwrap().whisper_score = Some(-0.2);
        assert_eq!(RULE.choose(&closer, Some(0.9)).0, Source::Grammar);
    }

    #[test]
    fn whisper_meaning_nothing_wins_only_when_it_finds_its_text_far_likelier() {
        let near = both(
            grammar(
                "nobody by that name lives here",
                IntentKind::WrongNumber,
                -0.6,
            ),
            whisper("nobody by the name lines here", IntentKind::Unknown, -0.4),
        );
        assert_eq!(RULE.choose(&near, Some(0.9)).0, Source::Grammar);
        let far = both(
            grammar("call me later", IntentKind::CallbackLater, -3.5),
            whisper("hold on let me turn the tv down", IntentKind::Unknown, -0.3),
        );
        assert_eq!(
            RULE.choose(&far, Some(0.9)),
            (Source::Whisper, Some(IntentKind::Unknown))
        );
    }

    #[test]
    fn one_engine_alone_or_none_decides_by_itself() {
        let g = grammar("yes speaking", IntentKind::IdentityConfirmed, -0.5);
        let mut silent = whisper("", IntentKind::Unknown, 0.0);
        silent.no_speech = 0.9;
        assert_eq!(
            RULE.choose(&both(g.clone(), silent.clone()), None).0,
            Source::Grammar
        );
        let only_w = Evidence {
            grammar: None,
            whisper: Some(whisper("who is this", IntentKind::WhoIsCalling, -0.3)),
        };
        assert_eq!(RULE.choose(&only_w, Some(0.9)).0, Source::Whisper);
        let none = Evidence {
            grammar: Some(grammar("", IntentKind::Unknown, -1.0)),
            whisper: Some(silent),
        };
        let v = RULE.decide(&none, None, &HYBRID);
        assert_eq!(
            (v.source, v.text.as_str(), v.confidence),
            (Source::Nothing, "", 0.0)
        );
    }
}
