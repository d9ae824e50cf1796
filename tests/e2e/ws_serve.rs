//! Media streams through `duecall serve` as a real process: `/ws/twilio`
//! and `/ws/asterisk` are mounted on the service's listener, a stream
//! without the secret gets 401 before any upgrade, and with `[gateway]
//! allow_direct_streams = true` a stream carrying its account is put to the
//! compliance gate and conversed on; the attempt, its recording and route
//! are stored in the data directory and show in `GET /api/v1/attempts`.
//! A SIGTERM mid-call: the conversation says its closing line, hangs up,
//! and the service stores the attempt (`cut_short: shutdown`) before it
//! exits.
//!
//! The platform is the bridge (Twilio's Calls API on loopback, dialling
//! the simulated debtor over SIP and streaming the answered call to the
//! service with tokio-tungstenite).

use std::path::Path;
use std::time::{Duration, Instant};

use duecall::outcome::{Disposition, RouteKind};
use duecall::sim::{ByeFrom, PersonaBook, SimConfig};
use duecall::store::{AttemptId, AttemptRecord, AttemptState, Store};
use duecall::telephony::ws::bridge::{Bridge, BridgeConfig};
use tokio_tungstenite::tungstenite;

use crate::peers::*;
use crate::serve_support::{client, json, start_campaign, token, Serve};
use crate::ws_conversation::{test_log, SECRET};

/// 10:00 in Los Angeles, a Monday: inside the calling hours.
const NOW: &str = "2026-11-23T18:00:00Z";

fn account(id: &str, phone: &str) -> Vec<(&'static str, String)> {
    vec![
        ("account_id", id.to_string()),
        ("name", "Maria Lopez".into()),
        ("phone", phone.to_string()),
        ("amount", "125.50".into()),
        ("currency", "USD".into()),
        ("due_date", "2026-11-16".into()),
        ("timezone", "America/Los_Angeles".into()),
        ("language", "en".into()),
    ]
}

/// `<Connect><Stream>` to `url` with the account as its parameters.
fn twiml(url: &str, params: &[(&str, String)]) -> String {
    let params: String = params
        .iter()
        .map(|(k, v)| format!("<Parameter name=\"{k}\" value=\"{v}\"/>"))
        .collect();
    format!(
        "<Response><Connect><Stream url=\"{}\">{params}</Stream></Connect></Response>",
        url.replace('&', "&amp;")
    )
}

/// Asks the platform to call `to` and stream the call to `stream_url`.
async fn place(bridge: &Bridge, to: String, stream_url: &str, params: &[(&str, String)]) {
    let resp = client()
        .post(format!("{}/Calls.json", bridge.twilio_base("AC1")))
        .form(&[
            ("To", to),
            ("From", "+14155550100".to_string()),
            ("Twiml", twiml(stream_url, params)),
        ])
        .send()
        .await
        .expect("the platform takes the call");
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
}

/// Attempt `id` once it has ended in the store.
async fn ended_attempt(data: &Path, id: i64, srv: &Serve) -> AttemptRecord {
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        if let Ok(s) = Store::open_existing(data) {
            if let Ok(Some(a)) = s.attempt(AttemptId(id)) {
                if a.ended_at.is_some() {
                    return a;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "attempt {id} did not end in the store:\n{}",
            std::fs::read_to_string(&srv.peer.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_mounts_the_stream_routes_runs_direct_streams_through_the_gate_and_ends_them_politely_on_sigterm(
) {
    test_log();
    let dir = scratch("ws-serve");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let mut personas = PersonaBook::builtin();
    personas.insert(crate::campaign::listener());
    let sim = duecall::sim::start(SimConfig {
        seed: Some(5),
        personas,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let config = format!(
        "[gateway]\nstream_secret = \"{SECRET}\"\nallow_direct_streams = true\n\
         [campaign]\nshutdown_grace_s = 30\n"
    );
    let mut srv = Serve::start_with(&data, &config, &["--now", NOW]);
    let addr = srv.addr();

    // No secret, a wrong one: 401 before any upgrade, on both routes.
    for url in [
        format!("ws://{addr}/ws/twilio"),
        format!("ws://{addr}/ws/twilio?token=not-the-secret-0123456789"),
        format!("ws://{addr}/ws/asterisk"),
    ] {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401, "{url}")
            }
            other => panic!("{url}: expected 401, got {other:?}"),
        }
    }

    // The platform dials the debtor on its own and streams the call to the
    // service with the account: the gate allows, the agent converses.
    let bridge = Bridge::start(BridgeConfig::default())
        .await
        .expect("bridge starts");
    let stream_url = format!("ws://{addr}/ws/twilio?token={SECRET}");
    place(
        &bridge,
        sim.uri_for("paid"),
        &stream_url,
        &account("A-S1", "+14155550171"),
    )
    .await;
    let a = ended_attempt(&data, 1, &srv).await;
    assert_eq!(a.account_id, "A-S1");
    assert_eq!(a.policy["decision"], "allow", "{}", a.policy);
    assert!(a.conversation, "{a:?}");
    assert_eq!(a.disposition, Some(Disposition::Answered));
    let route = a.route.as_ref().expect("a route");
    assert_eq!(route.kind, RouteKind::Pause, "{route:?}");
    let rec = a.recording.as_ref().expect("a recording");
    assert!(
        Path::new(rec).starts_with(data.canonicalize().expect("data dir"))
            && Path::new(rec).is_file(),
        "{rec}"
    );

    // The API shows it as any attempt.
    let qa = token(&data, "qa", "qa-reader");
    let list = json(
        client()
            .get(format!("{}/api/v1/attempts?account_id=A-S1", srv.url))
            .bearer_auth(&qa)
            .send()
            .await
            .expect("attempts"),
    )
    .await;
    let rows = list.as_array().expect("a list");
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["id"], 1, "{list}");
    assert_eq!(rows[0]["route"], "pause", "{list}");

    // A second debtor listens in silence after the reminder; SIGTERM then.
    place(
        &bridge,
        sim.uri_for("listener"),
        &stream_url,
        &account("A-S2", "+14155550172"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(150);
    let heard_before = loop {
        assert!(
            Instant::now() < deadline,
            "the call never reached the reply: {:?}\n{}",
            sim.records(),
            std::fs::read_to_string(&srv.peer.log).unwrap_or_default()
        );
        let rec = sim.records().into_iter().find(|r| r.persona == "listener");
        if let Some(r) = rec {
            if let Some(line) = r.lines_said.iter().find(|l| l.text == "Yes, speaking.") {
                let reminded = r.prompts.iter().any(|p| p.start_ms > line.end_ms);
                let quiet = r.prompts.iter().all(|p| p.end_ms.is_some());
                if reminded && quiet && !r.ended {
                    break r.prompts.len();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let log = srv.stop_with_sigterm();

    let r = sim
        .take_ended(
            &sim.records()
                .into_iter()
                .find(|r| r.persona == "listener")
                .expect("the listener's record")
                .call_id,
            Duration::from_secs(10),
        )
        .await
        .expect("the listener's call ended");
    assert_eq!(r.bye_from, Some(ByeFrom::Caller), "{r:?}");
    assert_eq!(
        r.prompts.len(),
        heard_before + 1,
        "one prompt after SIGTERM, the closing line: {r:?}"
    );
    let closing = r.prompts.last().expect("closing heard");
    assert!(closing.end_ms.is_some(), "heard to its end: {r:?}");

    let a = Store::open_existing(&data)
        .expect("store")
        .attempt(AttemptId(2))
        .expect("read")
        .expect("attempt 2 stored");
    assert_eq!(a.account_id, "A-S2");
    assert_eq!(a.state, AttemptState::Ended, "{a:?}\n{log}");
    assert_eq!(a.disposition, Some(Disposition::Answered), "{a:?}");
    let outcome = a.outcome.as_ref().expect("outcome");
    assert_eq!(outcome["cut_short"], "shutdown", "{outcome}");
    let last = outcome["turns"]
        .as_array()
        .and_then(|t| t.last())
        .expect("turns");
    assert_eq!(last["prompt"], "closing", "{outcome}");
    assert_eq!(last["finished"], true, "{outcome}");
    let route = a.route.as_ref().expect("route");
    assert_eq!(
        (route.kind, route.reason.as_str()),
        (RouteKind::Retry, "shutdown")
    );
    bridge.shutdown();
    sim.shutdown();
}

/// Plays a Twilio stream carrying `params` by hand and returns how it was
/// closed (code, reason) and how many media frames came before.
async fn refused_stream(url: &str, params: &[(&str, String)]) -> (u16, String, usize) {
    use futures_util::{SinkExt, StreamExt};
    use tungstenite::Message;
    let (mut sock, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the stream is let in (the secret)");
    let custom: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().into()))
        .collect();
    let start = duecall::telephony::ws::twilio::PlatformFrame::Start(Box::new(
        duecall::telephony::ws::twilio::StartInfo {
            sequence: Some(1),
            stream_sid: "MZR1".into(),
            call_sid: "CAR1".into(),
            account_sid: "AC1".into(),
            custom_parameters: custom,
            encoding: "audio/x-mulaw".into(),
            sample_rate: 8000,
            channels: 1,
            tracks: vec!["inbound".into()],
        },
    ));
    sock.send(Message::Text(
        duecall::telephony::ws::twilio::write_platform(&start, "MZR1").into(),
    ))
    .await
    .expect("start sent");
    let mut media = 0;
    let close = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(m) = sock.next().await {
            match m {
                Ok(Message::Close(Some(c))) => return Some(c),
                Ok(Message::Text(t)) if t.as_str().contains("\"media\"") => media += 1,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the stream is closed in time")
    .expect("a close frame");
    (u16::from(close.code), close.reason.to_string(), media)
}

/// The state of attempt `id` (None: not stored).
fn attempt_of(data: &Path, id: i64) -> Option<AttemptRecord> {
    Store::open_existing(data)
        .ok()
        .and_then(|s| s.attempt(AttemptId(id)).ok().flatten())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_streams_are_gated_and_conversed_while_the_services_campaign_dials_but_not_for_the_account_it_is_ringing(
) {
    test_log();
    let dir = scratch("ws-serve-busy");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    // The campaign's debtor: a phone that rings until duecall gives up
    // (CANCEL), so the campaign has a call in flight the whole time.
    let mut ringing = Sipp::uas("uas_noanswer.xml", &dir);
    let mut personas = PersonaBook::builtin();
    personas.insert(crate::campaign::listener());
    let sim = duecall::sim::start(SimConfig {
        seed: Some(9),
        personas,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let config = format!(
        "[gateway]\nstream_secret = \"{SECRET}\"\nallow_direct_streams = true\n\
         [sip]\nring_timeout_s = 180\n\
         [campaign]\nmax_concurrent = 1\ncalls_per_second = 0\nshutdown_grace_s = 30\n\
         [campaign.dial_uri_by_account]\n\"C-1\" = \"{}\"\n",
        ringing.uri()
    );
    let admin = token(&data, "admin", "ops");
    let mut srv = Serve::start_with(&data, &config, &["--now", NOW]);
    let c = client();

    // A campaign of one account, started through the API.
    let csv = "account_id,name,phone,amount,currency,due_date,timezone,language,jurisdiction\n\
               C-1,Dana Wu,+14155550181,90.00,USD,2026-11-16,America/Los_Angeles,en,us\n";
    start_campaign(&c, &srv.url, &admin, "busy", csv).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let campaign_call = loop {
        match attempt_of(&data, 1) {
            Some(a) if a.state == AttemptState::Dialling => break a,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the campaign never dialled C-1:\n{}",
            std::fs::read_to_string(&srv.peer.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(campaign_call.account_id, "C-1");
    let stream_url = format!("ws://{addr}/ws/twilio?token={SECRET}", addr = srv.addr());

    // The account the campaign is ringing calls in (or its platform
    // streams it): refused, naming the call in flight; nothing played or
    // stored.
    let mut c1 = account("C-1", "+14155550181");
    c1[1].1 = "Dana Wu".into();
    let (code, reason, media) = refused_stream(&stream_url, &c1).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(
        reason.contains("account C-1 or its number has a call in flight"),
        "{reason}"
    );
    assert!(!reason.contains("4155550181"), "no phone number: {reason}");
    assert_eq!(media, 0, "nothing played on a refused stream");
    assert!(attempt_of(&data, 2).is_none(), "a refusal stores nothing");
    // Another debtor's number, the same phone under another account: the
    // number is in flight too.
    let (code, reason, _) = refused_stream(&stream_url, &account("C-9", "+14155550181")).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("call in flight"), "{reason}");
    assert!(attempt_of(&data, 2).is_none(), "a refusal stores nothing");

    // Another debtor's stream while the campaign dials: gated, conversed,
    // stored, in the same process as the campaign's call.
    let bridge = Bridge::start(BridgeConfig::default())
        .await
        .expect("bridge starts");
    place(
        &bridge,
        sim.uri_for("paid"),
        &stream_url,
        &account("A-S3", "+14155550173"),
    )
    .await;
    let a = ended_attempt(&data, 2, &srv).await;
    assert_eq!(a.account_id, "A-S3");
    assert_eq!(a.policy["decision"], "allow", "{}", a.policy);
    assert!(a.conversation, "{a:?}");
    assert_eq!(a.disposition, Some(Disposition::Answered));
    assert_eq!(
        a.route.as_ref().map(|r| r.kind),
        Some(RouteKind::Pause),
        "{a:?}"
    );
    let campaign_call = attempt_of(&data, 1).expect("the campaign's attempt");
    assert_eq!(
        campaign_call.state,
        AttemptState::Dialling,
        "the campaign's call was in flight the whole conversation: {campaign_call:?}"
    );
    assert!(campaign_call.started_at.expect("started") <= a.decided_at);

    // SIGTERM: the ringing call is cancelled and stored, the service exits.
    let log = srv.stop_with_sigterm();
    let campaign_call = attempt_of(&data, 1).expect("the campaign's attempt");
    assert_eq!(
        campaign_call.state,
        AttemptState::Ended,
        "{campaign_call:?}\n{log}"
    );
    assert!(
        ringing.finished_ok(Duration::from_secs(10)),
        "sipp saw the CANCEL: {}",
        ringing.errors()
    );
    bridge.shutdown();
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_campaign_dials_through_the_origination_hook_and_the_call_streams_back_to_the_service(
) {
    test_log();
    let dir = scratch("ws-serve-orig");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let mut personas = PersonaBook::builtin();
    personas.insert(crate::campaign::listener());
    let sim = duecall::sim::start(SimConfig {
        seed: Some(11),
        personas,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let bridge = Bridge::start(BridgeConfig::default())
        .await
        .expect("bridge starts");
    // No [gateway] listen and no stream_url: the platform is told the
    // service's own address, and streams to the routes it mounts.
    let config = format!(
        r#"[gateway]
stream_secret = "{SECRET}"
[campaign]
calls_per_second = 0
shutdown_grace_s = 30
[campaign.dial_uri_by_account]
"O-1" = "{}"
[origination]
url = "{}/Calls.json"
form = {{ To = "{{phone}}", From = "{{caller_id}}", Twiml = "<Response><Connect><Stream url=\"{{stream_url|xml}}\"><Parameter name=\"attempt_id\" value=\"{{attempt_id}}\"/><Parameter name=\"stream_id\" value=\"{{stream_id}}\"/></Stream></Connect></Response>" }}
caller_id = "+14155550100"
answer_timeout_s = 20
"#,
        sim.uri_for("paid"),
        bridge.twilio_base("AC1")
    );
    let admin = token(&data, "admin", "ops");
    let mut srv = Serve::start_with(&data, &config, &["--now", NOW]);
    let c = client();
    let csv = "account_id,name,phone,amount,currency,due_date,timezone,language,jurisdiction\n\
               O-1,Maria Lopez,+14155550191,125.50,USD,2026-11-16,America/Los_Angeles,en,us\n";
    start_campaign(&c, &srv.url, &admin, "streamed", csv).await;

    let a = ended_attempt(&data, 1, &srv).await;
    assert_eq!(a.account_id, "O-1");
    assert_eq!(a.policy["decision"], "allow", "{}", a.policy);
    assert!(a.conversation, "{a:?}");
    assert_eq!(a.disposition, Some(Disposition::Answered), "{a:?}");
    assert_eq!(a.sip_status, None, "no SIP on the service's side: {a:?}");
    assert_eq!(
        a.route.as_ref().map(|r| r.kind),
        Some(RouteKind::Pause),
        "{a:?}"
    );
    // The platform was asked through the hook, for the gate's attempt, and
    // streamed the answered call to the service, which played its prompts
    // (their marks came back).
    let calls = bridge.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0].params.get("attempt_id").map(String::as_str),
        Some("1"),
        "{calls:?}"
    );
    assert!(calls[0].frames_to_duecall > 50, "{calls:?}");
    assert!(calls[0].marks_echoed > 0, "{calls:?}");
    assert_eq!(calls[0].stream_error, None, "{calls:?}");

    srv.stop_with_sigterm();
    bridge.shutdown();
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_campaign_dials_through_ari_and_the_call_streams_back_over_audiosocket() {
    test_log();
    let dir = scratch("ws-serve-audiosocket");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let sim = duecall::sim::start(SimConfig {
        seed: Some(12),
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let bridge = Bridge::start(BridgeConfig::default())
        .await
        .expect("bridge starts");
    // The service's AudioSocket port, named on its command line; the
    // platform's dialplan (`AudioSocket(uuid,host:port)`) points at it.
    let audiosocket: std::net::SocketAddr = format!("127.0.0.1:{}", free_tcp_port())
        .parse()
        .expect("address");
    bridge.set_asterisk(duecall::telephony::ws::bridge::AsteriskMedia::AudioSocket(
        audiosocket,
    ));
    let config = format!(
        r#"[gateway]
stream_secret = "{SECRET}"
[campaign]
calls_per_second = 0
shutdown_grace_s = 30
[campaign.dial_uri_by_account]
"A-1" = "{}"
[origination]
url = "http://{}/ari/channels"
json = {{ endpoint = "PJSIP/{{phone}}", variables = {{ DUECALL_ATTEMPT_ID = "{{attempt_id}}", DUECALL_STREAM_ID = "{{stream_id}}" }} }}
answer_timeout_s = 20
"#,
        sim.uri_for("paid"),
        bridge.addr()
    );
    let admin = token(&data, "admin", "ops");
    let mut srv = Serve::start_with(
        &data,
        &config,
        &["--now", NOW, "--audiosocket", &audiosocket.to_string()],
    );
    let c = client();
    let csv = "account_id,name,phone,amount,currency,due_date,timezone,language,jurisdiction\n\
               A-1,Maria Lopez,+14155550192,125.50,USD,2026-11-16,America/Los_Angeles,en,us\n";
    start_campaign(&c, &srv.url, &admin, "audiosocket", csv).await;

    let a = ended_attempt(&data, 1, &srv).await;
    assert_eq!(a.account_id, "A-1");
    assert!(a.conversation, "{a:?}");
    assert_eq!(a.disposition, Some(Disposition::Answered), "{a:?}");
    assert_eq!(a.sip_status, None, "no SIP on the service's side: {a:?}");
    assert_eq!(
        a.route.as_ref().map(|r| r.kind),
        Some(RouteKind::Pause),
        "{a:?}"
    );
    // The platform was asked through the hook and streamed the answered
    // call to the service's AudioSocket port, which spoke its prompts.
    let calls = bridge.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].frames_to_duecall > 50, "{calls:?}");
    assert_eq!(calls[0].stream_error, None, "{calls:?}");
    let log = std::fs::read_to_string(&srv.peer.log).unwrap_or_default();
    assert!(log.contains("media streams: AudioSocket"), "{log}");

    srv.stop_with_sigterm();
    bridge.shutdown();
    sim.shutdown();
}
