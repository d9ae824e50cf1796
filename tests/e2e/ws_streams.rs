//! The stream endpoints under bad input and broken platforms, through the
//! real listeners: a test plays the platform by hand (a tiny HTTP server
//! takes the origination hook, a WebSocket or TCP client streams back), or
//! the bridge injects faults on a real SIP-backed call. Every case ends with
//! a disposition, a log line and, where audio flowed, the recording kept.

use std::collections::HashMap;
use std::time::Duration;

use duecall::config::Config;
use duecall::outcome::{Disposition, EndedBy, FailReason};
use duecall::telephony::leg::{CallLeg, LegCommand, LegEvent};
use duecall::telephony::report::CallReport;
use duecall::telephony::sip::DialRequest;
use duecall::telephony::ws::audiosocket::{self, Frame};
use duecall::telephony::ws::bridge::Faults;
use duecall::telephony::ws::origination::StreamGateway;
use duecall::telephony::ws::twilio::{self, PlatformFrame, StartInfo};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::peers::*;
use crate::ws_conversation::{bridge_and_gateway, Via, SECRET};

/// A platform's control API that accepts every hook and hands the test the
/// form it was sent (the test then streams by hand).
struct HookCatcher {
    addr: std::net::SocketAddr,
    forms: mpsc::Receiver<HashMap<String, String>>,
}

async fn hook_catcher(status: u16) -> HookCatcher {
    hook_catcher_after(status, Duration::ZERO).await
}

/// A hook catcher that answers `delay` after it has handed the test the
/// form: the hook is still in flight meanwhile.
async fn hook_catcher_after(status: u16, delay: Duration) -> HookCatcher {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text[..i]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            break String::from_utf8_lossy(&buf[i + 4..i + 4 + len]).to_string();
                        }
                    }
                };
                let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
                let _ = tx.send(form).await;
                tokio::time::sleep(delay).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    HookCatcher { addr, forms: rx }
}

fn manual_config(hook: std::net::SocketAddr, gateway_extra: &str) -> Config {
    crate::ws_conversation::test_log();
    let stall = if gateway_extra.contains("stall_timeout_ms") {
        ""
    } else {
        "stall_timeout_ms = 1000"
    };
    let gateway_extra = format!("{stall}\n{gateway_extra}");
    let text = format!(
        r#"[gateway]
listen = "127.0.0.1:0"
audiosocket = "127.0.0.1:0"
stream_secret = "{SECRET}"
mark_grace_ms = 500
{gateway_extra}
[origination]
url = "http://{hook}/calls"
form = {{ To = "{{phone}}", Url = "{{stream_url}}", StreamId = "{{stream_id}}", Attempt = "{{attempt_id}}" }}
answer_timeout_s = 3
"#
    );
    Config::from_toml(&text, "manual").unwrap_or_else(|e| panic!("{e}"))
}

async fn end_of(leg: &mut CallLeg, within: Duration) -> (CallReport, Vec<LegEvent>) {
    let mut seen = Vec::new();
    let end = tokio::time::timeout(within, async {
        while let Some(e) = leg.next_event().await {
            if let LegEvent::Ended(r) = e {
                return Some(*r);
            }
            seen.push(e);
        }
        None
    })
    .await
    .expect("the call ends in time")
    .expect("an Ended event");
    (end, seen)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Dials through the gateway and connects the stream by hand as Twilio.
async fn manual_twilio(gateway_extra: &str) -> (StreamGateway, CallLeg, Ws, String) {
    let mut hook = hook_catcher(201).await;
    let cfg = manual_config(hook.addr, gateway_extra);
    let gw = StreamGateway::start(&cfg).await.unwrap();
    let mut req = DialRequest::to("+14155550167");
    req.attempt_id = Some(11);
    req.record = Some(scratch("ws-manual").join(format!("{}.wav", rand_suffix())));
    let leg = gw.dial(req).await.unwrap();
    let form = tokio::time::timeout(Duration::from_secs(5), hook.forms.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(form["To"], "+14155550167");
    assert_eq!(form["Attempt"], "11");
    assert!(
        form["Url"].ends_with(&format!("/ws/twilio?token={SECRET}")),
        "{form:?}"
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(form["Url"].as_str())
        .await
        .expect("stream connects");
    let sid = "MZ0001".to_string();
    ws.send(Message::Text(
        twilio::write_platform(
            &PlatformFrame::Connected {
                protocol: "Call".into(),
                version: "1.0.0".into(),
            },
            &sid,
        )
        .into(),
    ))
    .await
    .unwrap();
    let mut params = serde_json::Map::new();
    params.insert("attempt_id".into(), "11".into());
    ws.send(Message::Text(
        twilio::write_platform(
            &PlatformFrame::Start(Box::new(StartInfo {
                sequence: Some(1),
                stream_sid: sid.clone(),
                call_sid: "CA0001".into(),
                account_sid: "AC1".into(),
                custom_parameters: params,
                encoding: "audio/x-mulaw".into(),
                sample_rate: 8000,
                channels: 1,
                tracks: vec!["inbound".into()],
            })),
            &sid,
        )
        .into(),
    ))
    .await
    .unwrap();
    (gw, leg, ws, sid)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn media(seq: u64, chunk: u64, value: i16) -> PlatformFrame {
    let mut ulaw = Vec::new();
    duecall::media::g711::encode(duecall::media::g711::Codec::Pcmu, &[value; 160], &mut ulaw);
    PlatformFrame::Media {
        sequence: Some(seq),
        track: Some("inbound".into()),
        chunk: Some(chunk),
        timestamp_ms: Some((chunk - 1) * 20),
        payload: ulaw,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_the_token_get_401_on_loopback_too() {
    let hook = hook_catcher(201).await;
    let gw = StreamGateway::start(&manual_config(hook.addr, ""))
        .await
        .unwrap();
    let base = format!("ws://{}", gw.listen_addr().unwrap());
    for url in [
        format!("{base}/ws/twilio"),
        format!("{base}/ws/twilio?token=wrong-token-0123456789"),
        format!("{base}/ws/asterisk"),
    ] {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 401, "{url}")
            }
            other => panic!("{url}: expected 401, got {:?}", other.map(|_| "a stream")),
        }
    }
    // Bearer works as well as ?token=.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("{base}/ws/twilio"),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {SECRET}").parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(req).await.is_ok(),
        "a Bearer token is accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_loopback_only_when_allowed_and_unknown_attempts_are_refused() {
    let hook = hook_catcher(201).await;
    let text = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nallow_unauthenticated_loopback = true\n[origination]\nurl = \"http://{}/c\"\nform = {{ U = \"{{stream_url}}\" }}\n",
        hook.addr
    );
    let gw = StreamGateway::start(&Config::from_toml(&text, "t").unwrap())
        .await
        .unwrap();
    let url = format!("ws://{}/ws/twilio", gw.listen_addr().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("loopback without a secret is let in");
    let mut params = serde_json::Map::new();
    params.insert("attempt_id".into(), "999".into());
    ws.send(Message::Text(
        twilio::write_platform(
            &PlatformFrame::Start(Box::new(StartInfo {
                sequence: Some(1),
                stream_sid: "MZ9".into(),
                call_sid: "CA9".into(),
                account_sid: "AC".into(),
                custom_parameters: params,
                encoding: "audio/x-mulaw".into(),
                sample_rate: 8000,
                channels: 1,
                tracks: vec!["inbound".into()],
            })),
            "MZ9",
        )
        .into(),
    ))
    .await
    .unwrap();
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(m) = ws.next().await {
            if let Ok(Message::Close(Some(c))) = m {
                return Some(c);
            }
        }
        None
    })
    .await
    .unwrap()
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert!(
        close.reason.contains("allow_direct_streams"),
        "{}",
        close.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_media_reaches_the_agent_in_sequence_and_garbage_is_skipped() {
    let (_gw, mut leg, mut ws, sid) = manual_twilio("").await;
    // Sequence 2..=9 with 4/5 and 7/8 swapped, garbage and an unknown event between.
    let order = [2u64, 3, 5, 4, 6, 8, 7, 9];
    for s in order {
        ws.send(Message::Text(
            twilio::write_platform(&media(s, s - 1, (s as i16) * 1000), &sid).into(),
        ))
        .await
        .unwrap();
        if s == 5 {
            ws.send(Message::Text(
                "{\"event\":\"media\",\"media\":{\"payload\":\"%%%\"}}".into(),
            ))
            .await
            .unwrap();
            ws.send(Message::Text(
                "{\"event\":\"transcription\",\"text\":\"x\"}".into(),
            ))
            .await
            .unwrap();
            ws.send(Message::Binary(vec![1, 2, 3].into()))
                .await
                .unwrap();
        }
    }
    let mut heard = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while heard.len() < 8 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, leg.next_event()).await {
            Ok(Some(LegEvent::Audio {
                pcm,
                received: true,
                ..
            })) => heard.push(((pcm[0] as f64) / 1000.0).round() as i64),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert_eq!(
        heard,
        vec![2, 3, 4, 5, 6, 7, 8, 9],
        "in sequenceNumber order"
    );
    ws.send(Message::Text(
        twilio::write_platform(&PlatformFrame::Stop { sequence: Some(10) }, &sid).into(),
    ))
    .await
    .unwrap();
    let (r, _) = end_of(&mut leg, Duration::from_secs(5)).await;
    assert_eq!(
        r.disposition,
        Disposition::Answered,
        "three bad frames do not end a call: {r:?}"
    );
    assert_eq!(r.ended_by, EndedBy::Them);
    assert_eq!(r.call_id, "CA0001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_finishes_when_its_mark_returns_and_a_clear_cuts_it() {
    let (_gw, mut leg, mut ws, sid) = manual_twilio("stall_timeout_ms = 60000").await;
    leg.send(LegCommand::Play {
        id: "p1".into(),
        pcm: std::sync::Arc::from(vec![3000i16; 160 * 10]),
    })
    .await;
    // Read what duecall sends until its mark.
    let mut frames = 0;
    let mark = loop {
        let m = tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            match twilio::parse_agent(t.as_str()).unwrap() {
                twilio::AgentFrame::Media { payload } => {
                    assert_eq!(payload.len(), 160);
                    frames += 1;
                }
                twilio::AgentFrame::Mark { name } => break name,
                twilio::AgentFrame::Clear => panic!("no clear expected"),
            }
        }
    };
    assert_eq!(frames, 10);
    // Not finished until the mark is echoed.
    let early = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            if let Some(LegEvent::PlayFinished { .. }) = leg.next_event().await {
                return;
            }
        }
    })
    .await;
    assert!(early.is_err(), "finished before its mark came back");
    ws.send(Message::Text(
        twilio::write_platform(
            &PlatformFrame::Mark {
                sequence: Some(2),
                name: mark,
            },
            &sid,
        )
        .into(),
    ))
    .await
    .unwrap();
    let fin = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Some(LegEvent::PlayFinished { id, played_ms, .. }) = leg.next_event().await {
                return (id, played_ms);
            }
        }
    })
    .await
    .expect("finished once the mark returned");
    assert_eq!(fin, ("p1".to_string(), 200));
    // A long prompt, then barge-in: duecall sends clear.
    leg.send(LegCommand::Play {
        id: "p2".into(),
        pcm: std::sync::Arc::from(vec![3000i16; 160 * 200]),
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    leg.send(LegCommand::ClearPlayQueue).await;
    let cleared = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                if let Ok(twilio::AgentFrame::Clear) = twilio::parse_agent(t.as_str()) {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(cleared);
    leg.send(LegCommand::Hangup).await;
    let (r, seen) = end_of(&mut leg, Duration::from_secs(5)).await;
    assert!(seen.iter().any(|e| matches!(e, LegEvent::PlayStopped { id, played_ms, .. } if id == "p2" && *played_ms < 1000)), "{seen:?}");
    assert_eq!(r.ended_by, EndedBy::Us);
    // The socket is closed by duecall (Twilio then hangs up).
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(m) = ws.next().await {
            if matches!(m, Ok(Message::Close(_)) | Err(_)) {
                return true;
            }
        }
        true
    })
    .await
    .unwrap();
    assert!(closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_frame_ends_the_call_failed_network_and_keeps_the_recording() {
    let (_gw, mut leg, mut ws, sid) = manual_twilio("max_frame_bytes = 4096").await;
    for s in 2..60u64 {
        ws.send(Message::Text(
            twilio::write_platform(&media(s, s - 1, 4000), &sid).into(),
        ))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = ws.send(Message::Text("x".repeat(10_000).into())).await;
    let (r, _) = end_of(&mut leg, Duration::from_secs(5)).await;
    assert_eq!(r.disposition, Disposition::Failed, "{r:?}");
    assert_eq!(r.reason, Some(FailReason::Network));
    let rec = r.recording.expect("the recording is kept");
    let (_, ch) = read_channels(&rec);
    assert!(
        loud_ms(&ch[1], 1000.0) >= 600,
        "the callee's audio before the bad frame is in it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_the_platform_refuses_is_failed_and_no_stream_is_no_answer() {
    let hook = hook_catcher(401).await;
    let gw = StreamGateway::start(&manual_config(hook.addr, ""))
        .await
        .unwrap();
    let mut leg = gw.dial(DialRequest::to("+14155550167")).await.unwrap();
    let (r, _) = end_of(&mut leg, Duration::from_secs(5)).await;
    assert_eq!(
        (r.disposition, r.reason),
        (Disposition::Failed, Some(FailReason::Auth))
    );
    let hook = hook_catcher(201).await;
    let gw = StreamGateway::start(&manual_config(hook.addr, ""))
        .await
        .unwrap();
    let mut leg = gw.dial(DialRequest::to("+14155550167")).await.unwrap();
    let (r, seen) = end_of(&mut leg, Duration::from_secs(6)).await;
    assert!(seen.iter().any(|e| matches!(e, LegEvent::Ringing)));
    assert_eq!(
        (r.disposition, r.ended_by),
        (Disposition::NoAnswer, EndedBy::Timeout),
        "{r:?}"
    );
    // The hub forgot the attempt before its end was reported.
    assert_eq!(gw.hub().waiting(), 0, "the attempt stopped waiting");
    // A hang-up before the stream cancels.
    let mut leg = gw.dial(DialRequest::to("+14155550167")).await.unwrap();
    leg.send(LegCommand::Hangup).await;
    let (r, _) = end_of(&mut leg, Duration::from_secs(5)).await;
    assert_eq!(r.disposition, Disposition::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_takes_only_the_uuid_it_issued() {
    let mut hook = hook_catcher(201).await;
    let gw = StreamGateway::start(&manual_config(hook.addr, ""))
        .await
        .unwrap();
    let addr = gw.audiosocket_addr().unwrap();
    // A stranger's UUID: hung up at once.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut b = Vec::new();
    audiosocket::encode(&Frame::Id(*b"0123456789abcdef"), &mut b);
    s.write_all(&b).await.unwrap();
    let mut got = [0u8; 3];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [0x00, 0x00, 0x00], "hang-up frame");
    // The issued one is taken; audio flows both ways; our hang-up ends it.
    let mut leg = gw.dial(DialRequest::to("+14155550167")).await.unwrap();
    let form = hook.forms.recv().await.unwrap();
    let id = audiosocket::parse_uuid(&form["StreamId"]).unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    b.clear();
    audiosocket::encode(&Frame::Id(id), &mut b);
    for _ in 0..25 {
        audiosocket::encode(&Frame::Audio(vec![2500; 160]), &mut b);
    }
    audiosocket::encode(&Frame::Dtmf('7'), &mut b);
    s.write_all(&b).await.unwrap();
    leg.send(LegCommand::Play {
        id: "p".into(),
        pcm: std::sync::Arc::from(vec![1000i16; 160 * 5]),
    })
    .await;
    let mut dtmf = None;
    let mut finished = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while (dtmf.is_none() || !finished) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, leg.next_event()).await {
            Ok(Some(LegEvent::Dtmf { digit, .. })) => dtmf = Some(digit),
            Ok(Some(LegEvent::PlayFinished { .. })) => finished = true,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert_eq!(dtmf, Some('7'));
    assert!(finished, "a paced prompt finishes with its last frame");
    leg.send(LegCommand::Hangup).await;
    let (r, _) = end_of(&mut leg, Duration::from_secs(5)).await;
    assert_eq!(
        (r.disposition, r.ended_by, r.codec.as_deref()),
        (Disposition::Answered, EndedBy::Us, Some("L16"))
    );
    // What duecall sent: five audio frames of the prompt (among silence), then the hang-up.
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut all)).await;
    let mut dec = audiosocket::Decoder::new(4096);
    dec.feed(&all);
    let mut loud = 0;
    let mut last = None;
    while let Ok(Some(f)) = dec.next_frame() {
        if let Frame::Audio(pcm) = &f {
            if pcm[0] == 1000 {
                loud += 1;
            }
        }
        last = Some(f);
    }
    assert_eq!(loud, 5);
    assert_eq!(last, Some(Frame::Hangup));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_queued_while_the_origination_hook_is_in_flight_plays_when_the_stream_connects() {
    // The platform takes 600 ms to answer the hook; the agent queues its
    // opening meanwhile (it was dropped before: CI saw the audiosocket test
    // above lose its prompt when the hook's answer came late).
    let mut hook = hook_catcher_after(201, Duration::from_millis(600)).await;
    let gw = StreamGateway::start(&manual_config(hook.addr, ""))
        .await
        .unwrap();
    let addr = gw.audiosocket_addr().unwrap();
    let mut leg = gw.dial(DialRequest::to("+14155550167")).await.unwrap();
    let form = hook.forms.recv().await.unwrap();
    leg.send(LegCommand::Play {
        id: "opening".into(),
        pcm: std::sync::Arc::from(vec![1000i16; 160 * 5]),
    })
    .await;
    let id = audiosocket::parse_uuid(&form["StreamId"]).unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut b = Vec::new();
    audiosocket::encode(&Frame::Id(id), &mut b);
    s.write_all(&b).await.unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, leg.next_event()).await {
            Ok(Some(LegEvent::Audio { .. })) => {}
            Ok(Some(e)) => {
                let done = matches!(&e, LegEvent::PlayFinished { id, .. } if id == "opening");
                seen.push(format!("{e:?}"));
                if done {
                    break;
                }
            }
            _ => panic!("the early prompt never finished; events: {seen:?}"),
        }
    }
    assert!(
        seen.iter().any(|e| e.starts_with("PlayStarted")),
        "{seen:?}"
    );
    leg.send(LegCommand::Hangup).await;
    let (r, _) = end_of(&mut leg, Duration::from_secs(5)).await;
    assert_eq!(r.disposition, Disposition::Answered, "{r:?}");
}

async fn faulty_call(faults: Faults, via: Via) -> CallReport {
    let sim = duecall::sim::start(duecall::sim::SimConfig {
        seed: Some(3),
        ..Default::default()
    })
    .await
    .expect("sim");
    let (bridge, gw, _) = bridge_and_gateway(
        via,
        "",
        "stall_timeout_ms = 1000\nmark_grace_ms = 500",
        faults,
    )
    .await;
    let mut req = DialRequest::to(sim.uri_for("silent"));
    req.record = Some(scratch("ws-faults").join(format!("{via:?}-{}.wav", rand_suffix())));
    let mut leg = gw.dial(req).await.unwrap();
    leg.send(LegCommand::Play {
        id: "p".into(),
        pcm: std::sync::Arc::from(vec![2000i16; 8000]),
    })
    .await;
    let (r, _) = end_of(&mut leg, Duration::from_secs(20)).await;
    sim.shutdown();
    bridge.shutdown();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_ends_failed_media_timeout_with_the_recording_kept() {
    for via in [Via::Twilio, Via::Asterisk, Via::AudioSocket] {
        let r = faulty_call(
            Faults {
                stall_after_ms: Some(1500),
                ..Faults::default()
            },
            via,
        )
        .await;
        assert_eq!(
            (r.disposition, r.reason, r.ended_by),
            (
                Disposition::Failed,
                Some(FailReason::MediaTimeout),
                EndedBy::Timeout
            ),
            "{via:?}: {r:?}"
        );
        assert!((2300..6000).contains(&r.duration_ms), "{via:?}: {r:?}");
        let (_, ch) = read_channels(r.recording.as_ref().expect("recording kept"));
        assert!(
            ch[0].len() >= 8000 * 2,
            "{via:?}: the recording runs to the stall's end"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_dropped_mid_call_without_goodbye_is_failed_network() {
    let r = faulty_call(
        Faults {
            close_after_ms: Some(1500),
            ..Faults::default()
        },
        Via::Twilio,
    )
    .await;
    assert_eq!(
        (r.disposition, r.reason),
        (Disposition::Failed, Some(FailReason::Network)),
        "{r:?}"
    );
    assert!(r.recording.is_some());
    let r = faulty_call(
        Faults {
            close_after_ms: Some(1500),
            ..Faults::default()
        },
        Via::AudioSocket,
    )
    .await;
    assert_eq!(
        (r.disposition, r.reason),
        (Disposition::Failed, Some(FailReason::Network)),
        "no hang-up frame: {r:?}"
    );
    // chan_websocket hangs up with a close frame (a normal end, as the
    // conversation tests show); a connection that just drops, with no close
    // handshake, is a broken stream there too.
    let r = faulty_call(
        Faults {
            close_after_ms: Some(1500),
            ..Faults::default()
        },
        Via::Asterisk,
    )
    .await;
    assert_eq!(
        (r.disposition, r.reason, r.ended_by),
        (
            Disposition::Failed,
            Some(FailReason::Network),
            EndedBy::Them
        ),
        "no close handshake: {r:?}"
    );
    assert!(r.recording.is_some());
}
