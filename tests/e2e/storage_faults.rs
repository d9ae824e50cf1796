//! Storage faults end to end, on the real binary: `kill -9` at every step of
//! an attempt's life (decided, dialling, ended, stored) and a restart; a
//! "stop calling" heard just before the kill; a database held locked by
//! another connection for longer than the busy timeout; a full disk for
//! recordings; two runs on one data directory. In every case the outcome,
//! or at least its route, reaches the store, and nobody is dialled twice
//! beyond the caps.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use duecall::outcome::{Disposition, RouteKind, SuppressScope};
use duecall::store::AttemptState;

use crate::peers::*;

/// 10:00 in Shanghai, five days after the accounts' due date.
const NOW: &str = "2026-11-20T10:00:00+08:00";
const UNTIL: &str = "2026-11-20T11:00:00+08:00";

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write test file");
    p
}

/// `duecall run` as a child process, its output in `<dir>/<log>.{out,err}`.
/// `store` is `Backend::args()`: `--store URL`, or nothing on SQLite.
fn spawn_run(
    store: &[String],
    dir: &Path,
    data: &Path,
    trunk: &str,
    log: &str,
    pause_at: Option<&str>,
) -> Child {
    let out = std::fs::File::create(dir.join(format!("{log}.out"))).expect("log");
    let err = std::fs::File::create(dir.join(format!("{log}.err"))).expect("log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duecall"));
    cmd.arg("run")
        .arg(dir.join("accounts.csv"))
        .arg("--config")
        .arg(dir.join("duecall.toml"))
        .arg("--data-dir")
        .arg(data)
        .args(["--now", NOW, "--until", UNTIL, "--trunk", trunk])
        .args(store)
        .env_remove("DUECALL_TEST_PAUSE_AT")
        .env_remove("DUECALL_STORE")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    if let Some(step) = pause_at {
        cmd.env("DUECALL_TEST_PAUSE_AT", step);
    }
    cmd.spawn().expect("start duecall run")
}

fn log(dir: &Path, name: &str) -> String {
    format!(
        "{}{}",
        std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap_or_default(),
        std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap_or_default()
    )
}

/// Waits for the child to exit, killing it (and failing) after `secs`.
fn wait_exit(child: &mut Child, secs: u64, dir: &Path, name: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish in {secs} s:\n{}", log(dir, name));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the test hook's marker, then kills the run with SIGKILL.
fn kill_when_paused(child: &mut Child, data: &Path, step: &str, dir: &Path, name: &str) -> i64 {
    let marker = data.join(format!("paused-at-{step}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(&marker) {
            if let Ok(id) = text.trim().parse::<i64>() {
                child.kill().expect("kill -9");
                let _ = child.wait();
                return id;
            }
        }
        if let Ok(Some(s)) = child.try_wait() {
            panic!(
                "{name} exited ({s}) before pausing at {step}:\n{}",
                log(dir, name)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} never paused at {step}:\n{}", log(dir, name));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn accounts_csv(dir: &Path, rows: &[(&str, &str)]) {
    let mut s =
        String::from("account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n");
    for (id, phone) in rows {
        s.push_str(&format!(
            "{id},Maria Lopez,{phone},100.00,2026-11-15,cn,Asia/Shanghai,en\n"
        ));
    }
    write(dir, "accounts.csv", &s);
}

campaign_test!(kill_9_at_every_step_of_an_attempt_loses_no_outcome_and_breaks_no_cap);
fn kill_9_at_every_step_of_an_attempt_loses_no_outcome_and_breaks_no_cap(backend: Backend) {
    // One dial per number per day: whatever the restart does is visible.
    let config = "[sip]\nring_timeout_s = 5\n[policy.cn]\nattempts_per_number_per_day = 1\n\
                  [campaign]\ncalls_per_second = 0\nretry_busy_s = 1\nrecheck_s = 1\n";
    for step in ["decided", "dialling", "ended", "stored"] {
        let dir = scratch(&format!("kill-at-{step}"));
        // A store of its own for each step, as the data directory is.
        let backend = backend.fresh(step);
        let busy = Sipp::uas_calls("uas_486.xml", &dir, 10, &[]);
        accounts_csv(&dir, &[("K1", "+8613800000031")]);
        write(&dir, "duecall.toml", config);
        let data = dir.join("data");
        let trunk = format!("127.0.0.1:{}", busy.port);
        let mut first = spawn_run(&backend.args(), &dir, &data, &trunk, "run1", Some(step));
        let id = kill_when_paused(&mut first, &data, step, &dir, "run1");

        let before = backend.attempts(&data);
        assert_eq!(
            before.len(),
            1,
            "{step}: the decision is stored before anything else"
        );
        let a = &before[0];
        assert_eq!(a.id.0, id);
        assert_eq!(a.policy["decision"], "allow", "{step}");
        match step {
            "decided" => assert_eq!(a.state, AttemptState::Decided),
            "stored" => assert_eq!(a.state, AttemptState::Ended),
            _ => assert_eq!(a.state, AttemptState::Dialling, "{step}"),
        }

        let mut second = spawn_run(&backend.args(), &dir, &data, &trunk, "run2", None);
        let status = wait_exit(&mut second, 60, &dir, "run2");
        assert!(status.success(), "{step}: {}", log(&dir, "run2"));
        let after = backend.attempts(&data);
        assert_eq!(
            after.len(),
            1,
            "{step}: the killed attempt counts; the cap of 1 a day holds across the restart: {}",
            log(&dir, "run2")
        );
        let a = &after[0];
        match step {
            "ended" | "stored" => {
                // The call ended: its outcome is the store's, from the
                // database or imported from the copy kept ahead of it.
                assert_eq!(a.state, AttemptState::Ended, "{step}");
                assert_eq!(a.disposition, Some(Disposition::Busy), "{step}");
                assert_eq!(a.sip_status, Some(486), "{step}");
                assert!(a.outcome.is_some(), "{step}");
            }
            _ => {
                assert_eq!(a.state, AttemptState::FailedByCrash, "{step}");
                assert_eq!(a.reason.as_deref(), Some("crash"), "{step}");
            }
        }
        if step == "ended" {
            assert!(
                log(&dir, "run2").contains("1 outcomes imported"),
                "{}",
                log(&dir, "run2")
            );
        }
        let pending = data.join("pending");
        assert!(
            !pending.exists() || std::fs::read_dir(&pending).unwrap().next().is_none(),
            "{step}: no copy left once the store has the outcome"
        );
        drop(busy);
    }
}

campaign_test!(async stop_calling_heard_then_kill_9_before_the_database_write_is_never_forgotten);
async fn stop_calling_heard_then_kill_9_before_the_database_write_is_never_forgotten(
    backend: Backend,
) {
    let dir = scratch("kill-stop");
    let sim = duecall::sim::start(duecall::sim::SimConfig {
        seed: Some(11),
        ..duecall::sim::SimConfig::default()
    })
    .await
    .expect("simulated debtors start");
    accounts_csv(&dir, &[("S1", "+8613800000041")]);
    write(
        &dir,
        "duecall.toml",
        &format!(
            "[campaign]\ncalls_per_second = 0\nretry_answered_s = 1\nrecheck_s = 1\n\
             [campaign.dial_uri_by_account]\nS1 = \"{}\"\n",
            sim.uri_for("stop")
        ),
    );
    let data = dir.join("data");
    let (d, dt, b) = (dir.clone(), data.clone(), backend.args());
    let id = tokio::task::spawn_blocking(move || {
        let mut first = spawn_run(&b, &d, &dt, "127.0.0.1:9", "run1", Some("ended"));
        kill_when_paused(&mut first, &dt, "ended", &d, "run1")
    })
    .await
    .expect("first run");
    let before = backend.attempts(&data);
    assert_eq!(
        before[0].state,
        AttemptState::Dialling,
        "killed before the database write"
    );
    assert_eq!(before[0].id.0, id);

    let (d, dt, b) = (dir.clone(), data.clone(), backend.args());
    let status = tokio::task::spawn_blocking(move || {
        let mut second = spawn_run(&b, &d, &dt, "127.0.0.1:9", "run2", None);
        wait_exit(&mut second, 120, &d, "run2")
    })
    .await
    .expect("second run");
    sim.shutdown();
    assert!(status.success(), "{}", log(&dir, "run2"));
    let after = backend.attempts(&data);
    assert_eq!(after.len(), 1, "not called again: {}", log(&dir, "run2"));
    let a = &after[0];
    assert_eq!(a.state, AttemptState::Ended);
    let route = a.route.as_ref().expect("the route reached the store");
    assert_eq!(route.kind, RouteKind::Suppress, "{route:?}");
    assert_eq!(route.scope, Some(SuppressScope::Account));
    let st = backend.with_store(&data, |s| s.account_state("S1").expect("state"));
    assert!(
        st.suppressions
            .iter()
            .any(|s| s.scope == SuppressScope::Account && s.reason.contains("stop")),
        "stop calling is in force for the gate: {st:?}"
    );
}

#[test]
fn a_database_held_locked_past_the_busy_timeout_loses_no_outcome() {
    let dir = scratch("db-locked");
    let ringing = Sipp::uas_calls("uas_noanswer.xml", &dir, 10, &[]);
    accounts_csv(&dir, &[("L1", "+8613800000051"), ("L2", "+8613800000052")]);
    write(
        &dir,
        "duecall.toml",
        "[sip]\nring_timeout_s = 3\n\
         [campaign]\ncalls_per_second = 0\nmax_concurrent = 1\nretry_no_answer_s = 7200\nrecheck_s = 1\n",
    );
    let data = dir.join("data");
    let trunk = format!("127.0.0.1:{}", ringing.port);
    let mut run = spawn_run(&[], &dir, &data, &trunk, "run", None);
    // While the first call rings, another connection takes the write lock
    // and holds it for 14 s: longer than the store's 10 s busy timeout.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "no call started: {}",
            log(&dir, "run")
        );
        if data.join("duecall.db").exists()
            && attempts(&data)
                .iter()
                .any(|a| a.state == AttemptState::Dialling)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let locker = rusqlite::Connection::open(data.join("duecall.db")).expect("open");
    locker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    std::thread::sleep(Duration::from_secs(14));
    locker.execute_batch("COMMIT").expect("let go");
    drop(locker);

    let status = wait_exit(&mut run, 120, &dir, "run");
    let text = log(&dir, "run");
    assert!(status.success(), "the run goes on after the lock: {text}");
    assert!(text.contains("refused"), "the refusal is reported: {text}");
    let all = attempts(&data);
    assert_eq!(all.len(), 2, "each account dialled once: {text}");
    for a in &all {
        assert_eq!(a.state, AttemptState::Ended, "{}: {text}", a.account_id);
        assert_eq!(a.disposition, Some(Disposition::NoAnswer));
        assert!(a.outcome.is_some());
    }
    assert!(
        std::fs::read_dir(data.join("pending"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true),
        "every kept copy is gone once stored"
    );
    drop(ringing);
}

/// A small tmpfs mounted over a directory, unmounted (by path) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn full(dir: &Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir)
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let t = Tmpfs(dir.to_path_buf());
        // Fill it: nothing more fits.
        let _ = std::fs::write(dir.join("filler"), vec![0u8; 256 * 1024]);
        Some(t)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_for_recordings_still_stores_every_outcome() {
    let dir = scratch("disk-full");
    let data = dir.join("data");
    let root = unsafe { libc::geteuid() } == 0;
    if !duecall::testkit::needs()
        .present(root, "root, to mount a small tmpfs for the recordings")
        .met()
    {
        return;
    }
    let mounted = Tmpfs::full(&data.join("recordings"));
    if !duecall::testkit::needs()
        .present(mounted.is_some(), "mount -t tmpfs")
        .met()
    {
        return;
    }
    std::fs::write(dir.join("callee.alaw"), vec![0xD5u8; 8000]).expect("callee audio");
    let answering = Sipp::uas_calls("uas_hangup.xml", &dir, 10, &[]);
    // The second account's id is too long for any file name.
    let long_id = format!("L{}", "9".repeat(299));
    accounts_csv(
        &dir,
        &[("F1", "+8613800000061"), (&long_id, "+8613800000062")],
    );
    write(
        &dir,
        "duecall.toml",
        "[sip]\nring_timeout_s = 5\n[campaign]\ncalls_per_second = 0\nmax_concurrent = 2\nretry_answered_s = 7200\n",
    );
    let trunk = format!("127.0.0.1:{}", answering.port);
    let mut run = spawn_run(&[], &dir, &data, &trunk, "run", None);
    let status = wait_exit(&mut run, 120, &dir, "run");
    let text = log(&dir, "run");
    assert!(status.success(), "{text}");
    let all = attempts(&data);
    assert_eq!(all.len(), 2, "{text}");
    for a in &all {
        assert_eq!(a.state, AttemptState::Ended, "{}: {text}", a.account_id);
        assert_eq!(
            a.disposition,
            Some(Disposition::Answered),
            "{}: the call itself went on",
            a.account_id
        );
        let o = a.outcome.as_ref().expect("the outcome is in the database");
        assert_eq!(o["call"]["disposition"], "answered");
    }
    assert!(all.iter().any(|a| a.account_id == long_id));
    drop(answering);
    drop(mounted);
}

#[test]
fn a_second_run_on_one_data_directory_is_refused_naming_the_first_ones_pid() {
    let dir = scratch("two-runs");
    let ringing = Sipp::uas_calls("uas_noanswer.xml", &dir, 10, &[]);
    accounts_csv(&dir, &[("T1", "+8613800000071")]);
    write(
        &dir,
        "duecall.toml",
        "[sip]\nring_timeout_s = 20\n[campaign]\ncalls_per_second = 0\n",
    );
    let data = dir.join("data");
    let trunk = format!("127.0.0.1:{}", ringing.port);
    let mut first = spawn_run(&[], &dir, &data, &trunk, "run1", None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(data.join("duecall.db").exists()
        && attempts(&data)
            .iter()
            .any(|a| a.state == AttemptState::Dialling))
    {
        assert!(Instant::now() < deadline, "{}", log(&dir, "run1"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut second = spawn_run(&[], &dir, &data, &trunk, "run2", None);
    let status = wait_exit(&mut second, 30, &dir, "run2");
    let text = log(&dir, "run2");
    assert!(!status.success());
    assert!(
        text.contains(&format!("in use by another duecall (pid {})", first.id())),
        "{text}"
    );
    let all = attempts(&data);
    assert_eq!(all.len(), 1, "the second run dialled nobody");
    assert_eq!(
        all[0].state,
        AttemptState::Dialling,
        "nor took the first one's live call for a crash"
    );
    // SIGTERM stops the first run gracefully: no new dial, the call in
    // flight ends with a disposition, nothing is left dialling.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut first, 60, &dir, "run1");
    assert!(status.success(), "{}", log(&dir, "run1"));
    let all = attempts(&data);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, AttemptState::Ended, "{}", log(&dir, "run1"));
    assert!(all[0].disposition.is_some());
    drop(ringing);
}
