//! Answering-machine detection as its own small sans-IO machine: the
//! `Detector` listens to the greeting after the answer until it can tell a
//! person from a machine (Asterisk `AMD()` rules: initial silence, greeting
//! length, word count, the silence after a short greeting, a beep, a long
//! transcript); after a machine verdict, `BeepWait` waits for the beep or
//! the end of the greeting so the message is not spoken over it. Both take
//! explicit time and say when they next need it (`deadline`); neither
//! plays anything nor decides what the call does with the verdict.

use serde::Serialize;

use super::config::AmdConfig;
use super::Millis;

/// The AMD verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AmdVerdict {
    /// Not run (disabled, or the call never got that far).
    NotRun,
    /// A person.
    Human,
    /// An answering machine or voicemail.
    Machine,
    /// Could not tell.
    Uncertain,
}

/// What AMD decided and from what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmdResult {
    /// The verdict.
    pub verdict: AmdVerdict,
    /// `short-greeting`, `long-greeting`, `max-words`, `transcript-words`,
    /// `beep`, `initial-silence`, `too-long`, `disabled`, `hung-up`.
    pub reason: String,
    /// When it was decided (driver ms).
    pub decided_at_ms: Option<u64>,
    /// Words (voiced stretches of `min_word_ms` or more) counted.
    pub words: u32,
    /// Voiced ms in the greeting.
    pub greeting_ms: u64,
}

impl AmdResult {
    /// Nothing decided yet (or detection off: `reason` says which).
    pub fn not_run(reason: &str) -> AmdResult {
        AmdResult {
            verdict: AmdVerdict::NotRun,
            reason: reason.to_string(),
            decided_at_ms: None,
            words: 0,
            greeting_ms: 0,
        }
    }
}

/// A verdict and the rule that gave it.
pub type Verdict = (AmdVerdict, &'static str);

/// Listens to the greeting after the answer.
#[derive(Debug, Clone)]
pub struct Detector {
    cfg: AmdConfig,
    answered: Millis,
    first_speech: Option<Millis>,
    in_speech_since: Option<Millis>,
    voiced: u64,
    words: u32,
    last_end: Option<Millis>,
}

impl Detector {
    /// Starts listening at the answer.
    pub fn new(cfg: &AmdConfig, answered: Millis) -> Detector {
        Detector {
            cfg: cfg.clone(),
            answered,
            first_speech: None,
            in_speech_since: None,
            voiced: 0,
            words: 0,
            last_end: None,
        }
    }

    /// Is the callee talking right now?
    pub fn in_speech(&self) -> bool {
        self.in_speech_since.is_some()
    }

    /// The earliest moment a verdict comes due without further input, and
    /// that verdict (on a tie, "too long" wins).
    pub fn deadline(&self) -> (Millis, Verdict) {
        let c = &self.cfg;
        let mut best = (
            self.answered + c.total_analysis_ms,
            (AmdVerdict::Uncertain, "too-long"),
        );
        let other = match (self.first_speech, self.in_speech_since) {
            (None, _) => Some((
                self.answered + c.initial_silence_ms,
                (AmdVerdict::Uncertain, "initial-silence"),
            )),
            (Some(_), Some(since)) => Some((
                since + c.greeting_ms.saturating_sub(self.voiced),
                (AmdVerdict::Machine, "long-greeting"),
            )),
            (Some(_), None) => match (self.last_end, self.words > 0) {
                (Some(end), true) => Some((
                    end + c.after_greeting_silence_ms,
                    (AmdVerdict::Human, "short-greeting"),
                )),
                _ => None,
            },
        };
        if let Some(o) = other {
            if o.0 < best.0 {
                best = o;
            }
        }
        best
    }

    /// The callee started talking.
    pub fn speech_start(&mut self, now: Millis) {
        self.first_speech.get_or_insert(now);
        self.in_speech_since = Some(now);
    }

    /// The callee stopped talking: a verdict when the greeting already
    /// has too many words or too much voice.
    pub fn speech_end(&mut self, now: Millis) -> Option<Verdict> {
        let since = self.in_speech_since.take()?;
        let seg = now.saturating_sub(since);
        self.voiced += seg;
        if seg >= self.cfg.min_word_ms {
            self.words += 1;
        }
        self.last_end = Some(now);
        if self.words > self.cfg.max_words {
            Some((AmdVerdict::Machine, "max-words"))
        } else if self.voiced >= self.cfg.greeting_ms {
            Some((AmdVerdict::Machine, "long-greeting"))
        } else {
            None
        }
    }

    /// A (partial or final) transcript of the greeting with `words` words:
    /// a machine when it is longer than a person's hello.
    pub fn transcript(&self, words: u32) -> Option<Verdict> {
        (words > self.cfg.max_transcript_words).then_some((AmdVerdict::Machine, "transcript-words"))
    }

    /// The record of a verdict reached at `now`.
    pub fn result(&self, now: Millis, (verdict, reason): Verdict) -> AmdResult {
        let voiced_now = self.voiced
            + self
                .in_speech_since
                .map(|s| now.saturating_sub(s))
                .unwrap_or(0);
        AmdResult {
            verdict,
            reason: reason.to_string(),
            decided_at_ms: Some(now),
            words: self.words,
            greeting_ms: voiced_now,
        }
    }

    /// The record when the callee hung up before a verdict.
    pub fn hung_up(&self, now: Millis) -> AmdResult {
        AmdResult {
            verdict: AmdVerdict::Uncertain,
            reason: "hung-up".into(),
            decided_at_ms: Some(now),
            words: self.words,
            greeting_ms: self.voiced,
        }
    }
}

/// After a machine verdict: waits for the beep, or for the greeting to fall
/// silent, or for `max_beep_wait_ms`, whichever comes first.
#[derive(Debug, Clone)]
pub struct BeepWait {
    give_up_at: Millis,
    silence_after: u64,
    silence_deadline: Option<Millis>,
}

impl BeepWait {
    /// Starts waiting at `now`; `in_speech`: the greeting is still playing.
    pub fn new(cfg: &AmdConfig, now: Millis, in_speech: bool) -> BeepWait {
        BeepWait {
            give_up_at: now + cfg.max_beep_wait_ms,
            silence_after: cfg.message_after_silence_ms,
            silence_deadline: (!in_speech).then_some(now + cfg.message_after_silence_ms),
        }
    }

    /// The greeting goes on: no silence yet.
    pub fn speech_start(&mut self) {
        self.silence_deadline = None;
    }

    /// The greeting paused: the message goes after enough silence.
    pub fn speech_end(&mut self, now: Millis) {
        self.silence_deadline = Some(now + self.silence_after);
    }

    /// When to leave the message if nothing else happens.
    pub fn deadline(&self) -> Millis {
        self.silence_deadline
            .map_or(self.give_up_at, |s| s.min(self.give_up_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_hello_then_silence_is_a_person_and_a_long_one_a_machine() {
        let cfg = AmdConfig::default();
        let mut d = Detector::new(&cfg, 0);
        assert_eq!(
            d.deadline(),
            (2500, (AmdVerdict::Uncertain, "initial-silence"))
        );
        d.speech_start(300);
        assert_eq!(d.deadline(), (1800, (AmdVerdict::Machine, "long-greeting")));
        assert_eq!(d.speech_end(700), None);
        assert_eq!(d.deadline(), (1500, (AmdVerdict::Human, "short-greeting")));

        let mut m = Detector::new(&cfg, 0);
        m.speech_start(200);
        assert_eq!(
            m.speech_end(2000),
            Some((AmdVerdict::Machine, "long-greeting"))
        );
        assert_eq!(m.result(2000, (AmdVerdict::Machine, "x")).greeting_ms, 1800);
    }

    #[test]
    fn the_total_analysis_time_wins_a_tie() {
        let cfg = AmdConfig {
            initial_silence_ms: 5000,
            ..AmdConfig::default()
        };
        let d = Detector::new(&cfg, 100);
        assert_eq!(d.deadline(), (5100, (AmdVerdict::Uncertain, "too-long")));
    }

    #[test]
    fn the_beep_wait_ends_at_silence_or_at_its_limit() {
        let cfg = AmdConfig::default();
        let mut w = BeepWait::new(&cfg, 1000, true);
        assert_eq!(w.deadline(), 21_000);
        w.speech_end(3000);
        assert_eq!(w.deadline(), 5000);
        w.speech_start();
        assert_eq!(w.deadline(), 21_000);
    }
}
