//! In-band tone detection on 8 kHz audio: DTMF digits (carriers that do not
//! send RFC 4733 events) and answering-machine beeps.
//!
//! Owns the Goertzel filters and the per-block decisions. Pure: samples in,
//! events stamped with the sample position out; never reads the clock.
//!
//! Numbers: 20 ms blocks (160 samples, 50 Hz bins; the closest DTMF tones are
//! 73 Hz apart). A digit needs both tones to hold >= 70 % of the block's
//! energy together, each to beat the rest of its group by 6 dB, twist within
//! +4/-8 dB (ITU Q.24), a level above -40 dBFS, and two blocks in a row
//! (40 ms); it is reported once until a block without it. A beep is one
//! tone 400-2100 Hz holding >= 60 % of the energy, steady within 60 Hz, for
//! `min_ms` (200).

const RATE: f32 = 8000.0;
/// Samples per analysis block (20 ms).
pub const BLOCK: usize = 160;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Power of `freq` in `x` at 8 kHz (Goertzel); divided by the block's
/// energy times its length over 2 it is ~1 for a pure tone at that
/// frequency filling the block (the DTMF, beep and SIT detectors do).
pub(crate) fn goertzel(x: &[f32], freq: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * freq / RATE;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &v in x {
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

fn energy(x: &[f32]) -> f32 {
    x.iter().map(|v| v * v).sum()
}

/// A DTMF digit heard in the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// '0'-'9', '*', '#', 'A'-'D'.
    pub digit: char,
    /// Start of the block where the digit was first seen, in ms from the first sample.
    pub at_ms: u64,
}

/// Streaming DTMF detector; feed any chunk sizes.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    buf: Vec<f32>,
    blocks: u64,
    candidate: Option<(char, u64)>,
    run: u32,
    reported: bool,
}

impl DtmfDetector {
    /// A detector before any audio.
    pub fn new() -> Self {
        Self::default()
    }

    /// The digit in one block, if it passes every check.
    pub fn classify_block(x: &[f32]) -> Option<char> {
        let e = energy(x);
        // -40 dBFS over the block.
        if e / (x.len() as f32) < 1e-4 {
            return None;
        }
        let norm = e * x.len() as f32 / 2.0;
        let r: Vec<f32> = ROWS.iter().map(|&f| goertzel(x, f) / norm).collect();
        let c: Vec<f32> = COLS.iter().map(|&f| goertzel(x, f) / norm).collect();
        let best = |v: &[f32]| {
            let (i, m) = v
                .iter()
                .enumerate()
                .fold((0, 0.0f32), |a, (i, &p)| if p > a.1 { (i, p) } else { a });
            let others = v
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, &p)| p)
                .fold(0.0f32, f32::max);
            (i, m, others)
        };
        let (ri, rp, ro) = best(&r);
        let (ci, cp, co) = best(&c);
        if rp + cp < 0.7 || rp < 4.0 * ro || cp < 4.0 * co {
            return None;
        }
        let twist_db = 10.0 * (cp / rp).log10();
        if !(-8.0..=4.0).contains(&twist_db) {
            return None;
        }
        Some(KEYS[ri][ci])
    }

    /// Feeds samples; appends each newly heard digit to `out` (once per key press).
    pub fn process(&mut self, pcm: &[i16], out: &mut Vec<DtmfDigit>) {
        for &s in pcm {
            self.buf.push(s as f32 / 32768.0);
            if self.buf.len() == BLOCK {
                let d = Self::classify_block(&self.buf);
                let at = self.blocks * 20;
                self.blocks += 1;
                self.buf.clear();
                match (d, self.candidate) {
                    (Some(d), Some((c, _))) if d == c => self.run += 1,
                    (Some(d), _) => {
                        self.candidate = Some((d, at));
                        self.run = 1;
                        self.reported = false;
                    }
                    (None, _) => {
                        self.candidate = None;
                        self.run = 0;
                        self.reported = false;
                    }
                }
                if let Some((c, start)) = self.candidate {
                    if self.run >= 2 && !self.reported {
                        self.reported = true;
                        out.push(DtmfDigit {
                            digit: c,
                            at_ms: start,
                        });
                    }
                }
            }
        }
    }
}

/// A beep: one steady tone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beep {
    /// When the tone began, ms from the first sample.
    pub at_ms: u64,
    /// Its frequency, Hz (to the 20 Hz search step).
    pub freq_hz: f32,
}

/// Streaming answering-machine beep detector.
#[derive(Debug, Clone)]
pub struct BeepDetector {
    min_blocks: u32,
    buf: Vec<f32>,
    blocks: u64,
    run: Option<(u64, f32, u32)>,
    reported: bool,
}

impl BeepDetector {
    /// Reports a tone once it has lasted `min_ms` (200 is the usual value).
    pub fn new(min_ms: u32) -> Self {
        BeepDetector {
            min_blocks: min_ms.div_ceil(20).max(1),
            buf: Vec::with_capacity(BLOCK),
            blocks: 0,
            run: None,
            reported: false,
        }
    }

    /// The dominant single tone of a block, if there is one.
    pub fn tone_of_block(x: &[f32]) -> Option<f32> {
        let e = energy(x);
        if e / (x.len() as f32) < 1e-4 {
            return None;
        }
        let norm = e * x.len() as f32 / 2.0;
        let mut best = (0.0f32, 0.0f32);
        let mut f = 400.0;
        while f <= 2100.0 {
            let p = goertzel(x, f) / norm;
            if p > best.1 {
                best = (f, p);
            }
            f += 20.0;
        }
        (best.1 >= 0.6).then_some(best.0)
    }

    /// Feeds samples; returns a beep once per tone when it has lasted long enough.
    pub fn process(&mut self, pcm: &[i16]) -> Option<Beep> {
        let mut found = None;
        for &s in pcm {
            self.buf.push(s as f32 / 32768.0);
            if self.buf.len() < BLOCK {
                continue;
            }
            let tone = Self::tone_of_block(&self.buf);
            self.buf.clear();
            let at = self.blocks * 20;
            self.blocks += 1;
            self.run = match (tone, self.run) {
                (Some(f), Some((start, f0, n))) if (f - f0).abs() <= 60.0 => {
                    Some((start, f0, n + 1))
                }
                (Some(f), _) => {
                    self.reported = false;
                    Some((at, f, 1))
                }
                (None, _) => {
                    self.reported = false;
                    None
                }
            };
            if let Some((start, f0, n)) = self.run {
                if n >= self.min_blocks && !self.reported {
                    self.reported = true;
                    found = Some(Beep {
                        at_ms: start,
                        freq_hz: f0,
                    });
                }
            }
        }
        found
    }
}

/// Speech for the tone detectors' tests (`None`: the speech tools are
/// missing, a failure under CI): `first` read by espeak-ng's en-us at 160
/// words a minute, then `second` by en-us+f3 at 120, both through 8 kHz
/// µ-law as a call carries them.
#[cfg(test)]
pub(crate) fn two_voices(tag: &str, first: &str, second: &str) -> Option<Vec<i16>> {
    use crate::asr::testutil::{speak_8k, speech_tools, TempDir};
    if !speech_tools() {
        return None;
    }
    let d = TempDir::new(tag);
    let mut pcm = speak_8k(&d.0, "a", "en-us", 160, first, true);
    pcm.extend(speak_8k(&d.0, "b", "en-us+f3", 120, second, true));
    Some(pcm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tones(freqs: &[f32], ms: u32, db: f32) -> Vec<i16> {
        let n = (ms * 8) as usize;
        let amp = 32768.0 * 10f32.powf(db / 20.0);
        (0..n)
            .map(|i| {
                freqs
                    .iter()
                    .map(|f| amp * (2.0 * std::f32::consts::PI * f * i as f32 / RATE).sin())
                    .sum::<f32>() as i16
            })
            .collect()
    }

    fn digit_tone(d: char, ms: u32) -> Vec<i16> {
        for (r, row) in KEYS.iter().enumerate() {
            for (c, k) in row.iter().enumerate() {
                if *k == d {
                    return tones(&[ROWS[r], COLS[c]], ms, -12.0);
                }
            }
        }
        unreachable!()
    }

    #[test]
    fn every_key_is_detected_exactly_once() {
        let keys = "123A456B789C*0#D";
        let mut pcm = vec![0i16; 400];
        for k in keys.chars() {
            pcm.extend(digit_tone(k, 70));
            pcm.extend(vec![0i16; 400]);
        }
        let mut det = DtmfDetector::new();
        let mut out = Vec::new();
        for chunk in pcm.chunks(137) {
            det.process(chunk, &mut out);
        }
        assert_eq!(out.iter().map(|d| d.digit).collect::<String>(), keys);
    }

    #[test]
    fn repeated_key_with_a_pause_counts_twice_and_long_press_once() {
        let mut pcm = digit_tone('5', 400);
        pcm.extend(vec![0i16; 400]);
        pcm.extend(digit_tone('5', 60));
        let mut det = DtmfDetector::new();
        let mut out = Vec::new();
        det.process(&pcm, &mut out);
        assert_eq!(out.iter().map(|d| d.digit).collect::<String>(), "55");
        assert_eq!(out[0].at_ms, 0);
    }

    #[test]
    fn excessive_twist_and_single_tone_are_not_digits() {
        let mut a = tones(&[697.0], 100, -12.0);
        let b = tones(&[1209.0], 100, -26.0); // 14 dB weaker high tone
        a.iter_mut()
            .zip(&b)
            .for_each(|(x, y)| *x = x.saturating_add(*y));
        let mut out = Vec::new();
        DtmfDetector::new().process(&a, &mut out);
        DtmfDetector::new().process(&tones(&[1000.0], 200, -12.0), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn speech_gives_no_digits_and_no_beep() {
        let Some(pcm) = two_voices(
            "tone",
            "Hi, you've reached Maria, I can't take your call, please leave a message",
            "one two three, nine, zero, hello? yes, oh, ah",
        ) else {
            return;
        };
        let mut out = Vec::new();
        DtmfDetector::new().process(&pcm, &mut out);
        assert!(out.is_empty(), "false digits {out:?}");
        assert_eq!(BeepDetector::new(200).process(&pcm), None);
    }

    #[test]
    fn beep_after_greeting_is_found_once_at_its_start() {
        let mut pcm = vec![0i16; 8000];
        pcm.extend(tones(&[1000.0], 600, -15.0));
        pcm.extend(vec![0i16; 4000]);
        let mut det = BeepDetector::new(200);
        let found: Vec<Beep> = pcm.chunks(160).filter_map(|c| det.process(c)).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].at_ms, 1000);
        assert!((found[0].freq_hz - 1000.0).abs() <= 20.0);
    }

    #[test]
    fn short_tone_is_not_a_beep() {
        let mut pcm = tones(&[440.0], 120, -15.0);
        pcm.extend(vec![0i16; 1600]);
        assert_eq!(BeepDetector::new(200).process(&pcm), None);
    }
}
