//! What a reply means for the case: the table from intent (and the
//! question it answered) to what the agent says next and where the case
//! goes, and the ladder for unclear or silent replies (re-ask once, the
//! DTMF menu, then route as unknown).

use super::plan::Step;
use super::{Conversation, Wait};
use crate::dialogue::prompt::{Listen, PromptId};
use crate::dialogue::routing::{route_for, UnknownRoute};
use crate::dialogue::speak;
use crate::dialogue::Millis;
use crate::intent::{Intent, IntentKind};

impl Conversation {
    /// A reply (words or a digit) to the question being asked.
    pub(super) fn on_meaning(
        &mut self,
        now: Millis,
        heard: String,
        asr_confidence: Option<f32>,
        intent: Intent,
    ) {
        let Wait::Reply(turn) = self.wait else {
            return;
        };
        let start = self.speech.started.unwrap_or(now);
        let end = self.speech.ended.filter(|e| *e >= start).unwrap_or(now);
        self.record_reply(Some(heard), Some(&intent), asr_confidence, start, end);
        self.speech.started = None;
        self.speech.ended = None;
        self.speech.partial.clear();
        self.set_wait(now, Wait::Nothing);
        self.out.intent = Some(intent.kind);
        self.last_intent = Some(intent.clone());
        self.dispatch(now, turn, intent);
    }

    /// Records the reply on the last turn (`None`: silence).
    pub(super) fn record_reply(
        &mut self,
        heard: Option<String>,
        intent: Option<&Intent>,
        asr_confidence: Option<f32>,
        start: Millis,
        end: Millis,
    ) {
        let Some(r) = self.out.turns.last_mut() else {
            return;
        };
        if r.heard.is_some() || r.intent.is_some() {
            // A second reply to one prompt: keep the first, log the second.
            if let Some(h) = heard {
                r.ignored.push(h);
            }
            return;
        }
        r.heard = heard;
        r.intent = Some(intent.map(|i| i.kind).unwrap_or(IntentKind::Unknown));
        r.confidence = Some(intent.map(|i| i.confidence).unwrap_or(0.0));
        r.asr_confidence = asr_confidence;
        r.reason = Some(
            intent
                .map(|i| i.reason.clone())
                .unwrap_or_else(|| "no input".to_string()),
        );
        r.start_ms = Some(start);
        r.end_ms = Some(end);
    }

    fn dispatch(&mut self, now: Millis, turn: Listen, intent: Intent) {
        use IntentKind as K;
        let confirmed = self.out.identity_confirmed;
        match intent.kind {
            K::WrongNumber => self.end_with(now, &intent, PromptId::WrongNumber),
            K::StopCalling => self.end_with(now, &intent, PromptId::StopCalling),
            K::RequestAgent => {
                self.decide(now, &intent);
                let mut steps = vec![Step::Play(PromptId::RequestAgent)];
                steps.extend(self.agent_steps("request_agent"));
                self.set_plan(now, steps);
            }
            K::CallbackLater if intent.slots.time.is_some() => {
                let t = intent.slots.time.unwrap_or_default();
                self.vars.callback_time = Some(speak::datetime_words(
                    t,
                    self.script.meta.language,
                    self.local_time(now).date(),
                ));
                self.end_with(now, &intent, PromptId::CallbackConfirm);
            }
            K::CallbackLater | K::NotAvailable => {
                if turn == Listen::BetterTime {
                    self.miss(now, turn, false);
                } else {
                    let prompt = if confirmed {
                        PromptId::AskBetterTime
                    } else {
                        PromptId::NotAvailable
                    };
                    self.ask(now, Listen::BetterTime, prompt);
                }
            }
            K::WhoIsCalling => self.on_who_is_calling(now, turn),
            K::IdentityConfirmed if !confirmed => {
                self.out.identity_confirmed = true;
                self.question = Some(Listen::Reminder);
                self.misses = 0;
                self.set_plan(
                    now,
                    vec![
                        Step::Play(PromptId::DebtDisclosure),
                        Step::Play(PromptId::Reminder),
                        Step::Listen(Listen::Reminder),
                    ],
                );
            }
            K::IdentityDenied if !confirmed => {
                if turn == Listen::BetterTime {
                    self.miss(now, turn, false);
                } else {
                    self.end_with(now, &intent, PromptId::IdentityDenied);
                }
            }
            // Debt-bearing replies from someone not yet confirmed: ask who they are first.
            K::AlreadyPaid | K::PromiseToPay | K::Hardship | K::Dispute if !confirmed => {
                self.miss_with(now, Listen::Identity, PromptId::IdentityFirst);
            }
            K::AlreadyPaid => self.end_with(now, &intent, PromptId::AckPaid),
            K::Hardship => self.hand_to_agent(now, &intent, PromptId::AckHardship, "hardship"),
            K::Dispute => self.hand_to_agent(now, &intent, PromptId::AckDispute, "dispute"),
            K::PromiseToPay => self.on_promise(now, turn, intent.slots.date),
            K::IdentityConfirmed if turn == Listen::ConfirmPromise => {
                self.on_promise_confirmed(now, &intent)
            }
            K::IdentityDenied if turn == Listen::ConfirmPromise => self.on_promise_denied(now),
            K::IdentityConfirmed | K::IdentityDenied | K::Unknown => self.miss(now, turn, false),
        }
    }

    fn on_who_is_calling(&mut self, now: Millis, turn: Listen) {
        self.who_count += 1;
        if self.who_count > self.cfg.max_who_is_calling {
            self.miss(now, turn, false);
        } else if self.out.identity_confirmed {
            self.set_plan(
                now,
                vec![
                    Step::Play(PromptId::WhoIsCallingAfter),
                    Step::Play(turn.question()),
                    Step::Listen(turn),
                ],
            );
        } else {
            // The answer ends with the right-party question itself.
            self.question = Some(Listen::Identity);
            self.set_plan(
                now,
                vec![
                    Step::Play(PromptId::WhoIsCalling),
                    Step::Listen(Listen::Identity),
                ],
            );
        }
    }

    /// Routes by `intent`, acknowledges it with `prompt`, and hands the case
    /// to a person.
    pub(super) fn hand_to_agent(
        &mut self,
        now: Millis,
        intent: &Intent,
        prompt: PromptId,
        why: &str,
    ) {
        self.decide(now, intent);
        let mut steps = vec![Step::Play(prompt)];
        steps.extend(self.agent_steps(why));
        self.set_plan(now, steps);
    }

    /// Plays `prompt` and listens for `turn`.
    pub(super) fn ask(&mut self, now: Millis, turn: Listen, prompt: PromptId) {
        if self.question != Some(turn) {
            self.misses = 0;
        }
        self.question = Some(turn);
        self.set_plan(now, vec![Step::Play(prompt), Step::Listen(turn)]);
    }

    pub(super) fn miss(&mut self, now: Millis, turn: Listen, silent: bool) {
        self.last_miss_silent = silent;
        self.miss_with(now, turn, turn.reask());
    }

    /// The unclear-reply ladder: re-ask once, then the DTMF menu (where the
    /// turn has one), then route as unknown.
    fn miss_with(&mut self, now: Millis, turn: Listen, reask: PromptId) {
        if self.question != Some(turn) {
            self.misses = 0;
        }
        self.question = Some(turn);
        self.misses += 1;
        let step = match (self.misses, turn.menu()) {
            (1, _) => Some(reask),
            (2, Some(menu)) => Some(menu),
            _ => None,
        };
        match step {
            Some(prompt) => self.set_plan(now, vec![Step::Play(prompt), Step::Listen(turn)]),
            None => self.give_up(now, turn),
        }
    }

    /// Still unclear after the ladder.
    fn give_up(&mut self, now: Millis, turn: Listen) {
        match turn {
            Listen::AskDate | Listen::ConfirmPromise => self.promise_unsettled(now, turn),
            Listen::BetterTime => {
                let kind = if self.out.identity_confirmed {
                    IntentKind::CallbackLater
                } else {
                    IntentKind::NotAvailable
                };
                let i = Intent {
                    kind,
                    ..Self::unknown("no time given")
                };
                self.decide(now, &i);
                self.set_plan(
                    now,
                    vec![Step::Play(PromptId::NotAvailableClose), Step::Hangup],
                );
            }
            Listen::Identity | Listen::Reminder => {
                let silent = self.last_miss_silent;
                let i = Self::unknown(if silent { "silence" } else { "unclear" });
                self.decide(now, &i);
                // An unclear or silent line gets an escalation record, not a live transfer.
                let to_agent = self.cfg.routing.unknown == UnknownRoute::Agent;
                let mut steps = Vec::new();
                if to_agent {
                    steps.push(Step::Escalate("unknown".into()));
                }
                let close = if silent {
                    PromptId::NoAnswerClose
                } else if to_agent {
                    PromptId::AgentCallback
                } else {
                    PromptId::NotAvailableClose
                };
                steps.extend([Step::Play(close), Step::Hangup]);
                self.set_plan(now, steps);
            }
        }
    }

    /// Routes by `intent`, plays `prompt` (plus the closing line where the
    /// prompt does not say goodbye) and hangs up.
    pub(super) fn end_with(&mut self, now: Millis, intent: &Intent, prompt: PromptId) {
        self.decide(now, intent);
        let mut steps = vec![Step::Play(prompt)];
        if !prompt.says_goodbye() {
            steps.push(Step::Play(PromptId::Closing));
        }
        steps.push(Step::Hangup);
        self.set_plan(now, steps);
    }

    pub(super) fn decide(&mut self, now: Millis, intent: &Intent) {
        let ctx = self.route_ctx(now);
        self.out.route = Some(route_for(intent, &ctx, &self.cfg.routing));
    }
}
