//! duecall's own caller (SipGateway) against the simulated debtors over real
//! SIP/UDP and RTP on loopback: dispositions (busy, no answer), turn-taking
//! (the debtor replies only after each prompt ended), REFER with context
//! headers, the voicemail greeting and beep, and 20 calls at once.

use std::sync::Arc;
use std::time::Duration;

use duecall::config::Config;
use duecall::media::tone::BeepDetector;
use duecall::media::vad::frame_stats;
use duecall::outcome::Disposition;
use duecall::sim::{self, ByeFrom, SimCallee, SimConfig};
use duecall::telephony::leg::{CallLeg, LegCommand, LegEvent};
use duecall::telephony::report::CallReport;
use duecall::telephony::sip::{DialRequest, SipGateway};

const LOUD_DB: f32 = -40.0;

fn cache() -> std::path::PathBuf {
    std::env::temp_dir().join("duecall-sim-audio-e2e")
}

async fn sim() -> SimCallee {
    let cfg = SimConfig {
        ring_ms: Some(200),
        audio_cache: cache(),
        ..SimConfig::default()
    };
    sim::start(cfg)
        .await
        .expect("sim starts (espeak-ng installed by scripts/setup)")
}

async fn gateway() -> SipGateway {
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e-sim.duecall.test".into();
    SipGateway::start(cfg).await.expect("gateway starts")
}

fn prompt(text: &str) -> Arc<[i16]> {
    sim::audio::render_line(&cache(), "en-us", 175, text)
        .expect("render prompt")
        .into()
}

/// What the caller saw on a conversation.
#[derive(Debug, Default)]
struct Transcript {
    /// (play started, play finished) per prompt, caller's media clock.
    prompts: Vec<(u64, u64)>,
    /// First loud frame heard after each prompt finished.
    reply_starts: Vec<Option<u64>>,
    /// Loud frames heard while a prompt was playing.
    loud_during_prompts: Vec<u64>,
    /// DTMF digits heard, with the caller's media clock.
    digits: Vec<(char, u64)>,
    report: Option<CallReport>,
}

/// Answers, waits for the debtor's greeting, then plays each prompt and
/// waits for the reply to end (800 ms quiet) before the next; hangs up.
async fn converse(mut leg: CallLeg, prompts: Vec<Arc<[i16]>>) -> Transcript {
    let mut t = Transcript::default();
    let mut next = 0usize;
    let mut playing: Option<u64> = None;
    let mut waiting_reply_since: Option<u64> = None;
    let mut heard_loud_since_wait = false;
    let mut last_loud: Option<u64> = None;
    let mut answered_at: Option<u64> = None;
    let overall = tokio::time::sleep(Duration::from_secs(40));
    tokio::pin!(overall);
    loop {
        let ev = tokio::select! {
            ev = leg.next_event() => ev,
            _ = &mut overall => panic!("conversation did not finish: {t:?}"),
        };
        let Some(ev) = ev else { break };
        match ev {
            LegEvent::Audio { at_ms, pcm, .. } => {
                answered_at.get_or_insert(at_ms);
                let loud = frame_stats(&pcm[..]).energy_db > LOUD_DB;
                if loud {
                    last_loud = Some(at_ms);
                    if playing.is_some() {
                        t.loud_during_prompts.push(at_ms);
                    }
                    if waiting_reply_since.is_some() {
                        if let Some(slot) = t.reply_starts.last_mut() {
                            if slot.is_none() {
                                *slot = Some(at_ms);
                            }
                        }
                        heard_loud_since_wait = true;
                    }
                }
                // Ready for the next prompt: the greeting (or the reply) is over.
                let quiet_for = at_ms - last_loud.unwrap_or(0);
                let ready = playing.is_none()
                    && match waiting_reply_since {
                        None => last_loud.is_some() && quiet_for >= 800,
                        Some(since) => {
                            (heard_loud_since_wait && quiet_for >= 800)
                                || (!heard_loud_since_wait && at_ms >= since + 3000)
                        }
                    };
                if ready {
                    if next < prompts.len() {
                        leg.send(LegCommand::Play {
                            id: format!("p{next}"),
                            pcm: prompts[next].clone(),
                        })
                        .await;
                        playing = Some(at_ms);
                        waiting_reply_since = None;
                        next += 1;
                    } else {
                        leg.send(LegCommand::Hangup).await;
                        waiting_reply_since = None;
                        playing = Some(u64::MAX);
                    }
                }
            }
            LegEvent::Dtmf { digit, at_ms } => {
                // A pressed digit is the reply: no audio follows it.
                t.digits.push((digit, at_ms));
                last_loud = Some(at_ms);
                if waiting_reply_since.is_some() {
                    if let Some(slot) = t.reply_starts.last_mut() {
                        slot.get_or_insert(at_ms);
                    }
                    heard_loud_since_wait = true;
                }
            }
            LegEvent::PlayStarted { at_ms, .. } => playing = Some(at_ms),
            LegEvent::PlayFinished { at_ms, .. } => {
                t.prompts.push((playing.unwrap_or(0), at_ms));
                t.reply_starts.push(None);
                playing = None;
                waiting_reply_since = Some(at_ms);
                heard_loud_since_wait = false;
            }
            LegEvent::Ended(r) => {
                t.report = Some(*r);
                break;
            }
            _ => {}
        }
    }
    t
}

async fn dial_and_end(gw: &SipGateway, req: DialRequest) -> CallReport {
    let mut leg = gw.dial(req).await.expect("dial");
    tokio::time::timeout(Duration::from_secs(20), leg.wait_end())
        .await
        .expect("call ends")
        .expect("a report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_persona_gives_disposition_busy() {
    let (sim, gw) = (sim().await, gateway().await);
    let r = dial_and_end(&gw, DialRequest::to(sim.uri_for("busy"))).await;
    assert_eq!(r.disposition, Disposition::Busy);
    assert_eq!(r.sip_status, Some(486));
    let rec = sim
        .wait_ended(&r.call_id, Duration::from_secs(5))
        .await
        .expect("sim record");
    assert_eq!(
        (rec.persona.as_str(), rec.status, rec.answered),
        ("busy", Some(486), false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_persona_rings_until_the_ring_timeout_cancels() {
    let (sim, gw) = (sim().await, gateway().await);
    let mut req = DialRequest::to(sim.uri_for("no_answer"));
    req.ring_timeout = Some(Duration::from_secs(2));
    let r = dial_and_end(&gw, req).await;
    assert_eq!(r.disposition, Disposition::NoAnswer, "{r:?}");
    let rec = sim
        .wait_ended(&r.call_id, Duration::from_secs(5))
        .await
        .expect("sim record");
    assert_eq!(rec.status, Some(487));
    assert!(!rec.answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_persona_is_not_found() {
    let (sim, gw) = (sim().await, gateway().await);
    let r = dial_and_end(&gw, DialRequest::to(sim.uri_for("nobody"))).await;
    assert_eq!(r.disposition, Disposition::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_persona_replies_only_after_each_prompt_ended() {
    let (sim, gw) = (sim().await, gateway().await);
    let p1 = prompt("This is Acme. Is this Maria?");
    let p2 = prompt("Your payment was due on Monday.");
    let leg = gw
        .dial(DialRequest::to(sim.uri_for("paid")))
        .await
        .expect("dial");
    let call_id = leg.call_id.clone();
    let t = converse(leg, vec![p1, p2]).await;
    let report = t.report.as_ref().expect("report");
    assert_eq!(report.disposition, Disposition::Answered);
    assert_eq!(t.prompts.len(), 2, "{t:?}");
    assert!(
        t.loud_during_prompts.is_empty(),
        "the debtor talked over a prompt: {t:?}"
    );
    let min_gap = SimConfig::default().reply_gap_ms.0;
    for ((_, end), reply) in t.prompts.iter().zip(&t.reply_starts) {
        let reply =
            reply.unwrap_or_else(|| panic!("no reply after the prompt ending at {end}: {t:?}"));
        assert!(
            reply >= end + min_gap.min(400) - 40,
            "reply at {reply} ms, prompt ended at {end} ms"
        );
    }
    let rec = sim
        .wait_ended(&call_id, Duration::from_secs(5))
        .await
        .expect("sim record");
    let said: Vec<&str> = rec.lines_said.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        said,
        ["Hello?", "Yes, speaking.", "I already paid that last week."]
    );
    assert_eq!(rec.prompts_heard, 2, "{rec:?}");
    assert_eq!(rec.bye_from, Some(ByeFrom::Caller));
    // Both prompts followed a line of the debtor's ("Hello?", "Yes, speaking.").
    assert_eq!(rec.reply_latencies_ms().len(), 2, "{rec:?}");
    assert!(
        rec.lines_said[1].at_ms > rec.prompts[0].end_ms.unwrap_or(u64::MAX),
        "{rec:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardship_persona_accepts_refer_and_reports_the_context_headers() {
    let (sim, gw) = (sim().await, gateway().await);
    let mut leg = gw
        .dial(DialRequest::to(sim.uri_for("hardship")))
        .await
        .expect("dial");
    let mut result = None;
    let mut report = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, leg.next_event()).await {
        match ev {
            LegEvent::Answered { .. } => {
                leg.send(LegCommand::Transfer {
                    target: "sip:agent@127.0.0.1:5999".into(),
                    headers: vec![
                        ("X-Duecall-Case".into(), "case 42".into()),
                        ("X-Duecall-Intent".into(), "hardship".into()),
                    ],
                })
                .await;
            }
            LegEvent::TransferResult { ok, status } => result = Some((ok, status)),
            LegEvent::Ended(r) => {
                report = Some(*r);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(result, Some((true, Some(200))));
    let report = report.expect("the leg ends after the transfer");
    let rec = sim
        .wait_ended(&report.call_id, Duration::from_secs(5))
        .await
        .expect("sim record");
    let refer = rec.refer_received.expect("REFER recorded");
    assert_eq!(refer.target, "sip:agent@127.0.0.1:5999");
    assert_eq!(refer.header("X-Duecall-Case"), Some("case 42"));
    assert_eq!(refer.header("x-duecall-intent"), Some("hardship"));
    assert_eq!(refer.status, 202);
    assert_eq!(rec.bye_from, Some(ByeFrom::Caller));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_persona_plays_a_long_greeting_then_a_1000_hz_beep() {
    let (sim, gw) = (sim().await, gateway().await);
    let mut leg = gw
        .dial(DialRequest::to(sim.uri_for("voicemail")))
        .await
        .expect("dial");
    let mut beeps = BeepDetector::new(200);
    let mut loud_before_beep = 0u64;
    let mut beep = None;
    let mut first_at = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, leg.next_event()).await {
        match ev {
            LegEvent::Audio { at_ms, pcm, .. } => {
                let first = *first_at.get_or_insert(at_ms);
                if let Some(b) = beeps.process(&pcm[..]) {
                    beep = Some((first + b.at_ms, b.freq_hz));
                    leg.send(LegCommand::Hangup).await;
                } else if beep.is_none() && frame_stats(&pcm[..]).energy_db > LOUD_DB {
                    loud_before_beep += 20;
                }
            }
            LegEvent::Ended(_) => break,
            _ => {}
        }
    }
    let (_, hz) = beep.expect("a beep was heard");
    assert!((hz - 1000.0).abs() <= 40.0, "beep at {hz} Hz");
    // Voiced time before the beep: the greeting plus the beep's own first
    // 200 ms; a person's "Hello?" would be well under 1.5 s.
    assert!(
        loud_before_beep >= 3000,
        "greeting too short: {loud_before_beep} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_calls_to_the_paid_persona_all_complete() {
    let (sim, gw) = (sim().await, gateway().await);
    let p1 = prompt("Is this Maria?");
    let p2 = prompt("Your payment is due.");
    let gw = Arc::new(gw);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let leg = gw
            .dial(DialRequest::to(
                sim.uri_for_tagged("paid", &format!("a{i}")),
            ))
            .await
            .expect("dial");
        let prompts = vec![p1.clone(), p2.clone()];
        tasks.push(tokio::spawn(async move {
            (leg.call_id.clone(), converse(leg, prompts).await)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        let (id, t) = task.await.expect("call task");
        let r = t.report.as_ref().expect("report");
        assert_eq!(r.disposition, Disposition::Answered, "{id}");
        assert_eq!(
            t.reply_starts.iter().filter(|r| r.is_some()).count(),
            2,
            "{id}: {t:?}"
        );
        ids.push(id);
    }
    for id in ids {
        let rec = sim
            .wait_ended(&id, Duration::from_secs(5))
            .await
            .expect("sim record");
        assert_eq!(rec.persona, "paid");
        assert_eq!(rec.lines_said.len(), 3, "{rec:?}");
        assert_eq!(rec.prompts_heard, 2, "{rec:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_persona_presses_1_then_2_one_per_prompt() {
    let (sim, gw) = (sim().await, gateway().await);
    let leg = gw
        .dial(DialRequest::to(sim.uri_for("dtmf")))
        .await
        .expect("dial");
    let t = converse(leg, vec![prompt("Is this Maria?"), prompt("Press a key.")]).await;
    let digits: Vec<char> = t.digits.iter().map(|d| d.0).collect();
    assert_eq!(digits, ['1', '2'], "{t:?}");
    // Each digit came after the prompt it answers.
    for ((d, at), (_, end)) in t.digits.iter().zip(&t.prompts) {
        assert!(
            at > end,
            "digit {d} at {at} ms before the prompt ended at {end} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_persona_talks_over_the_second_prompt_after_it_started() {
    let (sim, gw) = (sim().await, gateway().await);
    let leg = gw
        .dial(DialRequest::to(sim.uri_for("barge_in")))
        .await
        .expect("dial");
    let long = prompt("Your payment of one hundred and twenty five dollars was due on Monday. You can pay in the app.");
    let t = converse(leg, vec![prompt("Is this Maria?"), long]).await;
    let (start2, end2) = t.prompts[1];
    let first_over = *t
        .loud_during_prompts
        .first()
        .expect("the debtor talked over the prompt");
    assert!(
        first_over > start2 + 1000 && first_over < end2,
        "barged in at {first_over} ms into {start2}..{end2}"
    );
    let over = t
        .loud_during_prompts
        .iter()
        .filter(|at| **at >= start2)
        .count()
        * 20;
    assert!(over >= 300, "barge-in speech too short to count: {over} ms");
}

/// The debtor hears what kind of prompt duecall asked (its opening words in
/// duecall's voice, espeak-ng en-us at 165 words a minute): re-asked, it
/// says its reply again, slower; asked "Just to be sure: ...?" about the
/// intent its line meant (hardship, which it tells from the whole question),
/// it says yes; its script does not move on for either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardship_persona_says_its_reply_again_when_reasked_and_yes_to_a_confirmation() {
    let (sim, gw) = (sim().await, gateway().await);
    let duecall = |text: &str| -> Arc<[i16]> {
        sim::audio::render_line(&cache(), "en-us", 165, text)
            .expect("render prompt")
            .into()
    };
    let prompts = vec![
        duecall("Am I speaking with Maria?"),
        duecall("Your payment was due on Monday. Have you already paid, or when will you be able to pay?"),
        duecall("Sorry, I did not catch that. Have you already paid, or on what date will you pay?"),
        duecall("Just to be sure: you are having trouble paying right now?"),
    ];
    let leg = gw
        .dial(DialRequest::to(sim.uri_for("hardship")))
        .await
        .expect("dial");
    let call_id = leg.call_id.clone();
    let t = converse(leg, prompts).await;
    assert_eq!(t.prompts.len(), 4, "{t:?}");
    let rec = sim
        .wait_ended(&call_id, Duration::from_secs(5))
        .await
        .expect("sim record");
    let line = "I lost my job and I cannot pay right now.";
    let said: Vec<&str> = rec.lines_said.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(said, ["Hello?", "Yes.", line, line, "Yes."], "{rec:?}");
    let kinds: Vec<sim::PromptKind> = rec.prompts.iter().map(|p| p.kind).collect();
    use sim::PromptKind::{Confirm, Other, Reask};
    let hardship = Confirm(Some(duecall::dialogue::prompt::PromptId::ConfirmHardship));
    assert_eq!(kinds, [Other, Other, Reask, hardship], "{rec:?}");
    let len = |i: usize| rec.lines_said[i].end_ms - rec.lines_said[i].at_ms;
    assert!(
        len(3) > len(2) * 11 / 10,
        "said again slower: {} vs {} ms",
        len(3),
        len(2)
    );
}
