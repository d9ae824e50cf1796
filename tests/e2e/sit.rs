//! Special information tones in early media (issue 24) against sipp as the
//! callee: a SIT and an announcement in a 183 before a 404 is a dead number
//! (`not-found`, reason `dead-number`) and never dialled again; ringback
//! before a 480 stays `no-answer`; a SIT that never ends is cancelled after
//! the tone, not at the ring timeout. The early media is written at run time
//! from the crate's own SIT synthesizer and espeak-ng: nothing downloaded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use duecall::campaign::cli::{run_campaign_with, RunArgs};
use duecall::campaign::{Progress, Shutdown};
use duecall::config::Config;
use duecall::media::g711::{self, Codec};
use duecall::media::sit::{self, SitKind};
use duecall::outcome::{Disposition, EndedBy, FailReason, RouteKind, SuppressScope};
use duecall::store::AttemptRecord;
use duecall::telephony::leg::{LegCommand, LegEvent};
use duecall::telephony::report::CallReport;
use duecall::telephony::sip::{DialRequest, SipGateway};

use crate::peers::*;

const SIPP_DONE: Duration = Duration::from_secs(15);

fn silence(ms: u32) -> Vec<i16> {
    vec![0; (ms * 8) as usize]
}

/// Writes `pcm` as headerless A-law, what the scenarios' `rtp_stream` plays.
fn write_alaw(path: &Path, pcm: &[i16]) {
    let mut bytes = Vec::new();
    g711::encode(Codec::Pcma, pcm, &mut bytes);
    std::fs::write(path, bytes).expect("write early media");
}

/// `dir/early.alaw`: a SIT of `kind`, then "not in service" spoken.
fn sit_announcement(dir: &Path, kind: SitKind) {
    let wav = dir.join("announcement.wav");
    speak_wav(
        "The number you have dialled is not in service. Please check the number and try again.",
        "en-us",
        &wav,
        0.3,
    );
    let (_, chans) = read_channels(&wav);
    let mut pcm = silence(200);
    pcm.extend(sit::synthesize(kind, -16.0));
    pcm.extend(silence(100));
    pcm.extend(&chans[0]);
    write_alaw(&dir.join("early.alaw"), &pcm);
}

/// `dir/early.alaw`: North American ringback (440 + 480 Hz, 2 s on, then
/// silence) for `ms`.
fn ringback(dir: &Path, ms: u32) {
    let pcm: Vec<i16> = (0..ms * 8)
        .map(|i| {
            if i % 48_000 >= 16_000 {
                return 0;
            }
            let t = i as f32 / 8000.0;
            let v = (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + (2.0 * std::f32::consts::PI * 480.0 * t).sin();
            (3600.0 * v) as i16
        })
        .collect();
    write_alaw(&dir.join("early.alaw"), &pcm);
}

async fn gateway() -> SipGateway {
    let mut cfg = Config::default();
    cfg.sip.callid_suffix = "e2e.duecall.test".into();
    SipGateway::start(cfg).await.expect("gateway starts")
}

/// Dials `sipp` (recording into `dir`) and waits for the report; hangs up
/// after `hold` if it answers.
async fn dial(sipp: &Sipp, dir: &Path) -> CallReport {
    let gw = gateway().await;
    let mut req = DialRequest::to(sipp.uri());
    req.record = Some(dir.join("rec.wav"));
    let mut leg = gw.dial(req).await.expect("dial");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::select! {
            ev = leg.next_event() => match ev.expect("events until Ended") {
                LegEvent::Answered { .. } => {
                    leg.send(LegCommand::Hangup).await;
                }
                LegEvent::Ended(r) => return *r,
                _ => {}
            },
            _ = tokio::time::sleep_until(deadline) => panic!("no report within 60 s"),
        }
    }
}

async fn sipp_done(mut sipp: Sipp) -> (bool, String) {
    tokio::task::spawn_blocking(move || (sipp.finished_ok(SIPP_DONE), sipp.errors()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sit_and_announcement_in_early_media_before_a_404_is_a_dead_number() {
    let dir = scratch("sit-404");
    sit_announcement(&dir, SitKind::Intercept);
    let sipp = Sipp::uas("uas_early_404.xml", &dir);
    let r = dial(&sipp, &dir).await;
    assert_eq!(r.disposition, Disposition::NotFound, "{r:?}");
    assert_eq!(r.reason, Some(FailReason::DeadNumber));
    assert_eq!(r.sit, Some(SitKind::Intercept));
    assert_eq!(r.sip_status, Some(404));
    assert_eq!(r.ended_by, EndedBy::Them);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["disposition"], "not-found");
    assert_eq!(json["reason"], "dead-number");
    assert_eq!(json["sit"], "intercept");
    let (ok, errors) = sipp_done(sipp).await;
    assert!(ok, "sipp did not complete the scenario: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_circuit_sit_before_a_480_is_a_failure_not_a_dead_number() {
    let dir = scratch("sit-nc-480");
    sit_announcement(&dir, SitKind::NoCircuit);
    let sipp = Sipp::uas("uas_early_480.xml", &dir);
    let r = dial(&sipp, &dir).await;
    assert_eq!(
        (r.disposition, r.reason, r.sit, r.sip_status),
        (
            Disposition::Failed,
            Some(FailReason::NoCircuit),
            Some(SitKind::NoCircuit),
            Some(480)
        ),
        "{r:?}"
    );
    let (ok, errors) = sipp_done(sipp).await;
    assert!(ok, "sipp did not complete the scenario: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringback_in_early_media_before_a_480_stays_no_answer() {
    let dir = scratch("sit-ringback-480");
    ringback(&dir, 3000);
    let sipp = Sipp::uas("uas_early_480.xml", &dir);
    let r = dial(&sipp, &dir).await;
    assert_eq!(
        (r.disposition, r.reason, r.sit, r.sip_status),
        (Disposition::NoAnswer, None, None, Some(480)),
        "{r:?}"
    );
    assert!(
        r.rtp.received.packets > 50,
        "the ringback arrived: {:?}",
        r.rtp
    );
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("sit").is_none(), "{json}");
    let (ok, errors) = sipp_done(sipp).await;
    assert!(ok, "sipp did not complete the scenario: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sit_that_never_ends_is_cancelled_after_the_tone_not_at_the_ring_timeout() {
    let dir = scratch("sit-forever");
    sit_announcement(&dir, SitKind::VacantCode);
    let sipp = Sipp::uas("uas_early_sit_forever.xml", &dir);
    let r = dial(&sipp, &dir).await;
    assert_eq!(
        (r.disposition, r.reason, r.sit, r.sip_status, r.ended_by),
        (
            Disposition::NotFound,
            Some(FailReason::DeadNumber),
            Some(SitKind::VacantCode),
            Some(487),
            EndedBy::Us
        ),
        "{r:?}"
    );
    // The tone (~1.1 s) and the grace after it (3 s), far from the 30 s
    // ring timeout.
    let took = (r.ended_at - r.started_at).num_milliseconds();
    assert!(took < 8000, "ended {took} ms after the dial");
    let (ok, errors) = sipp_done(sipp).await;
    assert!(ok, "sipp did not complete the scenario: {errors}");
}

/// 10:00 in Shanghai, five days after the accounts' due date.
const NOW: &str = "2026-11-20T10:00:00+08:00";

fn at(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).expect("test time")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write test file");
    p
}

fn run_args(csv: PathBuf, config: PathBuf, data: PathBuf, now: &str, until: &str) -> RunArgs {
    RunArgs::new(csv, config, data)
        .now(at(now))
        .until(at(until))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_never_dials_a_dead_number_again_and_retries_the_ringing_one() {
    let dir = scratch("sit-campaign");
    let (dead_dir, ring_dir) = (dir.join("dead"), dir.join("ring"));
    std::fs::create_dir_all(&dead_dir).unwrap();
    std::fs::create_dir_all(&ring_dir).unwrap();
    sit_announcement(&dead_dir, SitKind::Intercept);
    ringback(&ring_dir, 3000);
    let dead = Sipp::uas_calls("uas_early_404.xml", &dead_dir, 5, &[]);
    let ring = Sipp::uas_calls("uas_early_480.xml", &ring_dir, 5, &[]);
    let csv = write(
        &dir,
        "accounts.csv",
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         D1,Maria Lopez,+8613800000011,100.00,2026-11-15,cn,Asia/Shanghai,en\n\
         R1,Wei Zhang,+8613800000012,250.00,2026-11-15,cn,Asia/Shanghai,en\n",
    );
    let config = write(
        &dir,
        "duecall.toml",
        &format!(
            "[sip]\nring_timeout_s = 20\n\
             [campaign]\ncalls_per_second = 0\nmax_concurrent = 2\nretry_no_answer_s = 1\nretry_failed_s = 1\n\
             [campaign.dial_uri_by_account]\nD1 = \"{d}\"\nR1 = \"{r}\"\n",
            d = dead.uri(),
            r = ring.uri()
        ),
    );
    let data = dir.join("data");
    let a = run_args(
        csv,
        config.clone(),
        data.clone(),
        NOW,
        "2026-11-20T11:00:00+08:00",
    );
    let summary = tokio::time::timeout(
        Duration::from_secs(180),
        run_campaign_with(&a, Shutdown::default(), Progress::Quiet),
    )
    .await
    .expect("campaign ends within 3 minutes")
    .expect("campaign runs");

    let all = attempts(&data);
    let on =
        |phone: &str| -> Vec<&AttemptRecord> { all.iter().filter(|a| a.phone == phone).collect() };
    let dead_dials = on("+8613800000011");
    assert_eq!(dead_dials.len(), 1, "the dead number is dialled once");
    let d = dead_dials[0];
    assert_eq!(d.disposition, Some(Disposition::NotFound));
    assert_eq!(d.reason.as_deref(), Some("dead-number"));
    assert_eq!(d.sip_status, Some(404));
    let route = d.route.as_ref().expect("a dead number leaves a route");
    assert_eq!(
        (route.kind, route.reason.as_str(), route.scope),
        (
            RouteKind::Suppress,
            "dead-number",
            Some(SuppressScope::Number)
        )
    );
    let json = d.outcome.as_ref().expect("outcome JSON");
    assert_eq!(json["call"]["disposition"], "not-found", "{json}");
    assert_eq!(json["call"]["reason"], "dead-number", "{json}");
    assert_eq!(json["call"]["sit"], "intercept", "{json}");
    assert_eq!(json["route"]["kind"], "suppress", "{json}");

    let ringing = on("+8613800000012");
    assert_eq!(ringing.len(), 3, "cn: 3 dials a day to the ringing number");
    for a in &ringing {
        assert_eq!(a.disposition, Some(Disposition::NoAnswer));
        assert_eq!(a.sip_status, Some(480));
        assert!(a.route.is_none());
        let json = a.outcome.as_ref().expect("outcome JSON");
        assert!(json["call"].get("sit").is_none(), "{json}");
    }
    assert_eq!(summary.scheduler.dials, 4);

    // The next day, a new campaign: the dead number stays suppressed.
    let csv2 = write(
        &dir,
        "accounts2.csv",
        "account_id,name,phone,amount,due_date,jurisdiction,timezone,language\n\
         D1,Maria Lopez,+8613800000011,100.00,2026-11-15,cn,Asia/Shanghai,en\n",
    );
    let b = run_args(
        csv2,
        config,
        data.clone(),
        "2026-11-21T10:00:00+08:00",
        "2026-11-21T11:00:00+08:00",
    );
    let again = tokio::time::timeout(
        Duration::from_secs(60),
        run_campaign_with(&b, Shutdown::default(), Progress::Quiet),
    )
    .await
    .expect("second campaign ends within a minute")
    .expect("second campaign runs");
    assert_eq!(again.scheduler.dials, 0, "{:?}", again.scheduler);
    assert_eq!(
        attempts(&data)
            .iter()
            .filter(|a| a.phone == "+8613800000011")
            .count(),
        1
    );
    drop((dead, ring));
}
