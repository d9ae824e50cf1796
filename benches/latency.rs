//! Reply latency of whole conversations: from the end of the debtor's reply
//! (the last voiced frame the simulated callee sent) to the first voiced
//! frame of duecall's next prompt arriving at the callee, over real SIP/RTP
//! with the real recognizer (PocketSphinx, English) and the default end
//! silence (300 ms). The debtor's "Hello?" is left out: what follows it is
//! the answering-machine decision (800 ms of after-greeting silence by
//! design), not a reply. Run: `cargo bench --bench latency`
//! (env: BENCH_ROUNDS=3, BENCH_CONCURRENT=4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use duecall::account::{Account, Language};
use duecall::agent::{Agent, AgentPaths, CallOptions};
use duecall::config::Config;
use duecall::sim::SimConfig;
use duecall::telephony::sip::SipGateway;

fn pct(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let conc: usize = std::env::var("BENCH_CONCURRENT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let personas = ["paid", "promise", "stop", "hardship"];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (lat, calls, wall) = rt.block_on(async {
        let sim = duecall::sim::start(SimConfig {
            seed: Some(1),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let cfg = Config::default();
        let gw = Arc::new(SipGateway::start(cfg.clone()).await.unwrap());
        let agent =
            Arc::new(Agent::new(gw, &cfg, &AgentPaths::under(&root), &[Language::En]).unwrap());
        let account: Account = serde_json::from_value(serde_json::json!({
            "account_id": "B-1", "name": "Maria Lopez", "phone": "+14155550167", "amount": "125.50",
            "due_date": "2026-11-16", "timezone": "America/Los_Angeles", "language": "en",
            "agent_uri": "sip:collectors@127.0.0.1:5999"
        }))
        .unwrap();
        let data = std::env::temp_dir().join(format!("duecall-bench-latency-{}", std::process::id()));
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
                    &format!("r{round}c{i}"),
                );
                // Every reminder call goes through the gate: one debt and
                // number per call, so no cap is in the way.
                let now = "2026-11-23T18:00:00Z".parse().unwrap();
                let mut account = account;
                account.account_id = format!("B-{round}-{i}");
                account.phone = format!("+1415555{:04}", round * conc + i);
                let dial = duecall::campaign::manual::ManualCall::open(&data, &account, now)
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
                if let Ok(Ok(out)) = t.await {
                    calls += 1;
                    if let Some(r) = sim
                        .wait_ended(&out.call.call_id, Duration::from_secs(10))
                        .await
                    {
                        let persona = r.persona.clone();
                        for (i, (line, ms)) in r.reply_latencies().into_iter().enumerate().skip(1) {
                            lat.push(ms);
                            // Where the time went, on our side of the wire (the
                            // greeting is heard before any grammar: no final, no timing).
                            match out.reply_timings.get(i - 1) {
                                Some(t) => println!(
                                    "  {persona:<9} {line:<44} {ms:>4} ms | end-silence {:>3} final {:>3} (asr queue {:>3} search {:>3} setup {:>4} decode {:>4}/{:>4} audio) decide+queue {:>3} first-frame {:>3} lead {:>3} -> {} (heard {:?})",
                                    t.speech_end_ms - t.voice_end_ms,
                                    t.final_ms.saturating_sub(t.speech_end_ms),
                                    t.asr_wait_ms,
                                    t.asr_finish_ms,
                                    t.asr_setup_ms,
                                    t.asr_decode_ms,
                                    t.asr_audio_ms,
                                    t.play_ms.saturating_sub(t.final_ms),
                                    t.started_ms.saturating_sub(t.play_ms),
                                    t.lead_ms,
                                    t.prompt,
                                    t.heard,
                                ),
                                None => println!("  {persona:<9} {line:<44} {ms:>4} ms"),
                            }
                        }
                    }
                }
            }
        }
        sim.shutdown();
        (lat, calls, t0.elapsed())
    });
    let mut v = lat;
    v.sort_unstable();
    println!(
        "reply latency over {} replies in {calls} conversations ({} at a time, {:.0} s)",
        v.len(),
        conc,
        wall.as_secs_f64()
    );
    println!("  all (ms, sorted): {:?}", v);
    // The callee (the sim, on the same media layer) notes our prompt when its
    // first voiced packet arrives: SPEECH.md's definition.
    println!(
        "  p50 {} ms   p95 {} ms   p99 {} ms   max {} ms",
        pct(&v, 0.5),
        pct(&v, 0.95),
        pct(&v, 0.99),
        v.last().copied().unwrap_or(0)
    );
}
