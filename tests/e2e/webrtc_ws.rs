//! SIP over WebSocket (RFC 7118, `[sip] outbound_proxy = "ws://..."`)
//! through kamailio's websocket module (tests/peers/kamailio_ws.cfg): the
//! gateway registers over WebSocket, and a whole reminder conversation goes
//! duecall -> kamailio over WS (digest-authenticated INVITE) -> the
//! simulated debtor over UDP, reaching the route it reaches over UDP
//! (kamailio relays the SDP as it is: RTP flows UDP to UDP); and to a JsSIP
//! browser phone in headless chromium (tests/webrtc) registered over
//! WebSocket, its WebRTC media (ICE, DTLS-SRTP) translated to our plain RTP
//! by rtpengine in user space, or terminated by duecall itself
//! (`webrtc_media = "direct"`, PCMU, or Opus when `[media] codecs` lists
//! it): the phone hears the prompts and answers each with a spoken reply,
//! and the case reaches the promise's route.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use duecall::account::Language;
use duecall::agent::{Agent, AgentPaths, CallOptions};
use duecall::config::{Config, SipTransport, WebRtcMedia};
use duecall::intent::IntentKind;
use duecall::outcome::{Disposition, RouteKind};
use duecall::telephony::sip::SipGateway;

use crate::conversation::{account, now, start_sim};
use crate::peers::*;

/// kamailio with SIP on UDP/TCP `port` and SIP over WebSocket on `ws_port`.
pub struct KamailioWs {
    pub peer: Peer,
    #[allow(dead_code)]
    pub port: u16,
    pub ws_port: u16,
    pub ctl: PathBuf,
}

impl KamailioWs {
    /// Starts it in `dir` with tests/peers/kamailio_ws.cfg.
    pub fn start(dir: &Path) -> KamailioWs {
        for _ in 0..5 {
            let port = free_udp_port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let ws_port = free_tcp_port();
            let ctl = dir.join("kamctl.sock");
            let _ = std::fs::remove_file(&ctl);
            let src = std::fs::read_to_string(root().join("tests/peers/kamailio_ws.cfg"))
                .expect("tests/peers/kamailio_ws.cfg");
            let cfg = src
                .replace("{PORT}", &port.to_string())
                .replace("{WSPORT}", &ws_port.to_string())
                .replace("{CTL}", &ctl.display().to_string());
            std::fs::write(dir.join("kamailio.cfg"), cfg).unwrap();
            let mut cmd = Command::new("kamailio");
            cmd.args(["-DD", "-E", "-f"])
                .arg(dir.join("kamailio.cfg"))
                .arg("-P")
                .arg(dir.join("kamailio.pid"))
                .current_dir(dir);
            let mut peer = Peer::spawn("kamailio", &mut cmd, dir.join("kamailio.log"));
            if wait_udp_bound_by(&mut peer.child, port, Duration::from_secs(10))
                && wait_tcp(ws_port, Duration::from_secs(5))
            {
                let deadline = Instant::now() + Duration::from_secs(5);
                while !ctl.exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return KamailioWs {
                    peer,
                    port,
                    ws_port,
                    ctl,
                };
            }
        }
        panic!(
            "kamailio with the websocket module did not start (run scripts/setup: kamailio-websocket-modules)"
        );
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
}

/// A gateway config speaking SIP over WebSocket to kamailio as `bot`.
fn over_ws(kam: &KamailioWs) -> Config {
    let text = format!(
        "[sip]\noutbound_proxy = \"ws://127.0.0.1:{}/\"\nfrom = \"sip:bot@127.0.0.1\"\nuser = \"bot\"\npassword = \"secret\"\ncallid_suffix = \"e2e-ws.duecall.test\"\n",
        kam.ws_port
    );
    let cfg = Config::from_toml(&text, "ws test").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(cfg.sip_transport(), SipTransport::Ws);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_ws_gateway_registers_at_kamailio_over_websocket() {
    let dir = scratch("ws-register");
    let kam = KamailioWs::start(&dir);
    let mut cfg = over_ws(&kam);
    cfg.sip.register = true;
    cfg.sip.register_expires = 60;
    let gw = SipGateway::start(cfg).await.expect("registered over WS");
    assert_eq!(gw.registered(), Some(true));
    let log = kam.peer.log_text();
    assert!(
        log.contains("REQ REGISTER") && log.contains("(ws)"),
        "kamailio did not get the REGISTER over WebSocket:\n{log}"
    );
    // The Contact goes out with a `.invalid` host; after the 401 the stack
    // puts the address the registrar saw there (Via received/rport), and
    // kamailio binds it to the WebSocket connection it came on.
    let dump = kam.ul_dump().to_ascii_lowercase();
    assert!(
        dump.contains("bot")
            && dump.contains(";transport=ws")
            && dump.contains(&format!("socket: tcp:127.0.0.1:{}", kam.ws_port)),
        "no WebSocket contact for bot in kamailio's location table:\n{dump}"
    );
    gw.shutdown();
    tokio::time::timeout(Duration::from_secs(10), gw.closed())
        .await
        .expect("the gateway stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_ws_promise_to_pay_through_kamailio_over_websocket_reaches_the_pause() {
    crate::ws_conversation::test_log();
    let dir = scratch("ws-promise");
    let kam = KamailioWs::start(&dir);
    let sim = start_sim().await;
    let cfg = over_ws(&kam);
    let gw = Arc::new(SipGateway::start(cfg.clone()).await.expect("gateway"));
    let agent = Agent::new(gw, &cfg, &AgentPaths::under(&root()), &[Language::En]).expect("agent");
    let dial = allowed_dial(&dir.join("data"), &account("A-1"), now());
    let mut opts = CallOptions::new(&sim.uri_for("promise"), now(), dial);
    opts.record_dir = Some(dir.clone());
    opts.case_id = Some("case-1".into());
    let out = tokio::time::timeout(Duration::from_secs(150), agent.call(&account("A-1"), opts))
        .await
        .expect("conversation ends")
        .expect("conversation runs");
    let rec = sim
        .wait_ended(&out.call.call_id, Duration::from_secs(10))
        .await
        .expect("the debtor saw the call");
    sim.shutdown();
    let log = kam.peer.log_text();
    assert!(
        log.contains("REQ INVITE") && log.contains("(ws)"),
        "the INVITE did not come over WebSocket:\n{log}"
    );
    assert!(
        log.contains("REQ BYE") || log.contains("REQ ACK"),
        "in-dialog requests did not pass kamailio:\n{log}"
    );
    assert_eq!(
        out.call.disposition,
        Disposition::Answered,
        "{:?}",
        out.call
    );
    assert!(
        out.turns
            .iter()
            .filter_map(|t| t.intent)
            .any(|i| i == IntentKind::PromiseToPay),
        "{:#?}",
        out.turns
    );
    let r = out.route.expect("route");
    assert_eq!(r.kind, RouteKind::Pause, "{r:?}");
    assert_eq!(
        r.until.unwrap().date_naive(),
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        "{r:?}"
    );
    assert!(
        rec.prompts_heard >= 2 && rec.lines_said.len() >= 2,
        "the debtor heard prompts and answered: {rec:?}"
    );
    let rec_path = out.call.recording.expect("recording");
    assert!(rec_path.is_file(), "the two-channel recording");
}

/// rtpengine in user space (`--table=-1`) on 127.0.0.1, its ng control
/// protocol on `ng_port`.
struct Rtpengine {
    #[allow(dead_code)]
    peer: Peer,
    ng_port: u16,
}

impl Rtpengine {
    fn start(dir: &Path) -> Rtpengine {
        let ng_port = free_udp_port();
        // Media ports near a free one: rtpengine skips any taken in its range.
        let base = free_udp_pair().clamp(20_000, 60_000);
        let mut cmd = Command::new("rtpengine");
        cmd.args([
            "--foreground",
            "--log-stderr",
            "--config-file=none",
            "--table=-1",
        ])
        .args(["--interface=127.0.0.1", "--log-level=6"])
        .arg(format!("--listen-ng=127.0.0.1:{ng_port}"))
        .arg(format!("--port-min={base}"))
        .arg(format!("--port-max={}", base + 200))
        .arg("--pidfile")
        .arg(dir.join("rtpengine.pid"));
        let mut peer = Peer::spawn("rtpengine", &mut cmd, dir.join("rtpengine.log"));
        assert!(
            wait_udp_bound_by(&mut peer.child, ng_port, Duration::from_secs(10)),
            "rtpengine did not start (run scripts/setup: rtpengine-daemon):\n{}",
            peer.log_text()
        );
        Rtpengine { peer, ng_port }
    }
}

/// The browser phone's result (tests/webrtc/phone.html's `RESULT`).
#[derive(Debug, serde::Deserialize)]
struct PhoneResult {
    registered: bool,
    confirmed: bool,
    ended: Option<String>,
    max_rms: f64,
    loud_ms: u64,
    replies_sent: u32,
    prompts_heard: u32,
    /// The page's own log (shown when an assertion fails).
    events: Vec<String>,
    /// What the browser received and sent (getStats' codec mimeType, e.g.
    /// `audio/opus`) and how many packets.
    #[serde(default)]
    rx_codec: Option<String>,
    #[serde(default)]
    tx_codec: Option<String>,
    #[serde(default)]
    rx_packets: u64,
    #[serde(default)]
    rx_lost: i64,
    #[serde(default)]
    tx_packets: u64,
}

/// Who terminates the browser's WebRTC media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrowserMedia {
    /// rtpengine beside kamailio (`-A WITH_RTPENGINE`), duecall speaks plain RTP.
    Rtpengine,
    /// duecall itself (`[sip] webrtc_media = "direct"`), kamailio relays the
    /// SDP; the default `[media] codecs` (PCMU, PCMA): the browser takes PCMU.
    Direct,
    /// As `Direct` with `[media] codecs = ["opus", "PCMU", "PCMA"]`: the
    /// browser takes Opus, duecall transcodes it to the session's PCMU.
    DirectOpus,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_ws_browser_phone_hears_the_prompts_and_its_promise_reaches_the_pause() {
    browser_phone_promise(BrowserMedia::Rtpengine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_ws_direct_media_browser_phone_hears_the_prompts_and_its_promise_reaches_the_pause()
{
    browser_phone_promise(BrowserMedia::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_ws_direct_opus_browser_phone_hears_the_prompts_and_its_promise_reaches_the_pause() {
    browser_phone_promise(BrowserMedia::DirectOpus).await;
}

/// The browser phones run one at a time: a headless chromium decodes,
/// analyses and encodes audio in real time, and three of them beside the
/// rest of the suite on a 2-core machine load it most. (A CI run's
/// direct-media phone had its promise heard, then its last turns went
/// unanswered and the call went to a person instead of the pause; alone,
/// and beside the speech tests, it passes. The failure now prints the
/// phone's timed events.)
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A JsSIP phone in headless chromium registered at kamailio over WS takes
/// duecall's call, hears the prompts, answers each with a spoken reply, and
/// the case reaches the promise's route, its media terminated by `media`.
async fn browser_phone_promise(media: BrowserMedia) {
    crate::ws_conversation::test_log();
    let _one = ONE_BROWSER.lock().await;
    let web = root().join("tests/webrtc");
    assert!(
        web.join("node_modules/jssip").is_dir() && web.join("jssip.bundle.js").is_file(),
        "tests/webrtc is not installed: run scripts/setup (npm ci + the JsSIP bundle)"
    );
    let dir = scratch(match media {
        BrowserMedia::Rtpengine => "ws-browser",
        BrowserMedia::Direct => "ws-browser-direct",
        BrowserMedia::DirectOpus => "ws-browser-opus",
    });
    let rtp = (media == BrowserMedia::Rtpengine).then(|| Rtpengine::start(&dir));
    let kam = {
        // kamailio with the rtpengine branch (`-A WITH_RTPENGINE`).
        let port = free_udp_port();
        let ws_port = free_tcp_port();
        let ctl = dir.join("kamctl.sock");
        let src = std::fs::read_to_string(root().join("tests/peers/kamailio_ws.cfg"))
            .expect("tests/peers/kamailio_ws.cfg");
        let cfg = src
            .replace("{PORT}", &port.to_string())
            .replace("{WSPORT}", &ws_port.to_string())
            .replace(
                "{NGPORT}",
                &rtp.as_ref().map_or(0, |r| r.ng_port).to_string(),
            )
            .replace("{CTL}", &ctl.display().to_string());
        std::fs::write(dir.join("kamailio.cfg"), cfg).unwrap();
        let mut cmd = Command::new("kamailio");
        cmd.args(["-DD", "-E"]);
        if rtp.is_some() {
            cmd.args(["-A", "WITH_RTPENGINE"]);
        }
        cmd.arg("-f")
            .arg(dir.join("kamailio.cfg"))
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .current_dir(&dir);
        let mut peer = Peer::spawn("kamailio", &mut cmd, dir.join("kamailio.log"));
        assert!(
            wait_udp_bound_by(&mut peer.child, port, Duration::from_secs(10))
                && wait_tcp(ws_port, Duration::from_secs(5)),
            "kamailio did not start:\n{}",
            peer.log_text()
        );
        KamailioWs {
            peer,
            port,
            ws_port,
            ctl,
        }
    };
    // The debtor's replies, one per prompt (as the sim's `promise` persona).
    let replies: Vec<PathBuf> = [
        "Hello?",
        "Yes, this is me.",
        "I can pay on Friday.",
        "Yes, that's right.",
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| {
        let wav = dir.join(format!("reply-{i}.wav"));
        speak_wav(text, "en-us", &wav, 0.2);
        wav
    })
    .collect();
    let result_path = dir.join("phone.json");
    let mut cmd = Command::new("node");
    cmd.arg(web.join("phone.mjs"))
        .arg(kam.ws_port.to_string())
        .args(["webuser", "webpw"])
        .arg(&result_path)
        .arg("120000")
        .args(&replies)
        .current_dir(&web);
    let mut phone = Peer::spawn("phone", &mut cmd, dir.join("phone.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !phone.log_text().contains("READY") {
        assert!(
            Instant::now() < deadline && phone.child.try_wait().ok().flatten().is_none(),
            "the browser phone did not register:\n{}",
            phone.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut cfg = over_ws(&kam);
    if media != BrowserMedia::Rtpengine {
        cfg.sip.webrtc_media = WebRtcMedia::Direct;
    }
    if media == BrowserMedia::DirectOpus {
        cfg.media.codecs = vec!["opus".into(), "PCMU".into(), "PCMA".into()];
        cfg.validate().expect("opus in [media] codecs");
    }
    let gw = Arc::new(SipGateway::start(cfg.clone()).await.expect("gateway"));
    let agent = Agent::new(gw, &cfg, &AgentPaths::under(&root()), &[Language::En]).expect("agent");
    let dial = allowed_dial(&dir.join("data"), &account("A-1"), now());
    let to = format!("sip:webuser@127.0.0.1:{}", kam.port);
    let mut opts = CallOptions::new(&to, now(), dial);
    opts.record_dir = Some(dir.clone());
    opts.case_id = Some("case-1".into());
    let out = tokio::time::timeout(Duration::from_secs(150), agent.call(&account("A-1"), opts))
        .await
        .expect("conversation ends")
        .expect("conversation runs");
    let status = tokio::task::spawn_blocking(move || {
        let s = phone.wait_timeout(Duration::from_secs(20));
        (s, phone.log_text())
    })
    .await
    .unwrap();
    let phone_log = status.1;
    let res: PhoneResult = serde_json::from_str(
        &std::fs::read_to_string(&result_path).unwrap_or_else(|e| panic!("{e}: {phone_log}")),
    )
    .unwrap_or_else(|e| panic!("{e}: {phone_log}"));
    let turns = format!("{:#?}", out.turns);
    assert!(res.registered && res.confirmed, "{res:?}\n{phone_log}");
    assert!(
        res.ended.is_some(),
        "the phone saw the call end: {res:?}\n{phone_log}"
    );
    // Non-silent audio reached the browser: the prompts, seconds of them.
    assert!(
        res.max_rms > 0.02 && res.loud_ms >= 3000,
        "the browser heard (nearly) nothing: {res:?}\n{phone_log}"
    );
    assert!(
        res.prompts_heard >= 3 && res.replies_sent >= 3,
        "{res:?}\n{turns}"
    );
    assert_eq!(
        out.call.disposition,
        Disposition::Answered,
        "{:?}",
        out.call
    );
    assert!(
        out.turns
            .iter()
            .filter_map(|t| t.intent)
            .any(|i| i == IntentKind::PromiseToPay),
        "{turns}\n{res:?}"
    );
    let r = out.route.expect("route");
    assert_eq!(r.kind, RouteKind::Pause, "{r:?}\n{turns}\n{res:?}");
    assert_eq!(
        r.until.unwrap().date_naive(),
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        "{r:?}"
    );
    let rec_path = out.call.recording.expect("recording");
    assert!(rec_path.is_file(), "the two-channel recording");
    let (ours, theirs) = channel_peaks(&rec_path);
    assert!(
        ours > 3000 && theirs > 3000,
        "the recording holds both sides (peaks: ours {ours}, the phone's {theirs})"
    );
    let log = kam.peer.log_text();
    assert!(
        log.contains("REQ INVITE") && log.contains("(ws)"),
        "the INVITE did not come over WebSocket:\n{log}"
    );
    match &rtp {
        Some(rtp) => assert!(
            rtp.peer.log_text().contains("DTLS"),
            "rtpengine did no DTLS:\n{}",
            rtp.peer.log_text()
        ),
        None => {
            // No relay ran: the phone's ICE and DTLS-SRTP ended at duecall.
            // and the offer the phone got was duecall's own (ICE-lite).
            assert!(
                res.events
                    .iter()
                    .any(|e| e.contains("offer UDP/TLS/RTP/SAVPF ice-lite")),
                "{res:?}"
            );
        }
    }
    // The codec both ways, as the browser's getStats and our report say.
    let (report, mime) = match media {
        BrowserMedia::DirectOpus => ("opus", "audio/opus"),
        _ => ("PCMU", "audio/PCMU"),
    };
    assert_eq!(
        out.call.codec.as_deref(),
        Some(report),
        "the report's codec"
    );
    assert_eq!(res.rx_codec.as_deref(), Some(mime), "{res:?}");
    assert_eq!(res.tx_codec.as_deref(), Some(mime), "{res:?}");
    assert!(
        res.rx_packets > 500 && res.tx_packets > 500,
        "seconds of packets both ways: {res:?}"
    );
    eprintln!(
        "browser phone ({media:?}): codec {report}, rx {} packets ({} lost), tx {}, max rms {:.3}, loud {} ms, replies {}, prompts {}",
        res.rx_packets, res.rx_lost, res.tx_packets, res.max_rms, res.loud_ms, res.replies_sent, res.prompts_heard
    );
}

/// Peak absolute sample of each channel of a two-channel recording
/// (channel 0: what we sent, channel 1: what we heard).
fn channel_peaks(path: &Path) -> (i32, i32) {
    let mut r = hound::WavReader::open(path).expect("the recording opens");
    assert_eq!(r.spec().channels, 2, "two channels");
    let mut peaks = (0i32, 0i32);
    for (i, s) in r.samples::<i16>().enumerate() {
        let v = i32::from(s.expect("a sample")).abs();
        if i % 2 == 0 {
            peaks.0 = peaks.0.max(v);
        } else {
            peaks.1 = peaks.1.max(v);
        }
    }
    peaks
}
