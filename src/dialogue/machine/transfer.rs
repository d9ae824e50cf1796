//! Handing a case to a person: a live transfer (REFER with the case in
//! headers) when an agent URI is known, else an escalation into the
//! collectors' queue with the timed transcript; the transfer's result.

use super::Step;
use super::{Action, Conversation, Wait};
use crate::dialogue::outcome::{Escalation, TransferRecord};
use crate::dialogue::prompt::PromptId;
use crate::dialogue::Millis;
use crate::outcome::EndedBy;

impl Conversation {
    fn agent_uri(&self) -> Option<String> {
        self.account
            .agent_uri
            .clone()
            .or_else(|| self.cfg.agent_uri.clone())
            .filter(|u| !u.trim().is_empty())
    }

    /// A live transfer when an agent URI is known; else an escalation record
    /// and a promise of a call back.
    pub(super) fn agent_steps(&self, reason: &str) -> Vec<Step> {
        if self.agent_uri().is_some() {
            vec![Step::Play(PromptId::Transfer), Step::Transfer]
        } else {
            vec![
                Step::Escalate(reason.to_string()),
                Step::Play(PromptId::AgentCallback),
                Step::Hangup,
            ]
        }
    }

    pub(super) fn start_transfer(&mut self, now: Millis) {
        let Some(uri) = self.agent_uri() else {
            self.escalate(now, "no-agent-uri");
            self.plan = vec![Step::Play(PromptId::AgentCallback), Step::Hangup].into();
            return;
        };
        let intent = self
            .last_intent
            .as_ref()
            .map(|i| i.kind.as_str())
            .unwrap_or("unknown");
        let case = self
            .call
            .case_id
            .clone()
            .unwrap_or_else(|| self.account.account_id.clone());
        let headers = vec![
            (
                "X-Duecall-Account".to_string(),
                self.account.account_id.clone(),
            ),
            ("X-Duecall-Intent".to_string(), intent.to_string()),
            ("X-Duecall-Case".to_string(), case),
        ];
        self.out.transfer = Some(TransferRecord {
            agent_uri: uri.clone(),
            ok: None,
        });
        self.actions.push_back(Action::Transfer {
            agent_uri: uri,
            headers,
        });
        self.set_wait(now, Wait::Transfer);
    }

    pub(super) fn on_transfer_result(&mut self, now: Millis, ok: bool) {
        if !matches!(self.wait, Wait::Transfer) {
            return;
        }
        self.set_wait(now, Wait::Nothing);
        if let Some(t) = self.out.transfer.as_mut() {
            t.ok = Some(ok);
        }
        if ok {
            self.finish(now, EndedBy::Us);
        } else {
            self.escalate(now, "transfer-failed");
            self.set_plan(
                now,
                vec![Step::Play(PromptId::TransferFailed), Step::Hangup],
            );
        }
    }

    pub(super) fn escalate(&mut self, now: Millis, reason: &str) {
        let summary = self.summary(reason);
        self.out.escalations.push(Escalation {
            reason: reason.to_string(),
            summary,
            at_ms: now,
        });
    }

    /// The brief in words (`dialogue::brief`), then account, reason, last
    /// intent, each turn and the timed transcript of both sides, for a
    /// collector.
    pub(super) fn summary(&self, reason: &str) -> String {
        let mut s = crate::dialogue::brief::case_brief(
            reason,
            self.out.identity_confirmed,
            &self.out.turns,
        );
        s.push('\n');
        s.push_str(&format!(
            "account {}; reason {}; identity {}; intent {}\n",
            self.account.account_id,
            reason,
            if self.out.identity_confirmed {
                "confirmed"
            } else {
                "not confirmed"
            },
            self.out.intent.map(|k| k.as_str()).unwrap_or("none"),
        ));
        for t in &self.out.turns {
            s.push_str(&format!(
                "[{:>6} ms] agent: {}{}\n",
                t.prompt_start_ms,
                t.prompt,
                if t.finished { "" } else { " (cut)" }
            ));
            if let Some(h) = &t.heard {
                s.push_str(&format!(
                    "[{:>6} ms] caller: \"{}\" -> {} {:.2}\n",
                    t.start_ms.unwrap_or(0),
                    h,
                    t.intent.map(|k| k.as_str()).unwrap_or("unknown"),
                    t.confidence.unwrap_or(0.0)
                ));
            }
        }
        if !self.transcript.is_empty() {
            s.push_str(&self.transcript.join("\n"));
        }
        s
    }
}
