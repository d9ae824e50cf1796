//! Resampling: any rate to 8 kHz (WAV input, wideband sources) and 8 kHz to
//! 16 kHz (PocketSphinx's acoustic model is 16 kHz only).
//!
//! Owns the sample-rate conversions. Never reads files or clocks.
//!
//! Why these methods: for 8->16 kHz, SPEECH.md measured plain linear
//! interpolation against sox's resampler for PocketSphinx on phone audio (77
//! vs 66 of 90 right): the recogniser ignores the 3.4-8 kHz band anyway and
//! linear interpolation adds no ringing. For arbitrary rates (mostly
//! downsampling 44.1/48/16 kHz files to 8 kHz) aliasing matters, so
//! [`resample`] uses a Hann-windowed sinc low-pass at 0.9 x the lower Nyquist
//! (tests show > 30 dB rejection of a tone above the new Nyquist).

/// Streaming 2x upsampler by linear interpolation (8 -> 16 kHz). Keeps one
/// sample of state so 20 ms frames join without a click.
#[derive(Debug, Clone, Default)]
pub struct Upsampler2x {
    prev: Option<i16>,
}

impl Upsampler2x {
    /// A fresh upsampler (start of an utterance).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends 2 x `input.len()` samples to `out`: for each input sample the
    /// midpoint from the previous one, then the sample itself (a half-sample
    /// delay, 62 us at 8 kHz, irrelevant to recognition).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.reserve(input.len() * 2);
        for &x in input {
            let p = self.prev.unwrap_or(x);
            out.push(((p as i32 + x as i32) / 2) as i16);
            out.push(x);
            self.prev = Some(x);
        }
    }
}

/// 8 -> 16 kHz of a whole buffer (see [`Upsampler2x`]).
pub fn upsample_2x(input: &[i16]) -> Vec<i16> {
    let mut out = Vec::with_capacity(input.len() * 2);
    Upsampler2x::new().process(input, &mut out);
    out
}

/// Taps each side of the sinc kernel, counted in samples of the lower rate.
const HALF_TAPS: f64 = 16.0;

/// Resamples float samples from `from_hz` to `to_hz` with a windowed-sinc
/// low-pass (band edge 0.9 x the lower Nyquist). Returns the input unchanged
/// when the rates are equal, and an empty vector for zero rates.
pub fn resample(input: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
    if from_hz == to_hz || input.is_empty() {
        return input.to_vec();
    }
    if from_hz == 0 || to_hz == 0 {
        return Vec::new();
    }
    let (from, to) = (from_hz as f64, to_hz as f64);
    let ratio = to / from;
    // Cutoff relative to the input rate (cycles per input sample).
    let cutoff = 0.5 * ratio.min(1.0) * 0.9;
    // Kernel half-width in input samples.
    let half = (HALF_TAPS / ratio.min(1.0)).ceil();
    let out_len = ((input.len() as f64) * ratio).round() as usize;
    let mut out = Vec::with_capacity(out_len);
    let n = input.len() as i64;
    for j in 0..out_len {
        let t = j as f64 / ratio; // position in input samples
        let lo = (t - half).ceil().max(0.0) as i64;
        let hi = ((t + half).floor() as i64).min(n - 1);
        let mut acc = 0.0f64;
        let mut wsum = 0.0f64;
        for k in lo..=hi {
            let x = k as f64 - t;
            let sinc = if x.abs() < 1e-9 {
                1.0
            } else {
                (2.0 * std::f64::consts::PI * cutoff * x).sin() / (std::f64::consts::PI * x)
            };
            let sinc = if x.abs() < 1e-9 { 2.0 * cutoff } else { sinc };
            let w = 0.5 + 0.5 * (std::f64::consts::PI * x / (half + 1.0)).cos();
            let h = sinc * w;
            acc += input[k as usize] as f64 * h;
            wsum += h;
        }
        // Normalising by the kernel sum keeps DC gain at exactly 1 near the edges.
        out.push(if wsum.abs() > 1e-12 {
            (acc / wsum) as f32
        } else {
            0.0
        });
    }
    out
}

/// Any rate to 8 kHz, as i16 with clipping.
pub fn to_8k(input: &[f32], from_hz: u32) -> Vec<i16> {
    resample(input, from_hz, 8000)
        .into_iter()
        .map(|s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<f32> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32
            })
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn upsampler_doubles_length_and_interpolates_across_frames() {
        let mut up = Upsampler2x::new();
        let mut out = Vec::new();
        up.process(&[0, 100], &mut out);
        up.process(&[200], &mut out);
        assert_eq!(out, vec![0, 0, 50, 100, 150, 200]);
        assert_eq!(upsample_2x(&[10; 160]).len(), 320);
    }

    #[test]
    fn passband_tone_keeps_its_level_from_44k_and_16k() {
        for rate in [44100, 48000, 16000, 11025] {
            let x = sine(1000.0, rate, 0.5, 0.5);
            let y = resample(&x, rate, 8000);
            assert_eq!(y.len(), 4000);
            let r = rms(&y[200..3800]) / rms(&x);
            assert!((r - 1.0).abs() < 0.02, "{rate}: gain {r}");
        }
    }

    #[test]
    fn tone_above_new_nyquist_is_rejected_not_aliased() {
        // 6 kHz at 44.1 kHz would alias to 2 kHz at 8 kHz without filtering.
        let x = sine(6000.0, 44100, 0.5, 0.5);
        let y = resample(&x, 44100, 8000);
        let db = 20.0 * (rms(&y[200..3800]) / rms(&x)).log10();
        assert!(db < -30.0, "only {db:.1} dB rejection");
    }

    #[test]
    fn upsampling_8k_to_other_rates_keeps_length_ratio() {
        let x = sine(440.0, 8000, 0.25, 0.3);
        assert_eq!(resample(&x, 8000, 16000).len(), 4000);
        assert!(resample(&[], 8000, 16000).is_empty());
        assert!(resample(&x, 0, 8000).is_empty());
    }
}
