//! What the gate works on, prepared once per decision: the jurisdiction's
//! rules, and per candidate zone the local dates of the account's attempts
//! and conversations and of each number's dials; the hold in force. Pure.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::config::{JurisdictionRules, PolicyConfig};
use super::decision::{AccountState, Suppression};
use crate::account::history::PastAttempt;
use crate::account::Account;
use crate::outcome::SuppressScope;

/// One of the account's numbers, prepared.
pub(super) struct NumPrep<'a> {
    pub(super) number: &'a str,
    pub(super) suppressed: Option<&'a Suppression>,
    /// Per zone: local dates of every dial to this number (any account).
    pub(super) dates: Vec<Vec<NaiveDate>>,
}

/// Everything one decision evaluates, prepared once.
pub(super) struct Prep<'a> {
    pub(super) account_id: &'a str,
    pub(super) jur: &'a str,
    pub(super) jur_known: bool,
    pub(super) rules: &'a JurisdictionRules,
    pub(super) zones: &'a [Tz],
    pub(super) state: &'a AccountState,
    pub(super) last_bot_day: i64,
    pub(super) agent_hold_days: u32,
    pub(super) due: NaiveDate,
    pub(super) account_suppressed: Option<&'a Suppression>,
    /// Per zone: local dates of this debt's attempts / conversations.
    pub(super) attempts: Vec<Vec<NaiveDate>>,
    pub(super) convs: Vec<Vec<NaiveDate>>,
    pub(super) numbers: Vec<NumPrep<'a>>,
}

/// Prepares what `decide` evaluates for `account` at each candidate instant.
pub(super) fn prepare<'a>(
    account: &'a Account,
    zones: &'a [Tz],
    history: &'a [PastAttempt],
    state: &'a AccountState,
    cfg: &'a PolicyConfig,
) -> Prep<'a> {
    let jur = account
        .jurisdiction
        .as_deref()
        .unwrap_or(cfg.default_jurisdiction.as_str());
    let (rules, jur_known) = match cfg.rules(jur) {
        Some(r) => (r, true),
        None => (
            cfg.rules(&cfg.default_jurisdiction).unwrap_or(&cfg.us),
            false,
        ),
    };
    let local_dates = |pred: &dyn Fn(&PastAttempt) -> bool| -> Vec<Vec<NaiveDate>> {
        zones
            .iter()
            .map(|z| {
                history
                    .iter()
                    .filter(|r| pred(r))
                    .map(|r| r.at.with_timezone(z).date_naive())
                    .collect()
            })
            .collect()
    };
    let attempts = local_dates(&|r| r.account_id == account.account_id);
    let convs = local_dates(&|r| r.account_id == account.account_id && r.conversation);
    let account_suppressed = state
        .suppressions
        .iter()
        .find(|s| s.scope == SuppressScope::Account);
    let mut numbers: Vec<NumPrep> = Vec::new();
    for n in std::iter::once(&account.phone).chain(account.alt_phones.iter()) {
        if numbers.iter().any(|x| x.number == n.as_str()) {
            continue;
        }
        let suppressed = state
            .suppressions
            .iter()
            .find(|s| s.scope == SuppressScope::Number && s.number.as_deref() == Some(n.as_str()));
        let dates = local_dates(&|r| r.phone == *n);
        numbers.push(NumPrep {
            number: n,
            suppressed,
            dates,
        });
    }
    Prep {
        account_id: &account.account_id,
        jur,
        jur_known,
        rules,
        zones,
        state,
        last_bot_day: cfg.last_bot_day,
        agent_hold_days: cfg.agent_hold_days,
        due: account.due_date,
        account_suppressed,
        attempts,
        convs,
        numbers,
    }
}

/// The end of the latest agent hold in force (none without one).
pub(super) fn hold_until(p: &Prep) -> Option<DateTime<Utc>> {
    p.state
        .holds
        .iter()
        .filter_map(|h| h.ends_at(p.agent_hold_days))
        .max()
}
