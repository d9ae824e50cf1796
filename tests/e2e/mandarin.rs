//! Mandarin conversations over real SIP/RTP (issue 18, "Mandarin over
//! audio"): an account with language `zh`, duecall speaking
//! `prompts/zh.toml` (espeak-ng `cmn`), the simulated Mandarin debtors
//! (`zh_*` personas, espeak-ng `cmn` through 8 kHz u-law) answering, and
//! duecall hearing them with Whisper base (the multilingual ggml
//! `scripts/setup-whisper` installs), the only recogniser a zh call has when
//! no Vosk Mandarin model is installed. Whisper's traditional characters are
//! converted to simplified (`asr::normalize`) before the zh lexicon reads
//! them; where Whisper's own text means nothing, the best-scoring listen
//! phrase of the turn may stand in (`asr::whisper::phrases`). Whisper-only
//! replies are heard with low confidence, so the dialogue confirms each
//! consequential one ("跟您确认一下：…") and the debtor answers "对。" (or
//! "不是。" when it meant something else). Each test checks the route the
//! script implies and prints the callee-side reply latencies (end of the
//! debtor's line to the first voiced frame of our next prompt).
//!
//! Under CI a missing Whisper base model or espeak-ng fails the tests
//! (`scripts/setup-whisper`); elsewhere they skip. A Vosk Mandarin model, if
//! one is installed, would take the place of Whisper: the tests then say so
//! and still check the routes.
//!
//! Not in the default suite (`#[ignore]`): in the CI dry run of 2026-12-07
//! (`CI=true scripts/test`, ten tests at a time on 2 cores) Whisper base,
//! whose decode threads run at nice 5, gave no result within 12 s for any
//! reply, and two of the five failed; alone they passed 5 of 5. Run them on a
//! quiet machine: `CI=true cargo test --release --test e2e mandarin:: --
//! --ignored --test-threads 1`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use duecall::account::{Account, Language};
use duecall::agent::{Agent, AgentPaths, AttemptOutcome, CallOptions};
use duecall::config::Config;
use duecall::dialogue::{PromptId, Script};
use duecall::intent::IntentKind;
use duecall::outcome::{RouteKind, SuppressScope};
use duecall::sim::SimCallRecord;
use duecall::telephony::sip::SipGateway;
use duecall::testkit::needs;

use crate::peers::*;

/// Monday 2026-11-23, 10:00 in Shanghai: inside every calling window.
fn now() -> DateTime<Utc> {
    "2026-11-23T02:00:00Z".parse().unwrap()
}

/// The Mandarin debtor: 李明 in Shanghai, owing CNY.
fn account(id: &str) -> Account {
    serde_json::from_value(serde_json::json!({
        "account_id": id, "name": "李明", "phone": "+8613800138000", "amount": "1250.50",
        "currency": "CNY", "due_date": "2026-11-16", "timezone": "Asia/Shanghai", "language": "zh",
        "agent_uri": "sip:collectors@127.0.0.1:5999"
    }))
    .unwrap()
}

/// The Mandarin conversations run one at a time: two Whisper base decodes
/// at once on a 2-core machine would measure each other, not a reply.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether Whisper base and espeak-ng are here (under CI their absence
/// fails the test).
fn mandarin_tools() -> bool {
    needs()
        .present(
            duecall::asr::whisper::find_model("zh").is_some(),
            "the multilingual Whisper base model (.local/models/whisper/ggml-base-q8_0.bin)",
        )
        .tool("espeak-ng")
        .setup("scripts/setup-whisper")
        .met()
}

/// Places one Mandarin conversation with `persona`; our outcome and the
/// simulated callee's record.
async fn converse(persona: &str) -> (AttemptOutcome, SimCallRecord) {
    crate::ws_conversation::test_log();
    let dir = scratch(&format!("zh-{persona}"));
    let sim = crate::conversation::start_sim().await;
    let cfg_text = format!(
        "[dialogue]\n{}\n",
        // A Whisper-only language waits for Whisper base (seconds under
        // load): the dialogue gives a reply that long before it re-asks.
        crate::ws_conversation::dialogue_keys("no_input_ms = 15000")
    );
    let cfg = Config::from_toml(&cfg_text, "test").unwrap();
    let gw = Arc::new(SipGateway::start(cfg.clone()).await.unwrap());
    let agent = Agent::new(gw, &cfg, &AgentPaths::under(&root()), &[Language::Zh]).expect("agent");
    // The recognizer is opened (Whisper base loaded) before the call, as
    // `duecall call` does at start-up: the model's load is not a reply's.
    let engine = agent
        .check_asr(Language::Zh)
        .await
        .expect("a zh recognizer");
    let acct = account("ZH-1");
    let dial = allowed_dial(&dir.join("data"), &acct, now());
    let mut opts = CallOptions::new(&sim.uri_for(persona), now(), dial);
    opts.record_dir = Some(dir.clone());
    opts.case_id = Some("case-zh".into());
    let out = tokio::time::timeout(Duration::from_secs(150), agent.call(&acct, opts))
        .await
        .expect("conversation ends")
        .expect("conversation runs");
    let rec = sim
        .wait_ended(&out.call.call_id, Duration::from_secs(10))
        .await
        .expect("sim saw the call");
    sim.shutdown();
    report(persona, engine, &out, &rec);
    (out, rec)
}

/// Prints what was heard and the reply latencies (the numbers README
/// "Speech models" quotes come from `--nocapture` runs of these tests).
fn report(persona: &str, engine: &str, out: &AttemptOutcome, rec: &SimCallRecord) {
    println!("[zh {persona}] engine {engine}");
    for (i, (line, ms)) in rec.reply_latencies().into_iter().enumerate() {
        let t = i.checked_sub(1).and_then(|j| out.reply_timings.get(j));
        match t {
            Some(t) => println!(
                "[zh {persona}] {line} -> {ms} ms (end-silence {} final {} decode {}/{} audio) heard {:?} -> {}",
                t.speech_end_ms - t.voice_end_ms,
                t.final_ms.saturating_sub(t.speech_end_ms),
                t.asr_decode_ms,
                t.asr_audio_ms,
                t.heard,
                t.prompt
            ),
            None => println!("[zh {persona}] {line} -> {ms} ms"),
        }
    }
    for t in &out.turns {
        if let Some(h) = &t.heard {
            println!(
                "[zh {persona}]   {} heard {h:?} -> {:?} ({:?})",
                t.prompt, t.intent, t.confidence
            );
        }
    }
}

fn script() -> Script {
    Script::load(&root().join("prompts/zh.toml")).unwrap()
}

fn debt_prompts_played(out: &AttemptOutcome) -> Vec<String> {
    crate::conversation::debt_prompts_played_in(out, &script())
}

use crate::conversation::intents;

/// What was heard, as simplified Chinese (Whisper base writes traditional).
fn heard(out: &AttemptOutcome) -> Vec<String> {
    out.turns.iter().filter_map(|t| t.heard.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a quiet machine (README: Mandarin over audio)"]
async fn mandarin_already_paid_is_heard_by_whisper_and_pauses_three_days() {
    if !mandarin_tools() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let (out, rec) = converse("zh_paid").await;
    assert!(out.identity_confirmed, "{:#?}", out.turns);
    assert_eq!(
        out.intent,
        Some(IntentKind::AlreadyPaid),
        "{:#?}",
        out.turns
    );
    let r = out.route.clone().expect("route");
    assert_eq!(r.kind, RouteKind::Pause);
    assert_eq!(
        r.until.unwrap().date_naive(),
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    );
    assert!(rec.lines_said.len() >= 3, "{:?}", rec.lines_said);
    // Simplified characters reach the dialogue (Whisper base writes 還 and 週).
    let said = heard(&out).join(" ");
    assert!(
        !said.contains('還') && !said.contains('經') && !said.contains('週'),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a quiet machine (README: Mandarin over audio)"]
async fn mandarin_promise_on_friday_is_read_back_and_pauses_until_the_day_after() {
    if !mandarin_tools() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let (out, _) = converse("zh_promise").await;
    assert!(
        intents(&out).contains(&IntentKind::PromiseToPay),
        "{:#?}",
        out.turns
    );
    assert!(
        out.turns
            .iter()
            .any(|t| t.prompt == PromptId::ConfirmPromise),
        "the date was read back: {:#?}",
        out.turns
    );
    let r = out.route.clone().expect("route");
    assert_eq!(r.kind, RouteKind::Pause, "{r:?}");
    // Friday after Monday 2026-11-23 is the 27th; the pause ends the day after.
    assert_eq!(
        r.until.unwrap().date_naive(),
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a quiet machine (README: Mandarin over audio)"]
async fn mandarin_hardship_transfers_by_refer_with_the_intent() {
    if !mandarin_tools() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let (out, rec) = converse("zh_hardship").await;
    assert!(
        intents(&out).contains(&IntentKind::Hardship),
        "{:#?}",
        out.turns
    );
    let r = out.route.clone().expect("route");
    assert_eq!(r.kind, RouteKind::Agent, "{r:?}");
    let refer = rec.refer_received.expect("the callee got a REFER");
    assert_eq!(refer.header("X-Duecall-Account"), Some("ZH-1"));
    assert_eq!(refer.header("X-Duecall-Intent"), Some("hardship"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a quiet machine (README: Mandarin over audio)"]
async fn mandarin_wrong_number_hears_nothing_about_the_debt_and_suppresses_the_number() {
    if !mandarin_tools() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let (out, _) = converse("zh_wrong_number").await;
    assert_eq!(
        debt_prompts_played(&out),
        Vec::<String>::new(),
        "{:#?}",
        out.turns
    );
    assert!(!out.identity_confirmed);
    let r = out.route.clone().expect("route");
    assert_eq!(r.kind, RouteKind::Suppress, "{r:?}");
    assert_eq!(r.scope, Some(SuppressScope::Number), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a quiet machine (README: Mandarin over audio)"]
async fn mandarin_stop_calling_suppresses_the_account() {
    if !mandarin_tools() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let (out, _) = converse("zh_stop").await;
    assert!(
        intents(&out).contains(&IntentKind::StopCalling),
        "{:#?}",
        out.turns
    );
    let r = out.route.clone().expect("route");
    assert_eq!(r.kind, RouteKind::Suppress, "{r:?}");
    assert_eq!(r.scope, Some(SuppressScope::Account), "{r:?}");
}
