//! Console sessions: who is logged in behind a cookie. Owns the `sessions`
//! rows; stores only a SHA-256 of the cookie value (a stolen database does
//! not log anyone in) and the session's CSRF token.

use super::db::{params, OptionalExtension};
use chrono::{DateTime, Utc};

use super::codec::{parse_ts, ts};
use super::users::{parse_role, User};
use super::{sql, Store, StoreError};

/// A live session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Who it belongs to.
    pub user: User,
    /// The token every state-changing request of this session must carry.
    pub csrf: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Starts a session for a user.
    pub fn create_session(
        &mut self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "create_session";
        let tx = self.write_tx(OP)?;
        // Expired sessions go when new ones come: the table stays small.
        tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [ts(now)])
            .map_err(sql(OP))?;
        tx.execute(
            "INSERT INTO sessions (id_hash, user_name, csrf, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id_hash, user, csrf, ts(now), ts(expires_at)],
        )
        .map_err(sql(OP))?;
        tx.commit().map_err(sql(OP))
    }

    /// The live session with this hash, if its user is still enabled.
    pub fn session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        const OP: &str = "session";
        let raw: Option<(String, String, String, bool, String, String)> = self
            .conn
            .query_one(
                "SELECT u.name, u.role, u.created_at, u.disabled, s.csrf, s.expires_at
                 FROM sessions s JOIN users u ON u.name = s.user_name
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND NOT u.disabled",
                params![id_hash, ts(now)],
            )
            .optional()
            .map_err(sql(OP))?;
        raw.map(|(name, role, created, disabled, csrf, expires)| {
            Ok(Session {
                user: User {
                    name,
                    role: parse_role(&role)?,
                    created_at: parse_ts(&created)?,
                    disabled,
                },
                csrf,
                expires_at: parse_ts(&expires)?,
            })
        })
        .transpose()
    }

    /// Ends a session (log out). False if there was none.
    pub fn end_session(&mut self, id_hash: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])
            .map(|n| n == 1)
            .map_err(sql("end_session"))
    }
}
