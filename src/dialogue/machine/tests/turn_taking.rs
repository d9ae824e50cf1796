//! Turn-taking that forgives people: a reply said over a prompt that cannot
//! be cut is kept and answers the question once the prompt ends, and a
//! reply that answers more than was asked is taken whole.

use super::*;

/// The caller talks over the prompt playing now (which cannot be cut).
fn say_over(h: &mut H, text: &str) -> Vec<Action> {
    let mut out = h.after(200, Event::SpeechStart);
    out.extend(h.after(600, Event::SpeechEnd));
    out.extend(h.after(
        150,
        Event::Final {
            text: text.into(),
            confidence: 0.8,
        },
    ));
    out
}

#[test]
fn a_reply_over_the_debt_disclosure_is_kept_and_answers_the_reminder() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("yes");
    assert_eq!(h.playing.as_deref(), Some("debt_disclosure"));
    let out = say_over(&mut h, "i already paid");
    assert!(out.is_empty(), "the disclosure plays on: {out:?}");
    let out = h.finish();
    assert_eq!(
        play_of(&out),
        vec![("ack_paid".to_string(), false)],
        "no reminder question: it was answered"
    );
    assert_eq!(h.route().kind, RouteKind::Pause);
    let turns = h.c.outcome().turns;
    let d = turns
        .iter()
        .find(|t| t.prompt == PromptId::DebtDisclosure)
        .unwrap();
    assert!(d.finished, "never cut: {d:?}");
    assert_eq!(d.heard.as_deref(), Some("i already paid"));
}

#[test]
fn a_filler_over_a_disclosure_is_only_logged_and_the_question_is_asked() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("yes");
    say_over(&mut h, "mhm");
    let out = h.finish();
    assert_eq!(play_of(&out), vec![("reminder".to_string(), true)]);
}

#[test]
fn a_yes_over_an_opening_that_never_named_the_debtor_confirms_nobody() {
    let mut h = H::new();
    h.answer_person();
    assert_eq!(h.playing.as_deref(), Some("opening"));
    say_over(&mut h, "yes speaking");
    let out = h.finish();
    assert_eq!(
        play_of(&out),
        vec![("right_party".to_string(), true)],
        "the name is asked for"
    );
    assert!(!h.c.outcome().identity_confirmed);
    assert_eq!(
        h.c.outcome().turns[0].ignored,
        vec!["yes speaking".to_string()]
    );
}

#[test]
fn a_yes_over_an_opening_that_names_the_debtor_answers_the_identity_question() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/en.toml"))
            .unwrap()
            .replace(
                "calling on behalf of {company}. This call is recorded.",
                "calling on behalf of {company} for {name}. This call is recorded.",
            );
    let s = Arc::new(Script::parse(&text, "en.toml (opening names the debtor)").unwrap());
    let mut h = H::with_script(s, |_, _| {});
    h.answer_person();
    say_over(&mut h, "yes speaking");
    let out = h.finish();
    assert_eq!(
        play_of(&out),
        vec![("debt_disclosure".to_string(), false)],
        "the right-party question was answered before it was asked"
    );
    assert!(h.c.outcome().identity_confirmed);
}

#[test]
fn who_is_calling_over_the_opening_is_answered_when_it_ends() {
    let mut h = H::new();
    h.answer_person();
    say_over(&mut h, "who is this");
    let out = h.finish();
    assert_eq!(play_of(&out), vec![("who_is_calling".to_string(), true)]);
    h.assert_no_debt_said();
}

#[test]
fn a_digit_over_the_disclosure_is_not_taken_before_its_menu_was_offered() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("yes");
    h.after(300, Event::Dtmf('1'));
    let out = h.finish();
    assert_eq!(play_of(&out), vec![("reminder".to_string(), true)]);
}

#[test]
fn yes_and_i_already_paid_is_taken_whole_after_the_disclosure() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    let out = h.reply("yes and i already paid");
    assert_eq!(
        play_of(&out),
        vec![("debt_disclosure".to_string(), false)],
        "the disclosure comes before anything about the debt"
    );
    assert!(h.c.outcome().identity_confirmed);
    let out = h.finish();
    assert_eq!(play_of(&out), vec![("ack_paid".to_string(), false)]);
    h.finish_all();
    assert!(
        !h.plays().contains(&"reminder".to_string()),
        "{:?}",
        h.plays()
    );
    assert_eq!(h.route().kind, RouteKind::Pause);
}

#[test]
fn yes_i_will_pay_on_a_date_is_read_back_after_the_disclosure() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("yes i will pay 2026-11-27");
    h.finish();
    assert_eq!(h.playing.as_deref(), Some("confirm_promise"));
    h.finish_all();
    h.reply("yes");
    assert_eq!(h.route().kind, RouteKind::Pause);
}

#[test]
fn no_and_i_already_paid_is_not_an_identity_confirmation() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("no i already paid");
    assert_eq!(h.plays().last().map(String::as_str), Some("identity_first"));
    assert!(!h.c.outcome().identity_confirmed);
    h.assert_no_debt_said();
}
