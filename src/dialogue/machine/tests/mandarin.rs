use super::*;

#[test]
fn mandarin_promise_path_speaks_yuan_and_chinese_dates() {
    let mut h = H::with(Language::Zh, |_, _| {});
    h.answer_person();
    h.finish();
    assert!(h
        .log
        .iter()
        .any(|(_, a)| matches!(a, Action::Play { text, .. } if text == "请问您是王伟本人吗？")));
    h.finish();
    h.reply("是的，我是");
    h.finish();
    let reminder = h.log.iter().rev().find_map(|(_, a)| match a {
        Action::Play {
            prompt: prompt_id,
            text,
            ..
        } if prompt_id.as_str() == "reminder" => Some(text.clone()),
        _ => None,
    });
    let reminder = reminder.unwrap();
    assert!(
        reminder.contains("一百二十五元五角") && reminder.contains("十一月二十日"),
        "{reminder}"
    );
    h.finish();
    h.reply("我会还 2026-11-27");
    let confirm = h.log.iter().rev().find_map(|(_, a)| match a {
        Action::Play { text, .. } => Some(text.clone()),
        _ => None,
    });
    assert_eq!(confirm.unwrap(), "您将在十一月二十七日还款，对吗？");
    h.finish();
    h.reply("对");
    h.finish_all();
    assert_eq!(h.route().until, at("2026-11-28T00:00:00-08:00"));
    assert_eq!(h.plays().last().unwrap(), "closing");
}

#[test]
fn mandarin_third_parties_hear_no_debt() {
    for (reply, last) in [
        ("你打错了", "wrong_number"),
        ("不是", "identity_denied"),
        ("他不在", "not_available"),
    ] {
        let mut h = H::with(Language::Zh, |_, _| {});
        h.answer_person();
        h.finish_all();
        h.reply(reply);
        h.finish_all();
        assert_eq!(h.plays().last().unwrap(), last, "{reply}");
        h.assert_no_debt_said();
    }
}

#[test]
fn mandarin_fillers_do_not_barge_in() {
    let mut h = H::with(Language::Zh, |_, _| {});
    h.reach_reminder_playing();
    h.after(100, Event::SpeechStart);
    h.after(200, Event::Partial("嗯嗯".into()));
    h.after(200, Event::Timeout);
    h.after(100, Event::SpeechEnd);
    h.after(
        100,
        Event::Final {
            text: "嗯嗯".into(),
            confidence: 0.8,
        },
    );
    assert!(!h.has(|a| matches!(a, Action::StopPlaying { .. })));
    h.after(100, Event::SpeechStart);
    h.after(400, Event::Timeout);
    assert!(
        h.has(|a| matches!(a, Action::StopPlaying { .. })),
        "real speech past the minimum cuts"
    );
}
