//! Test hooks for the crash tests: with `DUECALL_TEST_PAUSE_AT=<step>` in
//! the environment, the runner stops at that step of an attempt's life
//! (`decided`: the decision stored, no INVITE yet; `dialling`: marked
//! dialling, the INVITE about to leave; `ended`: the call over, its outcome
//! kept in `pending/` but not yet in the database; `stored`: the outcome in
//! the database, its JSON not yet written), writes `<data dir>/paused-at-<step>`
//! holding the attempt id, and sleeps until the test kills it with
//! `kill -9`. Unset (always, outside tests), a hook is one string compare.

use std::path::Path;
use std::sync::OnceLock;

use crate::store::AttemptId;

/// The environment variable naming the step to pause at.
pub const PAUSE_AT_ENV: &str = "DUECALL_TEST_PAUSE_AT";

fn pause_at() -> Option<&'static str> {
    static STEP: OnceLock<Option<String>> = OnceLock::new();
    STEP.get_or_init(|| std::env::var(PAUSE_AT_ENV).ok().filter(|s| !s.is_empty()))
        .as_deref()
}

/// Stops here for good if the environment asks to pause at `step`.
pub fn reached(step: &str, data_dir: &Path, attempt: AttemptId) {
    if pause_at() != Some(step) {
        return;
    }
    let marker = data_dir.join(format!("paused-at-{step}"));
    let _ = std::fs::write(&marker, attempt.to_string());
    eprintln!("duecall: test hook: paused at {step} (attempt {attempt}); waiting to be killed");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
