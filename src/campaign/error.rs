//! The campaign layer's one error enum: what can stop a campaign from
//! starting or make it end early, each naming what to fix.

use std::path::PathBuf;

use super::scheduler::SchedulerError;
use crate::agent::AgentError;
use crate::store::StoreError;

/// What can stop a campaign from starting or make it end early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// The config file is unreadable or a `[sip]`/`[media]` key is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A `[campaign]` key is wrong (named in the message).
    #[error("config `campaign.{key}`: {message}")]
    Settings {
        /// The key under `[campaign]`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The `[policy]` table is wrong, or a file it reads is missing.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The accounts file cannot be used at all.
    #[error("accounts {path}: {message}")]
    Accounts {
        /// The CSV.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file named on the command line could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file the campaign writes (demo files, output) could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `duecall call --account`: a call to the account, or to its number,
    /// is in flight (a campaign on this or another node sharing the store).
    #[error("account {account_id}, or its number, has a call in flight (a campaign or another call); try again when it has ended")]
    InFlight {
        /// The account.
        account_id: String,
    },
    /// The store failed (the campaign stops dialling and drains).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Outcomes the database refused to the end of the run. They are kept
    /// in the pending directory and imported by the next start.
    #[error("{count} call outcome(s) could not be stored (the database refused them to the end); they are kept in {dir} and the next run on this data directory imports them")]
    Unstored {
        /// How many.
        count: usize,
        /// Where their copies are.
        dir: PathBuf,
    },
    /// `--now` with a dial target that is not loopback: a test clock never
    /// dials a real person.
    #[error("--now is for tests and demos: it starts the gate's clock at a chosen moment, so it is refused unless every dial target is on this machine (loopback); {target} is not")]
    TestClock {
        /// The first target that is not loopback.
        target: String,
    },
    /// SIP could not start.
    #[error(transparent)]
    Sip(#[from] crate::telephony::sip::SipError),
    /// The gateway calls go out on (SIP trunk or streaming platform) did not start.
    #[error(transparent)]
    Gateway(#[from] crate::telephony::gateway::GatewayError),
    /// The agent could not start (scripts, recognizer, prompt audio).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The scheduler refused its configuration.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The simulated debtors of the demo could not start.
    #[error("simulated debtors: {0}")]
    Sim(String),
    /// This node's lease in the shared store expired before its heartbeat
    /// renewed it (the process was paused, or the database unreachable,
    /// for longer than `[store] lease_s`): other nodes may already have
    /// recorded its calls in flight as crashed, so it dialled no more. The
    /// summary of what it did is kept (printed before the error).
    #[error("node {node}: its lease in the shared store expired before its heartbeat (more than {lease_s} s without a renewal: the process was paused or the database unreachable); it stopped dialling and let its calls end, and other nodes may have recorded those calls as crashed. Start it again to rejoin the campaign")]
    LeaseLost {
        /// This node's id (`nodes.node_id`, also in `<data-dir>/node_id`).
        node: String,
        /// `[store] lease_s`.
        lease_s: i64,
        /// What the run did before and after it lost the lease.
        summary: Box<super::progress::CampaignSummary>,
    },
}

impl From<super::settings::InvalidSetting> for CampaignError {
    fn from(e: super::settings::InvalidSetting) -> Self {
        CampaignError::Settings {
            key: e.key,
            message: e.message,
        }
    }
}
