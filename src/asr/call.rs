//! The recognizer one call uses: the streaming grammar engine (PocketSphinx
//! or Vosk: partials for barge-in, short answers) and Whisper (what a reply
//! says, decoded in the shared pool), chosen per listening turn by `[asr]`,
//! combined by [`super::confidence`] into one text and one calibrated
//! confidence.
//!
//! Owns: the per-turn engine switch, the utterance buffer Whisper decodes,
//! the speculative decode started in the end silence (when the caller has
//! been quiet for [`SPECULATE_AFTER_MS`]: if the VAD then ends the
//! utterance with no new voice, the result is already there or on its way;
//! if the caller talks again, it is dropped), the bounded wait for Whisper
//! in turns the grammar engine also hears (`[asr.whisper] deadline_ms`
//! after the end of the utterance: a decode the queue cannot finish by
//! then is not asked for, one not back by then is dropped, and the reply is
//! heard as a grammar-only turn would hear it, [`super::whisper::wait`]),
//! and the evidence of the last utterance for QA and the benchmarks. Never
//! endpoints (the VAD outside calls `finish`) and never decides routes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::confidence::{
    decide_with, looped, Calibration, Evidence, GrammarSide, SecondPassRule, Source, Verdict,
    WhisperSide,
};
use super::config::{AsrConfig, TurnEngine};
use super::hybrid::{CheckRule, HybridRule, HYBRID};
use super::whisper::decode::{DecodeOptions, Unsound};
use super::whisper::phrases::{pick, prompt_of, PhraseRule, Scored};
use super::whisper::pool::{Priority, Ticket, WhisperPool};
use super::whisper::recognizer::{to_whisper_rate, transcript_of, whisper_language};
use super::whisper::wait::{admits, time_left, WhisperUse};
use super::{AsrError, Partial, Recognizer, Transcript, FRAME_SAMPLES};
use crate::intent::IntentKind;

/// Quiet time after voice before a speculative Whisper decode starts (the
/// VAD's end silence is longer; the gate passes only its first 100 ms).
pub const SPECULATE_AFTER_MS: u32 = 80;
/// Voiced audio an utterance needs before it is worth a speculative decode.
const SPECULATE_MIN_VOICE_MS: u32 = 200;

/// What a text means, as the dialogue will understand it (the intent
/// classifier); used for the agreement between the two engines.
pub type Meaning = Arc<dyn Fn(&str) -> (IntentKind, f32) + Send + Sync>;

/// What the last utterance gave, for QA and the benchmarks.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    /// The listening turn.
    pub turn: String,
    /// The engine(s) that ran.
    pub engine: TurnEngine,
    /// Both hypotheses.
    pub evidence: Evidence,
    /// What was handed on.
    pub verdict: Verdict,
    /// Raw Whisper text (before normalisation).
    pub whisper_raw: Option<String>,
    /// Whisper decode time (ms) and queueing (ms).
    pub whisper_ms: Option<(u64, u64)>,
    /// The result came from a speculative decode.
    pub speculative: bool,
    /// Why Whisper's decode was not sound (None: sound, or no decode).
    pub whisper_unsound: Option<Unsound>,
    /// The intent classifier's confidence in Whisper's text's intent.
    pub whisper_intent_conf: Option<f32>,
    /// What became of Whisper in a turn that uses it (None: not such a
    /// turn, or no voice to decode).
    pub whisper_use: Option<WhisperUse>,
}

/// Whisper's part of a call.
#[derive(Clone)]
pub struct WhisperPart {
    /// The shared pool.
    pub pool: Arc<WhisperPool>,
    /// Decode settings (language, prompt, bounds).
    pub options: DecodeOptions,
}

/// The per-call recognizer (see the module comment).
pub struct CallRecognizer {
    lang: String,
    grammar: Option<Box<dyn Recognizer>>,
    whisper: Option<WhisperPart>,
    config: AsrConfig,
    meaning: Option<Meaning>,
    calibration: Calibration,
    grammar_calibration: Calibration,
    /// The calibration of grammar-only turns whose second pass ran.
    second_pass_calibration: Calibration,
    /// When the second pass's text is heard instead of the grammar sentence.
    second_pass_rule: SecondPassRule,
    /// Which engine's text a hybrid turn hears.
    hybrid_rule: HybridRule,
    turn: String,
    engine: TurnEngine,
    buf: Vec<i16>,
    peak_db: f32,
    voiced_ms: u32,
    quiet_ms: u32,
    /// A speculative decode and the texts it scores (the grammar
    /// sentence, or the listen phrases where Whisper hears alone).
    speculative: Option<(Ticket, Vec<String>)>,
    /// The current turn's listen phrases (Whisper's prompt and candidates
    /// where it hears alone, [`super::whisper::phrases`]).
    phrases: Vec<String>,
    /// The grammar engine's latest partial hypothesis.
    partial: String,
    last: Option<Heard>,
}

impl CallRecognizer {
    /// A recognizer over `grammar` (the streaming engine, if the language
    /// has one) and `whisper` (if installed and enabled). Fails when
    /// neither is given.
    pub fn new(
        lang: &str,
        grammar: Option<Box<dyn Recognizer>>,
        whisper: Option<WhisperPart>,
        config: AsrConfig,
        meaning: Option<Meaning>,
    ) -> Result<CallRecognizer, AsrError> {
        let engine = config
            .engine_for(lang, "", grammar.is_some(), whisper.is_some())
            .ok_or_else(|| AsrError::NoModel {
                lang: lang.to_string(),
                hint: "neither a grammar engine nor Whisper is available: run scripts/setup".into(),
            })?;
        Ok(CallRecognizer {
            lang: lang.to_string(),
            grammar,
            whisper,
            config,
            meaning,
            calibration: HYBRID,
            // Calibration::GRAMMAR is fitted but not yet the default: the
            // conversation thresholds were set against this one (issue 18).
            grammar_calibration: Calibration::FITTED,
            second_pass_calibration: Calibration::GRAMMAR_LM,
            second_pass_rule: second_pass_rule_from_env().unwrap_or(SecondPassRule::CALLS),
            hybrid_rule: std::env::var(HYBRID_RULE_ENV)
                .ok()
                .and_then(|v| parse_hybrid_rule(&v))
                .unwrap_or(HybridRule::CALLS),
            turn: String::new(),
            engine,
            buf: Vec::new(),
            peak_db: -100.0,
            voiced_ms: 0,
            quiet_ms: 0,
            speculative: None,
            phrases: Vec::new(),
            partial: String::new(),
            last: None,
        })
    }

    /// Replaces the calibration model of hybrid turns (benchmarks fitting a new one).
    pub fn set_calibration(&mut self, c: Calibration) {
        self.calibration = c;
    }

    /// Replaces the calibration model of grammar-only turns.
    pub fn set_grammar_calibration(&mut self, c: Calibration) {
        self.grammar_calibration = c;
    }

    /// Replaces the rule choosing between the two engines in hybrid turns.
    pub fn set_hybrid_rule(&mut self, r: HybridRule) {
        self.hybrid_rule = r;
    }

    /// Replaces the rule taking the second pass's text over the grammar sentence.
    pub fn set_second_pass_rule(&mut self, r: SecondPassRule) {
        self.second_pass_rule = r;
    }

    /// The engine(s) of the current turn.
    pub fn turn_engine(&self) -> TurnEngine {
        self.engine
    }

    /// What the last utterance gave.
    pub fn last_heard(&self) -> Option<&Heard> {
        self.last.as_ref()
    }

    fn clear_utterance(&mut self) {
        self.buf.clear();
        self.peak_db = -100.0;
        self.voiced_ms = 0;
        self.quiet_ms = 0;
        self.speculative = None;
        self.partial.clear();
    }

    /// Tracks voice and quiet in the audio Whisper will get; starts a
    /// speculative decode once the caller has been quiet long enough.
    fn watch_end_silence(&mut self, pcm: &[i16]) {
        for f in pcm.chunks(FRAME_SAMPLES) {
            let db = crate::media::vad::frame_stats(f).energy_db;
            self.peak_db = self.peak_db.max(db);
            let voiced = db > (self.peak_db - 25.0).max(-50.0);
            let ms = (f.len() as u32 * 1000) / super::SAMPLE_RATE;
            if voiced {
                self.voiced_ms += ms;
                self.quiet_ms = 0;
                // The caller talks again: a speculative decode is stale.
                self.speculative = None;
            } else {
                self.quiet_ms += ms;
            }
        }
        if self.speculative.is_none()
            && self.quiet_ms >= SPECULATE_AFTER_MS
            && self.voiced_ms >= SPECULATE_MIN_VOICE_MS
            && (self.engine != TurnEngine::Checked || self.checks(&self.partial))
        {
            if let Some(w) = &self.whisper {
                let candidate = (self.engine.uses_grammar() && !self.partial.is_empty())
                    .then(|| self.partial.clone());
                let (options, scored) = self.whisper_request(w, candidate.as_deref());
                let ticket = w.pool.submit_scoring(
                    to_whisper_rate(&self.buf),
                    options,
                    scored.clone(),
                    Priority::Speculative,
                );
                self.speculative = Some((ticket, scored));
            }
        }
    }

    /// In a checked turn: whether the reply the grammar engine heard as
    /// `sentence` is heard again by Whisper ([`CheckRule`]).
    fn checks(&self, sentence: &str) -> bool {
        let intent = self.meaning_of(sentence);
        CheckRule::CALLS.checks(intent, self.voiced_ms)
    }

    /// Whisper hears this turn alone (the language has no grammar engine)
    /// and the turn names the phrases it expects.
    fn whisper_alone(&self) -> bool {
        self.engine == TurnEngine::Whisper && self.grammar.is_none() && !self.phrases.is_empty()
    }

    /// Whether a listen phrase may stand in for Whisper's text in this
    /// turn: not in a confirmation (`confirm_*`), whose yes lets a
    /// consequential route go ahead and must be heard, never guessed (a
    /// Mandarin "不是" Whisper wrote as "不可" scored closest to "是的").
    fn phrases_may_stand_in(&self) -> bool {
        !self.turn.starts_with("confirm")
    }

    /// The decode settings and the texts scored for the current utterance:
    /// where Whisper hears alone, the listen phrases are the prompt and the
    /// candidates; else the grammar sentence `candidate` is scored.
    fn whisper_request(
        &self,
        w: &WhisperPart,
        candidate: Option<&str>,
    ) -> (DecodeOptions, Vec<String>) {
        if self.whisper_alone() {
            let mut o = w.options.clone();
            if o.prompt.is_empty() {
                o.prompt = prompt_of(&self.phrases, &self.lang);
            }
            return (o, self.phrases.clone());
        }
        let mut wanted: Vec<String> = candidate
            .filter(|c| !c.trim().is_empty())
            .map(str::to_string)
            .into_iter()
            .collect();
        if self.engine == TurnEngine::Checked {
            // A closed turn: Whisper also scores every listen phrase, and
            // the best stands in for a decode that looped or means nothing
            // ("yes, speaking" decoded as "speaking speaking speaking").
            wanted.extend(self.phrases.iter().cloned());
        }
        (w.options.clone(), wanted)
    }

    fn meaning_of(&self, text: &str) -> Option<IntentKind> {
        self.meaning.as_ref().map(|m| m(text).0)
    }

    /// What `text` means and the classifier's confidence in it.
    fn meaning_with_conf(&self, text: &str) -> Option<(IntentKind, f32)> {
        self.meaning.as_ref().map(|m| m(text))
    }

    /// Whisper's side of the utterance and its score of the grammar
    /// sentence `candidate`: the speculative decode when the caller said
    /// nothing since it started and it scored the same sentence, else a new
    /// one. Where the grammar engine also hears the turn, Whisper is waited
    /// for only until the deadline `ended` + `[asr.whisper] deadline_ms`,
    /// and not asked at all when the pool's queue cannot finish it by then.
    fn whisper_side(
        &mut self,
        candidate: Option<&str>,
        ended: Instant,
    ) -> Result<(Option<WhisperHeard>, Option<WhisperUse>), AsrError> {
        let Some(w) = self.whisper.clone() else {
            return Ok((None, None));
        };
        if self.buf.is_empty() || self.voiced_ms == 0 {
            return Ok((None, None));
        }
        // Bounded only where the grammar engine's result can stand in.
        let bounded = self.engine.uses_grammar() && self.grammar.is_some();
        let deadline_ms = self.config.whisper_deadline_ms();
        let budget = |now: Instant| time_left(deadline_ms, now.duration_since(ended));
        let admitted = |ahead: usize, now: Instant| {
            !bounded
                || admits(
                    ahead,
                    w.pool.workers(),
                    w.pool.decode_estimate_ms(),
                    budget(now).as_millis() as u64,
                )
        };
        let (options, wanted) = self.whisper_request(&w, candidate);
        let (ticket, speculative) = match self.speculative.take() {
            Some((t, scored)) if scored.as_slice() == wanted.as_slice() => {
                // Still queued behind finals: a caller now waits for it.
                if !t.started() && w.pool.promote(&t) {
                    let ahead = w.pool.ahead_of_final().saturating_sub(1);
                    if !admitted(ahead, Instant::now()) {
                        tracing::info!(turn = %self.turn, ahead, "Whisper's queue is too long for the deadline; the grammar engine's result stands");
                        return Ok((None, Some(WhisperUse::Busy)));
                    }
                }
                (t, true)
            }
            _ => {
                let ahead = w.pool.ahead_of_final();
                if !admitted(ahead, Instant::now()) {
                    tracing::info!(turn = %self.turn, ahead, "Whisper's queue is too long for the deadline; the grammar engine's result stands");
                    return Ok((None, Some(WhisperUse::Busy)));
                }
                (
                    w.pool.submit_scoring(
                        to_whisper_rate(&self.buf),
                        options,
                        wanted.clone(),
                        Priority::Final,
                    ),
                    false,
                )
            }
        };
        let wait = if bounded {
            budget(Instant::now())
        } else {
            WHISPER_WAIT
        };
        let Some(result) = ticket.wait_timeout(wait) else {
            tracing::info!(turn = %self.turn, wait_ms = wait.as_millis() as u64, "Whisper gave no result in time; the grammar engine's result stands");
            return Ok((None, Some(WhisperUse::Late)));
        };
        let (d, waited) = result?;
        let t = transcript_of(&d, &self.lang);
        let text = t.text;
        let unsound = d.unsound();
        let meant = self.meaning_with_conf(&text);
        let side = WhisperSide {
            intent: meant.map(|m| m.0),
            // A loop, a decode cut off by its budget or too many words for
            // the audio: never a confident text.
            looped: looped(&text) || unsound.is_some(),
            mean_logprob: d.mean_logprob(),
            min_p: d.min_p(),
            no_speech: d.no_speech,
            audio_s: d.audio_s,
            own_score: d.own_score.map(|s| s.mean()),
            text,
        };
        let alone = self.whisper_alone() && wanted.len() == d.scores.len();
        // Where the listen phrases were scored too, they come last.
        let phrases_from = if alone {
            Some(0)
        } else if self.engine == TurnEngine::Checked && wanted.len() == d.scores.len() {
            wanted.len().checked_sub(self.phrases.len())
        } else {
            None
        };
        let grammar_score = match phrases_from {
            Some(0) => None,
            _ => d.scores.first().copied().flatten().map(|s| s.mean()),
        };
        let phrase_scores = match phrases_from {
            Some(i) => d.scores[i..].iter().map(|s| s.map(|s| s.mean())).collect(),
            None => Vec::new(),
        };
        Ok((
            Some(WhisperHeard {
                side,
                grammar_score,
                raw: d.text,
                ms: (d.decode_ms, waited),
                speculative,
                unsound,
                intent_conf: meant.map(|m| m.1),
                phrase_scores,
            }),
            Some(WhisperUse::Used),
        ))
    }
}

/// Whisper's part of one utterance, as [`CallRecognizer::finish`] uses it.
struct WhisperHeard {
    side: WhisperSide,
    /// Whisper's score of the grammar sentence.
    grammar_score: Option<f32>,
    raw: String,
    /// Decode and queueing time, ms.
    ms: (u64, u64),
    speculative: bool,
    unsound: Option<Unsound>,
    intent_conf: Option<f32>,
    /// Where Whisper hears alone: each listen phrase's score (mean token
    /// log-probability) over the same audio.
    phrase_scores: Vec<Option<f32>>,
}

impl CallRecognizer {
    /// Where Whisper hears alone, or in a checked turn, and its text means
    /// nothing or its decode was unsound: the listen phrase [`pick`]
    /// chooses stands in for it (its text and intent).
    fn phrase_for(&self, w: &mut WhisperHeard) {
        if w.phrase_scores.len() != self.phrases.len()
            || self.phrases.is_empty()
            || !self.phrases_may_stand_in()
        {
            return;
        }
        let scored: Vec<Scored> = self
            .phrases
            .iter()
            .zip(&w.phrase_scores)
            .map(|(p, score)| Scored {
                intent: self.meaning_of(p),
                score: *score,
            })
            .collect();
        let Some(i) = pick(
            w.side.intent,
            w.unsound.is_some() || w.side.looped,
            w.side.own_score,
            &scored,
            &PhraseRule::CALLS,
        ) else {
            return;
        };
        tracing::debug!(turn = %self.turn, whisper = %w.side.text, phrase = %self.phrases[i], "a listen phrase stands in for Whisper's text");
        w.side.text.clone_from(&self.phrases[i]);
        w.side.intent = scored[i].intent;
        w.side.looped = false;
        w.side.own_score = scored[i].score;
        w.intent_conf = self.meaning_with_conf(&self.phrases[i]).map(|m| m.1);
    }
}

/// Opens the recognizer a call on `lang` uses, as `config` says: the
/// grammar engine from [`super::open_with`] where the language has one, and
/// Whisper from the shared pool where a model is installed and enabled.
pub fn open_call(
    lang: &str,
    config: &AsrConfig,
    replies: Option<Arc<super::jsgf::ReplyGrammar>>,
    meaning: Option<Meaning>,
) -> Result<CallRecognizer, AsrError> {
    let mut config = config.clone();
    if let Ok(v) = std::env::var(TURNS_ENV) {
        let turns = parse_turns(&v).ok_or_else(|| AsrError::Engine {
            engine: "asr",
            what: format!(
                "{TURNS_ENV}={v:?} is not understood: write turn=engine pairs, e.g. reminder=hybrid,identity=grammar"
            ),
        })?;
        config.turns.extend(turns);
    }
    let config = &config;
    let model_dir = config.models.get(lang).cloned();
    let grammar = match super::open_with(
        config.engine.as_deref(),
        lang,
        model_dir.as_deref(),
        replies,
        config.second_pass.as_deref(),
        config.decoders,
    ) {
        Ok(r) => Some(r),
        Err(AsrError::NoModel { .. }) => None,
        Err(e) => return Err(e),
    };
    // Whisper is loaded (once per process, shared) when a turn asks for it
    // or the language has no grammar engine.
    let wants_whisper = config.any_turn_uses_whisper(lang) || grammar.is_none();
    let whisper = if config.whisper_enabled() && wants_whisper {
        let path = config
            .whisper
            .models
            .get(lang)
            .cloned()
            .or_else(|| super::whisper::find_model(lang));
        match path {
            Some(p) => {
                let workers = config
                    .whisper
                    .workers
                    .unwrap_or_else(super::whisper::pool::default_workers);
                Some(WhisperPart {
                    pool: WhisperPool::shared(&p, workers)?,
                    options: DecodeOptions::for_language(whisper_language(lang)),
                })
            }
            // A turn asks for Whisper beside the grammar engine (the
            // English reminder turn does by default): say so at start-up
            // rather than hear it on the grammar engine alone unannounced.
            None if grammar.is_some() => {
                return Err(AsrError::NoModel {
                    lang: lang.to_string(),
                    hint: format!(
                        "a listening turn uses Whisper ([asr.turns]) but there is no Whisper model for {lang:?}: run scripts/setup-whisper, set {} or [asr.whisper] models, or hear every turn with the grammar engine ([asr.whisper] enabled = false)",
                        super::whisper::model::model_env_var(lang)
                    ),
                });
            }
            None => None,
        }
    } else {
        None
    };
    CallRecognizer::new(lang, grammar, whisper, config.clone(), meaning)
}

impl Recognizer for CallRecognizer {
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
        let mut partial = None;
        if self.engine.uses_grammar() {
            if let Some(g) = self.grammar.as_mut() {
                partial = g.accept(pcm)?;
                if let Some(p) = &partial {
                    self.partial.clone_from(&p.text);
                }
            }
        }
        if self.engine.uses_whisper() && self.whisper.is_some() {
            self.buf.extend_from_slice(pcm);
            self.watch_end_silence(pcm);
        }
        Ok(partial)
    }

    fn set_phrases(&mut self, phrases: &[String]) -> Result<(), AsrError> {
        let turn = self.turn.clone();
        self.listen(&turn, phrases)
    }

    fn listen(&mut self, turn: &str, phrases: &[String]) -> Result<(), AsrError> {
        self.clear_utterance();
        self.turn = turn.to_string();
        self.phrases = phrases.to_vec();
        self.engine = self
            .config
            .engine_for(
                &self.lang,
                turn,
                self.grammar.is_some(),
                self.whisper.is_some(),
            )
            .unwrap_or(self.engine);
        if self.engine.uses_grammar() {
            if let Some(g) = self.grammar.as_mut() {
                if phrases.is_empty() {
                    g.reset();
                } else {
                    g.set_phrases(phrases)?;
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Transcript, AsrError> {
        let ended = Instant::now();
        let grammar_t = match (self.engine.uses_grammar(), self.grammar.as_mut()) {
            (true, Some(g)) => Some(g.finish()?),
            _ => None,
        };
        let candidate = grammar_t.as_ref().map(|t| t.text.clone());
        let lm = match (&grammar_t, self.grammar.as_ref()) {
            (Some(_), Some(g)) => g.second_pass(),
            _ => None,
        };
        let lm_text = lm.as_ref().map(|l| l.text.clone());
        let lm_meant = lm_text.as_deref().and_then(|l| self.meaning_with_conf(l));
        let checked = self.engine != TurnEngine::Checked
            || candidate.as_deref().is_some_and(|c| self.checks(c));
        let (mut whisper, whisper_use) = if self.engine.uses_whisper() && checked {
            self.whisper_side(candidate.as_deref(), ended)?
        } else {
            (None, None)
        };
        if let Some(w) = whisper.as_mut() {
            self.phrase_for(w);
        }
        // Whisper skipped or late: heard as a grammar-only turn hears it.
        let fell_back =
            matches!(whisper_use, Some(WhisperUse::Busy | WhisperUse::Late)) && grammar_t.is_some();
        self.clear_utterance();
        let evidence = Evidence {
            grammar: grammar_t.as_ref().map(|t| GrammarSide {
                intent: self.meaning_of(&t.text),
                text: t.text.clone(),
                conf: t.confidence,
                whisper_score: whisper.as_ref().and_then(|w| w.grammar_score),
                lm_intent: lm_meant.map(|m| m.0),
                lm_intent_conf: lm_meant.map(|m| m.1),
                lm_text: lm_text.clone(),
                lm_phone_sim: lm.as_ref().map(|l| l.phone_sim),
            }),
            whisper: whisper.as_ref().map(|w| w.side.clone()),
        };
        let grammar_only = self.engine == TurnEngine::Grammar || fell_back || !checked;
        let model = match self.engine {
            _ if grammar_only && lm.is_some() => &self.second_pass_calibration,
            _ if grammar_only => &self.grammar_calibration,
            _ => &self.calibration,
        };
        let verdict = match self.engine {
            TurnEngine::Hybrid | TurnEngine::Checked if !grammar_only => self.hybrid_rule.decide(
                &evidence,
                whisper.as_ref().and_then(|w| w.intent_conf),
                model,
            ),
            _ => decide_with(&evidence, model, &self.second_pass_rule),
        };
        // A checked turn whose check did not come in time: never act on
        // the unchecked sentence.
        let verdict = if self.engine == TurnEngine::Checked && checked && fell_back {
            CheckRule::CALLS.unchecked(verdict, evidence.grammar.as_ref().and_then(|g| g.intent))
        } else {
            verdict
        };
        if let Some(g) = evidence.grammar.as_ref() {
            tracing::debug!(
                turn = %self.turn,
                sentence = %g.text,
                sentence_intent = ?g.intent,
                second_pass = ?g.lm_text,
                second_pass_intent = ?g.lm_intent,
                second_pass_intent_conf = ?g.lm_intent_conf,
                phone_sim = ?g.lm_phone_sim,
                source = ?verdict.source,
                confidence = verdict.confidence,
                "heard"
            );
        }
        let words = match (verdict.source, &grammar_t) {
            (Source::Grammar, Some(t)) => t.words.clone(),
            _ => {
                Transcript::from_words(
                    verdict
                        .text
                        .split_whitespace()
                        .filter(|w| *w != ",")
                        .map(|w| super::Word {
                            word: w.to_string(),
                            start: 0.0,
                            end: 0.0,
                            conf: verdict.confidence,
                        })
                        .collect(),
                )
                .words
            }
        };
        let transcript = Transcript {
            text: verdict.text.clone(),
            words,
            confidence: verdict.confidence,
        };
        self.last = Some(Heard {
            turn: self.turn.clone(),
            engine: self.engine,
            evidence,
            verdict,
            whisper_raw: whisper.as_ref().map(|w| w.raw.clone()),
            whisper_ms: whisper.as_ref().map(|w| w.ms),
            speculative: whisper.as_ref().is_some_and(|w| w.speculative),
            whisper_unsound: whisper.as_ref().and_then(|w| w.unsound),
            whisper_intent_conf: whisper.as_ref().and_then(|w| w.intent_conf),
            whisper_use,
        });
        Ok(transcript)
    }

    fn reset(&mut self) {
        if let Some(g) = self.grammar.as_mut() {
            g.reset();
        }
        self.clear_utterance();
    }

    fn whisper_use(&self) -> Option<WhisperUse> {
        self.last.as_ref().and_then(|h| h.whisper_use)
    }

    fn engine(&self) -> &'static str {
        match (self.engine, &self.grammar) {
            (TurnEngine::Whisper, _) | (_, None) => "whisper",
            (TurnEngine::Grammar, Some(g)) => g.engine(),
            (TurnEngine::Hybrid, Some(_)) => "hybrid",
            (TurnEngine::Checked, Some(_)) => "checked",
        }
    }
}

/// Environment variable setting the engine of listening turns over what
/// `[asr.turns]` says (`reminder=hybrid,identity=grammar`): the e2e tests
/// and benchmarks run a turn on another engine without a config file.
pub const TURNS_ENV: &str = "DUECALL_ASR_TURNS";

/// [`TURNS_ENV`]'s `turn=engine,...` pairs; None when a pair is not
/// understood (an empty value sets nothing).
pub fn parse_turns(v: &str) -> Option<Vec<(String, TurnEngine)>> {
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (turn, engine) = p.split_once('=')?;
            let engine = match engine.trim() {
                "grammar" => TurnEngine::Grammar,
                "whisper" => TurnEngine::Whisper,
                "hybrid" => TurnEngine::Hybrid,
                "checked" => TurnEngine::Checked,
                _ => return None,
            };
            let turn = turn.trim();
            (!turn.is_empty()).then(|| (turn.to_string(), engine))
        })
        .collect()
}

/// Environment variable replacing [`HybridRule::CALLS`] for experiments:
/// `MIN_LOGPROB,MIN_INTENT_CONF,MIN_STAKES_CONF,KNOWN_GAP,UNKNOWN_GAP`.
pub const HYBRID_RULE_ENV: &str = "DUECALL_HYBRID_RULE";

/// [`HYBRID_RULE_ENV`]'s five numbers; None when not understood.
fn parse_hybrid_rule(v: &str) -> Option<HybridRule> {
    let p: Vec<f32> = v
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect::<Option<_>>()?;
    match p[..] {
        [min_logprob, min_intent_conf, min_stakes_conf, known_gap, unknown_gap] => {
            Some(HybridRule {
                min_logprob,
                min_intent_conf,
                min_stakes_conf,
                known_gap,
                unknown_gap,
            })
        }
        _ => None,
    }
}

/// `DUECALL_SECOND_PASS_TAKE` =
/// `MIN_INTENT_CONF,MAX_GRAMMAR_CONF[,MIN_STAKES_CONF[,MAX_INTO_STAKES]]`
/// (or `never`), for experiments with [`SecondPassRule`] (an omitted value
/// is [`SecondPassRule::CALLS`]'s); None when unset or not understood.
fn second_pass_rule_from_env() -> Option<SecondPassRule> {
    parse_second_pass_rule(&std::env::var("DUECALL_SECOND_PASS_TAKE").ok()?)
}

/// [`second_pass_rule_from_env`]'s parsing.
fn parse_second_pass_rule(v: &str) -> Option<SecondPassRule> {
    if v.trim() == "never" {
        return Some(SecondPassRule::NEVER);
    }
    let parts: Vec<f32> = v
        .split(',')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [a, b] => Some(SecondPassRule {
            min_intent_conf: a,
            max_grammar_conf: b,
            ..SecondPassRule::CALLS
        }),
        [a, b, c] => Some(SecondPassRule {
            min_intent_conf: a,
            max_grammar_conf: b,
            min_stakes_conf: c,
            ..SecondPassRule::CALLS
        }),
        [a, b, c, d] => Some(SecondPassRule {
            min_intent_conf: a,
            max_grammar_conf: b,
            min_stakes_conf: c,
            max_grammar_conf_into_stakes: d,
        }),
        _ => None,
    }
}

/// How long `finish` may wait for Whisper in a turn Whisper hears alone
/// (a stalled pool must not hang a call; where the grammar engine also
/// hears the turn, `[asr.whisper] deadline_ms` bounds the wait instead).
/// Whisper base takes 1.5-3 s per Mandarin reply on a quiet 2-core machine
/// and more under load; a reply lost to this wait is asked again, so it is
/// long, and the dialogue's `no_input_ms` decides how long a caller waits.
pub const WHISPER_WAIT: Duration = Duration::from_secs(12);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::confidence::DISAGREEMENT_CEILING;
    use crate::asr::testutil::{speak_8k, whisper_english_model, TempDir};
    use crate::asr::whisper::model::WhisperModel;

    /// A grammar engine that always hears `text`.
    struct Fixed(&'static str);

    impl Recognizer for Fixed {
        fn accept(&mut self, _: &[i16]) -> Result<Option<Partial>, AsrError> {
            Ok(None)
        }
        fn set_phrases(&mut self, _: &[String]) -> Result<(), AsrError> {
            Ok(())
        }
        fn finish(&mut self) -> Result<Transcript, AsrError> {
            Ok(Transcript::from_words(
                self.0
                    .split_whitespace()
                    .map(|w| super::super::Word {
                        word: w.into(),
                        start: 0.0,
                        end: 0.0,
                        conf: 0.8,
                    })
                    .collect(),
            ))
        }
        fn reset(&mut self) {}
        fn engine(&self) -> &'static str {
            "fixed"
        }
    }

    /// A hybrid reminder turn over a fixed grammar engine and a pool of
    /// its own (no decode time known yet), or None (skip; a failure under
    /// CI) without the model or the speech tools.
    fn hybrid_call(deadline_ms: u64) -> Option<CallRecognizer> {
        two_engine_call(
            "reminder",
            TurnEngine::Hybrid,
            "i already paid",
            deadline_ms,
            None,
        )
    }

    /// A call whose `turn` is on `engine`, over a grammar engine that
    /// always hears `sentence` and a Whisper pool of its own.
    fn two_engine_call(
        turn: &str,
        engine: TurnEngine,
        sentence: &'static str,
        deadline_ms: u64,
        meaning: Option<Meaning>,
    ) -> Option<CallRecognizer> {
        let model = whisper_english_model()?;
        let pool = Arc::new(WhisperPool::new(WhisperModel::shared(&model).ok()?, 2).ok()?);
        let mut config = AsrConfig::default();
        config.turns.insert(turn.into(), engine);
        config.whisper.deadline_ms = Some(deadline_ms);
        let whisper = WhisperPart {
            pool,
            options: DecodeOptions {
                language: "en".into(),
                ..DecodeOptions::default()
            },
        };
        let mut rec = CallRecognizer::new(
            "en",
            Some(Box::new(Fixed(sentence))),
            Some(whisper),
            config,
            meaning,
        )
        .ok()?;
        rec.listen(turn, &[]).ok()?;
        Some(rec)
    }

    /// The identity grammar's meanings, as far as these tests need them
    /// (the classifier's job in calls).
    fn identity_meaning() -> Meaning {
        Arc::new(|t: &str| {
            let kind = if t.contains("rep") || t.contains("agent") {
                IntentKind::RequestAgent
            } else if t.contains("yes") || t.contains("speaking") || t.contains("me") {
                IntentKind::IdentityConfirmed
            } else {
                IntentKind::Unknown
            };
            (kind, 0.9)
        })
    }

    #[test]
    fn a_checked_turn_has_whisper_hear_a_consequential_sentence_again_before_it_is_trusted() {
        // The grammar engine forces "yes, speaking" onto "speak to a rep".
        let Some(mut rec) = two_engine_call(
            "identity",
            TurnEngine::Checked,
            "speak to a rep",
            60_000,
            Some(identity_meaning()),
        ) else {
            return;
        };
        let phrases: Vec<String> = ["yes", "yes speaking", "that's me", "no", "talk to a person"]
            .map(String::from)
            .to_vec();
        rec.listen("identity", &phrases).unwrap();
        let d = TempDir::new("checked-turn");
        for (i, said) in ["Yes, speaking.", "Yes, this is she speaking, go ahead."]
            .iter()
            .enumerate()
        {
            let pcm = speak_8k(&d.0, &format!("y{i}"), "en-us", 150, said, true);
            rec.accept(&pcm).unwrap();
            rec.finish().unwrap();
            let h = rec.last_heard().unwrap().clone();
            assert_eq!(h.engine, TurnEngine::Checked);
            assert_eq!(h.whisper_use, Some(WhisperUse::Used), "{h:?}");
            eprintln!(
                "checked: {said:?} -> {:?} (Whisper: {:?})",
                h.verdict, h.whisper_raw
            );
            let heard_agent = h.verdict.text.contains("rep");
            // Either Whisper's (or its best phrase's) "yes speaking" is
            // taken, or the forced sentence is below the confirmation
            // threshold: never acted on at once.
            assert!(
                !heard_agent || h.verdict.confidence <= DISAGREEMENT_CEILING,
                "{h:?}"
            );
        }
    }

    #[test]
    fn a_checked_turn_leaves_a_short_ordinary_answer_to_the_grammar_engine() {
        let Some(mut rec) = two_engine_call(
            "identity",
            TurnEngine::Checked,
            "yes speaking",
            60_000,
            Some(identity_meaning()),
        ) else {
            return;
        };
        let d = TempDir::new("checked-short");
        let pcm = speak_8k(&d.0, "y", "en-us", 150, "Yes.", true);
        rec.accept(&pcm).unwrap();
        rec.finish().unwrap();
        let h = rec.last_heard().unwrap().clone();
        assert_eq!(h.whisper_use, None, "{h:?}");
        assert!(h.evidence.whisper.is_none(), "{h:?}");
        let alone = decide_with(&h.evidence, &Calibration::FITTED, &SecondPassRule::CALLS);
        assert_eq!(h.verdict, alone);
    }

    /// A reply heard without Whisper is heard as a grammar-only turn hears
    /// it: the grammar sentence with the grammar calibration's confidence.
    fn assert_heard_as_grammar_alone(h: &Heard) {
        assert!(h.evidence.whisper.is_none(), "{h:?}");
        let alone = decide_with(&h.evidence, &Calibration::FITTED, &SecondPassRule::CALLS);
        assert_eq!(h.verdict, alone);
        assert_eq!(h.verdict.text, "i already paid");
    }

    #[test]
    fn whisper_late_or_busy_leaves_the_grammar_result_and_in_time_is_used() {
        let Some(mut rec) = hybrid_call(100) else {
            return;
        };
        let d = TempDir::new("hybrid-wait");
        let pcm = speak_8k(&d.0, "r", "en-us", 150, "I already paid it last week", true);
        // Nothing decoded yet, a worker free: asked, but a 2 s reply does
        // not decode in 100 ms.
        rec.accept(&pcm).unwrap();
        let t0 = Instant::now();
        let t = rec.finish().unwrap();
        let waited = t0.elapsed();
        let h = rec.last_heard().unwrap().clone();
        assert_eq!(h.whisper_use, Some(WhisperUse::Late), "{h:?}");
        assert_eq!(rec.whisper_use(), Some(WhisperUse::Late));
        // Bounded by the deadline, not by `WHISPER_WAIT` (12 s); loose,
        // because the grammar engine's own final pass runs in `finish` too
        // and the lib tests run ten at a time.
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        assert_eq!(t.text, "i already paid");
        assert_heard_as_grammar_alone(&h);
        // Let the pool learn a decode's time (more than 100 ms), then take
        // both workers: not even asked.
        let whisper = rec.whisper.clone().unwrap();
        let decode = || {
            whisper.pool.submit(
                to_whisper_rate(&pcm),
                whisper.options.clone(),
                Priority::Final,
            )
        };
        assert!(decode().wait().is_ok());
        assert!(whisper.pool.decode_estimate_ms() > 100);
        let others: Vec<Ticket> = (0..3).map(|_| decode()).collect();
        rec.accept(&pcm).unwrap();
        let t0 = Instant::now();
        rec.finish().unwrap();
        let h = rec.last_heard().unwrap().clone();
        assert_eq!(h.whisper_use, Some(WhisperUse::Busy), "{h:?}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        assert_heard_as_grammar_alone(&h);
        for t in others {
            assert!(t.wait().is_ok());
        }
        // A deadline the decode fits in: Whisper is used. (Longer than
        // `[asr.whisper]` allows: the lib tests run ten at a time, and other
        // tests' calls share this process's Whisper pool.)
        rec.config.whisper.deadline_ms = Some(60_000);
        rec.accept(&pcm).unwrap();
        rec.finish().unwrap();
        let h = rec.last_heard().unwrap();
        assert_eq!(h.whisper_use, Some(WhisperUse::Used), "{h:?}");
        assert!(h.evidence.whisper.is_some());
    }

    #[test]
    fn the_turn_engine_override_parses_pairs_and_refuses_what_it_cannot_read() {
        assert_eq!(
            parse_turns("reminder=hybrid, identity = grammar").unwrap(),
            vec![
                ("reminder".to_string(), TurnEngine::Hybrid),
                ("identity".to_string(), TurnEngine::Grammar)
            ]
        );
        assert_eq!(parse_turns("").unwrap(), vec![]);
        for bad in ["reminder", "reminder=loud", "=hybrid"] {
            assert_eq!(parse_turns(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_hybrid_rule_override_takes_five_numbers() {
        let r = parse_hybrid_rule("-1, 0.6, 0.8, -0.35, 1").unwrap();
        assert_eq!(r.min_logprob, -1.0);
        assert_eq!(r.unknown_gap, 1.0);
        assert_eq!(parse_hybrid_rule("1,2,3"), None);
        assert_eq!(parse_hybrid_rule("a,b,c,d,e"), None);
    }

    #[test]
    fn the_second_pass_rule_override_parses_two_to_four_thresholds_or_never() {
        let two = parse_second_pass_rule("0.6, 0.7").unwrap();
        assert_eq!((two.min_intent_conf, two.max_grammar_conf), (0.6, 0.7));
        assert_eq!(two.min_stakes_conf, SecondPassRule::CALLS.min_stakes_conf);
        let three = parse_second_pass_rule("0.7,0.5,0.9").unwrap();
        assert_eq!(three.min_stakes_conf, 0.9);
        assert_eq!(
            three.max_grammar_conf_into_stakes,
            SecondPassRule::CALLS.max_grammar_conf_into_stakes
        );
        let four = parse_second_pass_rule("0.7,0.5,0.9,0.2").unwrap();
        assert_eq!(four.max_grammar_conf_into_stakes, 0.2);
        assert_eq!(parse_second_pass_rule("never"), Some(SecondPassRule::NEVER));
        for bad in ["", "0.7", "0.7,x", "1,2,3,4,5"] {
            assert_eq!(parse_second_pass_rule(bad), None, "{bad}");
        }
    }
}
