//! Crash recovery on real files: recordings repaired, outcomes the dead run
//! left (a pending copy, the JSON beside the recording) imported with their
//! routes, unreadable files kept.
use super::super::outcomes::store_failure;
use super::super::test_support::{account, t0, tmp_dir};
use super::*;
use crate::outcome::{Disposition, RouteKind};
use chrono::Duration;

fn store_with(dir: &Path, accounts: &[crate::account::Account]) -> Store {
    let mut s = Store::open(dir).unwrap();
    s.upsert_accounts(accounts, t0()).unwrap();
    s
}

#[test]
fn attempts_in_flight_at_a_crash_become_failed_and_their_recordings_are_repaired() {
    let dir = tmp_dir("recover");
    let rec_dir = dir.join("recordings");
    let a = account("A/1", "+8613800000001", &[]);
    let mut w = store_with(&dir, &[a]);
    let done = w
        .record_decision("A/1", "+8613800000001", t0(), &serde_json::json!({}))
        .unwrap();
    w.mark_dialling(done, t0()).unwrap();
    w.record_outcome(done, &store_failure(Disposition::Busy, "test", "", t0()))
        .unwrap();
    let id = w
        .record_decision("A/1", "+8613800000001", t0(), &serde_json::json!({}))
        .unwrap();
    w.mark_dialling(id, t0()).unwrap();
    // The agent's name for it; the writer dies before its final header.
    let path = rec_dir.join(format!("A_1-{id}-20261120T020000Z.wav"));
    let mut r = crate::media::recorder::StereoRecorder::create(&path).unwrap();
    for _ in 0..30 {
        r.write_frame(&[100; 160], &[-100; 160]).unwrap();
    }
    std::mem::forget(r);
    std::fs::write(
        rec_dir.join(format!("A_1-{}-x.wav", id.0 + 10)),
        b"not ours",
    )
    .unwrap();

    let rec = recover(&mut w, &dir, Some(&rec_dir), t0() + Duration::minutes(1)).unwrap();
    assert_eq!(rec.len(), 1, "only the attempt still in flight");
    assert_eq!(rec[0].attempt_id, id);
    assert_eq!(rec[0].recordings, vec![path.clone()]);
    let row = w.attempt(id).unwrap().unwrap();
    assert_eq!(row.state, crate::store::AttemptState::FailedByCrash);
    assert_eq!(row.reason.as_deref(), Some("crash"));
    assert_eq!(
        w.attempt(done).unwrap().unwrap().disposition,
        Some(Disposition::Busy),
        "ended outcomes are kept"
    );
    assert_eq!(
        w.history_for("A/1").unwrap().len(),
        2,
        "the crashed attempt still counts"
    );
    let mut reader = hound::WavReader::open(&path).expect("repaired recording opens");
    assert_eq!(reader.spec().channels, 2);
    let n = reader.samples::<i16>().filter_map(Result::ok).count();
    assert!(
        n >= 160 * 2,
        "audio up to the crash is readable ({n} samples)"
    );
}

fn in_flight(w: &mut Store, account: &str, phone: &str) -> AttemptId {
    let id = w
        .record_decision(
            account,
            phone,
            t0(),
            &serde_json::json!({"decision": "allow"}),
        )
        .unwrap();
    w.mark_dialling(id, t0()).unwrap();
    id
}

fn stop_calling() -> Route {
    Route {
        kind: RouteKind::Suppress,
        reason: "stop_calling".into(),
        until: None,
        scope: Some(crate::outcome::SuppressScope::Account),
        hours: None,
        follow_up: None,
    }
}

#[test]
fn a_pending_outcome_the_database_refused_is_imported_with_its_route() {
    let dir = tmp_dir("recover-pending");
    let mut w = store_with(&dir, &[account("P1", "+8613800000001", &[])]);
    let id = in_flight(&mut w, "P1", "+8613800000001");
    let mut ended = store_failure(Disposition::Answered, "test", "", t0());
    ended.reason = None;
    ended.conversation = true;
    ended.route = Some(stop_calling());
    let file = pending_file(&dir, id);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        serde_json::to_vec(&PendingOutcome {
            attempt_id: id,
            account_id: "P1".into(),
            ended: ended.clone(),
        })
        .unwrap(),
    )
    .unwrap();
    let rec = recover(&mut w, &dir, None, t0() + Duration::minutes(1)).unwrap();
    assert_eq!(rec[0].imported_from.as_deref(), Some(file.as_path()));
    let row = w.attempt(id).unwrap().unwrap();
    assert_eq!(row.state, crate::store::AttemptState::Ended);
    assert_eq!(row.disposition, Some(Disposition::Answered));
    assert!(row.conversation);
    assert_eq!(row.route, Some(stop_calling()));
    let st = w.account_state("P1").unwrap();
    assert!(
        st.suppressions.iter().any(
            |s| s.scope == crate::outcome::SuppressScope::Account && s.reason == "stop_calling"
        ),
        "stop calling is not forgotten: {st:?}"
    );
    assert!(!file.exists(), "the copy goes once the store has it");
}

#[test]
fn an_orphaned_outcome_json_beside_the_recording_is_imported() {
    let dir = tmp_dir("recover-json");
    let rec_dir = dir.join("recordings");
    std::fs::create_dir_all(&rec_dir).unwrap();
    let mut w = store_with(&dir, &[account("J/1", "+8613800000001", &[])]);
    let other = in_flight(&mut w, "J/1", "+8613800000001");
    let id = in_flight(&mut w, "J/1", "+8613800000001");
    let json = serde_json::json!({
        "call": {"disposition": "answered", "sip_status": 200, "ended_at": "2026-11-20T02:03:00Z",
                 "recording": rec_dir.join(format!("J_1-{id}-x.wav")).display().to_string()},
        "account_id": "J/1",
        "attempt_id": id.0,
        "turns": [{"prompt": "identity", "prompt_start_ms": 100, "played_ms": 2000, "finished": true,
                   "heard": "yes", "intent": "identity_confirmed", "confidence": 0.9,
                   "start_ms": 2500, "end_ms": 3000},
                  {"prompt": "reminder", "prompt_start_ms": 3100, "played_ms": 4000, "finished": true,
                   "heard": "i dispute this", "intent": "dispute", "confidence": 0.8,
                   "start_ms": 7500, "end_ms": 8000}],
        "route": {"kind": "agent", "reason": "dispute"},
        "intent": "dispute",
        "escalations": [{"reason": "dispute", "summary": "account J/1 disputes the debt", "at_ms": 8000}],
        "conversation": true
    });
    std::fs::write(
        rec_dir.join(format!("J_1-{id}-20261120T020000Z.json")),
        serde_json::to_vec(&json).unwrap(),
    )
    .unwrap();
    // Another attempt's JSON that claims to be this one's is not taken.
    let mut liar = json.clone();
    liar["attempt_id"] = serde_json::json!(other.0 + 100);
    std::fs::write(
        rec_dir.join(format!("J_1-{other}-20261120T020000Z.json")),
        serde_json::to_vec(&liar).unwrap(),
    )
    .unwrap();
    let rec = recover(&mut w, &dir, Some(&rec_dir), t0() + Duration::minutes(1)).unwrap();
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0].attempt_id, other);
    assert_eq!(
        rec[0].imported_from, None,
        "a JSON of another attempt is not imported"
    );
    assert_eq!(
        w.attempt(other).unwrap().unwrap().state,
        crate::store::AttemptState::FailedByCrash
    );
    assert!(rec[1].imported_from.is_some());
    let row = w.attempt(id).unwrap().unwrap();
    assert_eq!(row.state, crate::store::AttemptState::Ended);
    assert_eq!(row.route.as_ref().map(|r| r.kind), Some(RouteKind::Agent));
    assert_eq!(row.turns.len(), 2);
    assert_eq!(row.turns[1].intent.as_deref(), Some("dispute"));
    assert_eq!(row.sip_status, Some(200));
    let q = w.escalations(None).unwrap();
    assert_eq!(q.len(), 1, "the dispute reaches a collector");
    assert_eq!(q[0].reason, "dispute");
    assert_eq!(q[0].summary, "account J/1 disputes the debt");
    assert_eq!(
        q[0].transcript.as_array().map(Vec::len),
        Some(2),
        "with the timed transcript"
    );
    assert_eq!(q[0].attempt_id, Some(id));
}

#[test]
fn an_unreadable_pending_outcome_is_kept_and_the_attempt_counts_as_crashed() {
    let dir = tmp_dir("recover-bad");
    let mut w = store_with(&dir, &[account("B1", "+8613800000001", &[])]);
    let id = in_flight(&mut w, "B1", "+8613800000001");
    let file = pending_file(&dir, id);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"{ half a fi").unwrap();
    let rec = recover(&mut w, &dir, None, t0() + Duration::minutes(1)).unwrap();
    assert_eq!(rec[0].imported_from, None);
    assert_eq!(
        w.attempt(id).unwrap().unwrap().state,
        crate::store::AttemptState::FailedByCrash
    );
    assert!(file.exists(), "kept for a person to look at");
}
