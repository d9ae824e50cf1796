//! A hostile or broken network (issue 16): strangers spraying the RTP port,
//! sequence jumps, floods, DTMF storms, odd packet sizes, codec changes and
//! long holds by re-INVITE, callees that never answer a BYE, legs dropped
//! by their driver, requests from outside any call, a stalled disk. Each
//! test runs real duecall signalling and media against sipp (signalling)
//! and the scripted RTP peer of `rtp_peer.rs` on 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use duecall::config::Config;
use duecall::outcome::{Disposition, EndedBy};
use duecall::telephony::leg::{CallLeg, LegCommand, LegEvent};
use duecall::telephony::report::CallReport;
use duecall::telephony::sip::{DialRequest, SipGateway};

use crate::peers::*;
use crate::rtp_peer::{rms, spray, tone, tone_share, Plan, RtpPeer};

const SIPP_DONE: Duration = Duration::from_secs(15);

async fn gateway_with(f: impl FnOnce(&mut Config)) -> SipGateway {
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e.duecall.test".into();
    f(&mut cfg);
    SipGateway::start(cfg).await.expect("gateway starts")
}

/// sipp answering with an SDP that points at `peer` (ptime `ptime`).
fn sipp_for(peer: &RtpPeer, ptime: u32, tag: &str) -> Sipp {
    let dir = scratch(tag);
    Sipp::uas_calls(
        "uas_media_peer.xml",
        &dir,
        1,
        &[
            "-key",
            "peer_port",
            &peer.port.to_string(),
            "-key",
            "peer_ptime",
            &ptime.to_string(),
        ],
    )
}

/// One received audio frame as the driver saw it.
struct Frame {
    received: bool,
    pcm: [i16; 160],
}

/// What a driver saw of a call.
#[derive(Default)]
struct Seen {
    frames: Vec<Frame>,
    digits: String,
    play_started: Option<Instant>,
    play_finished: Option<(Instant, u64)>,
    answered: Option<Instant>,
}

impl Seen {
    /// The received audio, frame by frame, from the answer on.
    fn received_pcm(&self) -> Vec<i16> {
        self.frames
            .iter()
            .filter(|f| f.received)
            .flat_map(|f| f.pcm)
            .collect()
    }
}

/// Drives a call: runs `on_answer` commands at the answer, hangs up after
/// `hold`, collects what the driver sees.
async fn drive(mut leg: CallLeg, on_answer: Vec<LegCommand>, hold: Duration) -> (Seen, CallReport) {
    let mut seen = Seen::default();
    let mut hangup_at: Option<tokio::time::Instant> = None;
    let report = loop {
        let timeout =
            hangup_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(60));
        tokio::select! {
            ev = leg.next_event() => match ev.expect("events until Ended") {
                LegEvent::Answered { .. } => {
                    seen.answered = Some(Instant::now());
                    for c in on_answer.iter().cloned() {
                        leg.send(c).await;
                    }
                    hangup_at = Some(tokio::time::Instant::now() + hold);
                }
                LegEvent::Audio { pcm, received, .. } => seen.frames.push(Frame { received, pcm }),
                LegEvent::Dtmf { digit, .. } => seen.digits.push(digit),
                LegEvent::PlayStarted { .. } => seen.play_started = Some(Instant::now()),
                LegEvent::PlayFinished { played_ms, .. } => seen.play_finished = Some((Instant::now(), played_ms)),
                LegEvent::Ended(r) => break *r,
                _ => {}
            },
            _ = tokio::time::sleep_until(timeout) => {
                leg.send(LegCommand::Hangup).await;
                hangup_at = Some(tokio::time::Instant::now() + Duration::from_secs(60));
            }
        }
    };
    (seen, report)
}

async fn sipp_ok(mut sipp: Sipp) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let ok = sipp.finished_ok(SIPP_DONE);
        (ok, sipp.errors())
    })
    .await
    .unwrap()
}

/// Dials `sipp`, drives the call in a task of its own.
async fn start_call(
    gw: &SipGateway,
    sipp: &Sipp,
    on_answer: Vec<LegCommand>,
    hold: Duration,
) -> tokio::task::JoinHandle<(Seen, CallReport)> {
    let leg = gw.dial(DialRequest::to(sipp.uri())).await.expect("dial");
    tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(90), drive(leg, on_answer, hold))
            .await
            .expect("the call ends")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_spraying_our_rtp_port_gets_nothing_and_is_never_heard() {
    let peer = RtpPeer::bind();
    let sipp = sipp_for(&peer, 20, "stranger");
    let run = peer.run(Plan {
        audio: tone(400.0, 4000, 6000.0),
        run_for: Duration::from_secs(5),
        ..Plan::default()
    });
    let gw = gateway_with(|_| {}).await;
    let prompt: Arc<[i16]> = tone(700.0, 3000, 8000.0).into();
    let call = start_call(
        &gw,
        &sipp,
        vec![LegCommand::Play {
            id: "prompt".into(),
            pcm: prompt,
        }],
        Duration::from_secs(4),
    )
    .await;
    // The stranger learns our RTP port (as a scanner would) and sprays it
    // with its own consecutive PCMU stream (a loud 1 kHz tone) and DTMF.
    let ours = tokio::task::block_in_place(|| run.ours()).expect("our RTP reached the peer");
    let sprayer = spray(ours, Duration::from_secs(3));
    let (seen, report) = call.await.unwrap();
    let stranger_got = tokio::task::spawn_blocking(move || sprayer.join().unwrap())
        .await
        .unwrap();
    let log = tokio::task::spawn_blocking(move || run.join())
        .await
        .unwrap();
    assert_eq!(report.disposition, Disposition::Answered, "{report:?}");
    assert_eq!(stranger_got, 0, "the stranger received none of our RTP");
    assert!(
        log.packets > 150,
        "the real peer got our prompt: {}",
        log.packets
    );
    assert!(
        seen.digits.is_empty(),
        "no digit taken from the stranger: {:?}",
        seen.digits
    );
    assert!(report.dtmf.is_empty(), "{:?}", report.dtmf);
    assert!(
        report.rtp.received.strangers.unwrap_or(0) > 100,
        "strangers counted: {:?}",
        report.rtp
    );
    // Nothing of the stranger's 1 kHz tone reached the driver (the
    // recogniser's feed), while the peer's 400 Hz tone did.
    let heard = seen.received_pcm();
    assert!(
        heard.len() > 8000 * 3,
        "the peer was heard: {} samples",
        heard.len()
    );
    for (i, f) in seen.frames.iter().enumerate().filter(|(_, f)| f.received) {
        assert!(
            tone_share(&f.pcm, 1000.0) < 0.1,
            "frame {i} carries the stranger's tone"
        );
    }
    assert!(tone_share(&heard[..8000], 400.0) > 0.8);
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_jump_of_30000_does_not_deafen_the_call() {
    let peer = RtpPeer::bind();
    let sipp = sipp_for(&peer, 20, "seqjump");
    // 4 s of a 500 Hz tone; 1 s in, one stray packet 30000 ahead; 2.5 s
    // in, the stream itself jumps by 30000 (a new stream, same SSRC).
    let run = peer.run(Plan {
        audio: tone(500.0, 4000, 6000.0),
        stray: Some((1000, 30000)),
        seq_jump: Some((2500, 30000)),
        run_for: Duration::from_secs(5),
        ..Plan::default()
    });
    let gw = gateway_with(|_| {}).await;
    let call = start_call(&gw, &sipp, vec![], Duration::from_secs(5)).await;
    let (seen, report) = call.await.unwrap();
    let _ = tokio::task::spawn_blocking(move || run.join())
        .await
        .unwrap();
    assert_eq!(report.disposition, Disposition::Answered, "{report:?}");
    // The tone is heard for (about) all of its 4 s, not 1 s and then silence.
    let heard = seen.received_pcm();
    let toned_ms = heard
        .chunks(160)
        .filter(|f| rms(f) > 1000.0 && tone_share(f, 500.0) > 0.8)
        .count()
        * 20;
    assert!(
        toned_ms >= 3700,
        "the tone reached the driver for {toned_ms} ms of 4000"
    );
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "{errors}");
}

/// A peer that sends `ptime` ms packets: 1 s of a 600 Hz tone is heard (by
/// the driver and in the recording) as 1 s, in tune.
async fn packets_of(ptime: u64) {
    let peer = RtpPeer::bind();
    let sipp = sipp_for(&peer, ptime as u32, &format!("ptime{ptime}"));
    let run = peer.run(Plan {
        ptime_ms: ptime,
        audio: [vec![0; 4000], tone(600.0, 1000, 8000.0)].concat(),
        run_for: Duration::from_secs(3),
        ..Plan::default()
    });
    let gw = gateway_with(|_| {}).await;
    let dir = scratch(&format!("ptime{ptime}-rec"));
    let rec = dir.join("rec.wav");
    let mut req = DialRequest::to(sipp.uri());
    req.record = Some(rec.clone());
    let leg = gw.dial(req).await.unwrap();
    let (seen, report) = tokio::time::timeout(
        Duration::from_secs(30),
        drive(leg, vec![], Duration::from_millis(3500)),
    )
    .await
    .unwrap();
    let log = tokio::task::spawn_blocking(move || run.join())
        .await
        .unwrap();
    assert_eq!(report.disposition, Disposition::Answered, "{report:?}");
    assert!(log.sent > 0);
    let loud = |pcm: &[i16]| {
        pcm.chunks(160)
            .filter(|f| rms(f) > 2000.0 && tone_share(f, 600.0) > 0.8)
            .count() as u64
            * 20
    };
    let heard_ms = loud(&seen.received_pcm());
    assert!(
        (900..=1060).contains(&heard_ms),
        "ptime {ptime}: the driver heard the 1 s tone for {heard_ms} ms"
    );
    let (_, chans) = read_channels(&rec);
    let recorded_ms = loud(&chans[1]);
    assert!(
        (900..=1060).contains(&recorded_ms),
        "ptime {ptime}: the recording holds the 1 s tone for {recorded_ms} ms"
    );
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_ms_packets_are_heard_at_their_true_length() {
    packets_of(10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_ms_packets_are_heard_at_their_true_length() {
    packets_of(30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_end_packets_with_new_timestamps_do_not_grow_the_digit_list_without_bound() {
    let peer = RtpPeer::bind();
    let sipp = sipp_for(&peer, 20, "dtmfstorm");
    // Three real key presses, then 3 s of end packets, each a "new" event,
    // at 2,000 a second.
    let run = peer.run(Plan {
        digits: Some((200, "12#".into())),
        dtmf_end_storm: Some((1500, 6000, 2000)),
        run_for: Duration::from_secs(5),
        ..Plan::default()
    });
    let gw = gateway_with(|_| {}).await;
    let call = start_call(&gw, &sipp, vec![], Duration::from_secs(5)).await;
    let (seen, report) = call.await.unwrap();
    let log = tokio::task::spawn_blocking(move || run.join())
        .await
        .unwrap();
    assert!(log.sent > 6000, "the storm was sent: {}", log.sent);
    assert!(
        seen.digits.starts_with("12#"),
        "real digits first: {}",
        seen.digits
    );
    // At most the human rate (20/s after a burst of 4) over the storm's 3 s.
    let limit = 3 + 4 + 20 * 4;
    assert!(
        seen.digits.len() <= limit,
        "{} digits reached the driver (limit {limit})",
        seen.digits.len()
    );
    assert_eq!(report.dtmf.len(), seen.digits.len());
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinvite_to_pcma_switches_our_media_and_an_unusable_offer_gets_488() {
    let peer = RtpPeer::bind();
    let dir = scratch("reinvite-pcma");
    let sipp = Sipp::uas_calls(
        "uas_reinvite_codec.xml",
        &dir,
        1,
        &["-key", "peer_port", &peer.port.to_string()],
    );
    // PCMU at first; PCMA (a 900 Hz tone) once we send PCMA.
    let run = peer.run(Plan {
        audio: tone(900.0, 8000, 7000.0),
        follow_our_codec: true,
        run_for: Duration::from_secs(7),
        ..Plan::default()
    });
    let gw = gateway_with(|_| {}).await;
    let prompt: Arc<[i16]> = tone(300.0, 6000, 7000.0).into();
    let call = start_call(
        &gw,
        &sipp,
        vec![LegCommand::Play {
            id: "p".into(),
            pcm: prompt,
        }],
        Duration::from_secs(6),
    )
    .await;
    let (seen, report) = call.await.unwrap();
    let log = tokio::task::spawn_blocking(move || run.join())
        .await
        .unwrap();
    assert_eq!(
        report.disposition,
        Disposition::Answered,
        "the 488 did not end the call: {report:?}"
    );
    assert_eq!(report.ended_by, EndedBy::Us);
    assert!(
        log.pcma_packets > 50,
        "we switched to PCMA: {} packets",
        log.pcma_packets
    );
    let first_pcma = log.first_pcma_at.expect("PCMA from us");
    // What we sent in PCMA decodes to our prompt (the 300 Hz tone).
    let tail = &log.heard[log.heard.len().saturating_sub(8000)..];
    assert!(tone_share(tail, 300.0) > 0.8, "our PCMA is our prompt");
    // The peer's PCMA after the switch reached the driver, decoded right.
    let answered = seen.answered.expect("answered");
    let after_ms = first_pcma.duration_since(answered).as_millis() as usize;
    let frames_after: Vec<&Frame> = seen
        .frames
        .iter()
        .skip(after_ms / 20 + 10)
        .filter(|f| f.received)
        .collect();
    assert!(
        frames_after.len() > 50,
        "audio after the switch: {} frames",
        frames_after.len()
    );
    let in_tune = frames_after
        .iter()
        .filter(|f| rms(&f.pcm) > 2000.0 && tone_share(&f.pcm, 900.0) > 0.8)
        .count();
    assert!(
        in_tune * 10 >= frames_after.len() * 9,
        "{in_tune} of {} frames after the switch are the peer's tone",
        frames_after.len()
    );
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "sipp: 488 to G.729, 200 with PCMA, then BYE: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_35_second_inactive_hold_then_unhold_survives_the_media_timeout() {
    let peer = RtpPeer::bind();
    let dir = scratch("hold35");
    let sipp = Sipp::uas_calls(
        "uas_hold_inactive.xml",
        &dir,
        1,
        &["-key", "peer_port", &peer.port.to_string(), "-d", "35000"],
    );
    // A phone that goes quiet while it holds us (we stop sending too).
    let run = peer.run(Plan {
        audio: tone(450.0, 60_000, 6000.0),
        quiet_while_we_are: true,
        run_for: Duration::from_secs(44),
        ..Plan::default()
    });
    // The default media timeout (30 s) is shorter than the hold.
    let gw = gateway_with(|c| assert_eq!(c.media.media_timeout_s, 30)).await;
    let call = start_call(&gw, &sipp, vec![], Duration::from_secs(42)).await;
    let (seen, report) = call.await.unwrap();
    let log = tokio::task::spawn_blocking(move || run.join())
        .await
        .unwrap();
    assert_eq!(report.disposition, Disposition::Answered, "{report:?}");
    assert_eq!(report.reason, None);
    assert_eq!(report.ended_by, EndedBy::Us, "we hung up after the unhold");
    assert!(report.duration_ms >= 41_000, "{}", report.duration_ms);
    // We were quiet while held, and talked again after.
    let gaps = log
        .arrivals
        .windows(2)
        .filter(|w| w[1].duration_since(w[0]) > Duration::from_secs(30))
        .count();
    assert_eq!(gaps, 1, "one long silence from us: the hold");
    let last_s = seen.frames.len().saturating_sub(150);
    let after_unhold = seen.frames[last_s..].iter().filter(|f| f.received).count();
    assert!(
        after_unhold > 50,
        "the peer is heard again after the unhold: {after_unhold} frames"
    );
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_never_answers_our_bye_still_ends_in_bounded_time() {
    let dir = scratch("bye-unanswered");
    let sipp = Sipp::uas("uas_bye_unanswered.xml", &dir);
    let gw = gateway_with(|_| {}).await;
    let mut leg = gw.dial(DialRequest::to(sipp.uri())).await.unwrap();
    loop {
        if let LegEvent::Answered { .. } = leg.next_event().await.expect("answered") {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hung_up = Instant::now();
    leg.send(LegCommand::Hangup).await;
    let report = tokio::time::timeout(Duration::from_secs(10), leg.wait_end())
        .await
        .expect("the call ends although nobody answers the BYE")
        .expect("a report");
    let took = hung_up.elapsed();
    assert!(
        took >= duecall::telephony::sip::BYE_WAIT - Duration::from_millis(500),
        "we did wait for an answer ({took:?})"
    );
    assert_eq!(report.disposition, Disposition::Answered);
    assert_eq!(report.ended_by, EndedBy::Us);
    assert_eq!(gw.active_dialogs(), 0);
    drop(sipp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_leg_hangs_up_with_bye_after_the_answer() {
    let dir = scratch("drop-answered");
    let wav = dir.join("callee.wav");
    speak_wav("Hello?", "en-us", &wav, 0.0);
    wav_to_g711(&wav, &dir.join("callee.ulaw"), "ul");
    // uas_silent waits for our BYE (60 s): only a BYE finishes it.
    let sipp = Sipp::uas("uas_silent.xml", &dir);
    let gw = gateway_with(|_| {}).await;
    let mut leg = gw.dial(DialRequest::to(sipp.uri())).await.unwrap();
    loop {
        if let LegEvent::Answered { .. } = leg.next_event().await.expect("answered") {
            break;
        }
    }
    // The driver fails and its leg is dropped (an agent error, a panic).
    drop(leg);
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "sipp got our BYE: {errors}");
    for _ in 0..50 {
        if gw.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gw.active_calls(), 0);
    assert_eq!(gw.active_dialogs(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_leg_cancels_before_the_answer() {
    let dir = scratch("drop-ringing");
    // uas_noanswer rings until a CANCEL.
    let sipp = Sipp::uas("uas_noanswer.xml", &dir);
    let gw = gateway_with(|_| {}).await;
    let mut leg = gw.dial(DialRequest::to(sipp.uri())).await.unwrap();
    loop {
        if let LegEvent::Ringing = leg.next_event().await.expect("ringing") {
            break;
        }
    }
    drop(leg);
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "sipp got our CANCEL: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_call_with_bye_and_a_report() {
    let dir = scratch("shutdown");
    let wav = dir.join("callee.wav");
    speak_wav("Hello?", "en-us", &wav, 0.0);
    wav_to_g711(&wav, &dir.join("callee.ulaw"), "ul");
    let sipp = Sipp::uas("uas_silent.xml", &dir);
    let gw = gateway_with(|_| {}).await;
    let mut leg = gw.dial(DialRequest::to(sipp.uri())).await.unwrap();
    loop {
        if let LegEvent::Answered { .. } = leg.next_event().await.expect("answered") {
            break;
        }
    }
    gw.shutdown();
    let report = tokio::time::timeout(Duration::from_secs(10), leg.wait_end())
        .await
        .expect("the call ends")
        .expect("with a report");
    assert_eq!(report.disposition, Disposition::Answered);
    assert_eq!(report.ended_by, EndedBy::Us);
    assert!(matches!(
        gw.dial(DialRequest::to(sipp.uri())).await,
        Err(duecall::telephony::sip::SipError::ShuttingDown)
    ));
    tokio::time::timeout(Duration::from_secs(10), gw.closed())
        .await
        .expect("the endpoint stops once the calls ended");
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "sipp got our BYE: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_outside_any_call_get_a_cheap_rate_limited_answer() {
    let gw = gateway_with(|_| {}).await;
    let sip = gw.local_addr();
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let answers = tokio::task::spawn_blocking(move || {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        for i in 0..600u32 {
            let method = if i % 2 == 0 { "OPTIONS" } else { "INVITE" };
            let msg = format!(
                "{method} sip:duecall@{sip} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-scan-{i}\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:scanner@127.0.0.1>;tag=s{i}\r\n\
                 To: <sip:duecall@{sip}>\r\n\
                 Call-ID: scan-{i}@127.0.0.1\r\n\
                 CSeq: 1 {method}\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            sock.send_to(msg.as_bytes(), sip).unwrap();
        }
        let mut buf = [0u8; 4096];
        let mut answers = Vec::new();
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            answers.push(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        answers
    })
    .await
    .unwrap();
    // A burst of 40 (twice the per-second rate) and what refilled meanwhile.
    assert!(
        !answers.is_empty(),
        "a trunk's OPTIONS still gets its answer"
    );
    assert!(
        answers.len() <= 2 * duecall::telephony::sip::STRAY_ANSWERS_PER_SECOND as usize + 20,
        "{} answers to 600 strangers",
        answers.len()
    );
    assert!(answers.iter().any(|a| a.contains("200")), "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| a.contains("200") || a.contains("403")),
        "{answers:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tasks_after = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(
        tasks_after <= tasks_before + 5,
        "no task left per request: {tasks_before} -> {tasks_after}"
    );
}

/// Peak resident memory of a running process, polled until it exits.
fn peak_rss_kb(child: &mut std::process::Child) -> u64 {
    let mut peak = 0u64;
    let status = format!("/proc/{}/status", child.id());
    while let Ok(None) = child.try_wait() {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            {
                peak = peak.max(kb);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    peak
}

fn write_wav(path: &std::path::Path, pcm: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in pcm {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// `duecall call --play` a 6 s prompt while the callee floods 20,000 RTP
/// packets a second at us for 5 s from its own address (valid packets of
/// its stream): the prompt reaches the callee whole, and the process's
/// memory stays bounded (nothing queues what the network sends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtp_flood_during_a_prompt_keeps_memory_bounded_and_the_prompt_finishes() {
    let peer = RtpPeer::bind();
    let sipp = sipp_for(&peer, 20, "flood");
    let run = peer.run(Plan {
        audio: tone(500.0, 8000, 6000.0),
        flood: Some((500, 5000, 20_000)),
        run_for: Duration::from_secs(7),
        ..Plan::default()
    });
    let dir = scratch("flood-prompt");
    let prompt = dir.join("prompt.wav");
    write_wav(&prompt, &tone(350.0, 6000, 8000.0));
    let uri = sipp.uri();
    let (out, peak_kb) = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_duecall"))
            .args(["call", &uri, "--hold", "7", "--json", "--play"])
            .arg(&prompt)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run duecall");
        let peak = peak_rss_kb(&mut child);
        (child.wait_with_output().unwrap(), peak)
    })
    .await
    .unwrap();
    let log = tokio::task::spawn_blocking(move || run.join())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["call"]["disposition"], "answered", "{stdout}");
    assert!(
        log.sent >= 80_000,
        "the flood was sent: {} packets",
        log.sent
    );
    // The callee heard our whole prompt: 6 s of the 350 Hz tone.
    let prompt_ms = log
        .heard
        .chunks(160)
        .filter(|f| rms(f) > 2000.0 && tone_share(f, 350.0) > 0.8)
        .count()
        * 20;
    assert!(
        prompt_ms >= 5700,
        "the callee heard {prompt_ms} ms of the 6 s prompt"
    );
    eprintln!("flood: peak RSS of duecall call {peak_kb} kB");
    assert!(
        peak_kb < 32 * 1024,
        "peak RSS {peak_kb} kB under the flood (18 MB measured)"
    );
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "{errors}");
}

/// The same flood, seen by the driver: the audio frames handed on stay at
/// the media rate (50 a second), and the prompt's end is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtp_flood_is_handed_to_the_driver_at_the_media_rate_only() {
    let peer = RtpPeer::bind();
    let sipp = sipp_for(&peer, 20, "flood-rate");
    let run = peer.run(Plan {
        audio: tone(500.0, 8000, 6000.0),
        flood: Some((500, 5000, 20_000)),
        run_for: Duration::from_secs(7),
        ..Plan::default()
    });
    let gw = gateway_with(|_| {}).await;
    let prompt: Arc<[i16]> = tone(350.0, 6000, 8000.0).into();
    let call = start_call(
        &gw,
        &sipp,
        vec![LegCommand::Play {
            id: "p".into(),
            pcm: prompt,
        }],
        Duration::from_secs(7),
    )
    .await;
    let (seen, report) = call.await.unwrap();
    let log = tokio::task::spawn_blocking(move || run.join())
        .await
        .unwrap();
    assert!(
        log.sent >= 80_000,
        "the flood was sent: {} packets",
        log.sent
    );
    assert_eq!(report.disposition, Disposition::Answered);
    let (_, played_ms) = seen.play_finished.expect("the prompt's end was reported");
    assert_eq!(played_ms, 6000);
    // 7 s of call: 350 frames at the media rate, plus the slack.
    let max_frames = report.duration_ms as usize / 20 + 10;
    assert!(
        seen.frames.len() <= max_frames,
        "{} frames handed on in {} ms",
        seen.frames.len(),
        report.duration_ms
    );
    let (ok, errors) = sipp_ok(sipp).await;
    assert!(ok, "{errors}");
}

/// One call records onto a "disk" that hangs (a FIFO nobody reads: the
/// open blocks as a dead network mount would), another records normally,
/// on a runtime with ONE worker thread: the second call's 20 ms pacing
/// must not notice, and the first still ends with its report.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_stalled_recording_disk_never_stalls_the_pacing_of_calls() {
    let dir = scratch("stalled-disk");
    let fifo = dir.join("stuck.wav");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Whatever happens, release the FIFO after 12 s so nothing hangs forever.
    let release = fifo.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(12));
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(&release);
    });
    let gw = gateway_with(|_| {}).await;
    let (peer_a, peer_b) = (RtpPeer::bind(), RtpPeer::bind());
    let (sipp_a, sipp_b) = (
        sipp_for(&peer_a, 20, "stall-a"),
        sipp_for(&peer_b, 20, "stall-b"),
    );
    let plan = Plan {
        audio: tone(500.0, 4000, 6000.0),
        run_for: Duration::from_secs(5),
        ..Plan::default()
    };
    let (run_a, run_b) = (peer_a.run(plan.clone()), peer_b.run(plan));
    let mut req_a = DialRequest::to(sipp_a.uri());
    req_a.record = Some(fifo.clone());
    let mut req_b = DialRequest::to(sipp_b.uri());
    let rec_b = dir.join("b.wav");
    req_b.record = Some(rec_b.clone());
    let prompt: Arc<[i16]> = tone(350.0, 4000, 8000.0).into();
    let play = vec![LegCommand::Play {
        id: "p".into(),
        pcm: prompt,
    }];
    let leg_a = gw.dial(req_a).await.unwrap();
    let leg_b = gw.dial(req_b).await.unwrap();
    let a = tokio::spawn(drive(leg_a, play.clone(), Duration::from_secs(4)));
    let b = tokio::spawn(drive(leg_b, play, Duration::from_secs(4)));
    let (_, report_a) = a.await.unwrap();
    let (_, report_b) = b.await.unwrap();
    let log_a = tokio::task::spawn_blocking(move || run_a.join())
        .await
        .unwrap();
    let log_b = tokio::task::spawn_blocking(move || run_b.join())
        .await
        .unwrap();
    for (name, report, log) in [("a", &report_a, &log_a), ("b", &report_b, &log_b)] {
        assert_eq!(
            report.disposition,
            Disposition::Answered,
            "{name}: {report:?}"
        );
        // 4 s held: about 200 packets; a stalled loop would send a handful.
        assert!(
            log.packets >= 180,
            "call {name}: the callee got {} packets",
            log.packets
        );
        let late = log
            .arrivals
            .windows(2)
            .filter(|w| w[1].duration_since(w[0]) > Duration::from_millis(200))
            .count();
        assert_eq!(late, 0, "call {name}: no 200 ms hole in our RTP");
    }
    assert!(
        report_a.recording.is_none(),
        "the stalled recording is not claimed"
    );
    assert_eq!(report_b.recording.as_deref(), Some(rec_b.as_path()));
    let (_, chans) = read_channels(&rec_b);
    assert!(chans[0].len() >= 8000 * 3, "b's recording holds the call");
    let (ok, e) = sipp_ok(sipp_a).await;
    assert!(ok, "{e}");
    let (ok, e) = sipp_ok(sipp_b).await;
    assert!(ok, "{e}");
}

/// Opening a FIFO's read end without blocking.
trait NonBlockOpen {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlockOpen for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}
