//! CRLF keep-alives (RFC 5626 4.4.1, a double CRLF) on a trunk's TCP and
//! TLS connections, counted at the peer: a plain TCP listener, and
//! `openssl s_server` for TLS (it prints what it decrypts). With
//! `[sip] keepalive_s = 1` the gateway opens the connection itself, with
//! no call, and pings about once a second until shutdown.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duecall::config::Config;
use duecall::telephony::sip::SipGateway;

use crate::peers::*;
use crate::trunk_tls::certificates;

/// Double CRLFs in `bytes`, not overlapping: four keep-alives in a row are
/// four, not the seven windows a sliding count sees (a CI dry run failed
/// on that: "got 7" for four pings in 4 s).
fn pings(bytes: &[u8]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i + 4 <= bytes.len() {
        if &bytes[i..i + 4] == b"\r\n\r\n" {
            n += 1;
            i += 4;
        } else {
            i += 1;
        }
    }
    n
}

fn config(name: &str, address: &str, extra_sip: &str) -> Config {
    let text = format!(
        "[sip]\ncallid_suffix = \"e2e.duecall.test\"\nkeepalive_s = 1\n{extra_sip}\
         [[trunk]]\nname = \"{name}\"\naddress = \"{address}\"\n"
    );
    Config::from_toml(&text, "test").expect("valid config")
}

/// Waits `secs`, shuts the gateway down, returns how many pings `count`
/// saw by then and how many more came in the second after.
async fn pings_over(gw: SipGateway, secs: u64, count: impl Fn() -> usize) -> (usize, usize) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let seen = count();
    gw.shutdown();
    tokio::time::timeout(Duration::from_secs(10), gw.closed())
        .await
        .expect("closed");
    let at_close = count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    (seen, count() - at_close)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_trunk_connection_gets_a_double_crlf_every_keepalive_s() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let gw = SipGateway::start(config(
        "ka-tcp",
        &format!("127.0.0.1:{port};transport=tcp"),
        "",
    ))
    .await
    .expect("gateway");
    let (seen, after) = pings_over(gw, 4, || pings(&got.lock().unwrap())).await;
    let all = got.lock().unwrap().clone();
    assert!(
        (2..=5).contains(&seen),
        "expected about 3 double CRLFs in 4 s at keepalive_s = 1, got {seen}: {:?}",
        String::from_utf8_lossy(&all)
    );
    assert!(
        all.iter().all(|b| *b == b'\r' || *b == b'\n'),
        "only keep-alives went to the idle trunk: {:?}",
        String::from_utf8_lossy(&all)
    );
    assert_eq!(after, 0, "keep-alives after shutdown");
}

/// `openssl s_server` on a free port with `dir`'s server certificate,
/// printing what it receives to `out`; its stdin stays open (at EOF it
/// would stop reading).
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    fn start(dir: &Path, out: &Path) -> SServer {
        for _ in 0..5 {
            let port = free_tcp_port();
            let child = Command::new("openssl")
                .current_dir(dir)
                .args(["s_server", "-quiet", "-accept"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-cert", "server.pem", "-key", "server.key"])
                .stdin(Stdio::piped())
                .stdout(Stdio::from(std::fs::File::create(out).unwrap()))
                .stderr(Stdio::null())
                .spawn()
                .expect("openssl");
            let s = SServer { child, port };
            if wait_tcp(port, Duration::from_secs(5)) {
                return s;
            }
        }
        panic!("openssl s_server did not listen");
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_trunk_connection_gets_a_double_crlf_every_keepalive_s() {
    let dir = scratch("trunk-keepalive-tls");
    certificates(&dir);
    let out = dir.join("s_server.out");
    let server = SServer::start(&dir, &out);
    // wait_tcp's probe connection is not a TLS client: s_server drops it
    // and waits for the next one (ours).
    let gw = SipGateway::start(config(
        "ka-tls",
        &format!("sips:127.0.0.1:{}", server.port),
        &format!("tls_ca_file = \"{}\"\n", dir.join("ca.pem").display()),
    ))
    .await
    .expect("gateway");
    let count = || pings(&std::fs::read(&out).unwrap_or_default());
    let (seen, after) = pings_over(gw, 4, count).await;
    let all = std::fs::read(&out).unwrap_or_default();
    assert!(
        (2..=5).contains(&seen),
        "expected about 3 double CRLFs over TLS in 4 s, got {seen}: {:?}",
        String::from_utf8_lossy(&all)
    );
    assert!(
        all.iter().all(|b| *b == b'\r' || *b == b'\n'),
        "only keep-alives went to the idle trunk: {:?}",
        String::from_utf8_lossy(&all)
    );
    assert_eq!(after, 0, "keep-alives after shutdown");
    drop(server);
}
