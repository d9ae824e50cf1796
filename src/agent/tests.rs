//! Whole conversations over the in-memory leg (`telephony::memory`): the
//! agent's pump, ears, recognizer thread and prompt audio against a scripted
//! callee, with a recognizer that "hears" the callee's lines in order. No
//! SIP, no RTP, no sockets; prompt audio is the real renders (espeak-ng).

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::account::Account;
use crate::asr::{AsrError, Partial, Transcript, Word};
use crate::dialogue::PromptId;
use crate::intent::IntentKind;
use crate::outcome::{EndedBy, RouteKind};
use crate::policy::{Decision, PolicyDecision};
use crate::telephony::memory::{FarEnd, FarEndTurn, MemoryGateway};

/// Monday 2026-11-23, 10:00 in Los Angeles: inside every window.
fn now() -> DateTime<Utc> {
    "2026-11-23T18:00:00Z".parse().unwrap()
}

fn account() -> Account {
    serde_json::from_value(serde_json::json!({
        "account_id": "A-1", "name": "Maria Lopez", "phone": "+14155550167", "amount": "125.50",
        "currency": "USD", "due_date": "2026-11-16", "timezone": "America/Los_Angeles",
        "language": "en", "agent_uri": "sip:collectors@127.0.0.1:5999"
    }))
    .unwrap()
}

/// A recognizer that hears the next of its lines in each utterance that
/// had audio, and nothing in one that had none.
struct Lines {
    lines: VecDeque<String>,
    fed: bool,
}

impl Recognizer for Lines {
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
        self.fed |= !pcm.is_empty();
        Ok(None)
    }

    fn set_phrases(&mut self, _phrases: &[String]) -> Result<(), AsrError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<Transcript, AsrError> {
        if !std::mem::take(&mut self.fed) {
            return Ok(Transcript::default());
        }
        let line = self.lines.pop_front().unwrap_or_default();
        let words = line
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| Word {
                word: w.to_string(),
                start: i as f32 * 0.3,
                end: i as f32 * 0.3 + 0.25,
                conf: 0.95,
            })
            .collect();
        Ok(Transcript::from_words(words))
    }

    fn reset(&mut self) {
        self.fed = false;
    }

    fn engine(&self) -> &'static str {
        "lines"
    }
}

/// The agent on the in-memory gateway, with `dialogue` set in `[dialogue]`
/// and a recognizer that hears `lines`; and where the calls' far ends arrive.
fn agent_hearing(
    dialogue: &str,
    lines: &[&str],
) -> (Agent, tokio::sync::mpsc::UnboundedReceiver<FarEnd>) {
    let (gw, far_ends) = MemoryGateway::new();
    // The recognizer is the one put in the pool below: no model is opened.
    let cfg = Config::from_toml(
        &format!("[dialogue]\n{dialogue}\n[asr]\nengine = \"vosk\"\n"),
        "test",
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let agent = Agent::new(
        Arc::new(gw),
        &cfg,
        &AgentPaths::under(root),
        &[Language::En],
    )
    .expect("agent");
    let heard = Lines {
        lines: lines.iter().map(|l| l.to_string()).collect(),
        fed: false,
    };
    agent
        .recognizers
        .lock()
        .unwrap()
        .insert(Language::En, vec![Box::new(heard)]);
    (agent, far_ends)
}

/// The gate's allow for the test account, stored as attempt 1.
fn options() -> CallOptions {
    let decision = PolicyDecision {
        account_id: "A-1".into(),
        decision: Decision::Allow,
        number: Some("+14155550167".into()),
        jurisdiction: "us".into(),
        zones: vec![],
        at: now(),
        rules: vec![],
        next_allowed_at: None,
        human_queue: false,
    };
    let dial = crate::policy::authorise(decision, |_, _| Ok::<_, ()>(1)).expect("allowed");
    CallOptions::new("sip:debtor@memory", now(), dial)
}

/// 8 kHz of a voice-like sound (a 140 Hz buzz with harmonics, its loudness
/// moving like syllables): the VAD hears speech, the beep detector no tone.
fn voice(ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let buzz: f32 = (1..=12)
                .map(|k| (std::f32::consts::TAU * 140.0 * k as f32 * t).sin() / k as f32)
                .sum();
            let syllables = 0.6 + 0.4 * (std::f32::consts::TAU * 4.0 * t).sin();
            (buzz * syllables * 4000.0) as i16
        })
        .collect()
}

/// A quiet line: faint deterministic noise.
fn hush(ms: usize) -> Vec<i16> {
    let mut x: u32 = 12345;
    (0..ms * 8)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((x >> 16) % 41) as i16 - 20
        })
        .collect()
}

/// The callee says one line: a little quiet, the voice, then enough quiet
/// for the VAD to end the utterance.
async fn say(far: &mut FarEnd, ms: usize) {
    far.send_audio(&hush(200)).await;
    far.send_audio(&voice(ms)).await;
    far.send_audio(&hush(800)).await;
}

/// Plays a callee who answers, says hello, and then says one line each time
/// the agent waits for a reply, until the agent hangs up.
async fn talkative_callee(far_ends: &mut tokio::sync::mpsc::UnboundedReceiver<FarEnd>) -> FarEnd {
    let mut far = far_ends.recv().await.expect("a call is placed");
    far.answer();
    say(&mut far, 600).await;
    for _ in 0..20 {
        match far.serve_until_quiet(Duration::from_millis(500)).await {
            FarEndTurn::Quiet => say(&mut far, 900).await,
            FarEndTurn::HungUp | FarEndTurn::Gone => break,
            FarEndTurn::Transfer(target) => {
                far.transfer_result(&target, true);
                far.end(EndedBy::Them);
                break;
            }
        }
    }
    far
}

fn needs_prompt_audio() -> bool {
    crate::testkit::needs()
        .tool("espeak-ng")
        .tool("sox")
        .setup("scripts/setup")
        .met()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promise_over_the_memory_leg_is_read_back_and_pauses_until_the_day_after() {
    if !needs_prompt_audio() {
        return;
    }
    let (agent, mut far_ends) = agent_hearing(
        "",
        &[
            "hello",
            "yes this is me",
            "i can pay on friday",
            "yes that's right",
        ],
    );
    let callee = tokio::spawn(async move { talkative_callee(&mut far_ends).await });
    let out = tokio::time::timeout(Duration::from_secs(60), agent.call(&account(), options()))
        .await
        .expect("the conversation ends")
        .expect("the conversation runs");
    let far = callee.await.expect("the callee's task");
    assert!(out.identity_confirmed, "{:#?}", out.turns);
    assert!(
        out.turns
            .iter()
            .any(|t| t.intent == Some(IntentKind::PromiseToPay)),
        "{:#?}",
        out.turns
    );
    let r = out.route.expect("route");
    assert_eq!(r.kind, RouteKind::Pause, "{r:?}");
    // Friday after Monday 2026-11-23 is the 27th; the pause ends the day after.
    assert_eq!(
        r.until.map(|u| u.date_naive()),
        NaiveDate::from_ymd_opt(2026, 11, 28),
        "{r:?}"
    );
    assert!(
        out.turns
            .iter()
            .any(|t| t.prompt == PromptId::ConfirmPromise),
        "the date was read back: {:#?}",
        out.turns
    );
    assert!(
        far.played
            .iter()
            .any(|p| p == PromptId::ConfirmPromise.as_str()),
        "the callee heard the read-back: {:?}",
        far.played
    );
    assert!(out.conversation);
    assert_eq!(out.call.call_id, far.call_id());
    assert_eq!(out.call.ended_by, EndedBy::Us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_over_the_memory_leg_reasks_offers_the_menu_and_queues_the_case() {
    if !needs_prompt_audio() {
        return;
    }
    let (agent, mut far_ends) = agent_hearing("no_input_ms = 500", &[]);
    let callee = tokio::spawn(async move {
        let mut far = far_ends.recv().await.expect("a call is placed");
        far.answer();
        // Says nothing, ever: waits for whatever the agent does next.
        loop {
            match far.serve_until_quiet(Duration::from_secs(30)).await {
                FarEndTurn::Quiet => continue,
                FarEndTurn::Transfer(target) => far.transfer_result(&target, false),
                FarEndTurn::HungUp | FarEndTurn::Gone => break,
            }
        }
        far
    });
    let out = tokio::time::timeout(Duration::from_secs(60), agent.call(&account(), options()))
        .await
        .expect("the conversation ends")
        .expect("the conversation runs");
    let far = callee.await.expect("the callee's task");
    let prompts: Vec<&str> = out.turns.iter().map(|t| t.prompt.as_str()).collect();
    assert!(
        prompts.iter().any(|p| p.starts_with("reask")),
        "{prompts:?}"
    );
    assert!(prompts.iter().any(|p| p.starts_with("menu")), "{prompts:?}");
    let script = crate::dialogue::Script::parse(kit::EN_TOML, "en.toml").unwrap();
    let debt: Vec<&str> = out
        .turns
        .iter()
        .filter(|t| t.played_ms > 0 && script.prompt(t.prompt).mentions_debt)
        .map(|t| t.prompt.as_str())
        .collect();
    assert_eq!(debt, Vec::<&str>::new(), "nobody confirmed identity");
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
    assert_eq!(
        far.played.last().map(String::as_str),
        Some("no_answer_close")
    );
    assert!(!out.conversation, "nothing was heard");
    assert_eq!(out.call.ended_by, EndedBy::Us);
}
