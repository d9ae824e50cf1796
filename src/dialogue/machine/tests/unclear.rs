use super::*;

#[test]
fn unclear_identity_reasks_then_menu_then_escalates() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("mumble");
    h.finish_all();
    h.reply("mumble");
    h.finish_all();
    h.reply("mumble");
    h.finish_all();
    assert_eq!(
        h.plays()[2..],
        ["reask_identity", "menu_identity", "agent_callback"]
    );
    let menu = h.log.iter().find_map(|(_, a)| match a {
        Action::Play {
            prompt: prompt_id,
            text,
            ..
        } if prompt_id.as_str() == "menu_identity" => Some(text.clone()),
        _ => None,
    });
    assert_eq!(
        menu.unwrap(),
        "Please press 1 if you are Maria Lopez, 2 if you are not, or 0 to speak with a person."
    );
    assert!(h.escalated("unknown"));
    assert_eq!(
        (h.route().kind, h.route().reason.as_str()),
        (RouteKind::Agent, "unknown")
    );
    h.assert_no_debt_said();
}

#[test]
fn menu_digits_confirm_or_deny_identity() {
    for (digit, next) in [
        ('1', "debt_disclosure"),
        ('2', "identity_denied"),
        ('0', "request_agent"),
    ] {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.reply("mumble");
        h.finish_all();
        h.reply("mumble");
        h.finish_all();
        h.after(500, Event::Dtmf(digit));
        assert_eq!(h.plays().last().unwrap(), next, "{digit}");
    }
}

#[test]
fn reminder_menu_digits_map_to_the_documented_replies() {
    for (digit, next) in [
        ('1', "ack_paid"),
        ('2', "ask_date"),
        ('3', "ack_hardship"),
        ('4', "wrong_number"),
        ('0', "request_agent"),
    ] {
        let mut h = H::new();
        h.reach_reminder();
        h.reply("mumble");
        h.finish_all();
        h.reply("mumble");
        let menu = h.plays().last().cloned().unwrap();
        assert_eq!(menu, "menu_reminder");
        h.finish_all();
        h.after(500, Event::Dtmf(digit));
        assert_eq!(h.plays().last().unwrap(), next, "{digit}");
        let o = h.c.outcome();
        let t = o.turns.iter().rev().find(|t| t.heard.is_some()).unwrap();
        assert_eq!(t.heard.as_deref(), Some(format!("dtmf:{digit}").as_str()));
    }
}

#[test]
fn silence_reprompts_after_no_input_then_menu_then_routes_unknown() {
    let mut h = H::new();
    h.answer_person();
    h.finish();
    h.finish(); // right_party done: listening
    let end_of_question = h.t;
    assert_eq!(h.next_timer(), Some(end_of_question + 5000));
    h.silence();
    assert_eq!(h.plays().last().unwrap(), "reask_identity");
    h.finish();
    h.silence();
    assert_eq!(h.plays().last().unwrap(), "menu_identity");
    h.finish();
    h.silence();
    h.finish_all();
    assert_eq!(h.plays().last().unwrap(), "no_answer_close");
    assert_eq!(h.route().kind, RouteKind::Agent);
    let o = h.c.outcome();
    assert_eq!(o.turns[1].intent, Some(IntentKind::Unknown));
    assert_eq!(o.turns[1].reason.as_deref(), Some("no input"));

    let mut h = H::with(Language::En, |c, _| c.routing.unknown = UnknownRoute::Retry);
    h.reach_reminder();
    for _ in 0..3 {
        h.silence();
        h.finish_all();
    }
    assert_eq!(
        h.plays()[4..],
        ["reask_reminder", "menu_reminder", "no_answer_close"]
    );
    assert_eq!(
        (h.route().kind, h.route().reason.as_str()),
        (RouteKind::Retry, "unknown")
    );
    assert!(h.c.outcome().escalations.is_empty());
}

#[test]
fn speech_holds_the_no_input_timer_until_it_ends() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.after(100, Event::SpeechStart);
    assert_eq!(h.next_timer(), None, "no re-ask while they talk");
    h.after(8000, Event::SpeechEnd);
    assert_eq!(h.next_timer(), Some(h.t + 5000));
}

#[test]
fn a_low_confidence_intent_counts_as_unclear() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("maybe yes");
    assert_eq!(h.plays().last().unwrap(), "reask_identity");
    assert!(!h.c.outcome().identity_confirmed);
    let o = h.c.outcome();
    assert!(o.turns[1]
        .reason
        .as_deref()
        .unwrap()
        .contains("below threshold"));
}

#[test]
fn words_heard_below_the_reject_threshold_are_not_understood_not_acted_on() {
    let mut h = H::with(Language::En, |cfg, _| cfg.reject_threshold = 0.5);
    h.reach_reminder();
    h.after(200, Event::SpeechStart);
    h.after(700, Event::SpeechEnd);
    // Off-topic speech the grammar engine forced onto "stop calling me".
    h.after(
        150,
        Event::Final {
            text: "stop calling me".into(),
            confidence: 0.2,
        },
    );
    assert_eq!(h.plays().last().unwrap(), "reask_reminder");
    assert_eq!(
        h.c.outcome().route,
        None,
        "nothing routed on a rejected reply"
    );
    let o = h.c.outcome();
    assert!(
        o.turns.iter().any(|t| t
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("below reject_threshold 0.50"))),
        "{:#?}",
        o.turns
    );
    // The same words heard surely are acted on.
    h.finish_all();
    h.reply("stop calling me");
    assert_eq!(h.plays().last().unwrap(), "stop_calling");
}
