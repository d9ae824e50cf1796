//! The safety limits, on simulated time: an utterance that never ends, a
//! call that runs too long, a prompt whose end is never reported, and a
//! shutdown mid-call. None of them may hold a call slot or leave dead air.

use super::*;

fn closing_then_hang_up(h: &mut H) {
    assert_eq!(h.playing.as_deref(), Some("closing"), "{:?}", h.plays());
    let out = h.finish();
    assert!(out.contains(&Action::Hangup), "{out:?}");
    assert!(h.c.is_ended());
}

#[test]
fn speech_that_never_ends_is_cut_at_the_utterance_limit_and_the_silence_rules_apply_again() {
    let mut h = H::with(Language::En, |c, _| c.max_utterance_ms = 20_000);
    h.reach_reminder();
    let start = h.t + 100;
    h.at(start, Event::SpeechStart);
    assert_eq!(
        h.next_timer(),
        None,
        "no no-input timer while someone talks"
    );
    assert_eq!(
        h.c.poll_timeout(),
        Some(start + 20_000),
        "only the utterance limit"
    );
    let out = h.at(start + 20_000, Event::Timeout);
    assert_eq!(
        out,
        vec![Action::EndUtterance],
        "the recognizer is told to end it"
    );
    // The VAD still hears sound, but the no-input clock runs again.
    assert_eq!(h.next_timer(), Some(start + 20_000 + 5_000));
    let out = h.at(start + 25_000, Event::Timeout);
    assert_eq!(
        play_of(&out),
        vec![("reask_reminder".to_string(), true)],
        "the silence ladder goes on"
    );
}

#[test]
fn the_transcript_of_a_cut_utterance_is_still_a_reply() {
    let mut h = H::with(Language::En, |c, _| c.max_utterance_ms = 20_000);
    h.reach_reminder();
    let start = h.t + 100;
    h.at(start, Event::SpeechStart);
    h.at(start + 20_000, Event::Timeout);
    h.at(
        start + 20_300,
        Event::Final {
            text: "i already paid it all".into(),
            confidence: 0.8,
        },
    );
    assert_eq!(h.route().kind, RouteKind::Pause, "{:?}", h.route());
}

#[test]
fn music_on_the_line_ends_at_the_call_limit_with_the_closing_line_and_a_retry() {
    let mut h = H::with(Language::En, |c, _| {
        c.max_call_ms = 60_000;
        c.max_utterance_ms = 20_000;
    });
    h.reach_reminder();
    // Music: the VAD hears sound that never stops; after each forced end
    // a new utterance starts at once and nothing is ever recognised.
    let mut guard = 0;
    while !h.c.is_ended() && h.playing.as_deref() != Some("closing") {
        guard += 1;
        assert!(guard < 200, "the call never ended: {:?}", h.plays());
        if h.playing.is_some() {
            h.finish();
            continue;
        }
        h.after(20, Event::SpeechStart);
        let due = h.c.poll_timeout().expect("a timer runs");
        h.at(due, Event::Timeout);
    }
    assert!(h.t <= 60_000, "ended at {} ms", h.t);
    let out = h.c.outcome();
    assert_eq!(out.cut_short.as_deref(), Some("max-call-length"));
    closing_then_hang_up(&mut h);
    let r = h.route();
    assert_eq!(
        (r.kind, r.reason.as_str()),
        (RouteKind::Retry, "max-call-length")
    );
    assert_eq!(h.c.outcome().ended_by, Some(EndedBy::Us));
}

#[test]
fn a_prompt_whose_end_is_never_reported_is_dropped_after_its_length_and_the_call_goes_on() {
    let mut h = H::new();
    h.answer_person();
    assert_eq!(h.playing.as_deref(), Some("opening"));
    let t = h.t;
    h.at(
        t + 20,
        Event::PlaybackStarted {
            prompt: PromptId::Opening,
            duration_ms: 4_000,
        },
    );
    assert_eq!(
        h.c.poll_timeout(),
        Some(t + 20 + 4_000 + 2_000),
        "length + grace"
    );
    let out = h.at(t + 6_020, Event::Timeout);
    assert!(
        matches!(
            out.first(),
            Some(Action::StopPlaying {
                prompt: PromptId::Opening,
                ..
            })
        ),
        "{out:?}"
    );
    assert_eq!(play_of(&out), vec![("right_party".to_string(), true)]);
    assert!(!h.c.outcome().turns[0].finished);
}

#[test]
fn without_a_start_report_a_prompt_waits_at_most_max_prompt_ms() {
    let mut h = H::with(Language::En, |c, _| c.max_prompt_ms = 30_000);
    h.answer_person();
    let t = h.t;
    assert_eq!(h.c.poll_timeout(), Some(t + 30_000));
    let out = h.at(t + 30_000, Event::Timeout);
    assert_eq!(play_of(&out), vec![("right_party".to_string(), true)]);
}

#[test]
fn shutdown_during_the_reminder_cuts_it_says_the_closing_line_and_retries_later() {
    let mut h = H::new();
    h.reach_reminder_playing();
    let out = h.after(500, Event::Shutdown);
    assert!(
        matches!(
            out.first(),
            Some(Action::StopPlaying {
                prompt: PromptId::Reminder,
                ..
            })
        ),
        "{out:?}"
    );
    assert_eq!(play_of(&out), vec![("closing".to_string(), false)]);
    // A reply during the closing line changes nothing.
    h.reply("i will pay 2026-11-27");
    closing_then_hang_up(&mut h);
    let out = h.c.outcome();
    assert_eq!(out.cut_short.as_deref(), Some("shutdown"));
    let r = h.route();
    assert_eq!((r.kind, r.reason.as_str()), (RouteKind::Retry, "shutdown"));
}

#[test]
fn shutdown_keeps_a_route_already_decided_and_its_goodbye() {
    let mut h = H::new();
    h.reach_reminder();
    h.reply("i lost my job");
    let route = h.route();
    // The acknowledgement (its own goodbye) is under way: it plays on.
    let out = h.after(100, Event::Shutdown);
    assert!(out.is_empty(), "{out:?}");
    h.finish_all();
    assert!(h.c.is_ended());
    assert_eq!(h.route(), route, "shutdown does not undo a decision");
}

#[test]
fn shutdown_before_the_answer_hangs_up_at_once_and_a_machine_hears_no_closing() {
    let mut h = H::new();
    let out = h.at(0, Event::Shutdown);
    assert_eq!(out, vec![Action::Hangup]);
    assert!(h.c.is_ended());
    assert_eq!(
        h.c.outcome().route,
        None,
        "never answered: the wire decides"
    );

    let mut h = H::new();
    h.at(0, Event::Answered);
    h.after(100, Event::SpeechStart);
    let out = h.after(500, Event::Shutdown);
    assert_eq!(
        play_of(&out),
        vec![],
        "AMD had no verdict: no closing to a machine"
    );
    assert!(out.contains(&Action::Hangup), "{out:?}");
    assert_eq!(h.route().reason, "shutdown");
}
