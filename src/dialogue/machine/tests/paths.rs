use super::*;

#[test]
fn promise_path_reads_the_date_back_and_pauses_until_the_day_after() {
    let mut h = H::new();
    let a = h.answer_person();
    assert!(
        matches!(&a[0], Action::Listen { turn, .. } if turn.as_str() == "identity"),
        "grammar first: {a:?}"
    );
    assert_eq!(play_of(&a), vec![("opening".to_string(), false)]);
    let a = h.finish();
    assert_eq!(play_of(&a), vec![("right_party".to_string(), true)]);
    assert!(
        matches!(&a[0], Action::Play { text, .. } if text == "Am I speaking with Maria Lopez?")
    );
    h.finish();
    let a = h.reply("yes speaking");
    assert_eq!(play_of(&a), vec![("debt_disclosure".to_string(), false)]);
    let a = h.finish();
    let Some(Action::Play { text, .. }) = a.iter().find(|a| matches!(a, Action::Play { .. }))
    else {
        panic!()
    };
    assert!(
        text.contains("one hundred twenty-five dollars and fifty cents"),
        "{text}"
    );
    assert!(text.contains("Friday, November 20th"), "{text}");
    h.finish();
    let a = h.reply("I will pay on 2026-11-27");
    let Some(Action::Play {
        prompt: prompt_id,
        text,
        ..
    }) = a.iter().find(|a| matches!(a, Action::Play { .. }))
    else {
        panic!()
    };
    assert_eq!(prompt_id.as_str(), "confirm_promise");
    assert_eq!(
        text,
        "So you will pay on Friday, November 27th. Is that right?"
    );
    h.finish();
    h.reply("yes");
    h.finish_all();
    assert_eq!(
        h.plays(),
        [
            "opening",
            "right_party",
            "debt_disclosure",
            "reminder",
            "confirm_promise",
            "promise_recorded",
            "closing"
        ]
    );
    assert!(h.has(|a| *a == Action::Hangup));
    let r = h.route();
    assert_eq!(
        (r.kind, r.reason.as_str(), r.until),
        (
            RouteKind::Pause,
            "promise_to_pay",
            at("2026-11-28T00:00:00-08:00")
        )
    );
    assert_eq!(h.emitted_route(), vec![r]);
    let o = h.c.outcome();
    assert!(o.identity_confirmed && h.c.is_ended());
    assert_eq!(o.ended_by, Some(EndedBy::Us));
    assert_eq!(o.turns[1].heard.as_deref(), Some("yes speaking"));
    assert_eq!(o.turns[1].intent, Some(IntentKind::IdentityConfirmed));
    assert!(o.turns[1].finished && o.turns[1].played_ms == 1000);
    assert_eq!(o.turns[3].intent, Some(IntentKind::PromiseToPay));
    let (s, e) = (o.turns[3].start_ms.unwrap(), o.turns[3].end_ms.unwrap());
    assert_eq!(e - s, 700, "speech start to end");
    assert!(o.refused_prompts.is_empty());
}

#[test]
fn every_reminder_reply_gets_its_answer_and_route() {
    type Check = fn(&Route);
    let cases: Vec<(&str, Vec<&str>, RouteKind, Check)> = vec![
        (
            "I already paid",
            vec!["ack_paid", "closing"],
            RouteKind::Pause,
            |r| {
                assert_eq!(
                    (r.reason.as_str(), r.until),
                    ("verify-payment", at("2026-11-26T00:00:00-08:00"))
                );
            },
        ),
        (
            "I lost my job",
            vec!["ack_hardship", "agent_callback"],
            RouteKind::Agent,
            |r| {
                let f = r.follow_up.as_ref().unwrap();
                assert_eq!(
                    (f.kind, f.until),
                    (RouteKind::Pause, at("2026-12-23T00:00:00-08:00"))
                );
            },
        ),
        (
            "I don't owe this",
            vec!["ack_dispute", "agent_callback"],
            RouteKind::Agent,
            |r| assert_eq!(r.reason, "dispute"),
        ),
        (
            "stop calling me",
            vec!["stop_calling"],
            RouteKind::Suppress,
            |r| assert_eq!(r.scope, Some(SuppressScope::Account)),
        ),
        (
            "let me talk to a person",
            vec!["request_agent", "agent_callback"],
            RouteKind::Agent,
            |r| assert_eq!(r.reason, "request_agent"),
        ),
        (
            "call me 2026-11-24 15:00",
            vec!["callback_confirm"],
            RouteKind::Retry,
            |r| {
                assert_eq!(r.until, at("2026-11-24T15:00:00-08:00"));
            },
        ),
        (
            "wrong number",
            vec!["wrong_number"],
            RouteKind::Suppress,
            |r| assert_eq!(r.scope, Some(SuppressScope::Number)),
        ),
        (
            "I will pay on 2026-12-20",
            vec!["promise_too_far", "agent_callback"],
            RouteKind::Agent,
            |r| assert_eq!(r.reason, "promise-too-far"),
        ),
    ];
    for (reply, prompts, kind, check) in cases {
        let mut h = H::new();
        h.reach_reminder();
        h.reply(reply);
        h.finish_all();
        let plays = h.plays();
        assert_eq!(&plays[4..], prompts.as_slice(), "{reply}");
        let r = h.route();
        assert_eq!(r.kind, kind, "{reply}");
        check(&r);
        assert!(h.c.is_ended(), "{reply}");
        assert_eq!(
            !h.c.outcome().escalations.is_empty(),
            kind == RouteKind::Agent,
            "{reply}: no agent uri -> escalation"
        );
    }
}

#[test]
fn callback_text_names_the_time() {
    let mut h = H::new();
    h.reach_reminder();
    let a = h.reply("call me 2026-11-24 15:00");
    assert!(a.iter().any(|a| matches!(a, Action::Play { text, .. } if text == "Thank you. We will call back tomorrow at 3 PM. Goodbye.")), "{a:?}");
}

#[test]
fn a_callback_after_a_time_repeats_the_standing_hours_and_routes_with_them() {
    let mut h = H::new();
    h.reach_reminder();
    let a = h.reply("call me after 18:00");
    assert!(a.iter().any(|a| matches!(a, Action::Play { text, .. } if text == "Thank you. We will call back today at 6 PM, and from now on only after 6 PM. Goodbye.")), "{a:?}");
    h.finish_all();
    let r = h.route();
    assert_eq!(r.kind, RouteKind::Retry);
    assert_eq!(
        r.hours.and_then(|x| x.not_before),
        chrono::NaiveTime::from_hms_opt(18, 0, 0)
    );
}

#[test]
fn hardship_with_an_agent_transfers_with_case_headers() {
    let mut h = H::with(Language::En, |_, a| {
        a.agent_uri = Some("sip:collect@agents.example".into())
    });
    h.reach_reminder();
    h.reply("I lost my job");
    let a = h.finish_all();
    let Some(Action::Transfer { agent_uri, headers }) =
        a.iter().find(|a| matches!(a, Action::Transfer { .. }))
    else {
        panic!("{a:?}")
    };
    assert_eq!(agent_uri, "sip:collect@agents.example");
    assert!(headers.contains(&("X-Duecall-Account".into(), "A-17".into())));
    assert!(headers.contains(&("X-Duecall-Intent".into(), "hardship".into())));
    assert!(headers.contains(&("X-Duecall-Case".into(), "A-17".into())));
    assert_eq!(h.plays()[4..], ["ack_hardship", "transfer"]);
    assert!(!h.c.is_ended());
    let a = h.after(2000, Event::TransferResult { ok: true });
    assert!(h.c.is_ended());
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(h.emitted_route().len(), 1);
    assert_eq!(h.route().kind, RouteKind::Agent);
    assert_eq!(h.c.outcome().transfer.unwrap().ok, Some(true));
    assert!(
        h.c.outcome().escalations.is_empty(),
        "a collector took it live: no escalation"
    );
}

#[test]
fn an_agent_route_cut_short_before_the_transfer_still_reaches_a_collector() {
    let mut h = H::with(Language::En, |_, a| {
        a.agent_uri = Some("sip:collect@agents.example".into())
    });
    h.reach_reminder();
    h.reply("I lost my job");
    // The callee hangs up while "ack_hardship" plays: no transfer was tried.
    h.after(500, Event::Hangup);
    assert!(h.c.is_ended());
    let out = h.c.outcome();
    assert_eq!(out.route.as_ref().map(|r| r.kind), Some(RouteKind::Agent));
    assert!(out.transfer.is_none());
    let [e] = &out.escalations[..] else {
        panic!("one escalation: {:?}", out.escalations)
    };
    assert_eq!(e.reason, "hardship");
    assert!(e.summary.contains("account A-17"), "{}", e.summary);
    assert!(
        e.summary.contains("debtor: I lost my job"),
        "the timed transcript is in it: {}",
        e.summary
    );
    assert!(
        e.summary.contains("agent: Am I speaking with Maria Lopez?"),
        "{}",
        e.summary
    );
}

#[test]
fn routes_that_need_no_person_raise_no_escalation() {
    for reply in [
        "I already paid",
        "stop calling me",
        "call me 2026-11-24 15:00",
    ] {
        let mut h = H::new();
        h.reach_reminder();
        h.reply(reply);
        h.finish_all();
        assert!(h.c.is_ended(), "{reply}");
        assert!(h.c.outcome().escalations.is_empty(), "{reply}");
    }
}

#[test]
fn the_outcome_relabels_a_machine_and_says_whether_there_was_a_conversation() {
    let mut h = H::new();
    h.reach_reminder();
    h.reply("I already paid");
    h.finish_all();
    let out = h.c.outcome();
    assert_eq!(
        out.attempt_disposition(Disposition::Answered),
        Disposition::Answered
    );
    assert!(out.was_conversation(Disposition::Answered));

    // A person who said nothing before hanging up: no conversation.
    let mut h = H::new();
    h.answer_person();
    h.after(300, Event::Hangup);
    assert!(!h.c.outcome().was_conversation(Disposition::Answered));

    // A machine: the wire's `answered` becomes `voicemail`, no conversation.
    let mut h = H::new();
    h.at(0, Event::Answered);
    h.after(200, Event::SpeechStart);
    h.after(3000, Event::SpeechEnd);
    let out = h.c.outcome();
    assert_eq!(
        out.attempt_disposition(Disposition::Answered),
        Disposition::Voicemail
    );
    assert!(!out.was_conversation(Disposition::Answered));
    // A wire disposition other than answered stands.
    assert_eq!(
        out.attempt_disposition(Disposition::Failed),
        Disposition::Failed
    );
}

#[test]
fn a_failed_or_silent_transfer_becomes_an_escalation() {
    for timeout in [false, true] {
        let mut h = H::with(Language::En, |c, _| {
            c.agent_uri = Some("sip:queue@agents.example".into())
        });
        h.reach_reminder();
        h.reply("agent please");
        h.finish_all();
        if timeout {
            let due = h.next_timer().unwrap();
            assert_eq!(due, h.t + 10_000, "the leg's transfer timeout");
            h.at(due, Event::Timeout);
        } else {
            h.after(3000, Event::TransferResult { ok: false });
        }
        let e = h.c.outcome().escalations;
        assert!(
            matches!(&e[..], [e] if e.reason == "transfer-failed" && e.summary.contains("A-17")),
            "{e:?}"
        );
        h.finish_all();
        assert_eq!(h.plays().last().unwrap(), "transfer_failed");
        assert!(h.c.is_ended());
        assert_eq!(h.route().kind, RouteKind::Agent);
    }
}

#[test]
fn a_promise_without_a_date_asks_for_one_and_no_means_ask_again() {
    let mut h = H::new();
    h.reach_reminder();
    h.reply("I will pay");
    assert_eq!(h.plays().last().unwrap(), "ask_date");
    h.finish();
    h.reply("I will pay 2026-11-25");
    h.finish();
    h.reply("no");
    assert_eq!(h.plays().last().unwrap(), "ask_date");
    h.finish();
    h.reply("I will pay 2026-11-26");
    h.finish();
    h.reply("yes");
    h.finish_all();
    assert_eq!(h.route().until, at("2026-11-27T00:00:00-08:00"));
}

#[test]
fn a_date_never_given_goes_to_an_agent() {
    let mut h = H::new();
    h.reach_reminder();
    h.reply("I will pay");
    h.finish();
    h.reply("hmm dunno");
    assert_eq!(h.plays().last().unwrap(), "reask_date");
    h.finish();
    h.silence();
    h.finish_all();
    assert_eq!(
        (h.route().kind, h.route().reason.as_str()),
        (RouteKind::Agent, "promise-without-date")
    );
}
