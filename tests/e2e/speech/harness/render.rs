//! Rendering spoken replies as phone-line clips: a synthesizer voice (espeak-ng
//! for development; flite and festival, which nothing here was tuned
//! with, for evaluation), speed and pitch seeded per text, the level set, pink
//! noise at an SNR, 8 kHz u-law; cached on disk under a hash of everything
//! that shapes them (never committed). `<silence>` renders an open line with
//! only the noise.
//!
//! Owns: the voice lists, the seeded choice of voice/speed/pitch/noise per
//! clip and the clip cache. Never decodes.

use std::path::{Path, PathBuf};
use std::process::Command;

use duecall::asr::{AsrError, FRAME_SAMPLES, SAMPLE_RATE};

/// Bumped whenever rendering changes, so cached clips are not reused.
const PIPELINE_VERSION: u32 = 1;
/// The text that renders as an open line without speech.
pub const SILENCE: &str = "<silence>";

/// A speech synthesizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Synth {
    /// espeak-ng: the development voices (everything tuned here used it).
    Espeak,
    /// flite (CMU): evaluation only.
    Flite,
    /// festival (`text2wave`): evaluation only.
    Festival,
}

impl Synth {
    /// The program that renders with it.
    pub fn program(self) -> &'static str {
        match self {
            Synth::Espeak => "espeak-ng",
            Synth::Flite => "flite",
            Synth::Festival => "text2wave",
        }
    }
}

/// One voice of one synthesizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Voice {
    /// The synthesizer.
    pub synth: Synth,
    /// Its voice name (espeak-ng `en-us+f3`, flite `slt`, festival `kal_diphone`).
    pub name: &'static str,
}

impl Voice {
    /// "espeak:en-us", "flite:slt", "festival:kal_diphone".
    pub fn label(&self) -> String {
        let s = match self.synth {
            Synth::Espeak => "espeak",
            Synth::Flite => "flite",
            Synth::Festival => "festival",
        };
        format!("{s}:{}", self.name)
    }
}

const fn espeak(name: &'static str) -> Voice {
    Voice {
        synth: Synth::Espeak,
        name,
    }
}

/// Development voices (espeak-ng names; `+f3` etc. are variants): the
/// conversation benchmark's development split speaks in the same ones.
pub const VOICES: &[&str] = duecall::bench::conversations::DEV_VOICES;

/// The development voices as [`Voice`]s (the names of [`VOICES`]).
pub const DEV_VOICES: &[Voice] = &[
    espeak("en-us"),
    espeak("en-us+f3"),
    espeak("en-gb"),
    espeak("en-us+m7"),
    espeak("en-gb-x-rp"),
    espeak("en-us+f4"),
];

/// Evaluation voices: two synthesizers nothing here was tuned with
/// (Debian `flite`, `festival`, `festvox-kallpc16k`, `festvox-kdlpc16k`,
/// `festvox-us-slt-hts`). flite's slt and festival's slt HTS are one
/// speaker through two synthesizers, as are the two kal voices.
pub const EVAL_VOICES: &[Voice] = &[
    Voice {
        synth: Synth::Flite,
        name: "awb",
    },
    Voice {
        synth: Synth::Flite,
        name: "rms",
    },
    Voice {
        synth: Synth::Flite,
        name: "slt",
    },
    Voice {
        synth: Synth::Flite,
        name: "kal16",
    },
    Voice {
        synth: Synth::Festival,
        name: "kal_diphone",
    },
    Voice {
        synth: Synth::Festival,
        name: "ked_diphone",
    },
    Voice {
        synth: Synth::Festival,
        name: "cmu_us_slt_arctic_hts",
    },
];

/// Silence before the reply (the line is open, the caller draws breath), s.
const LEAD_S: f32 = 0.5;
/// Silence after it, longer than the VAD's end silence, s.
const TAIL_S: f32 = 0.8;
/// Length of a `<silence>` clip's open line between lead and tail, s.
const SILENCE_S: f32 = 1.5;

/// How one clip is spoken and degraded.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The voice.
    pub voice: Voice,
    /// Words per minute (140..=185); flite and festival get the same pace
    /// as a duration stretch (165 wpm = 1.0).
    pub speed: u32,
    /// Pitch 0..99 (30..=70 here; espeak-ng only).
    pub pitch: u32,
    /// Speech level over pink noise, dB (15..=25).
    pub snr_db: u32,
    /// Active speech level, dBFS (-28..=-16): callers are loud and quiet.
    pub level_db: i32,
}

/// FNV-1a 64: a hash that stays the same across Rust versions (cache keys, seeds).
pub fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `k`-th rendering of `text` in the development voices: seeded by the
/// text, so a run repeats; the `k`s of one text get different voices.
pub fn variant(text: &str, k: u32) -> Variant {
    variant_in(text, k, DEV_VOICES)
}

/// The `k`-th rendering of `text` in one of `voices`.
pub fn variant_in(text: &str, k: u32, voices: &[Voice]) -> Variant {
    let base = fnv64(text.as_bytes());
    let h = splitmix(base ^ (k as u64).wrapping_mul(0x9e37_79b9));
    let voice = voices[((base as usize % voices.len()) + k as usize) % voices.len()];
    Variant {
        voice,
        speed: 140 + (h % 46) as u32,
        pitch: 30 + ((h >> 8) % 41) as u32,
        snr_db: 15 + ((h >> 16) % 11) as u32,
        level_db: -28 + ((h >> 24) % 13) as i32,
    }
}

/// Where rendered clips are kept: `DUECALL_SPEECH_CACHE`, else
/// `<target dir>/speech-eval-cache` (found from the running test or bench
/// binary), else the temp dir.
pub fn default_cache_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("DUECALL_SPEECH_CACHE") {
        return PathBuf::from(v);
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/<bin> or target/<profile>/<bin>
        for dir in exe.ancestors().skip(1).take(3) {
            if dir.join("CACHEDIR.TAG").is_file() || dir.file_name().is_some_and(|n| n == "target")
            {
                return dir.join("speech-eval-cache");
            }
        }
    }
    std::env::temp_dir().join("duecall-speech-eval-cache")
}

fn tool_err(tool: &'static str, what: String) -> AsrError {
    AsrError::Engine { engine: tool, what }
}

fn run(tool: &'static str, args: &[&std::ffi::OsStr]) -> Result<(), AsrError> {
    let out = Command::new(tool).args(args).output().map_err(|e| {
        tool_err(
            tool,
            format!("cannot run {tool}: {e} (scripts/setup-speech installs it)"),
        )
    })?;
    if !out.status.success() {
        return Err(tool_err(
            tool,
            format!(
                "{tool} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

fn read_8k(path: &Path) -> Result<Vec<i16>, AsrError> {
    duecall::media::wav::read_mono_8k(path).map_err(|e| AsrError::Input {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn write_8k(path: &Path, pcm: &[i16]) -> Result<(), AsrError> {
    let err = |e: hound::Error| AsrError::Input {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for s in pcm {
        w.write_sample(*s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

/// RMS in dBFS of the frames within 30 dB of the loudest (the speech itself).
fn active_level_db(pcm: &[i16]) -> f32 {
    let frames: Vec<f64> = pcm
        .chunks(FRAME_SAMPLES)
        .map(|f| f.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / f.len().max(1) as f64)
        .collect();
    let peak = frames.iter().cloned().fold(0.0, f64::max);
    let loud: Vec<f64> = frames.into_iter().filter(|&e| e > peak * 1e-3).collect();
    if loud.is_empty() {
        return -100.0;
    }
    let mean = loud.iter().sum::<f64>() / loud.len() as f64 / (32768.0 * 32768.0);
    (10.0 * mean.max(1e-10).log10()) as f32
}

/// Pink noise made once by sox in repeatable mode (`-R`), 20 s at 8 kHz.
fn noise_bed(cache: &Path) -> Result<Vec<i16>, AsrError> {
    let path = cache.join(format!("pinknoise-v{PIPELINE_VERSION}.wav"));
    if let Ok(n) = read_8k(&path) {
        if n.len() >= 8000 * 10 {
            return Ok(n);
        }
    }
    let tmp = cache.join(format!(
        "pinknoise-{}-{:?}.tmp.wav",
        std::process::id(),
        std::thread::current().id()
    ));
    let args: Vec<&std::ffi::OsStr> = ["-R", "-n", "-r", "8000", "-c", "1", "-b", "16"]
        .iter()
        .map(std::ffi::OsStr::new)
        .chain([tmp.as_os_str()])
        .chain(
            ["synth", "20", "pinknoise", "vol", "0.5"]
                .iter()
                .map(std::ffi::OsStr::new),
        )
        .collect();
    run("sox", &args)?;
    std::fs::rename(&tmp, &path).map_err(|e| AsrError::Input {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    read_8k(&path)
}

/// Renders `text` as a phone-line clip and returns 8 kHz i16 samples:
/// the synthesizer (voice, speed, pitch) -> sox to 8 kHz -> level set, padded with
/// silence -> pink noise at the SNR -> sox u-law and back to 16-bit.
/// Cached in `cache` under a hash of all of that.
pub fn render(text: &str, v: &Variant, cache: &Path) -> Result<Vec<i16>, AsrError> {
    // espeak-ng clips keep the key they had before other synthesizers came.
    let voice = match v.voice.synth {
        Synth::Espeak => v.voice.name.to_string(),
        _ => v.voice.label(),
    };
    let key = fnv64(
        format!(
            "v{PIPELINE_VERSION}|{voice}|{}|{}|{}|{}|{text}",
            v.speed, v.pitch, v.snr_db, v.level_db
        )
        .as_bytes(),
    );
    let fin = cache.join(format!("{key:016x}.wav"));
    if fin.is_file() {
        if let Ok(pcm) = read_8k(&fin) {
            return Ok(pcm);
        }
    }
    std::fs::create_dir_all(cache).map_err(|e| AsrError::Input {
        path: cache.to_path_buf(),
        reason: e.to_string(),
    })?;
    let tmp = cache.join(format!(
        "tmp-{key:016x}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&tmp).map_err(|e| AsrError::Input {
        path: tmp.clone(),
        reason: e.to_string(),
    })?;
    let result = render_into(text, v, cache, &tmp, &fin);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn render_into(
    text: &str,
    v: &Variant,
    cache: &Path,
    tmp: &Path,
    fin: &Path,
) -> Result<Vec<i16>, AsrError> {
    use std::ffi::OsStr;
    let raw = tmp.join("raw.wav");
    let clean = tmp.join("clean.wav");
    let speech = if text == SILENCE {
        Vec::new()
    } else {
        synthesize(text, v, tmp, &raw)?;
        run(
            "sox",
            &[
                OsStr::new("-R"),
                raw.as_os_str(),
                OsStr::new("-r"),
                OsStr::new("8000"),
                OsStr::new("-c"),
                OsStr::new("1"),
                OsStr::new("-b"),
                OsStr::new("16"),
                clean.as_os_str(),
            ],
        )?;
        read_8k(&clean)?
    };
    let gain = if speech.is_empty() {
        1.0
    } else {
        10f32.powf((v.level_db as f32 - active_level_db(&speech)) / 20.0)
    };
    let lead = if speech.is_empty() {
        ((LEAD_S + SILENCE_S) * SAMPLE_RATE as f32) as usize
    } else {
        (LEAD_S * SAMPLE_RATE as f32) as usize
    };
    let tail = (TAIL_S * SAMPLE_RATE as f32) as usize;
    let mut pcm: Vec<f32> = vec![0.0; lead];
    pcm.extend(speech.iter().map(|&s| s as f32 * gain));
    pcm.extend(std::iter::repeat_n(0.0, tail));
    let noise = noise_bed(cache)?;
    let noise_rms = (noise.iter().map(|&s| (s as f64).powi(2)).sum::<f64>()
        / noise.len().max(1) as f64)
        .sqrt() as f32;
    let want_rms = 32768.0 * 10f32.powf((v.level_db as f32 - v.snr_db as f32) / 20.0);
    let ng = want_rms / noise_rms.max(1.0);
    let off = (fnv64(text.as_bytes()) as usize) % noise.len().saturating_sub(pcm.len()).max(1);
    for (i, s) in pcm.iter_mut().enumerate() {
        *s += noise[(off + i) % noise.len()] as f32 * ng;
    }
    let mixed: Vec<i16> = pcm
        .iter()
        .map(|s| s.round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    let mixed_path = tmp.join("mixed.wav");
    write_8k(&mixed_path, &mixed)?;
    let ul = tmp.join("line.ul.wav");
    let back = tmp.join("line.wav");
    run(
        "sox",
        &[
            OsStr::new("-R"),
            mixed_path.as_os_str(),
            OsStr::new("-e"),
            OsStr::new("u-law"),
            ul.as_os_str(),
        ],
    )?;
    run(
        "sox",
        &[
            OsStr::new("-R"),
            ul.as_os_str(),
            OsStr::new("-e"),
            OsStr::new("signed-integer"),
            OsStr::new("-b"),
            OsStr::new("16"),
            back.as_os_str(),
        ],
    )?;
    std::fs::rename(&back, fin).map_err(|e| AsrError::Input {
        path: fin.to_path_buf(),
        reason: e.to_string(),
    })?;
    read_8k(fin)
}

/// Runs the variant's synthesizer on `text` into `raw` (a WAV at its own rate).
fn synthesize(text: &str, v: &Variant, tmp: &Path, raw: &Path) -> Result<(), AsrError> {
    use std::ffi::OsStr;
    // Pace as a duration stretch for flite and festival (165 wpm = 1.0).
    let stretch = format!("{:.3}", 165.0 / v.speed as f32);
    match v.voice.synth {
        Synth::Espeak => {
            let (speed, pitch) = (v.speed.to_string(), v.pitch.to_string());
            run(
                "espeak-ng",
                &[
                    OsStr::new("-v"),
                    OsStr::new(v.voice.name),
                    OsStr::new("-s"),
                    OsStr::new(&speed),
                    OsStr::new("-p"),
                    OsStr::new(&pitch),
                    OsStr::new("-w"),
                    raw.as_os_str(),
                    OsStr::new(text),
                ],
            )
        }
        Synth::Flite => {
            let setf = format!("duration_stretch={stretch}");
            run(
                "flite",
                &[
                    OsStr::new("-voice"),
                    OsStr::new(v.voice.name),
                    OsStr::new("--setf"),
                    OsStr::new(&setf),
                    OsStr::new("-t"),
                    OsStr::new(text),
                    OsStr::new("-o"),
                    raw.as_os_str(),
                ],
            )
        }
        Synth::Festival => {
            let txt = tmp.join("text.txt");
            std::fs::write(&txt, text).map_err(|e| AsrError::Input {
                path: txt.clone(),
                reason: e.to_string(),
            })?;
            let voice = format!("(voice_{})", v.voice.name);
            let pace = format!("(Parameter.set 'Duration_Stretch {stretch})");
            run(
                "text2wave",
                &[
                    OsStr::new("-eval"),
                    OsStr::new(&voice),
                    OsStr::new("-eval"),
                    OsStr::new(&pace),
                    txt.as_os_str(),
                    OsStr::new("-o"),
                    raw.as_os_str(),
                ],
            )
        }
    }
}
