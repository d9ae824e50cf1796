//! SIP over TLS to the trunk (`sips:`, `[sip] tls_ca_file`, client
//! certificate): kamailio with its tls module plays the carrier, requiring
//! a client certificate; the CA and the certificates are written by
//! `openssl` at run time. duecall registers over TLS, then a call goes
//! through kamailio (TLS on our side, UDP to sipp) and is hung up; a
//! trunk whose certificate does not chain to our CA file gets no call.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use duecall::config::{Config, SipTransport};
use duecall::outcome::{Disposition, EndedBy, FailReason};
use duecall::telephony::leg::{LegCommand, LegEvent};
use duecall::telephony::report::CallReport;
use duecall::telephony::sip::{DialRequest, SipGateway};

use crate::peers::*;
use crate::trunk_register::Kamailio;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (run scripts/setup)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>.pem`/`.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A certificate `<name>.pem`/`.key` signed by the CA `ca`.
fn make_cert(dir: &Path, ca: &str, name: &str, ext: &str) {
    let (pem, key, csr) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// ca.pem, server.pem (IP 127.0.0.1), client.pem, and other-ca.pem (an
/// unrelated CA) in `dir`.
pub(crate) fn certificates(dir: &Path) {
    make_ca(dir, "ca");
    make_cert(
        dir,
        "ca",
        "server",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    make_cert(
        dir,
        "ca",
        "client",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
    make_ca(dir, "other-ca");
}

fn over_tls(kam: &Kamailio, tls: &Path, ca: &str) -> Config {
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e.duecall.test".into();
    cfg.sip.outbound_proxy = Some(format!("sips:127.0.0.1:{}", kam.tls_port));
    cfg.sip.tls_ca_file = Some(tls.join(ca));
    cfg.sip.tls_cert_file = Some(tls.join("client.pem"));
    cfg.sip.tls_key_file = Some(tls.join("client.key"));
    cfg.sip.from = Some(format!("sip:bot@127.0.0.1:{}", kam.port));
    cfg.sip.user = Some("bot".into());
    cfg.sip.password = Some("secret".into());
    cfg.validate().expect("valid config");
    assert_eq!(cfg.sip_transport(), SipTransport::Tls);
    cfg
}

pub(crate) async fn call(gw: &SipGateway, to: String, hold: Duration) -> CallReport {
    let mut leg = gw.dial(DialRequest::to(to)).await.expect("dial");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        tokio::select! {
            ev = leg.next_event() => match ev.expect("events until Ended") {
                LegEvent::Answered { .. } => {
                    tokio::time::sleep(hold).await;
                    leg.send(LegCommand::Hangup).await;
                }
                LegEvent::Ended(r) => return *r,
                _ => {}
            },
            _ = tokio::time::sleep_until(deadline) => panic!("the call did not end"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_tls_registers_and_calls_through_kamailio_with_a_client_certificate() {
    let dir = scratch("trunk-tls");
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    certificates(&tls);
    let kam = Kamailio::start_tls(&dir, &tls);
    assert!(
        wait_tcp(kam.tls_port, Duration::from_secs(5)),
        "kamailio TLS: {}",
        kam.peer.log_text()
    );
    let mut cfg = over_tls(&kam, &tls, "ca.pem");
    cfg.sip.register = true;
    cfg.sip.register_expires = 60;
    let gw = SipGateway::start(cfg)
        .await
        .unwrap_or_else(|e| panic!("registered over TLS: {e}\n{}", kam.peer.log_text()));
    assert_eq!(gw.registered(), Some(true));
    let dump = kam.ul_dump().to_ascii_lowercase();
    assert!(
        dump.contains("transport=tls"),
        "no TLS contact in kamailio's location table:\n{dump}"
    );

    // The callee: sipp on UDP behind kamailio (TLS on our side only).
    let sdir = dir.join("sipp");
    std::fs::create_dir_all(&sdir).unwrap();
    let mut sipp = Sipp::uas("uas_tcp.xml", &sdir);
    let r = call(&gw, sipp.uri(), Duration::from_secs(1)).await;
    assert_eq!(
        r.disposition,
        Disposition::Answered,
        "{r:?}\n{}",
        kam.peer.log_text()
    );
    assert_eq!(r.ended_by, EndedBy::Us);
    let (ok, log) = tokio::task::spawn_blocking(move || {
        let ok = sipp.finished_ok(Duration::from_secs(10));
        (ok, sipp.errors())
    })
    .await
    .unwrap();
    assert!(ok, "sipp did not see INVITE, ACK and BYE: {log}");
    let klog = kam.peer.log_text();
    for m in ["REQ INVITE", "REQ BYE"] {
        assert!(
            klog.lines().any(|l| l.contains(m) && l.contains("(tls)")),
            "kamailio got no {m} over TLS:\n{klog}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_tls_with_a_certificate_not_from_our_ca_gets_no_call() {
    let dir = scratch("trunk-tls-untrusted");
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    certificates(&tls);
    let kam = Kamailio::start_tls(&dir, &tls);
    assert!(wait_tcp(kam.tls_port, Duration::from_secs(5)));
    let gw = SipGateway::start(over_tls(&kam, &tls, "other-ca.pem"))
        .await
        .expect("gateway");
    let sipp_port = free_udp_port();
    let r = call(
        &gw,
        format!("sip:callee@127.0.0.1:{sipp_port}"),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(r.disposition, Disposition::Failed, "{r:?}");
    assert_eq!(r.reason, Some(FailReason::Network), "{r:?}");
    assert!(
        !kam.peer.log_text().contains("REQ INVITE"),
        "an INVITE reached the untrusted trunk"
    );
}
