//! Where the time of each reply went, from the end of the caller's speech to
//! the first frame of the prompt that answered it (QA and the latency
//! benchmark read it). Observes only; never used to decide anything.

use serde::Serialize;

use super::recognizer::AsrWork;

/// Where the time went between the end of one reply and the first frame of
/// the prompt that answered it, on the driver's clock (ms since the dial).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplyTiming {
    /// What the recognizer heard.
    pub heard: String,
    /// End of the last voiced frame of the reply (VAD).
    pub voice_end_ms: u64,
    /// The VAD ended the utterance (after the end silence).
    pub speech_end_ms: u64,
    /// The recognizer's final arrived.
    pub final_ms: u64,
    /// Of which: the end of the utterance queued behind earlier audio.
    pub asr_wait_ms: u64,
    /// Of which: the recognizer's end-of-utterance search.
    pub asr_finish_ms: u64,
    /// Recognizer time spent switching grammars since the previous reply.
    pub asr_setup_ms: u64,
    /// Recognizer time spent decoding this reply's audio.
    pub asr_decode_ms: u64,
    /// Audio of this reply fed to the recognizer.
    pub asr_audio_ms: u64,
    /// In a turn Whisper hears too: `used`, `busy` (not asked: its queue
    /// could not finish by the deadline) or `late` (not back by the
    /// deadline); absent otherwise. Busy and late replies were heard by the
    /// grammar engine alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whisper: Option<crate::asr::whisper::WhisperUse>,
    /// The prompt that answered the reply.
    pub prompt: String,
    /// The driver queued it on the leg.
    pub play_ms: u64,
    /// Its first frame went out (the media session's report arrived).
    pub started_ms: u64,
    /// Quiet audio at the head of the prompt before its first voiced frame.
    pub lead_ms: u64,
}

/// Follows one reply at a time through the pump.
#[derive(Debug, Default)]
pub(super) struct Timings {
    current: Option<ReplyTiming>,
    /// Every reply answered by a prompt.
    pub done: Vec<ReplyTiming>,
}

impl Timings {
    /// The VAD ended an utterance at `now`, its last voice `silent_ms` ago.
    pub fn speech_ended(&mut self, now: u64, silent_ms: u64) {
        self.current = Some(ReplyTiming {
            voice_end_ms: now.saturating_sub(silent_ms),
            speech_end_ms: now,
            ..ReplyTiming::default()
        });
    }

    /// The recognizer's final for it arrived.
    pub fn final_heard(&mut self, now: u64, heard: &str, work: &AsrWork) {
        if let Some(rt) = self.current.as_mut().filter(|rt| rt.final_ms == 0) {
            rt.heard = heard.to_string();
            rt.final_ms = now;
            rt.asr_wait_ms = work.waited;
            rt.asr_finish_ms = work.search;
            rt.asr_setup_ms = work.setup;
            rt.asr_decode_ms = work.decode;
            rt.asr_audio_ms = work.audio;
            rt.whisper = work.whisper;
        }
    }

    /// A prompt was queued on the leg at `now` (the answer, if a final came).
    pub fn prompt_queued(&mut self, now: u64, prompt: &str, lead_ms: u64) {
        if let Some(t) = self
            .current
            .as_mut()
            .filter(|t| t.prompt.is_empty() && t.final_ms > 0)
        {
            t.prompt = prompt.to_string();
            t.play_ms = now;
            t.lead_ms = lead_ms;
        }
    }

    /// A prompt's first frame went out at `now`.
    pub fn prompt_started(&mut self, now: u64, prompt: &str) {
        if self.current.as_ref().is_some_and(|t| t.prompt == prompt) {
            if let Some(mut t) = self.current.take() {
                t.started_ms = now;
                self.done.push(t);
            }
        }
    }
}
