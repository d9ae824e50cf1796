//! The `accounts` table: the debts of every campaign, upserted by
//! `account_id` from the accounts CSV. Money is stored as exact decimal
//! text.

use std::str::FromStr;

use super::db::params;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::codec::ts;
use super::{sql, Store, StoreError};
use crate::account::hours::{format_call_hours, parse_call_hours, ContactPrefs};
use crate::account::{Account, Language};

impl Store {
    /// Sets what each account asked about when to be called (the accounts
    /// file's `call_hours` and `night_call_consent`), in one transaction.
    pub fn set_contact_prefs(
        &mut self,
        prefs: &std::collections::BTreeMap<String, ContactPrefs>,
    ) -> Result<(), StoreError> {
        const OP: &str = "set_contact_prefs";
        let tx = self.write_tx(OP)?;
        for (id, p) in prefs {
            let hours = (!p.call_hours.is_empty()).then(|| format_call_hours(&p.call_hours));
            tx.execute(
                "UPDATE accounts SET call_hours = ?2, night_call_consent = ?3 WHERE account_id = ?1",
                params![id, hours, p.night_call_consent],
            )
            .map_err(sql(OP))?;
        }
        tx.commit().map_err(sql(OP))
    }

    /// What an account asked about when to be called (defaults when the
    /// account is unknown).
    pub fn contact_prefs(&self, account_id: &str) -> Result<ContactPrefs, StoreError> {
        use super::db::OptionalExtension;
        let row: Option<(Option<String>, bool)> = self
            .conn
            .query_one(
                "SELECT call_hours, night_call_consent FROM accounts WHERE account_id = ?1",
                [account_id],
            )
            .optional()
            .map_err(sql("contact_prefs"))?;
        let Some((hours, consent)) = row else {
            return Ok(ContactPrefs::default());
        };
        let call_hours = match hours {
            Some(h) => parse_call_hours(&h)
                .map_err(|e| StoreError::Corrupt(format!("account {account_id}: {e}")))?,
            None => Vec::new(),
        };
        Ok(ContactPrefs {
            call_hours,
            night_call_consent: consent,
        })
    }

    /// Inserts or updates accounts by `account_id`, in one transaction.
    pub fn upsert_accounts(
        &mut self,
        accounts: &[Account],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        const OP: &str = "upsert_accounts";
        let tx = self.write_tx(OP)?;
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO accounts (account_id, name, phone, amount, currency, due_date, timezone,
                         language, jurisdiction, alt_phones, days_past_due, agent_uri, updated_at,
                         caller_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                     ON CONFLICT (account_id) DO UPDATE SET
                         name = excluded.name, phone = excluded.phone, amount = excluded.amount,
                         currency = excluded.currency, due_date = excluded.due_date,
                         timezone = excluded.timezone, language = excluded.language,
                         jurisdiction = excluded.jurisdiction, alt_phones = excluded.alt_phones,
                         days_past_due = excluded.days_past_due, agent_uri = excluded.agent_uri,
                         updated_at = excluded.updated_at, caller_id = excluded.caller_id",
                )
                .map_err(sql(OP))?;
            for a in accounts {
                let alt = serde_json::to_string(&a.alt_phones).map_err(StoreError::Json)?;
                st.execute(params![
                    a.account_id,
                    a.name,
                    a.phone,
                    a.amount.to_string(),
                    a.currency,
                    a.due_date.to_string(),
                    a.timezone,
                    a.language.as_str(),
                    a.jurisdiction,
                    alt,
                    a.days_past_due,
                    a.agent_uri,
                    ts(now),
                    a.caller_id,
                ])
                .map_err(sql(OP))?;
            }
        }
        tx.commit().map_err(sql(OP))?;
        Ok(accounts.len())
    }

    /// One account by id.
    pub fn account(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .query_accounts("WHERE account_id = ?1", params![account_id])?
            .into_iter()
            .next())
    }

    /// Every account, by id.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.query_accounts("", params![])
    }

    fn query_accounts(
        &self,
        filter: &str,
        args: &[&dyn super::db::ToSql],
    ) -> Result<Vec<Account>, StoreError> {
        const OP: &str = "accounts";
        type Raw = (
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT account_id, name, phone, amount, currency, due_date, timezone, language,
                        jurisdiction, alt_phones, days_past_due, agent_uri, caller_id
                 FROM accounts {filter} ORDER BY account_id"
            ))
            .map_err(sql(OP))?;
        let raws: Vec<Raw> = st.query_all(args).map_err(sql(OP))?;
        raws.into_iter()
            .map(
                |(
                    account_id,
                    name,
                    phone,
                    amount,
                    currency,
                    due,
                    timezone,
                    lang,
                    jurisdiction,
                    alt,
                    dpd,
                    agent,
                    caller_id,
                )| {
                    Ok(Account {
                        amount: Decimal::from_str(&amount).map_err(|e| {
                            StoreError::Corrupt(format!("amount {amount:?} of {account_id}: {e}"))
                        })?,
                        due_date: NaiveDate::from_str(&due).map_err(|e| {
                            StoreError::Corrupt(format!("due_date {due:?} of {account_id}: {e}"))
                        })?,
                        language: match lang.as_str() {
                            "en" => Language::En,
                            "zh" => Language::Zh,
                            other => {
                                return Err(StoreError::Corrupt(format!(
                                    "language {other:?} of {account_id}"
                                )))
                            }
                        },
                        alt_phones: serde_json::from_str(&alt).map_err(|e| {
                            StoreError::Corrupt(format!("alt_phones of {account_id}: {e}"))
                        })?,
                        account_id,
                        name,
                        phone,
                        currency,
                        timezone,
                        jurisdiction,
                        days_past_due: dpd,
                        agent_uri: agent,
                        caller_id,
                    })
                },
            )
            .collect()
    }
}
