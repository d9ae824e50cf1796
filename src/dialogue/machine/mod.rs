//! The call state machine, sans-IO in the manner of str0m's `Rtc`: the driver
//! feeds `handle(now_ms, Event)` (time in milliseconds on any clock that only
//! grows), drains `poll_action()` until `None`, and calls
//! `handle(t, Event::Timeout)` when `poll_timeout()` comes due. Owns the
//! disclosures, the right-party check, barge-in, the re-ask / DTMF-menu
//! ladder, the per-turn record and the outcome; answering-machine detection
//! is its own sub-machine (`dialogue::amd`) driven from `answer`. It must
//! never play a prompt flagged `mentions_debt` before the right person is
//! confirmed (checked at the one place a prompt starts, `plan`), never cut
//! off a disclosure, and never do I/O.
//!
//! ```text
//!  Answered -> AMD --machine--> wait beep/silence -> voicemail -> hang up
//!               |--person/uncertain--> opening (no barge-in) -> right_party? <--+
//!                                                                 | yes         | who is calling (<=2)
//!                     wrong number / not me / stop / agent <------+-------------+
//!                                                                 v
//!                             debt_disclosure (no barge-in) -> reminder? -> reply -> route
//!   unclear or silent reply: re-ask once -> DTMF menu -> route as unknown
//! ```
//!
//! One file per stage: `answer` (the answer, AMD, voicemail, the opening),
//! `listen` (speech, barge-in, playback, hang-up), `reply` (what a reply
//! means for the case, the unclear-reply ladder), `promise` (the date and
//! its read-back), `transfer` (live transfers and escalations), `plan` (the
//! steps that play, listen, transfer and hang up; the end of the call).

mod answer;
mod listen;
mod plan;
mod promise;
mod reply;
mod transfer;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime};
use serde::Serialize;

use super::amd::{AmdResult, BeepWait, Detector};
use super::config::DialogueConfig;
use super::outcome::DialogueOutcome;
use super::prompt::{Listen, PromptId};
use super::routing::RouteContext;
use super::script::{Script, Vars};
use super::speak;
use super::timers::{Timer, TimerTable};
use super::Millis;
use crate::account::Account;
use crate::intent::{Intent, IntentKind};

/// One step of the plan (`plan.rs` runs them).
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Play(PromptId),
    Listen(Listen),
    Transfer,
    Escalate(String),
    Hangup,
}

/// What a reply means. The machine asks; the real classifier
/// (`crate::intent`) is adapted to this by the driver, tests use a small one.
/// Replies below the intent threshold come back `Unknown`.
pub trait Understand {
    /// Meaning of a transcript. `at` is the debtor's local date and time of
    /// the reply, so "Friday" or "tomorrow at 3" resolve to a date.
    fn text(&self, text: &str, at: NaiveDateTime) -> Intent;
    /// Meaning of a DTMF digit in the menu for this stage of the call
    /// (before identity: 1 me, 2 not me, 0 agent; after: 1 paid, 2 will pay,
    /// 3 hardship, 4 wrong number, 0 agent).
    fn digit(&self, digit: char, identity_confirmed: bool) -> Intent;
}

/// What differs per call (the `[dialogue]` config is the same for all).
#[derive(Debug, Clone, PartialEq)]
pub struct CallContext {
    /// When the call was answered, in the debtor's local offset; `today` is its date.
    pub started_at: DateTime<FixedOffset>,
    /// Case id for the `X-Duecall-Case` header (default: the account id).
    pub case_id: Option<String>,
    /// How long the call leg waits for a transfer's result; the
    /// conversation gives up at the same moment if the leg stays silent.
    pub transfer_timeout_ms: u64,
}

impl CallContext {
    /// A call answered at `started_at`, the account id as case id, a 10 s
    /// transfer timeout (the SIP default).
    pub fn at(started_at: DateTime<FixedOffset>) -> CallContext {
        CallContext {
            started_at,
            case_id: None,
            transfer_timeout_ms: 10_000,
        }
    }

    /// The debtor's local date of the call.
    pub fn today(&self) -> NaiveDate {
        self.started_at.date_naive()
    }
}

/// Something the driver observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The callee answered (200 OK / media flowing).
    Answered,
    /// The VAD heard the callee start talking.
    SpeechStart,
    /// The VAD heard the callee stop talking.
    SpeechEnd,
    /// A partial transcript of the current utterance.
    Partial(String),
    /// The final transcript of an utterance, with the recognizer's confidence.
    Final {
        /// What was heard.
        text: String,
        /// Recognizer confidence 0..1.
        confidence: f32,
    },
    /// A DTMF digit (RFC 4733 or in-band).
    Dtmf(char),
    /// A prompt's first frame went out; it lasts `duration_ms`.
    PlaybackStarted {
        /// The prompt.
        prompt: PromptId,
        /// Its audio length.
        duration_ms: u64,
    },
    /// A prompt played to its end.
    PlaybackFinished {
        /// The prompt.
        prompt: PromptId,
    },
    /// A beep (steady tone 400-2100 Hz, `beep_min_ms` or more).
    Tone,
    /// Nothing happened; time advanced (call when `poll_timeout` comes due).
    Timeout,
    /// The callee hung up.
    Hangup,
    /// The outcome of a `Transfer`.
    TransferResult {
        /// The agent took the call.
        ok: bool,
    },
    /// The process is shutting down: end politely (closing line, hang up).
    Shutdown,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Play a prompt (the text is rendered; audio comes from `media::tts`).
    Play {
        /// Prompt id (audio file name).
        prompt: PromptId,
        /// The rendered text.
        text: String,
        /// May the caller cut it off (false for disclosures and closing lines).
        interruptible: bool,
        /// Says something about the debt (never before identity).
        mentions_debt: bool,
    },
    /// Stop the prompt now and drop the rest of its audio.
    StopPlaying {
        /// Prompt id.
        prompt: PromptId,
        /// How far into the prompt it was cut, in ms.
        at_ms: u64,
    },
    /// Listen for this question: set the recognizer's grammar to these phrases.
    Listen {
        /// The question (`[listen.<turn>]`).
        turn: Listen,
        /// Expected phrases.
        phrases: Vec<String>,
    },
    /// End the recognizer's current utterance now (it ran too long) and
    /// report its final as usual.
    EndUtterance,
    /// Transfer the call to a collector; report `Event::TransferResult`.
    Transfer {
        /// SIP URI of the agent or queue.
        agent_uri: String,
        /// Headers carrying the case (`X-Duecall-Account`, `-Intent`, `-Case`).
        headers: Vec<(String, String)>,
    },
    /// Hang up.
    Hangup,
}

/// Where the call is.
#[derive(Debug, Clone)]
enum Stage {
    /// Before `Answered`.
    Ringing,
    /// AMD is listening to the greeting.
    Amd(Detector),
    /// A machine: waiting for the beep or silence.
    WaitBeep(BeepWait),
    /// A person: waiting `speak_delay_ms`.
    Delay,
    /// Running the plan.
    Talking,
    /// Over.
    Ended,
}

/// A prompt on the air.
#[derive(Debug, Clone)]
struct Playing {
    prompt: PromptId,
    started: Millis,
    /// May be cut: the prompt allows it and a question follows.
    interruptible: bool,
    /// Index of its turn in the outcome.
    record: usize,
}

/// What the plan waits for.
#[derive(Debug, Clone)]
enum Wait {
    Nothing,
    Playback(Playing),
    Reply(Listen),
    Transfer,
}

/// The caller's current utterance.
#[derive(Debug, Clone, Default)]
struct Speech {
    /// A reply is being spoken (the VAD heard it start and not end).
    speaking: bool,
    /// The VAD still hears sound, but it ran past `max_utterance_ms` and is
    /// no longer taken as a reply.
    overlong: bool,
    started: Option<Millis>,
    ended: Option<Millis>,
    partial: String,
}

/// Words said while a prompt that cannot be cut was playing: kept, and
/// taken as the answer to the question that follows once the prompt ends,
/// when they mean something there.
#[derive(Debug, Clone)]
struct Held {
    /// The transcript.
    heard: String,
    /// The recognizer's confidence.
    asr_confidence: f32,
    start: Millis,
    end: Millis,
    /// The turn of the prompt it was said over.
    record: usize,
}

/// One call's conversation. Create it when the call is placed; feed it the
/// events of that call only.
pub struct Conversation {
    script: Arc<Script>,
    account: Account,
    cfg: DialogueConfig,
    call: CallContext,
    understand: Arc<dyn Understand + Send + Sync>,
    vars: Vars,
    actions: VecDeque<Action>,
    stage: Stage,
    plan: VecDeque<Step>,
    wait: Wait,
    timers: TimerTable,
    listen_announced: bool,
    speech: Speech,
    /// The question the caller is answering.
    question: Option<Listen>,
    misses: u32,
    /// Confirmations the caller said no to in this call (each a mishearing):
    /// the second moves the ladder on, the third gives up.
    denied_confirms: u32,
    last_miss_silent: bool,
    who_count: u32,
    pending_promise: Option<NaiveDate>,
    /// A consequential reply waiting for its "yes": the question it
    /// answered and what it meant.
    pending_confirm: Option<(Listen, Intent)>,
    /// A reply said over a prompt that cannot be cut.
    held: Option<Held>,
    /// The person has heard the name asked for (a prompt with `{name}`
    /// has started): only then does a "yes" confirm identity.
    name_said: bool,
    /// The debt disclosure has started: the gate plays it before the first
    /// debt-bearing prompt otherwise.
    disclosed: bool,
    last_intent: Option<Intent>,
    now: Millis,
    /// Timed lines of what both sides said, for escalation summaries.
    transcript: Vec<String>,
    out: DialogueOutcome,
}

impl Conversation {
    /// A conversation for `account` following `script`. The script's language
    /// should be the account's (the lead picks the script per account).
    pub fn new(
        script: Arc<Script>,
        account: Account,
        cfg: DialogueConfig,
        call: CallContext,
        understand: Arc<dyn Understand + Send + Sync>,
    ) -> Self {
        let lang = script.meta.language;
        let today = call.today();
        let vars = Vars::for_account(&account, lang, today);
        Conversation {
            script,
            account,
            cfg,
            call,
            understand,
            vars,
            actions: VecDeque::new(),
            stage: Stage::Ringing,
            plan: VecDeque::new(),
            wait: Wait::Nothing,
            timers: TimerTable::default(),
            listen_announced: false,
            speech: Speech::default(),
            question: None,
            misses: 0,
            denied_confirms: 0,
            last_miss_silent: false,
            who_count: 0,
            pending_promise: None,
            pending_confirm: None,
            held: None,
            name_said: false,
            disclosed: false,
            last_intent: None,
            now: 0,
            transcript: Vec::new(),
            out: DialogueOutcome {
                turns: Vec::new(),
                route: None,
                amd: AmdResult::not_run(""),
                identity_confirmed: false,
                disposition: None,
                ended_by: None,
                cut_short: None,
                intent: None,
                transfer: None,
                escalations: Vec::new(),
                refused_prompts: Vec::new(),
            },
        }
    }

    /// Texts of every prompt this call can reach whose values are known before
    /// dialling (everything but a promised date and a callback time): hand
    /// them to `PromptAudio::prepare` before the INVITE.
    pub fn texts_to_prepare(&self) -> Vec<(PromptId, String)> {
        self.script
            .prompts()
            .iter()
            .filter(|p| {
                !p.placeholders()
                    .iter()
                    .any(|x| x == "promise_date" || x == "callback_time")
            })
            .map(|p| (p.id, self.script.render(p.id, &self.vars)))
            .collect()
    }

    /// Texts of the prompts that read back a promised date, for every date a
    /// promise can name without going to a person (today to
    /// `max_promise_days` ahead): rendering them before the INVITE keeps
    /// synthesis off the reply's latency path.
    pub fn promise_texts_to_prepare(&self) -> Vec<(PromptId, String)> {
        let today = self.call.today();
        let lang = self.script.meta.language;
        let mut out = Vec::new();
        for d in 0..=self.cfg.routing.max_promise_days.max(0) {
            let Some(date) = today.checked_add_signed(Duration::days(d)) else {
                continue;
            };
            let mut vars = self.vars.clone();
            vars.promise_date = Some(speak::date_words(date, lang, today));
            for p in self.script.prompts() {
                let ph = p.placeholders();
                if ph.iter().any(|x| x == "promise_date")
                    && !ph.iter().any(|x| x == "callback_time")
                {
                    out.push((p.id, self.script.render(p.id, &vars)));
                }
            }
        }
        out
    }

    /// Feeds one event observed at `now` (driver ms; a smaller value than the
    /// last one is taken as the last one). Timers that came due by `now` fire
    /// first. Afterwards drain `poll_action` until `None`.
    pub fn handle(&mut self, now: Millis, event: Event) {
        let now = now.max(self.now);
        self.now = now;
        self.fire_timers(now);
        if matches!(self.stage, Stage::Ended) {
            if let Event::TransferResult { ok } = event {
                if let Some(t) = self.out.transfer.as_mut() {
                    t.ok.get_or_insert(ok);
                }
            }
            return;
        }
        match &event {
            Event::Final { text, .. } if !text.trim().is_empty() => {
                self.transcript
                    .push(format!("[{now:>6} ms] debtor: {text}"));
            }
            Event::Dtmf(d) => self
                .transcript
                .push(format!("[{now:>6} ms] debtor: dtmf {d}")),
            _ => {}
        }
        match event {
            Event::Answered => self.on_answered(now),
            Event::SpeechStart => self.on_speech_start(now),
            Event::SpeechEnd => self.on_speech_end(now),
            Event::Partial(text) => self.on_partial(now, text),
            Event::Final { text, confidence } => self.on_final(now, text, confidence),
            Event::Dtmf(d) => self.on_dtmf(now, d),
            Event::PlaybackStarted {
                prompt,
                duration_ms,
            } => self.on_playback_started(now, prompt, duration_ms),
            Event::PlaybackFinished { prompt } => self.on_playback_finished(now, prompt),
            Event::Tone => self.on_tone(now),
            Event::Timeout => {}
            Event::Hangup => self.on_hangup(now),
            Event::TransferResult { ok } => self.on_transfer_result(now, ok),
            Event::Shutdown => self.on_shutdown(now),
        }
    }

    /// The next thing the driver must do, in order; `None` when there is
    /// nothing more until the next `handle`.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call `handle(t, Event::Timeout)` at the latest (driver ms), if
    /// any timer runs. Ask again after every `handle`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.next_timeout()
    }

    /// True once the call is over for the conversation (hung up, transferred).
    pub fn is_ended(&self) -> bool {
        matches!(self.stage, Stage::Ended)
    }

    /// What happened so far (complete once `is_ended`).
    pub fn outcome(&self) -> DialogueOutcome {
        self.out.clone()
    }

    /// The outcome, consuming the conversation (no copy).
    pub fn into_outcome(self) -> DialogueOutcome {
        self.out
    }

    // ----------------------------------------------------------------- timers

    fn fire_timers(&mut self, now: Millis) {
        // Each firing may arm another timer; a bound keeps a bug from looping.
        for _ in 0..32 {
            let Some((timer, at)) = self.timers.pop_expired(now) else {
                return;
            };
            self.on_timer(timer, at);
        }
    }

    fn on_timer(&mut self, timer: Timer, at: Millis) {
        match timer {
            Timer::CallLimit => self.on_call_limit(at),
            Timer::BargeIn => self.on_barge_in_due(at),
            Timer::Utterance => self.on_utterance_too_long(at),
            Timer::SpeakDelay => self.start_conversation(at),
            Timer::Amd => self.on_amd_due(at),
            Timer::BeepWait => self.leave_message(at),
            Timer::Playback => self.on_playback_overdue(at),
            Timer::NoInput => {
                if let Wait::Reply(turn) = self.wait {
                    self.on_no_input(at, turn);
                }
            }
            Timer::Transfer => self.on_transfer_result(at, false),
        }
    }

    /// Sets what the plan waits for, and the timer that bounds the wait.
    fn set_wait(&mut self, now: Millis, wait: Wait) {
        self.timers.stop(Timer::Playback);
        self.timers.stop(Timer::NoInput);
        self.timers.stop(Timer::Transfer);
        match &wait {
            Wait::Nothing => {}
            Wait::Playback(_) => self
                .timers
                .set(Timer::Playback, now + self.cfg.max_prompt_ms),
            Wait::Reply(_) => {
                if !self.speech.speaking {
                    self.timers.set(Timer::NoInput, now + self.cfg.no_input_ms);
                }
            }
            Wait::Transfer => self
                .timers
                .set(Timer::Transfer, now + self.call.transfer_timeout_ms),
        }
        self.wait = wait;
    }

    // ------------------------------------------------------------ shared bits

    fn local_time(&self, now: Millis) -> NaiveDateTime {
        self.at(now).naive_local()
    }

    fn at(&self, now: Millis) -> DateTime<FixedOffset> {
        self.call.started_at + Duration::milliseconds(now.min(i64::MAX as u64 / 2) as i64)
    }

    fn route_ctx(&self, now: Millis) -> RouteContext<'_> {
        RouteContext {
            account: &self.account,
            now: self.at(now),
            identity_confirmed: self.out.identity_confirmed,
        }
    }

    /// The turn record of the prompt on the air.
    fn playing_record(&mut self) -> Option<&mut super::outcome::Turn> {
        match &self.wait {
            Wait::Playback(p) => self.out.turns.get_mut(p.record),
            _ => None,
        }
    }

    fn unknown(reason: &str) -> Intent {
        Intent::new(IntentKind::Unknown, 0.0, reason)
    }
}
