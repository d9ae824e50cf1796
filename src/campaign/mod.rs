//! Campaigns: who is called next (the pure `scheduler`), the tokio `runner`
//! that drives it against the real gate, store and agent, its command-line
//! entry (`cli`: `duecall run`) and `demo` (`duecall demo`).

pub mod cli;
pub mod demo;
pub mod runner;
pub mod scheduler;

pub use runner::{CampaignError, CampaignSummary};
