//! What a test needs from the machine (a tool on the PATH, a model file,
//! test data) and what happens when it is missing. Shared by the unit
//! tests, the integration tests and the benches.
//!
//! Under CI (`CI=true` or `CI=1`, as `.ci/run` sets it) or with
//! `DUECALL_REQUIRE_TOOLS=1`, a missing need fails the test, naming what is
//! missing and the set-up step that installs it: CI can never go green
//! without running a speech test. Elsewhere (a developer's machine half set
//! up) the test is skipped with a note on stderr.
//!
//! Owns only that decision. Never installs anything.

use std::path::{Path, PathBuf};

/// Whether a missing need fails the test instead of skipping it.
pub fn strict() -> bool {
    let on = |var: &str| {
        std::env::var(var)
            .map(|v| {
                let v = v.trim().to_ascii_lowercase();
                !v.is_empty() && v != "0" && v != "false" && v != "no"
            })
            .unwrap_or(false)
    };
    on("CI") || on("DUECALL_REQUIRE_TOOLS")
}

/// Whether an executable called `tool` is on the PATH.
pub fn on_path(tool: &str) -> bool {
    find_on_path(tool).is_some()
}

/// The executable `tool` on the PATH, if any.
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The needs of one test, collected before deciding; see [`needs`].
#[derive(Debug, Default)]
#[must_use = "call .met() to skip or fail the test"]
pub struct Needs {
    missing: Vec<String>,
    setup: Option<String>,
}

/// Starts a list of needs: `if !needs().tool("espeak-ng").met() { return; }`.
pub fn needs() -> Needs {
    Needs::default()
}

impl Needs {
    /// An executable on the PATH.
    pub fn tool(mut self, name: &str) -> Self {
        if !on_path(name) {
            self.missing.push(format!("the `{name}` program"));
        }
        self
    }

    /// A file (a model, test data); `what` names it for the message.
    pub fn file(mut self, path: impl AsRef<Path>, what: &str) -> Self {
        let path = path.as_ref();
        if !path.is_file() {
            self.missing.push(format!("{what} ({})", path.display()));
        }
        self
    }

    /// Anything else found present or not by the caller.
    pub fn present(mut self, present: bool, what: &str) -> Self {
        if !present {
            self.missing.push(what.to_string());
        }
        self
    }

    /// The set-up step that installs what is missing (default `scripts/setup`).
    pub fn setup(mut self, step: &str) -> Self {
        self.setup = Some(step.to_string());
        self
    }

    /// True when everything is present. Otherwise: panics under CI (or
    /// `DUECALL_REQUIRE_TOOLS=1`), else prints a SKIP note and returns false.
    pub fn met(self) -> bool {
        if self.missing.is_empty() {
            return true;
        }
        let test = std::thread::current()
            .name()
            .unwrap_or("this test")
            .to_string();
        let msg = format!(
            "{test}: missing {} (run {})",
            self.missing.join(", "),
            self.setup.as_deref().unwrap_or("scripts/setup")
        );
        if strict() {
            panic!("{msg}; a test whose tool or model is missing fails under CI");
        }
        eprintln!("SKIP: {msg}");
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_tool_and_file_are_met() {
        assert!(needs()
            .tool("sh")
            .file("/bin/sh", "a shell")
            .present(true, "x")
            .met());
    }

    #[test]
    fn a_missing_need_skips_or_fails_by_the_environment() {
        let n = || {
            needs()
                .tool("duecall-no-such-tool")
                .setup("scripts/setup-speech")
        };
        if strict() {
            let r = std::panic::catch_unwind(|| n().met());
            let msg = r
                .err()
                .and_then(|e| e.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            assert!(
                msg.contains("duecall-no-such-tool") && msg.contains("scripts/setup-speech"),
                "{msg}"
            );
        } else {
            assert!(!n().met());
        }
    }
}
