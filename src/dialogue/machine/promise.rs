//! A promise to pay: asking for the date, reading it back, and what
//! happens when no usable date comes (a person takes over).

use chrono::NaiveDate;

use super::Conversation;
use crate::dialogue::prompt::{Listen, PromptId};
use crate::dialogue::routing::promise_acceptable;
use crate::dialogue::speak;
use crate::dialogue::Millis;
use crate::intent::{Intent, IntentKind, Slots};
use crate::outcome::Route;

impl Conversation {
    /// A promise to pay, with or without a date, in answer to `turn`.
    pub(super) fn on_promise(&mut self, now: Millis, turn: Listen, date: Option<NaiveDate>) {
        let today = self.local_time(now).date();
        match date {
            None => self.ask_date_again(now, turn),
            Some(d) if d < today => self.ask_date_again(now, turn),
            Some(d) if !promise_acceptable(d, today, &self.cfg.routing) => {
                let intent = Intent {
                    kind: IntentKind::PromiseToPay,
                    confidence: 1.0,
                    reason: "promised date beyond the limit".into(),
                    slots: Slots {
                        date: Some(d),
                        ..Slots::default()
                    },
                    also: Vec::new(),
                };
                self.hand_to_agent(now, &intent, PromptId::PromiseTooFar, "promise-too-far");
            }
            Some(d) => {
                self.pending_promise = Some(d);
                self.vars.promise_date =
                    Some(speak::date_words(d, self.script.meta.language, today));
                if turn != Listen::ConfirmPromise {
                    self.misses = 0;
                }
                self.ask(now, Listen::ConfirmPromise, PromptId::ConfirmPromise);
            }
        }
    }

    /// No date, or one in the past: ask for it (or, if that was the
    /// question, count the miss).
    fn ask_date_again(&mut self, now: Millis, turn: Listen) {
        if turn == Listen::AskDate {
            self.miss(now, turn, false);
        } else {
            self.misses = 0;
            self.ask(now, Listen::AskDate, PromptId::AskDate);
        }
    }

    /// "Yes" to the read-back: the promise stands.
    pub(super) fn on_promise_confirmed(&mut self, now: Millis, yes: &Intent) {
        let promise = Intent {
            kind: IntentKind::PromiseToPay,
            slots: Slots {
                date: self.pending_promise,
                ..Slots::default()
            },
            ..yes.clone()
        };
        self.end_with(now, &promise, PromptId::PromiseRecorded);
    }

    /// "No" to the read-back: ask for the date again.
    pub(super) fn on_promise_denied(&mut self, now: Millis) {
        self.pending_promise = None;
        self.misses = 0;
        self.ask(now, Listen::AskDate, PromptId::AskDate);
    }

    /// No usable date after the ladder: a person takes the case.
    pub(super) fn promise_unsettled(&mut self, now: Millis, turn: Listen) {
        let reason = if turn == Listen::AskDate {
            "promise-without-date"
        } else {
            "promise-unconfirmed"
        };
        self.out.route = Some(Route::agent(reason));
        let steps = self.agent_steps(reason);
        self.set_plan(now, steps);
    }
}
