use super::*;

#[test]
fn identity_denied_ends_politely_without_the_debt() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("no");
    h.finish_all();
    assert_eq!(h.plays(), ["opening", "right_party", "identity_denied"]);
    assert_eq!(
        (h.route().kind, h.route().reason.as_str()),
        (RouteKind::Retry, "identity_denied")
    );
    h.assert_no_debt_said();
}

#[test]
fn wrong_number_apologises_and_suppresses_the_number_without_the_debt() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("you have the wrong number");
    h.finish_all();
    assert_eq!(h.plays().last().unwrap(), "wrong_number");
    assert_eq!(
        (h.route().kind, h.route().scope),
        (RouteKind::Suppress, Some(SuppressScope::Number))
    );
    h.assert_no_debt_said();
}

#[test]
fn someone_else_is_asked_for_a_better_time_without_the_debt() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    let a = h.reply("she is not here");
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Listen { turn, .. } if turn.as_str() == "better_time")));
    h.finish();
    h.reply("call me 18:00");
    h.finish_all();
    assert_eq!(h.plays()[2..], ["not_available", "callback_confirm"]);
    assert_eq!(
        (h.route().kind, h.route().until),
        (RouteKind::Retry, at("2026-11-23T18:00:00-08:00"))
    );
    h.assert_no_debt_said();
    // With no time given, the case retries later.
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("not here");
    h.finish();
    h.reply("hmm");
    h.finish();
    h.silence();
    h.finish_all();
    assert_eq!(h.plays().last().unwrap(), "not_available_close");
    assert_eq!(
        (h.route().kind, h.route().reason.as_str()),
        (RouteKind::Retry, "not_available")
    );
    h.assert_no_debt_said();
}

#[test]
fn who_is_calling_is_answered_twice_without_the_debt_then_counts_as_unclear() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    for _ in 0..3 {
        h.reply("who is this");
        h.finish_all();
    }
    assert_eq!(
        h.plays()[2..],
        ["who_is_calling", "who_is_calling", "reask_identity"]
    );
    let who = h.log.iter().find_map(|(_, a)| match a {
        Action::Play {
            prompt: prompt_id,
            text,
            ..
        } if prompt_id.as_str() == "who_is_calling" => Some(text.clone()),
        _ => None,
    });
    assert!(who.unwrap().contains("on behalf of Northwind Credit"));
    h.assert_no_debt_said();
    h.reply("yes");
    h.finish_all();
    assert!(h.plays().contains(&"reminder".to_string()));
}

#[test]
fn debt_replies_before_identity_get_the_identity_question_not_the_debt() {
    for reply in [
        "I already paid",
        "I lost my job",
        "I don't owe anything",
        "I will pay 2026-11-25",
    ] {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.reply(reply);
        h.finish_all();
        assert_eq!(h.plays().last().unwrap(), "identity_first", "{reply}");
        h.reply(reply);
        h.finish_all();
        assert_eq!(h.plays().last().unwrap(), "menu_identity", "{reply}");
        h.assert_no_debt_said();
    }
}

#[test]
fn stop_from_an_unconfirmed_person_suppresses_only_the_number() {
    let mut h = H::new();
    h.answer_person();
    h.finish_all();
    h.reply("stop calling");
    h.finish_all();
    assert_eq!(h.route().scope, Some(SuppressScope::Number));
    h.assert_no_debt_said();
}

#[test]
fn the_debt_guard_refuses_a_debt_prompt_before_identity() {
    let mut h = H::new();
    h.answer_person();
    h.c.start_step(h.t, Step::Play(PromptId::Reminder));
    assert!(h.c.poll_action().is_none(), "nothing played");
    assert_eq!(h.c.outcome().refused_prompts, vec![PromptId::Reminder]);
}

/// A small deterministic generator for the random walks.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn no_walk_without_a_yes_ever_reaches_a_debt_prompt() {
    let replies = [
        "no",
        "who is this",
        "wrong number",
        "not here",
        "stop calling",
        "I already paid",
        "I lost my job",
        "I don't owe",
        "I will pay 2026-11-25",
        "call me 15:00",
        "agent",
        "mumble",
        "maybe yes",
        "mhm",
    ];
    for seed in 0..400u64 {
        let mut rng = Lcg(seed);
        let mut h = H::with(Language::En, |c, a| {
            if seed % 2 == 0 {
                a.agent_uri = Some("sip:a@b".into());
            }
            if seed % 3 == 0 {
                c.routing.unknown = UnknownRoute::Retry;
            }
        });
        h.answer_person();
        for _ in 0..30 {
            if h.c.is_ended() {
                break;
            }
            match rng.next(7) {
                0 | 1 => {
                    let r = replies[rng.next(replies.len() as u64) as usize];
                    h.reply(r);
                }
                2 => {
                    let d = ['2', '0', '5', '9', '*', '#'][rng.next(6) as usize];
                    h.after(100, Event::Dtmf(d));
                }
                3 => {
                    if h.next_timer().is_some() {
                        h.silence();
                    }
                }
                4 => {
                    h.after(50, Event::SpeechStart);
                    h.after(rng.next(600), Event::SpeechEnd);
                }
                5 => {
                    h.after(
                        100,
                        Event::TransferResult {
                            ok: rng.next(2) == 0,
                        },
                    );
                }
                _ => {
                    if h.playing.is_some() {
                        h.finish();
                    }
                }
            }
        }
        h.assert_no_debt_said();
        assert!(!h.c.outcome().identity_confirmed, "seed {seed}");
        assert!(h.c.outcome().refused_prompts.is_empty(), "seed {seed}");
        assert!(
            h.emitted_route().len() <= 1,
            "seed {seed}: one route at most"
        );
    }
}

#[test]
fn walks_with_a_yes_only_talk_debt_after_it_and_always_end_with_one_route() {
    let replies = [
        "yes",
        "no",
        "who is this",
        "I already paid",
        "I lost my job",
        "I will pay",
        "I will pay 2026-11-25",
        "I will pay 2026-12-30",
        "call me",
        "agent",
        "mumble",
        "ok",
        "wrong number",
        "stop calling",
    ];
    for seed in 0..400u64 {
        let mut rng = Lcg(seed ^ 0x5eed);
        let mut h = H::new();
        h.answer_person();
        for _ in 0..60 {
            if h.c.is_ended() {
                break;
            }
            match rng.next(5) {
                0 | 1 => {
                    h.reply(replies[rng.next(replies.len() as u64) as usize]);
                }
                2 => {
                    h.after(
                        100,
                        Event::Dtmf(['0', '1', '2', '3', '4', '7'][rng.next(6) as usize]),
                    );
                }
                3 => {
                    if h.next_timer().is_some() {
                        h.silence();
                    }
                }
                _ => {
                    if h.playing.is_some() {
                        h.finish();
                    }
                }
            }
        }
        // Let it run out: silence and finished prompts end every path.
        for _ in 0..40 {
            if h.c.is_ended() {
                break;
            }
            if h.playing.is_some() {
                h.finish();
            } else if h.next_timer().is_some() {
                h.silence();
            }
        }
        assert!(h.c.is_ended(), "seed {seed}: {:?}", h.plays());
        assert_eq!(h.emitted_route().len(), 1, "seed {seed}");
        assert!(h.c.outcome().refused_prompts.is_empty());
    }
}
