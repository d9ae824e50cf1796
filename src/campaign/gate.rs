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

use super::scheduler::{RetryDelays, Verdict};
use crate::account::history::PastAttempt;
use crate::account::Account;
use crate::outcome::SuppressScope;
use crate::policy::{
    self, AccountState, AllowedDial, Hold, HoldKind, PolicyConfig, PolicyDecision, Refused,
    Settlement, Suppression,
};
use crate::store::{EndedPause, NewEscalation, PAID_REASON};
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
            account,
            Some(&view),
            &self.zones[account_idx],
            &self.policy,
            now,
        )
    }

    /// The policy the gate applies.
    pub fn policy(&self) -> &PolicyConfig {
        &self.policy
    }
}

/// The gate's decision for `account` at `now` (about the numbers of `view`,
/// by default every number it lists), on what the store knows: the
/// account's own attempts, every dial to any of its numbers whoever it was
/// about, its suppressions (from calls and the do-not-call list, whose
/// entries by number count for every account listing it), pauses,
/// callbacks and holds, and how its ended pauses settle against the
/// payments imported. The campaign's gate, `duecall call --account` and
/// `duecall plan --data-dir` all decide through here.
pub fn decide_on_store(
    store: &Store,
    account: &Account,
    view: Option<&Account>,
    zones: &[Tz],
    cfg: &PolicyConfig,
    now: DateTime<Utc>,
) -> Result<PolicyDecision, StoreError> {
    let state = state_on_store(store, account, cfg, now)?;
    let account = view.unwrap_or(account);
    let history = history_on_store(store, account)?;
    Ok(policy::decide(account, zones, &history, &state, cfg, now))
}

/// What the caps count for `account`: its own attempts and every dial to
/// any of its numbers, whoever it was about.
pub fn history_on_store(store: &Store, account: &Account) -> Result<Vec<PastAttempt>, StoreError> {
    let mut history = store.history_for(&account.account_id)?;
    let mut numbers: Vec<&str> = vec![account.phone.as_str()];
    for n in &account.alt_phones {
        if !numbers.contains(&n.as_str()) {
            numbers.push(n);
        }
    }
    // The account's own are in already.
    for n in numbers {
        history.extend(
            store
                .history_for_number(n)?
                .into_iter()
                .filter(|r| r.account_id != account.account_id),
        );
    }
    Ok(history)
}

/// What stops or delays robot calls to `account` at `now`: its stored
/// state, the do-not-call list's entries for any of its numbers, and what
/// its ended pauses settle to (even before `settle_due` writes it, so a
/// plan sees what a run will do).
pub fn state_on_store(
    store: &Store,
    account: &Account,
    cfg: &PolicyConfig,
    now: DateTime<Utc>,
) -> Result<AccountState, StoreError> {
    let mut state = store.account_state(&account.account_id)?;
    let mut numbers: Vec<&str> = vec![account.phone.as_str()];
    numbers.extend(account.alt_phones.iter().map(String::as_str));
    state.suppressions.extend(store.listed_numbers(&numbers)?);
    for (pause, s) in settlements_due(store, account, cfg, now)? {
        match s {
            Settlement::Paid => state.suppressions.push(Suppression {
                scope: SuppressScope::Account,
                number: None,
                reason: PAID_REASON.into(),
            }),
            Settlement::Escalate { reason } => state.holds.push(Hold {
                kind: HoldKind::Agent,
                reason: reason.into(),
                since: pause.until,
            }),
            Settlement::Retry => {}
        }
    }
    Ok(state)
}

/// The account's ended pauses that settle something, with how.
pub fn settlements_due(
    store: &Store,
    account: &Account,
    cfg: &PolicyConfig,
    now: DateTime<Utc>,
) -> Result<Vec<(EndedPause, Settlement)>, StoreError> {
    let pauses = store.ended_pauses(&account.account_id, now)?;
    if pauses.is_empty() {
        return Ok(Vec::new());
    }
    let paid = store.paid_total(&account.account_id)?;
    Ok(pauses
        .into_iter()
        .filter_map(|p| policy::settle(&p.reason, account.amount, paid, cfg).map(|s| (p, s)))
        .collect())
}

/// Writes how the account's ended pauses settled (once each): a closed
/// case, or an escalation to the collectors with its hold. Returns the
/// escalations queued.
pub fn settle_due(
    store: &mut Store,
    account: &Account,
    cfg: &PolicyConfig,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut queued = 0;
    for (pause, s) in settlements_due(store, account, cfg, now)? {
        let escalation = match s {
            Settlement::Escalate { reason } => Some(NewEscalation {
                account_id: account.account_id.clone(),
                attempt_id: None,
                reason: reason.into(),
                intent: None,
                summary: format!(
                    "account {}: {} pause ended {} and the payments imported do not cover the {} due",
                    account.account_id,
                    pause.reason,
                    pause.until.to_rfc3339(),
                    account.amount
                ),
                transcript: serde_json::json!([]),
                recording: None,
                created_at: now,
            }),
            _ => None,
        };
        if store.settle_pause(&pause, s, escalation.as_ref(), now)? && escalation.is_some() {
            queued += 1;
        }
    }
    Ok(queued)
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

/// Why a claim placed no dial.
#[derive(Debug)]
pub enum NotClaimed {
    /// The account, or the number, has a call in flight (another node's):
    /// ask again later.
    InFlight,
    /// The account's last call (another node's, or a run's before this
    /// one) ended too recently for the campaign's retry delays: ask again
    /// at `until`.
    TooSoon {
        /// When the retry delay after that call is over.
        until: DateTime<Utc>,
    },
    /// The gate, asked again under the lock, denied (another node's dial
    /// reached a cap first), or the store refused.
    Refused(Refused<StoreError>),
}

/// Claims a dial the scheduler was allowed: under the claim's locks (the
/// store's write lock on SQLite; on PostgreSQL the account's and the
/// number's rows, `FOR UPDATE SKIP LOCKED`, across every node sharing it:
/// another node claiming either right now makes this claim `InFlight`)
/// checks that neither the account nor the number has a call in flight, puts the question to the
/// gate again (it then reads everything every node has committed, and no
/// other decision can come in before this one), and stores the fresh
/// allow, which makes the dial. Two nodes never dial one account or one
/// number at once, and the caps are counted in the database, not in a
/// node's memory. Nor does a node retry an account sooner than `retry`
/// allows after the last call any node made to it (`TooSoon`): a node's
/// scheduler learns its own calls' outcomes, the claim everyone's.
pub fn claim(
    store: &mut Store,
    gate: &PolicyGate,
    retry: &RetryDelays,
    account_idx: usize,
    phone: &str,
    now: DateTime<Utc>,
) -> Result<AllowedDial, NotClaimed> {
    let account_id = &gate.accounts[account_idx].account_id;
    claim_checked(store, account_id, phone, now, Some(retry), || {
        gate.decision(account_idx, phone, now)
    })
}

/// [`claim`] for a dial no campaign scheduled (a direct stream the
/// platform placed, a debtor calling back): under the claim's locks,
/// refuses while `account_id` or `phone` has a call in flight (a
/// campaign's, another stream's), then asks `decide` (which must read the
/// store afresh: nothing can be committed in between) and stores its allow.
pub fn claim_with(
    store: &mut Store,
    account_id: &str,
    phone: &str,
    now: DateTime<Utc>,
    decide: impl FnOnce() -> Result<PolicyDecision, StoreError>,
) -> Result<AllowedDial, NotClaimed> {
    claim_checked(store, account_id, phone, now, None, decide)
}

/// The claim itself; with `retry`, a campaign's: the account's last call
/// must be older than its retry delay.
fn claim_checked(
    store: &mut Store,
    account_id: &str,
    phone: &str,
    now: DateTime<Utc>,
    retry: Option<&RetryDelays>,
    decide: impl FnOnce() -> Result<PolicyDecision, StoreError>,
) -> Result<AllowedDial, NotClaimed> {
    let not_stored = |e| NotClaimed::Refused(Refused::NotStored(e));
    let Some(claim) = store.begin_claim(account_id, phone).map_err(not_stored)? else {
        // Another node is claiming this account or number right now.
        return Err(NotClaimed::InFlight);
    };
    if claim.in_flight(account_id, phone).map_err(not_stored)? {
        return Err(NotClaimed::InFlight);
    }
    if let Some(retry) = retry {
        let wait = claim
            .last_call(account_id)
            .map_err(not_stored)?
            .and_then(|c| {
                retry.not_before(
                    c.ended_at,
                    c.disposition,
                    c.reason.as_deref(),
                    c.route.as_ref(),
                )
            });
        if let Some(until) = wait.filter(|t| *t > now) {
            return Err(NotClaimed::TooSoon { until });
        }
    }
    let fresh = decide().map_err(not_stored)?;
    policy::authorise(fresh, |d, number| {
        let json = serde_json::to_value(d).map_err(StoreError::Json)?;
        claim
            .record_decision(&d.account_id, number, now, &json)
            .map(|id| id.0)
    })
    .map_err(NotClaimed::Refused)
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
                    Heard::WrongNumber => {
                        Some(Route::suppress("wrong_number", SuppressScope::Number))
                    }
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
                            Route::retry(
                                "callback_later",
                                (now + Duration::hours(1)).fixed_offset(),
                            )
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
}
