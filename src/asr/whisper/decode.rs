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
//! timestamps; a decoded token may not complete a token n-gram the text
//! already holds ([`DecodeOptions::no_repeat_ngram`], the guard against
//! Whisper's loops on short answers), and a decode that still runs to its
//! budget or repeats itself is marked unsound ([`Decoded::unsound`]) so that
//! it is never taken as a confident text. Never resamples or normalises text
//! (the caller does).

use std::sync::atomic::{AtomicBool, Ordering};
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
    /// A text token may not complete an n-gram of this many tokens that the
    /// text already holds (0: no guard). 3 stops "speaking speaking
    /// speaking" and "yes? speaking? speaking?" while a reply's own
    /// repeated words ("no, no, I paid") pass.
    pub no_repeat_ngram: u32,
}

impl Default for DecodeOptions {
    /// The measured defaults; `DUECALL_WHISPER_OPTS` (`key=value,...` with
    /// the field names, e.g. `audio_ctx_margin=1500,best_of=5`) overrides
    /// them for experiments.
    fn default() -> Self {
        DecodeOptions::for_language("en")
    }
}

impl DecodeOptions {
    /// The measured defaults for `lang` (Whisper's code, "en" or "zh"),
    /// then `DUECALL_WHISPER_OPTS`. Mandarin: a Chinese character is one
    /// to three tokens, so the token budget is 12 a second instead of 6
    /// and the no-repeat n-gram is 6 tokens instead of 3 (with 3, banning a
    /// repeated 3-token character cut it in two: "你打锁了�"; measured on
    /// the simulated debtors' lines, espeak-ng Mandarin through u-law).
    pub fn for_language(lang: &str) -> Self {
        let zh = lang.to_ascii_lowercase().starts_with("zh");
        let mut o = DecodeOptions {
            language: lang.into(),
            prompt: String::new(),
            threads: 1,
            tokens_per_second: if zh { 12.0 } else { 6.0 },
            min_tokens: 8,
            audio_ctx_margin: 64,
            temperature_inc: 0.2,
            best_of: 2,
            beam_size: 0,
            no_repeat_ngram: if zh { 6 } else { 3 },
        };
        if let Ok(v) = std::env::var("DUECALL_WHISPER_OPTS") {
            o.apply(&v);
        }
        o
    }

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
                "no_repeat_ngram" => {
                    self.no_repeat_ngram = v.parse().unwrap_or(self.no_repeat_ngram)
                }
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
    /// The token budget the decode had ([`max_tokens_for`]; 0: not decoded).
    pub max_tokens: u32,
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

    /// The decode used its whole token budget: it was cut off, not ended
    /// (a loop or invented text runs until the budget stops it).
    pub fn hit_budget(&self) -> bool {
        self.max_tokens > 0 && self.tokens.len() as u32 >= self.max_tokens
    }

    /// Why this decode must not be taken as a confident text (None: sound):
    /// it ran to its budget, its words repeat themselves ([`repeats`]), or
    /// it holds more words than the audio can carry ([`MAX_WORDS_PER_S`]).
    pub fn unsound(&self) -> Option<Unsound> {
        if self.hit_budget() {
            return Some(Unsound::Budget);
        }
        if repeats(&self.text) {
            return Some(Unsound::Repeats);
        }
        let words = self.text.split_whitespace().count() as f32;
        if words > 2.0 && words > MAX_WORDS_PER_S * self.audio_s.max(0.5) {
            return Some(Unsound::TooManyWords);
        }
        None
    }
}

/// Why a decode is not sound ([`Decoded::unsound`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsound {
    /// It used its whole token budget.
    Budget,
    /// Its words repeat themselves.
    Repeats,
    /// More words than the audio's length allows.
    TooManyWords,
}

/// More words per second of audio than anyone says (fast speech is about
/// 4): Whisper invented them.
pub const MAX_WORDS_PER_S: f32 = 6.0;

/// Lowercase letters, digits and apostrophes of each word.
fn plain_words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// True when a transcript repeats itself the way Whisper's loops do: a
/// word or phrase of up to four words three times running ("speaking
/// speaking speaking"), a phrase of two or more words twice ("i paid it i
/// paid it"), or in a short text one word of four letters or more taking
/// a third or more of the words, counting words it begins ("yes? speaking?
/// speakingbots speaking"). A reply's own repeats pass ("no, no, i don't
/// owe this", "next week or the week after").
pub fn repeats(text: &str) -> bool {
    let w = plain_words(text);
    for n in 1..=4usize {
        if w.len() < 3 * n {
            break;
        }
        for i in 0..=w.len() - 3 * n {
            if w[i..i + n] == w[i + n..i + 2 * n] && w[i..i + n] == w[i + 2 * n..i + 3 * n] {
                return true;
            }
        }
    }
    for n in 2..=w.len() / 2 {
        for i in 0..=w.len() - 2 * n {
            if (i + n..=w.len() - n).any(|j| w[i..i + n] == w[j..j + n]) {
                return true;
            }
        }
    }
    if w.len() <= 12 {
        for a in w.iter().filter(|a| a.chars().count() >= 4) {
            let times = w.iter().filter(|b| b.starts_with(a.as_str())).count();
            if times >= 2 && times * 3 >= w.len() {
                return true;
            }
        }
    }
    false
}

/// The tokens that may not come next after `history` (text tokens so
/// far): each token that would complete an `n`-token sequence already in
/// `history` (n = 0 or a history shorter than n: none).
pub fn banned_next(history: &[i32], n: usize) -> Vec<i32> {
    if n == 0 || history.len() < n {
        return Vec::new();
    }
    let tail = &history[history.len() - (n - 1)..];
    let mut out: Vec<i32> = history
        .windows(n)
        .filter(|g| &g[..n - 1] == tail)
        .map(|g| g[n - 1])
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// What the logits filter needs: the vocabulary size, the first special
/// token (end of text; tokens from it on are never banned) and the n.
struct RepeatGuard {
    n_vocab: usize,
    eot: i32,
    n: usize,
}

/// whisper.cpp's logits filter: sets the logits of [`banned_next`] tokens
/// to minus infinity.
///
/// # Safety
/// whisper.cpp calls it with its decoder's tokens (`n_tokens` of them) and
/// logits (`n_vocab` of them) and the `RepeatGuard` given as user data,
/// which outlives the `full` call it was set for.
unsafe extern "C" fn no_repeat_filter(
    _ctx: *mut whisper_rs::WhisperSysContext,
    _state: *mut whisper_rs::WhisperSysState,
    tokens: *const whisper_rs::WhisperTokenData,
    n_tokens: std::os::raw::c_int,
    logits: *mut f32,
    user_data: *mut std::ffi::c_void,
) {
    if user_data.is_null() || logits.is_null() || tokens.is_null() || n_tokens <= 0 {
        return;
    }
    // SAFETY: see the function's contract.
    let guard = unsafe { &*(user_data as *const RepeatGuard) };
    let toks = unsafe { std::slice::from_raw_parts(tokens, n_tokens as usize) };
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, guard.n_vocab) };
    let history: Vec<i32> = toks
        .iter()
        .map(|t| t.id)
        .filter(|id| *id < guard.eot)
        .collect();
    for t in banned_next(&history, guard.n) {
        if let Some(l) = usize::try_from(t).ok().and_then(|i| logits.get_mut(i)) {
            *l = f32::NEG_INFINITY;
        }
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
    decode_unless(model, state, pcm, opts, candidates, &AtomicBool::new(false))
}

/// whisper.cpp's abort callback: stop when the flag `data` points at is set.
unsafe extern "C" fn abort_when_set(data: *mut std::ffi::c_void) -> bool {
    // SAFETY: `data` is the `&AtomicBool` [`decode_unless`] set, alive until
    // `full` returns.
    (*(data as *const AtomicBool)).load(Ordering::Relaxed)
}

/// [`decode`], abandoned (an error) as soon as `cancelled` is set: a late
/// or superseded decode stops using the CPU the calls need.
pub fn decode_unless(
    model: &WhisperModel,
    state: &mut WhisperState,
    pcm: &[f32],
    opts: &DecodeOptions,
    candidates: &[String],
    cancelled: &AtomicBool,
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
    let max_tokens = max_tokens_for(audio.len(), opts);
    p.set_max_tokens(max_tokens as i32);
    p.set_audio_ctx(audio_ctx_for(audio.len(), opts.audio_ctx_margin) as i32);
    p.set_temperature(0.0);
    p.set_temperature_inc(opts.temperature_inc);
    p.set_entropy_thold(2.4);
    p.set_logprob_thold(-1.0);
    p.set_no_speech_thold(0.6);
    if !opts.prompt.is_empty() {
        p.set_initial_prompt(&opts.prompt);
    }
    let mut guard = RepeatGuard {
        n_vocab: model.context().n_vocab().max(0) as usize,
        eot: model.context().token_eot(),
        n: opts.no_repeat_ngram as usize,
    };
    if guard.n > 0 {
        // SAFETY: `guard` lives until after `full` returns; the filter only
        // reads it and writes the logits whisper.cpp hands it.
        unsafe {
            p.set_filter_logits_callback(Some(no_repeat_filter));
            p.set_filter_logits_callback_user_data(
                &mut guard as *mut RepeatGuard as *mut std::ffi::c_void,
            );
        }
    }
    // SAFETY: `cancelled` outlives `full`; the callback only reads it.
    unsafe {
        p.set_abort_callback(Some(abort_when_set));
        p.set_abort_callback_user_data(cancelled as *const AtomicBool as *mut std::ffi::c_void);
    }
    state.full(p, audio).map_err(|e| AsrError::Engine {
        engine: ENGINE,
        what: format!("decode failed: {e}"),
    })?;
    if cancelled.load(Ordering::Relaxed) {
        return Err(AsrError::Engine {
            engine: ENGINE,
            what: "decode abandoned: nobody waits for it".into(),
        });
    }
    let eot = model.context().token_eot();
    let mut out = Decoded {
        audio_s,
        max_tokens,
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
    fn a_token_that_would_repeat_an_ngram_is_banned_and_others_are_not() {
        // "yes ? speaking ?" then " speaking": "?" would repeat "? speaking ?".
        let (yes, q, speaking, dot) = (10, 11, 12, 13);
        assert_eq!(banned_next(&[yes, q, speaking, q, speaking], 3), vec![q]);
        // A loop of one token: the third in a row is banned.
        assert_eq!(banned_next(&[speaking, speaking], 3), Vec::<i32>::new());
        assert_eq!(
            banned_next(&[speaking, speaking, speaking], 2),
            vec![speaking]
        );
        // Nothing repeated, too short, or off: nothing banned.
        assert!(banned_next(&[yes, q, speaking, dot], 3).is_empty());
        assert!(banned_next(&[yes, q], 3).is_empty());
        assert!(banned_next(&[yes, yes, yes], 0).is_empty());
        // Every continuation already seen after the same two tokens.
        assert_eq!(banned_next(&[yes, q, 1, yes, q, 2, yes, q], 3), vec![1, 2]);
    }

    #[test]
    fn whisper_loops_repeat_and_ordinary_replies_do_not() {
        for looped in [
            "Yes? Speaking? Speakingbots speaking",
            "yes speaking speaking speaking",
            "I paid it. I paid it.",
            "I already paid, I already paid last week",
            "no no no no",
            "Bye. Bye. Bye.",
        ] {
            assert!(repeats(looped), "{looped}");
        }
        for fine in [
            "Yes, speaking.",
            "yes of Mine",
            "No, no, I don't owe this.",
            "I can pay next week or the week after.",
            "I lost my job and I can't pay right now.",
            "Call me back on Friday, Friday afternoon is better for me.",
            "",
        ] {
            assert!(!repeats(fine), "{fine}");
        }
    }

    #[test]
    fn a_decode_cut_off_by_its_budget_repeating_or_too_wordy_is_unsound() {
        let tok = |t: &str| Token {
            text: t.into(),
            p: 0.9,
        };
        let sound = Decoded {
            text: "I already paid it.".into(),
            tokens: vec![
                tok(" I"),
                tok(" already"),
                tok(" paid"),
                tok(" it"),
                tok("."),
            ],
            audio_s: 1.5,
            max_tokens: 17,
            ..Decoded::default()
        };
        assert_eq!(sound.unsound(), None);
        let cut = Decoded {
            max_tokens: 5,
            ..sound.clone()
        };
        assert!(cut.hit_budget());
        assert_eq!(cut.unsound(), Some(Unsound::Budget));
        let looped = Decoded {
            text: "Yes? Speaking? Speakingbots speaking".into(),
            ..sound.clone()
        };
        assert_eq!(looped.unsound(), Some(Unsound::Repeats));
        let wordy = Decoded {
            text: "I already paid it all last week to the man on the phone".into(),
            audio_s: 0.8,
            ..sound.clone()
        };
        assert_eq!(wordy.unsound(), Some(Unsound::TooManyWords));
        // Not decoded (too short): no budget to hit.
        assert!(!Decoded::default().hit_budget());
    }

    #[test]
    fn the_repeat_guard_is_on_by_default_and_can_be_turned_off() {
        let mut o = DecodeOptions {
            no_repeat_ngram: 3,
            ..DecodeOptions::default()
        };
        o.apply("no_repeat_ngram=0, best_of=3");
        assert_eq!((o.no_repeat_ngram, o.best_of), (0, 3));
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
