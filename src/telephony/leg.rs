//! The `CallLeg`: one live call as the rest of the program sees it, whatever
//! carries it (a SIP call here, a WebSocket media stream later). A stream of
//! events (answered, audio frames heard, DTMF, playback progress, transfer
//! result, the end with its report) and a sink of commands (play, clear the
//! play queue, send DTMF, transfer, hang up). Owns only these shapes and the
//! channels; never decides anything about the conversation.
//!
//! Events travel on two channels. Audio frames (50 a second) go on a bounded
//! one: a consumer that falls behind loses frames (the sender counts them),
//! it never makes the sender wait. Everything else (answered, DTMF, playback
//! progress, transfer, the end) goes on a channel of its own that never drops:
//! its volume is bounded by the commands the driver sends and by the DTMF
//! rate limit, and the receiver hands it out before any queued audio.
//! Frames are moved by value in preallocated channel slots: no allocation
//! per packet.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::telephony::report::CallReport;

/// 20 ms of 8 kHz mono audio.
pub const FRAME_SAMPLES: usize = 160;

/// Something that happened on the call. Times are milliseconds on the call's
/// media clock, which starts at the answer (early media has negative-free
/// times starting at its own first frame, reported as `at_ms = 0`).
// Audio frames move by value through preallocated channel slots; boxing
// the big variant would allocate once per packet, which is what this
// shape avoids.
#[allow(clippy::large_enum_variant)]
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
        pcm: [i16; FRAME_SAMPLES],
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
// `Feed` moves a frame by value (a bridge sends 50 a second); boxing it
// would allocate per frame.
#[allow(clippy::large_enum_variant)]
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
    /// 20 ms of another leg's audio to send when nothing is queued to play
    /// (a bridged transfer). The session keeps a few frames and drops the
    /// oldest beyond them ([`crate::telephony::bridge::BRIDGE_QUEUE_FRAMES`]).
    Feed([i16; FRAME_SAMPLES]),
}

/// 20 ms heard from the far end, as it travels on the audio channel.
#[derive(Debug, Clone, Copy)]
pub struct AudioFrame {
    /// Media clock of this frame's start.
    pub at_ms: u64,
    /// 160 samples.
    pub pcm: [i16; FRAME_SAMPLES],
    /// False when the frame is silence standing in for missing packets.
    pub received: bool,
}

/// Audio frames queued for a consumer before the sender drops (5 s).
pub const AUDIO_QUEUE_FRAMES: usize = 250;

/// Why an audio frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioDropped {
    /// The consumer is behind: the frame is lost (count it).
    Full,
    /// Nobody listens any more.
    Closed,
}

/// The sending half of a call's events, held by whatever carries the call
/// (the SIP call task and its media session, a WebSocket stream).
#[derive(Debug, Clone)]
pub struct LegEventSender {
    control: mpsc::UnboundedSender<LegEvent>,
    audio: mpsc::Sender<AudioFrame>,
}

impl LegEventSender {
    /// Sends a non-audio event; never dropped, never waits. Returns false
    /// when the receiver is gone. Audio must go through
    /// [`LegEventSender::audio`].
    pub fn control(&self, ev: LegEvent) -> bool {
        debug_assert!(!matches!(ev, LegEvent::Audio { .. }));
        self.control.send(ev).is_ok()
    }

    /// Queues a frame without waiting.
    pub fn audio(&self, frame: AudioFrame) -> Result<(), AudioDropped> {
        self.audio.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AudioDropped::Full,
            mpsc::error::TrySendError::Closed(_) => AudioDropped::Closed,
        })
    }

    /// Whether the receiver is gone (the driver dropped the leg).
    pub fn is_closed(&self) -> bool {
        self.control.is_closed()
    }

    /// Resolves when the receiver is gone.
    pub async fn closed(&self) {
        self.control.closed().await
    }
}

/// The receiving half: control events first, then audio in order.
#[derive(Debug)]
pub struct LegEventReceiver {
    control: mpsc::UnboundedReceiver<LegEvent>,
    audio: mpsc::Receiver<AudioFrame>,
    control_open: bool,
    audio_open: bool,
    ended: bool,
}

impl LegEventReceiver {
    /// The next event; None once the call has ended (after `Ended`) or
    /// every sender is gone (and what they queued has been handed out).
    pub async fn recv(&mut self) -> Option<LegEvent> {
        loop {
            if self.ended {
                return None;
            }
            tokio::select! {
                biased;
                ev = self.control.recv(), if self.control_open => match ev {
                    Some(LegEvent::Ended(r)) => {
                        self.ended = true;
                        return Some(LegEvent::Ended(r));
                    }
                    Some(ev) => return Some(ev),
                    None => self.control_open = false,
                },
                f = self.audio.recv(), if self.audio_open => match f {
                    Some(f) => {
                        return Some(LegEvent::Audio {
                            at_ms: f.at_ms,
                            pcm: f.pcm,
                            received: f.received,
                        })
                    }
                    None => self.audio_open = false,
                },
                else => self.ended = true,
            }
        }
    }
}

/// A call's event channels: the sender for the call's carrier, the
/// receiver for its driver.
pub fn event_channel() -> (LegEventSender, LegEventReceiver) {
    let (ctx, crx) = mpsc::unbounded_channel();
    let (atx, arx) = mpsc::channel(AUDIO_QUEUE_FRAMES);
    (
        LegEventSender {
            control: ctx,
            audio: atx,
        },
        LegEventReceiver {
            control: crx,
            audio: arx,
            control_open: true,
            audio_open: true,
            ended: false,
        },
    )
}

/// The two ends of a call as the driver holds them.
#[derive(Debug)]
pub struct CallLeg {
    /// SIP Call-ID (or the stream id).
    pub call_id: String,
    /// Events, in order; ends after `Ended`.
    pub events: LegEventReceiver,
    /// Commands; sending fails once the call is over. Dropping the leg (or
    /// just this sender) hangs the call up.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> AudioFrame {
        AudioFrame {
            at_ms: n * 20,
            pcm: [n as i16; FRAME_SAMPLES],
            received: true,
        }
    }

    #[tokio::test]
    async fn control_events_are_never_dropped_and_overtake_queued_audio() {
        let (tx, mut rx) = event_channel();
        for n in 0..AUDIO_QUEUE_FRAMES as u64 {
            assert_eq!(tx.audio(frame(n)), Ok(()));
        }
        assert_eq!(tx.audio(frame(999)), Err(AudioDropped::Full));
        // The audio queue is full; a control event still goes through...
        assert!(tx.control(LegEvent::Dtmf {
            digit: '5',
            at_ms: 0
        }));
        // ...and comes out first.
        assert!(matches!(
            rx.recv().await,
            Some(LegEvent::Dtmf { digit: '5', .. })
        ));
        for n in 0..AUDIO_QUEUE_FRAMES as u64 {
            match rx.recv().await {
                Some(LegEvent::Audio { at_ms, pcm, .. }) => {
                    assert_eq!(at_ms, n * 20);
                    assert_eq!(pcm[0], n as i16);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_stream_ends_after_ended_and_when_senders_go() {
        let (tx, mut rx) = event_channel();
        assert_eq!(tx.audio(frame(1)), Ok(()));
        drop(tx);
        assert!(matches!(rx.recv().await, Some(LegEvent::Audio { .. })));
        assert!(rx.recv().await.is_none());
        assert!(rx.recv().await.is_none());
        let (tx, rx) = event_channel();
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.audio(frame(1)), Err(AudioDropped::Closed));
    }
}
