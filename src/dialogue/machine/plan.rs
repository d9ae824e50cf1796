//! The plan: the steps the conversation takes next (play, listen,
//! transfer, escalate, hang up), run until one has to wait for the driver.
//! Every prompt starts here, at the one gate that refuses debt talk before
//! the right person is confirmed. Also the end of the call, where the
//! outcome is completed.

use super::{Action, Conversation, Playing, Stage, Step, Wait};
use crate::dialogue::outcome::Turn;
use crate::dialogue::prompt::{Listen, PromptId};
use crate::dialogue::routing;
use crate::dialogue::timers::Timer;
use crate::dialogue::Millis;
use crate::outcome::{EndedBy, RouteKind};

impl Conversation {
    /// Replaces the plan with `steps` and runs it.
    pub(super) fn set_plan(&mut self, now: Millis, steps: Vec<Step>) {
        self.plan = steps.into();
        self.listen_announced = false;
        self.timers.stop(Timer::BargeIn);
        self.set_wait(now, Wait::Nothing);
        self.run(now);
    }

    /// The question the plan listens for next, before anything that ends
    /// the conversation.
    fn listen_ahead(&self) -> Option<Listen> {
        for s in &self.plan {
            match s {
                Step::Listen(t) => return Some(*t),
                Step::Play(_) | Step::Escalate(_) => continue,
                Step::Transfer | Step::Hangup => return None,
            }
        }
        None
    }

    pub(super) fn announce_listen(&mut self, turn: Listen) {
        if self.listen_announced {
            return;
        }
        self.listen_announced = true;
        let phrases = self.script.phrases(turn).to_vec();
        self.actions.push_back(Action::Listen { turn, phrases });
    }

    /// Runs steps until one has to wait for the driver.
    pub(super) fn run(&mut self, now: Millis) {
        while matches!(self.wait, Wait::Nothing) && !matches!(self.stage, Stage::Ended) {
            let Some(step) = self.plan.pop_front() else {
                return;
            };
            self.start_step(now, step);
        }
    }

    pub(super) fn start_step(&mut self, now: Millis, step: Step) {
        match step {
            Step::Play(id) => self.start_prompt(now, id),
            Step::Listen(turn) => {
                self.announce_listen(turn);
                self.question = Some(turn);
                self.set_wait(now, Wait::Reply(turn));
            }
            Step::Transfer => self.start_transfer(now),
            Step::Escalate(reason) => self.escalate(now, &reason),
            Step::Hangup => {
                self.actions.push_back(Action::Hangup);
                if self.out.route.is_none() {
                    let ctx = self.route_ctx(now);
                    self.out.route = Some(routing::route_hung_up(&ctx, &self.cfg.routing));
                }
                self.finish(now, EndedBy::Us);
            }
        }
    }

    fn start_prompt(&mut self, now: Millis, id: PromptId) {
        let prompt = self.script.prompt(id);
        let prompt_interruptible = prompt.interruptible;
        let mentions_debt = prompt.mentions_debt;
        let says_name = prompt.placeholders().iter().any(|p| p == "name");
        // The one gate every prompt passes: nothing about the debt
        // before the right person is confirmed.
        if mentions_debt && !self.out.identity_confirmed {
            self.out.refused_prompts.push(id);
            return;
        }
        // And the debt disclosure before the first thing said about it
        // (a reply that confirmed identity and said more goes straight on).
        if mentions_debt && !self.disclosed && id != PromptId::DebtDisclosure {
            self.plan.push_front(Step::Play(id));
            self.start_prompt(now, PromptId::DebtDisclosure);
            return;
        }
        if id == PromptId::DebtDisclosure {
            self.disclosed = true;
        }
        if says_name {
            self.name_said = true;
        }
        let ahead = self.listen_ahead();
        if let Some(turn) = ahead {
            // The grammar must be live while the question plays, for barge-in.
            self.announce_listen(turn);
        }
        let interruptible = prompt_interruptible && ahead.is_some();
        let text = self.script.render(id, &self.vars);
        self.transcript.push(format!("[{now:>6} ms] agent: {text}"));
        self.actions.push_back(Action::Play {
            prompt: id,
            text,
            interruptible,
            mentions_debt,
        });
        self.out.turns.push(Turn::started(id, now));
        let record = self.out.turns.len() - 1;
        self.set_wait(
            now,
            Wait::Playback(Playing {
                prompt: id,
                started: now,
                interruptible,
                record,
            }),
        );
        // Speech already under way when an interruptible prompt starts counts from now.
        if interruptible && self.speech.speaking {
            self.timers
                .set(Timer::BargeIn, now + self.cfg.barge_in_min_speech_ms);
        }
    }

    /// The end of the call for the conversation: the outcome is complete.
    pub(super) fn finish(&mut self, now: Millis, by: EndedBy) {
        if matches!(self.stage, Stage::Ended) {
            return;
        }
        self.stage = Stage::Ended;
        self.wait = Wait::Nothing;
        self.plan.clear();
        self.timers.clear();
        self.out.ended_by = Some(by);
        // Every agent route reaches a person: live, or through the queue.
        let transferred = self
            .out
            .transfer
            .as_ref()
            .is_some_and(|t| t.ok == Some(true));
        let agent_reason = self
            .out
            .route
            .as_ref()
            .filter(|r| r.kind == RouteKind::Agent)
            .map(|r| r.reason.clone());
        if let Some(reason) = agent_reason {
            if !transferred && self.out.escalations.is_empty() {
                self.escalate(now, &reason);
            }
        }
        // Collectors get the whole call, closing lines included.
        for i in 0..self.out.escalations.len() {
            let reason = self.out.escalations[i].reason.clone();
            self.out.escalations[i].summary = self.summary(&reason);
        }
    }
}
