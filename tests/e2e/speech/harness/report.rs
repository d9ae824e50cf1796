//! What an evaluation run measured and how it is printed: intent accuracy,
//! exact transcripts, WER, real-time factor, breakdowns by turn, voice,
//! speed, pitch and SNR, the confusion table and every wrong intent.
//!
//! Owns: [`ClipResult`], [`SpeechReport`] and the word-level scoring.
//! Never renders or decodes.

use std::collections::BTreeMap;
use std::fmt;

use duecall::asr::turns::{words, GrammarMode};
use duecall::intent::{IntentKind, Lexicon};

use super::render::Variant;
use super::sets::Utterance;

/// Tokens compared for exact match and WER: lower case, contractions
/// expanded by the lexicon's rewrites ("i'll" = "i will").
pub fn norm_tokens(text: &str, lexicon: &Lexicon) -> Vec<String> {
    words(text)
        .into_iter()
        .flat_map(|w| lexicon.rewrites.get(&w).cloned().unwrap_or_else(|| vec![w]))
        .collect()
}

/// Word edit distance (substitutions + insertions + deletions).
pub fn word_edits(reference: &[String], hyp: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hyp.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hyp.len() + 1];
        for (j, h) in hyp.iter().enumerate() {
            cur[j + 1] = (prev[j] + (r != h) as usize)
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hyp.len()]
}

/// What happened to one clip.
#[derive(Debug, Clone)]
pub struct ClipResult {
    /// Index into the utterance list.
    pub utt: usize,
    /// How it was spoken.
    pub variant: Variant,
    /// Expected intent.
    pub expected: IntentKind,
    /// What the recognizer heard.
    pub heard: String,
    /// Intent of what was heard.
    pub got: IntentKind,
    /// Intent of the written text (the classifier's own ceiling).
    pub text_intent: IntentKind,
    /// Normalised transcript equals the normalised text.
    pub exact: bool,
    /// Word edits against the text.
    pub edits: usize,
    /// The text is one of the grammar's phrases, word for word.
    pub in_grammar: bool,
    /// Words in the text.
    pub ref_words: usize,
    /// Clip length, s.
    pub audio_s: f64,
    /// Time in VAD + recognizer, s.
    pub decode_s: f64,
}

/// One evaluation run.
#[derive(Debug, Clone)]
pub struct SpeechReport {
    /// Grammar used.
    pub mode: GrammarMode,
    /// The utterances (ClipResult::utt indexes them).
    pub utterances: Vec<Utterance>,
    /// Per clip.
    pub clips: Vec<ClipResult>,
    /// Grammar size per turn and the phrases left out for unknown words.
    pub grammar: BTreeMap<String, (usize, Vec<String>)>,
}

impl SpeechReport {
    fn count(&self, f: impl Fn(&ClipResult) -> bool) -> usize {
        self.clips.iter().filter(|c| f(c)).count()
    }
    /// Clips whose intent came out as labelled, over all clips.
    pub fn intent_accuracy(&self) -> f64 {
        self.count(|c| c.got == c.expected) as f64 / self.clips.len().max(1) as f64
    }
    /// Clips whose transcript is the text, word for word.
    pub fn exact_rate(&self) -> f64 {
        self.count(|c| c.exact) as f64 / self.clips.len().max(1) as f64
    }
    /// Word error rate over all clips.
    pub fn wer(&self) -> f64 {
        let e: usize = self.clips.iter().map(|c| c.edits).sum();
        let n: usize = self.clips.iter().map(|c| c.ref_words).sum();
        e as f64 / n.max(1) as f64
    }
    /// Decode time over audio time (VAD + recognizer, one thread).
    pub fn rtf(&self) -> f64 {
        let a: f64 = self.clips.iter().map(|c| c.audio_s).sum();
        let d: f64 = self.clips.iter().map(|c| c.decode_s).sum();
        d / a.max(1e-9)
    }

    fn breakdown(
        &self,
        f: &mut fmt::Formatter<'_>,
        title: &str,
        key: impl Fn(&ClipResult) -> String,
    ) -> fmt::Result {
        let mut m: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for c in &self.clips {
            let e = m.entry(key(c)).or_default();
            e.0 += (c.got == c.expected) as usize;
            e.1 += c.exact as usize;
            e.2 += 1;
        }
        writeln!(f, "  by {title}:")?;
        for (k, (ok, ex, n)) in m {
            writeln!(
                f,
                "    {k:<16} intent {ok:>3}/{n:<3} {:5.1}%   exact {ex:>3}/{n:<3}",
                100.0 * ok as f64 / n.max(1) as f64
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for SpeechReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.clips.len();
        let ceiling = self.count(|c| c.text_intent == c.expected);
        writeln!(
            f,
            "grammar {}: {}",
            self.mode.name(),
            self.grammar
                .iter()
                .map(|(t, (g, d))| format!("{t} {g} phrases ({} left out)", d.len()))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        writeln!(
            f,
            "  clips {n}: intent {}/{n} = {:.1}%  (text itself {ceiling}/{n})  exact transcript {}/{n} = {:.1}%  WER {:.1}%  x real time {:.0} (rtf {:.4})",
            self.count(|c| c.got == c.expected),
            100.0 * self.intent_accuracy(),
            self.count(|c| c.exact),
            100.0 * self.exact_rate(),
            100.0 * self.wer(),
            1.0 / self.rtf().max(1e-9),
            self.rtf()
        )?;
        self.breakdown(f, "turn", |c| self.utterances[c.utt].turn.clone())?;
        self.breakdown(f, "text in grammar", |c| {
            if c.in_grammar {
                "yes".into()
            } else {
                "no".into()
            }
        })?;
        self.breakdown(f, "voice", |c| c.variant.voice.label())?;
        self.breakdown(f, "speed (wpm)", |c| match c.variant.speed {
            0..=154 => "140-154".into(),
            155..=169 => "155-169".into(),
            _ => "170-185".into(),
        })?;
        self.breakdown(f, "pitch", |c| match c.variant.pitch {
            0..=43 => "30-43".into(),
            44..=56 => "44-56".into(),
            _ => "57-70".into(),
        })?;
        self.breakdown(f, "SNR (dB)", |c| match c.variant.snr_db {
            0..=18 => "15-18".into(),
            19..=21 => "19-21".into(),
            _ => "22-25".into(),
        })?;
        // Confusion: rows expected, columns predicted (only intents present).
        let mut kinds: Vec<IntentKind> = self
            .clips
            .iter()
            .flat_map(|c| [c.expected, c.got])
            .collect();
        kinds.sort_by_key(|k| k.rank());
        kinds.dedup();
        let abbr = |k: &IntentKind| k.as_str().chars().take(6).collect::<String>();
        writeln!(f, "  confusion (rows expected, columns heard as):")?;
        write!(f, "    {:<20}", "")?;
        for k in &kinds {
            write!(f, "{:>7}", abbr(k))?;
        }
        writeln!(f)?;
        for e in &kinds {
            write!(f, "    {:<20}", e.as_str())?;
            for g in &kinds {
                let c = self.count(|c| c.expected == *e && c.got == *g);
                if c == 0 {
                    write!(f, "{:>7}", ".")?;
                } else {
                    write!(f, "{c:>7}")?;
                }
            }
            writeln!(f)?;
        }
        writeln!(f, "  wrong intents:")?;
        for c in self.clips.iter().filter(|c| c.got != c.expected) {
            let u = &self.utterances[c.utt];
            writeln!(
                f,
                "    {:<15} {:<40} -> {:<40} {:<15} [{} s{} p{} {}dB]",
                u.intent.as_str(),
                format!("{:?}", u.text),
                format!("{:?}", c.heard),
                c.got.as_str(),
                c.variant.voice.label(),
                c.variant.speed,
                c.variant.pitch,
                c.variant.snr_db
            )?;
        }
        Ok(())
    }
}
