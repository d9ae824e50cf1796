//! The pure outcome of one conversation: its turns, its route, AMD's
//! verdict, every escalation, and the two facts the drivers used to work
//! out for themselves (the disposition relabel, whether there was a
//! conversation). Decided here once; drivers store it as given. Never
//! touches a file or the wire.

use serde::{Deserialize, Serialize};

use super::amd::AmdResult;
use super::prompt::PromptId;
use crate::intent::IntentKind;
use crate::outcome::{Disposition, EndedBy, Route};

/// One turn (ARCHITECTURE.md "Words"): a prompt and what was heard after
/// it, as in the outcome's `turns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Prompt id.
    pub prompt: PromptId,
    /// When the prompt started (driver ms).
    pub prompt_start_ms: u64,
    /// How long it played.
    pub played_ms: u64,
    /// Played to the end.
    pub finished: bool,
    /// Where barge-in (or a hang-up) cut it, ms into the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_at_ms: Option<u64>,
    /// The reply acted upon (text, or `dtmf:<digit>`).
    pub heard: Option<String>,
    /// Its intent.
    pub intent: Option<IntentKind>,
    /// The intent's confidence.
    pub confidence: Option<f32>,
    /// The recognizer's confidence in the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asr_confidence: Option<f32>,
    /// Why the classifier chose the intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Start of the reply's speech (driver ms).
    pub start_ms: Option<u64>,
    /// End of the reply's speech (driver ms).
    pub end_ms: Option<u64>,
    /// Speech heard during this prompt that was not acted on (fillers,
    /// talk over a disclosure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

impl Turn {
    /// A prompt that started at `at`, nothing heard yet.
    pub fn started(prompt: PromptId, at: u64) -> Turn {
        Turn {
            prompt,
            prompt_start_ms: at,
            played_ms: 0,
            finished: false,
            cut_at_ms: None,
            heard: None,
            intent: None,
            confidence: None,
            asr_confidence: None,
            reason: None,
            start_ms: None,
            end_ms: None,
            ignored: Vec::new(),
        }
    }
}

/// A live transfer attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRecord {
    /// Where to.
    pub agent_uri: String,
    /// The result (None: the call ended before one came).
    pub ok: Option<bool>,
}

/// A case handed to the collectors' queue: the one escalation type, decided
/// by the conversation and stored as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// Why (`hardship`, `transfer-failed`, `unknown`, ...).
    pub reason: String,
    /// The case brief in words (its first line: `dialogue::brief`), then
    /// account, reason, identity, intent and the timed transcript of what
    /// was said on both sides, for the collector who picks it up.
    pub summary: String,
    /// When it was raised (driver ms).
    pub at_ms: u64,
}

/// Everything the call decided, for the outcome JSON and the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DialogueOutcome {
    /// Prompts and replies in order.
    pub turns: Vec<Turn>,
    /// The case's route (None until the conversation ends, or if never answered).
    pub route: Option<Route>,
    /// AMD result.
    pub amd: AmdResult,
    /// Was the right person confirmed?
    pub identity_confirmed: bool,
    /// `answered` or `voicemail` once answered.
    pub disposition: Option<Disposition>,
    /// Who ended the call.
    pub ended_by: Option<EndedBy>,
    /// Why the conversation itself ended the call early, when it did
    /// (`max-call-length`, `shutdown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_short: Option<String>,
    /// The last intent acted upon.
    pub intent: Option<IntentKind>,
    /// A live transfer, if one was tried.
    pub transfer: Option<TransferRecord>,
    /// Every escalation of the case: each carries its timed transcript. An
    /// `agent` route that no collector took live always has one.
    pub escalations: Vec<Escalation>,
    /// Prompts the debt guard refused to play (must stay empty).
    pub refused_prompts: Vec<PromptId>,
}

impl DialogueOutcome {
    /// The attempt's disposition, given the one the wire reported: a call
    /// answered by a machine is `voicemail`; anything else stands.
    pub fn attempt_disposition(&self, wire: Disposition) -> Disposition {
        if wire == Disposition::Answered && self.disposition == Some(Disposition::Voicemail) {
            Disposition::Voicemail
        } else {
            wire
        }
    }

    /// Did the callee talk with us (a conversation, for the caps)? A person
    /// answered and at least one reply was heard (words or a digit).
    pub fn was_conversation(&self, wire: Disposition) -> bool {
        self.attempt_disposition(wire) == Disposition::Answered
            && self.turns.iter().any(|t| t.heard.is_some())
    }
}
