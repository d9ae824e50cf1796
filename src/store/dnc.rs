//! The do-not-call list (`duecall suppress import`): entries by account go
//! to `suppressions` (source `list`); entries by number alone go to
//! `dnc_numbers`, honoured for every account that lists the number. Read
//! by the gate with an account's state; never decides what an entry means
//! beyond its scope.

use super::db::params;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::audit::{append as audit_in, Actor};
use super::codec::{parse_scope, ts};
use super::{sql, Store, StoreError};
use crate::account::lists::DoNotCall;
use crate::outcome::SuppressScope;
use crate::policy::Suppression;

/// One suppression as listed by `duecall suppress list` (the service's
/// `holdwork::SuppressionRow` without the store id, the scope typed, and
/// absent fields left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressionRow {
    /// The account (none for a number on the list for every account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The number, for scope `number` (and list entries by number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// `number` or `account`.
    pub scope: SuppressScope,
    /// Why.
    pub reason: String,
    /// `call` (a route), `list` (an import).
    pub source: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Imports a do-not-call list in one transaction (all or nothing).
    /// Returns how many entries were new (an entry already listed with the
    /// same reason is not added twice).
    pub fn import_do_not_call(
        &mut self,
        entries: &[DoNotCall],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.import_do_not_call_as(entries, None, now)
    }

    /// `import_do_not_call`, with the audit line `dnc.import` (who, rows
    /// read, new entries) in the same transaction when `actor` is given:
    /// the import and its audit line land together or not at all.
    pub fn import_do_not_call_as(
        &mut self,
        entries: &[DoNotCall],
        actor: Option<&Actor>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        const OP: &str = "import_do_not_call";
        let tx = self.write_tx(OP)?;
        let mut added = 0;
        for e in entries {
            let scope = e.scope.as_str();
            added += match &e.account_id {
                Some(a) => {
                    let phone = match e.scope {
                        SuppressScope::Number => e.phone.as_deref(),
                        SuppressScope::Account => None,
                    };
                    tx.execute(
                        "INSERT INTO suppressions (account_id, phone, scope, reason, created_at, source)
                         SELECT ?1, ?2, ?3, ?4, ?5, 'list'
                         WHERE NOT EXISTS (SELECT 1 FROM suppressions WHERE account_id = ?1
                             AND phone IS NOT DISTINCT FROM ?2 AND scope = ?3 AND reason = ?4)",
                        params![a, phone, scope, e.reason, ts(now)],
                    )
                    .map_err(sql(OP))?
                }
                None => tx
                    .execute(
                        "INSERT INTO dnc_numbers (phone, scope, reason, created_at)
                         SELECT ?1, ?2, ?3, ?4
                         WHERE NOT EXISTS (SELECT 1 FROM dnc_numbers WHERE phone = ?1
                             AND scope = ?2 AND reason = ?3)",
                        params![e.phone, scope, e.reason, ts(now)],
                    )
                    .map_err(sql(OP))?,
            };
        }
        if let Some(actor) = actor {
            audit_in(
                &tx,
                now,
                actor,
                "dnc.import",
                "do-not-call",
                &serde_json::json!({"rows": entries.len(), "new": added}),
            )?;
        }
        tx.commit().map_err(sql(OP))?;
        Ok(added)
    }

    /// Every suppression (the accounts', from calls and lists, and the
    /// numbers on the list for every account), oldest first: the service's
    /// list (`list_suppressions`) in the command line's shape.
    pub fn suppressions(&self) -> Result<Vec<SuppressionRow>, StoreError> {
        let mut rows = self.list_suppressions(None)?;
        rows.reverse();
        rows.into_iter()
            .map(|r| {
                Ok(SuppressionRow {
                    account_id: r.account_id,
                    phone: r.phone,
                    scope: parse_scope(&r.scope)?,
                    reason: r.reason,
                    source: r.source,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    /// The list's entries for any of `numbers`, as the gate's suppressions:
    /// scope `number` stops that number, scope `account` every number of
    /// the account that lists it. The reason says it came from the list.
    pub fn listed_numbers(&self, numbers: &[&str]) -> Result<Vec<Suppression>, StoreError> {
        const OP: &str = "listed_numbers";
        let mut st = self
            .conn
            .prepare("SELECT scope, reason FROM dnc_numbers WHERE phone = ?1 ORDER BY id")
            .map_err(sql(OP))?;
        let mut out = Vec::new();
        for n in numbers {
            let rows: Vec<(String, String)> = st.query_all([n]).map_err(sql(OP))?;
            for (scope, reason) in rows {
                let reason = format!("do-not-call list: {reason}");
                out.push(match parse_scope(&scope)? {
                    SuppressScope::Number => Suppression {
                        scope: SuppressScope::Number,
                        number: Some(n.to_string()),
                        reason,
                    },
                    SuppressScope::Account => Suppression {
                        scope: SuppressScope::Account,
                        number: None,
                        reason: format!("{reason} (on {})", crate::account::mask_phone(n)),
                    },
                });
            }
        }
        Ok(out)
    }
}
