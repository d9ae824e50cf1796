//! One call's RTP session: a UDP socket, 20 ms pacing on absolute deadlines,
//! the play queue, RFC 4733 DTMF both ways, the jitter buffer, the arrival
//! path to the driver and the two-channel recording.
//!
//! Owns the media clock of the call and the rules of what comes in: RTP is
//! taken only from the peer ([`RtpSource`]: strangers are dropped and never
//! answered), each sample is handed on once and never faster than the media
//! clock ([`JitterBuffer`] judges what is new, [`ArrivalFramer`] cuts 20 ms
//! frames), DTMF digits are rate-limited and capped, and a session the peer
//! holds (it sends nothing on purpose) does not time out.
//! Never: touches SIP, waits on anything slower than a channel send (a busy
//! consumer loses audio frames, counted; the recording is written by its
//! own thread), or grows a queue with what the network sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::media::cn::{self, ComfortNoise};
use crate::media::g711::{self, Codec};
use crate::media::jitter::{Arrival, JitterBuffer, JitterStats, Playout};
use crate::media::recorder::{RecordingInfo, RecordingWriter};
use crate::media::rfc4733::{DtmfReceiver, DtmfSender};
use crate::media::sit::{Sit, SitDetector};
use crate::telephony::arrival::ArrivalFramer;
use crate::telephony::bridge::BRIDGE_QUEUE_FRAMES;
use crate::telephony::leg::{AudioDropped, AudioFrame, LegEvent, LegEventSender, FRAME_SAMPLES};
use crate::telephony::report::{DtmfDigit, PacingStats, RtpCount, RtpTotals};
use crate::telephony::rtcp::{self, RtcpReport, RtcpSession};
use crate::telephony::rtp::{self, RtpSender};
use crate::telephony::sdp::{Negotiated, OfferParams};
use crate::telephony::source::{RtpSource, Verdict};
use crate::telephony::srtp::SrtpSession;

const FRAME: Duration = Duration::from_millis(20);
/// After a stall longer than this many frames we skip ahead instead of
/// bursting the backlog (a burst would only fill the peer's jitter buffer).
const MAX_CATCH_UP_FRAMES: u64 = 5;
/// Digits a call keeps and hands on at most; more are counted, not kept
/// (a reminder call needs a handful; the transcript must not grow without
/// bound with what a peer sends).
pub const MAX_DIGITS: usize = 128;
/// Digits queued to send at most (more are dropped with a warning).
const MAX_DTMF_QUEUE: usize = 64;
/// How long the end of a call waits for the recording's writer to close
/// the file (a stalled disk must not hold the call's report forever).
pub const RECORDING_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the SDP negotiated besides the codec and DTMF: RTCP, comfort
/// noise and SRTP. [`MediaOptions::negotiated`] reads them off a
/// [`Negotiated`] and our own offer or answer.
#[derive(Debug, Clone, Default)]
pub struct MediaOptions {
    /// Where RTCP goes (None: the session sends and reads no RTCP).
    pub remote_rtcp: Option<SocketAddr>,
    /// RTCP shares the RTP socket (`a=rtcp-mux` on both sides); else it
    /// uses a socket of its own on our RTP port + 1.
    pub rtcp_mux: bool,
    /// The peer's comfort-noise payload type (RFC 3389), if negotiated.
    pub cn_payload_type: Option<u8>,
    /// SRTP keys of both directions (None: plain RTP).
    pub srtp: Option<SrtpSession>,
}

impl MediaOptions {
    /// RTCP, comfort noise and SRTP as the SDP exchange settled them: `n`
    /// from the peer's SDP, `ours` what we offered or answered (our key).
    pub fn negotiated(n: &Negotiated, ours: &OfferParams) -> Self {
        let srtp = match (&n.crypto, &ours.srtp) {
            (Some(theirs), Some(o)) => Some(SrtpSession::new(theirs.suite, &o.key, &theirs.key)),
            _ => None,
        };
        MediaOptions {
            remote_rtcp: Some(n.remote_rtcp),
            rtcp_mux: n.rtcp_mux,
            cn_payload_type: n.cn_payload_type,
            srtp,
        }
    }
}

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
    /// Time without RTP (while the peer is meant to send) before
    /// `MediaEnd::Timeout` (0: never).
    pub media_timeout: Duration,
    /// Early media: what is heard goes through a SIT detector and each
    /// tone found is sent here, until the receiver is dropped.
    pub sit: Option<mpsc::Sender<Sit>>,
    /// RTCP and comfort noise.
    pub options: MediaOptions,
}

/// Commands from the call task.
// `Feed` carries a frame by value (50 a second on a bridge): no allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum MediaCmd {
    /// Queue audio.
    Play(String, Arc<[i16]>),
    /// Drop the queue, cut the current item.
    Clear,
    /// Queue DTMF digits.
    Dtmf(String),
    /// A new SDP (the 200 after early media, a re-INVITE): the peer's
    /// address, codec, payload types and direction from now on.
    Negotiated(Negotiated),
    /// 20 ms of another leg's audio (a bridged transfer), sent when nothing
    /// is queued to play; at most [`BRIDGE_QUEUE_FRAMES`] wait, the oldest
    /// is dropped beyond that.
    Feed([i16; FRAME_SAMPLES]),
}

/// Why the session stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEnd {
    /// The call task stopped it.
    Stopped,
    /// No RTP arrived for the configured time while the peer was meant to send.
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
    /// Digits heard (at most [`MAX_DIGITS`]).
    pub dtmf: Vec<DtmfDigit>,
    /// The closed recording.
    pub recording: Option<RecordingInfo>,
    /// Why the recording failed, if it did (the call goes on without it).
    pub recording_error: Option<String>,
    /// Ticks the recording's writer could not take in time (silence in the file).
    pub recording_frames_dropped: u64,
    /// Our send pacing.
    pub pacing: PacingStats,
    /// Audio frames the consumer was too slow to take.
    pub frames_dropped: u64,
    /// Received samples dropped for arriving faster than the media clock.
    pub over_rate_samples: u64,
    /// Digits the rate limit or the cap held back.
    pub dtmf_ignored: u64,
    /// Datagrams from strangers (not the peer's address), dropped.
    pub strangers: u64,
    /// Datagrams that were not RTP, or of a payload type not negotiated.
    pub ignored_datagrams: u64,
    /// The receive stream's counters.
    pub jitter: JitterStats,
    /// The RTCP reports exchanged and what they said (None without RTCP).
    pub rtcp: Option<RtcpReport>,
    /// Comfort-noise packets received from the peer (RFC 3389).
    pub cn_packets: u64,
    /// Bridged frames dropped because the queue was full (a bridged transfer).
    pub bridge_dropped: u64,
}

struct PlayItem {
    id: String,
    pcm: Arc<[i16]>,
    pos: usize,
}

/// The session's state between the driver's awaits: every input is a
/// method call with the current tick; nothing here waits.
struct Session {
    codec: Codec,
    payload_type: u8,
    dtmf_pt: Option<u8>,
    source: RtpSource,
    sender: RtpSender,
    jitter: JitterBuffer,
    framer: ArrivalFramer,
    dtmf_rx: DtmfReceiver,
    dtmf_tx: Option<DtmfSender>,
    dtmf_event_ts: u32,
    dtmf_queue: VecDeque<char>,
    queue: VecDeque<PlayItem>,
    playing_started: bool,
    /// Another leg's frames (a bridged transfer), sent when nothing plays.
    bridged: VecDeque<[i16; FRAME_SAMPLES]>,
    bridge_dropped: u64,
    /// The peer lets us send (not held by it).
    sends: bool,
    /// The peer means to send to us (a media timeout applies).
    receives: bool,
    digits: Vec<DtmfDigit>,
    digits_over_cap: u64,
    received: RtpCount,
    ignored_datagrams: u64,
    pacing: PacingStats,
    last_send: Option<Instant>,
    last_rx: Instant,
    frames_dropped: u64,
    recorder: Option<RecordingWriter>,
    recording_error: Option<String>,
    events: LegEventSender,
    marker: bool,
    out: Vec<u8>,
    payload: Vec<u8>,
    sent_pcm: [i16; FRAME_SAMPLES],
    heard_bytes: [u8; FRAME_SAMPLES],
    heard_pcm: [i16; FRAME_SAMPLES],
    rx_pcm: Vec<i16>,
    /// Early media's SIT detector and where its findings go.
    sit: Option<(SitDetector, mpsc::Sender<Sit>)>,
    /// The session's start: RTCP times are microseconds since.
    start: Instant,
    rtcp: Option<RtcpSession>,
    remote_rtcp: Option<SocketAddr>,
    rtcp_mux: bool,
    /// The next RTCP compound to send (empty: none).
    rtcp_out: Vec<u8>,
    cn_pt: Option<u8>,
    /// The noise a CN packet announced, recorded until audio plays again.
    comfort: Option<ComfortNoise>,
    cn_packets: u64,
    srtp: Option<SrtpSession>,
    /// Datagrams that failed SRTP/SRTCP authentication or replay checks.
    srtp_rejected: u64,
}

impl Session {
    fn new(p: &MediaParams, events: LegEventSender, now: Instant) -> Session {
        let mut recording_error = None;
        let recorder = match &p.record {
            Some(path) => match RecordingWriter::spawn(path.clone()) {
                Ok(r) => Some(r),
                Err(e) => {
                    recording_error = Some(e.to_string());
                    tracing::warn!(error = %e, "recording disabled for this call");
                    None
                }
            },
            None => None,
        };
        let sender = RtpSender::new(rand::random(), rand::random(), rand::random());
        let epoch_unix_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let rtcp = p.options.remote_rtcp.map(|_| {
            RtcpSession::new(
                sender.ssrc(),
                format!("duecall-{:08x}", rand::random::<u32>()),
                epoch_unix_us,
                p.options.rtcp_mux,
                report_interval_us() / 2,
            )
        });
        Session {
            codec: p.codec,
            payload_type: p.payload_type,
            dtmf_pt: p.dtmf_payload_type,
            source: RtpSource::new(p.remote),
            sender,
            jitter: JitterBuffer::new(p.jitter_frames),
            framer: ArrivalFramer::new(),
            dtmf_rx: DtmfReceiver::new(),
            dtmf_tx: None,
            dtmf_event_ts: 0,
            dtmf_queue: VecDeque::new(),
            queue: VecDeque::new(),
            playing_started: false,
            bridged: VecDeque::with_capacity(BRIDGE_QUEUE_FRAMES),
            bridge_dropped: 0,
            sends: true,
            receives: true,
            digits: Vec::new(),
            digits_over_cap: 0,
            received: RtpCount {
                lost: Some(0),
                ..Default::default()
            },
            ignored_datagrams: 0,
            pacing: PacingStats::new(),
            last_send: None,
            last_rx: now,
            frames_dropped: 0,
            recorder,
            recording_error,
            events,
            marker: true,
            out: Vec::with_capacity(rtp::HEADER_LEN + FRAME_SAMPLES),
            payload: Vec::with_capacity(FRAME_SAMPLES),
            sent_pcm: [0; FRAME_SAMPLES],
            heard_bytes: [0; FRAME_SAMPLES],
            heard_pcm: [0; FRAME_SAMPLES],
            rx_pcm: Vec::with_capacity(crate::media::jitter::MAX_PAYLOAD * 2),
            sit: p.sit.clone().map(|tx| (SitDetector::new(), tx)),
            start: now,
            rtcp,
            remote_rtcp: p.options.remote_rtcp,
            rtcp_mux: p.options.rtcp_mux,
            // Room for the largest compound we write (SR, one block, SDES
            // with a short CNAME, BYE): no allocation when a report goes.
            rtcp_out: Vec::with_capacity(256),
            cn_pt: p.options.cn_payload_type,
            comfort: None,
            cn_packets: 0,
            srtp: p.options.srtp.clone(),
            srtp_rejected: 0,
        }
    }

    fn micros(&self, now: Instant) -> u64 {
        now.duration_since(self.start).as_micros() as u64
    }

    /// Where our RTCP goes: the RTP destination when multiplexed; else the
    /// port above a latched RTP source, else what the SDP said.
    fn rtcp_dest(&self) -> Option<SocketAddr> {
        let rtp_to = self.source.send_to();
        if self.rtcp_mux {
            Some(rtp_to)
        } else if rtp_to != self.source.expected() {
            Some(SocketAddr::new(rtp_to.ip(), rtp_to.port().wrapping_add(1)))
        } else {
            self.remote_rtcp
        }
    }

    /// Puts the next RTCP compound into `self.rtcp_out` when one is due (or
    /// the BYE at the end); returns whether there is one to send.
    fn rtcp_report(&mut self, now: Instant, bye: bool) -> bool {
        self.rtcp_out.clear();
        let us = self.micros(now);
        let sent = (
            self.sender.timestamp(),
            self.sender.packets_sent(),
            self.sender.bytes_sent(),
        );
        let Some(r) = self.rtcp.as_mut() else {
            return false;
        };
        if !bye && !r.due(us) {
            return false;
        }
        r.write_report(&mut self.rtcp_out, us, sent, bye, report_interval_us());
        if let Some(s) = self.srtp.as_mut() {
            if s.tx.protect_rtcp(&mut self.rtcp_out).is_err() {
                self.rtcp_out.clear();
                return false;
            }
        }
        true
    }

    /// An RTCP datagram (on the RTCP socket, or demultiplexed from the RTP
    /// one): read when it comes from the peer, dropped otherwise.
    fn on_rtcp(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        let us = self.micros(now);
        let from_peer = Some(from) == self.rtcp_dest()
            || Some(from) == self.remote_rtcp
            || (self.rtcp_mux && from == self.source.expected());
        let Some(r) = self.rtcp.as_mut() else {
            return;
        };
        if !from_peer {
            r.dropped();
            return;
        }
        let data = match self.srtp.as_mut() {
            Some(s) => match s.rx.unprotect_rtcp(data) {
                Ok(n) => &data[..n],
                Err(e) => {
                    self.srtp_rejected += 1;
                    r.dropped();
                    tracing::debug!(error = %e, "SRTCP datagram dropped");
                    return;
                }
            },
            None => &data[..],
        };
        if let Err(e) = r.on_datagram(data, us) {
            tracing::debug!(error = %e, "RTCP datagram dropped");
        }
    }

    /// One 20 ms tick: the next outgoing packet goes into `self.out` (empty
    /// when nothing is to be sent), the heard frame into the recording, and
    /// silence to the driver for time in which nothing arrived.
    fn on_tick(&mut self, tick: u64) {
        let at_ms = tick * 20;
        self.sent_pcm.fill(0);
        self.out.clear();
        // A peer that holds us hears nothing: the play queue waits for it.
        if self.sends {
            self.next_play_frame(at_ms);
            self.next_packet();
            if let Some(s) = self.srtp.as_mut() {
                if s.tx.protect_rtp(&mut self.out).is_err() {
                    self.out.clear();
                }
            }
        } else {
            self.sender.advance_timestamp(FRAME_SAMPLES as u32);
        }

        let playout = self
            .jitter
            .pop_into(&mut self.heard_bytes, self.codec.silence_byte());
        if let Some(rec) = self.recorder.as_mut() {
            if playout == Playout::Audio {
                g711::decode_into(self.codec, &self.heard_bytes, &mut self.heard_pcm);
                self.comfort = None;
            } else if let Some(noise) = self.comfort.as_mut() {
                // The peer paused with a CN packet: its noise, at its level.
                noise.fill(&mut self.heard_pcm);
            } else {
                self.heard_pcm.fill(0);
            }
            rec.write_frame(&self.sent_pcm, &self.heard_pcm);
        }
        let (events, dropped) = (&self.events, &mut self.frames_dropped);
        self.framer.tick(tick, |pcm, received| {
            hand_on(events, dropped, at_ms, pcm, received)
        });
    }

    fn next_play_frame(&mut self, at_ms: u64) {
        let Some(item) = self.queue.front_mut() else {
            if let Some(f) = self.bridged.pop_front() {
                self.sent_pcm = f;
            }
            return;
        };
        if !self.playing_started {
            self.playing_started = true;
            self.events.control(LegEvent::PlayStarted {
                id: item.id.clone(),
                at_ms,
            });
        }
        let n = (item.pcm.len() - item.pos).min(FRAME_SAMPLES);
        self.sent_pcm[..n].copy_from_slice(&item.pcm[item.pos..item.pos + n]);
        item.pos += n;
        if item.pos >= item.pcm.len() {
            let played_ms = (item.pcm.len() as u64) / 8;
            let id = std::mem::take(&mut item.id);
            self.queue.pop_front();
            self.playing_started = false;
            self.events.control(LegEvent::PlayFinished {
                id,
                played_ms,
                at_ms: at_ms + 20,
            });
        }
    }

    /// The tick's packet: a DTMF event packet while a digit is being sent,
    /// else the audio frame.
    fn next_packet(&mut self) {
        if self.dtmf_tx.is_none() {
            if let (Some(d), Some(_)) = (self.dtmf_queue.pop_front(), self.dtmf_pt) {
                self.dtmf_tx = DtmfSender::new(d, 160, 10);
                self.dtmf_event_ts = self.sender.timestamp();
            }
        }
        if let (Some(ds), Some(pt)) = (self.dtmf_tx.as_mut(), self.dtmf_pt) {
            match ds.next_packet() {
                Some((ev, first, _is_end)) => {
                    let h = self.sender.event(pt, self.dtmf_event_ts, first);
                    rtp::write(&h, &ev, &mut self.out);
                    self.sender.advance_timestamp(FRAME_SAMPLES as u32);
                    return;
                }
                None => self.dtmf_tx = None,
            }
        }
        self.payload.clear();
        g711::encode(self.codec, &self.sent_pcm, &mut self.payload);
        let h = self
            .sender
            .audio(self.payload_type, FRAME_SAMPLES as u32, self.marker);
        self.marker = false;
        rtp::write(&h, &self.payload, &mut self.out);
    }

    /// The packet in `self.out` left at `at`.
    fn sent(&mut self, at: Instant) {
        if let Some(prev) = self.last_send {
            self.pacing.record(at.duration_since(prev));
        }
        self.last_send = Some(at);
    }

    /// The driver skipped `frames` ticks after a stall.
    fn skipped(&mut self, frames: u64) {
        self.sender
            .advance_timestamp((frames as u32).wrapping_mul(FRAME_SAMPLES as u32));
        self.last_send = None;
    }

    /// One datagram from `from`, arrived during `tick`.
    fn on_datagram(&mut self, tick: u64, now: Instant, from: SocketAddr, data: &mut [u8]) {
        if self.rtcp_mux && rtcp::is_rtcp(data) {
            self.on_rtcp(now, from, data);
            return;
        }
        let data = match self.srtp.as_mut() {
            // Decrypted in place; anything that fails authentication (a
            // stranger, a replay, plain RTP) is dropped unread.
            Some(s) => match s.rx.unprotect_rtp(data) {
                Ok(n) => &data[..n],
                Err(_) => {
                    self.srtp_rejected += 1;
                    self.ignored_datagrams += 1;
                    return;
                }
            },
            None => &data[..],
        };
        let Ok(pkt) = rtp::parse(data) else {
            self.ignored_datagrams += 1;
            return;
        };
        let h = pkt.header;
        let is_dtmf = Some(h.payload_type) == self.dtmf_pt;
        let is_cn = Some(h.payload_type) == self.cn_pt && h.payload_type != self.payload_type;
        if h.payload_type != self.payload_type && !is_dtmf && !is_cn {
            // Unknown payload types are ignored (sipp sends PT 97 noise).
            self.ignored_datagrams += 1;
            return;
        }
        if self.source.judge(from, h.ssrc, h.sequence, tick * 20) == Verdict::Stranger {
            return;
        }
        self.last_rx = now;
        if let Some(r) = self.rtcp.as_mut() {
            // Arrival in 8 kHz timestamp units, for the jitter (RFC 3550 A.8).
            let arrival = (now.duration_since(self.start).as_micros() as u64 * 8 / 1000) as u32;
            let timing = (!is_dtmf).then_some((h.timestamp, arrival));
            r.stats_mut().on_rtp(h.ssrc, h.sequence, timing);
        }
        self.received.packets += 1;
        self.received.bytes += pkt.payload.len() as u64;
        let at_ms = tick * 20;
        if is_cn {
            // Comfort noise (RFC 3389) is no audio: it takes its sequence
            // number in the jitter buffer (no loss, no gap), the recording
            // gets noise at its level until audio plays again, and the
            // arrival path hands on silence (the VAD hears a pause).
            self.cn_packets += 1;
            if let Some(level) = cn::level_dbov(pkt.payload) {
                let _ = self.jitter.push_silent(h.ssrc, h.sequence, h.timestamp);
                self.comfort = Some(ComfortNoise::new(level, h.timestamp | 1));
            }
            return;
        }
        if is_dtmf {
            if let Some(d) = self
                .dtmf_rx
                .on_packet(at_ms, h.ssrc, h.timestamp, pkt.payload)
            {
                self.digit(d, at_ms);
            }
            return;
        }
        self.rx_pcm.clear();
        match self
            .jitter
            .push(h.ssrc, h.sequence, h.timestamp, pkt.payload)
        {
            Arrival::Fresh => g711::decode(self.codec, pkt.payload, &mut self.rx_pcm),
            Arrival::Resync => {
                if let Some(head) = self.jitter.resync_head() {
                    g711::decode(self.codec, head, &mut self.rx_pcm);
                }
                g711::decode(self.codec, pkt.payload, &mut self.rx_pcm);
            }
            Arrival::Old | Arrival::Held | Arrival::Rejected => return,
        }
        self.listen_for_sit();
        let (events, dropped) = (&self.events, &mut self.frames_dropped);
        self.framer.received(tick, &self.rx_pcm, |pcm, received| {
            hand_on(events, dropped, at_ms, pcm, received)
        });
    }

    /// Early media: the fresh samples through the SIT detector; it stops
    /// for good once the call task no longer listens (the answer, the end).
    fn listen_for_sit(&mut self) {
        let Some((det, tx)) = self.sit.as_mut() else {
            return;
        };
        if tx.is_closed() {
            self.sit = None;
            return;
        }
        if let Some(sit) = det.push(&self.rx_pcm) {
            tracing::debug!(
                kind = sit.kind.as_str(),
                at_ms = sit.at_ms,
                "SIT in the media"
            );
            let _ = tx.try_send(sit);
        }
    }

    fn digit(&mut self, digit: char, at_ms: u64) {
        if self.digits.len() >= MAX_DIGITS {
            self.digits_over_cap += 1;
            return;
        }
        self.digits.push(DtmfDigit { digit, at_ms });
        self.events.control(LegEvent::Dtmf { digit, at_ms });
    }

    fn on_command(&mut self, tick: u64, now: Instant, cmd: MediaCmd) {
        let at_ms = tick * 20;
        match cmd {
            MediaCmd::Play(id, pcm) => {
                if pcm.is_empty() {
                    self.events.control(LegEvent::PlayFinished {
                        id,
                        played_ms: 0,
                        at_ms,
                    });
                } else {
                    self.queue.push_back(PlayItem { id, pcm, pos: 0 });
                }
            }
            MediaCmd::Clear => {
                let started = std::mem::take(&mut self.playing_started);
                for (i, item) in self.queue.drain(..).enumerate() {
                    let played_ms = if i == 0 && started {
                        (item.pos as u64) / 8
                    } else {
                        0
                    };
                    self.events.control(LegEvent::PlayStopped {
                        id: item.id,
                        played_ms,
                        at_ms,
                    });
                }
            }
            MediaCmd::Dtmf(s) => {
                for c in s.chars() {
                    if self.dtmf_queue.len() >= MAX_DTMF_QUEUE {
                        tracing::warn!("DTMF send queue full: digits dropped");
                        break;
                    }
                    self.dtmf_queue.push_back(c);
                }
            }
            MediaCmd::Negotiated(n) => self.apply(&n, now),
            MediaCmd::Feed(pcm) => {
                if self.bridged.len() >= BRIDGE_QUEUE_FRAMES {
                    self.bridged.pop_front();
                    self.bridge_dropped += 1;
                }
                self.bridged.push_back(pcm);
            }
        }
    }

    /// A new SDP: follow the peer's address, codec and direction.
    fn apply(&mut self, n: &Negotiated, now: Instant) {
        self.source.move_to(n.remote_rtp);
        if n.codec != self.codec {
            // What is buffered was encoded with the old codec.
            self.jitter.reset();
        }
        self.codec = n.codec;
        self.payload_type = n.payload_type;
        self.dtmf_pt = n.dtmf_payload_type;
        self.sends = n.direction.sends();
        self.remote_rtcp = Some(n.remote_rtcp).filter(|_| self.rtcp.is_some());
        self.rtcp_mux = n.rtcp_mux;
        if let Some(r) = self.rtcp.as_mut() {
            r.set_mux(n.rtcp_mux);
        }
        self.cn_pt = n.cn_payload_type;
        let receives = n.direction.receives();
        if receives && !self.receives {
            // Back from a hold: the media timeout starts afresh.
            self.last_rx = now;
        }
        self.receives = receives;
    }

    /// Whether the peer, meant to send, has been silent longer than `timeout`.
    fn timed_out(&self, now: Instant, timeout: Duration) -> bool {
        self.receives && !timeout.is_zero() && now.duration_since(self.last_rx) > timeout
    }

    async fn finish(mut self, end: MediaEnd, tick: u64) -> MediaSummary {
        if let Some(d) = self.dtmf_rx.finish(tick * 20) {
            // A digit whose end packets were all lost still counts.
            self.digit(d, tick * 20);
        }
        let js = self.jitter.stats();
        self.received.lost = Some(js.lost);
        self.received.strangers = Some(self.source.strangers()).filter(|&n| n > 0);
        let sent = RtpCount {
            packets: self.sender.packets_sent(),
            bytes: self.sender.bytes_sent(),
            ..Default::default()
        };
        let mut recording_frames_dropped = 0;
        let (recording, recording_error) = match self.recorder.take() {
            Some(r) => {
                recording_frames_dropped = r.frames_dropped();
                match r.finish(RECORDING_CLOSE_WAIT).await {
                    Ok(info) => (Some(info), self.recording_error),
                    Err(e) => {
                        tracing::warn!(error = %e, "recording failed");
                        (None, Some(e.to_string()))
                    }
                }
            }
            None => (None, self.recording_error),
        };
        if self.source.strangers() > 0 {
            tracing::info!(
                strangers = self.source.strangers(),
                "RTP from other addresses than the peer's was dropped"
            );
        }
        if self.srtp_rejected > 0 {
            tracing::info!(
                rejected = self.srtp_rejected,
                "SRTP/SRTCP datagrams failed authentication or replay checks and were dropped"
            );
        }
        MediaSummary {
            end,
            rtp: RtpTotals {
                sent,
                received: self.received,
                srtp: self.srtp.as_ref().map(|s| s.tx.suite()),
            },
            dtmf: self.digits,
            recording,
            recording_error,
            recording_frames_dropped,
            pacing: self.pacing,
            frames_dropped: self.frames_dropped,
            over_rate_samples: self.framer.over_rate(),
            dtmf_ignored: self.dtmf_rx.ignored() + self.digits_over_cap,
            strangers: self.source.strangers(),
            ignored_datagrams: self.ignored_datagrams,
            jitter: js,
            rtcp: self.rtcp.map(RtcpSession::finish),
            cn_packets: self.cn_packets,
            bridge_dropped: self.bridge_dropped,
        }
    }
}

/// The next RTCP interval: RFC 3550 6.3.1's 5 s minimum, randomised over
/// 0.5..1.5 of it so that reports of many calls do not synchronise.
fn report_interval_us() -> u64 {
    let factor = 0.5 + rand::random::<f64>();
    (rtcp::REPORT_INTERVAL_MS as f64 * 1000.0 * factor) as u64
}

/// Binds the RTCP socket on the port above our RTP port (RFC 3550 11);
/// None when it is taken (the call goes on without RTCP).
async fn bind_rtcp(rtp: &UdpSocket) -> Option<UdpSocket> {
    let local = rtp.local_addr().ok()?;
    let port = local.port().checked_add(1)?;
    match UdpSocket::bind(SocketAddr::new(local.ip(), port)).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::info!(port, error = %e, "RTCP port taken: no RTCP on this call");
            None
        }
    }
}

/// Waits for a datagram on `sock`, or forever without one.
async fn recv_opt(
    sock: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Sends the compound in `s.rtcp_out` on the RTP socket (mux) or the RTCP one.
async fn send_rtcp(s: &Session, rtp_sock: &UdpSocket, rtcp_sock: Option<&UdpSocket>) {
    let sock = if s.rtcp_mux {
        Some(rtp_sock)
    } else {
        rtcp_sock
    };
    if let (Some(sock), Some(to)) = (sock, s.rtcp_dest()) {
        if let Err(e) = sock.send_to(&s.rtcp_out, to).await {
            tracing::debug!(error = %e, "rtcp send failed");
        }
    }
}

/// Hands one frame to the driver without waiting; counts it when the
/// driver is behind.
fn hand_on(
    events: &LegEventSender,
    dropped: &mut u64,
    at_ms: u64,
    pcm: &[i16; FRAME_SAMPLES],
    received: bool,
) {
    let frame = AudioFrame {
        at_ms,
        pcm: *pcm,
        received,
    };
    if let Err(AudioDropped::Full) = events.audio(frame) {
        *dropped += 1;
    }
}

/// Runs the session until `stop` is cancelled, the peer goes silent past the
/// media timeout, or the socket fails.
pub async fn run(
    p: MediaParams,
    mut cmds: mpsc::Receiver<MediaCmd>,
    events: LegEventSender,
    stop: CancellationToken,
) -> MediaSummary {
    let start = Instant::now();
    let mut s = Session::new(&p, events, start);
    let mut buf = vec![0u8; rtp::MAX_PACKET_LEN + 1];
    let mut tick: u64 = 0;
    let mut cmds_open = true;
    let rtcp_sock = match &p.options.remote_rtcp {
        Some(_) if !p.options.rtcp_mux => bind_rtcp(&p.socket).await,
        _ => None,
    };
    let mut rtcp_live = rtcp_sock.is_some();
    let mut rtcp_buf = vec![0u8; rtcp::MAX_PACKET_LEN + 1];

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
                    s.skipped(behind);
                }
                s.on_tick(tick);
                if !s.out.is_empty() {
                    if let Err(e) = p.socket.send_to(&s.out, s.source.send_to()).await {
                        tracing::debug!(error = %e, "rtp send failed");
                    }
                    s.sent(Instant::now());
                }
                if s.rtcp_report(now, false) {
                    send_rtcp(&s, &p.socket, rtcp_sock.as_ref()).await;
                }
                tick += 1;
                if s.timed_out(now, p.media_timeout) {
                    break MediaEnd::Timeout;
                }
            }
            r = p.socket.recv_from(&mut buf) => {
                match r {
                    Ok((n, from)) => s.on_datagram(tick, Instant::now(), from, &mut buf[..n]),
                    // ICMP port unreachable surfaces here on Linux: the peer
                    // is not listening yet or any more; keep going.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "rtp socket failed");
                        break MediaEnd::SocketError;
                    }
                }
            }
            r = recv_opt(rtcp_sock.as_ref(), &mut rtcp_buf), if rtcp_live => {
                match r {
                    Ok((n, from)) => s.on_rtcp(Instant::now(), from, &mut rtcp_buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "rtcp socket failed: no more RTCP in");
                        rtcp_live = false;
                    }
                }
            }
            cmd = cmds.recv(), if cmds_open => match cmd {
                Some(cmd) => s.on_command(tick, Instant::now(), cmd),
                None => cmds_open = false,
            },
        }
    };
    // RTCP BYE (RFC 3550 6.6): the last report says we are leaving.
    if s.rtcp_report(Instant::now(), true) {
        send_rtcp(&s, &p.socket, rtcp_sock.as_ref()).await;
    }
    s.finish(end, tick).await
}

#[cfg(test)]
#[path = "media_session_tests.rs"]
mod tests;
