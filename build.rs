//! Links the two offline speech engines.
//!
//! - libvosk: from `<repo>/.local/lib` (installed by `scripts/setup`) or the
//!   directory in `DUECALL_VOSK_LIB`, with an rpath so the binary runs with no
//!   environment set.
//! - PocketSphinx: through pkg-config (Debian `libpocketsphinx-dev`).
//!
//! And libopus (WebRTC media's Opus, src/media/opus.rs) through pkg-config
//! (Debian `libopus-dev`).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DUECALL_VOSK_LIB");
    println!("cargo:rerun-if-changed=build.rs");

    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let dir = match std::env::var_os("DUECALL_VOSK_LIB") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => manifest.join(".local").join("lib"),
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    let lib = dir.join("libvosk.so");
    println!("cargo:rerun-if-changed={}", lib.display());
    if !lib.is_file() {
        panic!(
            "libvosk not found in {}: run scripts/setup first (or set DUECALL_VOSK_LIB to the directory holding libvosk.so)",
            dir.display()
        );
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=vosk");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());

    if let Err(e) = pkg_config::Config::new().probe("pocketsphinx") {
        panic!(
            "pocketsphinx not found through pkg-config ({e}): run scripts/setup first \
             (installs libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us pkg-config)"
        );
    }

    if let Err(e) = pkg_config::Config::new().probe("opus") {
        panic!("libopus not found through pkg-config ({e}): run scripts/setup first (installs libopus-dev)");
    }
}
