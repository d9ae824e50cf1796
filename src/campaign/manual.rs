//! `duecall call --account`: one reminder call through the same gate as a
//! campaign, on a data directory. The decision is the campaign's
//! (`gate::decide_on_store`: the account's attempts, every dial to its
//! numbers, its suppressions, pauses, holds), stored before the INVITE like
//! any other (`gate::authorise`), so a manual call counts against the caps;
//! its outcome is stored like a campaign's (the database first, then the
//! JSON beside the recording). A deny places no call.
//!
//! Owns the data directory's lock for the call; never decides anything
//! itself and never dials (the agent does, with the `AllowedDial`).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::error::CampaignError;
use super::gate::{authorise, decide_on_store, settle_due};
use super::outcomes::{store_failure, store_outcome};
use super::persist::write_outcome_file;
use crate::account::Account;
use crate::agent::AttemptOutcome;
use crate::outcome::Disposition;
use crate::policy::{AllowedDial, PolicyConfig, PolicyDecision, Refused};
use crate::store::{AttemptId, DataDirLock, Store};

/// A manual call's hold on its data directory (the lock and the store),
/// from the gate's decision to the stored outcome.
pub struct ManualCall {
    store: Store,
    _lock: DataDirLock,
}

impl ManualCall {
    /// Takes the data directory (its lock: no campaign dials from it
    /// meanwhile) and puts the account in its store.
    pub fn open(dir: &Path, account: &Account, now: DateTime<Utc>) -> Result<Self, CampaignError> {
        let lock = DataDirLock::acquire(dir)?;
        let mut store = Store::open(dir)?;
        store.upsert_accounts(std::slice::from_ref(account), now)?;
        Ok(ManualCall { store, _lock: lock })
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
        let decision = decide_on_store(&self.store, account, None, &zones, policy, now)?;
        match authorise(&mut self.store, decision, now) {
            Ok(dial) => {
                self.store
                    .mark_dialling(AttemptId(dial.attempt_id()), now)?;
                Ok(Ok(dial))
            }
            Err(Refused::Denied(d)) => Ok(Err(*d)),
            Err(Refused::NotStored(e)) => Err(e.into()),
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
        let ended = match result {
            Ok(o) => store_outcome(o, id, now),
            Err(e) => store_failure(Disposition::Failed, "agent", &e.to_string(), now),
        };
        self.store.record_outcome(id, &ended)?;
        if let Ok(o) = result {
            if let Some(rec) = &o.call.recording {
                write_outcome_file(rec, &ended.outcome_json);
            }
        }
        Ok(())
    }
}
