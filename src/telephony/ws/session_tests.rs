use super::*;

fn cfg(ahead: u32, marks: bool) -> SessionConfig {
    SessionConfig {
        send_ahead_frames: ahead,
        marks,
        cleared_marks_echo: marks,
        mark_grace_ms: 1000,
        jitter_frames: 2,
        stall_ms: 2000,
    }
}

#[derive(Default, Debug)]
struct Seen {
    sent_frames: Vec<i16>,
    marks: Vec<String>,
    clears: usize,
    events: Vec<LegEvent>,
    record_sent: Vec<i16>,
    record_heard: Vec<i16>,
    ended: Option<SessionEnd>,
    hangups: usize,
    transfers: usize,
}

fn drain(s: &mut StreamSession, seen: &mut Seen) {
    while let Some(o) = s.poll_output() {
        match o {
            Output::Event(e) => seen.events.push(e),
            Output::SendAudio(f) => seen.sent_frames.push(f[0]),
            Output::SendMark(m) => seen.marks.push(m),
            Output::SendClear => seen.clears += 1,
            Output::SendHangup => seen.hangups += 1,
            Output::Transfer { .. } => seen.transfers += 1,
            Output::Record(r) => {
                seen.record_sent.push(r.sent[0]);
                seen.record_heard.push(r.heard[0]);
            }
            Output::Ended(e) => seen.ended = Some(e),
        }
    }
}

/// A prompt whose every frame starts with its frame number (1-based).
fn prompt(frames: usize) -> Arc<[i16]> {
    let mut v = vec![0i16; frames * FRAME_SAMPLES];
    for f in 0..frames {
        v[f * FRAME_SAMPLES] = f as i16 + 1;
    }
    Arc::from(v)
}

fn finished(seen: &Seen) -> Vec<(String, u64)> {
    seen.events
        .iter()
        .filter_map(|e| match e {
            LegEvent::PlayFinished { id, at_ms, .. } => Some((id.clone(), *at_ms)),
            _ => None,
        })
        .collect()
}

fn feed_audio(s: &mut StreamSession, ticks: u64, seen: &mut Seen) {
    for _ in 0..ticks {
        let ts = s.now_ms();
        s.handle_audio(&[100; FRAME_SAMPLES], Some(ts));
        s.handle_tick();
        drain(s, seen);
    }
}

#[test]
fn a_prompt_is_finished_only_when_its_mark_comes_back() {
    let mut s = StreamSession::new(cfg(5, true), "PCMU");
    let mut seen = Seen::default();
    s.handle_command(LegCommand::Play {
        id: "greeting".into(),
        pcm: prompt(10),
    });
    drain(&mut s, &mut seen);
    assert_eq!(
        seen.sent_frames,
        vec![1, 2, 3, 4, 5, 6],
        "send-ahead: 6 frames at once"
    );
    assert!(
        matches!(seen.events[1], LegEvent::PlayStarted { ref id, at_ms: 0 } if id == "greeting")
    );
    feed_audio(&mut s, 20, &mut seen);
    assert_eq!(seen.sent_frames.len(), 10);
    assert_eq!(seen.marks, vec!["m1".to_string()]);
    assert!(
        finished(&seen).is_empty(),
        "all audio sent, but no mark back yet"
    );
    s.handle_mark("m1");
    drain(&mut s, &mut seen);
    assert_eq!(finished(&seen), vec![("greeting".into(), 400)]);
    // The recording has the prompt in the ticks the callee heard it.
    assert_eq!(&seen.record_sent[..11], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0]);
}

#[test]
fn barge_in_clears_the_platform_and_the_recording_keeps_only_what_was_heard() {
    let mut s = StreamSession::new(cfg(5, true), "PCMU");
    let mut seen = Seen::default();
    s.handle_command(LegCommand::Play {
        id: "reminder".into(),
        pcm: prompt(50),
    });
    s.handle_command(LegCommand::Play {
        id: "question".into(),
        pcm: prompt(10),
    });
    drain(&mut s, &mut seen);
    feed_audio(&mut s, 8, &mut seen);
    // 8 ticks heard (frames 1-8), frames up to 13 sent ahead.
    s.handle_command(LegCommand::ClearPlayQueue);
    drain(&mut s, &mut seen);
    assert_eq!(seen.clears, 1);
    let stopped: Vec<(String, u64)> = seen
        .events
        .iter()
        .filter_map(|e| match e {
            LegEvent::PlayStopped { id, played_ms, .. } => Some((id.clone(), *played_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        stopped,
        vec![("reminder".into(), 160), ("question".into(), 0)]
    );
    feed_audio(&mut s, 10, &mut seen);
    assert_eq!(&seen.record_sent[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(
        seen.record_sent[8..].iter().all(|&x| x == 0),
        "{:?}",
        seen.record_sent
    );
    assert_eq!(seen.sent_frames.len(), 14, "nothing sent after the clear");
    assert!(finished(&seen).is_empty());
}

#[test]
fn a_mark_echoed_after_a_clear_does_not_finish_the_next_prompt() {
    let mut s = StreamSession::new(cfg(50, true), "PCMU");
    let mut seen = Seen::default();
    s.handle_command(LegCommand::Play {
        id: "a".into(),
        pcm: prompt(3),
    });
    drain(&mut s, &mut seen);
    assert_eq!(seen.marks, vec!["m1".to_string()]);
    s.handle_command(LegCommand::ClearPlayQueue);
    s.handle_command(LegCommand::Play {
        id: "b".into(),
        pcm: prompt(3),
    });
    s.handle_mark("m1"); // Twilio returns cleared marks
    drain(&mut s, &mut seen);
    assert!(finished(&seen).is_empty(), "{:?}", seen.events);
    s.handle_mark("m2");
    drain(&mut s, &mut seen);
    assert_eq!(finished(&seen), vec![("b".into(), 0)]);
}

#[test]
fn on_a_paced_transport_a_prompt_finishes_with_its_last_frame() {
    let mut s = StreamSession::new(cfg(0, false), "L16");
    let mut seen = Seen::default();
    s.handle_command(LegCommand::Play {
        id: "p".into(),
        pcm: prompt(3),
    });
    drain(&mut s, &mut seen);
    assert_eq!(seen.sent_frames, vec![1], "one frame per tick");
    feed_audio(&mut s, 3, &mut seen);
    assert_eq!(seen.sent_frames, vec![1, 2, 3]);
    assert_eq!(finished(&seen), vec![("p".into(), 60)]);
    assert!(seen.marks.is_empty());
}

#[test]
fn a_lost_mark_is_given_up_after_the_grace_time() {
    let mut s = StreamSession::new(cfg(5, true), "PCMU");
    let mut seen = Seen::default();
    s.handle_command(LegCommand::Play {
        id: "p".into(),
        pcm: prompt(2),
    });
    feed_audio(&mut s, 40, &mut seen);
    assert!(finished(&seen).is_empty());
    feed_audio(&mut s, 20, &mut seen);
    assert_eq!(finished(&seen).len(), 1);
    s.handle_stop();
    drain(&mut s, &mut seen);
    assert_eq!(seen.ended.unwrap().marks_lost, 1);
}

#[test]
fn a_stalled_stream_ends_failed_media_timeout() {
    let mut s = StreamSession::new(cfg(5, true), "PCMU");
    let mut seen = Seen::default();
    feed_audio(&mut s, 10, &mut seen);
    for _ in 0..200 {
        s.handle_tick();
    }
    drain(&mut s, &mut seen);
    let e = seen.ended.expect("ended");
    assert_eq!(e.disposition, Disposition::Failed);
    assert_eq!(e.reason, Some(FailReason::MediaTimeout));
    assert_eq!(e.ended_by, EndedBy::Timeout);
    assert_eq!(
        e.at_ms, 2200,
        "the first tick more than 2 s after the last message (at 180 ms)"
    );
    assert_eq!(e.media.received.packets, 10);
}

#[test]
fn odd_sized_audio_is_cut_into_frames_and_time_passes_as_silence() {
    let mut s = StreamSession::new(cfg(5, true), "PCMU");
    let mut seen = Seen::default();
    s.handle_audio(&[7; 400], Some(0)); // 50 ms
    drain(&mut s, &mut seen);
    let heard: Vec<bool> = seen
        .events
        .iter()
        .filter_map(|e| match e {
            LegEvent::Audio { received, .. } => Some(*received),
            _ => None,
        })
        .collect();
    assert_eq!(heard, vec![true, true], "two whole frames, 80 samples held");
    s.handle_audio(&[7; 80], Some(50));
    drain(&mut s, &mut seen);
    seen.events.clear();
    for _ in 0..12 {
        s.handle_tick();
    }
    drain(&mut s, &mut seen);
    let silent = seen
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                LegEvent::Audio {
                    received: false,
                    ..
                }
            )
        })
        .count();
    // 3 frames arrived at tick 0; with 3 frames of slack the first stand-in
    // comes at tick 7, then one per tick (7..=11).
    assert_eq!(silent, 5);
}

#[test]
fn hangup_and_stop_end_the_session_once() {
    let mut s = StreamSession::new(cfg(5, true), "PCMU");
    let mut seen = Seen::default();
    s.handle_command(LegCommand::Hangup);
    s.handle_stop();
    s.handle_command(LegCommand::Hangup);
    drain(&mut s, &mut seen);
    assert_eq!(seen.hangups, 1);
    assert_eq!(seen.ended.unwrap().ended_by, EndedBy::Us);
}

#[test]
fn dtmf_tones_are_heard_by_the_detector() {
    let pcm = dtmf_tones("5#");
    let mut det = crate::media::tone::DtmfDetector::new();
    let mut got = Vec::new();
    for f in pcm.chunks(FRAME_SAMPLES) {
        det.process(f, &mut got);
    }
    let digits: String = got.iter().map(|d| d.digit).collect();
    assert_eq!(digits, "5#");
}
