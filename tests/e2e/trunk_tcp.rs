//! SIP over TCP to the trunk (`[sip] transport = "tcp"`): a whole call to
//! sipp listening on TCP only (`-t t1`), a trunk connection that drops
//! mid-call ends the call at once as `failed`/`network`, and registration
//! over TCP at kamailio.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use duecall::config::{Config, SipTransport};
use duecall::outcome::{Disposition, EndedBy, FailReason};
use duecall::telephony::leg::{LegCommand, LegEvent};
use duecall::telephony::report::CallReport;
use duecall::telephony::sip::{DialRequest, SipGateway};

use crate::peers::*;
use crate::trunk_register::Kamailio;

/// Whether something listens on TCP 127.0.0.1:`port` (/proc/net/tcp, state
/// 0A), without connecting to it.
fn tcp_listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A")
        })
}

/// sipp answering one call over TCP only.
fn sipp_tcp(scenario: &str, dir: &Path) -> (Peer, u16) {
    let sf = root().join("tests/sipp").join(scenario);
    for _ in 0..5 {
        let port = free_tcp_port();
        let mp = free_udp_pair();
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir)
            .arg("-sf")
            .arg(&sf)
            .args(["-t", "t1", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-nostdin", "-trace_err", "-trace_msg", "-m", "1"])
            .args(["-p", &port.to_string(), "-mp", &mp.to_string()]);
        let mut peer = Peer::spawn("sipp", &mut cmd, dir.join(format!("sipp-{scenario}.log")));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = peer.child.try_wait() {
                break;
            }
            if tcp_listening(port) {
                return (peer, port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("sipp did not listen on TCP");
}

fn over_tcp(trunk: u16) -> Config {
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e.duecall.test".into();
    cfg.sip.outbound_proxy = Some(format!("127.0.0.1:{trunk};transport=tcp"));
    cfg.validate().expect("valid config");
    assert_eq!(cfg.sip_transport(), SipTransport::Tcp);
    cfg
}

/// sipp's message trace (`-trace_msg`), for assertions.
fn sipp_messages(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.ends_with("_messages.log") || n.ends_with("_errors.log") {
            s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    s
}

/// A scratch directory `tag`, sipp answering on TCP only there, a gateway
/// speaking TCP to it, and a call to it dialled.
async fn call_over_tcp(
    tag: &str,
) -> (
    std::path::PathBuf,
    Peer,
    SipGateway,
    duecall::telephony::leg::CallLeg,
) {
    let dir = scratch(tag);
    let (sipp, port) = sipp_tcp("uas_tcp.xml", &dir);
    let gw = SipGateway::start(over_tcp(port)).await.expect("gateway");
    let leg = gw
        .dial(DialRequest::to(format!("sip:callee@127.0.0.1:{port}")))
        .await
        .expect("dial");
    (dir, sipp, gw, leg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_tcp_call_is_answered_and_hung_up_over_tcp() {
    let (dir, mut sipp, _gw, mut leg) = call_over_tcp("trunk-tcp-call").await;
    let mut report: Option<CallReport> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while report.is_none() {
        tokio::select! {
            ev = leg.next_event() => match ev.expect("events until Ended") {
                LegEvent::Answered { .. } => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    leg.send(LegCommand::Hangup).await;
                }
                LegEvent::Ended(r) => report = Some(*r),
                _ => {}
            },
            _ = tokio::time::sleep_until(deadline) => panic!("the call did not end: {}", sipp_messages(&dir)),
        }
    }
    let r = report.unwrap();
    assert_eq!(r.disposition, Disposition::Answered, "{r:?}");
    assert_eq!(r.ended_by, EndedBy::Us);
    let ok = tokio::task::spawn_blocking(move || sipp.wait_timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    let trace = sipp_messages(&dir);
    assert!(
        ok.is_some_and(|s| s.success()),
        "sipp did not see the whole call (INVITE, ACK, BYE):\n{trace}"
    );
    assert!(
        trace.contains("SIP/2.0/TCP") && !trace.contains("SIP/2.0/UDP"),
        "the Vias do not all say TCP:\n{trace}"
    );
    assert!(
        trace.to_ascii_lowercase().contains("transport=tcp"),
        "our Contact names TCP:\n{trace}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_tcp_connection_dropping_mid_call_ends_it_as_failed_network() {
    let (_dir, mut sipp, gw, mut leg) = call_over_tcp("trunk-tcp-drop").await;
    let mut killed_at: Option<Instant> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    let r = loop {
        tokio::select! {
            ev = leg.next_event() => match ev.expect("events until Ended") {
                LegEvent::Answered { .. } => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    // The trunk goes away: its process dies, the kernel
                    // closes the connection.
                    unsafe { libc::kill(sipp.child.id() as i32, libc::SIGKILL) };
                    let _ = sipp.child.wait();
                    killed_at = Some(Instant::now());
                }
                LegEvent::Ended(r) => break *r,
                _ => {}
            },
            _ = tokio::time::sleep_until(deadline) => panic!("the call outlived its trunk connection"),
        }
    };
    let took = killed_at.expect("answered before it ended").elapsed();
    assert_eq!(r.disposition, Disposition::Failed, "{r:?}");
    assert_eq!(r.reason, Some(FailReason::Network), "{r:?}");
    assert_eq!(r.ended_by, EndedBy::Them, "{r:?}");
    assert!(
        took < Duration::from_secs(BYE_BUDGET_S),
        "ended {took:?} after the connection closed (not by the media timeout)"
    );
    assert_eq!(gw.active_dialogs(), 0, "dialog left behind");
}

/// The call ends at once; the BYE attempted towards the dead trunk may take
/// up to the gateway's BYE wait (4 s).
const BYE_BUDGET_S: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_tcp_registers_at_kamailio_over_tcp() {
    let dir = scratch("trunk-tcp-register");
    let kam = Kamailio::start(&dir);
    let mut cfg = over_tcp(kam.port);
    cfg.sip.user = Some("bot".into());
    cfg.sip.password = Some("secret".into());
    cfg.sip.register = true;
    cfg.sip.register_expires = 60;
    let gw = SipGateway::start(cfg).await.expect("registered over TCP");
    assert_eq!(gw.registered(), Some(true));
    let log = kam.peer.log_text();
    assert!(
        log.contains("REQ REGISTER") && log.contains("(tcp)"),
        "kamailio did not get the REGISTER over TCP:\n{log}"
    );
    let dump = kam.ul_dump();
    assert!(
        dump.contains("bot") && dump.to_ascii_lowercase().contains("transport=tcp"),
        "no TCP contact for bot in kamailio's location table:\n{dump}"
    );
    gw.shutdown();
    tokio::time::timeout(Duration::from_secs(10), gw.closed())
        .await
        .expect("closed");
    assert!(
        !kam.ul_dump().to_ascii_lowercase().contains("transport=tcp"),
        "binding left after shutdown"
    );
}
