//! The `campaigns` table and `campaign_accounts`: the campaigns the
//! service runs (`duecall serve`), their state (`draft`, `running`,
//! `paused`, `stopped`), and which accounts each one calls. Changes of
//! state are audited in the same transaction. Never dials and never
//! decides whether an account may be called: the service's dialler reads
//! `running_accounts` and the gate decides each dial.

use std::collections::BTreeMap;

use super::db::{params, OptionalExtension};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::{append as audit_in, Actor};
use super::codec::{parse_ts, ts};
use super::{sql, Store, StoreError};
use crate::account::hours::ContactPrefs;
use crate::account::Account;

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Created, being fed accounts; not dialling.
    Draft,
    /// Its accounts are dialled whenever the gate allows, across days.
    Running,
    /// No new dials until started again (calls in flight end normally).
    Paused,
    /// Ended for good: never dialled again.
    Stopped,
}

impl CampaignState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> Result<CampaignState, StoreError> {
        Ok(match s {
            "draft" => CampaignState::Draft,
            "running" => CampaignState::Running,
            "paused" => CampaignState::Paused,
            "stopped" => CampaignState::Stopped,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "campaigns.state {other:?} is not draft, running, paused or stopped"
                )))
            }
        })
    }

    /// Whether a campaign in this state may move to `to` (a stopped
    /// campaign stays stopped; anything else may start, pause or stop).
    pub fn may_become(self, to: CampaignState) -> bool {
        !matches!(
            (self, to),
            (CampaignState::Stopped, _)
                | (_, CampaignState::Draft)
                | (CampaignState::Draft, CampaignState::Paused)
        )
    }
}

/// One campaign as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignRow {
    /// Its id.
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// Its state.
    pub state: CampaignState,
    /// How many accounts it calls.
    pub accounts: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its state or accounts last changed.
    pub updated_at: DateTime<Utc>,
}

/// Why a campaign change was refused (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignRefusal {
    /// No campaign with this id.
    NotFound,
    /// The name is taken.
    NameTaken,
    /// The move is not allowed from the present state.
    State(CampaignState),
}

const SELECT: &str = "SELECT c.id, c.name, c.state, c.created_at, c.updated_at,
        (SELECT COUNT(*) FROM campaign_accounts ca WHERE ca.campaign_id = c.id)
    FROM campaigns c";

type Raw = (i64, String, String, String, String, i64);

fn row(r: Raw) -> Result<CampaignRow, StoreError> {
    Ok(CampaignRow {
        id: r.0,
        name: r.1,
        state: CampaignState::parse(&r.2)?,
        created_at: parse_ts(&r.3)?,
        updated_at: parse_ts(&r.4)?,
        accounts: r.5.max(0) as u64,
    })
}

impl Store {
    /// Every campaign, newest first.
    pub fn campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        const OP: &str = "campaigns";
        let mut st = self
            .conn
            .prepare(&format!("{SELECT} ORDER BY c.id DESC"))
            .map_err(sql(OP))?;
        let raws: Vec<Raw> = st.query_all([]).map_err(sql(OP))?;
        raws.into_iter().map(row).collect()
    }

    /// One campaign.
    pub fn campaign(&self, id: i64) -> Result<Option<CampaignRow>, StoreError> {
        const OP: &str = "campaign";
        let raw: Option<Raw> = self
            .conn
            .query_one(&format!("{SELECT} WHERE c.id = ?1"), [id])
            .optional()
            .map_err(sql(OP))?;
        raw.map(row).transpose()
    }

    /// Creates a campaign in `draft`.
    pub fn create_campaign(
        &mut self,
        name: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<i64, CampaignRefusal>, StoreError> {
        const OP: &str = "create_campaign";
        let tx = self.write_tx(OP)?;
        let id: Option<i64> = tx
            .query_row(
                "INSERT INTO campaigns (name, state, created_at, updated_at)
                 VALUES (?1, 'draft', ?2, ?2)
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                params![name, ts(now)],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(OP))?;
        let Some(id) = id else {
            return Ok(Err(CampaignRefusal::NameTaken));
        };
        audit_in(
            &tx,
            now,
            actor,
            "campaign.create",
            &format!("campaign:{id}"),
            &serde_json::json!({"name": name}),
        )?;
        tx.commit().map_err(sql(OP))?;
        Ok(Ok(id))
    }

    /// Adds accounts to a campaign (upserting them, with the hours each
    /// debtor asked for and their consent, as `duecall run` stores them),
    /// then links them in one transaction with its audit line. A stopped
    /// campaign takes no more accounts.
    pub fn add_campaign_accounts(
        &mut self,
        id: i64,
        accounts: &[Account],
        contact: &BTreeMap<String, ContactPrefs>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<usize, CampaignRefusal>, StoreError> {
        const OP: &str = "add_campaign_accounts";
        match self.campaign(id)? {
            None => return Ok(Err(CampaignRefusal::NotFound)),
            Some(c) if c.state == CampaignState::Stopped => {
                return Ok(Err(CampaignRefusal::State(c.state)))
            }
            Some(_) => {}
        }
        self.upsert_accounts(accounts, now)?;
        self.set_contact_prefs(contact)?;
        let tx = self.write_tx(OP)?;
        let mut added = 0;
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO campaign_accounts (campaign_id, account_id, added_at)
                     VALUES (?1, ?2, ?3) ON CONFLICT (campaign_id, account_id) DO NOTHING",
                )
                .map_err(sql(OP))?;
            for a in accounts {
                added += st
                    .execute(params![id, a.account_id, ts(now)])
                    .map_err(sql(OP))?;
            }
        }
        tx.execute(
            "UPDATE campaigns SET updated_at = ?2 WHERE id = ?1",
            params![id, ts(now)],
        )
        .map_err(sql(OP))?;
        audit_in(
            &tx,
            now,
            actor,
            "campaign.accounts",
            &format!("campaign:{id}"),
            &serde_json::json!({"rows": accounts.len(), "new": added}),
        )?;
        tx.commit().map_err(sql(OP))?;
        Ok(Ok(added))
    }

    /// Moves a campaign to `to` (start, pause, stop), audited.
    pub fn set_campaign_state(
        &mut self,
        id: i64,
        to: CampaignState,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Result<CampaignRow, CampaignRefusal>, StoreError> {
        const OP: &str = "set_campaign_state";
        let tx = self.write_tx(OP)?;
        let from: Option<String> = tx
            .query_row("SELECT state FROM campaigns WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql(OP))?;
        let Some(from) = from else {
            return Ok(Err(CampaignRefusal::NotFound));
        };
        let from = CampaignState::parse(&from)?;
        if !from.may_become(to) {
            return Ok(Err(CampaignRefusal::State(from)));
        }
        tx.execute(
            "UPDATE campaigns SET state = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, to.as_str(), ts(now)],
        )
        .map_err(sql(OP))?;
        audit_in(
            &tx,
            now,
            actor,
            &format!("campaign.{}", to.as_str()),
            &format!("campaign:{id}"),
            &serde_json::json!({"from": from.as_str(), "to": to.as_str()}),
        )?;
        tx.commit().map_err(sql(OP))?;
        Ok(self.campaign(id)?.ok_or(CampaignRefusal::NotFound))
    }

    /// The accounts of every running campaign, each once, by id.
    pub fn running_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let ids: Vec<String> = {
            const OP: &str = "running_accounts";
            let mut st = self
                .conn
                .prepare(
                    "SELECT DISTINCT ca.account_id FROM campaign_accounts ca
                     JOIN campaigns c ON c.id = ca.campaign_id
                     WHERE c.state = 'running' ORDER BY ca.account_id",
                )
                .map_err(sql(OP))?;
            st.query_map([], |r| r.get(0))
                .map_err(sql(OP))?
                .collect::<Result<_, _>>()
                .map_err(sql(OP))?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(a) = self.account(&id)? {
                out.push(a);
            }
        }
        Ok(out)
    }
}
