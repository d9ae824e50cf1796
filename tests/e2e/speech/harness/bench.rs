//! The spoken benchmark of the recognizer calls use ([`CallRecognizer`]:
//! the grammar engine and Whisper per `[asr]`, their combination and
//! calibrated confidence): labelled replies of every turn, off-topic speech
//! and silence, rendered in development or evaluation voices through the
//! phone line, the VAD gate, the recognizer with the turn's grammar, the
//! intent classifier.
//!
//! Owns: running the clips ([`run_bench`]), the report ([`BenchReport`]:
//! accuracy per voice, turn and intent, the confusion matrix, off-topic
//! rejection, silence, identity short answers, the reliability table,
//! Whisper decode times) and fitting the calibration ([`fit_calibration`]).
//! Never changes what the recognizer or classifier do.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::time::Instant;

use chrono::NaiveTime;
use duecall::asr::call::{CallRecognizer, Heard};
use duecall::asr::confidence::{Calibration, Source};
use duecall::asr::{AsrError, Recognizer, FRAME_SAMPLES, SAMPLE_RATE};
use duecall::intent::eval::eval_today;
use duecall::intent::{Classifier, IntentKind};
use duecall::media::vad::{SpeechGate, VadConfig, VadEvent};

use super::render::{render, Variant, SILENCE};
use super::sets::Utterance;

/// Intents whose route changes what happens to the account (ARCHITECTURE.md).
pub const CONSEQUENTIAL: &[IntentKind] = &[
    IntentKind::StopCalling,
    IntentKind::WrongNumber,
    IntentKind::Dispute,
    IntentKind::Hardship,
    IntentKind::AlreadyPaid,
    IntentKind::RequestAgent,
    IntentKind::NotAvailable,
];

/// One clip's result.
#[derive(Debug, Clone)]
pub struct BenchClip {
    /// Index into the utterances.
    pub utt: usize,
    /// How it was spoken.
    pub variant: Variant,
    /// The labelled intent.
    pub expected: IntentKind,
    /// The intent of what was heard (after the rejection threshold, see
    /// [`BenchReport::rejecting_below`]).
    pub got: IntentKind,
    /// The intent of what was heard, before any rejection.
    pub got_heard: IntentKind,
    /// The intent of the written text (the classifier's own ceiling).
    pub text_intent: IntentKind,
    /// What the recognizer handed on.
    pub heard: String,
    /// Its confidence.
    pub confidence: f32,
    /// Everything the recognizer knew (None when the VAD heard nothing).
    pub detail: Option<Heard>,
    /// The calibration features of the verdict.
    pub features: Option<[f32; duecall::asr::confidence::FEATURES]>,
    /// Clip length, s.
    pub audio_s: f64,
    /// Wall time in VAD + recognizer, s.
    pub decode_s: f64,
}

impl BenchClip {
    /// The intent came out as labelled (silence: nothing, or nothing meant).
    pub fn right(&self) -> bool {
        self.got == self.expected
    }
}

/// One benchmark run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// What ran (engine per turn, voices, split).
    pub title: String,
    /// The utterances.
    pub utterances: Vec<Utterance>,
    /// Per clip.
    pub clips: Vec<BenchClip>,
    /// Replies heard with less confidence than this count as not
    /// understood (`[dialogue] reject_threshold`; 0: none rejected).
    pub reject: f32,
}

/// Feeds `pcm` through a VAD gate into `rec` and returns whether the VAD
/// found an utterance (the transcript is then in `rec.last_heard()`).
fn decode_through_vad(
    rec: &mut CallRecognizer,
    vad: &VadConfig,
    pcm: &[i16],
) -> Result<Option<duecall::asr::Transcript>, AsrError> {
    let mut gate = SpeechGate::new(vad.clone());
    let mut out = Vec::with_capacity(4 * FRAME_SAMPLES);
    let mut started = false;
    for frame in pcm.chunks(FRAME_SAMPLES) {
        out.clear();
        let ev = gate.process(frame, &mut out);
        if matches!(ev, Some(VadEvent::SpeechStart { .. })) {
            started = true;
        }
        if !out.is_empty() {
            rec.accept(&out)?;
        }
        if matches!(ev, Some(VadEvent::SpeechEnd { .. })) {
            return Ok(Some(rec.finish()?));
        }
    }
    if started || gate.force_end().is_some() {
        return Ok(Some(rec.finish()?));
    }
    rec.reset();
    Ok(None)
}

/// Runs the clips `(utterance index, variant)` through `rec`, listening
/// with each clip's turn grammar from `grammars`, classifying with
/// `classifier`. Renders missing clips into `cache` first.
#[allow(clippy::too_many_arguments)]
pub fn run_bench(
    title: &str,
    rec: &mut CallRecognizer,
    grammars: &HashMap<String, Vec<String>>,
    classifier: &Classifier,
    utterances: &[Utterance],
    clips: &[(usize, Variant)],
    vad: &VadConfig,
    cache: &Path,
) -> Result<BenchReport, AsrError> {
    let now = NaiveTime::from_hms_opt(10, 0, 0);
    let meaning = |t: &str| classifier.classify(t, eval_today(), now).kind;
    let mut out = Vec::with_capacity(clips.len());
    let mut active: Option<String> = None;
    for (i, (u, v)) in clips.iter().enumerate() {
        let utt = &utterances[*u];
        let pcm = render(&utt.text, v, cache)?;
        if active.as_deref() != Some(utt.turn.as_str()) {
            let phrases = grammars.get(&utt.turn).cloned().unwrap_or_default();
            rec.listen(&utt.turn, &phrases)?;
            active = Some(utt.turn.clone());
        }
        let t0 = Instant::now();
        let t = decode_through_vad(rec, vad, &pcm)?;
        let decode_s = t0.elapsed().as_secs_f64();
        let detail = if t.is_some() {
            rec.last_heard().cloned()
        } else {
            None
        };
        let heard = t.as_ref().map(|t| t.text.clone()).unwrap_or_default();
        let got = if heard.trim().is_empty() {
            IntentKind::Unknown
        } else {
            meaning(&heard)
        };
        let text_intent = if utt.text == SILENCE {
            IntentKind::Unknown
        } else {
            meaning(&utt.text)
        };
        let features = detail.as_ref().and_then(|d| {
            (d.verdict.source != Source::Nothing)
                .then(|| Calibration::features(&d.evidence, d.verdict.source, Some(got)))
        });
        out.push(BenchClip {
            utt: *u,
            variant: v.clone(),
            expected: utt.intent,
            got,
            got_heard: got,
            text_intent,
            confidence: t.as_ref().map(|t| t.confidence).unwrap_or(0.0),
            heard,
            detail,
            features,
            audio_s: pcm.len() as f64 / SAMPLE_RATE as f64,
            decode_s,
        });
        if std::env::var_os("SPEECH_PROGRESS").is_some() && i % 50 == 49 {
            eprintln!("  {} / {} clips", i + 1, clips.len());
        }
    }
    Ok(BenchReport {
        title: title.to_string(),
        utterances: utterances.to_vec(),
        clips: out,
        reject: 0.0,
    })
}

fn pct(a: usize, n: usize) -> f64 {
    100.0 * a as f64 / n.max(1) as f64
}

impl BenchReport {
    /// The report as the dialogue would act on it with `[dialogue]
    /// reject_threshold = t`: a reply heard with less confidence is
    /// not understood (unknown).
    pub fn rejecting_below(&self, t: f32) -> BenchReport {
        let mut r = self.clone();
        r.reject = t;
        for c in &mut r.clips {
            c.got = if c.confidence < t {
                IntentKind::Unknown
            } else {
                c.got_heard
            };
        }
        r
    }

    /// The report with every clip's confidence recomputed by `model` from
    /// its features (clips with no features keep theirs), rejection as before.
    pub fn with_model(&self, model: &Calibration) -> BenchReport {
        let mut r = self.clone();
        for c in &mut r.clips {
            if let Some(x) = &c.features {
                c.confidence = model.probability(x);
            }
        }
        r.rejecting_below(self.reject)
    }

    /// Off-topic rejection and on-topic results at rejection thresholds
    /// 0.05..0.6: (threshold, off-topic rejected, on-topic right, on-topic
    /// rejected, on-topic replies, off-topic replies).
    pub fn rejection_sweep(&self) -> Vec<(f32, usize, usize, usize, usize, usize)> {
        [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6]
            .iter()
            .map(|&t| {
                let r = self.rejecting_below(t);
                let (oa, on) = r.off_topic_rejected();
                let (ra, rn) = r.reply_accuracy();
                let lost = r
                    .spoken()
                    .filter(|c| c.expected != IntentKind::Unknown)
                    .filter(|c| c.got_heard != IntentKind::Unknown && c.confidence < t)
                    .count();
                (t, oa, ra, lost, rn, on)
            })
            .collect()
    }

    fn is_silence(&self, c: &BenchClip) -> bool {
        self.utterances[c.utt].text == SILENCE
    }

    /// Clips of spoken replies (not silence).
    pub fn spoken(&self) -> impl Iterator<Item = &BenchClip> {
        self.clips.iter().filter(|c| !self.is_silence(c))
    }

    /// Intent accuracy over spoken replies with an intent (not off-topic,
    /// not silence): the "reply intents right end to end" number.
    pub fn reply_accuracy(&self) -> (usize, usize) {
        let v: Vec<_> = self
            .spoken()
            .filter(|c| c.expected != IntentKind::Unknown)
            .collect();
        (v.iter().filter(|c| c.right()).count(), v.len())
    }

    /// Off-topic replies heard as meaning nothing.
    pub fn off_topic_rejected(&self) -> (usize, usize) {
        let v: Vec<_> = self
            .spoken()
            .filter(|c| c.expected == IntentKind::Unknown)
            .collect();
        (
            v.iter().filter(|c| c.got == IntentKind::Unknown).count(),
            v.len(),
        )
    }

    /// Silent clips where nothing was heard (or nothing meant).
    pub fn silence_quiet(&self) -> (usize, usize) {
        let v: Vec<_> = self.clips.iter().filter(|c| self.is_silence(c)).collect();
        (
            v.iter().filter(|c| c.got == IntentKind::Unknown).count(),
            v.len(),
        )
    }

    /// Identity-turn short answers (at most three words; confirmations,
    /// denials, "who's asking?") heard right.
    pub fn identity_short(&self) -> (usize, usize) {
        let v: Vec<_> = self
            .spoken()
            .filter(|c| {
                let u = &self.utterances[c.utt];
                u.turn == "identity"
                    && matches!(
                        u.intent,
                        IntentKind::IdentityConfirmed
                            | IntentKind::IdentityDenied
                            | IntentKind::WhoIsCalling
                    )
                    && u.text.split_whitespace().count() <= 3
            })
            .collect();
        (v.iter().filter(|c| c.right()).count(), v.len())
    }

    /// Replies heard as a consequential intent they did not mean.
    pub fn wrong_consequential(&self) -> (usize, usize) {
        let n = self.clips.len();
        (
            self.clips
                .iter()
                .filter(|c| !c.right() && CONSEQUENTIAL.contains(&c.got))
                .count(),
            n,
        )
    }

    /// Of [`Self::wrong_consequential`], those heard at least as sure as
    /// the dialogue's `confirm_threshold`: acted on at once, not confirmed.
    pub fn wrong_consequential_acted(&self) -> (usize, usize) {
        let confirm = duecall::dialogue::config::DialogueConfig::default().confirm_threshold;
        let n = self.clips.len();
        (
            self.clips
                .iter()
                .filter(|c| !c.right() && CONSEQUENTIAL.contains(&c.got) && c.confidence >= confirm)
                .count(),
            n,
        )
    }

    /// Expected calibration error over `bins` equal-width confidence bins.
    pub fn ece(&self, bins: usize) -> f64 {
        let v: Vec<_> = self.spoken().filter(|c| !c.heard.is_empty()).collect();
        let mut sum = 0.0;
        for b in 0..bins {
            let (lo, hi) = (b as f32 / bins as f32, (b + 1) as f32 / bins as f32);
            let inb: Vec<_> = v
                .iter()
                .filter(|c| {
                    c.confidence >= lo
                        && (c.confidence < hi || (b + 1 == bins && c.confidence <= 1.0))
                })
                .collect();
            if inb.is_empty() {
                continue;
            }
            let acc = inb.iter().filter(|c| c.right()).count() as f64 / inb.len() as f64;
            let conf = inb.iter().map(|c| c.confidence as f64).sum::<f64>() / inb.len() as f64;
            sum += (acc - conf).abs() * inb.len() as f64;
        }
        sum / v.len().max(1) as f64
    }

    fn breakdown(
        &self,
        f: &mut fmt::Formatter<'_>,
        title: &str,
        key: impl Fn(&BenchClip) -> String,
    ) -> fmt::Result {
        let mut m: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for c in &self.clips {
            let e = m.entry(key(c)).or_default();
            e.0 += c.right() as usize;
            e.1 += 1;
        }
        writeln!(f, "  by {title}:")?;
        for (k, (ok, n)) in m {
            writeln!(f, "    {k:<28} {ok:>4}/{n:<4} {:5.1}%", pct(ok, n))?;
        }
        Ok(())
    }

    /// Percentile of Whisper decode times (ms) over clips that ran it.
    fn whisper_ms(&self, p: f64) -> Option<u64> {
        let mut v: Vec<u64> = self
            .clips
            .iter()
            .filter_map(|c| c.detail.as_ref()?.whisper_ms.map(|(d, w)| d + w))
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(v[((v.len() - 1) as f64 * p).round() as usize])
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.clips.len();
        let (ra, rn) = self.reply_accuracy();
        let (oa, on) = self.off_topic_rejected();
        let (sa, sn) = self.silence_quiet();
        let (ia, inn) = self.identity_short();
        let (wc, wn) = self.wrong_consequential();
        let all = self.clips.iter().filter(|c| c.right()).count();
        let ceiling = self
            .spoken()
            .filter(|c| c.expected != IntentKind::Unknown && c.text_intent == c.expected)
            .count();
        writeln!(f, "=== {} ===", self.title)?;
        writeln!(
            f,
            "  clips {n}: all intents {all}/{n} = {:.1}%",
            pct(all, n)
        )?;
        writeln!(
            f,
            "  reply intents right end to end: {ra}/{rn} = {:.1}%   (the classifier on the written text: {ceiling}/{rn} = {:.1}%)",
            pct(ra, rn),
            pct(ceiling, rn)
        )?;
        writeln!(
            f,
            "  off-topic rejected: {oa}/{on} = {:.1}%   silence heard as nothing: {sa}/{sn}",
            pct(oa, on)
        )?;
        writeln!(
            f,
            "  identity short answers right: {ia}/{inn} = {:.1}%",
            pct(ia, inn)
        )?;
        let (wa, _) = self.wrong_consequential_acted();
        writeln!(
            f,
            "  heard as a consequential intent not meant: {wc}/{wn} = {:.1}%; of them sure enough to act on without confirming: {wa} = {:.1}%",
            pct(wc, wn),
            pct(wa, wn)
        )?;
        writeln!(
            f,
            "  rejection threshold {:.2} (replies heard less sure than this count as not understood)",
            self.reject
        )?;
        let rtf: f64 = self.clips.iter().map(|c| c.decode_s).sum::<f64>()
            / self.clips.iter().map(|c| c.audio_s).sum::<f64>().max(1e-9);
        write!(f, "  VAD+recognizer wall time / audio: {rtf:.3}")?;
        if let (Some(p50), Some(p95)) = (self.whisper_ms(0.5), self.whisper_ms(0.95)) {
            let spec = self
                .clips
                .iter()
                .filter(|c| c.detail.as_ref().is_some_and(|d| d.speculative))
                .count();
            write!(
                f,
                "   Whisper decode+queue p50 {p50} ms p95 {p95} ms; speculative {spec}/{n}"
            )?;
        }
        writeln!(f)?;
        // Sources and agreement.
        let mut src: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for c in self.spoken() {
            let k = match &c.detail {
                None => "nothing (VAD)".to_string(),
                Some(d) => format!(
                    "{:?}{}",
                    d.verdict.source,
                    match d.verdict.agree {
                        Some(true) => " (engines agree)",
                        Some(false) => " (engines disagree)",
                        None => "",
                    }
                ),
            };
            let e = src.entry(k).or_default();
            e.0 += c.right() as usize;
            e.1 += 1;
        }
        writeln!(f, "  by source of the text (spoken clips):")?;
        for (k, (ok, m)) in src {
            writeln!(f, "    {k:<28} {ok:>4}/{m:<4} {:5.1}%", pct(ok, m))?;
        }
        self.breakdown(f, "voice", |c| c.variant.voice.label())?;
        self.breakdown(f, "turn", |c| self.utterances[c.utt].turn.clone())?;
        self.breakdown(f, "intent", |c| {
            if self.is_silence(c) {
                "(silence)".into()
            } else {
                c.expected.as_str().to_string()
            }
        })?;
        // Reliability table.
        writeln!(
            f,
            "  calibration (spoken clips with words heard; ECE {:.3}):",
            self.ece(10)
        )?;
        writeln!(f, "    confidence   clips   mean conf   accuracy")?;
        for b in 0..10 {
            let (lo, hi) = (b as f32 / 10.0, (b + 1) as f32 / 10.0);
            let inb: Vec<_> = self
                .spoken()
                .filter(|c| !c.heard.is_empty())
                .filter(|c| {
                    c.confidence >= lo && (c.confidence < hi || (b == 9 && c.confidence <= 1.0))
                })
                .collect();
            if inb.is_empty() {
                continue;
            }
            let acc = inb.iter().filter(|c| c.right()).count();
            let conf = inb.iter().map(|c| c.confidence as f64).sum::<f64>() / inb.len() as f64;
            writeln!(
                f,
                "    {lo:.1}-{hi:.1}      {:>5}   {conf:>9.2}   {:>7.1}%",
                inb.len(),
                pct(acc, inb.len())
            )?;
        }
        writeln!(
            f,
            "  rejection sweep (threshold: off-topic rejected, on-topic right, on-topic heard but rejected):"
        )?;
        for (t, oa, ra, lost, rn, on) in self.rejection_sweep() {
            writeln!(
                f,
                "    {t:.2}: off-topic {oa:>3}/{on:<3} {:5.1}%   on-topic right {ra:>4}/{rn:<4} {:5.1}%   rejected {lost}",
                pct(oa, on),
                pct(ra, rn)
            )?;
        }
        // Confusion.
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
                let c = self
                    .clips
                    .iter()
                    .filter(|c| c.expected == *e && c.got == *g)
                    .count();
                if c == 0 {
                    write!(f, "{:>7}", ".")?;
                } else {
                    write!(f, "{c:>7}")?;
                }
            }
            writeln!(f)?;
        }
        if std::env::var_os("SPEECH_WRONG").is_some() {
            writeln!(f, "  wrong intents:")?;
            for c in self.clips.iter().filter(|c| !c.right()) {
                let u = &self.utterances[c.utt];
                let (g, w) = c
                    .detail
                    .as_ref()
                    .map(|d| {
                        (
                            d.evidence
                                .grammar
                                .as_ref()
                                .map(|g| g.text.clone())
                                .unwrap_or_default(),
                            d.evidence
                                .whisper
                                .as_ref()
                                .map(|w| w.text.clone())
                                .unwrap_or_default(),
                        )
                    })
                    .unwrap_or_default();
                writeln!(
                    f,
                    "    {:<9} {:<15} {:<38} -> {:<15} {:.2}  g:{:?} w:{:?} [{}]",
                    u.turn,
                    u.intent.as_str(),
                    format!("{:?}", u.text),
                    c.got.as_str(),
                    c.confidence,
                    g,
                    w,
                    c.variant.voice.label()
                )?;
            }
        }
        Ok(())
    }
}

impl BenchReport {
    /// Writes one JSON line per clip (labels, both hypotheses, scores,
    /// verdict) for offline study of the combination rule.
    pub fn dump(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for c in &self.clips {
            let u = &self.utterances[c.utt];
            let v = serde_json::json!({
                "turn": u.turn,
                "text": u.text,
                "expected": u.intent.as_str(),
                "text_intent": c.text_intent.as_str(),
                "got": c.got.as_str(),
                "voice": c.variant.voice.label(),
                "heard": c.heard,
                "confidence": c.confidence,
                "features": c.features.map(|x| x.to_vec()),
                "evidence": c.detail.as_ref().map(|d| &d.evidence),
                "source": c.detail.as_ref().map(|d| d.verdict.source),
                "whisper_raw": c.detail.as_ref().and_then(|d| d.whisper_raw.clone()),
                "whisper_ms": c.detail.as_ref().and_then(|d| d.whisper_ms),
                "speculative": c.detail.as_ref().map(|d| d.speculative),
                "whisper_unsound": c.detail.as_ref().and_then(|d| d.whisper_unsound).map(|u| format!("{u:?}")),
                "whisper_intent_conf": c.detail.as_ref().and_then(|d| d.whisper_intent_conf),
                "engine": c.detail.as_ref().map(|d| d.engine.as_str()),
                "audio_s": c.audio_s,
                "decode_s": c.decode_s,
            });
            writeln!(f, "{v}")?;
        }
        f.flush()
    }
}

/// Fits the calibration's logistic model on `clips` (features of each
/// clip's verdict, label: its intent came out right) by gradient descent
/// with a little L2; returns the model and its log-loss.
pub fn fit_calibration(clips: &[&BenchClip]) -> (Calibration, f64) {
    use duecall::asr::confidence::FEATURES;
    let data: Vec<([f32; FEATURES], f32)> = clips
        .iter()
        .filter_map(|c| c.features.map(|x| (x, f32::from(c.right()))))
        .collect();
    let mut b = 0.0f64;
    let mut w = [0.0f64; FEATURES];
    let n = data.len().max(1) as f64;
    let lr = 0.5;
    let l2 = 1e-3;
    for _ in 0..20_000 {
        let mut gb = 0.0;
        let mut gw = [0.0f64; FEATURES];
        for (x, y) in &data {
            let z = b + w.iter().zip(x).map(|(w, x)| w * *x as f64).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let e = p - *y as f64;
            gb += e;
            for k in 0..FEATURES {
                gw[k] += e * x[k] as f64;
            }
        }
        b -= lr * gb / n;
        for k in 0..FEATURES {
            w[k] -= lr * (gw[k] / n + l2 * w[k]);
        }
    }
    let model = Calibration::from_weights(b as f32, w.map(|v| v as f32));
    let loss = data
        .iter()
        .map(|(x, y)| {
            let p = model.probability(x).clamp(1e-6, 1.0 - 1e-6) as f64;
            -(*y as f64 * p.ln() + (1.0 - *y as f64) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / n;
    (model, loss)
}
