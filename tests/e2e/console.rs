//! The console as a person uses it: `tests/console/console.mjs` drives
//! Debian's chromium with playwright-core (npm, installed by scripts/setup)
//! against `duecall serve` on a store filled by a real campaign against
//! the simulated debtors. Screenshots are kept in the test's scratch
//! directory and checked by the script (text present, no error page).

use std::path::Path;
use std::process::Command;

use crate::serve_support::*;

#[test]
fn a_collector_and_qa_work_in_the_console_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/console/console.mjs");
    let module = root.join("tests/console/node_modules/playwright-core/package.json");
    if !duecall::testkit::needs()
        .tool("node")
        .tool("chromium")
        .file(&module, "playwright-core (npm ci in tests/console)")
        .met()
    {
        return;
    }
    let data = copy_store("console");
    user(&data, "carol", "collector", "carol-password-1");
    user(&data, "quinn", "qa", "quinn-password-1");
    let srv = Serve::start(&data, "");
    let shots = data.parent().expect("scratch").join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let out = Command::new("node")
        .arg(&script)
        .arg(&srv.url)
        .arg(&shots)
        .env("DUECALL_COLLECTOR_PASSWORD", "carol-password-1")
        .env("DUECALL_QA_PASSWORD", "quinn-password-1")
        .current_dir(root.join("tests/console"))
        .output()
        .expect("run node");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the console test failed:\n{text}");
    assert!(text.contains("console test passed"), "{text}");
    for name in ["queue", "case", "qa-player", "dashboard"] {
        let len = std::fs::metadata(shots.join(format!("{name}.png")))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            len > 10_000,
            "screenshot {name}.png was saved ({len} bytes)"
        );
    }
}
