//! Bridged (attended) transfer: `[transfer] mode = "bridge"`. The simulated
//! debtor asks for help (hardship); duecall dials the collector (a baresip
//! that answers and speaks, with its SIP trace on to show the headers it
//! got) and bridges the two legs. The debtor's recording holds the bot
//! and the debtor before the hand-over, the collector and the debtor after.
//! A collector that answers 486 gives the blind path's fallback: an
//! escalation with the transcript and the apology.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duecall::account::{Account, Language};
use duecall::agent::{
    Agent, AgentPaths, AttemptOutcome, CallOptions, TransferHook, TransferStarted,
};
use duecall::config::Config;
use duecall::outcome::{Disposition, RouteKind};
use duecall::sim::{PersonaBook, SimCallRecord, SimConfig};
use duecall::telephony::bridge::BridgeEnd;
use duecall::telephony::sip::SipGateway;

use crate::baresip::{baresip_heard, spawn_baresip};
use crate::conversation::now;
use crate::peers::*;

/// A hardship debtor who stays on and speaks again after the hand-over
/// (twice, so one line surely falls after the collector answers).
const PERSONA: &str = r#"
[persona.bridged]
steps = [ { silence_ms = 300 }, { say = "Hello?" }, "wait_prompt", { say = "Yes." },
          "wait_prompt", { say = "I lost my job and I cannot pay right now." },
          { silence_ms = 11000 }, { say = "Hello, yes, I lost my job last month and I need more time to pay." },
          { silence_ms = 3000 }, { say = "Can we agree on a smaller payment every month?" } ]
"#;

fn account(agent_uri: &str) -> Account {
    serde_json::from_value(serde_json::json!({
        "account_id": "A-1", "name": "Maria Lopez", "phone": "+14155550167", "amount": "125.50",
        "currency": "USD", "due_date": "2026-11-16", "timezone": "America/Los_Angeles", "language": "en",
        "agent_uri": agent_uri
    }))
    .unwrap()
}

/// Starts baresip as the collector: answers at once, plays `audio` (then
/// hangs up at its end: aufile), records what it hears, and traces SIP
/// (`-s`) into its log so the test can read the INVITE's headers.
fn start_collector(dir: &Path, audio: &Path) -> (Peer, u16) {
    let b = spawn_baresip(
        dir,
        audio,
        "<sip:collector@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=PCMU/8000/1,PCMA/8000/1",
        free_udp_port(),
        |c| c,
        &["-s"],
    );
    (b.peer, b.sip_port)
}

/// One bridged-transfer conversation with the `bridged` debtor, the
/// collector at `agent_uri`; the outcome, the sim's record and every
/// transfer webhook event.
async fn bridged_call(
    dir: &Path,
    agent_uri: &str,
) -> (AttemptOutcome, SimCallRecord, Vec<TransferStarted>) {
    crate::ws_conversation::test_log();
    let persona_file = dir.join("personas.toml");
    std::fs::write(&persona_file, PERSONA).unwrap();
    let mut personas = PersonaBook::builtin();
    personas.load_file(&persona_file).expect("persona parses");
    let sim = duecall::sim::start(SimConfig {
        seed: Some(7),
        personas,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let cfg_text = format!(
        "[transfer]\nmode = \"bridge\"\n[dialogue]\n{}\n",
        crate::ws_conversation::dialogue_keys("")
    );
    let cfg = Config::from_toml(&cfg_text, "test").unwrap();
    let gw = Arc::new(SipGateway::start(cfg.clone()).await.unwrap());
    let agent = Agent::new(gw, &cfg, &AgentPaths::under(&root()), &[Language::En]).expect("agent");
    let acct = account(agent_uri);
    let dial = allowed_dial(&dir.join("data"), &acct, now());
    let mut opts = CallOptions::new(&sim.uri_for("bridged"), now(), dial);
    opts.record_dir = Some(dir.to_path_buf());
    opts.case_id = Some("case-1".into());
    let hooks: Arc<Mutex<Vec<TransferStarted>>> = Arc::default();
    let h = hooks.clone();
    opts.on_transfer = Some(TransferHook::new(move |t| h.lock().unwrap().push(t)));
    let out = tokio::time::timeout(Duration::from_secs(150), agent.call(&acct, opts))
        .await
        .expect("conversation ends")
        .expect("conversation runs");
    let rec = sim
        .wait_ended(&out.call.call_id, Duration::from_secs(10))
        .await
        .expect("sim saw the call");
    sim.shutdown();
    let hooks = hooks.lock().unwrap().clone();
    (out, rec, hooks)
}

/// Where the hand-over falls in the recording (which starts at the
/// debtor's answer), in samples: the bridge's times are on the call's
/// clock, which starts at the dial.
fn handover_sample(out: &AttemptOutcome, answered_at_ms: u64) -> usize {
    let answer_after_dial = out
        .call
        .answered_at
        .map(|a| (a - out.call.started_at).num_milliseconds().max(0) as u64)
        .unwrap_or(0);
    (answered_at_ms.saturating_sub(answer_after_dial) * 8) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridged_transfer_records_the_collector_after_the_hand_over_and_gives_it_the_context() {
    let dir = scratch("transfer-bridge");
    let cdir = dir.join("collector");
    std::fs::create_dir_all(&cdir).unwrap();
    let audio = cdir.join("collector.wav");
    // Speech, then silence: aufile hangs up at the end of its file, which
    // ends the bridged call from the collector's side.
    speak_wav(
        "Hello, this is Sam from the collections team. I understand, let us find a payment plan that works for you.",
        "en-us",
        &audio,
        14.0,
    );
    let (collector, port) = start_collector(&cdir, &audio);
    let agent_uri = format!("sip:collector@127.0.0.1:{port}");
    let (out, rec, hooks) = bridged_call(&dir, &agent_uri).await;
    let log = collector.log_text();

    assert_eq!(out.call.disposition, Disposition::Answered);
    let r = out.route.as_ref().expect("route");
    assert_eq!(r.kind, RouteKind::Agent, "{r:?}\n{:#?}", out.turns);
    assert!(
        rec.refer_received.is_none(),
        "no REFER on a bridged transfer"
    );

    let t = out.call.transfer.as_ref().expect("transfer attempted");
    assert!(t.ok, "{t:?}\n{log}");
    let b = t.bridge.as_ref().expect("bridge report");
    assert_eq!(b.mode, "bridge");
    let answered_at_ms = b.answered_at_ms.expect("the collector answered");
    assert!(answered_at_ms >= b.dialled_at_ms, "{b:?}");
    assert_eq!(b.ended_by, Some(BridgeEnd::Collector), "{b:?}");
    assert!(
        b.bridged_ms >= 8000,
        "bridged for {} ms: {b:?}",
        b.bridged_ms
    );
    assert!(
        b.frames_to_collector > 200 && b.frames_to_debtor > 200,
        "{b:?}"
    );
    assert!(
        !out.escalations
            .iter()
            .any(|e| e.reason == "transfer-failed"),
        "{:?}",
        out.escalations
    );

    // The transfer webhook fired once, as for REFER.
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].agent_uri, agent_uri);
    assert_eq!(hooks[0].account_id, "A-1");

    // The collector got the context in the INVITE's headers.
    let attempt = out.attempt_id.expect("attempt id");
    for h in [
        format!("X-Duecall-Attempt: {attempt}"),
        "X-Duecall-Account: A-1".to_string(),
        "X-Duecall-Case: case-1".to_string(),
        "X-Duecall-Intent: hardship".to_string(),
        "X-Duecall-Reason: ".to_string(),
    ] {
        assert!(
            log.contains(&h),
            "the collector's INVITE lacks `{h}`:\n{log}"
        );
    }

    // The recording: left = what the debtor hears (the bot, then the
    // collector), right = the debtor, through the hand-over.
    let path: PathBuf = out.call.recording.clone().expect("recording");
    let (ch, chans) = read_channels(&path);
    assert_eq!(ch, 2);
    let cut = handover_sample(&out, answered_at_ms).min(chans[0].len());
    let margin = 8 * 400;
    let (left_before, left_after) = (
        &chans[0][..cut],
        &chans[0][(cut + margin).min(chans[0].len())..],
    );
    let right_after = &chans[1][(cut + margin).min(chans[1].len())..];
    let bot = loud_ms(left_before, 300.0);
    let collector_heard = loud_ms(left_after, 300.0);
    let debtor_after = loud_ms(right_after, 300.0);
    let total_ms = chans[0].len() as u64 / 8;
    eprintln!(
        "recording {total_ms} ms, hand-over at {} ms: bot loud {bot} ms before, collector loud {collector_heard} ms after, debtor loud {debtor_after} ms after",
        cut / 8
    );
    assert!(bot >= 3000, "the bot spoke before the hand-over: {bot} ms");
    assert!(
        collector_heard >= 2000,
        "the collector's voice is on the debtor-facing channel after the hand-over: {collector_heard} ms ({})",
        path.display()
    );
    assert!(
        debtor_after >= 1000,
        "the debtor's channel goes on after the hand-over: {debtor_after} ms loud ({})",
        path.display()
    );
    // The recording runs to the end of the bridge, not the end of the bot's part.
    assert!(
        total_ms + 1000 >= (cut as u64 / 8) + b.bridged_ms,
        "recording {total_ms} ms, hand-over {} ms + bridged {} ms",
        cut / 8,
        b.bridged_ms
    );

    // And the collector heard the debtor.
    drop(collector);
    let heard = baresip_heard(&cdir).expect("the collector wrote a recording");
    let (_, hch) = read_channels(&heard);
    let debtor_at_collector = hch.iter().map(|c| loud_ms(c, 300.0)).max().unwrap_or(0);
    assert!(
        debtor_at_collector >= 1000,
        "the collector heard the debtor for {debtor_at_collector} ms: {}",
        heard.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_collector_falls_back_to_an_escalation_with_the_transcript() {
    let dir = scratch("transfer-bridge-busy");
    let sipp = Sipp::uas("uas_486.xml", &dir);
    let agent_uri = format!("sip:collector@127.0.0.1:{}", sipp.port);
    let (out, rec, hooks) = bridged_call(&dir, &agent_uri).await;

    let t = out.call.transfer.as_ref().expect("transfer attempted");
    assert!(!t.ok, "{t:?}");
    assert_eq!(t.final_status, Some(486), "{t:?}");
    assert!(t.error.as_deref().unwrap_or("").contains("busy"), "{t:?}");
    let b = t.bridge.as_ref().expect("bridge report");
    assert_eq!(b.answered_at_ms, None, "{b:?}");
    assert_eq!(b.ended_by, None, "{b:?}");
    assert_eq!(b.collector_disposition, Some(Disposition::Busy), "{b:?}");
    assert_eq!(hooks.len(), 1, "the webhook fires as for REFER: {hooks:?}");

    let r = out.route.as_ref().expect("route");
    assert_eq!(r.kind, RouteKind::Agent, "{r:?}");
    let e = out
        .escalations
        .iter()
        .find(|e| e.reason == "transfer-failed")
        .unwrap_or_else(|| panic!("no transfer-failed escalation: {:?}", out.escalations));
    assert!(e.summary.contains("intent hardship"), "{}", e.summary);
    assert!(e.summary.contains("debtor: "), "{}", e.summary);
    // The debtor is not left in silence: the apology plays, then we hang up.
    assert!(
        out.turns
            .iter()
            .any(|t| t.prompt == duecall::dialogue::PromptId::TransferFailed && t.played_ms > 0),
        "{:#?}",
        out.turns
    );
    assert_eq!(out.call.ended_by, duecall::outcome::EndedBy::Us);
    assert!(rec.refer_received.is_none());
}
