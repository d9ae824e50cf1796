//! The `nodes` table: the duecall nodes that dial from this store and the
//! lease each holds. A node takes its lease when `run` starts, renews it
//! (its heartbeat) while it runs, and gives it back when it stops. Every
//! attempt it decides names it (`attempts.node`), so crash recovery takes
//! over only the attempts of a node whose lease has expired (a dead node)
//! or of the caller's own previous incarnation, never a live node's.
//!
//! The node id is kept in the node's data directory (`node_id`), so a
//! restart on the same directory is the same node: its data-directory lock
//! proves the previous incarnation dead, and its `pending/` outcomes and
//! recordings are there to import.
//!
//! Owns these rows and the pure take-over rule ([`may_take_over`]); never
//! reads the clock (every time is given) and never decides what a crashed
//! attempt becomes (`campaign::recovery` does).

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::codec::{parse_opt_ts, parse_ts, ts};
use super::db::{params, OptionalExtension};
use super::{sql, AttemptId, Store, StoreError};

/// The file in a data directory that names its node.
pub const NODE_ID_FILE: &str = "node_id";

/// A node's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLease {
    /// The node's id (`<host>-<16 hex digits>`, from its data directory).
    pub node_id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id when it took the lease.
    pub pid: i64,
    /// When this incarnation took the lease.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// Until when its attempts in flight are its own.
    pub lease_until: DateTime<Utc>,
    /// When it gave the lease back (a clean stop).
    pub stopped_at: Option<DateTime<Utc>>,
}

/// Who holds an attempt left in flight, as the take-over rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    /// No node named: decided before leases existed, or by a command that
    /// takes no lease (`duecall call --account` on the data directory).
    Unnamed,
    /// A node, with its lease's end if it has a row.
    Node {
        /// The node's id.
        id: &'a str,
        /// Its lease's end (`None`: no row, nobody renews it).
        lease_until: Option<DateTime<Utc>>,
    },
}

/// When the take-over rule is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asking {
    /// At start-up, before this node dials: its own previous incarnation
    /// is dead (the data-directory lock says so), whatever its lease.
    StartUp,
    /// While running (each heartbeat): only dead nodes' attempts.
    Running,
}

/// Whether node `me` may take over an attempt in flight held by `holder`
/// at `now`: its own previous incarnation's and unnamed ones only at
/// start-up; another node's only once its lease has expired. Pure.
pub fn may_take_over(holder: Holder<'_>, me: &str, asking: Asking, now: DateTime<Utc>) -> bool {
    match holder {
        Holder::Unnamed => asking == Asking::StartUp,
        Holder::Node { id, .. } if id == me => asking == Asking::StartUp,
        Holder::Node {
            lease_until: None, ..
        } => true,
        Holder::Node {
            lease_until: Some(t),
            ..
        } => t <= now,
    }
}

/// The id of the node that runs on `data_dir`: read from its `node_id`
/// file, or made (`<host>-<16 random hex digits>`) and written there
/// (owner-only) on the first run.
pub fn node_id_of(data_dir: &Path) -> Result<String, StoreError> {
    let path = data_dir.join(NODE_ID_FILE);
    let io = |source| StoreError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if valid_node_id(s.trim()) => return Ok(s.trim().to_string()),
        Ok(s) => {
            return Err(StoreError::BadArgument(format!(
                "{}: {:?} is not a node id (letters, digits, '-', '.', '_'; at most 100); remove the file to make a new one",
                path.display(),
                s.trim()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    super::files::create_private_dir(data_dir).map_err(|source| StoreError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let host: String = host_name()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(60)
        .collect();
    let id = format!(
        "{}-{:016x}",
        if host.is_empty() { "node" } else { &host },
        rand::random::<u64>()
    );
    super::files::write_private(&path, format!("{id}\n").as_bytes()).map_err(io)?;
    Ok(id)
}

fn valid_node_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// This machine's host name (empty if it cannot be read).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

type LeaseRaw = (String, String, i64, String, String, String, Option<String>);

fn lease_from(raw: LeaseRaw) -> Result<NodeLease, StoreError> {
    let (node_id, host, pid, started_at, heartbeat_at, lease_until, stopped_at) = raw;
    Ok(NodeLease {
        node_id,
        host,
        pid,
        started_at: parse_ts(&started_at)?,
        heartbeat_at: parse_ts(&heartbeat_at)?,
        lease_until: parse_ts(&lease_until)?,
        stopped_at: parse_opt_ts(stopped_at)?,
    })
}

const LEASE_COLS: &str =
    "node_id, host, pid, started_at, heartbeat_at, lease_until, stopped_at FROM nodes";

impl Store {
    /// Names `node` on every attempt this connection decides from now on,
    /// without taking its lease: for a connection of a process whose lease
    /// is held elsewhere in it (`campaign::owner::DataDirOwner`).
    pub fn act_for(&mut self, node: &str) {
        self.node = Some(node.to_string());
    }

    /// The node whose attempts this connection decides (`None`: no node
    /// named, as before leases).
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Takes node `node`'s lease until `now + lease` and names it on every
    /// attempt this connection decides from now on. A node id whose lease
    /// another host holds and has not let expire is refused (a copy of a
    /// data directory running elsewhere); the same host's is this node's
    /// previous incarnation, which its data-directory lock proves dead.
    pub fn take_lease(
        &mut self,
        node: &str,
        pid: u32,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<NodeLease, StoreError> {
        const OP: &str = "take_lease";
        let host = host_name();
        let tx = self.write_tx(OP)?;
        let held: Option<LeaseRaw> = tx
            .query_one(&format!("SELECT {LEASE_COLS} WHERE node_id = ?1"), [node])
            .optional()
            .map_err(sql(OP))?;
        if let Some(held) = held.map(lease_from).transpose()? {
            if held.host != host && held.stopped_at.is_none() && held.lease_until > now {
                return Err(StoreError::BadArgument(format!(
                    "node {node} is running on host {} (lease until {}): is this data directory a copy? Give each node its own data directory",
                    held.host,
                    held.lease_until.to_rfc3339()
                )));
            }
        }
        tx.execute(
            "INSERT INTO nodes (node_id, host, pid, started_at, heartbeat_at, lease_until, stopped_at)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, NULL)
             ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                 lease_until = excluded.lease_until, stopped_at = NULL",
            params![node, host, i64::from(pid), ts(now), ts(now + lease)],
        )
        .map_err(sql(OP))?;
        tx.commit().map_err(sql(OP))?;
        self.node = Some(node.to_string());
        Ok(NodeLease {
            node_id: node.to_string(),
            host,
            pid: i64::from(pid),
            started_at: now,
            heartbeat_at: now,
            lease_until: now + lease,
            stopped_at: None,
        })
    }

    /// This node's heartbeat: renews its lease until `now + lease`. Returns
    /// false when the lease was already lost (it expired, or the node was
    /// stopped): other nodes may have taken over its attempts, and it must
    /// stop dialling.
    pub fn renew_lease(
        &mut self,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE nodes SET heartbeat_at = ?2, lease_until = ?3
                 WHERE node_id = ?1 AND stopped_at IS NULL AND lease_until > ?2",
                params![node, ts(now), ts(now + lease)],
            )
            .map(|n| n == 1)
            .map_err(sql("renew_lease"))
    }

    /// Gives node `node`'s lease back at `now` (a clean stop: nothing of
    /// its is in flight any more).
    pub fn release_lease(&mut self, node: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE nodes SET stopped_at = ?2, lease_until = ?2 WHERE node_id = ?1",
                params![node, ts(now)],
            )
            .map(|_| ())
            .map_err(sql("release_lease"))
    }

    /// Every node that ever took a lease on this store, by id.
    pub fn nodes(&self) -> Result<Vec<NodeLease>, StoreError> {
        const OP: &str = "nodes";
        let mut st = self
            .conn
            .prepare(&format!("SELECT {LEASE_COLS} ORDER BY node_id"))
            .map_err(sql(OP))?;
        let raws: Vec<LeaseRaw> = st.query_all([]).map_err(sql(OP))?;
        raws.into_iter().map(lease_from).collect()
    }

    /// Attempts in flight this node may take over at `now` ([`may_take_over`]
    /// with this connection's node), oldest first, with their accounts. A
    /// connection that names no node takes over every attempt in flight
    /// at start-up, and none while running.
    pub fn in_flight_to_take_over(
        &self,
        asking: Asking,
        now: DateTime<Utc>,
    ) -> Result<Vec<(AttemptId, String)>, StoreError> {
        const OP: &str = "in_flight_to_take_over";
        let mut st = self
            .conn
            .prepare(
                "SELECT a.id, a.account_id, a.node, n.lease_until
                 FROM attempts a LEFT JOIN nodes n ON n.node_id = a.node
                 WHERE a.state IN ('decided', 'dialling') ORDER BY a.id",
            )
            .map_err(sql(OP))?;
        let rows: Vec<(i64, String, Option<String>, Option<String>)> =
            st.query_all([]).map_err(sql(OP))?;
        let me = self.node.as_deref().unwrap_or("");
        let mut out = Vec::new();
        for (id, account_id, node, lease_until) in rows {
            let holder = match &node {
                None => Holder::Unnamed,
                Some(n) => Holder::Node {
                    id: n,
                    lease_until: parse_opt_ts(lease_until)?,
                },
            };
            if may_take_over(holder, me, asking, now) {
                out.push((AttemptId(id), account_id));
            }
        }
        Ok(out)
    }

    /// Marks attempt `id` `failed_by_crash` (disposition `failed`, reason
    /// `crash`, ended `now`) if it is still in flight and this node may
    /// still take it over at `lease_now` (the holder's lease is read again
    /// under the write lock: a node that renewed in between keeps its
    /// call). Returns whether it was marked.
    pub fn take_over_crashed(
        &mut self,
        id: AttemptId,
        asking: Asking,
        now: DateTime<Utc>,
        lease_now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "take_over_crashed";
        let me = self.node.clone().unwrap_or_default();
        let tx = self.write_tx(OP)?;
        let row: Option<(Option<String>, Option<String>)> = tx
            .query_one("SELECT a.node, n.lease_until FROM attempts a LEFT JOIN nodes n ON n.node_id = a.node
                 WHERE a.id = ?1 AND a.state IN ('decided', 'dialling')",
                [id.0])
            .optional()
            .map_err(sql(OP))?;
        let Some((node, lease_until)) = row else {
            return Ok(false);
        };
        let holder = match &node {
            None => Holder::Unnamed,
            Some(n) => Holder::Node {
                id: n,
                lease_until: parse_opt_ts(lease_until)?,
            },
        };
        if !may_take_over(holder, &me, asking, lease_now) {
            return Ok(false);
        }
        let n = tx
            .execute(
                "UPDATE attempts SET state = 'failed_by_crash', disposition = 'failed', reason = 'crash',
                     ended_at = ?2
                 WHERE id = ?1 AND state IN ('decided', 'dialling')",
                params![id.0, ts(now)],
            )
            .map_err(sql(OP))?;
        tx.commit().map_err(sql(OP))?;
        Ok(n == 1)
    }

    /// The node named on attempt `id` (`None`: none, or no such attempt).
    pub fn attempt_node(&self, id: AttemptId) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT node FROM attempts WHERE id = ?1", [id.0], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(sql("attempt_node"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::seconds(s)
    }

    #[test]
    fn a_live_nodes_attempt_is_never_taken_over() {
        let live = Holder::Node {
            id: "b",
            lease_until: Some(at(30)),
        };
        assert!(!may_take_over(live, "a", Asking::StartUp, at(0)));
        assert!(!may_take_over(live, "a", Asking::Running, at(29)));
    }

    #[test]
    fn a_dead_nodes_attempt_is_taken_over_once_its_lease_expires() {
        let dead = Holder::Node {
            id: "b",
            lease_until: Some(at(30)),
        };
        assert!(may_take_over(dead, "a", Asking::Running, at(30)));
        assert!(may_take_over(dead, "a", Asking::StartUp, at(31)));
        let no_row = Holder::Node {
            id: "b",
            lease_until: None,
        };
        assert!(may_take_over(no_row, "a", Asking::Running, at(0)));
    }

    #[test]
    fn own_previous_incarnation_and_unnamed_attempts_only_at_start_up() {
        let mine = Holder::Node {
            id: "a",
            lease_until: Some(at(30)),
        };
        assert!(may_take_over(mine, "a", Asking::StartUp, at(0)));
        assert!(!may_take_over(mine, "a", Asking::Running, at(0)));
        // Even once expired, a running node never takes its own calls.
        assert!(!may_take_over(mine, "a", Asking::Running, at(60)));
        assert!(may_take_over(Holder::Unnamed, "a", Asking::StartUp, at(0)));
        assert!(!may_take_over(Holder::Unnamed, "a", Asking::Running, at(0)));
    }

    #[test]
    fn a_data_directory_keeps_its_node_id_and_a_bad_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("duecall-node-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let id = node_id_of(&dir).unwrap();
        assert!(valid_node_id(&id), "{id}");
        assert_eq!(node_id_of(&dir).unwrap(), id);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(NODE_ID_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "node_id readable by others: {mode:o}");
        std::fs::write(dir.join(NODE_ID_FILE), "a b\n").unwrap();
        let err = node_id_of(&dir).unwrap_err().to_string();
        assert!(err.contains("is not a node id"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
