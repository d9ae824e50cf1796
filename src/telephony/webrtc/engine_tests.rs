//! The engine against a second str0m `Rtc` playing the browser (full ICE,
//! controlling, DTLS client), over an in-memory network with a fake clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Frequency, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;

const OURS: &str = "127.0.0.1:40000";
const BROWSER: &str = "127.0.0.1:50000";

/// A browser-like peer taking `codecs` (and telephone-event 101 when `dtmf`).
fn browser(codecs: &[RtcCodec], dtmf: bool, now: Instant) -> Rtc {
    let mut cfg = Rtc::builder().set_rtp_mode(true).clear_codecs();
    let p = cfg.codec_config();
    // Opus first, as browsers prefer it (str0m answers in its own order).
    p.enable_opus(codecs.contains(&RtcCodec::Opus), false);
    p.enable_pcmu(codecs.contains(&RtcCodec::PCMU), false);
    p.enable_pcma(codecs.contains(&RtcCodec::PCMA), false);
    if dtmf {
        p.add_config(
            Pt::from(101),
            None,
            RtcCodec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::parse_line("0-16"),
        );
    }
    let mut rtc = cfg.build(now);
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    rtc
}

/// The browser's answer to `offer`.
fn answer(b: &mut Rtc, offer: &str) -> String {
    b.sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(offer).unwrap())
        .unwrap()
        .to_sdp_string()
}

/// What came out while the network ran.
#[derive(Default)]
struct Heard {
    to_session: Vec<Vec<u8>>,
    browser_rtp: Vec<(u8, u32, Vec<u8>)>,
    /// The audio mid as the browser announced it.
    browser_mid: Option<Mid>,
}

/// Runs both sides for `span` of fake time, delivering every datagram.
fn run(e: &mut Engine, b: &mut Rtc, now: &mut Instant, span: Duration, heard: &mut Heard) {
    let end = *now + span;
    let ours: SocketAddr = OURS.parse().unwrap();
    while *now < end {
        let mut next = end;
        loop {
            match e.poll() {
                Step::Network { to, data } => {
                    let r = Receive::new(Protocol::Udp, ours, to, &data).unwrap();
                    b.handle_input(Input::Receive(*now, r)).unwrap();
                }
                Step::Session(p) => heard.to_session.push(p),
                Step::Wait(at) => {
                    next = next.min(at);
                    break;
                }
                Step::Closed => break,
            }
        }
        loop {
            match b.poll_output().unwrap() {
                Output::Transmit(t) => e.network_in(*now, t.source, &t.contents),
                Output::Event(Event::RtpPacket(p)) => heard.browser_rtp.push((
                    *p.header.payload_type,
                    p.header.timestamp,
                    p.payload.to_vec(),
                )),
                Output::Event(Event::MediaAdded(m)) => heard.browser_mid = Some(m.mid),
                Output::Event(_) => {}
                Output::Timeout(at) => {
                    next = next.min(at);
                    break;
                }
            }
        }
        *now = next.max(*now + Duration::from_millis(1));
        e.timeout(*now);
        b.handle_input(Input::Timeout(*now)).unwrap();
    }
}

/// Runs both sides until DTLS is up on ours (at most 30 s of fake time).
fn connect(e: &mut Engine, b: &mut Rtc, now: &mut Instant, heard: &mut Heard) {
    let give_up = *now + Duration::from_secs(30);
    while !e.connected() && *now < give_up {
        run(e, b, now, Duration::from_millis(100), heard);
    }
}

fn plain(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    rtp::write(
        &RtpHeader {
            marker: false,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: 7,
        },
        payload,
        &mut out,
    );
    out
}

fn connected_pair(now: &mut Instant) -> (Engine, Rtc, Agreed, Heard) {
    let (mut e, offer) = Engine::offer(
        OURS.parse().unwrap(),
        &[
            WebRtcCodec::G711(Codec::Pcmu),
            WebRtcCodec::G711(Codec::Pcma),
        ],
        101,
        *now,
    )
    .unwrap();
    let mut b = browser(&[RtcCodec::PCMU, RtcCodec::PCMA], true, *now);
    let ans = answer(&mut b, &offer);
    let agreed = e.accept_answer(&ans).unwrap();
    let mut heard = Heard::default();
    connect(&mut e, &mut b, now, &mut heard);
    (e, b, agreed, heard)
}

#[test]
fn the_offer_is_webrtc_audio_with_our_candidate_fingerprint_and_codecs() {
    let (_, offer) = Engine::offer(
        OURS.parse().unwrap(),
        &[
            WebRtcCodec::G711(Codec::Pcma),
            WebRtcCodec::G711(Codec::Pcmu),
        ],
        101,
        Instant::now(),
    )
    .unwrap();
    assert!(offer.contains("m=audio"), "{offer}");
    assert!(offer.contains("UDP/TLS/RTP/SAVPF"), "{offer}");
    assert!(offer.contains("a=fingerprint:sha-256"), "{offer}");
    assert!(offer.contains("a=ice-lite"), "{offer}");
    assert!(offer.contains("127.0.0.1 40000 typ host"), "{offer}");
    assert!(offer.contains("a=rtpmap:8 PCMA/8000"), "{offer}");
    assert!(offer.contains("a=rtpmap:0 PCMU/8000"), "{offer}");
    assert!(offer.contains("telephone-event/8000"), "{offer}");
    assert!(!offer.contains("m=video"), "{offer}");
}

#[test]
fn a_browser_answer_agrees_on_g711_and_telephone_event_and_dtls_connects() {
    let mut now = Instant::now();
    let (e, _b, agreed, _) = connected_pair(&mut now);
    assert_eq!(agreed.codec, Codec::Pcmu);
    assert_eq!(agreed.payload_type, 0);
    assert_eq!(agreed.dtmf_payload_type, Some(101));
    assert!(e.connected(), "{:?}", e.stats());
}

#[test]
fn session_rtp_reaches_the_browser_and_browser_rtp_reaches_the_session() {
    let mut now = Instant::now();
    let (mut e, mut b, _, mut heard) = connected_pair(&mut now);
    let payload = [0x55u8; 160];
    for i in 0..5u16 {
        e.session_in(now, &plain(0, 100 + i, 1000 + 160 * u32::from(i), &payload));
        run(
            &mut e,
            &mut b,
            &mut now,
            Duration::from_millis(20),
            &mut heard,
        );
    }
    // A DTMF event packet goes through as well.
    e.session_in(now, &plain(101, 105, 1800, &[1, 0x0a, 0, 160]));
    run(
        &mut e,
        &mut b,
        &mut now,
        Duration::from_millis(100),
        &mut heard,
    );
    let audio: Vec<_> = heard.browser_rtp.iter().filter(|p| p.0 == 0).collect();
    assert_eq!(audio.len(), 5, "{:?}", e.stats());
    assert_eq!(audio[0].1, 1000);
    assert_eq!(audio[4].2, payload.to_vec());
    assert!(heard.browser_rtp.iter().any(|p| p.0 == 101 && p.1 == 1800));

    // The browser speaks: plain RTP comes out for the session.
    let mid = heard
        .browser_mid
        .expect("the browser added the audio media");
    let ssrc = b.direct_api().stream_tx_by_mid(mid, None).unwrap().ssrc();
    for i in 0..3u64 {
        let wallclock = now;
        b.direct_api()
            .stream_tx(&ssrc)
            .unwrap()
            .write_rtp(RtpWrite::new(
                Pt::from(0),
                (i + 1).into(),
                5000 + 160 * i as u32,
                wallclock,
                vec![0x11u8; 160],
            ));
        run(
            &mut e,
            &mut b,
            &mut now,
            Duration::from_millis(20),
            &mut heard,
        );
    }
    let got: Vec<_> = heard
        .to_session
        .iter()
        .map(|p| rtp::parse(p).unwrap())
        .filter(|p| p.header.payload_type == 0)
        .map(|p| (p.header.timestamp, p.payload.len()))
        .collect();
    assert_eq!(got, vec![(5000, 160), (5160, 160), (5320, 160)]);
    assert_eq!(e.stats().to_session, 3);
}

#[test]
fn session_packets_before_dtls_or_of_other_payload_types_are_dropped() {
    let now = Instant::now();
    let (mut e, offer) = Engine::offer(
        OURS.parse().unwrap(),
        &[WebRtcCodec::G711(Codec::Pcmu)],
        101,
        now,
    )
    .unwrap();
    let mut b = browser(&[RtcCodec::PCMU], false, now);
    let ans = answer(&mut b, &offer);
    let agreed = e.accept_answer(&ans).unwrap();
    assert_eq!(agreed.dtmf_payload_type, None, "the browser took no DTMF");
    e.session_in(now, &plain(0, 1, 0, &[0; 160]));
    assert_eq!(e.stats().dropped_from_session, 1, "not connected yet");
    let mut now = now;
    connect(&mut e, &mut b, &mut now, &mut Heard::default());
    assert!(e.connected(), "{:?}", e.stats());
    e.session_in(now, &plain(101, 2, 160, &[1, 0x0a, 0, 160]));
    e.session_in(now, &plain(8, 3, 320, &[0; 160]));
    e.session_in(now, b"not rtp");
    assert_eq!(e.stats().dropped_from_session, 4);
    assert_eq!(e.stats().to_peer, 0);
}

#[test]
fn an_answer_without_g711_is_no_common_codec_and_a_second_answer_is_refused() {
    let now = Instant::now();
    let (mut e, offer) = Engine::offer(
        OURS.parse().unwrap(),
        &[WebRtcCodec::G711(Codec::Pcmu)],
        101,
        now,
    )
    .unwrap();
    let mut b = browser(&[RtcCodec::Opus], false, now);
    let ans = answer(&mut b, &offer);
    assert!(
        matches!(
            e.accept_answer(&ans),
            Err(WebRtcError::NoCommonCodec | WebRtcError::NoAudio | WebRtcError::Sdp(_))
        ),
        "{ans}"
    );
    assert!(matches!(
        e.accept_answer(&ans),
        Err(WebRtcError::AnsweredTwice)
    ));
}

#[test]
fn garbage_from_the_network_is_counted_not_fatal() {
    let now = Instant::now();
    let (mut e, _) = Engine::offer(
        OURS.parse().unwrap(),
        &[WebRtcCodec::G711(Codec::Pcmu)],
        101,
        now,
    )
    .unwrap();
    e.network_in(now, BROWSER.parse().unwrap(), &[0xff; 3]);
    e.network_in(now, BROWSER.parse().unwrap(), &[]);
    assert_eq!(e.stats().bad_datagrams, 2);
    assert!(matches!(e.poll(), Step::Wait(_)));
}

/// `n` 20 ms frames of a `freq` Hz tone at 8 kHz.
fn tone(freq: f32, n: usize) -> Vec<Vec<i16>> {
    let pcm: Vec<i16> = (0..n * 160)
        .map(|i| (7000.0 * (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin()) as i16)
        .collect();
    pcm.chunks(160).map(<[i16]>::to_vec).collect()
}

fn rms(x: &[i16]) -> f32 {
    (x.iter().map(|&s| f32::from(s).powi(2)).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

#[test]
fn an_opus_preferring_browser_gets_opus_and_audio_is_transcoded_both_ways() {
    use crate::media::{g711, opus};
    let mut now = Instant::now();
    let (mut e, offer) = Engine::offer(
        OURS.parse().unwrap(),
        &[WebRtcCodec::Opus, WebRtcCodec::G711(Codec::Pcmu)],
        101,
        now,
    )
    .unwrap();
    assert!(offer.contains("a=rtpmap:111 opus/48000/2"), "{offer}");
    let m = offer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(m.contains("SAVPF 111 0 101"), "opus first: {m}");
    let mut b = browser(&[RtcCodec::Opus, RtcCodec::PCMU], true, now);
    let ans = answer(&mut b, &offer);
    let agreed = e.accept_answer(&ans).unwrap();
    assert_eq!(agreed.peer_codec, WebRtcCodec::Opus);
    assert_eq!(agreed.peer_payload_type, 111);
    assert_eq!(
        (agreed.codec, agreed.payload_type),
        (Codec::Pcmu, 0),
        "the session speaks PCMU"
    );
    let mut heard = Heard::default();
    connect(&mut e, &mut b, &mut now, &mut heard);
    assert!(e.connected(), "{:?}", e.stats());

    // Our PCMU prompt reaches the browser as Opus on the 48 kHz clock.
    for (i, f) in tone(600.0, 15).iter().enumerate() {
        let mut pcmu = Vec::new();
        g711::encode(Codec::Pcmu, f, &mut pcmu);
        e.session_in(now, &plain(0, 100 + i as u16, 8000 + 160 * i as u32, &pcmu));
        run(
            &mut e,
            &mut b,
            &mut now,
            Duration::from_millis(20),
            &mut heard,
        );
    }
    let got: Vec<_> = heard.browser_rtp.iter().filter(|p| p.0 == 111).collect();
    assert_eq!(got.len(), 15, "{:?}", e.stats());
    assert_eq!(got[0].1, 8000 * 6);
    assert_eq!(got[14].1, (8000 + 160 * 14) * 6);
    let mut dec = opus::Decoder::new().unwrap();
    let mut pcm = Vec::new();
    for p in &got {
        dec.decode(&p.2, &mut pcm).unwrap();
    }
    assert!(rms(&pcm[800..]) > 3000.0, "the browser hears the tone");

    // The browser's Opus reaches the session as PCMU on the 8 kHz clock.
    let mid = heard
        .browser_mid
        .expect("the browser added the audio media");
    let ssrc = b.direct_api().stream_tx_by_mid(mid, None).unwrap().ssrc();
    let mut enc = opus::Encoder::new(32_000).unwrap();
    for (i, f) in tone(400.0, 10).iter().enumerate() {
        let mut pkt = Vec::new();
        enc.encode(f, &mut pkt).unwrap();
        let wallclock = now;
        b.direct_api()
            .stream_tx(&ssrc)
            .unwrap()
            .write_rtp(RtpWrite::new(
                Pt::from(111),
                (i as u64 + 1).into(),
                96_000 + 960 * i as u32,
                wallclock,
                pkt,
            ));
        run(
            &mut e,
            &mut b,
            &mut now,
            Duration::from_millis(20),
            &mut heard,
        );
    }
    let pkts: Vec<_> = heard
        .to_session
        .iter()
        .map(|p| rtp::parse(p).unwrap())
        .filter(|p| p.header.payload_type == 0)
        .collect();
    assert_eq!(pkts.len(), 10, "{:?}", e.stats());
    assert_eq!(pkts[0].header.timestamp, 16_000);
    assert_eq!(pkts[9].header.timestamp, 16_000 + 160 * 9);
    assert!(pkts.iter().all(|p| p.payload.len() == 160));
    let mut heard_pcm = Vec::new();
    for p in &pkts[3..] {
        g711::decode(Codec::Pcmu, p.payload, &mut heard_pcm);
    }
    assert!(rms(&heard_pcm) > 3000.0, "the session hears the browser");
    let s = e.stats();
    assert_eq!((s.opus.encoded, s.opus.decoded, s.to_session), (15, 10, 10));
}

#[test]
fn a_browser_without_opus_gets_g711_passed_through_when_opus_is_offered_first() {
    let mut now = Instant::now();
    let (mut e, offer) = Engine::offer(
        OURS.parse().unwrap(),
        &[WebRtcCodec::Opus, WebRtcCodec::G711(Codec::Pcma)],
        101,
        now,
    )
    .unwrap();
    let mut b = browser(&[RtcCodec::PCMA], false, now);
    let ans = answer(&mut b, &offer);
    let agreed = e.accept_answer(&ans).unwrap();
    assert_eq!(agreed.peer_codec, WebRtcCodec::G711(Codec::Pcma));
    assert_eq!((agreed.codec, agreed.payload_type), (Codec::Pcma, 8));
    let mut heard = Heard::default();
    connect(&mut e, &mut b, &mut now, &mut heard);
    e.session_in(now, &plain(8, 1, 320, &[0x55; 160]));
    run(
        &mut e,
        &mut b,
        &mut now,
        Duration::from_millis(40),
        &mut heard,
    );
    assert_eq!(heard.browser_rtp.len(), 1);
    assert_eq!(heard.browser_rtp[0].1, 320, "G.711 keeps its 8 kHz clock");
    assert_eq!(e.stats().opus, Default::default());
}
