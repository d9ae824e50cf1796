//! What kind of question duecall just asked, as the simulated debtor hears
//! it: a confirmation ("Just to be sure: ...?"), a re-ask ("Sorry, I did not
//! catch that. ..."), or anything else. The debtor knows duecall's voice:
//! each kind has a cue, the prompt's opening words rendered with the same
//! espeak-ng voice, and a prompt whose loudness contour opens like a cue's is
//! of its kind. A confirmation is also told apart from the others by its
//! whole contour: which intent it asks about ([`PromptKind::Confirm`]).
//! Pure: takes samples, never renders or plays audio.

use crate::dialogue::prompt::PromptId;

/// The kind of prompt heard, as far as a caller's habits care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum PromptKind {
    /// Anything a script answers in order.
    #[default]
    Other,
    /// "Just to be sure: ...?": a yes/no question about the last reply;
    /// which one ([`PromptId::confirming`]) when its whole contour told it
    /// (None: only its opening words were recognised).
    Confirm(Option<PromptId>),
    /// "Sorry, I did not catch that. ...": the last reply was not understood.
    Reask,
}

/// The opening words of each kind of prompt, per language of the persona's
/// espeak-ng voice (they open duecall's prompts/<lang>.toml texts: a unit
/// test checks).
pub fn cue_texts(voice: &str) -> &'static [(PromptKind, &'static str)] {
    if is_mandarin(voice) {
        &[
            (PromptKind::Confirm(None), "跟您确认一下："),
            (PromptKind::Reask, "抱歉，我没有听清。"),
            (PromptKind::Reask, "抱歉，我没有听清日期。"),
        ]
    } else {
        &[
            (PromptKind::Confirm(None), "Just to be sure:"),
            (PromptKind::Reask, "Sorry, I did not catch that."),
            (PromptKind::Reask, "Sorry, I did not catch the date."),
        ]
    }
}

/// duecall's confirmation questions (`[say.confirm_*]` but
/// `confirm_promise`, which reads back a date and opens like no cue: the
/// script answers it), per language of the persona's voice, worded as in
/// prompts/<lang>.toml (a unit test checks). `{name}` is the name duecall
/// asks for: the debtor's ear does not assume it (see [`PromptCues::with_confirms`]).
pub fn confirm_texts(voice: &str) -> &'static [(PromptId, &'static str)] {
    if is_mandarin(voice) {
        &[
            (
                PromptId::ConfirmStopCalling,
                "跟您确认一下：您希望我们不要再给您打电话，对吗？",
            ),
            (
                PromptId::ConfirmWrongNumber,
                "跟您确认一下：这不是{name}的电话，对吗？",
            ),
            (
                PromptId::ConfirmNotAvailable,
                "跟您确认一下：{name}现在不方便接电话，对吗？",
            ),
            (
                PromptId::ConfirmRequestAgent,
                "跟您确认一下：您希望和工作人员通话，对吗？",
            ),
            (
                PromptId::ConfirmAlreadyPaid,
                "跟您确认一下：您已经还款了，对吗？",
            ),
            (
                PromptId::ConfirmHardship,
                "跟您确认一下：您目前还款有困难，对吗？",
            ),
            (
                PromptId::ConfirmDispute,
                "跟您确认一下：您对这笔欠款有异议，对吗？",
            ),
        ]
    } else {
        &[
            (
                PromptId::ConfirmStopCalling,
                "Just to be sure: you would like us to stop calling you?",
            ),
            (
                PromptId::ConfirmWrongNumber,
                "Just to be sure: this is not the number of {name}?",
            ),
            (
                PromptId::ConfirmNotAvailable,
                "Just to be sure: {name} is not available right now?",
            ),
            (
                PromptId::ConfirmRequestAgent,
                "Just to be sure: you would like to speak with a person?",
            ),
            (
                PromptId::ConfirmAlreadyPaid,
                "Just to be sure: you have already paid?",
            ),
            (
                PromptId::ConfirmHardship,
                "Just to be sure: you are having trouble paying right now?",
            ),
            (
                PromptId::ConfirmDispute,
                "Just to be sure: you are disputing this debt?",
            ),
        ]
    }
}

/// A confirmation text split at its slot: the words before it (the whole
/// text when it has none) and, with a slot, the words after it (may be
/// empty or bare punctuation, which renders as nothing).
pub fn split_slot(text: &str) -> (&str, Option<&str>) {
    match (text.find('{'), text.find('}')) {
        (Some(i), Some(j)) if j > i => (&text[..i], Some(&text[j + 1..])),
        _ => (text, None),
    }
}

/// The words of each confirmation question the debtor renders to know it
/// by ([`PromptCues::with_confirms`]): before the slot (or the whole
/// question) and, with a slot, after it ("" when only punctuation follows).
pub fn confirm_parts(voice: &str) -> Vec<(PromptId, &'static str, Option<&'static str>)> {
    confirm_texts(voice)
        .iter()
        .map(|(id, text)| {
            let (head, tail) = split_slot(text);
            let tail = tail.map(|t| {
                if t.chars().any(char::is_alphanumeric) {
                    t.trim()
                } else {
                    ""
                }
            });
            (*id, head.trim(), tail)
        })
        .collect()
}

/// The espeak-ng voice a debtor with `voice` knows duecall's cues in: the
/// voice duecall speaks the debtor's language in (`prompts/<lang>.toml`
/// `[meta] voice`), whatever voice the debtor itself speaks in: a flite
/// speaker or an espeak-ng variant (`en-us+f3`, `en-gb`) hears duecall's
/// `en-us` prompts, not its own voice.
pub fn cue_voice(voice: &str) -> &str {
    if is_mandarin(voice) {
        "cmn-latn-pinyin"
    } else {
        "en-us"
    }
}

/// The speed duecall speaks a debtor's language at (`prompts/<lang>.toml`
/// `[meta] speed`, words a minute: a unit test checks): the debtor renders
/// the confirmation questions at it, as it knows them whole.
pub fn cue_speed(voice: &str) -> u32 {
    if is_mandarin(voice) {
        160
    } else {
        165
    }
}

/// Is this espeak-ng voice a Mandarin one?
pub fn is_mandarin(voice: &str) -> bool {
    voice.starts_with("cmn") || voice.starts_with("zh")
}

/// Samples per envelope frame (10 ms at 8 kHz).
const FRAME: usize = 80;
/// Cue-to-prompt similarity (Pearson correlation of the loudness contours)
/// at or above which a prompt is of the cue's kind. Every rendered prompt
/// of en and zh (cue_tests.rs): the cue's own prompts 0.89-1.0 (en 1.0, zh
/// confirmations 0.95, zh re-asks 0.90), every other prompt at most 0.71,
/// but zh `unsure_stop_close` ("抱歉，我没能听清...", 0.89: it opens like
/// a re-ask; a closing line, so a repeated reply to it is harmless).
pub const MATCH_AT: f32 = 0.85;
/// Speaking rates tried against each cue (duecall may speak a little
/// faster or slower than the sim renders: zh is 160 words a minute, the
/// sim 165).
const STRETCHES: [f32; 5] = [0.94, 0.97, 1.0, 1.03, 1.06];
/// How far into the heard audio a cue may start (ms): the tracker keeps
/// this much from before the detected start.
pub const PRE_ROLL_MS: usize = 500;

/// Loudness contour: dB of each 10 ms frame (floor 0 dB for digital silence).
pub fn envelope(pcm: &[i16]) -> Vec<f32> {
    pcm.chunks_exact(FRAME)
        .map(|f| {
            let e: f64 = f.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / FRAME as f64;
            (10.0 * (e + 1.0).log10()) as f32
        })
        .collect()
}

/// A contour spoken at `rate` times its length (linear interpolation).
fn stretch(env: &[f32], rate: f32) -> Vec<f32> {
    let n = ((env.len() as f32) * rate).round() as usize;
    if env.len() < 2 || n < 2 {
        return env.to_vec();
    }
    (0..n)
        .map(|i| {
            let x = i as f32 * (env.len() - 1) as f32 / (n - 1) as f32;
            let j = (x.floor() as usize).min(env.len() - 2);
            let f = x - j as f32;
            env[j] * (1.0 - f) + env[j + 1] * f
        })
        .collect()
}

fn pearson(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let ma = a.iter().sum::<f32>() / n as f32;
    let mb = b.iter().sum::<f32>() / n as f32;
    let (mut sab, mut saa, mut sbb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= f32::EPSILON || sbb <= f32::EPSILON {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

/// One cue: a kind and the loudness contour of its words.
#[derive(Debug, Clone, PartialEq)]
struct Cue {
    kind: PromptKind,
    envelope: Vec<f32>,
}

/// One confirmation question's contour: the words before its slot (the
/// whole question when it has none) and, with a slot, the words after it.
#[derive(Debug, Clone, PartialEq)]
struct ConfirmCue {
    id: PromptId,
    head: Vec<f32>,
    tail: Option<Vec<f32>>,
}

/// Whole-contour similarity (Pearson, the words after the common opening)
/// at or above which a confirmation is taken for the best-matching
/// question. Measured in cue_tests.rs (en and zh, through G.711, two names
/// in the slot): see [`WHICH_MARGIN`].
pub const WHICH_AT: f32 = 0.6;
/// How far the best question must score above the next best to be taken
/// for it; below, the debtor cannot tell which one it was asked.
pub const WHICH_MARGIN: f32 = 0.05;
/// The name in a slot may last this long (frames of 10 ms) ...
const NAME_MIN: usize = 15;
/// ... up to this long.
const NAME_MAX: usize = 300;
/// A question without a slot ends within this many frames of its
/// template's end (at the rate that matched).
const END_SLACK: usize = 30;

/// The voiced span of a contour: frames within 30 dB of its loudest.
fn voiced(env: &[f32]) -> std::ops::Range<usize> {
    let max = env.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return 0..0;
    }
    let loud = |e: &&f32| **e >= max - 30.0;
    let start = env.iter().position(|e| loud(&e)).unwrap_or(0);
    let end = env.iter().rposition(|e| loud(&e)).map_or(0, |i| i + 1);
    start..end.max(start)
}

/// A contour trimmed to its voiced span.
fn trimmed(env: Vec<f32>) -> Vec<f32> {
    let r = voiced(&env);
    env[r].to_vec()
}

/// The cues one persona listens for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptCues {
    cues: Vec<Cue>,
    confirms: Vec<ConfirmCue>,
}

impl PromptCues {
    /// Cues from their rendered audio (trimmed of leading silence); empty
    /// audio is left out.
    pub fn new<'a>(rendered: impl IntoIterator<Item = (PromptKind, &'a [i16])>) -> Self {
        let cues = rendered
            .into_iter()
            .map(|(kind, pcm)| Cue {
                kind,
                envelope: envelope(pcm),
            })
            .filter(|c| c.envelope.len() >= 20)
            .collect();
        PromptCues {
            cues,
            confirms: Vec::new(),
        }
    }

    /// Also tells which confirmation was asked, from each question
    /// rendered in duecall's voice: the words before its slot (the whole
    /// question without one; [`split_slot`]) and, with a slot, the words
    /// after it (empty when nothing follows). The name in the slot is not
    /// rendered: the debtor hears it as any name.
    pub fn with_confirms<'a>(
        mut self,
        rendered: impl IntoIterator<Item = (PromptId, &'a [i16], Option<&'a [i16]>)>,
    ) -> Self {
        self.confirms = rendered
            .into_iter()
            .map(|(id, head, tail)| ConfirmCue {
                id,
                head: trimmed(envelope(head)),
                tail: tail.map(|t| trimmed(envelope(t))),
            })
            .filter(|c| c.head.len() >= 20)
            .collect();
        self
    }

    /// No cues: every prompt is [`PromptKind::Other`].
    pub fn is_empty(&self) -> bool {
        self.cues.is_empty()
    }

    /// Samples of a prompt needed to judge it: its opening (pre-roll +
    /// longest cue) and, with confirmation questions known, the whole of
    /// the longest one with a name in its slot.
    pub fn needed_samples(&self) -> usize {
        let longest = self
            .cues
            .iter()
            .map(|c| c.envelope.len())
            .max()
            .unwrap_or(0);
        let question = self
            .confirms
            .iter()
            .map(|c| {
                let slot = c.tail.as_ref().map_or(0, |t| t.len() + NAME_MAX);
                (c.head.len() + slot) * 107 / 100 + END_SLACK
            })
            .max()
            .unwrap_or(0);
        PRE_ROLL_MS * 8 + (longest.max(question) + 10) * FRAME
    }

    /// Each cue's best similarity to the prompt's opening (`heard` starts up
    /// to [`PRE_ROLL_MS`] before the prompt's first word), over the lags and
    /// speaking rates tried.
    pub fn scores(&self, heard: &[i16]) -> Vec<(PromptKind, f32)> {
        let env = envelope(heard);
        let max_lag = PRE_ROLL_MS / 10 + 20;
        self.cues
            .iter()
            .map(|c| {
                let best = STRETCHES
                    .iter()
                    .map(|&r| stretch(&c.envelope, r))
                    .flat_map(|t| {
                        let n = t.len();
                        (0..=max_lag)
                            .take_while(|lag| lag + n <= env.len())
                            .map(|lag| pearson(&t, &env[lag..lag + n]))
                            .collect::<Vec<_>>()
                    })
                    .fold(0.0f32, f32::max);
                (c.kind, best)
            })
            .collect()
    }

    /// The frames of the confirmation cue's words (the opening every
    /// question shares, left out of [`Self::confirm_scores`]).
    fn opening_frames(&self) -> usize {
        self.cues
            .iter()
            .find(|c| matches!(c.kind, PromptKind::Confirm(_)))
            .map_or(0, |c| trimmed(c.envelope.clone()).len())
    }

    /// Each confirmation question's best similarity to the whole heard
    /// prompt (`heard` from up to [`PRE_ROLL_MS`] before its first word to
    /// after its last), over the speaking rates tried: the words after the
    /// shared opening, the words before a slot aligned at the prompt's
    /// start and those after it at the prompt's end, and 0 when the
    /// prompt's length does not fit the question's (with any name from
    /// 150 ms to 3 s in a slot).
    pub fn confirm_scores(&self, heard: &[i16]) -> Vec<(PromptId, f32)> {
        let env = envelope(heard);
        let end = voiced(&env).end;
        let skip0 = self.opening_frames();
        let max_lag = PRE_ROLL_MS / 10 + 20;
        self.confirms
            .iter()
            .map(|c| {
                let best = STRETCHES
                    .iter()
                    .filter_map(|&r| {
                        let head = stretch(&c.head, r);
                        let tail = c.tail.as_ref().map(|t| stretch(t, r));
                        let skip = ((skip0 as f32 * r).round() as usize).min(head.len());
                        // The question starts where its whole head fits best.
                        let lag = (0..=max_lag)
                            .take_while(|lag| lag + head.len() <= end)
                            .max_by(|&a, &b| {
                                pearson(&head, &env[a..a + head.len()])
                                    .total_cmp(&pearson(&head, &env[b..b + head.len()]))
                            })?;
                        let spoken = end - lag;
                        let mut tpl: Vec<f32> = head[skip..].to_vec();
                        let mut got: Vec<f32> = env[lag + skip..lag + head.len()].to_vec();
                        match &tail {
                            None => {
                                if spoken.abs_diff(head.len()) > END_SLACK {
                                    return None;
                                }
                            }
                            Some(tail) => {
                                let name = spoken.checked_sub(head.len() + tail.len())?;
                                if !(NAME_MIN..=NAME_MAX).contains(&name) {
                                    return None;
                                }
                                if !tail.is_empty() {
                                    // Its last words end where the prompt ends.
                                    let from = lag + head.len() + NAME_MIN;
                                    let at = (end.saturating_sub(15)..=(end + 5).min(env.len()))
                                        .filter(|e| {
                                            e.checked_sub(tail.len()).is_some_and(|s| s >= from)
                                        })
                                        .max_by(|&a, &b| {
                                            pearson(tail, &env[a - tail.len()..a])
                                                .total_cmp(&pearson(tail, &env[b - tail.len()..b]))
                                        })?;
                                    tpl.extend_from_slice(tail);
                                    got.extend_from_slice(&env[at - tail.len()..at]);
                                }
                            }
                        }
                        Some(pearson(&tpl, &got))
                    })
                    .fold(0.0f32, f32::max);
                (c.id, best)
            })
            .collect()
    }

    /// Which confirmation question `heard` is: the best of
    /// [`Self::confirm_scores`] at or above [`WHICH_AT`] and at least
    /// [`WHICH_MARGIN`] above the next best; None when none or two fit.
    pub fn which_confirm(&self, heard: &[i16]) -> Option<PromptId> {
        let mut s = self.confirm_scores(heard);
        s.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (id, best) = *s.first()?;
        let next = s.get(1).map_or(0.0, |x| x.1);
        (best >= WHICH_AT && best - next >= WHICH_MARGIN).then_some(id)
    }

    /// The prompt's kind: the best cue at or above [`MATCH_AT`], else
    /// Other; a confirmation says which question it is when its whole
    /// contour tells ([`Self::which_confirm`]).
    pub fn classify(&self, heard: &[i16]) -> PromptKind {
        let kind = self
            .scores(heard)
            .into_iter()
            .filter(|(_, s)| *s >= MATCH_AT)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(PromptKind::Other, |(k, _)| k);
        match kind {
            PromptKind::Confirm(_) => PromptKind::Confirm(self.which_confirm(heard)),
            k => k,
        }
    }
}

#[cfg(test)]
#[path = "cue_tests.rs"]
mod tests;
