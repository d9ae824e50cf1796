//! What the runner stores when an attempt ends: the store's row for a
//! conversation's outcome (turns, route, escalations) or for an attempt
//! that never got to talk, and the line each leaves in the run's summary.
//! It translates; it never decides where a case goes (the conversation
//! did).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::agent::AttemptOutcome as AgentOutcome;
use crate::outcome::{Disposition, Route, RouteKind};
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

/// The spelling of a route kind in JSON and the store.
pub fn route_kind_str(k: RouteKind) -> &'static str {
    match k {
        RouteKind::Agent => "agent",
        RouteKind::Pause => "pause",
        RouteKind::Suppress => "suppress",
        RouteKind::Retry => "retry",
        RouteKind::Done => "done",
    }
}

/// The store's turn rows for an outcome's turns.
pub fn turn_rows(outcome: &AgentOutcome) -> Vec<TurnRow> {
    outcome
        .turns
        .iter()
        .map(|t| TurnRow {
            prompt: t.prompt.clone(),
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

/// The escalations an outcome leaves for the collectors: every one the
/// conversation raised, and one for an agent route that no collector took
/// live (no transfer tried, or it failed) when the conversation raised none.
pub fn escalations_for(
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
    let mk = |reason: &str, summary: &str| NewEscalation {
        account_id: outcome.account_id.clone(),
        attempt_id: Some(attempt),
        reason: reason.to_string(),
        intent: intent.clone(),
        summary: summary.to_string(),
        transcript: transcript.clone(),
        recording: recording.clone(),
        created_at: now,
    };
    let mut out: Vec<NewEscalation> = outcome
        .escalations
        .iter()
        .map(|e| mk(&e.reason, &e.summary))
        .collect();
    if out.is_empty() {
        if let Some(r) = outcome
            .route
            .as_ref()
            .filter(|r| r.kind == RouteKind::Agent)
        {
            let transferred = outcome.call.transfer.as_ref().is_some_and(|t| t.ok);
            if !transferred {
                let why = match &outcome.call.transfer {
                    Some(t) => format!(
                        "transfer to an agent failed ({})",
                        t.error.as_deref().unwrap_or("no result")
                    ),
                    None => "no live transfer was possible".to_string(),
                };
                out.push(mk(
                    &r.reason,
                    &format!("account {}: {}; {why}", outcome.account_id, r.reason),
                ));
            }
        }
    }
    out
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
        escalations: escalations_for(outcome, attempt, now),
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
    use crate::agent::Escalation;
    use crate::telephony::report::TransferReport;

    #[test]
    fn agent_route_without_a_live_transfer_leaves_an_escalation() {
        let none = escalations_for(
            &outcome(Some(agent_route()), None, vec![]),
            AttemptId(7),
            t0(),
        );
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].reason, "hardship");
        assert_eq!(none[0].attempt_id, Some(AttemptId(7)));
        assert_eq!(none[0].intent.as_deref(), Some("hardship"));
        assert_eq!(none[0].recording.as_deref(), Some("/rec/A1-7-x.wav"));
        assert_eq!(
            none[0].transcript.as_array().map(|a| a.len()),
            Some(2),
            "the timed transcript goes with it"
        );

        let failed = TransferReport {
            target: "sip:agent@x".into(),
            ok: false,
            refer_status: Some(603),
            final_status: None,
            error: Some("REFER refused with 603".into()),
        };
        let f = escalations_for(
            &outcome(Some(agent_route()), Some(failed), vec![]),
            AttemptId(7),
            t0(),
        );
        assert_eq!(f.len(), 1);
        assert!(f[0].summary.contains("603"), "{}", f[0].summary);

        let ok = TransferReport {
            target: "sip:agent@x".into(),
            ok: true,
            refer_status: Some(202),
            final_status: Some(200),
            error: None,
        };
        assert!(
            escalations_for(
                &outcome(Some(agent_route()), Some(ok), vec![]),
                AttemptId(7),
                t0()
            )
            .is_empty(),
            "a collector took it live"
        );

        let raised = vec![Escalation {
            reason: "transfer-failed".into(),
            summary: "s".into(),
        }];
        let r = escalations_for(
            &outcome(Some(agent_route()), None, raised),
            AttemptId(7),
            t0(),
        );
        assert_eq!(
            r.len(),
            1,
            "the conversation's own escalation, not a second one"
        );
        assert_eq!(r[0].reason, "transfer-failed");

        let done = Route {
            kind: RouteKind::Done,
            reason: "promise".into(),
            until: None,
            scope: None,
            follow_up: None,
        };
        assert!(escalations_for(&outcome(Some(done), None, vec![]), AttemptId(7), t0()).is_empty());
    }

    #[test]
    fn store_outcome_keeps_turns_route_json_and_recording() {
        let o = outcome(Some(agent_route()), None, vec![]);
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
    }
}
