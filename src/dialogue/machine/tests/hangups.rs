use super::*;

#[test]
fn a_hang_up_in_every_state_ends_the_call_with_a_route() {
    type Setup = fn(&mut H);
    let states: Vec<(&str, Setup, Option<&str>)> = vec![
        ("ringing", |_| {}, None),
        (
            "amd",
            |h| {
                h.at(0, Event::Answered);
                h.after(100, Event::SpeechStart);
            },
            Some("hung-up-before-identity"),
        ),
        (
            "wait-beep",
            |h| {
                h.at(0, Event::Answered);
                h.after(100, Event::SpeechStart);
                h.after(1500, Event::Timeout);
            },
            Some("voicemail"),
        ),
        (
            "voicemail",
            |h| {
                h.at(0, Event::Answered);
                h.after(100, Event::Tone);
            },
            Some("voicemail"),
        ),
        (
            "opening",
            |h| {
                h.answer_person();
            },
            Some("hung-up-before-identity"),
        ),
        (
            "identity",
            |h| {
                h.answer_person();
                h.finish_all();
            },
            Some("hung-up-before-identity"),
        ),
        (
            "debt-disclosure",
            |h| {
                h.answer_person();
                h.finish_all();
                h.reply("yes");
            },
            Some("hung-up"),
        ),
        ("reminder", |h| h.reach_reminder(), Some("hung-up")),
        (
            "confirm",
            |h| {
                h.reach_reminder();
                h.reply("I will pay 2026-11-25");
            },
            Some("hung-up"),
        ),
        (
            "closing",
            |h| {
                h.reach_reminder();
                h.reply("I already paid");
            },
            Some("verify-payment"),
        ),
        (
            "transfer",
            |h| {
                h.c.cfg.agent_uri = Some("sip:a@b".into());
                h.reach_reminder();
                h.reply("agent");
                h.finish_all();
            },
            Some("request_agent"),
        ),
        (
            "menu",
            |h| {
                h.answer_person();
                h.finish_all();
                h.silence();
                h.finish();
                h.silence();
            },
            Some("hung-up-before-identity"),
        ),
    ];
    for (name, setup, reason) in states {
        let mut h = H::new();
        setup(&mut h);
        let was_playing = h.playing.is_some() && !matches!(name, "transfer");
        let a = h.after(300, Event::Hangup);
        assert!(h.c.is_ended(), "{name}");
        assert_eq!(h.next_timer(), None, "{name}");
        assert!(
            !a.iter()
                .any(|a| matches!(a, Action::Play { .. } | Action::Hangup)),
            "{name}: {a:?}"
        );
        assert_eq!(
            h.c.outcome().route.map(|r| r.reason),
            reason.map(str::to_string),
            "{name}"
        );
        assert!(h.emitted_route().len() <= 1, "{name}");
        if reason.is_some() {
            assert_eq!(h.c.outcome().ended_by, Some(EndedBy::Them), "{name}");
        }
        // Nothing after the end.
        assert!(
            h.after(
                10,
                Event::Final {
                    text: "yes".into(),
                    confidence: 0.9
                }
            )
            .is_empty(),
            "{name}"
        );
        assert!(h.after(10, Event::Dtmf('1')).is_empty(), "{name}");
        if was_playing {
            let last = h.c.outcome().turns.last().cloned().unwrap();
            assert!(
                !last.finished && last.cut_at_ms == Some(300),
                "{name}: the prompt was cut by the hang-up"
            );
        }
    }
}
