//! The webhook outbox. Owns `events` (what happened, written in the same
//! transaction as the change it reports, so a crash loses neither or
//! both), `webhook_cursors` (how far each endpoint's fan-out has read) and
//! `webhook_deliveries` (one row per event and endpoint until a 2xx).
//!
//! Never sends anything: `web::webhooks` reads due deliveries, posts them
//! and reports back. Order per call: a delivery is due only when no earlier
//! delivery with the same endpoint and `order_key` is still pending, so the
//! events of one call arrive in the order they happened even across
//! retries; different calls never wait for each other.

use super::db::{params, Db, OptionalExtension};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::codec::{parse_ts, ts};
use super::{sql, Store, StoreError};

/// What happened (`X-Duecall-Event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    /// A case was queued for the collectors.
    #[serde(rename = "escalation.created")]
    EscalationCreated,
    /// A live transfer started (the REFER left).
    #[serde(rename = "transfer.started")]
    TransferStarted,
    /// A call's route was decided.
    #[serde(rename = "route.decided")]
    RouteDecided,
    /// A call ended.
    #[serde(rename = "call.ended")]
    CallEnded,
}

impl EventKind {
    /// Every kind, in the order of the issue.
    pub const ALL: [EventKind; 4] = [
        EventKind::EscalationCreated,
        EventKind::TransferStarted,
        EventKind::RouteDecided,
        EventKind::CallEnded,
    ];

    /// The header and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::EscalationCreated => "escalation.created",
            EventKind::TransferStarted => "transfer.started",
            EventKind::RouteDecided => "route.decided",
            EventKind::CallEnded => "call.ended",
        }
    }

    /// Parses the header spelling.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A fresh delivery id: a random (version 4) UUID, the same
/// on every retry of the event (receivers de-duplicate by it).
fn new_uid() -> String {
    crate::ids::random_uuid()
}

/// Appends an event inside the caller's transaction. The body is fixed
/// here, once, as it will be posted: `{"event","id","at","data"}`.
/// `order_key` groups the events that must arrive in order (`attempt:12`).
pub(crate) fn enqueue(
    conn: &Db,
    kind: EventKind,
    at: DateTime<Utc>,
    order_key: &str,
    data: serde_json::Value,
) -> Result<String, StoreError> {
    let uid = new_uid();
    let body = serde_json::json!({
        "event": kind.as_str(),
        "id": uid,
        "at": ts(at),
        "data": data,
    });
    conn.execute(
        "INSERT INTO events (uid, kind, at, order_key, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![uid, kind.as_str(), ts(at), order_key, body.to_string()],
    )
    .map_err(sql("enqueue_event"))?;
    Ok(uid)
}

/// One delivery to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Delivery row id.
    pub id: i64,
    /// Endpoint URL.
    pub endpoint: String,
    /// The event's delivery id (`X-Duecall-Delivery`).
    pub uid: String,
    /// The event kind.
    pub kind: String,
    /// The body to post, byte for byte the same on every try.
    pub body: String,
    /// Tries so far.
    pub attempts: u32,
    /// Groups events that must arrive in order.
    pub order_key: String,
}

/// The deliveries due to endpoint `?3` at `?1`, each the first pending one
/// of its order key, oldest event first, at most `?2`.
const DUE_SQL: &str = "SELECT d.id, d.endpoint, e.uid, e.kind, e.data, d.attempts, d.order_key
     FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
     WHERE d.endpoint = ?3 AND d.status = 'pending' AND d.next_at <= ?1
       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                       WHERE p.endpoint = d.endpoint AND p.order_key = d.order_key
                         AND p.status = 'pending' AND p.event_id < d.event_id)
     ORDER BY d.event_id LIMIT ?2";

/// A row of [`DUE_SQL`].
type DeliveryRaw = (i64, String, String, String, String, i64, String);

fn delivery_of((id, endpoint, uid, kind, body, attempts, order_key): DeliveryRaw) -> Delivery {
    Delivery {
        id,
        endpoint,
        uid,
        kind,
        body,
        attempts: attempts.clamp(0, u32::MAX as i64) as u32,
        order_key,
    }
}

/// An event as stored (for the API and tests).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Store id (commit order).
    pub id: i64,
    /// Delivery id.
    pub uid: String,
    /// Kind.
    pub kind: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Ordering group.
    pub order_key: String,
}

/// How far behind one endpoint is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backlog {
    /// Endpoint URL.
    pub endpoint: String,
    /// Deliveries not yet acknowledged.
    pub pending: u64,
    /// Events not yet fanned out to it.
    pub unread: u64,
    /// Tries of the most-tried pending delivery.
    pub max_attempts: u32,
}

impl Store {
    /// Appends one event on its own (a transfer that starts mid-call).
    pub fn enqueue_event(
        &mut self,
        kind: EventKind,
        at: DateTime<Utc>,
        order_key: &str,
        data: serde_json::Value,
    ) -> Result<String, StoreError> {
        enqueue(&self.conn, kind, at, order_key, data)
    }

    /// Events after an id, oldest first.
    pub fn events_after(&self, after: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        const OP: &str = "events_after";
        let mut st = self
            .conn
            .prepare("SELECT id, uid, kind, at, order_key FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(sql(OP))?;
        let raws: Vec<(i64, String, String, String, String)> =
            st.query_all(params![after, limit]).map_err(sql(OP))?;
        raws.into_iter()
            .map(|(id, uid, kind, at, order_key)| {
                Ok(StoredEvent {
                    id,
                    uid,
                    kind,
                    at: parse_ts(&at)?,
                    order_key,
                })
            })
            .collect()
    }

    /// Creates the delivery rows of `endpoint` for the events it has not
    /// seen yet (of the kinds it wants), and moves its cursor past them, in
    /// one transaction. A new endpoint starts after the newest event (it is
    /// not sent the past). Returns how many deliveries were created.
    pub fn fan_out(
        &mut self,
        endpoint: &str,
        kinds: &[EventKind],
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize, StoreError> {
        const OP: &str = "fan_out";
        let tx = self.write_tx(OP)?;
        let cursor: Option<i64> = tx
            .query_row(
                "SELECT last_event_id FROM webhook_cursors WHERE endpoint = ?1",
                [endpoint],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(OP))?;
        let Some(cursor) = cursor else {
            tx.execute(
                "INSERT INTO webhook_cursors (endpoint, last_event_id)
                 VALUES (?1, (SELECT COALESCE(MAX(id), 0) FROM events))",
                [endpoint],
            )
            .map_err(sql(OP))?;
            tx.commit().map_err(sql(OP))?;
            return Ok(0);
        };
        let rows: Vec<(i64, String, String)> = {
            let mut st = tx
                .prepare(
                    "SELECT id, kind, order_key FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(sql(OP))?;
            st.query_all(params![cursor, limit]).map_err(sql(OP))?
        };
        let mut made = 0;
        let mut last = cursor;
        for (id, kind, order_key) in &rows {
            last = *id;
            if !EventKind::parse(kind).is_some_and(|k| kinds.contains(&k)) {
                continue;
            }
            made += tx
                .execute(
                    "INSERT INTO webhook_deliveries (endpoint, event_id, order_key, status, attempts, next_at)
                     VALUES (?1, ?2, ?3, 'pending', 0, ?4)
                     ON CONFLICT (endpoint, event_id) DO NOTHING",
                    params![endpoint, id, order_key, ts(now)],
                )
                .map_err(sql(OP))?;
        }
        if last != cursor {
            tx.execute(
                "UPDATE webhook_cursors SET last_event_id = ?2 WHERE endpoint = ?1",
                params![endpoint, last],
            )
            .map_err(sql(OP))?;
        }
        tx.commit().map_err(sql(OP))?;
        Ok(made)
    }

    /// Deliveries to `endpoint` due at `now`, each the first pending one
    /// of its order key, oldest event first.
    pub fn due_deliveries(
        &self,
        endpoint: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        const OP: &str = "due_deliveries";
        let mut st = self.conn.prepare(DUE_SQL).map_err(sql(OP))?;
        let raws: Vec<DeliveryRaw> = st
            .query_all(params![ts(now), limit, endpoint])
            .map_err(sql(OP))?;
        Ok(raws.into_iter().map(delivery_of).collect())
    }

    /// Claims the deliveries to `endpoint` due at `now` (as
    /// [`Store::due_deliveries`]) for `hold`: in one write transaction (on
    /// PostgreSQL under the store's write lock, across every node sharing
    /// it) each one's `next_at` moves to `now + hold`, so no other sender,
    /// on this node or another, posts it meanwhile. The sender reports back
    /// with [`Store::mark_delivered`] or [`Store::mark_failed`]; a sender
    /// that dies leaves the claim to lapse, and the delivery is due again
    /// after `hold` (at least once, never twice at the same time). `hold`
    /// must outlast a try (the POST's timeout).
    pub fn claim_deliveries(
        &mut self,
        endpoint: &str,
        now: DateTime<Utc>,
        hold: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        const OP: &str = "claim_deliveries";
        let tx = self.write_tx(OP)?;
        let raws: Vec<DeliveryRaw> = {
            let mut st = tx.prepare(DUE_SQL).map_err(sql(OP))?;
            st.query_all(params![ts(now), limit, endpoint])
                .map_err(sql(OP))?
        };
        for r in &raws {
            tx.execute(
                "UPDATE webhook_deliveries SET next_at = ?2 WHERE id = ?1 AND status = 'pending'",
                params![r.0, ts(now + hold)],
            )
            .map_err(sql(OP))?;
        }
        tx.commit().map_err(sql(OP))?;
        Ok(raws.into_iter().map(delivery_of).collect())
    }

    /// The earliest time a pending delivery becomes due, if any.
    pub fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<String> = self
            .conn
            .query_row(
                "SELECT MIN(next_at) FROM webhook_deliveries WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )
            .map_err(sql("next_delivery_at"))?;
        t.as_deref().map(parse_ts).transpose()
    }

    /// The receiver acknowledged a delivery.
    pub fn mark_delivered(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = ?2,
                     attempts = attempts + 1, last_error = NULL
                 WHERE id = ?1",
                params![id, ts(now)],
            )
            .map(drop)
            .map_err(sql("mark_delivered"))
    }

    /// A try failed; the next one is due at `next_at`.
    pub fn mark_failed(
        &mut self,
        id: i64,
        error: &str,
        next_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?2, next_at = ?3
                 WHERE id = ?1 AND status = 'pending'",
                params![id, error, ts(next_at)],
            )
            .map(drop)
            .map_err(sql("mark_failed"))
    }

    /// How far behind each endpoint is (those with a cursor).
    pub fn webhook_backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        const OP: &str = "webhook_backlog";
        let mut st = self
            .conn
            .prepare(
                "SELECT c.endpoint,
                    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint = c.endpoint AND d.status = 'pending'),
                    (SELECT COUNT(*) FROM events e WHERE e.id > c.last_event_id),
                    (SELECT COALESCE(MAX(d.attempts), 0) FROM webhook_deliveries d
                      WHERE d.endpoint = c.endpoint AND d.status = 'pending')
                 FROM webhook_cursors c ORDER BY c.endpoint",
            )
            .map_err(sql(OP))?;
        let rows = st
            .query_map([], |r| {
                Ok(Backlog {
                    endpoint: r.get(0)?,
                    pending: r.get::<_, i64>(1)?.max(0) as u64,
                    unread: r.get::<_, i64>(2)?.max(0) as u64,
                    max_attempts: r.get::<_, i64>(3)?.clamp(0, u32::MAX as i64) as u32,
                })
            })
            .map_err(sql(OP))?
            .collect::<Result<_, _>>()
            .map_err(sql(OP))?;
        Ok(rows)
    }

    /// Forgets what every endpoint has acknowledged before `before`, and
    /// events that old that every endpoint has read and none still owes.
    pub fn prune_outbox(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        const OP: &str = "prune_outbox";
        let tx = self.write_tx(OP)?;
        let mut n = tx
            .execute(
                "DELETE FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < ?1",
                [ts(before)],
            )
            .map_err(sql(OP))?;
        n += tx
            .execute(
                "DELETE FROM events WHERE at < ?1
                   AND id <= (SELECT COALESCE(MIN(last_event_id), (SELECT MAX(id) FROM events))
                              FROM webhook_cursors)
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id)",
                [ts(before)],
            )
            .map_err(sql(OP))?;
        tx.commit().map_err(sql(OP))?;
        Ok(n)
    }
}

/// The order key of one attempt's events (`attempt:12`): they arrive in the
/// order they happened.
pub fn attempt_order_key(attempt: super::AttemptId) -> String {
    format!("attempt:{}", attempt.0)
}
