//! This node's lease while it runs: the heartbeat that renews it and takes
//! over what nodes whose lease expired left in flight.

use chrono::Utc;

use crate::campaign::recovery::recover_as;
use crate::store::nodes::Asking;

use super::{blocking, Runner};

impl Runner {
    /// Whether this node's lease on a shared store has run out unless a
    /// renewal is stored first (on SQLite nobody else can take over).
    pub(super) fn lease_ran_out(&self) -> bool {
        self.shared_store && std::time::Instant::now() >= self.lease_deadline
    }

    /// This node's heartbeat: renews its lease, then takes over what nodes
    /// whose lease has expired left in flight (each marked crashed once,
    /// by whichever node gets there first). Returns false when the lease
    /// was lost (it expired before this renewal). A store that refuses is
    /// logged and asked again at the next beat.
    pub(super) fn heartbeat(&mut self) -> bool {
        let (writer, node, lease) = (&mut self.writer, self.node.clone(), self.lease);
        let lease_now = Utc::now();
        let asked = std::time::Instant::now();
        let renewed_until = asked + lease.to_std().unwrap_or_default();
        match blocking(|| writer.renew_lease(&node, lease_now, lease)) {
            Ok(true) => self.lease_deadline = renewed_until,
            Ok(false) if !self.shared_store => {
                // Paused (a suspended laptop, a stopped process) past the
                // lease on a store nobody else can open: take it again.
                tracing::warn!(node = %node, "this node's lease expired before its heartbeat (the process was paused); no other node shares this data directory, so it is taken again");
                let pid = std::process::id();
                match blocking(|| writer.take_lease(&node, pid, lease_now, lease)) {
                    Ok(_) => self.lease_deadline = renewed_until,
                    Err(e) => {
                        tracing::warn!(node = %node, error = %e, "lease not taken again (asked again at the next beat)")
                    }
                }
            }
            Ok(false) => {
                tracing::error!(node = %node, "this node's lease expired before its heartbeat: it stops dialling");
                return false;
            }
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "heartbeat not stored (the lease runs on until it expires)");
                return true;
            }
        }
        let now = self.clock.now();
        let (data_dir, record_dir) = (&self.data_dir, self.record_dir.as_deref());
        match blocking(|| {
            recover_as(
                writer,
                data_dir,
                record_dir,
                Asking::Running,
                now,
                lease_now,
            )
        }) {
            Ok(mut r) => {
                if !r.is_empty() {
                    tracing::warn!(node = %node, taken_over = r.len(), "calls in flight of a node whose lease expired recorded as failed (reason crash)");
                }
                self.taken_over.append(&mut r);
            }
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "dead nodes' calls not taken over (asked again at the next heartbeat)")
            }
        }
        true
    }
}
