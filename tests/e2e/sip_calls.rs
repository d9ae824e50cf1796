//! Calls against sipp as the callee: every final response mapped to its
//! disposition, audio both ways, RFC 4733 DTMF, REFER followed to its
//! NOTIFY, CANCEL on ring timeout, digest auth, re-INVITE hold, unusable SDP.

use std::sync::Arc;
use std::time::Duration;

use duecall::config::Config;
use duecall::outcome::{Disposition, EndedBy, FailReason};
use duecall::telephony::leg::{LegCommand, LegEvent};
use duecall::telephony::report::CallReport;
use duecall::telephony::sip::{DialRequest, SipGateway};

use crate::peers::*;

const SIPP_DONE: Duration = Duration::from_secs(15);

async fn gateway() -> SipGateway {
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e.duecall.test".into();
    SipGateway::start(cfg).await.expect("gateway starts")
}

/// Dials and, once answered, hangs up after `hold`; returns the report.
async fn call_and_hold(gw: &SipGateway, req: DialRequest, hold: Duration) -> CallReport {
    let mut leg = gw.dial(req).await.expect("dial");
    let mut hangup_at: Option<tokio::time::Instant> = None;
    loop {
        let timeout =
            hangup_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(60));
        tokio::select! {
            ev = leg.next_event() => match ev.expect("events until Ended") {
                LegEvent::Answered { .. } => hangup_at = Some(tokio::time::Instant::now() + hold),
                LegEvent::Ended(r) => return *r,
                _ => {}
            },
            _ = tokio::time::sleep_until(timeout) => {
                leg.send(LegCommand::Hangup).await;
                hangup_at = Some(tokio::time::Instant::now() + Duration::from_secs(60));
            }
        }
    }
}

async fn rejected_with(scenario: &str) -> (CallReport, bool, String) {
    let dir = scratch(scenario);
    let mut sipp = Sipp::uas(scenario, &dir);
    let gw = gateway().await;
    let r = call_and_hold(&gw, DialRequest::to(sipp.uri()), Duration::from_secs(1)).await;
    let ok = tokio::task::spawn_blocking(move || {
        let ok = sipp.finished_ok(SIPP_DONE);
        (ok, sipp.errors())
    })
    .await
    .unwrap();
    (r, ok.0, ok.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_486_is_disposition_busy() {
    let (r, sipp_ok, log) = rejected_with("uas_486.xml").await;
    assert_eq!(r.disposition, Disposition::Busy);
    assert_eq!(r.sip_status, Some(486));
    assert_eq!(r.ended_by, EndedBy::Them);
    assert!(sipp_ok, "sipp saw a failed call: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporarily_unavailable_480_is_no_answer() {
    let (r, sipp_ok, log) = rejected_with("uas_480.xml").await;
    assert_eq!(r.disposition, Disposition::NoAnswer);
    assert_eq!(r.sip_status, Some(480));
    assert!(sipp_ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_603_is_rejected() {
    let (r, sipp_ok, log) = rejected_with("uas_603.xml").await;
    assert_eq!(r.disposition, Disposition::Rejected);
    assert!(sipp_ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_404_is_not_found() {
    let (r, sipp_ok, log) = rejected_with("uas_404.xml").await;
    assert_eq!(r.disposition, Disposition::NotFound);
    assert!(sipp_ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_503_is_failed_server() {
    let (r, _sipp_ok, _log) = rejected_with("uas_503.xml").await;
    assert_eq!(r.disposition, Disposition::Failed);
    assert_eq!(r.reason, Some(FailReason::Server));
    assert_eq!(r.sip_status, Some(503));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_acceptable_488_is_failed_no_common_codec() {
    let (r, sipp_ok, log) = rejected_with("uas_488.xml").await;
    assert_eq!(r.disposition, Disposition::Failed);
    assert_eq!(r.reason, Some(FailReason::NoCommonCodec));
    assert!(sipp_ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_with_unusable_sdp_is_hung_up_cleanly_not_left_hanging() {
    let dir = scratch("badsdp");
    let mut sipp = Sipp::uas("uas_badsdp.xml", &dir);
    let gw = gateway().await;
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        call_and_hold(&gw, DialRequest::to(sipp.uri()), Duration::from_secs(30)),
    )
    .await
    .expect("no hang on an unusable answer");
    assert_eq!(r.disposition, Disposition::Failed);
    assert_eq!(r.reason, Some(FailReason::NoCommonCodec));
    let ok = tokio::task::spawn_blocking(move || sipp.finished_ok(SIPP_DONE))
        .await
        .unwrap();
    assert!(ok, "sipp expected ACK then BYE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_timeout_sends_cancel_and_is_no_answer() {
    let dir = scratch("noanswer");
    let mut sipp = Sipp::uas("uas_noanswer.xml", &dir);
    let gw = gateway().await;
    let mut req = DialRequest::to(sipp.uri());
    req.ring_timeout = Some(Duration::from_millis(1200));
    let r = call_and_hold(&gw, req, Duration::from_secs(1)).await;
    assert_eq!(r.disposition, Disposition::NoAnswer);
    assert_eq!(r.ended_by, EndedBy::Timeout);
    assert_eq!(r.sip_status, Some(487));
    let ok = tokio::task::spawn_blocking(move || sipp.finished_ok(SIPP_DONE))
        .await
        .unwrap();
    assert!(ok, "sipp expected a CANCEL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_peer_is_failed_network_within_the_ring_timeout() {
    let port = free_udp_port(); // nothing listens there
    let gw = gateway().await;
    let mut req = DialRequest::to(format!("sip:nobody@127.0.0.1:{port}"));
    req.ring_timeout = Some(Duration::from_millis(800));
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        call_and_hold(&gw, req, Duration::from_secs(1)),
    )
    .await
    .expect("gives up promptly");
    assert_eq!(r.disposition, Disposition::Failed);
    assert_eq!(r.reason, Some(FailReason::Network));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_hangs_up_with_pcma_and_we_heard_its_audio() {
    let dir = scratch("hangup");
    let wav = dir.join("callee.wav");
    speak_wav(
        "Hello, this is the callee speaking. Goodbye.",
        "en-us",
        &wav,
        0.5,
    );
    wav_to_g711(&wav, &dir.join("callee.alaw"), "al");
    let mut sipp = Sipp::uas("uas_hangup.xml", &dir);
    let gw = gateway().await;
    let mut req = DialRequest::to(sipp.uri());
    let rec = dir.join("rec.wav");
    req.record = Some(rec.clone());
    let r = call_and_hold(&gw, req, Duration::from_secs(30)).await;
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(r.ended_by, EndedBy::Them);
    assert_eq!(r.codec.as_deref(), Some("PCMA"));
    assert!(r.rtp.received.packets > 50, "{:?}", r.rtp);
    assert!(
        r.duration_ms >= 3500 && r.duration_ms < 8000,
        "{}",
        r.duration_ms
    );
    let (ch, chans) = read_channels(&rec);
    assert_eq!(ch, 2);
    let heard_ms = loud_ms(&chans[1], 300.0);
    assert!(
        heard_ms > 1000,
        "right channel should hold the callee's speech, loud for {heard_ms} ms"
    );
    let ok = tokio::task::spawn_blocking(move || sipp.finished_ok(SIPP_DONE))
        .await
        .unwrap();
    assert!(ok);
}

/// A scratch dir named `tag` holding `early.alaw`: `text` spoken, as the
/// early-media scenarios stream it before (or instead of) answering.
fn announcement(tag: &str, text: &str) -> std::path::PathBuf {
    let dir = scratch(tag);
    let wav = dir.join("early.wav");
    speak_wav(text, "en-us", &wav, 0.0);
    wav_to_g711(&wav, &dir.join("early.alaw"), "al");
    dir
}

/// Dials `sipp` with a recording into `dir/rec.wav` and holds the call.
async fn dial_recorded(sipp: &Sipp, dir: &std::path::Path) -> (CallReport, std::path::PathBuf) {
    let gw = gateway().await;
    let mut req = DialRequest::to(sipp.uri());
    let rec = dir.join("rec.wav");
    req.record = Some(rec.clone());
    (call_and_hold(&gw, req, Duration::from_secs(30)).await, rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_of_a_183_is_recorded_before_the_answer_and_media_goes_on() {
    let dir = announcement("early", "The number you have dialled is not in service.");
    let mut sipp = Sipp::uas("uas_early_media.xml", &dir);
    let (r, rec) = dial_recorded(&sipp, &dir).await;
    // Early media is not an answer: the 200 OK, 3.5 s later, is.
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(r.ended_by, EndedBy::Them);
    assert_eq!(r.codec.as_deref(), Some("PCMA"));
    let answered_after = (r.answered_at.expect("answered") - r.started_at).num_milliseconds();
    assert!(
        answered_after >= 3000,
        "answered {answered_after} ms after the dial"
    );
    // The recording starts with the early session: the announcement sits in
    // the callee's channel before the answer.
    let (ch, chans) = read_channels(&rec);
    assert_eq!(ch, 2);
    let before_answer = ((answered_after as usize).saturating_sub(300) * 8).min(chans[1].len());
    let early_ms = loud_ms(&chans[1][..before_answer], 300.0);
    assert!(
        early_ms > 1000,
        "the announcement before the answer is loud for {early_ms} ms only"
    );
    // One session from the 183 to the BYE: the recording spans both.
    let rec_ms = chans[1].len() as i64 / 8;
    assert!(
        rec_ms >= answered_after + 1000,
        "the recording ({rec_ms} ms) goes on after the answer ({answered_after} ms)"
    );
    let ok = tokio::task::spawn_blocking(move || sipp.finished_ok(SIPP_DONE))
        .await
        .unwrap();
    assert!(ok, "sipp did not complete the scenario");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_whose_sdp_differs_from_the_183_moves_our_media_there() {
    let dir = announcement("early-moved", "Please hold the line.");
    // Where the 200 OK says to send: a socket of ours, not sipp's.
    let answer_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    answer_sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let answer_port = answer_sock.local_addr().unwrap().port().to_string();
    let mut sipp = Sipp::uas_calls(
        "uas_early_moved.xml",
        &dir,
        1,
        &["-key", "answer_port", &answer_port],
    );
    let gw = gateway().await;
    let req = DialRequest::to(sipp.uri());
    let counter = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut n = 0u32;
        let end = std::time::Instant::now() + Duration::from_secs(12);
        while std::time::Instant::now() < end {
            if answer_sock.recv_from(&mut buf).is_ok() {
                n += 1;
            }
        }
        n
    });
    let r = call_and_hold(&gw, req, Duration::from_secs(30)).await;
    assert_eq!(r.disposition, Disposition::Answered);
    assert!(
        r.rtp.received.packets > 50,
        "early media heard: {:?}",
        r.rtp
    );
    let moved = tokio::task::spawn_blocking(move || counter.join().unwrap())
        .await
        .unwrap();
    // 1.5 s connected at 50 packets/s, all to the 200's address.
    assert!(
        moved > 50,
        "only {moved} packets reached the 200 OK's address"
    );
    let ok = tokio::task::spawn_blocking(move || sipp.finished_ok(SIPP_DONE))
        .await
        .unwrap();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_before_a_404_is_kept_in_the_recording_for_qa() {
    let dir = announcement("early404", "The number you have dialled is not in service.");
    let mut sipp = Sipp::uas("uas_early_404.xml", &dir);
    let (r, rec) = dial_recorded(&sipp, &dir).await;
    assert_eq!(r.disposition, Disposition::NotFound);
    assert_eq!(r.sip_status, Some(404));
    assert!(r.answered_at.is_none());
    assert_eq!(r.recording.as_deref(), Some(rec.as_path()), "{r:?}");
    assert!(r.rtp.received.packets > 50, "{:?}", r.rtp);
    let (_, chans) = read_channels(&rec);
    let early_ms = loud_ms(&chans[1], 300.0);
    assert!(
        early_ms > 1000,
        "the announcement is loud for {early_ms} ms only"
    );
    let ok = tokio::task::spawn_blocking(move || sipp.finished_ok(SIPP_DONE))
        .await
        .unwrap();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_answers_streams_audio_sends_dtmf_and_accepts_refer() {
    let dir = scratch("callee");
    let wav = dir.join("callee.wav");
    speak_wav(
        "Yes, this is Maria. I will press some keys now.",
        "en-us",
        &wav,
        0.5,
    );
    wav_to_g711(&wav, &dir.join("callee.ulaw"), "ul");
    let mut sipp = Sipp::uas("uas_callee.xml", &dir);
    let gw = gateway().await;
    let mut req = DialRequest::to(sipp.uri());
    let rec = dir.join("rec.wav");
    req.record = Some(rec.clone());
    let prompt: Arc<[i16]> = (0..8000 * 2)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 8000.0) as i16)
        .collect::<Vec<_>>()
        .into();
    let mut leg = gw.dial(req).await.unwrap();
    let mut digits = String::new();
    let mut transfer = None;
    let report = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match leg.next_event().await.expect("events") {
                LegEvent::Answered { .. } => {
                    leg.send(LegCommand::Play {
                        id: "tone".into(),
                        pcm: prompt.clone(),
                    })
                    .await;
                }
                LegEvent::Dtmf { digit, .. } => {
                    digits.push(digit);
                    if digits == "12#" {
                        leg.send(LegCommand::Transfer {
                            target: "sip:agent@127.0.0.1:5999".into(),
                            headers: vec![("X-Duecall-Case".into(), "c-42".into())],
                        })
                        .await;
                    }
                }
                LegEvent::TransferResult { ok, status } => transfer = Some((ok, status)),
                LegEvent::Ended(r) => break *r,
                _ => {}
            }
        }
    })
    .await
    .expect("call completes");
    assert_eq!(digits, "12#", "each DTMF digit reported exactly once");
    assert_eq!(
        report.dtmf.iter().map(|d| d.digit).collect::<String>(),
        "12#"
    );
    assert_eq!(transfer, Some((true, Some(200))));
    let t = report.transfer.clone().expect("transfer reported");
    assert!(t.ok && t.refer_status == Some(202), "{t:?}");
    assert_eq!(report.disposition, Disposition::Answered);
    assert_eq!(report.codec.as_deref(), Some("PCMU"));
    assert!(
        report.call_id.ends_with("@e2e.duecall.test")
            || report.call_id.contains("e2e.duecall.test"),
        "{}",
        report.call_id
    );
    let (_, chans) = read_channels(&rec);
    assert!(
        loud_ms(&chans[0], 1000.0) >= 1900,
        "left channel holds the 2 s tone we sent"
    );
    assert!(
        loud_ms(&chans[1], 300.0) > 1000,
        "right channel holds the callee's speech"
    );
    assert_eq!(chans[0].len(), chans[1].len());
    let ok = tokio::task::spawn_blocking(move || {
        let ok = sipp.finished_ok(SIPP_DONE);
        (ok, sipp.errors())
    })
    .await
    .unwrap();
    assert!(ok.0, "sipp: {}", ok.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_401_with_the_right_password_is_answered() {
    let dir = scratch("auth-good");
    let mut sipp = Sipp::uas("uas_auth.xml", &dir);
    let gw = gateway().await;
    let mut req = DialRequest::to(sipp.uri());
    req.credentials = Some(("bot".into(), "secret".into()));
    let r = call_and_hold(&gw, req, Duration::from_millis(500)).await;
    assert_eq!(r.disposition, Disposition::Answered, "{r:?}");
    let ok = tokio::task::spawn_blocking(move || sipp.finished_ok(SIPP_DONE))
        .await
        .unwrap();
    assert!(ok, "sipp verified the digest and got our BYE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_401_with_a_wrong_password_is_failed_auth() {
    let dir = scratch("auth-bad");
    let sipp = Sipp::uas("uas_auth.xml", &dir);
    let gw = gateway().await;
    let mut req = DialRequest::to(sipp.uri());
    req.credentials = Some(("bot".into(), "wrong".into()));
    let r = call_and_hold(&gw, req, Duration::from_millis(500)).await;
    assert_eq!(r.disposition, Disposition::Failed);
    assert_eq!(r.reason, Some(FailReason::Auth));
    assert_eq!(r.sip_status, Some(403));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvite_hold_and_unhold_keep_the_call_up() {
    let dir = scratch("hold");
    let mut sipp = Sipp::uas("uas_hold.xml", &dir);
    let gw = gateway().await;
    let r = call_and_hold(
        &gw,
        DialRequest::to(sipp.uri()),
        Duration::from_millis(2500),
    )
    .await;
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(
        r.ended_by,
        EndedBy::Us,
        "we hung up after the hold, not the callee"
    );
    let ok = tokio::task::spawn_blocking(move || {
        let ok = sipp.finished_ok(SIPP_DONE);
        (ok, sipp.errors())
    })
    .await
    .unwrap();
    assert!(
        ok.0,
        "sipp: hold answered recvonly, unhold sendrecv, then BYE: {}",
        ok.1
    );
}

/// A callee that answers, speaks, then sends nothing and never hangs up
/// (silence suppression, a NAT timeout): the media timeout ends the call
/// with a BYE, the report says failed/media-timeout, and the dialog is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_that_goes_silent_is_ended_by_the_media_timeout_with_a_bye() {
    let dir = scratch("silent");
    let wav = dir.join("callee.wav");
    speak_wav("Hello, who is this?", "en-us", &wav, 0.0);
    wav_to_g711(&wav, &dir.join("callee.ulaw"), "ul");
    let mut sipp = Sipp::uas("uas_silent.xml", &dir);
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e.duecall.test".into();
    cfg.media.media_timeout_s = 2;
    let gw = SipGateway::start(cfg).await.expect("gateway starts");
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        call_and_hold(&gw, DialRequest::to(sipp.uri()), Duration::from_secs(60)),
    )
    .await
    .expect("the media timeout ends the call");
    assert_eq!(r.disposition, Disposition::Failed, "{r:?}");
    assert_eq!(r.reason, Some(FailReason::MediaTimeout));
    assert_eq!(r.ended_by, EndedBy::Timeout);
    assert!(
        r.rtp.received.packets > 20,
        "heard the callee first: {:?}",
        r.rtp
    );
    assert!(r.answered_at.is_some());
    assert_eq!(gw.active_dialogs(), 0, "the dialog was removed");
    let ok = tokio::task::spawn_blocking(move || {
        let ok = sipp.finished_ok(SIPP_DONE);
        (ok, sipp.errors())
    })
    .await
    .unwrap();
    assert!(ok.0, "sipp expected our BYE: {}", ok.1);
}

/// The same through the command line: `duecall call` prints the outcome
/// (failed, media-timeout) instead of dying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duecall_call_prints_the_media_timeout_outcome() {
    let dir = scratch("silent-cli");
    let wav = dir.join("callee.wav");
    speak_wav("Hello?", "en-us", &wav, 0.0);
    wav_to_g711(&wav, &dir.join("callee.ulaw"), "ul");
    let mut sipp = Sipp::uas("uas_silent.xml", &dir);
    let cfg = dir.join("duecall.toml");
    std::fs::write(&cfg, "[media]\nmedia_timeout_s = 2\n").unwrap();
    let uri = sipp.uri();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_duecall"))
            .args(["call", &uri, "--hold", "60", "--json", "--config"])
            .arg(&cfg)
            .output()
            .expect("run duecall")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "not answered-and-fine: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON outcome");
    assert_eq!(v["call"]["disposition"], "failed", "{stdout}");
    assert_eq!(v["call"]["reason"], "media-timeout", "{stdout}");
    let ok = tokio::task::spawn_blocking(move || sipp.finished_ok(SIPP_DONE))
        .await
        .unwrap();
    assert!(ok, "sipp expected our BYE");
}
