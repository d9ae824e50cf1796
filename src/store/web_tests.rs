//! Tests of the service's tables: the claim race, closing a case with
//! each outcome, pauses released and extended, labels, the outbox's
//! order and retries, users, tokens and sessions.

use std::str::FromStr;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use super::audit::{Actor, AuditFilter};
use super::casework::{CaseRefusal, CloseOutcome, EscalationFilter};
use super::outbox::EventKind;
use super::qa_labels::{NewLabel, Verdict};
use super::tests::TempDir;
use super::users::Role;
use super::*;
use crate::account::{Account, Language};
use crate::outcome::SuppressScope;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
}

fn account(id: &str) -> Account {
    Account {
        account_id: id.into(),
        name: "Maria Lopez".into(),
        phone: "+14155550167".into(),
        amount: Decimal::from_str("125.50").unwrap(),
        currency: Some("USD".into()),
        due_date: NaiveDate::from_ymd_opt(2026, 11, 15).unwrap(),
        timezone: Some("America/New_York".into()),
        language: Language::En,
        jurisdiction: Some("us".into()),
        alt_phones: vec![],
        days_past_due: None,
        agent_uri: None,
        caller_id: None,
    }
}

/// A store with one account, one ended attempt with two turns, and an
/// open hardship escalation from it. Returns (escalation id, attempt id).
fn case(s: &mut Store) -> (i64, AttemptId) {
    s.upsert_accounts(&[account("A1")], t0()).unwrap();
    let a = s
        .record_decision(
            "A1",
            "+14155550167",
            t0(),
            &serde_json::json!({"decision": "allow"}),
        )
        .unwrap();
    s.mark_dialling(a, t0()).unwrap();
    let turn = |prompt: &str, heard: Option<&str>, intent: Option<&str>| TurnRow {
        prompt: prompt.into(),
        played_ms: 1000,
        finished: true,
        heard: heard.map(str::to_string),
        intent: intent.map(str::to_string),
        confidence: intent.map(|_| 0.8),
        start_ms: 0,
        end_ms: 2000,
    };
    s.record_outcome(
        a,
        &EndedAttempt {
            disposition: crate::outcome::Disposition::Answered,
            reason: None,
            sip_status: Some(200),
            ended_at: t0() + Duration::minutes(1),
            conversation: true,
            outcome_json: serde_json::json!({"turns": []}),
            recording: None,
            turns: vec![
                turn("right_party", Some("yes"), Some("identity_confirmed")),
                turn("reminder", Some("i lost my job"), Some("hardship")),
            ],
            route: None,
            escalations: vec![NewEscalation {
                account_id: "A1".into(),
                attempt_id: Some(a),
                reason: "hardship".into(),
                intent: Some("hardship".into()),
                summary: "lost job".into(),
                transcript: serde_json::json!([]),
                recording: None,
                created_at: t0() + Duration::minutes(1),
            }],
        },
    )
    .unwrap();
    let (list, _) = s
        .list_escalations(&EscalationFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    (list[0].id, a)
}

#[test]
fn of_many_concurrent_claims_exactly_one_wins() {
    let dir = TempDir::new("race");
    let id = {
        let mut s = Store::open(&dir.0).unwrap();
        case(&mut s).0
    };
    let n = 12;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (path, barrier) = (dir.0.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut s = Store::open(&path).unwrap();
                let who = Actor::user(&format!("c{}", i % 4), "collector");
                barrier.wait();
                s.claim_case(id, &who, t0()).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(results.iter().all(|r| match r {
        Ok(_) => true,
        Err(CaseRefusal::ClaimedBy(_)) | Err(CaseRefusal::AlreadyYours) => true,
        Err(other) => panic!("unexpected refusal {other:?}"),
    }));
    let s = Store::open(&dir.0).unwrap();
    let claims = s
        .audit_log(&AuditFilter {
            action: Some("escalation.claim".into()),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(claims.len(), 1, "one audit line for the one claim");
}

#[test]
fn only_the_claimer_works_a_case_and_closing_a_pause_feeds_the_gate() {
    let dir = TempDir::new("close");
    let mut s = Store::open(&dir.0).unwrap();
    let (id, _) = case(&mut s);
    let alice = Actor::user("alice", "collector");
    let bob = Actor::user("bob", "collector");
    let pause = CloseOutcome::Pause {
        until: t0() + Duration::days(30),
        reason: "hardship".into(),
    };
    assert_eq!(
        s.close_case(id, &alice, false, &pause, None, t0()).unwrap(),
        Err(CaseRefusal::NotClaimed)
    );
    s.claim_case(id, &alice, t0()).unwrap().unwrap();
    assert_eq!(
        s.add_case_note(id, &bob, false, "mine", t0()).unwrap(),
        Err(CaseRefusal::ClaimedBy("alice".into()))
    );
    s.add_case_note(id, &alice, false, "spoke with her", t0())
        .unwrap()
        .unwrap();
    let closure = s
        .close_case(id, &alice, false, &pause, Some("agreed to 30 days"), t0())
        .unwrap()
        .unwrap();
    assert_eq!(closure.outcome["outcome"], "pause");
    assert_eq!(
        s.account_state("A1").unwrap().pause_until,
        Some(t0() + Duration::days(30))
    );
    let (e, work) = s.escalation_case(id).unwrap().unwrap();
    assert_eq!(e.status, EscalationStatus::Closed);
    assert_eq!(work.notes.len(), 2);
    assert!(work.closure.is_some());
    assert_eq!(
        s.close_case(id, &alice, false, &CloseOutcome::Resolved, None, t0())
            .unwrap(),
        Err(CaseRefusal::Closed)
    );
}

#[test]
fn release_and_retry_lift_holds_suppress_writes_the_called_number() {
    let dir = TempDir::new("outcomes");
    let mut s = Store::open(&dir.0).unwrap();
    let (id, _) = case(&mut s);
    let admin = Actor::user("root", "admin");
    // A hold (no end) and a pause on the account.
    s.add_pause(
        "A1",
        "dispute",
        Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).unwrap(),
        t0(),
    )
    .unwrap();
    s.add_pause("A1", "hardship", t0() + Duration::days(30), t0())
        .unwrap();
    assert!(s.account_state("A1").unwrap().pause_until.unwrap() > t0());
    let later = t0() + Duration::days(2);
    s.close_case(
        id,
        &admin,
        true,
        &CloseOutcome::Retry { at: later },
        None,
        t0(),
    )
    .unwrap()
    .unwrap();
    let st = s.account_state("A1").unwrap();
    assert!(st.pause_until.unwrap() <= t0(), "every pause ended: {st:?}");
    assert_eq!(st.callback_at, Some(later));
    let changes: i64 = s
        .conn
        .query_row(
            "SELECT COUNT(*) FROM hold_changes WHERE action = 'release'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(changes, 2);

    let (id2, _) = {
        let a = s.add_escalation(&NewEscalation {
            account_id: "A1".into(),
            attempt_id: None,
            reason: "stop".into(),
            intent: None,
            summary: "x".into(),
            transcript: serde_json::json!([]),
            recording: None,
            created_at: t0(),
        });
        (a.unwrap(), ())
    };
    s.close_case(
        id2,
        &admin,
        true,
        &CloseOutcome::Suppress {
            scope: SuppressScope::Number,
            reason: "asked by phone".into(),
        },
        None,
        t0(),
    )
    .unwrap()
    .unwrap();
    let st = s.account_state("A1").unwrap();
    assert!(st
        .suppressions
        .iter()
        .any(|x| x.scope == SuppressScope::Number && x.number.as_deref() == Some("+14155550167")));
}

#[test]
fn pauses_extend_only_later_and_release_only_while_in_force() {
    let dir = TempDir::new("pauses");
    let mut s = Store::open(&dir.0).unwrap();
    s.upsert_accounts(&[account("A1")], t0()).unwrap();
    s.add_pause("A1", "promise_to_pay", t0() + Duration::days(3), t0())
        .unwrap();
    let p = s.list_pauses(t0(), false, None).unwrap()[0].id;
    let who = Actor::user("alice", "collector");
    assert!(matches!(
        s.extend_pause(p, t0() + Duration::days(1), &who, t0())
            .unwrap(),
        Some(Err(_))
    ));
    assert_eq!(
        s.extend_pause(p, t0() + Duration::days(10), &who, t0())
            .unwrap(),
        Some(Ok(()))
    );
    assert_eq!(
        s.pause(p).unwrap().unwrap().until,
        t0() + Duration::days(10)
    );
    assert_eq!(s.release_pause(p, &who, t0()).unwrap(), Some(true));
    assert_eq!(s.release_pause(p, &who, t0()).unwrap(), Some(false));
    assert_eq!(s.release_pause(999, &who, t0()).unwrap(), None);
    assert!(s.list_pauses(t0(), false, None).unwrap().is_empty());
    assert_eq!(s.list_pauses(t0(), true, Some("A1")).unwrap().len(), 1);
}

#[test]
fn labels_name_a_real_turn_and_the_latest_label_of_a_turn_is_exported() {
    let dir = TempDir::new("labels");
    let mut s = Store::open(&dir.0).unwrap();
    let (_, a) = case(&mut s);
    let qa = Actor::user("quinn", "qa");
    let mut l = NewLabel {
        attempt_id: a.0,
        turn_idx: Some(7),
        verdict: Verdict::Correct,
        right_intent: None,
        right_text: None,
        score: Some(4),
        note: None,
    };
    assert_eq!(s.add_label(&l, &qa, t0()).unwrap(), None, "no turn 7");
    l.turn_idx = Some(1);
    s.add_label(&l, &qa, t0()).unwrap().unwrap();
    l.verdict = Verdict::WrongIntent;
    l.right_intent = Some("dispute".into());
    s.add_label(&l, &qa, t0()).unwrap().unwrap();
    l.turn_idx = None;
    l.verdict = Verdict::ScriptProblem;
    l.right_intent = None;
    s.add_label(&l, &qa, t0()).unwrap().unwrap();
    assert_eq!(s.labels_of(a.0).unwrap().len(), 3);
    let turns = s.labelled_turns().unwrap();
    assert_eq!(turns.len(), 1, "one labelled turn, its latest label");
    assert_eq!(turns[0].label.verdict, Verdict::WrongIntent);
    assert_eq!(turns[0].heard.as_deref(), Some("i lost my job"));
}

#[test]
fn the_outbox_keeps_order_per_call_and_retries_without_blocking_other_calls() {
    let dir = TempDir::new("outbox");
    let mut s = Store::open(&dir.0).unwrap();
    let url = "http://127.0.0.1:9/hook";
    let all = EventKind::ALL.to_vec();
    // A new endpoint starts after what exists.
    s.enqueue_event(
        EventKind::CallEnded,
        t0(),
        "attempt:0",
        serde_json::json!({}),
    )
    .unwrap();
    assert_eq!(s.fan_out(url, &all, t0(), 100).unwrap(), 0);
    for (k, key) in [
        (EventKind::TransferStarted, "attempt:1"),
        (EventKind::RouteDecided, "attempt:2"),
        (EventKind::CallEnded, "attempt:1"),
        (EventKind::CallEnded, "attempt:2"),
    ] {
        s.enqueue_event(k, t0(), key, serde_json::json!({"k": key}))
            .unwrap();
    }
    assert_eq!(s.fan_out(url, &all, t0(), 100).unwrap(), 4);
    assert_eq!(
        s.fan_out(url, &all, t0(), 100).unwrap(),
        0,
        "fanned out once"
    );
    let due = s.due_deliveries(url, t0(), 10).unwrap();
    let keys: Vec<(&str, &str)> = due
        .iter()
        .map(|d| (d.order_key.as_str(), d.kind.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("attempt:1", "transfer.started"),
            ("attempt:2", "route.decided")
        ],
        "only the first pending event of each call"
    );
    // Call 1's first event fails: call 1 waits, call 2 goes on.
    s.mark_failed(due[0].id, "HTTP 503", t0() + Duration::seconds(5))
        .unwrap();
    s.mark_delivered(due[1].id, t0()).unwrap();
    let due = s.due_deliveries(url, t0(), 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].order_key.as_str(), due[0].kind.as_str()),
        ("attempt:2", "call.ended")
    );
    s.mark_delivered(due[0].id, t0()).unwrap();
    assert!(s.due_deliveries(url, t0(), 10).unwrap().is_empty());
    let retry = s
        .due_deliveries(url, t0() + Duration::seconds(5), 10)
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(retry[0].kind, "transfer.started");
    let body: serde_json::Value = serde_json::from_str(&retry[0].body).unwrap();
    assert_eq!(body["event"], "transfer.started");
    assert_eq!(body["id"], retry[0].uid.as_str());
    assert_eq!(body["data"]["k"], "attempt:1");
    let backlog = s.webhook_backlog().unwrap();
    assert_eq!(backlog[0].pending, 2);
    // A filter by kind: an endpoint that wants call.ended only.
    assert_eq!(
        s.fan_out(
            "http://127.0.0.1:9/ended",
            &[EventKind::CallEnded],
            t0(),
            100
        )
        .unwrap(),
        0
    );
    s.enqueue_event(
        EventKind::RouteDecided,
        t0(),
        "attempt:3",
        serde_json::json!({}),
    )
    .unwrap();
    s.enqueue_event(
        EventKind::CallEnded,
        t0(),
        "attempt:3",
        serde_json::json!({}),
    )
    .unwrap();
    assert_eq!(
        s.fan_out(
            "http://127.0.0.1:9/ended",
            &[EventKind::CallEnded],
            t0(),
            100
        )
        .unwrap(),
        1
    );
    // Pruning keeps what is owed.
    s.prune_outbox(t0() + Duration::days(60)).unwrap();
    assert_eq!(
        s.due_deliveries(url, t0() + Duration::seconds(5), 10)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_ended_attempt_stores_its_events_in_call_order_with_the_outcome() {
    let dir = TempDir::new("outcome-events");
    let mut s = Store::open(&dir.0).unwrap();
    let (esc, a) = case(&mut s);
    let events = s.events_after(0, 100).unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.order_key.as_str()))
        .collect();
    let key = format!("attempt:{}", a.0);
    assert_eq!(
        kinds,
        vec![
            ("escalation.created", key.as_str()),
            ("call.ended", key.as_str())
        ],
        "no route: no route.decided"
    );
    let url = "http://127.0.0.1:9/hook";
    // An endpoint fans out only what comes after it: a second call.
    s.fan_out(url, &EventKind::ALL, t0(), 100).unwrap();
    let b = s
        .record_decision("A1", "+14155550167", t0(), &serde_json::json!({}))
        .unwrap();
    s.mark_dialling(b, t0()).unwrap();
    s.record_outcome(
        b,
        &EndedAttempt {
            disposition: crate::outcome::Disposition::Answered,
            reason: None,
            sip_status: Some(200),
            ended_at: t0() + Duration::minutes(3),
            conversation: true,
            outcome_json: serde_json::json!({"intent": "stop_calling"}),
            recording: None,
            turns: vec![],
            route: Some(crate::outcome::Route::suppress(
                "stop_calling",
                SuppressScope::Account,
            )),
            escalations: vec![],
        },
    )
    .unwrap();
    assert_eq!(s.fan_out(url, &EventKind::ALL, t0(), 100).unwrap(), 2);
    let due = s.due_deliveries(url, t0(), 10).unwrap();
    assert_eq!(due.len(), 1, "one at a time per call");
    let body: serde_json::Value = serde_json::from_str(&due[0].body).unwrap();
    assert_eq!(body["event"], "route.decided");
    assert_eq!(body["data"]["route"]["kind"], "suppress");
    assert_eq!(body["data"]["attempt_id"], b.0);
    s.mark_delivered(due[0].id, t0()).unwrap();
    let due = s.due_deliveries(url, t0(), 10).unwrap();
    let body: serde_json::Value = serde_json::from_str(&due[0].body).unwrap();
    assert_eq!(body["event"], "call.ended");
    assert_eq!(body["data"]["disposition"], "answered");
    assert_eq!(body["data"]["intent"], "stop_calling");
    assert_eq!(body["data"]["route"], "suppress");
    assert_eq!(body["data"]["phone"], "+1********67", "masked");
    // The first call's escalation event names the case.
    let body: String = s
        .conn
        .query_row("SELECT data FROM events ORDER BY id LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["event"], "escalation.created");
    assert_eq!(body["data"]["escalation_id"], esc);
    assert_eq!(body["data"]["reason"], "hardship");
}

#[test]
fn campaigns_move_through_their_states_and_only_running_ones_are_dialled() {
    use super::campaigns::{CampaignRefusal, CampaignState};
    let dir = TempDir::new("campaigns");
    let mut s = Store::open(&dir.0).unwrap();
    let admin = Actor::user("root", "admin");
    let a = s.create_campaign("dec", &admin, t0()).unwrap().unwrap();
    let b = s.create_campaign("jan", &admin, t0()).unwrap().unwrap();
    assert_eq!(
        s.create_campaign("dec", &admin, t0()).unwrap(),
        Err(CampaignRefusal::NameTaken)
    );
    assert_eq!(
        s.add_campaign_accounts(
            a,
            &[account("A1"), account("A2")],
            &Default::default(),
            &admin,
            t0()
        )
        .unwrap(),
        Ok(2)
    );
    assert_eq!(
        s.add_campaign_accounts(
            b,
            &[account("A2"), account("A3")],
            &Default::default(),
            &admin,
            t0()
        )
        .unwrap(),
        Ok(2)
    );
    assert_eq!(
        s.add_campaign_accounts(a, &[account("A1")], &Default::default(), &admin, t0())
            .unwrap(),
        Ok(0),
        "already in"
    );
    assert!(
        s.running_accounts().unwrap().is_empty(),
        "drafts dial nobody"
    );
    assert_eq!(
        s.set_campaign_state(a, CampaignState::Paused, &admin, t0())
            .unwrap(),
        Err(CampaignRefusal::State(CampaignState::Draft)),
        "a draft is started before it is paused"
    );
    s.set_campaign_state(a, CampaignState::Running, &admin, t0())
        .unwrap()
        .unwrap();
    s.set_campaign_state(b, CampaignState::Running, &admin, t0())
        .unwrap()
        .unwrap();
    let ids: Vec<String> = s
        .running_accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.account_id)
        .collect();
    assert_eq!(ids, vec!["A1", "A2", "A3"], "each account once");
    let c = s
        .set_campaign_state(b, CampaignState::Stopped, &admin, t0())
        .unwrap()
        .unwrap();
    assert_eq!((c.state, c.accounts), (CampaignState::Stopped, 2));
    assert_eq!(
        s.set_campaign_state(b, CampaignState::Running, &admin, t0())
            .unwrap(),
        Err(CampaignRefusal::State(CampaignState::Stopped)),
        "stopped for good"
    );
    assert_eq!(
        s.add_campaign_accounts(b, &[account("A4")], &Default::default(), &admin, t0())
            .unwrap(),
        Err(CampaignRefusal::State(CampaignState::Stopped))
    );
    assert!(
        s.account("A4").unwrap().is_none(),
        "a refused upload stores nothing"
    );
    let ids: Vec<String> = s
        .running_accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.account_id)
        .collect();
    assert_eq!(ids, vec!["A1", "A2"]);
    assert_eq!(
        s.set_campaign_state(99, CampaignState::Running, &admin, t0())
            .unwrap(),
        Err(CampaignRefusal::NotFound)
    );
    let log = s
        .audit_log(&AuditFilter {
            target: Some(format!("campaign:{b}")),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "campaign.stopped",
            "campaign.running",
            "campaign.accounts",
            "campaign.create"
        ]
    );
}

#[test]
fn users_tokens_and_sessions_round_trip_and_end() {
    let dir = TempDir::new("access");
    let mut s = Store::open(&dir.0).unwrap();
    assert!(s
        .put_user("alice", Role::Collector, "$argon2id$x", t0())
        .unwrap());
    let (u, hash) = s.user_with_hash("alice").unwrap().unwrap();
    assert_eq!((u.role, hash.as_str()), (Role::Collector, "$argon2id$x"));
    s.create_session("h1", "alice", "csrf1", t0(), t0() + Duration::hours(1))
        .unwrap();
    assert_eq!(s.session("h1", t0()).unwrap().unwrap().csrf, "csrf1");
    assert!(
        s.session("h1", t0() + Duration::hours(2))
            .unwrap()
            .is_none(),
        "expired"
    );
    // A new password ends the sessions.
    assert!(!s.put_user("alice", Role::Qa, "$argon2id$y", t0()).unwrap());
    assert!(s.session("h1", t0()).unwrap().is_none());
    s.create_session("h2", "alice", "c", t0(), t0() + Duration::hours(1))
        .unwrap();
    assert!(s.disable_user("alice", t0()).unwrap());
    assert!(s.session("h2", t0()).unwrap().is_none());

    assert!(s
        .create_token("crm", Role::Admin, "hash1", "dct_1234", t0())
        .unwrap()
        .is_ok());
    assert!(s
        .create_token("crm", Role::Admin, "hash2", "dct_5678", t0())
        .unwrap()
        .is_err());
    assert_eq!(s.token_by_hash("hash1", t0()).unwrap().unwrap().name, "crm");
    assert!(s.revoke_token("crm", t0()).unwrap());
    assert!(s.token_by_hash("hash1", t0()).unwrap().is_none());
    assert!(
        s.create_token("crm", Role::Qa, "hash3", "dct_9", t0())
            .unwrap()
            .is_ok(),
        "a revoked name is reused"
    );
}

#[test]
fn a_claimed_delivery_is_posted_by_one_sender_until_its_claim_lapses_or_it_is_reported() {
    let dir = TempDir::new("outbox-claim");
    // Two senders on one store: two nodes' services, or two rounds.
    let mut a = Store::open(&dir.0).unwrap();
    let mut b = Store::open(&dir.0).unwrap();
    let url = "http://127.0.0.1:9/hook";
    let all = EventKind::ALL.to_vec();
    assert_eq!(a.fan_out(url, &all, t0(), 100).unwrap(), 0);
    for key in ["attempt:1", "attempt:2"] {
        a.enqueue_event(EventKind::CallEnded, t0(), key, serde_json::json!({}))
            .unwrap();
    }
    assert_eq!(b.fan_out(url, &all, t0(), 100).unwrap(), 2);
    let hold = Duration::seconds(60);
    let mine = a.claim_deliveries(url, t0(), hold, 10).unwrap();
    assert_eq!(
        mine.len(),
        2,
        "both due deliveries claimed by the first sender"
    );
    assert!(
        b.claim_deliveries(url, t0() + Duration::seconds(59), hold, 10)
            .unwrap()
            .is_empty(),
        "the second sender gets nothing while the claim holds"
    );
    // The first sender reports one; the other one's claim lapses (it died).
    a.mark_delivered(mine[0].id, t0() + Duration::seconds(1))
        .unwrap();
    let again = b
        .claim_deliveries(url, t0() + Duration::seconds(60), hold, 10)
        .unwrap();
    assert_eq!(
        again.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![mine[1].id],
        "only the unreported delivery, once its claim has lapsed"
    );
    assert_eq!(again[0].attempts, 0, "a lapsed claim is not a failed try");
    // A failure report sets the retry time, whatever the claim said.
    b.mark_failed(again[0].id, "HTTP 503", t0() + Duration::seconds(65))
        .unwrap();
    assert_eq!(
        a.claim_deliveries(url, t0() + Duration::seconds(65), hold, 10)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn lists_filter_page_and_count_every_match_in_a_stable_order() {
    use super::browse::AttemptFilter;
    let dir = TempDir::new("lists");
    let mut s = Store::open(&dir.0).unwrap();
    let (case_id, labelled) = case(&mut s);
    // Four more attempts one minute apart, still being dialled.
    let mut ids = vec![labelled.0];
    for i in 1..=4 {
        let a = s
            .record_decision(
                "A1",
                "+14155550167",
                t0() + Duration::minutes(i),
                &serde_json::json!({"decision": "allow"}),
            )
            .unwrap();
        ids.push(a.0);
    }
    let qa = Actor::user("quinn", "qa");
    let label = NewLabel {
        attempt_id: labelled.0,
        turn_idx: None,
        verdict: Verdict::Correct,
        right_intent: None,
        right_text: None,
        score: None,
        note: None,
    };
    s.add_label(&label, &qa, t0()).unwrap().unwrap();
    let list = |f: AttemptFilter| {
        let (l, total) = s.list_attempts(&f).unwrap();
        (l.into_iter().map(|a| a.id).collect::<Vec<_>>(), total)
    };
    // Newest first, paged: the total counts every match, not the page.
    let page = |offset| AttemptFilter {
        limit: 2,
        offset,
        ..Default::default()
    };
    assert_eq!(list(page(0)), (vec![ids[4], ids[3]], 5));
    assert_eq!(list(page(2)), (vec![ids[2], ids[1]], 5));
    assert_eq!(list(page(4)), (vec![ids[0]], 5));
    assert_eq!(
        list(AttemptFilter {
            limit: 10,
            oldest_first: true,
            ..Default::default()
        })
        .0,
        ids
    );
    // Filters combine (AND), with bound values.
    let answered = AttemptFilter {
        disposition: Some("answered".into()),
        intent: Some("hardship".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(answered), (vec![labelled.0], 1));
    let unlabelled_since = AttemptFilter {
        labelled: Some(false),
        since: Some(t0() + Duration::minutes(2)),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(unlabelled_since), (vec![ids[4], ids[3], ids[2]], 3));
    let hostile = AttemptFilter {
        account_id: Some("A1' OR '1'='1".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        list(hostile),
        (vec![], 0),
        "values are bound, never spliced"
    );
    // The escalation queue: open and claimed by default, by status when asked.
    let queue = |statuses: Vec<EscalationStatus>| {
        let (l, total) = s
            .list_escalations(&EscalationFilter {
                statuses,
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        (l.into_iter().map(|e| e.id).collect::<Vec<_>>(), total)
    };
    assert_eq!(queue(vec![]), (vec![case_id], 1));
    assert_eq!(queue(vec![EscalationStatus::Closed]), (vec![], 0));
    // The audit log: newest first, before an id, by action.
    let log = |f: AuditFilter| {
        s.audit_log(&f)
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.action))
            .collect::<Vec<_>>()
    };
    let all = log(AuditFilter {
        limit: 100,
        ..Default::default()
    });
    assert!(all.windows(2).all(|w| w[0].0 > w[1].0), "{all:?}");
    let labels = log(AuditFilter {
        action: Some("label.add".into()),
        limit: 100,
        ..Default::default()
    });
    assert_eq!(labels.len(), 1, "{all:?}");
    let before = log(AuditFilter {
        before_id: Some(labels[0].0),
        limit: 100,
        ..Default::default()
    });
    assert!(before.iter().all(|(id, _)| *id < labels[0].0));
}
