//! Several `[[trunk]]` tables: an INVITE that gets 503 (or nothing at all)
//! from the first trunk is retried on the second within the same attempt,
//! the report names the trunks it went through, and a trunk at its
//! `max_concurrent` never carries a second call (a campaign of three puts
//! the others on the next trunk). Peers are sipp UAS on 127.0.0.1, stopped
//! by PID when dropped.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use duecall::campaign::cli::{run_campaign_with, RunArgs};
use duecall::campaign::{Progress, Shutdown};
use duecall::config::Config;
use duecall::outcome::Disposition;
use duecall::telephony::leg::{LegCommand, LegEvent};
use duecall::telephony::report::CallReport;
use duecall::telephony::sip::{DialRequest, SipGateway};

use crate::peers::*;

fn two_trunks(a: u16, b: u16, extra_a: &str) -> Config {
    let text = format!(
        "[sip]\ncallid_suffix = \"e2e.duecall.test\"\nring_timeout_s = 5\n\
         [[trunk]]\nname = \"carrier-a\"\naddress = \"127.0.0.1:{a}\"\npriority = 0\n{extra_a}\n\
         [[trunk]]\nname = \"carrier-b\"\naddress = \"127.0.0.1:{b}\"\npriority = 1\n"
    );
    Config::from_toml(&text, "test").expect("valid config")
}

/// Dials, hangs up once answered, returns the report and how long the
/// answer took.
async fn answered_then_hung_up(gw: &SipGateway) -> (CallReport, Duration) {
    let t0 = Instant::now();
    let mut leg = gw
        .dial(DialRequest::to("sip:debtor@127.0.0.1"))
        .await
        .expect("dial");
    let mut took = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(40), leg.next_event())
            .await
            .expect("an event within 40 s")
            .expect("events until Ended")
        {
            LegEvent::Answered { .. } => {
                took = Some(t0.elapsed());
                leg.send(LegCommand::Hangup).await;
            }
            LegEvent::Ended(r) => return (*r, took.unwrap_or_else(|| t0.elapsed())),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_from_the_first_trunk_is_retried_on_the_second_in_the_same_attempt() {
    let dir = scratch("trunk_failover_503");
    let mut first = Sipp::uas("uas_503.xml", &dir);
    std::fs::write(dir.join("callee.ulaw"), vec![0xFFu8; 8000]).unwrap();
    let second = Sipp::uas_calls("uas_load.xml", &dir, 2, &[]);
    let gw = SipGateway::start(two_trunks(first.port, second.port, ""))
        .await
        .expect("gateway");
    let (r, _) = answered_then_hung_up(&gw).await;
    assert_eq!(r.disposition, Disposition::Answered, "{r:?}");
    assert_eq!(r.trunks, vec!["carrier-a", "carrier-b"], "{r:?}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["trunks"],
        serde_json::json!(["carrier-a", "carrier-b"])
    );
    let ok = tokio::task::spawn_blocking(move || first.finished_ok(Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(ok, "the first trunk got the INVITE and answered 503");
    // carrier-a failed a call: the next call tries carrier-b first.
    let (r, _) = answered_then_hung_up(&gw).await;
    assert_eq!(r.disposition, Disposition::Answered, "{r:?}");
    assert_eq!(r.trunks, vec!["carrier-b"], "the failed trunk goes last");
    assert_eq!(gw.active_dialogs(), 0, "no dialog left behind");
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_that_never_answers_is_passed_over_for_the_next() {
    let dir = scratch("trunk_failover_silent");
    // Bound, so no ICMP error either: it just never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::fs::write(dir.join("callee.ulaw"), vec![0xFFu8; 8000]).unwrap();
    let second = Sipp::uas("uas_load.xml", &dir);
    let gw = SipGateway::start(two_trunks(silent_port, second.port, ""))
        .await
        .expect("gateway");
    let (r, took) = answered_then_hung_up(&gw).await;
    assert_eq!(r.disposition, Disposition::Answered, "{r:?}");
    assert_eq!(r.trunks, vec!["carrier-a", "carrier-b"]);
    // FAILOVER_SILENCE (3 s), not the INVITE's 32 s Timer B.
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    let mut buf = [0u8; 4096];
    silent.set_nonblocking(true).unwrap();
    let (n, _) = silent
        .recv_from(&mut buf)
        .expect("the silent trunk got the INVITE");
    assert!(buf[..n].starts_with(b"INVITE "));
    gw.shutdown();
}

fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write test file");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_at_max_concurrent_one_never_carries_two_calls_of_a_campaign() {
    let dir = scratch("trunk_max_concurrent");
    // Both ring until our CANCEL (ring_timeout_s = 3): the three calls overlap.
    let a = Sipp::uas_calls("uas_noanswer.xml", &dir, 50, &[]);
    let b = Sipp::uas_calls("uas_noanswer.xml", &dir, 50, &[]);
    let csv = write(
        &dir,
        "accounts.csv",
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         M1,Maria Lopez,+8613800000061,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         M2,Wei Zhang,+8613800000062,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         M3,Ana Silva,+8613800000063,100.00,2026-11-15,cn,Asia/Shanghai,en\n",
    );
    let config = write(
        &dir,
        "duecall.toml",
        &format!(
            "[sip]\nring_timeout_s = 3\n\
             [campaign]\ncalls_per_second = 0\nmax_concurrent = 3\nmax_attempts = 1\nrecheck_s = 1\n\
             [[trunk]]\nname = \"capped\"\naddress = \"127.0.0.1:{}\"\npriority = 0\nmax_concurrent = 1\n\
             [[trunk]]\nname = \"spare\"\naddress = \"127.0.0.1:{}\"\npriority = 1\n",
            a.port, b.port
        ),
    );
    let data = dir.join("data");
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("test time");
    let args = RunArgs::new(csv, config, data.clone())
        .now(at("2026-11-20T10:00:00+08:00"))
        .until(at("2026-11-20T10:00:40+08:00"));
    let summary = tokio::time::timeout(
        Duration::from_secs(90),
        run_campaign_with(&args, Shutdown::default(), Progress::Quiet),
    )
    .await
    .expect("the run ends")
    .expect("the run runs");
    assert_eq!(summary.scheduler.dials, 3, "{:?}", summary.scheduler);
    let all = attempts(&data);
    assert_eq!(all.len(), 3);
    let trunks_of = |a: &duecall::store::AttemptRecord| -> Vec<String> {
        a.outcome
            .as_ref()
            .and_then(|o| o["call"]["trunks"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect()
    };
    let on = |name: &str| -> Vec<&duecall::store::AttemptRecord> {
        all.iter().filter(|a| trunks_of(a) == vec![name]).collect()
    };
    let (capped, spare) = (on("capped"), on("spare"));
    assert!(
        all.iter()
            .all(|a| a.disposition == Some(Disposition::NoAnswer)),
        "{:?}",
        all.iter()
            .map(|a| (a.disposition, trunks_of(a)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        capped.len() + spare.len(),
        3,
        "every attempt names its trunk"
    );
    assert!(
        !capped.is_empty(),
        "the first-priority trunk carried a call"
    );
    // No two calls on the capped trunk overlap.
    for (i, x) in capped.iter().enumerate() {
        for y in &capped[i + 1..] {
            let (xs, xe) = (x.started_at.unwrap(), x.ended_at.unwrap());
            let (ys, ye) = (y.started_at.unwrap(), y.ended_at.unwrap());
            assert!(xe <= ys || ye <= xs, "two calls at once on `capped`");
        }
    }
    // The three dials went out together: the cap moved the others on.
    assert!(
        spare.len() >= 2,
        "capped {} spare {}",
        capped.len(),
        spare.len()
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_id_sets_the_from_user_the_asserted_identity_and_privacy() {
    let dir = scratch("trunk_caller_id");
    let mut carrier = Sipp::uas("uas_caller_id.xml", &dir);
    let text = format!(
        "[sip]\ncallid_suffix = \"e2e.duecall.test\"\nring_timeout_s = 5\n\
         [[trunk]]\nname = \"carrier\"\naddress = \"127.0.0.1:{}\"\n\
         caller_id = \"+14155550100\"\npai = true\nprivacy = \"id\"\n",
        carrier.port
    );
    let gw = SipGateway::start(Config::from_toml(&text, "test").expect("valid config"))
        .await
        .expect("gateway");
    // The account's caller ID wins over the trunk's.
    let mut req = DialRequest::to("sip:+8613800000071@127.0.0.1");
    req.caller_id = Some("+14155550199".into());
    let mut leg = gw.dial(req).await.expect("dial");
    let r = tokio::time::timeout(Duration::from_secs(40), leg.wait_end())
        .await
        .expect("ends")
        .expect("report");
    assert_eq!(r.sip_status, Some(486), "{r:?}");
    assert_eq!(r.trunks, vec!["carrier"]);
    let ok = tokio::task::spawn_blocking(move || {
        let ok = carrier.finished_ok(Duration::from_secs(15));
        (ok, carrier.errors())
    })
    .await
    .unwrap();
    assert!(
        ok.0,
        "the carrier saw From, P-Asserted-Identity and Privacy: {}",
        ok.1
    );
    gw.shutdown();
}
