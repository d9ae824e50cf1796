//! duecall: an offline voice agent for early-stage payment reminders.
//!
//! Layout (see `../shared/docs/ARCHITECTURE.md`): the cores that decide
//! (`dialogue`, `intent`, `policy`, `campaign`'s scheduler, routing in
//! `outcome`) are pure and take explicit time; the drivers that move bytes and
//! time (`telephony`, `media`, `asr`, `store`, `campaign`'s runner) wrap them.

pub mod account;
pub mod agent;
pub mod asr;
pub mod bench;
pub mod campaign;
pub mod config;
pub mod crypto;
pub mod dialogue;
pub mod ids;
pub mod intent;
pub mod media;
pub mod outcome;
pub mod policy;
pub mod priority;
pub mod sim;
pub mod stats;
pub mod store;
pub mod telephony;
pub mod testkit;
pub mod web;
