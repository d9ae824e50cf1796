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
use crate::telephony::bridge::{self, Bridge, BridgeAction, BridgeInput, BridgePhase};
use crate::telephony::gateway::Gateway;
use crate::telephony::leg::{CallLeg, LegCommand, LegEvent};
use crate::telephony::report::{CallReport, TransferReport};
use crate::telephony::sip::DialRequest;

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
    /// Set when transfers are bridged (`[transfer] mode = "bridge"`).
    pub bridger: Option<Bridger>,
    /// The collector's leg of a bridged transfer, once dialled.
    collector: Option<Collector>,
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
            bridger: None,
            collector: None,
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
                        let mut report = *report;
                        self.debtor_ended(&mut report).await;
                        return Ok(report);
                    }
                    Some(LegEvent::Audio { pcm, .. }) if self.bridged() => self.relay_to_collector(pcm),
                    Some(_) if self.bridged() => {}
                    Some(ev) => self.on_leg(ev),
                    None => return Err(AgentError::Audio("call ended without a report".into())),
                },
                ev = collector_event(&mut self.collector) => self.on_collector(ev).await,
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
                    if self.bridger.is_some() {
                        self.dial_collector(agent_uri, headers).await;
                        continue;
                    }
                    let target = agent_uri;
                    self.leg
                        .send(LegCommand::Transfer { target, headers })
                        .await;
                }
                // The debtor is with the collector: the bridge ends the call.
                Action::Hangup if self.bridged() => {}
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

/// What a bridged transfer needs: the gateway to dial the collector on
/// (the same trunks as the debtor's call) and the attempt's id.
pub(super) struct Bridger {
    pub gateway: Arc<dyn Gateway>,
    pub attempt_id: Option<i64>,
    /// How long the collector may ring: a little under the conversation's
    /// transfer timeout, so the collector's failure reaches it first.
    pub ring_timeout: Duration,
}

/// The collector's leg of a bridged transfer and where the transfer is.
struct Collector {
    target: String,
    /// None once its `Ended` came (or it could not be dialled).
    leg: Option<CallLeg>,
    state: Bridge,
}

/// The collector leg's next event; pending when there is none to wait for.
async fn collector_event(c: &mut Option<Collector>) -> Option<LegEvent> {
    match c.as_mut().and_then(|c| c.leg.as_mut()) {
        Some(leg) => leg.next_event().await,
        None => std::future::pending().await,
    }
}

impl Pump<'_> {
    fn bridged(&self) -> bool {
        self.collector
            .as_ref()
            .is_some_and(|c| c.state.is_bridged())
    }

    /// A bridged transfer starts: the collector is dialled (with the
    /// case in headers) while the debtor hears the transfer prompt.
    async fn dial_collector(&mut self, target: String, headers: Vec<(String, String)>) {
        let Some(b) = &self.bridger else { return };
        let out = self.conv.outcome();
        let reason = out
            .route
            .as_ref()
            .map(|r| r.reason.clone())
            .or_else(|| out.intent.map(|i| i.as_str().to_string()))
            .unwrap_or_else(|| "unknown".into());
        let mut req = DialRequest::to(target.trim());
        req.headers = bridge::collector_headers(&headers, b.attempt_id, &reason);
        req.ring_timeout = Some(b.ring_timeout);
        req.attempt_id = b.attempt_id;
        let now = self.ms();
        let mut state = Bridge::new(now);
        tracing::info!(target = %target, "bridged transfer: dialling the collector");
        let leg = match b.gateway.dial(req).await {
            Ok(leg) => {
                state.report_mut().collector_call_id = Some(leg.call_id.clone());
                Some(leg)
            }
            Err(e) => {
                tracing::warn!(error = %e, "bridged transfer: cannot dial the collector");
                let a = state.on(now, BridgeInput::DialFailed(e.to_string()));
                self.collector = Some(Collector {
                    target,
                    leg: None,
                    state,
                });
                self.bridge_action(a).await;
                return;
            }
        };
        self.collector = Some(Collector { target, leg, state });
    }

    /// An event of the collector's leg.
    async fn on_collector(&mut self, ev: Option<LegEvent>) {
        let now = self.ms();
        let Some(c) = self.collector.as_mut() else {
            return;
        };
        let input = match ev {
            Some(LegEvent::Audio { pcm, .. }) => {
                if c.state.is_bridged() {
                    c.state.report_mut().frames_to_debtor += 1;
                    let _ = self.leg.commands.try_send(LegCommand::Feed(pcm));
                }
                return;
            }
            Some(LegEvent::Answered { .. }) => {
                // Still waiting: the conversation has no result for its transfer yet.
                let waiting = !self.conv.is_ended()
                    && self
                        .conv
                        .outcome()
                        .transfer
                        .as_ref()
                        .is_some_and(|t| t.ok.is_none());
                if waiting {
                    c.state.report_mut().answered_at = Some(chrono::Utc::now());
                    tracing::info!(call_id = %self.leg.call_id, "bridged transfer: the collector answered; bridging");
                }
                BridgeInput::CollectorAnswered {
                    conversation_waiting: waiting,
                }
            }
            Some(LegEvent::Ended(r)) => {
                c.leg = None;
                BridgeInput::CollectorEnded {
                    disposition: r.disposition,
                    status: r.sip_status,
                }
            }
            None => {
                c.leg = None;
                BridgeInput::CollectorEnded {
                    disposition: crate::outcome::Disposition::Failed,
                    status: None,
                }
            }
            Some(_) => return,
        };
        let a = c.state.on(now, input);
        self.bridge_action(a).await;
    }

    async fn bridge_action(&mut self, a: Option<BridgeAction>) {
        let now = self.ms();
        match a {
            Some(BridgeAction::TransferResult { ok }) => {
                self.conv.handle(now, Event::TransferResult { ok });
            }
            Some(BridgeAction::HangUpCollector) => {
                if let Some(leg) = self.collector.as_ref().and_then(|c| c.leg.as_ref()) {
                    leg.send(LegCommand::Hangup).await;
                }
            }
            Some(BridgeAction::HangUpDebtor) => {
                tracing::info!(call_id = %self.leg.call_id, "bridged transfer: the collector hung up; ending the call");
                self.leg.send(LegCommand::Hangup).await;
            }
            None => {}
        }
    }

    /// A debtor frame across the bridge.
    fn relay_to_collector(&mut self, pcm: [i16; crate::telephony::leg::FRAME_SAMPLES]) {
        if let Some(c) = self.collector.as_mut() {
            if let Some(leg) = c.leg.as_ref() {
                c.state.report_mut().frames_to_collector += 1;
                let _ = leg.commands.try_send(LegCommand::Feed(pcm));
            }
        }
    }

    /// The debtor's leg ended: a collector still on the line is hung up
    /// (its end awaited a little, for its report), and the bridge's report
    /// goes into the debtor's call report.
    async fn debtor_ended(&mut self, report: &mut CallReport) {
        let now = self.ms();
        let Some(mut c) = self.collector.take() else {
            return;
        };
        let a = c.state.on(now, BridgeInput::DebtorEnded);
        if let (Some(BridgeAction::HangUpCollector), Some(leg)) = (a, c.leg.as_mut()) {
            leg.send(LegCommand::Hangup).await;
            let waited = tokio::time::timeout(Duration::from_secs(5), leg.wait_end()).await;
            if let Ok(Some(r)) = waited {
                c.state.on(
                    self.ms(),
                    BridgeInput::CollectorEnded {
                        disposition: r.disposition,
                        status: r.sip_status,
                    },
                );
            }
        }
        let ok = c.state.answered();
        if c.state.phase() != BridgePhase::Over {
            tracing::warn!("bridged transfer report taken before its end");
        }
        report.transfer = Some(TransferReport {
            target: c.target.escape_debug().to_string(),
            ok,
            refer_status: None,
            final_status: c.state.status(),
            error: c.state.error().map(str::to_string),
            bridge: Some(c.state.report().clone()),
        });
    }
}
