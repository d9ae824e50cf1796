//! Prompt audio: the 8 kHz mono 16-bit samples a prompt is played from.
//! Owns where prompt audio comes from, in this order: a contact centre's
//! recording `audio/<lang>/<id>.wav` (fixed prompts only: a recording cannot
//! say this call's amount), the rendered `audio/<lang>/tts/<id>.wav` from
//! `scripts/render-prompts`, then espeak-ng into a cache keyed by a hash of
//! (voice, speed, text). `prepare` renders a call's texts before the INVITE so
//! a call never waits on synthesis. It never writes into `audio/` (recordings
//! are kept as given) and never opens a socket.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Sample rate of every buffer this module returns.
pub const PROMPT_RATE: u32 = 8000;

/// Part of every cache key: bumped when rendering changes, so renders made
/// the old way are not played any more (2: band-limited resampling).
pub const RENDER_VERSION: u32 = 2;

/// Prompt audio that could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TtsError {
    /// espeak-ng is not installed or could not start.
    #[error("cannot run espeak-ng ({source}); install it with scripts/setup or `apt-get install -y espeak-ng`")]
    EspeakMissing {
        /// The OS error.
        source: std::io::Error,
    },
    /// espeak-ng ran and failed (unknown voice, ...).
    #[error("espeak-ng -v {voice} failed ({status}): {stderr}")]
    Espeak {
        /// The voice asked for.
        voice: String,
        /// Exit status.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// A WAV file could not be read or written.
    #[error("{path}: {message}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// espeak-ng does not know the voice (it would silently fall back to its default).
    #[error("espeak-ng has no voice `{voice}` (see `espeak-ng --voices`)")]
    UnknownVoice {
        /// The voice asked for.
        voice: String,
    },
    /// A file or directory could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Where a prompt's audio came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioSource {
    /// `audio/<lang>/<id>.wav`, a person's recording.
    Recorded,
    /// `audio/<lang>/tts/<id>.wav`, rendered ahead by `scripts/render-prompts`.
    Rendered,
    /// The per-text cache (rendered now or by an earlier `prepare`).
    Cache,
}

/// Prompt audio for one language and voice.
#[derive(Debug, Clone)]
pub struct PromptAudio {
    /// `audio/<lang>` (holds recordings and `tts/`).
    pub lang_dir: PathBuf,
    /// Cache for texts rendered on demand.
    pub cache_dir: PathBuf,
    /// espeak-ng voice (`en-us`, `cmn`).
    pub voice: String,
    /// espeak-ng words per minute.
    pub speed: u32,
}

impl PromptAudio {
    /// Audio for `lang` under `audio_root` (e.g. `audio`), caching renders in `cache_dir`.
    pub fn new(audio_root: &Path, lang: &str, cache_dir: &Path, voice: &str, speed: u32) -> Self {
        PromptAudio {
            lang_dir: audio_root.join(lang),
            cache_dir: cache_dir.to_path_buf(),
            voice: voice.to_string(),
            speed,
        }
    }

    /// Checks that espeak-ng knows `voice` (by language name or voice file);
    /// an unknown voice would otherwise render in its default English voice.
    pub fn check_voice(&self) -> Result<(), TtsError> {
        let out = Command::new("espeak-ng")
            .arg("--voices")
            .output()
            .map_err(|source| TtsError::EspeakMissing { source })?;
        let list = String::from_utf8_lossy(&out.stdout);
        let base = self
            .voice
            .split('+')
            .next()
            .unwrap_or(&self.voice)
            .to_ascii_lowercase();
        let known = list.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let lang = cols.get(1).map(|c| c.to_ascii_lowercase());
            let file = cols.get(4).map(|c| c.to_ascii_lowercase());
            lang.as_deref() == Some(base.as_str())
                || file
                    .as_deref()
                    .is_some_and(|f| f.rsplit('/').next() == Some(base.as_str()))
        });
        if known {
            Ok(())
        } else {
            Err(TtsError::UnknownVoice {
                voice: self.voice.clone(),
            })
        }
    }

    /// The cache file for a text: `<cache>/<voice>-<hash>.wav`, the hash over
    /// (voice, speed, text, [`RENDER_VERSION`]), stable across builds (FNV-1a 64).
    pub fn cache_path(&self, text: &str) -> PathBuf {
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{RENDER_VERSION}",
            self.voice, self.speed, text
        );
        let safe_voice: String = self
            .voice
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.cache_dir
            .join(format!("{safe_voice}-{:016x}.wav", fnv1a64(key.as_bytes())))
    }

    /// The samples for prompt `id` whose rendered text is `text`. `fixed`
    /// says the text has no per-call values (`SayPrompt::is_fixed`): only
    /// then may a recording or the pre-rendered file stand for it.
    pub fn load(
        &self,
        id: &str,
        text: &str,
        fixed: bool,
    ) -> Result<(Vec<i16>, AudioSource), TtsError> {
        if fixed {
            let recorded = self.lang_dir.join(format!("{id}.wav"));
            if recorded.is_file() {
                return Ok((read_wav_8k(&recorded)?, AudioSource::Recorded));
            }
            let rendered = self.lang_dir.join("tts").join(format!("{id}.wav"));
            if rendered.is_file() {
                return Ok((read_wav_8k(&rendered)?, AudioSource::Rendered));
            }
        }
        let cached = self.cache_path(text);
        if !cached.is_file() {
            self.render_to(text, &cached)?;
        }
        Ok((read_wav_8k(&cached)?, AudioSource::Cache))
    }

    /// Renders every text not yet cached; returns how many were rendered.
    /// Call before dialling with `Conversation::texts_to_prepare`.
    pub fn prepare<S: AsRef<str>>(&self, texts: &[S]) -> Result<usize, TtsError> {
        let mut n = 0;
        for t in texts {
            let path = self.cache_path(t.as_ref());
            if !path.is_file() {
                self.render_to(t.as_ref(), &path)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// espeak-ng into a temporary file, converted to 8 kHz mono 16-bit and
    /// moved into place (so a half-written file is never read). The text
    /// (it holds the debtor's name and amount) goes to espeak-ng on stdin,
    /// never on its command line (which every local user can read in
    /// `/proc`); the cache directory is made 0700 and its files 0600.
    pub fn render_to(&self, text: &str, out: &Path) -> Result<(), TtsError> {
        self.render_with(Path::new("espeak-ng"), text, out)
    }

    fn render_with(&self, program: &Path, text: &str, out: &Path) -> Result<(), TtsError> {
        let dir = out.parent().unwrap_or(Path::new("."));
        private_dir(dir)?;
        // Unique per render, not per process: calls render the same text on
        // several threads at once (a shared name lost files under load).
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let raw = out.with_extension(format!("{unique}.raw.wav"));
        let result = espeak_stdin(
            Command::new(program)
                .arg("-v")
                .arg(&self.voice)
                .arg("-s")
                .arg(self.speed.to_string())
                .arg("-w")
                .arg(&raw)
                .arg("--stdin"),
            text,
        )
        .map_err(|source| TtsError::EspeakMissing { source })?;
        if !result.status.success() {
            let _ = std::fs::remove_file(&raw);
            return Err(TtsError::Espeak {
                voice: self.voice.clone(),
                status: result.status.to_string(),
                stderr: String::from_utf8_lossy(&result.stderr).trim().to_string(),
            });
        }
        let samples = read_wav_8k(&raw);
        let _ = std::fs::remove_file(&raw);
        let samples = samples?;
        let tmp = out.with_extension(format!("{unique}.tmp"));
        write_wav_8k(&tmp, &samples)?;
        std::fs::rename(&tmp, out).map_err(|source| TtsError::Io {
            path: out.to_path_buf(),
            source,
        })
    }
}

/// Runs espeak-ng (`cmd`, which must carry `--stdin`) with `text` on its
/// stdin and waits for it: text never goes on a command line, where every
/// local user can read it in `/proc`. Used by every caller of espeak-ng.
pub(crate) fn espeak_stdin(cmd: &mut Command, text: &str) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A prompt is a few hundred bytes: it fits the pipe, no deadlock
        // with espeak-ng's output. A failed write shows in its exit status.
        let _ = stdin.write_all(text.as_bytes());
    }
    child.wait_with_output()
}

/// Creates `dir` (and its parents) and makes it readable by its owner only.
fn private_dir(dir: &Path) -> Result<(), TtsError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| TtsError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

/// FNV-1a, 64 bit: a hash that does not change between Rust versions.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Reads a PCM WAV (8/16/24/32-bit int or 32-bit float, any rate, any
/// channels) as 8 kHz mono i16: channels averaged, rate converted linearly.
pub fn read_wav_8k(path: &Path) -> Result<Vec<i16>, TtsError> {
    let wav_err = |e: hound::Error| TtsError::Wav {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut reader = hound::WavReader::open(path).map_err(wav_err)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_err)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(wav_err)?
        }
    };
    let mono: Vec<f32> = interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect();
    // Band-limited, as sox does for scripts/render-prompts: a box filter let
    // espeak's fricative hiss (a leading "th") alias into the phone band
    // loud enough to pass for the first word, 100 ms before the voice.
    let resampled = crate::media::resample::resample(&mono, spec.sample_rate, PROMPT_RATE);
    Ok(resampled
        .into_iter()
        .map(|v| (v * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

/// Writes 8 kHz mono 16-bit PCM, readable by its owner only (0600).
pub fn write_wav_8k(path: &Path, samples: &[i16]) -> Result<(), TtsError> {
    let wav_err = |e: hound::Error| TtsError::Wav {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: PROMPT_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TtsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut w = hound::WavWriter::new(std::io::BufWriter::new(file), spec).map_err(wav_err)?;
    for s in samples {
        w.write_sample(*s).map_err(wav_err)?;
    }
    w.finalize().map_err(wav_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_dir(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "duecall-tts-{}-{}-{}",
            name,
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for s in samples {
            w.write_sample(*s).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn a_recording_wins_over_the_rendered_file_for_fixed_prompts() {
        let root = temp_dir("rec");
        write_wav(&root.join("en/opening.wav"), 8000, 1, &[100; 80]);
        write_wav(&root.join("en/tts/opening.wav"), 8000, 1, &[200; 80]);
        write_wav(&root.join("en/tts/closing.wav"), 8000, 1, &[300; 40]);
        let pa = PromptAudio::new(&root, "en", &root.join("cache"), "en-us", 160);
        let (s, src) = pa.load("opening", "Hello.", true).unwrap();
        assert_eq!((src, s.len(), s[0]), (AudioSource::Recorded, 80, 100));
        let (s, src) = pa.load("closing", "Bye.", true).unwrap();
        assert_eq!((src, s[0]), (AudioSource::Rendered, 300));
    }

    #[test]
    fn templated_prompts_never_use_the_fixed_files() {
        let root = temp_dir("tmpl");
        write_wav(&root.join("en/reminder.wav"), 8000, 1, &[100; 80]);
        let pa = PromptAudio::new(&root, "en", &root.join("cache"), "en-us", 160);
        // Put the text in the cache by hand so the test needs no synthesis.
        let text = "Your payment of ten dollars was due.";
        write_wav(&pa.cache_path(text), 8000, 1, &[7; 10]);
        let (s, src) = pa.load("reminder", text, false).unwrap();
        assert_eq!((src, s), (AudioSource::Cache, vec![7; 10]));
    }

    #[test]
    fn cache_keys_differ_by_voice_speed_and_text() {
        let a = PromptAudio::new(Path::new("audio"), "en", Path::new("c"), "en-us", 160);
        let b = PromptAudio {
            voice: "cmn".into(),
            ..a.clone()
        };
        let c = PromptAudio {
            speed: 170,
            ..a.clone()
        };
        assert_ne!(a.cache_path("x"), b.cache_path("x"));
        assert_ne!(a.cache_path("x"), c.cache_path("x"));
        assert_ne!(a.cache_path("x"), a.cache_path("y"));
        assert_eq!(a.cache_path("x"), a.cache_path("x"));
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn stereo_22k_becomes_8k_mono_of_the_right_length() {
        let root = temp_dir("rs");
        let frames = 22050; // one second
        let samples: Vec<i16> = (0..frames).flat_map(|_| [1000i16, 3000]).collect();
        let p = root.join("in.wav");
        write_wav(&p, 22050, 2, &samples);
        let out = read_wav_8k(&p).unwrap();
        assert_eq!(out.len(), 8000);
        assert!(
            out[100..7900].iter().all(|s| (*s - 2000).abs() <= 1),
            "channels averaged"
        );
    }

    #[test]
    fn hiss_above_the_phone_band_does_not_survive_the_conversion() {
        // espeak renders at 22.05 kHz; a fricative's 6 kHz hiss must not
        // alias into the 8 kHz prompt loud enough to pass for speech.
        let root = temp_dir("hiss");
        let p = root.join("tone.wav");
        // Peak of a 1 s tone at 22.05 kHz after conversion to 8 kHz.
        let peak_at_8k = |hz: f32, amp: f32| {
            let tone: Vec<i16> = (0..22050)
                .map(|i| {
                    ((2.0 * std::f32::consts::PI * hz * i as f32 / 22050.0).sin() * amp) as i16
                })
                .collect();
            write_wav(&p, 22050, 1, &tone);
            let out = read_wav_8k(&p).unwrap();
            out[200..7800]
                .iter()
                .map(|s| s.unsigned_abs())
                .max()
                .unwrap_or(0)
        };
        let peak = peak_at_8k(6000.0, 2000.0);
        assert!(peak < 150, "aliased hiss peaks at {peak}");
        let peak = peak_at_8k(440.0, 16000.0);
        assert!(
            (15500..=16500).contains(&peak),
            "a 440 Hz tone keeps its level: {peak}"
        );
    }

    #[test]
    fn a_bad_wav_names_the_file() {
        let root = temp_dir("bad");
        let p = root.join("en/opening.wav");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"not a wav").unwrap();
        let pa = PromptAudio::new(&root, "en", &root.join("cache"), "en-us", 160);
        let e = pa.load("opening", "x", true).unwrap_err().to_string();
        assert!(e.contains("opening.wav"), "{e}");
    }

    /// Needs espeak-ng (scripts/render-prompts installs it).
    #[test]
    fn espeak_renders_english_and_mandarin_into_the_cache_once() {
        let root = temp_dir("espeak");
        for (voice, text) in [
            ("en-us", "Am I speaking with Maria Lopez?"),
            ("cmn", "请问您是王伟本人吗？"),
        ] {
            let pa = PromptAudio::new(&root, "xx", &root.join("cache"), voice, 160);
            assert_eq!(pa.prepare(&[text]).unwrap(), 1);
            assert_eq!(
                pa.prepare(&[text]).unwrap(),
                0,
                "second prepare finds the cache"
            );
            let (s, src) = pa.load("right_party", text, false).unwrap();
            assert_eq!(src, AudioSource::Cache);
            assert!(
                s.len() > 8000 / 2,
                "{voice}: at least half a second, got {}",
                s.len()
            );
            let loud = s.iter().filter(|v| v.unsigned_abs() > 1000).count();
            assert!(loud > 1000, "{voice}: speech, not silence");
            let spec = hound::WavReader::open(pa.cache_path(text)).unwrap().spec();
            assert_eq!(
                (spec.sample_rate, spec.channels, spec.bits_per_sample),
                (8000, 1, 16)
            );
        }
        let pa = PromptAudio::new(&root, "xx", &root.join("cache"), "no-such-voice-zz", 160);
        assert!(matches!(
            pa.check_voice(),
            Err(TtsError::UnknownVoice { .. })
        ));
        for voice in ["en-us", "cmn", "en-us+f3"] {
            let pa = PromptAudio::new(&root, "xx", &root.join("cache"), voice, 160);
            assert!(pa.check_voice().is_ok(), "{voice}");
        }
    }

    /// Needs espeak-ng. A wrapper records what espeak-ng was given.
    #[test]
    fn the_text_goes_on_stdin_and_the_cache_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = temp_dir("private");
        let wrapper = root.join("espeak-wrapper");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{d}/args'\ntee '{d}/stdin' | espeak-ng \"$@\"\n",
                d = root.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pa = PromptAudio::new(&root, "en", &root.join("cache/en"), "en-us", 160);
        let text = "Am I speaking with Zebediah Quortle? You owe 412 dollars.";
        let out = pa.cache_path(text);
        pa.render_with(&wrapper, text, &out).unwrap();
        let args = std::fs::read_to_string(root.join("args")).unwrap();
        assert!(!args.contains("Quortle") && !args.contains("412"), "{args}");
        let stdin = std::fs::read_to_string(root.join("stdin")).unwrap();
        assert_eq!(stdin, text);
        let (s, src) = pa.load("reminder", text, false).unwrap();
        assert_eq!(src, AudioSource::Cache);
        assert!(s.iter().filter(|v| v.unsigned_abs() > 1000).count() > 1000);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), 0o600);
        assert_eq!(mode(&root.join("cache/en")), 0o700);
        let leftovers: Vec<_> = std::fs::read_dir(root.join("cache/en"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != out.file_name().unwrap())
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}
