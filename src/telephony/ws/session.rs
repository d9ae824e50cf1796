//! One streamed call's media, whatever protocol carries it (Twilio Media
//! Streams, Asterisk chan_websocket, AudioSocket): a sans-IO state machine in
//! the manner of str0m. The driver hands it what the platform sent, the
//! agent's commands and a 20 ms tick; it hands back frames to send, events
//! for the agent and one recording frame per tick.
//!
//! Owns: the play queue and how far ahead of the platform's playout audio is
//! sent; when a prompt counts as played (its mark came back, or, on a paced
//! transport, its last frame went out); what the callee really heard after a
//! barge-in (frames the platform discards on `clear` are not in the
//! recording); the inbound audio cut into 20 ms frames for the recognizer,
//! with silence standing in for time in which nothing arrived; the jitter
//! buffer that feeds the recording; the stall timer; how the stream ended.
//!
//! Never: touches a socket, a file or a clock (time is the tick count), or
//! decides anything about the conversation.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use crate::media::jitter::{JitterBuffer, Playout};
use crate::outcome::{Disposition, EndedBy, FailReason};
use crate::telephony::leg::{LegCommand, LegEvent, FRAME_SAMPLES};
use crate::telephony::report::{DtmfDigit, RtpCount, RtpTotals, TransferReport};

/// How the platform plays what duecall sends.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Frames sent ahead of the platform's playout: it buffers them
    /// (Twilio, chan_websocket), so a late tick of ours never starves the
    /// caller; 0 on a transport that plays what arrives (AudioSocket).
    pub send_ahead_frames: u32,
    /// The platform echoes marks once the audio before them has played: a
    /// prompt is finished only then. Without marks a prompt is finished when
    /// its last frame has gone out (paced transports).
    pub marks: bool,
    /// A `clear` returns the marks it discarded (Twilio); they are not
    /// counted as played.
    pub cleared_marks_echo: bool,
    /// A mark not back this long after its audio should have ended is given
    /// up on (logged) and the prompt counted finished: no dead air forever
    /// on a platform that loses marks.
    pub mark_grace_ms: u64,
    /// Jitter buffer depth (frames) for the recording's callee channel.
    pub jitter_frames: usize,
    /// Nothing from the platform for this long ends the call
    /// (`failed`/`media-timeout`). 0: never.
    pub stall_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            send_ahead_frames: 5,
            marks: true,
            cleared_marks_echo: true,
            mark_grace_ms: 3000,
            jitter_frames: 3,
            stall_ms: 10_000,
        }
    }
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Something for the agent.
    Event(LegEvent),
    /// 20 ms of audio for the platform.
    SendAudio(Box<[i16; FRAME_SAMPLES]>),
    /// A mark after a prompt's last frame.
    SendMark(String),
    /// Drop what the platform has queued (barge-in).
    SendClear,
    /// Hang up the call on the platform and close the stream.
    SendHangup,
    /// Run the transfer hook; answer with [`StreamSession::transfer_result`].
    Transfer {
        /// `sip:agent@host`.
        target: String,
        /// Context headers for the agent.
        headers: Vec<(String, String)>,
    },
    /// One recording tick: left what the callee heard from us, right what
    /// we heard from them.
    Record(Box<RecordFrame>),
    /// The stream is over; the driver closes the socket and reports.
    Ended(SessionEnd),
}

/// One tick of the two-channel recording.
#[derive(Debug, Clone)]
pub struct RecordFrame {
    /// Our audio as the callee heard it (silence after a `clear`).
    pub sent: [i16; FRAME_SAMPLES],
    /// The callee's audio.
    pub heard: [i16; FRAME_SAMPLES],
}

/// How and why the stream ended, with its counts.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    /// `answered`, or `failed` with a reason.
    pub disposition: Disposition,
    /// For `failed`.
    pub reason: Option<FailReason>,
    /// Who ended it.
    pub ended_by: EndedBy,
    /// Media clock at the end (ms since the stream started).
    pub at_ms: u64,
    /// Frames and bytes each way (`packets` are 20 ms frames).
    pub media: RtpTotals,
    /// Digits heard.
    pub dtmf: Vec<DtmfDigit>,
    /// The transfer, if one was asked for.
    pub transfer: Option<TransferReport>,
    /// Marks given up on (the platform never echoed them).
    pub marks_lost: u64,
}

struct Play {
    serial: u64,
    id: String,
    pcm: Arc<[i16]>,
    /// Samples sent.
    pos: usize,
    /// Frames the callee has heard (per the playout model).
    heard: u64,
    /// Frames in all.
    frames: u64,
    /// Sent as a mark after the last frame, with the tick its audio ends.
    mark: Option<(String, u64)>,
    /// Our own audio (in-band DTMF): no events for the agent.
    internal: bool,
}

struct InFlight {
    heard_tick: u64,
    serial: u64,
    pcm: Box<[i16; FRAME_SAMPLES]>,
}

/// How far recognition may lag the media clock before silence fills in.
const ARRIVAL_SLACK_FRAMES: u64 = 3;
/// Cleared mark names remembered (Twilio echoes them after a `clear`).
const MAX_CLEARED_MARKS: usize = 256;

/// One streamed call's media state machine.
pub struct StreamSession {
    cfg: SessionConfig,
    /// The next tick to run; ticks before it have run.
    tick: u64,
    items: VecDeque<Play>,
    inflight: VecDeque<InFlight>,
    last_heard_tick: Option<u64>,
    serial: u64,
    cleared_marks: HashSet<String>,
    marks_lost: u64,
    jitter: JitterBuffer,
    jitter_bytes: Vec<u8>,
    partial: Vec<i16>,
    in_seq: u16,
    timestamps: Option<bool>,
    first_rx_tick: Option<u64>,
    emitted: u64,
    last_rx_tick: u64,
    media: RtpTotals,
    dtmf: Vec<DtmfDigit>,
    transfer: Option<TransferReport>,
    ended: bool,
    out: VecDeque<Output>,
}

impl StreamSession {
    /// A session for a stream that has just started (the call is answered:
    /// the platform streams only connected calls).
    pub fn new(cfg: SessionConfig, codec: &'static str) -> StreamSession {
        let jitter = JitterBuffer::new(cfg.jitter_frames);
        let mut s = StreamSession {
            cfg,
            tick: 0,
            items: VecDeque::new(),
            inflight: VecDeque::new(),
            last_heard_tick: None,
            serial: 0,
            cleared_marks: HashSet::new(),
            marks_lost: 0,
            jitter,
            jitter_bytes: Vec::with_capacity(FRAME_SAMPLES * 2),
            partial: Vec::with_capacity(FRAME_SAMPLES),
            in_seq: 0,
            timestamps: None,
            first_rx_tick: None,
            emitted: 0,
            last_rx_tick: 0,
            media: RtpTotals {
                sent: RtpCount::default(),
                received: RtpCount {
                    lost: Some(0),
                    ..RtpCount::default()
                },
                srtp: None,
            },
            dtmf: Vec::new(),
            transfer: None,
            ended: false,
            out: VecDeque::new(),
        };
        s.out.push_back(Output::Event(LegEvent::Answered { codec }));
        s
    }

    /// The next thing the driver must do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Has the stream ended?
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The media clock: ms since the stream started.
    pub fn now_ms(&self) -> u64 {
        self.tick * 20
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.tick
    }

    fn event(&mut self, e: LegEvent) {
        self.out.push_back(Output::Event(e));
    }

    /// Audio from the callee: any number of 8 kHz samples (a platform may
    /// send 20 ms or much more per message), with the platform's timestamp
    /// of its first sample when the protocol has one.
    pub fn handle_audio(&mut self, pcm: &[i16], timestamp_ms: Option<u64>) {
        if self.ended {
            return;
        }
        self.last_rx_tick = self.tick;
        self.media.received.packets += 1;
        self.media.received.bytes += pcm.len() as u64;
        let with_ts = *self.timestamps.get_or_insert(timestamp_ms.is_some());
        // Frames start at the timestamp when there is one; leftovers of an
        // odd-sized message join the next.
        let mut ts = timestamp_ms.map(|t| t.saturating_sub(self.partial.len() as u64 / 8));
        let mut rest = pcm;
        while !rest.is_empty() {
            let need = FRAME_SAMPLES - self.partial.len();
            let take = need.min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() == FRAME_SAMPLES {
                let mut frame = Box::new([0i16; FRAME_SAMPLES]);
                frame.copy_from_slice(&self.partial);
                self.partial.clear();
                let seq = match (with_ts, ts) {
                    (true, Some(t)) => (t / 20) as u16,
                    _ => self.in_seq,
                };
                self.in_seq = seq.wrapping_add(1);
                if let Some(t) = ts.as_mut() {
                    *t += 20;
                }
                self.accept_frame(seq, frame);
            }
        }
    }

    fn accept_frame(&mut self, seq: u16, frame: Box<[i16; FRAME_SAMPLES]>) {
        self.jitter_bytes.clear();
        self.jitter_bytes
            .extend(frame.iter().flat_map(|s| s.to_le_bytes()));
        let _ = self.jitter.push(
            0,
            seq,
            u32::from(seq).wrapping_mul(FRAME_SAMPLES as u32),
            &self.jitter_bytes,
        );
        let first = *self.first_rx_tick.get_or_insert(self.tick);
        self.emitted += 1;
        let expected = self.tick - first;
        self.emitted = self.emitted.min(expected + ARRIVAL_SLACK_FRAMES);
        let at_ms = self.now_ms();
        self.event(LegEvent::Audio {
            at_ms,
            pcm: *frame,
            received: true,
        });
    }

    /// A DTMF digit from the callee.
    pub fn handle_dtmf(&mut self, digit: char) {
        if self.ended {
            return;
        }
        self.last_rx_tick = self.tick;
        let at_ms = self.now_ms();
        self.dtmf.push(DtmfDigit { digit, at_ms });
        self.event(LegEvent::Dtmf { digit, at_ms });
    }

    /// Anything else the platform sent that shows the stream is alive.
    pub fn handle_alive(&mut self) {
        self.last_rx_tick = self.tick;
    }

    /// The platform echoed a mark: the audio before it has played.
    pub fn handle_mark(&mut self, name: &str) {
        if self.ended {
            return;
        }
        self.last_rx_tick = self.tick;
        if self.cleared_marks.remove(name) {
            return; // a cleared prompt: already reported stopped
        }
        let Some(pos) = self
            .items
            .iter()
            .position(|p| p.mark.as_ref().is_some_and(|(m, _)| m == name))
        else {
            tracing::debug!(mark = %super::twilio::clip(name), "mark for no queued prompt");
            return;
        };
        // Marks come back in order: earlier prompts whose marks were lost
        // have played too.
        let at_ms = self.now_ms();
        for p in self.items.drain(..=pos).collect::<Vec<_>>() {
            self.finish(p, at_ms);
        }
    }

    fn finish(&mut self, p: Play, at_ms: u64) {
        if !p.internal {
            self.event(LegEvent::PlayFinished {
                id: p.id,
                played_ms: p.pcm.len() as u64 / 8,
                at_ms,
            });
        }
    }

    /// A command from the agent.
    pub fn handle_command(&mut self, cmd: LegCommand) {
        if self.ended {
            return;
        }
        match cmd {
            LegCommand::Play { id, pcm } => self.enqueue(id, pcm, false),
            LegCommand::ClearPlayQueue => self.clear(),
            LegCommand::SendDtmf(digits) => {
                let pcm = dtmf_tones(&digits);
                if !pcm.is_empty() {
                    self.enqueue(format!("dtmf:{digits}"), Arc::from(pcm), true);
                }
            }
            LegCommand::Transfer { target, headers } => {
                self.transfer = Some(TransferReport {
                    target: target.clone(),
                    ok: false,
                    refer_status: None,
                    final_status: None,
                    error: None,
                    bridge: None,
                });
                self.out.push_back(Output::Transfer { target, headers });
            }
            // Bridged transfers run over SIP legs only.
            LegCommand::Feed(_) => {}
            LegCommand::Hangup => {
                self.out.push_back(Output::SendHangup);
                self.end(Disposition::Answered, None, EndedBy::Us);
            }
        }
    }

    fn enqueue(&mut self, id: String, pcm: Arc<[i16]>, internal: bool) {
        if pcm.is_empty() {
            if !internal {
                let at_ms = self.now_ms();
                self.event(LegEvent::PlayFinished {
                    id,
                    played_ms: 0,
                    at_ms,
                });
            }
            return;
        }
        self.serial += 1;
        let frames = pcm.len().div_ceil(FRAME_SAMPLES) as u64;
        self.items.push_back(Play {
            serial: self.serial,
            id,
            pcm,
            pos: 0,
            heard: 0,
            frames,
            mark: None,
            internal,
        });
        // Start at once rather than at the next tick: a reply's latency.
        self.send_due();
    }

    /// The transfer hook's answer: `ok` when the platform took the call
    /// over (it will end the stream), else why not.
    pub fn transfer_result(&mut self, ok: bool, status: Option<u16>, error: Option<String>) {
        if let Some(t) = self.transfer.as_mut() {
            t.hook_answered(ok, status, error);
        }
        if !self.ended {
            self.event(LegEvent::TransferResult { ok, status });
        }
    }

    fn clear(&mut self) {
        let now = self.tick;
        // What the platform still holds is never heard.
        self.inflight.retain(|f| f.heard_tick < now);
        self.last_heard_tick = self.inflight.back().map(|f| f.heard_tick);
        let at_ms = self.now_ms();
        let mut sent_any = false;
        for p in std::mem::take(&mut self.items) {
            sent_any |= p.pos > 0;
            if let Some((name, _)) = &p.mark {
                if self.cfg.cleared_marks_echo && self.cleared_marks.len() < MAX_CLEARED_MARKS {
                    self.cleared_marks.insert(name.clone());
                }
            }
            if !p.internal {
                let played_ms = (p.heard * 20).min(p.pcm.len() as u64 / 8);
                self.event(LegEvent::PlayStopped {
                    id: p.id,
                    played_ms,
                    at_ms,
                });
            }
        }
        if sent_any {
            self.out.push_back(Output::SendClear);
        }
    }

    /// Sends what is due: frames whose playout falls within the send-ahead
    /// window, and a mark after each prompt's last frame.
    fn send_due(&mut self) {
        let now = self.tick;
        loop {
            let heard_tick = self.last_heard_tick.map_or(now, |t| (t + 1).max(now));
            if heard_tick > now + u64::from(self.cfg.send_ahead_frames) {
                return;
            }
            let Some(idx) = self.items.iter().position(|p| p.pos < p.pcm.len()) else {
                return;
            };
            let at_ms = self.now_ms();
            let marks = self.cfg.marks;
            let p = &mut self.items[idx];
            let start = p.pos == 0;
            let n = (p.pcm.len() - p.pos).min(FRAME_SAMPLES);
            let mut frame = Box::new([0i16; FRAME_SAMPLES]);
            frame[..n].copy_from_slice(&p.pcm[p.pos..p.pos + n]);
            p.pos += n;
            let done = p.pos >= p.pcm.len();
            let serial = p.serial;
            let started = (start && !p.internal).then(|| p.id.clone());
            let mark = (done && marks).then(|| {
                let name = format!("m{serial}");
                p.mark = Some((name.clone(), heard_tick + 1));
                name
            });
            self.last_heard_tick = Some(heard_tick);
            self.media.sent.packets += 1;
            self.media.sent.bytes += FRAME_SAMPLES as u64;
            self.inflight.push_back(InFlight {
                heard_tick,
                serial,
                pcm: frame.clone(),
            });
            if let Some(id) = started {
                self.event(LegEvent::PlayStarted { id, at_ms });
            }
            self.out.push_back(Output::SendAudio(frame));
            if let Some(name) = mark {
                self.out.push_back(Output::SendMark(name));
            }
        }
    }

    /// One 20 ms tick of the media clock.
    pub fn handle_tick(&mut self) {
        if self.ended {
            return;
        }
        let t = self.tick;
        // What the callee hears this tick, per the playout model.
        let mut sent = [0i16; FRAME_SAMPLES];
        while self.inflight.front().is_some_and(|f| f.heard_tick <= t) {
            let Some(f) = self.inflight.pop_front() else {
                break;
            };
            if f.heard_tick == t {
                sent = *f.pcm;
            }
            if let Some(i) = self.items.iter().position(|p| p.serial == f.serial) {
                let p = &mut self.items[i];
                p.heard += 1;
                let complete = !self.cfg.marks && p.pos >= p.pcm.len() && p.heard >= p.frames;
                if complete {
                    if let Some(p) = self.items.remove(i) {
                        self.finish(p, (t + 1) * 20);
                    }
                }
            }
        }
        // Marks the platform never returned.
        let grace = self.cfg.mark_grace_ms / 20;
        while let Some(i) = self
            .items
            .iter()
            .position(|p| p.mark.as_ref().is_some_and(|(_, end)| t > end + grace))
        {
            if let Some(p) = self.items.remove(i) {
                tracing::warn!(prompt = %p.id, "the platform never returned this prompt's mark; counting it played");
                self.marks_lost += 1;
                self.finish(p, t * 20);
            }
        }
        // What we heard this tick, through the jitter buffer, for the recording.
        let mut heard = [0i16; FRAME_SAMPLES];
        let mut bytes = [0u8; FRAME_SAMPLES * 2];
        if self.jitter.pop_into(&mut bytes, 0) == Playout::Audio {
            for (s, b) in heard.iter_mut().zip(bytes.chunks_exact(2)) {
                *s = i16::from_le_bytes([b[0], b[1]]);
            }
        }
        self.out
            .push_back(Output::Record(Box::new(RecordFrame { sent, heard })));
        // Recognition hears time pass when nothing arrives.
        let at_ms = t * 20;
        match self.first_rx_tick {
            Some(first) => {
                let expected = t - first;
                while self.emitted + ARRIVAL_SLACK_FRAMES < expected {
                    self.emitted += 1;
                    self.event(LegEvent::Audio {
                        at_ms,
                        pcm: [0; FRAME_SAMPLES],
                        received: false,
                    });
                }
            }
            None => self.event(LegEvent::Audio {
                at_ms,
                pcm: [0; FRAME_SAMPLES],
                received: false,
            }),
        }
        self.tick += 1;
        self.send_due();
        if self.cfg.stall_ms > 0 && (self.tick - self.last_rx_tick) * 20 > self.cfg.stall_ms {
            tracing::warn!(
                after_ms = self.cfg.stall_ms,
                "the stream stalled: nothing from the platform"
            );
            self.end(
                Disposition::Failed,
                Some(FailReason::MediaTimeout),
                EndedBy::Timeout,
            );
        }
    }

    /// The platform ended the stream (`stop`, an AudioSocket hang-up, or a
    /// close where closing is how the protocol hangs up).
    pub fn handle_stop(&mut self) {
        if !self.ended {
            self.end(Disposition::Answered, None, EndedBy::Them);
        }
    }

    /// The stream broke: the socket closed without the protocol's goodbye,
    /// or the platform sent what cannot be read. `failed`/`network`.
    pub fn handle_broken(&mut self, why: &str) {
        if !self.ended {
            tracing::warn!(why, "media stream ended abnormally");
            self.end(
                Disposition::Failed,
                Some(FailReason::Network),
                EndedBy::Them,
            );
        }
    }

    /// duecall is shutting down or the driver gave up: end as cancelled by us.
    pub fn handle_abort(&mut self) {
        if !self.ended {
            self.out.push_back(Output::SendHangup);
            self.end(Disposition::Answered, None, EndedBy::Us);
        }
    }

    fn end(&mut self, disposition: Disposition, reason: Option<FailReason>, ended_by: EndedBy) {
        self.ended = true;
        self.media.received.lost = Some(self.jitter.stats().lost);
        let end = SessionEnd {
            disposition,
            reason,
            ended_by,
            at_ms: self.now_ms(),
            media: self.media,
            dtmf: std::mem::take(&mut self.dtmf),
            transfer: self.transfer.take(),
            marks_lost: self.marks_lost,
        };
        self.out.push_back(Output::Ended(end));
    }
}

/// In-band DTMF for protocols without digit messages: 100 ms of each
/// digit's two tones, 60 ms apart, 8 kHz.
pub fn dtmf_tones(digits: &str) -> Vec<i16> {
    const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    let mut out = Vec::new();
    for d in digits.chars() {
        let Some((row, col)) = KEYS
            .iter()
            .enumerate()
            .find_map(|(r, k)| k.find(d).map(|c| (r, c)))
        else {
            continue;
        };
        for n in 0..800 {
            let t = n as f32 / 8000.0;
            let v = (2.0 * std::f32::consts::PI * LOW[row] * t).sin()
                + (2.0 * std::f32::consts::PI * HIGH[col] * t).sin();
            out.push((v * 7000.0) as i16);
        }
        out.extend(std::iter::repeat_n(0i16, 480));
    }
    out
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
