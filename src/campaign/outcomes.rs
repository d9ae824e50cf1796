//! What the runner stores when an attempt ends: the store's row for a
//! conversation's outcome (turns, route, escalations) or for an attempt
//! that never got to talk, and the line each leaves in the run's summary.
//! It translates; it never decides where a case goes (the conversation
//! did).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::agent::AttemptOutcome as AgentOutcome;
#[cfg(test)]
use crate::outcome::RouteKind;
use crate::outcome::{Disposition, Route};
use crate::store::{AttemptId, EndedAttempt, NewEscalation, TurnRow};

/// One attempt of this run, for the summary and the demo's table.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptResult {
    /// Store id.
    pub attempt_id: AttemptId,
    /// The account.
    pub account_id: String,
    /// The number dialled (E.164; mask it before logging).
    pub phone: String,
    /// How it ended.
    pub disposition: Disposition,
    /// Short reason (`failed`, `cancelled`).
    pub reason: Option<String>,
    /// The deciding intent.
    pub intent: Option<String>,
    /// The last reply heard.
    pub heard: Option<String>,
    /// Where the case goes.
    pub route: Option<Route>,
    /// Two-channel recording.
    pub recording: Option<PathBuf>,
    /// The outcome JSON written next to the recording.
    pub outcome_file: Option<PathBuf>,
}

/// The store's turn rows for an outcome's turns.
pub fn turn_rows(outcome: &AgentOutcome) -> Vec<TurnRow> {
    outcome
        .turns
        .iter()
        .map(|t| TurnRow {
            prompt: t.prompt.as_str().to_string(),
            played_ms: t.played_ms,
            finished: t.finished,
            heard: t.heard.clone(),
            intent: t.intent.map(|i| i.as_str().to_string()),
            confidence: t.confidence,
            start_ms: t.prompt_start_ms,
            end_ms: t.end_ms.unwrap_or(t.prompt_start_ms + t.played_ms),
        })
        .collect()
}

/// The store's rows for the escalations the conversation decided (every
/// one it raised: the driver adds the attempt's context, decides nothing).
pub fn escalations_of(
    outcome: &AgentOutcome,
    attempt: AttemptId,
    now: DateTime<Utc>,
) -> Vec<NewEscalation> {
    let transcript = serde_json::to_value(&outcome.turns).unwrap_or(serde_json::Value::Null);
    let recording = outcome
        .call
        .recording
        .as_ref()
        .map(|p| p.display().to_string());
    let intent = outcome.intent.map(|i| i.as_str().to_string());
    outcome
        .escalations
        .iter()
        .map(|e| NewEscalation {
            account_id: outcome.account_id.clone(),
            attempt_id: Some(attempt),
            reason: e.reason.clone(),
            intent: intent.clone(),
            summary: e.summary.clone(),
            transcript: transcript.clone(),
            recording: recording.clone(),
            created_at: now,
        })
        .collect()
}

/// The store's outcome for a conversation that ended.
pub fn store_outcome(
    outcome: &AgentOutcome,
    attempt: AttemptId,
    now: DateTime<Utc>,
) -> EndedAttempt {
    let reason = outcome
        .call
        .reason
        .and_then(|r| serde_json::to_value(r).ok())
        .and_then(|v| v.as_str().map(str::to_string));
    EndedAttempt {
        disposition: outcome.call.disposition,
        reason,
        sip_status: outcome.call.sip_status,
        ended_at: now,
        conversation: outcome.conversation,
        outcome_json: serde_json::to_value(outcome).unwrap_or(serde_json::Value::Null),
        recording: outcome
            .call
            .recording
            .as_ref()
            .map(|p| p.display().to_string()),
        turns: turn_rows(outcome),
        route: outcome.route.clone(),
        escalations: escalations_of(outcome, attempt, now),
    }
}

/// The store's outcome for an attempt that never got to talk: the agent
/// failed, the task died, or shutdown cut it.
pub fn store_failure(
    disposition: Disposition,
    reason: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> EndedAttempt {
    EndedAttempt {
        disposition,
        reason: Some(reason.to_string()),
        sip_status: None,
        ended_at: now,
        conversation: false,
        outcome_json: serde_json::json!({ "error": detail, "reason": reason, "disposition": disposition }),
        recording: None,
        turns: Vec::new(),
        route: None,
        escalations: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{agent_route, outcome, t0};
    use super::*;
    use crate::dialogue::Escalation;

    fn raised(reason: &str) -> Vec<Escalation> {
        vec![Escalation {
            reason: reason.into(),
            summary: format!("account A1; reason {reason}"),
            at_ms: 4000,
        }]
    }

    #[test]
    fn escalations_are_stored_as_the_conversation_raised_them_with_the_attempts_context() {
        let e = escalations_of(
            &outcome(Some(agent_route()), None, raised("hardship")),
            AttemptId(7),
            t0(),
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].reason, "hardship");
        assert_eq!(e[0].summary, "account A1; reason hardship");
        assert_eq!(e[0].attempt_id, Some(AttemptId(7)));
        assert_eq!(e[0].intent.as_deref(), Some("hardship"));
        assert_eq!(e[0].recording.as_deref(), Some("/rec/A1-7-x.wav"));
        assert_eq!(
            e[0].transcript.as_array().map(|a| a.len()),
            Some(2),
            "the timed transcript goes with it"
        );
        assert!(
            escalations_of(
                &outcome(Some(agent_route()), None, vec![]),
                AttemptId(7),
                t0()
            )
            .is_empty(),
            "the driver adds none of its own"
        );
    }

    #[test]
    fn store_outcome_keeps_turns_route_json_and_recording() {
        let o = outcome(Some(agent_route()), None, raised("hardship"));
        let s = store_outcome(&o, AttemptId(7), t0());
        assert_eq!(s.disposition, Disposition::Answered);
        assert!(s.conversation);
        assert_eq!(s.turns.len(), 2);
        assert_eq!(s.turns[1].intent.as_deref(), Some("hardship"));
        assert_eq!(s.turns[1].end_ms, 3500);
        assert_eq!(s.route.as_ref().map(|r| r.kind), Some(RouteKind::Agent));
        assert_eq!(s.outcome_json["call"]["disposition"], "answered");
        assert_eq!(s.recording.as_deref(), Some("/rec/A1-7-x.wav"));
        assert_eq!(s.escalations.len(), 1);
        assert_eq!(s.escalations[0].reason, "hardship");
    }
}
