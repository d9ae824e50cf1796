//! The answer: AMD listening to the greeting (the `amd` sub-machine), a
//! machine's beep wait and message, the speak delay, and the opening of a
//! conversation with a person.

use super::Step;
use super::{Conversation, Stage};
use crate::account::Language;
use crate::dialogue::amd::{AmdResult, AmdVerdict, BeepWait, Detector, Verdict};
use crate::dialogue::config::{UncertainAs, VoicemailMode};
use crate::dialogue::prompt::{Listen, PromptId};
use crate::dialogue::routing;
use crate::dialogue::timers::Timer;
use crate::dialogue::Millis;
use crate::outcome::Disposition;

impl Conversation {
    pub(super) fn on_answered(&mut self, now: Millis) {
        if !matches!(self.stage, Stage::Ringing) {
            return;
        }
        self.out.disposition = Some(Disposition::Answered);
        self.timers
            .set(Timer::CallLimit, now + self.cfg.max_call_ms);
        if self.cfg.amd.enabled {
            let d = Detector::new(&self.cfg.amd, now);
            self.timers.set(Timer::Amd, d.deadline().0);
            self.stage = Stage::Amd(d);
        } else {
            self.out.amd = AmdResult::not_run("disabled");
            self.begin_person(now);
        }
    }

    /// AMD's timer: the verdict its deadline gives.
    pub(super) fn on_amd_due(&mut self, at: Millis) {
        if let Stage::Amd(d) = &self.stage {
            let (due, verdict) = d.deadline();
            if due <= at {
                self.amd_decide(at, verdict);
            } else {
                self.timers.set(Timer::Amd, due);
            }
        }
    }

    /// Speech while AMD listens or a machine's greeting plays; true when
    /// the stage took it.
    pub(super) fn amd_speech_start(&mut self, now: Millis) -> bool {
        match &mut self.stage {
            Stage::Amd(d) => {
                d.speech_start(now);
                let due = d.deadline().0;
                self.timers.set(Timer::Amd, due);
                true
            }
            Stage::WaitBeep(w) => {
                w.speech_start();
                let due = w.deadline();
                self.timers.set(Timer::BeepWait, due);
                true
            }
            _ => false,
        }
    }

    /// The end of speech while AMD listens or a machine's greeting plays;
    /// true when the stage took it.
    pub(super) fn amd_speech_end(&mut self, now: Millis) -> bool {
        match &mut self.stage {
            Stage::Amd(d) => {
                match d.speech_end(now) {
                    Some(v) => self.amd_decide(now, v),
                    None => {
                        let due = d.deadline().0;
                        self.timers.set(Timer::Amd, due);
                    }
                }
                true
            }
            Stage::WaitBeep(w) => {
                w.speech_end(now);
                let due = w.deadline();
                self.timers.set(Timer::BeepWait, due);
                true
            }
            _ => false,
        }
    }

    /// A transcript of the greeting while AMD listens; true when AMD took it.
    pub(super) fn amd_transcript(&mut self, now: Millis, text: &str) -> bool {
        let Stage::Amd(d) = &self.stage else {
            return false;
        };
        if let Some(v) = d.transcript(self.words_in(text)) {
            self.amd_decide(now, v);
        }
        true
    }

    fn amd_decide(&mut self, now: Millis, verdict: Verdict) {
        let Stage::Amd(d) = &self.stage else {
            return;
        };
        self.timers.stop(Timer::Amd);
        self.out.amd = d.result(now, verdict);
        let in_speech = d.in_speech();
        let machine = match verdict.0 {
            AmdVerdict::Machine => true,
            AmdVerdict::Uncertain => self.cfg.amd.uncertain_as == UncertainAs::Machine,
            _ => false,
        };
        if !machine {
            self.begin_person(now);
            return;
        }
        self.out.disposition = Some(Disposition::Voicemail);
        let ctx = self.route_ctx(now);
        self.out.route = Some(routing::route_voicemail(&ctx, &self.cfg.routing));
        match self.cfg.voicemail {
            VoicemailMode::HangUp => {
                self.stage = Stage::Talking;
                self.set_plan(now, vec![Step::Hangup]);
            }
            VoicemailMode::LeaveMessage => {
                if verdict.1 == "beep" {
                    self.leave_message(now);
                } else {
                    let w = BeepWait::new(&self.cfg.amd, now, in_speech);
                    self.timers.set(Timer::BeepWait, w.deadline());
                    self.stage = Stage::WaitBeep(w);
                }
            }
        }
    }

    pub(super) fn leave_message(&mut self, now: Millis) {
        if !matches!(self.stage, Stage::WaitBeep(_) | Stage::Amd(_)) {
            return;
        }
        self.timers.stop(Timer::BeepWait);
        self.stage = Stage::Talking;
        self.set_plan(now, vec![Step::Play(PromptId::Voicemail), Step::Hangup]);
    }

    fn begin_person(&mut self, now: Millis) {
        if self.cfg.speak_delay_ms > 0 {
            self.stage = Stage::Delay;
            self.timers
                .set(Timer::SpeakDelay, now + self.cfg.speak_delay_ms);
        } else {
            self.start_conversation(now);
        }
    }

    pub(super) fn start_conversation(&mut self, now: Millis) {
        if !matches!(self.stage, Stage::Delay | Stage::Amd(_) | Stage::Ringing) {
            return;
        }
        self.stage = Stage::Talking;
        // The greeting was the person's "hello?", not a reply to us.
        self.speech = super::Speech {
            speaking: self.speech.speaking,
            ..super::Speech::default()
        };
        self.question = Some(Listen::Identity);
        self.set_plan(
            now,
            vec![
                Step::Play(PromptId::Opening),
                Step::Play(PromptId::RightParty),
                Step::Listen(Listen::Identity),
            ],
        );
    }

    /// Words in a transcript, for AMD: Mandarin counts two characters as a word.
    fn words_in(&self, text: &str) -> u32 {
        match self.script.meta.language {
            Language::En => text.split_whitespace().count() as u32,
            Language::Zh => {
                (text.chars().filter(|c| c.is_alphanumeric()).count() as u32).div_ceil(2)
            }
        }
    }

    pub(super) fn on_tone(&mut self, now: Millis) {
        match self.stage {
            Stage::Amd(_) => self.amd_decide(now, (AmdVerdict::Machine, "beep")),
            Stage::WaitBeep(_) => self.leave_message(now),
            _ => {}
        }
    }

    /// The record of AMD when the callee hangs up during detection.
    pub(super) fn amd_hung_up(&mut self, now: Millis) {
        if let Stage::Amd(d) = &self.stage {
            self.out.amd = d.hung_up(now);
        }
    }
}
