//! Tests of `asr/confidence.rs`.

use super::*;

fn whisper(text: &str, intent: IntentKind, lp: f32) -> WhisperSide {
    WhisperSide {
        text: text.into(),
        intent: Some(intent),
        mean_logprob: lp,
        min_p: 0.5,
        no_speech: 0.0,
        looped: looped(text),
        audio_s: 1.5,
        own_score: Some(lp),
    }
}

fn grammar(text: &str, intent: IntentKind) -> GrammarSide {
    GrammarSide {
        text: text.into(),
        intent: Some(intent),
        conf: 0.8,
        whisper_score: None,
        lm_text: None,
        lm_intent: None,
        lm_intent_conf: None,
        lm_phone_sim: None,
    }
}

fn with_lm(mut g: GrammarSide, text: &str, intent: IntentKind, conf: f32) -> GrammarSide {
    g.lm_text = Some(text.into());
    g.lm_intent = Some(intent);
    g.lm_intent_conf = Some(conf);
    g.lm_phone_sim = Some(0.4);
    g
}

const RULE: SecondPassRule = SecondPassRule {
    min_intent_conf: 0.8,
    max_grammar_conf: 0.6,
    min_stakes_conf: 0.8,
    max_grammar_conf_into_stakes: 1.0,
};

#[test]
fn an_ordinary_sentence_leaves_for_a_consequential_text_only_when_itself_improbable() {
    // The CI dry run of session 11: a callback heard by the grammar, the
    // second pass's garbled text meaning hardship at 0.83.
    let callback = with_lm(
        grammar("call me after six", IntentKind::CallbackLater),
        "clean call me out of work they",
        IntentKind::Hardship,
        0.83,
    );
    let rule = SecondPassRule::CALLS;
    assert!(!rule.takes(&callback, 0.45), "a plausible sentence stays");
    assert!(!rule.takes(&callback, 0.3));
    assert!(rule.takes(&callback, 0.2), "an improbable one gives way");
    // Between two consequential intents, or from one to an ordinary intent,
    // the general bound applies.
    let paid = with_lm(
        grammar("i already paid", IntentKind::AlreadyPaid),
        "i am disputing this debt",
        IntentKind::Dispute,
        0.9,
    );
    assert!(rule.takes(&paid, 0.45));
}

#[test]
fn a_confident_second_pass_meaning_another_intent_replaces_a_doubtful_sentence() {
    let g = with_lm(
        grammar("try back in two weeks", IntentKind::CallbackLater),
        "right that's me",
        IntentKind::IdentityConfirmed,
        0.9,
    );
    assert!(RULE.takes(&g, 0.3));
    let e = Evidence {
        grammar: Some(g),
        whisper: None,
    };
    let model = Calibration {
        lm_taken: 1.0,
        ..Calibration::GRAMMAR_LM
    };
    let v = decide_with(&e, &model, &RULE);
    assert_eq!(v.source, Source::SecondPass);
    assert_eq!(v.text, "right that's me");
    assert!((0.0..=1.0).contains(&v.confidence));
    // Without a rule the sentence stays.
    assert_eq!(decide(&e, &model).source, Source::Grammar);
}

#[test]
fn the_sentence_stays_when_the_second_pass_agrees_means_nothing_or_is_unsure() {
    let base = grammar("stop calling me", IntentKind::StopCalling);
    let agrees = with_lm(
        base.clone(),
        "stop calling week",
        IntentKind::StopCalling,
        0.9,
    );
    let nothing = with_lm(base.clone(), "so log let me turn", IntentKind::Unknown, 0.9);
    let unsure = with_lm(base.clone(), "i paid him", IntentKind::AlreadyPaid, 0.5);
    let empty = with_lm(base.clone(), "", IntentKind::AlreadyPaid, 0.9);
    let sure_sentence = with_lm(base, "i paid it", IntentKind::AlreadyPaid, 0.9);
    for g in [&agrees, &nothing, &unsure, &empty] {
        assert!(!RULE.takes(g, 0.1), "{g:?}");
    }
    assert!(!RULE.takes(&sure_sentence, 0.7));
    assert!(RULE.takes(&sure_sentence, 0.5));
    assert!(!SecondPassRule::NEVER.takes(&sure_sentence, 0.0));
}

#[test]
fn a_switch_leaving_or_reaching_a_consequential_intent_needs_the_stakes_confidence() {
    let rule = SecondPassRule {
        min_intent_conf: 0.7,
        max_grammar_conf: 0.5,
        min_stakes_conf: 0.85,
        max_grammar_conf_into_stakes: 1.0,
    };
    // The e2e hardship call: a garbled text meaning request_agent on one keyword.
    let hardship = grammar(
        "i lost my job and i cannot pay right now",
        IntentKind::Hardship,
    );
    let garbled = with_lm(
        hardship.clone(),
        "i'm applied job an mike an operator right i",
        IntentKind::RequestAgent,
        0.765,
    );
    assert!(!rule.takes(&garbled, 0.3));
    // Leaving hardship for a benign intent needs it too.
    let promise = with_lm(
        hardship,
        "i'm applied job an my can talk pay",
        IntentKind::PromiseToPay,
        0.786,
    );
    assert!(!rule.takes(&promise, 0.3));
    // Reaching one from a benign sentence needs it as well, and a sure text passes.
    let date = grammar("i can send it the eighth of june", IntentKind::PromiseToPay);
    let barely = with_lm(
        date.clone(),
        "i can barely pay for food",
        IntentKind::Hardship,
        0.81,
    );
    assert!(!rule.takes(&barely, 0.3));
    assert!(rule.takes(
        &with_lm(date.clone(), "i can barely pay", IntentKind::Hardship, 0.9),
        0.3
    ));
    // Between two benign intents the ordinary least confidence is enough.
    let who = with_lm(date, "who is calling", IntentKind::WhoIsCalling, 0.75);
    assert!(rule.takes(&who, 0.3));
    assert!(consequential(IntentKind::RequestAgent) && !consequential(IntentKind::PromiseToPay));
}

fn scored(mut g: GrammarSide, score: f32) -> GrammarSide {
    g.whisper_score = Some(score);
    g
}

#[test]
fn loops_are_found_and_ordinary_replies_are_not() {
    assert!(looped("yes speaking speaking speaking"));
    assert!(looped("i paid i paid i paid it"));
    assert!(looped("no no no no no no no no"));
    assert!(!looped("yes speaking"));
    assert!(!looped("i paid it last week and i paid the fee too"));
    assert!(!looped("no , no , i don't owe this"));
}

#[test]
fn off_topic_speech_is_not_forced_onto_the_grammar_sentence() {
    let e = Evidence {
        grammar: Some(scored(
            grammar("call me later", IntentKind::CallbackLater),
            -2.5,
        )),
        whisper: Some(whisper(
            "hold on , let me turn the tv down",
            IntentKind::Unknown,
            -0.2,
        )),
    };
    let v = decide(&e, &Calibration::FITTED);
    assert_eq!(v.source, Source::Whisper);
    assert_eq!(v.text, "hold on , let me turn the tv down");
    assert_eq!(v.agree, Some(false));
}

#[test]
fn a_grammar_sentence_whisper_finds_nearly_as_likely_wins_a_disagreement() {
    let e = Evidence {
        grammar: Some(scored(
            grammar("nobody by that name lives here", IntentKind::WrongNumber),
            -0.5,
        )),
        whisper: Some(whisper(
            "nobody might have the name lines here",
            IntentKind::Unknown,
            -0.4,
        )),
    };
    let v = decide(&e, &Calibration::FITTED);
    assert_eq!(v.source, Source::Grammar);
    assert_eq!(v.text, "nobody by that name lives here");
    let mut far = e.clone();
    far.grammar.as_mut().unwrap().whisper_score = Some(-0.4 - GRAMMAR_MARGIN - 0.5);
    assert_eq!(decide(&far, &Calibration::FITTED).source, Source::Whisper);
}

#[test]
fn a_whisper_loop_falls_back_to_the_grammar_sentence() {
    let e = Evidence {
        grammar: Some(grammar("yes speaking", IntentKind::IdentityConfirmed)),
        whisper: Some(WhisperSide {
            own_score: None,
            ..whisper(
                "yes , speaking speaking speaking",
                IntentKind::WhoIsCalling,
                -1.5,
            )
        }),
    };
    let v = decide(&e, &Calibration::FITTED);
    assert_eq!(v.source, Source::Grammar);
    assert_eq!(v.text, "yes speaking");
}

#[test]
fn agreement_is_more_confident_than_disagreement() {
    let agree = Evidence {
        grammar: Some(grammar("i already paid", IntentKind::AlreadyPaid)),
        whisper: Some(whisper("i already paid it", IntentKind::AlreadyPaid, -0.3)),
    };
    let mut disagree = agree.clone();
    disagree.grammar = Some(grammar("i can pay", IntentKind::PromiseToPay));
    let (a, d) = (
        decide(&agree, &Calibration::FITTED),
        decide(&disagree, &Calibration::FITTED),
    );
    assert_eq!(a.text, d.text);
    assert!(a.confidence > d.confidence, "{a:?} {d:?}");
    assert!((0.0..=1.0).contains(&a.confidence));
}

#[test]
fn the_grammar_calibration_trusts_short_meaningful_sentences_more() {
    let only = |text: &str, intent: IntentKind| Evidence {
        grammar: Some(GrammarSide {
            conf: 1.0,
            ..grammar(text, intent)
        }),
        whisper: None,
    };
    let short = decide(
        &only("wrong number", IntentKind::WrongNumber),
        &Calibration::GRAMMAR,
    );
    let long = decide(
        &only(
            "i think you have the wrong number for this account",
            IntentKind::WrongNumber,
        ),
        &Calibration::GRAMMAR,
    );
    assert_eq!(short.source, Source::Grammar);
    assert!(short.confidence > long.confidence, "{short:?} {long:?}");
    assert!((0.0..=1.0).contains(&long.confidence));
}

#[test]
fn phone_similarity_is_one_minus_the_edit_distance_over_the_longer() {
    let p = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    assert_eq!(phone_similarity(&p("S T AA P"), &p("S T AA P")), 1.0);
    assert_eq!(phone_similarity(&p("S T AA P"), &p("S T AA")), 0.75);
    assert_eq!(phone_similarity(&p("K AO L"), &p("HH OW L D")), 0.25);
    assert_eq!(phone_similarity::<String>(&[], &[]), 1.0);
    assert_eq!(phone_similarity(&p("AH"), &[]), 0.0);
}

#[test]
fn nothing_heard_is_empty_with_no_confidence() {
    let e = Evidence {
        grammar: Some(grammar("", IntentKind::Unknown)),
        whisper: Some(WhisperSide {
            no_speech: 0.9,
            ..whisper("you", IntentKind::Unknown, -2.0)
        }),
    };
    let v = decide(&e, &Calibration::FITTED);
    assert_eq!(v.source, Source::Nothing);
    assert_eq!((v.text.as_str(), v.confidence), ("", 0.0));
}

#[test]
fn a_consequential_intent_the_engines_disagree_on_is_always_confirmed() {
    let threshold = crate::dialogue::DialogueConfig::default().confirm_threshold;
    // The grammar's dispute sentence, which Whisper finds nearly as likely
    // as its own "already paid" text: the grammar wins the disagreement.
    let e = Evidence {
        grammar: Some(GrammarSide {
            conf: 1.0,
            ..scored(grammar("the bill is wrong", IntentKind::Dispute), -0.3)
        }),
        whisper: Some(whisper(
            "that bill is already settled",
            IntentKind::AlreadyPaid,
            -0.2,
        )),
    };
    for v in [
        decide(&e, &Calibration::FITTED),
        crate::asr::hybrid::HybridRule::CALLS.decide(&e, Some(0.4), &crate::asr::hybrid::HYBRID),
    ] {
        assert_eq!(v.agree, Some(false));
        assert!(
            v.confidence < threshold,
            "a disagreement on a consequential intent is confirmed: {v:?}"
        );
    }
    // Agreement, or an ordinary intent, keeps its calibrated confidence.
    let mut agree = e.clone();
    agree.grammar.as_mut().unwrap().intent = Some(IntentKind::AlreadyPaid);
    let v = decide(&agree, &Calibration::FITTED);
    assert!(v.confidence > DISAGREEMENT_CEILING, "{v:?}");
    // A looped or empty Whisper decode is no disagreement.
    let mut empty = e.clone();
    empty.whisper.as_mut().unwrap().text = String::new();
    let v = decide(&empty, &Calibration::FITTED);
    assert_eq!(v.source, Source::Grammar);
    assert!(v.confidence > DISAGREEMENT_CEILING, "{v:?}");
}

#[test]
fn a_consequential_sentence_the_second_pass_does_not_hear_is_confirmed() {
    let threshold = crate::dialogue::DialogueConfig::default().confirm_threshold;
    let forced = |lm: &str, lm_intent: IntentKind| Evidence {
        grammar: Some(with_lm(
            GrammarSide {
                conf: 1.0,
                ..grammar("speak to a rep", IntentKind::RequestAgent)
            },
            lm,
            lm_intent,
            0.9,
        )),
        whisper: None,
    };
    for (lm, i) in [
        ("she's not back from school yet", IntentKind::NotAvailable),
        ("she's snot back from cool yet", IntentKind::Unknown),
    ] {
        let v = decide(&forced(lm, i), &Calibration::GRAMMAR_LM);
        assert_eq!(v.source, Source::Grammar);
        assert!(v.confidence < threshold, "{lm}: {v:?}");
    }
    // The second pass hearing the same request leaves it as calibrated.
    let v = decide(
        &forced("can i speak to a rep", IntentKind::RequestAgent),
        &Calibration::GRAMMAR_LM,
    );
    assert!(v.confidence > DISAGREEMENT_CEILING, "{v:?}");
}
