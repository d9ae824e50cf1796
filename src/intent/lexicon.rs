//! The intent lexicon, read from `prompts/<lang>.toml` (`[intent]` and
//! `[intent.<name>]` tables).
//!
//! Owns the schema and its validation: a contact centre extends the words,
//! phrases, patterns, negations and DTMF digits in the TOML file without a
//! rebuild, and a mistake is reported with the key that holds it. Never
//! classifies anything itself.
//!
//! Schema (all lists of strings unless noted; every key optional):
//!
//! ```toml
//! [intent]
//! fillers = ["um", "uh"]          # dropped before matching ("um I paid")
//! function_words = ["i", "the"]   # not counted when measuring coverage
//! negation_words = ["not", "never"]
//! scope_breakers = ["but", "i"]   # a negation does not reach past these
//! negation_scope = 3              # tokens a negation reaches forward
//! pattern_gap = 3                 # tokens one `*` in a pattern may skip
//! fuzzy = true                    # allow one-typo / truncated word matches
//! rewrites = { "haven't" = "have not" }   # whole-token rewrites
//! weights = { phrase = 0.9, pattern = 0.85, word = 0.6, weak = 0.35 }
//!
//! [intent.already_paid]
//! phrases = ["already paid"]      # consecutive tokens
//! words = ["paid"]                # one token, weaker evidence
//! weak = ["receipt"]              # counts only together with other evidence
//! patterns = ["paid * already", "(sent|transferred) * money"]  # `*` gap, `(a|b)` choice, {date} {time}
//! negations = ["not yet"]         # if one matches, this intent is ruled out
//! negatable = true                # a negation word before a match cancels it
//! dtmf_before = "1"               # DTMF digit before the right person is confirmed
//! dtmf_after = "1"                # DTMF digit after
//! slot_alone = 0.6                # promise_to_pay/callback_later: a bare date/time is this intent
//! ```

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::text::tokenize_entry;
use super::IntentKind;

/// Errors of the intent layer: the lexicon file, labelled data, output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntentError {
    /// The lexicon file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}: not valid TOML: {message}")]
    Toml {
        /// The file (or "<string>").
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key has a value the lexicon cannot use.
    #[error("{key}: {problem}")]
    Key {
        /// The full key, e.g. `intent.hardship.dtmf_after`.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// A labelled utterance file has a bad row.
    #[error("{source_name} line {line}: {problem}")]
    Data {
        /// The file or name of the data.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// When a DTMF digit is pressed: the meaning of "1" changes once the right
/// person is confirmed (COLLECTIONS.md, the DTMF menu).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfContext {
    /// Menu before identity: 1 = it's me, 2 = it's not, 0 = a person.
    BeforeIdentity,
    /// Menu after identity: 1 paid, 2 will pay, 3 hardship, 4 wrong number, 0 agent.
    AfterIdentity,
}

/// How strongly one kind of entry counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// A phrase of consecutive tokens.
    pub phrase: f32,
    /// A pattern with gaps / choices / slots.
    pub pattern: f32,
    /// A single word.
    pub word: f32,
    /// A weak word: needs other evidence to pass the threshold.
    pub weak: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            phrase: 0.9,
            pattern: 0.85,
            word: 0.6,
            weak: 0.35,
        }
    }
}

/// Kind of lexicon entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryClass {
    /// Consecutive tokens.
    Phrase,
    /// Gaps, choices, slots.
    Pattern,
    /// One token.
    Word,
    /// One weak token.
    Weak,
    /// Rules the intent out.
    Veto,
}

/// One element of a compiled entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Any of these token sequences.
    Alt(Vec<Vec<String>>),
    /// Skip up to this many tokens.
    Gap(usize),
    /// A date expression starts here.
    Date,
    /// A clock time / part of day / delay starts here.
    Time,
}

/// A compiled lexicon entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The intent it is evidence for.
    pub kind: IntentKind,
    /// Kind of entry.
    pub class: EntryClass,
    /// The text as written in the TOML (used in reasons).
    pub text: String,
    /// Compiled pieces.
    pub pieces: Vec<Piece>,
}

/// Per-intent options besides entries.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentOptions {
    /// A negation word before a match cancels it.
    pub negatable: bool,
    /// Confidence given by a bare date/time (promise_to_pay, callback_later).
    pub slot_alone: Option<f32>,
}

/// The lexicon for one language.
#[derive(Debug, Clone, PartialEq)]
pub struct Lexicon {
    /// Language code ("en", "zh").
    pub lang: String,
    /// Evidence and veto entries, in file order.
    pub entries: Vec<Entry>,
    /// Filler token sequences.
    pub fillers: Vec<Vec<String>>,
    /// Tokens ignored for coverage.
    pub function_words: HashSet<String>,
    /// Negation token sequences.
    pub negation_words: Vec<Vec<String>>,
    /// Tokens that end a negation's reach.
    pub scope_breakers: Vec<Vec<String>>,
    /// How many content tokens a negation reaches.
    pub negation_scope: usize,
    /// Tokens a `*` may skip.
    pub pattern_gap: usize,
    /// Whether one-typo / truncated words match.
    pub fuzzy: bool,
    /// Whole-token rewrites applied to text and entries alike.
    pub rewrites: HashMap<String, Vec<String>>,
    /// Entry weights.
    pub weights: Weights,
    /// DTMF digit -> intent, per menu.
    pub dtmf: HashMap<(DtmfContext, char), IntentKind>,
    /// Per-intent options.
    pub options: HashMap<IntentKind, IntentOptions>,
    /// Every token in any entry (such tokens only ever match exactly).
    pub vocabulary: HashSet<String>,
}

const GLOBAL_KEYS: [&str; 9] = [
    "fillers",
    "function_words",
    "negation_words",
    "scope_breakers",
    "negation_scope",
    "pattern_gap",
    "fuzzy",
    "rewrites",
    "weights",
];
const INTENT_KEYS: [&str; 9] = [
    "phrases",
    "words",
    "weak",
    "patterns",
    "negations",
    "negatable",
    "dtmf_before",
    "dtmf_after",
    "slot_alone",
];

fn key_err(key: impl Into<String>, problem: impl Into<String>) -> IntentError {
    IntentError::Key {
        key: key.into(),
        problem: problem.into(),
    }
}

fn str_list(v: &toml::Value, key: &str) -> Result<Vec<String>, IntentError> {
    let arr = v
        .as_array()
        .ok_or_else(|| key_err(key, "expected a list of strings"))?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| key_err(format!("{key}[{i}]"), "expected a string"))
        })
        .collect()
}

fn number(v: &toml::Value, key: &str) -> Result<f64, IntentError> {
    v.as_float()
        .or_else(|| v.as_integer().map(|i| i as f64))
        .ok_or_else(|| key_err(key, "expected a number"))
}

fn unit_weight(v: &toml::Value, key: &str) -> Result<f32, IntentError> {
    let x = number(v, key)?;
    if !(0.0..=1.0).contains(&x) {
        return Err(key_err(
            key,
            format!("expected a number from 0 to 1, got {x}"),
        ));
    }
    Ok(x as f32)
}

impl Lexicon {
    /// Reads the lexicon from a prompts file; the language is the file stem
    /// unless `[meta] language` says otherwise.
    pub fn load(path: &Path) -> Result<Lexicon, IntentError> {
        let text = std::fs::read_to_string(path).map_err(|source| IntentError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("en");
        Self::parse(&text, stem, &path.display().to_string())
    }

    /// Parses the `[intent]` tables of a prompts file's text.
    pub fn from_toml_str(text: &str, lang: &str) -> Result<Lexicon, IntentError> {
        Self::parse(text, lang, "<string>")
    }

    fn parse(text: &str, lang: &str, origin: &str) -> Result<Lexicon, IntentError> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| IntentError::Toml {
                path: origin.to_string(),
                message: e.to_string(),
            })?;
        let lang = doc
            .get("meta")
            .and_then(|m| m.get("language"))
            .and_then(|l| l.as_str())
            .unwrap_or(lang)
            .to_string();
        let intent = match doc.get("intent") {
            Some(v) => v
                .as_table()
                .ok_or_else(|| key_err("intent", "expected a table"))?,
            None => {
                return Err(key_err(
                    "intent",
                    "missing: the file has no [intent.<name>] tables",
                ))
            }
        };
        let mut lex = Lexicon {
            lang,
            entries: Vec::new(),
            fillers: Vec::new(),
            function_words: HashSet::new(),
            negation_words: Vec::new(),
            scope_breakers: Vec::new(),
            negation_scope: 3,
            pattern_gap: 3,
            fuzzy: true,
            rewrites: HashMap::new(),
            weights: Weights::default(),
            dtmf: HashMap::new(),
            options: HashMap::new(),
            vocabulary: HashSet::new(),
        };
        // rewrites first: every other entry is tokenised through them
        if let Some(v) = intent.get("rewrites") {
            let t = v.as_table().ok_or_else(|| {
                key_err("intent.rewrites", "expected a table of \"from\" = \"to\"")
            })?;
            for (from, to) in t {
                let key = format!("intent.rewrites.{from}");
                let to = to
                    .as_str()
                    .ok_or_else(|| key_err(&key, "expected a string"))?;
                let from_toks = tokenize_entry(from, &HashMap::new());
                if from_toks.len() != 1 {
                    return Err(key_err(&key, "the left side must be one word"));
                }
                lex.rewrites
                    .insert(from_toks[0].clone(), tokenize_entry(to, &HashMap::new()));
            }
        }
        // settings before intents: patterns use pattern_gap, entries use rewrites
        for (k, v) in intent {
            let key = format!("intent.{k}");
            if IntentKind::parse(k).is_some() {
                continue;
            }
            match k.as_str() {
                "fillers" => lex.fillers = lex.seqs(v, &key)?,
                "function_words" => {
                    lex.function_words = lex.seqs(v, &key)?.into_iter().flatten().collect();
                }
                "negation_words" => lex.negation_words = lex.seqs(v, &key)?,
                "scope_breakers" => lex.scope_breakers = lex.seqs(v, &key)?,
                "negation_scope" => lex.negation_scope = number(v, &key)?.clamp(0.0, 20.0) as usize,
                "pattern_gap" => lex.pattern_gap = number(v, &key)?.clamp(0.0, 20.0) as usize,
                "fuzzy" => {
                    lex.fuzzy = v
                        .as_bool()
                        .ok_or_else(|| key_err(&key, "expected true or false"))?
                }
                "rewrites" => {}
                "weights" => {
                    let t = v
                        .as_table()
                        .ok_or_else(|| key_err(&key, "expected a table"))?;
                    for (wk, wv) in t {
                        let wkey = format!("{key}.{wk}");
                        let w = unit_weight(wv, &wkey)?;
                        match wk.as_str() {
                            "phrase" => lex.weights.phrase = w,
                            "pattern" => lex.weights.pattern = w,
                            "word" => lex.weights.word = w,
                            "weak" => lex.weights.weak = w,
                            _ => {
                                return Err(key_err(
                                    wkey,
                                    "unknown weight; expected phrase, pattern, word or weak",
                                ))
                            }
                        }
                    }
                }
                _ => {
                    return Err(key_err(
                        key,
                        format!(
                            "not an intent name nor a lexicon setting (intents: {}; settings: {})",
                            IntentKind::PRIORITY[..12]
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            GLOBAL_KEYS.join(", ")
                        ),
                    ))
                }
            }
        }
        for (k, v) in intent {
            let key = format!("intent.{k}");
            if let Some(kind) = IntentKind::parse(k) {
                if kind == IntentKind::Unknown {
                    return Err(key_err(
                        key,
                        "unknown is what is left when nothing matches; it has no lexicon",
                    ));
                }
                let t = v
                    .as_table()
                    .ok_or_else(|| key_err(&key, "expected a table"))?;
                lex.add_intent(kind, t, &key)?;
            }
        }
        for e in &lex.entries {
            for piece in &e.pieces {
                if let Piece::Alt(alts) = piece {
                    lex.vocabulary.extend(alts.iter().flatten().cloned());
                }
            }
        }
        if lex.entries.iter().all(|e| e.class == EntryClass::Veto) {
            return Err(key_err(
                "intent",
                "no intent has any phrases, words or patterns",
            ));
        }
        Ok(lex)
    }

    fn seqs(&self, v: &toml::Value, key: &str) -> Result<Vec<Vec<String>>, IntentError> {
        let mut out = Vec::new();
        for (i, s) in str_list(v, key)?.iter().enumerate() {
            let toks = tokenize_entry(s, &self.rewrites);
            if toks.is_empty() {
                return Err(key_err(format!("{key}[{i}]"), "empty after normalising"));
            }
            out.push(toks);
        }
        Ok(out)
    }

    fn add_intent(
        &mut self,
        kind: IntentKind,
        t: &toml::Table,
        key: &str,
    ) -> Result<(), IntentError> {
        let mut opts = IntentOptions {
            negatable: true,
            slot_alone: None,
        };
        for (k, v) in t {
            let ekey = format!("{key}.{k}");
            let class = match k.as_str() {
                "phrases" => Some(EntryClass::Phrase),
                "words" => Some(EntryClass::Word),
                "weak" => Some(EntryClass::Weak),
                "patterns" => Some(EntryClass::Pattern),
                "negations" => Some(EntryClass::Veto),
                _ => None,
            };
            if let Some(class) = class {
                for (i, s) in str_list(v, &ekey)?.into_iter().enumerate() {
                    let ikey = format!("{ekey}[{i}]");
                    let pieces = if class == EntryClass::Pattern || class == EntryClass::Veto {
                        self.compile_pattern(&s, &ikey)?
                    } else {
                        let toks = tokenize_entry(&s, &self.rewrites);
                        if toks.is_empty() {
                            return Err(key_err(ikey, "empty after normalising"));
                        }
                        if matches!(class, EntryClass::Word | EntryClass::Weak)
                            && toks.len() != 1
                            && self.lang != "zh"
                        {
                            return Err(key_err(
                                ikey,
                                format!("\"{s}\" is several words: put it in phrases"),
                            ));
                        }
                        vec![Piece::Alt(vec![toks])]
                    };
                    self.entries.push(Entry {
                        kind,
                        class,
                        text: s,
                        pieces,
                    });
                }
                continue;
            }
            match k.as_str() {
                "negatable" => {
                    opts.negatable = v
                        .as_bool()
                        .ok_or_else(|| key_err(&ekey, "expected true or false"))?
                }
                "slot_alone" => opts.slot_alone = Some(unit_weight(v, &ekey)?),
                "dtmf_before" | "dtmf_after" => {
                    let ctx = if k == "dtmf_before" {
                        DtmfContext::BeforeIdentity
                    } else {
                        DtmfContext::AfterIdentity
                    };
                    let s = v.as_str().ok_or_else(|| {
                        key_err(&ekey, "expected a one-digit string such as \"1\"")
                    })?;
                    let mut cs = s.chars();
                    let digit = match (cs.next(), cs.next()) {
                        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => c,
                        _ => {
                            return Err(key_err(
                                &ekey,
                                format!("expected one of 0-9, * or #, got \"{s}\""),
                            ))
                        }
                    };
                    if let Some(other) = self.dtmf.insert((ctx, digit), kind) {
                        return Err(key_err(
                            ekey,
                            format!("digit {digit} is already used by {}", other.as_str()),
                        ));
                    }
                }
                _ => {
                    return Err(key_err(
                        ekey,
                        format!("unknown key; expected one of {}", INTENT_KEYS.join(", ")),
                    ))
                }
            }
        }
        self.options.insert(kind, opts);
        Ok(())
    }

    /// Compiles "word (a|b) * {date}" into pieces.
    fn compile_pattern(&self, s: &str, key: &str) -> Result<Vec<Piece>, IntentError> {
        let mut pieces = Vec::new();
        // keep "(a|b c)" groups whole while splitting on spaces
        let mut parts: Vec<String> = Vec::new();
        let mut depth = 0;
        let mut cur = String::new();
        for c in s.chars() {
            match c {
                '(' => {
                    depth += 1;
                    cur.push(c)
                }
                ')' => {
                    if depth == 0 {
                        return Err(key_err(key, format!("unbalanced ')' in \"{s}\"")));
                    }
                    depth -= 1;
                    cur.push(c)
                }
                c if c.is_whitespace() && depth == 0 => {
                    if !cur.is_empty() {
                        parts.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        if depth != 0 {
            return Err(key_err(key, format!("unbalanced '(' in \"{s}\"")));
        }
        if !cur.is_empty() {
            parts.push(cur);
        }
        for part in parts {
            match part.as_str() {
                "*" => pieces.push(Piece::Gap(self.pattern_gap)),
                "{date}" => pieces.push(Piece::Date),
                "{time}" => pieces.push(Piece::Time),
                p if p.starts_with('{') => {
                    return Err(key_err(
                        key,
                        format!("unknown slot {p}; expected {{date}} or {{time}}"),
                    ))
                }
                p => {
                    let inner = p
                        .strip_prefix('(')
                        .and_then(|x| x.strip_suffix(')'))
                        .unwrap_or(p);
                    let mut alts = Vec::new();
                    for alt in inner.split('|') {
                        let toks = tokenize_entry(alt, &self.rewrites);
                        if toks.is_empty() {
                            return Err(key_err(key, format!("empty choice in \"{p}\"")));
                        }
                        alts.push(toks);
                    }
                    pieces.push(Piece::Alt(alts));
                }
            }
        }
        if !pieces.iter().any(|p| matches!(p, Piece::Alt(_))) {
            return Err(key_err(key, format!("\"{s}\" has no words")));
        }
        Ok(pieces)
    }

    /// The intent a DTMF digit selects in a menu, if any.
    pub fn dtmf_intent(&self, digit: char, context: DtmfContext) -> Option<IntentKind> {
        self.dtmf.get(&(context, digit)).copied()
    }

    /// Options of one intent (defaults if it has no table).
    pub fn options(&self, kind: IntentKind) -> IntentOptions {
        self.options.get(&kind).cloned().unwrap_or(IntentOptions {
            negatable: true,
            slot_alone: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_setting_is_named() {
        let e = Lexicon::from_toml_str(
            "[intent]\nfilers = [\"um\"]\n[intent.hardship]\nphrases=[\"lost my job\"]",
            "en",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("intent.filers:"), "{e}");
    }

    #[test]
    fn bad_dtmf_digit_is_named() {
        let e = Lexicon::from_toml_str(
            "[intent.hardship]\nphrases=[\"x\"]\ndtmf_after = \"33\"",
            "en",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("intent.hardship.dtmf_after:"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_dtmf_digit_is_named() {
        let e = Lexicon::from_toml_str(
            "[intent.hardship]\nphrases=[\"x\"]\ndtmf_after = \"3\"\n[intent.dispute]\nphrases=[\"y\"]\ndtmf_after = \"3\"",
            "en",
        )
        .unwrap_err();
        assert!(e.to_string().contains("already used by"), "{e}");
    }

    #[test]
    fn non_string_phrase_is_named() {
        let e = Lexicon::from_toml_str("[intent.dispute]\nphrases = [\"a\", 3]", "en").unwrap_err();
        assert!(
            e.to_string().starts_with("intent.dispute.phrases[1]:"),
            "{e}"
        );
    }

    #[test]
    fn pattern_groups_compile() {
        let lex = Lexicon::from_toml_str(
            "[intent.promise_to_pay]\npatterns = [\"(will|can) pay * {date}\"]",
            "en",
        )
        .unwrap();
        let e = &lex.entries[0];
        assert_eq!(e.pieces.len(), 4);
        assert_eq!(
            e.pieces[0],
            Piece::Alt(vec![vec!["will".into()], vec!["can".into()]])
        );
        assert_eq!(e.pieces[3], Piece::Date);
    }

    #[test]
    fn missing_intent_table_is_an_error() {
        let e = Lexicon::from_toml_str("[meta]\nlanguage='en'", "en").unwrap_err();
        assert!(e.to_string().starts_with("intent:"), "{e}");
    }

    #[test]
    fn bad_toml_reports_position() {
        let e = Lexicon::from_toml_str("[intent\n", "en").unwrap_err();
        assert!(matches!(e, IntentError::Toml { .. }), "{e}");
    }
}
