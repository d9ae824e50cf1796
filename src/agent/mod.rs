//! The agent: the thin tokio driver that runs one reminder conversation over
//! a `CallLeg`. It owns the per-process resources every call shares (the
//! language kits: scripts, classifiers, prompt audio, grammars; a pool of
//! recognizers) and, per call, moves events between the leg, the detectors,
//! the recognizer thread and the pure `dialogue::Conversation`. It never
//! decides what to say or where a case goes: the conversation does.
//! Recognition runs on its own thread and synthesis on blocking threads, so
//! neither ever delays a packet or the event pump.
//!
//! - `kit`: one language's resources, loaded once.
//! - `call`: one attempt, from the conversation's set-up to its outcome.
//! - `pump`: the per-call event loop.
//! - `ears`: VAD, beep and in-band DTMF per frame.
//! - `recognizer`: the recognizer thread and its bounded link.
//! - `prompts`: prompt audio before and during the call.
//! - `timing`: where each reply's latency went.
//! - `files`: the names of an attempt's files.

mod call;
mod ears;
mod error;
mod files;
mod hooks;
mod kit;
mod paths;
mod prompts;
mod pump;
mod recognizer;
mod timing;

pub use call::{AttemptOutcome, CallOptions};
pub use error::AgentError;
pub use files::{attempt_file_prefix, attempt_file_stem};
pub use hooks::{TransferHook, TransferStarted};
pub use kit::sphinx_as_calls;
pub use paths::AgentPaths;
pub use timing::ReplyTiming;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::account::Language;
use crate::asr::AsrConfig;
use crate::asr::Recognizer;
use crate::config::Config;
use crate::dialogue::DialogueConfig;
use crate::telephony::gateway::Gateway;
use kit::LangKit;

/// Idle recognizers per language, reused call after call.
type RecognizerPool = Arc<Mutex<HashMap<Language, Vec<Box<dyn Recognizer>>>>>;

/// The shared resources of every call the process places.
pub struct Agent {
    gateway: Arc<dyn Gateway>,
    kits: HashMap<Language, LangKit>,
    recognizers: RecognizerPool,
    asr: AsrConfig,
    dialogue: DialogueConfig,
    /// The leg's transfer timeout (`[sip] transfer_timeout_s`), in ms.
    transfer_timeout_ms: u64,
    /// `[campaign] caller_id`: calls' caller ID when the account names none.
    caller_id: Option<String>,
    /// `[transfer] mode`: REFER, or a bridge through duecall.
    transfer_mode: crate::telephony::bridge::TransferMode,
}

impl Agent {
    /// Loads the scripts and lexicons for `languages` (checked up front) and
    /// readies prompt audio. Recognizers are opened when a call needs one,
    /// off the async workers, and reused.
    pub fn new(
        gateway: Arc<dyn Gateway>,
        config: &Config,
        paths: &AgentPaths,
        languages: &[Language],
    ) -> Result<Agent, AgentError> {
        let dialogue = config.dialogue.clone();
        let asr = config.asr.clone();
        let mut kits = HashMap::new();
        for &lang in languages {
            kits.insert(
                lang,
                LangKit::load(lang, paths, &asr, dialogue.intent_threshold)?,
            );
        }
        Ok(Agent {
            gateway,
            kits,
            recognizers: Arc::new(Mutex::new(HashMap::new())),
            asr,
            dialogue,
            transfer_timeout_ms: config.sip.transfer_timeout_s.saturating_mul(1000),
            caller_id: config.campaign.caller_id.clone(),
            transfer_mode: config.transfer.mode,
        })
    }

    /// The gateway calls go out on.
    pub fn gateway(&self) -> &Arc<dyn Gateway> {
        &self.gateway
    }

    fn kit(&self, lang: Language) -> Result<&LangKit, AgentError> {
        self.kits.get(&lang).ok_or_else(|| AgentError::Config {
            key: "account.language".into(),
            message: format!("no script loaded for `{}`", lang.as_str()),
        })
    }

    /// Takes a recognizer for `lang` from the pool, or opens one on a
    /// blocking thread (loading a model must not stall other calls' audio).
    async fn take_recognizer(&self, lang: Language) -> Result<Box<dyn Recognizer>, AgentError> {
        if let Ok(mut pool) = self.recognizers.lock() {
            if let Some(r) = pool.get_mut(&lang).and_then(|v| v.pop()) {
                return Ok(r);
            }
        }
        let asr = self.asr.clone();
        let kit = self.kits.get(&lang);
        let replies = kit.and_then(|k| k.replies.clone());
        // What a text means, for the agreement between the two engines.
        let meaning = kit.map(|k| {
            let understand = k.understand.clone();
            let m: crate::asr::call::Meaning = Arc::new(move |text: &str| {
                let i = understand.text(text, chrono::Local::now().naive_local());
                (i.kind, i.confidence)
            });
            m
        });
        let opened = tokio::task::spawn_blocking(move || {
            crate::asr::call::open_call(lang.as_str(), &asr, replies, meaning)
        })
        .await
        .map_err(|e| AgentError::Audio(format!("recognizer loading died: {e}")))?;
        opened
            .map(|r| Box::new(r) as Box<dyn Recognizer>)
            .map_err(|source| AgentError::Asr {
                lang: lang.as_str().into(),
                source,
            })
    }

    /// Returns a recognizer to the pool for the next call.
    fn give_back(&self, lang: Language, mut r: Box<dyn Recognizer>) {
        r.reset();
        if let Ok(mut pool) = self.recognizers.lock() {
            pool.entry(lang).or_default().push(r);
        }
    }

    /// Checks that a recognizer can be opened for `lang` (for start-up errors
    /// before any call is placed); the one opened is kept for the first call.
    pub async fn check_asr(&self, lang: Language) -> Result<&'static str, AgentError> {
        let r = self.take_recognizer(lang).await?;
        let engine = r.engine();
        self.give_back(lang, r);
        Ok(engine)
    }
}

#[cfg(test)]
mod tests;
