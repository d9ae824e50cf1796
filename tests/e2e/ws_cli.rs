//! The commands over a streaming platform: `duecall call --account` and
//! `duecall run` open their gateway from the config (`gateway::open`), so
//! with `[origination]` set the reminder call goes out through the hook,
//! after the gate's decision as over SIP, and comes back as a stream. The
//! platform is the bridge (Twilio's Calls API, or ARI with AudioSocket on
//! the port `--audiosocket` names); the callee is the simulated debtor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use duecall::campaign::cli::{run_campaign_with, RunArgs};
use duecall::campaign::{Progress, Shutdown};
use duecall::outcome::RouteKind;
use duecall::store::{AttemptId, AttemptRecord, Store};
use duecall::telephony::ws::bridge::{AsteriskMedia, Bridge, BridgeConfig};

use crate::peers::*;
use crate::ws_conversation::{test_log, SECRET};

const AUTH: &str = "Basic QUMwMTIzOnRva2Vu";

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write test file");
    p
}

async fn bridge() -> Bridge {
    Bridge::start(BridgeConfig {
        expect_authorization: Some(AUTH.into()),
        ..BridgeConfig::default()
    })
    .await
    .expect("bridge starts")
}

fn attempt(data: &Path, id: i64) -> AttemptRecord {
    Store::open_existing(data)
        .expect("the data directory's store")
        .attempt(AttemptId(id))
        .expect("read attempt")
        .unwrap_or_else(|| panic!("attempt {id} stored"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_with_an_account_goes_out_through_the_hook_and_streams_back_over_audiosocket() {
    test_log();
    let dir = scratch("ws-cli-call");
    let sim = crate::conversation::start_sim().await;
    let bridge = bridge().await;
    // The port --audiosocket names (free a moment ago), told to the "dialplan".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let audiosocket = format!("127.0.0.1:{port}");
    bridge.set_asterisk(AsteriskMedia::AudioSocket(audiosocket.parse().unwrap()));
    let config = write(
        &dir,
        "duecall.toml",
        &format!(
            r#"[gateway]
listen = "127.0.0.1:0"
stream_secret = "{SECRET}"
[origination]
url = "http://{}/ari/channels"
headers = {{ Authorization = "{AUTH}" }}
json = {{ endpoint = "PJSIP/{{phone}}", variables = {{ DUECALL_ATTEMPT_ID = "{{attempt_id}}", DUECALL_STREAM_ID = "{{stream_id}}" }} }}
answer_timeout_s = 20
"#,
            bridge.addr()
        ),
    );
    let account = write(
        &dir,
        "a.json",
        r#"{"account_id":"W1","name":"Maria Lopez","phone":"+14155550181","amount":"125.50",
            "due_date":"2026-11-16","timezone":"America/Los_Angeles","language":"en","jurisdiction":"us"}"#,
    );
    let data = dir.join("data");
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_duecall"))
            .arg("call")
            .arg(sim.uri_for("paid"))
            .args(["--json", "--now", "2026-11-23T10:00:00-08:00"])
            .arg("--config")
            .arg(&config)
            .arg("--account")
            .arg(&account)
            .arg("--data-dir")
            .arg(&data)
            .arg("--out-dir")
            .arg(dir.join("rec"))
            .args(["--audiosocket", &audiosocket])
            .output(),
    )
    .await
    .expect("duecall call ends")
    .expect("duecall call runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["call"]["disposition"], "answered", "{v}");
    assert!(
        v["call"]["sip_status"].is_null(),
        "no SIP on duecall's side: {v}"
    );
    assert_eq!(v["route"]["kind"], "pause", "{v}");
    // The platform was asked through the hook, for the gate's attempt, and
    // streamed over the AudioSocket port the flag named.
    let calls = bridge.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0]
            .params
            .get("DUECALL_ATTEMPT_ID")
            .map(String::as_str),
        Some("1"),
        "{calls:?}"
    );
    assert!(calls[0].frames_to_duecall > 50, "{calls:?}");
    let a = attempt(&data, 1);
    assert_eq!(a.account_id, "W1");
    assert_eq!(a.policy["decision"], "allow", "{}", a.policy);
    assert_eq!(a.route.map(|r| r.kind), Some(RouteKind::Pause));
    sim.shutdown();
    bridge.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_places_the_campaign_through_the_twilio_hook() {
    test_log();
    let dir = scratch("ws-cli-run");
    let sim = crate::conversation::start_sim().await;
    let bridge = bridge().await;
    let twilio = bridge.twilio_base("AC0123");
    let csv = write(
        &dir,
        "accounts.csv",
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         W2,Maria Lopez,+14155550182,125.50,2026-11-16,us,America/Los_Angeles,en\n",
    );
    let config = write(
        &dir,
        "duecall.toml",
        &format!(
            r#"[campaign]
calls_per_second = 0
[campaign.dial_uri_by_account]
W2 = "{}"
[gateway]
listen = "127.0.0.1:0"
stream_secret = "{SECRET}"
[origination]
url = "{twilio}/Calls.json"
headers = {{ Authorization = "{AUTH}" }}
form = {{ To = "{{phone}}", From = "{{caller_id}}", Twiml = "<Response><Connect><Stream url=\"{{stream_url|xml}}\"><Parameter name=\"attempt_id\" value=\"{{attempt_id}}\"/><Parameter name=\"stream_id\" value=\"{{stream_id}}\"/></Stream></Connect></Response>" }}
caller_id = "+14155550100"
answer_timeout_s = 20
"#,
            sim.uri_for("paid")
        ),
    );
    let data = dir.join("data");
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    let args = RunArgs::new(csv, config, data.clone())
        .until(at("2026-11-23T10:30:00-08:00"))
        .now(at("2026-11-23T10:00:00-08:00"));
    let s = tokio::time::timeout(
        Duration::from_secs(240),
        run_campaign_with(&args, Shutdown::default(), Progress::Quiet),
    )
    .await
    .expect("the run ends")
    .expect("the run runs");
    assert_eq!(s.attempts.len(), 1);
    let calls = bridge.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0].params.get("attempt_id").map(String::as_str),
        Some("1"),
        "{calls:?}"
    );
    assert!(calls[0].marks_echoed > 0, "{calls:?}");
    let a = attempt(&data, 1);
    assert_eq!(a.account_id, "W2");
    assert_eq!(a.policy["decision"], "allow", "{}", a.policy);
    assert!(a.conversation, "{a:?}");
    assert_eq!(a.route.map(|r| r.kind), Some(RouteKind::Pause));
    sim.shutdown();
    bridge.shutdown();
}
