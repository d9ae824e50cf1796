//! `duecall serve`: the service a contact centre runs beside the dialler.
//! The JSON API (`api`), its access control (`auth`, `access`), the
//! console pages (`console`), webhook delivery (`webhooks`), Prometheus
//! metrics (`metrics`), recordings with range requests (`recording`), and
//! the process around them (`server`, `cli`).
//!
//! It reads the store as campaigns leave it and writes only what people
//! do (claims, notes, closures, released or extended holds, labels, users,
//! tokens, sessions, the audit log); it never decides whether to dial.

pub mod access;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod dialler;
pub mod error;
pub mod input;
pub mod metrics;
pub mod recording;
pub mod server;
pub mod state;
pub mod streams;
pub mod throttle;
pub mod webhooks;

pub use error::WebError;
pub use server::{serve, ServeError, ServeOptions};
