//! Reading WAV files for recognition: any rate, any channel count, 8/16/24/32
//! bit integer or 32-bit float, returned as 8 kHz mono i16.
//!
//! Owns WAV decoding (hound) and the mix-down; never writes files (the
//! recorder does) and never panics on a malformed file.

use crate::media::g711::Codec;
use std::path::{Path, PathBuf};

/// Why a WAV could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Opening or decoding failed (missing file, not RIFF/WAVE, truncated data).
    #[error("cannot read WAV {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What hound said.
        reason: String,
    },
    /// A format we do not convert.
    #[error("unsupported WAV format in {path}: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
}

/// Reads `path` and returns its audio as 8 kHz mono i16 (channels averaged).
pub fn read_mono_8k(path: impl AsRef<Path>) -> Result<Vec<i16>, WavError> {
    let path = path.as_ref();
    let (mono, rate) = read_mono_f32(path)?;
    Ok(crate::media::resample::to_8k(&mono, rate))
}

/// Reads `path` as mono float samples in -1..1 at its own rate.
pub fn read_mono_f32(path: &Path) -> Result<(Vec<f32>, u32), WavError> {
    let unreadable = |e: hound::Error| WavError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let unsupported = |reason: String| WavError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(g) = read_g711(path)? {
        return Ok(g);
    }
    let mut reader = hound::WavReader::open(path).map_err(unreadable)?;
    let spec = reader.spec();
    if spec.channels == 0 {
        return Err(unsupported("zero channels".into()));
    }
    if spec.sample_rate == 0 {
        return Err(unsupported("sample rate 0".into()));
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                return Err(unsupported(format!("{}-bit float", spec.bits_per_sample)));
            }
            reader
                .samples::<f32>()
                .collect::<Result<_, _>>()
                .map_err(unreadable)?
        }
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample;
            if !(1..=32).contains(&bits) {
                return Err(unsupported(format!("{bits}-bit integer")));
            }
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(unreadable)?
        }
    };
    let ch = spec.channels as usize;
    let mono = if ch == 1 {
        samples
    } else {
        samples
            .chunks_exact(ch)
            .map(|f| f.iter().sum::<f32>() / ch as f32)
            .collect()
    };
    Ok((mono, spec.sample_rate))
}

/// WAV format tags of G.711 (RFC 2361): hound reads only PCM and float.
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Reads a G.711 (A-law or u-law) WAV, as phone systems and our own
/// recordings' exports write them; `None` when the file is another format
/// (hound reads those). Channels are averaged.
fn read_g711(path: &Path) -> Result<Option<(Vec<f32>, u32)>, WavError> {
    let bytes = std::fs::read(path).map_err(|e| WavError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Ok(None);
    }
    let mut at = 12;
    let mut fmt: Option<(Codec, u16, u32)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = &bytes[at + 8..(at + 8).saturating_add(size).min(bytes.len())];
        if id == b"fmt " {
            if body.len() < 16 {
                return Ok(None);
            }
            let mut tag = u16::from_le_bytes([body[0], body[1]]);
            if tag == WAVE_FORMAT_EXTENSIBLE && body.len() >= 26 {
                // The sub-format GUID starts with the real format tag.
                tag = u16::from_le_bytes([body[24], body[25]]);
            }
            let codec = match tag {
                WAVE_FORMAT_ALAW => Codec::Pcma,
                WAVE_FORMAT_MULAW => Codec::Pcmu,
                _ => return Ok(None),
            };
            let channels = u16::from_le_bytes([body[2], body[3]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            if channels == 0 || rate == 0 {
                return Err(WavError::Unsupported {
                    path: path.to_path_buf(),
                    reason: format!("G.711 with {channels} channels at {rate} Hz"),
                });
            }
            fmt = Some((codec, channels, rate));
        } else if id == b"data" {
            let Some((codec, channels, rate)) = fmt else {
                return Ok(None);
            };
            let mut pcm = Vec::with_capacity(body.len());
            crate::media::g711::decode(codec, body, &mut pcm);
            let ch = channels as usize;
            let mono = pcm
                .chunks_exact(ch)
                .map(|f| f.iter().map(|v| *v as f32).sum::<f32>() / (ch as f32 * 32768.0))
                .collect();
            return Ok(Some((mono, rate)));
        }
        at += 8 + size + (size & 1);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hound::{SampleFormat, WavSpec, WavWriter};

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("duecall-wav-{}-{name}", std::process::id()))
    }

    fn write<F: FnMut(&mut WavWriter<std::io::BufWriter<std::fs::File>>, f64)>(
        p: &Path,
        spec: WavSpec,
        secs: f64,
        mut f: F,
    ) {
        let mut w = WavWriter::create(p, spec).unwrap();
        let n = (spec.sample_rate as f64 * secs) as usize;
        for i in 0..n {
            let v = 0.5
                * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / spec.sample_rate as f64).sin();
            f(&mut w, v);
        }
        w.finalize().unwrap();
    }

    fn peak(x: &[i16]) -> i32 {
        x[100..x.len() - 100]
            .iter()
            .map(|v| (*v as i32).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn ulaw_and_alaw_wavs_are_decoded_like_their_pcm_source() {
        let pcm: Vec<i16> = (0..8000)
            .map(|i| {
                (12000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        for (codec, tag) in [(Codec::Pcmu, 7u16), (Codec::Pcma, 6u16)] {
            let mut enc = Vec::new();
            crate::media::g711::encode(codec, &pcm, &mut enc);
            // RIFF/WAVE, an 18-byte fmt chunk (cbSize 0), a LIST chunk to skip, data.
            let mut f = Vec::new();
            f.extend_from_slice(b"RIFF");
            f.extend_from_slice(&((4 + 26 + 14 + 8 + enc.len()) as u32).to_le_bytes());
            f.extend_from_slice(b"WAVEfmt ");
            f.extend_from_slice(&18u32.to_le_bytes());
            f.extend_from_slice(&tag.to_le_bytes());
            f.extend_from_slice(&1u16.to_le_bytes());
            f.extend_from_slice(&8000u32.to_le_bytes());
            f.extend_from_slice(&8000u32.to_le_bytes());
            f.extend_from_slice(&1u16.to_le_bytes());
            f.extend_from_slice(&8u16.to_le_bytes());
            f.extend_from_slice(&0u16.to_le_bytes());
            f.extend_from_slice(b"LIST");
            f.extend_from_slice(&5u32.to_le_bytes());
            f.extend_from_slice(b"INFOx\0");
            f.extend_from_slice(b"data");
            f.extend_from_slice(&(enc.len() as u32).to_le_bytes());
            f.extend_from_slice(&enc);
            let p = tmp(&format!("g711-{tag}.wav"));
            std::fs::write(&p, &f).unwrap();
            let got = read_mono_8k(&p).unwrap();
            std::fs::remove_file(&p).ok();
            assert_eq!(got.len(), pcm.len(), "{codec:?}");
            let err = got
                .iter()
                .zip(&pcm)
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max()
                .unwrap();
            assert!(err < 500, "{codec:?}: max error {err}");
        }
    }

    #[test]
    fn every_sample_format_becomes_8k_mono_at_the_same_level() {
        let cases: Vec<(WavSpec, &str)> = vec![
            (
                WavSpec {
                    channels: 1,
                    sample_rate: 8000,
                    bits_per_sample: 16,
                    sample_format: SampleFormat::Int,
                },
                "i16",
            ),
            (
                WavSpec {
                    channels: 2,
                    sample_rate: 44100,
                    bits_per_sample: 16,
                    sample_format: SampleFormat::Int,
                },
                "st",
            ),
            (
                WavSpec {
                    channels: 1,
                    sample_rate: 16000,
                    bits_per_sample: 24,
                    sample_format: SampleFormat::Int,
                },
                "i24",
            ),
            (
                WavSpec {
                    channels: 1,
                    sample_rate: 48000,
                    bits_per_sample: 32,
                    sample_format: SampleFormat::Float,
                },
                "f32",
            ),
            (
                WavSpec {
                    channels: 1,
                    sample_rate: 22050,
                    bits_per_sample: 8,
                    sample_format: SampleFormat::Int,
                },
                "u8",
            ),
            (
                WavSpec {
                    channels: 1,
                    sample_rate: 8000,
                    bits_per_sample: 32,
                    sample_format: SampleFormat::Int,
                },
                "i32",
            ),
        ];
        for (spec, tag) in cases {
            let p = tmp(tag);
            write(&p, spec, 0.5, |w, v| {
                for _ in 0..spec.channels {
                    match (spec.sample_format, spec.bits_per_sample) {
                        (SampleFormat::Float, _) => w.write_sample(v as f32).unwrap(),
                        (_, 8) => w.write_sample((v * 127.0) as i8).unwrap(),
                        (_, 16) => w.write_sample((v * 32767.0) as i16).unwrap(),
                        (_, 24) => w.write_sample((v * 8_388_607.0) as i32).unwrap(),
                        _ => w.write_sample((v * 2_147_483_647.0) as i32).unwrap(),
                    }
                }
            });
            let x = read_mono_8k(&p).unwrap();
            let _ = std::fs::remove_file(&p);
            assert_eq!(x.len(), 4000, "{tag}");
            let pk = peak(&x);
            assert!((15500..=17200).contains(&pk), "{tag}: peak {pk}");
        }
    }

    #[test]
    fn missing_or_garbage_file_is_a_clear_error() {
        let e = read_mono_8k("/nonexistent/x.wav").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.wav"), "{e}");
        let p = tmp("garbage");
        std::fs::write(&p, b"RIFF\x10\x00\x00\x00WAVEjunkjunk").unwrap();
        let e = read_mono_8k(&p).unwrap_err();
        let _ = std::fs::remove_file(&p);
        assert!(matches!(e, WavError::Unreadable { .. }), "{e}");
    }
}
