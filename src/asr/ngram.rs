//! Small back-off n-gram language models, trained on the phrases a turn
//! expects, written as ARPA text for PocketSphinx's n-gram search.
//!
//! Owns: counting (fractional counts, so a phrase can weigh more than
//! another), interpolated Witten-Bell smoothing and its exact conversion to
//! ARPA back-off form. A grammar forces a reply onto one whole phrase; an
//! n-gram model lets the decoder join pieces it has seen ("i already paid" +
//! "paid it last week"), which is how people actually answer.
//! Must never touch the decoder or the file system: the engine writes the
//! text where it needs it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Sentence start and end tokens, as ARPA and PocketSphinx spell them.
pub const BOS: &str = "<s>";
/// Sentence end token.
pub const EOS: &str = "</s>";

/// log10 probability written for `<s>` (never predicted).
const NEVER: f64 = -99.0;

/// A trained model: per order, the n-grams seen with their smoothed log10
/// probability, and per history its log10 back-off weight.
#[derive(Debug, Clone)]
pub struct NgramModel {
    order: usize,
    /// `probs[k]` holds the (k+1)-grams: words -> log10 p(last | rest).
    probs: Vec<BTreeMap<Vec<String>, f64>>,
    /// History -> log10 back-off weight (only histories seen with a continuation).
    backoff: BTreeMap<Vec<String>, f64>,
}

/// Counts of one history: continuation -> weighted count.
type Continuations = BTreeMap<String, f64>;

impl NgramModel {
    /// Trains an `order`-gram model (1..=5) on weighted sentences of words.
    /// Empty sentences are skipped; a weight of 0 or less drops a sentence.
    pub fn train<I>(sentences: I, order: usize) -> NgramModel
    where
        I: IntoIterator<Item = (Vec<String>, f64)>,
    {
        let order = order.clamp(1, 5);
        // counts[k]: history of k words -> continuations.
        let mut counts: Vec<BTreeMap<Vec<String>, Continuations>> = vec![BTreeMap::new(); order];
        for (words, weight) in sentences {
            if words.is_empty() || weight <= 0.0 {
                continue;
            }
            let mut s = Vec::with_capacity(words.len() + 2);
            s.push(BOS.to_string());
            s.extend(words);
            s.push(EOS.to_string());
            for i in 1..s.len() {
                for (k, level) in counts.iter_mut().enumerate() {
                    if k > i {
                        break;
                    }
                    let h = s[i - k..i].to_vec();
                    *level.entry(h).or_default().entry(s[i].clone()).or_default() += weight;
                }
            }
        }
        let vocab: BTreeSet<String> = counts[0].values().flat_map(|c| c.keys().cloned()).collect();
        let mut probs: Vec<BTreeMap<Vec<String>, f64>> = vec![BTreeMap::new(); order];
        let mut backoff = BTreeMap::new();
        // Unigrams: Witten-Bell against the uniform distribution over the vocabulary.
        let uni = counts[0].get(&Vec::new()).cloned().unwrap_or_default();
        let (total, types) = (uni.values().sum::<f64>(), uni.len() as f64);
        let uniform = 1.0 / vocab.len().max(1) as f64;
        let mut p_uni: BTreeMap<String, f64> = BTreeMap::new();
        for w in &vocab {
            let c = uni.get(w).copied().unwrap_or(0.0);
            let p = (c + types * uniform) / (total + types);
            p_uni.insert(w.clone(), p);
            probs[0].insert(vec![w.clone()], p.log10());
        }
        probs[0].insert(vec![BOS.to_string()], NEVER);
        // Higher orders, lowest first, so the lower distribution is known.
        for (k, level) in counts.iter().enumerate().skip(1) {
            let (lower, upper) = probs.split_at_mut(k);
            for (h, conts) in level {
                let c_h: f64 = conts.values().sum();
                let t_h = conts.len() as f64;
                let lambda_rest = t_h / (c_h + t_h);
                for (w, c) in conts {
                    let p_low = 10f64.powf(lower_prob(lower, &backoff, &h[1..], w, &p_uni));
                    let p = (c + t_h * p_low) / (c_h + t_h);
                    let mut g = h.clone();
                    g.push(w.clone());
                    upper[0].insert(g, p.log10());
                }
                backoff.insert(h.clone(), lambda_rest.log10());
            }
        }
        NgramModel {
            order,
            probs,
            backoff,
        }
    }

    /// The model's order.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Every word the model predicts (no `<s>`/`</s>`), sorted.
    pub fn words(&self) -> Vec<String> {
        self.probs[0]
            .keys()
            .map(|g| g[0].clone())
            .filter(|w| w != BOS && w != EOS)
            .collect()
    }

    /// log10 p(`word` | `history`), backing off as the decoder would.
    pub fn log10_prob(&self, history: &[String], word: &str) -> f64 {
        let mut uni = BTreeMap::new();
        for (g, p) in &self.probs[0] {
            uni.insert(g[0].clone(), 10f64.powf(*p));
        }
        let start = history.len().saturating_sub(self.order - 1);
        lower_prob(&self.probs, &self.backoff, &history[start..], word, &uni)
    }

    /// log10 probability of a whole sentence (with `<s>` and `</s>`).
    pub fn sentence_log10(&self, words: &[String]) -> f64 {
        let mut s = vec![BOS.to_string()];
        s.extend(words.iter().cloned());
        s.push(EOS.to_string());
        (1..s.len())
            .map(|i| {
                let from = i.saturating_sub(self.order - 1);
                self.log10_prob(&s[from..i], &s[i])
            })
            .sum()
    }

    /// The model as ARPA text.
    pub fn to_arpa(&self) -> String {
        let mut out = String::from("\\data\\\n");
        for (k, level) in self.probs.iter().enumerate() {
            let _ = writeln!(out, "ngram {}={}", k + 1, level.len());
        }
        for (k, level) in self.probs.iter().enumerate() {
            let _ = write!(out, "\n\\{}-grams:\n", k + 1);
            for (g, p) in level {
                let _ = write!(out, "{:.6}\t{}", p, g.join(" "));
                if k + 1 < self.order {
                    if let Some(b) = self.backoff.get(g) {
                        let _ = write!(out, "\t{b:.6}");
                    }
                }
                out.push('\n');
            }
        }
        out.push_str("\n\\end\\\n");
        out
    }
}

/// log10 p(w | h) from the levels below the one being built: the seen
/// n-gram if there is one, else the back-off weight of `h` times the
/// probability under the shorter history; unigrams from `uni`.
fn lower_prob(
    levels: &[BTreeMap<Vec<String>, f64>],
    backoff: &BTreeMap<Vec<String>, f64>,
    h: &[String],
    w: &str,
    uni: &BTreeMap<String, f64>,
) -> f64 {
    if h.is_empty() || h.len() >= levels.len() {
        if h.is_empty() {
            return uni.get(w).copied().unwrap_or(0.0).max(1e-12).log10();
        }
        return lower_prob(levels, backoff, &h[1..], w, uni);
    }
    let mut g = h.to_vec();
    g.push(w.to_string());
    if let Some(p) = levels[h.len()].get(&g) {
        return *p;
    }
    backoff.get(h).copied().unwrap_or(0.0) + lower_prob(levels, backoff, &h[1..], w, uni)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    fn model() -> NgramModel {
        NgramModel::train(
            [
                (s("i already paid"), 1.0),
                (s("i paid it last week"), 1.0),
                (s("i will pay on friday"), 2.0),
                (s("yes"), 5.0),
            ],
            3,
        )
    }

    #[test]
    fn every_history_distribution_sums_to_one() {
        let m = model();
        let mut vocab = m.words();
        vocab.push(EOS.into());
        for h in [
            vec![],
            s("i"),
            s("<s> i"),
            s("paid"),
            s("i paid"),
            s("friday"),
            s("yes"),
        ] {
            let total: f64 = vocab.iter().map(|w| 10f64.powf(m.log10_prob(&h, w))).sum();
            assert!((total - 1.0).abs() < 1e-9, "history {h:?} sums to {total}");
        }
    }

    #[test]
    fn seen_continuations_beat_unseen_and_weights_count() {
        let m = model();
        assert!(m.log10_prob(&s("i"), "paid") > m.log10_prob(&s("i"), "friday"));
        assert!(m.log10_prob(&s("<s>"), "yes") > m.log10_prob(&s("<s>"), "i"));
    }

    #[test]
    fn unseen_joins_of_seen_pieces_score_above_scrambled_words() {
        let m = model();
        let joined = m.sentence_log10(&s("i already paid it last week"));
        let scrambled = m.sentence_log10(&s("week it already last i paid"));
        assert!(joined > scrambled + 3.0, "{joined} vs {scrambled}");
    }

    #[test]
    fn arpa_text_lists_counts_that_match_its_sections() {
        let m = model();
        let a = m.to_arpa();
        assert!(a.starts_with("\\data\\\n") && a.trim_end().ends_with("\\end\\"));
        for k in 1..=3 {
            let declared: usize = a
                .lines()
                .find_map(|l| l.strip_prefix(&format!("ngram {k}=")))
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            let section = a
                .split(&format!("\\{k}-grams:\n"))
                .nth(1)
                .and_then(|r| r.split("\n\n").next())
                .map(|b| b.lines().count())
                .unwrap_or(0);
            assert_eq!(declared, section, "order {k}");
        }
        assert!(
            a.contains("-99.000000\t<s>\t"),
            "<s> is never predicted:\n{a}"
        );
        // Every trigram's history is listed as a bigram (ARPA readers need it).
        let bigrams: BTreeSet<&str> = a
            .split("\\2-grams:\n")
            .nth(1)
            .unwrap_or("")
            .split("\n\n")
            .next()
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.split('\t').nth(1))
            .collect();
        for l in a.split("\\3-grams:\n").nth(1).unwrap_or("").lines() {
            if let Some(g) = l.split('\t').nth(1) {
                let w: Vec<&str> = g.split(' ').collect();
                assert!(bigrams.contains(w[..2].join(" ").as_str()), "{g}");
            }
        }
    }

    #[test]
    fn empty_and_weightless_sentences_are_ignored() {
        let m = NgramModel::train([(vec![], 1.0), (s("no"), 0.0), (s("yes"), 1.0)], 2);
        assert_eq!(m.words(), vec!["yes".to_string()]);
    }
}
