use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::account::history::PastAttempt;
use crate::account::{Account, Language};
use crate::outcome::{AskedHours, Disposition, Route, RouteKind, SuppressScope};
use crate::policy::{AccountState, Suppression};
use crate::store::cli::{run_export, ExportArgs, StoreArgs};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A fresh temporary directory (not created), removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "duecall-store-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where one test's store lives: a data directory (SQLite) or a fresh
/// database of the test cluster (PostgreSQL). Cloned into threads that
/// open their own connection.
#[derive(Clone)]
pub(super) struct TestDb {
    dir: PathBuf,
    url: Option<String>,
    _tmp: Option<Arc<TempDir>>,
}

impl TestDb {
    fn sqlite(tag: &str) -> TestDb {
        let tmp = TempDir::new(tag);
        TestDb {
            dir: tmp.0.clone(),
            url: None,
            _tmp: Some(Arc::new(tmp)),
        }
    }

    fn sqlite_in(dir: &Path) -> TestDb {
        TestDb {
            dir: dir.to_path_buf(),
            url: None,
            _tmp: None,
        }
    }

    /// A new database `name` in `cluster`.
    pub(super) fn postgres(cluster: &super::pg_cluster::PgCluster, name: &str) -> TestDb {
        let tmp = TempDir::new(name);
        TestDb {
            dir: tmp.0.clone(),
            url: Some(cluster.create_database(name).unwrap()),
            _tmp: Some(Arc::new(tmp)),
        }
    }

    /// A new connection to the test's store.
    pub(super) fn open(&self) -> Store {
        Store::open_at(&self.dir, self.url.as_deref()).unwrap()
    }
}

/// The tests that say what the store keeps, whichever engine keeps it: each
/// runs on SQLite as its own test, and all of them run on PostgreSQL (one
/// test cluster, one fresh database each) in `every_backend_test_on_postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::TestDb::sqlite(stringify!($name)));
                }
            )*
        }

        #[test]
        fn every_backend_test_on_postgres() {
            let Some(cluster) = super::pg_cluster::for_test("store") else {
                return;
            };
            $(
                eprintln!("on PostgreSQL: {}", stringify!($name));
                $name(&TestDb::postgres(&cluster, stringify!($name)));
            )*
        }
    };
}

on_both_backends!(
    accounts_round_trip_with_exact_amounts_and_upsert_updates,
    attempt_with_turns_and_route_round_trips,
    outcome_cannot_be_recorded_twice,
    routes_write_suppressions_pauses_and_callbacks_for_the_gate,
    crash_recovery_marks_in_flight_attempts_failed_and_they_still_count,
    imported_history_counts_once_and_is_not_exported,
    claim_never_hands_one_escalation_to_two_collectors,
    claims_take_the_oldest_open_escalation_and_skip_closed_ones,
    jsonl_export_writes_one_outcome_per_line_since_the_date,
    csv_export_has_a_header_and_one_row_per_attempt,
    escalations_given_with_the_outcome_are_queued_in_the_same_transaction,
    payments_round_trip_exactly,
    store_can_move_to_a_blocking_thread,
    a_dispute_holds_until_released_and_a_request_for_a_person_until_its_escalation_closes,
    a_once_only_escalation_is_queued_once_per_account,
    asked_hours_stand_on_later_calls_until_newer_hours_replace_them,
    only_a_dead_nodes_calls_in_flight_are_taken_over_once_its_lease_expires,
    a_claim_sees_calls_in_flight_on_the_account_or_the_number_and_names_its_node,
    a_do_not_call_list_imports_each_entry_once_by_number_by_account_and_both,
);

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
}

fn account(id: &str, phone: &str) -> Account {
    Account {
        account_id: id.into(),
        name: "Maria Lopez".into(),
        phone: phone.into(),
        amount: Decimal::from_str("125.50").unwrap(),
        currency: Some("USD".into()),
        due_date: NaiveDate::from_ymd_opt(2026, 2, 27).unwrap(),
        timezone: Some("America/New_York".into()),
        language: Language::En,
        jurisdiction: Some("us".into()),
        alt_phones: vec!["+14155550199".into()],
        days_past_due: Some(3),
        agent_uri: None,
        caller_id: None,
    }
}

fn turn(prompt: &str, intent: &str) -> TurnRow {
    TurnRow {
        prompt: prompt.into(),
        played_ms: 2100,
        finished: true,
        heard: Some("i lost my job".into()),
        intent: Some(intent.into()),
        confidence: Some(0.75),
        start_ms: 0,
        end_ms: 4200,
    }
}

fn ended(disposition: Disposition, at: DateTime<Utc>, route: Option<Route>) -> EndedAttempt {
    EndedAttempt {
        disposition,
        reason: None,
        sip_status: Some(200),
        ended_at: at,
        conversation: disposition == Disposition::Answered,
        outcome_json: json!({"call": {"disposition": disposition.as_str()}, "turns": []}),
        recording: Some("rec/1.wav".into()),
        turns: vec![],
        route,
        escalations: Vec::new(),
    }
}

fn accounts_round_trip_with_exact_amounts_and_upsert_updates(db: &TestDb) {
    let mut s = db.open();
    let mut a = account("a1", "+14155550100");
    s.upsert_accounts(&[a.clone(), account("a2", "+14155550101")], t(9, 0))
        .unwrap();
    assert_eq!(s.account("a1").unwrap().as_ref(), Some(&a));
    a.amount = Decimal::from_str("99.10").unwrap();
    a.alt_phones.clear();
    s.upsert_accounts(&[a.clone()], t(9, 5)).unwrap();
    let all = s.accounts().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], a);
    assert_eq!(all[0].amount.to_string(), "99.10");
}

fn attempt_with_turns_and_route_round_trips(db: &TestDb) {
    let mut s = db.open();
    let decision = json!({"allow": true, "rules": ["us: 0 of 7 in 7 days"]});
    let id = s
        .record_decision("a1", "+14155550100", t(14, 0), &decision)
        .unwrap();
    assert_eq!(s.attempt(id).unwrap().unwrap().state, AttemptState::Decided);
    s.mark_dialling(id, t(14, 1)).unwrap();
    let route = Route {
        kind: RouteKind::Agent,
        reason: "hardship".into(),
        until: None,
        scope: None,
        hours: None,
        follow_up: Some(Box::new(Route {
            kind: RouteKind::Pause,
            reason: "hardship".into(),
            until: Some(
                t(14, 0)
                    .checked_add_days(chrono::Days::new(30))
                    .unwrap()
                    .fixed_offset(),
            ),
            scope: None,
            hours: None,
            follow_up: None,
        })),
    };
    let mut out = ended(Disposition::Answered, t(14, 3), Some(route.clone()));
    out.turns = vec![
        turn("greeting", "identity_confirmed"),
        turn("reminder", "hardship"),
    ];
    s.record_outcome(id, &out).unwrap();

    let back = s.attempt(id).unwrap().unwrap();
    assert_eq!(back.state, AttemptState::Ended);
    assert_eq!(back.policy, decision);
    assert_eq!(back.started_at, Some(t(14, 1)));
    assert_eq!(back.ended_at, Some(t(14, 3)));
    assert_eq!(back.disposition, Some(Disposition::Answered));
    assert_eq!(back.sip_status, Some(200));
    assert!(back.conversation);
    assert_eq!(back.outcome, Some(out.outcome_json.clone()));
    assert_eq!(back.turns, out.turns);
    assert_eq!(back.route, Some(route));
    // The follow-up pause is in force for the gate.
    let st = s.account_state("a1").unwrap();
    assert_eq!(
        st.pause_until,
        Some(t(14, 0).checked_add_days(chrono::Days::new(30)).unwrap())
    );
}

fn outcome_cannot_be_recorded_twice(db: &TestDb) {
    let mut s = db.open();
    let id = s
        .record_decision("a1", "+14155550100", t(10, 0), &json!({}))
        .unwrap();
    s.record_outcome(id, &ended(Disposition::Busy, t(10, 1), None))
        .unwrap();
    let err = s
        .record_outcome(id, &ended(Disposition::Answered, t(10, 2), None))
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongState { .. }), "{err}");
    assert_eq!(
        s.attempt(id).unwrap().unwrap().disposition,
        Some(Disposition::Busy)
    );
    assert!(matches!(
        s.mark_dialling(AttemptId(999), t(10, 0)),
        Err(StoreError::UnknownAttempt(_))
    ));
}

fn asked_hours_stand_on_later_calls_until_newer_hours_replace_them(db: &TestDb) {
    let mut s = db.open();
    let hm = |h: u32, m: u32| chrono::NaiveTime::from_hms_opt(h, m, 0);
    let after_six = AskedHours {
        not_before: hm(18, 0),
        not_after: None,
    };
    let route = Route::retry("callback_later", t(18, 0).fixed_offset()).with_hours(Some(after_six));
    let id = s
        .record_decision("a1", "+14155550100", t(10, 0), &json!({}))
        .unwrap();
    s.record_outcome(
        id,
        &ended(Disposition::Answered, t(10, 2), Some(route.clone())),
    )
    .unwrap();
    // the attempt's route keeps them (QA sees what was asked)
    let back = s.attempt(id).unwrap().unwrap();
    assert_eq!(back.route.as_ref().and_then(|r| r.hours), Some(after_six));
    let st = s.account_state("a1").unwrap();
    assert_eq!(st.callback_at, Some(t(18, 0)));
    assert_eq!((st.asked_not_before, st.asked_not_after), (hm(18, 0), None));
    // a later one-off callback ("call tomorrow") does not lift them
    s.add_callback("a1", t(20, 0), None, t(12, 0)).unwrap();
    let st = s.account_state("a1").unwrap();
    assert_eq!(st.callback_at, Some(t(20, 0)));
    assert_eq!((st.asked_not_before, st.asked_not_after), (hm(18, 0), None));
    // newer asked hours replace them
    let morning = AskedHours {
        not_before: hm(9, 0),
        not_after: hm(11, 30),
    };
    s.add_callback("a1", t(21, 0), Some(morning), t(12, 5))
        .unwrap();
    let st = s.account_state("a1").unwrap();
    assert_eq!(
        (st.asked_not_before, st.asked_not_after),
        (hm(9, 0), hm(11, 30))
    );
    // another account is untouched
    let other = s.account_state("a2").unwrap();
    assert_eq!(
        (other.asked_not_before, other.asked_not_after),
        (None, None)
    );
}

fn routes_write_suppressions_pauses_and_callbacks_for_the_gate(db: &TestDb) {
    let mut s = db.open();
    let wrong = Route {
        kind: RouteKind::Suppress,
        reason: "wrong_number".into(),
        until: None,
        scope: Some(SuppressScope::Number),
        hours: None,
        follow_up: None,
    };
    let id = s
        .record_decision("a1", "+14155550100", t(10, 0), &json!({}))
        .unwrap();
    s.record_outcome(id, &ended(Disposition::Answered, t(10, 2), Some(wrong)))
        .unwrap();
    let st = s.account_state("a1").unwrap();
    assert_eq!(
        st.suppressions,
        vec![Suppression {
            scope: SuppressScope::Number,
            number: Some("+14155550100".into()),
            reason: "wrong_number".into(),
        }],
        "the number, with the reason the gate will show"
    );

    let callback = Route {
        kind: RouteKind::Retry,
        reason: "callback_later".into(),
        until: Some(t(17, 30).fixed_offset()),
        scope: None,
        hours: None,
        follow_up: None,
    };
    let id = s
        .record_decision("a1", "+14155550199", t(11, 0), &json!({}))
        .unwrap();
    s.record_outcome(id, &ended(Disposition::Answered, t(11, 2), Some(callback)))
        .unwrap();
    assert_eq!(s.account_state("a1").unwrap().callback_at, Some(t(17, 30)));
    // A later request replaces an earlier one, even if it asks for an earlier time.
    s.add_callback("a1", t(16, 0), None, t(12, 0)).unwrap();
    assert_eq!(s.account_state("a1").unwrap().callback_at, Some(t(16, 0)));

    s.add_pause("a1", "promise_to_pay", t(20, 0), t(12, 0))
        .unwrap();
    s.add_pause("a1", "older", t(18, 0), t(12, 1)).unwrap();
    assert_eq!(s.account_state("a1").unwrap().pause_until, Some(t(20, 0)));

    s.add_suppression("a1", None, "stop_calling", t(12, 2))
        .unwrap();
    s.add_suppression("a1", None, "second request", t(12, 3))
        .unwrap();
    let st = s.account_state("a1").unwrap();
    let accounts: Vec<&Suppression> = st
        .suppressions
        .iter()
        .filter(|x| x.scope == SuppressScope::Account)
        .collect();
    assert_eq!(
        accounts.len(),
        1,
        "one account suppression, the first reason"
    );
    assert_eq!(accounts[0].reason, "stop_calling");
    assert_eq!(st.suppressions.len(), 2, "the number's stays too");
    assert_eq!(s.account_state("a2").unwrap(), AccountState::default());
}

fn crash_recovery_marks_in_flight_attempts_failed_and_they_still_count(db: &TestDb) {
    let (decided, dialling, done);
    {
        let mut s = db.open();
        decided = s
            .record_decision("a1", "+14155550100", t(9, 0), &json!({"allow": true}))
            .unwrap();
        dialling = s
            .record_decision("a1", "+14155550100", t(9, 5), &json!({"allow": true}))
            .unwrap();
        s.mark_dialling(dialling, t(9, 6)).unwrap();
        done = s
            .record_decision("a1", "+14155550100", t(8, 0), &json!({"allow": true}))
            .unwrap();
        s.record_outcome(done, &ended(Disposition::NoAnswer, t(8, 1), None))
            .unwrap();
        // The process dies here: the store is dropped with two attempts in flight.
        let h = s.history_for("a1").unwrap();
        assert_eq!(h.len(), 3, "attempts in flight count as soon as decided");
        assert_eq!(
            h.iter()
                .filter(|r| r.disposition == Disposition::Answered)
                .count(),
            2,
            "in flight: no outcome yet, counted as answered (not yet known)"
        );
    }
    let mut s = db.open();
    let recovered = s.recover_after_crash(t(10, 0)).unwrap();
    assert_eq!(recovered, vec![decided, dialling]);
    for id in [decided, dialling] {
        let a = s.attempt(id).unwrap().unwrap();
        assert_eq!(a.state, AttemptState::FailedByCrash);
        assert_eq!(a.disposition, Some(Disposition::Failed));
        assert_eq!(a.reason.as_deref(), Some("crash"));
        assert_eq!(a.ended_at, Some(t(10, 0)));
    }
    assert_eq!(s.attempt(done).unwrap().unwrap().state, AttemptState::Ended);
    let h = s.history_for("a1").unwrap();
    assert_eq!(h.len(), 3, "crashed attempts still count");
    assert!(h.iter().all(|r| r.disposition != Disposition::Answered));
    assert_eq!(
        h.iter().map(|r| r.at).collect::<Vec<_>>(),
        vec![t(8, 0), t(9, 0), t(9, 6)]
    );
    assert!(s.recover_after_crash(t(11, 0)).unwrap().is_empty());
    // A late outcome for a recovered attempt is refused, not silently merged.
    assert!(matches!(
        s.record_outcome(dialling, &ended(Disposition::Answered, t(10, 5), None)),
        Err(StoreError::WrongState { .. })
    ));
}

fn imported_history_counts_once_and_is_not_exported(db: &TestDb) {
    let mut s = db.open();
    let rows = vec![
        PastAttempt {
            account_id: "a1".into(),
            phone: "+14155550100".into(),
            at: t(8, 0),
            disposition: Disposition::NoAnswer,
            conversation: false,
        },
        PastAttempt {
            account_id: "a1".into(),
            phone: "+14155550100".into(),
            at: t(8, 30),
            disposition: Disposition::Answered,
            conversation: true,
        },
    ];
    assert_eq!(s.import_history(&rows).unwrap(), 2);
    assert_eq!(s.import_history(&rows).unwrap(), 0);
    let h = s.history_for("a1").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        h[1],
        PastAttempt {
            account_id: "a1".into(),
            phone: "+14155550100".into(),
            at: t(8, 30),
            disposition: Disposition::Answered,
            conversation: true,
        }
    );
    let mut out = Vec::new();
    assert_eq!(s.export(t(0, 0), ExportFormat::Jsonl, &mut out).unwrap(), 0);
}

#[test]
fn opening_a_version_one_database_migrates_it_and_keeps_its_rows() {
    let dir = TempDir::new("migrate");
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join(DB_FILE);
    let id = {
        let s = Store::open_file(&path, 1).unwrap();
        assert_eq!(s.schema_version().unwrap(), 1);
        let has_escalations: i64 = s
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'escalations'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_escalations, 0, "version 1 has no escalation queue");
        // The row as version 1 wrote it (today's code writes columns
        // later migrations added).
        s.conn
            .query_row(
                "INSERT INTO attempts (account_id, phone, decided_at, policy, state)
                 VALUES ('a1', '+14155550100', ?1, '{\"allow\":true}', 'decided') RETURNING id",
                [ts(t(9, 0))],
                |r| r.get(0),
            )
            .map(AttemptId)
            .unwrap()
    };
    let mut s = Store::open(&dir.0).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::LATEST);
    assert_eq!(s.attempt(id).unwrap().unwrap().account_id, "a1");
    let e = NewEscalation {
        account_id: "a1".into(),
        attempt_id: Some(id),
        reason: "dispute".into(),
        intent: Some("dispute".into()),
        summary: "disputes the amount".into(),
        transcript: json!([]),
        recording: None,
        created_at: t(9, 2),
    };
    s.add_escalation(&e).unwrap();
    // Reopening applies nothing more.
    drop(s);
    assert_eq!(
        Store::open(&dir.0).unwrap().schema_version().unwrap(),
        schema::LATEST
    );
}

#[test]
fn database_from_a_newer_duecall_is_refused() {
    let dir = TempDir::new("newer");
    drop(Store::open(&dir.0).unwrap());
    let conn = rusqlite::Connection::open(dir.0.join(DB_FILE)).unwrap();
    conn.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [schema::LATEST + 1],
    )
    .unwrap();
    drop(conn);
    let err = Store::open(&dir.0).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, .. } if found == schema::LATEST + 1),
        "{err}"
    );
}

#[test]
fn wal_mode_is_on() {
    let dir = TempDir::new("wal");
    let s = Store::open(&dir.0).unwrap();
    let mode: String = s
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn every_commit_is_synced_to_disk() {
    let dir = TempDir::new("sync");
    let s = Store::open(&dir.0).unwrap();
    // 2 = FULL: a decision row survives a power cut, not only a crash.
    let level: i64 = s
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(level, 2);
}

#[test]
fn the_data_dir_and_database_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("modes");
    let data = dir.0.join("new").join("data");
    let mut s = Store::open(&data).unwrap();
    s.record_decision("a1", "+14155550100", t(10, 0), &json!({}))
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(DB_FILE)), 0o600);
    assert_eq!(mode(&data.join("duecall.db-wal")), 0o600, "the WAL too");
    drop(s);
    // A database left world-readable by an older duecall is tightened.
    std::fs::set_permissions(data.join(DB_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
    let _s = Store::open(&data).unwrap();
    assert_eq!(mode(&data.join(DB_FILE)), 0o600);
}

#[test]
fn bad_data_dir_gives_an_error_naming_it() {
    let dir = TempDir::new("baddir");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = Store::open(&file).unwrap_err();
    assert!(matches!(err, StoreError::NotADirectory { .. }));
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    let below_file = file.join("sub");
    let err = Store::open(&below_file).unwrap_err();
    assert!(matches!(err, StoreError::DataDir { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");

    let junk = dir.0.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join(DB_FILE), vec![b'z'; 4096]).unwrap();
    let err = Store::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains(DB_FILE), "{err}");

    let err = Store::open_existing(&dir.0.join("never-used")).unwrap_err();
    assert!(matches!(err, StoreError::NoDatabase { .. }), "{err}");
}

fn claim_never_hands_one_escalation_to_two_collectors(db: &TestDb) {
    let n = 60;
    {
        let mut s = db.open();
        for i in 0..n {
            s.add_escalation(&NewEscalation {
                account_id: format!("a{i}"),
                attempt_id: None,
                reason: "hardship".into(),
                intent: None,
                summary: format!("case {i}"),
                transcript: json!([{"prompt": "greeting"}]),
                recording: None,
                created_at: t(9, 0) + chrono::Duration::seconds(i),
            })
            .unwrap();
        }
    }
    let collectors = 4;
    let barrier = Arc::new(Barrier::new(collectors));
    let handles: Vec<_> = (0..collectors)
        .map(|c| {
            let db = db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut s = db.open();
                barrier.wait();
                let mut got = Vec::new();
                while let Some(e) = s
                    .claim_escalation(&format!("collector-{c}"), t(10, 0))
                    .unwrap()
                {
                    assert_eq!(e.status, EscalationStatus::Claimed);
                    assert_eq!(
                        e.claimed_by.as_deref(),
                        Some(format!("collector-{c}").as_str())
                    );
                    got.push(e.id);
                }
                got
            })
        })
        .collect();
    let all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        n as usize,
        "every escalation claimed exactly once"
    );
    assert_eq!(unique.len(), n as usize, "no escalation claimed twice");
    let s = db.open();
    assert!(s
        .escalations(Some(EscalationStatus::Open))
        .unwrap()
        .is_empty());
    assert_eq!(
        s.escalations(Some(EscalationStatus::Claimed))
            .unwrap()
            .len(),
        n as usize
    );
}

fn claims_take_the_oldest_open_escalation_and_skip_closed_ones(db: &TestDb) {
    let mut s = db.open();
    let mk = |i: i64, at| NewEscalation {
        account_id: format!("a{i}"),
        attempt_id: None,
        reason: "dispute".into(),
        intent: Some("dispute".into()),
        summary: "s".into(),
        transcript: json!([]),
        recording: Some("r.wav".into()),
        created_at: at,
    };
    let late = s.add_escalation(&mk(1, t(12, 0))).unwrap();
    let early = s.add_escalation(&mk(2, t(11, 0))).unwrap();
    let closed = s.add_escalation(&mk(3, t(10, 0))).unwrap();
    assert!(s.close_escalation(closed, t(10, 30)).unwrap());
    let first = s.claim_escalation("c", t(13, 0)).unwrap().unwrap();
    assert_eq!(first.id, early);
    assert_eq!(first.recording.as_deref(), Some("r.wav"));
    assert_eq!(s.claim_escalation("c", t(13, 0)).unwrap().unwrap().id, late);
    assert!(s.claim_escalation("c", t(13, 0)).unwrap().is_none());
}

fn store_with_two_ended_attempts(db: &TestDb) -> (AttemptId, AttemptId) {
    let mut s = db.open();
    let old = s
        .record_decision("a0", "+14155550000", t(1, 0), &json!({"allow": true}))
        .unwrap();
    s.record_outcome(old, &ended(Disposition::Busy, t(1, 1), None))
        .unwrap();
    let id1 = s
        .record_decision(
            "a1",
            "+14155550100",
            t(9, 0),
            &json!({"allow": true, "why": "x"}),
        )
        .unwrap();
    s.mark_dialling(id1, t(9, 1)).unwrap();
    let mut o = ended(
        Disposition::Answered,
        t(9, 4),
        Some(Route {
            kind: RouteKind::Suppress,
            reason: "wrong_number".into(),
            until: None,
            scope: Some(SuppressScope::Number),
            hours: None,
            follow_up: None,
        }),
    );
    o.turns = vec![turn("greeting", "wrong_number")];
    o.outcome_json = json!({"call": {"disposition": "answered", "to": "+14155550100"}, "turns": [], "route": {"kind": "suppress"}});
    s.record_outcome(id1, &o).unwrap();
    let id2 = s
        .record_decision("a2", "+14155550200", t(9, 10), &json!({"allow": true}))
        .unwrap();
    s.recover_after_crash(t(9, 30)).unwrap();
    // Still in flight: not exported.
    s.record_decision("a3", "+14155550300", t(9, 40), &json!({"allow": true}))
        .unwrap();
    (id1, id2)
}

fn jsonl_export_writes_one_outcome_per_line_since_the_date(db: &TestDb) {
    let (id1, id2) = store_with_two_ended_attempts(db);
    let s = db.open();
    let mut out = Vec::new();
    assert_eq!(s.export(t(9, 0), ExportFormat::Jsonl, &mut out).unwrap(), 2);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["attempt_id"], json!(id1.0));
    assert_eq!(lines[0]["account_id"], "a1");
    assert_eq!(lines[0]["policy"]["why"], "x");
    assert_eq!(lines[0]["route"]["kind"], "suppress");
    assert_eq!(lines[1]["attempt_id"], json!(id2.0));
    assert_eq!(lines[1]["state"], "failed_by_crash");
    assert_eq!(lines[1]["call"]["disposition"], "failed");
    assert_eq!(lines[1]["call"]["reason"], "crash");
}

use serde_json::Value;

fn csv_export_has_a_header_and_one_row_per_attempt(db: &TestDb) {
    let (id1, _) = store_with_two_ended_attempts(db);
    let s = db.open();
    let mut out = Vec::new();
    s.export(t(0, 0), ExportFormat::Csv, &mut out).unwrap();
    let mut r = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        export::CSV_HEADER.to_vec()
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let row = rows.iter().find(|r| r[0] == id1.to_string()).unwrap();
    let col = |name: &str| export::CSV_HEADER.iter().position(|h| *h == name).unwrap();
    assert_eq!(&row[col("disposition")], "answered");
    assert_eq!(&row[col("route_kind")], "suppress");
    assert_eq!(&row[col("route_scope")], "number");
    assert_eq!(&row[col("last_intent")], "wrong_number");
    assert_eq!(&row[col("started_at")], "2026-03-02T09:01:00.000Z");
    assert_eq!(&row[col("conversation")], "true");
}

#[test]
fn export_command_reads_the_data_dir_and_rejects_unknown_formats() {
    let dir = TempDir::new("cli");
    store_with_two_ended_attempts(&TestDb::sqlite_in(&dir.0));
    let args = |format: &str, d: &Path| ExportArgs {
        since: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        format: format.into(),
        at: StoreArgs {
            data_dir: Some(d.to_path_buf()),
            store: None,
        },
    };
    let mut out = Vec::new();
    run_export(&args("csv", &dir.0), &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 4);
    let mut out = Vec::new();
    assert!(matches!(
        run_export(&args("xml", &dir.0), &mut out),
        Err(StoreError::UnknownFormat(_))
    ));
    let err = run_export(&args("jsonl", &dir.0.join("typo")), &mut out).unwrap_err();
    assert!(matches!(err, StoreError::NoDatabase { .. }), "{err}");
    assert!(
        !dir.0.join("typo").exists(),
        "export must not create a data directory"
    );
    let mut out = Vec::new();
    let later = ExportArgs {
        since: NaiveDate::from_ymd_opt(2026, 3, 3).unwrap(),
        ..args("jsonl", &dir.0)
    };
    run_export(&later, &mut out).unwrap();
    assert!(out.is_empty());
}

fn escalations_given_with_the_outcome_are_queued_in_the_same_transaction(db: &TestDb) {
    let mut s = db.open();
    let id = s
        .record_decision("a1", "+14155550100", t(10, 0), &json!({}))
        .unwrap();
    let mut o = ended(Disposition::Answered, t(10, 3), None);
    let hardship = NewEscalation {
        account_id: "a1".into(),
        attempt_id: Some(id),
        reason: "hardship".into(),
        intent: Some("hardship".into()),
        summary: "lost job".into(),
        transcript: json!([{"prompt": "reminder", "heard": "i lost my job"}]),
        recording: Some("rec/1.wav".into()),
        created_at: t(10, 3),
    };
    let failed = NewEscalation {
        reason: "transfer-failed".into(),
        ..hardship.clone()
    };
    o.escalations = vec![hardship, failed];
    s.record_outcome(id, &o).unwrap();
    let q = s.escalations(None).unwrap();
    assert_eq!(q.len(), 2, "every escalation of the outcome is queued");
    let mut reasons: Vec<&str> = q.iter().map(|e| e.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(reasons, ["hardship", "transfer-failed"]);
    assert_eq!(q[0].attempt_id, Some(id));
    assert_eq!(q[0].transcript[0]["heard"], "i lost my job");
    assert_eq!(q[0].status, EscalationStatus::Open);
}

fn a_do_not_call_list_imports_each_entry_once_by_number_by_account_and_both(db: &TestDb) {
    use crate::account::lists::DoNotCall;
    let mut s = db.open();
    let entry = |phone: Option<&str>, account: Option<&str>, scope, reason: &str| DoNotCall {
        phone: phone.map(str::to_string),
        account_id: account.map(str::to_string),
        scope,
        reason: reason.into(),
    };
    let list = [
        entry(
            Some("+14155550100"),
            None,
            SuppressScope::Number,
            "asked by letter",
        ),
        entry(None, Some("a2"), SuppressScope::Account, "attorney"),
        entry(
            Some("+14155550101"),
            Some("a3"),
            SuppressScope::Number,
            "that number only",
        ),
    ];
    assert_eq!(s.import_do_not_call(&list, t(8, 0)).unwrap(), 3);
    // The same list again adds nothing (an account entry without a number
    // is matched on its empty number too).
    assert_eq!(s.import_do_not_call(&list, t(9, 0)).unwrap(), 0);
    let rows = s.suppressions().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.source == "list"));
    let a2 = s.account_state("a2").unwrap();
    assert!(
        a2.suppressions
            .iter()
            .any(|x| x.scope == SuppressScope::Account && x.reason.contains("attorney")),
        "{a2:?}"
    );
}

fn payments_round_trip_exactly(db: &TestDb) {
    let mut s = db.open();
    s.add_payment("a1", Decimal::from_str("60.25").unwrap(), t(8, 0))
        .unwrap();
    s.add_payment("a1", Decimal::from_str("65.25").unwrap(), t(12, 0))
        .unwrap();
    let p = s.payments_since("a1", t(9, 0)).unwrap();
    assert_eq!(p, vec![(Decimal::from_str("65.25").unwrap(), t(12, 0))]);
}

fn store_can_move_to_a_blocking_thread(db: &TestDb) {
    fn is_send<T: Send>() {}
    is_send::<Store>();
    let s = db.open();
    let v = std::thread::spawn(move || s.schema_version().unwrap())
        .join()
        .unwrap();
    assert_eq!(v, schema::LATEST);
}

fn a_dispute_holds_until_released_and_a_request_for_a_person_until_its_escalation_closes(
    db: &TestDb,
) {
    use crate::policy::HoldKind;
    let mut s = db.open();
    let esc = |id: AttemptId, reason: &str| NewEscalation {
        account_id: "a1".into(),
        attempt_id: Some(id),
        reason: reason.into(),
        intent: Some(reason.into()),
        summary: reason.into(),
        transcript: json!([]),
        recording: None,
        created_at: t(10, 3),
    };
    // A call at `hour`:00, answered and routed to a person for `reason`
    // at :03, with its escalation.
    let mut to_a_person = |hour: u32, reason: &str| {
        let id = s
            .record_decision("a1", "+14155550100", t(hour, 0), &json!({}))
            .unwrap();
        let mut o = ended(
            Disposition::Answered,
            t(hour, 3),
            Some(Route::agent(reason)),
        );
        o.escalations = vec![esc(id, reason)];
        s.record_outcome(id, &o).unwrap();
    };
    to_a_person(10, "dispute");
    to_a_person(11, "request_agent");

    let held = s.account_state("a1").unwrap().holds;
    let kinds: Vec<HoldKind> = held.iter().map(|h| h.kind).collect();
    assert_eq!(kinds, [HoldKind::Dispute, HoldKind::Agent]);
    assert_eq!(held[1].since, t(11, 3));
    assert_eq!(held[1].reason, "request_agent");

    // Closing every escalation of the request lets its agent hold go; the
    // dispute's stays until a person releases it.
    for e in s.escalations(None).unwrap() {
        assert!(s.close_escalation(e.id, t(12, 0)).unwrap());
    }
    let held = s.account_state("a1").unwrap().holds;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].kind, HoldKind::Dispute);
    assert_eq!(
        s.release_holds(
            "a1",
            Some(HoldKind::Dispute),
            "verified by J. Doe",
            t(13, 0)
        )
        .unwrap(),
        1
    );
    assert!(s.account_state("a1").unwrap().holds.is_empty());
    let rows = s.holds(Some("a1")).unwrap();
    assert_eq!(rows.len(), 2, "released holds stay on record");
    assert_eq!(rows[0].released_by.as_deref(), Some("verified by J. Doe"));
    assert_eq!(
        rows[1].released_by.as_deref(),
        Some(format!("escalation {} closed", s.escalations(None).unwrap()[1].id).as_str())
    );
}

fn a_once_only_escalation_is_queued_once_per_account(db: &TestDb) {
    let mut s = db.open();
    let e = NewEscalation {
        account_id: "a1".into(),
        attempt_id: None,
        reason: "stage-ended".into(),
        intent: None,
        summary: "day 16".into(),
        transcript: json!([]),
        recording: None,
        created_at: t(10, 0),
    };
    assert!(s.add_escalation_once(&e).unwrap().is_some());
    assert_eq!(s.add_escalation_once(&e).unwrap(), None);
    let other = NewEscalation {
        account_id: "a2".into(),
        ..e
    };
    assert!(s.add_escalation_once(&other).unwrap().is_some());
    assert_eq!(s.escalations(None).unwrap().len(), 2);
}

fn only_a_dead_nodes_calls_in_flight_are_taken_over_once_its_lease_expires(db: &TestDb) {
    use super::nodes::Asking;
    let lease = chrono::Duration::seconds(30);
    let (mut a, mut b) = (db.open(), db.open());
    a.take_lease("node-a", 11, t(9, 0), lease).unwrap();
    b.take_lease("node-b", 12, t(9, 0), lease).unwrap();
    let id = a
        .record_decision("a1", "+14155550100", t(9, 0), &json!({}))
        .unwrap();
    a.mark_dialling(id, t(9, 0)).unwrap();
    assert_eq!(b.attempt_node(id).unwrap().as_deref(), Some("node-a"));
    // a is alive (its lease runs to 9:00:30): b takes nothing, not even at
    // its own start-up.
    let at = |s: i64| t(9, 0) + chrono::Duration::seconds(s);
    for asking in [Asking::StartUp, Asking::Running] {
        assert!(b.in_flight_to_take_over(asking, at(29)).unwrap().is_empty());
        assert!(!b.take_over_crashed(id, asking, at(29), at(29)).unwrap());
    }
    // a's heartbeat at 9:00:20 moves its lease to 9:00:50.
    assert!(a.renew_lease("node-a", at(20), lease).unwrap());
    assert!(b
        .in_flight_to_take_over(Asking::Running, at(45))
        .unwrap()
        .is_empty());
    // a dies: from 9:00:50 on, b takes its call over, once.
    let due = b.in_flight_to_take_over(Asking::Running, at(50)).unwrap();
    assert_eq!(due, vec![(id, "a1".to_string())]);
    assert!(b
        .take_over_crashed(id, Asking::Running, at(50), at(50))
        .unwrap());
    assert!(!b
        .take_over_crashed(id, Asking::Running, at(51), at(51))
        .unwrap());
    let rec = b.attempt(id).unwrap().unwrap();
    assert_eq!(rec.state, AttemptState::FailedByCrash);
    assert_eq!(rec.reason.as_deref(), Some("crash"));
    // a, back too late, has lost its lease and is told so.
    assert!(!a.renew_lease("node-a", at(55), lease).unwrap());
    // A running node never takes its own calls over; its next incarnation
    // (same node id, same data directory) does at start-up.
    let own = b
        .record_decision("a2", "+14155550102", at(60), &json!({}))
        .unwrap();
    assert!(b
        .in_flight_to_take_over(Asking::Running, at(3600))
        .unwrap()
        .is_empty());
    let mut b2 = db.open();
    b2.take_lease("node-b", 13, at(61), lease).unwrap();
    assert_eq!(
        b2.in_flight_to_take_over(Asking::StartUp, at(61)).unwrap(),
        vec![(own, "a2".to_string())]
    );
    // A clean stop gives the lease back.
    b2.release_lease("node-b", at(62)).unwrap();
    let nodes = b2.nodes().unwrap();
    assert_eq!(nodes.len(), 2);
    let nb = nodes.iter().find(|n| n.node_id == "node-b").unwrap();
    assert_eq!((nb.pid, nb.stopped_at), (13, Some(at(62))));
    assert_eq!(nb.host, super::nodes::host_name());
}

fn a_claim_sees_calls_in_flight_on_the_account_or_the_number_and_names_its_node(db: &TestDb) {
    let mut s = db.open();
    s.take_lease("node-a", 1, t(9, 0), chrono::Duration::seconds(30))
        .unwrap();
    let claim = s.begin_claim("a1", "+14155550100").unwrap().unwrap();
    assert!(!claim.in_flight("a1", "+14155550100").unwrap());
    let id = claim
        .record_decision("a1", "+14155550100", t(9, 0), &json!({"decision": "allow"}))
        .unwrap();
    assert_eq!(s.attempt_node(id).unwrap().as_deref(), Some("node-a"));
    // From another connection (another node): the account, and the number
    // about another account, are in flight.
    let mut other = db.open();
    {
        let c = other.begin_claim("a9", "+14155550999").unwrap().unwrap();
        assert!(c.in_flight("a1", "+14155550999").unwrap());
        assert!(c.in_flight("a9", "+14155550100").unwrap());
        assert!(!c.in_flight("a9", "+14155550999").unwrap());
        // Dropped without recording: nothing stored.
    }
    assert_eq!(other.history_for("a9").unwrap().len(), 0);
    s.record_outcome(id, &ended(Disposition::Busy, t(9, 1), None))
        .unwrap();
    let c = other.begin_claim("a1", "+14155550100").unwrap().unwrap();
    assert!(!c.in_flight("a1", "+14155550100").unwrap());
}

/// On PostgreSQL a claim locks only its account's and number's rows: while
/// one connection (node) holds a claim, another's claim on the same account
/// or the same number is refused at once (`None`, never a wait), and a claim
/// on another account and number goes through side by side; a dropped claim
/// frees its rows. (SQLite claims under its one write lock: a second
/// connection waits for it, which `a_claim_sees_calls_in_flight_...` covers.)
fn claims_on_postgres_lock_only_their_account_and_number(db: &TestDb) {
    let mut a = db.open();
    let mut b = db.open();
    let held = a.begin_claim("a1", "+14155550100").unwrap().expect("free");
    let started = std::time::Instant::now();
    assert!(
        b.begin_claim("a1", "+14155550999").unwrap().is_none(),
        "the account is being claimed"
    );
    assert!(
        b.begin_claim("a2", "+14155550100").unwrap().is_none(),
        "the number is being claimed (about another account)"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused at once, not after waiting"
    );
    let side = b
        .begin_claim("a2", "+14155550101")
        .unwrap()
        .expect("another account on another number is not in the way");
    let id = side
        .record_decision("a2", "+14155550101", t(9, 0), &json!({}))
        .unwrap();
    assert!(b.attempt(id).unwrap().is_some());
    drop(held);
    assert!(
        b.begin_claim("a1", "+14155550100").unwrap().is_some(),
        "a dropped claim frees its rows"
    );
}

#[test]
fn claims_lock_only_their_account_and_number_on_postgres() {
    let Some(cluster) = super::pg_cluster::for_test("claimlocks") else {
        return;
    };
    claims_on_postgres_lock_only_their_account_and_number(&TestDb::postgres(
        &cluster,
        "claim_locks",
    ));
}
