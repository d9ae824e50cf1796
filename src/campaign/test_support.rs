//! Test fixtures shared by the campaign modules' unit tests: scratch
//! directories, an account, the moment, a call report and outcome.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::account::Account;
use crate::agent::AttemptOutcome as AgentOutcome;
use crate::dialogue::Escalation;
use crate::dialogue::{PromptId, Turn};
use crate::intent::IntentKind;
use crate::outcome::{Disposition, EndedBy, Route};
use crate::telephony::report::{CallReport, RtpTotals, TransferReport};

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "duecall-campaign-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn account(id: &str, phone: &str, alt: &[&str]) -> Account {
    Account {
        account_id: id.into(),
        name: "Maria Lopez".into(),
        phone: phone.into(),
        amount: Decimal::new(12550, 2),
        currency: Some("CNY".into()),
        due_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 15).unwrap(),
        timezone: Some("Asia/Shanghai".into()),
        language: crate::account::Language::En,
        jurisdiction: Some("cn".into()),
        alt_phones: alt.iter().map(|s| s.to_string()).collect(),
        days_past_due: None,
        agent_uri: None,
        caller_id: None,
    }
}

/// 10:00 in Shanghai on a Friday, day 5 after the due date.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap()
}

pub fn report(disposition: Disposition, transfer: Option<TransferReport>) -> CallReport {
    CallReport {
        call_id: "c1".into(),
        to: "sip:x@127.0.0.1".into(),
        disposition,
        reason: None,
        sip_status: Some(200),
        codec: Some("PCMU".into()),
        started_at: t0(),
        answered_at: Some(t0()),
        ended_at: t0(),
        duration_ms: 1000,
        ended_by: EndedBy::Them,
        rtp: RtpTotals::default(),
        dtmf: vec![],
        transfer,
        recording: Some(PathBuf::from("/rec/A1-7-x.wav")),
        rtcp: None,
        sit: None,
        trunks: Vec::new(),
        pacing: None,
    }
}

pub fn turn(prompt: PromptId, heard: Option<&str>, intent: Option<IntentKind>) -> Turn {
    Turn {
        prompt,
        prompt_start_ms: 100,
        played_ms: 2000,
        finished: true,
        cut_at_ms: None,
        heard: heard.map(str::to_string),
        intent,
        confidence: intent.map(|_| 0.9),
        asr_confidence: None,
        reason: None,
        start_ms: heard.map(|_| 2500),
        end_ms: heard.map(|_| 3500),
        ignored: vec![],
    }
}

pub fn outcome(
    route: Option<Route>,
    transfer: Option<TransferReport>,
    escalations: Vec<Escalation>,
) -> AgentOutcome {
    AgentOutcome {
        call: report(Disposition::Answered, transfer),
        account_id: "A1".into(),
        attempt_id: Some(7),
        policy: None,
        turns: vec![
            turn(
                PromptId::RightParty,
                Some("yes"),
                Some(IntentKind::IdentityConfirmed),
            ),
            turn(
                PromptId::Reminder,
                Some("i lost my job"),
                Some(IntentKind::Hardship),
            ),
        ],
        route,
        amd: None,
        identity_confirmed: true,
        intent: Some(IntentKind::Hardship),
        escalations,
        conversation: true,
        cut_short: None,
        refused_prompts: vec![],
        reply_timings: vec![],
        asr_frames_dropped: 0,
    }
}

pub fn agent_route() -> Route {
    Route::agent("hardship")
}
