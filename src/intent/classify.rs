//! The intent classifier (pure): a transcript or a DTMF digit in, an
//! [`Intent`] out.
//!
//! Owns how evidence becomes a decision: lexicon matches (exact, one-typo or
//! truncated words), negation scope, per-intent vetoes, coverage-weighted
//! confidence, the priority order for replies that match several intents,
//! and the date/time slots. Never reads files, audio or the clock: the
//! lexicon, `today` and `now` come in from the caller.
//!
//! Confidence of an intent = noisy-or of its non-overlapping matches'
//! weights (phrase 0.9, pattern 0.85, word 0.6, weak 0.35 by default, lowered
//! for fuzzy matches) times `0.7 + 0.3 * coverage`, where coverage is the
//! share of the reply's content tokens (not fillers, not function words)
//! explained by any match, negation or date/time. A lone word in a long
//! off-topic reply therefore stays below the threshold, while a phrase passes
//! whatever surrounds it.

use std::collections::BTreeSet;

use chrono::{NaiveDate, NaiveTime};

use super::dates::{date_at, find_date, find_hours, find_time, time_at};
use super::lexicon::{DtmfContext, EntryClass, Lexicon, Piece};
use super::text::{edit_distance, tokenize, Tokens};
use super::{Intent, IntentKind, Slots};

/// Classifies replies with one language's lexicon.
#[derive(Debug, Clone)]
pub struct Classifier {
    /// The lexicon (from `prompts/<lang>.toml`).
    pub lexicon: Lexicon,
    /// Below this confidence the answer is `Unknown` (default 0.5).
    pub threshold: f32,
}

/// One lexicon entry found in the reply.
#[derive(Debug, Clone)]
struct Hit {
    entry: usize,
    /// Original token indices covered.
    toks: Vec<usize>,
    quality: f32,
    /// What was heard, when it differs from the entry text.
    heard: Option<String>,
    negated_by: Option<String>,
}

/// An intent's standing after matching.
#[derive(Debug, Clone)]
struct Standing {
    kind: IntentKind,
    evidence: f32,
    hits: Vec<Hit>,
    vetoed_by: Option<String>,
    from_slot: Option<String>,
}

struct Prepared {
    t: Tokens,
    filler: Vec<bool>,
}

impl Classifier {
    /// A classifier with the default threshold 0.5.
    pub fn new(lexicon: Lexicon) -> Self {
        Classifier {
            lexicon,
            threshold: 0.5,
        }
    }

    /// Sets the threshold below which replies are `Unknown`.
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold.clamp(0.0, 1.0);
        self
    }

    /// The intent of a DTMF digit in the given menu (digits come from the
    /// lexicon's `dtmf_before` / `dtmf_after`). A digit with no meaning there
    /// is `Unknown`.
    pub fn classify_dtmf(&self, digit: char, context: DtmfContext) -> Intent {
        let menu = match context {
            DtmfContext::BeforeIdentity => "before identity",
            DtmfContext::AfterIdentity => "after identity",
        };
        match self.lexicon.dtmf_intent(digit, context) {
            Some(kind) => Intent {
                kind,
                confidence: 1.0,
                reason: format!("DTMF {digit} ({menu})"),
                slots: Slots::default(),
                also: Vec::new(),
            },
            None => Intent {
                kind: IntentKind::Unknown,
                confidence: 0.0,
                reason: format!("DTMF {digit} means nothing {menu}"),
                slots: Slots::default(),
                also: Vec::new(),
            },
        }
    }

    /// Classifies one transcript. `today` resolves promised dates; `now_time`
    /// (local) resolves "in an hour" and moves past clock times to tomorrow.
    pub fn classify(&self, text: &str, today: NaiveDate, now_time: Option<NaiveTime>) -> Intent {
        let p = self.prepare(text);
        let content: Vec<usize> = (0..p.t.len())
            .filter(|&i| !p.filler[i] && !self.lexicon.function_words.contains(&p.t.toks[i]))
            .collect();
        if p.t.is_empty() || p.filler.iter().all(|f| *f) {
            return Intent {
                kind: IntentKind::Unknown,
                confidence: 0.0,
                reason: if p.t.is_empty() {
                    "empty reply".into()
                } else {
                    "only fillers".into()
                },
                slots: Slots::default(),
                also: Vec::new(),
            };
        }
        let hits = self.find_hits(&p, today);
        let mut standings = self.stand(&hits);
        let mut covered: BTreeSet<usize> = BTreeSet::new();
        // negated matches count too: the negation explains the words it cancels
        for h in &hits {
            covered.extend(h.toks.iter().copied());
        }
        // a negation that cancelled a match is explained too (others are not)
        for h in &hits {
            if h.negated_by.is_some() {
                let mut j = h.toks[0];
                while j > 0 {
                    j -= 1;
                    if self.negation_ending_at(&p.t, j).is_some() {
                        covered.insert(j);
                        break;
                    }
                }
            }
        }
        let date = find_date(&p.t, today);
        let time = find_time(&p.t, today, now_time);
        if let Some(d) = date {
            covered.extend(d.start..d.end);
        }
        if let Some(t) = time {
            covered.extend(t.start..t.end);
        }
        let coverage = if content.is_empty() {
            1.0
        } else {
            content.iter().filter(|i| covered.contains(i)).count() as f32 / content.len() as f32
        };
        let conf = |e: f32| (e * (0.7 + 0.3 * coverage)).clamp(0.0, 1.0);

        // A bare date or clock time answers "when?": only when no lexicon
        // evidence decided the reply.
        // ... and only when it is most of the reply ("Friday", "um next week
        // I guess"), not a date in passing ("today the weather is nice").
        let mostly = |a: usize, b: usize| {
            content.is_empty()
                || 2 * content.iter().filter(|&&i| i >= a && i < b).count() >= content.len()
        };
        if !standings.iter().any(|s| conf(s.evidence) >= self.threshold) {
            let spoken = |a: usize, b: usize| {
                p.t.toks[a..b].join(if self.lexicon.lang == "zh" { "" } else { " " })
            };
            let cb = self.lexicon.options(IntentKind::CallbackLater).slot_alone;
            let pp = self.lexicon.options(IntentKind::PromiseToPay).slot_alone;
            match (time, date, cb, pp) {
                (Some(t), _, Some(w), _) if t.value.has_clock && mostly(t.start, t.end) => {
                    let s = standing_mut(&mut standings, IntentKind::CallbackLater);
                    s.evidence = s.evidence.max(w);
                    s.from_slot = Some(format!(
                        "a time alone ('{}') reads as callback_later",
                        spoken(t.start, t.end)
                    ));
                }
                (_, Some(d), _, Some(w)) if mostly(d.start, d.end) => {
                    let s = standing_mut(&mut standings, IntentKind::PromiseToPay);
                    s.evidence = s.evidence.max(w);
                    s.from_slot = Some(format!(
                        "a date alone ('{}') reads as promise_to_pay",
                        spoken(d.start, d.end)
                    ));
                }
                _ => {}
            }
        }

        let mut passing: Vec<(&Standing, f32)> = standings
            .iter()
            .map(|s| (s, conf(s.evidence)))
            .filter(|(_, c)| *c >= self.threshold)
            .collect();
        passing.sort_by_key(|(s, _)| s.kind.rank());
        let notes = self.notes(&hits, &standings);
        let Some(&(win, confidence)) = passing.first() else {
            let best = standings
                .iter()
                .map(|s| (s, conf(s.evidence)))
                .filter(|(_, c)| *c > 0.0)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let reason = match best {
                Some((s, c)) => format!(
                    "best was {} at {:.2} ({}), below threshold {:.2}{}",
                    s.kind.as_str(),
                    c,
                    self.evidence_text(s),
                    self.threshold,
                    notes
                ),
                None => format!("no lexicon match{notes}"),
            };
            return Intent {
                kind: IntentKind::Unknown,
                confidence: best.map(|b| b.1).unwrap_or(0.0),
                reason,
                slots: Slots::default(),
                also: Vec::new(),
            };
        };
        let beaten: Vec<&str> = passing[1..].iter().map(|(s, _)| s.kind.as_str()).collect();
        let mut reason = String::new();
        if !beaten.is_empty() {
            reason.push_str(&format!(
                "{} beats {}: ",
                win.kind.as_str(),
                beaten.join(", ")
            ));
        }
        reason.push_str(&self.evidence_text(win));
        reason.push_str(&notes);
        let mut slots = Slots::default();
        match win.kind {
            IntentKind::PromiseToPay => slots.date = date.map(|d| d.value),
            IntentKind::CallbackLater => {
                slots.time = time.map(|t| t.value.at);
                slots.hours = find_hours(&p.t).map(|h| h.value);
            }
            _ => {}
        }
        // What else the reply said, above the threshold too: "yes, and I
        // already paid" also confirms identity.
        let also = passing[1..].iter().map(|(s, _)| s.kind).collect();
        Intent {
            kind: win.kind,
            confidence,
            reason,
            slots,
            also,
        }
    }

    fn prepare(&self, text: &str) -> Prepared {
        let t = tokenize(text, &self.lexicon.rewrites);
        let mut filler = vec![false; t.len()];
        for i in 0..t.len() {
            for f in &self.lexicon.fillers {
                if i + f.len() <= t.len()
                    && t.toks[i..i + f.len()] == f[..]
                    && t.same_clause(i, i + f.len())
                {
                    filler[i..i + f.len()].iter_mut().for_each(|x| *x = true);
                }
            }
        }
        Prepared { t, filler }
    }

    /// Every entry matched, on the raw tokens and on the tokens without
    /// fillers (so "already um paid" still matches, while "就是我" keeps 就是).
    fn find_hits(&self, p: &Prepared, today: NaiveDate) -> Vec<Hit> {
        let all: Vec<usize> = (0..p.t.len()).collect();
        let stripped: Vec<usize> = (0..p.t.len()).filter(|&i| !p.filler[i]).collect();
        let mut hits: Vec<Hit> = Vec::new();
        for view in [&all, &stripped] {
            for (ei, e) in self.lexicon.entries.iter().enumerate() {
                for start in 0..view.len() {
                    let Some((end, q)) =
                        self.match_pieces(p, view, &e.pieces, 0, start, 1.0, today)
                    else {
                        continue;
                    };
                    if end == start {
                        continue;
                    }
                    let toks: Vec<usize> = view[start..end].to_vec();
                    if toks.iter().all(|&i| p.filler[i]) {
                        // "对" inside "对不起" is politeness, not an answer
                        continue;
                    }
                    if !p.t.same_clause(toks[0], toks[toks.len() - 1] + 1) {
                        continue;
                    }
                    if hits.iter().any(|h| h.entry == ei && h.toks == toks) {
                        continue;
                    }
                    let heard = toks
                        .iter()
                        .map(|&i| p.t.toks[i].as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    let heard = (q < 1.0).then_some(heard);
                    let negated_by =
                        if e.class != EntryClass::Veto && self.lexicon.options(e.kind).negatable {
                            self.negation_before(p, toks[0])
                        } else {
                            None
                        };
                    hits.push(Hit {
                        entry: ei,
                        toks,
                        quality: q,
                        heard,
                        negated_by,
                    });
                }
            }
        }
        hits
    }

    #[allow(clippy::too_many_arguments)]
    fn match_pieces(
        &self,
        p: &Prepared,
        view: &[usize],
        pieces: &[Piece],
        pi: usize,
        pos: usize,
        q: f32,
        today: NaiveDate,
    ) -> Option<(usize, f32)> {
        if pi == pieces.len() {
            return Some((pos, q));
        }
        match &pieces[pi] {
            Piece::Alt(alts) => alts.iter().find_map(|alt| {
                let q2 = self.match_seq(&p.t, view, pos, alt)?;
                self.match_pieces(p, view, pieces, pi + 1, pos + alt.len(), q * q2, today)
            }),
            Piece::Gap(n) => {
                if pi == 0 || pi + 1 == pieces.len() {
                    // a leading/trailing gap adds nothing
                    return self.match_pieces(p, view, pieces, pi + 1, pos, q, today);
                }
                // a gap never skips a negation: "can * pay" must not match "can not pay"
                (0..=*n)
                    .take_while(|&k| {
                        pos + k < view.len()
                            && (k == 0
                                || self.negation_ending_at(&p.t, view[pos + k - 1]).is_none())
                    })
                    .find_map(|k| self.match_pieces(p, view, pieces, pi + 1, pos + k, q, today))
            }
            Piece::Date | Piece::Time => {
                let orig = *view.get(pos)?;
                let end = if pieces[pi] == Piece::Date {
                    date_at(&p.t, orig, today)?.end
                } else {
                    orig + time_at(&p.t, orig)?
                };
                let next = view.iter().position(|&v| v >= end).unwrap_or(view.len());
                self.match_pieces(p, view, pieces, pi + 1, next, q, today)
            }
        }
    }

    /// Quality of `want` matched at view position `pos` (1 exact, less fuzzy).
    fn match_seq(&self, t: &Tokens, view: &[usize], pos: usize, want: &[String]) -> Option<f32> {
        if pos + want.len() > view.len() {
            return None;
        }
        let mut q = 1.0f32;
        for (k, w) in want.iter().enumerate() {
            let got = &t.toks[view[pos + k]];
            if got == w {
                continue;
            }
            q *= self.fuzzy(got, w)?;
        }
        Some(q)
    }

    fn fuzzy(&self, got: &str, want: &str) -> Option<f32> {
        // a word the lexicon knows is never a typo of another ("transfer" is
        // not a cut-off "transferred")
        if self.lexicon.vocabulary.contains(got) {
            return None;
        }
        if !self.lexicon.fuzzy
            || !got.chars().all(|c| c.is_ascii_alphabetic())
            || !want.chars().all(|c| c.is_ascii_alphabetic() || c == '\'')
        {
            return None;
        }
        let (g, w) = (got.len(), want.len());
        if g >= 5 && w >= 5 && edit_distance(got, want, 1) <= 1 {
            return Some(0.85);
        }
        if g >= 7 && w >= 8 && edit_distance(got, want, 2) <= 2 {
            return Some(0.8);
        }
        // truncated word, as recognisers emit for cut-off speech ("unemploy")
        if g >= 4 && w > g && want.starts_with(got) && g * 10 >= w * 6 {
            return Some(0.8);
        }
        None
    }

    fn seq_ending_at<'a>(t: &Tokens, seqs: &'a [Vec<String>], i: usize) -> Option<&'a Vec<String>> {
        seqs.iter().find(|s| {
            s.len() <= i + 1
                && t.toks[i + 1 - s.len()..=i] == s[..]
                && t.same_clause(i + 1 - s.len(), i + 1)
        })
    }

    fn negation_ending_at(&self, t: &Tokens, i: usize) -> Option<String> {
        Self::seq_ending_at(t, &self.lexicon.negation_words, i).map(|s| s.join(" "))
    }

    /// The negation word governing a match starting at token `start`, if any:
    /// within `negation_scope` content tokens before it, in the same clause,
    /// with no scope breaker in between. Fillers are skipped (and a negation
    /// inside a filler such as 不好意思 does not count).
    fn negation_before(&self, p: &Prepared, start: usize) -> Option<String> {
        let mut j = start;
        let mut seen = 0;
        while j > 0 && seen < self.lexicon.negation_scope {
            j -= 1;
            if p.t.clause[j] != p.t.clause[start] {
                break;
            }
            if p.filler[j] {
                continue;
            }
            if let Some(n) = self.negation_ending_at(&p.t, j) {
                return Some(n);
            }
            if Self::seq_ending_at(&p.t, &self.lexicon.scope_breakers, j).is_some() {
                break;
            }
            seen += 1;
        }
        None
    }

    /// Per intent: vetoes, and the noisy-or of non-overlapping live matches.
    fn stand(&self, hits: &[Hit]) -> Vec<Standing> {
        let w = &self.lexicon.weights;
        let mut out = Vec::new();
        for &kind in &IntentKind::PRIORITY[..12] {
            let vetoed_by = hits
                .iter()
                .find(|h| {
                    let e = &self.lexicon.entries[h.entry];
                    e.kind == kind && e.class == EntryClass::Veto
                })
                .map(|h| self.lexicon.entries[h.entry].text.clone());
            let mut live: Vec<&Hit> = hits
                .iter()
                .filter(|h| {
                    let e = &self.lexicon.entries[h.entry];
                    e.kind == kind && e.class != EntryClass::Veto && h.negated_by.is_none()
                })
                .collect();
            let weight = |h: &Hit| {
                let base = match self.lexicon.entries[h.entry].class {
                    EntryClass::Phrase => w.phrase,
                    EntryClass::Pattern => w.pattern,
                    EntryClass::Word => w.word,
                    EntryClass::Weak | EntryClass::Veto => w.weak,
                };
                base * h.quality
            };
            live.sort_by(|a, b| {
                weight(b)
                    .total_cmp(&weight(a))
                    .then(b.toks.len().cmp(&a.toks.len()))
            });
            let mut taken: Vec<Hit> = Vec::new();
            let mut miss = 1.0f32;
            for h in live {
                if taken
                    .iter()
                    .any(|t| t.toks.iter().any(|x| h.toks.contains(x)))
                {
                    continue;
                }
                miss *= 1.0 - weight(h);
                taken.push(h.clone());
            }
            let evidence = if vetoed_by.is_some() { 0.0 } else { 1.0 - miss };
            out.push(Standing {
                kind,
                evidence,
                hits: taken,
                vetoed_by,
                from_slot: None,
            });
        }
        out
    }

    fn evidence_text(&self, s: &Standing) -> String {
        if let Some(slot) = &s.from_slot {
            if s.hits.is_empty() {
                return slot.clone();
            }
        }
        let parts: Vec<String> = s
            .hits
            .iter()
            .map(|h| {
                let e = &self.lexicon.entries[h.entry];
                match &h.heard {
                    Some(heard) => format!("'{}' (heard '{}')", e.text, heard),
                    None => format!("'{}'", e.text),
                }
            })
            .collect();
        format!("matched {}", parts.join(", "))
    }

    /// Negated matches and vetoes, for QA to see why an intent lost.
    fn notes(&self, hits: &[Hit], standings: &[Standing]) -> String {
        let mut out = String::new();
        let mut seen = BTreeSet::new();
        for h in hits {
            if let Some(n) = &h.negated_by {
                let e = &self.lexicon.entries[h.entry];
                if seen.insert((e.kind, e.text.clone())) {
                    out.push_str(&format!(
                        "; ignored {} '{}' after '{}'",
                        e.kind.as_str(),
                        e.text,
                        n
                    ));
                }
            }
        }
        for s in standings {
            if let Some(v) = &s.vetoed_by {
                if hits.iter().any(|h| {
                    let e = &self.lexicon.entries[h.entry];
                    e.kind == s.kind && e.class != EntryClass::Veto && h.negated_by.is_none()
                }) {
                    out.push_str(&format!("; {} ruled out by '{}'", s.kind.as_str(), v));
                }
            }
        }
        out
    }
}

fn standing_mut(standings: &mut [Standing], kind: IntentKind) -> &mut Standing {
    let i = standings.iter().position(|s| s.kind == kind).unwrap_or(0);
    &mut standings[i]
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
