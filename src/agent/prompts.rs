//! Prompt audio for one call: every text the call can reach, rendered on a
//! blocking thread before the INVITE; a text known only mid-call (a promised
//! date the read-backs did not cover) rendered off the event pump, its audio
//! coming back as an event so the pump never waits on synthesis. Never
//! decides what to say.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::kit::LangKit;
use super::AgentError;
use crate::dialogue::{Conversation, PromptId};
use crate::media::tts::PromptAudio;

/// A render that finished off the pump.
pub(super) struct Rendered {
    /// Which request it answers (stale ones are dropped).
    pub ticket: u64,
    /// The prompt.
    pub prompt: PromptId,
    /// Its audio, or why there is none.
    pub pcm: Result<Arc<[i16]>, String>,
}

/// The call's prompt audio.
pub(super) struct Prompts {
    ready: HashMap<PromptId, (String, Arc<[i16]>)>,
    audio: PromptAudio,
    done_tx: mpsc::Sender<Rendered>,
    /// Renders that finished, for the pump to play.
    pub done: mpsc::Receiver<Rendered>,
    /// The render the pump waits for, if any.
    pub waiting: Option<u64>,
    next_ticket: u64,
}

impl Prompts {
    /// Renders (or reads) every text `conv` can reach before the call, on a
    /// blocking thread.
    pub async fn prepare(conv: &Conversation, kit: &LangKit) -> Result<Prompts, AgentError> {
        let texts = conv.texts_to_prepare();
        let promise_texts = conv.promise_texts_to_prepare();
        let audio = kit.audio.clone();
        let script = kit.script.clone();
        let ready = tokio::task::spawn_blocking(move || {
            let mut m = HashMap::new();
            for (id, text) in texts {
                let fixed = script.prompt(id).is_fixed();
                let (pcm, _) = audio
                    .load(id.as_str(), &text, fixed)
                    .map_err(|e| AgentError::Audio(e.to_string()))?;
                m.insert(id, (text, Arc::<[i16]>::from(trim_leading_silence(pcm))));
            }
            // Read-backs of every date a promise can name: rendered into the
            // cache now (once a day for all calls), read from it when played.
            let promised: Vec<&str> = promise_texts.iter().map(|(_, t)| t.as_str()).collect();
            audio
                .prepare(&promised)
                .map_err(|e| AgentError::Audio(e.to_string()))?;
            Ok::<_, AgentError>(m)
        })
        .await
        .map_err(|e| AgentError::Audio(e.to_string()))??;
        let (done_tx, done) = mpsc::channel(4);
        Ok(Prompts {
            ready,
            audio: kit.audio.clone(),
            done_tx,
            done,
            waiting: None,
            next_ticket: 0,
        })
    }

    /// The audio of `prompt` saying `text` when it is ready; else starts
    /// rendering it off the pump (its `Rendered` arrives on `done`).
    pub fn get_or_render(&mut self, prompt: PromptId, text: &str) -> Option<Arc<[i16]>> {
        if let Some((t, pcm)) = self.ready.get(&prompt) {
            if t == text {
                return Some(pcm.clone());
            }
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.waiting = Some(ticket);
        let audio = self.audio.clone();
        let tx = self.done_tx.clone();
        let text = text.to_string();
        tokio::task::spawn_blocking(move || {
            // A value known only now (a promised date): render it.
            let pcm = audio
                .load(prompt.as_str(), &text, false)
                .map(|(pcm, _)| Arc::from(trim_leading_silence(pcm)))
                .map_err(|e| e.to_string());
            let _ = tx.blocking_send(Rendered {
                ticket,
                prompt,
                pcm,
            });
        });
        None
    }

    /// Forgets the render the pump waited for (the prompt was cut).
    pub fn cancel_wait(&mut self) {
        self.waiting = None;
    }

    /// True when `r` is the render the pump still waits for.
    pub fn is_awaited(&mut self, r: &Rendered) -> bool {
        if self.waiting == Some(r.ticket) {
            self.waiting = None;
            true
        } else {
            false
        }
    }
}

/// Drops the silence a synthesizer (or a recording) puts before the first
/// word, keeping one frame: every millisecond of it is reply latency.
pub(super) fn trim_leading_silence(mut pcm: Vec<i16>) -> Vec<i16> {
    const LOUD: i32 = 300;
    if let Some(first) = pcm.iter().position(|s| (*s as i32).abs() > LOUD) {
        let keep_from = first.saturating_sub(160);
        pcm.drain(..keep_from);
    }
    pcm
}

/// How far into `pcm` the first frame a listener's VAD would call voice
/// starts (energy over -50 dBFS and not noise-like), in ms.
pub(super) fn voice_onset_ms(pcm: &[i16]) -> u64 {
    pcm.chunks(crate::telephony::leg::FRAME_SAMPLES)
        .position(|f| {
            let s = crate::media::vad::frame_stats(f);
            s.energy_db > -50.0 && !(s.zcr > 0.45 && s.energy_db < -38.0)
        })
        .unwrap_or(0) as u64
        * 20
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs espeak-ng. The promise read-back is rendered per call; its
    /// leading "Th" once left 100 ms of aliased hiss before the first word.
    #[test]
    fn a_read_back_rendered_per_call_voices_within_one_frame() {
        let dir = std::env::temp_dir().join(format!("duecall-readback-{}", std::process::id()));
        let audio = crate::media::tts::PromptAudio::new(&dir, "en", &dir, "en-us", 165);
        let text = "Thank you. We have noted that you will pay on Friday, November 27th.";
        let (pcm, _) = audio
            .load("promise_recorded", text, false)
            .expect("espeak-ng renders");
        let pcm = trim_leading_silence(pcm);
        assert!(
            voice_onset_ms(&pcm) <= 20,
            "voice starts {} ms in",
            voice_onset_ms(&pcm)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn leading_silence_is_trimmed_to_one_frame_and_speech_kept_whole() {
        let mut pcm = vec![0i16; 8000];
        pcm.extend(std::iter::repeat_n(5000, 800));
        pcm.extend(vec![0; 400]);
        let out = trim_leading_silence(pcm);
        assert_eq!(out.len(), 160 + 800 + 400);
        assert_eq!(out[160], 5000);
        assert!(
            trim_leading_silence(vec![0; 100]).len() == 100,
            "all-silent audio is left alone"
        );
    }
}
