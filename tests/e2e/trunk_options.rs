//! OPTIONS pings to the trunk (`[sip] options_ping_s`): sipp as a trunk
//! that answers them, then goes away; and a campaign whose trunk does not
//! answer, which must store no decision (nothing counts against the caps)
//! and leave every account for a later run.

use std::time::{Duration, Instant};

use duecall::campaign::cli::{run_campaign_with, RunArgs};
use duecall::campaign::{Progress, Shutdown};
use duecall::config::Config;
use duecall::telephony::gateway::Gateway;
use duecall::telephony::sip::SipGateway;

use crate::peers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trunk_is_up_while_it_answers_options_and_down_once_it_stops() {
    let dir = scratch("trunk-options");
    let sipp = Sipp::uas_calls("uas_options.xml", &dir, 1000, &[]);
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e.duecall.test".into();
    cfg.sip.outbound_proxy = Some(format!("127.0.0.1:{}", sipp.port));
    cfg.sip.options_ping_s = 1;
    cfg.validate().expect("valid config");
    // Start-up waits for the first ping's answer.
    let gw = SipGateway::start(cfg).await.expect("gateway");
    assert_eq!(gw.trunk_up(), Some(true), "the first ping was answered");
    assert!(Gateway::ready(&gw));
    assert_eq!(duecall::telephony::sip::trunk_gauge(), Some(true));
    // Pings keep going: sipp sees more of them.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(gw.trunk_up(), Some(true));

    // The trunk goes away: down after two pings in a row go unanswered.
    drop(sipp);
    let gone = Instant::now();
    while gw.trunk_up() != Some(false) {
        assert!(
            gone.elapsed() < Duration::from_secs(15),
            "still up {:?} after the trunk went away",
            gone.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!Gateway::ready(&gw), "no new calls while the trunk is down");
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_whose_trunk_does_not_answer_options_stores_no_decision() {
    let dir = scratch("trunk-options-down");
    // Nothing listens there.
    let dead = free_udp_port();
    let csv = dir.join("accounts.csv");
    std::fs::write(
        &csv,
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         T1,Maria Lopez,+8613800000051,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         T2,Wei Zhang,+8613800000052,100.00,2026-11-15,cn,Asia/Shanghai,en\n",
    )
    .expect("write accounts");
    let config = dir.join("duecall.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\noutbound_proxy = \"127.0.0.1:{dead}\"\noptions_ping_s = 1\nring_timeout_s = 5\n\
             [campaign]\ncalls_per_second = 0\nrecheck_s = 1\n"
        ),
    )
    .expect("write config");
    let data = dir.join("data");
    // Half a minute of campaign clock: long enough that, without the
    // pings, both accounts would be dialled (and their dials fail at once
    // on the closed port, each stored and counted).
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("test time");
    let args = RunArgs::new(csv, config, data.clone())
        .now(at("2026-11-20T10:00:00+08:00"))
        .until(at("2026-11-20T10:00:30+08:00"))
        .trunk(format!("127.0.0.1:{dead}"));
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        run_campaign_with(&args, Shutdown::default(), Progress::Quiet),
    )
    .await
    .expect("the run ends at --until")
    .expect("the run runs");
    assert_eq!(summary.scheduler.dials, 0, "{:?}", summary.scheduler);
    assert_eq!(summary.scheduler.remaining, 2, "{:?}", summary.scheduler);
    assert!(
        attempts(&data).is_empty(),
        "a decision stored while the trunk was down: {:?}",
        attempts(&data)
    );
}
