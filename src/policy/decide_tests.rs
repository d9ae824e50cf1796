//! Tests of the gate: worked examples for each rule, then property tests that
//! compare `decide` with an independent brute-force checker.

// The checker spells the rules as COLLECTIONS.md words them ("the new call
// would be at most the 7th": `c + 1 <= m`), not as clippy would simplify them.
#![allow(clippy::int_plus_one, clippy::unnecessary_unwrap)]

use super::*;
use crate::outcome::Disposition;
use crate::outcome::SuppressScope;
use crate::policy::config::RollingCap;
use crate::policy::decision::Suppression;
use crate::policy::holds::{Hold, HoldKind};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::{America, Asia, Australia, Europe, Pacific};
use proptest::prelude::*;

fn acct(jur: &str, phone: &str, due: NaiveDate) -> Account {
    Account {
        account_id: "A1".into(),
        name: "Test Person".into(),
        phone: phone.into(),
        amount: rust_decimal::Decimal::new(12550, 2),
        currency: None,
        due_date: due,
        timezone: None,
        language: Default::default(),
        jurisdiction: Some(jur.into()),
        alt_phones: vec![],
        days_past_due: None,
        agent_uri: None,
        caller_id: None,
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn at<Z: TimeZone>(z: &Z, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    z.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn rec(phone: &str, t: DateTime<Utc>, conversation: bool) -> PastAttempt {
    PastAttempt {
        account_id: "A1".into(),
        phone: phone.into(),
        at: t,
        disposition: if conversation {
            Disposition::Answered
        } else {
            Disposition::NoAnswer
        },
        conversation,
    }
}

fn rule<'a>(d: &'a PolicyDecision, name: &str) -> &'a RuleCheck {
    d.rules
        .iter()
        .find(|r| r.rule == name)
        .unwrap_or_else(|| panic!("no rule {name} in {:?}", d.rules))
}

const LA_PHONE: &str = "+14155550100";
const CN_PHONE: &str = "+8613812345678";

#[test]
fn cn_third_attempt_today_is_the_last_one_allowed() {
    let cfg = PolicyConfig::default();
    let a = acct("cn", CN_PHONE, ymd(2026, 11, 18));
    let z = [Asia::Shanghai];
    let now = at(&Asia::Shanghai, 2026, 11, 20, 14, 5);
    let mut h = vec![
        rec(CN_PHONE, at(&Asia::Shanghai, 2026, 11, 20, 9, 0), false),
        rec(CN_PHONE, at(&Asia::Shanghai, 2026, 11, 20, 11, 0), false),
    ];
    let d = decide(&a, &z, &h, &AccountState::default(), &cfg, now);
    assert!(d.allowed(), "{:?}", d.rules);
    assert_eq!(
        rule(&d, "attempts_per_number_per_day").detail,
        "cn: 2 of 3 attempts today on +8**********78"
    );
    let hard = rule(&d, "hard_cap_per_number_per_day");
    assert_eq!(
        hard.detail,
        "cn: 2 of hard cap 6 attempts today on +8**********78"
    );
    assert_eq!(
        hard.figures.as_ref().map(|f| (f.count, f.limit, f.days)),
        Some((Some(2), Some(6), Some(1)))
    );
    assert_eq!(d.next_allowed_at, Some(now));
    h.push(rec(
        CN_PHONE,
        at(&Asia::Shanghai, 2026, 11, 20, 13, 0),
        false,
    ));
    let d = decide(&a, &z, &h, &AccountState::default(), &cfg, now);
    assert_eq!(d.decision, Decision::Deny);
    // Yesterday's calls do not count: 08:00 tomorrow.
    assert_eq!(
        d.next_allowed_at,
        Some(at(&Asia::Shanghai, 2026, 11, 21, 8, 0))
    );
}

#[test]
fn every_rule_is_reported_even_when_the_first_fails() {
    let cfg = PolicyConfig::default();
    let a = acct("cn", CN_PHONE, ymd(2026, 11, 18));
    let st = AccountState {
        suppressions: vec![Suppression {
            scope: SuppressScope::Account,
            number: None,
            reason: "stop_calling".into(),
        }],
        ..Default::default()
    };
    let d = decide(
        &a,
        &[Asia::Shanghai],
        &[],
        &st,
        &cfg,
        at(&Asia::Shanghai, 2026, 11, 20, 14, 0),
    );
    let names: Vec<&str> = d.rules.iter().map(|r| r.rule.as_ref()).collect();
    for n in [
        "jurisdiction",
        "suppression",
        "stage",
        "pause",
        "callback",
        "window",
        "number_available",
        "attempts_per_number_per_day",
        "hard_cap_per_number_per_day",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(!rule(&d, "suppression").passed);
    assert!(rule(&d, "window").passed);
    assert_eq!(d.next_allowed_at, None);
}

#[test]
fn us_seven_in_seven_rolls_out_at_local_midnight() {
    let cfg = PolicyConfig::default();
    let a = acct("us", LA_PHONE, ymd(2026, 6, 1));
    let z = [America::Los_Angeles];
    // One call a day on June 2..=8; June 8 is the 7th day of the window.
    let h: Vec<_> = (2..=8)
        .map(|d| {
            rec(
                LA_PHONE,
                at(&America::Los_Angeles, 2026, 6, d, 10, 0),
                false,
            )
        })
        .collect();
    let now = at(&America::Los_Angeles, 2026, 6, 8, 15, 0);
    let d = decide(&a, &z, &h, &AccountState::default(), &cfg, now);
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(
        rule(&d, "attempts_in_7_days")
            .figures
            .as_ref()
            .unwrap()
            .count,
        Some(7)
    );
    // June 9 drops June 2: back to 6 of 7, from 08:00.
    assert_eq!(
        d.next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 9, 8, 0))
    );
}

#[test]
fn us_no_call_for_seven_days_after_a_conversation() {
    let cfg = PolicyConfig::default();
    let a = acct("us", LA_PHONE, ymd(2026, 6, 1));
    let z = [America::Los_Angeles];
    let h = vec![rec(
        LA_PHONE,
        at(&America::Los_Angeles, 2026, 6, 3, 20, 50),
        true,
    )];
    let day7 = at(&America::Los_Angeles, 2026, 6, 9, 12, 0);
    let d = decide(&a, &z, &h, &AccountState::default(), &cfg, day7);
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(
        rule(&d, "quiet_after_conversation")
            .figures
            .as_ref()
            .unwrap()
            .day,
        Some(7)
    );
    assert_eq!(
        d.next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 10, 8, 0))
    );
}

#[test]
fn stage_day_zero_waits_and_after_the_last_bot_day_goes_to_humans() {
    let cfg = PolicyConfig::default();
    let a = acct("uk", "+442079460000", ymd(2026, 6, 10));
    let z = [Europe::London];
    let d = decide(
        &a,
        &z,
        &[],
        &AccountState::default(),
        &cfg,
        at(&Europe::London, 2026, 6, 10, 12, 0),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert!(rule(&d, "stage").detail.contains("not yet due"));
    assert_eq!(
        d.next_allowed_at,
        Some(at(&Europe::London, 2026, 6, 11, 8, 0))
    );
    assert!(!d.human_queue);
    let d = decide(
        &a,
        &z,
        &[],
        &AccountState::default(),
        &cfg,
        at(&Europe::London, 2026, 6, 25, 12, 0),
    );
    assert_eq!(d.decision, Decision::Allow, "day 15 is the last bot day");
    let d = decide(
        &a,
        &z,
        &[],
        &AccountState::default(),
        &cfg,
        at(&Europe::London, 2026, 6, 26, 12, 0),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert!(d.human_queue);
    assert_eq!(d.next_allowed_at, None);
}

#[test]
fn au_weekend_window_and_good_friday() {
    let cfg = PolicyConfig::default();
    let a = acct("au", "+61298765432", ymd(2026, 3, 30));
    let z = [Australia::Sydney];
    // Saturday 4 April 08:00: weekend window opens at 09:00.
    let sat = at(&Australia::Sydney, 2026, 4, 4, 8, 0);
    let d = decide(&a, &z, &[], &AccountState::default(), &cfg, sat);
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(
        d.next_allowed_at,
        Some(at(&Australia::Sydney, 2026, 4, 4, 9, 0))
    );
    // Good Friday 3 April, 10:00: holiday; Saturday 09:00 next.
    let fri = at(&Australia::Sydney, 2026, 4, 3, 10, 0);
    let d = decide(&a, &z, &[], &AccountState::default(), &cfg, fri);
    assert!(!rule(&d, "holiday").passed);
    assert_eq!(
        d.next_allowed_at,
        Some(at(&Australia::Sydney, 2026, 4, 4, 9, 0))
    );
    // Weekday 07:30 opening.
    let tue = at(&Australia::Sydney, 2026, 4, 7, 7, 0);
    let d = decide(&a, &z, &[], &AccountState::default(), &cfg, tue);
    assert_eq!(
        d.next_allowed_at,
        Some(at(&Australia::Sydney, 2026, 4, 7, 7, 30))
    );
}

#[test]
fn au_three_contacts_in_seven_days() {
    let cfg = PolicyConfig::default();
    let p = "+61298765432";
    let a = acct("au", p, ymd(2026, 6, 1));
    let h: Vec<_> = [3, 4, 5]
        .iter()
        .map(|d| rec(p, at(&Australia::Sydney, 2026, 6, *d, 10, 0), true))
        .collect();
    let d = decide(
        &a,
        &[Australia::Sydney],
        &h,
        &AccountState::default(),
        &cfg,
        at(&Australia::Sydney, 2026, 6, 8, 10, 0),
    );
    assert!(!rule(&d, "conversations_in_7_days").passed);
    // June 10 is the first day whose 7-day window (4..=10) holds only 2.
    assert_eq!(
        d.next_allowed_at,
        Some(at(&Australia::Sydney, 2026, 6, 10, 7, 30))
    );
}

#[test]
fn several_candidate_zones_need_every_window_open() {
    let cfg = PolicyConfig::default();
    let a = acct("us", LA_PHONE, ymd(2026, 6, 1));
    let z = [America::New_York, America::Los_Angeles];
    let now = at(&America::New_York, 2026, 6, 10, 9, 0); // 06:00 in LA
    let d = decide(&a, &z, &[], &AccountState::default(), &cfg, now);
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(
        d.next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 10, 8, 0))
    );
    // 20:30 in New York is 17:30 in LA: both inside; 21:00 NY closes.
    let d = decide(
        &a,
        &z,
        &[],
        &AccountState::default(),
        &cfg,
        at(&America::New_York, 2026, 6, 10, 21, 0),
    );
    assert_eq!(d.decision, Decision::Deny);
}

#[test]
fn wrong_number_suppression_moves_to_the_alt_phone() {
    let cfg = PolicyConfig::default();
    let mut a = acct("us", LA_PHONE, ymd(2026, 6, 1));
    a.alt_phones.push("+14155550101".into());
    let st = AccountState {
        suppressions: vec![Suppression {
            scope: SuppressScope::Number,
            number: Some(LA_PHONE.into()),
            reason: "wrong_number".into(),
        }],
        ..Default::default()
    };
    let d = decide(
        &a,
        &[America::Los_Angeles],
        &[],
        &st,
        &cfg,
        at(&America::Los_Angeles, 2026, 6, 10, 12, 0),
    );
    assert!(d.allowed());
    assert_eq!(d.number.as_deref(), Some("+14155550101"));
}

#[test]
fn pause_callback_and_asked_hours_hold_the_call() {
    let cfg = PolicyConfig::default();
    let a = acct("us", LA_PHONE, ymd(2026, 6, 1));
    let z = [America::Los_Angeles];
    let now = at(&America::Los_Angeles, 2026, 6, 5, 12, 0);
    let st = AccountState {
        pause_until: Some(at(&America::Los_Angeles, 2026, 6, 7, 0, 0)),
        ..Default::default()
    };
    let d = decide(&a, &z, &[], &st, &cfg, now);
    assert_eq!(
        d.next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 7, 8, 0))
    );
    let st = AccountState {
        callback_at: Some(at(&America::Los_Angeles, 2026, 6, 5, 17, 30)),
        ..Default::default()
    };
    assert_eq!(
        decide(&a, &z, &[], &st, &cfg, now).next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 5, 17, 30))
    );
    let st = AccountState {
        asked_not_before: NaiveTime::from_hms_opt(18, 15, 0),
        ..Default::default()
    };
    assert_eq!(
        decide(&a, &z, &[], &st, &cfg, now).next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 5, 18, 15))
    );
    let st = AccountState {
        asked_not_after: NaiveTime::from_hms_opt(11, 0, 0),
        ..Default::default()
    };
    assert_eq!(
        decide(&a, &z, &[], &st, &cfg, now).next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 6, 8, 0))
    );
}

#[test]
fn pause_and_callback_rules_name_their_time_in_the_audit() {
    let cfg = PolicyConfig::default();
    let a = acct("us", LA_PHONE, ymd(2026, 6, 1));
    let z = [America::Los_Angeles];
    let now = at(&America::Los_Angeles, 2026, 6, 5, 12, 0);
    let later = at(&America::Los_Angeles, 2026, 6, 7, 0, 0);
    let earlier = at(&America::Los_Angeles, 2026, 6, 4, 0, 0);
    let check = |st: &AccountState, name: &str| {
        let d = decide(&a, &z, &[], st, &cfg, now);
        let r = rule(&d, name);
        (
            r.passed,
            r.detail.clone(),
            r.figures.as_ref().and_then(|f| f.until),
        )
    };
    let (l, e) = (later.to_rfc3339(), earlier.to_rfc3339());
    let paused = |u| AccountState {
        pause_until: Some(u),
        ..Default::default()
    };
    let called = |u| AccountState {
        callback_at: Some(u),
        ..Default::default()
    };
    let none = AccountState::default();
    assert_eq!(
        check(&paused(later), "pause"),
        (false, format!("paused until {l}"), Some(later))
    );
    assert_eq!(
        check(&paused(earlier), "pause"),
        (true, format!("pause ended {e}"), None)
    );
    assert_eq!(check(&none, "pause"), (true, "not paused".into(), None));
    assert_eq!(
        check(&called(later), "callback"),
        (
            false,
            format!("debtor asked to be called back from {l}"),
            Some(later)
        )
    );
    assert_eq!(
        check(&called(earlier), "callback"),
        (true, format!("callback time {e} reached"), None)
    );
    assert_eq!(
        check(&none, "callback"),
        (true, "no callback time".into(), None)
    );
}

#[test]
fn a_dispute_holds_for_good_and_a_collectors_case_for_agent_hold_days() {
    let cfg = PolicyConfig::default();
    let a = acct("us", LA_PHONE, ymd(2026, 6, 1));
    let z = [America::Los_Angeles];
    let now = at(&America::Los_Angeles, 2026, 6, 5, 12, 0);
    let since = now - Duration::days(1);
    let disputed = AccountState {
        holds: vec![Hold {
            kind: HoldKind::Dispute,
            reason: "dispute".into(),
            since,
        }],
        ..Default::default()
    };
    let d = decide(&a, &z, &[], &disputed, &cfg, now);
    assert!(!d.allowed());
    assert_eq!(d.next_allowed_at, None, "no robot call until released");
    let r = rule(&d, "hold");
    assert!(!r.passed && r.detail.contains("809(b)"), "{r:?}");
    let with_agent = AccountState {
        holds: vec![Hold {
            kind: HoldKind::Agent,
            reason: "request_agent".into(),
            since,
        }],
        ..Default::default()
    };
    let d = decide(&a, &z, &[], &with_agent, &cfg, now);
    assert!(!d.allowed());
    // Held 7 days from since (12:00 on the 4th): the 11th at 12:00, inside the window.
    assert_eq!(
        d.next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 11, 12, 0))
    );
    assert_eq!(
        rule(&d, "hold").figures.as_ref().and_then(|f| f.until),
        d.next_allowed_at
    );
    let later = decide(&a, &z, &[], &with_agent, &cfg, now + Duration::days(6));
    assert!(later.allowed(), "{:?}", later.rules);
    assert!(rule(&later, "hold").passed);
}

#[test]
fn asked_call_hours_narrow_the_window_even_across_midnight() {
    let cfg = PolicyConfig::default();
    let a = acct("us", LA_PHONE, ymd(2026, 6, 1));
    let z = [America::Los_Angeles];
    let now = at(&America::Los_Angeles, 2026, 6, 5, 12, 0);
    let st = AccountState {
        call_hours: crate::account::hours::parse_call_hours("18:30-19:00;07:00-08:30").unwrap(),
        ..Default::default()
    };
    let d = decide(&a, &z, &[], &st, &cfg, now);
    assert!(!d.allowed());
    assert!(!rule(&d, "call_hours").passed);
    assert_eq!(
        d.next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 5, 18, 30))
    );
    // 07:00-08:30 opens at 08:00 under the us window (08:00-21:00).
    let next_morning = decide(
        &a,
        &z,
        &[],
        &st,
        &cfg,
        at(&America::Los_Angeles, 2026, 6, 6, 6, 0),
    );
    assert_eq!(
        next_morning.next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 6, 8, 0))
    );
    let late = AccountState {
        call_hours: crate::account::hours::parse_call_hours("20:30-01:00").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        decide(&a, &z, &[], &late, &cfg, now).next_allowed_at,
        Some(at(&America::Los_Angeles, 2026, 6, 5, 20, 30)),
        "inside the asked range and the window: 20:30-21:00"
    );
}

#[test]
fn cn_night_call_needs_consent() {
    let cfg = PolicyConfig::default();
    let a = acct("cn", CN_PHONE, ymd(2026, 6, 1));
    let night = at(&Asia::Shanghai, 2026, 6, 5, 23, 0);
    assert!(!decide(
        &a,
        &[Asia::Shanghai],
        &[],
        &AccountState::default(),
        &cfg,
        night
    )
    .allowed());
    let st = AccountState {
        night_call_consent: true,
        ..Default::default()
    };
    assert!(decide(&a, &[Asia::Shanghai], &[], &st, &cfg, night).allowed());
}

#[test]
fn local_days_follow_dst_not_a_fixed_offset() {
    // London, 29 March 2026: clocks go 01:00 -> 02:00. Three cn-style calls
    // with a cap of 3 on the 29th; the day ends at 23:00 UTC (BST midnight).
    let cfg = PolicyConfig::from_toml_str(
        "[uk]\nattempts_per_number_per_day = 3\nwindow = \"00:00-24:00\"\n",
    )
    .unwrap();
    let p = "+442079460000";
    let a = acct("uk", p, ymd(2026, 3, 20));
    let h: Vec<_> = [6, 7, 8]
        .iter()
        .map(|hh| rec(p, at(&Europe::London, 2026, 3, 29, *hh, 0), false))
        .collect();
    let d = decide(
        &a,
        &[Europe::London],
        &h,
        &AccountState::default(),
        &cfg,
        at(&Europe::London, 2026, 3, 29, 22, 0),
    );
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(
        d.next_allowed_at,
        Some(Utc.with_ymd_and_hms(2026, 3, 29, 23, 0, 0).unwrap())
    );
}

#[test]
fn window_opening_inside_a_dst_gap_opens_when_the_clocks_jump() {
    // Los Angeles, 8 March 2026: 02:00 -> 03:00. A window opening 02:30 opens at 03:00 PDT.
    let cfg = PolicyConfig::from_toml_str("[us]\nwindow = \"02:30-21:00\"\n").unwrap();
    let a = acct("us", LA_PHONE, ymd(2026, 3, 1));
    let d = decide(
        &a,
        &[America::Los_Angeles],
        &[],
        &AccountState::default(),
        &cfg,
        at(&America::Los_Angeles, 2026, 3, 8, 1, 0),
    );
    assert_eq!(
        d.next_allowed_at,
        Some(Utc.with_ymd_and_hms(2026, 3, 8, 10, 0, 0).unwrap())
    );
}

#[test]
fn decision_serialises_in_the_documented_shape() {
    let cfg = PolicyConfig::default();
    let a = acct("cn", CN_PHONE, ymd(2026, 11, 18));
    let d = decide(
        &a,
        &[Asia::Shanghai],
        &[],
        &AccountState::default(),
        &cfg,
        at(&Asia::Shanghai, 2026, 11, 20, 14, 5),
    );
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["rules"][0]["rule"], "jurisdiction");
    let w = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "window")
        .unwrap();
    assert_eq!(
        w["detail"],
        "cn: 14:05 Asia/Shanghai Fri inside 08:00-22:00"
    );
    assert_eq!(w["figures"]["local_time"], "14:05");
    let back: PolicyDecision = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);
}

// ---------------------------------------------------------------------------
// Property tests: an independent brute-force checker, written from
// COLLECTIONS.md's wording, must agree with every `allow`, and
// `next_allowed_at` must be allowed with nothing allowed before it.

const ZONES: [Tz; 5] = [
    Pacific::Auckland,
    America::Los_Angeles,
    Australia::Sydney,
    Asia::Shanghai,
    Europe::London,
];
const PHONES: [&str; 3] = ["+15550000001", "+15550000002", "+15550000003"];

/// Is every rule satisfied at `t`? Deliberately naive: loops over zones and
/// records, no shared helpers with the gate.
fn brute_allowed(
    a: &Account,
    zones: &[Tz],
    hist: &[PastAttempt],
    st: &AccountState,
    cfg: &PolicyConfig,
    t: DateTime<Utc>,
    number: Option<&str>,
) -> Result<(), String> {
    let r = match a
        .jurisdiction
        .as_deref()
        .unwrap_or(&cfg.default_jurisdiction)
    {
        "cn" => &cfg.cn,
        "us" => &cfg.us,
        "uk" => &cfg.uk,
        "au" => &cfg.au,
        j => return Err(format!("unknown jurisdiction {j}")),
    };
    if zones.is_empty() {
        return Err("no zones".into());
    }
    if st
        .suppressions
        .iter()
        .any(|s| s.scope == SuppressScope::Account)
    {
        return Err("account suppressed".into());
    }
    for h in &st.holds {
        match h.kind {
            HoldKind::Dispute => return Err("disputed, not released".into()),
            HoldKind::Agent => {
                if t < h.since + Duration::days(cfg.agent_hold_days as i64) {
                    return Err("with a collector".into());
                }
            }
        }
    }
    if st.pause_until.is_some_and(|p| t < p) {
        return Err("paused".into());
    }
    if st.callback_at.is_some_and(|c| t < c) {
        return Err("before callback".into());
    }
    let mine: Vec<&PastAttempt> = hist
        .iter()
        .filter(|h| h.account_id == a.account_id)
        .collect();
    for z in zones {
        let local = t.with_timezone(z);
        let today = local.date_naive();
        let secs = local.time().num_seconds_from_midnight() as i64;
        let day = (today - a.due_date).num_days();
        if day < 1 || day > cfg.last_bot_day {
            return Err(format!("stage day {day} in {z}"));
        }
        let wknd = today.weekday() == Weekday::Sat || today.weekday() == Weekday::Sun;
        let win = if st.night_call_consent && r.consent_window.is_some() {
            r.consent_window.unwrap()
        } else if wknd {
            r.weekend_window
        } else {
            r.weekday_window
        };
        if secs < win.start_min as i64 * 60 || secs >= win.end_min as i64 * 60 {
            return Err(format!("outside window in {z}"));
        }
        if r.holidays.contains(&today) {
            return Err("holiday".into());
        }
        if let Some(nb) = st.asked_not_before {
            if local.time() < nb {
                return Err("before asked time".into());
            }
        }
        if !st.call_hours.is_empty() {
            let s = secs as u32;
            let inside = st.call_hours.iter().any(|r| {
                if r.start <= r.end {
                    r.start <= s && s < r.end
                } else {
                    s >= r.start || s < r.end
                }
            });
            if !inside {
                return Err("outside the asked call hours".into());
            }
        }
        if let Some(na) = st.asked_not_after {
            if local.time() >= na {
                return Err("after asked time".into());
            }
        }
        for cap in &r.caps {
            let mut n = 0;
            for h in &mine {
                if cap.counts == CapCounts::Conversations && !h.conversation {
                    continue;
                }
                let d = h.at.with_timezone(z).date_naive();
                let ago = (today - d).num_days();
                if ago >= 0 && ago < cap.days as i64 {
                    n += 1;
                }
            }
            if n + 1 > cap.max {
                return Err(format!("cap {cap:?} reached in {z}: {n}"));
            }
        }
        for h in &mine {
            if !h.conversation {
                continue;
            }
            let ago = (today - h.at.with_timezone(z).date_naive()).num_days();
            // Day of the conversation is day 1: no call while ago + 1 <= q.
            if ago >= 0 && ago + 1 <= r.quiet_days_after_conversation as i64 {
                return Err("quiet period".into());
            }
        }
    }
    let numbers: Vec<&str> = std::iter::once(a.phone.as_str())
        .chain(a.alt_phones.iter().map(|s| s.as_str()))
        .collect();
    let number_ok = |n: &str| -> bool {
        if st
            .suppressions
            .iter()
            .any(|s| s.scope == SuppressScope::Number && s.number.as_deref() == Some(n))
        {
            return false;
        }
        zones.iter().all(|z| {
            let today = t.with_timezone(z).date_naive();
            let c = hist
                .iter()
                .filter(|h| h.phone == n && h.at.with_timezone(z).date_naive() == today)
                .count() as u32;
            r.attempts_per_number_per_day.is_none_or(|m| c + 1 <= m)
                && r.hard_cap_per_number_per_day.is_none_or(|m| c + 1 <= m)
        })
    };
    match number {
        Some(n) if !numbers.contains(&n) => Err(format!("number {n} is not the account's")),
        Some(n) if !number_ok(n) => Err(format!("number {n} is over its daily cap or suppressed")),
        Some(_) => Ok(()),
        None if numbers.iter().any(|n| number_ok(n)) => Ok(()),
        None => Err("no usable number".into()),
    }
}

#[derive(Debug, Clone)]
struct Case {
    account: Account,
    zones: Vec<Tz>,
    history: Vec<PastAttempt>,
    state: AccountState,
    cfg: PolicyConfig,
    now: DateTime<Utc>,
}

/// Instants of 2026's DST changes in the five zones, with their zone.
fn dst_anchors() -> Vec<(usize, DateTime<Utc>)> {
    [
        (0, 2026, 4, 4, 14),
        (0, 2026, 9, 26, 14), // Auckland
        (1, 2026, 3, 8, 10),
        (1, 2026, 11, 1, 9), // Los Angeles
        (2, 2026, 4, 4, 16),
        (2, 2026, 10, 3, 16), // Sydney
        (4, 2026, 3, 29, 1),
        (4, 2026, 10, 25, 1), // London
        (3, 2026, 7, 15, 0),  // Shanghai has none: midsummer
    ]
    .iter()
    .map(|&(z, y, m, d, h)| (z, Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()))
    .collect()
}

fn window_strategy() -> impl Strategy<Value = Window> {
    // Half the windows open around the hours DST changes happen (01:00-03:00).
    let start = prop_oneof![0u16..46, 2u16..=6];
    (start, 1u16..20).prop_map(|(s, len)| {
        let start = s * 30;
        let end = (start + len * 60).min(1440);
        Window::new(start, end).unwrap()
    })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let zones = proptest::option::weighted(0.4, 0usize..5);
    let jur = proptest::sample::select(vec!["cn", "us", "uk", "au"]);
    let anchor = proptest::sample::select(dst_anchors());
    let offset_min = -3i64 * 24 * 60..3 * 24 * 60;
    let hist = proptest::collection::vec(
        (0usize..3, 0i64..20 * 24 * 60, any::<bool>(), 0u8..10),
        0..14,
    );
    let st = (
        proptest::option::weighted(0.2, -2i64 * 24 * 60..4 * 24 * 60),
        proptest::option::weighted(0.2, -60i64..2 * 24 * 60),
        proptest::option::weighted(0.15, 0u32..24 * 60),
        proptest::option::weighted(0.15, 1u32..24 * 60),
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.2, 0usize..3),
        proptest::bool::weighted(0.05),
        proptest::collection::vec((any::<bool>(), -10i64 * 24 * 60..2 * 24 * 60), 0..3),
        proptest::collection::vec((0u32..48, 1u32..40), 0..3),
    );
    let cfgs = (
        proptest::option::weighted(0.4, (window_strategy(), window_strategy())),
        1u32..=6,
        proptest::option::weighted(0.4, (1u32..10, 1u32..8, any::<bool>())),
        0u32..9,
        -20i64..20,
        1usize..=3,
    );
    (zones, jur, anchor, offset_min, hist, st, cfgs).prop_map(
        |(other_zone, jur, (anchor_zone, anchor), off, hist, st, cfgs)| {
            let mut zones = vec![ZONES[anchor_zone]];
            if let Some(o) = other_zone.filter(|o| *o != anchor_zone) {
                zones.push(ZONES[o]);
            }
            let now = anchor + Duration::minutes(off) + Duration::seconds(off.rem_euclid(60));
            let mut cfg = PolicyConfig::default();
            let (wins, cn_cap, extra_cap, quiet, due_off, nphones) = cfgs;
            {
                let r = match jur {
                    "cn" => &mut cfg.cn,
                    "us" => &mut cfg.us,
                    "uk" => &mut cfg.uk,
                    _ => &mut cfg.au,
                };
                if let Some((wd, we)) = wins {
                    r.weekday_window = wd;
                    r.weekend_window = we;
                }
                if jur == "cn" {
                    r.attempts_per_number_per_day = Some(cn_cap);
                }
                if let Some((days, max, conv)) = extra_cap {
                    r.caps.push(RollingCap {
                        days,
                        max,
                        counts: if conv {
                            CapCounts::Conversations
                        } else {
                            CapCounts::Attempts
                        },
                    });
                }
                if jur == "us" || jur == "uk" {
                    r.quiet_days_after_conversation = quiet;
                }
            }
            // Holidays near the anchor so they matter.
            cfg.au.holidays.push((now - Duration::days(1)).date_naive());
            let mut account = acct(jur, PHONES[0], now.date_naive() + Duration::days(due_off));
            account.alt_phones = PHONES[1..nphones].iter().map(|s| s.to_string()).collect();
            let history = hist
                .into_iter()
                .map(|(p, ago, conv, other)| PastAttempt {
                    account_id: if other == 0 {
                        "OTHER".into()
                    } else {
                        "A1".into()
                    },
                    phone: PHONES[p].into(),
                    at: now - Duration::minutes(ago) + Duration::days(1),
                    disposition: Disposition::NoAnswer,
                    conversation: conv,
                })
                .collect();
            let (pause, cb, nb, na, consent, sup_num, sup_acct, holds, hours) = st;
            let mut state = AccountState {
                pause_until: pause.map(|m| now + Duration::minutes(m)),
                callback_at: cb.map(|m| now + Duration::minutes(m) + Duration::seconds(17)),
                asked_not_before: nb.and_then(|m| NaiveTime::from_hms_opt(m / 60, m % 60, 0)),
                asked_not_after: na.and_then(|m| NaiveTime::from_hms_opt(m / 60, m % 60, 0)),
                night_call_consent: consent,
                suppressions: vec![],
                // Disputes are rarer than cases with a collector.
                holds: holds
                    .into_iter()
                    .enumerate()
                    .map(|(i, (dispute, ago))| Hold {
                        kind: if dispute && i == 0 && ago % 3 == 0 {
                            HoldKind::Dispute
                        } else {
                            HoldKind::Agent
                        },
                        reason: "request_agent".into(),
                        since: now - Duration::minutes(ago),
                    })
                    .collect(),
                // Half-hour ranges, some crossing midnight.
                call_hours: hours
                    .into_iter()
                    .map(|(s, len)| {
                        let start = s * 1800;
                        let end = (start + len * 1800) % 86_400;
                        crate::account::hours::HoursRange {
                            start,
                            end: if end == start {
                                (end + 1800) % 86_400
                            } else {
                                end
                            },
                        }
                    })
                    .collect(),
            };
            if let Some(i) = sup_num {
                state.suppressions.push(Suppression {
                    scope: SuppressScope::Number,
                    number: Some(PHONES[i].into()),
                    reason: "wrong_number".into(),
                });
            }
            if sup_acct {
                state.suppressions.push(Suppression {
                    scope: SuppressScope::Account,
                    number: None,
                    reason: "stop_calling".into(),
                });
            }
            Case {
                account,
                zones,
                history,
                state,
                cfg,
                now,
            }
        },
    )
}

fn minute_ceil(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp();
    let c = (s + 59).div_euclid(60) * 60;
    Utc.timestamp_opt(c, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(400), ..ProptestConfig::default() })]

    #[test]
    fn allow_never_breaks_a_rule_and_next_allowed_is_the_earliest(c in case_strategy(), samples in proptest::collection::vec(0.0f64..1.0, 40)) {
        let d = decide(&c.account, &c.zones, &c.history, &c.state, &c.cfg, c.now);
        let brute_now = brute_allowed(&c.account, &c.zones, &c.history, &c.state, &c.cfg, c.now, None);
        if d.allowed() {
            let r = brute_allowed(&c.account, &c.zones, &c.history, &c.state, &c.cfg, c.now, d.number.as_deref());
            prop_assert!(r.is_ok(), "decide allowed but {:?}; rules {:?}", r, d.rules);
            prop_assert_eq!(d.next_allowed_at, Some(c.now));
        } else {
            // The gate is not stricter than the rules either.
            prop_assert!(brute_now.is_err(), "decide denied but every rule holds: {:?}", d.rules);
        }
        let allowed = |t: DateTime<Utc>| allowed_at(&c.account, &c.zones, &c.history, &c.state, &c.cfg, t);
        let brute = |t: DateTime<Utc>| brute_allowed(&c.account, &c.zones, &c.history, &c.state, &c.cfg, t, None).is_ok();
        match d.next_allowed_at {
            Some(n) => {
                prop_assert!(n >= c.now);
                prop_assert!(allowed(n), "next_allowed_at {} is not allowed", n);
                let nd = decide(&c.account, &c.zones, &c.history, &c.state, &c.cfg, n);
                prop_assert!(nd.allowed());
                prop_assert!(brute_allowed(&c.account, &c.zones, &c.history, &c.state, &c.cfg, n, nd.number.as_deref()).is_ok());
                // Minute-aligned instants in [now, n): the first and last hour
                // minute by minute, a random sample in between.
                let first = minute_ceil(c.now);
                let mut probes: Vec<DateTime<Utc>> = (0..60).map(|i| first + Duration::minutes(i)).collect();
                probes.extend((1..=60).map(|i| minute_ceil(n) - Duration::minutes(i)));
                let span = (n - first).num_minutes().max(0);
                probes.extend(samples.iter().map(|f| first + Duration::minutes((span as f64 * f) as i64)));
                for t in probes.into_iter().filter(|t| *t >= c.now && *t < n) {
                    prop_assert!(!allowed(t), "{} is allowed but next_allowed_at is {}", t, n);
                    prop_assert!(!brute(t), "brute force allows {} before next_allowed_at {}", t, n);
                }
            }
            None => {
                let horizon = c.cfg.search_days as i64 * 24 * 60;
                for f in &samples {
                    let t = minute_ceil(c.now) + Duration::minutes((horizon as f64 * f * 0.5) as i64);
                    prop_assert!(!brute(t), "no next_allowed_at but {} is allowed", t);
                }
            }
        }
    }
}
