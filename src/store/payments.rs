//! The `payments` table: payments imported from the lender
//! (`duecall payments <csv>`), exact decimals.

use std::str::FromStr;

use super::db::params;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::audit::{append as audit_in, Actor};
use super::codec::{parse_ts, ts};
use super::{sql, Store, StoreError};
use crate::account::lists::Payment;

impl Store {
    /// Imports payments (`duecall payments <csv>`) in one transaction; a
    /// payment already imported (same account, amount and time) is not
    /// counted twice. Returns how many were new.
    pub fn import_payments(&mut self, payments: &[Payment]) -> Result<usize, StoreError> {
        self.import_payments_as(payments, None)
    }

    /// `import_payments`, with the audit line `payments.import` (who, rows
    /// read, new payments, at `actor`'s `now`) in the same transaction when
    /// an actor is given.
    pub fn import_payments_as(
        &mut self,
        payments: &[Payment],
        actor: Option<(&Actor, DateTime<Utc>)>,
    ) -> Result<usize, StoreError> {
        const OP: &str = "import_payments";
        let tx = self.write_tx(OP)?;
        let mut added = 0;
        for p in payments {
            added += tx
                .execute(
                    "INSERT INTO payments (account_id, amount, paid_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (account_id, amount, paid_at) DO NOTHING",
                    params![
                        p.account_id,
                        p.amount.normalize().to_string(),
                        ts(p.paid_at)
                    ],
                )
                .map_err(sql(OP))?;
        }
        if let Some((actor, now)) = actor {
            audit_in(
                &tx,
                now,
                actor,
                "payments.import",
                "payments",
                &serde_json::json!({"rows": payments.len(), "new": added}),
            )?;
        }
        tx.commit().map_err(sql(OP))?;
        Ok(added)
    }

    /// Everything paid towards a debt (an account id is one debt).
    pub fn paid_total(&self, account_id: &str) -> Result<Decimal, StoreError> {
        const OP: &str = "paid_total";
        let mut st = self
            .conn
            .prepare("SELECT amount FROM payments WHERE account_id = ?1")
            .map_err(sql(OP))?;
        let raws: Vec<String> = st
            .query_map([account_id], |r| r.get(0))
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        raws.iter()
            .map(|a| {
                Decimal::from_str(a)
                    .map_err(|e| StoreError::Corrupt(format!("payment amount {a:?}: {e}")))
            })
            .sum()
    }

    /// Records a payment (from `duecall payments <csv>`).
    pub fn add_payment(
        &mut self,
        account_id: &str,
        amount: Decimal,
        paid_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO payments (account_id, amount, paid_at) VALUES (?1, ?2, ?3)",
                params![account_id, amount.to_string(), ts(paid_at)],
            )
            .map(drop)
            .map_err(sql("add_payment"))
    }

    /// Payments on an account since a time (inclusive), oldest first.
    pub fn payments_since(
        &self,
        account_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Decimal, DateTime<Utc>)>, StoreError> {
        const OP: &str = "payments_since";
        let mut st = self
            .conn
            .prepare("SELECT amount, paid_at FROM payments WHERE account_id = ?1 AND paid_at >= ?2 ORDER BY paid_at, id")
            .map_err(sql(OP))?;
        let raws: Vec<(String, String)> = st
            .query_all(params![account_id, ts(since)])
            .map_err(sql(OP))?;
        raws.into_iter()
            .map(|(a, at)| {
                let amount = Decimal::from_str(&a)
                    .map_err(|e| StoreError::Corrupt(format!("payment amount {a:?}: {e}")))?;
                Ok((amount, parse_ts(&at)?))
            })
            .collect()
    }
}
