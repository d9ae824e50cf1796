//! The sans-IO WebRTC engine of one call: str0m's `Rtc` (ICE-lite, DTLS-SRTP,
//! RTP mode) with our offer, the peer's answer, and the translation between
//! the peer's SRTP and the plain RTP of our media session.
//!
//! Owns: the offer (one audio m-line, `UDP/TLS/RTP/SAVPF`, our host
//! candidate, Opus/PCMU/PCMA in `[media] codecs` order and telephone-event
//! at 8 kHz), what the answer agreed, the Opus <-> G.711 transcoding when
//! the peer took Opus ([`OpusLeg`]), and the counters of what crossed.
//! Never: touches a socket or a clock (every input carries its `Instant`;
//! the driver does the IO).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::transcode::{self, OpusLeg, SessionFrame, TranscodeStats};
use super::{WebRtcCodec, WebRtcError};
use crate::media::g711::Codec;
use crate::telephony::rtp::{self, RtpHeader};

/// What the answer agreed on (payload types as the peer numbers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The codec on the peer's leg.
    pub peer_codec: WebRtcCodec,
    /// Its payload type on the peer's leg.
    pub peer_payload_type: u8,
    /// The codec our media session speaks with the engine: the peer's
    /// when G.711, else the first G.711 offered (the engine transcodes).
    pub codec: Codec,
    /// Its payload type on the session's side.
    pub payload_type: u8,
    /// The telephone-event payload type, when the peer takes RFC 4733.
    pub dtmf_payload_type: Option<u8>,
}

/// The next thing the driver must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send `data` to the peer at `to` from the engine's socket.
    Network {
        /// The peer's address (ICE's selected pair).
        to: SocketAddr,
        /// The datagram (STUN, DTLS or SRTP).
        data: Vec<u8>,
    },
    /// Hand this plain RTP packet to our media session.
    Session(Vec<u8>),
    /// Nothing more until this instant (or a datagram).
    Wait(Instant),
    /// The engine is done: ICE failed or the peer went away.
    Closed,
}

/// Counters of one call's WebRTC media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// The DTLS handshake completed (SRTP keys in place).
    pub connected: bool,
    /// RTP packets from our session written to the peer.
    pub to_peer: u64,
    /// RTP packets from the peer handed to our session.
    pub to_session: u64,
    /// Packets from our session dropped: before DTLS was up, or not of an
    /// agreed payload type.
    pub dropped_from_session: u64,
    /// Datagrams from the network str0m could not take.
    pub bad_datagrams: u64,
    /// The Opus transcoding's counters (all 0 on a G.711 leg).
    pub opus: TranscodeStats,
}

/// One call's WebRTC media, sans IO.
pub struct Engine {
    rtc: Rtc,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    local: SocketAddr,
    /// The G.711 codec the session speaks when the peer takes Opus.
    session_codec: Codec,
    agreed: Option<Agreed>,
    opus: Option<OpusLeg>,
    /// Packets for the session not yet handed out by `poll`.
    to_session: VecDeque<Vec<u8>>,
    frames: Vec<SessionFrame>,
    tx_seq: u64,
    stats: EngineStats,
    closed: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("local", &self.local)
            .field("agreed", &self.agreed)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A new engine whose ICE host candidate is `local` (the driver's
    /// socket), offering `codecs` in order and telephone-event as
    /// `dtmf_pt`; returns it with the SDP offer to send.
    pub fn offer(
        local: SocketAddr,
        codecs: &[WebRtcCodec],
        dtmf_pt: u8,
        now: Instant,
    ) -> Result<(Engine, String), WebRtcError> {
        if codecs.is_empty() {
            return Err(WebRtcError::NoCodec);
        }
        let session_codec = codecs.iter().find_map(|c| c.g711()).unwrap_or(Codec::Pcmu);
        let mut cfg = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs();
        {
            let params = cfg.codec_config();
            for c in codecs {
                match c {
                    WebRtcCodec::G711(Codec::Pcmu) => params.enable_pcmu(true, false),
                    WebRtcCodec::G711(Codec::Pcma) => params.enable_pcma(true, false),
                    // 48000/2, minptime=10;useinbandfec=1, str0m's PT (111).
                    WebRtcCodec::Opus => params.enable_opus(true, false),
                }
            }
            params.add_config(
                Pt::from(dtmf_pt),
                None,
                RtcCodec::Tele,
                Frequency::EIGHT_KHZ,
                None,
                FormatParams::parse_line("0-16"),
            );
        }
        let mut rtc = cfg.build(now);
        let cand =
            Candidate::host(local, "udp").map_err(|e| WebRtcError::Candidate(e.to_string()))?;
        rtc.add_local_candidate(cand);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| WebRtcError::Sdp("str0m made no offer".into()))?;
        let sdp = offer.to_sdp_string();
        Ok((
            Engine {
                rtc,
                mid,
                pending: Some(pending),
                local,
                session_codec,
                agreed: None,
                opus: None,
                to_session: VecDeque::new(),
                frames: Vec::new(),
                tx_seq: 0,
                stats: EngineStats::default(),
                closed: false,
            },
            sdp,
        ))
    }

    /// Takes the peer's SDP answer: the first of its audio formats that is
    /// Opus, PCMU or PCMA, and its 8 kHz telephone-event, if any.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<Agreed, WebRtcError> {
        let pending = self.pending.take().ok_or(WebRtcError::AnsweredTwice)?;
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let media = self.rtc.media(self.mid).ok_or(WebRtcError::NoAudio)?;
        let cfg = self.rtc.codec_config();
        let spec_of = |pt: Pt| cfg.params().iter().find(|p| p.pt() == pt).map(|p| p.spec());
        let mut audio = None;
        let mut dtmf = None;
        for &pt in media.remote_pts() {
            let Some(spec) = spec_of(pt) else { continue };
            match spec.codec {
                RtcCodec::PCMU if audio.is_none() => {
                    audio = Some((WebRtcCodec::G711(Codec::Pcmu), *pt))
                }
                RtcCodec::PCMA if audio.is_none() => {
                    audio = Some((WebRtcCodec::G711(Codec::Pcma), *pt))
                }
                RtcCodec::Opus if audio.is_none() => audio = Some((WebRtcCodec::Opus, *pt)),
                RtcCodec::Tele if dtmf.is_none() && spec.clock_rate == Frequency::EIGHT_KHZ => {
                    dtmf = Some(*pt)
                }
                _ => {}
            }
        }
        let (peer_codec, peer_payload_type) = audio.ok_or(WebRtcError::NoCommonCodec)?;
        let (codec, payload_type) = match peer_codec {
            WebRtcCodec::G711(c) => (c, peer_payload_type),
            WebRtcCodec::Opus => {
                self.opus = Some(OpusLeg::new(self.session_codec)?);
                (self.session_codec, self.session_codec.payload_type())
            }
        };
        let agreed = Agreed {
            peer_codec,
            peer_payload_type,
            codec,
            payload_type,
            dtmf_payload_type: dtmf,
        };
        self.agreed = Some(agreed);
        Ok(agreed)
    }

    /// A datagram from the network (`from` to our socket).
    pub fn network_in(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Ok(recv) = Receive::new(Protocol::Udp, from, self.local, data) else {
            self.stats.bad_datagrams += 1;
            return;
        };
        if let Err(e) = self.rtc.handle_input(Input::Receive(now, recv)) {
            tracing::debug!(error = %e, "webrtc: datagram refused");
            self.stats.bad_datagrams += 1;
        }
    }

    /// A plain RTP packet from our media session, to the peer over SRTP
    /// (dropped before DTLS is up, and when not of an agreed payload type);
    /// on an Opus leg the audio is transcoded and every timestamp goes onto
    /// the 48 kHz clock.
    pub fn session_in(&mut self, now: Instant, data: &[u8]) {
        let (Some(agreed), true) = (self.agreed, self.stats.connected) else {
            self.stats.dropped_from_session += 1;
            return;
        };
        let Ok(pkt) = rtp::parse(data) else {
            self.stats.dropped_from_session += 1;
            return;
        };
        let pt = pkt.header.payload_type;
        let (out_pt, timestamp, payload) = if pt == agreed.payload_type {
            match self.opus.as_mut() {
                None => (pt, pkt.header.timestamp, pkt.payload.to_vec()),
                Some(leg) => match leg.to_peer(pkt.payload) {
                    Some(opus) => (
                        agreed.peer_payload_type,
                        transcode::to_peer_timestamp(pkt.header.timestamp),
                        opus,
                    ),
                    None => {
                        self.stats.dropped_from_session += 1;
                        return;
                    }
                },
            }
        } else if Some(pt) == agreed.dtmf_payload_type {
            let ts = match self.opus {
                Some(_) => transcode::to_peer_timestamp(pkt.header.timestamp),
                None => pkt.header.timestamp,
            };
            (pt, ts, pkt.payload.to_vec())
        } else {
            self.stats.dropped_from_session += 1;
            return;
        };
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(self.mid, None) else {
            self.stats.dropped_from_session += 1;
            return;
        };
        self.tx_seq += 1;
        tx.write_rtp(
            RtpWrite::new(
                Pt::from(out_pt),
                self.tx_seq.into(),
                timestamp,
                now,
                payload,
            )
            .marker(pkt.header.marker),
        );
        self.stats.to_peer += 1;
    }

    /// Time passed: the engine's timers (ICE, DTLS retransmits, RTCP).
    pub fn timeout(&mut self, now: Instant) {
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!(error = %e, "webrtc: timeout input refused");
        }
    }

    /// The next step for the driver; call until it says `Wait` or `Closed`.
    pub fn poll(&mut self) -> Step {
        loop {
            if let Some(pkt) = self.to_session.pop_front() {
                return Step::Session(pkt);
            }
            if self.closed || !self.rtc.is_alive() {
                self.closed = true;
                return Step::Closed;
            }
            let out = match self.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::info!(error = %e, "webrtc: engine failed");
                    self.closed = true;
                    return Step::Closed;
                }
            };
            match out {
                Output::Timeout(at) => return Step::Wait(at),
                Output::Transmit(t) => {
                    return Step::Network {
                        to: t.destination,
                        data: t.contents.to_vec(),
                    }
                }
                Output::Event(ev) => {
                    if let Some(step) = self.on_event(ev) {
                        return step;
                    }
                }
            }
        }
    }

    fn on_event(&mut self, ev: Event) -> Option<Step> {
        match ev {
            Event::Connected => {
                tracing::info!("webrtc: DTLS-SRTP connected");
                self.stats.connected = true;
                None
            }
            Event::IceConnectionStateChange(s) => {
                tracing::debug!(state = ?s, "webrtc: ICE");
                if s == IceConnectionState::Disconnected {
                    self.closed = true;
                    return Some(Step::Closed);
                }
                None
            }
            Event::RtpPacket(p) => {
                let mut h = RtpHeader {
                    marker: p.header.marker,
                    payload_type: *p.header.payload_type,
                    sequence: p.header.sequence_number,
                    timestamp: p.header.timestamp,
                    ssrc: *p.header.ssrc,
                };
                let (Some(agreed), Some(leg)) = (self.agreed, self.opus.as_mut()) else {
                    let mut out = Vec::with_capacity(rtp::HEADER_LEN + p.payload.len());
                    rtp::write(&h, &p.payload, &mut out);
                    self.stats.to_session += 1;
                    return Some(Step::Session(out));
                };
                // Opus: decoded (with any lost packets before it filled in)
                // to the session's G.711; other types on the 8 kHz clock.
                let queued = self.to_session.len();
                if h.payload_type == agreed.peer_payload_type {
                    self.frames.clear();
                    leg.from_peer(
                        h.sequence,
                        h.timestamp,
                        h.marker,
                        &p.payload,
                        &mut self.frames,
                    );
                    for f in self.frames.drain(..) {
                        let fh = RtpHeader {
                            marker: f.marker,
                            payload_type: agreed.payload_type,
                            sequence: f.sequence,
                            timestamp: f.timestamp,
                            ssrc: h.ssrc,
                        };
                        let mut out = Vec::with_capacity(rtp::HEADER_LEN + f.payload.len());
                        rtp::write(&fh, &f.payload, &mut out);
                        self.to_session.push_back(out);
                    }
                } else if let Some(ts) = leg.peer_event(h.sequence, h.timestamp) {
                    h.timestamp = ts;
                    let mut out = Vec::with_capacity(rtp::HEADER_LEN + p.payload.len());
                    rtp::write(&h, &p.payload, &mut out);
                    self.to_session.push_back(out);
                }
                self.stats.to_session += (self.to_session.len() - queued) as u64;
                self.stats.opus = leg.stats();
                None
            }
            _ => None,
        }
    }

    /// Whether the DTLS handshake completed.
    pub fn connected(&self) -> bool {
        self.stats.connected
    }

    /// What crossed so far.
    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats;
        if let Some(leg) = &self.opus {
            s.opus = leg.stats();
        }
        s
    }

    /// What the answer agreed, once taken.
    pub fn agreed(&self) -> Option<Agreed> {
        self.agreed
    }

    /// Our socket's address (the host candidate).
    pub fn local(&self) -> SocketAddr {
        self.local
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
