use super::*;

#[test]
fn talking_over_a_question_stops_it_at_the_minimum_and_the_reply_is_used() {
    let mut h = H::new();
    h.answer_person();
    h.finish(); // opening done, right_party playing
    let started = h.t;
    h.after(400, Event::SpeechStart);
    let speech_at = h.t;
    assert_eq!(
        h.next_timer(),
        Some(speech_at + 300),
        "barge-in deadline is exact"
    );
    assert!(
        h.at(speech_at + 299, Event::Timeout).is_empty(),
        "not before the minimum"
    );
    let a = h.at(speech_at + 300, Event::Timeout);
    assert_eq!(
        a,
        vec![Action::StopPlaying {
            prompt: PromptId::parse("right_party").unwrap(),
            at_ms: 700
        }]
    );
    let o = h.c.outcome();
    assert_eq!(
        (
            o.turns[1].finished,
            o.turns[1].cut_at_ms,
            o.turns[1].played_ms
        ),
        (false, Some(700), 700)
    );
    let _ = started;
    h.after(500, Event::SpeechEnd);
    h.after(
        100,
        Event::Final {
            text: "yes it's me".into(),
            confidence: 0.9,
        },
    );
    assert_eq!(h.plays().last().unwrap(), "debt_disclosure");
    // A late PlaybackFinished for the cut prompt changes nothing.
    assert!(h
        .after(
            10,
            Event::PlaybackFinished {
                prompt: PromptId::parse("right_party").unwrap()
            }
        )
        .is_empty());
}

#[test]
fn a_recognised_reply_during_a_question_barges_in_even_without_vad() {
    let mut h = H::new();
    h.reach_reminder_playing();
    let a = h.after(
        300,
        Event::Final {
            text: "I already paid".into(),
            confidence: 0.9,
        },
    );
    assert!(
        matches!(&a[0], Action::StopPlaying { prompt: prompt_id, .. } if prompt_id.as_str() == "reminder"),
        "{a:?}"
    );
    assert_eq!(h.plays().last().unwrap(), "ack_paid");
}

#[test]
fn short_noises_and_fillers_do_not_barge_in() {
    let mut h = H::new();
    h.answer_person();
    h.finish(); // right_party playing
    h.after(100, Event::SpeechStart);
    h.after(150, Event::SpeechEnd); // a cough
    assert_eq!(h.next_timer(), None);
    h.after(
        100,
        Event::Final {
            text: "mhm".into(),
            confidence: 0.6,
        },
    );
    h.after(100, Event::SpeechStart);
    h.after(200, Event::Partial("uh huh".into()));
    assert!(
        h.after(100, Event::Timeout).is_empty(),
        "a filler past the minimum does not cut"
    );
    h.after(200, Event::SpeechEnd);
    h.after(
        50,
        Event::Final {
            text: "ok".into(),
            confidence: 0.7,
        },
    );
    assert!(!h.has(|a| matches!(a, Action::StopPlaying { .. })));
    h.finish();
    let o = h.c.outcome();
    assert!(o.turns[1].finished);
    assert_eq!(
        o.turns[1].ignored,
        vec!["mhm".to_string(), "ok".to_string()]
    );
    assert!(o.turns[1].heard.is_none());
}

#[test]
fn words_after_a_filler_do_barge_in() {
    let mut h = H::new();
    h.reach_reminder_playing();
    h.after(100, Event::SpeechStart);
    h.after(200, Event::Partial("mhm".into()));
    assert!(h.after(100, Event::Timeout).is_empty());
    let a = h.after(300, Event::Partial("mhm I lost my job".into()));
    assert!(
        matches!(&a[..], [Action::StopPlaying { prompt: prompt_id, .. }] if prompt_id.as_str() == "reminder"),
        "{a:?}"
    );
}

#[test]
fn disclosures_cannot_be_interrupted() {
    let mut h = H::new();
    let a = h.answer_person();
    assert_eq!(play_of(&a), vec![("opening".into(), false)]);
    h.after(100, Event::SpeechStart);
    assert_eq!(h.next_timer(), None, "no barge-in timer on a disclosure");
    h.after(2000, Event::Partial("who is this stop".into()));
    h.after(500, Event::SpeechEnd);
    h.after(
        100,
        Event::Final {
            text: "who is this stop".into(),
            confidence: 0.9,
        },
    );
    h.after(100, Event::Dtmf('0'));
    assert!(!h.has(|a| matches!(a, Action::StopPlaying { .. })));
    let o = h.c.outcome();
    assert_eq!(o.turns[0].ignored, vec!["dtmf:0".to_string()]);
    // The words are kept and answered once the opening has ended.
    let a = h.finish();
    assert_eq!(play_of(&a), vec![("who_is_calling".into(), true)]);
    assert_eq!(
        h.c.outcome().turns[0].heard.as_deref(),
        Some("who is this stop")
    );
    h.finish();
    let a = h.reply("yes");
    assert_eq!(play_of(&a), vec![("debt_disclosure".into(), false)]);
    h.after(100, Event::SpeechStart);
    h.after(
        1000,
        Event::Final {
            text: "I already paid".into(),
            confidence: 0.9,
        },
    );
    assert!(!h.has(|a| matches!(a, Action::StopPlaying { .. })));
    assert!(!h.c.outcome().turns[2].finished && h.playing.as_deref() == Some("debt_disclosure"));
}

#[test]
fn closing_lines_are_not_cut_off() {
    let mut h = H::new();
    h.reach_reminder();
    let a = h.reply("I already paid");
    assert_eq!(play_of(&a), vec![("ack_paid".into(), false)]);
    h.after(100, Event::SpeechStart);
    assert_eq!(h.next_timer(), None);
}
