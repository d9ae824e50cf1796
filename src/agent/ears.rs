//! What the agent hears in each 20 ms frame: the VAD's speech start and end
//! (and the speech audio for the recognizer, pre-roll included), a beep,
//! and in-band DTMF when the carrier sends no RFC 4733 events. Pure signal
//! work per frame; decides nothing.

use crate::dialogue::DialogueConfig;
use crate::media::tone::{BeepDetector, DtmfDetector, DtmfDigit};
use crate::media::vad::{SpeechGate, VadConfig, VadEvent};

/// Something heard in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heard {
    /// The caller started talking.
    SpeechStart,
    /// The caller stopped talking; the last voice was `silent_ms` ago.
    SpeechEnd {
        /// Silence since the last voiced frame.
        silent_ms: u64,
    },
    /// A beep.
    Tone,
    /// An in-band DTMF digit.
    Digit(char),
}

/// The per-call detectors.
pub(super) struct Ears {
    gate: SpeechGate,
    beep: BeepDetector,
    inband: Option<DtmfDetector>,
    digits: Vec<DtmfDigit>,
    /// Speech audio of the current frame for the recognizer.
    pub speech: Vec<i16>,
}

impl Ears {
    /// Detectors set from `[dialogue]`.
    pub fn new(cfg: &DialogueConfig) -> Ears {
        Ears {
            gate: SpeechGate::new(VadConfig {
                min_speech_ms: cfg.min_speech_ms,
                end_silence_ms: cfg.end_silence_ms,
                ..VadConfig::default()
            }),
            beep: BeepDetector::new(cfg.amd.beep_min_ms),
            inband: cfg.inband_dtmf.then(DtmfDetector::new),
            digits: Vec::new(),
            speech: Vec::with_capacity(4000),
        }
    }

    /// The carrier sends RFC 4733 events: in-band detection stops (a digit
    /// would otherwise count twice).
    pub fn rfc4733_seen(&mut self) {
        self.inband = None;
    }

    /// Ends the current utterance now (it ran too long); the next voiced
    /// frame starts a new one.
    pub fn end_utterance(&mut self) {
        let _ = self.gate.force_end();
    }

    /// Listens to one frame; what it heard goes to `out`, speech audio to
    /// `self.speech` (cleared first). `received`: the frame came from the
    /// far end (not silence standing in for a lost packet).
    pub fn frame(&mut self, pcm: &[i16], received: bool, out: &mut Vec<Heard>) {
        self.speech.clear();
        match self.gate.process(pcm, &mut self.speech) {
            Some(VadEvent::SpeechStart { .. }) => out.push(Heard::SpeechStart),
            Some(VadEvent::SpeechEnd { at_frame, .. }) => {
                let silent_ms = self.gate.vad().frames_seen().saturating_sub(at_frame) * 20;
                out.push(Heard::SpeechEnd { silent_ms });
            }
            None => {}
        }
        if received && self.beep.process(pcm).is_some() {
            out.push(Heard::Tone);
        }
        if let Some(d) = self.inband.as_mut() {
            self.digits.clear();
            d.process(pcm, &mut self.digits);
            out.extend(self.digits.iter().map(|d| Heard::Digit(d.digit)));
        }
    }
}
