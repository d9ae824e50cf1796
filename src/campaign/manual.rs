//! `duecall call --account`: one reminder call through the same gate as a
//! campaign, on a data directory's store or the database several nodes
//! share (`--store`). The decision is the campaign's
//! (`gate::decide_on_store`: the account's attempts, every dial to its
//! numbers, its suppressions, pauses, holds), claimed and stored before the
//! INVITE like any other (`gate::claim_with`: under the store's write lock,
//! refused while a node has a call in flight to the account or its
//! number), so a manual call counts against the caps on every node; its
//! outcome is stored like a campaign's (the database first, then the JSON
//! beside the recording). A deny places no call.
//!
//! Like a campaign run it is a node: it takes the data directory's node
//! lease (naming its attempt, so another node sharing the store never takes
//! the living call for a dead one), recovers what a dead process of this
//! node left in flight, keeps the lease renewed while the call lasts
//! ([`keep_lease`]) and gives it back when the outcome is stored.
//!
//! Owns the data directory's lock and the node's lease for the call; never
//! decides anything itself and never dials (the agent does, with the
//! `AllowedDial`).

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use tokio_util::sync::CancellationToken;

use super::error::CampaignError;
use super::gate::{claim_with, decide_on_store, settle_due, NotClaimedNow};
use super::outcomes::{store_failure, store_outcome};
use super::persist::{publish_ended, write_outcome_file};
use super::recovery::recover_as;
use crate::account::Account;
use crate::agent::AttemptOutcome;
use crate::outcome::Disposition;
use crate::policy::{AllowedDial, PolicyConfig, PolicyDecision, Refused};
use crate::store::nodes::{node_id_of, Asking};
use crate::store::{AttemptId, DataDirLock, Location, Store};

/// A manual call's hold on its data directory (the lock and the store),
/// from the gate's decision to the stored outcome.
pub struct ManualCall {
    store: Store,
    /// A second connection the gate reads through while `store` holds the
    /// claim's write transaction.
    reader: Store,
    node: String,
    shared_recordings: Option<std::path::PathBuf>,
    _lock: DataDirLock,
}

impl ManualCall {
    /// Takes the data directory of `at` (its lock: no campaign dials from
    /// it meanwhile) and its node's lease for `lease` (`[store] lease_s`),
    /// recovers what a dead process of this node left in flight (its
    /// outcome JSON looked for under `record_dir`), and puts the account in
    /// `at`'s store. `now` is the call's clock.
    pub fn open(
        at: &Location,
        record_dir: Option<&Path>,
        lease: Duration,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<Self, CampaignError> {
        let lock = DataDirLock::acquire(at.dir())?;
        let mut store = at.open()?;
        let node = node_id_of(at.dir())?;
        let lease_now = Utc::now();
        store.take_lease(&node, std::process::id(), lease_now, lease)?;
        let recovered = recover_as(
            &mut store,
            at.dir(),
            record_dir,
            Asking::StartUp,
            now,
            lease_now,
        )?;
        if !recovered.is_empty() {
            tracing::warn!(
                attempts = recovered.len(),
                "attempts a dead process of this node left in flight recovered"
            );
        }
        store.upsert_accounts(std::slice::from_ref(account), now)?;
        let reader = at.open()?;
        Ok(ManualCall {
            store,
            reader,
            node,
            shared_recordings: None,
            _lock: lock,
        })
    }

    /// Moves the call's recording, once it ended, to `dir` (`[store]
    /// recordings`, shared by every node); the attempt names it there.
    pub fn share_recordings(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.shared_recordings = dir;
        self
    }

    /// This node's id (the data directory's).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The gate's decision at `now`; an allow comes back as the dial it
    /// allows, its decision stored (the attempt counts from here on), a
    /// deny as the decision saying why.
    pub fn authorise(
        &mut self,
        account: &Account,
        policy: &PolicyConfig,
        now: DateTime<Utc>,
    ) -> Result<Result<AllowedDial, PolicyDecision>, CampaignError> {
        let zones = crate::account::tz::zones_for(account).0;
        settle_due(&mut self.store, account, policy, now)?;
        let reader = &self.reader;
        // The call goes to one number: the question is about it (the claim
        // locks that number).
        let view = Account {
            alt_phones: Vec::new(),
            ..account.clone()
        };
        let claimed = claim_with(
            &mut self.store,
            &account.account_id,
            &account.phone,
            now,
            || decide_on_store(reader, account, Some(&view), &zones, policy, now),
        );
        match claimed {
            Err(NotClaimedNow::InFlight) => Err(CampaignError::InFlight {
                account_id: account.account_id.clone(),
            }),
            Err(NotClaimedNow::Refused(r)) => match r {
                Refused::Denied(d) => Ok(Err(*d)),
                Refused::NotStored(e) => Err(e.into()),
            },
            Ok(dial) => {
                self.store
                    .mark_dialling(AttemptId(dial.attempt_id()), now)?;
                Ok(Ok(dial))
            }
        }
    }

    /// Stores how the call ended (the database first, the JSON beside the
    /// recording after it, best effort).
    pub fn finish(
        &mut self,
        attempt: i64,
        result: &Result<AttemptOutcome, crate::agent::AgentError>,
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        let id = AttemptId(attempt);
        let mut ended = match result {
            Ok(o) => store_outcome(o, id, now),
            Err(e) => store_failure(Disposition::Failed, "agent", &e.to_string(), now),
        };
        publish_ended(&mut ended, id, self.shared_recordings.as_deref());
        self.store.record_outcome(id, &ended)?;
        if let Some(rec) = &ended.recording {
            write_outcome_file(Path::new(rec), &ended.outcome_json);
        }
        // Nothing of this node is in flight any more: a clean hand-back.
        self.store.release_lease(&self.node, Utc::now())?;
        Ok(())
    }
}

/// Keeps node `node`'s lease on the store `at` renewed (every third of
/// `lease`) until `stop` is cancelled, on a connection of its own: a call
/// outlasts a lease, and a lease left to expire lets another node take the
/// call for a dead one. A renewal the store refuses is logged and tried at
/// the next beat; a lease found already lost is logged once at error.
pub async fn keep_lease(at: Location, node: String, lease: Duration, stop: CancellationToken) {
    let beat = (lease / 3)
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(10))
        .max(std::time::Duration::from_millis(200));
    let mut store: Option<Store> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(beat) => {}
        }
        let (at2, node2) = (at.clone(), node.clone());
        let mut held = store.take();
        let renewed = tokio::task::spawn_blocking(move || {
            let s = match held.as_mut() {
                Some(s) => s,
                None => held.insert(at2.open()?),
            };
            let ok = s.renew_lease(&node2, Utc::now(), lease)?;
            Ok::<_, crate::store::StoreError>((held, ok))
        })
        .await;
        match renewed {
            Ok(Ok((s, true))) => store = s,
            Ok(Ok((s, false))) => {
                store = s;
                tracing::error!(node = %node, "this node's lease expired during the call: another node may record it as crashed");
            }
            Ok(Err(e)) => {
                tracing::warn!(node = %node, error = %e, "lease not renewed (tried again at the next beat)")
            }
            Err(e) => tracing::warn!(node = %node, error = %e, "lease renewal task failed"),
        }
    }
}
