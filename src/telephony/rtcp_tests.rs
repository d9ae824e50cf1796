use super::*;
use proptest::prelude::*;

fn block() -> ReportBlock {
    ReportBlock {
        ssrc: 0xAABB_CCDD,
        fraction_lost: 64,
        cumulative_lost: -3,
        highest_seq: 0x0001_0005,
        jitter: 40,
        lsr: 0x1234_5678,
        dlsr: 65536,
    }
}

fn info() -> SenderInfo {
    SenderInfo {
        ntp: 0xE000_0000_8000_0000,
        rtp_timestamp: 160_000,
        packets: 250,
        octets: 40_000,
    }
}

#[test]
fn a_written_sr_sdes_bye_compound_parses_back() {
    let mut out = vec![1, 2, 3];
    write_compound(
        &mut out,
        7,
        Some(&info()),
        Some(&block()),
        "duecall@10.0.0.1",
        true,
    );
    assert_eq!(out.len() % 4, 0);
    let p = parse(&out).unwrap();
    assert_eq!(p.len(), 3, "{p:?}");
    assert_eq!(
        p[0],
        RtcpPacket::Sender {
            ssrc: 7,
            info: info(),
            blocks: vec![block()]
        }
    );
    assert_eq!(
        p[1],
        RtcpPacket::Other {
            packet_type: PT_SDES
        }
    );
    assert_eq!(p[2], RtcpPacket::Bye { ssrcs: vec![7] });
    assert!(is_rtcp(&out));
}

#[test]
fn a_receiver_report_without_blocks_is_valid() {
    let mut out = Vec::new();
    write_compound(&mut out, 9, None, None, "x", false);
    assert_eq!(
        parse(&out).unwrap(),
        vec![
            RtcpPacket::Receiver {
                ssrc: 9,
                blocks: vec![]
            },
            RtcpPacket::Other {
                packet_type: PT_SDES
            }
        ]
    );
}

#[test]
fn cnames_of_every_length_keep_the_sdes_aligned() {
    for n in 0..12 {
        let cname = "c".repeat(n);
        let mut out = Vec::new();
        write_compound(&mut out, 1, None, None, &cname, true);
        assert!(parse(&out).is_ok(), "cname of {n}");
        // The CNAME item is followed by at least one null (END).
        assert_eq!(out[8 + 4 + 4 + 2 + n], 0);
    }
}

#[test]
fn rtp_is_not_taken_for_rtcp_on_a_muxed_port() {
    let mut rtp_pkt = Vec::new();
    crate::telephony::rtp::write(
        &crate::telephony::rtp::RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 1,
            timestamp: 2,
            ssrc: 3,
        },
        &[0; 160],
        &mut rtp_pkt,
    );
    assert!(!is_rtcp(&rtp_pkt));
    rtp_pkt[1] = 101 | 0x80;
    assert!(!is_rtcp(&rtp_pkt), "DTMF with the marker bit");
}

#[test]
fn lengths_that_run_past_or_stop_short_of_the_datagram_are_rejected() {
    let mut out = Vec::new();
    write_compound(&mut out, 7, Some(&info()), Some(&block()), "cname", false);
    // One byte short: the SDES runs past the end.
    assert!(matches!(
        parse(&out[..out.len() - 1]),
        Err(RtcpError::BadLength { .. })
    ));
    // Trailing garbage after the last packet.
    let mut longer = out.clone();
    longer.extend_from_slice(&[0x80, 0]);
    assert!(matches!(parse(&longer), Err(RtcpError::BadLength { .. })));
    // A length field claiming the whole 16-bit range.
    let mut huge = out.clone();
    huge[2] = 0xFF;
    huge[3] = 0xFF;
    assert!(matches!(parse(&huge), Err(RtcpError::BadLength { .. })));
}

#[test]
fn a_report_count_larger_than_the_packet_is_rejected() {
    let mut out = Vec::new();
    write_compound(&mut out, 7, None, Some(&block()), "c", false);
    out[0] = 0x80 | 31; // 31 blocks claimed, one present
    assert!(matches!(
        parse(&out),
        Err(RtcpError::BadCount {
            packet_type: PT_RR,
            count: 31,
            ..
        })
    ));
    let mut sr = Vec::new();
    write_compound(&mut sr, 7, Some(&info()), None, "c", true);
    let bye_at = sr.len() - 8;
    sr[bye_at] = 0x80 | 2; // BYE with two SSRCs, room for one
    assert!(matches!(
        parse(&sr),
        Err(RtcpError::BadCount {
            packet_type: PT_BYE,
            ..
        })
    ));
}

#[test]
fn a_compound_must_start_with_an_rtcp_type_and_be_version_2() {
    let mut out = Vec::new();
    write_compound(&mut out, 7, None, None, "c", false);
    // libre's lone APP "PING" and BYE-first compounds are RTCP.
    let sdes = out[8..].to_vec();
    assert!(parse(&sdes).is_ok());
    let app_ping = [0x80, 204, 0, 2, 0, 0, 0, 7, b'P', b'I', b'N', b'G'];
    assert_eq!(
        parse(&app_ping).unwrap(),
        vec![RtcpPacket::Other { packet_type: 204 }]
    );
    let mut rtp_like = sdes.clone();
    rtp_like[1] = 0x80; // an RTP packet with the marker bit, PT 0
    assert_eq!(
        parse(&rtp_like),
        Err(RtcpError::NotRtcp { packet_type: 0x80 })
    );
    out[8] = 0x41;
    assert_eq!(
        parse(&out),
        Err(RtcpError::BadVersion {
            offset: 8,
            version: 1
        })
    );
    assert_eq!(parse(&[0x80, 201, 0]), Err(RtcpError::BadSize { len: 3 }));
}

#[test]
fn padding_only_on_the_last_packet_and_within_it() {
    let mut out = Vec::new();
    write_compound(&mut out, 7, None, None, "c", false);
    // Padding bit on the first packet of two.
    let mut first = out.clone();
    first[0] |= 0x20;
    assert!(matches!(
        parse(&first),
        Err(RtcpError::BadPadding { offset: 0 })
    ));
    // A last packet padded by 4 bytes parses; by 0 or too many, it does not.
    let mut last = out.clone();
    last[8] |= 0x20;
    let n = last.len();
    let words = u16::from_be_bytes([last[10], last[11]]) + 1;
    last[10..12].copy_from_slice(&words.to_be_bytes());
    last.extend_from_slice(&[0, 0, 0, 4]);
    assert!(parse(&last).is_ok());
    last[n + 3] = 0;
    assert!(matches!(parse(&last), Err(RtcpError::BadPadding { .. })));
    last[n + 3] = 200;
    assert!(matches!(parse(&last), Err(RtcpError::BadPadding { .. })));
}

#[test]
fn negative_cumulative_loss_survives_the_24_bit_field() {
    let mut out = Vec::new();
    for lost in [-3, 0, 5, 0x7F_FFFF, -0x80_0000] {
        let b = ReportBlock {
            cumulative_lost: lost,
            ..block()
        };
        write_compound(&mut out, 1, None, Some(&b), "c", false);
        match &parse(&out).unwrap()[0] {
            RtcpPacket::Receiver { blocks, .. } => assert_eq!(blocks[0].cumulative_lost, lost),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn rtt_is_arrival_minus_lsr_minus_dlsr_as_in_rfc_3550_figure_2() {
    // A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
    // DLSR = 0x0005:4000 (5.250 s): RTT 6.125 s.
    let b = ReportBlock {
        lsr: 0xB705_2000,
        dlsr: 0x0005_4000,
        ..block()
    };
    let arrival = 0x0000_B710_8000_0000u64;
    assert_eq!(round_trip_ms(&b, arrival), Some(6125.0));
    assert_eq!(round_trip_ms(&ReportBlock { lsr: 0, ..b }, arrival), None);
    // A DLSR larger than the elapsed time is not a negative RTT.
    let forged = ReportBlock {
        dlsr: 0x00FF_0000,
        ..b
    };
    assert_eq!(round_trip_ms(&forged, arrival), None);
}

#[test]
fn ntp_time_of_the_unix_epoch_and_of_half_a_second() {
    assert_eq!(ntp_from_unix_micros(0), 2_208_988_800u64 << 32);
    assert_eq!(
        ntp_from_unix_micros(1_500_000),
        ((2_208_988_801u64) << 32) | 0x8000_0000
    );
    assert_eq!(ntp_middle(0x0000_B710_8000_0000), 0xB710_8000);
}

/// Feeds packets `seqs` of SSRC 5, 20 ms (160 units) apart, arriving on time.
fn feed(s: &mut ReceiveStats, seqs: impl IntoIterator<Item = u16>) {
    for seq in seqs {
        let ts = u32::from(seq).wrapping_mul(160);
        s.on_rtp(5, seq, Some((ts, ts.wrapping_add(1000))));
    }
}

#[test]
fn loss_counts_the_gaps_and_the_report_carries_the_interval_fraction() {
    let mut s = ReceiveStats::new();
    assert!(s.report_block(0).is_none());
    feed(&mut s, (0..100).filter(|n| n % 4 != 3)); // a quarter lost
    assert_eq!(s.lost(), 24); // 0..=98 expected: 99, received 75
    let b = s.report_block(5_000_000).unwrap();
    assert_eq!(b.ssrc, 5);
    assert_eq!(b.cumulative_lost, 24);
    assert_eq!(b.highest_seq, 98);
    assert_eq!(b.fraction_lost, (24 * 256 / 99) as u8);
    // The next interval lost nothing.
    feed(&mut s, 99..200);
    let b = s.report_block(10_000_000).unwrap();
    assert_eq!(b.fraction_lost, 0);
    assert_eq!(b.cumulative_lost, 24);
    assert_eq!(b.jitter, 0, "packets on time: no jitter");
}

#[test]
fn the_sequence_wrap_extends_the_highest_sequence() {
    let mut s = ReceiveStats::new();
    feed(&mut s, (65530..=65535).chain(0..10));
    let b = s.report_block(0).unwrap();
    assert_eq!(b.highest_seq, 65536 + 9);
    assert_eq!(b.cumulative_lost, 0);
}

#[test]
fn a_late_or_duplicate_packet_does_not_move_the_highest_sequence() {
    let mut s = ReceiveStats::new();
    feed(&mut s, [10, 11, 13, 12, 13]);
    let b = s.report_block(0).unwrap();
    assert_eq!(b.highest_seq, 13);
    assert_eq!(
        b.cumulative_lost, -1,
        "a duplicate makes the count negative"
    );
}

#[test]
fn a_jump_is_a_restart_only_when_the_next_packet_confirms_it() {
    let mut s = ReceiveStats::new();
    feed(&mut s, 0..50);
    feed(&mut s, [30_000]); // one stray packet far ahead: ignored
    feed(&mut s, 50..60);
    assert_eq!(s.report_block(0).unwrap().highest_seq, 59);
    feed(&mut s, [40_000, 40_001, 40_002]); // a confirmed restart
    let b = s.report_block(0).unwrap();
    assert_eq!(b.highest_seq, 40_002);
    assert_eq!(b.cumulative_lost, 0);
}

#[test]
fn a_new_ssrc_starts_the_counts_over() {
    let mut s = ReceiveStats::new();
    feed(&mut s, 0..10);
    s.on_rtp(6, 500, None);
    let b = s.report_block(0).unwrap();
    assert_eq!((b.ssrc, b.highest_seq, b.cumulative_lost), (6, 500, 0));
}

#[test]
fn jitter_follows_rfc_3550_a8_for_alternating_delays() {
    // Every other packet 80 units (10 ms) late: |D| = 80 each time; J
    // converges to 80.
    let mut s = ReceiveStats::new();
    for seq in 0..400u16 {
        let ts = u32::from(seq) * 160;
        let late = if seq % 2 == 1 { 80 } else { 0 };
        s.on_rtp(1, seq, Some((ts, ts + late)));
    }
    assert!((78..=80).contains(&s.jitter()), "{}", s.jitter());
    assert_eq!(s.jitter_max(), s.jitter());
    let mut r = RtcpReport::default();
    r.finish_rx(&s);
    assert!((r.rx.jitter_ms - 10.0).abs() < 0.3, "{:?}", r.rx);
}

#[test]
fn dlsr_is_the_delay_since_the_peers_last_sender_report() {
    let mut s = ReceiveStats::new();
    feed(&mut s, 0..5);
    s.on_sender_report(5, 0x0000_B705_2000_0000, 1_000_000);
    let b = s.report_block(2_500_000).unwrap();
    assert_eq!(b.lsr, 0xB705_2000);
    assert_eq!(b.dlsr, 65536 * 3 / 2);
    // An SR from another source is not ours to echo.
    s.on_sender_report(99, 0x0000_1111_0000_0000, 2_000_000);
    assert_eq!(s.report_block(2_500_000).unwrap().lsr, 0xB705_2000);
}

#[test]
fn the_report_keeps_the_last_and_largest_rtt_and_the_peers_view() {
    let mut r = RtcpReport::default();
    let b = ReportBlock {
        lsr: 0xB705_2000,
        dlsr: 0x0005_4000,
        fraction_lost: 128,
        cumulative_lost: 7,
        jitter: 160,
        ..block()
    };
    r.peer_block(&b, 0x0000_B710_8000_0000);
    r.peer_block(&ReportBlock { jitter: 8, ..b }, 0x0000_B710_4000_0000);
    let rtt = r.rtt_ms.unwrap();
    assert_eq!((rtt.last, rtt.max, rtt.samples), (5875.0, 6125.0, 2));
    let p = r.peer.unwrap();
    assert_eq!(
        (p.jitter_ms, p.jitter_max_ms, p.lost, p.fraction_lost),
        (1.0, 20.0, 7, 0.5)
    );
}

proptest! {
    #[test]
    fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&buf);
    }

    #[test]
    fn parse_never_panics_on_report_like_bytes(
        first in 0x80u8..=0xBF, pt in 200u8..=204, rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut buf = vec![first, pt];
        buf.extend(rest);
        if let Ok(pkts) = parse(&buf) {
            prop_assert!(pkts.len() <= buf.len() / 4);
        }
    }

    #[test]
    fn what_we_write_always_parses(
        ssrc in any::<u32>(), sr in any::<bool>(), with_block in any::<bool>(), bye in any::<bool>(),
        cname in "[ -~]{0,300}", lost in -0x80_0000i32..=0x7F_FFFF,
    ) {
        let mut out = Vec::new();
        let b = ReportBlock { cumulative_lost: lost, ..block() };
        write_compound(&mut out, ssrc, sr.then_some(&info()), with_block.then_some(&b), &cname, bye);
        let p = parse(&out).unwrap();
        prop_assert_eq!(p.len(), 2 + usize::from(bye));
    }

    #[test]
    fn stats_never_panic_and_loss_stays_within_what_was_expected(
        pkts in proptest::collection::vec((any::<u16>(), any::<u32>(), any::<u32>()), 0..300),
    ) {
        let mut s = ReceiveStats::new();
        for (seq, ts, at) in pkts {
            s.on_rtp(1, seq, Some((ts, at)));
            let _ = s.report_block(u64::from(at));
        }
        prop_assert!(s.fraction_lost_total() <= 1.0);
    }
}

#[test]
fn two_sessions_exchanging_reports_see_each_others_loss_jitter_and_rtt() {
    // A sends to B; B loses every 10th packet; reports cross with 40 ms of
    // one-way delay.
    let mut a = RtcpSession::new(1, "a".into(), 0, false, 0);
    let mut b = RtcpSession::new(2, "b".into(), 0, false, 0);
    for seq in 0..251u16 {
        if seq % 10 != 9 {
            let ts = u32::from(seq) * 160;
            b.stats_mut().on_rtp(1, seq, Some((ts, ts + 320)));
        }
    }
    let mut out = Vec::new();
    // A's SR at 5 s reaches B at 5.04 s.
    a.write_report(&mut out, 5_000_000, (40_000, 250, 40_000), false, 5_000_000);
    assert!(matches!(parse(&out).unwrap()[0], RtcpPacket::Sender { .. }));
    b.on_datagram(&out, 5_040_000).unwrap();
    // B answers 1 s later with an RR (it sent nothing); A gets it at 6.08 s.
    b.write_report(&mut out, 6_040_000, (0, 0, 0), false, 5_000_000);
    assert!(matches!(
        parse(&out).unwrap()[0],
        RtcpPacket::Receiver { .. }
    ));
    a.on_datagram(&out, 6_080_000).unwrap();
    assert!(!a.due(6_080_000) && a.due(10_000_000));
    let ra = a.finish();
    let peer = ra.peer.unwrap();
    assert_eq!(peer.lost, 25);
    assert!((peer.fraction_lost - 25.0 / 251.0).abs() < 0.01, "{peer:?}");
    let rtt = ra.rtt_ms.unwrap();
    assert!((rtt.last - 80.0).abs() < 0.1, "{rtt:?}");
    assert_eq!((ra.sent_reports, ra.received_reports), (1, 1));
    let rb = b.finish();
    assert_eq!(rb.rx.lost, 25);
    assert_eq!(rb.rx.jitter_ms, 0.0);
    assert!(rb.peer.is_none() && rb.rtt_ms.is_none());
}

#[test]
fn a_malformed_datagram_and_a_bye_are_counted() {
    let mut s = RtcpSession::new(1, "a".into(), 0, true, 0);
    assert!(s.on_datagram(&[0x80, 201, 0, 9, 0, 0, 0, 0], 0).is_err());
    let mut out = Vec::new();
    write_compound(&mut out, 5, None, None, "peer", true);
    s.on_datagram(&out, 0).unwrap();
    // An APP packet alone is valid but no report.
    s.on_datagram(&[0x80, 204, 0, 2, 0, 0, 0, 5, b'P', b'I', b'N', b'G'], 0)
        .unwrap();
    let r = s.finish();
    assert_eq!(
        (r.dropped, r.received_reports, r.peer_bye, r.mux),
        (1, 1, true, true)
    );
}
