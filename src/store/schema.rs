//! Schema migrations. Owns the numbered list of migrations and the
//! `schema_version` table; never touches rows of the business tables.
//!
//! Every migration is applied in its own transaction (SQLite and PostgreSQL
//! both have transactional DDL), so a crash half-way leaves the database at
//! the previous version, never between two. The SQL sticks to what both
//! engines accept; where a type differs the PostgreSQL spelling is noted.
//! Times are TEXT in one fixed RFC 3339 UTC form (see `store::ts`), so that
//! comparing the text compares the instants (PostgreSQL: `timestamptz`).

use std::path::Path;

use super::db::Db;

use super::StoreError;

/// Migration 1: the core of a campaign: accounts, attempts, turns, routes.
///
/// `INTEGER PRIMARY KEY` ids are read back with `RETURNING id`, never with
/// `last_insert_rowid()` (PostgreSQL: `BIGINT GENERATED ALWAYS AS IDENTITY`).
const M1_CORE: &str = "
CREATE TABLE accounts (
    account_id    TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    phone         TEXT NOT NULL,
    amount        TEXT NOT NULL,
    currency      TEXT,
    due_date      TEXT NOT NULL,
    timezone      TEXT,
    language      TEXT NOT NULL,
    jurisdiction  TEXT,
    alt_phones    TEXT NOT NULL DEFAULT '[]',
    days_past_due BIGINT,
    agent_uri     TEXT,
    updated_at    TEXT NOT NULL
);

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    account_id   TEXT NOT NULL,
    phone        TEXT NOT NULL,
    decided_at   TEXT NOT NULL,
    policy       TEXT NOT NULL,
    started_at   TEXT,
    ended_at     TEXT,
    disposition  TEXT,
    reason       TEXT,
    sip_status   INTEGER,
    conversation BOOLEAN NOT NULL DEFAULT FALSE,
    outcome      TEXT,
    recording    TEXT,
    state        TEXT NOT NULL
                 CHECK (state IN ('decided', 'dialling', 'ended', 'failed_by_crash')),
    source       TEXT NOT NULL DEFAULT 'duecall',
    import_key   TEXT UNIQUE
);
CREATE INDEX attempts_by_account ON attempts (account_id, decided_at);
CREATE INDEX attempts_by_state ON attempts (state);

CREATE TABLE turns (
    attempt_id BIGINT NOT NULL REFERENCES attempts (id),
    idx        INTEGER NOT NULL,
    prompt     TEXT NOT NULL,
    played_ms  BIGINT NOT NULL,
    finished   BOOLEAN NOT NULL,
    heard      TEXT,
    intent     TEXT,
    confidence REAL,
    start_ms   BIGINT NOT NULL,
    end_ms     BIGINT NOT NULL,
    PRIMARY KEY (attempt_id, idx)
);

CREATE TABLE routes (
    attempt_id BIGINT PRIMARY KEY REFERENCES attempts (id),
    kind       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    until      TEXT,
    scope      TEXT,
    follow_up  TEXT
);
";

/// Migration 2: what outlives a call: the collectors' escalation queue,
/// pauses, suppressions, callbacks, and payments (imported later).
const M2_QUEUES: &str = "
CREATE TABLE escalations (
    id          INTEGER PRIMARY KEY,
    account_id  TEXT NOT NULL,
    attempt_id  BIGINT REFERENCES attempts (id),
    reason      TEXT NOT NULL,
    intent      TEXT,
    summary     TEXT NOT NULL,
    transcript  TEXT NOT NULL DEFAULT '[]',
    recording   TEXT,
    created_at  TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'claimed', 'closed')),
    claimed_by  TEXT,
    claimed_at  TEXT,
    closed_at   TEXT
);
CREATE INDEX escalations_queue ON escalations (status, created_at, id);

CREATE TABLE pauses (
    id         INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    reason     TEXT NOT NULL,
    until      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX pauses_by_account ON pauses (account_id);

CREATE TABLE suppressions (
    id         INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    phone      TEXT,
    scope      TEXT NOT NULL CHECK (scope IN ('number', 'account')),
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX suppressions_by_account ON suppressions (account_id);

CREATE TABLE callbacks (
    id         INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    at         TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX callbacks_by_account ON callbacks (account_id);

CREATE TABLE payments (
    id         INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    amount     TEXT NOT NULL,
    paid_at    TEXT NOT NULL
);
CREATE INDEX payments_by_account ON payments (account_id);
";

/// Migration 3: the per-number caps read every attempt to a number, about
/// any account.
const M3_ATTEMPTS_BY_PHONE: &str = "
CREATE INDEX attempts_by_phone ON attempts (phone, decided_at);
";

/// Migration 7: holds on robot contact left by what the person said (a
/// dispute until released; a case with a collector until its escalation is
/// closed or `agent_hold_days` pass).
const M7_HOLDS: &str = "
CREATE TABLE holds (
    id          INTEGER PRIMARY KEY,
    account_id  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('dispute', 'agent')),
    reason      TEXT NOT NULL,
    attempt_id  BIGINT REFERENCES attempts (id),
    created_at  TEXT NOT NULL,
    released_at TEXT,
    released_by TEXT
);
CREATE INDEX holds_by_account ON holds (account_id);
CREATE INDEX holds_by_attempt ON holds (attempt_id);
";

/// Migration 8: the lender's lists: numbers on the do-not-call list for
/// every account, where a suppression came from, payments imported once,
/// how an ended pause settled (a claimed payment verified or not, a promise
/// kept or broken), and the hours each debtor asked to be called in.
const M8_LISTS: &str = "
CREATE TABLE dnc_numbers (
    id         INTEGER PRIMARY KEY,
    phone      TEXT NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('number', 'account')),
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX dnc_by_phone ON dnc_numbers (phone);
ALTER TABLE suppressions ADD COLUMN source TEXT NOT NULL DEFAULT 'call';
CREATE UNIQUE INDEX payments_once ON payments (account_id, amount, paid_at);
ALTER TABLE pauses ADD COLUMN settled_at TEXT;
ALTER TABLE pauses ADD COLUMN settlement TEXT;
ALTER TABLE accounts ADD COLUMN call_hours TEXT;
ALTER TABLE accounts ADD COLUMN night_call_consent BOOLEAN NOT NULL DEFAULT FALSE;
";

/// Migration 10: the standing hours a debtor asked for on a call ("call me
/// after six"), on the route that carried them and on the callback row the
/// gate reads (`HH:MM` bounds, local time; NULL: no bound).
const M10_ASKED_HOURS: &str = "
ALTER TABLE routes ADD COLUMN hours TEXT;
ALTER TABLE callbacks ADD COLUMN not_before TEXT;
ALTER TABLE callbacks ADD COLUMN not_after TEXT;
";

/// Migration 11: several nodes on one store. Each node's lease (taken at
/// start, renewed by its heartbeat, given back at a clean stop), and the
/// node that decided each attempt, so recovery takes over only a dead
/// node's calls in flight.
const M11_NODES: &str = "
CREATE TABLE nodes (
    node_id      TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    lease_until  TEXT NOT NULL,
    stopped_at   TEXT
);
ALTER TABLE attempts ADD COLUMN node TEXT;
CREATE INDEX attempts_in_flight ON attempts (state, account_id, phone);
";

/// Migration 12: row locks for dial claims on a shared store. A claim on
/// PostgreSQL locks the rows `account:<id>` and `number:<E.164>` with
/// `FOR UPDATE SKIP LOCKED` instead of the store's one write lock, so
/// claims of different accounts and numbers never wait for each other, and
/// a claim whose account or number another node is claiming is refused at
/// once (asked again later). One row per account and per number, made on
/// first claim. SQLite claims under its one write lock and leaves it empty.
const M12_CLAIM_LOCKS: &str = "
CREATE TABLE claim_locks (
    key TEXT PRIMARY KEY
);
";

/// Migration 13: the caller ID an account is called from (the accounts
/// CSV's `caller_id` column, E.164; NULL: the campaign's or the trunk's).
const M13_CALLER_ID: &str = "
ALTER TABLE accounts ADD COLUMN caller_id TEXT;
";

/// The migrations in order; migration `n` (1-based) is `MIGRATIONS[n - 1]`.
/// Append only: a released migration is never edited. A new table gets its
/// own migration here (its rows' code in its own file beside this one).
pub(crate) const MIGRATIONS: &[&str] = &[
    M1_CORE,
    M2_QUEUES,
    M3_ATTEMPTS_BY_PHONE,
    super::web_schema::ACCESS,
    super::web_schema::CASEWORK,
    super::web_schema::OUTBOX,
    M7_HOLDS,
    M8_LISTS,
    super::web_schema::CAMPAIGNS,
    M10_ASKED_HOURS,
    M11_NODES,
    M12_CLAIM_LOCKS,
    M13_CALLER_ID,
];

/// The newest schema version this build knows.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// The version recorded in the database (0 for a new file).
pub(crate) fn current_version(conn: &Db) -> super::db::Result<i64> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    BIGINT PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
         )",
    )?;
    conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .map(|v| v.unwrap_or(0))
}

/// Applies the migrations after the recorded version, up to `target`, one
/// transaction each. Several processes may open the same database at once:
/// each step takes the write lock first and re-reads the version inside it,
/// so a migration is never applied twice.
pub(crate) fn migrate(conn: &Db, path: &Path, target: i64) -> Result<i64, StoreError> {
    let open = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    loop {
        let tx = conn.write_tx().map_err(open)?;
        let found = current_version(&tx).map_err(open)?;
        if found > LATEST {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                known: LATEST,
            });
        }
        if found >= target {
            tx.commit().map_err(open)?;
            return Ok(found);
        }
        let version = found + 1;
        let step = |source| StoreError::Migration { version, source };
        tx.execute_batch(MIGRATIONS[found as usize]).map_err(step)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )
        .map_err(step)?;
        tx.commit().map_err(step)?;
    }
}
