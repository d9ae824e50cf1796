//! Voice activity detection on 8 kHz audio in 20 ms frames: where a reply
//! starts and ends, so only speech (plus a little padding) reaches the
//! recognizer and the final result is forced ~300 ms after the caller stops
//! (Vosk's own endpointer waits 1.0-1.45 s).
//!
//! Owns the speech/silence decision ([`Vad`], a pure state machine counting
//! frames, no clock) and the pre-roll buffer ([`SpeechGate`]). Never calls
//! the recognizer and never reads time: frame numbers are the time base.
//!
//! Method: frame energy against an adaptive noise floor, with the
//! zero-crossing rate to tell hiss from speech.
//! - A frame is voiced when its energy is `snr_db` (9 dB) above the noise
//!   floor and above `min_level_db` (-50 dBFS, ~30 dB under normal speech
//!   on a phone line), unless it looks like noise: zero-crossing rate above
//!   0.45 (white noise is ~0.5; voiced speech at 8 kHz is ~0.05-0.25) while
//!   less than 12 dB over the threshold (loud fricatives still count).
//! - The floor follows unvoiced frames (down fast, up with a ~400 ms time
//!   constant) and creeps up 1 dB/s during "speech", so a noise step cannot
//!   hold the detector in speech for ever.
//! - The tests below check these numbers on synthetic signals and espeak-ng
//!   speech: start/end within 40 ms of the truth, 100 ms bursts ignored, short
//!   answers said quickly heard.

use std::collections::VecDeque;

/// Tuning of the detector; times in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// Length of one frame (20).
    pub frame_ms: u32,
    /// Voiced time needed before speech starts (120): shorter sounds are
    /// noise. A quick "no" or "yeah" has 120-180 ms of voice; 200 dropped
    /// one short answer in seven said at 240-280 words a minute.
    pub min_speech_ms: u32,
    /// Silence that ends speech (300).
    pub end_silence_ms: u32,
    /// Unvoiced gap allowed while speech is still being confirmed (160):
    /// the "s" and "th" of "this is she" are not voiced frames.
    pub max_gap_ms: u32,
    /// Audio kept from before the detected start (200), fed to the recognizer.
    pub pre_roll_ms: u32,
    /// Silence after the last voiced frame passed on to the recognizer
    /// (100); the rest of the end silence is held back and only passed on
    /// if speech resumes. The recognizer needs a little silence to close
    /// the last word, not the whole `end_silence_ms`: decoding those frames
    /// only delays its final when it lags behind (a loaded CPU).
    pub tail_ms: u32,
    /// Energy above the noise floor that counts as voice, dB (9).
    pub snr_db: f32,
    /// Absolute level below which nothing is voice, dBFS (-50).
    pub min_level_db: f32,
    /// Zero-crossing rate (crossings per sample) above which a weak frame is noise (0.45).
    pub noise_zcr: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            frame_ms: 20,
            min_speech_ms: 120,
            end_silence_ms: 300,
            max_gap_ms: 160,
            pre_roll_ms: 200,
            tail_ms: 100,
            snr_db: 9.0,
            min_level_db: -50.0,
            noise_zcr: 0.45,
        }
    }
}

/// What the detector reports; frame numbers count from the first frame fed (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began at this frame (reported once `min_speech_ms` of it was heard).
    SpeechStart {
        /// First voiced frame.
        at_frame: u64,
    },
    /// Speech ended: `at_frame` is the first frame after the last voiced one.
    SpeechEnd {
        /// Frame after the last voiced frame.
        at_frame: u64,
        /// From start to end, in ms.
        speech_ms: u64,
    },
}

#[derive(Debug, Clone, Copy)]
enum State {
    Silence,
    Candidate { start: u64, voiced: u32, gap: u32 },
    Speech { start: u64, last_voiced: u64 },
}

/// Frame measurements, public for benches and tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameStats {
    /// Energy in dBFS (-100 for digital silence).
    pub energy_db: f32,
    /// Zero crossings per sample, 0..1.
    pub zcr: f32,
}

/// Measures one frame.
pub fn frame_stats(frame: &[i16]) -> FrameStats {
    if frame.is_empty() {
        return FrameStats {
            energy_db: -100.0,
            zcr: 0.0,
        };
    }
    let sum: f64 = frame.iter().map(|&s| (s as f64) * (s as f64)).sum();
    let mean = sum / frame.len() as f64 / (32768.0 * 32768.0);
    let energy_db = if mean > 1e-10 {
        (10.0 * mean.log10()) as f32
    } else {
        -100.0
    };
    let crossings = frame
        .windows(2)
        .filter(|w| (w[0] >= 0) != (w[1] >= 0))
        .count();
    FrameStats {
        energy_db,
        zcr: crossings as f32 / frame.len() as f32,
    }
}

/// The detector. Feed every frame of the incoming audio in order.
#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    state: State,
    floor_db: Option<f32>,
    frame: u64,
}

impl Vad {
    /// A detector in silence, before any frame.
    pub fn new(cfg: VadConfig) -> Self {
        Vad {
            cfg,
            state: State::Silence,
            floor_db: None,
            frame: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VadConfig {
        &self.cfg
    }

    fn frames(&self, ms: u32) -> u32 {
        ms.div_ceil(self.cfg.frame_ms.max(1)).max(1)
    }

    /// Pre-roll in frames.
    pub fn pre_roll_frames(&self) -> u32 {
        self.cfg.pre_roll_ms / self.cfg.frame_ms.max(1)
    }

    /// Milliseconds at the start of `frame`.
    pub fn ms_of(&self, frame: u64) -> u64 {
        frame * self.cfg.frame_ms as u64
    }

    /// Last voiced frame of the speech in progress, if speech is in progress.
    pub fn last_voiced_frame(&self) -> Option<u64> {
        match self.state {
            State::Speech { last_voiced, .. } => Some(last_voiced),
            _ => None,
        }
    }

    /// Frames fed so far.
    pub fn frames_seen(&self) -> u64 {
        self.frame
    }

    /// True between SpeechStart and SpeechEnd.
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// Current noise floor estimate, dBFS.
    pub fn noise_floor_db(&self) -> Option<f32> {
        self.floor_db
    }

    /// Whether `s` counts as voice against the current floor (and updates the floor).
    fn classify(&mut self, s: FrameStats) -> bool {
        let floor = *self.floor_db.get_or_insert(s.energy_db);
        let threshold = (floor + self.cfg.snr_db).max(self.cfg.min_level_db);
        let noise_like = s.zcr > self.cfg.noise_zcr && s.energy_db < threshold + 12.0;
        let voiced = s.energy_db > threshold && !noise_like;
        let new_floor = if voiced {
            floor + 0.02
        } else if s.energy_db < floor {
            0.5 * (floor + s.energy_db)
        } else {
            floor + 0.05 * (s.energy_db - floor)
        };
        self.floor_db = Some(new_floor.max(-100.0));
        voiced
    }

    /// Feeds one frame; returns an event when speech starts or ends.
    #[must_use]
    pub fn process(&mut self, frame: &[i16]) -> Option<VadEvent> {
        let n = self.frame;
        self.frame += 1;
        let voiced = self.classify(frame_stats(frame));
        let min_frames = self.frames(self.cfg.min_speech_ms);
        match self.state {
            State::Silence if voiced => {
                if min_frames <= 1 {
                    self.state = State::Speech {
                        start: n,
                        last_voiced: n,
                    };
                    return Some(VadEvent::SpeechStart { at_frame: n });
                }
                self.state = State::Candidate {
                    start: n,
                    voiced: 1,
                    gap: 0,
                };
            }
            State::Silence => {}
            State::Candidate {
                start,
                voiced: v,
                gap,
            } => {
                if voiced {
                    if v + 1 >= min_frames {
                        self.state = State::Speech {
                            start,
                            last_voiced: n,
                        };
                        return Some(VadEvent::SpeechStart { at_frame: start });
                    }
                    self.state = State::Candidate {
                        start,
                        voiced: v + 1,
                        gap: 0,
                    };
                } else if gap + 1 > self.frames(self.cfg.max_gap_ms) {
                    self.state = State::Silence;
                } else {
                    self.state = State::Candidate {
                        start,
                        voiced: v,
                        gap: gap + 1,
                    };
                }
            }
            State::Speech { start, last_voiced } => {
                if voiced {
                    self.state = State::Speech {
                        start,
                        last_voiced: n,
                    };
                } else if n - last_voiced >= self.frames(self.cfg.end_silence_ms) as u64 {
                    self.state = State::Silence;
                    return Some(self.end_event(start, last_voiced));
                }
            }
        }
        None
    }

    fn end_event(&self, start: u64, last_voiced: u64) -> VadEvent {
        let end = last_voiced + 1;
        VadEvent::SpeechEnd {
            at_frame: end,
            speech_ms: (end - start) * self.cfg.frame_ms as u64,
        }
    }

    /// Ends speech now (the turn's listening time ran out, the call ended).
    #[must_use]
    pub fn force_end(&mut self) -> Option<VadEvent> {
        let st = std::mem::replace(&mut self.state, State::Silence);
        match st {
            State::Speech { start, last_voiced } => Some(self.end_event(start, last_voiced)),
            _ => None,
        }
    }

    /// Back to silence between turns; the noise floor is kept.
    pub fn reset_turn(&mut self) {
        self.state = State::Silence;
    }
}

/// A [`Vad`] plus a ring of recent frames, so that when speech is confirmed
/// the recognizer also gets the audio from `pre_roll_ms` before its first
/// voiced frame; after SpeechEnd nothing more is passed on. Allocates only
/// while the ring fills.
#[derive(Debug)]
pub struct SpeechGate {
    vad: Vad,
    ring: VecDeque<Vec<i16>>,
    spare: Vec<Vec<i16>>,
    cap: usize,
    feeding: bool,
    /// Unvoiced frames past `tail_ms` in speech, passed on only if voice returns.
    held: VecDeque<Vec<i16>>,
    tail_frames: u64,
}

impl SpeechGate {
    /// A gate over a detector with `cfg`.
    pub fn new(cfg: VadConfig) -> Self {
        let fm = cfg.frame_ms.max(1);
        // Enough for the pre-roll and a speech start that took twice as long
        // as min_speech to confirm (gaps inside it).
        let cap = ((cfg.pre_roll_ms + 2 * cfg.min_speech_ms + cfg.max_gap_ms) / fm + 2) as usize;
        let tail_frames = (cfg.tail_ms / fm) as u64;
        SpeechGate {
            vad: Vad::new(cfg),
            ring: VecDeque::with_capacity(cap),
            spare: Vec::new(),
            cap,
            feeding: false,
            held: VecDeque::new(),
            tail_frames,
        }
    }

    /// The detector inside.
    pub fn vad(&self) -> &Vad {
        &self.vad
    }

    /// Feeds one frame; appends to `out` what should go to the recognizer
    /// now (pre-roll and confirmed speech on SpeechStart, then each frame up
    /// to and including the one that ends speech).
    #[must_use]
    pub fn process(&mut self, frame: &[i16], out: &mut Vec<i16>) -> Option<VadEvent> {
        let n = self.vad.frames_seen();
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        if self.ring.len() == self.cap {
            if let Some(old) = self.ring.pop_front() {
                self.spare.push(old);
            }
        }
        self.ring.push_back(buf);
        let ev = self.vad.process(frame);
        match ev {
            Some(VadEvent::SpeechStart { at_frame }) => {
                let from = at_frame.saturating_sub(self.vad.pre_roll_frames() as u64);
                let oldest = n + 1 - self.ring.len() as u64;
                let skip = from.saturating_sub(oldest) as usize;
                for f in self.ring.iter().skip(skip) {
                    out.extend_from_slice(f);
                }
                self.feeding = true;
            }
            Some(VadEvent::SpeechEnd { .. }) => {
                // The end silence is past the tail: what is held is dropped.
                self.release_held();
                self.feeding = false;
            }
            None if self.feeding => {
                let since = self.vad.last_voiced_frame().map_or(0, |v| n - v);
                if since == 0 {
                    // Voice again: the silence inside the speech goes first.
                    while let Some(f) = self.held.pop_front() {
                        out.extend_from_slice(&f);
                        self.spare.push(f);
                    }
                    out.extend_from_slice(frame);
                } else if since <= self.tail_frames {
                    out.extend_from_slice(frame);
                } else {
                    let mut f = self.spare.pop().unwrap_or_default();
                    f.clear();
                    f.extend_from_slice(frame);
                    self.held.push_back(f);
                }
            }
            None => {}
        }
        ev
    }

    /// Empties the held frames into the spare pool.
    fn release_held(&mut self) {
        while let Some(f) = self.held.pop_front() {
            self.spare.push(f);
        }
    }

    /// Ends speech now (see [`Vad::force_end`]).
    #[must_use]
    pub fn force_end(&mut self) -> Option<VadEvent> {
        self.feeding = false;
        self.release_held();
        self.vad.force_end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic white noise at `db` dBFS (uniform, LCG).
    fn noise(n: usize, db: f32, seed: &mut u64) -> Vec<i16> {
        let amp = 32768.0 * 10f32.powf(db / 20.0) * 3f32.sqrt();
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((*seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0;
                (u * amp) as i16
            })
            .collect()
    }

    /// A voiced-speech stand-in: 140 Hz with decaying harmonics, at `db` dBFS.
    fn vowel(n: usize, db: f32) -> Vec<i16> {
        let mut v: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                (1..=12)
                    .map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32)
                    .sum()
            })
            .collect();
        let rms = (v.iter().map(|x| x * x).sum::<f32>() / n as f32).sqrt();
        let g = 32768.0 * 10f32.powf(db / 20.0) / rms;
        v.iter_mut().for_each(|x| *x *= g);
        v.into_iter().map(|x| x as i16).collect()
    }

    fn run(vad: &mut Vad, pcm: &[i16]) -> Vec<VadEvent> {
        pcm.chunks(160).filter_map(|f| vad.process(f)).collect()
    }

    #[test]
    fn start_and_end_of_a_vowel_in_noise_are_found_to_the_frame() {
        let mut seed = 7;
        let mut pcm = noise(8000, -45.0, &mut seed); // 1 s, frames 0..50
        let mut v = vowel(4800, -20.0); // 600 ms, frames 50..80
        let nz = noise(4800, -45.0, &mut seed);
        v.iter_mut()
            .zip(&nz)
            .for_each(|(a, b)| *a = a.saturating_add(*b));
        pcm.extend(v);
        pcm.extend(noise(8000, -45.0, &mut seed));
        let mut vad = Vad::new(VadConfig::default());
        let ev = run(&mut vad, &pcm);
        assert_eq!(
            ev,
            vec![
                VadEvent::SpeechStart { at_frame: 50 },
                VadEvent::SpeechEnd {
                    at_frame: 80,
                    speech_ms: 600
                }
            ]
        );
    }

    #[test]
    fn burst_shorter_than_min_speech_does_not_trigger() {
        let mut seed = 1;
        let mut pcm = noise(4000, -55.0, &mut seed);
        pcm.extend(vowel(800, -15.0)); // 100 ms < 120 ms
        pcm.extend(noise(4000, -55.0, &mut seed));
        pcm.extend(vowel(480, -10.0)); // 60 ms click-like
        pcm.extend(noise(4000, -55.0, &mut seed));
        let mut vad = Vad::new(VadConfig::default());
        assert_eq!(run(&mut vad, &pcm), vec![]);
    }

    #[test]
    fn steady_loud_hiss_is_learned_as_noise_not_speech() {
        let mut seed = 3;
        // Line starts with hiss 25 dB over the minimum level, for 3 s.
        let pcm = noise(24000, -25.0, &mut seed);
        let mut vad = Vad::new(VadConfig::default());
        assert_eq!(run(&mut vad, &pcm), vec![]);
        let floor = vad.noise_floor_db().unwrap();
        assert!((floor + 25.0).abs() < 3.0, "floor {floor}");
    }

    #[test]
    fn pause_shorter_than_end_silence_keeps_one_utterance() {
        let mut pcm = vec![0i16; 4000];
        pcm.extend(vowel(3200, -20.0));
        pcm.extend(vec![0i16; 1600]); // 200 ms pause < 300 ms
        pcm.extend(vowel(3200, -20.0));
        pcm.extend(vec![0i16; 4000]);
        let mut vad = Vad::new(VadConfig::default());
        assert_eq!(
            run(&mut vad, &pcm),
            vec![
                VadEvent::SpeechStart { at_frame: 25 },
                VadEvent::SpeechEnd {
                    at_frame: 75,
                    speech_ms: 1000
                }
            ]
        );
    }

    /// What a default gate passes on from `pcm` (20 ms frames), and its events.
    fn through_gate(pcm: &[i16]) -> (Vec<i16>, Vec<VadEvent>) {
        let mut gate = SpeechGate::new(VadConfig::default());
        let mut out = Vec::new();
        let mut events = Vec::new();
        for f in pcm.chunks(160) {
            if let Some(e) = gate.process(f, &mut out) {
                events.push(e);
            }
        }
        (out, events)
    }

    #[test]
    fn gate_feeds_pre_roll_speech_and_trailing_padding_only() {
        let mut pcm = vec![0i16; 8000]; // frames 0..50 silence
        pcm.extend(vowel(4000, -20.0)); // frames 50..75
        pcm.extend(vec![0i16; 8000]);
        let (out, events) = through_gate(&pcm);
        assert_eq!(events.len(), 2);
        // 10 frames pre-roll + 25 speech + 5 trailing frames (tail_ms 100):
        // the other 10 frames of the end silence are never decoded.
        assert_eq!(out.len(), (10 + 25 + 5) * 160);
        assert_eq!(&out[10 * 160..35 * 160], &pcm[50 * 160..75 * 160]);
    }

    #[test]
    fn gate_passes_a_pause_inside_speech_whole_once_voice_returns() {
        let mut pcm = vec![0i16; 1600];
        pcm.extend(vowel(4000, -20.0)); // frames 10..35
        pcm.extend(vec![0i16; 1600]); // a 200 ms pause: 35..45
        pcm.extend(vowel(4000, -20.0)); // 45..70
        pcm.extend(vec![0i16; 8000]);
        let (out, events) = through_gate(&pcm);
        assert_eq!(events.len(), 2, "one utterance: {events:?}");
        // pre-roll 10, speech 25, pause 10, speech 25, tail 5; in order.
        assert_eq!(out.len(), (10 + 25 + 10 + 25 + 5) * 160);
        assert_eq!(&out[..70 * 160], &pcm[..70 * 160]);
    }

    #[test]
    fn espeak_reply_with_silence_padding_is_one_utterance_at_the_right_time() {
        use crate::asr::testutil::{speak_8k, speech_tools, TempDir};
        if !speech_tools() {
            return;
        }
        let d = TempDir::new("vad");
        let speech = speak_8k(&d.0, "s", "en-us", 160, "I already paid last week", true);
        // Where the speech really is, from the clip itself (espeak adds a little silence).
        let loud: Vec<usize> = speech
            .chunks(160)
            .enumerate()
            .filter(|(_, f)| frame_stats(f).energy_db > -45.0)
            .map(|(i, _)| i)
            .collect();
        let (first, last) = (*loud.first().unwrap() as u64, *loud.last().unwrap() as u64);
        let mut seed = 9;
        let mut pcm = noise(8000, -60.0, &mut seed);
        let mut s = speech.clone();
        let nz = noise(s.len(), -60.0, &mut seed);
        s.iter_mut()
            .zip(&nz)
            .for_each(|(a, b)| *a = a.saturating_add(*b));
        pcm.extend(s);
        pcm.extend(noise(12000, -60.0, &mut seed));
        let mut vad = Vad::new(VadConfig::default());
        let ev = run(&mut vad, &pcm);
        assert_eq!(ev.len(), 2, "{ev:?}");
        let VadEvent::SpeechStart { at_frame: st } = ev[0] else {
            panic!("{ev:?}")
        };
        let VadEvent::SpeechEnd { at_frame: en, .. } = ev[1] else {
            panic!("{ev:?}")
        };
        assert!(
            (st as i64 - (50 + first) as i64).abs() <= 2,
            "start {st} vs {}",
            50 + first
        );
        assert!(
            (en as i64 - (51 + last) as i64).abs() <= 2,
            "end {en} vs {}",
            51 + last
        );
    }

    /// Short answers said quickly ("no", "yep", "this is she" at 200-280
    /// words a minute) are speech: a person answering the identity question
    /// in one syllable must be heard, not dropped as a noise burst. espeak-ng
    /// voices only (flite and festival are kept for evaluation).
    #[test]
    fn short_answers_said_quickly_start_speech() {
        use crate::asr::testutil::{speak_8k, speech_tools, TempDir};
        if !speech_tools() {
            return;
        }
        let d = TempDir::new("vad-short");
        let mut missed = Vec::new();
        let mut total = 0;
        let answers = [
            "no",
            "yeah",
            "yep",
            "nope",
            "it is",
            "that's me",
            "this is she",
            "uh huh",
        ];
        for (i, text) in answers.iter().enumerate() {
            for voice in ["en-us", "en-gb", "en-us+f3"] {
                for speed in [200, 240, 280] {
                    let name = format!("a{i}-{}-{speed}", voice.replace('+', "_"));
                    let speech = speak_8k(&d.0, &name, voice, speed, text, true);
                    // Scale to a normal phone level (-26 dBFS over the loud frames).
                    let loud: Vec<f32> = speech
                        .chunks(160)
                        .map(frame_stats)
                        .filter(|s| s.energy_db > -45.0)
                        .map(|s| s.energy_db)
                        .collect();
                    let level = loud.iter().sum::<f32>() / loud.len().max(1) as f32;
                    let g = 10f32.powf((-26.0 - level) / 20.0);
                    let mut seed = 11 + i as u64;
                    let mut pcm = noise(8000, -48.0, &mut seed);
                    let nz = noise(speech.len(), -48.0, &mut seed);
                    pcm.extend(
                        speech
                            .iter()
                            .zip(&nz)
                            .map(|(s, n)| ((*s as f32 * g) as i16).saturating_add(*n)),
                    );
                    pcm.extend(noise(8000, -48.0, &mut seed));
                    let ev = run(&mut Vad::new(VadConfig::default()), &pcm);
                    total += 1;
                    if !ev.iter().any(|e| matches!(e, VadEvent::SpeechStart { .. })) {
                        missed.push(format!("{text:?} {voice} {speed}"));
                    }
                }
            }
        }
        assert!(
            missed.is_empty(),
            "{} of {total} missed: {missed:?}",
            missed.len()
        );
    }

    #[test]
    fn force_end_closes_open_speech() {
        let mut vad = Vad::new(VadConfig::default());
        let mut pcm = vec![0i16; 1600];
        pcm.extend(vowel(4000, -20.0));
        let ev = run(&mut vad, &pcm);
        assert_eq!(ev, vec![VadEvent::SpeechStart { at_frame: 10 }]);
        assert_eq!(
            vad.force_end(),
            Some(VadEvent::SpeechEnd {
                at_frame: 35,
                speech_ms: 500
            })
        );
        assert_eq!(vad.force_end(), None);
    }
}
