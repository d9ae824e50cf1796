//! What the store knows that stops or delays calls to an account, read as
//! the compliance gate's `AccountState`: suppressions with their reasons,
//! the latest pause, the latest callback time, the holds in force.

use super::db::OptionalExtension;

use super::codec::{parse_opt_hhmm, parse_opt_ts, parse_scope};
use super::holds::holds_in_force;
use super::{sql, Store, StoreError};
use crate::outcome::SuppressScope;
use crate::policy::{AccountState, Suppression};

impl Store {
    /// What stops or delays calls to an account.
    pub fn account_state(&self, account_id: &str) -> Result<AccountState, StoreError> {
        const OP: &str = "account_state";
        let mut state = AccountState::default();
        let mut st = self
            .conn
            .prepare(
                "SELECT phone, scope, reason FROM suppressions WHERE account_id = ?1 ORDER BY id",
            )
            .map_err(sql(OP))?;
        let rows: Vec<(Option<String>, String, String)> =
            st.query_all([account_id]).map_err(sql(OP))?;
        for (phone, scope, reason) in rows {
            let s = match (parse_scope(&scope)?, phone) {
                (SuppressScope::Number, Some(p)) => Suppression {
                    scope: SuppressScope::Number,
                    number: Some(p),
                    reason,
                },
                // A number-scoped row without a number cannot be honoured
                // narrowly; suppressing the account is the safe reading.
                (SuppressScope::Number, None) | (SuppressScope::Account, _) => Suppression {
                    scope: SuppressScope::Account,
                    number: None,
                    reason,
                },
            };
            // The first row of each kind says why (the oldest reason).
            if !state
                .suppressions
                .iter()
                .any(|x| x.scope == s.scope && x.number == s.number)
            {
                state.suppressions.push(s);
            }
        }
        let pause: Option<String> = self
            .conn
            .query_row(
                "SELECT MAX(until) FROM pauses WHERE account_id = ?1",
                [account_id],
                |r| r.get(0),
            )
            .map_err(sql(OP))?;
        state.pause_until = parse_opt_ts(pause)?;
        let callback: Option<String> = self
            .conn
            .query_row(
                "SELECT at FROM callbacks WHERE account_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 1",
                [account_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(OP))?;
        state.callback_at = parse_opt_ts(callback)?;
        // Standing hours: the newest callback that asked for hours.
        let asked: Option<(Option<String>, Option<String>)> = self
            .conn
            .query_one(
                "SELECT not_before, not_after FROM callbacks
                 WHERE account_id = ?1 AND (not_before IS NOT NULL OR not_after IS NOT NULL)
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                [account_id],
            )
            .optional()
            .map_err(sql(OP))?;
        if let Some((b, a)) = asked {
            state.asked_not_before = parse_opt_hhmm(b)?;
            state.asked_not_after = parse_opt_hhmm(a)?;
        }
        state.holds = holds_in_force(&self.conn, account_id)?;
        let prefs = self.contact_prefs(account_id)?;
        state.call_hours = prefs.call_hours;
        state.night_call_consent = prefs.night_call_consent;
        Ok(state)
    }
}
