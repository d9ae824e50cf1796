use super::*;

const SSRC: u32 = 0x5EED;

fn frame(n: u16) -> Vec<u8> {
    let mut v = vec![0u8; 160];
    v[..2].copy_from_slice(&n.to_be_bytes());
    v
}

fn push(jb: &mut JitterBuffer, seq: u16) -> Arrival {
    jb.push(SSRC, seq, u32::from(seq).wrapping_mul(160), &frame(seq))
}

/// One tick: the sequence number written in the frame played, if any.
fn pop_seq(jb: &mut JitterBuffer) -> Option<u16> {
    let mut out = [0u8; 160];
    match jb.pop_into(&mut out, 0xFF) {
        Playout::Audio => Some(u16::from_be_bytes([out[0], out[1]])),
        _ => None,
    }
}

/// Pops `ticks` frames; returns the sequence numbers (None for a gap).
fn drain(jb: &mut JitterBuffer, ticks: usize) -> Vec<Option<u16>> {
    (0..ticks).map(|_| pop_seq(jb)).collect()
}

#[test]
fn nothing_received_is_not_started() {
    let mut jb = JitterBuffer::new(3);
    let mut out = [0u8; 160];
    assert_eq!(jb.pop_into(&mut out, 0xFF), Playout::NotStarted);
    assert!(out.iter().all(|&b| b == 0xFF), "filled with silence");
    push(&mut jb, 10);
    assert_eq!(jb.pop_into(&mut out, 0xFF), Playout::NotStarted);
}

#[test]
fn playout_starts_at_depth_and_keeps_order() {
    let mut jb = JitterBuffer::new(3);
    let mut out = Vec::new();
    for s in 100..110u16 {
        assert_eq!(push(&mut jb, s), Arrival::Fresh);
        out.push(pop_seq(&mut jb));
    }
    assert_eq!(out[..2], [None, None]);
    assert_eq!(out[2..], (100..108).map(Some).collect::<Vec<_>>()[..]);
    assert_eq!(jb.stats().lost, 0);
}

#[test]
fn reordered_packets_come_out_in_order_and_only_the_newest_are_fresh() {
    let mut jb = JitterBuffer::new(3);
    let arrivals: Vec<Arrival> = [1u16, 3, 2, 5, 4, 6]
        .iter()
        .map(|&s| push(&mut jb, s))
        .collect();
    use Arrival::*;
    assert_eq!(arrivals, vec![Fresh, Fresh, Old, Fresh, Old, Fresh]);
    let got = drain(&mut jb, 6);
    assert_eq!(got, (1..=6).map(Some).collect::<Vec<_>>());
    assert_eq!(jb.stats().reordered, 2);
    assert_eq!(jb.stats().lost, 0);
}

#[test]
fn reordering_before_the_first_frame_moves_the_start_back() {
    let mut jb = JitterBuffer::new(3);
    push(&mut jb, 11);
    assert_eq!(push(&mut jb, 10), Arrival::Old);
    push(&mut jb, 12);
    assert_eq!(drain(&mut jb, 3), vec![Some(10), Some(11), Some(12)]);
}

#[test]
fn late_packet_is_dropped_and_counted() {
    let mut jb = JitterBuffer::new(2);
    push(&mut jb, 1);
    push(&mut jb, 3);
    assert_eq!(drain(&mut jb, 2), vec![Some(1), None]);
    assert_eq!(push(&mut jb, 2), Arrival::Old); // its slot was just played as missing
    assert_eq!(drain(&mut jb, 1), vec![Some(3)]);
    let st = jb.stats();
    assert_eq!((st.late, st.lost, st.received), (1, 1, 3));
}

#[test]
fn loss_is_counted_once() {
    let mut jb = JitterBuffer::new(2);
    for s in [1u16, 2, 4, 5] {
        push(&mut jb, s);
    }
    assert_eq!(drain(&mut jb, 4), vec![Some(1), Some(2), None, Some(4)]);
    // More ticks: packet 5, then the sender is silent: gaps but no loss.
    assert_eq!(drain(&mut jb, 5), vec![Some(5), None, None, None, None]);
    assert_eq!(jb.stats().lost, 1);
}

#[test]
fn silent_sender_holds_the_play_position() {
    let mut jb = JitterBuffer::new(2);
    push(&mut jb, 1);
    push(&mut jb, 2);
    assert_eq!(drain(&mut jb, 5), vec![Some(1), Some(2), None, None, None]);
    // The sender resumes with the next sequence number: not late.
    assert_eq!(push(&mut jb, 3), Arrival::Fresh);
    push(&mut jb, 4);
    assert_eq!(drain(&mut jb, 2), vec![Some(3), Some(4)]);
    assert_eq!((jb.stats().late, jb.stats().lost), (0, 0));
}

#[test]
fn a_comfort_noise_packet_between_talkspurts_is_neither_lost_nor_a_gap() {
    let mut jb = JitterBuffer::new(2);
    push(&mut jb, 1);
    push(&mut jb, 2);
    assert_eq!(drain(&mut jb, 2), vec![Some(1), Some(2)]);
    // The sender goes quiet with a CN packet (seq 3), then speaks again.
    assert_eq!(jb.push_silent(SSRC, 3, 3 * 160), Arrival::Fresh);
    assert_eq!(drain(&mut jb, 4), vec![None, None, None, None]);
    push(&mut jb, 4);
    push(&mut jb, 5);
    // No gap is played for packet 3 once the talkspurt resumes.
    assert_eq!(drain(&mut jb, 3), vec![Some(4), Some(5), None]);
    assert_eq!((jb.stats().lost, jb.stats().late), (0, 0));
    // Without it, 3's turn with 4 present is a loss.
    let mut jb = JitterBuffer::new(2);
    for s in [1u16, 2, 4, 5] {
        push(&mut jb, s);
    }
    let _ = drain(&mut jb, 5);
    assert_eq!(jb.stats().lost, 1);
}

#[test]
fn a_stream_that_starts_with_comfort_noise_plays_its_first_audio_whole() {
    let mut jb = JitterBuffer::new(2);
    jb.push_silent(SSRC, 10, 1600);
    assert_eq!(drain(&mut jb, 3), vec![None, None, None]);
    push(&mut jb, 11);
    push(&mut jb, 12);
    assert_eq!(drain(&mut jb, 2), vec![Some(11), Some(12)]);
    assert_eq!(jb.stats().lost, 0);
    // An empty payload through push is still rejected.
    assert_eq!(jb.push(SSRC, 13, 0, &[]), Arrival::Rejected);
}

#[test]
fn sequence_wraps_around_at_65535() {
    let mut jb = JitterBuffer::new(3);
    for s in [65533u16, 65534, 0, 65535, 1, 2] {
        push(&mut jb, s);
    }
    let got = drain(&mut jb, 6);
    assert_eq!(
        got,
        vec![
            Some(65533),
            Some(65534),
            Some(65535),
            Some(0),
            Some(1),
            Some(2)
        ]
    );
    assert_eq!(jb.stats().lost, 0);
    assert_eq!(jb.stats().reordered, 1);
}

#[test]
fn duplicate_is_ignored() {
    let mut jb = JitterBuffer::new(2);
    push(&mut jb, 7);
    assert_eq!(push(&mut jb, 7), Arrival::Old); // still queued
    push(&mut jb, 8);
    assert_eq!(drain(&mut jb, 1), vec![Some(7)]);
    assert_eq!(push(&mut jb, 7), Arrival::Old); // already played
    push(&mut jb, 9);
    assert_eq!(drain(&mut jb, 3), vec![Some(8), Some(9), None]);
    let st = jb.stats();
    assert_eq!((st.duplicates, st.late, st.lost), (2, 0, 0));
}

#[test]
fn resyncs_after_a_sequence_jump_and_the_new_stream_is_fresh() {
    let mut jb = JitterBuffer::new(2);
    for s in 1..=4u16 {
        push(&mut jb, s);
    }
    assert_eq!(drain(&mut jb, 2), vec![Some(1), Some(2)]);
    // New stream far away: the first far packet waits for a second.
    assert_eq!(push(&mut jb, 30004), Arrival::Held);
    assert_eq!(drain(&mut jb, 1), vec![Some(3)]);
    assert_eq!(push(&mut jb, 30005), Arrival::Resync);
    let head = jb.resync_head().expect("first packet of the new stream");
    assert_eq!(u16::from_be_bytes([head[0], head[1]]), 30004);
    assert_eq!(push(&mut jb, 30006), Arrival::Fresh);
    let got = drain(&mut jb, 3);
    assert_eq!(got, vec![Some(30004), Some(30005), Some(30006)]);
    let st = jb.stats();
    assert_eq!((st.resyncs, st.late, st.strays), (1, 0, 0));
}

#[test]
fn one_packet_30000_ahead_does_not_make_the_stream_old() {
    let mut jb = JitterBuffer::new(2);
    push(&mut jb, 1);
    push(&mut jb, 2);
    assert_eq!(push(&mut jb, 30002), Arrival::Held);
    // The genuine stream goes on: every packet is still new.
    for s in 3..=20u16 {
        assert_eq!(push(&mut jb, s), Arrival::Fresh, "packet {s}");
    }
    assert_eq!(jb.stats().strays, 1);
    assert_eq!(jb.stats().resyncs, 0);
}

#[test]
fn isolated_far_packet_is_a_stray_not_a_resync() {
    let mut jb = JitterBuffer::new(1);
    push(&mut jb, 1);
    push(&mut jb, 20000);
    push(&mut jb, 2);
    push(&mut jb, 50000);
    push(&mut jb, 3);
    assert_eq!(drain(&mut jb, 3), vec![Some(1), Some(2), Some(3)]);
    assert_eq!(jb.stats().resyncs, 0);
    assert_eq!(jb.stats().strays, 2);
}

#[test]
fn another_ssrc_needs_two_consecutive_packets_to_take_over() {
    let mut jb = JitterBuffer::new(1);
    push(&mut jb, 1);
    // Same sequence numbers, another source: not this stream.
    assert_eq!(jb.push(99, 2, 0, &frame(502)), Arrival::Held);
    assert_eq!(push(&mut jb, 2), Arrival::Fresh);
    assert_eq!(jb.push(99, 3, 0, &frame(503)), Arrival::Held);
    assert_eq!(jb.push(99, 4, 0, &frame(504)), Arrival::Resync);
    assert_eq!(jb.stats().resyncs, 1);
    assert_eq!(jb.stats().strays, 1);
}

#[test]
fn ten_and_thirty_ms_packets_are_played_as_20_ms_frames() {
    for size in [80usize, 240] {
        let mut jb = JitterBuffer::new(3);
        let total = 7680usize; // 0.96 s: whole packets at either size
        let mut played = Vec::new();
        let mut sent = 0usize;
        let mut seq = 0u16;
        let mut out = [0u8; 160];
        // The sender's clock: packets leave as their audio is due.
        for tick in 0..70usize {
            while sent < total && sent < (tick + 1) * 160 {
                let payload: Vec<u8> = (sent..sent + size).map(|i| (i / 160) as u8).collect();
                jb.push(SSRC, seq, sent as u32, &payload);
                seq = seq.wrapping_add(1);
                sent += size;
            }
            if jb.pop_into(&mut out, 0xFF) == Playout::Audio {
                played.extend_from_slice(&out);
            }
        }
        let audio: Vec<u8> = played.iter().copied().filter(|&b| b != 0xFF).collect();
        assert_eq!(
            audio.len(),
            total,
            "ptime {} ms: every sample once",
            size / 8
        );
        assert!(
            audio.windows(2).all(|w| w[0] <= w[1]),
            "ptime {} ms: in order",
            size / 8
        );
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().overflow, 0, "ptime {} ms", size / 8);
    }
}

#[test]
fn a_lost_10_ms_packet_leaves_a_10_ms_gap() {
    let mut jb = JitterBuffer::new(1);
    for s in [0u16, 1, 3, 4] {
        jb.push(SSRC, s, u32::from(s) * 80, &[s as u8 + 1; 80]);
    }
    let mut out = [0u8; 160];
    assert_eq!(jb.pop_into(&mut out, 0), Playout::Audio);
    assert!(out[..80].iter().all(|&b| b == 1) && out[80..].iter().all(|&b| b == 2));
    assert_eq!(jb.pop_into(&mut out, 0), Playout::Audio);
    assert!(out[..80].iter().all(|&b| b == 0), "the lost packet's 10 ms");
    assert!(out[80..].iter().all(|&b| b == 4));
    assert_eq!(jb.stats().lost, 1);
}

#[test]
fn empty_and_oversized_payloads_are_rejected() {
    let mut jb = JitterBuffer::new(1);
    assert_eq!(jb.push(SSRC, 1, 0, &[]), Arrival::Rejected);
    assert_eq!(
        jb.push(SSRC, 1, 0, &vec![0; MAX_PAYLOAD + 1]),
        Arrival::Rejected
    );
    assert_eq!(jb.stats().rejected, 2);
    assert_eq!(jb.buffered(), 0);
}

#[test]
fn overfull_buffer_sheds_one_packet_per_tick_down_to_high_water() {
    let mut jb = JitterBuffer::new(3);
    for s in 0..20u16 {
        push(&mut jb, s);
    }
    // 20 queued, high water 10: each tick sheds one and plays one.
    let got = drain(&mut jb, 6);
    assert_eq!(
        got,
        vec![Some(1), Some(3), Some(5), Some(7), Some(9), Some(10)]
    );
    assert_eq!(jb.stats().overflow, 5);
    assert_eq!(jb.buffered(), 9);
    assert_eq!(drain(&mut jb, 1), vec![Some(11)]);
    assert_eq!(jb.stats().lost, 0);
}

#[test]
fn clock_drift_does_not_grow_latency_without_bound() {
    // Sender 1% fast: one extra packet every 100 ticks, for 10 minutes.
    let mut jb = JitterBuffer::new(3);
    let mut seq = 0u16;
    let mut out = [0u8; 160];
    for tick in 0..30_000u32 {
        push(&mut jb, seq);
        seq = seq.wrapping_add(1);
        if tick % 100 == 99 {
            push(&mut jb, seq);
            seq = seq.wrapping_add(1);
        }
        let _ = jb.pop_into(&mut out, 0xFF);
        assert!(jb.buffered() <= 11);
    }
    assert_eq!(jb.stats().lost, 0);
}

#[test]
fn reset_starts_a_new_stream_with_the_next_packet() {
    let mut jb = JitterBuffer::new(1);
    push(&mut jb, 1);
    push(&mut jb, 2);
    jb.reset();
    assert_eq!(jb.buffered(), 0);
    assert_eq!(jb.push(7, 40000, 0, &frame(40000)), Arrival::Fresh);
    assert_eq!(drain(&mut jb, 1), vec![Some(40000)]);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_arrival_order_never_panics_and_frames_come_out_increasing(
            ops in proptest::collection::vec((any::<bool>(), any::<u16>(), 0u16..8), 0..400),
            depth in 1usize..6,
        ) {
            let mut jb = JitterBuffer::new(depth);
            let mut base = 1000u16;
            let mut last: Option<u16> = None;
            for (is_pop, raw, jitter) in ops {
                if is_pop {
                    if let Some(s) = pop_seq(&mut jb) {
                        if let Some(prev) = last {
                            // Increasing, unless a resync happened.
                            prop_assert!(s.wrapping_sub(prev) != 0);
                        }
                        last = Some(s);
                    }
                } else {
                    // Mostly near the stream, sometimes anywhere.
                    let s = if raw % 10 == 0 { raw } else { base.wrapping_add(jitter) };
                    base = base.wrapping_add(1);
                    let _ = jb.push(SSRC, s, 0, &frame(s));
                }
                prop_assert!(jb.buffered() <= WINDOW as usize);
                prop_assert!(jb.buffered_samples() <= WINDOW as usize * 160);
            }
        }

        #[test]
        fn any_packet_sizes_and_sources_never_panic_and_stay_bounded(
            ops in proptest::collection::vec((0u8..4, any::<u16>(), 0usize..1100, 0u32..3), 0..300),
        ) {
            let mut jb = JitterBuffer::new(3);
            let mut out = [0u8; 160];
            for (op, seq, len, ssrc) in ops {
                if op == 0 {
                    let _ = jb.pop_into(&mut out, 0xFF);
                } else {
                    let payload = vec![1u8; len];
                    let a = jb.push(ssrc, seq, 0, &payload);
                    if a == Arrival::Resync {
                        prop_assert!(jb.resync_head().is_some());
                    }
                }
                prop_assert!(jb.buffered_samples() <= WINDOW as usize * MAX_PAYLOAD);
            }
        }
    }
}
