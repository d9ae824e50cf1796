//! One call's RTP session: a UDP socket, 20 ms pacing on absolute deadlines,
//! the play queue, RFC 4733 DTMF both ways, the jitter buffer and the
//! two-channel recorder. Owns the media clock of the call. Never touches SIP
//! and never waits on anything slower than a channel send: a busy consumer
//! loses audio frames (counted), it never delays a packet.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::media::g711::{self, Codec};
use crate::media::jitter::{JitterBuffer, Playout};
use crate::media::recorder::{RecordingInfo, StereoRecorder};
use crate::media::rfc4733::{DtmfReceiver, DtmfSender};
use crate::telephony::leg::{LegEvent, FRAME_SAMPLES};
use crate::telephony::report::{DtmfDigit, PacingStats, RtpCount, RtpTotals};
use crate::telephony::rtp::{self, RtpSender};

const FRAME: Duration = Duration::from_millis(20);
/// After a stall longer than this many frames we skip ahead instead of
/// bursting the backlog (a burst would only fill the peer's jitter buffer).
const MAX_CATCH_UP_FRAMES: u64 = 5;
/// How far the frames handed on may fall behind the media clock before the
/// gap is filled with silence (a packet two ticks late is still on time).
const ARRIVAL_SLACK_FRAMES: u64 = 3;

/// What the session needs to start.
#[derive(Debug)]
pub struct MediaParams {
    /// Our bound RTP socket.
    pub socket: UdpSocket,
    /// Where the SDP says to send.
    pub remote: SocketAddr,
    /// Negotiated codec and its payload type.
    pub codec: Codec,
    /// Payload type of the codec in this session.
    pub payload_type: u8,
    /// Payload type of telephone-event, if the peer accepted it.
    pub dtmf_payload_type: Option<u8>,
    /// Jitter buffer depth in frames.
    pub jitter_frames: usize,
    /// Recording file, if recording.
    pub record: Option<PathBuf>,
    /// Seconds without RTP before `MediaEnd::Timeout` (0: never).
    pub media_timeout: Duration,
}

/// Commands from the call task.
#[derive(Debug)]
pub enum MediaCmd {
    /// Queue audio.
    Play(String, Arc<[i16]>),
    /// Drop the queue, cut the current item.
    Clear,
    /// Queue DTMF digits.
    Dtmf(String),
    /// The peer moved its media (re-INVITE).
    Remote(SocketAddr),
    /// Stop sending audio (we were put on hold) or resume.
    Hold(bool),
    /// The answer changed the codec or payload types (early media was
    /// negotiated from a 183's SDP, the 200 OK's differs).
    Format {
        /// Codec from now on.
        codec: Codec,
        /// Its payload type.
        payload_type: u8,
        /// telephone-event payload type, if any.
        dtmf_payload_type: Option<u8>,
    },
}

/// Why the session stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEnd {
    /// The call task stopped it.
    Stopped,
    /// No RTP arrived for the configured time.
    Timeout,
    /// The socket failed.
    SocketError,
}

/// What the session reports when it stops.
#[derive(Debug)]
pub struct MediaSummary {
    /// Why it stopped.
    pub end: MediaEnd,
    /// RTP totals.
    pub rtp: RtpTotals,
    /// Digits heard.
    pub dtmf: Vec<DtmfDigit>,
    /// The closed recording.
    pub recording: Option<RecordingInfo>,
    /// Why the recording failed, if it did (the call goes on without it).
    pub recording_error: Option<String>,
    /// Our send pacing.
    pub pacing: PacingStats,
    /// Audio frames the consumer was too slow to take.
    pub frames_dropped: u64,
}

struct PlayItem {
    id: String,
    pcm: Arc<[i16]>,
    pos: usize,
}

/// Runs the session until `stop` is cancelled, the peer goes silent past the
/// media timeout, or the socket fails.
pub async fn run(
    p: MediaParams,
    mut cmds: mpsc::Receiver<MediaCmd>,
    events: mpsc::Sender<LegEvent>,
    stop: CancellationToken,
) -> MediaSummary {
    let mut remote = p.remote;
    let (mut codec, mut payload_type, mut dtmf_pt) = (p.codec, p.payload_type, p.dtmf_payload_type);
    let mut sender = RtpSender::new(rand::random(), rand::random(), rand::random());
    let mut jitter = JitterBuffer::new(p.jitter_frames);
    let mut dtmf_rx = DtmfReceiver::default();
    let mut dtmf_tx: Option<DtmfSender> = None;
    let mut dtmf_event_ts = 0u32;
    let mut dtmf_queue: VecDeque<char> = VecDeque::new();
    let mut queue: VecDeque<PlayItem> = VecDeque::new();
    let mut playing_started = false;
    let mut on_hold = false;
    let mut digits = Vec::new();
    let mut received = RtpCount {
        lost: Some(0),
        ..Default::default()
    };
    let mut pacing = PacingStats::new();
    let mut frames_dropped = 0u64;
    let mut recording_error = None;
    let mut recorder = match &p.record {
        Some(path) => match StereoRecorder::create(path) {
            Ok(r) => Some(r),
            Err(e) => {
                recording_error = Some(e.to_string());
                tracing::warn!(error = %e, "recording disabled for this call");
                None
            }
        },
        None => None,
    };

    let mut buf = vec![0u8; 2048];
    let mut out = Vec::with_capacity(12 + FRAME_SAMPLES);
    let mut payload = Vec::with_capacity(FRAME_SAMPLES);
    let mut sent_pcm = [0i16; FRAME_SAMPLES];
    let mut heard_pcm: Vec<i16> = Vec::with_capacity(FRAME_SAMPLES);
    let mut rx_pcm: Vec<i16> = Vec::with_capacity(FRAME_SAMPLES);
    let mut last_emitted_seq: Option<u16> = None;
    let mut first_rx_tick: Option<u64> = None;
    let mut emitted: u64 = 0;
    let start = Instant::now();
    let mut tick: u64 = 0;
    let mut last_send: Option<Instant> = None;
    let mut last_rx = Instant::now();
    let mut marker = true;

    let end = loop {
        let deadline = start + FRAME * (tick as u32);
        tokio::select! {
            biased;
            _ = stop.cancelled() => break MediaEnd::Stopped,
            _ = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                // A stall (machine overload): skip ahead rather than burst.
                let behind = (now.duration_since(start).as_millis() as u64 / 20).saturating_sub(tick);
                if behind > MAX_CATCH_UP_FRAMES {
                    tick += behind;
                    sender.advance_timestamp((behind as u32) * FRAME_SAMPLES as u32);
                    last_send = None;
                }
                let at_ms = tick * 20;

                // --- what we send this tick ---
                sent_pcm.fill(0);
                if let Some(item) = queue.front_mut() {
                    if !playing_started {
                        playing_started = true;
                        let _ = events.try_send(LegEvent::PlayStarted { id: item.id.clone(), at_ms });
                    }
                    let n = (item.pcm.len() - item.pos).min(FRAME_SAMPLES);
                    sent_pcm[..n].copy_from_slice(&item.pcm[item.pos..item.pos + n]);
                    item.pos += n;
                    if item.pos >= item.pcm.len() {
                        let played_ms = (item.pcm.len() as u64) / 8;
                        let id = std::mem::take(&mut item.id);
                        queue.pop_front();
                        playing_started = false;
                        let _ = events.try_send(LegEvent::PlayFinished { id, played_ms, at_ms: at_ms + 20 });
                    }
                }
                if dtmf_tx.is_none() {
                    if let (Some(d), Some(_)) = (dtmf_queue.pop_front(), dtmf_pt) {
                        dtmf_tx = DtmfSender::new(d, 160, 10);
                        dtmf_event_ts = sender.timestamp();
                    }
                }
                let mut sent_event = false;
                if let (Some(ds), Some(pt)) = (dtmf_tx.as_mut(), dtmf_pt) {
                    match ds.next_packet() {
                        Some((ev, first, _is_end)) => {
                            let h = sender.event(pt, dtmf_event_ts, first);
                            rtp::write(&h, &ev, &mut out);
                            sent_event = true;
                        }
                        None => dtmf_tx = None,
                    }
                    if sent_event {
                        sender.advance_timestamp(FRAME_SAMPLES as u32);
                    }
                }
                if !sent_event && !on_hold {
                    payload.clear();
                    g711::encode(codec, &sent_pcm, &mut payload);
                    let h = sender.audio(payload_type, FRAME_SAMPLES as u32, marker);
                    marker = false;
                    rtp::write(&h, &payload, &mut out);
                } else if on_hold && !sent_event {
                    sender.advance_timestamp(FRAME_SAMPLES as u32);
                    out.clear();
                }
                if !out.is_empty() {
                    if let Err(e) = p.socket.send_to(&out, remote).await {
                        tracing::debug!(error = %e, "rtp send failed");
                    }
                    let sent_at = Instant::now();
                    if let Some(prev) = last_send {
                        pacing.record(sent_at.duration_since(prev));
                    }
                    last_send = Some(sent_at);
                }

                // --- what we heard this tick ---
                // The jitter buffer plays out every tick (its clock and loss
                // counts), but only the recording needs the decoded audio.
                let playout = jitter.pop();
                if let Some(rec) = recorder.as_mut() {
                    heard_pcm.clear();
                    if let Playout::Frame(f) = &playout {
                        g711::decode(codec, f, &mut heard_pcm);
                    }
                    heard_pcm.resize(FRAME_SAMPLES, 0);
                    if let Err(e) = rec.write_frame(&sent_pcm, &heard_pcm) {
                        recording_error = Some(e.to_string());
                        tracing::warn!(error = %e, "recording stopped");
                        recorder = None;
                    }
                }
                // The consumer hears packets as they arrive (below); when
                // none come (silence suppression, loss, hold) it still hears
                // time pass, as silence, so its VAD can end an utterance.
                if let Some(first) = first_rx_tick {
                    let expected = tick.saturating_sub(first);
                    while emitted + ARRIVAL_SLACK_FRAMES < expected {
                        emitted += 1;
                        if events.try_send(LegEvent::Audio { at_ms, pcm: Box::new([0i16; FRAME_SAMPLES]), received: false }).is_err() {
                            frames_dropped += 1;
                        }
                    }
                } else if events.try_send(LegEvent::Audio { at_ms, pcm: Box::new([0i16; FRAME_SAMPLES]), received: false }).is_err() {
                    frames_dropped += 1;
                }
                tick += 1;

                if !p.media_timeout.is_zero() && now.duration_since(last_rx) > p.media_timeout {
                    break MediaEnd::Timeout;
                }
            }
            r = p.socket.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(v) => v,
                    Err(e) => {
                        // ICMP port unreachable surfaces here on Linux: the peer
                        // is not listening yet or any more; keep going.
                        if e.kind() == std::io::ErrorKind::ConnectionRefused { continue; }
                        tracing::warn!(error = %e, "rtp socket failed");
                        break MediaEnd::SocketError;
                    }
                };
                let Ok(pkt) = rtp::parse(&buf[..n]) else { continue };
                let pt = pkt.header.payload_type;
                let ours = pt == payload_type || Some(pt) == dtmf_pt;
                if !ours {
                    continue; // unknown payload types are ignored (sipp sends PT 97 noise)
                }
                if from != remote {
                    // Symmetric RTP: answer where the peer's packets come from.
                    tracing::debug!(%from, old = %remote, "rtp peer address latched");
                    remote = from;
                }
                last_rx = Instant::now();
                received.packets += 1;
                received.bytes += pkt.payload.len() as u64;
                if Some(pt) == dtmf_pt {
                    if let Some(d) = dtmf_rx.on_packet(pkt.header.timestamp, pkt.payload) {
                        let at_ms = tick * 20;
                        digits.push(DtmfDigit { digit: d, at_ms });
                        let _ = events.try_send(LegEvent::Dtmf { digit: d, at_ms });
                    }
                } else {
                    jitter.push(pkt.header.sequence, pkt.header.timestamp, pkt.payload);
                    // Recognition hears each new packet the moment it arrives
                    // (the recording plays them out through the jitter
                    // buffer): the buffer's depth would otherwise add to every
                    // reply's latency. Late and repeated packets are skipped.
                    let newer = match last_emitted_seq {
                        None => true,
                        Some(last) => (pkt.header.sequence.wrapping_sub(last) as i16) > 0,
                    };
                    if newer {
                        last_emitted_seq = Some(pkt.header.sequence);
                        first_rx_tick.get_or_insert(tick);
                        emitted += 1;
                        // A burst after a stall must not let later gaps go unfilled.
                        let expected = tick - first_rx_tick.unwrap_or(tick);
                        emitted = emitted.min(expected + ARRIVAL_SLACK_FRAMES);
                        rx_pcm.clear();
                        g711::decode(codec, pkt.payload, &mut rx_pcm);
                        rx_pcm.resize(FRAME_SAMPLES, 0);
                        let mut frame = Box::new([0i16; FRAME_SAMPLES]);
                        frame.copy_from_slice(&rx_pcm[..FRAME_SAMPLES]);
                        if events.try_send(LegEvent::Audio { at_ms: tick * 20, pcm: frame, received: true }).is_err() {
                            frames_dropped += 1;
                        }
                    }
                }
            }
            Some(cmd) = cmds.recv() => match cmd {
                MediaCmd::Play(id, pcm) => {
                    if pcm.is_empty() {
                        let _ = events.try_send(LegEvent::PlayFinished { id, played_ms: 0, at_ms: tick * 20 });
                    } else {
                        queue.push_back(PlayItem { id, pcm, pos: 0 });
                    }
                }
                MediaCmd::Clear => {
                    if let Some(item) = queue.pop_front() {
                        if playing_started {
                            let played_ms = (item.pos as u64) / 8;
                            let _ = events.try_send(LegEvent::PlayStopped { id: item.id, played_ms, at_ms: tick * 20 });
                        } else {
                            let _ = events.try_send(LegEvent::PlayStopped { id: item.id, played_ms: 0, at_ms: tick * 20 });
                        }
                    }
                    for item in queue.drain(..) {
                        let _ = events.try_send(LegEvent::PlayStopped { id: item.id, played_ms: 0, at_ms: tick * 20 });
                    }
                    playing_started = false;
                }
                MediaCmd::Dtmf(s) => dtmf_queue.extend(s.chars()),
                MediaCmd::Remote(a) => remote = a,
                MediaCmd::Hold(h) => on_hold = h,
                MediaCmd::Format { codec: c, payload_type: pt, dtmf_payload_type: d } => {
                    codec = c;
                    payload_type = pt;
                    dtmf_pt = d;
                }
            },
        }
    };

    if let Some(d) = dtmf_rx.finish() {
        // A digit whose end packets were all lost still counts.
        let at_ms = tick * 20;
        digits.push(DtmfDigit { digit: d, at_ms });
        let _ = events.try_send(LegEvent::Dtmf { digit: d, at_ms });
    }
    let js = jitter.stats();
    received.lost = Some(js.lost);
    let sent = RtpCount {
        packets: sender.packets_sent(),
        bytes: sender.bytes_sent(),
        lost: None,
    };
    let (recording, recording_error) = match recorder {
        Some(r) => match r.finish() {
            Ok(info) => (Some(info), recording_error),
            Err(e) => (None, Some(e.to_string())),
        },
        None => (None, recording_error),
    };
    MediaSummary {
        end,
        rtp: RtpTotals { sent, received },
        dtmf: digits,
        recording,
        recording_error,
        pacing,
        frames_dropped,
    }
}
