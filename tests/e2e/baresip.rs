//! Calls to baresip (a real softphone) directly, and behind kamailio with
//! 407 proxy authentication: audio both ways, checked in both recordings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use duecall::config::Config;
use duecall::outcome::Disposition;
use duecall::telephony::leg::{LegCommand, LegEvent};
use duecall::telephony::sip::{DialRequest, SipGateway};

use crate::peers::*;

pub struct Baresip {
    pub peer: Peer,
    pub sip_port: u16,
}

/// Starts baresip answering automatically and playing `audio` (a WAV),
/// recording what it hears into `dir/rec`. `account` is the accounts line
/// with `{port}` for its SIP port.
pub fn start_baresip(dir: &Path, audio: &Path, account: &str, sip_port: u16) -> Baresip {
    start_baresip_with(dir, audio, account, sip_port, |c| c)
}

/// [`start_baresip`] with its config text passed through `edit` first (to
/// load more modules or change a setting).
pub fn start_baresip_with(
    dir: &Path,
    audio: &Path,
    account: &str,
    sip_port: u16,
    edit: impl FnOnce(String) -> String,
) -> Baresip {
    spawn_baresip(dir, audio, account, sip_port, edit, &[])
}

/// [`start_baresip_with`] with extra command-line arguments for baresip
/// (`-s`: its SIP trace in the log, to check the headers it received).
pub fn spawn_baresip(
    dir: &Path,
    audio: &Path,
    account: &str,
    sip_port: u16,
    edit: impl FnOnce(String) -> String,
    args: &[&str],
) -> Baresip {
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let rtp = free_udp_pair();
    // The SIP and control ports are filled in per attempt: baresip also
    // binds TCP and TLS next to its SIP port, and under a loaded suite
    // another test can take one of them between our check and its bind.
    let config = format!(
        "poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:@SIP_PORT@\nsip_trans_def\t\tudp\n\
         call_local_timeout\t120\ncall_max_calls\t\t4\naudio_player\t\tnone\n\
         audio_source\t\taufile,{audio}\naudio_alert\t\tnone\naudio_level\t\tno\n\
         ausrc_format\t\ts16\nauplay_format\t\ts16\nrtp_tos\t\t\t0\nrtp_ports\t\t{rtp}-{rtp_hi}\n\
         rtcp_mux\t\tno\njitter_buffer_delay\t1-5\ndns_server\t\t127.0.0.1:53\nnet_interface\t\t127.0.0.1\n\
         module_path\t\t/usr/lib/baresip/modules\nmodule\t\t\tg711.so\nmodule\t\t\taufile.so\n\
         module\t\t\tsndfile.so\nmodule\t\t\tctrl_tcp.so\nmodule_app\t\taccount.so\nmodule_app\t\tmenu.so\n\
         ctrl_tcp_listen\t\t127.0.0.1:@CTRL_PORT@\nsnd_path\t\t{rec}\n",
        audio = audio.display(),
        rtp_hi = rtp + 20,
        rec = rec.display()
    );
    let config = edit(config);
    let mut sip_port = sip_port;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ctrl = free_tcp_port();
        std::fs::write(
            dir.join("config"),
            config
                .replace("@SIP_PORT@", &sip_port.to_string())
                .replace("@CTRL_PORT@", &ctrl.to_string()),
        )
        .unwrap();
        std::fs::write(
            dir.join("accounts"),
            account.replace("{port}", &sip_port.to_string()) + "\n",
        )
        .unwrap();
        std::fs::write(dir.join("contacts"), "").unwrap();
        let mut cmd = Command::new("baresip");
        cmd.args(args).arg("-f").arg(dir).current_dir(dir);
        let peer = Peer::spawn("baresip", &mut cmd, dir.join("baresip.log"));
        if wait_tcp(ctrl, Duration::from_secs(10)) {
            return Baresip { peer, sip_port };
        }
        let log = peer.log_text();
        drop(peer);
        // A port taken by another test: once more on fresh ports.
        assert!(
            attempt < 3 && log.contains("Address already in use"),
            "baresip did not start: {log}"
        );
        sip_port = free_udp_port();
    }
}

/// baresip's recording of what it heard (sndfile writes `*-dec.wav`).
pub fn baresip_heard(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("rec"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().map(|e| e == "wav").unwrap_or(false))
        .collect();
    found.sort();
    // Prefer the decoder-side file (what came in from the network).
    found
        .iter()
        .find(|p| p.to_string_lossy().contains("dec"))
        .cloned()
        .or_else(|| found.first().cloned())
}

pub fn tone(seconds: f64) -> Arc<[i16]> {
    (0..(8000.0 * seconds) as usize)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 600.0 / 8000.0).sin() * 9000.0) as i16)
        .collect::<Vec<_>>()
        .into()
}

/// Plays a 2 s tone once answered, hangs up after `hold`; returns the report.
pub async fn call_playing(
    gw: &SipGateway,
    req: DialRequest,
    hold: Duration,
) -> duecall::telephony::report::CallReport {
    let mut leg = gw.dial(req).await.expect("dial");
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::select! {
            ev = leg.next_event() => match ev.expect("events") {
                LegEvent::Answered { .. } => {
                    leg.send(LegCommand::Play { id: "tone".into(), pcm: tone(2.0) }).await;
                    deadline = tokio::time::Instant::now() + hold;
                }
                LegEvent::Ended(r) => return *r,
                _ => {}
            },
            _ = tokio::time::sleep_until(deadline) => {
                leg.send(LegCommand::Hangup).await;
                deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            }
        }
    }
}

pub fn check_audio_both_ways(rec: &Path, bdir: &Path, callee_speech_ms: u64) {
    let (ch, chans) = read_channels(rec);
    assert_eq!(ch, 2);
    let heard = loud_ms(&chans[1], 300.0);
    // baresip plays the file once from the answer: what we heard is about as
    // long as the speech in it (give or take jitter-buffer start and edges).
    assert!(
        heard + 600 >= callee_speech_ms && heard <= callee_speech_ms + 600,
        "right channel loud for {heard} ms, the callee's file has {callee_speech_ms} ms of speech"
    );
    let b = baresip_heard(bdir).expect("baresip wrote a recording");
    let (_, bch) = read_channels(&b);
    let ours = bch.iter().map(|c| loud_ms(c, 1000.0)).max().unwrap_or(0);
    assert!(
        ours >= 1500,
        "baresip's recording holds our 2 s tone (loud for {ours} ms): {}",
        b.display()
    );
}

pub fn speech_ms(wav: &Path) -> u64 {
    let (_, ch) = read_channels(wav);
    loud_ms(&ch[0], 300.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_direct_hears_us_and_we_record_what_it_played() {
    let dir = scratch("baresip-direct");
    let audio = dir.join("callee.wav");
    // Padded with silence: aufile hangs up at the end of its file.
    speak_wav(
        "Hello, you have reached the callee. I am listening to you now.",
        "en-us",
        &audio,
        6.0,
    );
    let spoken = speech_ms(&audio);
    let port = free_udp_port();
    let b = start_baresip(&dir, &audio, "<sip:callee@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=PCMU/8000/1,PCMA/8000/1", port);
    let gw = SipGateway::start(Config::default()).await.unwrap();
    let mut req = DialRequest::to(format!("sip:callee@127.0.0.1:{}", b.sip_port));
    let rec = dir.join("ours.wav");
    req.record = Some(rec.clone());
    let r = call_playing(&gw, req, Duration::from_millis(4500)).await;
    assert_eq!(
        r.disposition,
        Disposition::Answered,
        "{r:?}\n{}",
        b.peer.log_text()
    );
    drop(b);
    check_audio_both_ways(&rec, &dir, spoken);
}

fn kamailio_cfg(port: u16, dir: &Path) -> String {
    let src = std::fs::read_to_string(root().join("tests/peers/kamailio.cfg"))
        .expect("tests/peers/kamailio.cfg");
    src.replace("{PORT}", &port.to_string())
        .replace("{CTL}", &dir.join("kamctl.sock").display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_behind_kamailio_with_407_proxy_auth() {
    let dir = scratch("kamailio");
    let kport = free_udp_port();
    std::fs::write(dir.join("kamailio.cfg"), kamailio_cfg(kport, &dir)).unwrap();
    let mut cmd = Command::new("kamailio");
    cmd.args(["-DD", "-E", "-f"])
        .arg(dir.join("kamailio.cfg"))
        .args(["-P"])
        .arg(dir.join("kamailio.pid"))
        .current_dir(&dir);
    let kam = Peer::spawn("kamailio", &mut cmd, dir.join("kamailio.log"));
    assert!(
        wait_udp_bound(kport, Duration::from_secs(10)),
        "kamailio did not start: {}",
        kam.log_text()
    );

    let bdir = dir.join("baresip");
    std::fs::create_dir_all(&bdir).unwrap();
    let audio = bdir.join("callee.wav");
    speak_wav(
        "Hello, this is the callee behind the proxy. Go ahead please.",
        "en-us",
        &audio,
        6.0,
    );
    let spoken = speech_ms(&audio);
    let bport = free_udp_port();
    let account = format!(
        "<sip:callee@127.0.0.1:{kport}>;auth_pass=calleepw;regint=300;answermode=auto;audio_codecs=PCMU/8000/1,PCMA/8000/1"
    );
    let b = start_baresip(&bdir, &audio, &account, bport);
    // Wait for the registration to land in kamailio's location table.
    let registered = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        kam.log_text().contains("REQ REGISTER") && b.peer.log_text().contains("200 OK")
    });
    assert!(
        registered,
        "baresip did not register: {}\n{}",
        b.peer.log_text(),
        kam.log_text()
    );

    let mut cfg = Config::default();
    cfg.sip.outbound_proxy = Some(format!("127.0.0.1:{kport}"));
    let gw = SipGateway::start(cfg).await.unwrap();
    let mut req = DialRequest::to(format!("sip:callee@127.0.0.1:{kport}"));
    req.from = Some(format!("sip:bot@127.0.0.1:{kport}"));
    req.credentials = Some(("bot".into(), "secret".into()));
    let rec = dir.join("ours.wav");
    req.record = Some(rec.clone());
    let r = call_playing(&gw, req, Duration::from_millis(4500)).await;
    assert_eq!(
        r.disposition,
        Disposition::Answered,
        "{r:?}\n{}",
        kam.log_text()
    );
    drop(b);
    drop(kam);
    check_audio_both_ways(&rec, &bdir, spoken);
}
