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
use crate::store::{Claim, Store, StoreError};
use crate::store::{EndedPause, NewEscalation, PAID_REASON};

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

/// Why [`claim_with`] made no dial: as [`NotClaimed`], without the
/// campaign's retry delay (a direct dial keeps none, so its callers have no
/// such case to handle).
#[derive(Debug)]
pub enum NotClaimedNow {
    /// The account, or the number, has a call in flight: not rung twice.
    InFlight,
    /// The gate denied, or the store refused.
    Refused(Refused<StoreError>),
}

/// What both claims' refusals are made of.
trait ClaimRefusal {
    fn in_flight() -> Self;
    fn refused(r: Refused<StoreError>) -> Self;
}

impl ClaimRefusal for NotClaimed {
    fn in_flight() -> Self {
        NotClaimed::InFlight
    }
    fn refused(r: Refused<StoreError>) -> Self {
        NotClaimed::Refused(r)
    }
}

impl ClaimRefusal for NotClaimedNow {
    fn in_flight() -> Self {
        NotClaimedNow::InFlight
    }
    fn refused(r: Refused<StoreError>) -> Self {
        NotClaimedNow::Refused(r)
    }
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
    let wait = |claim: &Claim<'_>| {
        let last = claim
            .last_call(account_id)
            .map_err(|e| NotClaimed::Refused(Refused::NotStored(e)))?;
        let until = last.and_then(|c| {
            retry.not_before(
                c.ended_at,
                c.disposition,
                c.reason.as_deref(),
                c.route.as_ref(),
            )
        });
        match until.filter(|t| *t > now) {
            Some(until) => Err(NotClaimed::TooSoon { until }),
            None => Ok(()),
        }
    };
    claim_checked(store, account_id, phone, now, wait, || {
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
) -> Result<AllowedDial, NotClaimedNow> {
    claim_checked(store, account_id, phone, now, |_| Ok(()), decide)
}

/// The claim itself: nothing in flight, then `wait` (a campaign's retry
/// delay after the account's last call), then the gate's fresh decision.
fn claim_checked<E: ClaimRefusal>(
    store: &mut Store,
    account_id: &str,
    phone: &str,
    now: DateTime<Utc>,
    wait: impl FnOnce(&Claim<'_>) -> Result<(), E>,
    decide: impl FnOnce() -> Result<PolicyDecision, StoreError>,
) -> Result<AllowedDial, E> {
    let not_stored = |e| E::refused(Refused::NotStored(e));
    let Some(claim) = store.begin_claim(account_id, phone).map_err(not_stored)? else {
        // Another node is claiming this account or number right now.
        return Err(E::in_flight());
    };
    if claim.in_flight(account_id, phone).map_err(not_stored)? {
        return Err(E::in_flight());
    }
    wait(&claim)?;
    let fresh = decide().map_err(not_stored)?;
    policy::authorise(fresh, |d, number| {
        let json = serde_json::to_value(d).map_err(StoreError::Json)?;
        claim
            .record_decision(&d.account_id, number, now, &json)
            .map(|id| id.0)
    })
    .map_err(E::refused)
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
#[path = "gate_tests.rs"]
mod tests;
