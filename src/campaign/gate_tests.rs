//! The gate on a real store: caps, holds, the do-not-call list, claims and
//! the retry delay after any node's call, and the no-dial-after-stop property.
use chrono::{Duration, TimeZone};

use super::super::outcomes::store_failure;
use super::super::test_support::{account, t0, tmp_dir};
use super::*;
use crate::outcome::Disposition;
use std::path::Path;

fn store_with(dir: &Path, accounts: &[Account]) -> Store {
    let mut s = Store::open(dir).unwrap();
    s.upsert_accounts(accounts, t0()).unwrap();
    s
}

fn ended(store: &mut Store, a: &str, phone: &str, at: DateTime<Utc>, d: Disposition) {
    let id = store
        .record_decision(a, phone, at, &serde_json::json!({"decision": "allow"}))
        .unwrap();
    store.mark_dialling(id, at).unwrap();
    store
        .record_outcome(id, &store_failure(d, "test", "", at))
        .unwrap();
}

#[test]
fn gate_counts_every_dial_to_a_shared_number_whoever_it_was_about() {
    let dir = tmp_dir("gate");
    let a = account("A", "+8613800000001", &["+8613800000002"]);
    // B is not in this campaign (nor even in the accounts table): its
    // dials to the shared number count all the same.
    for k in 0..3 {
        ended(
            &mut store_with(&dir, std::slice::from_ref(&a)),
            "B",
            "+8613800000001",
            t0() - Duration::minutes(30 - k),
            Disposition::Busy,
        );
    }
    let gate = PolicyGate::new(
        Store::open(&dir).unwrap(),
        vec![a.clone()],
        PolicyConfig::default(),
    );
    let shared = gate.decision(0, "+8613800000001", t0()).unwrap();
    assert!(
        !shared.allowed(),
        "cn: 3 dials today to the number, whoever they were about"
    );
    let next = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
    assert_eq!(
        shared.next_allowed_at,
        Some(next),
        "08:00 Shanghai the next day"
    );
    assert_eq!(verdict(shared), Verdict::deny(Some(next)));
    let other = gate.decision(0, "+8613800000002", t0()).unwrap();
    assert!(other.allowed());
    assert_eq!(other.number.as_deref(), Some("+8613800000002"));
    assert_eq!(other.account_id, "A");
    let cap = other
        .rules
        .iter()
        .find(|r| r.rule == "attempts_per_number_per_day")
        .expect("the per-number cap is checked");
    assert_eq!(
        cap.figures.as_ref().and_then(|f| f.count),
        Some(0),
        "the other number's dials are not counted against it"
    );
    assert!(matches!(verdict(other), Verdict::Allow(d) if d.account_id == "A"));
}

#[test]
fn a_campaign_claim_keeps_the_retry_delay_after_any_nodes_call_a_manual_one_does_not() {
    let dir = tmp_dir("gate-retry");
    let a = account("A", "+8613800000001", &[]);
    let mut w = store_with(&dir, std::slice::from_ref(&a));
    // Another node's call was busy five minutes ago; this node's
    // scheduler never heard of it.
    ended(
        &mut w,
        "A",
        "+8613800000001",
        t0() - Duration::minutes(5),
        Disposition::Busy,
    );
    let gate = PolicyGate::new(
        Store::open(&dir).unwrap(),
        vec![a.clone()],
        PolicyConfig::default(),
    );
    let retry = RetryDelays::default();
    match claim(&mut w, &gate, &retry, 0, "+8613800000001", t0()) {
        Err(NotClaimed::TooSoon { until }) => {
            assert_eq!(until, t0() - Duration::minutes(5) + retry.busy)
        }
        other => panic!("claimed within the busy delay: {:?}", other.is_ok()),
    }
    // Nothing was stored for the refused claim.
    assert_eq!(w.in_flight().unwrap(), vec![]);
    // Once the delay is over, the campaign dials.
    let later = t0() + Duration::minutes(5);
    let dial = claim(&mut w, &gate, &retry, 0, "+8613800000001", later)
        .unwrap_or_else(|e| panic!("not claimed after the delay: {e:?}"));
    w.record_outcome(
        crate::store::AttemptId(dial.attempt_id()),
        &store_failure(Disposition::Busy, "busy", "", later),
    )
    .unwrap();
    // A person's own call (`duecall call --account`) is not held back
    // by the campaign's delay: only by the gate.
    let manual = claim_with(&mut w, "A", "+8613800000001", later, || {
        gate.decision(0, "+8613800000001", later)
    });
    assert!(manual.is_ok(), "{:?}", manual.err());
}

#[test]
fn gate_does_not_count_an_accounts_own_dial_twice() {
    let dir = tmp_dir("gate-own");
    let a = account("A", "+8613800000001", &[]);
    let mut w = store_with(&dir, std::slice::from_ref(&a));
    for k in 0..2 {
        ended(
            &mut w,
            "A",
            "+8613800000001",
            t0() - Duration::minutes(30 - k),
            Disposition::Busy,
        );
    }
    let gate = PolicyGate::new(Store::open(&dir).unwrap(), vec![a], PolicyConfig::default());
    let d = gate.decision(0, "+8613800000001", t0()).unwrap();
    assert!(d.allowed(), "2 of 3 dials today: {:?}", d.rules);
}

#[test]
fn gate_sees_a_suppression_and_a_pause_left_by_a_route() {
    let dir = tmp_dir("gate-route");
    let a = account("A", "+8613800000001", &[]);
    let mut w = store_with(&dir, std::slice::from_ref(&a));
    let gate = PolicyGate::new(
        Store::open(&dir).unwrap(),
        vec![a.clone()],
        PolicyConfig::default(),
    );
    assert!(gate.decision(0, "+8613800000001", t0()).unwrap().allowed());
    let until = t0() + Duration::days(3);
    w.add_pause("A", "promise_to_pay", until, t0()).unwrap();
    let paused = gate
        .decision(0, "+8613800000001", t0() + Duration::minutes(1))
        .unwrap();
    assert!(!paused.allowed());
    assert!(paused.next_allowed_at.is_some_and(|t| t >= until));
    w.add_suppression("A", None, "stop_calling", t0()).unwrap();
    let stopped = gate
        .decision(0, "+8613800000001", t0() + Duration::minutes(2))
        .unwrap();
    assert_eq!(
        verdict(stopped.clone()),
        Verdict::deny(None),
        "stop calling: no time to ask again"
    );
    assert!(
        stopped
            .rules
            .iter()
            .any(|r| r.rule == "suppression" && !r.passed && r.detail.contains("stop_calling")),
        "the decision says why: {:?}",
        stopped.rules
    );
}

#[test]
fn a_dead_number_is_not_dialled_again_by_a_later_campaign_and_says_why() {
    use crate::outcome::FailReason;
    let dir = tmp_dir("gate-dead");
    let a = account("A", "+8613800000001", &["+8613800000002"]);
    let mut w = store_with(&dir, std::slice::from_ref(&a));
    let id = w
        .record_decision(
            "A",
            &a.phone,
            t0(),
            &serde_json::json!({"decision": "allow"}),
        )
        .unwrap();
    w.mark_dialling(id, t0()).unwrap();
    // A SIT (intercept) then 404: what the agent makes of it.
    let mut out = store_failure(Disposition::NotFound, "dead-number", "", t0());
    out.route = crate::dialogue::routing::route_unanswered(
        Disposition::NotFound,
        Some(FailReason::DeadNumber),
    );
    w.record_outcome(id, &out).unwrap();
    let later = t0() + Duration::days(5);
    let gate = PolicyGate::new(
        Store::open(&dir).unwrap(),
        vec![a.clone()],
        PolicyConfig::default(),
    );
    let d = gate.decision(0, &a.phone, later).unwrap();
    assert!(!d.allowed(), "{:?}", d.rules);
    assert!(
        d.rules
            .iter()
            .any(|r| !r.passed && r.detail.contains("dead-number")),
        "the decision names the dead number: {:?}",
        d.rules
    );
    assert!(
        gate.decision(0, "+8613800000002", later).unwrap().allowed(),
        "the account's other number is still dialled"
    );
}

fn plan_and_run_agree(dir: &Path, a: &Account, at: DateTime<Utc>) -> PolicyDecision {
    let store = Store::open(dir).unwrap();
    let zones = crate::account::tz::zones_for(a).0;
    let cfg = PolicyConfig::default();
    let planned = decide_on_store(&store, a, None, &zones, &cfg, at).unwrap();
    let gate = PolicyGate::new(Store::open(dir).unwrap(), vec![a.clone()], cfg.clone());
    let run = gate.decision(0, &a.phone, at).unwrap();
    assert_eq!(
        planned.decision, run.decision,
        "{:?} / {:?}",
        planned.rules, run.rules
    );
    planned
}

#[test]
fn the_do_not_call_list_stops_every_account_listing_the_number_and_says_why() {
    use crate::account::lists::DoNotCall;
    let dir = tmp_dir("gate-dnc");
    let a = account("A", "+8613800000001", &["+8613800000002"]);
    let b = account("B", "+8613800000003", &["+8613800000001"]);
    let mut w = store_with(&dir, &[a.clone(), b.clone()]);
    w.import_do_not_call(
        &[DoNotCall {
            phone: Some("+8613800000001".into()),
            account_id: None,
            scope: SuppressScope::Number,
            reason: "asked by letter".into(),
        }],
        t0(),
    )
    .unwrap();
    let gate = PolicyGate::new(
        Store::open(&dir).unwrap(),
        vec![a.clone(), b.clone()],
        PolicyConfig::default(),
    );
    for idx in [0, 1] {
        let d = gate.decision(idx, "+8613800000001", t0()).unwrap();
        assert!(!d.allowed());
        assert!(
            d.rules.iter().any(|r| r.rule == "number_available"
                && r.detail.contains("do-not-call list: asked by letter")),
            "{:?}",
            d.rules
        );
    }
    assert!(
        gate.decision(0, "+8613800000002", t0()).unwrap().allowed(),
        "the other number is free"
    );
    // An entry by account covers every number of it.
    w.import_do_not_call(
        &[DoNotCall {
            phone: None,
            account_id: Some("B".into()),
            scope: SuppressScope::Account,
            reason: "lawyer".into(),
        }],
        t0(),
    )
    .unwrap();
    let d = plan_and_run_agree(&dir, &b, t0());
    assert!(d
        .rules
        .iter()
        .any(|r| r.rule == "suppression" && !r.passed && r.detail.contains("lawyer")));
    let listed = w.suppressions().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s.source == "list"));
}

#[test]
fn a_claimed_payment_settles_once_against_the_payments_at_the_end_of_its_pause() {
    use crate::account::lists::Payment;
    use crate::store::EscalationStatus;
    let dir = tmp_dir("gate-paid");
    let a = account("A", "+8613800000001", &[]);
    let b = account("B", "+8613800000002", &[]);
    let mut w = store_with(&dir, &[a.clone(), b.clone()]);
    let end = t0() + Duration::days(3);
    for acc in ["A", "B"] {
        w.add_pause(acc, policy::settle::VERIFY_PAYMENT, end, t0())
            .unwrap();
    }
    // A paid in two parts; B paid part of it.
    let p = |acc: &str, cents: i64| Payment {
        account_id: acc.into(),
        amount: rust_decimal::Decimal::new(cents, 2),
        paid_at: t0() - Duration::days(1),
    };
    let payments = [p("A", 10000), p("A", 2550), p("B", 5000)];
    assert_eq!(w.import_payments(&payments).unwrap(), 3);
    assert_eq!(w.import_payments(&payments).unwrap(), 0, "imported once");
    let cfg = PolicyConfig::default();
    // During the pause nothing settles.
    assert_eq!(settle_due(&mut w, &a, &cfg, t0()).unwrap(), 0);
    let after = end + Duration::hours(1);
    // The plan already sees what the run will write.
    let da = plan_and_run_agree(&dir, &a, after);
    assert!(
        !da.allowed() && da.next_allowed_at.is_none(),
        "paid: closed"
    );
    let db = plan_and_run_agree(&dir, &b, after);
    assert!(!db.allowed());
    assert!(
        db.rules
            .iter()
            .any(|r| r.rule == "hold" && r.detail.contains("collector")),
        "{:?}",
        db.rules
    );
    assert_eq!(settle_due(&mut w, &a, &cfg, after).unwrap(), 0);
    assert_eq!(settle_due(&mut w, &b, &cfg, after).unwrap(), 1);
    assert_eq!(settle_due(&mut w, &b, &cfg, after).unwrap(), 0, "once");
    let q = w.escalations(Some(EscalationStatus::Open)).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].account_id.as_str(), q[0].reason.as_str()),
        ("B", "paid-unverified")
    );
    assert_eq!(plan_and_run_agree(&dir, &a, after).decision, da.decision);
    assert_eq!(plan_and_run_agree(&dir, &b, after).decision, db.decision);
    let st = w.account_state("A").unwrap();
    assert!(st.suppressions.iter().any(|s| s.reason == "paid"));
}

// Property: whatever the sequence of outcomes, the gate never allows a
// dial after a stop_calling heard from the debtor, to a number after
// wrong_number on it, while a dispute is unreleased, or outside the
// hours the debtor last asked for ("after six", "between nine and eleven").
mod sequences {
    use super::*;
    use crate::outcome::Route;
    use proptest::prelude::*;

    #[derive(Debug, Clone, Copy)]
    enum Heard {
        Stop,
        WrongNumber,
        Dispute,
        Agent,
        Paid,
        Busy,
        Release,
        AfterSix,
        NineToEleven,
    }

    fn heard() -> impl Strategy<Value = Heard> {
        prop_oneof![
            Just(Heard::Stop),
            Just(Heard::WrongNumber),
            Just(Heard::Dispute),
            Just(Heard::Agent),
            Just(Heard::Paid),
            Just(Heard::Busy),
            Just(Heard::Busy),
            Just(Heard::Release),
            Just(Heard::AfterSix),
            Just(Heard::NineToEleven),
        ]
    }

    type Steps = Vec<(Heard, usize, i64)>;

    fn steps() -> impl Strategy<Value = Steps> {
        proptest::collection::vec((heard(), 0usize..2, 1i64..40 * 60), 1..12)
    }

    /// The account the sequences are about, with a second number.
    fn the_account() -> Account {
        account("A", "+8613800000001", &["+8613800000002"])
    }

    /// Plays `steps` on `w` (which holds [`the_account`]) through the
    /// gate and the outcomes' store writes, checking every allow.
    fn check(w: &mut Store, steps: Steps) -> Result<(), TestCaseError> {
        let a = the_account();
        let cfg = PolicyConfig::default();
        let zones = crate::account::tz::zones_for(&a).0;
        let (mut stopped, mut disputed) = (false, false);
        let mut wrong: Vec<String> = Vec::new();
        let mut asked: Option<crate::outcome::AskedHours> = None;
        let hm = |h: u32| chrono::NaiveTime::from_hms_opt(h, 0, 0);
        let mut now = t0();
        for (h, num, gap_min) in steps {
            now += Duration::minutes(gap_min);
            let phone = if num == 0 {
                a.phone.clone()
            } else {
                a.alt_phones[0].clone()
            };
            if let Heard::Release = h {
                w.release_holds("A", None, "test: verified", now).unwrap();
                disputed = false;
                continue;
            }
            let view = Account {
                phone: phone.clone(),
                alt_phones: vec![],
                ..a.clone()
            };
            let d = decide_on_store(w, &a, Some(&view), &zones, &cfg, now).unwrap();
            if d.allowed() {
                prop_assert!(!stopped, "dialled after stop_calling: {:?}", d.rules);
                prop_assert!(!disputed, "dialled during a dispute: {:?}", d.rules);
                prop_assert!(!wrong.contains(&phone), "dialled a wrong number again");
                if let Some(h) = asked {
                    let local = now.with_timezone(&chrono_tz::Asia::Shanghai).time();
                    prop_assert!(
                        h.not_before.is_none_or(|b| local >= b)
                            && h.not_after.is_none_or(|e| local < e),
                        "dialled at {local} outside the asked hours {h}: {:?}",
                        d.rules
                    );
                }
            }
            let Ok(dial) = authorise(w, d, now) else {
                continue;
            };
            let route = match h {
                Heard::Stop => Some(Route::suppress("stop_calling", SuppressScope::Account)),
                Heard::WrongNumber => Some(Route::suppress("wrong_number", SuppressScope::Number)),
                Heard::Dispute => Some(Route::agent("dispute")),
                Heard::Agent => Some(Route::agent("request_agent")),
                Heard::Paid => Some(Route::pause(
                    policy::settle::VERIFY_PAYMENT,
                    (now + Duration::days(3)).fixed_offset(),
                )),
                Heard::AfterSix | Heard::NineToEleven => {
                    let hours = match h {
                        Heard::AfterSix => crate::outcome::AskedHours {
                            not_before: hm(18),
                            not_after: None,
                        },
                        _ => crate::outcome::AskedHours {
                            not_before: hm(9),
                            not_after: hm(11),
                        },
                    };
                    asked = Some(hours);
                    Some(
                        Route::retry("callback_later", (now + Duration::hours(1)).fixed_offset())
                            .with_hours(Some(hours)),
                    )
                }
                Heard::Busy | Heard::Release => None,
            };
            match h {
                Heard::Stop => stopped = true,
                Heard::WrongNumber => wrong.push(phone.clone()),
                Heard::Dispute => disputed = true,
                _ => {}
            }
            let mut ended = store_failure(Disposition::Busy, "test", "", now);
            if route.is_some() {
                ended.disposition = Disposition::Answered;
                ended.conversation = true;
            }
            ended.route = route;
            w.record_outcome(crate::store::AttemptId(dial.attempt_id()), &ended)
                .unwrap();
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn no_sequence_of_outcomes_dials_after_stop_wrong_number_or_an_open_dispute(
            steps in steps()
        ) {
            let dir = tmp_dir("gate-seq");
            let mut w = store_with(&dir, &[the_account()]);
            check(&mut w, steps)?;
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// The same property on the shared PostgreSQL store: a fresh
    /// database in one test cluster for each sequence.
    #[test]
    fn no_sequence_of_outcomes_on_postgres_dials_after_stop_wrong_number_or_an_open_dispute() {
        let Some(cluster) = crate::store::pg_cluster::for_test("gate-seq") else {
            return;
        };
        let made = std::cell::Cell::new(0u32);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 12,
            ..ProptestConfig::default()
        });
        let result = runner.run(&steps(), |steps| {
            made.set(made.get() + 1);
            let url = cluster
                .create_database(&format!("seq{}", made.get()))
                .map_err(|e| TestCaseError::fail(format!("create database: {e}")))?;
            let mut w = Store::open_postgres(&url).unwrap();
            w.upsert_accounts(&[the_account()], t0()).unwrap();
            check(&mut w, steps)
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}
