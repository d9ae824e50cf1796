//! Trunks named in DNS (RFC 3263), against a real resolver: Debian's
//! dnsmasq on a loopback port serves NAPTR, SRV and A records, and sipp
//! plays the carrier's servers. The order of the servers, the failover on a
//! 503 and on a server that never answers, and a name with no SIP server.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use duecall::config::Config;
use duecall::outcome::Disposition;
use duecall::telephony::sip::resolve::{Resolver, Target, Transport};
use duecall::telephony::sip::{DialRequest, SipError, SipGateway};

use crate::peers::*;

/// dnsmasq answering only the records it is given, on 127.0.0.1.
struct Dnsmasq {
    _peer: Peer,
    addr: SocketAddr,
}

impl Dnsmasq {
    fn start(dir: &std::path::Path, records: &[String]) -> Dnsmasq {
        for _ in 0..5 {
            let port = free_udp_port();
            let mut cmd = Command::new("dnsmasq");
            cmd.args([
                "--keep-in-foreground",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file",
                "--log-queries",
                "--log-facility=-",
            ])
            .arg(format!("--port={port}"))
            .args(records);
            let peer = Peer::spawn("dnsmasq", &mut cmd, dir.join("dnsmasq.log"));
            if wait_udp_bound(port, Duration::from_secs(5)) {
                return Dnsmasq {
                    _peer: peer,
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                };
            }
        }
        panic!("dnsmasq did not bind its port (run scripts/setup: dnsmasq-base)");
    }
}

fn srv(name: &str, target: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("--srv-host={name},{target},{port},{priority},{weight}")
}

fn host(name: &str, ip: &str) -> String {
    format!("--host-record={name},{ip}")
}

fn udp(port: u16) -> Target {
    Target {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naptr_then_srv_then_a_give_the_servers_in_rfc_3263_order() {
    let dir = scratch("dns_order");
    let dns = Dnsmasq::start(
        &dir,
        &[
            // The carrier prefers TCP (which we do not speak yet), then UDP;
            // an order-20 record must never be used while order 10 serves.
            "--naptr-record=carrier.test,10,10,s,SIP+D2T,,_sip._tcp.carrier.test".into(),
            "--naptr-record=carrier.test,10,20,s,SIP+D2U,,_sip._udp.carrier.test".into(),
            "--naptr-record=carrier.test,20,10,s,SIP+D2U,,_sip._udp.other.test".into(),
            srv("_sip._udp.carrier.test", "b.carrier.test", 5072, 20, 10),
            srv("_sip._udp.carrier.test", "a.carrier.test", 5071, 10, 10),
            srv("_sip._udp.other.test", "a.carrier.test", 5999, 1, 10),
            host("a.carrier.test", "127.0.0.1"),
            host("b.carrier.test", "127.0.0.1"),
            // No NAPTR: the SRV name of UDP.
            srv("_sip._udp.srvonly.test", "a.carrier.test", 5073, 10, 10),
            // Neither: the host's address on 5060.
            host("plain.test", "127.0.0.1"),
        ],
    );
    let r = Resolver::new(&[dns.addr]).expect("resolver");
    let speak = [Transport::Udp];
    assert_eq!(
        r.targets("carrier.test", None, None, &speak).await.unwrap(),
        vec![udp(5071), udp(5072)],
        "NAPTR (lowest order, UDP) -> SRV by priority -> A"
    );
    assert_eq!(
        r.targets("srvonly.test", None, None, &speak).await.unwrap(),
        vec![udp(5073)]
    );
    assert_eq!(
        r.targets("plain.test", None, None, &speak).await.unwrap(),
        vec![udp(5060)]
    );
    assert_eq!(
        r.targets("a.carrier.test", Some(5080), None, &speak)
            .await
            .unwrap(),
        vec![udp(5080)],
        "a port given: A records only"
    );
    let e = r
        .targets("nothing.test", None, None, &speak)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing.test"), "{e}");
}

/// A gateway whose trunk is `name`, looked up in `dns`.
async fn trunk_gateway(dns: &Dnsmasq, name: &str) -> SipGateway {
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e.duecall.test".into();
    cfg.sip.outbound_proxy = Some(name.into());
    cfg.sip.dns_servers = vec![dns.addr];
    SipGateway::start(cfg).await.expect("gateway starts")
}

async fn answered_then_hung_up(gw: &SipGateway, to: &str) -> (Disposition, Duration) {
    let t0 = Instant::now();
    let mut leg = gw.dial(DialRequest::to(to)).await.expect("dial");
    loop {
        match tokio::time::timeout(Duration::from_secs(40), leg.next_event())
            .await
            .expect("an event within 40 s")
            .expect("events until Ended")
        {
            duecall::telephony::leg::LegEvent::Answered { .. } => {
                let took = t0.elapsed();
                leg.send(duecall::telephony::leg::LegCommand::Hangup).await;
                let r = leg.wait_end().await.expect("report");
                return (r.disposition, took);
            }
            duecall::telephony::leg::LegEvent::Ended(r) => return (r.disposition, t0.elapsed()),
            _ => {}
        }
    }
}

/// `trunk.test` served by two servers on 127.0.0.1 (SRV): `first` at
/// priority 10, then `second` at priority 20.
fn two_server_trunk(dir: &std::path::Path, first: u16, second: u16) -> Dnsmasq {
    Dnsmasq::start(
        dir,
        &[
            srv("_sip._udp.trunk.test", "one.trunk.test", first, 10, 10),
            srv("_sip._udp.trunk.test", "two.trunk.test", second, 20, 10),
            host("one.trunk.test", "127.0.0.1"),
            host("two.trunk.test", "127.0.0.1"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_from_the_first_server_fails_over_to_the_next() {
    let dir = scratch("dns_failover_503");
    let mut first = Sipp::uas("uas_503.xml", &dir);
    std::fs::write(dir.join("callee.ulaw"), vec![0xFFu8; 8000]).unwrap();
    let second = Sipp::uas("uas_load.xml", &dir);
    let dns = two_server_trunk(&dir, first.port, second.port);
    let gw = trunk_gateway(&dns, "trunk.test").await;
    let (d, _) = answered_then_hung_up(&gw, "sip:debtor@trunk.test").await;
    assert_eq!(d, Disposition::Answered);
    let ok = tokio::task::spawn_blocking(move || first.finished_ok(Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(ok, "the first server got the INVITE and answered 503");
    assert_eq!(gw.active_dialogs(), 0, "no dialog left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_passed_over() {
    let dir = scratch("dns_failover_silent");
    // Bound, so no ICMP error either: it just never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::fs::write(dir.join("callee.ulaw"), vec![0xFFu8; 8000]).unwrap();
    let second = Sipp::uas("uas_load.xml", &dir);
    let dns = two_server_trunk(&dir, silent_port, second.port);
    let gw = trunk_gateway(&dns, "trunk.test").await;
    let (d, took) = answered_then_hung_up(&gw, "sip:debtor@trunk.test").await;
    assert_eq!(d, Disposition::Answered);
    // FAILOVER_SILENCE (3 s), not the 32 s of the INVITE's Timer B.
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    let mut buf = [0u8; 4096];
    silent.set_nonblocking(true).unwrap();
    let (n, _) = silent
        .recv_from(&mut buf)
        .expect("the silent server got the INVITE");
    assert!(buf[..n].starts_with(b"INVITE "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_name_with_no_sip_server_is_a_clear_error() {
    let dir = scratch("dns_nothing");
    let dns = Dnsmasq::start(&dir, &[host("elsewhere.test", "127.0.0.1")]);
    let gw = trunk_gateway(&dns, "nowhere.test").await;
    match gw.dial(DialRequest::to("sip:debtor@nowhere.test")).await {
        Err(e @ SipError::Resolve(_)) => {
            assert!(e.to_string().contains("nowhere.test"), "{e}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("dialled a trunk that does not exist"),
    }
}
