//! The event pump of one call: leg events, recognizer results, finished
//! renders, shutdown and the conversation's timer in; the conversation's
//! actions out to the leg and the recognizer. Nothing in it waits on
//! anything slower than a channel send: synthesis and recognition happen
//! elsewhere and come back as events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ears::{Ears, Heard};
use super::hooks::TransferReporter;
use super::kit::LangKit;
use super::prompts::{voice_onset_ms, Prompts, Rendered};
use super::recognizer::{AsrLink, AsrOut};
use super::timing::Timings;
use super::AgentError;
use crate::dialogue::{Action, Conversation, Event, PromptId};
use crate::telephony::leg::{CallLeg, LegCommand, LegEvent};
use crate::telephony::report::CallReport;

/// One call's moving parts.
pub(super) struct Pump<'a> {
    pub conv: Conversation,
    pub leg: CallLeg,
    pub kit: &'a LangKit,
    pub ears: Ears,
    pub asr: AsrLink,
    pub asr_rx: mpsc::Receiver<AsrOut>,
    pub prompts: Prompts,
    pub timings: Timings,
    pub shutdown: CancellationToken,
    pub t0: Instant,
    /// Told when a live transfer starts (webhooks), if anyone asks.
    pub transfers: Option<TransferReporter>,
    answered: bool,
    shutdown_told: bool,
    heard: Vec<Heard>,
    /// The prompt last queued and its length, for `PlaybackStarted`.
    queued: Option<(PromptId, u64)>,
}

impl<'a> Pump<'a> {
    /// A pump for a call dialled at `t0`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        conv: Conversation,
        leg: CallLeg,
        kit: &'a LangKit,
        ears: Ears,
        (asr, asr_rx): (AsrLink, mpsc::Receiver<AsrOut>),
        prompts: Prompts,
        shutdown: CancellationToken,
        t0: Instant,
    ) -> Self {
        Pump {
            conv,
            leg,
            kit,
            ears,
            asr,
            asr_rx,
            prompts,
            timings: Timings::default(),
            shutdown,
            t0,
            transfers: None,
            answered: false,
            shutdown_told: false,
            heard: Vec::new(),
            queued: None,
        }
    }

    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// Runs the call until the leg reports its end.
    pub async fn run(&mut self) -> Result<CallReport, AgentError> {
        loop {
            self.drain_actions().await;
            let timer = self
                .conv
                .poll_timeout()
                .map(|t| self.t0 + Duration::from_millis(t));
            tokio::select! {
                ev = self.leg.next_event() => match ev {
                    Some(LegEvent::Ended(report)) => {
                        if !self.conv.is_ended() {
                            self.conv.handle(self.ms(), Event::Hangup);
                            while self.conv.poll_action().is_some() {}
                        }
                        return Ok(*report);
                    }
                    Some(ev) => self.on_leg(ev),
                    None => return Err(AgentError::Audio("call ended without a report".into())),
                },
                Some(out) = self.asr_rx.recv() => self.on_asr(out),
                Some(r) = self.prompts.done.recv() => self.on_rendered(r).await,
                _ = self.shutdown.cancelled(), if !self.shutdown_told => {
                    self.shutdown_told = true;
                    self.conv.handle(self.ms(), Event::Shutdown);
                }
                _ = sleep_until(timer) => self.conv.handle(self.ms(), Event::Timeout),
            }
        }
    }

    /// Does what the conversation asks, in order.
    async fn drain_actions(&mut self) {
        while let Some(action) = self.conv.poll_action() {
            match action {
                Action::Play { prompt, text, .. } => {
                    // Audio not ready yet arrives later as a `Rendered`.
                    if let Some(pcm) = self.prompts.get_or_render(prompt, &text) {
                        self.play(prompt, pcm).await;
                    }
                }
                Action::StopPlaying { .. } => {
                    self.prompts.cancel_wait();
                    self.leg.send(LegCommand::ClearPlayQueue).await;
                }
                Action::Listen { turn, phrases } => {
                    let grammar = self.kit.grammar(turn, phrases);
                    self.asr.listen(turn.as_str(), grammar)
                }
                Action::EndUtterance => {
                    self.ears.end_utterance();
                    self.asr.finish();
                }
                Action::Transfer { agent_uri, headers } => {
                    if let Some(t) = &self.transfers {
                        t.report(self.conv.outcome(), &agent_uri, self.ms());
                    }
                    let target = agent_uri;
                    self.leg
                        .send(LegCommand::Transfer { target, headers })
                        .await;
                }
                Action::Hangup => {
                    self.leg.send(LegCommand::Hangup).await;
                }
            }
        }
    }

    async fn play(&mut self, prompt: PromptId, pcm: Arc<[i16]>) {
        let now = self.ms();
        self.timings
            .prompt_queued(now, prompt.as_str(), voice_onset_ms(&pcm));
        self.queued = Some((prompt, pcm.len() as u64 / 8));
        let id = prompt.as_str().to_string();
        self.leg.send(LegCommand::Play { id, pcm }).await;
    }

    async fn on_rendered(&mut self, r: Rendered) {
        if !self.prompts.is_awaited(&r) {
            return;
        }
        let pcm = r.pcm.unwrap_or_else(|e| {
            tracing::warn!(prompt = %r.prompt, error = %e, "cannot render prompt");
            Arc::from(Vec::new())
        });
        self.play(r.prompt, pcm).await;
    }

    fn on_leg(&mut self, ev: LegEvent) {
        let now = self.ms();
        let event = match ev {
            LegEvent::Answered { .. } => {
                self.answered = true;
                Event::Answered
            }
            LegEvent::Audio { pcm, received, .. } => return self.on_audio(now, &pcm[..], received),
            LegEvent::Dtmf { digit, .. } => {
                self.ears.rfc4733_seen();
                Event::Dtmf(digit)
            }
            LegEvent::PlayStarted { id, .. } => {
                self.timings.prompt_started(now, &id);
                match self.queued.filter(|(p, _)| p.as_str() == id) {
                    Some((prompt, duration_ms)) => Event::PlaybackStarted {
                        prompt,
                        duration_ms,
                    },
                    None => return,
                }
            }
            LegEvent::PlayFinished { id, .. } => match PromptId::parse(&id) {
                Some(prompt) => Event::PlaybackFinished { prompt },
                None => return,
            },
            LegEvent::TransferResult { ok, .. } => Event::TransferResult { ok },
            LegEvent::Ringing | LegEvent::PlayStopped { .. } | LegEvent::Ended(_) => return,
        };
        self.conv.handle(now, event);
    }

    fn on_audio(&mut self, now: u64, pcm: &[i16], received: bool) {
        if !self.answered {
            return;
        }
        self.heard.clear();
        self.ears.frame(pcm, received, &mut self.heard);
        if !self.ears.speech.is_empty() {
            self.asr.audio(std::mem::take(&mut self.ears.speech));
        } else {
            // Control still waiting for room goes as soon as there is some,
            // speech or not (an utterance's end must not wait for the next).
            self.asr.flush();
        }
        for i in 0..self.heard.len() {
            match self.heard[i] {
                Heard::SpeechStart => self.conv.handle(now, Event::SpeechStart),
                Heard::SpeechEnd { silent_ms } => {
                    self.timings.speech_ended(now, silent_ms);
                    self.conv.handle(now, Event::SpeechEnd);
                    self.asr.finish();
                }
                Heard::Tone => self.conv.handle(now, Event::Tone),
                Heard::Digit(d) => self.conv.handle(now, Event::Dtmf(d)),
            }
        }
    }

    fn on_asr(&mut self, out: AsrOut) {
        let now = self.ms();
        match out {
            AsrOut::Partial(text) => self.conv.handle(now, Event::Partial(text)),
            AsrOut::Final(t, work) => {
                self.timings.final_heard(now, &t.text, &work);
                let (text, confidence) = (t.text, t.confidence);
                self.conv.handle(now, Event::Final { text, confidence });
            }
            AsrOut::Failed(e) => tracing::warn!(error = %e, "recognizer failed on this utterance"),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
