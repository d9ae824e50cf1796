//! Campaigns end to end: the real runner, gate, store and agent dialling
//! sipp callees. Caps and retries against busy/480 callees, the decision
//! stored before the INVITE, and a kill -9 of `duecall run` in the middle of
//! calls followed by a restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use duecall::campaign::cli::{run_campaign_with, RunArgs};
use duecall::campaign::{Progress, Shutdown};
use duecall::outcome::Disposition;
use duecall::store::{AttemptId, AttemptRecord, AttemptState};

use crate::peers::*;

/// 10:00 in Shanghai, five days after the accounts' due date.
const NOW: &str = "2026-11-20T10:00:00+08:00";

fn at(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).expect("test time")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write test file");
    p
}

fn on_number<'a>(all: &'a [AttemptRecord], phone: &str) -> Vec<&'a AttemptRecord> {
    all.iter().filter(|a| a.phone == phone).collect()
}

campaign_test!(async campaign_against_busy_and_unavailable_callees_stops_at_the_daily_cap_per_number);
async fn campaign_against_busy_and_unavailable_callees_stops_at_the_daily_cap_per_number(
    backend: Backend,
) {
    let dir = scratch("campaign-caps");
    let busy = Sipp::uas_calls("uas_486.xml", &dir, 50, &[]);
    let unavailable = Sipp::uas_calls("uas_480.xml", &dir, 50, &[]);
    // C1 and C3 share a number: the cap counts every dial to it.
    let csv = write(
        &dir,
        "accounts.csv",
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         C1,Maria Lopez,+8613800000001,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         C2,Wei Zhang,+8613800000002,250.00,2026-11-15,cn,Asia/Shanghai,en\n\
         C3,Ana Silva,+8613800000001,80.00,2026-11-14,cn,Asia/Shanghai,en\n",
    );
    let config = write(
        &dir,
        "duecall.toml",
        &format!(
            "[sip]\nring_timeout_s = 5\n\
             [campaign]\ncalls_per_second = 0\nmax_concurrent = 2\nretry_busy_s = 1\nretry_no_answer_s = 1\n\
             [campaign.dial_uri_by_account]\nC1 = \"{b}\"\nC2 = \"{u}\"\nC3 = \"{b}\"\n",
            b = busy.uri(),
            u = unavailable.uri()
        ),
    );
    let data = dir.join("data");
    let a = RunArgs::new(csv, config, data.clone())
        .now(at(NOW))
        .until(at("2026-11-20T11:00:00+08:00"))
        .store(backend.url());
    let summary = tokio::time::timeout(
        std::time::Duration::from_secs(180),
        run_campaign_with(&a, Shutdown::default(), Progress::Quiet),
    )
    .await
    .expect("campaign ends within 3 minutes")
    .expect("campaign runs");

    let all = backend.attempts(&data);
    let shared = on_number(&all, "+8613800000001");
    let own = on_number(&all, "+8613800000002");
    assert_eq!(
        shared.len(),
        3,
        "cn: 3 dials a day to one number, across both accounts on it"
    );
    assert_eq!(own.len(), 3, "cn: 3 dials a day to C2's number");
    assert!(shared
        .iter()
        .all(|a| a.disposition == Some(Disposition::Busy) && a.sip_status == Some(486)));
    assert!(own
        .iter()
        .all(|a| a.disposition == Some(Disposition::NoAnswer) && a.sip_status == Some(480)));
    assert!(all.iter().all(|a| a.state == AttemptState::Ended));
    // Retries wait at least the configured delay after the previous call ended.
    for w in own.windows(2) {
        let (prev_end, next) = (w[0].ended_at.expect("ended"), w[1].decided_at);
        assert!(
            next - prev_end >= chrono::Duration::seconds(1),
            "retry at {next}, previous ended {prev_end}"
        );
    }
    // Each dial carries the decision that allowed it, with the cap's figures.
    for (k, a) in own.iter().enumerate() {
        assert_eq!(a.policy["decision"], "allow");
        let cap = a.policy["rules"]
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|r| r["rule"] == "attempts_per_number_per_day")
            })
            .expect("cap rule in the stored decision");
        assert_eq!(cap["figures"]["count"], k as u64, "{cap}");
    }
    assert_eq!(summary.scheduler.dials, 6);
    assert_eq!(
        summary.scheduler.blocked, 3,
        "every account waits for tomorrow, after --until"
    );
    assert_eq!(
        summary.scheduler.by_disposition.get(&Disposition::Busy),
        Some(&3)
    );
    assert_eq!(
        summary.scheduler.by_disposition.get(&Disposition::NoAnswer),
        Some(&3)
    );
    assert_eq!(summary.attempts.len(), 6);
    drop((busy, unavailable));
}

campaign_test!(async decision_is_stored_before_the_invite_and_the_attempt_is_dialling_while_it_rings);
async fn decision_is_stored_before_the_invite_and_the_attempt_is_dialling_while_it_rings(
    backend: Backend,
) {
    let dir = scratch("campaign-decision");
    let ringing = Sipp::uas_calls("uas_noanswer.xml", &dir, 5, &[]);
    // The real clock: a zone where the window is open now, found by the real gate.
    let now = Utc::now();
    let policy = duecall::policy::PolicyConfig::default();
    let zones =
        duecall::campaign::demo::open_zones(&policy, "us", 5, now, chrono::Duration::minutes(5));
    let (tz, due) = zones.first().copied().expect("an open zone at any hour");
    let csv = write(
        &dir,
        "accounts.csv",
        &format!(
            "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\nR1,Maria Lopez,+12025550123,120.50,{due},us,{},en\n",
            tz.name()
        ),
    );
    let config = write(
        &dir,
        "duecall.toml",
        "[sip]\nring_timeout_s = 3\n[campaign]\ncalls_per_second = 0\nretry_no_answer_s = 3600\n",
    );
    let data = dir.join("data");
    let a = RunArgs::new(csv, config, data.clone())
        .trunk(format!("sip:{{phone}}@127.0.0.1:{}", ringing.port))
        .until((now + chrono::Duration::minutes(30)).fixed_offset())
        .store(backend.url());
    let run =
        tokio::spawn(
            async move { run_campaign_with(&a, Shutdown::default(), Progress::Quiet).await },
        );

    // While it rings: the attempt row is there, dialling, with its decision.
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        assert!(Instant::now() < deadline, "no attempt row appeared");
        if backend.stored(&data) {
            if let Some(a) = backend.attempts(&data).into_iter().next() {
                if a.state == AttemptState::Dialling {
                    break a;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(seen.policy["decision"], "allow");
    assert_eq!(seen.policy["number"], "+12025550123");
    assert!(seen.disposition.is_none(), "no outcome while ringing");

    let summary = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("campaign ends within 3 minutes")
        .expect("task")
        .expect("campaign runs");
    let done = backend.attempts(&data);
    assert_eq!(done.len(), 1, "one dial, the retry is after --until");
    let a = &done[0];
    assert_eq!(a.disposition, Some(Disposition::NoAnswer));
    let outcome = a.outcome.as_ref().expect("outcome JSON");
    assert_eq!(
        outcome["policy"], a.policy,
        "the outcome carries the decision behind the dial"
    );
    let invite_left: DateTime<Utc> = outcome["call"]["started_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("started_at");
    assert!(
        a.decided_at <= invite_left,
        "decided {} after the INVITE left {invite_left}",
        a.decided_at
    );
    assert_eq!(
        summary.scheduler.remaining, 1,
        "the retry waits for a later run"
    );
    drop(ringing);
}

/// One second of A-law silence for sipp's rtp_stream.
fn alaw_silence(dir: &Path) {
    std::fs::write(dir.join("callee.alaw"), vec![0xD5u8; 8000]).expect("write callee.alaw");
}

fn spawn_run(
    backend: &Backend,
    dir: &Path,
    csv: &Path,
    config: &Path,
    data: &Path,
    trunk: &str,
    log: &str,
) -> std::process::Child {
    let out = std::fs::File::create(dir.join(format!("{log}.out"))).expect("log");
    let err = std::fs::File::create(dir.join(format!("{log}.err"))).expect("log");
    Command::new(env!("CARGO_BIN_EXE_duecall"))
        .arg("run")
        .arg(csv)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--now",
            NOW,
            "--until",
            "2026-11-20T11:00:00+08:00",
            "--trunk",
            trunk,
        ])
        .args(backend.args())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start duecall run")
}

campaign_test!(killed_campaign_restarts_without_losing_outcomes_or_breaking_caps);
fn killed_campaign_restarts_without_losing_outcomes_or_breaking_caps(backend: Backend) {
    let dir = scratch("campaign-crash");
    alaw_silence(&dir);
    // Answers, sends a second of silence, holds the call 4 s, hangs up.
    let answering = Sipp::uas_calls("uas_hangup.xml", &dir, 20, &[]);
    let busy = Sipp::uas_calls("uas_486.xml", &dir, 20, &[]);
    let csv = write(
        &dir,
        "accounts.csv",
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         K1,Maria Lopez,+8613800000011,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         K2,Wei Zhang,+8613800000012,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         K3,Ana Silva,+8613800000013,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         K4,Li Na,+8613800000014,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         K5,Tom Baker,+8613800000015,100.00,2026-11-15,cn,Asia/Shanghai,en\n",
    );
    let config = write(
        &dir,
        "duecall.toml",
        "[sip]\nring_timeout_s = 5\n\
         [policy.cn]\nattempts_per_number_per_day = 1\n\
         [campaign]\ncalls_per_second = 0\nmax_concurrent = 2\nretry_busy_s = 1\nretry_answered_s = 1\nretry_failed_s = 1\n",
    );
    let data = dir.join("data");
    let rec_dir = data.join("recordings");
    let mut first = spawn_run(
        &backend,
        &dir,
        &csv,
        &config,
        &data,
        &format!("127.0.0.1:{}", answering.port),
        "run1",
    );

    // Wait until two calls ended and the next two are in flight with audio on disk.
    // Generous: on a fresh clone under the whole suite, the first run's
    // prompt renders and decoder loads compete for two cores.
    let deadline = Instant::now() + Duration::from_secs(90);
    let in_flight: Vec<AttemptRecord> = loop {
        if Instant::now() >= deadline {
            let seen: Vec<String> = if backend.stored(&data) {
                backend
                    .attempts(&data)
                    .iter()
                    .map(|a| {
                        format!(
                            "{}#{:?} {:?} {:?} {:?} rec={:?}",
                            a.account_id, a.id, a.state, a.disposition, a.reason, a.recording
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            panic!(
                "campaign never reached two ended and two live calls: {seen:?}\n{}",
                std::fs::read_to_string(dir.join("run1.err")).unwrap_or_default()
            );
        }
        if let Ok(Some(status)) = first.try_wait() {
            panic!(
                "duecall run exited early ({status}): {}",
                std::fs::read_to_string(dir.join("run1.err")).unwrap_or_default()
            );
        }
        if backend.stored(&data) {
            let all = backend.attempts(&data);
            let ended = all
                .iter()
                .filter(|a| a.state == AttemptState::Ended)
                .count();
            let live: Vec<AttemptRecord> = all
                .into_iter()
                .filter(|a| a.state == AttemptState::Dialling)
                .collect();
            let recorded = live.len() == 2
                && live.iter().all(|a| {
                    duecall::campaign::recovery::recordings_of(&rec_dir, &a.account_id, a.id)
                        .first()
                        .and_then(|p| std::fs::metadata(p).ok())
                        .is_some_and(|m| m.len() > 44 + 16_000)
                });
            if ended == 2 && recorded {
                break live;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    first.kill().expect("kill -9");
    let _ = first.wait();

    let before = backend.attempts(&data);
    let ended_before: Vec<(AttemptId, Option<Disposition>, Option<serde_json::Value>)> = before
        .iter()
        .filter(|a| a.state == AttemptState::Ended)
        .map(|a| (a.id, a.disposition, a.outcome.clone()))
        .collect();
    assert_eq!(ended_before.len(), 2);

    // The restart goes to a busy trunk: whatever it may still dial is visible.
    let mut second = spawn_run(
        &backend,
        &dir,
        &csv,
        &config,
        &data,
        &format!("127.0.0.1:{}", busy.port),
        "run2",
    );
    let finished = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Ok(Some(s)) = second.try_wait() {
            break s;
        }
        if Instant::now() > finished {
            let _ = second.kill();
            panic!(
                "restarted campaign did not finish: {}",
                std::fs::read_to_string(dir.join("run2.err")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(dir.join("run2.out")).unwrap_or_default();
    assert!(
        status.success(),
        "{out}{}",
        std::fs::read_to_string(dir.join("run2.err")).unwrap_or_default()
    );
    assert!(out.contains("recovered after a crash: 2 attempts"), "{out}");

    let after = backend.attempts(&data);
    for (id, disposition, outcome) in &ended_before {
        let a = after
            .iter()
            .find(|a| a.id == *id)
            .expect("ended attempt kept");
        assert_eq!(a.state, AttemptState::Ended);
        assert_eq!(&a.disposition, disposition);
        assert_eq!(&a.outcome, outcome, "recorded outcome unchanged");
    }
    for live in &in_flight {
        let a = after
            .iter()
            .find(|a| a.id == live.id)
            .expect("crashed attempt kept");
        assert_eq!(a.state, AttemptState::FailedByCrash);
        assert_eq!(a.disposition, Some(Disposition::Failed));
        assert_eq!(a.reason.as_deref(), Some("crash"));
        let recs = duecall::campaign::recovery::recordings_of(&rec_dir, &a.account_id, a.id);
        assert_eq!(recs.len(), 1, "{recs:?}");
        let mut r = hound::WavReader::open(&recs[0]).expect("repaired recording opens");
        assert_eq!(r.spec().channels, 2);
        // The header now covers the whole file (a checkpointed header lags by up to a second).
        let file_len = std::fs::metadata(&recs[0]).expect("recording").len();
        assert!(
            file_len - u64::from(r.len()) * 2 <= 44 + 4,
            "header says {} samples, file is {file_len} bytes",
            r.len()
        );
        let samples = r.samples::<i16>().filter_map(Result::ok).count();
        // Everything on disk before the kill (at least 16000 bytes of audio) reads back.
        assert!(samples >= 8_000, "{samples} samples readable after repair");
    }
    // One dial per number per day (the cap): the crashed calls count, so
    // only the account never dialled before is dialled after the restart.
    for n in 11..=15 {
        let phone = format!("+86138000000{n}");
        assert_eq!(
            on_number(&after, &phone).len(),
            1,
            "{phone}: {:?}",
            on_number(&after, &phone)
                .iter()
                .map(|a| a.state)
                .collect::<Vec<_>>()
        );
    }
    let k5 = after
        .iter()
        .find(|a| a.account_id == "K5")
        .expect("K5 dialled after the restart");
    assert_eq!(k5.disposition, Some(Disposition::Busy));
    drop((answering, busy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_calls_simulated_debtors_in_a_fresh_directory_and_reports_each_account() {
    use duecall::campaign::demo::{demo, write_report, DemoArgs};
    let base = scratch("campaign-demo");
    // The quick personas: the whole twelve take about two minutes (`duecall demo`).
    let args = DemoArgs {
        dir: Some(base.clone()),
        max_concurrent: 3,
        personas: vec![
            "busy".into(),
            "no_answer".into(),
            "hangup_mid_prompt".into(),
        ],
    };
    let run = tokio::time::timeout(Duration::from_secs(180), demo(&args))
        .await
        .expect("demo ends within 3 minutes")
        .expect("demo runs");
    assert!(run.dir.starts_with(&base) && run.dir.join("duecall.db").is_file());
    assert!(run.dir.join("accounts.csv").is_file() && run.dir.join("duecall.toml").is_file());
    let by_persona = |p: &str| {
        let (a, _) = run
            .accounts
            .iter()
            .find(|(_, q)| q == p)
            .expect("account per persona");
        run.summary
            .attempts
            .iter()
            .find(|r| r.account_id == a.account_id)
            .expect("dialled")
            .clone()
    };
    assert_eq!(by_persona("busy").disposition, Disposition::Busy);
    assert_eq!(by_persona("no_answer").disposition, Disposition::NoAnswer);
    let hung = by_persona("hangup_mid_prompt");
    assert_eq!(hung.disposition, Disposition::Answered);
    assert!(
        hung.recording.as_ref().is_some_and(|p| p.is_file()),
        "answered calls are recorded"
    );
    // Every dial went through the real gate, its decision stored.
    let all = attempts(&run.dir);
    assert_eq!(all.len(), 3);
    assert!(all
        .iter()
        .all(|a| a.policy["decision"] == "allow" && a.state == AttemptState::Ended));
    let mut table = Vec::new();
    write_report(&mut table, &run).expect("report");
    let table = String::from_utf8(table).expect("utf-8");
    for p in ["busy", "no_answer", "hangup_mid_prompt"] {
        assert!(table.contains(p), "{table}");
    }
    assert!(table.contains("database: "), "{table}");
    // The console login it prints works on the demo's store.
    let mut login = Vec::new();
    duecall::web::cli::demo_login(&run.dir, &mut login).expect("demo login");
    let login = String::from_utf8(login).expect("utf-8");
    assert!(
        login.contains(&format!("duecall serve --data-dir {}", run.dir.display())),
        "{login}"
    );
    let password = login
        .split("password ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("a password in {login}"));
    assert_eq!(password.len(), 20, "{login}");
    let (user, hash) = duecall::store::Store::open_existing(&run.dir)
        .expect("demo store")
        .user_with_hash("demo")
        .expect("read user")
        .expect("the demo user exists");
    assert_eq!(user.role.as_str(), "admin");
    assert!(duecall::web::auth::verify_password(password, &hash));
    assert!(!duecall::web::auth::verify_password(
        "not-the-password-1",
        &hash
    ));
}

campaign_test!(async stop_ends_dialling_and_a_call_outlasting_the_grace_period_is_recorded_cancelled);
async fn stop_ends_dialling_and_a_call_outlasting_the_grace_period_is_recorded_cancelled(
    backend: Backend,
) {
    let dir = scratch("campaign-stop");
    std::fs::write(dir.join("callee.ulaw"), vec![0xFFu8; 8000]).expect("write callee.ulaw");
    let holding = Sipp::uas_calls("uas_load.xml", &dir, 5, &[]);
    let csv = write(
        &dir,
        "accounts.csv",
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         S1,Maria Lopez,+8613800000021,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         S2,Wei Zhang,+8613800000022,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         S3,Ana Silva,+8613800000023,100.00,2026-11-15,cn,Asia/Shanghai,en\n",
    );
    let config = write(
        &dir,
        "duecall.toml",
        "[campaign]\ncalls_per_second = 0\nmax_concurrent = 1\nshutdown_grace_s = 2\n",
    );
    let data = dir.join("data");
    let a = RunArgs::new(csv, config, data.clone())
        .now(at(NOW))
        .trunk(format!("127.0.0.1:{}", holding.port))
        .store(backend.url());
    let shutdown = Shutdown::default();
    let stop = shutdown.clone();
    let run = tokio::spawn(async move { run_campaign_with(&a, shutdown, Progress::Quiet).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the first call never started");
        if backend.stored(&data)
            && backend
                .attempts(&data)
                .iter()
                .any(|a| a.state == AttemptState::Dialling)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.stop.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("campaign stops within 3 minutes")
        .expect("task")
        .expect("campaign stops cleanly");
    assert!(summary.interrupted);
    let all = backend.attempts(&data);
    assert_eq!(all.len(), 1, "no dial after the stop");
    assert_eq!(
        all[0].state,
        AttemptState::Ended,
        "the outcome is recorded before the run returns"
    );
    assert_eq!(all[0].disposition, Some(Disposition::Cancelled));
    assert_eq!(all[0].reason.as_deref(), Some("shutdown"));
    assert_eq!(
        summary.scheduler.remaining, 3,
        "S1 waits for a retry, S2 and S3 for a first dial"
    );
    drop(holding);
}

/// A debtor who confirms who they are, hears the reminder, then stays on
/// the line in silence (the agent is listening when the run is stopped).
pub fn listener() -> duecall::sim::persona::Persona {
    use duecall::sim::persona::{Answer, Persona, ReferPolicy, Step};
    Persona {
        name: "listener".into(),
        voice: "en-us".into(),
        answer: Answer::Ring { ring_ms: 300 },
        refer: ReferPolicy::Accept,
        steps: vec![
            Step::Silence(300),
            Step::Say("Hello?".into()),
            Step::WaitPrompt,
            Step::Say("Yes, speaking.".into()),
            Step::WaitPrompt,
        ],
        habits: duecall::sim::persona::Habits::SCRIPTED,
    }
}

campaign_test!(async sigterm_mid_call_says_the_closing_line_hangs_up_and_stores_the_attempt_cut_short);
async fn sigterm_mid_call_says_the_closing_line_hangs_up_and_stores_the_attempt_cut_short(
    backend: Backend,
) {
    let dir = scratch("campaign-sigterm");
    let mut personas = duecall::sim::persona::PersonaBook::builtin();
    personas.insert(listener());
    let sim = duecall::sim::start(duecall::sim::SimConfig {
        personas,
        seed: Some(7),
        ..duecall::sim::SimConfig::default()
    })
    .await
    .expect("simulated debtors start");
    let csv = write(
        &dir,
        "accounts.csv",
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         G1,Maria Lopez,+8613800000031,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         G2,Wei Zhang,+8613800000032,100.00,2026-11-15,cn,Asia/Shanghai,en\n",
    );
    // One call at a time, a grace long enough for the closing line: the
    // call must end by itself, not be cut.
    let config = write(
        &dir,
        "duecall.toml",
        &format!(
            "[campaign]\ncalls_per_second = 0\nmax_concurrent = 1\nshutdown_grace_s = 30\n\
             [campaign.dial_uri_by_account]\nG1 = \"{u}\"\nG2 = \"{u}\"\n",
            u = sim.uri_for("listener")
        ),
    );
    let data = dir.join("data");
    let mut run = spawn_run(&backend, &dir, &csv, &config, &data, "127.0.0.1:9", "run");
    let log = |dir: &Path| {
        format!(
            "{}{}",
            std::fs::read_to_string(dir.join("run.out")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("run.err")).unwrap_or_default()
        )
    };

    // Wait until the debtor confirmed, heard the reminder to its end, and
    // nothing is playing: the agent listens for a reply.
    let deadline = Instant::now() + Duration::from_secs(120);
    let heard_before = loop {
        if let Ok(Some(s)) = run.try_wait() {
            panic!("duecall run exited early ({s}): {}", log(&dir));
        }
        assert!(
            Instant::now() < deadline,
            "the call never reached the reply: {:?}\n{}",
            sim.records(),
            log(&dir)
        );
        let recs = sim.records();
        if let [r] = recs.as_slice() {
            let confirmed = r.lines_said.iter().find(|l| l.text == "Yes, speaking.");
            if let Some(line) = confirmed {
                let reminded = r.prompts.iter().any(|p| p.start_ms > line.end_ms);
                let quiet = r.prompts.iter().all(|p| p.end_ms.is_some());
                if reminded && quiet && !r.ended {
                    break r.prompts.len();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(s)) = run.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = run.kill();
                let _ = run.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("wait for duecall run");
    let status = status.unwrap_or_else(|| panic!("run did not stop on SIGTERM: {}", log(&dir)));
    assert!(status.success(), "{status}: {}", log(&dir));

    // The callee heard one more prompt, to its end, and then our BYE.
    let rec = sim
        .records()
        .into_iter()
        .next()
        .expect("the sim's record of the call");
    assert!(rec.ended, "{rec:?}");
    assert_eq!(
        rec.bye_from,
        Some(duecall::sim::ByeFrom::Caller),
        "duecall hung up: {rec:?}"
    );
    assert_eq!(
        rec.prompts.len(),
        heard_before + 1,
        "one prompt after SIGTERM, the closing line: {rec:?}"
    );
    let closing_heard = rec.prompts.last().expect("closing heard");
    let heard_ms = closing_heard.end_ms.expect("closing heard to its end") - closing_heard.start_ms;

    // The attempt is stored as a conversation cut short by the shutdown,
    // with its closing line played to the end: not cancelled, not crashed.
    let all = backend.attempts(&data);
    assert_eq!(all.len(), 1, "no dial after SIGTERM: {}", log(&dir));
    let a = &all[0];
    assert_eq!(a.state, AttemptState::Ended, "{}", log(&dir));
    assert_eq!(a.disposition, Some(Disposition::Answered), "{a:?}");
    let outcome = a.outcome.as_ref().expect("outcome stored");
    assert_eq!(outcome["cut_short"], "shutdown", "{outcome}");
    let route = a.route.as_ref().expect("route stored");
    assert_eq!(
        (route.kind, route.reason.as_str()),
        (duecall::outcome::RouteKind::Retry, "shutdown"),
        "{route:?}"
    );
    let last = outcome["turns"]
        .as_array()
        .and_then(|t| t.last())
        .expect("turns");
    assert_eq!(last["prompt"], "closing", "{outcome}");
    assert_eq!(last["finished"], true, "{outcome}");
    let played = last["played_ms"].as_u64().expect("played_ms");
    // What the callee heard as voice is the closing line (its trailing
    // silence is not voice): the same length within half a second.
    assert!(
        heard_ms + 1000 >= played && heard_ms <= played + 500,
        "callee heard {heard_ms} ms, the closing line played {played} ms"
    );
    assert!(
        log(&dir).contains("say their closing line and hang up"),
        "{}",
        log(&dir)
    );
    sim.shutdown();
}
