//! Where the agent finds its prompts, audio and cache. Owns only the
//! layout; never reads the files (the kits do).

use std::path::{Path, PathBuf};

/// Where the agent finds its files.
#[derive(Debug, Clone)]
pub struct AgentPaths {
    /// `prompts/` (en.toml, zh.toml); missing files fall back to the copies
    /// compiled into the binary.
    pub prompts: PathBuf,
    /// `audio/` (recordings and `tts/` renders per language).
    pub audio: PathBuf,
    /// Cache for prompts rendered on demand.
    pub cache: PathBuf,
}

impl AgentPaths {
    /// The project's layout relative to `root` (a checkout), cache under it.
    pub fn under(root: &Path) -> AgentPaths {
        AgentPaths {
            prompts: root.join("prompts"),
            audio: root.join("audio"),
            cache: root.join(".local").join("cache").join("prompts"),
        }
    }

    /// The checkout this binary was built from when it still exists, else
    /// the current directory.
    pub fn default_root() -> PathBuf {
        let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        if Path::new("prompts").is_dir() {
            PathBuf::from(".")
        } else if built.join("prompts").is_dir() {
            built
        } else {
            PathBuf::from(".")
        }
    }
}
