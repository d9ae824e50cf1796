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
    mandarin_case(&data);
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
    for name in ["queue", "case", "case-zh", "qa-player", "dashboard"] {
        let len = std::fs::metadata(shots.join(format!("{name}.png")))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            len > 10_000,
            "screenshot {name}.png was saved ({len} bytes)"
        );
    }
}

/// A Mandarin case beside the campaign's English ones, for the rendering
/// check: the campaign's hardship case copied onto account `ZH-01`, named
/// 王伟, language `zh`, its caller's words in Chinese, an hour older (so the
/// queue still lists the English case first). The agent's lines are
/// rendered by the service from `prompts/zh.toml`, as for any zh account.
/// (Mandarin over audio is issue 18's; the simulated debtors' calls are
/// English, so the Chinese words are written here, not heard.)
fn mandarin_case(data: &Path) {
    let conn = rusqlite::Connection::open(data.join("duecall.db")).expect("open store");
    let (account, transcript, created): (String, String, String) = conn
        .query_row(
            "SELECT account_id, transcript, created_at FROM escalations \
             WHERE intent = 'hardship' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the campaign left a hardship case");
    conn.execute(
        "INSERT INTO accounts (account_id, name, phone, amount, currency, due_date, timezone, \
         language, jurisdiction, alt_phones, days_past_due, agent_uri, updated_at) \
         SELECT 'ZH-01', '王伟', phone, amount, 'CNY', due_date, timezone, 'zh', jurisdiction, \
         alt_phones, days_past_due, agent_uri, updated_at FROM accounts WHERE account_id = ?1",
        [&account],
    )
    .expect("the Mandarin account");
    let mut turns: serde_json::Value = serde_json::from_str(&transcript).expect("transcript JSON");
    let words = ["是我。", "我最近失业了，现在还不上。", "好的，谢谢。"];
    let mut n = 0;
    for t in turns.as_array_mut().expect("turns").iter_mut() {
        if t.get("heard").is_some_and(|h| h.is_string()) {
            t["heard"] = words[n.min(words.len() - 1)].into();
            n += 1;
        }
    }
    assert!(
        n >= 2,
        "the hardship case has the caller's words: {transcript}"
    );
    let older = chrono::DateTime::parse_from_rfc3339(&created)
        .map(|t| {
            (t.with_timezone(&chrono::Utc) - chrono::Duration::hours(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .expect("created_at is RFC 3339");
    conn.execute(
        "INSERT INTO escalations (account_id, attempt_id, reason, intent, summary, transcript, \
         recording, created_at) SELECT 'ZH-01', attempt_id, reason, intent, summary, ?1, \
         recording, ?2 FROM escalations WHERE intent = 'hardship' AND account_id = ?3",
        rusqlite::params![turns.to_string(), older, account],
    )
    .expect("the Mandarin case");
}
