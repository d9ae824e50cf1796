//! API tokens for scripts and other systems. Owns the `api_tokens` rows:
//! only a SHA-256 of each token is stored (the token itself is shown once,
//! by `duecall token create`), with a short prefix to tell tokens apart.

use super::db::{params, OptionalExtension};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::codec::{parse_opt_ts, parse_ts, ts};
use super::users::{parse_role, Role};
use super::{sql, Store, StoreError};

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    /// Store id.
    pub id: i64,
    /// Its name (who or what uses it).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last used (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked token authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, role, prefix, created_at, last_used_at, revoked_at";

type Raw = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn cook((id, name, role, prefix, created, used, revoked): Raw) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id,
        name,
        role: parse_role(&role)?,
        prefix,
        created_at: parse_ts(&created)?,
        last_used_at: parse_opt_ts(used)?,
        revoked_at: parse_opt_ts(revoked)?,
    })
}

/// Why a token could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenNameTaken {
    /// A live token already has this name.
    Taken,
}

impl Store {
    /// Stores a new token by its hash. Fails with `Ok(Err(Taken))` when a
    /// token of that name exists and is not revoked; a revoked one's name is
    /// reused (its row is replaced).
    pub fn create_token(
        &mut self,
        name: &str,
        role: Role,
        token_hash: &str,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<i64, TokenNameTaken>, StoreError> {
        const OP: &str = "create_token";
        let tx = self.write_tx(OP)?;
        let live: Option<Option<String>> = tx
            .query_row(
                "SELECT revoked_at FROM api_tokens WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(OP))?;
        match live {
            Some(None) => return Ok(Err(TokenNameTaken::Taken)),
            Some(Some(_)) => {
                tx.execute("DELETE FROM api_tokens WHERE name = ?1", [name])
                    .map_err(sql(OP))?;
            }
            None => {}
        }
        let id: i64 = tx
            .query_row(
                "INSERT INTO api_tokens (name, role, token_hash, prefix, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                params![name, role.as_str(), token_hash, prefix, ts(now)],
                |r| r.get(0),
            )
            .map_err(sql(OP))?;
        tx.commit().map_err(sql(OP))?;
        Ok(Ok(id))
    }

    /// The live (not revoked) token with this hash, marking it used.
    pub fn token_by_hash(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiToken>, StoreError> {
        const OP: &str = "token_by_hash";
        let r = self
            .conn
            .query_one::<Raw, _>(
                &format!(
                    "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL"
                ),
                [token_hash],
            )
            .optional()
            .map_err(sql(OP))?;
        let Some(t) = r.map(cook).transpose()? else {
            return Ok(None);
        };
        // At most one write a minute per token: reads stay reads.
        let stale = t
            .last_used_at
            .is_none_or(|u| now - u >= chrono::Duration::minutes(1));
        if stale {
            self.conn
                .execute(
                    "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
                    params![t.id, ts(now)],
                )
                .map_err(sql(OP))?;
        }
        Ok(Some(t))
    }

    /// Every token, newest first.
    pub fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        const OP: &str = "tokens";
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM api_tokens ORDER BY id DESC"
            ))
            .map_err(sql(OP))?;
        let raws: Vec<Raw> = st.query_all([]).map_err(sql(OP))?;
        raws.into_iter().map(cook).collect()
    }

    /// Revokes a token by name. False if there is no live token of that name.
    pub fn revoke_token(&mut self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, ts(now)],
            )
            .map(|n| n == 1)
            .map_err(sql("revoke_token"))
    }
}
