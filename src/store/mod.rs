//! The store: everything duecall must remember between calls and between
//! runs (accounts, attempts with their policy decision and outcome, turns,
//! routes, the collectors' escalation queue, pauses, suppressions, callbacks,
//! payments), in an embedded SQLite database (`<data dir>/duecall.db`, WAL)
//! or a shared PostgreSQL database.
//!
//! It owns persistence only: it never decides whether to dial (the policy
//! does) or what an outcome means (the conversation does), never reads the
//! clock (every time is passed in, like the pure cores), and never logs a
//! full phone number. All calls are synchronous; the campaign runner calls
//! them off the async workers.
//!
//! One file per table or concern: `attempts` (with turns and routes),
//! `history` (what the gate counts), `accounts`, `escalations`, `pauses`,
//! `suppressions`, `dnc` (the do-not-call list), `callbacks`, `payments`, `holds`, `state` (an account's state for
//! the gate), `routes` (what a route leaves behind), `export`; `schema` holds
//! the one versioned list of migrations (append a table's migration there),
//! `open` opening a store and migrating it, `attempt_id` the id every table
//! names; `codec` how values are spelled. The service's tables (`duecall serve`)
//! follow the same rule: `users`, `tokens`, `sessions`, `audit`,
//! `casework` (claims, notes, closures), `holdwork` (pauses released and
//! extended, suppressions and callbacks listed),
//! `qa_labels`, `outbox` (webhook events and deliveries), with their
//! migrations in `web_schema`; `browse` holds the service's read-only views.
//!
//! Two engines behind one interface (`db`): SQLite in the data directory
//! (the embedded default) and PostgreSQL, which several nodes share
//! (`Store::open_postgres`, `--store URL`). The SQL is written once, in what
//! both engines accept (`ON CONFLICT` instead of `INSERT OR REPLACE`,
//! `RETURNING id` instead of `last_insert_rowid()`, times as fixed-form UTC
//! text that compares like `timestamptz`); `db` translates the rest. Every
//! work claim is one `UPDATE ... WHERE id = (SELECT ... LIMIT 1)
//! RETURNING` inside a write transaction, which on PostgreSQL holds the
//! store's advisory write lock. `pg_cluster` starts the tests' throwaway
//! PostgreSQL.

mod accounts;
mod attempt_id;
mod attempts;
pub mod audit;
pub mod browse;
mod callbacks;
pub mod campaigns;
pub mod casework;
pub mod cli;
mod codec;
pub mod db;
mod dnc;
mod error;
mod escalations;
mod export;
pub mod files;
mod history;
mod holds;
pub mod holdwork;
mod listing;
mod location;
mod lock;
pub mod nodes;
mod open;
pub mod outbox;
mod pauses;
mod payments;
pub mod pg_cluster;
pub mod qa_labels;
mod routes;
mod schema;
pub mod sessions;
mod state;
mod suppressions;
pub mod tokens;
pub mod users;
mod web_schema;

use std::path::PathBuf;

use db::Db;

pub use attempt_id::AttemptId;
pub use attempts::{AttemptRecord, AttemptState, Claim, EndedAttempt, LastCall, TurnRow};
pub(crate) use codec::ts;
pub use dnc::SuppressionRow;
pub(crate) use error::sql;
pub use error::StoreError;
pub use escalations::{Escalation, EscalationStatus, NewEscalation};
pub use export::ExportFormat;
pub use holds::HoldRow;
pub use location::Location;
pub use lock::{DataDirLock, LOCK_FILE};
pub use pauses::{EndedPause, PAID_REASON};

/// The database file inside a data directory.
pub const DB_FILE: &str = "duecall.db";

/// An open database in a data directory. Not `Sync`: give each thread its
/// own `Store` (several may be open on one directory at once), or share one
/// behind a mutex.
pub struct Store {
    conn: Db,
    path: PathBuf,
    /// The node named on the attempts this connection decides (its lease:
    /// `nodes`); `None` before `take_lease`.
    node: Option<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod web_tests;

/// A database URL as it may be shown: without its password.
pub fn redact_url(url: &str) -> String {
    // postgres://user:password@host/db -> postgres://user:***@host/db
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    if url.contains("password=") {
        return url
            .split_whitespace()
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=***"
                } else {
                    kv
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    url.to_owned()
}
