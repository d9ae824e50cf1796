//! The `payments` table: payments imported from the lender
//! (`duecall payments <csv>`), exact decimals.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::params;
use rust_decimal::Decimal;

use super::codec::{parse_ts, ts};
use super::{sql, Store, StoreError};

impl Store {
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
            .query_map(params![account_id, ts(since)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
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
