//! Special information tones (SIT): the three rising tones a network plays
//! before an announcement such as "the number you have dialled is not in
//! service" (ITU-T E.180, ANSI T1.401).
//!
//! Owns the detector and the tones' numbers. Pure: 8 kHz samples in, one
//! [`Sit`] per tone sequence out, stamped with the sample position; never
//! reads the clock.
//!
//! Numbers: segment 1 is 913.8 Hz (low) or 985.2 Hz (high), segment 2
//! 1370.6 Hz (low) or 1428.5 Hz (high), segment 3 1776.7 Hz; each lasts
//! 274 ms (short) or 380 ms (long). The North American variants are coded
//! by segments 1 and 2 ([`SitKind::from_segments`]). Analysis: 20 ms windows
//! every 10 ms; a window belongs to a segment when one frequency of that
//! segment's band (searched in 10 Hz steps) holds >= 60 % of its energy at
//! -45 dBFS or more. Runs of such windows (gaps up to 30 ms bridged, runs
//! under 40 ms ignored) make segments; three of them in rising order, each
//! at most 100 ms after the last, segment 2 lasting 180-480 ms and segment 3
//! 200 ms so far, make a SIT. Segment 1 may be cut short (early media often
//! starts inside it): 60 ms of it are enough, and a segment 1 under 200 ms
//! is classified by its frequency alone. ITU-T E.180's tone (950, 1400,
//! 1800 Hz, 330 ms each) is told by its 1800 Hz third segment and carries
//! no code ([`SitKind::Other`]).

use std::f32::consts::PI;

const RATE: f32 = 8000.0;
/// Samples per analysis window (20 ms).
const WINDOW: usize = 160;
/// Samples between windows (10 ms).
const HOP: usize = 80;
const HOP_MS: u32 = 10;
/// Fraction of a window's energy one tone must hold.
const MIN_SHARE: f32 = 0.6;
/// Mean square -45 dB re full scale (a full-scale sine is -3 dB).
const MIN_MEAN_SQUARE: f32 = 3.2e-5;
/// Windows without the tone bridged inside one segment (packet loss, noise).
const MAX_GAP_HOPS: u32 = 3;
/// Runs shorter than this are ignored (a stray window or two).
const MIN_RUN_HOPS: u32 = 4;
/// Silence allowed between two segments.
const MAX_SEGMENT_GAP_MS: u32 = 100;
/// Short (274 ms) versus long (380 ms).
const SHORT_LONG_MS: u32 = 327;

/// Segment 1 low/high, segment 2 low/high, segment 3 (Hz).
pub const LOW_1: f32 = 913.8;
/// Segment 1, high.
pub const HIGH_1: f32 = 985.2;
/// Segment 2, low.
pub const LOW_2: f32 = 1370.6;
/// Segment 2, high.
pub const HIGH_2: f32 = 1428.5;
/// Segment 3 (always the same).
pub const THIRD: f32 = 1776.7;
/// A short segment, ms.
pub const SHORT_MS: u32 = 274;
/// A long segment, ms.
pub const LONG_MS: u32 = 380;

/// The search bands (Hz) of the three segments, wide enough for ITU-T
/// E.180's 950/1400/1800 Hz tones too.
const BANDS: [(f32, f32); 3] = [(890.0, 1010.0), (1340.0, 1460.0), (1740.0, 1860.0)];
/// Low versus high inside the bands of segments 1 and 2.
const SPLIT_1: f32 = (LOW_1 + HIGH_1) / 2.0;
const SPLIT_2: f32 = (LOW_2 + HIGH_2) / 2.0;
/// ANSI's 1776.7 Hz versus ITU-T E.180's 1800 Hz for segment 3.
const ITU_SPLIT_3: f32 = 1790.0;

/// What the network says with the tone (the North American codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SitKind {
    /// VC: the number (code) is not assigned.
    VacantCode,
    /// IC: the number is disconnected or changed (an intercept announcement).
    Intercept,
    /// NC: no circuit (trunk blockage, an emergency in the network).
    NoCircuit,
    /// RO: reorder (equipment irregularity).
    Reorder,
    /// Another or an unclassifiable pattern (ineffective other, reserved
    /// codes, the ITU-T 950/1400/1800 Hz tone): a SIT, meaning unknown.
    Other,
}

impl SitKind {
    /// Every kind, in declaration order.
    pub const ALL: [SitKind; 5] = [
        SitKind::VacantCode,
        SitKind::Intercept,
        SitKind::NoCircuit,
        SitKind::Reorder,
        SitKind::Other,
    ];

    /// The spelling in logs and outcome JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SitKind::VacantCode => "vacant-code",
            SitKind::Intercept => "intercept",
            SitKind::NoCircuit => "no-circuit",
            SitKind::Reorder => "reorder",
            SitKind::Other => "other",
        }
    }

    /// True for the kinds that mean the number does not work (vacant code,
    /// intercept): dialling it again is pointless.
    pub fn is_dead_number(self) -> bool {
        matches!(self, SitKind::VacantCode | SitKind::Intercept)
    }

    /// The kind coded by segments 1 and 2: `high` is the frequency
    /// (false: low), `long` the duration (`None`: not measurable, as for a
    /// segment 1 cut short). ANSI T1.401 / Telcordia codes (first, second):
    /// IC short-low short-low; VC long-high short-low; NC long-high
    /// long-high (intra-LATA) or long-low long-low (inter-LATA); RO
    /// short-high long-low (intra) or short-low long-high (inter). With a
    /// duration unknown, frequencies decide alone: low-low intercept,
    /// high-low vacant code, high-high no circuit, low-high reorder.
    pub fn from_segments(first: (bool, Option<bool>), second: (bool, Option<bool>)) -> SitKind {
        let ((h1, l1), (h2, l2)) = (first, second);
        match (h1, l1, h2, l2) {
            (false, Some(false), false, Some(false)) => SitKind::Intercept,
            (true, Some(true), false, Some(false)) => SitKind::VacantCode,
            (true, Some(true), true, Some(true)) => SitKind::NoCircuit,
            (false, Some(true), false, Some(true)) => SitKind::NoCircuit,
            (true, Some(false), false, Some(true)) => SitKind::Reorder,
            (false, Some(false), true, Some(true)) => SitKind::Reorder,
            // Ineffective other (long-low short-high) and the reserved
            // short-high short-high.
            (_, Some(_), _, Some(_)) => SitKind::Other,
            (false, _, false, _) => SitKind::Intercept,
            (true, _, false, _) => SitKind::VacantCode,
            (true, _, true, _) => SitKind::NoCircuit,
            (false, _, true, _) => SitKind::Reorder,
        }
    }

    /// The tones of this kind as (frequency Hz, duration ms) for segments 1
    /// and 2 (`Other` plays the reserved short-high short-high code).
    pub fn segments(self) -> [(f32, u32); 2] {
        match self {
            SitKind::Intercept => [(LOW_1, SHORT_MS), (LOW_2, SHORT_MS)],
            SitKind::VacantCode => [(HIGH_1, LONG_MS), (LOW_2, SHORT_MS)],
            SitKind::NoCircuit => [(HIGH_1, LONG_MS), (HIGH_2, LONG_MS)],
            SitKind::Reorder => [(LOW_1, SHORT_MS), (HIGH_2, LONG_MS)],
            SitKind::Other => [(HIGH_1, SHORT_MS), (HIGH_2, SHORT_MS)],
        }
    }
}

impl serde::Serialize for SitKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SitKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        SitKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                serde::de::Error::unknown_variant(
                    &s,
                    &["vacant-code", "intercept", "no-circuit", "reorder", "other"],
                )
            })
    }
}

impl std::fmt::Display for SitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three tones of `kind` at `level_dbfs` (a sine's peak relative to
/// full scale; networks play about -13 dBm0, near -16 dBFS), 8 kHz. For
/// tests and the end-to-end callee.
pub fn synthesize(kind: SitKind, level_dbfs: f32) -> Vec<i16> {
    let [(f1, d1), (f2, d2)] = kind.segments();
    let amp = 32767.0 * 10f32.powf(level_dbfs / 20.0);
    let mut out = Vec::new();
    let mut phase = 0.0f32;
    for (f, ms) in [(f1, d1), (f2, d2), (THIRD, LONG_MS)] {
        let step = 2.0 * PI * f / RATE;
        for _ in 0..ms * 8 {
            out.push((amp * phase.sin()).round() as i16);
            phase = (phase + step) % (2.0 * PI);
        }
    }
    out
}

/// A SIT heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sit {
    /// What it says.
    pub kind: SitKind,
    /// Start of its first segment as heard, ms from the first sample.
    pub at_ms: u64,
}

/// Which tone a window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    /// Segment 1 or 2 (`seg` 0 or 1), high or low.
    Coded { seg: u8, high: bool },
    /// Segment 3: 1776.7 Hz, or ITU-T E.180's 1800 Hz (`itu`).
    Third { itu: bool },
}

/// A run of windows holding one tone.
#[derive(Debug, Clone, Copy)]
struct Run {
    tone: Tone,
    first_hop: u64,
    last_hop: u64,
}

impl Run {
    /// The tone's duration: a 20 ms window every 10 ms sees ~10 ms more
    /// than the hops between the first and last window.
    fn ms(&self) -> u32 {
        ((self.last_hop - self.first_hop + 1) as u32 * HOP_MS) + HOP_MS
    }

    /// Start of the tone, ms.
    fn start_ms(&self) -> u64 {
        self.first_hop * HOP_MS as u64
    }

    /// End of the tone, ms.
    fn end_ms(&self) -> u64 {
        self.last_hop * HOP_MS as u64 + 2 * HOP_MS as u64
    }
}

/// Streaming SIT detector on 8 kHz audio; feed any chunk sizes.
#[derive(Debug, Clone)]
pub struct SitDetector {
    /// The samples of the next window (a hop's worth kept from the last).
    window: Vec<f32>,
    hops: u64,
    current: Option<Run>,
    /// The last two finished runs (older first).
    done: Vec<Run>,
    reported: bool,
}

impl Default for SitDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl SitDetector {
    /// A detector before any audio.
    pub fn new() -> Self {
        SitDetector {
            window: Vec::with_capacity(WINDOW),
            hops: 0,
            current: None,
            done: Vec::with_capacity(3),
            reported: false,
        }
    }

    /// Feeds samples; returns the SIT whose third segment these samples
    /// completed (once per tone sequence).
    pub fn push(&mut self, pcm: &[i16]) -> Option<Sit> {
        let mut found = None;
        for &s in pcm {
            self.window.push(s as f32 / 32768.0);
            if self.window.len() == WINDOW {
                let tone = tone_of_window(&self.window);
                self.window.drain(..HOP);
                if let Some(sit) = self.step(tone) {
                    found = Some(sit);
                }
            }
        }
        found
    }

    /// One window's decision into the runs; a SIT when it completes one.
    fn step(&mut self, tone: Option<Tone>) -> Option<Sit> {
        let hop = self.hops;
        self.hops += 1;
        match (self.current, tone) {
            (Some(mut run), Some(t)) if run.tone == t => {
                run.last_hop = hop;
                self.current = Some(run);
            }
            (Some(run), t) => {
                let ended = t.is_some() || hop - run.last_hop > MAX_GAP_HOPS as u64;
                if ended {
                    self.close(run);
                    self.current = t.map(|tone| Run {
                        tone,
                        first_hop: hop,
                        last_hop: hop,
                    });
                }
            }
            (None, t) => {
                self.current = t.map(|tone| Run {
                    tone,
                    first_hop: hop,
                    last_hop: hop,
                });
            }
        }
        let run = self.current?;
        if self.reported || !matches!(run.tone, Tone::Third { .. }) || run.ms() < 200 {
            return None;
        }
        let sit = self.sequence(&run)?;
        self.reported = true;
        Some(sit)
    }

    /// Keeps a finished run that is long enough to be a segment.
    fn close(&mut self, run: Run) {
        if run.last_hop - run.first_hop + 1 < MIN_RUN_HOPS as u64 {
            return;
        }
        if matches!(run.tone, Tone::Third { .. }) {
            // A new sequence may follow (a repeated announcement).
            self.reported = false;
        }
        if self.done.len() == 2 {
            self.done.remove(0);
        }
        self.done.push(run);
    }

    /// The SIT that segments 1 and 2 (the finished runs) and `third` make.
    fn sequence(&self, third: &Run) -> Option<Sit> {
        let [r1, r2] = self.done.as_slice() else {
            return None;
        };
        let (Tone::Coded { seg: 0, high: h1 }, Tone::Coded { seg: 1, high: h2 }) =
            (r1.tone, r2.tone)
        else {
            return None;
        };
        let gap = |a: &Run, b: &Run| b.start_ms().saturating_sub(a.end_ms());
        if gap(r1, r2) > MAX_SEGMENT_GAP_MS as u64 || gap(r2, third) > MAX_SEGMENT_GAP_MS as u64 {
            return None;
        }
        if !(60..=480).contains(&r1.ms()) || !(180..=480).contains(&r2.ms()) {
            return None;
        }
        let long = |ms: u32| ms > SHORT_LONG_MS;
        let l1 = (r1.ms() >= 200).then(|| long(r1.ms()));
        let kind = if third.tone == (Tone::Third { itu: true }) {
            // E.180's tone carries no code.
            SitKind::Other
        } else {
            SitKind::from_segments((h1, l1), (h2, Some(long(r2.ms()))))
        };
        Some(Sit {
            kind,
            at_ms: r1.start_ms(),
        })
    }
}

/// Power of `freq` in `x` relative to what a pure tone at that frequency
/// with `x`'s energy would give.
fn share(x: &[f32], freq: f32, norm: f32) -> f32 {
    super::tone::goertzel(x, freq) / norm
}

/// The SIT tone one window holds, if any.
fn tone_of_window(x: &[f32]) -> Option<Tone> {
    let e: f32 = x.iter().map(|v| v * v).sum();
    if e / (x.len() as f32) < MIN_MEAN_SQUARE {
        return None;
    }
    let norm = e * x.len() as f32 / 2.0;
    let mut best: Option<(usize, f32, f32)> = None;
    for (band, &(lo, hi)) in BANDS.iter().enumerate() {
        let mut f = lo;
        while f <= hi {
            let p = share(x, f, norm);
            if best.is_none_or(|(_, _, bp)| p > bp) {
                best = Some((band, f, p));
            }
            f += 10.0;
        }
    }
    let (band, f, p) = best?;
    if p < MIN_SHARE {
        return None;
    }
    Some(match band {
        0 => Tone::Coded {
            seg: 0,
            high: f > SPLIT_1,
        },
        1 => Tone::Coded {
            seg: 1,
            high: f > SPLIT_2,
        },
        _ => Tone::Third {
            itu: f > ITU_SPLIT_3,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic white noise (xorshift), `db` relative to full scale
    /// as RMS.
    fn noise(n: usize, db: f32, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        let rms = 32768.0 * 10f32.powf(db / 20.0);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                // Uniform in [-1, 1): RMS 1/sqrt(3).
                let u = (s >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0;
                u * rms * 3f32.sqrt()
            })
            .collect()
    }

    fn mix(signal: &[i16], noise_db: f32, seed: u64) -> Vec<i16> {
        let n = noise(signal.len(), noise_db, seed);
        signal
            .iter()
            .zip(n)
            .map(|(&s, v)| (s as f32 + v).clamp(-32768.0, 32767.0) as i16)
            .collect()
    }

    fn tones(freqs: &[f32], ms: u32, db: f32) -> Vec<i16> {
        let amp = 32767.0 * 10f32.powf(db / 20.0);
        (0..ms * 8)
            .map(|i| {
                freqs
                    .iter()
                    .map(|f| amp * (2.0 * PI * f * i as f32 / RATE).sin())
                    .sum::<f32>() as i16
            })
            .collect()
    }

    fn silence(ms: u32) -> Vec<i16> {
        vec![0; (ms * 8) as usize]
    }

    /// Every SIT the detector reports for `pcm`, fed in `chunk`-sized pieces.
    fn heard(pcm: &[i16], chunk: usize) -> Vec<Sit> {
        let mut d = SitDetector::new();
        pcm.chunks(chunk).filter_map(|c| d.push(c)).collect()
    }

    fn through_ulaw(pcm: &[i16]) -> Vec<i16> {
        use crate::media::g711::{decode, encode, Codec};
        let mut bytes = Vec::new();
        encode(Codec::Pcmu, pcm, &mut bytes);
        let mut out = Vec::new();
        decode(Codec::Pcmu, &bytes, &mut out);
        out
    }

    #[test]
    fn each_kind_is_classified_once_in_noise_at_its_start() {
        for (i, kind) in SitKind::ALL.into_iter().enumerate() {
            let mut pcm = silence(500);
            pcm.extend(synthesize(kind, -16.0));
            pcm.extend(silence(2000));
            // Noise 14 dB under the tone's RMS (-19 dBFS).
            let pcm = through_ulaw(&mix(&pcm, -33.0, 7 + i as u64));
            let found = heard(&pcm, 137);
            assert_eq!(found.len(), 1, "{kind}: {found:?}");
            assert_eq!(found[0].kind, kind, "{found:?}");
            assert!(
                found[0].at_ms.abs_diff(500) <= 20,
                "{kind} starts at 500 ms: {found:?}"
            );
        }
    }

    #[test]
    fn loud_and_quiet_and_very_noisy_tones_are_heard() {
        for (level, noise_db) in [(-3.0, -60.0), (-40.0, -90.0), (-16.0, -22.0)] {
            let pcm = mix(&synthesize(SitKind::VacantCode, level), noise_db, 3);
            let found = heard(&pcm, 160);
            assert_eq!(
                found.iter().map(|s| s.kind).collect::<Vec<_>>(),
                vec![SitKind::VacantCode],
                "level {level} dBFS, noise {noise_db} dBFS"
            );
        }
    }

    #[test]
    fn too_quiet_a_tone_is_not_heard() {
        assert!(heard(&synthesize(SitKind::Intercept, -55.0), 160).is_empty());
    }

    #[test]
    fn a_first_segment_cut_short_is_classified_by_frequency() {
        for kind in [
            SitKind::VacantCode,
            SitKind::Intercept,
            SitKind::NoCircuit,
            SitKind::Reorder,
        ] {
            let full = synthesize(kind, -16.0);
            let first_ms = kind.segments()[0].1;
            // Media starts 120 ms before segment 2.
            let cut = &full[((first_ms - 120) * 8) as usize..];
            let found = heard(cut, 160);
            assert_eq!(found.len(), 1, "{kind}: {found:?}");
            assert_eq!(found[0].kind, kind);
        }
    }

    #[test]
    fn a_repeated_tone_is_reported_each_time_and_a_short_gap_is_bridged() {
        let mut pcm = synthesize(SitKind::Intercept, -16.0);
        // 20 ms lost inside segment 3.
        let at = ((SHORT_MS * 2 + 100) * 8) as usize;
        pcm[at..at + 160].fill(0);
        pcm.extend(silence(4000));
        pcm.extend(synthesize(SitKind::Intercept, -16.0));
        let found = heard(&pcm, 80);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|s| s.kind == SitKind::Intercept));
    }

    #[test]
    fn segments_with_silence_between_them_still_count_up_to_100_ms() {
        let [(f1, d1), (f2, d2)] = SitKind::NoCircuit.segments();
        let build = |gap: u32| {
            let mut p = tones(&[f1], d1, -16.0);
            p.extend(silence(gap));
            p.extend(tones(&[f2], d2, -16.0));
            p.extend(silence(gap));
            p.extend(tones(&[THIRD], LONG_MS, -16.0));
            p
        };
        assert_eq!(heard(&build(50), 160).len(), 1);
        assert!(heard(&build(300), 160).is_empty());
    }

    #[test]
    fn falling_order_and_short_blips_are_not_a_sit() {
        let mut down = tones(&[THIRD], 380, -16.0);
        down.extend(tones(&[LOW_2], 380, -16.0));
        down.extend(tones(&[LOW_1], 380, -16.0));
        assert!(heard(&down, 160).is_empty());
        let mut blips = Vec::new();
        for f in [LOW_1, LOW_2, THIRD] {
            blips.extend(tones(&[f], 100, -16.0));
        }
        assert!(heard(&blips, 160).is_empty(), "100 ms each is too short");
    }

    #[test]
    fn ringback_dtmf_beeps_noise_and_silence_are_not_a_sit() {
        let mut pcm = silence(1000);
        for _ in 0..3 {
            pcm.extend(tones(&[440.0, 480.0], 2000, -19.0));
            pcm.extend(silence(4000));
        }
        // DTMF, short and long presses: the 941 Hz row sits between the
        // segment 1 tones, 1336/1477 near segment 2.
        for d in [
            (941.0, 1336.0),
            (941.0, 1477.0),
            (852.0, 1477.0),
            (941.0, 1209.0),
        ] {
            for ms in [80, 400] {
                pcm.extend(tones(&[d.0, d.1], ms, -12.0));
                pcm.extend(silence(100));
            }
        }
        // An answering-machine beep, a 1004 Hz test tone, and a rising
        // single-tone sweep through the bands.
        pcm.extend(tones(&[1000.0], 600, -15.0));
        pcm.extend(tones(&[1004.0], 3000, -15.0));
        let mut phase = 0.0f32;
        for i in 0..(3 * 8000) {
            let f = 800.0 + 1200.0 * i as f32 / 24000.0;
            phase += 2.0 * PI * f / RATE;
            pcm.push((8000.0 * phase.sin()) as i16);
        }
        pcm.extend(silence(1000));
        let pcm = mix(&pcm, -50.0, 11);
        assert!(heard(&pcm, 160).is_empty(), "{:?}", heard(&pcm, 160));
        let noise_only = mix(&silence(10_000), -20.0, 5);
        assert!(heard(&noise_only, 160).is_empty());
    }

    #[test]
    fn a_voiced_signal_with_a_gliding_pitch_is_not_a_sit() {
        // Harmonics of a 100-200 Hz pitch under a formant near 950, 1400
        // and 1800 Hz in turn: the nearest a voice gets to the tones.
        let mut pcm = Vec::new();
        let mut phase = 0.0f32;
        for (k, formant) in [950.0f32, 1400.0, 1800.0, 950.0, 1400.0, 1800.0]
            .into_iter()
            .enumerate()
        {
            for i in 0..(400 * 8) {
                let f0 = 100.0 + 100.0 * ((k * 3200 + i) as f32 / 19_200.0);
                phase += 2.0 * PI * f0 / RATE;
                let mut v = 0.0;
                for h in 1..40 {
                    let fh = f0 * h as f32;
                    if fh > 3800.0 {
                        break;
                    }
                    let gain = 1.0 / (1.0 + ((fh - formant) / 80.0).powi(2));
                    v += gain * (phase * h as f32).sin();
                }
                pcm.push((6000.0 * v) as i16);
            }
        }
        assert!(heard(&pcm, 160).is_empty(), "{:?}", heard(&pcm, 160));
    }

    #[test]
    fn speech_is_not_a_sit() {
        let Some(pcm) = crate::media::tone::two_voices(
            "sit",
            "The number you have dialled is not in service. Please check the number and try again.",
            "Hello? Yes, speaking. Oh, I see, eeee, ooooh, aaaah.",
        ) else {
            return;
        };
        assert!(heard(&pcm, 160).is_empty(), "{:?}", heard(&pcm, 160));
        // And a SIT before the announcement is still heard.
        let mut with = synthesize(SitKind::Intercept, -16.0);
        with.extend(&pcm);
        assert_eq!(
            heard(&with, 160).iter().map(|s| s.kind).collect::<Vec<_>>(),
            vec![SitKind::Intercept]
        );
    }

    #[test]
    fn the_itu_tone_is_a_sit_of_no_known_code() {
        let mut pcm = Vec::new();
        for f in [950.0, 1400.0, 1800.0] {
            pcm.extend(tones(&[f], 330, -16.0));
            pcm.extend(silence(30));
        }
        let found = heard(&mix(&pcm, -40.0, 9), 160);
        assert_eq!(
            found.iter().map(|s| s.kind).collect::<Vec<_>>(),
            vec![SitKind::Other]
        );
    }

    #[test]
    fn the_codes_follow_the_ansi_table() {
        let s = Some(false);
        let l = Some(true);
        assert_eq!(
            SitKind::from_segments((false, s), (false, s)),
            SitKind::Intercept
        );
        assert_eq!(
            SitKind::from_segments((true, l), (false, s)),
            SitKind::VacantCode
        );
        assert_eq!(
            SitKind::from_segments((true, l), (true, l)),
            SitKind::NoCircuit
        );
        assert_eq!(
            SitKind::from_segments((false, l), (false, l)),
            SitKind::NoCircuit
        );
        assert_eq!(
            SitKind::from_segments((true, s), (false, l)),
            SitKind::Reorder
        );
        assert_eq!(
            SitKind::from_segments((false, s), (true, l)),
            SitKind::Reorder
        );
        assert_eq!(
            SitKind::from_segments((false, l), (true, s)),
            SitKind::Other
        );
        assert!(SitKind::Intercept.is_dead_number() && SitKind::VacantCode.is_dead_number());
        assert!(!SitKind::NoCircuit.is_dead_number() && !SitKind::Other.is_dead_number());
    }
}
