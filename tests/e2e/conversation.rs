//! Whole reminder conversations over real SIP/RTP with the real recognizer
//! (PocketSphinx, English) against the simulated debtors, which wait for
//! each prompt and answer with espeak-ng speech. Each test checks the route
//! the case takes and what the callee heard.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use duecall::account::{Account, Language};
use duecall::agent::{Agent, AgentPaths, AttemptOutcome, CallOptions};
use duecall::config::Config;
use duecall::dialogue::{PromptId, Script};
use duecall::intent::IntentKind;
use duecall::outcome::{Disposition, EndedBy, RouteKind, SuppressScope};
use duecall::sim::{PersonaBook, SimCallRecord, SimConfig};
use duecall::telephony::sip::SipGateway;

use crate::peers::*;

/// Monday 2026-11-23, 10:00 in Los Angeles: inside every window (the
/// conversation tests over every transport use it).
pub(crate) fn now() -> DateTime<Utc> {
    "2026-11-23T18:00:00Z".parse().unwrap()
}

/// The simulated debtors every conversation test calls: the built-in
/// personas and the shipped extras (`prompts/sim.toml`: no_refer,
/// dispute, ...), seeded.
pub(crate) async fn start_sim() -> duecall::sim::SimCallee {
    let mut personas = PersonaBook::builtin();
    personas
        .load_file(&root().join("prompts/sim.toml"))
        .expect("prompts/sim.toml parses");
    duecall::sim::start(SimConfig {
        seed: Some(7),
        personas,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts")
}

/// The debtor every conversation test calls (English, Los Angeles).
pub(crate) fn account(id: &str) -> Account {
    serde_json::from_value(serde_json::json!({
        "account_id": id, "name": "Maria Lopez", "phone": "+14155550167", "amount": "125.50",
        "currency": "USD", "due_date": "2026-11-16", "timezone": "America/Los_Angeles", "language": "en",
        "agent_uri": "sip:collectors@127.0.0.1:5999"
    }))
    .unwrap()
}

/// Places one conversation with `persona` and returns our outcome and the
/// simulated callee's record of the call.
async fn converse(persona: &str, dialogue: &str) -> (AttemptOutcome, SimCallRecord) {
    converse_until(persona, dialogue, None).await
}

/// `converse`, and the process shuts down `shutdown_after` into the call.
async fn converse_until(
    persona: &str,
    dialogue: &str,
    shutdown_after: Option<Duration>,
) -> (AttemptOutcome, SimCallRecord) {
    crate::ws_conversation::test_log();
    let dir = scratch(&format!("conv-{persona}"));
    let sim = start_sim().await;
    let cfg_text = format!(
        "[dialogue]\n{}\n",
        crate::ws_conversation::dialogue_keys(dialogue)
    );
    let cfg = Config::from_toml(&cfg_text, "test").unwrap();
    let gw = Arc::new(SipGateway::start(cfg.clone()).await.unwrap());
    let agent = Agent::new(gw, &cfg, &AgentPaths::under(&root()), &[Language::En]).expect("agent");
    // Through the gate, like every reminder call: a fresh data directory.
    let dial = allowed_dial(&dir.join("data"), &account("A-1"), now());
    let mut opts = CallOptions::new(&sim.uri_for(persona), now(), dial);
    opts.record_dir = Some(dir.clone());
    opts.case_id = Some("case-1".into());
    if let Some(after) = shutdown_after {
        let token = opts.shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            token.cancel();
        });
    }
    let out = tokio::time::timeout(Duration::from_secs(150), agent.call(&account("A-1"), opts))
        .await
        .expect("conversation ends")
        .expect("conversation runs");
    let rec = sim
        .wait_ended(&out.call.call_id, Duration::from_secs(10))
        .await
        .expect("sim saw the call");
    sim.shutdown();
    (out, rec)
}

fn script() -> Script {
    Script::load(&root().join("prompts/en.toml")).unwrap()
}

fn debt_prompts_played(out: &AttemptOutcome) -> Vec<String> {
    debt_prompts_played_in(out, &script())
}

/// The prompts of `s` that mention the debt and were played in the call.
pub fn debt_prompts_played_in(out: &AttemptOutcome, s: &Script) -> Vec<String> {
    out.turns
        .iter()
        .filter(|t| t.played_ms > 0 && s.prompt(t.prompt).mentions_debt)
        .map(|t| t.prompt.to_string())
        .collect()
}

/// The intents heard in the call, turn by turn.
pub fn intents(out: &AttemptOutcome) -> Vec<IntentKind> {
    out.turns.iter().filter_map(|t| t.intent).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_paid_pauses_three_days_to_verify() {
    let (out, rec) = converse("paid", "").await;
    assert_eq!(out.call.disposition, Disposition::Answered);
    assert!(out.identity_confirmed, "{:#?}", out.turns);
    assert_eq!(
        out.intent,
        Some(IntentKind::AlreadyPaid),
        "{:#?}",
        out.turns
    );
    let r = out.route.expect("route");
    assert_eq!(r.kind, RouteKind::Pause);
    assert_eq!(
        r.until.unwrap().date_naive(),
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    );
    assert!(out.conversation);
    assert!(
        rec.lines_said.len() >= 3,
        "the debtor said hello, yes and paid: {:?}",
        rec.lines_said
    );
    let rec_path = out.call.recording.expect("recording");
    assert!(rec_path.is_file(), "the two-channel recording");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_to_pay_friday_is_read_back_and_pauses_until_the_day_after() {
    let (out, _) = converse("promise", "").await;
    assert!(
        intents(&out).contains(&IntentKind::PromiseToPay),
        "{:#?}",
        out.turns
    );
    let r = out.route.expect("route");
    assert_eq!(r.kind, RouteKind::Pause, "{r:?}");
    // Friday after Monday 2026-11-23 is the 27th; the pause ends the day after.
    assert_eq!(
        r.until.unwrap().date_naive(),
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        "{r:?}"
    );
    assert!(
        out.turns
            .iter()
            .any(|t| t.prompt == PromptId::ConfirmPromise),
        "the date was read back: {:#?}",
        out.turns
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardship_transfers_by_refer_with_the_case_and_pauses_thirty_days() {
    let (out, rec) = converse("hardship", "").await;
    assert!(
        intents(&out).contains(&IntentKind::Hardship),
        "{:#?}",
        out.turns
    );
    let r = out.route.expect("route");
    assert_eq!(r.kind, RouteKind::Agent);
    assert_eq!(r.follow_up.as_ref().map(|f| f.kind), Some(RouteKind::Pause));
    let t = out.call.transfer.expect("transfer attempted");
    assert!(t.ok, "{t:?}");
    let refer = rec.refer_received.expect("the callee got a REFER");
    assert_eq!(refer.header("X-Duecall-Account"), Some("A-1"));
    assert_eq!(refer.header("X-Duecall-Intent"), Some("hardship"));
    assert_eq!(out.call.ended_by, EndedBy::Us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_transfer_escalates_to_a_collector_with_the_transcript_and_says_goodbye() {
    // no_refer: a hardship reply, then the phone answers the REFER with 603.
    let (out, rec) = converse("no_refer", "").await;
    assert!(
        intents(&out).contains(&IntentKind::Hardship),
        "{:#?}",
        out.turns
    );
    let refer = rec.refer_received.as_ref().expect("the callee got a REFER");
    assert_eq!(refer.status, 603);
    assert_eq!(refer.header("X-Duecall-Case"), Some("case-1"));
    let t = out.call.transfer.as_ref().expect("transfer attempted");
    assert!(!t.ok, "{t:?}");
    assert_eq!(t.refer_status, Some(603), "{t:?}");

    // The case still goes to a collector: route `agent`, with an escalation
    // that carries the timed transcript of what was said.
    let r = out.route.as_ref().expect("route");
    assert_eq!(r.kind, RouteKind::Agent, "{r:?}");
    let e = out
        .escalations
        .iter()
        .find(|e| e.reason == "transfer-failed")
        .unwrap_or_else(|| panic!("no transfer-failed escalation: {:?}", out.escalations));
    assert!(e.summary.contains("account A-1"), "{}", e.summary);
    assert!(e.summary.contains("intent hardship"), "{}", e.summary);
    let heard = out
        .turns
        .iter()
        .find(|t| t.intent == Some(IntentKind::Hardship))
        .and_then(|t| t.heard.clone())
        .expect("the hardship reply was heard");
    assert!(
        e.summary.contains(&format!("debtor: {heard}")),
        "the transcript is in the escalation: {}",
        e.summary
    );
    assert!(e.summary.contains("agent: "), "{}", e.summary);

    // The callee is not left in silence: the apology and the call-back
    // promise play to the end after the refusal, then we hang up.
    let last = out.turns.last().expect("turns");
    assert_eq!(last.prompt, PromptId::TransferFailed, "{:#?}", out.turns);
    assert!(last.finished, "{last:?}");
    // The sim hears "Please hold" and the apology as one prompt when the
    // refusal comes quickly: what counts is that it kept hearing us after it.
    assert!(
        rec.prompts
            .iter()
            .any(|p| p.end_ms.unwrap_or(0) >= refer.at_ms + 3000),
        "nothing heard for 3 s after the REFER at {} ms: {:?}",
        refer.at_ms,
        rec.prompts
    );
    assert_eq!(out.call.ended_by, EndedBy::Us);
    assert_eq!(rec.bye_from, Some(duecall::sim::ByeFrom::Caller));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_number_hears_nothing_about_the_debt_and_the_number_is_suppressed() {
    let (out, _) = converse("wrong_number", "").await;
    assert_eq!(
        debt_prompts_played(&out),
        Vec::<String>::new(),
        "{:#?}",
        out.turns
    );
    assert!(!out.identity_confirmed);
    let r = out.route.expect("route");
    assert_eq!(r.kind, RouteKind::Suppress);
    assert_eq!(r.scope, Some(SuppressScope::Number));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_calling_suppresses_the_account() {
    let (out, _) = converse("stop", "").await;
    assert!(
        intents(&out).contains(&IntentKind::StopCalling),
        "{:#?}",
        out.turns
    );
    let r = out.route.expect("route");
    assert_eq!(r.kind, RouteKind::Suppress);
    assert_eq!(r.scope, Some(SuppressScope::Account), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_reasks_then_offers_the_menu_then_escalates_without_debt_talk() {
    let (out, _) = converse("silent", "no_input_ms = 1500").await;
    let prompts: Vec<&str> = out.turns.iter().map(|t| t.prompt.as_str()).collect();
    assert!(
        prompts.iter().any(|p| p.starts_with("reask")),
        "{prompts:?}"
    );
    assert!(prompts.iter().any(|p| p.starts_with("menu")), "{prompts:?}");
    assert_eq!(
        debt_prompts_played(&out),
        Vec::<String>::new(),
        "nobody confirmed identity: {prompts:?}"
    );
    // Silence after the menu: a collector gets the case through the queue
    // (no live transfer for a silent line) and the call ends politely.
    let r = out.route.as_ref().expect("route");
    assert_eq!(
        (r.kind, r.reason.as_str()),
        (RouteKind::Agent, "unknown"),
        "{r:?}"
    );
    assert!(out.call.transfer.is_none(), "{:?}", out.call.transfer);
    assert_eq!(
        out.escalations
            .iter()
            .map(|e| e.reason.as_str())
            .collect::<Vec<_>>(),
        ["unknown"]
    );
    assert_eq!(prompts.last(), Some(&"no_answer_close"), "{prompts:?}");
    assert!(!out.conversation, "nothing was heard");
    assert_eq!(out.call.ended_by, EndedBy::Us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_only_replies_confirm_identity_and_answer_the_reminder() {
    let (out, rec) = converse("dtmf", "").await;
    assert!(!rec.dtmf_sent.is_empty());
    assert!(out.identity_confirmed, "{:#?}", out.turns);
    let heard: Vec<(&str, IntentKind)> = out
        .turns
        .iter()
        .filter_map(|t| Some((t.heard.as_deref()?, t.intent?)))
        .collect();
    assert_eq!(
        heard[..2],
        [
            ("dtmf:1", IntentKind::IdentityConfirmed),
            ("dtmf:2", IntentKind::PromiseToPay)
        ],
        "{:#?}",
        out.turns
    );
    // "2" promises without a date; asked twice for one and given none, the
    // case goes to a collector, live (the simulated phone accepts the REFER).
    let r = out.route.as_ref().expect("route");
    assert_eq!(
        (r.kind, r.reason.as_str()),
        (RouteKind::Agent, "promise-without-date"),
        "{r:?}"
    );
    let t = out.call.transfer.as_ref().expect("transfer attempted");
    assert!(t.ok, "{t:?}");
    assert!(out.escalations.is_empty(), "{:?}", out.escalations);
    assert!(out.conversation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_hanging_up_mid_prompt_ends_cleanly_with_a_retry() {
    let (out, _) = converse("hangup_mid_prompt", "").await;
    assert_eq!(out.call.ended_by, EndedBy::Them);
    let first = out.turns.first().expect("a prompt started");
    assert!(!first.finished, "{first:?}");
    assert_eq!(out.route.map(|r| r.kind), Some(RouteKind::Retry));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_during_the_reminder_cuts_it_and_the_reply_is_acted_on() {
    let (out, _) = converse("barge_in_reminder", "").await;
    let reminder = out
        .turns
        .iter()
        .find(|t| t.prompt == PromptId::Reminder)
        .expect("reminder played");
    assert!(
        !reminder.finished && reminder.cut_at_ms.is_some(),
        "{reminder:?}"
    );
    assert!(
        intents(&out).contains(&IntentKind::AlreadyPaid),
        "{:#?}",
        out.turns
    );
    // Disclosures are never cut.
    for t in &out.turns {
        if t.prompt.is_disclosure() {
            assert!(t.finished, "{t:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_call_says_the_closing_line_hangs_up_and_keeps_an_outcome() {
    // The silent debtor stays on the line; the process stops 9 s in (the
    // opening has played, the identity question waits for a reply).
    let (out, rec) = converse_until("silent", "", Some(Duration::from_secs(9))).await;
    assert_eq!(
        out.cut_short.as_deref(),
        Some("shutdown"),
        "{:#?}",
        out.turns
    );
    let last = out.turns.last().expect("turns");
    assert_eq!(last.prompt, PromptId::Closing, "{:#?}", out.turns);
    assert!(last.finished, "the closing line plays to its end: {last:?}");
    let r = out.route.as_ref().expect("route");
    assert_eq!(
        (r.kind, r.reason.as_str()),
        (RouteKind::Retry, "shutdown"),
        "{r:?}"
    );
    assert_eq!(out.call.disposition, Disposition::Answered);
    assert_eq!(out.call.ended_by, EndedBy::Us);
    assert_eq!(
        rec.bye_from,
        Some(duecall::sim::ByeFrom::Caller),
        "we hung up (BYE)"
    );
    assert_eq!(debt_prompts_played(&out), Vec::<String>::new());
}

// ---- Never act on a guess: the confirmation question over the line ----
//
// The recognizer's confidence is not yet calibrated (PocketSphinx alone
// reports one fixed value), so these calls make every consequential reply
// count as unsure with `confirm_threshold = 1.0` (nothing heard is surer
// than certain): the dialogue must then ask "Just to be sure" before it
// routes, and the simulated debtors (prompts/sim.toml, `stop_unsure_*`)
// answer that question by voice or DTMF, or not at all.

const UNSURE: &str = "confirm_threshold = 1.0";

fn prompts_played(out: &AttemptOutcome) -> Vec<&str> {
    out.turns
        .iter()
        .filter(|t| t.played_ms > 0)
        .map(|t| t.prompt.as_str())
        .collect()
}

/// The stop request was heard, judged unsure and confirmed by a question
/// whose own reply (`voice`: spoken words, or `dtmf:N`) meant `meant`.
fn assert_stop_was_questioned(out: &AttemptOutcome, answer: &str, meant: IntentKind) {
    let i = out
        .turns
        .iter()
        .position(|t| t.intent == Some(IntentKind::StopCalling))
        .unwrap_or_else(|| panic!("no stop_calling reply heard: {:#?}", out.turns));
    let stop = &out.turns[i];
    let sure = stop.confidence.unwrap_or(0.0) * stop.asr_confidence.unwrap_or(1.0);
    assert!(sure < 1.0, "the stop request counted as unsure: {stop:?}");
    let q = out
        .turns
        .get(i + 1)
        .unwrap_or_else(|| panic!("nothing after the stop request: {:#?}", out.turns));
    assert_eq!(
        q.prompt,
        PromptId::ConfirmStopCalling,
        "the stop request was confirmed before it was routed: {:#?}",
        out.turns
    );
    assert!(q.finished, "{q:?}");
    assert_eq!(q.intent, Some(meant), "{:#?}", out.turns);
    let heard = q.heard.as_deref().unwrap_or("");
    if answer == "voice" {
        assert!(
            !heard.is_empty() && !heard.starts_with("dtmf:"),
            "a spoken answer: {q:?}"
        );
    } else {
        assert_eq!(heard, answer, "{q:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsure_stop_request_confirmed_by_voice_suppresses_the_account() {
    let (out, rec) = converse("stop_unsure_yes", UNSURE).await;
    assert_stop_was_questioned(&out, "voice", IntentKind::IdentityConfirmed);
    let r = out.route.as_ref().expect("route");
    assert_eq!(
        (r.kind, r.scope),
        (RouteKind::Suppress, Some(SuppressScope::Account)),
        "{r:?}"
    );
    assert_eq!(out.intent, Some(IntentKind::StopCalling));
    assert_eq!(
        prompts_played(&out).last(),
        Some(&"stop_calling"),
        "the stop is acknowledged: {:#?}",
        out.turns
    );
    assert!(out.escalations.is_empty(), "{:?}", out.escalations);
    assert_eq!(rec.lines_said.last().map(|l| l.text.as_str()), Some("Yes."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsure_stop_request_confirmed_with_1_suppresses_the_account() {
    let (out, rec) = converse("stop_unsure_1", UNSURE).await;
    assert_eq!(rec.dtmf_sent.len(), 1, "{:?}", rec.dtmf_sent);
    assert_stop_was_questioned(&out, "dtmf:1", IntentKind::IdentityConfirmed);
    let r = out.route.as_ref().expect("route");
    assert_eq!(
        (r.kind, r.scope),
        (RouteKind::Suppress, Some(SuppressScope::Account)),
        "{r:?}"
    );
    assert!(out.escalations.is_empty(), "{:?}", out.escalations);
}

/// After a denied stop request the call goes on: the reminder question is
/// asked again, "I already paid" is confirmed in turn, and the case pauses
/// to verify the payment; nothing is suppressed.
fn assert_denied_stop_went_on(out: &AttemptOutcome) {
    let played = prompts_played(out);
    let after = played
        .iter()
        .skip_while(|p| **p != "confirm_stop_calling")
        .skip(1)
        .copied()
        .collect::<Vec<_>>();
    assert_eq!(
        after.first(),
        Some(&"reask_reminder"),
        "the question is asked again: {played:?}"
    );
    assert!(
        after
            .windows(2)
            .any(|w| w == ["confirm_already_paid", "ack_paid"]),
        "the payment is confirmed, then acknowledged: {played:?}"
    );
    let r = out.route.as_ref().expect("route");
    assert_eq!(r.kind, RouteKind::Pause, "{r:?}");
    assert_eq!(r.reason, duecall::outcome::reason::VERIFY_PAYMENT, "{r:?}");
    assert_eq!(
        r.until.unwrap().date_naive(),
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    );
    assert_eq!(out.intent, Some(IntentKind::AlreadyPaid));
    assert!(out.escalations.is_empty(), "{:?}", out.escalations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsure_stop_request_denied_by_voice_lets_the_call_go_on() {
    let (out, _) = converse("stop_unsure_no", UNSURE).await;
    assert_stop_was_questioned(&out, "voice", IntentKind::IdentityDenied);
    assert_denied_stop_went_on(&out);
    let paid = out
        .turns
        .iter()
        .find(|t| t.prompt == PromptId::ConfirmAlreadyPaid)
        .expect("asked");
    assert_eq!(paid.heard.as_deref(), Some("dtmf:1"), "{paid:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsure_stop_request_denied_with_2_lets_the_call_go_on() {
    let (out, _) = converse("stop_unsure_2", UNSURE).await;
    assert_stop_was_questioned(&out, "dtmf:2", IntentKind::IdentityDenied);
    assert_denied_stop_went_on(&out);
    let paid = out
        .turns
        .iter()
        .find(|t| t.prompt == PromptId::ConfirmAlreadyPaid)
        .expect("asked");
    assert_eq!(
        paid.intent,
        Some(IntentKind::IdentityConfirmed),
        "a spoken yes: {paid:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_stop_confirmation_stops_robot_calls_and_escalates() {
    let (out, rec) = converse(
        "stop_unsure_silent",
        &format!("{UNSURE}\nno_input_ms = 2500"),
    )
    .await;
    let played = prompts_played(&out);
    let after: Vec<&str> = played
        .iter()
        .skip_while(|p| **p != "confirm_stop_calling")
        .copied()
        .collect();
    assert_eq!(
        after,
        [
            "confirm_stop_calling",
            "reask_confirm_intent",
            "unsure_stop_close"
        ],
        "asked, asked again, then in doubt stopped: {played:?}"
    );
    let r = out.route.as_ref().expect("route");
    assert_eq!(
        (r.kind, r.reason.as_str()),
        (RouteKind::Agent, "stop-unconfirmed"),
        "{r:?}"
    );
    assert_eq!(
        r.effect(),
        duecall::outcome::RouteEffect::Agent,
        "no more robot calls for the case"
    );
    let e = out
        .escalations
        .iter()
        .find(|e| e.reason == "stop-unconfirmed")
        .unwrap_or_else(|| panic!("no stop-unconfirmed escalation: {:?}", out.escalations));
    assert!(e.summary.contains("account A-1"), "{}", e.summary);
    let stop_heard = out
        .turns
        .iter()
        .find(|t| t.intent == Some(IntentKind::StopCalling))
        .and_then(|t| t.heard.clone())
        .expect("the stop request was heard");
    assert!(
        e.summary.contains(&format!("debtor: {stop_heard}")),
        "the collector reads what was said: {}",
        e.summary
    );
    assert!(
        out.call.transfer.is_none(),
        "no live transfer: {:?}",
        out.call.transfer
    );
    assert!(rec.refer_received.is_none());
    assert_eq!(out.call.ended_by, EndedBy::Us);
    assert!(
        out.turns.last().is_some_and(|t| t.finished),
        "{:#?}",
        out.turns
    );
}
