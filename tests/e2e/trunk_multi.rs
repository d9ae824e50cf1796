//! Several `[[trunk]]` tables in one process, against kamailio on
//! 127.0.0.1: every trunk with `register = true` registers at its own
//! registrar with its own credentials (and over its own transport), a
//! refusal by the second registrar fails start-up naming that trunk's user,
//! an INVITE to a dead UDP trunk fails over to a TCP or TLS trunk in the
//! same process, and `/metrics` (rendered as the service renders it) shows
//! each trunk's calls and registration labelled by its name.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use duecall::config::Config;
use duecall::outcome::{Disposition, EndedBy};
use duecall::telephony::sip::{SipError, SipGateway};

use crate::peers::*;
use crate::trunk_register::Kamailio;
use crate::trunk_tls::{call, certificates};

/// `/metrics` as the service renders it (a fresh store: only the
/// process-wide SIP series carry anything).
fn metrics_text(dir: &Path) -> String {
    let store = duecall::store::Store::open(&dir.join("metrics-store")).expect("store");
    duecall::web::metrics::Metrics::default()
        .render(&store)
        .expect("metrics render")
}

/// The value of `series{trunk="name"}` in a metrics text.
fn sample(text: &str, series: &str, trunk: &str) -> Option<u64> {
    let prefix = format!("{series}{{trunk=\"{trunk}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn two_registering(a: u16, b: u16, b_password: &str, names: (&str, &str)) -> Config {
    let text = format!(
        "[sip]\ncallid_suffix = \"e2e.duecall.test\"\n\
         [[trunk]]\nname = \"{}\"\naddress = \"127.0.0.1:{a}\"\nuser = \"bot\"\npassword = \"secret\"\n\
         register = true\nregister_expires = 5\n\
         [[trunk]]\nname = \"{}\"\naddress = \"127.0.0.1:{b};transport=tcp\"\npriority = 1\n\
         user = \"agent\"\npassword = \"{b_password}\"\nregister = true\nregister_expires = 60\n",
        names.0, names.1
    );
    Config::from_toml(&text, "test").expect("valid config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registering_trunk_registers_at_its_own_registrar_over_its_own_transport() {
    let dir = scratch("trunk-multi-register");
    let (da, db) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let (kam_a, kam_b) = (Kamailio::start(&da), Kamailio::start(&db));
    let gw = SipGateway::start(two_registering(
        kam_a.port,
        kam_b.port,
        "agentpw",
        ("reg2-a", "reg2-b"),
    ))
    .await
    .unwrap_or_else(|e| {
        panic!(
            "both registered at start: {e}\n{}\n{}",
            kam_a.peer.log_text(),
            kam_b.peer.log_text()
        )
    });
    assert_eq!(gw.registered(), Some(true));
    assert_eq!(
        gw.registrations(),
        vec![("reg2-a".to_string(), true), ("reg2-b".to_string(), true)]
    );
    // Each registrar holds its own trunk's user, over that trunk's transport.
    let contact = format!("127.0.0.1:{}", gw.local_addr().port());
    let (dump_a, dump_b) = (kam_a.ul_dump(), kam_b.ul_dump());
    assert!(
        dump_a.contains("bot") && dump_a.contains(&contact) && !dump_a.contains("agent"),
        "registrar A should hold bot at {contact} only:\n{dump_a}"
    );
    assert!(
        dump_b.contains("agent")
            && dump_b.to_ascii_lowercase().contains("transport=tcp")
            && !dump_b.contains("AOR: bot"),
        "registrar B should hold agent over TCP only:\n{dump_b}"
    );
    let b_log = kam_b.peer.log_text();
    assert!(
        b_log
            .lines()
            .any(|l| l.contains("REQ REGISTER") && l.contains("(tcp)")),
        "registrar B got no REGISTER over TCP:\n{b_log}"
    );
    // A's 5 s lifetime is refreshed (at ~4.25 s) while B's 60 s is not due.
    let (a0, b0) = (kam_a.registers(), kam_b.registers());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        kam_a.registers() > a0,
        "registrar A saw no refresh in 6 s ({a0} then {})",
        kam_a.registers()
    );
    assert_eq!(kam_b.registers(), b0, "B refreshed long before its time");
    assert_eq!(gw.registered(), Some(true), "both still registered");
    let text = metrics_text(&dir);
    for t in ["reg2-a", "reg2-b"] {
        assert_eq!(
            sample(&text, "duecall_trunk_registered", t),
            Some(1),
            "{t}:\n{text}"
        );
    }

    gw.shutdown();
    tokio::time::timeout(Duration::from_secs(10), gw.closed())
        .await
        .expect("gateway closed");
    assert_eq!(
        gw.registrations(),
        vec![("reg2-a".to_string(), false), ("reg2-b".to_string(), false)]
    );
    assert!(
        !kam_a.ul_dump().contains(&contact),
        "A's binding left after shutdown"
    );
    assert!(
        !kam_b.ul_dump().contains("agent"),
        "B's binding left after shutdown:\n{}",
        kam_b.ul_dump()
    );
    let text = metrics_text(&dir);
    assert_eq!(sample(&text, "duecall_trunk_registered", "reg2-b"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_trunk_refusing_our_register_fails_start_naming_that_trunks_user() {
    let dir = scratch("trunk-multi-refused");
    let (da, db) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let (kam_a, kam_b) = (Kamailio::start(&da), Kamailio::start(&db));
    let t0 = Instant::now();
    let err = match SipGateway::start(two_registering(
        kam_a.port,
        kam_b.port,
        "not-the-password",
        ("reg3-a", "reg3-b"),
    ))
    .await
    {
        Ok(_) => panic!("start-up went ahead with a wrong password on reg3-b"),
        Err(e) => e,
    };
    match &err {
        SipError::RegisterRefused {
            user_key, status, ..
        } => {
            assert_eq!(user_key, "trunk.reg3-b.user");
            assert_eq!(*status, 401);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("trunk.reg3-b.user"), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "a refusal is not waited out: {:?}",
        t0.elapsed()
    );
    assert!(
        !kam_b.ul_dump().contains("agent"),
        "registered all the same"
    );
}

/// A dead UDP trunk first, then a kamailio trunk over `kind` ("tcp" or
/// "tls") that registers; the call to sipp behind kamailio is answered on
/// the second trunk within the same attempt.
async fn dead_udp_then(kind: &str) {
    let dir = scratch(&format!("trunk-multi-failover-{kind}"));
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let kam = if kind == "tls" {
        certificates(&tls);
        let k = Kamailio::start_tls(&dir, &tls);
        assert!(wait_tcp(k.tls_port, Duration::from_secs(5)), "kamailio TLS");
        k
    } else {
        Kamailio::start(&dir)
    };
    // Bound, so no ICMP error either: it just never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let (dead, live) = (format!("fo-dead-{kind}"), format!("fo-{kind}"));
    let address = if kind == "tls" {
        format!("sips:127.0.0.1:{}", kam.tls_port)
    } else {
        format!("127.0.0.1:{};transport=tcp", kam.port)
    };
    let tls_keys = if kind == "tls" {
        format!(
            "tls_ca_file = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            tls.join("ca.pem").display(),
            tls.join("client.pem").display(),
            tls.join("client.key").display(),
        )
    } else {
        String::new()
    };
    let text = format!(
        "[sip]\ncallid_suffix = \"e2e.duecall.test\"\nfrom = \"sip:bot@127.0.0.1\"\n{tls_keys}\
         [[trunk]]\nname = \"{dead}\"\naddress = \"127.0.0.1:{silent_port}\"\n\
         [[trunk]]\nname = \"{live}\"\naddress = \"{address}\"\npriority = 1\n\
         user = \"bot\"\npassword = \"secret\"\nregister = true\nregister_expires = 60\n",
    );
    let cfg = Config::from_toml(&text, "test").expect("udp and tcp/tls trunks in one config");
    let gw = SipGateway::start(cfg)
        .await
        .unwrap_or_else(|e| panic!("gateway: {e}\n{}", kam.peer.log_text()));
    assert_eq!(gw.registrations(), vec![(live.clone(), true)]);
    assert!(
        kam.ul_dump()
            .to_ascii_lowercase()
            .contains(&format!("transport={kind}")),
        "no {kind} contact at kamailio:\n{}",
        kam.ul_dump()
    );
    let sdir = dir.join("sipp");
    std::fs::create_dir_all(&sdir).unwrap();
    let mut sipp = Sipp::uas("uas_tcp.xml", &sdir);
    let t0 = Instant::now();
    let r = call(&gw, sipp.uri(), Duration::from_millis(500)).await;
    assert_eq!(
        r.disposition,
        Disposition::Answered,
        "{r:?}\n{}",
        kam.peer.log_text()
    );
    assert_eq!(r.ended_by, EndedBy::Us);
    assert_eq!(r.trunks, vec![dead.clone(), live.clone()], "{r:?}");
    // FAILOVER_SILENCE (3 s), not the INVITE's 32 s Timer B.
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let mut buf = [0u8; 4096];
    silent.set_nonblocking(true).unwrap();
    let (n, _) = silent
        .recv_from(&mut buf)
        .expect("the dead trunk got the INVITE");
    let invite = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        invite.starts_with("INVITE ") && invite.contains("SIP/2.0/UDP"),
        "{invite}"
    );
    let klog = kam.peer.log_text();
    for m in ["REQ INVITE", "REQ BYE"] {
        assert!(
            klog.lines()
                .any(|l| l.contains(m) && l.contains(&format!("({kind})"))),
            "kamailio got no {m} over {kind}:\n{klog}"
        );
    }
    let (ok, log) = tokio::task::spawn_blocking(move || {
        let ok = sipp.finished_ok(Duration::from_secs(10));
        (ok, sipp.errors())
    })
    .await
    .unwrap();
    assert!(ok, "sipp did not see INVITE, ACK and BYE: {log}");

    // The scrape after the call: by trunk name, the failover counted on
    // the dead trunk, the answer on the live one, nothing left in flight.
    let deadline = Instant::now() + Duration::from_secs(3);
    let text = loop {
        let text = metrics_text(&dir);
        let idle = sample(&text, "duecall_trunk_calls_in_flight", &live) == Some(0);
        if idle || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let want = [
        ("duecall_trunk_calls_placed_total", &dead, 1),
        ("duecall_trunk_calls_failed_over_total", &dead, 1),
        ("duecall_trunk_calls_answered_total", &dead, 0),
        ("duecall_trunk_calls_failed_total", &dead, 0),
        ("duecall_trunk_calls_in_flight", &dead, 0),
        ("duecall_trunk_calls_placed_total", &live, 1),
        ("duecall_trunk_calls_answered_total", &live, 1),
        ("duecall_trunk_calls_failed_over_total", &live, 0),
        ("duecall_trunk_calls_in_flight", &live, 0),
        ("duecall_trunk_registered", &live, 1),
    ];
    for (series, trunk, v) in want {
        assert_eq!(
            sample(&text, series, trunk),
            Some(v),
            "{series}{{trunk=\"{trunk}\"}}:\n{text}"
        );
    }
    assert_eq!(
        sample(&text, "duecall_trunk_registered", &dead),
        None,
        "a trunk that does not register has no registered gauge"
    );
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_udp_trunk_fails_over_to_a_tcp_trunk_in_the_same_process() {
    dead_udp_then("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_udp_trunk_fails_over_to_a_tls_trunk_in_the_same_process() {
    dead_udp_then("tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrar_that_goes_away_and_comes_back_is_registered_at_again() {
    let dir = scratch("trunk-multi-reregister");
    let (da, db) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let kam = Kamailio::start(&da);
    let port = kam.port;
    let text = format!(
        "[sip]\ncallid_suffix = \"e2e.duecall.test\"\n\
         [[trunk]]\nname = \"rereg\"\naddress = \"127.0.0.1:{port};transport=tcp\"\n\
         user = \"bot\"\npassword = \"secret\"\nregister = true\nregister_expires = 4\n"
    );
    let gw = SipGateway::start(Config::from_toml(&text, "test").unwrap())
        .await
        .expect("registered");
    assert_eq!(gw.registered(), Some(true));
    // The registrar goes away: the refresh fails and the 4 s binding lapses.
    drop(kam);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.registered() != Some(false) {
        assert!(
            Instant::now() < deadline,
            "still registered with no registrar"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sample(&metrics_text(&dir), "duecall_trunk_registered", "rereg"),
        Some(0)
    );
    // It comes back on the same port: the back-off (2, 4, 8 s) finds it
    // (after a REGISTER that was still out, up to its 32 s timer).
    let kam = Kamailio::start_on(&db, port);
    let back = Instant::now();
    while gw.registered() != Some(true) {
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "not registered again 60 s after the registrar came back:\n{}",
            kam.peer.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(kam.ul_dump().contains("bot"), "{}", kam.ul_dump());
    assert_eq!(
        sample(&metrics_text(&dir), "duecall_trunk_registered", "rereg"),
        Some(1)
    );
    eprintln!(
        "re-registered {:?} after the registrar came back",
        back.elapsed()
    );
    gw.shutdown();
}
