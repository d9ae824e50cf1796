//! The compliance gate: may this account be dialled now, under which rules,
//! and when next? Owns the policy configuration (jurisdiction presets, every
//! number overridable), the pure decision (`decide`) with its audit record,
//! and the `check` / `plan` command entries. The decision core never reads a
//! clock, a file or the network; only `cli` does I/O.

pub mod allowed;
pub mod cli;
pub mod config;
pub mod decide;
pub mod decision;
pub mod holds;
mod prep;
pub mod settle;

pub use allowed::{authorise, AllowedDial, Refused};
pub use config::{BrokenPromise, CapCounts, JurisdictionRules, PolicyConfig, RollingCap, Window};
pub use decide::{allowed_at, decide};
pub use decision::{AccountState, Decision, Figures, PolicyDecision, RuleCheck, Suppression};
pub use holds::{Hold, HoldKind};
pub use settle::{settle, Settlement};

/// Errors of the policy layer's commands, each naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Write(#[from] std::io::Error),
    /// The config file is not valid TOML or a policy key is wrong.
    #[error("config {path}: {message}")]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A line of an attempt history cannot be read: the gate counts every
    /// past attempt, so it refuses to decide on an incomplete history.
    #[error("history {path}: line {line}: {reason} (the caps count every past attempt: nothing is planned or dialled on an incomplete history; fix or remove the line)")]
    History {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory's store could not be read (the plan does not
    /// guess what it holds).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The accounts file cannot be used at all (e.g. a required column is missing).
    #[error("accounts {path}: {message}")]
    Accounts {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}
