//! The `CallLeg`: one live call as the rest of the program sees it, whatever
//! carries it (a SIP call here, a WebSocket media stream later). A stream of
//! events (answered, audio frames heard, DTMF, playback progress, transfer
//! result, the end with its report) and a sink of commands (play, clear the
//! play queue, send DTMF, transfer, hang up). Owns only these shapes and the
//! channel pair; never decides anything about the conversation.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::telephony::report::CallReport;

/// 20 ms of 8 kHz mono audio.
pub const FRAME_SAMPLES: usize = 160;

/// Something that happened on the call. Times are milliseconds on the call's
/// media clock, which starts at the answer (early media has negative-free
/// times starting at its own first frame, reported as `at_ms = 0`).
#[derive(Debug, Clone)]
pub enum LegEvent {
    /// The far end is ringing (18x).
    Ringing,
    /// The call was answered (2xx); media runs from now.
    Answered {
        /// Negotiated codec name.
        codec: &'static str,
    },
    /// 20 ms heard from the far end, in arrival order as packets come (not
    /// delayed by the jitter buffer, which only feeds the recording); silence
    /// frames stand in for time in which nothing arrived.
    Audio {
        /// Media clock of this frame's start.
        at_ms: u64,
        /// 160 samples.
        pcm: Box<[i16; FRAME_SAMPLES]>,
        /// False when the frame is silence standing in for missing packets.
        received: bool,
    },
    /// A DTMF digit (RFC 4733).
    Dtmf {
        /// The digit.
        digit: char,
        /// Media clock when it was reported.
        at_ms: u64,
    },
    /// The first frame of a queued playback went out.
    PlayStarted {
        /// The id given with `Play`.
        id: String,
        /// Media clock.
        at_ms: u64,
    },
    /// A queued playback finished playing.
    PlayFinished {
        /// The id given with `Play`.
        id: String,
        /// How long it played.
        played_ms: u64,
        /// Media clock when it ended.
        at_ms: u64,
    },
    /// A playback was cut by `ClearPlayQueue` (barge-in).
    PlayStopped {
        /// The id given with `Play`.
        id: String,
        /// How much of it played before the cut.
        played_ms: u64,
        /// Media clock of the cut.
        at_ms: u64,
    },
    /// A blind transfer ended (final NOTIFY, a refusal, or a timeout).
    TransferResult {
        /// Did the transferee reach the target?
        ok: bool,
        /// Final status (sipfrag), or the REFER's failure status.
        status: Option<u16>,
    },
    /// The call is over; the report is final (recording closed).
    Ended(Box<CallReport>),
}

/// What the driver of a call asks of it.
#[derive(Debug, Clone)]
pub enum LegCommand {
    /// Queue 8 kHz mono audio to play after what is already queued.
    Play {
        /// Reported back in `PlayStarted`/`PlayFinished`/`PlayStopped`.
        id: String,
        /// Samples at 8 kHz.
        pcm: Arc<[i16]>,
    },
    /// Drop everything queued and stop the current playback within one frame.
    ClearPlayQueue,
    /// Send DTMF digits (RFC 4733), one after the other.
    SendDtmf(String),
    /// Blind transfer (REFER) to a URI; URI headers on the target
    /// (`?X-Duecall-Case=..`) are passed on per RFC 3261 19.1.5.
    Transfer {
        /// `sip:agent@host`.
        target: String,
        /// Context headers for the agent, added to the Refer-To URI.
        headers: Vec<(String, String)>,
    },
    /// End the call (BYE, or CANCEL before the answer).
    Hangup,
}

/// The two ends of a call as the driver holds them.
#[derive(Debug)]
pub struct CallLeg {
    /// SIP Call-ID (or the stream id).
    pub call_id: String,
    /// Events, in order; ends after `Ended`.
    pub events: mpsc::Receiver<LegEvent>,
    /// Commands; sending fails once the call is over.
    pub commands: mpsc::Sender<LegCommand>,
}

impl CallLeg {
    /// Sends a command; returns false when the call is already over.
    pub async fn send(&self, cmd: LegCommand) -> bool {
        self.commands.send(cmd).await.is_ok()
    }

    /// Waits for the next event (None after the call ended).
    pub async fn next_event(&mut self) -> Option<LegEvent> {
        self.events.recv().await
    }

    /// Drains events until the call ends, returning the final report.
    /// Used where nobody converses (a plain `duecall call`).
    pub async fn wait_end(&mut self) -> Option<CallReport> {
        while let Some(ev) = self.events.recv().await {
            if let LegEvent::Ended(r) = ev {
                return Some(*r);
            }
        }
        None
    }
}
