//! Compliance end to end: campaigns and manual calls against simulated
//! debtors (real SIP/RTP, real recognizer) who dispute, ask for a person
//! and say they paid; later runs (`--now` days later, inside the robot
//! window) must dial exactly the accounts the rules allow, and the store
//! shows why for each. `duecall call --account` goes through the same gate.

use std::path::{Path, PathBuf};
use std::process::Command;

use duecall::campaign::cli::{run_campaign_with, RunArgs};
use duecall::campaign::{Progress, Shutdown};
use duecall::policy::HoldKind;
use duecall::sim::{PersonaBook, SimConfig};
use duecall::store::{AttemptRecord, EscalationStatus};

use crate::peers::*;

fn at(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).expect("test time")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write test file");
    p
}

pub(crate) async fn sim() -> duecall::sim::SimCallee {
    let mut personas = PersonaBook::builtin();
    personas
        .load_file(&root().join("prompts/sim.toml"))
        .expect("prompts/sim.toml parses");
    duecall::sim::start(SimConfig {
        seed: Some(19),
        personas,
        ..SimConfig::default()
    })
    .await
    .expect("simulated debtors start")
}

async fn run(
    backend: &Backend,
    csv: &Path,
    config: &Path,
    data: &Path,
    now: &str,
    until: &str,
) -> usize {
    let a = RunArgs::new(csv.to_path_buf(), config.to_path_buf(), data.to_path_buf())
        .now(at(now))
        .until(at(until))
        .store(backend.url());
    let s = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        run_campaign_with(&a, Shutdown::default(), Progress::Quiet),
    )
    .await
    .expect("the run ends")
    .expect("the run runs");
    s.attempts.len()
}

/// The accounts file and the config of a campaign in Los Angeles (us, en),
/// each account dialling the simulated debtor `persona` (tagged with its id):
/// rows of (account_id, phone, due_date, persona). `head` goes before the
/// `[campaign]` table (e.g. a `[policy.us]` table); `campaign` into it.
fn campaign_files(
    dir: &Path,
    sim: &duecall::sim::SimCallee,
    head: &str,
    campaign: &str,
    rows: &[(&str, &str, &str, &str)],
) -> (PathBuf, PathBuf) {
    let mut csv =
        String::from("account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n");
    let mut uris = String::new();
    for (id, phone, due, persona) in rows {
        csv.push_str(&format!(
            "{id},Maria Lopez,{phone},125.50,{due},us,America/Los_Angeles,en\n"
        ));
        uris.push_str(&format!(
            "{id} = \"{}\"\n",
            sim.uri_for_tagged(persona, &id.to_lowercase())
        ));
    }
    let config = format!(
        "{head}[campaign]\ncalls_per_second = 0\n{campaign}[campaign.dial_uri_by_account]\n{uris}"
    );
    (
        write(dir, "accounts.csv", &csv),
        write(dir, "duecall.toml", &config),
    )
}

/// The route stored for `id`'s first attempt.
fn route_of(all: &[AttemptRecord], id: &str) -> duecall::outcome::Route {
    all.iter()
        .find(|a| a.account_id == id)
        .and_then(|a| a.route.clone())
        .unwrap_or_else(|| panic!("{id} has a route: {all:?}"))
}

/// Runs the `duecall` binary on `backend`'s store; returns (success,
/// stdout, stderr).
fn duecall(backend: &Backend, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_duecall"))
        .args(args)
        .args(backend.args())
        .env_remove("DUECALL_STORE")
        .output()
        .expect("run duecall");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `id`'s line of `duecall plan --data-dir --config` at `at` (the gate on the
/// store, as `run` decides).
fn plan_line(
    backend: &Backend,
    csv: &Path,
    config: &Path,
    data: &Path,
    at: &str,
    id: &str,
) -> serde_json::Value {
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let (csv, config, data) = (path(csv), path(config), path(data));
    let (ok, out, err) = duecall(
        backend,
        &[
            "plan",
            &csv,
            "--at",
            at,
            "--data-dir",
            &data,
            "--config",
            &config,
        ],
    );
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("plan JSON line"))
        .find(|l| l["account_id"] == id)
        .unwrap_or_else(|| panic!("{id} planned: {out}"))
}

/// The rules `duecall plan` says failed for `id` at `at` (none: allowed).
fn failed_rules(
    backend: &Backend,
    csv: &Path,
    config: &Path,
    data: &Path,
    at: &str,
    id: &str,
) -> Vec<String> {
    let line = plan_line(backend, csv, config, data, at, id);
    let failed: Vec<String> = line["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["passed"] == false)
        .map(|r| r["rule"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(line["decision"] == "deny", !failed.is_empty(), "{line}");
    failed
}

campaign_test!(async later_runs_dial_exactly_whom_disputes_requests_and_payments_allow);
async fn later_runs_dial_exactly_whom_disputes_requests_and_payments_allow(backend: Backend) {
    let dir = scratch("compliance-campaign");
    let sim = sim().await;
    // Monday 2026-11-23, 10:00 in Los Angeles; due 2026-11-16 (day 7).
    let (csv, config) = campaign_files(
        &dir,
        &sim,
        // No quiet week after a conversation: the holds alone must keep
        // these people from being called.
        "[policy.us]\nquiet_days_after_conversation = 0\n",
        "max_concurrent = 4\nretry_answered_s = 7200\n",
        &[
            ("D1", "+14155550161", "2026-11-16", "dispute"),
            ("R1", "+14155550162", "2026-11-16", "agent"),
            ("P1", "+14155550163", "2026-11-16", "paid"),
            ("P2", "+14155550164", "2026-11-16", "paid"),
        ],
    );
    let data = dir.join("data");
    let dialled = run(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-23T10:00:00-08:00",
        "2026-11-23T10:30:00-08:00",
    )
    .await;
    assert_eq!(dialled, 4, "everyone once on the first day");
    let all = backend.attempts(&data);
    let route = |id: &str| route_of(&all, id);
    assert_eq!(route("D1").reason, "dispute");
    assert_eq!(route("R1").reason, "request_agent");
    assert_eq!(route("P1").reason, "verify-payment");
    assert_eq!(route("P2").reason, "verify-payment");
    let (d1, r1) = backend.with_store(&data, |s| {
        (
            s.account_state("D1").unwrap(),
            s.account_state("R1").unwrap(),
        )
    });
    assert_eq!(d1.holds[0].kind, HoldKind::Dispute);
    assert_eq!(r1.holds[0].kind, HoldKind::Agent);
    // P1's payment arrives; P2's never does.
    let payments = write(
        &dir,
        "payments.csv",
        "account_id,amount,paid_at\nP1,125.50,2026-11-22\n",
    );
    let (ok, out, err) = duecall(
        &backend,
        &[
            "payments",
            payments.to_str().expect("utf-8 path"),
            "--data-dir",
            data.to_str().expect("utf-8 path"),
        ],
    );
    assert!(ok, "{out}{err}");

    // Five days later (Saturday 28th, 10:00; day 12): the verification pauses
    // have ended, the collector's case still holds R1, D1 stays disputed.
    let dialled = run(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-28T10:00:00-08:00",
        "2026-11-28T10:30:00-08:00",
    )
    .await;
    assert_eq!(dialled, 0, "nobody: {:?}", backend.attempts(&data));
    let (q, p1) = backend.with_store(&data, |s| {
        (
            s.escalations(Some(EscalationStatus::Open)).unwrap(),
            s.account_state("P1").unwrap(),
        )
    });
    assert!(
        q.iter()
            .any(|e| e.account_id == "P2" && e.reason == "paid-unverified"),
        "P2's claimed payment goes to a collector: {q:?}"
    );
    assert!(!q
        .iter()
        .any(|e| e.account_id == "P1" && e.reason == "paid-unverified"));
    assert!(p1.suppressions.iter().any(|x| x.reason == "paid"));
    // The store says why for each (plan --data-dir reads it as run does).
    let failed = |id: &str| {
        failed_rules(
            &backend,
            &csv,
            &config,
            &data,
            "2026-11-28T10:05:00-08:00",
            id,
        )
    };
    assert!(failed("D1").contains(&"hold".to_string()));
    assert!(failed("R1").contains(&"hold".to_string()));
    assert!(failed("P1").contains(&"suppression".to_string()));
    assert!(failed("P2").contains(&"hold".to_string()));

    // R1's collector closes the case: R1 may be called again; nobody else.
    backend.with_store(&data, |w| {
        for e in w.escalations(None).unwrap() {
            if e.account_id == "R1" {
                w.close_escalation(e.id, chrono::Utc::now()).unwrap();
            }
        }
    });
    let before = backend.attempts(&data).len();
    let dialled = run(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-28T11:00:00-08:00",
        "2026-11-28T11:20:00-08:00",
    )
    .await;
    let after = backend.attempts(&data);
    sim.shutdown();
    assert_eq!(dialled, 1, "{:?}", &after[before..]);
    assert_eq!(after[before].account_id, "R1");
}

campaign_test!(async call_me_after_six_stands_on_later_days_a_one_off_time_does_not);
async fn call_me_after_six_stands_on_later_days_a_one_off_time_does_not(backend: Backend) {
    let dir = scratch("compliance-asked-hours");
    let sim = sim().await;
    // Monday 2026-11-23, 10:00 in Los Angeles; due 2026-11-16 (day 7).
    let (csv, config) = campaign_files(
        &dir,
        &sim,
        "[policy.us]\nquiet_days_after_conversation = 0\n",
        "max_concurrent = 2\nretry_answered_s = 7200\n",
        &[
            ("A1", "+14155550171", "2026-11-16", "after_six"),
            ("C1", "+14155550172", "2026-11-16", "callback"),
        ],
    );
    let data = dir.join("data");
    let dialled = run(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-23T10:00:00-08:00",
        "2026-11-23T10:30:00-08:00",
    )
    .await;
    assert_eq!(dialled, 2, "both once on the first day");
    let all = backend.attempts(&data);
    let route = |id: &str| route_of(&all, id);
    // "Please call me after six": a callback today at 18:00 and standing hours.
    let a1 = route("A1");
    assert_eq!(a1.reason, "callback_later", "{a1:?}");
    assert_eq!(a1.until, Some(at("2026-11-23T18:00:00-08:00")), "{a1:?}");
    assert_eq!(
        a1.hours.map(|h| h.to_string()).as_deref(),
        Some("18:00-24:00")
    );
    // "Call me back tomorrow at three pm": a one-off moment tomorrow (the
    // hour is the recognizer's to hear), no standing hours.
    let c1 = route("C1");
    let c1_day = c1.until.map(|t| {
        t.with_timezone(&chrono_tz::America::Los_Angeles)
            .date_naive()
    });
    assert_eq!(
        c1_day,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 24),
        "{c1:?}"
    );
    assert_eq!(c1.hours, None, "{c1:?}");
    let st = backend.with_store(&data, |s| s.account_state("A1").unwrap());
    assert_eq!(
        st.asked_not_before,
        chrono::NaiveTime::from_hms_opt(18, 0, 0)
    );

    // Wednesday 10:00: A1's hours stand (the callback moment has passed, the
    // hours have not); C1's one-off time has passed and nothing else holds it.
    let failed = failed_rules(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-25T10:05:00-08:00",
        "A1",
    );
    assert_eq!(failed, vec!["asked_hours".to_string()], "A1 at 10:05");
    assert!(failed_rules(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-25T10:05:00-08:00",
        "C1"
    )
    .is_empty());
    let before = backend.attempts(&data).len();
    let dialled = run(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-25T10:00:00-08:00",
        "2026-11-25T10:20:00-08:00",
    )
    .await;
    let after = backend.attempts(&data);
    assert_eq!(dialled, 1, "{:?}", &after[before..]);
    assert_eq!(after[before].account_id, "C1");

    // Wednesday 18:30: inside A1's hours, A1 is called; C1 asked again for
    // tomorrow at three, so not C1.
    assert!(failed_rules(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-25T18:35:00-08:00",
        "A1"
    )
    .is_empty());
    let before = after.len();
    let dialled = run(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-25T18:30:00-08:00",
        "2026-11-25T18:50:00-08:00",
    )
    .await;
    let after = backend.attempts(&data);
    sim.shutdown();
    assert_eq!(dialled, 1, "{:?}", &after[before..]);
    assert_eq!(after[before].account_id, "A1");
}

campaign_test!(async the_do_not_call_list_and_the_end_of_the_robot_stage_keep_the_robot_off);
async fn the_do_not_call_list_and_the_end_of_the_robot_stage_keep_the_robot_off(backend: Backend) {
    let dir = scratch("compliance-dnc-stage");
    let sim = sim().await;
    // Monday 2026-11-23, 10:00 in Los Angeles. N1, N2 and OK1 are on day 7;
    // S1 fell due on 2026-10-01 (day 53, past the last robot day, 15).
    let (csv, config) = campaign_files(
        &dir,
        &sim,
        "",
        "max_concurrent = 4\n",
        &[
            ("N1", "+14155550181", "2026-11-16", "paid"),
            ("N2", "+14155550182", "2026-11-16", "paid"),
            ("S1", "+14155550183", "2026-10-01", "paid"),
            ("OK1", "+14155550184", "2026-11-16", "paid"),
        ],
    );
    let data = dir.join("data");
    let d = data.to_str().expect("utf-8 path");

    // A bad row stops the import, naming its line, and imports nothing.
    let bad = write(
        &dir,
        "bad.csv",
        "phone,account_id,scope,reason\n+14155550181,,number,lender list\n,,number,no target\n",
    );
    let (ok, _, err) = duecall(
        &backend,
        &["suppress", "import", bad.to_str().unwrap(), "--data-dir", d],
    );
    assert!(!ok, "a bad list must be refused");
    assert!(err.contains("line 3"), "names the line: {err}");
    // The lender's list: N1 by number (every account listing it), N2 by account.
    let dnc = write(
        &dir,
        "dnc.csv",
        "phone,account_id,scope,reason\n\
         (415) 555-0181,,number,lender list: asked by letter\n\
         ,N2,account,lender list: attorney represents\n",
    );
    let (ok, out, err) = duecall(
        &backend,
        &["suppress", "import", dnc.to_str().unwrap(), "--data-dir", d],
    );
    assert!(ok, "{out}{err}");
    let (ok, listed, err) = duecall(&backend, &["suppress", "list", "--data-dir", d]);
    assert!(ok, "{err}");
    let listed: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).expect("suppress list JSON line"))
        .collect();
    assert_eq!(listed.len(), 2, "the bad import left nothing: {listed:?}");
    assert!(
        listed.iter().any(|l| l["phone"] == "+14155550181"),
        "{listed:?}"
    );

    let dialled = run(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-23T10:00:00-08:00",
        "2026-11-23T10:20:00-08:00",
    )
    .await;
    let all = backend.attempts(&data);
    assert_eq!(dialled, 1, "only OK1: {all:?}");
    assert_eq!(all[0].account_id, "OK1");
    // The reasons are in each decision.
    let plan = |id: &str| {
        plan_line(
            &backend,
            &csv,
            &config,
            &data,
            "2026-11-23T10:25:00-08:00",
            id,
        )
    };
    for (id, why) in [("N1", "asked by letter"), ("N2", "attorney represents")] {
        let p = plan(id);
        assert_eq!(p["decision"], "deny", "{p}");
        assert!(
            p.to_string().contains(why),
            "{id}'s decision names the list's reason: {p}"
        );
    }
    // S1: to the collectors as stage-ended, once, however many runs.
    let stage_ended = || {
        backend
            .with_store(&data, |s| s.escalations(None).unwrap())
            .into_iter()
            .filter(|e| e.account_id == "S1" && e.reason == "stage-ended")
            .count()
    };
    assert_eq!(stage_ended(), 1);
    let dialled = run(
        &backend,
        &csv,
        &config,
        &data,
        "2026-11-24T10:00:00-08:00",
        "2026-11-24T10:10:00-08:00",
    )
    .await;
    sim.shutdown();
    // OK1 was reached yesterday (the quiet week after a conversation holds it).
    assert_eq!(dialled, 0, "{:?}", backend.attempts(&data));
    assert_eq!(stage_ended(), 1, "stage-ended is queued once per account");
}

campaign_test!(async a_manual_call_goes_through_the_gate_and_counts);
async fn a_manual_call_goes_through_the_gate_and_counts(backend: Backend) {
    let dir = scratch("compliance-call");
    let sim = sim().await;
    let account = write(
        &dir,
        "a.json",
        r#"{"account_id":"M1","name":"Maria Lopez","phone":"+14155550171","amount":"125.50",
            "due_date":"2026-11-16","timezone":"America/Los_Angeles","language":"en","jurisdiction":"us"}"#,
    );
    let data = dir.join("data");
    let call = |uri: &str, now: &str| {
        Command::new(env!("CARGO_BIN_EXE_duecall"))
            .args(["call", uri, "--json", "--now", now, "--out-dir"])
            .arg(dir.join("rec"))
            .arg("--account")
            .arg(&account)
            .arg("--data-dir")
            .arg(&data)
            .args(backend.args())
            .env_remove("DUECALL_STORE")
            .output()
            .expect("duecall call")
    };
    let uri = sim.uri_for_tagged("dispute", "m1");
    // 22:00 in Los Angeles: outside the window; nothing placed, exit 3.
    let out = call(&uri, "2026-11-23T22:00:00-08:00");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["account_id"], "M1");
    assert_eq!(v["policy"]["decision"], "deny");
    assert!(v.get("call").is_none(), "no call object: {v}");
    assert!(v["policy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule"] == "window" && r["passed"] == false));
    // A test clock never dials a real person.
    let out = call(
        "sip:+14155550171@192.0.2.10:5060",
        "2026-11-23T10:00:00-08:00",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        backend.attempts(&data).is_empty(),
        "nothing stored for a call never placed"
    );
    // 10:00: allowed, stored before the INVITE, counted; the dispute holds.
    let out = call(&uri, "2026-11-23T10:00:00-08:00");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = backend.attempts(&data);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].policy["decision"], "allow");
    assert_eq!(
        all[0].route.as_ref().map(|r| r.reason.as_str()),
        Some("dispute")
    );
    let out = call(&uri, "2026-11-24T10:00:00-08:00");
    sim.shutdown();
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        v["policy"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "hold" && r["passed"] == false),
        "{v}"
    );
    assert_eq!(backend.attempts(&data).len(), 1);
}
