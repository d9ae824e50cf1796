use super::*;
use chrono::NaiveDateTime;

const EN: &str = include_str!("../../prompts/en.toml");
const ZH: &str = include_str!("../../prompts/zh.toml");

fn en() -> Classifier {
    Classifier::new(Lexicon::from_toml_str(EN, "en").expect("en lexicon"))
}
fn zh() -> Classifier {
    Classifier::new(Lexicon::from_toml_str(ZH, "zh").expect("zh lexicon"))
}
/// Wednesday 15 May 2024, 10:00.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 5, 15).unwrap()
}
fn ten() -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(10, 0, 0)
}
fn kind(c: &Classifier, text: &str) -> IntentKind {
    c.classify(text, today(), ten()).kind
}
fn at(d: u32, h: u32, m: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 5, d)
        .unwrap()
        .and_hms_opt(h, m, 0)
        .unwrap()
}

#[test]
fn negated_payment_is_not_already_paid() {
    let c = en();
    assert_eq!(kind(&c, "I have paid"), IntentKind::AlreadyPaid);
    assert_ne!(kind(&c, "I haven't paid"), IntentKind::AlreadyPaid);
    assert_ne!(kind(&c, "i have not paid it yet"), IntentKind::AlreadyPaid);
    assert_ne!(kind(&c, "I never paid that"), IntentKind::AlreadyPaid);
    assert_eq!(
        kind(&c, "I haven't paid yet but I will on Friday"),
        IntentKind::PromiseToPay
    );
    let r = c.classify("I haven't paid", today(), ten());
    assert!(r.reason.contains("after 'not'"), "{}", r.reason);
}

#[test]
fn negated_identity_in_mandarin() {
    let c = zh();
    assert_eq!(kind(&c, "是我"), IntentKind::IdentityConfirmed);
    assert_eq!(kind(&c, "不是我"), IntentKind::IdentityDenied);
    assert_eq!(kind(&c, "我不是本人"), IntentKind::IdentityDenied);
    assert_eq!(kind(&c, "我还没还"), IntentKind::Unknown);
    assert_eq!(kind(&c, "我已经还了"), IntentKind::AlreadyPaid);
}

#[test]
fn not_now_is_a_callback_and_cannot_pay_is_hardship() {
    let c = en();
    assert_eq!(kind(&c, "not now"), IntentKind::CallbackLater);
    assert_eq!(kind(&c, "I can't pay"), IntentKind::Hardship);
    assert_eq!(kind(&c, "I won't pay"), IntentKind::Dispute);
    assert_eq!(kind(&c, "I can pay"), IntentKind::PromiseToPay);
}

#[test]
fn priority_decides_mixed_replies_and_says_why() {
    let c = en();
    assert_eq!(kind(&c, "yes, but I lost my job"), IntentKind::Hardship);
    assert_eq!(kind(&c, "no, I already paid"), IntentKind::AlreadyPaid);
    let r = c.classify("wrong number, I'll pay Friday", today(), ten());
    assert_eq!(r.kind, IntentKind::WrongNumber);
    assert!(
        r.reason.starts_with("wrong_number beats promise_to_pay"),
        "{}",
        r.reason
    );
    assert!(r.reason.contains("'wrong number'"), "{}", r.reason);
    assert!(r.slots.date.is_none(), "only promise_to_pay carries a date");
    let z = zh();
    assert_eq!(kind(&z, "是我，但是我失业了"), IntentKind::Hardship);
    assert_eq!(kind(&z, "不是，我已经还了"), IntentKind::AlreadyPaid);
    assert_eq!(kind(&z, "打错了，我周五还"), IntentKind::WrongNumber);
}

#[test]
fn a_reply_that_says_more_carries_what_else_it_said() {
    let c = en();
    let r = c.classify("yes speaking, and I already paid", today(), ten());
    assert_eq!(r.kind, IntentKind::AlreadyPaid);
    assert!(
        r.also_says(IntentKind::IdentityConfirmed),
        "{:?} ({})",
        r.also,
        r.reason
    );
    let r = c.classify("no, I already paid", today(), ten());
    assert!(r.also_says(IntentKind::IdentityDenied), "{:?}", r.also);
    assert!(!r.also_says(IntentKind::IdentityConfirmed), "{:?}", r.also);
    let r = c.classify("I already paid", today(), ten());
    assert!(r.also.is_empty(), "{:?}", r.also);
    // Mandarin too: "是我，我已经还了".
    let r = zh().classify("是我，我已经还了", today(), ten());
    assert_eq!(r.kind, IntentKind::AlreadyPaid);
    assert!(r.also_says(IntentKind::IdentityConfirmed), "{:?}", r.also);
}

#[test]
fn threshold_turns_weak_evidence_into_unknown() {
    let c = en();
    // one weak word in an off-topic sentence
    let r = c.classify("I spent the money on a new car", today(), ten());
    assert_eq!(r.kind, IntentKind::Unknown);
    assert!(r.confidence > 0.0 && r.confidence < 0.5, "{}", r.confidence);
    assert!(r.reason.contains("below threshold"), "{}", r.reason);
    // the same words pass with a low threshold
    let low = en().with_threshold(0.2);
    assert_eq!(
        low.classify("I spent the money on a new car", today(), ten())
            .kind,
        IntentKind::Hardship
    );
    // a clear word fails a very high threshold
    let high = en().with_threshold(0.95);
    assert_eq!(
        high.classify("paid", today(), ten()).kind,
        IntentKind::Unknown
    );
    assert_eq!(
        c.classify("paid", today(), ten()).kind,
        IntentKind::AlreadyPaid
    );
}

#[test]
fn confidence_grows_with_coverage() {
    let c = en();
    let short = c.classify("paid", today(), ten());
    let long = c.classify(
        "paid but the weather here has been terrible all week",
        today(),
        ten(),
    );
    assert!(
        short.confidence > long.confidence,
        "{} vs {}",
        short.confidence,
        long.confidence
    );
}

#[test]
fn fillers_are_skipped() {
    let c = en();
    assert_eq!(
        kind(&c, "um uh I, like, already um paid"),
        IntentKind::AlreadyPaid
    );
    assert_eq!(kind(&c, "um"), IntentKind::Unknown);
    assert_eq!(c.classify("uh hmm", today(), ten()).reason, "only fillers");
    let z = zh();
    assert_eq!(kind(&z, "嗯那个就是我"), IntentKind::IdentityConfirmed);
    assert_eq!(
        kind(&z, "呃，就是，我已经，嗯，还了"),
        IntentKind::AlreadyPaid
    );
    // 对 inside the filler 对不起 is not a "yes"
    assert_eq!(kind(&z, "对不起"), IntentKind::Unknown);
}

#[test]
fn typos_and_cut_off_words_still_match() {
    let c = en();
    let r = c.classify("i alredy payed", today(), ten());
    assert_eq!(r.kind, IntentKind::AlreadyPaid);
    assert!(r.reason.contains("heard"), "{}", r.reason);
    // cut off by the recogniser
    assert_eq!(kind(&c, "I'm in the hospit"), IntentKind::Hardship);
    let r = c.classify("sorry wrong numb", today(), ten());
    assert_eq!(r.kind, IntentKind::WrongNumber);
    assert!(r.reason.contains("(heard 'wrong numb')"), "{}", r.reason);
    assert_eq!(kind(&c, "wrong numbr"), IntentKind::WrongNumber);
}

#[test]
fn traditional_characters_classify_like_simplified() {
    let z = zh();
    assert_eq!(kind(&z, "我已經還了"), IntentKind::AlreadyPaid);
    assert_eq!(kind(&z, "你打錯了"), IntentKind::WrongNumber);
    assert_eq!(kind(&z, "別再打來了"), IntentKind::StopCalling);
    assert_eq!(kind(&z, "轉人工"), IntentKind::RequestAgent);
    let r = z.classify("下週五還", today(), ten());
    assert_eq!(r.kind, IntentKind::PromiseToPay);
    assert_eq!(r.slots.date, NaiveDate::from_ymd_opt(2024, 5, 24));
}

#[test]
fn promise_carries_the_resolved_date() {
    let c = en();
    let r = c.classify("I'll pay next Friday", today(), ten());
    assert_eq!(r.kind, IntentKind::PromiseToPay);
    assert_eq!(r.slots.date, NaiveDate::from_ymd_opt(2024, 5, 24));
    let r = c.classify("friday", today(), ten());
    assert_eq!(
        (r.kind, r.slots.date),
        (
            IntentKind::PromiseToPay,
            NaiveDate::from_ymd_opt(2024, 5, 17)
        )
    );
    assert!(r.reason.contains("a date alone"), "{}", r.reason);
    let r = zh().classify("月底还", today(), ten());
    assert_eq!(r.slots.date, NaiveDate::from_ymd_opt(2024, 5, 31));
}

#[test]
fn callback_carries_the_resolved_time() {
    let r = en().classify("call me after 6", today(), ten());
    assert_eq!(
        (r.kind, r.slots.time),
        (IntentKind::CallbackLater, Some(at(15, 18, 0)))
    );
    let r = en().classify("I'm in a meeting, call back in an hour", today(), ten());
    assert_eq!(r.slots.time, Some(at(15, 11, 0)));
    let r = zh().classify("晚上七点再打", today(), ten());
    assert_eq!(
        (r.kind, r.slots.time),
        (IntentKind::CallbackLater, Some(at(15, 19, 0)))
    );
    let r = zh().classify("明天上午", today(), ten());
    assert_eq!(
        (r.kind, r.slots.time),
        (IntentKind::CallbackLater, Some(at(16, 9, 0)))
    );
}

#[test]
fn after_a_time_is_a_callback_with_standing_hours_at_a_time_is_not() {
    let r = en().classify("call me after 6", today(), ten());
    let h = r.slots.hours.expect("after 6 asks for hours");
    assert_eq!(
        (r.kind, h.not_before, h.not_after),
        (
            IntentKind::CallbackLater,
            chrono::NaiveTime::from_hms_opt(18, 0, 0),
            None
        )
    );
    let r = en().classify("can you call me at 6", today(), ten());
    assert_eq!((r.kind, r.slots.hours), (IntentKind::CallbackLater, None));
    let r = zh().classify("晚上七点以后再打", today(), ten());
    assert_eq!(
        r.slots.hours.and_then(|h| h.not_before),
        chrono::NaiveTime::from_hms_opt(19, 0, 0)
    );
    // hours belong to a callback only: "I paid after six" carries none
    let r = en().classify("i already paid it yesterday after six", today(), ten());
    assert_eq!((r.kind, r.slots.hours), (IntentKind::AlreadyPaid, None));
}

#[test]
fn dtmf_digits_follow_the_menu() {
    let c = en();
    let b = DtmfContext::BeforeIdentity;
    let a = DtmfContext::AfterIdentity;
    assert_eq!(c.classify_dtmf('1', b).kind, IntentKind::IdentityConfirmed);
    assert_eq!(c.classify_dtmf('2', b).kind, IntentKind::IdentityDenied);
    assert_eq!(c.classify_dtmf('0', b).kind, IntentKind::RequestAgent);
    assert_eq!(c.classify_dtmf('1', a).kind, IntentKind::AlreadyPaid);
    assert_eq!(c.classify_dtmf('2', a).kind, IntentKind::PromiseToPay);
    assert_eq!(c.classify_dtmf('3', a).kind, IntentKind::Hardship);
    assert_eq!(c.classify_dtmf('4', a).kind, IntentKind::WrongNumber);
    assert_eq!(c.classify_dtmf('0', a).kind, IntentKind::RequestAgent);
    // before identity nothing about the debt: 3 means nothing
    assert_eq!(c.classify_dtmf('3', b).kind, IntentKind::Unknown);
    assert_eq!(c.classify_dtmf('7', a).kind, IntentKind::Unknown);
    assert_eq!(c.classify_dtmf('1', a).confidence, 1.0);
    assert_eq!(zh().classify_dtmf('4', a).kind, IntentKind::WrongNumber);
}

#[test]
fn adding_a_phrase_in_toml_changes_the_result_without_code() {
    assert_eq!(kind(&en(), "I'm skint this month"), IntentKind::Unknown);
    let extended = EN.replace(
        "[intent.hardship]\n",
        "[intent.hardship]\nphrases_extra_ignored = 1\n",
    );
    // an unknown key is refused, naming it
    let e = Lexicon::from_toml_str(&extended, "en").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("intent.hardship.phrases_extra_ignored"),
        "{e}"
    );
    let extended = EN.replace(
        "[intent.hardship]\nphrases = [",
        "[intent.hardship]\nphrases = [\"skint\", ",
    );
    let c = Classifier::new(Lexicon::from_toml_str(&extended, "en").unwrap());
    let r = c.classify("I'm skint this month", today(), ten());
    assert_eq!(r.kind, IntentKind::Hardship);
    assert!(r.reason.contains("'skint'"), "{}", r.reason);
    // and a new DTMF digit
    let extended = EN.replace(
        "[intent.stop_calling]\n",
        "[intent.stop_calling]\ndtmf_after = \"9\"\n",
    );
    let c = Classifier::new(Lexicon::from_toml_str(&extended, "en").unwrap());
    assert_eq!(
        c.classify_dtmf('9', DtmfContext::AfterIdentity).kind,
        IntentKind::StopCalling
    );
}

#[test]
fn empty_and_noise_are_unknown() {
    let c = en();
    let r = c.classify("", today(), ten());
    assert_eq!((r.kind, r.confidence), (IntentKind::Unknown, 0.0));
    assert_eq!(kind(&c, "?!..."), IntentKind::Unknown);
    assert_eq!(kind(&c, "the weather is lovely today"), IntentKind::Unknown);
    assert_eq!(kind(&zh(), "今天天气不错"), IntentKind::Unknown);
}

#[test]
fn pattern_gaps_never_skip_a_negation() {
    let c = en();
    // "(will|can) * pay" must not read "can not pay" as a promise
    let r = c.classify("I can not really pay", today(), ten());
    assert_ne!(r.kind, IntentKind::PromiseToPay, "{}", r.reason);
}
