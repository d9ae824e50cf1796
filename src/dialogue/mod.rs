//! One call's conversation, pure and sans-IO (like str0m's `Rtc`): events with
//! an explicit time in (`Conversation::handle`), actions and the next deadline
//! out (`poll_action`, `poll_timeout`). Owns the script model, spoken values,
//! routing of a reply to a case route, barge-in, answering-machine detection,
//! the disclosures and the rule that nothing about the debt is said before the
//! right person is confirmed. It never touches sockets, audio, files (except
//! `Script::load`) or the clock.
//!
//! - `script`: `prompts/<lang>.toml` `[meta]`, `[say]`, `[listen]`, checked up front.
//! - `speak`: amounts, dates, times and numbers in words (en, zh).
//! - `routing`: intent + account + now -> `Route` (COLLECTIONS.md).
//! - `machine`: the call state machine (`Conversation`).

pub mod machine;
pub mod routing;
pub mod script;
pub mod speak;

pub use machine::{
    Action, AmdConfig, AmdResult, AmdVerdict, Conversation, DialogueConfig, DialogueOutcome,
    Escalation, Event, TurnRecord, Understand, VoicemailMode,
};
pub use routing::{route_for, RoutingConfig, UnknownRoute};
pub use script::{Script, ScriptError};
