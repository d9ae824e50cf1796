//! What the service's end-to-end tests share: a store filled once per test
//! run by a real campaign against the simulated debtors (SIP/RTP over
//! loopback, the recognizer, the gate), a private copy of it per test,
//! `duecall serve` started as a real process on a port the OS gives (and
//! stopped by PID), tokens made with the real `duecall token create`, and
//! a raw HTTP request for paths a client library would normalise.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::Utc;
use duecall::campaign::cli::{run_campaign_with, RunArgs};
use duecall::campaign::demo::{demo_accounts, write_accounts_csv};
use duecall::campaign::{Progress, Shutdown};

use crate::peers::{scratch, Peer};

/// The personas the shared campaign calls: escalations (hardship with no
/// agent to transfer to, silence, a DTMF promise without a date, barge-in),
/// pauses, suppressions, a voicemail retry.
pub const PERSONAS: [&str; 9] = [
    "hardship",
    "paid",
    "promise",
    "wrong_number",
    "stop",
    "silent",
    "voicemail",
    "dtmf",
    "barge_in",
];

static CAMPAIGN: OnceLock<PathBuf> = OnceLock::new();

/// The data directory of the shared campaign (run on first use; later
/// callers wait for it). Never modify it: take a `copy_store`.
pub fn campaign_store() -> &'static Path {
    CAMPAIGN.get_or_init(|| {
        std::thread::spawn(run_campaign)
            .join()
            .expect("the shared campaign ran")
    })
}

fn run_campaign() -> PathBuf {
    let dir = scratch("serve-campaign");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sim = duecall::sim::start(duecall::sim::SimConfig {
            ring_ms: Some(300),
            ..duecall::sim::SimConfig::default()
        })
        .await
        .expect("simulated debtors start (run scripts/setup)");
        let now = Utc::now();
        let personas: Vec<String> = PERSONAS.iter().map(|s| s.to_string()).collect();
        let accounts = demo_accounts(&personas, now).expect("demo accounts");
        let csv = dir.join("accounts.csv");
        write_accounts_csv(&csv, &accounts.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>())
            .expect("write accounts");
        // No agent to transfer to: every agent route becomes an escalation.
        let mut cfg = String::from(
            "[sip]\nring_timeout_s = 8\n[campaign]\nmax_concurrent = 5\ncalls_per_second = 0\nshutdown_grace_s = 20\n[campaign.dial_uri_by_account]\n",
        );
        for (a, p) in &accounts {
            cfg.push_str(&format!("\"{}\" = \"{}\"\n", a.account_id, sim.uri_for(p)));
        }
        let config = dir.join("duecall.toml");
        std::fs::write(&config, cfg).expect("write config");
        let args = RunArgs::new(csv, config, dir.join("data"))
            .until((now + chrono::Duration::minutes(10)).fixed_offset());
        let summary = tokio::time::timeout(
            Duration::from_secs(600),
            run_campaign_with(&args, Shutdown::default(), Progress::Quiet),
        )
        .await
        .expect("the campaign ends within 10 minutes")
        .expect("the campaign runs");
        sim.shutdown();
        assert!(
            summary.attempts.len() >= PERSONAS.len(),
            "every persona was dialled: {:?}",
            summary.attempts
        );
    });
    dir.join("data")
}

/// A private copy of the campaign's data directory (database and
/// recordings), with the stored recording paths moved along.
pub fn copy_store(tag: &str) -> PathBuf {
    let src = campaign_store();
    let dst = scratch(&format!("serve-{tag}")).join("data");
    copy_dir(src, &dst);
    let conn = rusqlite::Connection::open(dst.join("duecall.db")).expect("open copy");
    let (from, to) = (src.display().to_string(), dst.display().to_string());
    for table in ["attempts", "escalations"] {
        conn.execute(
            &format!("UPDATE {table} SET recording = replace(recording, ?1, ?2) WHERE recording IS NOT NULL"),
            [&from, &to],
        )
        .expect("move recording paths");
    }
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create copy dir");
    for e in std::fs::read_dir(src).expect("read data dir") {
        let e = e.expect("dir entry");
        let to = dst.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy file");
        }
    }
}

/// The duecall binary under test.
pub fn duecall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_duecall"))
}

/// A token made by `duecall token create` (its last line).
pub fn token(data: &Path, role: &str, name: &str) -> String {
    let out = duecall()
        .args([
            "token",
            "create",
            "--role",
            role,
            "--name",
            name,
            "--data-dir",
        ])
        .arg(data)
        .output()
        .expect("run duecall token create");
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.lines().last().expect("a last line").trim().to_string()
}

/// A user made by `duecall user add --password-stdin`.
pub fn user(data: &Path, name: &str, role: &str, password: &str) {
    let mut child = duecall()
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--data-dir",
        ])
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run duecall user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("user add ends");
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `duecall serve` running on a data directory.
pub struct Serve {
    /// The process (stopped by PID on drop).
    pub peer: Peer,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The data directory.
    pub data: PathBuf,
}

impl Serve {
    /// Starts `duecall serve --data-dir data --listen 127.0.0.1:0` with a
    /// config (TOML text, may be empty) and waits until it listens.
    pub fn start(data: &Path, config: &str) -> Serve {
        Self::start_with(data, config, &[])
    }

    /// Same, with more arguments.
    pub fn start_with(data: &Path, config: &str, extra: &[&str]) -> Serve {
        let dir = data.parent().expect("data dir has a parent").to_path_buf();
        let cfg = dir.join("serve.toml");
        std::fs::write(&cfg, config).expect("write serve config");
        let log = dir.join(format!("serve-{}.log", std::process::id()));
        let mut cmd = duecall();
        cmd.arg("serve")
            .arg("--config")
            .arg(&cfg)
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--log", "info"])
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        let peer = Peer::spawn("duecall serve", &mut cmd, log.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(l) = text.lines().find(|l| l.contains("listening on ")) {
                break l
                    .split("listening on ")
                    .nth(1)
                    .expect("url")
                    .trim()
                    .to_string();
            }
            assert!(
                Instant::now() < deadline,
                "duecall serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Serve {
            peer,
            url,
            data: data.to_path_buf(),
        }
    }

    /// Stops the service with SIGTERM as an operator does, asserts it
    /// exits 0 within a minute, and returns its log.
    pub fn stop_with_sigterm(&mut self) -> String {
        unsafe { libc::kill(self.peer.child.id() as i32, libc::SIGTERM) };
        let status = self.peer.wait_timeout(Duration::from_secs(60));
        let log = std::fs::read_to_string(&self.peer.log).unwrap_or_default();
        let status = status.unwrap_or_else(|| panic!("serve did not stop on SIGTERM:\n{log}"));
        assert!(status.success(), "{status}:\n{log}");
        log
    }

    /// Kills the service with SIGKILL (no shutdown of any kind) and waits
    /// for it to be gone.
    pub fn kill9(&mut self) {
        let pid = self.peer.child.id() as i32;
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = self.peer.child.wait();
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        self.url.split("://").nth(1).expect("scheme").to_string()
    }
}

/// An HTTP client that keeps no cookies and follows no redirects.
pub fn client() -> reqwest::Client {
    duecall::crypto::install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// A GET of an exact request target (no normalisation of `..` or `%2F`),
/// over a plain socket. Returns the status and body.
pub fn raw_get(addr: &str, target: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    // A peer that hangs up first (plain HTTP to a TLS port) is an answer too.
    let _ = write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    );
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The JSON of a response (panics with the body when it is not JSON).
pub async fn json(r: reqwest::Response) -> serde_json::Value {
    let status = r.status();
    let bytes = r.bytes().await.expect("body");
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "status {status}: not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Creates campaign `name` through the API as `admin`, uploads `csv` as its
/// accounts and starts it; its id.
pub async fn start_campaign(
    c: &reqwest::Client,
    url: &str,
    admin: &str,
    name: &str,
    csv: &str,
) -> i64 {
    let r = c
        .post(format!("{url}/api/v1/campaigns"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let id = json(r).await["id"].as_i64().expect("campaign id");
    let r = c
        .post(format!("{url}/api/v1/campaigns/{id}/accounts"))
        .bearer_auth(admin)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = c
        .post(format!("{url}/api/v1/campaigns/{id}/start"))
        .bearer_auth(admin)
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    id
}
