//! The JSGF text a turn's phrases compile to: plain phrase lists, phrases
//! with glue words, a weighted garbage loop, and `<rule>` references into
//! the reply grammar; and the sample sentences an n-gram search trains on.
//!
//! Owns: the grammar text and its garbage words. Never touches a decoder
//! or the dictionary.

use std::collections::HashSet;

use crate::asr::jsgf::{ReplyGrammar, Sampler};

/// Common English words looped as the garbage alternative: speech far from
/// every phrase is matched by these instead of being forced onto a phrase.
/// (A loop of single phones was tried first: it beat the phrases on every
/// clip, because phones fit any audio better than whole words.)
const GARBAGE_WORDS: &[&str] = &[
    "the", "a", "to", "of", "and", "it", "is", "what", "time", "how", "are", "you", "where",
    "when", "why", "who", "this", "that", "with", "for", "on", "in", "at", "be", "have", "do",
    "say", "get", "make", "go", "know", "think", "see", "come", "look", "find", "give", "tell",
    "day", "today", "weather", "good", "nice", "there", "here", "they", "we", "she", "he", "his",
    "her", "my", "your", "our", "an", "as", "but", "or", "so", "if", "not", "all", "about", "up",
    "out", "just", "like", "very", "well", "okay", "hello", "can", "would", "should", "could",
    "did", "was", "were", "been", "one", "two", "three", "new", "old", "big", "little", "home",
    "car", "dog", "food", "music", "movie", "game", "water", "city",
];

/// The reply-grammar rule a lead phrase may start with ("um", "well", "yes").
pub const LEAD_RULE: &str = "lead";
/// The reply-grammar rule a reply may end with ("please", "right now").
pub const TAIL_RULE: &str = "tail";
/// Sentences sampled from each reply-grammar rule to train a turn's n-gram model.
pub(super) const NGRAM_SAMPLES_PER_RULE: usize = 400;

/// The rule name of a `<rule>` phrase.
pub fn rule_ref(phrase: &str) -> Option<&str> {
    phrase
        .trim()
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .filter(|r| !r.is_empty() && !r.contains(char::is_whitespace))
}

/// Seeded sample sentences of `rules`, a lead word before one in four and
/// a tail word after one in four, as n-gram training text.
pub(super) fn sample_replies(
    g: &ReplyGrammar,
    rules: &[String],
    per_rule: usize,
) -> Vec<Vec<String>> {
    let mut rng = Sampler::new(0x5eed);
    let mut out = Vec::with_capacity(rules.len() * per_rule);
    for r in rules {
        for i in 0..per_rule {
            let mut s = if i % 4 == 1 {
                g.sample(LEAD_RULE, &mut rng)
            } else {
                Vec::new()
            };
            s.extend(g.sample(r, &mut rng));
            if i % 4 == 2 {
                s.extend(g.sample(TAIL_RULE, &mut rng));
            }
            if !s.is_empty() {
                out.push(s);
            }
        }
    }
    out
}

/// The garbage words usable with these phrases (none of the phrases' own words).
pub(super) fn garbage_words(phrases: &[Vec<String>]) -> Vec<String> {
    let used: HashSet<&str> = phrases.iter().flatten().map(String::as_str).collect();
    GARBAGE_WORDS
        .iter()
        .filter(|w| !used.contains(**w))
        .map(|w| w.to_string())
        .collect()
}

/// Builds the JSGF text: the phrases as one rule, and a loop of common
/// words with a low weight, so speech far from every phrase goes to
/// garbage instead of being forced onto the nearest phrase.
pub fn build_jsgf(phrases: &[Vec<String>], garbage_weight: f32) -> String {
    let alts: Vec<String> = phrases.iter().map(|p| p.join(" ")).collect();
    let garbage = garbage_words(phrases);
    if garbage.is_empty() || garbage_weight <= 0.0 {
        return format!(
            "#JSGF V1.0;\ngrammar duecall;\npublic <utt> = {};\n",
            alts.join(" | ")
        );
    }
    format!(
        "#JSGF V1.0;\ngrammar duecall;\npublic <utt> = /1.0/ <phrase> | /{gw}/ <garbage>;\n<phrase> = {};\n<garbage> = ({})+;\n",
        alts.join(" | "),
        garbage.join(" | "),
        gw = garbage_weight.max(1e-4)
    )
}

/// Builds the JSGF text with glue words: any glue before the first phrase,
/// then phrases and glue in any order.
pub fn build_jsgf_glued(phrases: &[Vec<String>], glue: &[String]) -> String {
    let alts: Vec<String> = phrases.iter().map(|p| p.join(" ")).collect();
    format!(
        "#JSGF V1.0;\ngrammar duecall;\npublic <utt> = <glue>* <phrase> (<phrase> | <glue>)*;\n<phrase> = {};\n<glue> = {};\n",
        alts.join(" | "),
        glue.join(" | ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsgf_has_phrases_and_weighted_garbage_loop() {
        let g = build_jsgf(&[vec!["wrong".into(), "number".into()]], 0.05);
        assert!(g.contains("<phrase> = wrong number;"), "{g}");
        assert!(
            g.contains("/0.05/ <garbage>") && g.contains("the | a | to"),
            "{g}"
        );
        assert!(!build_jsgf(&[vec!["the".into(), "end".into()]], 0.05).contains("| the |"));
    }

    #[test]
    fn rule_refs_are_single_names_in_angle_brackets() {
        assert_eq!(rule_ref(" <promise_to_pay> "), Some("promise_to_pay"));
        assert_eq!(rule_ref("<two words>"), None);
        assert_eq!(rule_ref("<>"), None);
        assert_eq!(rule_ref("wrong number"), None);
    }
}
