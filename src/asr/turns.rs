//! Which phrases make a listening turn's grammar: the turn's listen phrases
//! from the script, the lexicon phrases of the intents it expects (with
//! their spoken contractions), the reply grammar's rules for those intents,
//! and glue words. Calls build their PocketSphinx grammars with
//! [`turn_grammar_with`]; the speech evaluation compares the modes.
//!
//! Owns: [`GrammarMode`] and the phrase selection. Never touches a decoder,
//! audio or the classifier; reads nothing from disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::jsgf::ReplyGrammar;
use super::sphinx::{SphinxConfig, SphinxSearch, WIDE_BEAMS};
use crate::intent::lexicon::EntryClass;
use crate::intent::{IntentKind, Lexicon};

/// Which phrases make a turn's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrammarMode {
    /// Only `[listen.<turn>]` (what the dialogue sends today).
    Listen,
    /// `[listen.<turn>]` plus every lexicon phrase and word (`[intent.*]`)
    /// whose words are in the dictionary, each also with its contractions
    /// ("do not owe" and "don't owe"), since people say those.
    ListenLexicon,
    /// [`GrammarMode::Listen`] with [`glue_words`] around and between phrases.
    ListenGlue,
    /// [`GrammarMode::ListenLexicon`] with [`glue_words`] around and between phrases.
    ListenLexiconGlue,
    /// The phrases of [`GrammarMode::ListenLexicon`] as a trigram model
    /// ([`SphinxSearch::Ngram`]), the turn's own phrases weighing
    /// [`TURN_PHRASE_WEIGHT`] times more.
    Ngram,
    /// `[listen.<turn>]` plus the reply grammar's rule for each intent the
    /// turn expects and `<other>` ([`crate::asr::jsgf`],
    /// `prompts/en.replies.jsgf`), with its `<lead>`/`<tail>` words: whole
    /// replies as JSGF.
    Replies,
    /// [`GrammarMode::Replies`] plus the lexicon's phrases.
    RepliesLexicon,
    /// A trigram model of the listen phrases and sentences sampled from the
    /// same reply-grammar rules.
    RepliesNgram,
}

impl GrammarMode {
    /// Every mode, in report order.
    pub const ALL: [GrammarMode; 8] = [
        GrammarMode::Listen,
        GrammarMode::ListenLexicon,
        GrammarMode::ListenGlue,
        GrammarMode::ListenLexiconGlue,
        GrammarMode::Ngram,
        GrammarMode::Replies,
        GrammarMode::RepliesLexicon,
        GrammarMode::RepliesNgram,
    ];

    /// Short name for reports and `SPEECH_MODES`.
    pub fn name(self) -> &'static str {
        match self {
            GrammarMode::Listen => "listen",
            GrammarMode::ListenLexicon => "listen+lexicon",
            GrammarMode::ListenGlue => "listen+glue",
            GrammarMode::ListenLexiconGlue => "listen+lexicon+glue",
            GrammarMode::Ngram => "ngram",
            GrammarMode::Replies => "replies",
            GrammarMode::RepliesLexicon => "replies+lexicon",
            GrammarMode::RepliesNgram => "replies-ngram",
        }
    }

    /// The mode named `name`.
    pub fn parse(name: &str) -> Option<GrammarMode> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the lexicon's phrases join the turn's.
    pub fn with_lexicon(self) -> bool {
        matches!(
            self,
            GrammarMode::ListenLexicon
                | GrammarMode::ListenLexiconGlue
                | GrammarMode::Ngram
                | GrammarMode::RepliesLexicon
        )
    }

    /// Whether the reply grammar's rules join the turn's phrases.
    pub fn with_replies(self) -> bool {
        matches!(
            self,
            GrammarMode::Replies | GrammarMode::RepliesLexicon | GrammarMode::RepliesNgram
        )
    }

    /// Whether the decoder needs glue words ([`SphinxConfig::glue`]).
    pub fn with_glue(self) -> bool {
        matches!(
            self,
            GrammarMode::ListenGlue | GrammarMode::ListenLexiconGlue
        )
    }

    /// The decoder settings for this mode; `wide` adds [`WIDE_BEAMS`];
    /// `replies` is the reply grammar the `replies` modes use.
    pub fn sphinx_config(
        self,
        lexicon: &Lexicon,
        wide: bool,
        replies: Option<Arc<ReplyGrammar>>,
    ) -> SphinxConfig {
        let mut c = SphinxConfig::default();
        if self.with_glue() {
            c.glue = glue_words(lexicon);
        }
        if matches!(self, GrammarMode::Ngram | GrammarMode::RepliesNgram) {
            c.search = SphinxSearch::Ngram;
        }
        if self.with_replies() {
            c.replies = replies;
        }
        if wide {
            c.extra_args
                .extend(WIDE_BEAMS.iter().map(|s| s.to_string()));
        }
        c
    }
}

/// Dates, times and amounts people put around the phrases (with the month
/// names and the numbers one to twelve, added from where they are defined) ("next friday",
/// "at the end of the month", "in two weeks").
const TIME_WORDS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
    "tonight",
    "yesterday",
    "morning",
    "afternoon",
    "evening",
    "night",
    "week",
    "weeks",
    "weekend",
    "month",
    "months",
    "day",
    "days",
    "hour",
    "hours",
    "minutes",
    "year",
    "next",
    "last",
    "end",
    "soon",
    "later",
    "ago",
    "o'clock",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "tenth",
    "fifteenth",
    "twentieth",
    "thirtieth",
    "twenty",
    "thirty",
    "half",
];

/// Glue for the grammar: the lexicon's function words, its one-word
/// fillers, the spoken contractions of its rewrites ("i'm", "don't") and
/// date/time words. These carry no intent on their own, so letting them
/// surround a phrase costs the classifier nothing.
pub fn glue_words(lexicon: &Lexicon) -> Vec<String> {
    let mut g: Vec<String> = lexicon.function_words.iter().cloned().collect();
    g.extend(
        lexicon
            .fillers
            .iter()
            .filter(|f| f.len() == 1)
            .map(|f| f[0].clone()),
    );
    g.extend(
        lexicon
            .rewrites
            .keys()
            .filter(|k| k.contains('\''))
            .cloned(),
    );
    g.extend(TIME_WORDS.iter().map(|w| w.to_string()));
    g.extend(
        crate::intent::dates::EN_MONTHS
            .iter()
            .map(|w| w.to_string()),
    );
    g.extend(
        crate::account::EN_NUMBER_WORDS[1..13]
            .iter()
            .map(|w| w.to_string()),
    );
    g.sort();
    g.dedup();
    g
}

/// Lower-case words as the grammar and dictionary see them.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Two-word expansions of the lexicon's rewrites mapped back to their
/// spoken contraction ("do not" -> "don't"); when several contract to the
/// same words, the one sharing the first letter wins ("isn't" over "ain't").
fn contractions(lexicon: &Lexicon) -> HashMap<Vec<String>, String> {
    let mut out: HashMap<Vec<String>, String> = HashMap::new();
    let mut keys: Vec<(&String, &Vec<String>)> = lexicon
        .rewrites
        .iter()
        .filter(|(k, v)| k.contains('\'') && v.len() == 2)
        .collect();
    keys.sort();
    for (k, v) in keys {
        let same = |c: &str| c.chars().next() == v[0].chars().next();
        match out.get(v) {
            Some(prev) if same(prev) || !same(k) => {}
            _ => {
                out.insert(v.clone(), k.clone());
            }
        }
    }
    out
}

/// `phrase` with every contractible word pair contracted, if any was.
fn contracted(phrase: &[String], map: &HashMap<Vec<String>, String>) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(phrase.len());
    let mut i = 0;
    let mut changed = false;
    while i < phrase.len() {
        if i + 1 < phrase.len() {
            if let Some(c) = map.get(&phrase[i..i + 2]) {
                out.push(c.clone());
                i += 2;
                changed = true;
                continue;
            }
        }
        out.push(phrase[i].clone());
        i += 1;
    }
    changed.then_some(out)
}

/// The grammar for `turn`: its listen phrases and (by `mode`) the lexicon's
/// phrases for the intents in `expects` (empty: every intent),
/// deduplicated in order; phrases with a word `known` rejects are left out
/// (returned second, so a report can name them).
pub fn turn_grammar(
    listen: &BTreeMap<String, Vec<String>>,
    lexicon: &Lexicon,
    turn: &str,
    expects: &[IntentKind],
    mode: GrammarMode,
    known: &dyn Fn(&str) -> bool,
) -> (Vec<String>, Vec<String>) {
    turn_grammar_with(listen, lexicon, None, turn, expects, mode, known)
}

/// [`turn_grammar`] with a reply grammar: in the `replies` modes the
/// phrases end with `<intent>` for each intent the turn expects (every
/// intent when `expects` is empty) that `replies` has a rule for, then
/// `<other>` (replies that mean nothing, heard as themselves).
pub fn turn_grammar_with(
    listen: &BTreeMap<String, Vec<String>>,
    lexicon: &Lexicon,
    replies: Option<&ReplyGrammar>,
    turn: &str,
    expects: &[IntentKind],
    mode: GrammarMode,
    known: &dyn Fn(&str) -> bool,
) -> (Vec<String>, Vec<String>) {
    let mut cands: Vec<Vec<String>> = listen
        .get(turn)
        .into_iter()
        .flatten()
        .map(|p| words(p))
        .collect();
    if mode.with_lexicon() {
        let map = contractions(lexicon);
        for e in &lexicon.entries {
            if !expects.is_empty() && !expects.contains(&e.kind) {
                continue;
            }
            if matches!(e.class, EntryClass::Phrase | EntryClass::Word) {
                let w = words(&e.text);
                if let Some(c) = contracted(&w, &map) {
                    cands.push(c);
                }
                cands.push(w);
            }
        }
    }
    let (mut keep, mut dropped) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for c in cands {
        if c.is_empty() {
            continue;
        }
        let p = c.join(" ");
        if !seen.insert(p.clone()) {
            continue;
        }
        if c.iter().all(|w| known(w)) {
            keep.push(p);
        } else {
            dropped.push(p);
        }
    }
    if let (true, Some(g)) = (mode.with_replies(), replies) {
        let wanted = |k: IntentKind| expects.is_empty() || expects.contains(&k);
        keep.extend(
            IntentKind::PRIORITY
                .iter()
                .filter(|k| wanted(**k) && g.has_rule(k.as_str()))
                .map(|k| format!("<{}>", k.as_str())),
        );
        if g.has_rule(OTHER_RULE) {
            keep.push(format!("<{OTHER_RULE}>"));
        }
    }
    if mode == GrammarMode::Ngram {
        let own: Vec<String> = keep
            .iter()
            .filter(|p| {
                listen
                    .get(turn)
                    .is_some_and(|l| l.iter().any(|q| words(q).join(" ") == **p))
            })
            .cloned()
            .collect();
        for _ in 1..turn_phrase_weight() {
            keep.extend(own.iter().cloned());
        }
    }
    (keep, dropped)
}

/// The grammar of every listen turn as calls send it to PocketSphinx: the
/// turn's phrases, the lexicon phrases of the intents it expects, and (when
/// the language has a reply grammar) those intents' whole-reply rules
/// ([`GrammarMode::Replies`]; [`GrammarMode::ListenLexicon`] without one);
/// words `known` rejects are left out.
pub fn call_grammars(
    listen: &BTreeMap<String, Vec<String>>,
    expects: &BTreeMap<String, Vec<IntentKind>>,
    lexicon: &Lexicon,
    replies: Option<&ReplyGrammar>,
    known: &dyn Fn(&str) -> bool,
) -> HashMap<String, Vec<String>> {
    let mode = if replies.is_some() {
        GrammarMode::Replies
    } else {
        GrammarMode::ListenLexicon
    };
    listen
        .keys()
        .map(|turn| {
            let expected = expects.get(turn).map(Vec::as_slice).unwrap_or(&[]);
            let phrases =
                turn_grammar_with(listen, lexicon, replies, turn, expected, mode, known).0;
            (turn.clone(), phrases)
        })
        .collect()
}

/// The reply-grammar rule of replies that carry no intent ("hold on", "hello").
pub const OTHER_RULE: &str = "other";

/// How many times a turn's own listen phrases count in its n-gram model
/// against once for every lexicon phrase.
pub const TURN_PHRASE_WEIGHT: usize = 3;

fn turn_phrase_weight() -> usize {
    std::env::var("DUECALL_NGRAM_TURN_WEIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TURN_PHRASE_WEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::sphinx::TAIL_RULE;
    use crate::intent::eval::eval_today;
    use crate::intent::Classifier;
    use chrono::NaiveTime;
    use std::path::Path;

    /// What the reply grammar lets PocketSphinx hear must mean what the rule
    /// says: every sampled sentence of `<intent>` (with lead and tail words)
    /// classifies as that intent, or the grammar would steer a reply to the
    /// wrong route. `<other>` sentences must mean nothing.
    #[test]
    fn every_sentence_the_reply_grammar_makes_means_its_rules_intent() {
        use crate::asr::jsgf::{Sampler, EN_REPLIES};
        let g = ReplyGrammar::parse(EN_REPLIES, "en.replies.jsgf").unwrap();
        let classifier = Classifier::new(lexicon());
        let now = NaiveTime::from_hms_opt(10, 0, 0);
        let mut rng = Sampler::new(11);
        let mut wrong: Vec<String> = Vec::new();
        let mut n = 0;
        for kind in IntentKind::PRIORITY {
            let rule = if kind == IntentKind::Unknown {
                OTHER_RULE
            } else {
                kind.as_str()
            };
            if !g.has_rule(rule) {
                continue;
            }
            for i in 0..300 {
                // Fillers, not the lead's "yes"/"no", which may change the meaning.
                let mut s = if i % 3 == 1 {
                    g.sample("filler", &mut rng)
                } else {
                    vec![]
                };
                s.extend(g.sample(rule, &mut rng));
                if i % 3 == 2 {
                    s.extend(g.sample(TAIL_RULE, &mut rng));
                }
                let text = s.join(" ");
                let got = classifier.classify(&text, eval_today(), now).kind;
                n += 1;
                // A lead "yes"/"no" before an identity reply is still that reply.
                if got != kind {
                    wrong.push(format!("{kind:?} <- {text:?} ({got:?})"));
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        eprintln!(
            "{} of {n} sampled sentences mean something else:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        assert!(wrong.is_empty());
    }

    fn lexicon() -> Lexicon {
        crate::intent::cli::load_lexicon(
            "en",
            Some(Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/prompts/en.toml"
            ))),
        )
        .expect("lexicon")
    }

    #[test]
    fn lexicon_grammar_adds_contractions_and_leaves_out_unknown_words() {
        let lex = lexicon();
        let mut listen = BTreeMap::new();
        listen.insert(
            "reminder".to_string(),
            vec!["I already paid".to_string(), "zorblatt".to_string()],
        );
        let known = |w: &str| w != "zorblatt";
        let (g, dropped) = turn_grammar(
            &listen,
            &lex,
            "reminder",
            &[],
            GrammarMode::ListenLexicon,
            &known,
        );
        assert_eq!(g[0], "i already paid");
        assert!(
            g.contains(&"do not owe".to_string()) && g.contains(&"don't owe".to_string()),
            "{g:?}"
        );
        assert_eq!(dropped, vec!["zorblatt"]);
        let (only, _) = turn_grammar(&listen, &lex, "reminder", &[], GrammarMode::Listen, &known);
        assert_eq!(only, vec!["i already paid"]);
    }

    #[test]
    fn turn_grammar_takes_only_the_lexicon_phrases_of_the_intents_the_turn_expects() {
        let lex = lexicon();
        let mut listen = BTreeMap::new();
        listen.insert("identity".to_string(), vec!["yes speaking".to_string()]);
        let known = |_: &str| true;
        let expects = [IntentKind::IdentityConfirmed, IntentKind::WrongNumber];
        let (g, _) = turn_grammar(
            &listen,
            &lex,
            "identity",
            &expects,
            GrammarMode::ListenLexicon,
            &known,
        );
        let (all, _) = turn_grammar(
            &listen,
            &lex,
            "identity",
            &[],
            GrammarMode::ListenLexicon,
            &known,
        );
        assert_eq!(g[0], "yes speaking", "the turn's own phrases stay");
        assert!(g.contains(&"wrong number".to_string()), "{g:?}");
        assert!(!g.iter().any(|p| p.contains("already paid")), "{g:?}");
        assert!(all.iter().any(|p| p.contains("already paid")));
        assert!(g.len() * 3 < all.len(), "{} of {}", g.len(), all.len());
    }
}
