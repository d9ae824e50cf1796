//! The simulated debtors' voices: each line rendered once with espeak-ng (or
//! flite, for a voice named `flite:<name>`: speakers nothing was tuned on) into
//! 8 kHz mono 16-bit, cached on disk under a hash of (voice, speed, text),
//! leading and trailing silence trimmed so a line starts speaking at once and
//! its playback ends with its last word; and the answering machine's beep.
//! Owns rendering and the cache; never plays audio and never opens a socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::media::tts::{read_wav_8k, write_wav_8k};

use super::SimError;

/// Audio of every line of the served personas, keyed by (voice, text).
#[derive(Debug, Default, Clone)]
pub struct LineAudio {
    lines: HashMap<(String, String), Arc<[i16]>>,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The cache file for a line.
pub fn cache_path(cache: &Path, voice: &str, speed: u32, text: &str) -> PathBuf {
    // The render version: lines made with an older resampler are re-rendered.
    let key = format!(
        "{voice}\u{0}{speed}\u{0}{text}\u{0}{}",
        crate::media::tts::RENDER_VERSION
    );
    let safe: String = voice
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    cache.join(format!("sim-{safe}-{:016x}.wav", fnv1a64(key.as_bytes())))
}

/// Renders (or reads from the cache) one line as 8 kHz mono, trimmed.
pub fn render_line(
    cache: &Path,
    voice: &str,
    speed: u32,
    text: &str,
) -> Result<Vec<i16>, SimError> {
    let path = cache_path(cache, voice, speed, text);
    if path.is_file() {
        if let Ok(s) = read_wav_8k(&path) {
            return Ok(s);
        }
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| SimError::Audio(format!("{}: {e}", cache.display())))?;
    // Unique temporaries: several callees in one process may render the same
    // line at the same moment; the rename makes the cache entry appear whole.
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let raw = path.with_extension(format!("{}-{seq}.raw.wav", std::process::id()));
    let out = match voice.strip_prefix("flite:") {
        // flite (CMU): a speaker nothing in duecall was tuned on; its pace
        // as a duration stretch (165 words a minute = 1.0).
        Some(name) => Command::new("flite")
            .args(["-voice", name, "--setf"])
            .arg(format!(
                "duration_stretch={:.3}",
                165.0 / speed.max(1) as f32
            ))
            .arg("-t")
            .arg(text)
            .arg("-o")
            .arg(&raw)
            .output(),
        // The text on stdin, as every espeak-ng caller does (media::tts).
        None => crate::media::tts::espeak_stdin(
            Command::new("espeak-ng")
                .args(["-v", voice, "-s", &speed.to_string(), "-w"])
                .arg(&raw)
                .arg("--stdin"),
            text,
        ),
    };
    let synth = if voice.starts_with("flite:") {
        "flite (scripts/setup-eval-voices)"
    } else {
        "espeak-ng (scripts/setup)"
    };
    let out = out.map_err(|e| SimError::Audio(format!("cannot run {synth} ({e}); install it")))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&raw);
        return Err(SimError::Audio(format!(
            "{synth} voice {voice} failed on {text:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let samples = read_wav_8k(&raw).map_err(|e| SimError::Audio(e.to_string()));
    let _ = std::fs::remove_file(&raw);
    let samples = trim_silence(&samples?);
    let tmp = path.with_extension(format!("{}-{seq}.tmp", std::process::id()));
    write_wav_8k(&tmp, &samples).map_err(|e| SimError::Audio(e.to_string()))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| SimError::Audio(format!("{}: {e}", path.display())))?;
    Ok(samples)
}

/// Cuts leading and trailing near-silence (below about -45 dBFS), keeping 20 ms either side.
pub fn trim_silence(s: &[i16]) -> Vec<i16> {
    const LOUD: i32 = 180;
    let first = s.iter().position(|v| (*v as i32).abs() > LOUD);
    let last = s.iter().rposition(|v| (*v as i32).abs() > LOUD);
    match (first, last) {
        (Some(a), Some(b)) => s[a.saturating_sub(160)..(b + 1 + 160).min(s.len())].to_vec(),
        _ => Vec::new(),
    }
}

/// A steady sine at `hz` for `ms`, at -10 dBFS with 5 ms ramps (no clicks).
pub fn tone(hz: f32, ms: u64) -> Vec<i16> {
    let n = (ms * 8) as usize;
    let ramp = 40usize;
    (0..n)
        .map(|i| {
            let env = (i.min(n - 1 - i) as f32 / ramp as f32).min(1.0);
            let v = (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin();
            (v * env * 10_362.0) as i16
        })
        .collect()
}

impl LineAudio {
    /// Renders every `(voice, text)` not yet held (cached on disk under `cache`).
    pub fn prepare<'a>(
        &mut self,
        cache: &Path,
        speed: u32,
        lines: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<usize, SimError> {
        let mut n = 0;
        for (voice, text) in lines {
            let key = (voice.to_string(), text.to_string());
            if self.lines.contains_key(&key) {
                continue;
            }
            let pcm = render_line(cache, voice, speed, text)?;
            self.lines.insert(key, pcm.into());
            n += 1;
        }
        Ok(n)
    }

    /// The audio of a line.
    pub fn get(&self, voice: &str, text: &str) -> Option<Arc<[i16]>> {
        self.lines
            .get(&(voice.to_string(), text.to_string()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_keeps_the_voice_and_twenty_ms_margins() {
        let mut s = vec![0i16; 4000];
        s.extend(std::iter::repeat_n(3000, 800));
        s.extend(vec![0i16; 4000]);
        let t = trim_silence(&s);
        assert_eq!(t.len(), 800 + 320);
        assert!(trim_silence(&[0; 100]).is_empty());
    }

    #[test]
    fn beep_is_found_by_the_beep_detector() {
        let pcm = tone(1000.0, 600);
        assert_eq!(pcm.len(), 4800);
        let mut d = crate::media::tone::BeepDetector::new(200);
        let b = d.process(&pcm).expect("a beep");
        assert!((b.freq_hz - 1000.0).abs() <= 20.0, "{b:?}");
    }

    /// Needs espeak-ng. The line reaches espeak-ng on stdin: a line that
    /// starts with a dash (an option on a command line) is spoken, and a
    /// fresh cache gets it.
    #[test]
    fn a_line_is_rendered_from_stdin_even_when_it_starts_with_a_dash() {
        if !crate::testkit::needs().tool("espeak-ng").met() {
            return;
        }
        let cache = std::env::temp_dir().join(format!("duecall-sim-render-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let pcm = render_line(&cache, "en-us", 175, "-v xx hello there").expect("renders");
        // About a second of speech, not the error text of a bad option.
        assert!(pcm.len() > 4000, "{} samples", pcm.len());
        assert!(cache_path(&cache, "en-us", 175, "-v xx hello there").is_file());
        let _ = std::fs::remove_dir_all(&cache);
    }

    #[test]
    fn cache_key_differs_by_voice_speed_and_text() {
        let c = Path::new("/c");
        let a = cache_path(c, "en-us", 160, "Yes.");
        assert_ne!(a, cache_path(c, "cmn", 160, "Yes."));
        assert_ne!(a, cache_path(c, "en-us", 170, "Yes."));
        assert_ne!(a, cache_path(c, "en-us", 160, "No."));
        assert_eq!(a, cache_path(c, "en-us", 160, "Yes."));
    }
}
