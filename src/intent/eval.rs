//! Scoring the classifier on labelled utterances (TSV `intent<TAB>text`).
//!
//! Owns the evaluation report (accuracy, per-intent precision/recall, the
//! confusion table) and the test that holds the shipped lexicons to their
//! target on `tests/data/intents_{en,zh}.tsv`. Pure: the caller reads files.
//! Lines starting with `#` are comments; `# section: <name>` starts a named
//! part of the file (dev / holdout), reported separately.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{NaiveDate, NaiveTime};

use super::{Classifier, Intent, IntentError, IntentKind};

/// One labelled utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledRow {
    /// The expected intent.
    pub intent: IntentKind,
    /// The utterance.
    pub text: String,
    /// The file section it came from ("" before any `# section:` line).
    pub section: String,
    /// 1-based line number.
    pub line: usize,
}

/// Parses TSV `intent<TAB>text` rows; errors name the line.
pub fn parse_tsv(text: &str, source_name: &str) -> Result<Vec<LabelledRow>, IntentError> {
    let mut rows = Vec::new();
    let mut section = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if let Some(c) = line.strip_prefix('#') {
            if let Some(name) = c.trim().strip_prefix("section:") {
                section = name.trim().to_string();
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let err = |problem: String| IntentError::Data {
            source_name: source_name.to_string(),
            line: i + 1,
            problem,
        };
        let (label, utt) = line
            .split_once('\t')
            .ok_or_else(|| err("expected intent<TAB>text".into()))?;
        let intent = IntentKind::parse(label.trim())
            .ok_or_else(|| err(format!("unknown intent \"{label}\"")))?;
        rows.push(LabelledRow {
            intent,
            text: utt.to_string(),
            section: section.clone(),
            line: i + 1,
        });
    }
    Ok(rows)
}

/// Precision and recall of one intent.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentScore {
    /// The intent.
    pub kind: IntentKind,
    /// Rows labelled with it.
    pub support: usize,
    /// Rows predicted as it.
    pub predicted: usize,
    /// Rows labelled and predicted as it.
    pub correct: usize,
}

impl IntentScore {
    /// correct / predicted (1 when nothing was predicted).
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            1.0
        } else {
            self.correct as f64 / self.predicted as f64
        }
    }
    /// correct / support (1 when there is no support).
    pub fn recall(&self) -> f64 {
        if self.support == 0 {
            1.0
        } else {
            self.correct as f64 / self.support as f64
        }
    }
}

/// The result of an evaluation.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// Rows scored.
    pub total: usize,
    /// Rows classified as labelled.
    pub correct: usize,
    /// correct / total.
    pub accuracy: f64,
    /// Per intent, in priority order.
    pub per_intent: Vec<IntentScore>,
    /// (expected, predicted) -> count.
    pub confusion: BTreeMap<(IntentKind, IntentKind), usize>,
    /// Accuracy per file section: (section, correct, total).
    pub sections: Vec<(String, usize, usize)>,
    /// The misclassified rows with what was predicted.
    pub errors: Vec<(LabelledRow, Intent)>,
}

/// The fixed "today" used for evaluation (a Wednesday), so runs repeat.
pub fn eval_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 5, 15).unwrap_or(NaiveDate::MIN)
}

/// Classifies every row (today = [`eval_today`], 10:00) and scores it.
pub fn evaluate(classifier: &Classifier, rows: &[LabelledRow]) -> EvalReport {
    let now = NaiveTime::from_hms_opt(10, 0, 0);
    let mut confusion = BTreeMap::new();
    let mut errors = Vec::new();
    let mut sections: Vec<(String, usize, usize)> = Vec::new();
    let mut correct = 0;
    for row in rows {
        let got = classifier.classify(&row.text, eval_today(), now);
        *confusion.entry((row.intent, got.kind)).or_insert(0) += 1;
        let ok = got.kind == row.intent;
        let si = match sections.iter().position(|s| s.0 == row.section) {
            Some(i) => i,
            None => {
                sections.push((row.section.clone(), 0, 0));
                sections.len() - 1
            }
        };
        sections[si].2 += 1;
        if ok {
            correct += 1;
            sections[si].1 += 1;
        } else {
            errors.push((row.clone(), got));
        }
    }
    let per_intent = IntentKind::PRIORITY
        .iter()
        .map(|&k| IntentScore {
            kind: k,
            support: rows.iter().filter(|r| r.intent == k).count(),
            predicted: confusion
                .iter()
                .filter(|((_, p), _)| *p == k)
                .map(|(_, n)| n)
                .sum(),
            correct: confusion.get(&(k, k)).copied().unwrap_or(0),
        })
        .collect();
    let total = rows.len();
    EvalReport {
        total,
        correct,
        accuracy: if total == 0 {
            0.0
        } else {
            correct as f64 / total as f64
        },
        per_intent,
        confusion,
        sections,
        errors,
    }
}

fn short(k: IntentKind) -> &'static str {
    match k {
        IntentKind::WrongNumber => "wrong",
        IntentKind::StopCalling => "stop",
        IntentKind::Dispute => "disp",
        IntentKind::RequestAgent => "agent",
        IntentKind::Hardship => "hard",
        IntentKind::AlreadyPaid => "paid",
        IntentKind::PromiseToPay => "prom",
        IntentKind::CallbackLater => "cb",
        IntentKind::NotAvailable => "n/a",
        IntentKind::WhoIsCalling => "who",
        IntentKind::IdentityDenied => "id-no",
        IntentKind::IdentityConfirmed => "id-ok",
        IntentKind::Unknown => "unk",
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "accuracy {:.3} ({}/{})",
            self.accuracy, self.correct, self.total
        )?;
        for (name, c, t) in &self.sections {
            let name = if name.is_empty() {
                "(no section)"
            } else {
                name
            };
            writeln!(
                f,
                "  {name}: {:.3} ({c}/{t})",
                *c as f64 / (*t).max(1) as f64
            )?;
        }
        writeln!(
            f,
            "{:<20} {:>7} {:>5} {:>9} {:>6}",
            "intent", "support", "pred", "precision", "recall"
        )?;
        for s in &self.per_intent {
            writeln!(
                f,
                "{:<20} {:>7} {:>5} {:>9.3} {:>6.3}",
                s.kind.as_str(),
                s.support,
                s.predicted,
                s.precision(),
                s.recall()
            )?;
        }
        writeln!(f, "confusion (rows = expected, columns = predicted):")?;
        write!(f, "{:<20}", "")?;
        for k in IntentKind::PRIORITY {
            write!(f, "{:>6}", short(k))?;
        }
        writeln!(f)?;
        for e in IntentKind::PRIORITY {
            write!(f, "{:<20}", e.as_str())?;
            for p in IntentKind::PRIORITY {
                match self.confusion.get(&(e, p)) {
                    Some(n) => write!(f, "{n:>6}")?,
                    None => write!(f, "{:>6}", ".")?,
                }
            }
            writeln!(f)?;
        }
        if !self.errors.is_empty() {
            writeln!(f, "errors:")?;
            for (row, got) in &self.errors {
                writeln!(
                    f,
                    "  line {} [{}] expected {} got {} ({:.2}): {} -- {}",
                    row.line,
                    row.section,
                    row.intent.as_str(),
                    got.kind.as_str(),
                    got.confidence,
                    row.text,
                    got.reason
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::Lexicon;

    fn check(lang: &str, prompts: &str, data: &str) -> EvalReport {
        let lex = Lexicon::from_toml_str(prompts, lang).expect("shipped lexicon parses");
        let rows = parse_tsv(data, lang).expect("shipped data parses");
        let report = evaluate(&Classifier::new(lex), &rows);
        println!("==== {lang} ====\n{report}");
        report
    }

    #[test]
    fn english_lexicon_reaches_95_percent_on_labelled_data() {
        let r = check(
            "en",
            include_str!("../../prompts/en.toml"),
            include_str!("../../tests/data/intents_en.tsv"),
        );
        assert!(
            r.total >= 300,
            "need at least 300 English rows, have {}",
            r.total
        );
        assert!(r.accuracy >= 0.95, "English accuracy {:.3}", r.accuracy);
    }

    /// prompts/en.replies.tsv and en.replies.extra.tsv: 1720 replies from six
    /// writers who never saw the lexicon's own data (A, B: 720 rows; C-F, the
    /// extra file: 1000 rows added later, first scored 0.846). Measured at
    /// 0.980 (1685/1720; C-F 972/1000) after the lexicon learned from them;
    /// this holds it one point under that. Rows left unmatched on purpose: "no, this is his wife" (C-F label
    /// it identity_denied, but prompts/en.replies.jsgf and its test make
    /// "this is his <relative>" not_available), labels that contradict other
    /// writers or tests/data, and replies that need the turn or the debtor's
    /// name ("this afternoon", "jane here", "jordan's in class", "it is",
    /// "what day is it today").
    #[test]
    fn example_replies_from_independent_writers_keep_their_measured_accuracy() {
        // The two files are joined as text: without a final newline the first
        // file's last row would swallow the second file's first line.
        assert!(include_str!("../../prompts/en.replies.tsv").ends_with('\n'));
        let r = check(
            "en",
            include_str!("../../prompts/en.toml"),
            concat!(
                include_str!("../../prompts/en.replies.tsv"),
                include_str!("../../prompts/en.replies.extra.tsv")
            ),
        );
        assert!(
            r.total >= 1700,
            "need the 1720 example replies, have {}",
            r.total
        );
        assert!(
            r.accuracy >= 0.97,
            "English example replies accuracy {:.3} (measured 0.980)",
            r.accuracy
        );
    }

    #[test]
    fn mandarin_lexicon_reaches_95_percent_on_labelled_data() {
        let r = check(
            "zh",
            include_str!("../../prompts/zh.toml"),
            include_str!("../../tests/data/intents_zh.tsv"),
        );
        assert!(
            r.total >= 300,
            "need at least 300 Mandarin rows, have {}",
            r.total
        );
        assert!(r.accuracy >= 0.95, "Mandarin accuracy {:.3}", r.accuracy);
    }

    #[test]
    fn every_intent_is_covered_by_the_data() {
        for data in [
            include_str!("../../tests/data/intents_en.tsv"),
            include_str!("../../tests/data/intents_zh.tsv"),
        ] {
            let rows = parse_tsv(data, "data").unwrap();
            for k in IntentKind::PRIORITY {
                assert!(
                    rows.iter().filter(|r| r.intent == k).count() >= 5,
                    "{} has fewer than 5 rows",
                    k.as_str()
                );
            }
        }
    }

    #[test]
    fn bad_tsv_rows_name_the_line() {
        let e = parse_tsv("already_paid\tok\nnot_an_intent\tx\n", "t.tsv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.tsv line 2: unknown intent \"not_an_intent\""
        );
        let e = parse_tsv("# c\nno tab here\n", "t.tsv").unwrap_err();
        assert!(e.to_string().starts_with("t.tsv line 2:"));
    }
}
