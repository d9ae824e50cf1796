//! Reply latency of whole conversations: from the end of the debtor's reply
//! (the last voiced frame the simulated callee sent) to the first voiced
//! frame of duecall's next prompt arriving at the callee, with the real
//! recognizer (PocketSphinx, English) and the default end silence (300 ms),
//! over each transport: `sip` (SIP/RTP straight to the simulated debtor) and
//! `twilio` (the origination hook asks the test platform, the bridge, to
//! dial the debtor over SIP; the bridge streams the call to duecall's
//! `/ws/twilio` and relays duecall's audio back: one more hop and the
//! platform's `mark`/playout pacing, as a real CPaaS adds). The debtor's
//! "Hello?" is left out: what follows it is the answering-machine decision
//! (800 ms of after-greeting silence by design), not a reply.
//! Run: `cargo bench --bench latency`
//! (env: BENCH_ROUNDS=3, BENCH_CONCURRENT=4, BENCH_TRANSPORTS=sip,twilio;
//! `DUECALL_ASR_TURNS=reminder=hybrid` puts a turn on Whisper too: its
//! replies are then also summed up by what became of Whisper: used, busy
//! or late).

use std::sync::Arc;
use std::time::{Duration, Instant};

use duecall::account::{Account, Language};
use duecall::agent::{Agent, AgentPaths, CallOptions};
use duecall::asr::whisper::WhisperUse;
use duecall::config::Config;
use duecall::sim::{SimCallee, SimConfig};
use duecall::telephony::gateway::Gateway;
use duecall::telephony::sip::SipGateway;
use duecall::telephony::ws::bridge::{Bridge, BridgeConfig};
use duecall::telephony::ws::origination::StreamGateway;

fn pct(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The config that reaches the bridge through the Twilio-style hook.
fn twilio_config(bridge: &Bridge) -> Config {
    let twilio = bridge.twilio_base("AC0123");
    let text = format!(
        r#"[gateway]
listen = "127.0.0.1:0"
stream_secret = "bench-stream-secret-0123456789"
[origination]
url = "{twilio}/Calls.json"
form = {{ To = "{{phone}}", From = "{{caller_id}}", Twiml = "<Response><Connect><Stream url=\"{{stream_url|xml}}\"><Parameter name=\"attempt_id\" value=\"{{attempt_id}}\"/><Parameter name=\"stream_id\" value=\"{{stream_id}}\"/></Stream></Connect></Response>" }}
caller_id = "+14155550100"
answer_timeout_s = 20
"#
    );
    Config::from_toml(&text, "latency bench").expect("bench config")
}

/// Runs the rounds over one transport; the reply latencies, conversations
/// and wall time.
async fn run_transport(
    transport: &str,
    sim: &SimCallee,
    rounds: usize,
    conc: usize,
) -> (Vec<(u64, Option<WhisperUse>)>, usize, Duration) {
    let personas = ["paid", "promise", "stop", "hardship"];
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut bridge = None;
    let (gw, cfg): (Arc<dyn Gateway>, Config) = match transport {
        "sip" => {
            let cfg = Config::default();
            (Arc::new(SipGateway::start(cfg.clone()).await.unwrap()), cfg)
        }
        "twilio" => {
            let b = Bridge::start(BridgeConfig::default())
                .await
                .expect("bridge starts");
            let cfg = twilio_config(&b);
            bridge = Some(b);
            (Arc::new(StreamGateway::start(&cfg).await.unwrap()), cfg)
        }
        other => panic!("BENCH_TRANSPORTS: unknown transport {other:?} (sip, twilio)"),
    };
    let agent =
        Arc::new(Agent::new(gw.clone(), &cfg, &AgentPaths::under(&root), &[Language::En]).unwrap());
    let account: Account = serde_json::from_value(serde_json::json!({
        "account_id": "B-1", "name": "Maria Lopez", "phone": "+14155550167", "amount": "125.50",
        "due_date": "2026-11-16", "timezone": "America/Los_Angeles", "language": "en",
        "agent_uri": "sip:collectors@127.0.0.1:5999"
    }))
    .unwrap();
    let data = std::env::temp_dir().join(format!(
        "duecall-bench-latency-{transport}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&data);
    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut calls = 0;
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for i in 0..conc {
            let (agent, account) = (agent.clone(), account.clone());
            let to = sim.uri_for_tagged(
                personas[(round * conc + i) % personas.len()],
                &format!("{transport}r{round}c{i}"),
            );
            // Every reminder call goes through the gate: one debt and
            // number per call, so no cap is in the way.
            let now = "2026-11-23T18:00:00Z".parse().unwrap();
            let mut account = account;
            account.account_id = format!("B-{round}-{i}");
            account.phone = format!("+1415555{:04}", round * conc + i);
            let dial = duecall::campaign::manual::ManualCall::open(
                &duecall::store::Location::local(&data),
                None,
                chrono::Duration::seconds(30),
                &account,
                now,
            )
            .unwrap()
            .authorise(&account, &duecall::policy::PolicyConfig::default(), now)
            .unwrap()
            .expect("the gate allows the call");
            tasks.push(tokio::spawn(async move {
                let opts = CallOptions::new(&to, now, dial);
                agent.call(&account, opts).await
            }));
        }
        for t in tasks {
            let out = match t.await {
                Ok(Ok(out)) => out,
                Ok(Err(e)) => {
                    println!("  [{transport}] a call failed: {e}");
                    continue;
                }
                Err(e) => {
                    println!("  [{transport}] a call task failed: {e}");
                    continue;
                }
            };
            calls += 1;
            // The sim knows a call by its SIP Call-ID; over the bridge that
            // is the platform's leg, the stream's CallSid.
            let record = match &bridge {
                None => {
                    sim.wait_ended(&out.call.call_id, Duration::from_secs(10))
                        .await
                }
                Some(b) => {
                    let sid = b
                        .calls()
                        .into_iter()
                        .find(|c| {
                            c.call_sid == out.call.call_id
                                || c.params.values().any(|v| v == &out.call.call_id)
                        })
                        .map(|c| c.call_sid);
                    match sid {
                        Some(sid) => sim.wait_ended(&sid, Duration::from_secs(10)).await,
                        None => None,
                    }
                }
            };
            let Some(r) = record else {
                println!("  [{transport}] no record of call {}", out.call.call_id);
                continue;
            };
            let persona = r.persona.clone();
            for (i, (line, ms)) in r.reply_latencies().into_iter().enumerate().skip(1) {
                lat.push((ms, out.reply_timings.get(i - 1).and_then(|t| t.whisper)));
                // Where the time went, on our side of the wire (the
                // greeting is heard before any grammar: no final, no timing).
                match out.reply_timings.get(i - 1) {
                    Some(t) => println!(
                        "  [{transport}] {persona:<9} {line:<44} {ms:>4} ms | end-silence {:>3} final {:>3} (asr queue {:>3} search {:>3} setup {:>4} decode {:>4}/{:>4} audio) whisper {:<4} decide+queue {:>3} first-frame {:>3} lead {:>3} -> {} (heard {:?})",
                        t.speech_end_ms - t.voice_end_ms,
                        t.final_ms.saturating_sub(t.speech_end_ms),
                        t.asr_wait_ms,
                        t.asr_finish_ms,
                        t.asr_setup_ms,
                        t.asr_decode_ms,
                        t.asr_audio_ms,
                        t.whisper.map_or("-", WhisperUse::as_str),
                        t.play_ms.saturating_sub(t.final_ms),
                        t.started_ms.saturating_sub(t.play_ms),
                        t.lead_ms,
                        t.prompt,
                        t.heard,
                    ),
                    None => println!("  [{transport}] {persona:<9} {line:<44} {ms:>4} ms"),
                }
            }
        }
    }
    gw.shutdown();
    if let Some(b) = bridge {
        b.shutdown();
    }
    (lat, calls, t0.elapsed())
}

fn main() {
    let rounds = env_or("BENCH_ROUNDS", 3);
    let conc = env_or("BENCH_CONCURRENT", 4);
    let transports: Vec<String> = std::env::var("BENCH_TRANSPORTS")
        .unwrap_or_else(|_| "sip,twilio".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let sim = duecall::sim::start(SimConfig {
            seed: Some(1),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let mut results = Vec::new();
        for t in &transports {
            results.push((t.clone(), run_transport(t, &sim, rounds, conc).await));
        }
        sim.shutdown();
        results
    });
    // The callee (the sim, on the same media layer) notes our prompt when its
    // first voiced packet arrives: SPEECH.md's definition.
    let mut p50s = Vec::new();
    for (t, (lat, calls, wall)) in results {
        let mut v: Vec<u64> = lat.iter().map(|(ms, _)| *ms).collect();
        v.sort_unstable();
        println!(
            "[{t}] reply latency over {} replies in {calls} conversations ({} at a time, {:.0} s)",
            v.len(),
            conc,
            wall.as_secs_f64()
        );
        println!("  all (ms, sorted): {:?}", v);
        println!(
            "  p50 {} ms   p95 {} ms   p99 {} ms   max {} ms",
            pct(&v, 0.5),
            pct(&v, 0.95),
            pct(&v, 0.99),
            v.last().copied().unwrap_or(0)
        );
        // Replies in turns Whisper hears too, by what became of it.
        let mut whisper: Vec<u64> = lat
            .iter()
            .filter(|(_, u)| u.is_some())
            .map(|(ms, _)| *ms)
            .collect();
        if !whisper.is_empty() {
            whisper.sort_unstable();
            println!(
                "  Whisper turns: {} replies, p50 {} ms   p95 {} ms   max {} ms: {:?}",
                whisper.len(),
                pct(&whisper, 0.5),
                pct(&whisper, 0.95),
                whisper.last().copied().unwrap_or(0),
                whisper
            );
            for u in [WhisperUse::Used, WhisperUse::Busy, WhisperUse::Late] {
                let mut w: Vec<u64> = lat
                    .iter()
                    .filter(|(_, x)| *x == Some(u))
                    .map(|(ms, _)| *ms)
                    .collect();
                w.sort_unstable();
                println!(
                    "    {:<4} {:>3} replies, max {} ms: {:?}",
                    u.as_str(),
                    w.len(),
                    w.last().copied().unwrap_or(0),
                    w
                );
            }
        }
        p50s.push((t, pct(&v, 0.5)));
    }
    if let [(a, pa), (b, pb)] = p50s.as_slice() {
        if *pa > 0 {
            println!("p50 {b} / {a}: {:.2}", *pb as f64 / *pa as f64);
        }
    }
}
