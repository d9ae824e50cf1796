//! The thin tokio driver of one streamed call: moves what the protocol
//! reader parsed into the [`StreamSession`], the agent's commands in, the
//! session's frames out to the protocol writer, its events to the agent, one
//! recording frame per 20 ms tick to disk, and runs the transfer hook. Time
//! is a 20 ms tick on absolute deadlines (start + n x 20 ms), as in the RTP
//! media session.
//!
//! Owns the pipe between a protocol's socket tasks and a `CallLeg`, the
//! recording file and the final `CallReport`. Never parses a frame (the
//! protocol modules do) and never decides what to say. Control events for the
//! agent are never dropped; audio frames are, counted, when the agent is too
//! slow; a writer that cannot keep up (the platform stopped reading) ends the
//! call instead of growing a queue.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hook::HttpHook;
use super::session::{Output, SessionConfig, SessionEnd, StreamSession};
use super::{FrameError, GatewayConfig};
use crate::media::recorder::StereoRecorder;
use crate::outcome::{Disposition, EndedBy, FailReason};
use crate::telephony::leg::{
    AudioDropped, AudioFrame, LegCommand, LegEvent, LegEventSender, FRAME_SAMPLES,
};
use crate::telephony::report::{CallReport, RtpTotals, TransferReport};

const FRAME: Duration = Duration::from_millis(20);
/// Messages the writer may have queued before the platform counts as not
/// reading (10 s of 20 ms frames plus marks).
pub const OUTGOING_QUEUE: usize = 600;
/// Messages the reader may have queued for the driver.
pub const INCOMING_QUEUE: usize = 256;

/// The protocol a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Twilio Media Streams (`/ws/twilio`).
    Twilio,
    /// Asterisk chan_websocket (`/ws/asterisk`).
    Asterisk,
    /// AudioSocket (TCP).
    AudioSocket,
}

impl Protocol {
    /// Its name in logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Twilio => "twilio",
            Protocol::Asterisk => "asterisk",
            Protocol::AudioSocket => "audiosocket",
        }
    }
}

/// What a protocol reader hands the driver.
#[derive(Debug)]
pub enum Incoming {
    /// Callee audio, 8 kHz, with the platform's timestamp if it has one.
    Audio {
        /// Samples.
        pcm: Vec<i16>,
        /// Platform timestamp of the first sample, ms.
        timestamp_ms: Option<u64>,
    },
    /// A digit.
    Dtmf(char),
    /// A mark came back.
    Mark(String),
    /// Any other well-formed message (the stream is alive).
    Alive,
    /// The platform's goodbye (`stop`, AudioSocket hang-up, chan_websocket close).
    Stop,
    /// The stream broke (closed without goodbye, unreadable, oversize).
    Broken(String),
    /// One frame could not be read (logged and counted; the call goes on).
    Bad(FrameError),
}

/// What the driver hands a protocol writer.
#[derive(Debug)]
pub enum Outgoing {
    /// 20 ms of audio.
    Audio(Box<[i16; FRAME_SAMPLES]>),
    /// A mark after a prompt.
    Mark(String),
    /// Drop queued audio.
    Clear,
    /// Hang up and close.
    Hangup,
    /// Refuse the stream before any call ran on it (a direct stream the
    /// gate denied): hang up and close with this reason (WebSocket close
    /// code 1008; AudioSocket has no reason field, so only the hang-up).
    Refuse(String),
}

/// A connected stream, ready to carry a call: the socket side of it.
#[derive(Debug)]
pub struct StreamPipe {
    /// What the stream said of itself when it started.
    pub info: StreamInfo,
    /// Parsed messages from the reader.
    pub incoming: mpsc::Receiver<Incoming>,
    /// Messages for the writer.
    pub outgoing: mpsc::Sender<Outgoing>,
    /// How this protocol plays audio.
    pub session: SessionConfig,
}

/// What a protocol's reader knows of a stream once it has started.
#[derive(Debug)]
pub struct StreamInfo {
    /// Which protocol.
    pub protocol: Protocol,
    /// The platform's id of the call (Twilio callSid, Asterisk channel id,
    /// AudioSocket UUID).
    pub call_id: String,
    /// Codec name for the report (`PCMU`, `PCMA`, `L16`).
    pub codec: &'static str,
    /// The stream's parameters: Twilio customParameters, chan_websocket
    /// URL parameters and channel variables.
    pub params: Map<String, Value>,
    /// Ids the transfer hook may use (`call_id`, `stream_sid`, `channel_id`).
    pub ids: BTreeMap<String, String>,
    /// Who connected.
    pub peer: Option<SocketAddr>,
}

/// A platform's call id and the ids the transfer hook may use: the call
/// id is the first named id, or the second when the first is empty; `ids`
/// holds `call_id` and both named ids.
pub fn platform_ids(
    first: (&str, &str),
    second: (&str, &str),
) -> (String, BTreeMap<String, String>) {
    let call_id = if first.1.is_empty() {
        second.1
    } else {
        first.1
    }
    .to_string();
    let ids = [
        ("call_id".to_string(), call_id.clone()),
        (first.0.to_string(), first.1.to_string()),
        (second.0.to_string(), second.1.to_string()),
    ]
    .into();
    (call_id, ids)
}

/// The socket's ends of a [`StreamPipe`]: where the reader puts parsed
/// messages, and where the writer takes what to send.
#[derive(Debug)]
pub struct SocketEnds {
    /// Parsed messages for the call.
    pub incoming: mpsc::Sender<Incoming>,
    /// Messages for the writer.
    pub outgoing: mpsc::Receiver<Outgoing>,
}

impl StreamPipe {
    /// Opens the pipe of a stream that has started: its two bounded queues
    /// and how its protocol plays audio, from `[gateway]` (Twilio and
    /// chan_websocket buffer what is sent ahead and echo marks, only
    /// Twilio's `clear` returns the marks it dropped; AudioSocket plays
    /// what arrives). The pipe goes to the hub, the ends stay with the
    /// socket's reader and writer.
    pub fn open(info: StreamInfo, cfg: &GatewayConfig) -> (StreamPipe, SocketEnds) {
        let (in_tx, in_rx) = mpsc::channel(INCOMING_QUEUE);
        let (out_tx, out_rx) = mpsc::channel(OUTGOING_QUEUE);
        let buffered = info.protocol != Protocol::AudioSocket;
        let session = SessionConfig {
            send_ahead_frames: if buffered {
                (cfg.send_ahead_ms / 20) as u32
            } else {
                0
            },
            marks: buffered,
            cleared_marks_echo: info.protocol == Protocol::Twilio,
            mark_grace_ms: cfg.mark_grace_ms,
            jitter_frames: cfg.jitter_frames,
            stall_ms: cfg.stall_timeout_ms,
        };
        let pipe = StreamPipe {
            info,
            incoming: in_rx,
            outgoing: out_tx,
            session,
        };
        let ends = SocketEnds {
            incoming: in_tx,
            outgoing: out_rx,
        };
        (pipe, ends)
    }
}

/// The call side of a streamed call: the agent's channel pair and what the
/// report needs.
pub struct CallSide {
    /// Events to the agent.
    pub events: LegEventSender,
    /// Commands from the agent.
    pub commands: mpsc::Receiver<LegCommand>,
    /// Where to write the two-channel recording.
    pub record: Option<PathBuf>,
    /// What was dialled (the phone number), for the report.
    pub to: String,
    /// When the attempt started (the origination hook ran).
    pub started_at: DateTime<Utc>,
    /// The transfer hook, if configured.
    pub transfer: Option<Arc<HttpHook>>,
    /// Template values for the transfer hook besides the stream's ids
    /// (`attempt_id`, ...).
    pub vars: BTreeMap<String, String>,
    /// Unreadable frames tolerated before the call ends.
    pub max_bad_frames: u32,
    /// Fires on shutdown: the call ends (hang-up sent).
    pub shutdown: CancellationToken,
    /// Commands the agent gave before the stream connected, in order.
    pub early: Vec<LegCommand>,
}

/// Hands the session's events to the agent: control events on the channel
/// that never drops, audio frames on the bounded one (dropped and counted
/// when the agent lags).
struct EventOut {
    tx: LegEventSender,
    audio_dropped: u64,
}

impl EventOut {
    fn push(&mut self, e: LegEvent) {
        match e {
            LegEvent::Audio {
                at_ms,
                pcm,
                received,
            } => {
                let f = AudioFrame {
                    at_ms,
                    pcm,
                    received,
                };
                if let Err(AudioDropped::Full) = self.tx.audio(f) {
                    self.audio_dropped += 1;
                }
            }
            e => {
                self.tx.control(e);
            }
        }
    }
}

/// Runs one streamed call to its end and sends the final report as
/// `LegEvent::Ended`. The pipe's writer is told to hang up or close.
pub async fn run(pipe: StreamPipe, call: CallSide) {
    let StreamPipe {
        info:
            StreamInfo {
                protocol,
                call_id,
                codec,
                ids,
                ..
            },
        mut incoming,
        outgoing,
        session: scfg,
    } = pipe;
    let CallSide {
        events,
        mut commands,
        record,
        to,
        started_at,
        transfer,
        vars,
        max_bad_frames,
        shutdown,
        early,
    } = call;
    let answered_at = Utc::now();
    tracing::info!(protocol = protocol.name(), call_id = %call_id, "media stream connected");
    let mut session = StreamSession::new(scfg, codec);
    for c in early {
        session.handle_command(c);
    }
    let mut out = EventOut {
        tx: events,
        audio_dropped: 0,
    };
    let mut recording_error = None;
    let mut recorder = match &record {
        Some(p) => match StereoRecorder::create(p) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "recording disabled for this call");
                recording_error = Some(e.to_string());
                None
            }
        },
        None => None,
    };
    let (xfer_tx, mut xfer_rx) = mpsc::channel::<(bool, Option<u16>, Option<String>)>(2);
    let mut bad_frames = 0u32;
    let mut writer_gone = false;
    let start = Instant::now();
    let mut tick: u64 = 0;
    let mut commands_open = true;
    let mut shutdown_seen = false;
    // A transfer hook still in flight: its answer is waited for after the
    // stream ends (bounded by the hook's own timeout), because a platform
    // that takes the call over ends the stream, and that end may arrive
    // before the hook's HTTP answer does.
    let mut xfer_in_flight: Option<Duration> = None;

    let mut end: SessionEnd = 'call: loop {
        while let Some(o) = session.poll_output() {
            match o {
                Output::Event(e) => out.push(e),
                Output::SendAudio(f) => {
                    if !writer_gone && outgoing.try_send(Outgoing::Audio(f)).is_err() {
                        writer_gone = true;
                        session.handle_broken(
                            "the platform stopped reading (send queue full or closed)",
                        );
                    }
                }
                Output::SendMark(m) => {
                    if !writer_gone && outgoing.try_send(Outgoing::Mark(m)).is_err() {
                        writer_gone = true;
                        session.handle_broken("the platform stopped reading");
                    }
                }
                Output::SendClear => {
                    let _ = outgoing.try_send(Outgoing::Clear);
                }
                Output::SendHangup => {
                    let _ = outgoing.try_send(Outgoing::Hangup);
                }
                Output::Transfer { target, headers } => {
                    let tx = xfer_tx.clone();
                    match transfer.clone() {
                        Some(hook) => {
                            xfer_in_flight = Some(hook.timeout());
                            let mut v = vars.clone();
                            v.extend(ids.clone());
                            v.insert(
                                "target".into(),
                                crate::telephony::sip::refer_to_with_headers(&target, &headers)
                                    .trim_start_matches('<')
                                    .trim_end_matches('>')
                                    .to_string(),
                            );
                            v.insert("target_uri".into(), target.clone());
                            if let Some((_, case)) = headers
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case("X-Duecall-Case"))
                            {
                                v.insert("case_id".into(), case.clone());
                            }
                            tokio::spawn(async move {
                                let r = hook.call(&v).await;
                                let msg = match r {
                                    Ok(status) => (true, Some(status), None),
                                    Err(e) => (false, e.status(), Some(e.to_string())),
                                };
                                let _ = tx.send(msg).await;
                            });
                        }
                        None => {
                            tracing::warn!(
                                "transfer asked but no [origination.transfer] hook is configured"
                            );
                            let _ = tx.try_send((
                                false,
                                None,
                                Some("no [origination.transfer] hook configured".into()),
                            ));
                        }
                    }
                }
                Output::Record(r) => {
                    if let Some(rec) = recorder.as_mut() {
                        if let Err(e) = rec.write_frame(&r.sent, &r.heard) {
                            tracing::warn!(error = %e, "recording stopped");
                            recording_error = Some(e.to_string());
                            recorder = None;
                        }
                    }
                }
                Output::Ended(e) => break 'call e,
            }
        }
        let deadline = start + FRAME * (tick as u32);
        tokio::select! {
            biased;
            _ = shutdown.cancelled(), if !shutdown_seen => {
                shutdown_seen = true;
                session.handle_abort();
            }
            _ = tokio::time::sleep_until(deadline) => {
                session.handle_tick();
                tick += 1;
            }
            inc = incoming.recv() => match inc {
                Some(Incoming::Audio { pcm, timestamp_ms }) => session.handle_audio(&pcm, timestamp_ms),
                Some(Incoming::Dtmf(d)) => session.handle_dtmf(d),
                Some(Incoming::Mark(m)) => session.handle_mark(&m),
                Some(Incoming::Alive) => session.handle_alive(),
                Some(Incoming::Stop) => session.handle_stop(),
                Some(Incoming::Broken(why)) => session.handle_broken(&why),
                Some(Incoming::Bad(e)) => {
                    bad_frames += 1;
                    if bad_frames <= 3 {
                        tracing::warn!(protocol = protocol.name(), call_id = %call_id, error = %e, "unreadable frame ignored");
                    }
                    if bad_frames > max_bad_frames {
                        session.handle_broken(&format!("{bad_frames} unreadable frames"));
                    } else {
                        session.handle_alive();
                    }
                }
                None => session.handle_broken("the stream's reader ended"),
            },
            cmd = commands.recv(), if commands_open => match cmd {
                Some(c) => session.handle_command(c),
                None => {
                    // The agent dropped the leg: never leave the callee in silence.
                    commands_open = false;
                    session.handle_abort();
                }
            },
            Some((ok, status, err)) = xfer_rx.recv() => {
                xfer_in_flight = None;
                session.transfer_result(ok, status, err);
            }
        }
    };
    if let (Some(wait), Some(t)) = (xfer_in_flight, end.transfer.as_mut()) {
        // The stream ended first (the platform took the call over, or the
        // callee hung up): the report still says what the hook answered.
        match tokio::time::timeout(wait + Duration::from_secs(1), xfer_rx.recv()).await {
            Ok(Some((ok, status, err))) => t.hook_answered(ok, status, err),
            _ => t.error = Some("the transfer hook gave no answer before the stream ended".into()),
        }
    }

    drop(outgoing);
    let (recording, rec_err) = match recorder {
        Some(r) => match r.finish() {
            Ok(info) => (Some(info.path), None),
            Err(e) => (None, Some(e.to_string())),
        },
        None => (None, recording_error),
    };
    if let Some(e) = rec_err {
        tracing::warn!(error = %e, "the recording could not be finished");
    }
    if out.audio_dropped > 0 {
        tracing::warn!(
            frames = out.audio_dropped,
            "audio frames dropped: the agent was too slow"
        );
    }
    let ended_at = Utc::now();
    let report = CallReport {
        call_id: call_id.clone(),
        to,
        disposition: end.disposition,
        reason: end.reason,
        sip_status: None,
        codec: Some(codec.to_string()),
        started_at,
        answered_at: Some(answered_at),
        ended_at,
        duration_ms: end.at_ms,
        ended_by: end.ended_by,
        rtp: end.media,
        dtmf: end.dtmf,
        transfer: end.transfer,
        recording,
        rtcp: None,
        sit: None,
        trunks: Vec::new(),
        pacing: None,
    };
    tracing::info!(
        protocol = protocol.name(),
        call_id = %call_id,
        disposition = report.disposition.as_str(),
        duration_ms = report.duration_ms,
        marks_lost = end.marks_lost,
        bad_frames,
        "media stream ended"
    );
    // The final report goes on the control channel: it is never dropped.
    out.tx.control(LegEvent::Ended(Box::new(report)));
}

/// The report of an attempt that never got a stream (hook failed, nobody
/// connected in time, cancelled).
pub fn unconnected_report(
    call_id: &str,
    to: &str,
    started_at: DateTime<Utc>,
    disposition: Disposition,
    reason: Option<FailReason>,
    ended_by: EndedBy,
) -> CallReport {
    CallReport {
        call_id: call_id.to_string(),
        to: to.to_string(),
        disposition,
        reason,
        sip_status: None,
        codec: None,
        started_at,
        answered_at: None,
        ended_at: Utc::now(),
        duration_ms: 0,
        ended_by,
        rtp: RtpTotals::default(),
        dtmf: Vec::new(),
        transfer: None::<TransferReport>,
        recording: None,
        rtcp: None,
        sit: None,
        trunks: Vec::new(),
        pacing: None,
    }
}
