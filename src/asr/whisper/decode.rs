//! One Whisper decode of one utterance: the settings that keep a short
//! phone reply fast and sane, and what comes back (text, token
//! probabilities, the no-speech probability).
//!
//! Owns: [`DecodeOptions`], [`Decoded`] and [`decode`]. Settings (from
//! the first measurements in the shared SPEECH.md; `DUECALL_WHISPER_OPTS`
//! overrides them for experiments): the encoder sees only
//! the utterance (`audio_ctx` from its length instead of 30 s: much faster),
//! the tokens are bounded by the audio's length (a loop cannot run away),
//! the temperature falls back when the greedy pass looks unsure (entropy,
//! log-probability), non-speech tokens are suppressed, one segment without
//! timestamps. Never resamples or normalises text (the caller does).

use std::time::Instant;

use whisper_rs::{FullParams, SamplingStrategy, WhisperState};

use super::model::WhisperModel;
use super::ENGINE;
use crate::asr::AsrError;

/// Sample rate Whisper listens at.
pub const WHISPER_RATE: u32 = 16000;

/// How one utterance is decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Language code Whisper is told ("en", "zh").
    pub language: String,
    /// Text that conditions the decoder (the words a reply to this turn
    /// tends to use); empty for none.
    pub prompt: String,
    /// Threads for this decode (1 in a pool sized to the cores).
    pub threads: usize,
    /// Tokens allowed per second of audio, on top of [`Self::min_tokens`].
    pub tokens_per_second: f32,
    /// Tokens always allowed.
    pub min_tokens: u32,
    /// Encoder positions (50 per second) added after the audio's own.
    pub audio_ctx_margin: u32,
    /// Temperature step of the fallback (0: no fallback).
    pub temperature_inc: f32,
    /// Candidates sampled at a fallback temperature.
    pub best_of: u32,
    /// Beam search width (0: greedy).
    pub beam_size: u32,
}

impl Default for DecodeOptions {
    /// The measured defaults; `DUECALL_WHISPER_OPTS` (`key=value,...` with
    /// the field names, e.g. `audio_ctx_margin=1500,best_of=5`) overrides
    /// them for experiments.
    fn default() -> Self {
        let mut o = DecodeOptions {
            language: "en".into(),
            prompt: String::new(),
            threads: 1,
            tokens_per_second: 6.0,
            min_tokens: 8,
            audio_ctx_margin: 64,
            temperature_inc: 0.2,
            best_of: 2,
            beam_size: 0,
        };
        if let Ok(v) = std::env::var("DUECALL_WHISPER_OPTS") {
            o.apply(&v);
        }
        o
    }
}

impl DecodeOptions {
    /// Applies `key=value,...` overrides; unknown keys and bad values are
    /// ignored (this is for experiments, not configuration).
    pub fn apply(&mut self, spec: &str) {
        for kv in spec.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            match k {
                "prompt" => self.prompt = v.to_string(),
                "threads" => self.threads = v.parse().unwrap_or(self.threads),
                "tokens_per_second" => {
                    self.tokens_per_second = v.parse().unwrap_or(self.tokens_per_second)
                }
                "min_tokens" => self.min_tokens = v.parse().unwrap_or(self.min_tokens),
                "audio_ctx_margin" => {
                    self.audio_ctx_margin = v.parse().unwrap_or(self.audio_ctx_margin)
                }
                "temperature_inc" => {
                    self.temperature_inc = v.parse().unwrap_or(self.temperature_inc)
                }
                "best_of" => self.best_of = v.parse().unwrap_or(self.best_of),
                "beam_size" => self.beam_size = v.parse().unwrap_or(self.beam_size),
                _ => {}
            }
        }
    }
}

/// One decoded token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Its text (a word piece, often with a leading space).
    pub text: String,
    /// Its probability when chosen.
    pub p: f32,
}

/// How likely Whisper finds a given text for the audio it just decoded
/// (teacher-forced: the text's tokens and the end of text, one decoder
/// step each over the same encoder output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Sum of the tokens' log-probabilities.
    pub sum_logprob: f32,
    /// Tokens scored (the end-of-text token included).
    pub tokens: u32,
}

impl Score {
    /// Mean log-probability per token.
    pub fn mean(&self) -> f32 {
        self.sum_logprob / self.tokens.max(1) as f32
    }
}

/// What Whisper heard in one utterance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The raw text (punctuation, casing and digits as Whisper writes them).
    pub text: String,
    /// The text tokens with their probabilities.
    pub tokens: Vec<Token>,
    /// Probability that the audio holds no speech (Whisper's own estimate).
    pub no_speech: f32,
    /// Seconds of audio decoded.
    pub audio_s: f32,
    /// Milliseconds the decode took.
    pub decode_ms: u64,
    /// The scores of the texts asked for, in order (None: could not score).
    pub scores: Vec<Option<Score>>,
    /// The score of its own transcript once normalised (asked for with
    /// candidates, so both are scored in the same style).
    pub own_score: Option<Score>,
}

impl Decoded {
    /// Mean log-probability of the text tokens (0 when there are none).
    pub fn mean_logprob(&self) -> f32 {
        if self.tokens.is_empty() {
            return 0.0;
        }
        self.tokens.iter().map(|t| t.p.max(1e-6).ln()).sum::<f32>() / self.tokens.len() as f32
    }

    /// The least probable text token's probability (1 when there are none).
    pub fn min_p(&self) -> f32 {
        self.tokens.iter().map(|t| t.p).fold(1.0, f32::min)
    }
}

/// The encoder positions for `samples` of 16 kHz audio: 50 per second,
/// plus the margin, in steps of 32, at most Whisper's 1500 (30 s).
pub fn audio_ctx_for(samples: usize, margin: u32) -> u32 {
    let own = (samples as u64 * 50).div_ceil(WHISPER_RATE as u64) as u32;
    ((own + margin).div_ceil(32) * 32).min(1500)
}

/// The token budget for `samples` of 16 kHz audio.
pub fn max_tokens_for(samples: usize, opts: &DecodeOptions) -> u32 {
    let secs = samples as f32 / WHISPER_RATE as f32;
    (opts.min_tokens + (secs * opts.tokens_per_second).ceil() as u32).min(220)
}

/// Writes a normalised text the way Whisper writes (a capital, a full
/// stop, commas against the words), so texts from different engines are
/// scored alike.
pub fn whisper_style(text: &str) -> String {
    let body = text.trim().replace(" ,", ",");
    let mut c = body.chars();
    let cap = match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => return String::new(),
    };
    format!(" {}.", cap.trim_end_matches(['.', ',']))
}

/// Scores `text` against the audio `state` last encoded.
fn score_text(
    model: &WhisperModel,
    state: &mut WhisperState,
    text: &str,
    opts: &DecodeOptions,
) -> Option<Score> {
    let ctx = model.context();
    let styled = whisper_style(text);
    if styled.is_empty() {
        return None;
    }
    let mut prompt = vec![ctx.token_sot()];
    if model.is_multilingual() {
        prompt.push(ctx.token_lang(whisper_rs::get_lang_id(&opts.language)?));
        prompt.push(ctx.token_transcribe());
    }
    prompt.push(ctx.token_not());
    let mut toks = ctx.tokenize(&styled, 96).ok()?;
    toks.push(ctx.token_eot());
    let threads = opts.threads.max(1);
    let mut sum = 0.0f32;
    let log_p = |logits: &[f32], t: i32| -> f32 {
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
        logits.get(t as usize).map(|l| l - lse).unwrap_or(-30.0)
    };
    state.decode(&prompt, 0, threads).ok()?;
    sum += log_p(state.get_logits().ok()?, toks[0]);
    for i in 0..toks.len() - 1 {
        state
            .decode(&toks[i..i + 1], prompt.len() + i, threads)
            .ok()?;
        sum += log_p(state.get_logits().ok()?, toks[i + 1]);
    }
    Some(Score {
        sum_logprob: sum,
        tokens: toks.len() as u32,
    })
}

/// Decodes 16 kHz mono `pcm` (-1..1) with `state` (made from `model`), then
/// scores each of `candidates` against the same audio.
pub fn decode(
    model: &WhisperModel,
    state: &mut WhisperState,
    pcm: &[f32],
    opts: &DecodeOptions,
    candidates: &[String],
) -> Result<Decoded, AsrError> {
    let audio_s = pcm.len() as f32 / WHISPER_RATE as f32;
    if pcm.len() < WHISPER_RATE as usize / 10 {
        return Ok(Decoded {
            no_speech: 1.0,
            audio_s,
            scores: vec![None; candidates.len()],
            ..Decoded::default()
        });
    }
    // Whisper wants at least one second: pad short answers with silence.
    let mut padded;
    let audio: &[f32] = if pcm.len() < WHISPER_RATE as usize {
        padded = pcm.to_vec();
        padded.resize(WHISPER_RATE as usize + WHISPER_RATE as usize / 10, 0.0);
        &padded
    } else {
        pcm
    };
    let started = Instant::now();
    let mut p = FullParams::new(if opts.beam_size > 1 {
        SamplingStrategy::BeamSearch {
            beam_size: opts.beam_size as i32,
            patience: -1.0,
        }
    } else {
        SamplingStrategy::Greedy {
            best_of: opts.best_of.max(1) as i32,
        }
    });
    p.set_n_threads(opts.threads.max(1) as i32);
    p.set_language(Some(opts.language.as_str()));
    p.set_translate(false);
    p.set_no_context(true);
    p.set_no_timestamps(true);
    p.set_single_segment(true);
    p.set_print_special(false);
    p.set_print_progress(false);
    p.set_print_realtime(false);
    p.set_print_timestamps(false);
    p.set_suppress_blank(true);
    p.set_suppress_nst(true);
    p.set_max_tokens(max_tokens_for(audio.len(), opts) as i32);
    p.set_audio_ctx(audio_ctx_for(audio.len(), opts.audio_ctx_margin) as i32);
    p.set_temperature(0.0);
    p.set_temperature_inc(opts.temperature_inc);
    p.set_entropy_thold(2.4);
    p.set_logprob_thold(-1.0);
    p.set_no_speech_thold(0.6);
    if !opts.prompt.is_empty() {
        p.set_initial_prompt(&opts.prompt);
    }
    state.full(p, audio).map_err(|e| AsrError::Engine {
        engine: ENGINE,
        what: format!("decode failed: {e}"),
    })?;
    let eot = model.context().token_eot();
    let mut out = Decoded {
        audio_s,
        ..Decoded::default()
    };
    let mut no_speech: f32 = 0.0;
    for seg in state.as_iter() {
        no_speech = no_speech.max(seg.no_speech_probability());
        if let Ok(t) = seg.to_str_lossy() {
            out.text.push_str(&t);
        }
        for i in 0..seg.n_tokens() {
            let Some(tok) = seg.get_token(i) else {
                continue;
            };
            if tok.token_id() >= eot {
                continue;
            }
            out.tokens.push(Token {
                text: tok
                    .to_str_lossy()
                    .map(|s| s.into_owned())
                    .unwrap_or_default(),
                p: tok.token_probability(),
            });
        }
    }
    out.text = out.text.trim().to_string();
    out.no_speech = no_speech;
    if !candidates.is_empty() {
        let own = crate::asr::normalize::normalize(&out.text, &opts.language);
        out.own_score = score_text(model, state, &own, opts);
    }
    out.scores = candidates
        .iter()
        .map(|c| score_text(model, state, c, opts))
        .collect();
    out.decode_ms = started.elapsed().as_millis() as u64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_context_follows_the_utterance_and_never_passes_thirty_seconds() {
        assert_eq!(audio_ctx_for(16000, 64), 128); // 50 + 64 -> 128
        assert_eq!(audio_ctx_for(48000, 0), 160); // 150 -> 160
        assert_eq!(audio_ctx_for(16000 * 40, 64), 1500);
    }

    #[test]
    fn token_budget_grows_with_the_audio_and_is_capped() {
        let o = DecodeOptions::default();
        assert_eq!(max_tokens_for(16000, &o), 14);
        assert!(max_tokens_for(16000 * 3, &o) > max_tokens_for(16000, &o));
        assert_eq!(max_tokens_for(16000 * 100, &o), 220);
    }

    #[test]
    fn texts_are_scored_in_whisper_style() {
        assert_eq!(whisper_style("yes , speaking"), " Yes, speaking.");
        assert_eq!(whisper_style("i already paid"), " I already paid.");
        assert_eq!(whisper_style(""), "");
        assert_eq!(
            Score {
                sum_logprob: -3.0,
                tokens: 6
            }
            .mean(),
            -0.5
        );
    }

    #[test]
    fn mean_logprob_and_min_p_of_no_tokens_are_neutral() {
        let d = Decoded::default();
        assert_eq!(d.mean_logprob(), 0.0);
        assert_eq!(d.min_p(), 1.0);
        let d = Decoded {
            tokens: vec![
                Token {
                    text: " yes".into(),
                    p: 0.9,
                },
                Token {
                    text: ".".into(),
                    p: 0.5,
                },
            ],
            ..Decoded::default()
        };
        assert!((d.mean_logprob() - (0.9f32.ln() + 0.5f32.ln()) / 2.0).abs() < 1e-6);
        assert_eq!(d.min_p(), 0.5);
    }
}
