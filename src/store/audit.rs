//! The audit log: who read which recording or transcript, and who changed
//! what, when. Owns the `audit_log` rows. A change and its audit entry are
//! written in one transaction (`append` takes the open transaction), so no
//! change exists without its entry. Rows are never updated or deleted here.

use super::db::{params, Db, FromRow};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::codec::{parse_ts, ts};
use super::listing::{Page, Where};
use super::{sql, Store, StoreError};

/// Who did something: a user of the console, an API token, or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `user:<name>`, `token:<name>` or `cli:<command>`.
    pub id: String,
    /// Their role (none for a command run on the host).
    pub role: Option<String>,
}

impl Actor {
    /// A console user.
    pub fn user(name: &str, role: &str) -> Actor {
        Actor {
            id: format!("user:{name}"),
            role: Some(role.to_string()),
        }
    }

    /// An API token.
    pub fn token(name: &str, role: &str) -> Actor {
        Actor {
            id: format!("token:{name}"),
            role: Some(role.to_string()),
        }
    }

    /// A command run on the host (`duecall user add`, ...).
    pub fn cli(command: &str) -> Actor {
        Actor {
            id: format!("cli:{command}"),
            role: None,
        }
    }

    /// The name shown to people (`alice`, `crm`, `cli:user`): the id without
    /// the `user:` / `token:` kind.
    pub fn name(&self) -> &str {
        self.id
            .strip_prefix("user:")
            .or_else(|| self.id.strip_prefix("token:"))
            .unwrap_or(&self.id)
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Store id (increasing).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`user:alice`, `token:crm`, `cli:user`).
    pub actor: String,
    /// Their role at the time.
    pub role: Option<String>,
    /// What (`recording.read`, `transcript.read`, `escalation.claim`, ...).
    pub action: String,
    /// On what (`attempt:12`, `escalation:3`, `pause:7`, `user:bob`).
    pub target: String,
    /// Particulars (the outcome of a close, the new end of a pause, ...).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Appends one entry inside an open transaction (or on a plain connection
/// for a read that changes nothing else).
pub(super) fn append(
    conn: &Db,
    now: DateTime<Utc>,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit_log (at, actor, role, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            ts(now),
            actor.id,
            actor.role,
            action,
            target,
            detail.to_string()
        ],
    )
    .map(drop)
    .map_err(sql("audit"))
}

/// Which audit lines to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor (`user:alice`).
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only lines older than this id (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many (newest first).
    pub limit: u32,
}

impl Store {
    /// Writes one audit line on its own (a read of a recording or a
    /// transcript; a login).
    pub fn audit(
        &mut self,
        now: DateTime<Utc>,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        append(&self.conn, now, actor, action, target, detail)
    }

    /// Audit lines, newest first.
    pub fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut w = Where::default();
        w.eq("actor", &f.actor);
        w.eq("action", &f.action);
        w.eq("target", &f.target);
        if let Some(b) = f.before_id {
            w.bind("id < ?", b);
        }
        let page = Page {
            from: "audit_log",
            columns: "id, at, actor, role, action, target, detail",
            order: "id DESC",
            limit: f.limit,
            offset: None,
        };
        type Raw = (i64, String, String, Option<String>, String, String, String);
        let (raws, _) = self.page("audit_log", w, page, Raw::from_row)?;
        raws.into_iter()
            .map(|(id, at, actor, role, action, target, detail)| {
                Ok(AuditEntry {
                    id,
                    at: parse_ts(&at)?,
                    actor,
                    role,
                    action,
                    target,
                    detail: super::codec::parse_json(&detail, "audit detail")?,
                })
            })
            .collect()
    }
}
