//! The debtor's turn-taking, pure: which step of the persona runs next and
//! when, given what was heard (duecall's prompts as the VAD sees them) and
//! what finished playing. Times are the sim's media clock in ms since the
//! answer (20 ms steps from the RTP session). Owns the step pointer and the
//! waits; never plays audio, never reads a clock, never touches SIP.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::dialogue::prompt::PromptId;

use crate::media::vad::{Vad, VadConfig, VadEvent};

use super::cue::{PromptCues, PromptKind, PRE_ROLL_MS};
use super::persona::Step;

/// One prompt of duecall's as the callee heard it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PromptHeard {
    /// First voiced frame, ms on the sim's media clock.
    pub start_ms: u64,
    /// End of the last voiced frame (None while still playing; a prompt
    /// cut by the end of the call ends at the last frame heard).
    pub end_ms: Option<u64>,
    /// What its opening words made it (Other until it ended).
    pub kind: PromptKind,
}

/// Something the prompt tracker noticed in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// duecall started a prompt at `start_ms`.
    PromptStart {
        /// First voiced frame.
        start_ms: u64,
    },
    /// duecall's prompt ended: last voice at `end_ms` (noticed after the end silence).
    PromptEnd {
        /// End of the last voiced frame.
        end_ms: u64,
        /// What its opening words made it (Other when no cues are known).
        kind: PromptKind,
    },
}

/// Finds duecall's prompts in what the callee hears: speech, then at least
/// `end_silence_ms` of silence, is one prompt (pauses between sentences of a
/// prompt are shorter).
#[derive(Debug)]
pub struct PromptTracker {
    vad: Vad,
    last_frame_ms: u64,
    cues: Option<Arc<PromptCues>>,
    /// The last [`PRE_ROLL_MS`] heard (only with cues).
    recent: VecDeque<i16>,
    /// The current prompt's opening, from before its start (only with cues).
    opening: Option<Vec<i16>>,
}

impl PromptTracker {
    /// A tracker that ends a prompt after `end_silence_ms` of silence.
    pub fn new(end_silence_ms: u32) -> Self {
        let cfg = VadConfig {
            end_silence_ms,
            ..VadConfig::default()
        };
        PromptTracker {
            vad: Vad::new(cfg),
            last_frame_ms: 0,
            cues: None,
            recent: VecDeque::new(),
            opening: None,
        }
    }

    /// Also tells each prompt's kind from its opening words.
    pub fn with_cues(mut self, cues: Arc<PromptCues>) -> Self {
        self.cues = Some(cues).filter(|c| !c.is_empty());
        self
    }

    /// Feeds the 20 ms frame heard at `at_ms`.
    pub fn frame(&mut self, at_ms: u64, pcm: &[i16]) -> Option<Heard> {
        self.last_frame_ms = at_ms;
        if let Some(cues) = &self.cues {
            self.recent.extend(pcm.iter().copied());
            let keep = PRE_ROLL_MS * 8;
            if self.recent.len() > keep {
                self.recent.drain(..self.recent.len() - keep);
            }
            if let Some(o) = self
                .opening
                .as_mut()
                .filter(|o| o.len() < cues.needed_samples())
            {
                o.extend_from_slice(pcm);
            }
        }
        let ev = self.vad.process(pcm)?;
        // Map VAD frame numbers to the media clock through the current frame,
        // which stays right even if the media session skipped ahead.
        let current = self.vad.frames_seen().saturating_sub(1);
        let to_ms = |f: u64| at_ms.saturating_sub(current.saturating_sub(f) * 20);
        Some(match ev {
            VadEvent::SpeechStart { at_frame } => {
                if self.cues.is_some() {
                    self.opening = Some(self.recent.iter().copied().collect());
                }
                Heard::PromptStart {
                    start_ms: to_ms(at_frame),
                }
            }
            VadEvent::SpeechEnd { at_frame, .. } => {
                let kind = match (&self.cues, self.opening.take()) {
                    (Some(c), Some(o)) => c.classify(&o),
                    _ => PromptKind::Other,
                };
                Heard::PromptEnd {
                    end_ms: to_ms(at_frame),
                    kind,
                }
            }
        })
    }

    /// Is duecall speaking now?
    pub fn in_prompt(&self) -> bool {
        self.vad.in_speech()
    }
}

/// What the runner asks the call to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    /// Play line `text` (the step ends on [`Performer::play_finished`]).
    Say(String),
    /// Play line `text` again, slower, as a caller repeats itself when not
    /// understood (ends on [`Performer::play_finished`]).
    SayAgain(String),
    /// Send these DTMF digits.
    Dtmf(String),
    /// Play a tone (the step ends on [`Performer::play_finished`]).
    Tone {
        /// Hz.
        hz: f32,
        /// ms.
        ms: u64,
    },
    /// Hang up (BYE).
    Hangup,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Wait {
    /// Ready to start the next step.
    Ready,
    /// Until this media time.
    Until(u64),
    /// Until more than `seen` prompts have ended.
    PromptEnd { seen: u64 },
    /// `ms` into the first prompt that starts after `seen` starts.
    IntoPrompt { seen: u64, ms: u64 },
    /// Our own audio is playing.
    Playing,
    /// Until this media time, then the habit's reply (`Performer::react`).
    React(u64),
    /// No steps left (or hung up).
    Done,
}

/// Where the script stands again once a habit's reply is over.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Resume {
    /// Waiting for duecall's next prompt (the step that waited still waits).
    WaitPrompt,
    /// No steps left.
    Done,
}

/// How a performer answers "Just to be sure: ...?".
#[derive(Debug, Clone, PartialEq)]
pub enum ConfirmAnswer {
    /// Always this line.
    Always(String),
    /// `yes` when the question asked is the one for the intent of the last
    /// line it said (`confirmable` maps its lines that mean a consequential
    /// intent to that intent's question, [`PromptId::confirming`]), else
    /// `no`: a caller who asked to be called after six, or who said it lost
    /// its job, says no to "you have already paid?". A question it could not
    /// tell ([`PromptKind::Confirm`] without an id) gets `no` too: a caller
    /// answers yes only to what it knows it meant, and a wrong yes is the
    /// error that routes a case wrongly. After a no, duecall asks its
    /// question again, and the line it meant stays the one it repeats.
    ByMeaning {
        /// The yes line.
        yes: String,
        /// The no line.
        no: String,
        /// Its lines that mean a consequential intent, with the question
        /// that confirms that intent.
        confirmable: Arc<HashMap<String, PromptId>>,
    },
}

/// Runs a persona's steps against the prompts heard, and its habits: a
/// confirmation question or a re-ask heard while the script waits for a
/// prompt (or has nothing left) is answered by the habit, and the script
/// still waits for the prompt after it.
#[derive(Debug, Clone)]
pub struct Performer {
    steps: Vec<Step>,
    next: usize,
    wait: Wait,
    starts: u64,
    ends: u64,
    last_start_ms: u64,
    gap: (u64, u64),
    dtmf_ms_per_digit: u64,
    rng: u64,
    confirm: Option<ConfirmAnswer>,
    max_repeats: u8,
    last_reply: Option<Step>,
    /// The last line of its script it said (a confirmation's answer is not one).
    last_said: Option<String>,
    repeated: u8,
    /// A habit's reply waiting for its gap: the step, and whether it is
    /// said again (a repeat) rather than for the first time.
    react: Option<(Step, bool)>,
    resume: Option<Resume>,
    hung_up: bool,
}

impl Performer {
    /// A runner for `steps` that replies `gap` ms (a range: min, max) after
    /// duecall's last voiced frame; `seed` makes the gaps reproducible.
    pub fn new(steps: Vec<Step>, gap: (u64, u64), seed: u64) -> Self {
        let gap = (gap.0.min(gap.1), gap.0.max(gap.1));
        Performer {
            steps,
            next: 0,
            wait: Wait::Ready,
            starts: 0,
            ends: 0,
            last_start_ms: 0,
            gap,
            dtmf_ms_per_digit: 200,
            rng: seed | 1,
            confirm: None,
            max_repeats: 0,
            last_reply: None,
            last_said: None,
            repeated: 0,
            react: None,
            resume: None,
            hung_up: false,
        }
    }

    /// Gives the performer a caller's habits: `confirm` is how it answers a
    /// confirmation question (None: the script answers), and it repeats its
    /// last reply (line or digits) up to `max_repeats` times in a row when
    /// re-asked.
    pub fn with_habits(mut self, confirm: Option<ConfirmAnswer>, max_repeats: u8) -> Self {
        self.confirm = confirm;
        self.max_repeats = max_repeats;
        self
    }

    /// The habit's reply to a prompt of `kind`, if any, and whether it is
    /// a repeat (and notes it).
    fn habit(&mut self, kind: PromptKind) -> Option<(Step, bool)> {
        match kind {
            PromptKind::Confirm(asked) => {
                let (line, meant) = match self.confirm.as_ref()? {
                    ConfirmAnswer::Always(l) => (l.clone(), true),
                    ConfirmAnswer::ByMeaning {
                        yes,
                        no,
                        confirmable,
                    } => {
                        let means = self.last_said.as_ref().and_then(|s| confirmable.get(s));
                        match (means, asked) {
                            (Some(m), Some(a)) if *m == a => (yes.clone(), true),
                            _ => (no.clone(), false),
                        }
                    }
                };
                let s = Step::Say(line);
                if meant {
                    self.last_reply = Some(s.clone());
                }
                self.repeated = 0;
                Some((s, false))
            }
            PromptKind::Reask if self.repeated < self.max_repeats => {
                let s = self.last_reply.clone()?;
                self.repeated += 1;
                Some((s, true))
            }
            _ => None,
        }
    }

    /// What the script does once our own act is over.
    fn after_act(&mut self) -> Wait {
        match self.resume.take() {
            Some(Resume::WaitPrompt) => Wait::PromptEnd { seen: self.ends },
            Some(Resume::Done) => Wait::Done,
            None => Wait::Ready,
        }
    }

    /// True when every step has run.
    pub fn done(&self) -> bool {
        self.wait == Wait::Done
    }

    fn next_gap(&mut self) -> u64 {
        // xorshift64: a reproducible spread without a clock or a global RNG.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let span = self.gap.1 - self.gap.0;
        self.gap.0 + if span == 0 { 0 } else { self.rng % (span + 1) }
    }

    /// Tells the runner what the tracker heard at `now`.
    pub fn heard(&mut self, h: Heard, now: u64) {
        match h {
            Heard::PromptStart { start_ms } => {
                self.starts += 1;
                self.last_start_ms = start_ms;
                if let Wait::IntoPrompt { seen, ms } = self.wait {
                    if self.starts > seen {
                        self.wait = Wait::Until(start_ms + ms);
                    }
                }
            }
            Heard::PromptEnd { end_ms, kind } => {
                self.ends += 1;
                let resume = match self.wait {
                    Wait::PromptEnd { seen } if self.ends > seen => Some(Resume::WaitPrompt),
                    Wait::Done if !self.hung_up => Some(Resume::Done),
                    _ => None,
                };
                if let Some(resume) = resume {
                    if let Some(step) = self.habit(kind) {
                        let gap = self.next_gap();
                        self.react = Some(step);
                        self.resume = Some(resume);
                        self.wait = Wait::React((end_ms + gap).max(now));
                        return;
                    }
                }
                if let Wait::PromptEnd { seen } = self.wait {
                    if self.ends > seen {
                        let gap = self.next_gap();
                        self.wait = Wait::Until((end_ms + gap).max(now));
                    }
                }
            }
        }
    }

    /// Our audio (a line or a tone) finished playing.
    pub fn play_finished(&mut self) {
        if self.wait == Wait::Playing {
            self.wait = self.after_act();
        }
    }

    /// The next thing to do at media time `now`, if any; call until None.
    pub fn poll(&mut self, now: u64) -> Option<Act> {
        loop {
            match self.wait {
                Wait::Until(t) if now >= t => self.wait = self.after_act(),
                Wait::React(t) if now >= t => match self.react.take() {
                    Some((Step::Say(t), again)) => {
                        self.wait = Wait::Playing;
                        return Some(if again { Act::SayAgain(t) } else { Act::Say(t) });
                    }
                    Some((Step::Dtmf(d), _)) => {
                        self.wait =
                            Wait::Until(now + self.dtmf_ms_per_digit * d.chars().count() as u64);
                        return Some(Act::Dtmf(d));
                    }
                    _ => {
                        self.wait = self.after_act();
                        continue;
                    }
                },
                Wait::Ready => {}
                _ => return None,
            }
            let Some(step) = self.steps.get(self.next).cloned() else {
                self.wait = Wait::Done;
                return None;
            };
            self.next += 1;
            match step {
                Step::Say(t) => {
                    self.last_reply = Some(Step::Say(t.clone()));
                    self.last_said = Some(t.clone());
                    self.repeated = 0;
                    self.wait = Wait::Playing;
                    return Some(Act::Say(t));
                }
                Step::Tone { hz, ms } => {
                    self.wait = Wait::Playing;
                    return Some(Act::Tone { hz, ms });
                }
                Step::Dtmf(d) => {
                    self.last_reply = Some(Step::Dtmf(d.clone()));
                    self.last_said = None;
                    self.repeated = 0;
                    self.wait =
                        Wait::Until(now + self.dtmf_ms_per_digit * d.chars().count() as u64);
                    return Some(Act::Dtmf(d));
                }
                Step::Silence(ms) => self.wait = Wait::Until(now + ms),
                Step::WaitPrompt => self.wait = Wait::PromptEnd { seen: self.ends },
                Step::IntoPrompt(ms) => {
                    self.wait = Wait::IntoPrompt {
                        seen: self.starts,
                        ms,
                    }
                }
                Step::Hangup => {
                    self.wait = Wait::Done;
                    self.hung_up = true;
                    return Some(Act::Hangup);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say(t: &str) -> Step {
        Step::Say(t.into())
    }

    /// Drives a performer over a timeline of heard events; returns (time, act).
    fn run(p: &mut Performer, until: u64, heard: &[(u64, Heard)], play_ms: u64) -> Vec<(u64, Act)> {
        let mut out = Vec::new();
        let mut playing_until: Option<u64> = None;
        let mut t = 0;
        while t <= until {
            for (at, h) in heard {
                if *at == t {
                    p.heard(*h, t);
                }
            }
            if playing_until == Some(t) {
                playing_until = None;
                p.play_finished();
            }
            while let Some(a) = p.poll(t) {
                if matches!(a, Act::Say(_) | Act::SayAgain(_) | Act::Tone { .. }) {
                    playing_until = Some(t + play_ms);
                }
                out.push((t, a));
            }
            t += 20;
        }
        out
    }

    #[test]
    fn reply_waits_for_the_prompt_end_plus_the_gap() {
        let mut p = Performer::new(vec![Step::WaitPrompt, say("Yes, speaking.")], (500, 500), 7);
        let heard = [
            (1000, Heard::PromptStart { start_ms: 800 }),
            (
                3600,
                Heard::PromptEnd {
                    end_ms: 3000,
                    kind: PromptKind::Other,
                },
            ),
        ];
        let acts = run(&mut p, 5000, &heard, 1000);
        assert_eq!(acts, vec![(3600, Act::Say("Yes, speaking.".into()))]);
        let mut p = Performer::new(vec![Step::WaitPrompt, say("x")], (800, 800), 7);
        let acts = run(&mut p, 5000, &heard, 1000);
        assert_eq!(
            acts[0].0, 3800,
            "gap longer than the detection delay counts from the voice end"
        );
    }

    #[test]
    fn a_prompt_that_ended_while_we_spoke_does_not_satisfy_the_next_wait() {
        let mut p = Performer::new(
            vec![say("Hello?"), Step::WaitPrompt, say("Yes.")],
            (400, 400),
            1,
        );
        // A prompt ends at 500, while "Hello?" plays (0..1000); the next one at 4000.
        let heard = [
            (100, Heard::PromptStart { start_ms: 0 }),
            (
                500,
                Heard::PromptEnd {
                    end_ms: 200,
                    kind: PromptKind::Other,
                },
            ),
            (2000, Heard::PromptStart { start_ms: 1800 }),
            (
                4000,
                Heard::PromptEnd {
                    end_ms: 3400,
                    kind: PromptKind::Other,
                },
            ),
        ];
        let acts = run(&mut p, 6000, &heard, 1000);
        assert_eq!(
            acts,
            vec![
                (0, Act::Say("Hello?".into())),
                (4000, Act::Say("Yes.".into()))
            ]
        );
    }

    #[test]
    fn into_prompt_fires_relative_to_the_next_prompt_start() {
        let mut p = Performer::new(
            vec![Step::IntoPrompt(1200), say("I already paid it")],
            (400, 400),
            1,
        );
        let heard = [(2200, Heard::PromptStart { start_ms: 2000 })];
        let acts = run(&mut p, 5000, &heard, 1000);
        assert_eq!(acts, vec![(3200, Act::Say("I already paid it".into()))]);
    }

    #[test]
    fn silence_dtmf_and_hangup_run_in_order_then_done() {
        let mut p = Performer::new(
            vec![
                Step::Silence(300),
                Step::Dtmf("12".into()),
                Step::Hangup,
                say("never"),
            ],
            (400, 400),
            1,
        );
        let acts = run(&mut p, 2000, &[], 1000);
        assert_eq!(
            acts,
            vec![(300, Act::Dtmf("12".into())), (700, Act::Hangup)]
        );
        assert!(p.done());
    }

    fn end(at: u64, kind: PromptKind) -> (u64, Heard) {
        (at + 600, Heard::PromptEnd { end_ms: at, kind })
    }

    fn caller(steps: Vec<Step>) -> Performer {
        Performer::new(steps, (400, 400), 1)
            .with_habits(Some(ConfirmAnswer::Always("Yes.".into())), 2)
    }

    /// A caller that answers confirmations by what it meant; `confirmable`
    /// are its lines that mean a consequential intent, with the question
    /// that confirms it.
    fn meaning_caller(steps: Vec<Step>, confirmable: &[(&str, PromptId)]) -> Performer {
        let answer = ConfirmAnswer::ByMeaning {
            yes: "Yes.".into(),
            no: "No.".into(),
            confirmable: Arc::new(
                confirmable
                    .iter()
                    .map(|(s, id)| (s.to_string(), *id))
                    .collect(),
            ),
        };
        Performer::new(steps, (400, 400), 1).with_habits(Some(answer), 2)
    }

    #[test]
    fn a_caller_says_no_to_a_confirmation_of_what_it_did_not_mean_and_repeats_its_reply() {
        let mut p = meaning_caller(
            vec![
                Step::WaitPrompt,
                say("Yes, speaking."),
                Step::WaitPrompt,
                say("Please call me after six."),
            ],
            &[("I lost my job.", PromptId::ConfirmHardship)],
        );
        let heard = [
            end(1000, PromptKind::Other),
            end(4000, PromptKind::Other),
            end(8000, PromptKind::Confirm(Some(PromptId::ConfirmHardship))),
            end(12_000, PromptKind::Reask),
        ];
        let acts = run(&mut p, 16_000, &heard, 1000);
        assert_eq!(
            acts,
            vec![
                (1600, Act::Say("Yes, speaking.".into())),
                (4600, Act::Say("Please call me after six.".into())),
                (8600, Act::Say("No.".into())),
                (12_600, Act::SayAgain("Please call me after six.".into())),
            ],
            "no to a confirmation of something else; asked again, it says what it meant"
        );
    }

    #[test]
    fn a_caller_says_yes_to_a_confirmation_of_a_consequential_reply_it_made() {
        let mut p = meaning_caller(
            vec![Step::WaitPrompt, say("I lost my job.")],
            &[("I lost my job.", PromptId::ConfirmHardship)],
        );
        let heard = [
            end(1000, PromptKind::Other),
            end(4000, PromptKind::Confirm(Some(PromptId::ConfirmHardship))),
        ];
        let acts = run(&mut p, 6000, &heard, 1000);
        assert_eq!(
            acts,
            vec![
                (1600, Act::Say("I lost my job.".into())),
                (4600, Act::Say("Yes.".into())),
            ]
        );
    }

    #[test]
    fn a_caller_says_no_to_the_confirmation_of_another_consequential_intent_than_it_meant() {
        // A hardship plea misheard as "already paid": a real caller says no
        // to "you have already paid?", and says what it meant when re-asked.
        let mut p = meaning_caller(
            vec![Step::WaitPrompt, say("I lost my job.")],
            &[("I lost my job.", PromptId::ConfirmHardship)],
        );
        let heard = [
            end(1000, PromptKind::Other),
            end(
                4000,
                PromptKind::Confirm(Some(PromptId::ConfirmAlreadyPaid)),
            ),
            end(8000, PromptKind::Reask),
            end(12_000, PromptKind::Confirm(Some(PromptId::ConfirmHardship))),
        ];
        let acts = run(&mut p, 14_000, &heard, 1000);
        assert_eq!(
            acts,
            vec![
                (1600, Act::Say("I lost my job.".into())),
                (4600, Act::Say("No.".into())),
                (8600, Act::SayAgain("I lost my job.".into())),
                (12_600, Act::Say("Yes.".into())),
            ],
            "no to the wrong intent, yes to its own"
        );
    }

    #[test]
    fn a_caller_that_cannot_tell_which_confirmation_it_heard_says_no() {
        let mut p = meaning_caller(
            vec![Step::WaitPrompt, say("I lost my job.")],
            &[("I lost my job.", PromptId::ConfirmHardship)],
        );
        let heard = [
            end(1000, PromptKind::Other),
            end(4000, PromptKind::Confirm(None)),
        ];
        let acts = run(&mut p, 6000, &heard, 1000);
        assert_eq!(
            acts,
            vec![
                (1600, Act::Say("I lost my job.".into())),
                (4600, Act::Say("No.".into())),
            ],
            "a yes only to what it knows it meant"
        );
    }

    #[test]
    fn a_caller_says_yes_to_a_confirmation_and_its_script_goes_on_at_the_next_prompt() {
        let mut p = caller(vec![
            Step::WaitPrompt,
            say("I can pay on Friday."),
            Step::WaitPrompt,
            say("Yes, that's right."),
        ]);
        let heard = [
            end(1000, PromptKind::Other),
            end(4000, PromptKind::Confirm(None)),
            end(8000, PromptKind::Other),
        ];
        let acts = run(&mut p, 12_000, &heard, 1000);
        assert_eq!(
            acts,
            vec![
                (1600, Act::Say("I can pay on Friday.".into())),
                (4600, Act::Say("Yes.".into())),
                (8600, Act::Say("Yes, that's right.".into())),
            ]
        );
    }

    #[test]
    fn a_caller_repeats_its_last_reply_when_reasked_at_most_twice_in_a_row() {
        let mut p = caller(vec![
            Step::WaitPrompt,
            say("I lost my job and I cannot pay right now."),
        ]);
        let heard = [
            end(1000, PromptKind::Other),
            end(4000, PromptKind::Reask),
            end(8000, PromptKind::Reask),
            end(12_000, PromptKind::Reask),
            end(16_000, PromptKind::Confirm(None)),
            end(20_000, PromptKind::Reask),
        ];
        let acts = run(&mut p, 24_000, &heard, 1000);
        let line = "I lost my job and I cannot pay right now.";
        assert_eq!(
            acts,
            vec![
                (1600, Act::Say(line.into())),
                (4600, Act::SayAgain(line.into())),
                (8600, Act::SayAgain(line.into())),
                (16_600, Act::Say("Yes.".into())),
                (20_600, Act::SayAgain("Yes.".into())),
            ],
            "the third re-ask in a row goes unanswered; an unheard yes is said again"
        );
    }

    #[test]
    fn a_reask_gets_the_digits_again_when_the_reply_was_digits() {
        let mut p = caller(vec![Step::WaitPrompt, Step::Dtmf("1".into())]);
        let heard = [end(1000, PromptKind::Other), end(4000, PromptKind::Reask)];
        let acts = run(&mut p, 6000, &heard, 1000);
        assert_eq!(
            acts,
            vec![(1600, Act::Dtmf("1".into())), (4600, Act::Dtmf("1".into()))]
        );
    }

    #[test]
    fn a_scripted_persona_answers_every_prompt_with_its_next_step() {
        let steps = vec![
            Step::WaitPrompt,
            say("Stop calling me."),
            Step::WaitPrompt,
            say("No."),
        ];
        let heard = [
            end(1000, PromptKind::Other),
            end(4000, PromptKind::Confirm(None)),
            end(8000, PromptKind::Reask),
        ];
        let mut p = Performer::new(steps, (400, 400), 1).with_habits(None, 0);
        let acts = run(&mut p, 10_000, &heard, 1000);
        assert_eq!(
            acts,
            vec![
                (1600, Act::Say("Stop calling me.".into())),
                (4600, Act::Say("No.".into())),
            ]
        );
    }

    #[test]
    fn habits_do_not_answer_while_the_script_waits_for_something_else_or_hung_up() {
        let mut p = caller(vec![
            Step::WaitPrompt,
            say("Yes, it's me."),
            Step::IntoPrompt(1200),
            say("I already paid it."),
            Step::Hangup,
        ]);
        let heard = [
            end(1000, PromptKind::Other),
            end(4000, PromptKind::Reask),
            (6000, Heard::PromptStart { start_ms: 6000 }),
            end(9000, PromptKind::Confirm(None)),
        ];
        let acts = run(&mut p, 12_000, &heard, 1000);
        assert_eq!(
            acts,
            vec![
                (1600, Act::Say("Yes, it's me.".into())),
                (7200, Act::Say("I already paid it.".into())),
                (8200, Act::Hangup),
            ]
        );
    }

    #[test]
    fn gaps_stay_inside_the_range() {
        let mut p = Performer::new(vec![], (400, 700), 99);
        let gaps: Vec<u64> = (0..200).map(|_| p.next_gap()).collect();
        assert!(gaps.iter().all(|g| (400..=700).contains(g)));
        assert!(gaps.iter().any(|g| *g != gaps[0]), "gaps vary");
    }

    #[test]
    fn tracker_finds_one_prompt_across_a_short_pause_and_ends_after_the_silence() {
        let mut tr = PromptTracker::new(600);
        let tone: Vec<i16> = (0..160)
            .map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16)
            .collect();
        let quiet = [0i16; 160];
        let mut events = Vec::new();
        // 400 ms silence, 1 s voice, 300 ms pause, 1 s voice, then 2 s silence.
        let plan: Vec<bool> = std::iter::repeat_n(false, 20)
            .chain(std::iter::repeat_n(true, 50))
            .chain(std::iter::repeat_n(false, 15))
            .chain(std::iter::repeat_n(true, 50))
            .chain(std::iter::repeat_n(false, 100))
            .collect();
        for (i, voiced) in plan.iter().enumerate() {
            let at = 600 + i as u64 * 20;
            if let Some(h) = tr.frame(at, if *voiced { &tone } else { &quiet }) {
                events.push((at, h));
            }
        }
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].1, Heard::PromptStart { start_ms: 1000 });
        assert_eq!(
            events[1].1,
            Heard::PromptEnd {
                end_ms: 1000 + 115 * 20,
                kind: PromptKind::Other
            }
        );
        assert!(events[1].0 >= 1000 + 115 * 20 + 600 - 20);
    }
}
