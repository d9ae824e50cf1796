//! What a reply means for the case: the table from intent (and the
//! question it answered) to what the agent says next and where the case
//! goes, and the ladder for unclear or silent replies (re-ask once, the
//! DTMF menu, then route as unknown).

use super::Step;
use super::{Conversation, Wait};
use crate::dialogue::prompt::{Listen, PromptId};
use crate::dialogue::routing::{route_for, UnknownRoute};
use crate::dialogue::speak;
use crate::dialogue::Millis;
use crate::intent::{Intent, IntentKind};
use crate::outcome::Route;

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
        self.act(now, turn, intent, asr_confidence);
    }

    /// Acts on a reply to `turn`: a reply that confirms identity and says
    /// more is taken whole, a consequential one heard unsure is confirmed
    /// first, an answer to a confirmation settles it.
    fn act(&mut self, now: Millis, mut turn: Listen, intent: Intent, asr: Option<f32>) {
        if turn == Listen::ConfirmIntent {
            return self.on_confirm_reply(now, intent, asr);
        }
        if turn == Listen::Identity
            && !self.out.identity_confirmed
            && self.name_said
            && intent.kind.is_about_the_debt()
            && intent.also_says(IntentKind::IdentityConfirmed)
            && !intent.also_says(IntentKind::IdentityDenied)
        {
            // "Yes, and I already paid": identity confirmed and the rest
            // answered as if to the reminder (the gate plays the debt
            // disclosure first); no second question.
            self.out.identity_confirmed = true;
            self.misses = 0;
            turn = Listen::Reminder;
            self.question = Some(turn);
        }
        if let Some(prompt) = self.confirmation_for(turn, &intent, asr) {
            self.out.intent = Some(intent.kind);
            self.pending_confirm = Some((turn, intent));
            self.question = Some(Listen::ConfirmIntent);
            self.misses = 0;
            self.set_plan(
                now,
                vec![Step::Play(prompt), Step::Listen(Listen::ConfirmIntent)],
            );
            return;
        }
        self.out.intent = Some(intent.kind);
        self.last_intent = Some(intent.clone());
        self.dispatch(now, turn, intent);
    }

    /// The question to ask before acting on `intent`, when it is
    /// consequential, would be acted on in `turn`, and was heard with less
    /// confidence than `[dialogue] confirm_threshold` (the intent's times
    /// the recognizer's; a digit is sure).
    fn confirmation_for(
        &self,
        turn: Listen,
        intent: &Intent,
        asr: Option<f32>,
    ) -> Option<PromptId> {
        let prompt = PromptId::confirming(intent.kind)?;
        let acted_on = match intent.kind {
            // Before identity these only bring the identity question.
            _ if intent.kind.is_about_the_debt() => self.out.identity_confirmed,
            // In the better-time turn these ask again, they route nothing.
            IntentKind::NotAvailable => turn != Listen::BetterTime,
            _ => true,
        };
        let sure = intent.confidence * asr.unwrap_or(1.0);
        (acted_on && sure < self.cfg.confirm_threshold).then_some(prompt)
    }

    /// The reply to "Just to be sure: ...?": yes (or the same request
    /// again) acts on it; no asks the question it answered again;
    /// something else is a new reply to that question; unclear or silent
    /// climbs the ladder (re-ask once, then `confirm_unsettled`).
    fn on_confirm_reply(&mut self, now: Millis, reply: Intent, asr: Option<f32>) {
        let Some((turn, pending)) = self.pending_confirm.clone() else {
            return self.miss(now, Listen::ConfirmIntent, false);
        };
        match reply.kind {
            IntentKind::IdentityConfirmed => {
                self.pending_confirm = None;
                let confirmed = Intent {
                    confidence: 1.0,
                    reason: format!("confirmed: {}", pending.reason),
                    ..pending
                };
                self.out.intent = Some(confirmed.kind);
                self.last_intent = Some(confirmed.clone());
                self.dispatch(now, turn, confirmed);
            }
            k if k == pending.kind => {
                self.pending_confirm = None;
                self.out.intent = Some(k);
                self.last_intent = Some(reply.clone());
                self.dispatch(now, turn, reply);
            }
            IntentKind::IdentityDenied => {
                self.pending_confirm = None;
                self.out.intent = None;
                self.denied_confirms += 1;
                self.question = Some(turn);
                match self.denied_confirms {
                    // Misheard once: ask the question again.
                    1 => {
                        self.misses = 0;
                        self.miss(now, turn, false);
                    }
                    // Misheard twice: the next step of the ladder (the
                    // menu where the turn has one), not another re-ask.
                    2 => {
                        self.misses = 1;
                        self.miss(now, turn, false);
                    }
                    _ => self.give_up(now, turn),
                }
            }
            IntentKind::Unknown => self.miss(now, Listen::ConfirmIntent, false),
            _ => {
                self.pending_confirm = None;
                self.question = Some(turn);
                // Where a yes or a no was expected, another consequential
                // reply is a guess however sure it sounds: it is
                // confirmed in turn, never acted on at once (found by
                // `duecall bench conversations --set dev`: "I handled that
                // on Thursday", confirmed as a payment, answered "nope" and
                // then misheard as "i don't know them", suppressed the
                // number as a wrong number).
                // A request for a person is taken: a person is where an
                // unsettled confirmation ends anyway.
                let asr = if PromptId::confirming(reply.kind).is_some()
                    && reply.kind != IntentKind::RequestAgent
                {
                    Some(0.0)
                } else {
                    asr
                };
                self.act(now, turn, reply, asr);
            }
        }
    }

    /// The route when the call ends while a request to stop (or a wrong
    /// number) waits for its confirmation: in doubt, stop and hand it to a
    /// person.
    pub(super) fn unsettled_stop_route(&self) -> Option<Route> {
        let kind = self.pending_confirm.as_ref()?.1.kind;
        matches!(kind, IntentKind::StopCalling | IntentKind::WrongNumber)
            .then(|| self.unsettled_stop_route_for(kind))
    }

    fn unsettled_stop_route_for(&self, kind: IntentKind) -> Route {
        Route::agent(if kind == IntentKind::StopCalling {
            "stop-unconfirmed"
        } else {
            "wrong-number-unconfirmed"
        })
    }

    /// No clear yes or no to the confirmation. Fail safe: a request to stop
    /// or a wrong number stops robot contact and goes to a person (in doubt
    /// between stopping and calling on, stop); anything else goes to the
    /// DTMF menu of the question it answered (or that question's own end).
    fn confirm_unsettled(&mut self, now: Millis) {
        let Some((turn, pending)) = self.pending_confirm.take() else {
            return self.give_up(now, Listen::Reminder);
        };
        match pending.kind {
            IntentKind::StopCalling | IntentKind::WrongNumber => {
                let route = self.unsettled_stop_route_for(pending.kind);
                let reason = route.reason.clone();
                self.out.intent = Some(pending.kind);
                self.out.route = Some(route);
                self.set_plan(
                    now,
                    vec![
                        Step::Escalate(reason),
                        Step::Play(PromptId::UnsureStopClose),
                        Step::Hangup,
                    ],
                );
            }
            _ => {
                self.out.intent = None;
                self.question = Some(turn);
                match turn.menu() {
                    Some(menu) => {
                        self.misses = 2;
                        self.set_plan(now, vec![Step::Play(menu), Step::Listen(turn)]);
                    }
                    None => self.give_up(now, turn),
                }
            }
        }
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
                self.vars.callback_time = Some(speak::callback_words(
                    t,
                    intent.slots.hours.as_ref(),
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
            Listen::ConfirmIntent => self.confirm_unsettled(now),
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
