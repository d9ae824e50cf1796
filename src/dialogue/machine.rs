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

use super::routing::{self, promise_acceptable, route_for, RouteContext, RoutingConfig, UnknownRoute};
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
    /// The case's route, emitted once when the conversation ends.
    Route(Route),
    /// Put the case in the collectors' escalation queue with this summary.
    Escalate {
        /// Why (`hardship`, `transfer-failed`, `unknown`, ...).
        reason: String,
        /// Account, intent and the timed transcript.
        summary: String,
    },
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

/// An escalation handed to the collectors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalationRecord {
    /// Why.
    pub reason: String,
    /// When (driver ms).
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
    /// Escalations emitted.
    pub escalations: Vec<EscalationRecord>,
    /// Prompts the debt guard refused to play (must stay empty).
    pub refused_prompts: Vec<String>,
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
    Reply { turn: Turn, deadline: Option<Millis> },
    Transfer { deadline: Millis },
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
            amount: Some(speak::amount_words(account.amount, account.currency.as_deref(), lang)),
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
            out: DialogueOutcome {
                turns: Vec::new(),
                route: None,
                amd: AmdResult { verdict: AmdVerdict::NotRun, reason: String::new(), decided_at_ms: None, words: 0, greeting_ms: 0 },
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
            .filter(|p| !p.placeholders().iter().any(|x| x == "promise_date" || x == "callback_time"))
            .filter_map(|p| self.script.render(&p.id, &self.vars).map(|t| (p.id.clone(), t)))
            .collect()
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
            let Some(due) = self.poll_timeout() else { return };
            if due > now {
                return;
            }
            self.fire_one(due);
        }
    }

    fn fire_one(&mut self, at: Millis) {
        if self.barge_deadline.is_some_and(|d| d <= at) {
            self.barge_deadline = None;
            let filler = !self.speech.partial.is_empty() && self.script.is_backchannel(&self.speech.partial);
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
                if let Some((_, verdict)) = self.amd_deadlines().into_iter().filter(|(d, _)| *d <= at).min_by_key(|(d, _)| *d) {
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
            Wait::Reply { turn, deadline: Some(d) } if d <= at => self.on_no_input(at, turn),
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
            self.amd_state = AmdState { answered: now, ..AmdState::default() };
        } else {
            self.out.amd = AmdResult { verdict: AmdVerdict::NotRun, reason: "disabled".into(), decided_at_ms: None, words: 0, greeting_ms: 0 };
            self.begin_person(now);
        }
    }

    /// Pending AMD deadlines with the verdict each would give.
    fn amd_deadlines(&self) -> Vec<(Millis, (AmdVerdict, &'static str))> {
        let a = &self.amd_state;
        let c = &self.cfg.amd;
        let mut d = vec![(a.answered + c.total_analysis_ms, (AmdVerdict::Uncertain, "too-long"))];
        match (a.first_speech, a.in_speech_since) {
            (None, _) => d.push((a.answered + c.initial_silence_ms, (AmdVerdict::Uncertain, "initial-silence"))),
            (Some(_), Some(since)) => {
                d.push((since + c.greeting_ms.saturating_sub(a.voiced), (AmdVerdict::Machine, "long-greeting")));
            }
            (Some(_), None) => {
                if let (Some(end), true) = (a.last_end, a.words > 0) {
                    d.push((end + c.after_greeting_silence_ms, (AmdVerdict::Human, "short-greeting")));
                }
            }
        }
        d
    }

    fn amd_decide(&mut self, now: Millis, verdict: AmdVerdict, reason: &str) {
        let voiced_now = self.amd_state.voiced + self.amd_state.in_speech_since.map(|s| now - s).unwrap_or(0);
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
        self.speech = Speech { speaking: self.speech.speaking, ..Speech::default() };
        self.turn = Some(Turn::Identity);
        self.set_plan(now, vec![Step::Play("opening"), Step::Play("right_party"), Step::Listen(Turn::Identity)]);
    }

    fn amd_words_in(&self, text: &str) -> u32 {
        match self.script.meta.language {
            Language::En => text.split_whitespace().count() as u32,
            Language::Zh => (text.chars().filter(|c| c.is_alphanumeric()).count() as u32).div_ceil(2),
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
        let Wait::Playback(p) = self.wait.clone() else { return };
        let at_ms = now - p.started;
        self.actions.push_back(Action::StopPlaying { prompt_id: p.prompt.to_string(), at_ms });
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
                self.wait = Wait::Reply { turn, deadline: None };
                if !self.speech.speaking {
                    self.wait = Wait::Reply { turn, deadline: Some(now + self.cfg.no_input_ms) };
                }
                return;
            }
            self.plan.pop_front();
        }
        self.wait = Wait::Nothing;
    }

    fn on_playback_finished(&mut self, now: Millis, prompt_id: &str) {
        let Wait::Playback(p) = self.wait.clone() else { return };
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
        self.finish(EndedBy::Them);
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
            self.finish(EndedBy::Us);
        } else {
            self.escalate(now, "transfer-failed");
            self.set_plan(now, vec![Step::Play("transfer_failed"), Step::Hangup]);
        }
    }

    // --------------------------------------------------------------- replies

    fn on_meaning(&mut self, now: Millis, heard: String, asr_confidence: Option<f32>, mut intent: Intent) {
        let Wait::Reply { turn, .. } = self.wait.clone() else { return };
        if intent.confidence < self.cfg.intent_threshold && intent.kind != IntentKind::Unknown {
            intent.reason = format!("{} below threshold {}: {}", intent.kind.as_str(), self.cfg.intent_threshold, intent.reason);
            intent.kind = IntentKind::Unknown;
        }
        let start = self.speech.started.unwrap_or(now);
        let end = self.speech.ended.filter(|e| *e >= start).unwrap_or(now);
        self.record_reply(Some(heard), Some(&intent), asr_confidence, Some(intent.reason.clone()), start, end);
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
        let Some(r) = self.out.turns.last_mut() else { return };
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
                self.vars.callback_time = Some(speak::datetime_words(t, self.script.meta.language, self.local_time(now).date()));
                self.end_with(now, &intent, "callback_confirm");
            }
            K::CallbackLater | K::NotAvailable => {
                if turn == Turn::BetterTime {
                    self.miss(now, turn, false);
                } else {
                    let prompt = if confirmed { "ask_better_time" } else { "not_available" };
                    self.ask(now, Turn::BetterTime, prompt);
                }
            }
            K::WhoIsCalling => {
                self.who_count += 1;
                if self.who_count > self.cfg.max_who_is_calling {
                    self.miss(now, turn, false);
                } else if confirmed {
                    self.set_plan(now, vec![Step::Play("who_is_calling_after"), Step::Play(turn.question()), Step::Listen(turn)]);
                } else {
                    // The answer ends with the right-party question itself.
                    self.turn = Some(Turn::Identity);
                    self.set_plan(now, vec![Step::Play("who_is_calling"), Step::Listen(Turn::Identity)]);
                }
            }
            K::IdentityConfirmed if !confirmed => {
                self.out.identity_confirmed = true;
                self.turn = Some(Turn::Reminder);
                self.misses = 0;
                self.set_plan(now, vec![Step::Play("debt_disclosure"), Step::Play("reminder"), Step::Listen(Turn::Reminder)]);
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
                promise.slots = Slots { date: self.pending_promise, time: None };
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
                    slots: Slots { date: Some(d), time: None },
                };
                self.decide(now, &intent);
                let mut steps = vec![Step::Play("promise_too_far")];
                steps.extend(self.agent_steps("promise-too-far"));
                self.set_plan(now, steps);
            }
            Some(d) => {
                self.pending_promise = Some(d);
                self.vars.promise_date = Some(speak::date_words(d, self.script.meta.language, today));
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
                let reason = if turn == Turn::AskDate { "promise-without-date" } else { "promise-unconfirmed" };
                self.out.route =
                    Some(Route { kind: RouteKind::Agent, reason: reason.to_string(), until: None, scope: None, follow_up: None });
                let steps = self.agent_steps(reason);
                self.set_plan(now, steps);
            }
            Turn::BetterTime => {
                let kind = if self.out.identity_confirmed { IntentKind::CallbackLater } else { IntentKind::NotAvailable };
                let i = Intent { kind, confidence: 0.0, reason: "no time given".into(), slots: Slots::default() };
                self.decide(now, &i);
                self.set_plan(now, vec![Step::Play("not_available_close"), Step::Hangup]);
            }
            Turn::Identity | Turn::Reminder => {
                let i = Intent {
                    kind: IntentKind::Unknown,
                    confidence: 0.0,
                    reason: if self.last_miss_silent { "silence" } else { "unclear" }.to_string(),
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
        self.account.agent_uri.clone().or_else(|| self.cfg.agent_uri.clone()).filter(|u| !u.trim().is_empty())
    }

    /// A live transfer when an agent URI is known; else an escalation record
    /// and a promise of a call back.
    fn agent_steps(&self, reason: &str) -> Vec<Step> {
        if self.agent_uri().is_some() {
            vec![Step::Play("transfer"), Step::Transfer]
        } else {
            vec![Step::Escalate(reason.to_string()), Step::Play("agent_callback"), Step::Hangup]
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
        let phrases = self.script.listen.get(turn.id()).cloned().unwrap_or_default();
        self.actions.push_back(Action::Listen { turn: turn.id().to_string(), phrases });
    }

    /// Runs steps until one has to wait for the driver.
    fn run(&mut self, now: Millis) {
        while matches!(self.wait, Wait::Nothing) && self.stage != Stage::Ended {
            let Some(step) = self.plan.pop_front() else { return };
            self.start_step(now, step);
        }
    }

    fn start_step(&mut self, now: Millis, step: Step) {
        match step {
            Step::Play(id) => {
                let script = Arc::clone(&self.script);
                let Some(prompt) = script.prompt(id) else {
                    self.out.refused_prompts.push(format!("{id} (not in script)"));
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
                self.wait = Wait::Playback(Playing { prompt: id, started: now, interruptible, record: self.out.turns.len() - 1 });
                // Speech already under way when an interruptible prompt starts counts from now.
                if interruptible && self.speech.speaking {
                    self.barge_deadline = Some(now + self.cfg.barge_in_min_speech_ms);
                }
            }
            Step::Listen(turn) => {
                self.announce_listen(turn);
                self.turn = Some(turn);
                let deadline = if self.speech.speaking { None } else { Some(now + self.cfg.no_input_ms) };
                self.wait = Wait::Reply { turn, deadline };
            }
            Step::Transfer => {
                let Some(uri) = self.agent_uri() else {
                    self.escalate(now, "no-agent-uri");
                    self.plan = vec![Step::Play("agent_callback"), Step::Hangup].into();
                    return;
                };
                let intent = self.last_intent.as_ref().map(|i| i.kind.as_str()).unwrap_or("unknown");
                let case = self.cfg.case_id.clone().unwrap_or_else(|| self.account.account_id.clone());
                let headers = vec![
                    ("X-Duecall-Account".to_string(), self.account.account_id.clone()),
                    ("X-Duecall-Intent".to_string(), intent.to_string()),
                    ("X-Duecall-Case".to_string(), case),
                ];
                self.out.transfer = Some(TransferRecord { agent_uri: uri.clone(), ok: None });
                self.actions.push_back(Action::Transfer { agent_uri: uri, headers });
                self.wait = Wait::Transfer { deadline: now + self.cfg.transfer_timeout_ms };
            }
            Step::Escalate(reason) => self.escalate(now, &reason),
            Step::Hangup => {
                self.actions.push_back(Action::Hangup);
                if self.out.route.is_none() {
                    let ctx = self.route_ctx(now);
                    self.out.route = Some(routing::route_hung_up(&ctx, &self.cfg.routing));
                }
                self.finish(EndedBy::Us);
            }
        }
    }

    fn escalate(&mut self, now: Millis, reason: &str) {
        self.out.escalations.push(EscalationRecord { reason: reason.to_string(), at_ms: now });
        let summary = self.summary(reason);
        self.actions.push_back(Action::Escalate { reason: reason.to_string(), summary });
    }

    /// Account, reason, last intent and the timed transcript, for a collector.
    fn summary(&self, reason: &str) -> String {
        let mut s = format!(
            "account {}; reason {}; identity {}; intent {}\n",
            self.account.account_id,
            reason,
            if self.out.identity_confirmed { "confirmed" } else { "not confirmed" },
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
        s
    }

    fn finish(&mut self, by: EndedBy) {
        if self.stage == Stage::Ended {
            return;
        }
        self.stage = Stage::Ended;
        self.wait = Wait::Nothing;
        self.plan.clear();
        self.barge_deadline = None;
        self.delay_until = None;
        self.out.ended_by = Some(by);
        if let Some(r) = self.out.route.clone() {
            self.actions.push_back(Action::Route(r));
        }
    }

    fn local_time(&self, now: Millis) -> NaiveDateTime {
        (self.cfg.started_at + Duration::milliseconds(now.min(i64::MAX as u64) as i64)).naive_local()
    }

    fn route_ctx(&self, now: Millis) -> RouteContext<'_> {
        RouteContext {
            account: &self.account,
            now: self.cfg.started_at + Duration::milliseconds(now.min(i64::MAX as u64) as i64),
            identity_confirmed: self.out.identity_confirmed,
        }
    }
}

