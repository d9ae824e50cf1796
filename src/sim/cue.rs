//! What kind of question duecall just asked, as the simulated debtor hears
//! it: a confirmation ("Just to be sure: ...?"), a re-ask ("Sorry, I did not
//! catch that. ..."), or anything else. The debtor knows duecall's voice:
//! each kind has a cue, the prompt's opening words rendered with the same
//! espeak-ng voice, and a prompt whose loudness contour opens like a cue's is
//! of its kind. Pure: takes samples, never renders or plays audio.

/// The kind of prompt heard, as far as a caller's habits care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum PromptKind {
    /// Anything a script answers in order.
    #[default]
    Other,
    /// "Just to be sure: ...?": a yes/no question about the last reply.
    Confirm,
    /// "Sorry, I did not catch that. ...": the last reply was not understood.
    Reask,
}

/// The opening words of each kind of prompt, per language of the persona's
/// espeak-ng voice (they open duecall's prompts/<lang>.toml texts: a unit
/// test checks).
pub fn cue_texts(voice: &str) -> &'static [(PromptKind, &'static str)] {
    if is_mandarin(voice) {
        &[
            (PromptKind::Confirm, "跟您确认一下："),
            (PromptKind::Reask, "抱歉，我没有听清。"),
            (PromptKind::Reask, "抱歉，我没有听清日期。"),
        ]
    } else {
        &[
            (PromptKind::Confirm, "Just to be sure:"),
            (PromptKind::Reask, "Sorry, I did not catch that."),
            (PromptKind::Reask, "Sorry, I did not catch the date."),
        ]
    }
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

/// The cues one persona listens for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptCues {
    cues: Vec<Cue>,
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
        PromptCues { cues }
    }

    /// No cues: every prompt is [`PromptKind::Other`].
    pub fn is_empty(&self) -> bool {
        self.cues.is_empty()
    }

    /// Samples of a prompt's opening needed to judge it (pre-roll + longest cue).
    pub fn needed_samples(&self) -> usize {
        let longest = self
            .cues
            .iter()
            .map(|c| c.envelope.len())
            .max()
            .unwrap_or(0);
        PRE_ROLL_MS * 8 + (longest + 10) * FRAME
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

    /// The prompt's kind: the best cue at or above [`MATCH_AT`], else Other.
    pub fn classify(&self, heard: &[i16]) -> PromptKind {
        self.scores(heard)
            .into_iter()
            .filter(|(_, s)| *s >= MATCH_AT)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(PromptKind::Other, |(k, _)| k)
    }
}

#[cfg(test)]
#[path = "cue_tests.rs"]
mod tests;
