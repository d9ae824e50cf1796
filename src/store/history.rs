//! Past attempts as the compliance gate counts them: every dial on an
//! account or to a number, whoever made it (this duecall, a crashed run, or
//! the lender's other diallers, imported). Never decides what they mean.

use super::db::params;

use super::codec::{parse_disposition, parse_ts, ts};
use super::{sql, Store, StoreError};
use crate::account::history::PastAttempt;
use crate::outcome::Disposition;

/// The columns `past_attempts` reads; an attempt still in flight has no
/// disposition yet and counts as `answered` ("not yet known").
const PAST: &str =
    "SELECT account_id, phone, COALESCE(started_at, decided_at) AS at, disposition, conversation
                    FROM attempts";

impl Store {
    /// Every attempt on an account (any number, any source), oldest first,
    /// as the policy gate counts them. In-flight attempts are included.
    pub fn history_for(&self, account_id: &str) -> Result<Vec<PastAttempt>, StoreError> {
        self.past_attempts("history_for", "WHERE account_id = ?1", account_id)
    }

    /// Every attempt to a number, about any account, oldest first: the
    /// per-number caps count each dial to it, whoever it was about.
    pub fn history_for_number(&self, phone: &str) -> Result<Vec<PastAttempt>, StoreError> {
        self.past_attempts("history_for_number", "WHERE phone = ?1", phone)
    }

    fn past_attempts(
        &self,
        op: &'static str,
        filter: &str,
        key: &str,
    ) -> Result<Vec<PastAttempt>, StoreError> {
        let mut st = self
            .conn
            .prepare(&format!("{PAST} {filter} ORDER BY at, id"))
            .map_err(sql(op))?;
        let raws: Vec<(String, String, String, Option<String>, bool)> =
            st.query_all([key]).map_err(sql(op))?;
        raws.into_iter()
            .map(|(account_id, phone, at, disp, conversation)| {
                Ok(PastAttempt {
                    account_id,
                    phone,
                    at: parse_ts(&at)?,
                    disposition: match disp {
                        Some(d) => parse_disposition(&d)?,
                        None => Disposition::Answered,
                    },
                    conversation,
                })
            })
            .collect()
    }

    /// Imports attempts made by the lender's other systems, so the caps count
    /// them. Importing the same row twice adds it once. Returns how many
    /// were new.
    pub fn import_history(&mut self, rows: &[PastAttempt]) -> Result<usize, StoreError> {
        const OP: &str = "import_history";
        let tx = self.write_tx(OP)?;
        let mut added = 0;
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO attempts (account_id, phone, decided_at, policy, started_at, ended_at,
                         disposition, conversation, state, source, import_key)
                     VALUES (?1, ?2, ?3, '{\"imported\":true}', ?3, ?3, ?4, ?5, 'ended', 'import', ?6)
                     ON CONFLICT (import_key) DO NOTHING",
                )
                .map_err(sql(OP))?;
            for r in rows {
                let at = ts(r.at);
                let key = format!("{}|{}|{}", r.account_id, r.phone, at);
                added += st
                    .execute(params![
                        r.account_id,
                        r.phone,
                        at,
                        r.disposition.as_str(),
                        r.conversation,
                        key
                    ])
                    .map_err(sql(OP))?;
            }
        }
        tx.commit().map_err(sql(OP))?;
        Ok(added)
    }
}
