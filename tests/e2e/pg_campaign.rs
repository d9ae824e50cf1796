//! Several `duecall run` nodes on one campaign in one PostgreSQL database
//! (`--store URL`), each with its own data directory, dialling sipp
//! callees: every number is dialled as often as its cap allows and no more
//! (the claim re-decides under the store's write lock and refuses a number
//! or an account another node has in flight), both nodes take part, and a
//! node killed with SIGKILL has its calls in flight recovered by the other
//! once its lease expires.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use duecall::store::pg_cluster;

use crate::peers::*;

/// 10:00 in Shanghai, five days after the accounts' due date.
const NOW: &str = "2026-11-20T10:00:00+08:00";

/// Accounts P01..P16 on their own numbers, and P17, P18 sharing one (the
/// per-number cap counts both).
fn accounts_csv(dir: &Path) -> PathBuf {
    let mut csv =
        String::from("account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n");
    for i in 1..=16 {
        csv.push_str(&format!(
            "P{i:02},Debtor {i},+86138000001{i:02},100.00,2026-11-15,cn,Asia/Shanghai,en\n"
        ));
    }
    csv.push_str("P17,Shared One,+8613800000117,100.00,2026-11-15,cn,Asia/Shanghai,en\n");
    csv.push_str("P18,Shared Two,+8613800000117,100.00,2026-11-15,cn,Asia/Shanghai,en\n");
    let p = dir.join("accounts.csv");
    std::fs::write(&p, csv).expect("write accounts");
    p
}

/// Numbers in the campaign (17: P17 and P18 share one).
const NUMBERS: usize = 17;

/// Rings `ring_s` (no answer), one dial per number per day, leases of 3 s.
fn config(dir: &Path, ring_s: u32) -> PathBuf {
    let p = dir.join("duecall.toml");
    std::fs::write(
        &p,
        format!(
            "[sip]\nring_timeout_s = {ring_s}\n\
         [policy.cn]\nattempts_per_number_per_day = 1\n\
         [campaign]\ncalls_per_second = 0\nmax_concurrent = 2\nrecheck_s = 1\n\
         retry_no_answer_s = 1\nretry_failed_s = 1\n\
         [store]\nlease_s = 3\n"
        ),
    )
    .expect("write config");
    p
}

pub(crate) fn spawn_node(
    dir: &Path,
    name: &str,
    csv: &Path,
    config: &Path,
    url: &str,
    trunk: &str,
) -> Child {
    let out = std::fs::File::create(dir.join(format!("{name}.out"))).expect("log");
    let err = std::fs::File::create(dir.join(format!("{name}.err"))).expect("log");
    Command::new(env!("CARGO_BIN_EXE_duecall"))
        .arg("run")
        .arg(csv)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(dir.join(name))
        .args([
            "--store",
            url,
            "--now",
            NOW,
            "--until",
            "2026-11-20T11:00:00+08:00",
            "--trunk",
            trunk,
        ])
        .env_remove("DUECALL_STORE")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start duecall run")
}

pub(crate) fn log(dir: &Path, name: &str) -> String {
    format!(
        "--- {name} stdout\n{}\n--- {name} stderr\n{}",
        std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap_or_default(),
        std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap_or_default()
    )
}

/// Waits for a node to exit (killing it after `limit`); its exit status.
pub(crate) fn wait_node(
    child: &mut Child,
    dir: &Path,
    name: &str,
    limit: Duration,
) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "node {name} did not finish in {limit:?}\n{}",
                log(dir, name)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One attempt as the test reads it back.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) id: i64,
    pub(crate) phone: String,
    pub(crate) node: Option<String>,
    pub(crate) state: String,
    pub(crate) reason: Option<String>,
}

pub(crate) fn rows(url: &str) -> Vec<Row> {
    read_rows(url).expect("read attempts")
}

/// Every attempt, in id order (an error before the first node made the schema).
fn read_rows(url: &str) -> Result<Vec<Row>, postgres::Error> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    let rs = c.query(
        "SELECT id, phone, node, state, reason FROM attempts ORDER BY id",
        &[],
    )?;
    Ok(rs
        .iter()
        .map(|r| Row {
            id: r.get(0),
            phone: r.get(1),
            node: r.get(2),
            state: r.get(3),
            reason: r.get(4),
        })
        .collect())
}

pub(crate) fn node_id(data: &Path) -> String {
    std::fs::read_to_string(data.join("node_id"))
        .expect("the node wrote its id")
        .trim()
        .to_string()
}

pub(crate) fn per_number(all: &[Row]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in all {
        *m.entry(r.phone.clone()).or_default() += 1;
    }
    m
}

#[test]
fn two_nodes_on_one_postgres_dial_each_number_once_and_both_take_part() {
    let Some(cluster) = pg_cluster::for_test("two-nodes") else {
        return;
    };
    let url = cluster.create_database("campaign").expect("database");
    let dir = scratch("pg-two-nodes");
    let callee = Sipp::uas_calls("uas_noanswer.xml", &dir, 100, &[]);
    let trunk = format!("127.0.0.1:{}", callee.port);
    let (csv, config) = (accounts_csv(&dir), config(&dir, 2));
    let mut a = spawn_node(&dir, "a", &csv, &config, &url, &trunk);
    let mut b = spawn_node(&dir, "b", &csv, &config, &url, &trunk);
    let sa = wait_node(&mut a, &dir, "a", Duration::from_secs(150));
    let sb = wait_node(&mut b, &dir, "b", Duration::from_secs(150));
    assert!(
        sa.success() && sb.success(),
        "{}\n{}",
        log(&dir, "a"),
        log(&dir, "b")
    );

    let all = rows(&url);
    let counts = per_number(&all);
    assert_eq!(
        counts.len(),
        NUMBERS,
        "every number dialled: {counts:?}\n{}\n{}",
        log(&dir, "a"),
        log(&dir, "b")
    );
    assert!(
        counts.values().all(|&n| n == 1),
        "one dial per number per day across both nodes: {counts:?}"
    );
    assert!(all.iter().all(|r| r.state == "ended"), "{all:?}");
    // Both nodes dialled, and every attempt names the node that made it.
    let (ida, idb) = (node_id(&dir.join("a")), node_id(&dir.join("b")));
    assert_ne!(ida, idb);
    let by_node: BTreeSet<&str> = all.iter().filter_map(|r| r.node.as_deref()).collect();
    assert_eq!(
        by_node,
        BTreeSet::from([ida.as_str(), idb.as_str()]),
        "both nodes took part: {all:?}"
    );
    // Both gave their lease back.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let stopped: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM nodes WHERE stopped_at IS NOT NULL",
            &[],
        )
        .expect("nodes")
        .get(0);
    assert_eq!(stopped, 2);

    // `duecall plan --store` decides on the shared store as the nodes did:
    // every number has had its one dial today, so every account is denied;
    // on the file alone, every one would be allowed.
    let plan = |store: Option<&str>| -> Vec<serde_json::Value> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_duecall"));
        cmd.arg("plan")
            .arg(&csv)
            .args(["--at", "2026-11-20T10:30:00+08:00", "--config"])
            .arg(&config)
            .env_remove("DUECALL_STORE");
        if let Some(u) = store {
            cmd.args(["--store", u]);
        }
        let out = cmd.output().expect("duecall plan");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("plan JSON line"))
            .collect()
    };
    let on_store = plan(Some(&url));
    assert_eq!(on_store.len(), 18);
    assert!(
        on_store.iter().all(|l| l["decision"] == "deny"),
        "{on_store:?}"
    );
    assert!(plan(None).iter().all(|l| l["decision"] == "allow"));
    drop(callee);
}

#[test]
fn a_killed_node_s_calls_in_flight_are_recovered_by_the_other_after_its_lease() {
    let Some(cluster) = pg_cluster::for_test("kill-node") else {
        return;
    };
    let url = cluster.create_database("campaign").expect("database");
    let dir = scratch("pg-kill-node");
    let callee = Sipp::uas_calls("uas_noanswer.xml", &dir, 100, &[]);
    let trunk = format!("127.0.0.1:{}", callee.port);
    // Calls ring 6 s: long enough to be in flight when node a dies.
    let (csv, config) = (accounts_csv(&dir), config(&dir, 6));
    let mut a = spawn_node(&dir, "a", &csv, &config, &url, &trunk);
    // Node a alone until it has two calls ringing; then b starts and a dies.
    wait_until_dialling(&url, &dir, &mut a, "a", 2);
    let mut b = spawn_node(&dir, "b", &csv, &config, &url, &trunk);
    a.kill().expect("kill -9 node a");
    let _ = a.wait();
    let ida = node_id(&dir.join("a"));
    // What a left in flight when it died.
    let ringing: Vec<Row> = rows(&url)
        .into_iter()
        .filter(|r| {
            r.node.as_deref() == Some(ida.as_str())
                && (r.state == "dialling" || r.state == "decided")
        })
        .collect();
    assert!(!ringing.is_empty(), "node a died with calls in flight");
    let sb = wait_node(&mut b, &dir, "b", Duration::from_secs(150));
    assert!(sb.success(), "{}", log(&dir, "b"));
    let out = std::fs::read_to_string(dir.join("b.out")).unwrap_or_default();

    let all = rows(&url);
    for r in &ringing {
        let now = all.iter().find(|x| x.id == r.id).expect("attempt kept");
        assert_eq!(now.state, "failed_by_crash", "{now:?}");
        assert_eq!(now.reason.as_deref(), Some("crash"));
        assert_eq!(now.node.as_deref(), Some(ida.as_str()));
    }
    assert!(
        out.contains(&format!(
            "recovered after a crash: {} attempts",
            ringing.len()
        )),
        "{}",
        log(&dir, "b")
    );
    // The crashed calls count against the cap: every number exactly once.
    let counts = per_number(&all);
    assert_eq!(counts.len(), NUMBERS, "{counts:?}\n{}", log(&dir, "b"));
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert!(
        all.iter()
            .all(|r| r.state == "ended" || r.state == "failed_by_crash"),
        "{all:?}"
    );
    drop(callee);
}

/// Waits (90 s at most) until `n` calls are ringing (`dialling`); the
/// node alone is dialling, so they are its calls.
fn wait_until_dialling(url: &str, dir: &Path, node: &mut Child, name: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while rows_if_ready(url)
        .iter()
        .filter(|r| r.state == "dialling")
        .count()
        < n
    {
        if Instant::now() > deadline {
            let _ = node.kill();
            panic!(
                "node {name} never had {n} calls in flight\n{}",
                log(dir, name)
            );
        }
        if let Ok(Some(s)) = node.try_wait() {
            panic!("node {name} exited early ({s})\n{}", log(dir, name));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The attempts once the schema exists (empty before the first node made it).
pub(crate) fn rows_if_ready(url: &str) -> Vec<Row> {
    read_rows(url).unwrap_or_default()
}

#[test]
fn a_node_paused_past_its_lease_dials_no_more_and_exits_with_the_lease_error() {
    let Some(cluster) = pg_cluster::for_test("lost-lease") else {
        return;
    };
    let url = cluster.create_database("campaign").expect("database");
    let dir = scratch("pg-lost-lease");
    let callee = Sipp::uas_calls("uas_noanswer.xml", &dir, 100, &[]);
    let trunk = format!("127.0.0.1:{}", callee.port);
    // Calls ring 6 s; the lease lasts 3 s.
    let (csv, config) = (accounts_csv(&dir), config(&dir, 6));
    let mut a = spawn_node(&dir, "a", &csv, &config, &url, &trunk);
    wait_until_dialling(&url, &dir, &mut a, "a", 2);
    // Paused (SIGSTOP) for longer than its lease, then woken.
    let pid = a.id() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(5));
    let before_wake = rows(&url).len();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let status = wait_node(&mut a, &dir, "a", Duration::from_secs(60));
    let all = rows(&url);
    assert!(
        !status.success(),
        "a lost lease is an error\n{}",
        log(&dir, "a")
    );
    let err = std::fs::read_to_string(dir.join("a.err")).unwrap_or_default();
    assert!(
        err.contains("its lease in the shared store expired before its heartbeat"),
        "{}",
        log(&dir, "a")
    );
    // What it did is still printed, as a stopped campaign.
    let out = std::fs::read_to_string(dir.join("a.out")).unwrap_or_default();
    assert!(out.contains("campaign stopped"), "{}", log(&dir, "a"));
    // No dial after it woke; its calls in flight ended and were stored.
    assert_eq!(
        all.len(),
        before_wake,
        "no new dial after the wake: {all:?}"
    );
    assert!(
        all.len() < NUMBERS,
        "it stopped before the campaign ended: {all:?}"
    );
    assert!(all.iter().all(|r| r.state == "ended"), "{all:?}");
    drop(callee);
}
