//! Talking and listening: the caller's speech and digits as they arrive,
//! barge-in over an interruptible prompt, prompts starting and finishing
//! (with a deadline, so a lost playback report never leaves dead air),
//! silence after a question, an utterance that never ends, and the ends of
//! a call that nobody planned: a hang-up, the call-length limit, shutdown.

use super::Step;
use super::{Conversation, Held, Stage, Wait};
use crate::dialogue::prompt::{Listen, PromptId};
use crate::dialogue::routing;
use crate::dialogue::timers::Timer;
use crate::dialogue::Millis;
use crate::intent::{Intent, IntentKind};
use crate::outcome::EndedBy;
use chrono::NaiveDateTime;

impl Conversation {
    pub(super) fn on_speech_start(&mut self, now: Millis) {
        self.speech.speaking = true;
        self.speech.overlong = false;
        self.speech.started = Some(now);
        self.speech.partial.clear();
        if self.amd_speech_start(now) {
            return;
        }
        if matches!(self.stage, Stage::Talking | Stage::Delay) {
            self.timers
                .set(Timer::Utterance, now + self.cfg.max_utterance_ms);
        }
        match &self.wait {
            Wait::Playback(p) if p.interruptible => {
                self.timers
                    .set(Timer::BargeIn, now + self.cfg.barge_in_min_speech_ms);
            }
            Wait::Reply(_) => self.timers.stop(Timer::NoInput),
            _ => {}
        }
    }

    pub(super) fn on_speech_end(&mut self, now: Millis) {
        let overlong = std::mem::take(&mut self.speech.overlong);
        self.speech.speaking = false;
        self.timers.stop(Timer::Utterance);
        if !overlong {
            self.speech.ended = Some(now);
        }
        // Speech shorter than the barge-in minimum (a cough, "mhm") never cuts.
        self.timers.stop(Timer::BargeIn);
        if self.amd_speech_end(now) {
            return;
        }
        if let Wait::Reply(_) = self.wait {
            // The final is on its way; if it never comes, this is silence.
            if !overlong || !self.timers.is_set(Timer::NoInput) {
                self.timers.set(Timer::NoInput, now + self.cfg.no_input_ms);
            }
        }
    }

    pub(super) fn on_partial(&mut self, now: Millis, text: String) {
        if self.amd_transcript(now, &text) {
            return;
        }
        self.speech.partial = text;
        // A filler deferred the barge-in; real words after it cut the prompt.
        let past_minimum = self
            .speech
            .started
            .is_some_and(|s| now >= s + self.cfg.barge_in_min_speech_ms);
        if self.speech.speaking
            && past_minimum
            && !self.timers.is_set(Timer::BargeIn)
            && matches!(&self.wait, Wait::Playback(p) if p.interruptible)
            && !self.script.is_backchannel(&self.speech.partial)
        {
            self.barge(now);
        }
    }

    pub(super) fn on_final(&mut self, now: Millis, text: String, confidence: f32) {
        if self.amd_transcript(now, &text) {
            return;
        }
        if !matches!(self.stage, Stage::Talking) {
            return;
        }
        match &self.wait {
            Wait::Playback(p) => {
                if self.script.is_backchannel(&text) || text.trim().is_empty() {
                    if let Some(r) = self.playing_record() {
                        r.ignored.push(text);
                    }
                    return;
                }
                if !p.interruptible {
                    // Said over a disclosure: kept for when it ends.
                    let record = p.record;
                    self.hold(now, text, confidence, record);
                    return;
                }
                self.barge(now);
            }
            Wait::Reply(_) => {}
            _ => return,
        }
        if text.trim().is_empty() {
            return;
        }
        let intent = self.heard_meaning(&text, confidence, self.local_time(now));
        self.on_meaning(now, text, Some(confidence), intent);
    }

    pub(super) fn on_dtmf(&mut self, now: Millis, digit: char) {
        if !matches!(self.stage, Stage::Talking) {
            return;
        }
        match &self.wait {
            Wait::Playback(p) if p.interruptible => self.barge(now),
            Wait::Reply(_) => {}
            Wait::Playback(_) => {
                // A digit pressed over a disclosure is not kept: the menu
                // it would answer has not been offered yet.
                if let Some(r) = self.playing_record() {
                    r.ignored.push(format!("dtmf:{digit}"));
                }
                return;
            }
            _ => return,
        }
        let intent = self.digit_meaning(digit);
        self.speech.started = Some(now);
        self.speech.ended = Some(now);
        self.on_meaning(now, format!("dtmf:{digit}"), None, intent);
    }

    /// The barge-in minimum passed with the caller still talking: cut,
    /// unless all they said so far is a filler ("mhm").
    pub(super) fn on_barge_in_due(&mut self, at: Millis) {
        let filler =
            !self.speech.partial.is_empty() && self.script.is_backchannel(&self.speech.partial);
        if self.speech.speaking && !filler {
            self.barge(at);
        }
    }

    /// Stops the playing prompt (caller talked over it) and drops the rest of
    /// the plan up to the question it led to.
    pub(super) fn barge(&mut self, now: Millis) {
        self.timers.stop(Timer::BargeIn);
        let Wait::Playback(p) = self.wait.clone() else {
            return;
        };
        self.cut_playing(now, &p);
        while let Some(step) = self.plan.pop_front() {
            if let Step::Listen(turn) = step {
                self.question = Some(turn);
                self.set_wait(now, Wait::Reply(turn));
                return;
            }
        }
        self.set_wait(now, Wait::Nothing);
    }

    /// Tells the driver to stop `p` and records where it was cut.
    fn cut_playing(&mut self, now: Millis, p: &super::Playing) {
        let at_ms = now.saturating_sub(p.started);
        self.actions.push_back(super::Action::StopPlaying {
            prompt: p.prompt,
            at_ms,
        });
        if let Some(r) = self.out.turns.get_mut(p.record) {
            r.played_ms = at_ms;
            r.finished = false;
            r.cut_at_ms = Some(at_ms);
        }
    }

    pub(super) fn on_playback_started(&mut self, now: Millis, prompt: PromptId, duration_ms: u64) {
        if matches!(&self.wait, Wait::Playback(p) if p.prompt == prompt) {
            self.timers.set(
                Timer::Playback,
                now + duration_ms + self.cfg.playback_grace_ms,
            );
        }
    }

    pub(super) fn on_playback_finished(&mut self, now: Millis, prompt: PromptId) {
        let Wait::Playback(p) = self.wait.clone() else {
            return;
        };
        if p.prompt != prompt {
            return;
        }
        if let Some(r) = self.out.turns.get_mut(p.record) {
            r.played_ms = now.saturating_sub(p.started);
            r.finished = true;
        }
        self.timers.stop(Timer::BargeIn);
        self.set_wait(now, Wait::Nothing);
        if !self.release_held(now) {
            self.run(now);
        }
    }

    /// The prompt should have ended by now and no report came: drop what is
    /// left of it and go on, rather than leave the caller in silence.
    pub(super) fn on_playback_overdue(&mut self, at: Millis) {
        let Wait::Playback(p) = self.wait.clone() else {
            return;
        };
        self.actions.push_back(super::Action::StopPlaying {
            prompt: p.prompt,
            at_ms: at.saturating_sub(p.started),
        });
        if let Some(r) = self.out.turns.get_mut(p.record) {
            r.played_ms = at.saturating_sub(p.started);
            r.finished = false;
        }
        self.timers.stop(Timer::BargeIn);
        self.set_wait(at, Wait::Nothing);
        if !self.release_held(at) {
            self.run(at);
        }
    }

    /// What words heard with `asr_confidence` mean: not understood
    /// (`unknown`) when the recognizer was less sure than `[dialogue]
    /// reject_threshold`, else what the classifier makes of them.
    fn heard_meaning(&self, text: &str, asr_confidence: f32, at: NaiveDateTime) -> Intent {
        if asr_confidence < self.cfg.reject_threshold {
            return Intent::new(
                IntentKind::Unknown,
                asr_confidence,
                format!(
                    "not understood: recognizer confidence {asr_confidence:.2} below reject_threshold {:.2}",
                    self.cfg.reject_threshold
                ),
            );
        }
        self.understand.text(text, at)
    }

    /// Keeps words said over a prompt that cannot be cut (the latest one
    /// wins; an earlier one is logged on its turn as not acted on).
    fn hold(&mut self, now: Millis, heard: String, asr_confidence: f32, record: usize) {
        let start = self.speech.started.filter(|s| *s <= now).unwrap_or(now);
        let end = self.speech.ended.filter(|e| *e >= start).unwrap_or(now);
        let held = Held {
            heard,
            asr_confidence,
            start,
            end,
            record,
        };
        if let Some(old) = self.held.replace(held) {
            self.ignore(old);
        }
    }

    fn ignore(&mut self, h: Held) {
        if let Some(r) = self.out.turns.get_mut(h.record) {
            r.ignored.push(h.heard);
        }
    }

    /// The prompt a held reply was said over has ended: the reply answers
    /// the question the plan leads to (the prompts before it are skipped)
    /// when it means something there; otherwise it is logged and the plan
    /// goes on. True when it was taken.
    pub(super) fn release_held(&mut self, now: Millis) -> bool {
        let Some(h) = self.held.take() else {
            return false;
        };
        // Only prompts stand between here and the question.
        let mut turn = None;
        for s in &self.plan {
            match s {
                Step::Play(_) => continue,
                Step::Listen(t) => turn = Some(*t),
                _ => {}
            }
            break;
        }
        let Some(turn) = turn else {
            self.ignore(h);
            return false;
        };
        let intent = self.heard_meaning(&h.heard, h.asr_confidence, self.local_time(now));
        if !self.held_answers(turn, &intent) {
            self.ignore(h);
            return false;
        }
        while let Some(s) = self.plan.pop_front() {
            if matches!(s, Step::Listen(_)) {
                break;
            }
        }
        self.announce_listen(turn);
        self.question = Some(turn);
        self.set_wait(now, Wait::Reply(turn));
        self.speech.started = Some(h.start);
        self.speech.ended = Some(h.end);
        self.on_meaning(now, h.heard, Some(h.asr_confidence), intent);
        true
    }

    /// Does a reply said before `turn`'s question was asked answer it? Not
    /// when it means nothing, and a bare yes or no only where it answers:
    /// the identity question once the name has been said (a "yes" to a
    /// greeting that never named the debtor confirms nobody), the read-back.
    fn held_answers(&self, turn: Listen, intent: &Intent) -> bool {
        match intent.kind {
            IntentKind::Unknown => false,
            IntentKind::IdentityConfirmed | IntentKind::IdentityDenied => match turn {
                Listen::Identity => self.name_said,
                Listen::ConfirmPromise | Listen::ConfirmIntent => true,
                _ => false,
            },
            _ => true,
        }
    }

    /// What a digit means now: yes (1) or no (2) to a confirmation
    /// question, else the menu of the call's stage.
    fn digit_meaning(&self, digit: char) -> Intent {
        match self.wait {
            Wait::Reply(turn) => self.digit_meaning_in(digit, turn),
            _ => self.understand.digit(digit, self.out.identity_confirmed),
        }
    }

    fn digit_meaning_in(&self, digit: char, turn: Listen) -> Intent {
        let yes_no = match (turn, digit) {
            (Listen::ConfirmIntent, '1') => Some(IntentKind::IdentityConfirmed),
            (Listen::ConfirmIntent, '2') => Some(IntentKind::IdentityDenied),
            _ => None,
        };
        match yes_no {
            Some(kind) => Intent::new(kind, 1.0, format!("DTMF {digit} (yes 1, no 2)")),
            None => self.understand.digit(digit, self.out.identity_confirmed),
        }
    }

    /// One utterance has gone on longer than any reply (music, a TV, looped
    /// speech): the recognizer ends it now, and the conversation stops
    /// waiting for it, so silence rules apply again.
    pub(super) fn on_utterance_too_long(&mut self, at: Millis) {
        if !self.speech.speaking && !self.speech.overlong {
            return;
        }
        self.actions.push_back(super::Action::EndUtterance);
        self.speech.speaking = false;
        self.speech.overlong = true;
        self.speech.ended = Some(at);
        self.timers.stop(Timer::BargeIn);
        self.timers
            .set(Timer::Utterance, at + self.cfg.max_utterance_ms);
        if matches!(self.wait, Wait::Reply(_)) && !self.timers.is_set(Timer::NoInput) {
            self.timers.set(Timer::NoInput, at + self.cfg.no_input_ms);
        }
    }

    pub(super) fn on_no_input(&mut self, now: Millis, turn: crate::dialogue::prompt::Listen) {
        self.record_reply(None, None, None, now, now);
        self.miss(now, turn, true);
    }

    pub(super) fn on_hangup(&mut self, now: Millis) {
        if let Wait::Playback(p) = &self.wait {
            let at = now.saturating_sub(p.started);
            if let Some(r) = self.out.turns.get_mut(p.record) {
                r.played_ms = at;
                r.finished = false;
                r.cut_at_ms = Some(at);
            }
        }
        self.amd_hung_up(now);
        if let Wait::Transfer = self.wait {
            self.escalate(now, "hung-up-during-transfer");
        }
        if self.out.route.is_none() {
            self.out.route = self.unsettled_stop_route();
        }
        if self.out.route.is_none() && !matches!(self.stage, Stage::Ringing) {
            let ctx = self.route_ctx(now);
            self.out.route = Some(routing::route_hung_up(&ctx, &self.cfg.routing));
        }
        self.finish(now, EndedBy::Them);
    }

    pub(super) fn on_call_limit(&mut self, at: Millis) {
        self.end_early(at, "max-call-length");
    }

    pub(super) fn on_shutdown(&mut self, now: Millis) {
        self.end_early(now, "shutdown");
    }

    /// Ends the call before its plan does: a person hears the closing line
    /// (a closing already under way plays on), then we hang up. A case with
    /// no route yet is retried later; a transfer in flight is left to finish.
    fn end_early(&mut self, now: Millis, why: &str) {
        if self.out.cut_short.is_some() {
            return;
        }
        match self.stage {
            Stage::Ended => return,
            Stage::Ringing => {
                self.out.cut_short = Some(why.to_string());
                self.actions.push_back(super::Action::Hangup);
                self.finish(now, EndedBy::Us);
                return;
            }
            _ => {}
        }
        self.out.cut_short = Some(why.to_string());
        if self.out.route.is_none() {
            self.out.route = self.unsettled_stop_route();
        }
        if self.out.route.is_none() {
            let ctx = self.route_ctx(now);
            self.out.route = Some(routing::route_cut_short(&ctx, &self.cfg.routing, why));
        }
        if matches!(self.wait, Wait::Transfer) {
            return;
        }
        let person = matches!(self.stage, Stage::Talking)
            && self.out.disposition == Some(crate::outcome::Disposition::Answered);
        let closing_under_way = matches!(self.stage, Stage::Talking)
            && matches!(self.plan.back(), Some(Step::Hangup))
            && !self.plan.iter().any(|s| matches!(s, Step::Listen(_)));
        if closing_under_way {
            return;
        }
        self.stage = Stage::Talking;
        self.timers.stop(Timer::Amd);
        self.timers.stop(Timer::BeepWait);
        self.timers.stop(Timer::SpeakDelay);
        if let Wait::Playback(p) = self.wait.clone() {
            self.cut_playing(now, &p);
        }
        let steps = if person {
            vec![Step::Play(PromptId::Closing), Step::Hangup]
        } else {
            vec![Step::Hangup]
        };
        self.set_plan(now, steps);
    }
}
