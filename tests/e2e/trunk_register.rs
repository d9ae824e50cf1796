//! Registration at a trunk that requires it (`[sip] register = true`),
//! against kamailio as the carrier's registrar with digest auth: the contact
//! lands in its location table, a short lifetime is refreshed before it
//! runs out, shutdown removes the binding, and a wrong password fails
//! start-up with an error naming `[sip] user`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use duecall::config::Config;
use duecall::telephony::sip::{SipError, SipGateway};

use crate::peers::*;

/// kamailio on 127.0.0.1 (UDP and TCP on one port) with
/// tests/peers/kamailio.cfg, its ctl socket in the scratch directory.
pub struct Kamailio {
    pub peer: Peer,
    pub port: u16,
    /// The TLS port, when started with [`Kamailio::start_tls`].
    #[allow(dead_code)]
    pub tls_port: u16,
    pub ctl: PathBuf,
}

impl Kamailio {
    pub fn start(dir: &Path) -> Kamailio {
        Self::start_with(dir, None, None)
    }

    /// On a given UDP/TCP port (a registrar coming back where it was).
    #[allow(dead_code)]
    pub fn start_on(dir: &Path, port: u16) -> Kamailio {
        Self::start_with(dir, None, Some(port))
    }

    /// Also listening on TLS (`-A WITH_TLS`), with `tls_dir`'s server.pem,
    /// server.key and ca.pem (client certificates required).
    #[allow(dead_code)]
    pub fn start_tls(dir: &Path, tls_dir: &Path) -> Kamailio {
        Self::start_with(dir, Some(tls_dir), None)
    }

    fn start_with(dir: &Path, tls_dir: Option<&Path>, fixed: Option<u16>) -> Kamailio {
        for _ in 0..5 {
            let port = fixed.unwrap_or_else(free_udp_port);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let tls_port = if tls_dir.is_some() {
                free_tcp_port()
            } else {
                0
            };
            let ctl = dir.join("kamctl.sock");
            let _ = std::fs::remove_file(&ctl);
            let src = std::fs::read_to_string(root().join("tests/peers/kamailio.cfg"))
                .expect("tests/peers/kamailio.cfg");
            let cfg = src
                .replace("{PORT}", &port.to_string())
                .replace("{CTL}", &ctl.display().to_string())
                .replace("{TLSPORT}", &tls_port.to_string())
                .replace(
                    "{TLSDIR}",
                    &tls_dir.map(|d| d.display().to_string()).unwrap_or_default(),
                );
            std::fs::write(dir.join("kamailio.cfg"), cfg).unwrap();
            let mut cmd = Command::new("kamailio");
            if tls_dir.is_some() {
                cmd.args(["-A", "WITH_TLS"]);
            }
            cmd.args(["-DD", "-E", "-f"])
                .arg(dir.join("kamailio.cfg"))
                .args(["-P"])
                .arg(dir.join("kamailio.pid"))
                .current_dir(dir);
            let mut peer = Peer::spawn("kamailio", &mut cmd, dir.join("kamailio.log"));
            if wait_udp_bound_by(&mut peer.child, port, Duration::from_secs(10)) {
                // The ctl socket comes up with the workers.
                let deadline = Instant::now() + Duration::from_secs(5);
                while !ctl.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return Kamailio {
                    peer,
                    port,
                    tls_port,
                    ctl,
                };
            }
        }
        panic!("kamailio did not start (run scripts/setup)");
    }

    /// `kamcmd ul.dump`: the location table as text.
    pub fn ul_dump(&self) -> String {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}", self.ctl.display()))
            .arg("ul.dump")
            .output()
            .expect("kamcmd (run scripts/setup)");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }

    /// REGISTER requests kamailio has seen (each digest-challenged one
    /// counts twice: without and with credentials).
    pub fn registers(&self) -> usize {
        self.peer.log_text().matches("REQ REGISTER").count()
    }
}

fn registering(kport: u16, password: &str, expires: u32) -> Config {
    let mut cfg = Config::default();
    cfg.sip.outbound_proxy = Some(format!("127.0.0.1:{kport}"));
    cfg.sip.user = Some("bot".into());
    cfg.sip.password = Some(password.into());
    cfg.sip.register = true;
    cfg.sip.register_expires = expires;
    cfg.validate().expect("a valid registering config");
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_registers_with_digest_refreshes_and_unregisters_at_shutdown() {
    let dir = scratch("trunk-register");
    let kam = Kamailio::start(&dir);
    let gw = SipGateway::start(registering(kam.port, "secret", 5))
        .await
        .expect("registered at start");
    assert_eq!(gw.registered(), Some(true));
    let contact = format!("127.0.0.1:{}", gw.local_addr().port());
    let dump = kam.ul_dump();
    assert!(
        dump.contains("bot") && dump.contains(&contact),
        "our contact {contact} is not in kamailio's location table:\n{dump}"
    );
    let after_first = kam.registers();
    // Five seconds granted: without a refresh the binding would be gone by
    // 9 s; with one at ~4.25 s and ~8.5 s there are two more REGISTERs.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(
        kam.registers() >= after_first + 4,
        "expected two refreshes (two challenged REGISTERs each) in 9 s, kamailio saw {} then {}:\n{}",
        after_first,
        kam.registers(),
        kam.peer.log_text()
    );
    assert_eq!(gw.registered(), Some(true), "still registered after 9 s");
    let dump = kam.ul_dump();
    assert!(dump.contains(&contact), "binding lapsed:\n{dump}");

    gw.shutdown();
    tokio::time::timeout(Duration::from_secs(10), gw.closed())
        .await
        .expect("gateway closed");
    assert_eq!(gw.registered(), Some(false));
    let dump = kam.ul_dump();
    assert!(
        !dump.contains(&contact),
        "the binding is still there after shutdown (no Expires: 0?):\n{dump}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_register_with_a_wrong_password_fails_start_naming_sip_user() {
    let dir = scratch("trunk-register-refused");
    let kam = Kamailio::start(&dir);
    let t0 = Instant::now();
    let err = match SipGateway::start(registering(kam.port, "not-the-password", 60)).await {
        Ok(_) => panic!("start-up went ahead with a wrong password"),
        Err(e) => e,
    };
    assert!(
        matches!(err, SipError::RegisterRefused { status: 401, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("[sip] user"), "{msg}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "a refusal is not waited out: {:?}",
        t0.elapsed()
    );
    assert!(!kam.ul_dump().contains("bot"), "registered all the same");
}
