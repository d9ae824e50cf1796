//! Intent recognition (pure): a transcript or DTMF digit in, an `Intent` out.
//! Owns the fixed intent set and its priority order; never touches audio,
//! sockets or the clock (today's date comes in as an argument).

pub mod kind;
pub use kind::IntentKind;
