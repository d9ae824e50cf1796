use super::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;

/// What sipp's uas_callee.xml answers, with its keywords filled in.
const SIPP_ANSWER: &str = "v=0\r\n\
        o=callee 53655765 2353687637 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 6000 RTP/AVP 0 96\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:96 telephone-event/8000\r\n\
        a=fmtp:96 0-16\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n";

/// A typical baresip 1.0 answer.
const BARESIP_ANSWER: &str = "v=0\r\n\
        o=- 1786012829 1480373340 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 10010 RTP/AVP 8 0 101\r\n\
        b=AS:88\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=rtcp:10011\r\n\
        a=sendrecv\r\n\
        a=label:1\r\n\
        a=ssrc:4103587853 cname:3c0f2a4e-1b5d-4e5f-9a6b\r\n\
        a=rtcp-rsize\r\n\
        a=ptime:20\r\n";

/// A linphone hold re-INVITE: session-level sendonly, video disabled.
const LINPHONE_HOLD: &str = "v=0\n\
        o=bob 3456 3458 IN IP4 192.0.2.7\n\
        s=Talk\n\
        c=IN IP4 192.0.2.7\n\
        t=0 0\n\
        a=sendonly\n\
        m=audio 7078 RTP/AVP 96 0 8 101\n\
        a=rtpmap:96 opus/48000/2\n\
        a=rtpmap:101 telephone-event/8000\n\
        m=video 0 RTP/AVP 96\n";

fn ours() -> Vec<Codec> {
    vec![Codec::Pcmu, Codec::Pcma]
}

#[test]
fn sipp_answer_parses_and_negotiates_pcmu_with_dtmf_96() {
    let sd = parse(SIPP_ANSWER).unwrap();
    assert_eq!(sd.connection, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let o = sd.origin.as_ref().unwrap();
    assert_eq!((o.session_id, o.session_version), (53655765, 2353687637));
    let m = &sd.media[0];
    assert_eq!(
        (m.kind.as_str(), m.port, m.proto.as_str()),
        ("audio", 6000, "RTP/AVP")
    );
    assert_eq!(m.formats, vec![0, 96]);
    assert_eq!(m.fmtp, vec![(96, "0-16".to_string())]);
    assert_eq!(m.ptime, Some(20));
    let n = negotiate(&sd, &ours()).unwrap();
    assert_eq!(n.codec, Codec::Pcmu);
    assert_eq!(n.payload_type, 0);
    assert_eq!(n.dtmf_payload_type, Some(96));
    assert_eq!(n.remote_rtp, "127.0.0.1:6000".parse().unwrap());
    assert_eq!(n.direction, Direction::SendRecv);
    assert!(!n.is_held());
}

#[test]
fn baresip_answer_picks_its_first_format_and_reads_rtcp_and_dtmf_101() {
    let sd = parse(BARESIP_ANSWER).unwrap();
    let m = &sd.media[0];
    assert_eq!(m.rtcp_port, Some(10011));
    assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
    let n = negotiate(&sd, &ours()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.dtmf_payload_type),
        (Codec::Pcma, 8, Some(101))
    );
    assert_eq!(n.ptime, 20);
    // If we only offered PCMU, the answer's second choice is used.
    let n = negotiate(&sd, &[Codec::Pcmu]).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
}

#[test]
fn hold_with_session_level_sendonly_makes_us_receive_only() {
    let sd = parse(LINPHONE_HOLD).unwrap();
    assert_eq!(sd.direction, Some(Direction::SendOnly));
    assert_eq!(sd.media[1].direction, Direction::SendOnly);
    let n = negotiate(&sd, &ours()).unwrap();
    // opus (96) is skipped; PCMU is the first format we offered.
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(n.is_held());
}

#[test]
fn media_level_direction_overrides_session_level() {
    let text = SIPP_ANSWER
        .replace("a=sendrecv\r\n", "a=recvonly\r\n")
        .replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n");
    let sd = parse(&text).unwrap();
    assert_eq!(sd.media[0].direction, Direction::RecvOnly);
    assert_eq!(
        negotiate(&sd, &ours()).unwrap().direction,
        Direction::SendOnly
    );
    let inactive = parse(&SIPP_ANSWER.replace("a=sendrecv", "a=inactive")).unwrap();
    assert_eq!(
        negotiate(&inactive, &ours()).unwrap().direction,
        Direction::Inactive
    );
}

#[test]
fn old_style_hold_with_zero_address_stops_our_sending() {
    let sd = parse(&SIPP_ANSWER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")).unwrap();
    let n = negotiate(&sd, &ours()).unwrap();
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(!n.direction.sends());
}

#[test]
fn dynamic_payload_type_is_matched_by_rtpmap_name() {
    let text = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 97 120\na=rtpmap:97 pcma/8000\na=rtpmap:120 telephone-event/8000\n";
    let n = negotiate(&parse(text).unwrap(), &ours()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.dtmf_payload_type),
        (Codec::Pcma, 97, Some(120))
    );
}

#[test]
fn rtpmap_overrides_a_static_number_and_wrong_clock_is_not_g711() {
    let text = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0 8\na=rtpmap:0 G722/8000\na=rtpmap:8 PCMA/16000\n";
    let err = negotiate(&parse(text).unwrap(), &ours()).unwrap_err();
    assert_eq!(
        err,
        SdpError::NoCommonCodec {
            offered: vec![0, 8],
            ours: vec!["PCMU", "PCMA"]
        }
    );
}

#[test]
fn media_level_connection_wins_and_rejected_streams_are_skipped() {
    let text = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\nm=video 5000 RTP/AVP 96\r\n\
                    m=audio 5002 RTP/AVP 8\r\nc=IN IP6 ::1\r\n";
    let n = negotiate(&parse(text).unwrap(), &ours()).unwrap();
    assert_eq!(n.remote_rtp, "[::1]:5002".parse().unwrap());
    assert_eq!(n.codec, Codec::Pcma);
    assert_eq!(n.dtmf_payload_type, None);
}

#[test]
fn negotiation_errors_say_what_is_missing() {
    let no_audio =
        parse("v=0\nc=IN IP4 1.2.3.4\nm=audio 0 RTP/AVP 0\nm=video 9 RTP/AVP 96\n").unwrap();
    assert_eq!(negotiate(&no_audio, &ours()), Err(SdpError::NoAudio));
    let no_conn = parse("v=0\nm=audio 9 RTP/AVP 0\n").unwrap();
    assert_eq!(negotiate(&no_conn, &ours()), Err(SdpError::NoConnection));
    let g729 = parse("v=0\nc=IN IP4 1.2.3.4\nm=audio 9 RTP/AVP 18\n").unwrap();
    assert!(matches!(
        negotiate(&g729, &ours()),
        Err(SdpError::NoCommonCodec { .. })
    ));
    assert!(matches!(
        negotiate(&g729, &[]),
        Err(SdpError::NoCommonCodec { .. })
    ));
}

#[test]
fn malformed_bodies_are_rejected_with_the_reason() {
    assert!(matches!(parse(""), Err(SdpError::MissingVersion { .. })));
    assert!(matches!(
        parse("o=x 1 1 IN IP4 1.2.3.4\nv=0\n"),
        Err(SdpError::MissingVersion { .. })
    ));
    assert_eq!(parse("v=0\r\ns=-\r\n"), Err(SdpError::NoMedia));
    assert!(matches!(
        parse("v=0\nm=audio 70000 RTP/AVP 0\n"),
        Err(SdpError::BadPort { line: 2, .. })
    ));
    assert!(matches!(
        parse("v=0\nm=audio x RTP/AVP 0\n"),
        Err(SdpError::BadPort { .. })
    ));
    assert!(matches!(
        parse("v=0\nm=audio 5 RTP/AVP PCMU\n"),
        Err(SdpError::BadFormat { .. })
    ));
    assert!(matches!(
        parse("v=0\nm=audio 5 RTP/AVP 200\n"),
        Err(SdpError::BadFormat { .. })
    ));
    assert!(matches!(
        parse("v=0\nm=audio 5 RTP/AVP\n"),
        Err(SdpError::BadMediaLine { .. })
    ));
    assert!(matches!(
        parse("v=0\nc=IN IP4 host.example\nm=audio 5 RTP/AVP 0\n"),
        Err(SdpError::BadConnection { .. })
    ));
    assert!(matches!(
        parse("v=0\nc=IN IP6 1.2.3.4\nm=audio 5 RTP/AVP 0\n"),
        Err(SdpError::BadConnection { .. })
    ));
    let big = format!("v=0\n{}", "a=x\n".repeat(MAX_SDP_LEN / 4));
    assert!(matches!(parse(&big), Err(SdpError::TooLarge { .. })));
    assert_eq!(parse_bytes(&[b'v', b'=', 0xFF]), Err(SdpError::NotUtf8));
}

#[test]
fn unknown_lines_and_non_rtp_streams_are_tolerated() {
    let text = "v=0\nx-weird\nz=0\nc=IN IP4 224.2.1.1/127/3\nm=image 9 udptl t38\nm=audio 49170/2 RTP/AVP 0\na=rtpmap:bad\na=ptime:abc\n";
    let sd = parse(text).unwrap();
    assert_eq!(sd.media[0].formats, Vec::<u8>::new());
    assert_eq!(sd.media[1].port, 49170);
    assert_eq!(sd.media[1].ptime, None);
    assert_eq!(sd.connection, Some("224.2.1.1".parse().unwrap()));
}

#[test]
fn built_offer_is_valid_sdp_with_crlf_and_both_codecs_in_order() {
    let mut p = OfferParams::new("192.0.2.10".parse().unwrap(), 40000, 777);
    p.codecs = vec![Codec::Pcma, Codec::Pcmu, Codec::Pcma];
    let text = build_offer(&p);
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains('\n'));
    assert!(text.contains("m=audio 40000 RTP/AVP 8 0 101 13\r\n"));
    assert!(text.contains("a=rtpmap:13 CN/8000\r\n"));
    assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
    assert!(text.contains("a=ptime:20\r\na=sendrecv\r\na=rtcp-mux\r\n"));
    let sd = parse(&text).unwrap();
    assert_eq!(sd.origin.as_ref().unwrap().session_version, 777);
    let n = negotiate(&sd, &ours()).unwrap();
    assert_eq!((n.codec, n.dtmf_payload_type), (Codec::Pcma, Some(101)));
    assert_eq!(n.remote_rtp, "192.0.2.10:40000".parse().unwrap());
    assert_eq!((n.rtcp_mux, n.remote_rtcp), (true, n.remote_rtp));
    assert_eq!(n.cn_payload_type, Some(13));

    p.bump_version();
    let sd2 = parse(&build_offer(&p)).unwrap();
    assert_eq!(sd2.origin.unwrap().session_version, 778);
}

#[test]
fn ipv6_offer_uses_ip6_address_type() {
    let p = OfferParams::new("::1".parse().unwrap(), 4000, 1);
    let text = build_offer(&p);
    assert!(text.contains("c=IN IP6 ::1\r\n"));
    assert_eq!(
        parse(&text).unwrap().connection,
        Some("::1".parse().unwrap())
    );
}

#[test]
fn answer_to_a_hold_offer_is_recvonly_with_the_peers_numbers() {
    let offer = parse(LINPHONE_HOLD).unwrap();
    let n = negotiate(&offer, &ours()).unwrap();
    let mut p = OfferParams::new("127.0.0.1".parse().unwrap(), 30000, 5);
    p.bump_version();
    let text = build_answer(&p, &n);
    assert!(text.contains("m=audio 30000 RTP/AVP 0 101\r\n"));
    assert!(text.contains("a=recvonly\r\n"));
    assert!(text.contains("o=duecall 5 6 IN IP4 127.0.0.1\r\n"));
    let back = negotiate(&parse(&text).unwrap(), &ours()).unwrap();
    assert_eq!(back.direction, Direction::SendOnly);
}

#[test]
fn direction_algebra() {
    use Direction::*;
    assert_eq!(SendOnly.reversed(), RecvOnly);
    assert_eq!(Inactive.reversed(), Inactive);
    assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
    assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
}

fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_string()),
        Just("c=IN IP4 127.0.0.1".to_string()),
        Just("a=sendonly".to_string()),
        "m=[a-z]{0,6} [0-9/]{0,7} [A-Z/]{0,8}( [0-9]{1,3}){0,4}",
        "a=(rtpmap|fmtp|ptime|rtcp):[0-9 ]{0,4}[A-Za-z/0-9-]{0,16}",
        "c=IN IP[46] [0-9a-f.:/]{0,20}",
        "o=[ -~]{0,40}",
        "[ -~]{0,30}",
    ]
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = parse(&text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_bytes(&bytes);
    }

    #[test]
    fn parse_and_negotiate_never_panic_on_sdp_like_lines(
        lines in proptest::collection::vec(sdp_line(), 0..20), crlf in any::<bool>(),
    ) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let text = format!("v=0{sep}{}", lines.join(sep));
        if let Ok(sd) = parse(&text) {
            let _ = negotiate(&sd, &ours());
        }
    }

    #[test]
    fn truncated_valid_sdp_never_panics(cut in 0usize..600) {
        let text = BARESIP_ANSWER;
        let cut = cut.min(text.len());
        if let Ok(sd) = parse(&text[..cut]) {
            let _ = negotiate(&sd, &ours());
        }
    }
}

#[test]
fn rtcp_goes_to_the_rtcp_attribute_else_the_port_above_rtp() {
    // baresip's answer: a=rtcp:10011 on m=audio 10010.
    let n = negotiate(&parse(BARESIP_ANSWER).unwrap(), &ours()).unwrap();
    assert!(!n.rtcp_mux);
    assert_eq!(n.remote_rtcp.port(), 10011);
    let plain = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/AVP 0\r\n";
    let n = negotiate(&parse(plain).unwrap(), &ours()).unwrap();
    assert_eq!(n.remote_rtcp, "10.0.0.1:7001".parse().unwrap());
    assert_eq!(n.cn_payload_type, None);
}

#[test]
fn an_answer_muxes_rtcp_and_offers_cn_only_when_the_offer_did() {
    let mut p = OfferParams::new("127.0.0.1".parse().unwrap(), 30000, 5);
    let with = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/AVP 0 13\r\na=rtcp-mux\r\n";
    let n = negotiate(&parse(with).unwrap(), &ours()).unwrap();
    assert_eq!((n.rtcp_mux, n.cn_payload_type), (true, Some(13)));
    let text = build_answer(&p, &n);
    assert!(text.contains("m=audio 30000 RTP/AVP 0 13\r\n"), "{text}");
    assert!(text.contains("a=rtcp-mux\r\n"));
    let without = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/AVP 0\r\n";
    let n = negotiate(&parse(without).unwrap(), &ours()).unwrap();
    let text = build_answer(&p, &n);
    assert!(
        !text.contains("rtcp-mux") && !text.contains("CN/"),
        "{text}"
    );
    // We may decline both even when offered.
    p.rtcp_mux = false;
    p.comfort_noise = false;
    let n = negotiate(&parse(with).unwrap(), &ours()).unwrap();
    let text = build_answer(&p, &n);
    assert!(
        !text.contains("rtcp-mux") && !text.contains(" 13"),
        "{text}"
    );
}

#[test]
fn a_cn_rtpmap_on_a_dynamic_payload_type_is_found() {
    let dynamic =
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/AVP 0 118\r\na=rtpmap:118 CN/8000\r\n";
    let n = negotiate(&parse(dynamic).unwrap(), &ours()).unwrap();
    assert_eq!(n.cn_payload_type, Some(118));
    let wideband =
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/AVP 0 13\r\na=rtpmap:13 CN/16000\r\n";
    let n = negotiate(&parse(wideband).unwrap(), &ours()).unwrap();
    assert_eq!(n.cn_payload_type, None);
}

fn srtp_params(mode: crate::telephony::srtp::SrtpMode) -> OfferParams {
    let mut p = OfferParams::new("127.0.0.1".parse().unwrap(), 30000, 5);
    p.srtp = SdesOffer::for_mode(mode);
    p
}

#[test]
fn a_required_srtp_offer_is_savp_with_both_suites_and_an_offered_one_is_avp() {
    use crate::telephony::srtp::SrtpMode;
    let text = build_offer(&srtp_params(SrtpMode::Require));
    assert!(
        text.contains("m=audio 30000 RTP/SAVP 0 8 101 13\r\n"),
        "{text}"
    );
    assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(text.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"));
    let text = build_offer(&srtp_params(SrtpMode::Offer));
    assert!(
        text.contains("m=audio 30000 RTP/AVP 0 8 101 13\r\n"),
        "{text}"
    );
    assert!(text.contains("a=crypto:1 "));
    assert!(SdesOffer::for_mode(SrtpMode::Off).is_none());
    assert!(!build_offer(&srtp_params(SrtpMode::Off)).contains("crypto"));
}

#[test]
fn an_answer_must_echo_one_of_our_crypto_tags_when_srtp_is_required() {
    use crate::telephony::srtp::{CryptoAttr, MasterKey, SrtpMode, Suite};
    let p = srtp_params(SrtpMode::Require);
    let theirs = CryptoAttr {
        tag: 2,
        suite: Suite::AesCm128HmacSha1_32,
        key: MasterKey::random(),
    };
    let answer = |proto: &str, crypto: &str| {
        format!("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 {proto} 0\r\n{crypto}")
    };
    let good = answer(
        "RTP/SAVP",
        &format!("a=crypto:{}\r\n", theirs.to_sdp_value()),
    );
    let n = negotiate_answer(&parse(&good).unwrap(), &p).unwrap();
    assert_eq!(n.crypto.as_ref(), Some(&theirs));
    assert!(n.savp);
    // A tag we did not offer, or a suite that is not the tag's, is no answer.
    let wrong_tag = CryptoAttr {
        tag: 7,
        ..theirs.clone()
    };
    let wrong_suite = CryptoAttr {
        suite: Suite::AesCm128HmacSha1_80,
        ..theirs.clone()
    };
    for bad in [wrong_tag, wrong_suite] {
        let text = answer("RTP/SAVP", &format!("a=crypto:{}\r\n", bad.to_sdp_value()));
        assert_eq!(
            negotiate_answer(&parse(&text).unwrap(), &p),
            Err(SdpError::SrtpRequired)
        );
    }
    let plain = answer("RTP/AVP", "");
    let err = negotiate_answer(&parse(&plain).unwrap(), &p).unwrap_err();
    assert_eq!(err, SdpError::SrtpRequired);
    assert!(err.to_string().contains("require"));
    // Only offered: a plain answer is plain RTP.
    let n = negotiate_answer(&parse(&plain).unwrap(), &srtp_params(SrtpMode::Offer)).unwrap();
    assert!(n.crypto.is_none());
}

#[test]
fn an_offer_with_keys_is_answered_with_our_key_on_the_same_tag() {
    use crate::telephony::srtp::{CryptoAttr, SrtpMode};
    let offer = build_offer(&srtp_params(SrtpMode::Require));
    let n = negotiate(&parse(&offer).unwrap(), &ours()).unwrap();
    let theirs = n.crypto.clone().expect("the offer's first line");
    assert_eq!(theirs.tag, 1);
    let me = srtp_params(SrtpMode::Offer);
    let text = build_answer(&me, &n);
    assert!(text.contains("RTP/SAVP"), "{text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:"))
        .expect("one crypto line");
    let mine = CryptoAttr::parse(line).unwrap();
    assert_eq!((mine.tag, mine.suite), (1, theirs.suite));
    assert_eq!(mine.key, me.srtp.as_ref().unwrap().key);
    assert_ne!(mine.key, theirs.key);
    // Without SRTP of our own we answer plain.
    let plain = build_answer(&srtp_params(SrtpMode::Off), &n);
    assert!(!plain.contains("crypto") && plain.contains("RTP/AVP"));
}
