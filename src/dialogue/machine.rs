//! The call state machine, sans-IO in the manner of str0m's `Rtc`: the driver
//! feeds `handle(now_ms, Event)` (time in milliseconds since the call was
//! answered... or placed: any origin, as long as it only grows), drains
//! `poll_action()` until `None`, and calls `handle(t, Event::Timeout)` when
//! `poll_timeout()` comes due. Owns answering-machine detection, the
//! disclosures, the right-party check, barge-in, the re-ask / DTMF-menu
//! ladder and the per-turn record. It must never play a prompt flagged
//! `mentions_debt` before the right person is confirmed (checked at the one
//! place a prompt starts), never cut off a disclosure, and never do I/O.
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

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime};
use serde::Serialize;

use super::routing::{
    self, promise_acceptable, route_for, RouteContext, RoutingConfig, UnknownRoute,
};
use super::script::{Script, Vars};
use super::speak;
use crate::account::{Account, Language};
use crate::intent::{Intent, IntentKind, Slots};
use crate::outcome::{Disposition, EndedBy, Route, RouteKind};

/// Milliseconds on the driver's clock (any origin; must not go backwards).
pub type Millis = u64;

/// What a reply means. The machine asks; the real classifier
/// (`crate::intent`) is adapted to this by the driver, tests use a small one.
pub trait Understand {
    /// Meaning of a transcript. `at` is the debtor's local date and time of
    /// the reply, so "Friday" or "tomorrow at 3" resolve to a date.
    fn text(&self, text: &str, at: NaiveDateTime) -> Intent;
    /// Meaning of a DTMF digit in the menu for this stage of the call
    /// (before identity: 1 me, 2 not me, 0 agent; after: 1 paid, 2 will pay,
    /// 3 hardship, 4 wrong number, 0 agent).
    fn digit(&self, digit: char, identity_confirmed: bool) -> Intent;
}

/// What to do when a machine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoicemailMode {
    /// Wait for the beep (or silence) and leave the limited-content message.
    LeaveMessage,
    /// Hang up at once.
    HangUp,
}

/// How to treat an `uncertain` AMD verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UncertainAs {
    /// Start the conversation (the opening carries no debt, so this is safe).
    Person,
    /// Treat it as a machine.
    Machine,
}

/// Answering-machine detection, starting from Asterisk `AMD()` defaults
/// (SPEECH.md "Turn-taking numbers"). Speech timing comes from the driver's
/// VAD (`SpeechStart` / `SpeechEnd`), beeps from its tone detector (`Tone`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AmdConfig {
    /// Run detection at all (off: every answer is a person).
    pub enabled: bool,
    /// No speech this long after answer: uncertain (Asterisk says machine).
    pub initial_silence_ms: u64,
    /// Voiced time in the greeting at or above this: machine.
    pub greeting_ms: u64,
    /// Silence this long after a short greeting: person.
    pub after_greeting_silence_ms: u64,
    /// No verdict after this long: uncertain.
    pub total_analysis_ms: u64,
    /// A voiced stretch shorter than this is noise, not a word.
    pub min_word_ms: u64,
    /// Gap the VAD needs to split words (informational: the VAD applies it).
    pub between_words_silence_ms: u64,
    /// More words than this in the greeting: machine.
    pub max_words: u32,
    /// A transcript of the greeting with more words than this: machine
    /// (jambonz uses 9). Mandarin counts two characters as a word.
    pub max_transcript_words: u32,
    /// After a machine verdict: silence this long means the greeting is over.
    pub message_after_silence_ms: u64,
    /// After a machine verdict: leave the message after this long at most.
    pub max_beep_wait_ms: u64,
    /// What `uncertain` means.
    pub uncertain_as: UncertainAs,
}

impl Default for AmdConfig {
    fn default() -> Self {
        AmdConfig {
            enabled: true,
            initial_silence_ms: 2500,
            greeting_ms: 1500,
            after_greeting_silence_ms: 800,
            total_analysis_ms: 5000,
            min_word_ms: 100,
            between_words_silence_ms: 50,
            max_words: 3,
            max_transcript_words: 9,
            message_after_silence_ms: 2000,
            max_beep_wait_ms: 20_000,
            uncertain_as: UncertainAs::Person,
        }
    }
}

/// Everything the conversation needs besides the script and the account.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DialogueConfig {
    /// Silence after a question before re-asking (5000).
    pub no_input_ms: u64,
    /// How long the caller must talk over a prompt before it stops (300).
    pub barge_in_min_speech_ms: u64,
    /// Pause between the person's greeting (or the answer) and the opening (0).
    pub speak_delay_ms: u64,
    /// Answering-machine detection.
    pub amd: AmdConfig,
    /// What to do on a machine.
    pub voicemail: VoicemailMode,
    /// Intents below this confidence are `unknown` (0.5).
    pub intent_threshold: f32,
    /// When the call was answered, in the debtor's local offset; `today` is its date.
    pub started_at: DateTime<FixedOffset>,
    /// Routes per intent.
    pub routing: RoutingConfig,
    /// Where live transfers go when the account names no `agent_uri`.
    pub agent_uri: Option<String>,
    /// Case id for the `X-Duecall-Case` header (default: the account id).
    pub case_id: Option<String>,
    /// How often "who is calling?" is answered before it counts as unclear (2).
    pub max_who_is_calling: u32,
    /// A transfer with no result after this long has failed (30000).
    pub transfer_timeout_ms: u64,
}

impl DialogueConfig {
    /// Defaults (SPEECH.md, COLLECTIONS.md) for a call answered at `started_at`.
    pub fn new(started_at: DateTime<FixedOffset>) -> Self {
        DialogueConfig {
            no_input_ms: 5000,
            barge_in_min_speech_ms: 300,
            speak_delay_ms: 0,
            amd: AmdConfig::default(),
            voicemail: VoicemailMode::LeaveMessage,
            intent_threshold: 0.5,
            started_at,
            routing: RoutingConfig::default(),
            agent_uri: None,
            case_id: None,
            max_who_is_calling: 2,
            transfer_timeout_ms: 30_000,
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
    /// A reply whose meaning the driver already knows (bypasses `Understand`).
    Intent(Intent),
    /// A DTMF digit (RFC 4733 or in-band).
    Dtmf(char),
    /// A prompt played to its end.
    PlaybackFinished {
        /// The prompt's id.
        prompt_id: String,
    },
    /// A beep (steady tone 400-2100 Hz, 200 ms or more).
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
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Play a prompt (the text is rendered; audio comes from `media::tts`).
    Play {
        /// Prompt id (audio file name).
        prompt_id: String,
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
        prompt_id: String,
        /// How far into the prompt it was cut, in ms.
        at_ms: u64,
    },
    /// Listen for this turn: set the recognizer's grammar to these phrases.
    Listen {
        /// Turn id (`[listen.<turn>]`).
        turn: String,
        /// Expected phrases.
        phrases: Vec<String>,
    },
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

/// The AMD verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AmdVerdict {
    /// Not run (disabled, or the call never got that far).
    NotRun,
    /// A person.
    Human,
    /// An answering machine or voicemail.
    Machine,
    /// Could not tell.
    Uncertain,
}

/// What AMD decided and from what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmdResult {
    /// The verdict.
    pub verdict: AmdVerdict,
    /// `short-greeting`, `long-greeting`, `max-words`, `transcript-words`,
    /// `beep`, `initial-silence`, `too-long`, `disabled`, `hung-up`.
    pub reason: String,
    /// When it was decided (driver ms).
    pub decided_at_ms: Option<u64>,
    /// Words (voiced stretches of `min_word_ms` or more) counted.
    pub words: u32,
    /// Voiced ms in the greeting.
    pub greeting_ms: u64,
}

/// One prompt and what was heard after it (ARCHITECTURE.md `turns`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnRecord {
    /// Prompt id.
    pub prompt: String,
    /// When the prompt started (driver ms).
    pub prompt_start_ms: u64,
    /// How long it played.
    pub played_ms: u64,
    /// Played to the end.
    pub finished: bool,
    /// Where barge-in (or a hang-up) cut it, ms into the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_at_ms: Option<u64>,
    /// The reply acted upon (text, or `dtmf:<digit>`).
    pub heard: Option<String>,
    /// Its intent.
    pub intent: Option<IntentKind>,
    /// The intent's confidence.
    pub confidence: Option<f32>,
    /// The recognizer's confidence in the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asr_confidence: Option<f32>,
    /// Why the classifier chose the intent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Start of the reply's speech (driver ms).
    pub start_ms: Option<u64>,
    /// End of the reply's speech (driver ms).
    pub end_ms: Option<u64>,
    /// Speech heard during this prompt that was not acted on (fillers,
    /// talk over a disclosure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// A live transfer attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferRecord {
    /// Where to.
    pub agent_uri: String,
    /// The result (None: the call ended before one came).
    pub ok: Option<bool>,
}

/// A case handed to the collectors' queue: the one escalation type, decided
/// by the conversation and stored as given.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Escalation {
    /// Why (`hardship`, `transfer-failed`, `unknown`, ...).
    pub reason: String,
    /// Account, reason, identity, intent and the timed transcript of what
    /// was said on both sides, for the collector who picks it up.
    pub summary: String,
    /// When it was raised (driver ms).
    pub at_ms: u64,
}

/// Everything the call decided, for the outcome JSON and the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DialogueOutcome {
    /// Prompts and replies in order.
    pub turns: Vec<TurnRecord>,
    /// The case's route (None until the conversation ends, or if never answered).
    pub route: Option<Route>,
    /// AMD result.
    pub amd: AmdResult,
    /// Was the right person confirmed?
    pub identity_confirmed: bool,
    /// `answered` or `voicemail` once answered.
    pub disposition: Option<Disposition>,
    /// Who ended the call.
    pub ended_by: Option<EndedBy>,
    /// The last intent acted upon.
    pub intent: Option<IntentKind>,
    /// A live transfer, if one was tried.
    pub transfer: Option<TransferRecord>,
    /// Every escalation of the case: each carries its timed transcript. An
    /// `agent` route that no collector took live always has one.
    pub escalations: Vec<Escalation>,
    /// Prompts the debt guard refused to play (must stay empty).
    pub refused_prompts: Vec<String>,
}

impl DialogueOutcome {
    /// The attempt's disposition, given the one the wire reported: a call
    /// answered by a machine is `voicemail`; anything else stands.
    pub fn attempt_disposition(&self, wire: Disposition) -> Disposition {
        if wire == Disposition::Answered && self.disposition == Some(Disposition::Voicemail) {
            Disposition::Voicemail
        } else {
            wire
        }
    }

    /// Did the callee talk with us (a conversation, for the caps)? A person
    /// answered and at least one reply was heard (words or a digit).
    pub fn was_conversation(&self, wire: Disposition) -> bool {
        self.attempt_disposition(wire) == Disposition::Answered
            && self.turns.iter().any(|t| t.heard.is_some())
    }
}

/// A listening turn: what the last question asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Identity,
    Reminder,
    AskDate,
    ConfirmPromise,
    BetterTime,
}

impl Turn {
    fn id(self) -> &'static str {
        match self {
            Turn::Identity => "identity",
            Turn::Reminder => "reminder",
            Turn::AskDate => "ask_date",
            Turn::ConfirmPromise => "confirm_promise",
            Turn::BetterTime => "better_time",
        }
    }
    fn reask(self) -> &'static str {
        match self {
            Turn::Identity => "reask_identity",
            Turn::Reminder => "reask_reminder",
            Turn::AskDate => "reask_date",
            Turn::ConfirmPromise => "reask_confirm",
            Turn::BetterTime => "reask_better_time",
        }
    }
    fn menu(self) -> Option<&'static str> {
        match self {
            Turn::Identity => Some("menu_identity"),
            Turn::Reminder => Some("menu_reminder"),
            _ => None,
        }
    }
    /// The question to ask again after answering "who is calling?".
    fn question(self) -> &'static str {
        match self {
            Turn::Identity => "right_party",
            Turn::Reminder => "reminder",
            Turn::AskDate => "ask_date",
            Turn::ConfirmPromise => "confirm_promise",
            Turn::BetterTime => "ask_better_time",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Play(&'static str),
    Listen(Turn),
    Transfer,
    Escalate(String),
    Hangup,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Before `Answered`.
    Ringing,
    /// AMD is listening to the greeting.
    Amd,
    /// A machine: waiting for the beep or silence.
    WaitBeep,
    /// A person: waiting `speak_delay_ms`.
    Delay,
    /// Running the plan.
    Talking,
    /// Over.
    Ended,
}

#[derive(Debug, Clone)]
struct Playing {
    prompt: &'static str,
    started: Millis,
    /// May be cut: the prompt allows it and a question follows.
    interruptible: bool,
    record: usize,
}

#[derive(Debug, Clone)]
enum Wait {
    Nothing,
    Playback(Playing),
    Reply {
        turn: Turn,
        deadline: Option<Millis>,
    },
    Transfer {
        deadline: Millis,
    },
}

#[derive(Debug, Clone, Default)]
struct Speech {
    speaking: bool,
    started: Option<Millis>,
    ended: Option<Millis>,
    partial: String,
}

#[derive(Debug, Clone, Default)]
struct AmdState {
    answered: Millis,
    first_speech: Option<Millis>,
    in_speech_since: Option<Millis>,
    voiced: u64,
    words: u32,
    last_end: Option<Millis>,
    beep_wait_since: Millis,
    silence_deadline: Option<Millis>,
}

/// One call's conversation. Create it when the call is placed; feed it the
/// events of that call only.
pub struct Conversation {
    script: Arc<Script>,
    account: Account,
    cfg: DialogueConfig,
    understand: Arc<dyn Understand + Send + Sync>,
    vars: Vars,
    actions: VecDeque<Action>,
    stage: Stage,
    plan: VecDeque<Step>,
    wait: Wait,
    listen_announced: bool,
    speech: Speech,
    barge_deadline: Option<Millis>,
    delay_until: Option<Millis>,
    amd_state: AmdState,
    turn: Option<Turn>,
    misses: u32,
    last_miss_silent: bool,
    who_count: u32,
    pending_promise: Option<NaiveDate>,
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
        understand: Arc<dyn Understand + Send + Sync>,
    ) -> Self {
        let lang = script.meta.language;
        let today = cfg.today();
        let vars = Vars {
            name: Some(account.name.clone()),
            amount: Some(speak::amount_words(
                account.amount,
                account.currency.as_deref(),
                lang,
            )),
            due_date: Some(speak::date_words(account.due_date, lang, today)),
            promise_date: None,
            callback_time: None,
        };
        Conversation {
            script,
            account,
            cfg,
            understand,
            vars,
            actions: VecDeque::new(),
            stage: Stage::Ringing,
            plan: VecDeque::new(),
            wait: Wait::Nothing,
            listen_announced: false,
            speech: Speech::default(),
            barge_deadline: None,
            delay_until: None,
            amd_state: AmdState::default(),
            turn: None,
            misses: 0,
            last_miss_silent: false,
            who_count: 0,
            pending_promise: None,
            last_intent: None,
            now: 0,
            transcript: Vec::new(),
            out: DialogueOutcome {
                turns: Vec::new(),
                route: None,
                amd: AmdResult {
                    verdict: AmdVerdict::NotRun,
                    reason: String::new(),
                    decided_at_ms: None,
                    words: 0,
                    greeting_ms: 0,
                },
                identity_confirmed: false,
                disposition: None,
                ended_by: None,
                intent: None,
                transfer: None,
                escalations: Vec::new(),
                refused_prompts: Vec::new(),
            },
        }
    }

    /// Texts of every prompt this call can reach whose values are known before
    /// dialling (everything but a promised date and a callback time), as
    /// `(prompt_id, text)`: hand them to `PromptAudio::prepare` before the INVITE.
    pub fn texts_to_prepare(&self) -> Vec<(String, String)> {
        self.script
            .say
            .values()
            .filter(|p| {
                !p.placeholders()
                    .iter()
                    .any(|x| x == "promise_date" || x == "callback_time")
            })
            .filter_map(|p| {
                self.script
                    .render(&p.id, &self.vars)
                    .map(|t| (p.id.clone(), t))
            })
            .collect()
    }

    /// Texts of the prompts that read back a promised date, for every date a
    /// promise can name without going to a person (today to
    /// `max_promise_days` ahead): rendering them before the INVITE keeps
    /// synthesis off the reply's latency path.
    pub fn promise_texts_to_prepare(&self) -> Vec<(String, String)> {
        let today = self.cfg.today();
        let lang = self.script.meta.language;
        let mut out = Vec::new();
        for d in 0..=self.cfg.routing.max_promise_days.max(0) {
            let Some(date) = today.checked_add_signed(Duration::days(d)) else {
                continue;
            };
            let mut vars = self.vars.clone();
            vars.promise_date = Some(speak::date_words(date, lang, today));
            for p in self.script.say.values() {
                let ph = p.placeholders();
                if ph.iter().any(|x| x == "promise_date")
                    && !ph.iter().any(|x| x == "callback_time")
                {
                    if let Some(t) = self.script.render(&p.id, &vars) {
                        out.push((p.id.clone(), t));
                    }
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
        if self.stage == Stage::Ended {
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
            Event::Intent(intent) => {
                let heard = intent.reason.clone();
                self.on_meaning(now, heard, None, intent);
            }
            Event::Dtmf(d) => self.on_dtmf(now, d),
            Event::PlaybackFinished { prompt_id } => self.on_playback_finished(now, &prompt_id),
            Event::Tone => self.on_tone(now),
            Event::Timeout => {}
            Event::Hangup => self.on_hangup(now),
            Event::TransferResult { ok } => self.on_transfer_result(now, ok),
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
        if self.stage == Stage::Ended {
            return None;
        }
        let mut t: Vec<Millis> = Vec::new();
        t.extend(self.barge_deadline);
        t.extend(self.delay_until);
        match &self.wait {
            Wait::Reply { deadline, .. } => t.extend(*deadline),
            Wait::Transfer { deadline } => t.push(*deadline),
            _ => {}
        }
        match self.stage {
            Stage::Amd => t.extend(self.amd_deadlines().into_iter().map(|(d, _)| d)),
            Stage::WaitBeep => {
                t.extend(self.amd_state.silence_deadline);
                t.push(self.amd_state.beep_wait_since + self.cfg.amd.max_beep_wait_ms);
            }
            _ => {}
        }
        t.into_iter().min()
    }

    /// True once the call is over for the conversation (hung up, transferred).
    pub fn is_ended(&self) -> bool {
        self.stage == Stage::Ended
    }

    /// What happened so far (complete once `is_ended`).
    pub fn outcome(&self) -> DialogueOutcome {
        self.out.clone()
    }

    // ----------------------------------------------------------------- timers

    fn fire_timers(&mut self, now: Millis) {
        // Each firing may arm another timer; a bound keeps a bug from looping.
        for _ in 0..32 {
            let Some(due) = self.poll_timeout() else {
                return;
            };
            if due > now {
                return;
            }
            self.fire_one(due);
        }
    }

    fn fire_one(&mut self, at: Millis) {
        if self.barge_deadline.is_some_and(|d| d <= at) {
            self.barge_deadline = None;
            let filler =
                !self.speech.partial.is_empty() && self.script.is_backchannel(&self.speech.partial);
            if self.speech.speaking && !filler {
                self.barge(at);
            }
            return;
        }
        if self.delay_until.is_some_and(|d| d <= at) {
            self.delay_until = None;
            self.start_conversation(at);
            return;
        }
        match self.stage {
            Stage::Amd => {
                if let Some((_, verdict)) = self
                    .amd_deadlines()
                    .into_iter()
                    .filter(|(d, _)| *d <= at)
                    .min_by_key(|(d, _)| *d)
                {
                    let (v, reason) = verdict;
                    self.amd_decide(at, v, reason);
                }
                return;
            }
            Stage::WaitBeep => {
                self.amd_state.silence_deadline = None;
                self.leave_message(at);
                return;
            }
            _ => {}
        }
        match self.wait.clone() {
            Wait::Reply {
                turn,
                deadline: Some(d),
            } if d <= at => self.on_no_input(at, turn),
            Wait::Transfer { deadline } if deadline <= at => self.on_transfer_result(at, false),
            _ => {}
        }
    }

    // -------------------------------------------------------------------- AMD

    fn on_answered(&mut self, now: Millis) {
        if self.stage != Stage::Ringing {
            return;
        }
        self.out.disposition = Some(Disposition::Answered);
        if self.cfg.amd.enabled {
            self.stage = Stage::Amd;
            self.amd_state = AmdState {
                answered: now,
                ..AmdState::default()
            };
        } else {
            self.out.amd = AmdResult {
                verdict: AmdVerdict::NotRun,
                reason: "disabled".into(),
                decided_at_ms: None,
                words: 0,
                greeting_ms: 0,
            };
            self.begin_person(now);
        }
    }

    /// Pending AMD deadlines with the verdict each would give.
    fn amd_deadlines(&self) -> Vec<(Millis, (AmdVerdict, &'static str))> {
        let a = &self.amd_state;
        let c = &self.cfg.amd;
        let mut d = vec![(
            a.answered + c.total_analysis_ms,
            (AmdVerdict::Uncertain, "too-long"),
        )];
        match (a.first_speech, a.in_speech_since) {
            (None, _) => d.push((
                a.answered + c.initial_silence_ms,
                (AmdVerdict::Uncertain, "initial-silence"),
            )),
            (Some(_), Some(since)) => {
                d.push((
                    since + c.greeting_ms.saturating_sub(a.voiced),
                    (AmdVerdict::Machine, "long-greeting"),
                ));
            }
            (Some(_), None) => {
                if let (Some(end), true) = (a.last_end, a.words > 0) {
                    d.push((
                        end + c.after_greeting_silence_ms,
                        (AmdVerdict::Human, "short-greeting"),
                    ));
                }
            }
        }
        d
    }

    fn amd_decide(&mut self, now: Millis, verdict: AmdVerdict, reason: &str) {
        let voiced_now =
            self.amd_state.voiced + self.amd_state.in_speech_since.map(|s| now - s).unwrap_or(0);
        self.out.amd = AmdResult {
            verdict,
            reason: reason.to_string(),
            decided_at_ms: Some(now),
            words: self.amd_state.words,
            greeting_ms: voiced_now,
        };
        let machine = match verdict {
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
                if reason == "beep" {
                    self.leave_message(now);
                } else {
                    self.stage = Stage::WaitBeep;
                    self.amd_state.beep_wait_since = now;
                    self.amd_state.silence_deadline = if self.amd_state.in_speech_since.is_some() {
                        None
                    } else {
                        Some(now + self.cfg.amd.message_after_silence_ms)
                    };
                }
            }
        }
    }

    fn leave_message(&mut self, now: Millis) {
        self.stage = Stage::Talking;
        self.set_plan(now, vec![Step::Play("voicemail"), Step::Hangup]);
    }

    fn begin_person(&mut self, now: Millis) {
        if self.cfg.speak_delay_ms > 0 {
            self.stage = Stage::Delay;
            self.delay_until = Some(now + self.cfg.speak_delay_ms);
        } else {
            self.start_conversation(now);
        }
    }

    fn start_conversation(&mut self, now: Millis) {
        self.stage = Stage::Talking;
        // The greeting was the person's "hello?", not a reply to us.
        self.speech = Speech {
            speaking: self.speech.speaking,
            ..Speech::default()
        };
        self.turn = Some(Turn::Identity);
        self.set_plan(
            now,
            vec![
                Step::Play("opening"),
                Step::Play("right_party"),
                Step::Listen(Turn::Identity),
            ],
        );
    }

    fn amd_words_in(&self, text: &str) -> u32 {
        match self.script.meta.language {
            Language::En => text.split_whitespace().count() as u32,
            Language::Zh => {
                (text.chars().filter(|c| c.is_alphanumeric()).count() as u32).div_ceil(2)
            }
        }
    }

    fn on_tone(&mut self, now: Millis) {
        match self.stage {
            Stage::Amd => self.amd_decide(now, AmdVerdict::Machine, "beep"),
            Stage::WaitBeep => self.leave_message(now),
            _ => {}
        }
    }

    // ---------------------------------------------------------------- speech

    fn on_speech_start(&mut self, now: Millis) {
        self.speech.speaking = true;
        self.speech.started = Some(now);
        self.speech.partial.clear();
        match self.stage {
            Stage::Amd => {
                self.amd_state.first_speech.get_or_insert(now);
                self.amd_state.in_speech_since = Some(now);
                return;
            }
            Stage::WaitBeep => {
                self.amd_state.in_speech_since = Some(now);
                self.amd_state.silence_deadline = None;
                return;
            }
            _ => {}
        }
        match &mut self.wait {
            Wait::Playback(p) if p.interruptible => {
                self.barge_deadline = Some(now + self.cfg.barge_in_min_speech_ms);
            }
            Wait::Reply { deadline, .. } => *deadline = None,
            _ => {}
        }
    }

    fn on_speech_end(&mut self, now: Millis) {
        self.speech.speaking = false;
        self.speech.ended = Some(now);
        // Speech shorter than the barge-in minimum (a cough, "mhm") never cuts.
        self.barge_deadline = None;
        match self.stage {
            Stage::Amd => {
                if let Some(since) = self.amd_state.in_speech_since.take() {
                    let seg = now - since;
                    self.amd_state.voiced += seg;
                    if seg >= self.cfg.amd.min_word_ms {
                        self.amd_state.words += 1;
                    }
                    self.amd_state.last_end = Some(now);
                    if self.amd_state.words > self.cfg.amd.max_words {
                        self.amd_decide(now, AmdVerdict::Machine, "max-words");
                    } else if self.amd_state.voiced >= self.cfg.amd.greeting_ms {
                        self.amd_decide(now, AmdVerdict::Machine, "long-greeting");
                    }
                }
                return;
            }
            Stage::WaitBeep => {
                self.amd_state.in_speech_since = None;
                self.amd_state.silence_deadline = Some(now + self.cfg.amd.message_after_silence_ms);
                return;
            }
            _ => {}
        }
        if let Wait::Reply { deadline, .. } = &mut self.wait {
            // The final is on its way; if it never comes, this is silence.
            *deadline = Some(now + self.cfg.no_input_ms);
        }
    }

    fn on_partial(&mut self, now: Millis, text: String) {
        if self.stage == Stage::Amd {
            if self.amd_words_in(&text) > self.cfg.amd.max_transcript_words {
                self.amd_decide(now, AmdVerdict::Machine, "transcript-words");
            }
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
            && self.barge_deadline.is_none()
            && matches!(&self.wait, Wait::Playback(p) if p.interruptible)
            && !self.script.is_backchannel(&self.speech.partial)
        {
            self.barge(now);
        }
    }

    fn on_final(&mut self, now: Millis, text: String, confidence: f32) {
        match self.stage {
            Stage::Amd => {
                if self.amd_words_in(&text) > self.cfg.amd.max_transcript_words {
                    self.amd_decide(now, AmdVerdict::Machine, "transcript-words");
                }
                return;
            }
            Stage::Talking => {}
            _ => return,
        }
        match self.wait.clone() {
            Wait::Playback(p) => {
                if !p.interruptible || self.script.is_backchannel(&text) {
                    if let Some(r) = self.out.turns.get_mut(p.record) {
                        r.ignored.push(text);
                    }
                    return;
                }
                self.barge(now);
            }
            Wait::Reply { .. } => {}
            _ => return,
        }
        if text.trim().is_empty() {
            return;
        }
        let at = self.local_time(now);
        let intent = self.understand.text(&text, at);
        self.on_meaning(now, text, Some(confidence), intent);
    }

    fn on_dtmf(&mut self, now: Millis, digit: char) {
        if self.stage != Stage::Talking {
            return;
        }
        match self.wait.clone() {
            Wait::Playback(p) if p.interruptible => self.barge(now),
            Wait::Reply { .. } => {}
            Wait::Playback(p) => {
                if let Some(r) = self.out.turns.get_mut(p.record) {
                    r.ignored.push(format!("dtmf:{digit}"));
                }
                return;
            }
            _ => return,
        }
        let intent = self.understand.digit(digit, self.out.identity_confirmed);
        self.speech.started = Some(now);
        self.speech.ended = Some(now);
        self.on_meaning(now, format!("dtmf:{digit}"), None, intent);
    }

    /// Stops the playing prompt (caller talked over it) and drops the rest of
    /// the plan up to the question it led to.
    fn barge(&mut self, now: Millis) {
        self.barge_deadline = None;
        let Wait::Playback(p) = self.wait.clone() else {
            return;
        };
        let at_ms = now - p.started;
        self.actions.push_back(Action::StopPlaying {
            prompt_id: p.prompt.to_string(),
            at_ms,
        });
        if let Some(r) = self.out.turns.get_mut(p.record) {
            r.played_ms = at_ms;
            r.finished = false;
            r.cut_at_ms = Some(at_ms);
        }
        while let Some(step) = self.plan.front() {
            if let Step::Listen(turn) = step {
                let turn = *turn;
                self.plan.pop_front();
                self.turn = Some(turn);
                self.wait = Wait::Reply {
                    turn,
                    deadline: None,
                };
                if !self.speech.speaking {
                    self.wait = Wait::Reply {
                        turn,
                        deadline: Some(now + self.cfg.no_input_ms),
                    };
                }
                return;
            }
            self.plan.pop_front();
        }
        self.wait = Wait::Nothing;
    }

    fn on_playback_finished(&mut self, now: Millis, prompt_id: &str) {
        let Wait::Playback(p) = self.wait.clone() else {
            return;
        };
        if p.prompt != prompt_id {
            return;
        }
        if let Some(r) = self.out.turns.get_mut(p.record) {
            r.played_ms = now - p.started;
            r.finished = true;
        }
        self.barge_deadline = None;
        self.wait = Wait::Nothing;
        self.run(now);
    }

    fn on_no_input(&mut self, now: Millis, turn: Turn) {
        self.record_reply(None, None, None, None, now, now);
        self.miss(now, turn, true);
    }

    fn on_hangup(&mut self, now: Millis) {
        if let Wait::Playback(p) = self.wait.clone() {
            if let Some(r) = self.out.turns.get_mut(p.record) {
                r.played_ms = now - p.started;
                r.finished = false;
                r.cut_at_ms = Some(now - p.started);
            }
        }
        if self.stage == Stage::Amd {
            self.out.amd = AmdResult {
                verdict: AmdVerdict::Uncertain,
                reason: "hung-up".into(),
                decided_at_ms: Some(now),
                words: self.amd_state.words,
                greeting_ms: self.amd_state.voiced,
            };
        }
        if let Wait::Transfer { .. } = self.wait {
            self.escalate(now, "hung-up-during-transfer");
        }
        if self.out.route.is_none() && self.stage != Stage::Ringing {
            let ctx = self.route_ctx(now);
            self.out.route = Some(routing::route_hung_up(&ctx, &self.cfg.routing));
        }
        self.finish(now, EndedBy::Them);
    }

    fn on_transfer_result(&mut self, now: Millis, ok: bool) {
        if !matches!(self.wait, Wait::Transfer { .. }) {
            return;
        }
        self.wait = Wait::Nothing;
        if let Some(t) = self.out.transfer.as_mut() {
            t.ok = Some(ok);
        }
        if ok {
            self.finish(now, EndedBy::Us);
        } else {
            self.escalate(now, "transfer-failed");
            self.set_plan(now, vec![Step::Play("transfer_failed"), Step::Hangup]);
        }
    }

    // --------------------------------------------------------------- replies

    fn on_meaning(
        &mut self,
        now: Millis,
        heard: String,
        asr_confidence: Option<f32>,
        mut intent: Intent,
    ) {
        let Wait::Reply { turn, .. } = self.wait.clone() else {
            return;
        };
        if intent.confidence < self.cfg.intent_threshold && intent.kind != IntentKind::Unknown {
            intent.reason = format!(
                "{} below threshold {}: {}",
                intent.kind.as_str(),
                self.cfg.intent_threshold,
                intent.reason
            );
            intent.kind = IntentKind::Unknown;
        }
        let start = self.speech.started.unwrap_or(now);
        let end = self.speech.ended.filter(|e| *e >= start).unwrap_or(now);
        self.record_reply(
            Some(heard),
            Some(&intent),
            asr_confidence,
            Some(intent.reason.clone()),
            start,
            end,
        );
        self.speech.started = None;
        self.speech.ended = None;
        self.speech.partial.clear();
        self.wait = Wait::Nothing;
        self.out.intent = Some(intent.kind);
        self.last_intent = Some(intent.clone());
        self.dispatch(now, turn, intent);
    }

    fn record_reply(
        &mut self,
        heard: Option<String>,
        intent: Option<&Intent>,
        asr_confidence: Option<f32>,
        reason: Option<String>,
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
        r.reason = reason.or_else(|| Some("no input".to_string()));
        r.start_ms = Some(start);
        r.end_ms = Some(end);
    }

    fn dispatch(&mut self, now: Millis, turn: Turn, intent: Intent) {
        use IntentKind as K;
        let confirmed = self.out.identity_confirmed;
        match intent.kind {
            K::WrongNumber => self.end_with(now, &intent, "wrong_number"),
            K::StopCalling => self.end_with(now, &intent, "stop_calling"),
            K::RequestAgent => {
                self.decide(now, &intent);
                let mut steps = vec![Step::Play("request_agent")];
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
                self.end_with(now, &intent, "callback_confirm");
            }
            K::CallbackLater | K::NotAvailable => {
                if turn == Turn::BetterTime {
                    self.miss(now, turn, false);
                } else {
                    let prompt = if confirmed {
                        "ask_better_time"
                    } else {
                        "not_available"
                    };
                    self.ask(now, Turn::BetterTime, prompt);
                }
            }
            K::WhoIsCalling => {
                self.who_count += 1;
                if self.who_count > self.cfg.max_who_is_calling {
                    self.miss(now, turn, false);
                } else if confirmed {
                    self.set_plan(
                        now,
                        vec![
                            Step::Play("who_is_calling_after"),
                            Step::Play(turn.question()),
                            Step::Listen(turn),
                        ],
                    );
                } else {
                    // The answer ends with the right-party question itself.
                    self.turn = Some(Turn::Identity);
                    self.set_plan(
                        now,
                        vec![Step::Play("who_is_calling"), Step::Listen(Turn::Identity)],
                    );
                }
            }
            K::IdentityConfirmed if !confirmed => {
                self.out.identity_confirmed = true;
                self.turn = Some(Turn::Reminder);
                self.misses = 0;
                self.set_plan(
                    now,
                    vec![
                        Step::Play("debt_disclosure"),
                        Step::Play("reminder"),
                        Step::Listen(Turn::Reminder),
                    ],
                );
            }
            K::IdentityDenied if !confirmed => {
                if turn == Turn::BetterTime {
                    self.miss(now, turn, false);
                } else {
                    self.end_with(now, &intent, "identity_denied");
                }
            }
            // Debt-bearing replies from someone not yet confirmed: ask who they are first.
            K::AlreadyPaid | K::PromiseToPay | K::Hardship | K::Dispute if !confirmed => {
                self.miss_with(now, Turn::Identity, "identity_first");
            }
            K::AlreadyPaid => self.end_with(now, &intent, "ack_paid"),
            K::Hardship => {
                self.decide(now, &intent);
                let mut steps = vec![Step::Play("ack_hardship")];
                steps.extend(self.agent_steps("hardship"));
                self.set_plan(now, steps);
            }
            K::Dispute => {
                self.decide(now, &intent);
                let mut steps = vec![Step::Play("ack_dispute")];
                steps.extend(self.agent_steps("dispute"));
                self.set_plan(now, steps);
            }
            K::PromiseToPay => self.on_promise(now, turn, intent.slots.date),
            K::IdentityConfirmed if turn == Turn::ConfirmPromise => {
                let mut promise = intent.clone();
                promise.kind = K::PromiseToPay;
                promise.slots = Slots {
                    date: self.pending_promise,
                    time: None,
                };
                self.end_with(now, &promise, "promise_recorded");
            }
            K::IdentityDenied if turn == Turn::ConfirmPromise => {
                self.pending_promise = None;
                self.misses = 0;
                self.ask(now, Turn::AskDate, "ask_date");
            }
            K::IdentityConfirmed | K::IdentityDenied | K::Unknown => self.miss(now, turn, false),
        }
    }

    fn on_promise(&mut self, now: Millis, turn: Turn, date: Option<NaiveDate>) {
        let today = self.local_time(now).date();
        match date {
            None => {
                if turn == Turn::AskDate {
                    self.miss(now, turn, false);
                } else {
                    self.misses = 0;
                    self.ask(now, Turn::AskDate, "ask_date");
                }
            }
            Some(d) if d < today => {
                if turn == Turn::AskDate {
                    self.miss(now, turn, false);
                } else {
                    self.misses = 0;
                    self.ask(now, Turn::AskDate, "ask_date");
                }
            }
            Some(d) if !promise_acceptable(d, today, &self.cfg.routing) => {
                let intent = Intent {
                    kind: IntentKind::PromiseToPay,
                    confidence: 1.0,
                    reason: "promised date beyond the limit".into(),
                    slots: Slots {
                        date: Some(d),
                        time: None,
                    },
                };
                self.decide(now, &intent);
                let mut steps = vec![Step::Play("promise_too_far")];
                steps.extend(self.agent_steps("promise-too-far"));
                self.set_plan(now, steps);
            }
            Some(d) => {
                self.pending_promise = Some(d);
                self.vars.promise_date =
                    Some(speak::date_words(d, self.script.meta.language, today));
                if turn != Turn::ConfirmPromise {
                    self.misses = 0;
                }
                self.ask(now, Turn::ConfirmPromise, "confirm_promise");
            }
        }
    }

    /// Plays `prompt` and listens for `turn`.
    fn ask(&mut self, now: Millis, turn: Turn, prompt: &'static str) {
        if self.turn != Some(turn) {
            self.misses = 0;
        }
        self.turn = Some(turn);
        self.set_plan(now, vec![Step::Play(prompt), Step::Listen(turn)]);
    }

    fn miss(&mut self, now: Millis, turn: Turn, silent: bool) {
        self.last_miss_silent = silent;
        self.miss_with(now, turn, turn.reask());
    }

    /// The unclear-reply ladder: re-ask once, then the DTMF menu (where the
    /// turn has one), then route as unknown.
    fn miss_with(&mut self, now: Millis, turn: Turn, reask: &'static str) {
        if self.turn != Some(turn) {
            self.misses = 0;
        }
        self.turn = Some(turn);
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
    fn give_up(&mut self, now: Millis, turn: Turn) {
        match turn {
            Turn::AskDate | Turn::ConfirmPromise => {
                let reason = if turn == Turn::AskDate {
                    "promise-without-date"
                } else {
                    "promise-unconfirmed"
                };
                self.out.route = Some(Route::agent(reason));
                let steps = self.agent_steps(reason);
                self.set_plan(now, steps);
            }
            Turn::BetterTime => {
                let kind = if self.out.identity_confirmed {
                    IntentKind::CallbackLater
                } else {
                    IntentKind::NotAvailable
                };
                let i = Intent {
                    kind,
                    confidence: 0.0,
                    reason: "no time given".into(),
                    slots: Slots::default(),
                };
                self.decide(now, &i);
                self.set_plan(now, vec![Step::Play("not_available_close"), Step::Hangup]);
            }
            Turn::Identity | Turn::Reminder => {
                let i = Intent {
                    kind: IntentKind::Unknown,
                    confidence: 0.0,
                    reason: if self.last_miss_silent {
                        "silence"
                    } else {
                        "unclear"
                    }
                    .to_string(),
                    slots: Slots::default(),
                };
                self.decide(now, &i);
                // An unclear or silent line gets an escalation record, not a live transfer.
                let mut steps = Vec::new();
                if self.cfg.routing.unknown == UnknownRoute::Agent {
                    steps.push(Step::Escalate("unknown".into()));
                }
                let close = if self.last_miss_silent {
                    "no_answer_close"
                } else if self.cfg.routing.unknown == UnknownRoute::Agent {
                    "agent_callback"
                } else {
                    "not_available_close"
                };
                steps.extend([Step::Play(close), Step::Hangup]);
                self.set_plan(now, steps);
            }
        }
    }

    /// Routes by `intent`, plays `prompt` (plus the closing line where the
    /// prompt does not say goodbye) and hangs up.
    fn end_with(&mut self, now: Millis, intent: &Intent, prompt: &'static str) {
        self.decide(now, intent);
        let mut steps = vec![Step::Play(prompt)];
        if matches!(prompt, "ack_paid" | "promise_recorded") {
            steps.push(Step::Play("closing"));
        }
        steps.push(Step::Hangup);
        self.set_plan(now, steps);
    }

    fn decide(&mut self, now: Millis, intent: &Intent) {
        let ctx = self.route_ctx(now);
        self.out.route = Some(route_for(intent, &ctx, &self.cfg.routing));
    }

    fn agent_uri(&self) -> Option<String> {
        self.account
            .agent_uri
            .clone()
            .or_else(|| self.cfg.agent_uri.clone())
            .filter(|u| !u.trim().is_empty())
    }

    /// A live transfer when an agent URI is known; else an escalation record
    /// and a promise of a call back.
    fn agent_steps(&self, reason: &str) -> Vec<Step> {
        if self.agent_uri().is_some() {
            vec![Step::Play("transfer"), Step::Transfer]
        } else {
            vec![
                Step::Escalate(reason.to_string()),
                Step::Play("agent_callback"),
                Step::Hangup,
            ]
        }
    }

    // ------------------------------------------------------------ execution

    fn set_plan(&mut self, now: Millis, steps: Vec<Step>) {
        self.plan = steps.into();
        self.listen_announced = false;
        self.barge_deadline = None;
        self.wait = Wait::Nothing;
        self.run(now);
    }

    fn listen_ahead(&self) -> Option<Turn> {
        for s in &self.plan {
            match s {
                Step::Listen(t) => return Some(*t),
                Step::Play(_) | Step::Escalate(_) => continue,
                Step::Transfer | Step::Hangup => return None,
            }
        }
        None
    }

    fn announce_listen(&mut self, turn: Turn) {
        if self.listen_announced {
            return;
        }
        self.listen_announced = true;
        let phrases = self
            .script
            .listen
            .get(turn.id())
            .cloned()
            .unwrap_or_default();
        self.actions.push_back(Action::Listen {
            turn: turn.id().to_string(),
            phrases,
        });
    }

    /// Runs steps until one has to wait for the driver.
    fn run(&mut self, now: Millis) {
        while matches!(self.wait, Wait::Nothing) && self.stage != Stage::Ended {
            let Some(step) = self.plan.pop_front() else {
                return;
            };
            self.start_step(now, step);
        }
    }

    fn start_step(&mut self, now: Millis, step: Step) {
        match step {
            Step::Play(id) => {
                let script = Arc::clone(&self.script);
                let Some(prompt) = script.prompt(id) else {
                    self.out
                        .refused_prompts
                        .push(format!("{id} (not in script)"));
                    return;
                };
                // The one gate every prompt passes: nothing about the debt
                // before the right person is confirmed.
                if prompt.mentions_debt && !self.out.identity_confirmed {
                    self.out.refused_prompts.push(id.to_string());
                    return;
                }
                let ahead = self.listen_ahead();
                if let Some(turn) = ahead {
                    // The grammar must be live while the question plays, for barge-in.
                    self.announce_listen(turn);
                }
                let interruptible = prompt.interruptible && ahead.is_some();
                let text = self.script.render(id, &self.vars).unwrap_or_default();
                self.transcript.push(format!("[{now:>6} ms] agent: {text}"));
                self.actions.push_back(Action::Play {
                    prompt_id: id.to_string(),
                    text,
                    interruptible,
                    mentions_debt: prompt.mentions_debt,
                });
                self.out.turns.push(TurnRecord {
                    prompt: id.to_string(),
                    prompt_start_ms: now,
                    played_ms: 0,
                    finished: false,
                    cut_at_ms: None,
                    heard: None,
                    intent: None,
                    confidence: None,
                    asr_confidence: None,
                    reason: None,
                    start_ms: None,
                    end_ms: None,
                    ignored: Vec::new(),
                });
                self.wait = Wait::Playback(Playing {
                    prompt: id,
                    started: now,
                    interruptible,
                    record: self.out.turns.len() - 1,
                });
                // Speech already under way when an interruptible prompt starts counts from now.
                if interruptible && self.speech.speaking {
                    self.barge_deadline = Some(now + self.cfg.barge_in_min_speech_ms);
                }
            }
            Step::Listen(turn) => {
                self.announce_listen(turn);
                self.turn = Some(turn);
                let deadline = if self.speech.speaking {
                    None
                } else {
                    Some(now + self.cfg.no_input_ms)
                };
                self.wait = Wait::Reply { turn, deadline };
            }
            Step::Transfer => {
                let Some(uri) = self.agent_uri() else {
                    self.escalate(now, "no-agent-uri");
                    self.plan = vec![Step::Play("agent_callback"), Step::Hangup].into();
                    return;
                };
                let intent = self
                    .last_intent
                    .as_ref()
                    .map(|i| i.kind.as_str())
                    .unwrap_or("unknown");
                let case = self
                    .cfg
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
                self.wait = Wait::Transfer {
                    deadline: now + self.cfg.transfer_timeout_ms,
                };
            }
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

    fn escalate(&mut self, now: Millis, reason: &str) {
        let summary = self.summary(reason);
        self.out.escalations.push(Escalation {
            reason: reason.to_string(),
            summary,
            at_ms: now,
        });
    }

    /// Account, reason, last intent and the timed transcript, for a collector.
    fn summary(&self, reason: &str) -> String {
        let mut s = format!(
            "account {}; reason {}; identity {}; intent {}\n",
            self.account.account_id,
            reason,
            if self.out.identity_confirmed {
                "confirmed"
            } else {
                "not confirmed"
            },
            self.out.intent.map(|k| k.as_str()).unwrap_or("none"),
        );
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

    fn finish(&mut self, now: Millis, by: EndedBy) {
        if self.stage == Stage::Ended {
            return;
        }
        self.stage = Stage::Ended;
        self.wait = Wait::Nothing;
        self.plan.clear();
        self.barge_deadline = None;
        self.delay_until = None;
        self.out.ended_by = Some(by);
        // Every agent route reaches a person: live, or through the queue.
        let transferred = self
            .out
            .transfer
            .as_ref()
            .is_some_and(|t| t.ok == Some(true));
        if let Some(r) = self.out.route.clone() {
            if r.kind == RouteKind::Agent && !transferred && self.out.escalations.is_empty() {
                self.escalate(now, &r.reason);
            }
        }
        // Collectors get the whole call, closing lines included.
        for i in 0..self.out.escalations.len() {
            let reason = self.out.escalations[i].reason.clone();
            self.out.escalations[i].summary = self.summary(&reason);
        }
    }

    fn local_time(&self, now: Millis) -> NaiveDateTime {
        (self.cfg.started_at + Duration::milliseconds(now.min(i64::MAX as u64) as i64))
            .naive_local()
    }

    fn route_ctx(&self, now: Millis) -> RouteContext<'_> {
        RouteContext {
            account: &self.account,
            now: self.cfg.started_at + Duration::milliseconds(now.min(i64::MAX as u64) as i64),
            identity_confirmed: self.out.identity_confirmed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::SuppressScope;
    use rust_decimal::Decimal;
    use std::path::Path;

    const T0: &str = "2026-11-23T10:00:00-08:00";

    /// A small keyword reader for tests: enough words to reach every intent in
    /// English and Mandarin, ISO dates (`2026-11-27`) as the promise slot and
    /// `HH:MM` as the callback slot. Not the product's classifier.
    struct Keywords;

    impl Understand for Keywords {
        fn text(&self, text: &str, at: NaiveDateTime) -> Intent {
            let t = text.to_lowercase();
            let words: Vec<&str> = t
                .split(|c: char| !c.is_alphanumeric() && c != '-' && c != ':')
                .collect();
            let date = words
                .iter()
                .find_map(|w| NaiveDate::parse_from_str(w, "%Y-%m-%d").ok());
            let time = words
                .iter()
                .find_map(|w| chrono::NaiveTime::parse_from_str(w, "%H:%M").ok())
                .map(|tm| date.unwrap_or(at.date()).and_time(tm));
            let has = |w: &str| words.contains(&w);
            let rules: [(IntentKind, bool); 12] = [
                (
                    IntentKind::WrongNumber,
                    t.contains("wrong number") || t.contains("打错"),
                ),
                (
                    IntentKind::StopCalling,
                    t.contains("stop calling") || t.contains("别再打"),
                ),
                (
                    IntentKind::Dispute,
                    t.contains("don't owe") || t.contains("没有欠"),
                ),
                (
                    IntentKind::RequestAgent,
                    has("agent") || has("person") || t.contains("人工"),
                ),
                (
                    IntentKind::Hardship,
                    t.contains("lost my job") || t.contains("失业"),
                ),
                (
                    IntentKind::AlreadyPaid,
                    t.contains("paid") || t.contains("已经还"),
                ),
                (
                    IntentKind::PromiseToPay,
                    t.contains("will pay") || t.contains("我会还"),
                ),
                (
                    IntentKind::CallbackLater,
                    t.contains("call me") || t.contains("晚点"),
                ),
                (
                    IntentKind::NotAvailable,
                    t.contains("not here") || t.contains("不在"),
                ),
                (
                    IntentKind::WhoIsCalling,
                    t.contains("who is") || t.contains("你是谁"),
                ),
                (
                    IntentKind::IdentityDenied,
                    has("no") || t.contains("不是") || t.contains("不对"),
                ),
                (
                    IntentKind::IdentityConfirmed,
                    has("yes") || t.contains("是") || t.contains("对"),
                ),
            ];
            let kind = rules
                .iter()
                .find(|(_, hit)| *hit)
                .map(|(k, _)| *k)
                .unwrap_or(IntentKind::Unknown);
            let confidence = if t.contains("maybe") {
                0.3
            } else if kind == IntentKind::Unknown {
                0.0
            } else {
                0.9
            };
            Intent {
                kind,
                confidence,
                reason: text.to_string(),
                slots: Slots { date, time },
            }
        }

        fn digit(&self, d: char, confirmed: bool) -> Intent {
            let kind = match (confirmed, d) {
                (false, '1') => IntentKind::IdentityConfirmed,
                (false, '2') => IntentKind::IdentityDenied,
                (true, '1') => IntentKind::AlreadyPaid,
                (true, '2') => IntentKind::PromiseToPay,
                (true, '3') => IntentKind::Hardship,
                (true, '4') => IntentKind::WrongNumber,
                (_, '0') => IntentKind::RequestAgent,
                _ => IntentKind::Unknown,
            };
            let confidence = if kind == IntentKind::Unknown {
                0.0
            } else {
                1.0
            };
            Intent {
                kind,
                confidence,
                reason: format!("dtmf {d}"),
                slots: Slots::default(),
            }
        }
    }

    fn script(lang: &str) -> Arc<Script> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("prompts")
            .join(format!("{lang}.toml"));
        Arc::new(Script::load(&path).unwrap_or_else(|e| panic!("{e}")))
    }

    fn account(lang: Language) -> Account {
        Account {
            account_id: "A-17".into(),
            name: if lang == Language::Zh {
                "王伟".into()
            } else {
                "Maria Lopez".into()
            },
            phone: "+14155550100".into(),
            amount: Decimal::new(12550, 2),
            currency: None,
            due_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            timezone: Some("America/Los_Angeles".into()),
            language: lang,
            jurisdiction: Some("us".into()),
            alt_phones: vec![],
            days_past_due: None,
            agent_uri: None,
        }
    }

    fn at(s: &str) -> Option<DateTime<FixedOffset>> {
        Some(DateTime::parse_from_rfc3339(s).unwrap())
    }

    /// Drives one conversation on simulated time and checks, after every
    /// step, that no debt-bearing prompt played before identity was confirmed
    /// and that every prompt quoting the amount or due date is flagged.
    struct H {
        c: Conversation,
        t: u64,
        log: Vec<(u64, Action)>,
        playing: Option<String>,
        debt_words: Vec<String>,
        /// The route when the call ended (`Some(None)`: ended without one).
        ended_route: Option<Option<Route>>,
    }

    impl H {
        fn new() -> H {
            H::with(Language::En, |_, _| {})
        }

        fn with(lang: Language, f: impl FnOnce(&mut DialogueConfig, &mut Account)) -> H {
            let mut cfg = DialogueConfig::new(DateTime::parse_from_rfc3339(T0).unwrap());
            let mut acc = account(lang);
            f(&mut cfg, &mut acc);
            let s = script(lang.as_str());
            let today = cfg.today();
            let debt_words = vec![
                speak::amount_words(acc.amount, acc.currency.as_deref(), lang),
                speak::date_words(acc.due_date, lang, today),
            ];
            H {
                c: Conversation::new(s, acc, cfg, Arc::new(Keywords)),
                t: 0,
                log: vec![],
                playing: None,
                debt_words,
                ended_route: None,
            }
        }

        fn at(&mut self, t: u64, e: Event) -> Vec<Action> {
            self.t = t;
            self.c.handle(t, e);
            let mut out = vec![];
            while let Some(a) = self.c.poll_action() {
                match &a {
                    Action::Play {
                        prompt_id,
                        text,
                        mentions_debt,
                        ..
                    } => {
                        assert!(
                            !*mentions_debt || self.c.out.identity_confirmed,
                            "{prompt_id} played before identity was confirmed"
                        );
                        for w in &self.debt_words {
                            assert!(
                                *mentions_debt || !text.contains(w.as_str()),
                                "{prompt_id} says {w} unflagged"
                            );
                        }
                        self.playing = Some(prompt_id.clone());
                    }
                    Action::StopPlaying { .. } | Action::Hangup => self.playing = None,
                    Action::Transfer { .. } => self.playing = None,
                    _ => {}
                }
                self.log.push((t, a.clone()));
                out.push(a);
            }
            if self.c.is_ended() {
                let now = self.c.outcome().route;
                let first = self.ended_route.get_or_insert_with(|| now.clone());
                assert_eq!(*first, now, "the route changed after the call ended");
            }
            out
        }

        fn after(&mut self, dt: u64, e: Event) -> Vec<Action> {
            self.at(self.t + dt, e)
        }

        /// Answer; the person says "hello?" (400 ms) and AMD calls it human.
        fn answer_person(&mut self) -> Vec<Action> {
            self.at(0, Event::Answered);
            self.after(300, Event::SpeechStart);
            self.after(400, Event::SpeechEnd);
            let due = self.c.poll_timeout().expect("amd timer");
            assert_eq!(due, 700 + 800, "after-greeting silence");
            self.at(due, Event::Timeout)
        }

        /// Plays the current prompt to its end (1 s later).
        fn finish(&mut self) -> Vec<Action> {
            let id = self.playing.take().expect("a prompt is playing");
            self.after(1000, Event::PlaybackFinished { prompt_id: id })
        }

        /// Plays prompts to their end until the machine listens or ends.
        fn finish_all(&mut self) -> Vec<Action> {
            let mut out = vec![];
            while self.playing.is_some() {
                out.extend(self.finish());
            }
            out
        }

        fn reply(&mut self, text: &str) -> Vec<Action> {
            self.after(200, Event::SpeechStart);
            self.after(700, Event::SpeechEnd);
            self.after(
                150,
                Event::Final {
                    text: text.into(),
                    confidence: 0.8,
                },
            )
        }

        fn silence(&mut self) -> Vec<Action> {
            let due = self.c.poll_timeout().expect("a timer");
            self.at(due, Event::Timeout)
        }

        fn reach_reminder(&mut self) {
            self.answer_person();
            self.finish_all();
            self.reply("yes, speaking");
            self.finish_all();
        }

        /// Up to the reminder, still playing it.
        fn reach_reminder_playing(&mut self) {
            self.answer_person();
            self.finish_all();
            self.reply("yes, speaking");
            self.finish();
            assert_eq!(self.playing.as_deref(), Some("reminder"));
        }

        fn plays(&self) -> Vec<String> {
            self.log
                .iter()
                .filter_map(|(_, a)| match a {
                    Action::Play { prompt_id, .. } => Some(prompt_id.clone()),
                    _ => None,
                })
                .collect()
        }

        fn route(&self) -> Route {
            self.c.outcome().route.expect("a route")
        }

        fn has(&self, f: impl Fn(&Action) -> bool) -> bool {
            self.log.iter().any(|(_, a)| f(a))
        }

        /// The route the call ended with (empty while it runs, or when it
        /// ended without one); `at` checks it never changes afterwards.
        fn emitted_route(&self) -> Vec<Route> {
            self.ended_route.clone().into_iter().flatten().collect()
        }

        fn escalated(&self, reason: &str) -> bool {
            self.c
                .outcome()
                .escalations
                .iter()
                .any(|e| e.reason == reason)
        }

        fn assert_no_debt_said(&self) {
            for (_, a) in &self.log {
                if let Action::Play {
                    prompt_id,
                    text,
                    mentions_debt,
                    ..
                } = a
                {
                    assert!(!mentions_debt, "{prompt_id} mentions the debt");
                    for w in &self.debt_words {
                        assert!(!text.contains(w.as_str()), "{prompt_id} says {w}");
                    }
                }
            }
        }
    }

    fn play_of(actions: &[Action]) -> Vec<(String, bool)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Play {
                    prompt_id,
                    interruptible,
                    ..
                } => Some((prompt_id.clone(), *interruptible)),
                _ => None,
            })
            .collect()
    }

    // ------------------------------------------------------------ full paths

    #[test]
    fn promise_path_reads_the_date_back_and_pauses_until_the_day_after() {
        let mut h = H::new();
        let a = h.answer_person();
        assert!(
            matches!(&a[0], Action::Listen { turn, .. } if turn == "identity"),
            "grammar first: {a:?}"
        );
        assert_eq!(play_of(&a), vec![("opening".to_string(), false)]);
        let a = h.finish();
        assert_eq!(play_of(&a), vec![("right_party".to_string(), true)]);
        assert!(
            matches!(&a[0], Action::Play { text, .. } if text == "Am I speaking with Maria Lopez?")
        );
        h.finish();
        let a = h.reply("yes speaking");
        assert_eq!(play_of(&a), vec![("debt_disclosure".to_string(), false)]);
        let a = h.finish();
        let Some(Action::Play { text, .. }) = a.iter().find(|a| matches!(a, Action::Play { .. }))
        else {
            panic!()
        };
        assert!(
            text.contains("one hundred twenty-five dollars and fifty cents"),
            "{text}"
        );
        assert!(text.contains("Friday, November 20th"), "{text}");
        h.finish();
        let a = h.reply("I will pay on 2026-11-27");
        let Some(Action::Play {
            prompt_id, text, ..
        }) = a.iter().find(|a| matches!(a, Action::Play { .. }))
        else {
            panic!()
        };
        assert_eq!(prompt_id, "confirm_promise");
        assert_eq!(
            text,
            "So you will pay on Friday, November 27th. Is that right?"
        );
        h.finish();
        h.reply("yes");
        h.finish_all();
        assert_eq!(
            h.plays(),
            [
                "opening",
                "right_party",
                "debt_disclosure",
                "reminder",
                "confirm_promise",
                "promise_recorded",
                "closing"
            ]
        );
        assert!(h.has(|a| *a == Action::Hangup));
        let r = h.route();
        assert_eq!(
            (r.kind, r.reason.as_str(), r.until),
            (
                RouteKind::Pause,
                "promise_to_pay",
                at("2026-11-28T00:00:00-08:00")
            )
        );
        assert_eq!(h.emitted_route(), vec![r]);
        let o = h.c.outcome();
        assert!(o.identity_confirmed && h.c.is_ended());
        assert_eq!(o.ended_by, Some(EndedBy::Us));
        assert_eq!(o.turns[1].heard.as_deref(), Some("yes speaking"));
        assert_eq!(o.turns[1].intent, Some(IntentKind::IdentityConfirmed));
        assert!(o.turns[1].finished && o.turns[1].played_ms == 1000);
        assert_eq!(o.turns[3].intent, Some(IntentKind::PromiseToPay));
        let (s, e) = (o.turns[3].start_ms.unwrap(), o.turns[3].end_ms.unwrap());
        assert_eq!(e - s, 700, "speech start to end");
        assert!(o.refused_prompts.is_empty());
    }

    #[test]
    fn every_reminder_reply_gets_its_answer_and_route() {
        type Check = fn(&Route);
        let cases: Vec<(&str, Vec<&str>, RouteKind, Check)> = vec![
            (
                "I already paid",
                vec!["ack_paid", "closing"],
                RouteKind::Pause,
                |r| {
                    assert_eq!(
                        (r.reason.as_str(), r.until),
                        ("verify-payment", at("2026-11-26T00:00:00-08:00"))
                    );
                },
            ),
            (
                "I lost my job",
                vec!["ack_hardship", "agent_callback"],
                RouteKind::Agent,
                |r| {
                    let f = r.follow_up.as_ref().unwrap();
                    assert_eq!(
                        (f.kind, f.until),
                        (RouteKind::Pause, at("2026-12-23T00:00:00-08:00"))
                    );
                },
            ),
            (
                "I don't owe this",
                vec!["ack_dispute", "agent_callback"],
                RouteKind::Agent,
                |r| assert_eq!(r.reason, "dispute"),
            ),
            (
                "stop calling me",
                vec!["stop_calling"],
                RouteKind::Suppress,
                |r| assert_eq!(r.scope, Some(SuppressScope::Account)),
            ),
            (
                "let me talk to a person",
                vec!["request_agent", "agent_callback"],
                RouteKind::Agent,
                |r| assert_eq!(r.reason, "request_agent"),
            ),
            (
                "call me 2026-11-24 15:00",
                vec!["callback_confirm"],
                RouteKind::Retry,
                |r| {
                    assert_eq!(r.until, at("2026-11-24T15:00:00-08:00"));
                },
            ),
            (
                "wrong number",
                vec!["wrong_number"],
                RouteKind::Suppress,
                |r| assert_eq!(r.scope, Some(SuppressScope::Number)),
            ),
            (
                "I will pay on 2026-12-20",
                vec!["promise_too_far", "agent_callback"],
                RouteKind::Agent,
                |r| assert_eq!(r.reason, "promise-too-far"),
            ),
        ];
        for (reply, prompts, kind, check) in cases {
            let mut h = H::new();
            h.reach_reminder();
            h.reply(reply);
            h.finish_all();
            let plays = h.plays();
            assert_eq!(&plays[4..], prompts.as_slice(), "{reply}");
            let r = h.route();
            assert_eq!(r.kind, kind, "{reply}");
            check(&r);
            assert!(h.c.is_ended(), "{reply}");
            assert_eq!(
                !h.c.outcome().escalations.is_empty(),
                kind == RouteKind::Agent,
                "{reply}: no agent uri -> escalation"
            );
        }
    }

    #[test]
    fn callback_text_names_the_time() {
        let mut h = H::new();
        h.reach_reminder();
        let a = h.reply("call me 2026-11-24 15:00");
        assert!(a.iter().any(|a| matches!(a, Action::Play { text, .. } if text == "Thank you. We will call back tomorrow at 3 PM. Goodbye.")), "{a:?}");
    }

    #[test]
    fn hardship_with_an_agent_transfers_with_case_headers() {
        let mut h = H::with(Language::En, |_, a| {
            a.agent_uri = Some("sip:collect@agents.example".into())
        });
        h.reach_reminder();
        h.reply("I lost my job");
        let a = h.finish_all();
        let Some(Action::Transfer { agent_uri, headers }) =
            a.iter().find(|a| matches!(a, Action::Transfer { .. }))
        else {
            panic!("{a:?}")
        };
        assert_eq!(agent_uri, "sip:collect@agents.example");
        assert!(headers.contains(&("X-Duecall-Account".into(), "A-17".into())));
        assert!(headers.contains(&("X-Duecall-Intent".into(), "hardship".into())));
        assert!(headers.contains(&("X-Duecall-Case".into(), "A-17".into())));
        assert_eq!(h.plays()[4..], ["ack_hardship", "transfer"]);
        assert!(!h.c.is_ended());
        let a = h.after(2000, Event::TransferResult { ok: true });
        assert!(h.c.is_ended());
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(h.emitted_route().len(), 1);
        assert_eq!(h.route().kind, RouteKind::Agent);
        assert_eq!(h.c.outcome().transfer.unwrap().ok, Some(true));
        assert!(
            h.c.outcome().escalations.is_empty(),
            "a collector took it live: no escalation"
        );
    }

    #[test]
    fn an_agent_route_cut_short_before_the_transfer_still_reaches_a_collector() {
        let mut h = H::with(Language::En, |_, a| {
            a.agent_uri = Some("sip:collect@agents.example".into())
        });
        h.reach_reminder();
        h.reply("I lost my job");
        // The callee hangs up while "ack_hardship" plays: no transfer was tried.
        h.after(500, Event::Hangup);
        assert!(h.c.is_ended());
        let out = h.c.outcome();
        assert_eq!(out.route.as_ref().map(|r| r.kind), Some(RouteKind::Agent));
        assert!(out.transfer.is_none());
        let [e] = &out.escalations[..] else {
            panic!("one escalation: {:?}", out.escalations)
        };
        assert_eq!(e.reason, "hardship");
        assert!(e.summary.contains("account A-17"), "{}", e.summary);
        assert!(
            e.summary.contains("debtor: I lost my job"),
            "the timed transcript is in it: {}",
            e.summary
        );
        assert!(
            e.summary.contains("agent: Am I speaking with Maria Lopez?"),
            "{}",
            e.summary
        );
    }

    #[test]
    fn routes_that_need_no_person_raise_no_escalation() {
        for reply in [
            "I already paid",
            "stop calling me",
            "call me 2026-11-24 15:00",
        ] {
            let mut h = H::new();
            h.reach_reminder();
            h.reply(reply);
            h.finish_all();
            assert!(h.c.is_ended(), "{reply}");
            assert!(h.c.outcome().escalations.is_empty(), "{reply}");
        }
    }

    #[test]
    fn the_outcome_relabels_a_machine_and_says_whether_there_was_a_conversation() {
        let mut h = H::new();
        h.reach_reminder();
        h.reply("I already paid");
        h.finish_all();
        let out = h.c.outcome();
        assert_eq!(
            out.attempt_disposition(Disposition::Answered),
            Disposition::Answered
        );
        assert!(out.was_conversation(Disposition::Answered));

        // A person who said nothing before hanging up: no conversation.
        let mut h = H::new();
        h.answer_person();
        h.after(300, Event::Hangup);
        assert!(!h.c.outcome().was_conversation(Disposition::Answered));

        // A machine: the wire's `answered` becomes `voicemail`, no conversation.
        let mut h = H::new();
        h.at(0, Event::Answered);
        h.after(200, Event::SpeechStart);
        h.after(3000, Event::SpeechEnd);
        let out = h.c.outcome();
        assert_eq!(
            out.attempt_disposition(Disposition::Answered),
            Disposition::Voicemail
        );
        assert!(!out.was_conversation(Disposition::Answered));
        // A wire disposition other than answered stands.
        assert_eq!(
            out.attempt_disposition(Disposition::Failed),
            Disposition::Failed
        );
    }

    #[test]
    fn a_failed_or_silent_transfer_becomes_an_escalation() {
        for timeout in [false, true] {
            let mut h = H::with(Language::En, |c, _| {
                c.agent_uri = Some("sip:queue@agents.example".into())
            });
            h.reach_reminder();
            h.reply("agent please");
            h.finish_all();
            if timeout {
                let due = h.c.poll_timeout().unwrap();
                assert_eq!(due, h.t + 30_000);
                h.at(due, Event::Timeout);
            } else {
                h.after(3000, Event::TransferResult { ok: false });
            }
            let e = h.c.outcome().escalations;
            assert!(
                matches!(&e[..], [e] if e.reason == "transfer-failed" && e.summary.contains("A-17")),
                "{e:?}"
            );
            h.finish_all();
            assert_eq!(h.plays().last().unwrap(), "transfer_failed");
            assert!(h.c.is_ended());
            assert_eq!(h.route().kind, RouteKind::Agent);
        }
    }

    #[test]
    fn a_promise_without_a_date_asks_for_one_and_no_means_ask_again() {
        let mut h = H::new();
        h.reach_reminder();
        h.reply("I will pay");
        assert_eq!(h.plays().last().unwrap(), "ask_date");
        h.finish();
        h.reply("I will pay 2026-11-25");
        h.finish();
        h.reply("no");
        assert_eq!(h.plays().last().unwrap(), "ask_date");
        h.finish();
        h.reply("I will pay 2026-11-26");
        h.finish();
        h.reply("yes");
        h.finish_all();
        assert_eq!(h.route().until, at("2026-11-27T00:00:00-08:00"));
    }

    #[test]
    fn a_date_never_given_goes_to_an_agent() {
        let mut h = H::new();
        h.reach_reminder();
        h.reply("I will pay");
        h.finish();
        h.reply("hmm dunno");
        assert_eq!(h.plays().last().unwrap(), "reask_date");
        h.finish();
        h.silence();
        h.finish_all();
        assert_eq!(
            (h.route().kind, h.route().reason.as_str()),
            (RouteKind::Agent, "promise-without-date")
        );
    }

    // ----------------------------------------------------- third parties

    #[test]
    fn identity_denied_ends_politely_without_the_debt() {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.reply("no");
        h.finish_all();
        assert_eq!(h.plays(), ["opening", "right_party", "identity_denied"]);
        assert_eq!(
            (h.route().kind, h.route().reason.as_str()),
            (RouteKind::Retry, "identity_denied")
        );
        h.assert_no_debt_said();
    }

    #[test]
    fn wrong_number_apologises_and_suppresses_the_number_without_the_debt() {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.reply("you have the wrong number");
        h.finish_all();
        assert_eq!(h.plays().last().unwrap(), "wrong_number");
        assert_eq!(
            (h.route().kind, h.route().scope),
            (RouteKind::Suppress, Some(SuppressScope::Number))
        );
        h.assert_no_debt_said();
    }

    #[test]
    fn someone_else_is_asked_for_a_better_time_without_the_debt() {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        let a = h.reply("she is not here");
        assert!(a
            .iter()
            .any(|a| matches!(a, Action::Listen { turn, .. } if turn == "better_time")));
        h.finish();
        h.reply("call me 18:00");
        h.finish_all();
        assert_eq!(h.plays()[2..], ["not_available", "callback_confirm"]);
        assert_eq!(
            (h.route().kind, h.route().until),
            (RouteKind::Retry, at("2026-11-23T18:00:00-08:00"))
        );
        h.assert_no_debt_said();
        // With no time given, the case retries later.
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.reply("not here");
        h.finish();
        h.reply("hmm");
        h.finish();
        h.silence();
        h.finish_all();
        assert_eq!(h.plays().last().unwrap(), "not_available_close");
        assert_eq!(
            (h.route().kind, h.route().reason.as_str()),
            (RouteKind::Retry, "not_available")
        );
        h.assert_no_debt_said();
    }

    #[test]
    fn who_is_calling_is_answered_twice_without_the_debt_then_counts_as_unclear() {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        for _ in 0..3 {
            h.reply("who is this");
            h.finish_all();
        }
        assert_eq!(
            h.plays()[2..],
            ["who_is_calling", "who_is_calling", "reask_identity"]
        );
        let who = h.log.iter().find_map(|(_, a)| match a {
            Action::Play {
                prompt_id, text, ..
            } if prompt_id == "who_is_calling" => Some(text.clone()),
            _ => None,
        });
        assert!(who.unwrap().contains("on behalf of Northwind Credit"));
        h.assert_no_debt_said();
        h.reply("yes");
        h.finish_all();
        assert!(h.plays().contains(&"reminder".to_string()));
    }

    #[test]
    fn debt_replies_before_identity_get_the_identity_question_not_the_debt() {
        for reply in [
            "I already paid",
            "I lost my job",
            "I don't owe anything",
            "I will pay 2026-11-25",
        ] {
            let mut h = H::new();
            h.answer_person();
            h.finish_all();
            h.reply(reply);
            h.finish_all();
            assert_eq!(h.plays().last().unwrap(), "identity_first", "{reply}");
            h.reply(reply);
            h.finish_all();
            assert_eq!(h.plays().last().unwrap(), "menu_identity", "{reply}");
            h.assert_no_debt_said();
        }
    }

    #[test]
    fn stop_from_an_unconfirmed_person_suppresses_only_the_number() {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.reply("stop calling");
        h.finish_all();
        assert_eq!(h.route().scope, Some(SuppressScope::Number));
        h.assert_no_debt_said();
    }

    #[test]
    fn the_debt_guard_refuses_a_debt_prompt_before_identity() {
        let mut h = H::new();
        h.answer_person();
        h.c.start_step(h.t, Step::Play("reminder"));
        assert!(h.c.poll_action().is_none(), "nothing played");
        assert_eq!(h.c.outcome().refused_prompts, vec!["reminder".to_string()]);
    }

    /// A small deterministic generator for the random walks.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn no_walk_without_a_yes_ever_reaches_a_debt_prompt() {
        let replies = [
            "no",
            "who is this",
            "wrong number",
            "not here",
            "stop calling",
            "I already paid",
            "I lost my job",
            "I don't owe",
            "I will pay 2026-11-25",
            "call me 15:00",
            "agent",
            "mumble",
            "maybe yes",
            "mhm",
        ];
        for seed in 0..400u64 {
            let mut rng = Lcg(seed);
            let mut h = H::with(Language::En, |c, a| {
                if seed % 2 == 0 {
                    a.agent_uri = Some("sip:a@b".into());
                }
                if seed % 3 == 0 {
                    c.routing.unknown = UnknownRoute::Retry;
                }
            });
            h.answer_person();
            for _ in 0..30 {
                if h.c.is_ended() {
                    break;
                }
                match rng.next(7) {
                    0 | 1 => {
                        let r = replies[rng.next(replies.len() as u64) as usize];
                        h.reply(r);
                    }
                    2 => {
                        let d = ['2', '0', '5', '9', '*', '#'][rng.next(6) as usize];
                        h.after(100, Event::Dtmf(d));
                    }
                    3 => {
                        if h.c.poll_timeout().is_some() {
                            h.silence();
                        }
                    }
                    4 => {
                        h.after(50, Event::SpeechStart);
                        h.after(rng.next(600), Event::SpeechEnd);
                    }
                    5 => {
                        h.after(
                            100,
                            Event::TransferResult {
                                ok: rng.next(2) == 0,
                            },
                        );
                    }
                    _ => {
                        if h.playing.is_some() {
                            h.finish();
                        }
                    }
                }
            }
            h.assert_no_debt_said();
            assert!(!h.c.outcome().identity_confirmed, "seed {seed}");
            assert!(h.c.outcome().refused_prompts.is_empty(), "seed {seed}");
            assert!(
                h.emitted_route().len() <= 1,
                "seed {seed}: one route at most"
            );
        }
    }

    #[test]
    fn walks_with_a_yes_only_talk_debt_after_it_and_always_end_with_one_route() {
        let replies = [
            "yes",
            "no",
            "who is this",
            "I already paid",
            "I lost my job",
            "I will pay",
            "I will pay 2026-11-25",
            "I will pay 2026-12-30",
            "call me",
            "agent",
            "mumble",
            "ok",
            "wrong number",
            "stop calling",
        ];
        for seed in 0..400u64 {
            let mut rng = Lcg(seed ^ 0x5eed);
            let mut h = H::new();
            h.answer_person();
            for _ in 0..60 {
                if h.c.is_ended() {
                    break;
                }
                match rng.next(5) {
                    0 | 1 => {
                        h.reply(replies[rng.next(replies.len() as u64) as usize]);
                    }
                    2 => {
                        h.after(
                            100,
                            Event::Dtmf(['0', '1', '2', '3', '4', '7'][rng.next(6) as usize]),
                        );
                    }
                    3 => {
                        if h.c.poll_timeout().is_some() {
                            h.silence();
                        }
                    }
                    _ => {
                        if h.playing.is_some() {
                            h.finish();
                        }
                    }
                }
            }
            // Let it run out: silence and finished prompts end every path.
            for _ in 0..40 {
                if h.c.is_ended() {
                    break;
                }
                if h.playing.is_some() {
                    h.finish();
                } else if h.c.poll_timeout().is_some() {
                    h.silence();
                }
            }
            assert!(h.c.is_ended(), "seed {seed}: {:?}", h.plays());
            assert_eq!(h.emitted_route().len(), 1, "seed {seed}");
            assert!(h.c.outcome().refused_prompts.is_empty());
        }
    }

    // ------------------------------------------------- unclear and silence

    #[test]
    fn unclear_identity_reasks_then_menu_then_escalates() {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.reply("mumble");
        h.finish_all();
        h.reply("mumble");
        h.finish_all();
        h.reply("mumble");
        h.finish_all();
        assert_eq!(
            h.plays()[2..],
            ["reask_identity", "menu_identity", "agent_callback"]
        );
        let menu = h.log.iter().find_map(|(_, a)| match a {
            Action::Play {
                prompt_id, text, ..
            } if prompt_id == "menu_identity" => Some(text.clone()),
            _ => None,
        });
        assert_eq!(
            menu.unwrap(),
            "Please press 1 if you are Maria Lopez, 2 if you are not, or 0 to speak with a person."
        );
        assert!(h.escalated("unknown"));
        assert_eq!(
            (h.route().kind, h.route().reason.as_str()),
            (RouteKind::Agent, "unknown")
        );
        h.assert_no_debt_said();
    }

    #[test]
    fn menu_digits_confirm_or_deny_identity() {
        for (digit, next) in [
            ('1', "debt_disclosure"),
            ('2', "identity_denied"),
            ('0', "request_agent"),
        ] {
            let mut h = H::new();
            h.answer_person();
            h.finish_all();
            h.reply("mumble");
            h.finish_all();
            h.reply("mumble");
            h.finish_all();
            h.after(500, Event::Dtmf(digit));
            assert_eq!(h.plays().last().unwrap(), next, "{digit}");
        }
    }

    #[test]
    fn reminder_menu_digits_map_to_the_documented_replies() {
        for (digit, next) in [
            ('1', "ack_paid"),
            ('2', "ask_date"),
            ('3', "ack_hardship"),
            ('4', "wrong_number"),
            ('0', "request_agent"),
        ] {
            let mut h = H::new();
            h.reach_reminder();
            h.reply("mumble");
            h.finish_all();
            h.reply("mumble");
            let menu = h.plays().last().cloned().unwrap();
            assert_eq!(menu, "menu_reminder");
            h.finish_all();
            h.after(500, Event::Dtmf(digit));
            assert_eq!(h.plays().last().unwrap(), next, "{digit}");
            let o = h.c.outcome();
            let t = o.turns.iter().rev().find(|t| t.heard.is_some()).unwrap();
            assert_eq!(t.heard.as_deref(), Some(format!("dtmf:{digit}").as_str()));
        }
    }

    #[test]
    fn silence_reprompts_after_no_input_then_menu_then_routes_unknown() {
        let mut h = H::new();
        h.answer_person();
        h.finish();
        h.finish(); // right_party done: listening
        let end_of_question = h.t;
        assert_eq!(h.c.poll_timeout(), Some(end_of_question + 5000));
        h.silence();
        assert_eq!(h.plays().last().unwrap(), "reask_identity");
        h.finish();
        h.silence();
        assert_eq!(h.plays().last().unwrap(), "menu_identity");
        h.finish();
        h.silence();
        h.finish_all();
        assert_eq!(h.plays().last().unwrap(), "no_answer_close");
        assert_eq!(h.route().kind, RouteKind::Agent);
        let o = h.c.outcome();
        assert_eq!(o.turns[1].intent, Some(IntentKind::Unknown));
        assert_eq!(o.turns[1].reason.as_deref(), Some("no input"));

        let mut h = H::with(Language::En, |c, _| c.routing.unknown = UnknownRoute::Retry);
        h.reach_reminder();
        for _ in 0..3 {
            h.silence();
            h.finish_all();
        }
        assert_eq!(
            h.plays()[4..],
            ["reask_reminder", "menu_reminder", "no_answer_close"]
        );
        assert_eq!(
            (h.route().kind, h.route().reason.as_str()),
            (RouteKind::Retry, "unknown")
        );
        assert!(h.c.outcome().escalations.is_empty());
    }

    #[test]
    fn speech_holds_the_no_input_timer_until_it_ends() {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.after(100, Event::SpeechStart);
        assert_eq!(h.c.poll_timeout(), None, "no re-ask while they talk");
        h.after(8000, Event::SpeechEnd);
        assert_eq!(h.c.poll_timeout(), Some(h.t + 5000));
    }

    #[test]
    fn a_low_confidence_intent_counts_as_unclear() {
        let mut h = H::new();
        h.answer_person();
        h.finish_all();
        h.reply("maybe yes");
        assert_eq!(h.plays().last().unwrap(), "reask_identity");
        assert!(!h.c.outcome().identity_confirmed);
        let o = h.c.outcome();
        assert!(o.turns[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("below threshold"));
    }

    // ------------------------------------------------------------ barge-in

    #[test]
    fn talking_over_a_question_stops_it_at_the_minimum_and_the_reply_is_used() {
        let mut h = H::new();
        h.answer_person();
        h.finish(); // opening done, right_party playing
        let started = h.t;
        h.after(400, Event::SpeechStart);
        let speech_at = h.t;
        assert_eq!(
            h.c.poll_timeout(),
            Some(speech_at + 300),
            "barge-in deadline is exact"
        );
        assert!(
            h.at(speech_at + 299, Event::Timeout).is_empty(),
            "not before the minimum"
        );
        let a = h.at(speech_at + 300, Event::Timeout);
        assert_eq!(
            a,
            vec![Action::StopPlaying {
                prompt_id: "right_party".into(),
                at_ms: 700
            }]
        );
        let o = h.c.outcome();
        assert_eq!(
            (
                o.turns[1].finished,
                o.turns[1].cut_at_ms,
                o.turns[1].played_ms
            ),
            (false, Some(700), 700)
        );
        let _ = started;
        h.after(500, Event::SpeechEnd);
        h.after(
            100,
            Event::Final {
                text: "yes it's me".into(),
                confidence: 0.9,
            },
        );
        assert_eq!(h.plays().last().unwrap(), "debt_disclosure");
        // A late PlaybackFinished for the cut prompt changes nothing.
        assert!(h
            .after(
                10,
                Event::PlaybackFinished {
                    prompt_id: "right_party".into()
                }
            )
            .is_empty());
    }

    #[test]
    fn a_recognised_reply_during_a_question_barges_in_even_without_vad() {
        let mut h = H::new();
        h.reach_reminder_playing();
        let a = h.after(
            300,
            Event::Final {
                text: "I already paid".into(),
                confidence: 0.9,
            },
        );
        assert!(
            matches!(&a[0], Action::StopPlaying { prompt_id, .. } if prompt_id == "reminder"),
            "{a:?}"
        );
        assert_eq!(h.plays().last().unwrap(), "ack_paid");
    }

    #[test]
    fn short_noises_and_fillers_do_not_barge_in() {
        let mut h = H::new();
        h.answer_person();
        h.finish(); // right_party playing
        h.after(100, Event::SpeechStart);
        h.after(150, Event::SpeechEnd); // a cough
        assert_eq!(h.c.poll_timeout(), None);
        h.after(
            100,
            Event::Final {
                text: "mhm".into(),
                confidence: 0.6,
            },
        );
        h.after(100, Event::SpeechStart);
        h.after(200, Event::Partial("uh huh".into()));
        assert!(
            h.after(100, Event::Timeout).is_empty(),
            "a filler past the minimum does not cut"
        );
        h.after(200, Event::SpeechEnd);
        h.after(
            50,
            Event::Final {
                text: "ok".into(),
                confidence: 0.7,
            },
        );
        assert!(!h.has(|a| matches!(a, Action::StopPlaying { .. })));
        h.finish();
        let o = h.c.outcome();
        assert!(o.turns[1].finished);
        assert_eq!(
            o.turns[1].ignored,
            vec!["mhm".to_string(), "ok".to_string()]
        );
        assert!(o.turns[1].heard.is_none());
    }

    #[test]
    fn words_after_a_filler_do_barge_in() {
        let mut h = H::new();
        h.reach_reminder_playing();
        h.after(100, Event::SpeechStart);
        h.after(200, Event::Partial("mhm".into()));
        assert!(h.after(100, Event::Timeout).is_empty());
        let a = h.after(300, Event::Partial("mhm I lost my job".into()));
        assert!(
            matches!(&a[..], [Action::StopPlaying { prompt_id, .. }] if prompt_id == "reminder"),
            "{a:?}"
        );
    }

    #[test]
    fn disclosures_cannot_be_interrupted() {
        let mut h = H::new();
        let a = h.answer_person();
        assert_eq!(play_of(&a), vec![("opening".into(), false)]);
        h.after(100, Event::SpeechStart);
        assert_eq!(
            h.c.poll_timeout(),
            None,
            "no barge-in timer on a disclosure"
        );
        h.after(2000, Event::Partial("who is this stop".into()));
        h.after(500, Event::SpeechEnd);
        h.after(
            100,
            Event::Final {
                text: "who is this stop".into(),
                confidence: 0.9,
            },
        );
        h.after(100, Event::Dtmf('0'));
        assert!(!h.has(|a| matches!(a, Action::StopPlaying { .. })));
        let o = h.c.outcome();
        assert_eq!(
            o.turns[0].ignored,
            vec!["who is this stop".to_string(), "dtmf:0".to_string()]
        );
        h.finish();
        h.finish();
        let a = h.reply("yes");
        assert_eq!(play_of(&a), vec![("debt_disclosure".into(), false)]);
        h.after(100, Event::SpeechStart);
        h.after(
            1000,
            Event::Final {
                text: "I already paid".into(),
                confidence: 0.9,
            },
        );
        assert!(!h.has(|a| matches!(a, Action::StopPlaying { .. })));
        assert!(
            !h.c.outcome().turns[2].finished && h.playing.as_deref() == Some("debt_disclosure")
        );
    }

    #[test]
    fn closing_lines_are_not_cut_off() {
        let mut h = H::new();
        h.reach_reminder();
        let a = h.reply("I already paid");
        assert_eq!(play_of(&a), vec![("ack_paid".into(), false)]);
        h.after(100, Event::SpeechStart);
        assert_eq!(h.c.poll_timeout(), None);
    }

    // ------------------------------------------------------------ hang-ups

    #[test]
    fn a_hang_up_in_every_state_ends_the_call_with_a_route() {
        type Setup = fn(&mut H);
        let states: Vec<(&str, Setup, Option<&str>)> = vec![
            ("ringing", |_| {}, None),
            (
                "amd",
                |h| {
                    h.at(0, Event::Answered);
                    h.after(100, Event::SpeechStart);
                },
                Some("hung-up-before-identity"),
            ),
            (
                "wait-beep",
                |h| {
                    h.at(0, Event::Answered);
                    h.after(100, Event::SpeechStart);
                    h.after(1500, Event::Timeout);
                },
                Some("voicemail"),
            ),
            (
                "voicemail",
                |h| {
                    h.at(0, Event::Answered);
                    h.after(100, Event::Tone);
                },
                Some("voicemail"),
            ),
            (
                "opening",
                |h| {
                    h.answer_person();
                },
                Some("hung-up-before-identity"),
            ),
            (
                "identity",
                |h| {
                    h.answer_person();
                    h.finish_all();
                },
                Some("hung-up-before-identity"),
            ),
            (
                "debt-disclosure",
                |h| {
                    h.answer_person();
                    h.finish_all();
                    h.reply("yes");
                },
                Some("hung-up"),
            ),
            ("reminder", |h| h.reach_reminder(), Some("hung-up")),
            (
                "confirm",
                |h| {
                    h.reach_reminder();
                    h.reply("I will pay 2026-11-25");
                },
                Some("hung-up"),
            ),
            (
                "closing",
                |h| {
                    h.reach_reminder();
                    h.reply("I already paid");
                },
                Some("verify-payment"),
            ),
            (
                "transfer",
                |h| {
                    h.c.cfg.agent_uri = Some("sip:a@b".into());
                    h.reach_reminder();
                    h.reply("agent");
                    h.finish_all();
                },
                Some("request_agent"),
            ),
            (
                "menu",
                |h| {
                    h.answer_person();
                    h.finish_all();
                    h.silence();
                    h.finish();
                    h.silence();
                },
                Some("hung-up-before-identity"),
            ),
        ];
        for (name, setup, reason) in states {
            let mut h = H::new();
            setup(&mut h);
            let was_playing = h.playing.is_some() && !matches!(name, "transfer");
            let a = h.after(300, Event::Hangup);
            assert!(h.c.is_ended(), "{name}");
            assert_eq!(h.c.poll_timeout(), None, "{name}");
            assert!(
                !a.iter()
                    .any(|a| matches!(a, Action::Play { .. } | Action::Hangup)),
                "{name}: {a:?}"
            );
            assert_eq!(
                h.c.outcome().route.map(|r| r.reason),
                reason.map(str::to_string),
                "{name}"
            );
            assert!(h.emitted_route().len() <= 1, "{name}");
            if reason.is_some() {
                assert_eq!(h.c.outcome().ended_by, Some(EndedBy::Them), "{name}");
            }
            // Nothing after the end.
            assert!(
                h.after(
                    10,
                    Event::Final {
                        text: "yes".into(),
                        confidence: 0.9
                    }
                )
                .is_empty(),
                "{name}"
            );
            assert!(h.after(10, Event::Dtmf('1')).is_empty(), "{name}");
            if was_playing {
                let last = h.c.outcome().turns.last().cloned().unwrap();
                assert!(
                    !last.finished && last.cut_at_ms == Some(300),
                    "{name}: the prompt was cut by the hang-up"
                );
            }
        }
    }

    // ----------------------------------------------------------------- AMD

    #[test]
    fn a_short_hello_then_silence_is_a_person() {
        let mut h = H::new();
        h.answer_person();
        let o = h.c.outcome();
        assert_eq!(
            (o.amd.verdict, o.amd.reason.as_str(), o.amd.words),
            (AmdVerdict::Human, "short-greeting", 1)
        );
        assert_eq!(o.disposition, Some(Disposition::Answered));
    }

    #[test]
    fn a_long_greeting_is_a_machine_and_the_message_follows_the_silence() {
        let mut h = H::new();
        h.at(0, Event::Answered);
        h.at(600, Event::SpeechStart);
        assert_eq!(h.c.poll_timeout(), Some(2100), "greeting limit");
        h.at(2100, Event::Timeout);
        let o = h.c.outcome();
        assert_eq!(
            (o.amd.verdict, o.amd.reason.as_str()),
            (AmdVerdict::Machine, "long-greeting")
        );
        assert!(h.plays().is_empty(), "wait for the end of the greeting");
        h.at(4000, Event::SpeechEnd);
        h.at(4300, Event::SpeechStart);
        h.at(5200, Event::SpeechEnd);
        assert_eq!(h.c.poll_timeout(), Some(7200));
        let a = h.at(7200, Event::Timeout);
        assert_eq!(play_of(&a), vec![("voicemail".into(), false)]);
        let Some(Action::Play { text, .. }) = a.first() else {
            panic!()
        };
        assert_eq!(
            text,
            "Hello, this is a message from Northwind Credit for Maria Lopez. Please call us back at 1, 8 0 0, 5 5 5, 0 1 9 9, between 9 AM and 6 PM, Monday to Friday. Thank you."
        );
        h.finish();
        assert!(h.has(|a| *a == Action::Hangup));
        let o = h.c.outcome();
        assert_eq!(o.disposition, Some(Disposition::Voicemail));
        let r = o.route.unwrap();
        assert_eq!(
            (r.kind, r.reason.as_str(), r.until),
            (
                RouteKind::Retry,
                "voicemail",
                at("2026-11-24T10:00:02.100-08:00")
            )
        );
        h.assert_no_debt_said();
    }

    #[test]
    fn many_words_are_a_machine_and_the_beep_starts_the_message() {
        let mut h = H::new();
        h.at(0, Event::Answered);
        let mut t = 400;
        for _ in 0..4 {
            h.at(t, Event::SpeechStart);
            h.at(t + 250, Event::SpeechEnd);
            t += 400;
        }
        let o = h.c.outcome();
        assert_eq!(
            (o.amd.verdict, o.amd.reason.as_str(), o.amd.words),
            (AmdVerdict::Machine, "max-words", 4)
        );
        h.at(t, Event::Tone);
        assert_eq!(h.plays(), ["voicemail"]);
    }

    #[test]
    fn a_beep_during_analysis_means_machine_and_message_at_once() {
        let mut h = H::new();
        h.at(0, Event::Answered);
        h.at(900, Event::Tone);
        assert_eq!(h.c.outcome().amd.reason, "beep");
        assert_eq!(h.plays(), ["voicemail"]);
    }

    #[test]
    fn a_long_transcript_in_the_greeting_is_a_machine() {
        let mut h = H::new();
        h.at(0, Event::Answered);
        h.at(300, Event::SpeechStart);
        h.at(
            1000,
            Event::Partial(
                "hi you've reached maria i can't take your call please leave a message".into(),
            ),
        );
        assert_eq!(h.c.outcome().amd.reason, "transcript-words");
    }

    #[test]
    fn initial_silence_is_uncertain_and_treated_as_configured() {
        let mut h = H::new();
        h.at(0, Event::Answered);
        assert_eq!(h.c.poll_timeout(), Some(2500));
        let a = h.at(2500, Event::Timeout);
        assert_eq!(h.c.outcome().amd.verdict, AmdVerdict::Uncertain);
        assert_eq!(
            play_of(&a),
            vec![("opening".into(), false)],
            "a person by default"
        );

        let mut h = H::with(Language::En, |c, _| {
            c.amd.uncertain_as = UncertainAs::Machine
        });
        h.at(0, Event::Answered);
        h.at(2500, Event::Timeout);
        assert_eq!(
            h.c.poll_timeout(),
            Some(4500),
            "silence already: message after the silence wait"
        );
        h.at(4500, Event::Timeout);
        assert_eq!(h.plays(), ["voicemail"]);
    }

    #[test]
    fn hang_up_mode_leaves_no_message_but_counts_the_voicemail() {
        let mut h = H::with(Language::En, |c, _| c.voicemail = VoicemailMode::HangUp);
        h.at(0, Event::Answered);
        let a = h.at(300, Event::Tone);
        assert_eq!(a[0], Action::Hangup);
        assert!(h.plays().is_empty());
        assert_eq!(h.route().reason, "voicemail");
        assert_eq!(h.c.outcome().disposition, Some(Disposition::Voicemail));
    }

    #[test]
    fn without_amd_the_opening_waits_for_the_speak_delay() {
        let mut h = H::with(Language::En, |c, _| {
            c.amd.enabled = false;
            c.speak_delay_ms = 400;
        });
        assert!(h.at(1000, Event::Answered).is_empty());
        assert_eq!(h.c.poll_timeout(), Some(1400));
        let a = h.at(1400, Event::Timeout);
        assert_eq!(play_of(&a), vec![("opening".into(), false)]);
        assert_eq!(h.c.outcome().amd.verdict, AmdVerdict::NotRun);
    }

    // ------------------------------------------------------------- Mandarin

    #[test]
    fn mandarin_promise_path_speaks_yuan_and_chinese_dates() {
        let mut h = H::with(Language::Zh, |_, _| {});
        h.answer_person();
        h.finish();
        assert!(h.log.iter().any(
            |(_, a)| matches!(a, Action::Play { text, .. } if text == "请问您是王伟本人吗？")
        ));
        h.finish();
        h.reply("是的，我是");
        h.finish();
        let reminder = h.log.iter().rev().find_map(|(_, a)| match a {
            Action::Play {
                prompt_id, text, ..
            } if prompt_id == "reminder" => Some(text.clone()),
            _ => None,
        });
        let reminder = reminder.unwrap();
        assert!(
            reminder.contains("一百二十五元五角") && reminder.contains("十一月二十日"),
            "{reminder}"
        );
        h.finish();
        h.reply("我会还 2026-11-27");
        let confirm = h.log.iter().rev().find_map(|(_, a)| match a {
            Action::Play { text, .. } => Some(text.clone()),
            _ => None,
        });
        assert_eq!(confirm.unwrap(), "您将在十一月二十七日还款，对吗？");
        h.finish();
        h.reply("对");
        h.finish_all();
        assert_eq!(h.route().until, at("2026-11-28T00:00:00-08:00"));
        assert_eq!(h.plays().last().unwrap(), "closing");
    }

    #[test]
    fn mandarin_third_parties_hear_no_debt() {
        for (reply, last) in [
            ("你打错了", "wrong_number"),
            ("不是", "identity_denied"),
            ("他不在", "not_available"),
        ] {
            let mut h = H::with(Language::Zh, |_, _| {});
            h.answer_person();
            h.finish_all();
            h.reply(reply);
            h.finish_all();
            assert_eq!(h.plays().last().unwrap(), last, "{reply}");
            h.assert_no_debt_said();
        }
    }

    #[test]
    fn mandarin_fillers_do_not_barge_in() {
        let mut h = H::with(Language::Zh, |_, _| {});
        h.reach_reminder_playing();
        h.after(100, Event::SpeechStart);
        h.after(200, Event::Partial("嗯嗯".into()));
        h.after(200, Event::Timeout);
        h.after(100, Event::SpeechEnd);
        h.after(
            100,
            Event::Final {
                text: "嗯嗯".into(),
                confidence: 0.8,
            },
        );
        assert!(!h.has(|a| matches!(a, Action::StopPlaying { .. })));
        h.after(100, Event::SpeechStart);
        h.after(400, Event::Timeout);
        assert!(
            h.has(|a| matches!(a, Action::StopPlaying { .. })),
            "real speech past the minimum cuts"
        );
    }

    // --------------------------------------------------------------- shape

    #[test]
    fn outcome_serialises_with_the_documented_turn_keys() {
        let mut h = H::new();
        h.reach_reminder();
        h.reply("I already paid");
        h.finish_all();
        let v = serde_json::to_value(h.c.outcome()).unwrap();
        let turn = &v["turns"][1];
        for k in [
            "prompt",
            "played_ms",
            "finished",
            "heard",
            "intent",
            "confidence",
            "start_ms",
            "end_ms",
        ] {
            assert!(turn.get(k).is_some(), "turn key {k}: {turn}");
        }
        assert_eq!(turn["intent"], "identity_confirmed");
        assert_eq!(v["route"]["kind"], "pause");
        assert_eq!(v["amd"]["verdict"], "human");
        assert_eq!(v["identity_confirmed"], true);
    }

    #[test]
    fn texts_to_prepare_cover_the_reminder_but_not_call_time_values() {
        let h = H::new();
        let texts = h.c.texts_to_prepare();
        assert!(texts
            .iter()
            .any(|(id, t)| id == "reminder" && t.contains("fifty cents")));
        assert!(!texts
            .iter()
            .any(|(id, _)| id == "confirm_promise" || id == "callback_confirm"));
    }
}
