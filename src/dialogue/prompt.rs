//! The ids of everything the conversation says (`PromptId`, `[say.<id>]`)
//! and of every question it listens after (`Listen`, `[listen.<turn>]`).
//! A fixed list checked when a script loads: the machine's logic compares
//! these enums, never strings. Owns the ids and what is fixed about each
//! (disclosures, the re-ask and menu of a question); never the wording,
//! which is the script's.

use crate::intent::IntentKind;
use crate::outcome::spelled;

spelled! {
    /// One sentence the agent can say: `[say.<id>]` in `prompts/<lang>.toml`
    /// and the audio file name. Every id must be in every script.
    #[derive(PartialOrd, Ord)]
    pub enum PromptId {
        /// Who is calling, for whom, that the call is recorded and automated (disclosure).
        Opening = "opening",
        /// "Am I speaking with {name}?"
        RightParty = "right_party",
        /// Answers "who is calling?" before identity, ending with the right-party question.
        WhoIsCalling = "who_is_calling",
        /// A debt-bearing reply before identity: ask who they are first.
        IdentityFirst = "identity_first",
        /// The right-party question again.
        ReaskIdentity = "reask_identity",
        /// The identity DTMF menu.
        MenuIdentity = "menu_identity",
        /// That this is about a debt (disclosure, after identity).
        DebtDisclosure = "debt_disclosure",
        /// The amount and due date, and the question.
        Reminder = "reminder",
        /// Answers "who is calling?" after identity.
        WhoIsCallingAfter = "who_is_calling_after",
        /// The reminder question again.
        ReaskReminder = "reask_reminder",
        /// The reminder DTMF menu.
        MenuReminder = "menu_reminder",
        /// Thanks for paying; we will check.
        AckPaid = "ack_paid",
        /// "When will you pay?"
        AskDate = "ask_date",
        /// The date question again.
        ReaskDate = "reask_date",
        /// Reads the promised date back: "Is that right?"
        ConfirmPromise = "confirm_promise",
        /// The read-back question again.
        ReaskConfirm = "reask_confirm",
        /// The promise is noted.
        PromiseRecorded = "promise_recorded",
        /// A promised date further out than a bot may accept.
        PromiseTooFar = "promise_too_far",
        /// Acknowledges hardship.
        AckHardship = "ack_hardship",
        /// Acknowledges a dispute.
        AckDispute = "ack_dispute",
        /// Apologises for a wrong number.
        WrongNumber = "wrong_number",
        /// "Not me": apologises and ends.
        IdentityDenied = "identity_denied",
        /// The debtor is not there: asks for a better time.
        NotAvailable = "not_available",
        /// Asks the debtor for a better time.
        AskBetterTime = "ask_better_time",
        /// The better-time question again.
        ReaskBetterTime = "reask_better_time",
        /// Ends a call with someone else (or no time) politely.
        NotAvailableClose = "not_available_close",
        /// Confirms the call-back time.
        CallbackConfirm = "callback_confirm",
        /// Confirms no more calls.
        StopCalling = "stop_calling",
        /// Acknowledges the request for a person.
        RequestAgent = "request_agent",
        /// "Please hold": a live transfer follows.
        Transfer = "transfer",
        /// A collector will call back.
        AgentCallback = "agent_callback",
        /// The transfer failed: apology and call-back promise.
        TransferFailed = "transfer_failed",
        /// Goodbye.
        Closing = "closing",
        /// Ends a silent call.
        NoAnswerClose = "no_answer_close",
        /// The limited-content voicemail message (disclosure).
        Voicemail = "voicemail",
        /// "Just to be sure: you'd like us to stop calling you?"
        ConfirmStopCalling = "confirm_stop_calling",
        /// "Just to be sure: this is not the number for {name}?"
        ConfirmWrongNumber = "confirm_wrong_number",
        /// "Just to be sure: {name} is not available right now?"
        ConfirmNotAvailable = "confirm_not_available",
        /// "Just to be sure: you would like to speak with a person?"
        ConfirmRequestAgent = "confirm_request_agent",
        /// "Just to be sure: you have already paid?" (after identity)
        ConfirmAlreadyPaid = "confirm_already_paid",
        /// "Just to be sure: paying is difficult for you right now?" (after identity)
        ConfirmHardship = "confirm_hardship",
        /// "Just to be sure: you are disputing this debt?" (after identity)
        ConfirmDispute = "confirm_dispute",
        /// The confirmation question again: yes or no, 1 or 2.
        ReaskConfirmIntent = "reask_confirm_intent",
        /// A stop or wrong-number request we could not confirm: no more
        /// automated calls, a person will review it.
        UnsureStopClose = "unsure_stop_close",
    }
}

impl PromptId {
    /// Disclosures are never cut off: the script may not mark them
    /// interruptible.
    pub fn is_disclosure(self) -> bool {
        matches!(
            self,
            PromptId::Opening | PromptId::DebtDisclosure | PromptId::Voicemail
        )
    }

    /// Prompts that end the call with a goodbye of their own; others are
    /// followed by `closing` when the call ends on them.
    pub fn says_goodbye(self) -> bool {
        !matches!(self, PromptId::AckPaid | PromptId::PromiseRecorded)
    }

    /// The short question that confirms a consequential intent heard with
    /// too little confidence to act on ("Just to be sure: ..."); `None`
    /// for intents that are acted on at any confidence.
    pub fn confirming(kind: IntentKind) -> Option<PromptId> {
        Some(match kind {
            IntentKind::StopCalling => PromptId::ConfirmStopCalling,
            IntentKind::WrongNumber => PromptId::ConfirmWrongNumber,
            IntentKind::NotAvailable => PromptId::ConfirmNotAvailable,
            IntentKind::RequestAgent => PromptId::ConfirmRequestAgent,
            IntentKind::AlreadyPaid => PromptId::ConfirmAlreadyPaid,
            IntentKind::Hardship => PromptId::ConfirmHardship,
            IntentKind::Dispute => PromptId::ConfirmDispute,
            _ => return None,
        })
    }
}

spelled! {
    /// A question the conversation listens after: `[listen.<turn>]` names
    /// the phrases the recognizer expects for it.
    pub enum Listen {
        /// Are you the debtor?
        Identity = "identity",
        /// The reminder: what about the debt?
        Reminder = "reminder",
        /// When will you pay?
        AskDate = "ask_date",
        /// Is the read-back date right?
        ConfirmPromise = "confirm_promise",
        /// When is a better time?
        BetterTime = "better_time",
        /// "Just to be sure: ...?" Yes or no to an intent heard unsure.
        ConfirmIntent = "confirm_intent",
    }
}

impl Listen {
    /// The prompt that asks it again after an unclear or silent reply.
    pub fn reask(self) -> PromptId {
        match self {
            Listen::Identity => PromptId::ReaskIdentity,
            Listen::Reminder => PromptId::ReaskReminder,
            Listen::AskDate => PromptId::ReaskDate,
            Listen::ConfirmPromise => PromptId::ReaskConfirm,
            Listen::BetterTime => PromptId::ReaskBetterTime,
            Listen::ConfirmIntent => PromptId::ReaskConfirmIntent,
        }
    }

    /// The DTMF menu offered after the re-ask, where the question has one.
    pub fn menu(self) -> Option<PromptId> {
        match self {
            Listen::Identity => Some(PromptId::MenuIdentity),
            Listen::Reminder => Some(PromptId::MenuReminder),
            _ => None,
        }
    }

    /// The question itself, asked again after answering "who is calling?".
    pub fn question(self) -> PromptId {
        match self {
            Listen::Identity => PromptId::RightParty,
            Listen::Reminder => PromptId::Reminder,
            Listen::AskDate => PromptId::AskDate,
            Listen::ConfirmPromise => PromptId::ConfirmPromise,
            Listen::BetterTime => PromptId::AskBetterTime,
            // The question depends on what is confirmed; the machine asks it.
            Listen::ConfirmIntent => PromptId::ReaskConfirmIntent,
        }
    }
}
