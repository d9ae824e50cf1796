//! The store: everything duecall must remember between calls and between
//! runs (accounts, attempts with their policy decision and outcome, turns,
//! routes, the collectors' escalation queue, pauses, suppressions, callbacks,
//! payments), in an embedded SQLite database (`<data dir>/duecall.db`, WAL).
//!
//! It owns persistence only: it never decides whether to dial (the policy
//! does), never reads the clock (every time is passed in, like the pure
//! cores), and never logs a full phone number. All calls are synchronous; the
//! campaign runner calls them from `spawn_blocking`.
//!
//! Written so that PostgreSQL can take over when several nodes share one
//! queue: the SQL uses only what both engines accept (`ON CONFLICT` instead of
//! `INSERT OR REPLACE`, `RETURNING id` instead of `last_insert_rowid()`, times
//! as fixed-form UTC text that compares like `timestamptz`), and every work
//! claim is one `UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING`, whose
//! PostgreSQL form is noted where it is written.

pub mod cli;
mod export;
mod schema;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::account::{Account, Language};
use crate::outcome::{Disposition, Route, RouteKind, SuppressScope};

pub use export::ExportFormat;

/// The database file inside a data directory.
pub const DB_FILE: &str = "duecall.db";

/// Errors of the store layer. Each names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created or read.
    #[error("data directory {path}: {source} (give a writable directory with --data-dir or DUECALL_DATA)")]
    DataDir {
        /// The directory asked for.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The data directory path exists but is not a directory.
    #[error("data directory {path} exists and is not a directory (give a directory with --data-dir or DUECALL_DATA)")]
    NotADirectory {
        /// The path asked for.
        path: PathBuf,
    },
    /// No database where one was expected (export of a directory never used).
    #[error("no duecall database at {path} (point --data-dir or DUECALL_DATA at the directory a campaign used)")]
    NoDatabase {
        /// The database file looked for.
        path: PathBuf,
    },
    /// The database file could not be opened or is not a SQLite database.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer duecall.
    #[error("database {path} has schema version {found}, newer than this duecall knows ({known}); upgrade duecall")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A schema migration failed; the database stays at the version before it.
    #[error("schema migration {version} failed: {source}")]
    Migration {
        /// The migration that failed.
        version: i64,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("store: {op}: {source}")]
    Sql {
        /// The store operation that ran the query.
        op: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// No attempt with this id.
    #[error("attempt {0} does not exist")]
    UnknownAttempt(AttemptId),
    /// The attempt is not in the state the operation needs (an outcome
    /// recorded twice, or an attempt marked dialling after it ended).
    #[error("attempt {id} is {state}, expected {expected}")]
    WrongState {
        /// The attempt.
        id: AttemptId,
        /// Its state in the store.
        state: String,
        /// The state(s) the operation needs.
        expected: &'static str,
    },
    /// A stored value could not be read back (edited by hand, or a bug).
    #[error("malformed value in the store: {0}")]
    Corrupt(String),
    /// An export format other than `jsonl` or `csv`.
    #[error("unknown export format {0:?}: use jsonl or csv")]
    UnknownFormat(String),
    /// Writing the export failed.
    #[error("writing the export: {0}")]
    Write(#[source] std::io::Error),
    /// Writing the CSV export failed.
    #[error("writing the CSV export: {0}")]
    Csv(#[source] csv::Error),
    /// A value could not be encoded as JSON.
    #[error("encoding JSON for the store: {0}")]
    Json(#[source] serde_json::Error),
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

/// The id of one attempt (one dial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttemptId(pub i64);

impl std::fmt::Display for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where an attempt is in its life. `decided` is written before the INVITE
/// leaves, so a crash between the two still leaves a trace that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// The policy allowed the dial; the INVITE may or may not have left.
    Decided,
    /// The INVITE left.
    Dialling,
    /// The outcome is recorded.
    Ended,
    /// The process died while the attempt was in flight; found at restart.
    FailedByCrash,
}

impl AttemptState {
    /// The spelling in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Decided => "decided",
            AttemptState::Dialling => "dialling",
            AttemptState::Ended => "ended",
            AttemptState::FailedByCrash => "failed_by_crash",
        }
    }

    /// Parses the `state` column.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "decided" => AttemptState::Decided,
            "dialling" => AttemptState::Dialling,
            "ended" => AttemptState::Ended,
            "failed_by_crash" => AttemptState::FailedByCrash,
            _ => return None,
        })
    }
}

/// One turn as stored (the same keys as `turns[]` in the outcome JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRow {
    /// Prompt id played.
    pub prompt: String,
    /// How much of it was played, ms.
    pub played_ms: u64,
    /// Whether it played to the end (false: barge-in or hang-up).
    pub finished: bool,
    /// What was heard after it.
    #[serde(default)]
    pub heard: Option<String>,
    /// The intent recognised.
    #[serde(default)]
    pub intent: Option<String>,
    /// Its confidence, 0..1.
    #[serde(default)]
    pub confidence: Option<f32>,
    /// Turn start, ms from answer.
    pub start_ms: u64,
    /// Turn end, ms from answer.
    pub end_ms: u64,
}

/// An escalation to be queued for the collectors.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEscalation {
    /// The account.
    pub account_id: String,
    /// The attempt it came from, if any.
    pub attempt_id: Option<AttemptId>,
    /// Why (`hardship`, `dispute`, `paid-unverified`, ...).
    pub reason: String,
    /// The intent that led here.
    pub intent: Option<String>,
    /// One line for the queue.
    pub summary: String,
    /// The timed transcript (the outcome's `turns`).
    pub transcript: serde_json::Value,
    /// Path of the recording.
    pub recording: Option<String>,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
}

/// Status of an escalation in the collectors' queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationStatus {
    /// Waiting for a collector.
    Open,
    /// A collector has it.
    Claimed,
    /// Dealt with.
    Closed,
}

impl EscalationStatus {
    /// The spelling in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationStatus::Open => "open",
            EscalationStatus::Claimed => "claimed",
            EscalationStatus::Closed => "closed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "open" => EscalationStatus::Open,
            "claimed" => EscalationStatus::Claimed,
            "closed" => EscalationStatus::Closed,
            other => return Err(StoreError::Corrupt(format!("escalation status {other:?}"))),
        })
    }
}

/// An escalation as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    /// Queue id.
    pub id: i64,
    /// The account.
    pub account_id: String,
    /// The attempt it came from, if any.
    pub attempt_id: Option<AttemptId>,
    /// Why.
    pub reason: String,
    /// The intent that led here.
    pub intent: Option<String>,
    /// One line for the queue.
    pub summary: String,
    /// The timed transcript.
    pub transcript: serde_json::Value,
    /// Path of the recording.
    pub recording: Option<String>,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
    /// Open, claimed or closed.
    pub status: EscalationStatus,
    /// The collector who claimed it.
    pub claimed_by: Option<String>,
}

/// How an attempt ended, written in one transaction by `record_outcome`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptOutcome {
    /// The disposition.
    pub disposition: Disposition,
    /// For `failed` (`auth`, `network`, ...), or another short reason.
    pub reason: Option<String>,
    /// Final SIP status of the INVITE, if one came.
    pub sip_status: Option<u16>,
    /// When the call ended.
    pub ended_at: DateTime<Utc>,
    /// Whether the right person was reached and spoken with (for the
    /// "after a conversation" and "contacts" rules).
    pub conversation: bool,
    /// The whole outcome JSON (ARCHITECTURE.md), kept as given.
    pub outcome_json: serde_json::Value,
    /// Path of the two-channel recording.
    pub recording: Option<String>,
    /// The turns, in order.
    pub turns: Vec<TurnRow>,
    /// Where the case goes. Its pause, suppression and callback are written
    /// with the outcome (see `record_outcome`).
    pub route: Option<Route>,
    /// An escalation to queue with the outcome (an agent route no collector
    /// took live).
    pub escalation: Option<NewEscalation>,
}

/// One past attempt as the policy gate counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The number dialled.
    pub phone: String,
    /// When the dial left (or was decided, if it never got further).
    pub at: DateTime<Utc>,
    /// How it ended; `answered` ("not yet known") while in flight.
    pub disposition: Disposition,
    /// Whether the right person was spoken with.
    pub conversation: bool,
    /// Still decided/dialling: it counts as an attempt but has no outcome yet.
    pub in_flight: bool,
}

/// A past attempt made by the lender's other systems, imported so the caps
/// count it: the same record the history file holds.
pub type ImportedAttempt = crate::account::history::AttemptRecord;

/// What the store knows that stops or delays calls to an account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountState {
    /// Numbers suppressed for this account (scope `number`).
    pub suppressed_numbers: Vec<String>,
    /// No more robot calls on any number (scope `account`).
    pub suppressed_account: bool,
    /// The latest end of any pause (may be in the past).
    pub pause_until: Option<DateTime<Utc>>,
    /// The time the debtor most recently asked to be called back.
    pub callback_at: Option<DateTime<Utc>>,
}

/// One attempt read back whole.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// Its id.
    pub id: AttemptId,
    /// The account.
    pub account_id: String,
    /// The number dialled.
    pub phone: String,
    /// When the policy allowed it.
    pub decided_at: DateTime<Utc>,
    /// The policy decision JSON.
    pub policy: serde_json::Value,
    /// When the INVITE left.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub disposition: Option<Disposition>,
    /// Reason for `failed` (or `crash`).
    pub reason: Option<String>,
    /// Final SIP status.
    pub sip_status: Option<u16>,
    /// Whether the right person was spoken with.
    pub conversation: bool,
    /// The outcome JSON.
    pub outcome: Option<serde_json::Value>,
    /// Recording path.
    pub recording: Option<String>,
    /// Life-cycle state.
    pub state: AttemptState,
    /// The turns, in order.
    pub turns: Vec<TurnRow>,
    /// The route.
    pub route: Option<Route>,
}

/// Formats a time the one way the store writes it: RFC 3339, UTC, ms, `Z`.
/// Fixed width, so text order is time order (years 0000-9999).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {s:?}: {e}")))
}

/// The end of a pause that has none: the last moment the fixed-width time
/// text can hold.
fn pause_forever() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(parse_ts).transpose()
}

pub(crate) fn parse_disposition(s: &str) -> Result<Disposition, StoreError> {
    Disposition::parse(s).ok_or_else(|| StoreError::Corrupt(format!("disposition {s:?}")))
}

fn parse_json(s: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what} JSON: {e}")))
}

fn route_kind_str(k: RouteKind) -> &'static str {
    match k {
        RouteKind::Agent => "agent",
        RouteKind::Pause => "pause",
        RouteKind::Suppress => "suppress",
        RouteKind::Retry => "retry",
        RouteKind::Done => "done",
    }
}

fn parse_route_kind(s: &str) -> Result<RouteKind, StoreError> {
    Ok(match s {
        "agent" => RouteKind::Agent,
        "pause" => RouteKind::Pause,
        "suppress" => RouteKind::Suppress,
        "retry" => RouteKind::Retry,
        "done" => RouteKind::Done,
        other => return Err(StoreError::Corrupt(format!("route kind {other:?}"))),
    })
}

fn scope_str(s: SuppressScope) -> &'static str {
    match s {
        SuppressScope::Number => "number",
        SuppressScope::Account => "account",
    }
}

fn parse_scope(s: &str) -> Result<SuppressScope, StoreError> {
    Ok(match s {
        "number" => SuppressScope::Number,
        "account" => SuppressScope::Account,
        other => return Err(StoreError::Corrupt(format!("suppression scope {other:?}"))),
    })
}

/// An open database in a data directory. Not `Sync`: give each thread its
/// own `Store` (several may be open on one directory at once), or share one
/// behind a mutex.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the data directory and `<dir>/duecall.db`,
    /// switches it to WAL and applies any pending migrations.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        Self::open_file(&dir.join(DB_FILE), schema::LATEST)
    }

    /// Opens the database of a directory that must already hold one (for
    /// reading commands such as `export`, where creating an empty database
    /// would hide a mistyped path).
    pub fn open_existing(dir: &Path) -> Result<Store, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::NoDatabase { path });
        }
        Self::open_file(&path, schema::LATEST)
    }

    fn open_file(path: &Path, target: i64) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        // Writers queue behind each other instead of failing at once.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::InvalidParameterName(format!(
                    "journal_mode stayed {mode}, WAL refused"
                )),
            });
        }
        // NORMAL is durable across application crashes in WAL mode; only an
        // OS crash can lose the last transactions.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        schema::migrate(&mut conn, path, target)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::current_version(&self.conn).map_err(sql("schema_version"))
    }

    fn write_tx(&mut self, op: &'static str) -> Result<Transaction<'_>, StoreError> {
        // IMMEDIATE takes the write lock up front, so a read-then-write
        // transaction never fails half-way on a concurrent writer.
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(op))
    }

    // ---------------------------------------------------------------- accounts

    /// Inserts or updates accounts by `account_id`, in one transaction.
    pub fn upsert_accounts(
        &mut self,
        accounts: &[Account],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        const OP: &str = "upsert_accounts";
        let tx = self.write_tx(OP)?;
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO accounts (account_id, name, phone, amount, currency, due_date, timezone,
                         language, jurisdiction, alt_phones, days_past_due, agent_uri, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT (account_id) DO UPDATE SET
                         name = excluded.name, phone = excluded.phone, amount = excluded.amount,
                         currency = excluded.currency, due_date = excluded.due_date,
                         timezone = excluded.timezone, language = excluded.language,
                         jurisdiction = excluded.jurisdiction, alt_phones = excluded.alt_phones,
                         days_past_due = excluded.days_past_due, agent_uri = excluded.agent_uri,
                         updated_at = excluded.updated_at",
                )
                .map_err(sql(OP))?;
            for a in accounts {
                let alt = serde_json::to_string(&a.alt_phones).map_err(StoreError::Json)?;
                st.execute(params![
                    a.account_id,
                    a.name,
                    a.phone,
                    a.amount.to_string(),
                    a.currency,
                    a.due_date.to_string(),
                    a.timezone,
                    a.language.as_str(),
                    a.jurisdiction,
                    alt,
                    a.days_past_due,
                    a.agent_uri,
                    ts(now),
                ])
                .map_err(sql(OP))?;
            }
        }
        tx.commit().map_err(sql(OP))?;
        Ok(accounts.len())
    }

    /// One account by id.
    pub fn account(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .query_accounts("WHERE account_id = ?1", params![account_id])?
            .into_iter()
            .next())
    }

    /// Every account, by id.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.query_accounts("", params![])
    }

    fn query_accounts(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Account>, StoreError> {
        const OP: &str = "accounts";
        type Raw = (
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            Option<i64>,
            Option<String>,
        );
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT account_id, name, phone, amount, currency, due_date, timezone, language,
                        jurisdiction, alt_phones, days_past_due, agent_uri
                 FROM accounts {filter} ORDER BY account_id"
            ))
            .map_err(sql(OP))?;
        let raws: Vec<Raw> = st
            .query_map(args, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
            })
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        raws.into_iter()
            .map(
                |(
                    account_id,
                    name,
                    phone,
                    amount,
                    currency,
                    due,
                    timezone,
                    lang,
                    jurisdiction,
                    alt,
                    dpd,
                    agent,
                )| {
                    Ok(Account {
                        amount: Decimal::from_str(&amount).map_err(|e| {
                            StoreError::Corrupt(format!("amount {amount:?} of {account_id}: {e}"))
                        })?,
                        due_date: NaiveDate::from_str(&due).map_err(|e| {
                            StoreError::Corrupt(format!("due_date {due:?} of {account_id}: {e}"))
                        })?,
                        language: match lang.as_str() {
                            "en" => Language::En,
                            "zh" => Language::Zh,
                            other => {
                                return Err(StoreError::Corrupt(format!(
                                    "language {other:?} of {account_id}"
                                )))
                            }
                        },
                        alt_phones: serde_json::from_str(&alt).map_err(|e| {
                            StoreError::Corrupt(format!("alt_phones of {account_id}: {e}"))
                        })?,
                        account_id,
                        name,
                        phone,
                        currency,
                        timezone,
                        jurisdiction,
                        days_past_due: dpd,
                        agent_uri: agent,
                    })
                },
            )
            .collect()
    }

    // ---------------------------------------------------------------- attempts

    /// Records that the policy allowed a dial, before the INVITE leaves.
    /// The attempt counts from here on, even if the process dies next.
    pub fn record_decision(
        &mut self,
        account_id: &str,
        phone: &str,
        decided_at: DateTime<Utc>,
        decision: &serde_json::Value,
    ) -> Result<AttemptId, StoreError> {
        let decision = serde_json::to_string(decision).map_err(StoreError::Json)?;
        self.conn
            .query_row(
                "INSERT INTO attempts (account_id, phone, decided_at, policy, state)
                 VALUES (?1, ?2, ?3, ?4, 'decided') RETURNING id",
                params![account_id, phone, ts(decided_at), decision],
                |r| r.get(0),
            )
            .map(AttemptId)
            .map_err(sql("record_decision"))
    }

    /// Records that the INVITE left.
    pub fn mark_dialling(
        &mut self,
        id: AttemptId,
        started_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE attempts SET state = 'dialling', started_at = ?2 WHERE id = ?1 AND state = 'decided'",
                params![id.0, ts(started_at)],
            )
            .map_err(sql("mark_dialling"))?;
        if n == 0 {
            return Err(self.state_error(id, "decided")?);
        }
        Ok(())
    }

    /// Explains why an update guarded by state touched nothing.
    fn state_error(&self, id: AttemptId, expected: &'static str) -> Result<StoreError, StoreError> {
        let state: Option<String> = self
            .conn
            .query_row("SELECT state FROM attempts WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("attempt state"))?;
        Ok(match state {
            None => StoreError::UnknownAttempt(id),
            Some(state) => StoreError::WrongState {
                id,
                state,
                expected,
            },
        })
    }

    /// Records how an attempt ended, in one transaction: the attempt row, its
    /// turns, its route, what the route implies for later calls (a `pause`
    /// row, a `suppress` row for the dialled number or the whole account, a
    /// callback for a `retry` with a time; follow-ups too), and the
    /// escalation if one is given. Fails with `WrongState` if the outcome was
    /// already recorded.
    pub fn record_outcome(
        &mut self,
        id: AttemptId,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        const OP: &str = "record_outcome";
        let outcome_json =
            serde_json::to_string(&outcome.outcome_json).map_err(StoreError::Json)?;
        let tx = self.write_tx(OP)?;
        let row: Option<(String, String)> = tx
            .query_row(
                "UPDATE attempts SET state = 'ended', ended_at = ?2, disposition = ?3, reason = ?4,
                     sip_status = ?5, conversation = ?6, outcome = ?7, recording = ?8
                 WHERE id = ?1 AND state IN ('decided', 'dialling')
                 RETURNING account_id, phone",
                params![
                    id.0,
                    ts(outcome.ended_at),
                    outcome.disposition.as_str(),
                    outcome.reason,
                    outcome.sip_status,
                    outcome.conversation,
                    outcome_json,
                    outcome.recording,
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql(OP))?;
        let Some((account_id, phone)) = row else {
            drop(tx);
            return Err(self.state_error(id, "decided or dialling")?);
        };
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO turns (attempt_id, idx, prompt, played_ms, finished, heard, intent,
                         confidence, start_ms, end_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(sql(OP))?;
            for (i, t) in outcome.turns.iter().enumerate() {
                st.execute(params![
                    id.0,
                    i as i64,
                    t.prompt,
                    t.played_ms as i64,
                    t.finished,
                    t.heard,
                    t.intent,
                    t.confidence.map(f64::from),
                    t.start_ms as i64,
                    t.end_ms as i64,
                ])
                .map_err(sql(OP))?;
            }
        }
        if let Some(route) = &outcome.route {
            let follow_up = route
                .follow_up
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(StoreError::Json)?;
            tx.execute(
                "INSERT INTO routes (attempt_id, kind, reason, until, scope, follow_up)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id.0,
                    route_kind_str(route.kind),
                    route.reason,
                    route.until.map(|t| ts(t.with_timezone(&Utc))),
                    route.scope.map(scope_str),
                    follow_up,
                ],
            )
            .map_err(sql(OP))?;
            apply_route(&tx, &account_id, &phone, route, outcome.ended_at)?;
        }
        if let Some(e) = &outcome.escalation {
            insert_escalation(&tx, e)?;
        }
        tx.commit().map_err(sql(OP))
    }

    /// After a restart: every attempt still `decided` or `dialling` belonged
    /// to the process that died. They are marked `failed_by_crash`
    /// (disposition `failed`, reason `crash`, ended `now`) and keep counting
    /// as attempts. Returns their ids.
    ///
    /// Several nodes on PostgreSQL: add a `node` column and recover only the
    /// dead node's rows (`... AND node = $1`), or the living would lose
    /// their calls in flight.
    pub fn recover_after_crash(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Vec<AttemptId>, StoreError> {
        const OP: &str = "recover_after_crash";
        let mut st = self
            .conn
            .prepare(
                "UPDATE attempts SET state = 'failed_by_crash', disposition = 'failed', reason = 'crash',
                     ended_at = ?1
                 WHERE state IN ('decided', 'dialling')
                 RETURNING id",
            )
            .map_err(sql(OP))?;
        let mut ids: Vec<AttemptId> = st
            .query_map([ts(now)], |r| r.get(0).map(AttemptId))
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        ids.sort();
        Ok(ids)
    }

    /// Every attempt on an account (any number, any source), oldest first,
    /// as the policy gate counts them. In-flight attempts are included.
    pub fn history_for(&self, account_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        const OP: &str = "history_for";
        let mut st = self
            .conn
            .prepare(
                "SELECT phone, COALESCE(started_at, decided_at) AS at, disposition, conversation, state
                 FROM attempts WHERE account_id = ?1 ORDER BY at, id",
            )
            .map_err(sql(OP))?;
        let raws: Vec<(String, String, Option<String>, bool, String)> = st
            .query_map([account_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        raws.into_iter()
            .map(|(phone, at, disp, conversation, state)| {
                let in_flight = matches!(state.as_str(), "decided" | "dialling");
                Ok(HistoryRow {
                    phone,
                    at: parse_ts(&at)?,
                    disposition: match disp {
                        Some(d) => parse_disposition(&d)?,
                        None => Disposition::Answered,
                    },
                    conversation,
                    in_flight,
                })
            })
            .collect()
    }

    /// One attempt with its turns and route.
    pub fn attempt(&self, id: AttemptId) -> Result<Option<AttemptRecord>, StoreError> {
        const OP: &str = "attempt";
        type Raw = (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<u16>,
            bool,
            Option<String>,
            Option<String>,
            String,
        );
        let raw: Option<Raw> = self
            .conn
            .query_row(
                "SELECT account_id, phone, decided_at, policy, started_at, ended_at, disposition, reason,
                        sip_status, conversation, outcome, recording, state
                 FROM attempts WHERE id = ?1",
                [id.0],
                |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?,
                        r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?))
                },
            )
            .optional()
            .map_err(sql(OP))?;
        let Some((
            account_id,
            phone,
            decided_at,
            policy,
            started,
            ended,
            disp,
            reason,
            sip,
            conv,
            outcome,
            rec,
            state,
        )) = raw
        else {
            return Ok(None);
        };
        Ok(Some(AttemptRecord {
            id,
            account_id,
            phone,
            decided_at: parse_ts(&decided_at)?,
            policy: parse_json(&policy, "policy")?,
            started_at: parse_opt_ts(started)?,
            ended_at: parse_opt_ts(ended)?,
            disposition: disp.as_deref().map(parse_disposition).transpose()?,
            reason,
            sip_status: sip,
            conversation: conv,
            outcome: outcome
                .as_deref()
                .map(|o| parse_json(o, "outcome"))
                .transpose()?,
            recording: rec,
            state: AttemptState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("attempt state {state:?}")))?,
            turns: self.turns_of(id)?,
            route: self.route_of(id)?,
        }))
    }

    fn turns_of(&self, id: AttemptId) -> Result<Vec<TurnRow>, StoreError> {
        const OP: &str = "turns";
        let mut st = self
            .conn
            .prepare(
                "SELECT prompt, played_ms, finished, heard, intent, confidence, start_ms, end_ms
                 FROM turns WHERE attempt_id = ?1 ORDER BY idx",
            )
            .map_err(sql(OP))?;
        let rows = st
            .query_map([id.0], |r| {
                Ok(TurnRow {
                    prompt: r.get(0)?,
                    played_ms: r.get::<_, i64>(1)?.max(0) as u64,
                    finished: r.get(2)?,
                    heard: r.get(3)?,
                    intent: r.get(4)?,
                    confidence: r.get::<_, Option<f64>>(5)?.map(|c| c as f32),
                    start_ms: r.get::<_, i64>(6)?.max(0) as u64,
                    end_ms: r.get::<_, i64>(7)?.max(0) as u64,
                })
            })
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        Ok(rows)
    }

    fn route_of(&self, id: AttemptId) -> Result<Option<Route>, StoreError> {
        const OP: &str = "route";
        type Raw = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let raw: Option<Raw> = self
            .conn
            .query_row(
                "SELECT kind, reason, until, scope, follow_up FROM routes WHERE attempt_id = ?1",
                [id.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(sql(OP))?;
        let Some((kind, reason, until, scope, follow_up)) = raw else {
            return Ok(None);
        };
        Ok(Some(Route {
            kind: parse_route_kind(&kind)?,
            reason,
            until: parse_opt_ts(until)?.map(|t| t.fixed_offset()),
            scope: scope.as_deref().map(parse_scope).transpose()?,
            follow_up: follow_up
                .as_deref()
                .map(|f| {
                    serde_json::from_str(f)
                        .map_err(|e| StoreError::Corrupt(format!("follow_up JSON: {e}")))
                })
                .transpose()?,
        }))
    }

    /// Imports attempts made by the lender's other systems, so the caps count
    /// them. Importing the same row twice adds it once. Returns how many
    /// were new.
    pub fn import_history(&mut self, rows: &[ImportedAttempt]) -> Result<usize, StoreError> {
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

    // ------------------------------------------------- pauses, suppressions, callbacks

    /// Pauses collection on an account until a time.
    pub fn add_pause(
        &mut self,
        account_id: &str,
        reason: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_pause(&self.conn, account_id, reason, until, now)
    }

    /// Suppresses robot calls: to one number of the account (`phone` given)
    /// or to the whole account (`None`).
    pub fn add_suppression(
        &mut self,
        account_id: &str,
        phone: Option<&str>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_suppression(&self.conn, account_id, phone, reason, now)
    }

    /// Records that the debtor asked to be called back at `at`.
    pub fn add_callback(
        &mut self,
        account_id: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_callback(&self.conn, account_id, at, now)
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

    /// What stops or delays calls to an account.
    pub fn account_state(&self, account_id: &str) -> Result<AccountState, StoreError> {
        const OP: &str = "account_state";
        let mut state = AccountState::default();
        let mut st = self
            .conn
            .prepare("SELECT phone, scope FROM suppressions WHERE account_id = ?1 ORDER BY id")
            .map_err(sql(OP))?;
        let rows: Vec<(Option<String>, String)> = st
            .query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        for (phone, scope) in rows {
            match (parse_scope(&scope)?, phone) {
                (SuppressScope::Number, Some(p)) => {
                    if !state.suppressed_numbers.contains(&p) {
                        state.suppressed_numbers.push(p);
                    }
                }
                // A number-scoped row without a number cannot be honoured
                // narrowly; suppressing the account is the safe reading.
                (SuppressScope::Number, None) | (SuppressScope::Account, _) => {
                    state.suppressed_account = true
                }
            }
        }
        let pause: Option<String> = self
            .conn
            .query_row(
                "SELECT MAX(until) FROM pauses WHERE account_id = ?1",
                [account_id],
                |r| r.get(0),
            )
            .map_err(sql(OP))?;
        state.pause_until = parse_opt_ts(pause)?;
        let callback: Option<String> = self
            .conn
            .query_row(
                "SELECT at FROM callbacks WHERE account_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 1",
                [account_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(OP))?;
        state.callback_at = parse_opt_ts(callback)?;
        Ok(state)
    }

    // ------------------------------------------------------------- escalations

    /// Queues an escalation for the collectors. Returns its id.
    pub fn add_escalation(&mut self, e: &NewEscalation) -> Result<i64, StoreError> {
        insert_escalation(&self.conn, e)
    }

    /// Hands the oldest open escalation to `collector`, or `None` if the
    /// queue is empty. Two collectors never get the same one: the pick and
    /// the claim are one statement under the write lock.
    pub fn claim_escalation(
        &mut self,
        collector: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Escalation>, StoreError> {
        // PostgreSQL (several nodes): the same statement with the row locked
        // and skipped by concurrent claimers instead of waited on:
        //   UPDATE escalations SET status = 'claimed', claimed_by = $1, claimed_at = $2
        //   WHERE id = (SELECT id FROM escalations WHERE status = 'open'
        //               ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
        //   RETURNING ...
        // The outer `status = 'open'` re-check keeps it correct at READ
        // COMMITTED even without the row lock.
        let sql_text = format!(
            "UPDATE escalations SET status = 'claimed', claimed_by = ?1, claimed_at = ?2
             WHERE id = (SELECT id FROM escalations WHERE status = 'open' ORDER BY created_at, id LIMIT 1)
               AND status = 'open'
             RETURNING {ESCALATION_COLUMNS}"
        );
        let raw = self
            .conn
            .query_row(&sql_text, params![collector, ts(now)], raw_escalation)
            .optional()
            .map_err(sql("claim_escalation"))?;
        raw.map(RawEscalation::into_escalation).transpose()
    }

    /// Closes an escalation (dealt with). Returns false if it was not open
    /// or claimed.
    pub fn close_escalation(&mut self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE escalations SET status = 'closed', closed_at = ?2 WHERE id = ?1 AND status IN ('open', 'claimed')",
                params![id, ts(now)],
            )
            .map(|n| n == 1)
            .map_err(sql("close_escalation"))
    }

    /// Escalations with a status (or all), oldest first.
    pub fn escalations(
        &self,
        status: Option<EscalationStatus>,
    ) -> Result<Vec<Escalation>, StoreError> {
        const OP: &str = "escalations";
        // Two statements rather than `?1 IS NULL OR status = ?1`, whose
        // untyped parameter PostgreSQL cannot infer.
        let (filter, args) = match status {
            Some(s) => ("WHERE status = ?1", vec![s.as_str()]),
            None => ("", vec![]),
        };
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {ESCALATION_COLUMNS} FROM escalations {filter} ORDER BY created_at, id"
            ))
            .map_err(sql(OP))?;
        let raws: Vec<RawEscalation> = st
            .query_map(rusqlite::params_from_iter(args), raw_escalation)
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        raws.into_iter()
            .map(RawEscalation::into_escalation)
            .collect()
    }

    /// Writes attempts that ended since `since` for the lender's systems.
    /// See `export` for the columns.
    pub fn export(
        &self,
        since: DateTime<Utc>,
        format: ExportFormat,
        out: &mut dyn std::io::Write,
    ) -> Result<usize, StoreError> {
        export::export(self, since, format, out)
    }
}

const ESCALATION_COLUMNS: &str =
    "id, account_id, attempt_id, reason, intent, summary, transcript, recording, created_at, status, claimed_by";

struct RawEscalation {
    id: i64,
    account_id: String,
    attempt_id: Option<i64>,
    reason: String,
    intent: Option<String>,
    summary: String,
    transcript: String,
    recording: Option<String>,
    created_at: String,
    status: String,
    claimed_by: Option<String>,
}

fn raw_escalation(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawEscalation> {
    Ok(RawEscalation {
        id: r.get(0)?,
        account_id: r.get(1)?,
        attempt_id: r.get(2)?,
        reason: r.get(3)?,
        intent: r.get(4)?,
        summary: r.get(5)?,
        transcript: r.get(6)?,
        recording: r.get(7)?,
        created_at: r.get(8)?,
        status: r.get(9)?,
        claimed_by: r.get(10)?,
    })
}

impl RawEscalation {
    fn into_escalation(self) -> Result<Escalation, StoreError> {
        Ok(Escalation {
            id: self.id,
            account_id: self.account_id,
            attempt_id: self.attempt_id.map(AttemptId),
            reason: self.reason,
            intent: self.intent,
            summary: self.summary,
            transcript: parse_json(&self.transcript, "transcript")?,
            recording: self.recording,
            created_at: parse_ts(&self.created_at)?,
            status: EscalationStatus::parse(&self.status)?,
            claimed_by: self.claimed_by,
        })
    }
}

fn insert_escalation(conn: &Connection, e: &NewEscalation) -> Result<i64, StoreError> {
    let transcript = serde_json::to_string(&e.transcript).map_err(StoreError::Json)?;
    conn.query_row(
        "INSERT INTO escalations (account_id, attempt_id, reason, intent, summary, transcript, recording,
             created_at, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open') RETURNING id",
        params![
            e.account_id,
            e.attempt_id.map(|a| a.0),
            e.reason,
            e.intent,
            e.summary,
            transcript,
            e.recording,
            ts(e.created_at)
        ],
        |r| r.get(0),
    )
    .map_err(sql("add_escalation"))
}

fn insert_pause(
    conn: &Connection,
    account_id: &str,
    reason: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO pauses (account_id, reason, until, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![account_id, reason, ts(until), ts(now)],
    )
    .map(drop)
    .map_err(sql("add_pause"))
}

fn insert_suppression(
    conn: &Connection,
    account_id: &str,
    phone: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let scope = if phone.is_some() {
        SuppressScope::Number
    } else {
        SuppressScope::Account
    };
    conn.execute(
        "INSERT INTO suppressions (account_id, phone, scope, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account_id, phone, scope_str(scope), reason, ts(now)],
    )
    .map(drop)
    .map_err(sql("add_suppression"))
}

fn insert_callback(
    conn: &Connection,
    account_id: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO callbacks (account_id, at, created_at) VALUES (?1, ?2, ?3)",
        params![account_id, ts(at), ts(now)],
    )
    .map(drop)
    .map_err(sql("add_callback"))
}

/// Writes what a route means for later calls, follow-ups included. `agent`
/// and `done` leave nothing here (an escalation is explicit in the outcome).
fn apply_route(
    tx: &Transaction<'_>,
    account_id: &str,
    phone: &str,
    route: &Route,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match route.kind {
        RouteKind::Pause => {
            // A pause without an end holds until a person lifts it; dropping
            // it would let the robot call again.
            let until = route
                .until
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(pause_forever);
            insert_pause(tx, account_id, &route.reason, until, now)?;
        }
        RouteKind::Suppress => {
            let number = match route.scope {
                Some(SuppressScope::Number) => Some(phone),
                // No scope given: the wider one, never the narrower.
                Some(SuppressScope::Account) | None => None,
            };
            insert_suppression(tx, account_id, number, &route.reason, now)?;
        }
        RouteKind::Retry => {
            if let Some(at) = route.until {
                insert_callback(tx, account_id, at.with_timezone(&Utc), now)?;
            }
        }
        RouteKind::Agent | RouteKind::Done => {}
    }
    if let Some(f) = &route.follow_up {
        apply_route(tx, account_id, phone, f, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
