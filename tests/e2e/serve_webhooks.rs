//! Webhooks end to end: a real campaign against the simulated debtors
//! while `duecall serve` delivers to a receiver that refuses for a while,
//! a `kill -9` of the service with events waiting in the outbox, a
//! restart, and then every event arrives, in order per call, signed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use duecall::campaign::cli::{run_campaign_with, RunArgs};
use duecall::campaign::demo::{demo_accounts, write_accounts_csv};
use duecall::campaign::{Progress, Shutdown};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::peers::scratch;
use crate::serve_support::*;

const SECRET: &str = "whsec-0123456789abcdef";

/// One POST the receiver accepted.
#[derive(Debug, Clone)]
struct Got {
    delivery: String,
    event: String,
    body: serde_json::Value,
}

#[derive(Default)]
struct Receiver {
    accepting: AtomicBool,
    refused: AtomicU32,
    bad_signatures: AtomicU32,
    got: Mutex<Vec<Got>>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !r.accepting.load(Ordering::SeqCst) {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let ts = header(&headers, "x-duecall-timestamp");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (Utc::now().timestamp() - t).abs() < 300);
    if header(&headers, "x-duecall-signature") != format!("sha256={want}") || !fresh {
        r.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    r.got.lock().expect("lock").push(Got {
        delivery: header(&headers, "x-duecall-delivery").to_string(),
        event: header(&headers, "x-duecall-event").to_string(),
        body,
    });
    StatusCode::NO_CONTENT
}

/// Every event the store holds: (id, uid, kind, order key).
fn stored_events(data: &std::path::Path) -> Vec<(i64, String, String, String)> {
    let conn = rusqlite::Connection::open(data.join("duecall.db")).expect("open");
    let mut st = conn
        .prepare("SELECT id, uid, kind, order_key FROM events ORDER BY id")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn pending(data: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(data.join("duecall.db")).expect("open");
    conn.query_row(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )
    .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_refuses_then_accepts_gets_every_event_in_order_signed_even_across_kill_9()
{
    let dir = scratch("serve-webhooks");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");

    let recv = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(recv.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sim = duecall::sim::start(duecall::sim::SimConfig {
        ring_ms: Some(300),
        ..duecall::sim::SimConfig::default()
    })
    .await
    .expect("simulated debtors (run scripts/setup)");
    let now = Utc::now();
    let personas: Vec<String> = ["hardship", "paid", "silent", "wrong_number"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let accounts = demo_accounts(&personas, now).expect("accounts");
    let csv = dir.join("accounts.csv");
    write_accounts_csv(
        &csv,
        &accounts.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
    )
    .expect("csv");
    let mut cfg = format!(
        "[serve]\nwebhook_retry_base_ms = 200\nwebhook_retry_max_s = 2\n\n\
         [[webhooks]]\nurl = \"{hook}\"\nsecret = \"{SECRET}\"\n\n\
         [sip]\nring_timeout_s = 8\n[dialogue]\nagent_uri = \"{}\"\n\
         [campaign]\nmax_concurrent = 4\ncalls_per_second = 0\n[campaign.dial_uri_by_account]\n",
        sim.uri_for("agent")
    );
    for (a, p) in &accounts {
        cfg.push_str(&format!("\"{}\" = \"{}\"\n", a.account_id, sim.uri_for(p)));
    }

    // The service delivers from the start; the receiver refuses.
    let mut srv = Serve::start(&data, &cfg);
    let deadline = Instant::now() + Duration::from_secs(20);
    while recv.refused.load(Ordering::SeqCst) == 0 && stored_cursor(&data).is_none() {
        assert!(
            Instant::now() < deadline,
            "the service never read the outbox"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A real campaign: calls are never held up by the refusing receiver.
    let config = dir.join("serve.toml");
    let args = RunArgs::new(csv, config, data.clone())
        .until((now + chrono::Duration::minutes(10)).fixed_offset());
    let summary = tokio::time::timeout(
        Duration::from_secs(420),
        run_campaign_with(&args, Shutdown::default(), Progress::Quiet),
    )
    .await
    .expect("the campaign ends while the receiver refuses")
    .expect("the campaign runs");
    sim.shutdown();
    assert_eq!(summary.attempts.len(), 4, "{:?}", summary.attempts);
    let events = stored_events(&data);
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.2.as_str()).collect();
    for k in [
        "call.ended",
        "route.decided",
        "escalation.created",
        "transfer.started",
    ] {
        assert!(kinds.contains(k), "a {k} event was stored: {kinds:?}");
    }
    // Let the refusals pile up, then kill the service hard with the
    // deliveries pending.
    let deadline = Instant::now() + Duration::from_secs(30);
    while recv.refused.load(Ordering::SeqCst) < 8 {
        assert!(Instant::now() < deadline, "the service kept retrying");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recv.got.lock().expect("lock").is_empty());
    srv.kill9();
    assert!(pending(&data) > 0, "events wait in the outbox");

    // Restart; the receiver now accepts.
    recv.accepting.store(true, Ordering::SeqCst);
    let _srv = Serve::start(&data, &cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: BTreeSet<String> = recv
            .got
            .lock()
            .expect("lock")
            .iter()
            .map(|g| g.delivery.clone())
            .collect();
        if events.iter().all(|e| got.contains(&e.1)) && pending(&data) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every event arrived: {} of {} (pending {})",
            got.len(),
            events.len(),
            pending(&data)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        recv.bad_signatures.load(Ordering::SeqCst),
        0,
        "every signature verified"
    );
    let got = recv.got.lock().expect("lock").clone();
    // In order per call: the first arrival of each delivery, per order key,
    // follows the order the events were stored in.
    let rank: BTreeMap<&str, i64> = events.iter().map(|e| (e.1.as_str(), e.0)).collect();
    let mut seen = BTreeSet::new();
    let mut per_call: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for g in &got {
        assert_eq!(
            g.body["id"],
            g.delivery.as_str(),
            "the body's id is the delivery id"
        );
        assert_eq!(
            g.body["event"],
            g.event.as_str(),
            "the body names the header's event"
        );
        assert!(
            g.body["at"].is_string() && g.body["data"].is_object(),
            "{}",
            g.body
        );
        if seen.insert(g.delivery.clone()) {
            let key = events
                .iter()
                .find(|e| e.1 == g.delivery)
                .map(|e| e.3.clone())
                .expect("a stored event");
            per_call
                .entry(key)
                .or_default()
                .push(rank[g.delivery.as_str()]);
        }
    }
    for (key, ids) in &per_call {
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, &sorted, "events of {key} arrived in order");
    }
    // What the collector's desktop needs with a transfer.
    let transfer = got
        .iter()
        .find(|g| g.event == "transfer.started")
        .expect("transfer.started");
    assert!(transfer.body["data"]["account_id"].is_string());
    assert_eq!(transfer.body["data"]["intent"], "hardship");
    assert!(transfer.body["data"]["transcript"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));
}

fn stored_cursor(data: &std::path::Path) -> Option<i64> {
    let conn = rusqlite::Connection::open(data.join("duecall.db")).ok()?;
    conn.query_row("SELECT last_event_id FROM webhook_cursors", [], |r| {
        r.get(0)
    })
    .ok()
}
