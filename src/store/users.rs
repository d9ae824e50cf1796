//! Users of the service (collectors, QA, admins) and their roles. Owns the
//! `users` rows; never hashes or checks a password itself (the web layer
//! hands it an argon2 PHC string) and never stores a password in clear.

use super::db::{params, OptionalExtension};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::{parse_ts, ts};
use super::{sql, Store, StoreError};

/// What a person or a token may do (ARCHITECTURE.md "Interfaces"):
/// `collector` works escalations and holds, `qa` reviews and labels calls,
/// `admin` does everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users, tokens, campaigns and imports.
    Admin,
    /// Escalations, holds, attempts, transcripts, recordings.
    Collector,
    /// Attempts, transcripts, recordings, QA labels.
    Qa,
}

impl Role {
    /// Every role, for help texts and tests.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Collector, Role::Qa];

    /// The spelling in the store, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Collector => "collector",
            Role::Qa => "qa",
        }
    }

    /// Parses `admin`, `collector` or `qa`.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "collector" => Role::Collector,
            "qa" => Role::Qa,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::parse(s).ok_or_else(|| format!("unknown role {s:?}: use admin, collector or qa"))
    }
}

pub(super) fn parse_role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("role {s:?}")))
}

/// A user as stored (the hash stays in the store unless asked for).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// A disabled user cannot log in.
    pub disabled: bool,
}

impl Store {
    /// Creates a user, or replaces the role and password of an existing one
    /// (and ends their sessions, so a changed password takes effect at
    /// once). Returns true when the user is new.
    pub fn put_user(
        &mut self,
        name: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "put_user";
        let tx = self.write_tx(OP)?;
        let existed: bool = tx
            .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(()))
            .optional()
            .map_err(sql(OP))?
            .is_some();
        tx.execute(
            "INSERT INTO users (name, role, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (name) DO UPDATE SET role = excluded.role,
                 password_hash = excluded.password_hash, updated_at = excluded.updated_at,
                 disabled = FALSE",
            params![name, role.as_str(), password_hash, ts(now)],
        )
        .map_err(sql(OP))?;
        tx.execute("DELETE FROM sessions WHERE user_name = ?1", [name])
            .map_err(sql(OP))?;
        tx.commit().map_err(sql(OP))?;
        Ok(!existed)
    }

    /// A user and their password hash, for a login.
    pub fn user_with_hash(&self, name: &str) -> Result<Option<(User, String)>, StoreError> {
        const OP: &str = "user";
        let raw: Option<(String, String, String, String, bool)> = self
            .conn
            .query_one(
                "SELECT name, role, password_hash, created_at, disabled FROM users WHERE name = ?1",
                [name],
            )
            .optional()
            .map_err(sql(OP))?;
        raw.map(|(name, role, hash, created, disabled)| {
            Ok((
                User {
                    name,
                    role: parse_role(&role)?,
                    created_at: parse_ts(&created)?,
                    disabled,
                },
                hash,
            ))
        })
        .transpose()
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        const OP: &str = "users";
        let mut st = self
            .conn
            .prepare("SELECT name, role, created_at, disabled FROM users ORDER BY name")
            .map_err(sql(OP))?;
        let raws: Vec<(String, String, String, bool)> = st.query_all([]).map_err(sql(OP))?;
        raws.into_iter()
            .map(|(name, role, created, disabled)| {
                Ok(User {
                    name,
                    role: parse_role(&role)?,
                    created_at: parse_ts(&created)?,
                    disabled,
                })
            })
            .collect()
    }

    /// Disables a user (no login, sessions ended). False if there is none.
    pub fn disable_user(&mut self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        const OP: &str = "disable_user";
        let tx = self.write_tx(OP)?;
        let n = tx
            .execute(
                "UPDATE users SET disabled = TRUE, updated_at = ?2 WHERE name = ?1",
                params![name, ts(now)],
            )
            .map_err(sql(OP))?;
        tx.execute("DELETE FROM sessions WHERE user_name = ?1", [name])
            .map_err(sql(OP))?;
        tx.commit().map_err(sql(OP))?;
        Ok(n == 1)
    }
}
