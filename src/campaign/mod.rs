//! Campaigns: who is called next (the pure `scheduler`) and the tokio
//! `runner` that drives it, one file per concern around them:
//!
//! - `scheduler`: pure, sans-IO; asks before every dial (`Decide`), dials
//!   only with the gate's permit.
//! - `runner`: the driver loop (store, agent, calls, shutdown).
//! - `gate`: the compliance gate over the store, as the driver asks it.
//! - `settings`: `[campaign]` and the dial plan; `clock`: `--now` or real.
//! - `outcomes`: the store's rows for an ended attempt; `persist`: how they
//!   land (the database first, pending copies when it refuses, then JSON).
//! - `recovery`: what a crashed run left in flight (outcomes imported).
//! - `hooks`: test-only pauses at named steps of an attempt's life.
//! - `progress`: the live line and the closing summary.
//! - `manual`: `duecall call --account` through the same gate and store.
//! - `owner`: one process's shared hold on its data directory (`serve`).
//! - `loopback`: `--now` only when every target is on this machine.
//! - `admission`: how many conversations the recogniser can hear at once.
//! - `cli` (`duecall run`) and `demo` (`duecall demo`).

pub mod admission;
pub mod cli;
pub mod clock;
pub mod demo;
mod error;
pub mod gate;
pub mod hooks;
pub mod loopback;
pub mod manual;
pub mod outcomes;
pub mod owner;
pub mod persist;
pub mod progress;
pub mod recovery;
pub mod retry;
pub mod runner;
pub mod scheduler;
pub mod settings;
#[cfg(test)]
mod test_support;

pub use error::CampaignError;
pub use progress::{CampaignSummary, Progress};
pub use runner::Shutdown;
