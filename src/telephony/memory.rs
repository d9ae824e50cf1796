//! An in-memory carrier: a `Gateway` whose calls are two channels in this
//! process, for tests of the agent without SIP, RTP or sockets. Each `dial`
//! hands the far end of the new call (`FarEnd`) to whoever holds the
//! gateway's receiver; that code plays the callee: it answers, "speaks"
//! 20 ms frames, sees the agent's commands (playbacks finish at once) and
//! ends the call with a report, as a real carrier would.
//!
//! Owns only the channels and the far end's bookkeeping (media clock,
//! report). Never decides anything about the conversation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::outcome::{Disposition, EndedBy};
use crate::telephony::gateway::{DialFuture, Gateway};
use crate::telephony::leg::{
    event_channel, AudioDropped, AudioFrame, CallLeg, LegCommand, LegEvent, LegEventSender,
    FRAME_SAMPLES,
};
use crate::telephony::report::{CallReport, RtpTotals, TransferReport};
use crate::telephony::sip::DialRequest;

/// A gateway whose calls stay in this process (see the module comment).
#[derive(Debug)]
pub struct MemoryGateway {
    far_ends: mpsc::UnboundedSender<FarEnd>,
    calls: AtomicU64,
}

impl MemoryGateway {
    /// A gateway and the receiver every dialled call's far end arrives on.
    pub fn new() -> (MemoryGateway, mpsc::UnboundedReceiver<FarEnd>) {
        let (far_ends, rx) = mpsc::unbounded_channel();
        (
            MemoryGateway {
                far_ends,
                calls: AtomicU64::new(0),
            },
            rx,
        )
    }
}

impl Gateway for MemoryGateway {
    fn dial(&self, req: DialRequest) -> DialFuture<'_> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let call_id = format!("memory-{n}");
        let (events, receiver) = event_channel();
        let (commands_tx, commands) = mpsc::channel(64);
        let far = FarEnd {
            request: req,
            call_id: call_id.clone(),
            events,
            commands,
            at_ms: 0,
            started_at: Utc::now(),
            answered_at: None,
            transfer: None,
            played: Vec::new(),
        };
        // Nobody plays the callee: the far end is dropped and the leg's
        // events end without a report, as a carrier that died would.
        let _ = self.far_ends.send(far);
        Box::pin(async move {
            Ok(CallLeg {
                call_id,
                events: receiver,
                commands: commands_tx,
            })
        })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn shutdown(&self) {}
}

/// What the far end saw while it waited ([`FarEnd::serve_until_quiet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FarEndTurn {
    /// Nothing more was asked for a while: the agent is listening.
    Quiet,
    /// The agent hung up (the far end has ended the call).
    HungUp,
    /// The agent asked for a transfer to this target (not answered yet).
    Transfer(String),
    /// The agent dropped the leg.
    Gone,
}

/// The callee's side of one in-memory call.
#[derive(Debug)]
pub struct FarEnd {
    /// What the agent dialled.
    pub request: DialRequest,
    call_id: String,
    events: LegEventSender,
    commands: mpsc::Receiver<LegCommand>,
    /// Media clock: milliseconds of audio sent since the answer.
    at_ms: u64,
    started_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
    transfer: Option<TransferReport>,
    /// The ids of the prompts the agent played, in order.
    pub played: Vec<String>,
}

impl FarEnd {
    /// The call's id (also the leg's).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Answers the call (PCMU).
    pub fn answer(&mut self) {
        self.answered_at = Some(Utc::now());
        self.events.control(LegEvent::Answered { codec: "PCMU" });
    }

    /// Sends `pcm` (8 kHz) as 20 ms frames, the last one padded with
    /// silence; waits while the agent's audio queue is full.
    pub async fn send_audio(&mut self, pcm: &[i16]) {
        for chunk in pcm.chunks(FRAME_SAMPLES) {
            let mut frame = [0i16; FRAME_SAMPLES];
            frame[..chunk.len()].copy_from_slice(chunk);
            let f = AudioFrame {
                at_ms: self.at_ms,
                pcm: frame,
                received: true,
            };
            loop {
                match self.events.audio(f) {
                    Ok(()) => break,
                    Err(AudioDropped::Full) => tokio::time::sleep(Duration::from_millis(2)).await,
                    Err(AudioDropped::Closed) => return,
                }
            }
            self.at_ms += 20;
        }
    }

    /// Handles the agent's commands (a playback starts and finishes at
    /// once) until none comes for `quiet`, or the call ends or moves.
    pub async fn serve_until_quiet(&mut self, quiet: Duration) -> FarEndTurn {
        loop {
            let cmd = match tokio::time::timeout(quiet, self.commands.recv()).await {
                Err(_) => return FarEndTurn::Quiet,
                Ok(None) => return FarEndTurn::Gone,
                Ok(Some(c)) => c,
            };
            match cmd {
                LegCommand::Play { id, pcm } => {
                    let played_ms = pcm.len() as u64 / 8;
                    self.events.control(LegEvent::PlayStarted {
                        id: id.clone(),
                        at_ms: self.at_ms,
                    });
                    self.events.control(LegEvent::PlayFinished {
                        id: id.clone(),
                        played_ms,
                        at_ms: self.at_ms + played_ms,
                    });
                    self.played.push(id);
                }
                LegCommand::ClearPlayQueue | LegCommand::SendDtmf(_) | LegCommand::Feed(_) => {}
                LegCommand::Transfer { target, .. } => return FarEndTurn::Transfer(target),
                LegCommand::Hangup => {
                    self.end(EndedBy::Us);
                    return FarEndTurn::HungUp;
                }
            }
        }
    }

    /// Answers the transfer asked for: the callee reached the target (or not).
    pub fn transfer_result(&mut self, target: &str, ok: bool) {
        let status = Some(if ok { 200 } else { 486 });
        self.transfer = Some(TransferReport {
            target: target.to_string(),
            ok,
            refer_status: Some(202),
            final_status: status,
            error: None,
            bridge: None,
        });
        self.events.control(LegEvent::TransferResult { ok, status });
    }

    /// Ends the call with its report.
    pub fn end(&mut self, ended_by: EndedBy) {
        let disposition = if self.answered_at.is_some() {
            Disposition::Answered
        } else {
            Disposition::NoAnswer
        };
        let report = CallReport {
            call_id: self.call_id.clone(),
            to: self.request.to.clone(),
            disposition,
            reason: None,
            sip_status: self.answered_at.map(|_| 200),
            codec: self.answered_at.map(|_| "PCMU".to_string()),
            started_at: self.started_at,
            answered_at: self.answered_at,
            ended_at: Utc::now(),
            duration_ms: self.at_ms,
            ended_by,
            rtp: RtpTotals::default(),
            dtmf: Vec::new(),
            transfer: self.transfer.clone(),
            recording: None,
            rtcp: None,
            sit: None,
            trunks: Vec::new(),
            pacing: None,
        };
        self.events.control(LegEvent::Ended(Box::new(report)));
    }
}
