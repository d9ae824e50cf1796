//! The compliance gate as the campaign driver asks it: reads one account's
//! history (and every dial to the number in question, whoever it was about)
//! and its state from the store, and puts them to the pure
//! `policy::decide`. The scheduler never calls this: the runner does, when
//! the scheduler asks it to (`SchedulerAction::Decide`).
//!
//! It never dials, never writes, and never decides anything itself: the
//! rules and their figures are the policy's.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::scheduler::Verdict;
use crate::account::Account;
use crate::policy::{self, AllowedDial, PolicyConfig, PolicyDecision, Refused};
use crate::store::{Store, StoreError};

/// The real gate over the store: every question reads the account's
/// history and state afresh (so a decision made a moment ago, an outcome
/// just recorded, a pause a route left, all count).
pub struct PolicyGate {
    store: Store,
    accounts: Vec<Account>,
    zones: Vec<Vec<Tz>>,
    policy: PolicyConfig,
}

impl PolicyGate {
    /// A gate for `accounts` (campaign order) reading `store`.
    pub fn new(store: Store, accounts: Vec<Account>, policy: PolicyConfig) -> PolicyGate {
        let zones = accounts
            .iter()
            .map(|a| crate::account::tz::zones_for(a).0)
            .collect();
        PolicyGate {
            store,
            accounts,
            zones,
            policy,
        }
    }

    /// The policy decision for one number of one account at `now`.
    pub fn decision(
        &self,
        account_idx: usize,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<PolicyDecision, StoreError> {
        let account = &self.accounts[account_idx];
        // The question is about this number only: the gate then checks its
        // per-number caps and suppression, and the debt's caps as a whole.
        let view = Account {
            phone: phone.to_string(),
            alt_phones: Vec::new(),
            ..account.clone()
        };
        decide_on_store(
            &self.store,
            &view,
            &self.zones[account_idx],
            &self.policy,
            now,
        )
    }
}

/// The gate's decision for `account` (every number it lists) at `now`, on
/// what the store knows: the account's own attempts, every dial to any of
/// its numbers whoever it was about, its suppressions, pauses, callbacks
/// and holds. The campaign's gate, `duecall call --account` and `duecall
/// plan --data-dir` all decide through here.
pub fn decide_on_store(
    store: &Store,
    account: &Account,
    zones: &[Tz],
    cfg: &PolicyConfig,
    now: DateTime<Utc>,
) -> Result<PolicyDecision, StoreError> {
    let mut history = store.history_for(&account.account_id)?;
    let mut numbers: Vec<&str> = vec![account.phone.as_str()];
    for n in &account.alt_phones {
        if !numbers.contains(&n.as_str()) {
            numbers.push(n);
        }
    }
    // Per-number caps count every dial to the number, whoever it was
    // about (the account's own are in already).
    for n in numbers {
        history.extend(
            store
                .history_for_number(n)?
                .into_iter()
                .filter(|r| r.account_id != account.account_id),
        );
    }
    let state = store.account_state(&account.account_id)?;
    Ok(policy::decide(account, zones, &history, &state, cfg, now))
}

/// Turns an allow into the dial it allows, storing the decision first (the
/// attempt counts from then on); a deny, or a store that refuses, places no
/// call. The campaign and `duecall call --account` both dial through here.
pub fn authorise(
    store: &mut Store,
    decision: PolicyDecision,
    now: DateTime<Utc>,
) -> Result<AllowedDial, Refused<StoreError>> {
    policy::authorise(decision, |d, number| {
        let json = serde_json::to_value(d).map_err(StoreError::Json)?;
        store
            .record_decision(&d.account_id, number, now, &json)
            .map(|id| id.0)
    })
}

/// The scheduler's view of a decision: allowed (the decision travels with
/// the dial) or denied until its `next_allowed_at`.
pub fn verdict(d: PolicyDecision) -> Verdict<PolicyDecision> {
    if d.allowed() {
        Verdict::Allow(d)
    } else {
        Verdict::deny(d.next_allowed_at)
    }
}

#[cfg(test)]
mod tests {
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
}
