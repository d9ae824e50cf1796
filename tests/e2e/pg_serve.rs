//! `duecall serve` on several nodes sharing one PostgreSQL store (a real
//! cluster from Debian's postgresql, stopped by PID): two services, each on
//! its own data directory with `--store URL`, see what was stored through
//! the shared database (users, tokens, attempts), and deliver every webhook
//! event exactly once between them, to a receiver slow enough that both
//! services poll while the other's POSTs are still running.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use duecall::store::outbox::EventKind;
use duecall::store::{pg_cluster, Store};

use crate::peers::scratch;
use crate::serve_support::{client, Serve};

/// How many events the receiver must get, once each.
const EVENTS: usize = 40;

fn duecall_with_store(args: &[&str], url: &str, stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_duecall"))
        .args(args)
        .args(["--store", url])
        .env_remove("DUECALL_STORE")
        .env_remove("DUECALL_DATA")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run duecall");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("duecall ends");
    assert!(
        out.status.success(),
        "duecall {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on the shared store from a thread of its own: the synchronous
/// PostgreSQL client blocks on a runtime of its own, which a test's async
/// body may not do (nor drop it).
fn on_store<R: Send + 'static>(url: &str, f: impl FnOnce(&mut Store) -> R + Send + 'static) -> R {
    let url = url.to_string();
    std::thread::spawn(move || f(&mut Store::open_postgres(&url).expect("open the shared store")))
        .join()
        .expect("store thread")
}

/// A new database in the test cluster, made from a thread of its own (as
/// [`on_store`]).
fn create_database(cluster: &pg_cluster::PgCluster, name: &str) -> String {
    std::thread::scope(|sc| {
        sc.spawn(|| cluster.create_database(name))
            .join()
            .expect("create database thread")
    })
    .expect("database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_on_one_shared_store_see_one_campaign_and_deliver_each_webhook_once() {
    let Some(cluster) = pg_cluster::for_test("serve") else {
        return;
    };
    let url = create_database(&cluster, "serve");
    let dir = scratch("pg-serve");
    let data: Vec<_> = (0..2)
        .map(|i| {
            let d = dir.join(format!("node{i}")).join("data");
            std::fs::create_dir_all(&d).expect("data dir");
            d
        })
        .collect();

    // A receiver that takes its time: every POST waits 300 ms, so the other
    // service's rounds (every 250 ms) come while deliveries are in flight.
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let uid = headers
                    .get("x-duecall-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                seen.lock().expect("lock").push(uid);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A token made on node 0's command line, an attempt stored by "another
    // node": both live in the shared database only.
    let node0 = data[0].to_str().expect("utf-8");
    let printed = duecall_with_store(
        &[
            "token",
            "create",
            "--role",
            "admin",
            "--name",
            "crm",
            "--data-dir",
            node0,
        ],
        &url,
        None,
    );
    let token = printed
        .lines()
        .last()
        .expect("token line")
        .trim()
        .to_string();
    let attempt = on_store(&url, |s| {
        s.record_decision(
            "PG-SERVE-1",
            "+14155550123",
            Utc::now(),
            &serde_json::json!({}),
        )
        .expect("an attempt")
    });

    let cfg = format!(
        "[serve]\nwebhook_timeout_s = 5\n\n[[webhooks]]\nurl = \"{hook}\"\nsecret = \"whsec-0123456789abcdef\"\n"
    );
    let services: Vec<Serve> = data
        .iter()
        .map(|d| Serve::start_with(d, &cfg, &["--store", &url]))
        .collect();

    // Both services list the attempt with the token neither data directory holds.
    let http = client();
    for srv in &services {
        let r = http
            .get(format!("{}/api/v1/attempts", srv.url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("GET attempts");
        assert_eq!(r.status(), 200, "{} accepts the shared token", srv.url);
        let items: Vec<serde_json::Value> = r.json().await.expect("json");
        assert!(
            items
                .iter()
                .any(|i| i["id"] == attempt.0 && i["account_id"] == "PG-SERVE-1"),
            "{} sees the attempt stored through the shared database: {items:?}",
            srv.url
        );
    }

    // The endpoint's cursor exists once a service has read the outbox; the
    // events come after it (a new endpoint is not sent the past).
    let deadline = Instant::now() + Duration::from_secs(20);
    while on_store(&url, |s| s.webhook_backlog().expect("backlog").is_empty()) {
        assert!(Instant::now() < deadline, "no service read the outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    on_store(&url, |s| {
        for i in 0..EVENTS {
            s.enqueue_event(
                EventKind::CallEnded,
                Utc::now(),
                &format!("attempt:{i}"),
                serde_json::json!({ "n": i }),
            )
            .expect("event");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let distinct: std::collections::BTreeSet<String> =
            got.lock().expect("lock").iter().cloned().collect();
        if distinct.len() >= EVENTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {EVENTS} events delivered in 60 s",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Rounds go on for a while: nothing comes twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for uid in got.lock().expect("lock").iter() {
        *times.entry(uid.clone()).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(times.len(), EVENTS);
    drop(services);
}

/// A manual call on node 0 with `--store` and `[store] recordings`: its
/// attempt is in the shared database naming its recording in the shared
/// directory (nothing left on node 0's own disk), and the service on node 1
/// plays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_recorded_on_one_node_is_played_by_the_service_on_another() {
    let Some(cluster) = pg_cluster::for_test("recshare") else {
        return;
    };
    let url = create_database(&cluster, "recshare");
    let dir = scratch("pg-recordings");
    let shared_dir = dir.join("shared-recordings");
    let cfg_text = format!("[store]\nrecordings = \"{}\"\n", shared_dir.display());
    let cfg = dir.join("node.toml");
    std::fs::write(&cfg, &cfg_text).expect("config");
    let account = dir.join("a.json");
    std::fs::write(
        &account,
        r#"{"account_id":"R1","name":"Maria Lopez","phone":"+14155550181","amount":"125.50",
            "due_date":"2026-11-16","timezone":"America/Los_Angeles","language":"en","jurisdiction":"us"}"#,
    )
    .expect("account");
    let sim = crate::compliance::sim().await;
    let node0 = dir.join("node0");
    let out = Command::new(env!("CARGO_BIN_EXE_duecall"))
        .args(["call", &sim.uri_for_tagged("paid", "r1"), "--json"])
        .args(["--now", "2026-11-23T10:00:00-08:00", "--out-dir"])
        .arg(node0.join("rec"))
        .arg("--account")
        .arg(&account)
        .arg("--data-dir")
        .arg(node0.join("data"))
        .args(["--store", &url, "--config"])
        .arg(&cfg)
        .env_remove("DUECALL_STORE")
        .output()
        .expect("duecall call");
    sim.shutdown();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ids, rec) = on_store(&url, |s| {
        let (rows, _) = s
            .list_attempts(&duecall::store::browse::AttemptFilter {
                account_id: Some("R1".into()),
                limit: 10,
                ..Default::default()
            })
            .expect("attempts");
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let rec = ids.first().and_then(|&id| {
            s.attempt(duecall::store::AttemptId(id))
                .expect("read")
                .expect("the attempt")
                .recording
        });
        (ids, rec)
    });
    assert_eq!(ids.len(), 1, "one attempt, in the shared store");
    let id = ids[0];
    let rec = rec.expect("a recording");
    assert!(
        std::path::Path::new(&rec).starts_with(&shared_dir),
        "the attempt names the shared copy: {rec}"
    );
    assert!(std::path::Path::new(&rec).is_file(), "{rec} is there");
    assert!(
        std::path::Path::new(&rec).with_extension("json").is_file(),
        "the outcome JSON beside it"
    );
    let left: Vec<_> = std::fs::read_dir(node0.join("rec"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        !left
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "wav")),
        "no recording left on node 0: {left:?}"
    );

    // Node 1: another data directory, the same store and recordings.
    let node1 = dir.join("node1").join("data");
    std::fs::create_dir_all(&node1).expect("node 1");
    let token = duecall_with_store(
        &[
            "token",
            "create",
            "--role",
            "qa",
            "--name",
            "qa1",
            "--data-dir",
            node1.to_str().expect("utf-8"),
        ],
        &url,
        None,
    );
    let token = token.lines().last().expect("token").trim().to_string();
    let srv = Serve::start_with(&node1, &cfg_text, &["--store", &url]);
    let r = client()
        .get(format!("{}/api/v1/attempts/{id}/recording", srv.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET recording");
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.expect("body");
    assert_eq!(&bytes[..4], b"RIFF", "the WAV itself");
    assert_eq!(
        bytes.len() as u64,
        std::fs::metadata(&rec).expect("size").len()
    );
}
