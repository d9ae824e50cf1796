//! Direct streams (`[gateway] allow_direct_streams = true`): the platform
//! dials on its own and streams the call to duecall with the account in its
//! parameters. duecall never talks about the debt without the compliance
//! gate's allow: the account goes through the same gate as a campaign dial
//! (its decision stored as the attempt before a word is played), and a
//! stream the gate denies is closed with the gate's reason.
//!
//! The platform is the bridge (Twilio's Calls API on loopback, dialling the
//! simulated debtor over SIP and streaming the answered call back); the
//! denied stream is played by hand to read its close frame.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use duecall::account::Language;
use duecall::agent::{Agent, AgentPaths};
use duecall::campaign::owner::DataDirOwner;
use duecall::config::Config;
use duecall::outcome::RouteKind;
use duecall::policy::PolicyConfig;
use duecall::store::{AttemptId, Location, Store};
use duecall::telephony::gateway::{DirectStreams, Gateway};
use duecall::telephony::ws::bridge::{Bridge, BridgeConfig};
use duecall::telephony::ws::direct::DirectRunner;
use duecall::telephony::ws::twilio::{self, PlatformFrame, StartInfo};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::conversation::start_sim;
use crate::peers::*;
use crate::ws_conversation::{test_log, SECRET};

fn now() -> DateTime<Utc> {
    // 10:00 in Los Angeles, a Monday: inside the calling hours.
    "2026-11-23T18:00:00Z".parse().unwrap()
}

/// The account's JSON fields as the platform's stream parameters.
const ACCOUNT: &[(&str, &str)] = &[
    ("account_id", "A-D"),
    ("name", "Maria Lopez"),
    ("phone", "+14155550167"),
    ("amount", "125.50"),
    ("currency", "USD"),
    ("due_date", "2026-11-16"),
    ("timezone", "America/Los_Angeles"),
    ("language", "en"),
];

fn twiml(stream_url: &str) -> String {
    let params: String = ACCOUNT
        .iter()
        .map(|(k, v)| format!("<Parameter name=\"{k}\" value=\"{v}\"/>"))
        .collect();
    format!(
        "<Response><Connect><Stream url=\"{}\">{params}</Stream></Connect></Response>",
        stream_url.replace('&', "&amp;")
    )
}

/// Waits until attempt `id` has ended in the store.
async fn ended_attempt(data: &std::path::Path, id: i64) -> duecall::store::AttemptRecord {
    for _ in 0..300 {
        if let Ok(s) = Store::open(data) {
            if let Ok(Some(a)) = s.attempt(AttemptId(id)) {
                if a.ended_at.is_some() {
                    return a;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("attempt {id} did not end in the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_streams_go_through_the_gate_and_a_denied_one_is_closed_with_its_reason() {
    test_log();
    let dir = scratch("ws-direct");
    let data = dir.join("data");
    let sim = start_sim().await;
    let text = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nstream_secret = \"{SECRET}\"\nallow_direct_streams = true\n"
    );
    let cfg = Config::from_toml(&text, "direct test").unwrap();
    let gw = Arc::new(DirectStreams::start(&cfg).await.expect("gateway starts"));
    let ws = gw.listen_addr().expect("the stream routes listen");
    let hub = gw.stream_hub().expect("a hub").clone();
    let agent = Arc::new(
        Agent::new(
            gw.clone(),
            &cfg,
            &AgentPaths::under(&root()),
            &[Language::En],
        )
        .expect("agent"),
    );
    let runner = Arc::new(DirectRunner {
        agent,
        store: Location::local(&data),
        owner: DataDirOwner::new(
            Location::local(&data),
            Some(dir.clone()),
            chrono::Duration::seconds(30),
            Arc::new(now),
        ),
        record_dir: Some(dir.clone()),
        shared_recordings: None,
        policy: Arc::new(PolicyConfig::default()),
        clock: Arc::new(now),
        hub: hub.clone(),
        shutdown: Default::default(),
        tasks: Default::default(),
    });
    hub.set_direct_handler(runner.handler());

    // The platform dials the debtor on its own and streams the call here.
    let bridge = Bridge::start(BridgeConfig::default())
        .await
        .expect("bridge starts");
    let stream_url = format!("ws://{ws}/ws/twilio?token={SECRET}");
    duecall::crypto::install_crypto();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/Calls.json", bridge.twilio_base("AC1")))
        .form(&[
            ("To", sim.uri_for("paid")),
            ("From", "+14155550100".to_string()),
            ("Twiml", twiml(&stream_url)),
        ])
        .send()
        .await
        .expect("the platform takes the call");
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);

    // The gate's allow is the attempt: stored before the conversation, then
    // its outcome and route, like a SIP attempt.
    let a = ended_attempt(&data, 1).await;
    assert_eq!(a.account_id, "A-D");
    assert_eq!(a.phone, "+14155550167");
    assert_eq!(
        a.policy["decision"], "allow",
        "the gate's decision is stored: {}",
        a.policy
    );
    assert!(a.conversation, "{a:?}");
    let route = a.route.as_ref().expect("a route");
    assert_eq!(route.kind, RouteKind::Pause, "{route:?}");
    let rec = a.recording.as_ref().expect("a recording");
    assert!(std::path::Path::new(rec).is_file(), "{rec}");

    // A second stream for the same account a moment later: the pause the
    // first call left is in the store, so the gate denies, the stream is
    // closed with the reason, and nothing is stored or played.
    let (mut sock, _) = tokio_tungstenite::connect_async(stream_url.as_str())
        .await
        .expect("the stream is let in (the secret)");
    let mut params = serde_json::Map::new();
    for (k, v) in ACCOUNT {
        params.insert(k.to_string(), v.to_string().into());
    }
    sock.send(Message::Text(
        twilio::write_platform(
            &PlatformFrame::Start(Box::new(StartInfo {
                sequence: Some(1),
                stream_sid: "MZD2".into(),
                call_sid: "CAD2".into(),
                account_sid: "AC1".into(),
                custom_parameters: params,
                encoding: "audio/x-mulaw".into(),
                sample_rate: 8000,
                channels: 1,
                tracks: vec!["inbound".into()],
            })),
            "MZD2",
        )
        .into(),
    ))
    .await
    .unwrap();
    let mut media_out = 0;
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = sock.next().await {
            match m {
                Ok(Message::Close(Some(c))) => return Some(c),
                Ok(Message::Text(t)) if t.as_str().contains("\"media\"") => media_out += 1,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the stream is closed in time")
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert!(
        close.reason.contains("compliance gate denies account A-D"),
        "{}",
        close.reason
    );
    assert!(
        !close.reason.contains("4155550167"),
        "no phone number in the reason"
    );
    assert_eq!(media_out, 0, "nothing was played on a denied stream");
    let s = Store::open(&data).unwrap();
    assert!(
        s.attempt(AttemptId(2)).unwrap().is_none(),
        "a deny stores no attempt"
    );
    sim.shutdown();
    bridge.shutdown();
    gw.shutdown();
}
