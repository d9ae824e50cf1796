//! Prompt audio for one call: every text the call can reach, rendered on a
//! blocking thread before the INVITE; a text known only mid-call (a promised
//! date the read-backs did not cover) rendered off the event pump, its audio
//! coming back as an event so the pump never waits on synthesis. Never
//! decides what to say.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::mpsc;

use super::kit::LangKit;
use super::AgentError;
use crate::dialogue::{Conversation, PromptId};
use crate::media::tts::{PromptAudio, TtsError};

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
                let pcm = shared_pcm(&audio, id.as_str(), &text, fixed)
                    .map_err(|e| AgentError::Audio(e.to_string()))?;
                m.insert(id, (text, pcm));
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
            let pcm = shared_pcm(&audio, prompt.as_str(), &text, false).map_err(|e| e.to_string());
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

/// What makes two renders the same audio: the audio directories, voice and speed, the
/// prompt, its text, and whether a recording may stand for it.
type PcmKey = (PathBuf, PathBuf, String, u32, String, String, bool);

/// Renders held by calls now, shared process-wide: every call of a campaign plays the same
/// fixed prompts (and often the same read-backs), so they are one allocation, not one per
/// call. Weak: a render is freed when the last call holding it ends.
fn pcm_cache() -> &'static Mutex<HashMap<PcmKey, Weak<[i16]>>> {
    static CACHE: OnceLock<Mutex<HashMap<PcmKey, Weak<[i16]>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Dead entries the cache may hold before it sweeps them.
const PCM_CACHE_SWEEP: usize = 512;

/// The audio of prompt `id` saying `text` (leading silence trimmed): the one another call
/// holds when there is one, else loaded (or rendered) now. Blocking: call it off the pump.
pub(super) fn shared_pcm(
    audio: &PromptAudio,
    id: &str,
    text: &str,
    fixed: bool,
) -> Result<Arc<[i16]>, TtsError> {
    let key: PcmKey = (
        audio.lang_dir.clone(),
        audio.cache_dir.clone(),
        audio.voice.clone(),
        audio.speed,
        id.to_string(),
        text.to_string(),
        fixed,
    );
    let lock = || pcm_cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pcm) = lock().get(&key).and_then(Weak::upgrade) {
        return Ok(pcm);
    }
    // Loaded outside the lock: a render may take espeak-ng's time.
    let (pcm, _) = audio.load(id, text, fixed)?;
    let pcm: Arc<[i16]> = Arc::from(trim_leading_silence(pcm));
    let mut map = lock();
    if let Some(other) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(other);
    }
    if map.len() >= PCM_CACHE_SWEEP {
        map.retain(|_, w| w.strong_count() > 0);
    }
    map.insert(key, Arc::downgrade(&pcm));
    Ok(pcm)
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

    /// Two calls playing the same prompt hold one copy of its audio; it is freed with the
    /// last call holding it, and a different text is a different render.
    #[test]
    fn calls_share_one_copy_of_a_prompt_and_it_goes_with_the_last_holder() {
        let dir = std::env::temp_dir().join(format!("duecall-sharedpcm-{}", std::process::id()));
        let audio = crate::media::tts::PromptAudio::new(&dir, "en", &dir.join("c"), "en-us", 165);
        std::fs::create_dir_all(dir.join("en")).unwrap();
        let mut loud = vec![0i16; 800];
        loud.extend(std::iter::repeat_n(4000, 1600));
        crate::media::tts::write_wav_8k(&dir.join("en/closing.wav"), &loud).unwrap();
        let a = shared_pcm(&audio, "closing", "Goodbye.", true).unwrap();
        let b = shared_pcm(&audio, "closing", "Goodbye.", true).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second call reuses the first's audio"
        );
        assert_eq!(a.len(), 160 + 1600, "leading silence trimmed to one frame");
        let other = audio.clone();
        let c = shared_pcm(&other, "closing", "Goodbye now.", true).unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "another text is another entry");
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(
            weak.upgrade().is_none(),
            "freed with the last call holding it"
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
