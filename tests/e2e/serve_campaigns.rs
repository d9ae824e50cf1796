//! Campaigns through the API and the service running them over simulated
//! days: a campaign is created, fed an accounts CSV and started with the
//! API; `duecall serve` dials the simulated debtors; the service is stopped
//! with SIGTERM and started again at later moments (`--now`): at night
//! nothing is dialled, the next morning the voicemail is tried again while
//! the suppressed and the escalated accounts are not, and a SIGTERM in the
//! middle of a call ends it cleanly (its outcome stored, nothing left in
//! flight).

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::peers::scratch;
use crate::serve_support::*;

/// Monday 2026-12-07 10:00 in New York.
fn day1() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 15, 0, 0).unwrap()
}

fn account(i: usize) -> duecall::account::Account {
    duecall::account::Account {
        account_id: format!("DAYS-{i}"),
        name: format!("Debtor {i}"),
        phone: format!("+1202555{:04}", 300 + i),
        amount: Decimal::new(12_550 + i as i64, 2),
        currency: Some("USD".into()),
        due_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        timezone: Some("America/New_York".into()),
        language: duecall::account::Language::En,
        jurisdiction: Some("us".into()),
        alt_phones: vec![],
        days_past_due: None,
        agent_uri: None,
        caller_id: None,
    }
}

/// Every attempt: (account, state, decided_at).
fn attempts(data: &std::path::Path) -> Vec<(String, String, DateTime<Utc>)> {
    let conn = rusqlite::Connection::open(data.join("duecall.db")).expect("open");
    let mut st = conn
        .prepare("SELECT account_id, state, decided_at FROM attempts ORDER BY id")
        .expect("prepare");
    st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })
    .expect("query")
    .map(|r| {
        let (a, s, t) = r.expect("row");
        (a, s, t.parse().expect("time"))
    })
    .collect()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM, then the exit status.
fn terminate(srv: &mut Serve) -> std::process::ExitStatus {
    let pid = srv.peer.child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = srv.peer.child.try_wait().expect("wait") {
            return s;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_a_campaign_from_the_api_across_simulated_days_within_the_rules() {
    let dir = scratch("serve-days");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let sim = duecall::sim::start(duecall::sim::SimConfig {
        ring_ms: Some(300),
        ..duecall::sim::SimConfig::default()
    })
    .await
    .expect("simulated debtors (run scripts/setup)");
    let personas = ["voicemail", "stop", "hardship"];
    let accounts: Vec<_> = (0..personas.len()).map(account).collect();
    let mut cfg = String::from(
        "[sip]\nring_timeout_s = 8\n[campaign]\nmax_concurrent = 3\ncalls_per_second = 0\nshutdown_grace_s = 30\n[campaign.dial_uri_by_account]\n",
    );
    for (a, p) in accounts.iter().zip(personas) {
        cfg.push_str(&format!("\"{}\" = \"{}\"\n", a.account_id, sim.uri_for(p)));
    }
    let csv_path = dir.join("accounts.csv");
    duecall::campaign::demo::write_accounts_csv(&csv_path, &accounts).expect("csv");
    let csv = std::fs::read_to_string(&csv_path).expect("read csv");
    let admin = token(&data, "admin", "ops");
    let qa = token(&data, "qa", "qa1");
    let c = client();

    // Day 1, 10:00 in New York: the campaign through the API.
    let now1 = day1().to_rfc3339();
    let mut srv = Serve::start_with(&data, &cfg, &["--now", &now1]);
    let r = c
        .post(format!("{}/api/v1/campaigns", srv.url))
        .bearer_auth(&qa)
        .json(&serde_json::json!({"name": "december"}))
        .send()
        .await
        .expect("create as qa");
    assert_eq!(r.status(), 403, "qa may not create campaigns");
    let r = c
        .post(format!("{}/api/v1/campaigns", srv.url))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "december"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let camp = json(r).await;
    assert_eq!(camp["state"], "draft");
    let id = camp["id"].as_i64().expect("id");
    // A file with a bad row changes nothing.
    let bad = format!("{csv}BAD-1,Nobody,not-a-phone,1.00,USD,2026-12-01,America/New_York,en,us\n");
    let r = c
        .post(format!("{}/api/v1/campaigns/{id}/accounts", srv.url))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(bad)
        .send()
        .await
        .expect("bad upload");
    assert_eq!(r.status(), 400);
    let body = json(r).await;
    assert!(
        body["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("csv line")),
        "{body}"
    );
    let r = c
        .post(format!("{}/api/v1/campaigns/{id}/accounts", srv.url))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    let up = json(r).await;
    assert_eq!(up["added"], 3, "{up}");
    assert!(attempts(&data).is_empty(), "a draft dials nobody");
    let r = c
        .post(format!("{}/api/v1/campaigns/{id}/start", srv.url))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["state"], "running");
    wait_for("every account called once and ended", 240, || {
        let a = attempts(&data);
        a.len() == 3 && a.iter().all(|x| x.1 == "ended")
    });
    let status = terminate(&mut srv);
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");

    // Day 2, 21:30 in New York (outside the calling window): the voicemail
    // is due again but nobody is dialled.
    let night = Utc
        .with_ymd_and_hms(2026, 12, 9, 2, 30, 0)
        .unwrap()
        .to_rfc3339();
    let mut srv = Serve::start_with(&data, &cfg, &["--now", &night]);
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(attempts(&data).len(), 3, "nothing dialled at night");
    assert!(terminate(&mut srv).success());

    // Day 3, 09:00 in New York: the voicemail again; not the suppressed
    // debtor, not the one a collector has. SIGTERM while it rings.
    let morning = Utc
        .with_ymd_and_hms(2026, 12, 9, 14, 0, 0)
        .unwrap()
        .to_rfc3339();
    let mut srv = Serve::start_with(&data, &cfg, &["--now", &morning]);
    wait_for("the voicemail dialled again", 120, || {
        attempts(&data).len() >= 4
    });
    let status = terminate(&mut srv);
    assert!(status.success(), "serve exits cleanly mid-call: {status}");
    let all = attempts(&data);
    assert!(
        all.iter().all(|a| a.1 == "ended"),
        "the call in flight ended cleanly, nothing left for crash recovery: {all:?}"
    );
    let second: Vec<&str> = all[3..].iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        second,
        vec!["DAYS-0"],
        "only the voicemail account came back"
    );
    for (acc, _, at) in &all {
        let local = at.with_timezone(&chrono_tz::America::New_York);
        assert!(
            (8..21).contains(&local.hour()),
            "{acc} dialled at {local}, outside 08-21"
        );
    }

    // The API reads the campaign as the service left it.
    let srv = Serve::start_with(&data, &cfg, &["--now", &morning]);
    let list: Value = json(
        c.get(format!("{}/api/v1/campaigns", srv.url))
            .bearer_auth(&qa)
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(list[0]["accounts"], 3);
    assert_eq!(list[0]["state"], "running");
    sim.shutdown();
}
