//! The bench driver's one error type.

use std::path::PathBuf;

/// Errors of the bench driver, naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag is out of range.
    #[error("{0}")]
    Args(String),
    /// A tokio runtime could not start, or a task of it failed.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The simulated debtors did not start.
    #[error("simulated debtors: {0}")]
    Sim(#[from] crate::sim::SimError),
    /// duecall's SIP gateway did not start.
    #[error("SIP gateway: {0}")]
    Gateway(String),
    /// The agent (scripts, recogniser) did not start; run scripts/setup.
    #[error("agent: {0}")]
    Agent(String),
    /// The warm-up conversation did not reach its route: measuring would be
    /// meaningless (is the recogniser installed? scripts/setup).
    #[error("the warm-up conversation went wrong: {0}")]
    Warmup(String),
    /// A file or directory could not be written.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}
