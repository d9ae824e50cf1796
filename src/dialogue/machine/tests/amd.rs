use super::*;

#[test]
fn a_short_hello_then_silence_is_a_person() {
    let mut h = H::new();
    h.answer_person();
    let o = h.c.outcome();
    assert_eq!(
        (o.amd.verdict, o.amd.reason.as_str(), o.amd.words),
        (AmdVerdict::Human, "short-greeting", 1)
    );
    assert_eq!(o.disposition, Some(Disposition::Answered));
}

#[test]
fn a_long_greeting_is_a_machine_and_the_message_follows_the_silence() {
    let mut h = H::new();
    h.at(0, Event::Answered);
    h.at(600, Event::SpeechStart);
    assert_eq!(h.next_timer(), Some(2100), "greeting limit");
    h.at(2100, Event::Timeout);
    let o = h.c.outcome();
    assert_eq!(
        (o.amd.verdict, o.amd.reason.as_str()),
        (AmdVerdict::Machine, "long-greeting")
    );
    assert!(h.plays().is_empty(), "wait for the end of the greeting");
    h.at(4000, Event::SpeechEnd);
    h.at(4300, Event::SpeechStart);
    h.at(5200, Event::SpeechEnd);
    assert_eq!(h.next_timer(), Some(7200));
    let a = h.at(7200, Event::Timeout);
    assert_eq!(play_of(&a), vec![("voicemail".into(), false)]);
    let Some(Action::Play { text, .. }) = a.first() else {
        panic!()
    };
    assert_eq!(
        text,
        "Hello, this is a message from Northwind Credit for Maria Lopez. Please call us back at 1, 8 0 0, 5 5 5, 0 1 9 9, between 9 AM and 6 PM, Monday to Friday. Thank you."
    );
    h.finish();
    assert!(h.has(|a| *a == Action::Hangup));
    let o = h.c.outcome();
    assert_eq!(o.disposition, Some(Disposition::Voicemail));
    let r = o.route.unwrap();
    assert_eq!(
        (r.kind, r.reason.as_str(), r.until),
        (
            RouteKind::Retry,
            "voicemail",
            at("2026-11-24T10:00:02.100-08:00")
        )
    );
    h.assert_no_debt_said();
}

#[test]
fn many_words_are_a_machine_and_the_beep_starts_the_message() {
    let mut h = H::new();
    h.at(0, Event::Answered);
    let mut t = 400;
    for _ in 0..4 {
        h.at(t, Event::SpeechStart);
        h.at(t + 250, Event::SpeechEnd);
        t += 400;
    }
    let o = h.c.outcome();
    assert_eq!(
        (o.amd.verdict, o.amd.reason.as_str(), o.amd.words),
        (AmdVerdict::Machine, "max-words", 4)
    );
    h.at(t, Event::Tone);
    assert_eq!(h.plays(), ["voicemail"]);
}

#[test]
fn a_beep_during_analysis_means_machine_and_message_at_once() {
    let mut h = H::new();
    h.at(0, Event::Answered);
    h.at(900, Event::Tone);
    assert_eq!(h.c.outcome().amd.reason, "beep");
    assert_eq!(h.plays(), ["voicemail"]);
}

#[test]
fn a_long_transcript_in_the_greeting_is_a_machine() {
    let mut h = H::new();
    h.at(0, Event::Answered);
    h.at(300, Event::SpeechStart);
    h.at(
        1000,
        Event::Partial(
            "hi you've reached maria i can't take your call please leave a message".into(),
        ),
    );
    assert_eq!(h.c.outcome().amd.reason, "transcript-words");
}

#[test]
fn initial_silence_is_uncertain_and_treated_as_configured() {
    let mut h = H::new();
    h.at(0, Event::Answered);
    assert_eq!(h.next_timer(), Some(2500));
    let a = h.at(2500, Event::Timeout);
    assert_eq!(h.c.outcome().amd.verdict, AmdVerdict::Uncertain);
    assert_eq!(
        play_of(&a),
        vec![("opening".into(), false)],
        "a person by default"
    );

    let mut h = H::with(Language::En, |c, _| {
        c.amd.uncertain_as = UncertainAs::Machine
    });
    h.at(0, Event::Answered);
    h.at(2500, Event::Timeout);
    assert_eq!(
        h.next_timer(),
        Some(4500),
        "silence already: message after the silence wait"
    );
    h.at(4500, Event::Timeout);
    assert_eq!(h.plays(), ["voicemail"]);
}

#[test]
fn hang_up_mode_leaves_no_message_but_counts_the_voicemail() {
    let mut h = H::with(Language::En, |c, _| c.voicemail = VoicemailMode::HangUp);
    h.at(0, Event::Answered);
    let a = h.at(300, Event::Tone);
    assert_eq!(a[0], Action::Hangup);
    assert!(h.plays().is_empty());
    assert_eq!(h.route().reason, "voicemail");
    assert_eq!(h.c.outcome().disposition, Some(Disposition::Voicemail));
}

#[test]
fn without_amd_the_opening_waits_for_the_speak_delay() {
    let mut h = H::with(Language::En, |c, _| {
        c.amd.enabled = false;
        c.speak_delay_ms = 400;
    });
    assert!(h.at(1000, Event::Answered).is_empty());
    assert_eq!(h.next_timer(), Some(1400));
    let a = h.at(1400, Event::Timeout);
    assert_eq!(play_of(&a), vec![("opening".into(), false)]);
    assert_eq!(h.c.outcome().amd.verdict, AmdVerdict::NotRun);
}
