//! The reply grammar (`prompts/<lang>.replies.jsgf`): rules in JSGF syntax
//! describing whole replies per intent, so PocketSphinx can follow "um I'll
//! send the money in two weeks" instead of forcing it onto the nearest short
//! phrase.
//!
//! Owns: parsing the JSGF subset we use (`|`, `[ ]`, `( )`, `<rule>`
//! references, `*`, `+`, `/weight/`, `//` and `/* */` comments), checking
//! it (every reference defined, no recursion, words listed for the
//! dictionary check), writing the per-turn grammar PocketSphinx compiles,
//! and seeded sampling of sentences (the n-gram model's training text, and
//! the test that every sentence a rule makes means that rule's intent).
//! Never touches the decoder or the classifier.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The English reply grammar shipped with the crate (used when the prompts
/// directory has no `en.replies.jsgf`).
pub const EN_REPLIES: &str = include_str!("../../prompts/en.replies.jsgf");

/// The English example replies shipped with the crate.
pub const EN_EXAMPLES: &str = include_str!("../../prompts/en.replies.tsv");

/// The reply grammar for `lang`: `<dir>/<lang>.replies.jsgf` (else the
/// shipped one, English only) with the example replies of
/// `<dir>/<lang>.replies.tsv` (else the shipped ones) joined to their
/// intents' rules ([`ReplyGrammar::add_examples`]; examples with a word
/// `known` rejects are left out). `Ok(None)` when there is no grammar.
pub fn load_replies(
    dir: &std::path::Path,
    lang: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<Option<ReplyGrammar>, GrammarError> {
    let path = dir.join(format!("{lang}.replies.jsgf"));
    let mut g = match std::fs::read_to_string(&path) {
        Ok(text) => ReplyGrammar::parse(&text, &path.display().to_string())?,
        Err(_) if lang == "en" => {
            ReplyGrammar::parse(EN_REPLIES, "prompts/en.replies.jsgf (built in)")?
        }
        Err(_) => return Ok(None),
    };
    let ex_path = dir.join(format!("{lang}.replies.tsv"));
    let (text, name) = match std::fs::read_to_string(&ex_path) {
        Ok(t) => (t, ex_path.display().to_string()),
        Err(_) if lang == "en" => (
            EN_EXAMPLES.to_string(),
            "prompts/en.replies.tsv (built in)".into(),
        ),
        Err(_) => return Ok(Some(g)),
    };
    let rows = crate::intent::eval::parse_tsv(&text, &name).map_err(|e| GrammarError {
        source_name: name.clone(),
        reason: e.to_string(),
    })?;
    let examples: Vec<(String, String)> = rows
        .into_iter()
        .map(|r| {
            let rule = match r.intent {
                crate::intent::IntentKind::Unknown => "other".to_string(),
                k => k.as_str().to_string(),
            };
            (rule, r.text)
        })
        .collect();
    g.add_examples(&examples, known);
    Ok(Some(g))
}

/// One expansion of a rule body.
#[derive(Debug, Clone, PartialEq)]
pub enum Expansion {
    /// A word.
    Token(String),
    /// `<name>`.
    Ref(String),
    /// Items one after another.
    Seq(Vec<Expansion>),
    /// `a | b`.
    Alt(Vec<Expansion>),
    /// `[x]`.
    Optional(Box<Expansion>),
    /// `x*`.
    Star(Box<Expansion>),
    /// `x+`.
    Plus(Box<Expansion>),
}

/// A parse or check failure, with the rule (or line) to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("reply grammar {source_name}: {reason}")]
pub struct GrammarError {
    /// The file (or name) being parsed.
    pub source_name: String,
    /// What is wrong and where.
    pub reason: String,
}

/// A parsed, checked reply grammar: named rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplyGrammar {
    rules: BTreeMap<String, Expansion>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Ref(String),
    Sym(char),
}

fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |i| &r[i..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
            out.push(' ');
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn lex(body: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if "|()[]*+".contains(c) {
            toks.push(Tok::Sym(c));
            chars.next();
        } else if c == '/' {
            // A weight `/0.5/`: PocketSphinx reads it; sampling ignores it.
            chars.next();
            let w: String = chars.by_ref().take_while(|&c| c != '/').collect();
            if w.trim().parse::<f32>().is_err() {
                return Err(format!("weight /{w}/ is not a number"));
            }
        } else if c == '<' {
            chars.next();
            let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("bad rule reference <{name}>"));
            }
            toks.push(Tok::Ref(name));
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || "|()[]*+<>/".contains(c) {
                    break;
                }
                w.push(c);
                chars.next();
            }
            toks.push(Tok::Word(w.to_lowercase()));
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn alt(&mut self) -> Result<Expansion, String> {
        let mut alts = vec![self.seq()?];
        while self.peek() == Some(&Tok::Sym('|')) {
            self.at += 1;
            alts.push(self.seq()?);
        }
        Ok(if alts.len() == 1 {
            alts.remove(0)
        } else {
            Expansion::Alt(alts)
        })
    }

    fn seq(&mut self) -> Result<Expansion, String> {
        let mut items = Vec::new();
        while let Some(t) = self.peek() {
            if matches!(t, Tok::Sym('|' | ')' | ']')) {
                break;
            }
            items.push(self.item()?);
        }
        match items.len() {
            0 => Err("an empty alternative".into()),
            1 => Ok(items.remove(0)),
            _ => Ok(Expansion::Seq(items)),
        }
    }

    fn item(&mut self) -> Result<Expansion, String> {
        let t = self.peek().cloned().ok_or("unexpected end")?;
        self.at += 1;
        let atom = match t {
            Tok::Word(w) => Expansion::Token(w),
            Tok::Ref(r) => Expansion::Ref(r),
            Tok::Sym('(') => {
                let e = self.alt()?;
                self.close(')')?;
                e
            }
            Tok::Sym('[') => {
                let e = self.alt()?;
                self.close(']')?;
                Expansion::Optional(Box::new(e))
            }
            Tok::Sym(c) => return Err(format!("unexpected '{c}'")),
        };
        Ok(match self.peek() {
            Some(Tok::Sym('*')) => {
                self.at += 1;
                Expansion::Star(Box::new(atom))
            }
            Some(Tok::Sym('+')) => {
                self.at += 1;
                Expansion::Plus(Box::new(atom))
            }
            _ => atom,
        })
    }

    fn close(&mut self, c: char) -> Result<(), String> {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("missing '{c}'"))
        }
    }
}

/// Parses one rule body (`a (b | c) [d]`).
pub fn parse_expansion(body: &str) -> Result<Expansion, String> {
    let mut p = Parser {
        toks: lex(body)?,
        at: 0,
    };
    let e = p.alt()?;
    if p.at != p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks[p.at]));
    }
    Ok(e)
}

fn collect_words(e: &Expansion, out: &mut BTreeSet<String>) {
    match e {
        Expansion::Token(w) => {
            out.insert(w.clone());
        }
        Expansion::Ref(_) => {}
        Expansion::Seq(v) | Expansion::Alt(v) => v.iter().for_each(|x| collect_words(x, out)),
        Expansion::Optional(x) | Expansion::Star(x) | Expansion::Plus(x) => collect_words(x, out),
    }
}

fn collect_refs(e: &Expansion, out: &mut Vec<String>) {
    match e {
        Expansion::Token(_) => {}
        Expansion::Ref(r) => out.push(r.clone()),
        Expansion::Seq(v) | Expansion::Alt(v) => v.iter().for_each(|x| collect_refs(x, out)),
        Expansion::Optional(x) | Expansion::Star(x) | Expansion::Plus(x) => collect_refs(x, out),
    }
}

fn write_expansion(e: &Expansion, out: &mut String) {
    match e {
        Expansion::Token(w) => out.push_str(w),
        Expansion::Ref(r) => {
            let _ = write!(out, "<{r}>");
        }
        Expansion::Seq(v) => {
            out.push('(');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_expansion(x, out);
            }
            out.push(')');
        }
        Expansion::Alt(v) => {
            out.push('(');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                write_expansion(x, out);
            }
            out.push(')');
        }
        Expansion::Optional(x) => {
            out.push('[');
            write_expansion(x, out);
            out.push(']');
        }
        Expansion::Star(x) => {
            write_expansion(x, out);
            out.push('*');
        }
        Expansion::Plus(x) => {
            write_expansion(x, out);
            out.push('+');
        }
    }
}

/// A small seeded generator (splitmix64): sampling repeats run to run.
#[derive(Debug, Clone)]
pub struct Sampler(u64);

impl Sampler {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Sampler(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

impl ReplyGrammar {
    /// Parses JSGF text (`#JSGF` header and `grammar` line optional) and
    /// checks that every reference is defined and no rule refers to itself.
    pub fn parse(text: &str, source_name: &str) -> Result<ReplyGrammar, GrammarError> {
        let err = |reason: String| GrammarError {
            source_name: source_name.to_string(),
            reason,
        };
        let text = strip_comments(text);
        let mut rules = BTreeMap::new();
        for stmt in text.split(';') {
            let stmt = stmt.trim();
            if stmt.is_empty() || stmt.starts_with("#JSGF") || stmt.starts_with("grammar ") {
                continue;
            }
            let stmt = stmt.strip_prefix("public ").unwrap_or(stmt).trim();
            let (head, body) = stmt
                .split_once('=')
                .ok_or_else(|| err(format!("'{}' is not `<name> = ...;`", short(stmt))))?;
            let name = head
                .trim()
                .strip_prefix('<')
                .and_then(|h| h.strip_suffix('>'))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| err(format!("'{}' is not a rule name like <name>", head.trim())))?;
            let exp = parse_expansion(body).map_err(|e| err(format!("rule <{name}>: {e}")))?;
            if rules.insert(name.to_string(), exp).is_some() {
                return Err(err(format!("rule <{name}> is defined twice")));
            }
        }
        let g = ReplyGrammar { rules };
        for (name, e) in &g.rules {
            let mut refs = Vec::new();
            collect_refs(e, &mut refs);
            if let Some(r) = refs.iter().find(|r| !g.rules.contains_key(*r)) {
                return Err(err(format!(
                    "rule <{name}> refers to <{r}>, which is not defined"
                )));
            }
        }
        for name in g.rules.keys() {
            g.check_acyclic(name, &mut Vec::new()).map_err(|chain| {
                err(format!("rules refer to themselves: {}", chain.join(" -> ")))
            })?;
        }
        Ok(g)
    }

    fn check_acyclic(&self, name: &str, stack: &mut Vec<String>) -> Result<(), Vec<String>> {
        if stack.iter().any(|s| s == name) {
            let mut chain = stack.clone();
            chain.push(name.to_string());
            return Err(chain);
        }
        stack.push(name.to_string());
        let mut refs = Vec::new();
        if let Some(e) = self.rules.get(name) {
            collect_refs(e, &mut refs);
        }
        for r in refs {
            self.check_acyclic(&r, stack)?;
        }
        stack.pop();
        Ok(())
    }

    /// Joins example replies `(rule, text)` to their rules: `<rule>` becomes
    /// `(its own expansion) | (example | example ...)`, so a sampled sentence
    /// is an example half the time. Examples of undefined rules, and with a
    /// word `known` rejects, are left out; returns how many were joined.
    pub fn add_examples(
        &mut self,
        examples: &[(String, String)],
        known: &dyn Fn(&str) -> bool,
    ) -> usize {
        let mut by_rule: BTreeMap<&str, Vec<Expansion>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (rule, text) in examples {
            if !self.rules.contains_key(rule) {
                continue;
            }
            let words: Vec<String> = text
                .to_lowercase()
                .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\''))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            if words.is_empty() || !words.iter().all(|w| known(w)) || !seen.insert(words.clone()) {
                continue;
            }
            let e = if words.len() == 1 {
                Expansion::Token(words[0].clone())
            } else {
                Expansion::Seq(words.into_iter().map(Expansion::Token).collect())
            };
            by_rule.entry(rule.as_str()).or_default().push(e);
        }
        let mut n = 0;
        for (rule, exs) in by_rule {
            n += exs.len();
            if let Some(own) = self.rules.remove(rule) {
                self.rules.insert(
                    rule.to_string(),
                    Expansion::Alt(vec![own, Expansion::Alt(exs)]),
                );
            }
        }
        n
    }

    /// Whether a rule `<name>` is defined.
    pub fn has_rule(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// The rule names, sorted.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// Every word of every rule (what the dictionary must know).
    pub fn words(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.rules.values().for_each(|e| collect_words(e, &mut out));
        out
    }

    /// Every word of the rules `roots` reach.
    pub fn words_of(&self, roots: &[&str]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for r in self.reachable(roots) {
            if let Some(e) = self.rules.get(&r) {
                collect_words(e, &mut out);
            }
        }
        out
    }

    /// The rules `roots` reach (themselves included), sorted.
    pub fn reachable(&self, roots: &[&str]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
        while let Some(r) = todo.pop() {
            if !seen.insert(r.clone()) {
                continue;
            }
            if let Some(e) = self.rules.get(&r) {
                collect_refs(e, &mut todo);
            }
        }
        seen
    }

    /// The JSGF text PocketSphinx compiles for one turn:
    /// `public <utt> = [<lead>] (alternatives) [<tail>];` plus every rule the
    /// alternatives, `lead` and `tail` reach. `alternatives` are JSGF
    /// expansions (plain phrases or `<rule>` references); `lead`/`tail` name
    /// rules allowed before and after the reply (skipped when undefined).
    pub fn turn_jsgf(&self, alternatives: &[String], lead: &str, tail: &str) -> String {
        let mut roots: Vec<&str> = Vec::new();
        let mut body = String::new();
        for (i, a) in alternatives.iter().enumerate() {
            if i > 0 {
                body.push_str(" | ");
            }
            body.push_str(a);
            if let Ok(e) = parse_expansion(a) {
                let mut refs = Vec::new();
                collect_refs(&e, &mut refs);
                for r in refs {
                    if let Some((k, _)) = self.rules.get_key_value(&r) {
                        roots.push(k);
                    }
                }
            }
        }
        let mut head = String::new();
        let mut foot = String::new();
        if self.has_rule(lead) {
            roots.push(lead);
            head = format!("[<{lead}>] ");
        }
        if self.has_rule(tail) {
            roots.push(tail);
            foot = format!(" [<{tail}>]");
        }
        let mut out =
            format!("#JSGF V1.0;\ngrammar duecall;\npublic <utt> = {head}({body}){foot};\n");
        for r in self.reachable(&roots) {
            if let Some(e) = self.rules.get(&r) {
                let mut s = String::new();
                write_expansion(e, &mut s);
                let _ = writeln!(out, "<{r}> = {s};");
            }
        }
        out
    }

    /// Whether `words` is a sentence of the turn grammar
    /// [`ReplyGrammar::turn_jsgf`] builds from the same arguments.
    pub fn accepts_turn(
        &self,
        alternatives: &[String],
        lead: &str,
        tail: &str,
        words: &[String],
    ) -> bool {
        let alts: Vec<Expansion> = alternatives
            .iter()
            .filter_map(|a| parse_expansion(a).ok())
            .collect();
        let mut items = Vec::new();
        if self.has_rule(lead) {
            items.push(Expansion::Optional(Box::new(Expansion::Ref(
                lead.to_string(),
            ))));
        }
        items.push(Expansion::Alt(alts));
        if self.has_rule(tail) {
            items.push(Expansion::Optional(Box::new(Expansion::Ref(
                tail.to_string(),
            ))));
        }
        let ends = self.ends(&Expansion::Seq(items), words, &BTreeSet::from([0]));
        ends.contains(&words.len())
    }

    /// Where in `words` a match of `e` can end, starting at any of `from`.
    fn ends(&self, e: &Expansion, words: &[String], from: &BTreeSet<usize>) -> BTreeSet<usize> {
        match e {
            Expansion::Token(w) => from
                .iter()
                .filter(|&&p| words.get(p) == Some(w))
                .map(|p| p + 1)
                .collect(),
            Expansion::Ref(r) => match self.rules.get(r) {
                Some(x) => self.ends(x, words, from),
                None => BTreeSet::new(),
            },
            Expansion::Seq(v) => v
                .iter()
                .fold(from.clone(), |at, x| self.ends(x, words, &at)),
            Expansion::Alt(v) => v.iter().flat_map(|x| self.ends(x, words, from)).collect(),
            Expansion::Optional(x) => {
                let mut out = from.clone();
                out.extend(self.ends(x, words, from));
                out
            }
            Expansion::Star(x) | Expansion::Plus(x) => {
                let mut reached = if matches!(e, Expansion::Star(_)) {
                    from.clone()
                } else {
                    BTreeSet::new()
                };
                let mut frontier = from.clone();
                loop {
                    let next: BTreeSet<usize> = self
                        .ends(x, words, &frontier)
                        .into_iter()
                        .filter(|p| !reached.contains(p))
                        .collect();
                    if next.is_empty() {
                        break;
                    }
                    reached.extend(next.iter().copied());
                    frontier = next;
                }
                reached
            }
        }
    }

    /// One random sentence of `rule` (optional parts taken half the time,
    /// `*` 0-2 times, `+` 1-2 times); empty when the rule is undefined.
    pub fn sample(&self, rule: &str, rng: &mut Sampler) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = self.rules.get(rule) {
            self.sample_into(e, rng, &mut out);
        }
        out
    }

    /// One random sentence of an expansion (`<rule>` or a phrase).
    pub fn sample_expansion(&self, e: &Expansion, rng: &mut Sampler) -> Vec<String> {
        let mut out = Vec::new();
        self.sample_into(e, rng, &mut out);
        out
    }

    fn sample_into(&self, e: &Expansion, rng: &mut Sampler, out: &mut Vec<String>) {
        match e {
            Expansion::Token(w) => out.push(w.clone()),
            Expansion::Ref(r) => {
                if let Some(x) = self.rules.get(r) {
                    self.sample_into(x, rng, out);
                }
            }
            Expansion::Seq(v) => v.iter().for_each(|x| self.sample_into(x, rng, out)),
            Expansion::Alt(v) => {
                let i = rng.below(v.len());
                self.sample_into(&v[i], rng, out);
            }
            Expansion::Optional(x) => {
                if rng.below(2) == 0 {
                    self.sample_into(x, rng, out);
                }
            }
            Expansion::Star(x) => {
                for _ in 0..rng.below(3) {
                    self.sample_into(x, rng, out);
                }
            }
            Expansion::Plus(x) => {
                for _ in 0..1 + rng.below(2) {
                    self.sample_into(x, rng, out);
                }
            }
        }
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str =
        "#JSGF V1.0;\n// comment\ngrammar g;\n<day> = monday | friday /* inline */;\n\
        <paid> = i [already] paid [on <day>];\npublic <x> = <paid> | no;\n";

    #[test]
    fn parses_rules_references_and_comments() {
        let g = ReplyGrammar::parse(SMALL, "small").unwrap();
        assert_eq!(g.rule_names().collect::<Vec<_>>(), ["day", "paid", "x"]);
        let w: Vec<String> = g.words().into_iter().collect();
        assert_eq!(w, ["already", "friday", "i", "monday", "no", "on", "paid"]);
        assert_eq!(g.reachable(&["paid"]).len(), 2);
    }

    #[test]
    fn undefined_reference_is_named() {
        let e = ReplyGrammar::parse("<a> = i paid <when>;", "f").unwrap_err();
        assert!(e.reason.contains("<when>"), "{e}");
    }

    #[test]
    fn self_reference_is_refused() {
        let e = ReplyGrammar::parse("<a> = x <b>; <b> = y [<a>];", "f").unwrap_err();
        assert!(e.reason.contains("refer to themselves"), "{e}");
    }

    #[test]
    fn unbalanced_brackets_are_refused() {
        for bad in [
            "<a> = (x | y;",
            "<a> = [x;",
            "<a> = x | ;",
            "<a> = x );",
            "a = x;",
        ] {
            assert!(ReplyGrammar::parse(bad, "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn samples_are_sentences_of_the_rule_and_repeat_with_the_seed() {
        let g = ReplyGrammar::parse(SMALL, "small").unwrap();
        let mut seen = BTreeSet::new();
        let mut rng = Sampler::new(7);
        for _ in 0..200 {
            let s = g.sample("paid", &mut rng).join(" ");
            assert!(
                [
                    "i paid",
                    "i already paid",
                    "i paid on monday",
                    "i paid on friday",
                    "i already paid on monday",
                    "i already paid on friday"
                ]
                .contains(&s.as_str()),
                "{s}"
            );
            seen.insert(s);
        }
        assert_eq!(seen.len(), 6, "every sentence is reachable");
        let a: Vec<_> = (0..5)
            .map(|_| g.sample("x", &mut Sampler::new(3)))
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn accepts_exactly_the_sentences_of_the_turn() {
        let g = ReplyGrammar::parse(
            &format!("{SMALL}<lead> = um | well; <tail> = please;"),
            "small",
        )
        .unwrap();
        let alts = ["<paid>".to_string(), "wrong number".to_string()];
        let w = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        for yes in [
            "i paid",
            "um i already paid on friday please",
            "wrong number please",
        ] {
            assert!(g.accepts_turn(&alts, "lead", "tail", &w(yes)), "{yes}");
        }
        for no in [
            "i paid on",
            "paid",
            "please i paid",
            "wrong number i paid",
            "no",
            "um well i paid",
            "i paid please please",
        ] {
            assert!(!g.accepts_turn(&alts, "lead", "tail", &w(no)), "{no}");
        }
    }

    #[test]
    fn examples_join_their_rule_and_unknown_words_leave_them_out() {
        let mut g = ReplyGrammar::parse(SMALL, "small").unwrap();
        let ex = [
            ("paid".to_string(), "We sent it, honest!".to_string()),
            ("paid".to_string(), "i paid with zorblatt".to_string()),
            ("nope".to_string(), "no rule".to_string()),
        ];
        assert_eq!(g.add_examples(&ex, &|w| w != "zorblatt"), 1);
        let w = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let alts = ["<paid>".to_string()];
        assert!(g.accepts_turn(&alts, "lead", "tail", &w("we sent it honest")));
        assert!(g.accepts_turn(&alts, "lead", "tail", &w("i already paid on friday")));
        assert!(!g.accepts_turn(&alts, "lead", "tail", &w("i paid with zorblatt")));
    }

    #[test]
    fn turn_grammar_carries_only_the_rules_it_reaches() {
        let g = ReplyGrammar::parse(SMALL, "small").unwrap();
        let j = g.turn_jsgf(&["<paid>".into(), "wrong number".into()], "lead", "tail");
        assert!(j.contains("public <utt> = (<paid> | wrong number);"), "{j}");
        assert!(
            j.contains("<paid> = (i [already] paid [(on <day>)]);"),
            "{j}"
        );
        assert!(j.contains("<day> = (monday | friday);"), "{j}");
        assert!(!j.contains("<x> ="), "{j}");
    }
}
