//! One call's conversation, pure and sans-IO (like str0m's `Rtc`): events with
//! an explicit time in (`Conversation::handle`), actions and the next deadline
//! out (`poll_action`, `poll_timeout`). Owns the script model, spoken values,
//! routing of a reply to a case route, barge-in, answering-machine detection,
//! the disclosures, the rule that nothing about the debt is said before the
//! right person is confirmed, and the outcome of the call. It never touches
//! sockets, audio, files (except `Script::load`) or the clock.
//!
//! - `prompt`: the ids of every prompt (`PromptId`) and question (`Listen`).
//! - `script`: `prompts/<lang>.toml` `[meta]`, `[say]`, `[listen]`, checked up front.
//! - `config`: `[dialogue]`, `[dialogue.amd]` (`[dialogue.routing]` is in `routing`).
//! - `speak`: amounts, dates, times and numbers in words (en, zh).
//! - `routing`: intent + account + now -> `Route` (COLLECTIONS.md).
//! - `amd`: answering-machine detection, a small machine of its own.
//! - `brief`: an escalated case in a sentence or two, for the collector.
//! - `timers`: the one timer table of a conversation.
//! - `outcome`: what the call decided (`DialogueOutcome`, `Turn`, `Escalation`).
//! - `machine`: the call state machine (`Conversation`), one file per stage.

pub mod amd;
pub mod brief;
pub mod config;
pub mod machine;
pub mod outcome;
pub mod prompt;
pub mod routing;
pub mod script;
pub mod speak;
pub mod timers;

/// Milliseconds on the driver's clock (any origin; must not go backwards).
pub type Millis = u64;

pub use amd::{AmdResult, AmdVerdict};
pub use config::{AmdConfig, DialogueConfig, UncertainAs, VoicemailMode};
pub use machine::{Action, CallContext, Conversation, Event, Understand};
pub use outcome::{DialogueOutcome, Escalation, TransferRecord, Turn};
pub use prompt::{Listen, PromptId};
pub use routing::{route_for, RoutingConfig, UnknownRoute};
pub use script::{Script, ScriptError};
