//! The service's tables (`duecall serve`): users, API tokens, console
//! sessions, the audit log, the collectors' case work (claims are on
//! `escalations`; notes and closures here), changes to holds, QA labels and
//! the webhook outbox. Owns only the migration text; the rows are read and
//! written by `users`, `tokens`, `sessions`, `audit`, `casework`,
//! `qa_labels` and `outbox`.
//!
//! Same SQL rules as `schema`: what SQLite and PostgreSQL both accept, times
//! as fixed-form UTC text.

/// Migration: access control (users, tokens, sessions) and the audit log.
pub(super) const ACCESS: &str = "
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'collector', 'qa')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'collector', 'qa')),
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users (name),
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_name);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    role   TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_time ON audit_log (at, id);
CREATE INDEX audit_by_target ON audit_log (target, id);
";

/// Migration: the people's work on cases: escalation notes and closures,
/// changes to pauses (release, extend), QA labels.
pub(super) const CASEWORK: &str = "
CREATE TABLE escalation_notes (
    id            INTEGER PRIMARY KEY,
    escalation_id BIGINT NOT NULL REFERENCES escalations (id),
    author        TEXT NOT NULL,
    text          TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX notes_by_escalation ON escalation_notes (escalation_id, id);

CREATE TABLE escalation_closures (
    escalation_id BIGINT PRIMARY KEY REFERENCES escalations (id),
    closed_by     TEXT NOT NULL,
    outcome       TEXT NOT NULL
                  CHECK (outcome IN ('pause', 'suppress', 'release', 'retry', 'resolved')),
    detail        TEXT NOT NULL DEFAULT '{}',
    closed_at     TEXT NOT NULL
);

CREATE TABLE hold_changes (
    id         INTEGER PRIMARY KEY,
    pause_id   BIGINT NOT NULL REFERENCES pauses (id),
    action     TEXT NOT NULL CHECK (action IN ('release', 'extend')),
    old_until  TEXT NOT NULL,
    new_until  TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
CREATE INDEX hold_changes_by_pause ON hold_changes (pause_id, id);

CREATE TABLE qa_labels (
    id           INTEGER PRIMARY KEY,
    attempt_id   BIGINT NOT NULL REFERENCES attempts (id),
    turn_idx     INTEGER,
    verdict      TEXT NOT NULL
                 CHECK (verdict IN ('correct', 'wrong_intent', 'script_problem', 'compliance_concern')),
    right_intent TEXT,
    right_text   TEXT,
    score        INTEGER CHECK (score BETWEEN 1 AND 5),
    note         TEXT,
    labelled_by  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX qa_labels_by_attempt ON qa_labels (attempt_id, id);
";

/// Migration: the webhook outbox. `events` is written in the same
/// transaction as what it reports (AUTOINCREMENT: an id is never reused, so
/// a delivery cursor never skips a new event after old ones are pruned;
/// PostgreSQL: an identity column, with fan-out by commit order taken from
/// a sequence read under the same lock); `webhook_deliveries` holds one row
/// per event and endpoint until it is delivered.
pub(super) const OUTBOX: &str = "
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    uid       TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL,
    at        TEXT NOT NULL,
    order_key TEXT NOT NULL,
    data      TEXT NOT NULL
);

CREATE TABLE webhook_cursors (
    endpoint      TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY,
    endpoint     TEXT NOT NULL,
    event_id     BIGINT NOT NULL REFERENCES events (id),
    order_key    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TEXT NOT NULL,
    last_error   TEXT,
    delivered_at TEXT,
    UNIQUE (endpoint, event_id)
);
CREATE INDEX deliveries_due ON webhook_deliveries (status, next_at);
CREATE INDEX deliveries_order ON webhook_deliveries (endpoint, order_key, status, event_id);
";

/// Migration: campaigns the service runs (`duecall serve`), and which
/// accounts each one calls. An account may be in several campaigns; the
/// service dials the accounts of every running campaign, each once.
pub(super) const CAMPAIGNS: &str = "
CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    state      TEXT NOT NULL CHECK (state IN ('draft', 'running', 'paused', 'stopped')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE campaign_accounts (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    account_id  TEXT NOT NULL REFERENCES accounts (account_id),
    added_at    TEXT NOT NULL,
    PRIMARY KEY (campaign_id, account_id)
);
";
