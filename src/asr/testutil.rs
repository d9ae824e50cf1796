//! Test audio rendered with espeak-ng (and sox for the phone line) into a
//! temp dir, and the tool checks of the speech tests: a missing tool
//! fails the test under CI and skips it elsewhere ([`crate::testkit`]).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A per-test temp directory under the target dir, removed on drop.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> Self {
        let base = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let p = base.join(format!(
            "duecall-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::create_dir_all(&p);
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// espeak-ng and sox, to render test speech.
pub fn speech_tools() -> bool {
    crate::testkit::needs()
        .tool("espeak-ng")
        .tool("sox")
        .setup("scripts/setup-speech")
        .met()
}

/// The Whisper tiny.en model's path, or None (skip; a failure under CI)
/// when it or the speech tools are missing.
pub fn whisper_english_model() -> Option<PathBuf> {
    let model = crate::asr::whisper::model::find_model("en");
    if !crate::testkit::needs()
        .present(
            model.is_some(),
            "the Whisper tiny.en model (.local/models/whisper)",
        )
        .setup("scripts/setup-whisper")
        .met()
        || !speech_tools()
    {
        return None;
    }
    model
}

/// espeak-ng, sox and the PocketSphinx English model.
pub fn sphinx_tools() -> bool {
    crate::testkit::needs()
        .file(
            crate::asr::sphinx::SphinxConfig::default().hmm.join("mdef"),
            "the PocketSphinx English model (pocketsphinx-en-us)",
        )
        .tool("espeak-ng")
        .tool("sox")
        .setup("scripts/setup-speech")
        .met()
}

/// Renders `text` with espeak-ng `voice`/`speed`, then sox to 8 kHz
/// mono 16-bit (through u-law when `ulaw`), and returns the samples.
pub fn speak_8k(
    dir: &Path,
    name: &str,
    voice: &str,
    speed: u32,
    text: &str,
    ulaw: bool,
) -> Vec<i16> {
    let raw = dir.join(format!("{name}.22k.wav"));
    let out = dir.join(format!("{name}.8k.wav"));
    let st = crate::media::tts::espeak_stdin(
        Command::new("espeak-ng")
            .args(["-v", voice, "-s", &speed.to_string(), "-w"])
            .arg(&raw)
            .arg("--stdin"),
        text,
    )
    .expect("espeak-ng runs")
    .status;
    assert!(st.success(), "espeak-ng failed for {text}");
    if ulaw {
        let ul = dir.join(format!("{name}.ul.wav"));
        let st = Command::new("sox")
            .arg("-R") // repeatable: no random dither
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-e", "u-law"])
            .arg(&ul)
            .status()
            .expect("sox runs");
        assert!(st.success());
        let st = Command::new("sox")
            .arg("-R") // repeatable: no random dither
            .arg(&ul)
            .args(["-e", "signed-integer", "-b", "16"])
            .arg(&out)
            .status()
            .expect("sox runs");
        assert!(st.success());
    } else {
        let st = Command::new("sox")
            .arg("-R") // repeatable: no random dither
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(&out)
            .status()
            .expect("sox runs");
        assert!(st.success());
    }
    crate::media::wav::read_mono_8k(&out).expect("rendered wav reads")
}
