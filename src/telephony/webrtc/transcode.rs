//! Opus on the browser's leg, G.711 on the media session's: the bridge
//! transcodes, so the media session (pacing, jitter buffer, recording, the
//! recogniser) stays 8 kHz G.711 as for every SIP call.
//!
//! Owns: the Opus encoder and decoder of one call (libopus at 8 kHz, no
//! resampler), the translation of RTP timestamps between the 48 kHz Opus
//! clock (RFC 7587) and the session's 8 kHz one, and loss handling on the
//! browser's packets (in-band FEC for the packet just before a received
//! one, libopus concealment for the others of a short gap; late packets are
//! dropped). Never: touches sockets or clocks; sequence numbers pass
//! through (a concealed packet takes the number of the one it replaces).

use crate::media::g711::{self, Codec};
use crate::media::opus::{self, Decoder, Encoder, OpusError};

/// Bitrate of our Opus (speech at 8 kHz: narrowband, where more buys little).
pub const OPUS_BITRATE: i32 = 20_000;
/// The longest gap (lost packets) filled by concealment; a longer one is
/// left to the media session's jitter buffer.
pub const MAX_CONCEALED: u16 = 5;

/// One frame for the media session (the peer's SSRC and the session's
/// payload type are the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFrame {
    /// The sequence number (the peer's, or the lost packet's).
    pub sequence: u16,
    /// The timestamp on the session's 8 kHz clock.
    pub timestamp: u32,
    /// The marker bit (the peer's; false on a concealed frame).
    pub marker: bool,
    /// G.711 bytes in the session's codec.
    pub payload: Vec<u8>,
}

/// What the transcoding did on one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscodeStats {
    /// Opus packets from the peer decoded.
    pub decoded: u64,
    /// Lost packets filled by libopus concealment.
    pub concealed: u64,
    /// Lost packets rebuilt from the next packet's in-band FEC.
    pub recovered: u64,
    /// Packets from the peer that came after a later one (dropped).
    pub late: u64,
    /// Packets libopus refused (in or out): a frame is concealed instead
    /// on the way in, dropped on the way out.
    pub errors: u64,
    /// Our frames encoded to Opus.
    pub encoded: u64,
}

/// Where the peer's stream stands.
#[derive(Debug, Clone, Copy)]
struct Rx {
    last_seq: u16,
    base48: u32,
    base8: u32,
}

/// One call's Opus <-> G.711 transcoding.
#[derive(Debug)]
pub struct OpusLeg {
    session: Codec,
    enc: Encoder,
    dec: Decoder,
    rx: Option<Rx>,
    /// Samples of the peer's last decoded packet (the lost ones are
    /// assumed as long).
    last_samples: usize,
    pcm: Vec<i16>,
    stats: TranscodeStats,
}

/// Our 8 kHz timestamp on the 48 kHz Opus clock (continuous across the
/// wrap: multiplication modulo 2^32 keeps the steps).
pub fn to_peer_timestamp(ts8: u32) -> u32 {
    ts8.wrapping_mul(opus::TICKS_PER_SAMPLE)
}

impl OpusLeg {
    /// A new leg whose media session speaks `session` (PCMU or PCMA).
    pub fn new(session: Codec) -> Result<OpusLeg, OpusError> {
        Ok(OpusLeg {
            session,
            enc: Encoder::new(OPUS_BITRATE)?,
            dec: Decoder::new()?,
            rx: None,
            last_samples: g711::FRAME_SAMPLES,
            pcm: Vec::with_capacity(opus::MAX_FRAME_SAMPLES),
            stats: TranscodeStats::default(),
        })
    }

    /// The session's codec.
    pub fn session_codec(&self) -> Codec {
        self.session
    }

    /// One of our G.711 frames as one Opus packet (None, counted, when its
    /// length is not an Opus frame length or libopus refuses it).
    pub fn to_peer(&mut self, g711_payload: &[u8]) -> Option<Vec<u8>> {
        self.pcm.clear();
        g711::decode(self.session, g711_payload, &mut self.pcm);
        let mut out = Vec::with_capacity(160);
        match self.enc.encode(&self.pcm, &mut out) {
            Ok(_) => {
                self.stats.encoded += 1;
                Some(out)
            }
            Err(e) => {
                tracing::debug!(error = %e, "webrtc: opus encode refused a frame");
                self.stats.errors += 1;
                None
            }
        }
    }

    /// Follows the peer's sequence and translates its 48 kHz timestamp:
    /// None for a late or repeated packet, else (lost packets just before
    /// it, the 8 kHz timestamp).
    fn follow(&mut self, seq: u16, ts48: u32) -> Option<(u16, u32)> {
        let rx = match self.rx {
            None => {
                let rx = Rx {
                    last_seq: seq,
                    base48: ts48,
                    base8: ts48 / opus::TICKS_PER_SAMPLE,
                };
                self.rx = Some(rx);
                return Some((0, rx.base8));
            }
            Some(rx) => rx,
        };
        let step = seq.wrapping_sub(rx.last_seq) as i16;
        if step <= 0 {
            self.stats.late += 1;
            return None;
        }
        self.rx = Some(Rx {
            last_seq: seq,
            ..rx
        });
        let ts8 = rx
            .base8
            .wrapping_add(ts48.wrapping_sub(rx.base48) / opus::TICKS_PER_SAMPLE);
        Some((step.unsigned_abs() - 1, ts8))
    }

    /// A packet of the peer's that is not Opus audio (telephone-event):
    /// its timestamp on the session's clock, None when it is late.
    pub fn peer_event(&mut self, seq: u16, ts48: u32) -> Option<u32> {
        self.follow(seq, ts48).map(|(_, ts8)| ts8)
    }

    /// One Opus packet of the peer's: the frames for the session, appended
    /// to `out` (concealed ones first when packets were lost just before).
    pub fn from_peer(
        &mut self,
        seq: u16,
        ts48: u32,
        marker: bool,
        packet: &[u8],
        out: &mut Vec<SessionFrame>,
    ) {
        let Some((lost, ts8)) = self.follow(seq, ts48) else {
            return;
        };
        if (1..=MAX_CONCEALED).contains(&lost) {
            let n = self.last_samples;
            for k in (1..=lost).rev() {
                self.pcm.clear();
                // The packet just before this one comes back from this
                // one's FEC; those further back are concealed.
                let r = if k == 1 {
                    self.dec.recover(packet, n, &mut self.pcm)
                } else {
                    self.dec.conceal(n, &mut self.pcm)
                };
                match r {
                    Ok(_) if k == 1 => self.stats.recovered += 1,
                    Ok(_) => self.stats.concealed += 1,
                    Err(_) => {
                        self.stats.errors += 1;
                        continue;
                    }
                }
                out.push(self.frame(
                    seq.wrapping_sub(k),
                    ts8.wrapping_sub(u32::from(k) * n as u32),
                    false,
                ));
            }
        }
        self.pcm.clear();
        match self.dec.decode(packet, &mut self.pcm) {
            Ok(n) => {
                self.stats.decoded += 1;
                self.last_samples = n;
            }
            Err(e) => {
                tracing::debug!(error = %e, "webrtc: opus packet refused, concealed");
                self.stats.errors += 1;
                self.pcm.clear();
                if self.dec.conceal(self.last_samples, &mut self.pcm).is_err() {
                    return;
                }
            }
        }
        out.push(self.frame(seq, ts8, marker));
    }

    fn frame(&self, sequence: u16, timestamp: u32, marker: bool) -> SessionFrame {
        let mut payload = Vec::with_capacity(self.pcm.len());
        g711::encode(self.session, &self.pcm, &mut payload);
        SessionFrame {
            sequence,
            timestamp,
            marker,
            payload,
        }
    }

    /// What the transcoding did so far.
    pub fn stats(&self) -> TranscodeStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_g711(codec: Codec, freq: f32, frames: usize) -> Vec<Vec<u8>> {
        let pcm: Vec<i16> = (0..frames * 160)
            .map(|i| {
                (6000.0 * (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin()) as i16
            })
            .collect();
        pcm.chunks(160)
            .map(|c| {
                let mut b = Vec::new();
                g711::encode(codec, c, &mut b);
                b
            })
            .collect()
    }

    fn rms_g711(codec: Codec, frames: &[SessionFrame]) -> f32 {
        let mut pcm = Vec::new();
        for f in frames {
            g711::decode(codec, &f.payload, &mut pcm);
        }
        (pcm.iter().map(|&s| f32::from(s).powi(2)).sum::<f32>() / pcm.len().max(1) as f32).sqrt()
    }

    #[test]
    fn our_g711_goes_out_as_opus_and_comes_back_as_g711_with_8khz_timestamps() {
        let mut ours = OpusLeg::new(Codec::Pcma).unwrap();
        let mut theirs = OpusLeg::new(Codec::Pcma).unwrap();
        let mut out = Vec::new();
        for (i, f) in tone_g711(Codec::Pcma, 600.0, 25).iter().enumerate() {
            let pkt = ours.to_peer(f).expect("an opus packet");
            assert!(pkt.len() < 160, "opus is smaller than G.711: {}", pkt.len());
            let ts48 = to_peer_timestamp(1000 + 160 * i as u32);
            theirs.from_peer(7 + i as u16, ts48, i == 0, &pkt, &mut out);
        }
        assert_eq!(out.len(), 25);
        assert_eq!(out[0].timestamp, 1000);
        assert!(out[0].marker);
        assert_eq!(out[24].timestamp, 1000 + 160 * 24);
        assert_eq!(out[24].sequence, 7 + 24);
        assert!(out.iter().all(|f| f.payload.len() == 160));
        assert!(rms_g711(Codec::Pcma, &out[5..]) > 3000.0);
        assert_eq!(ours.stats().encoded, 25);
        assert_eq!(theirs.stats().decoded, 25);
    }

    #[test]
    fn lost_packets_are_filled_by_fec_and_concealment_and_late_ones_dropped() {
        let mut enc = OpusLeg::new(Codec::Pcmu).unwrap();
        let mut leg = OpusLeg::new(Codec::Pcmu).unwrap();
        let pkts: Vec<Vec<u8>> = tone_g711(Codec::Pcmu, 450.0, 20)
            .iter()
            .map(|f| enc.to_peer(f).unwrap())
            .collect();
        let mut out = Vec::new();
        // Near the wrap of the sequence and of the 48 kHz clock.
        let seq0 = u16::MAX - 8;
        let ts0 = u32::MAX - 960 * 7;
        for (i, p) in pkts.iter().enumerate() {
            // Packets 10, 11 and 12 are lost; 11 shows up after 13 (late).
            if (10..=12).contains(&i) {
                continue;
            }
            let seq = seq0.wrapping_add(i as u16);
            leg.from_peer(seq, ts0.wrapping_add(960 * i as u32), false, p, &mut out);
            if i == 13 {
                leg.from_peer(seq0.wrapping_add(11), 0, false, &pkts[11], &mut out);
            }
        }
        assert_eq!(
            out.len(),
            20,
            "one frame per packet sent, no gap, no duplicate"
        );
        for (i, f) in out.iter().enumerate() {
            assert_eq!(f.sequence, seq0.wrapping_add(i as u16));
            assert_eq!(
                f.timestamp.wrapping_sub(out[0].timestamp),
                160 * i as u32,
                "frame {i}"
            );
        }
        let s = leg.stats();
        assert_eq!((s.concealed, s.recovered, s.late, s.decoded), (2, 1, 1, 17));
        assert!(
            rms_g711(Codec::Pcmu, &out[10..13]) > 1000.0,
            "the gap is not silence"
        );
    }

    #[test]
    fn a_long_gap_is_left_to_the_jitter_buffer_and_garbage_is_concealed() {
        let mut enc = OpusLeg::new(Codec::Pcmu).unwrap();
        let mut leg = OpusLeg::new(Codec::Pcmu).unwrap();
        let f = &tone_g711(Codec::Pcmu, 450.0, 1)[0];
        let p = enc.to_peer(f).unwrap();
        let mut out = Vec::new();
        leg.from_peer(1, 0, false, &p, &mut out);
        leg.from_peer(1 + MAX_CONCEALED + 2, 960 * 7, false, &p, &mut out);
        assert_eq!(out.len(), 2);
        leg.from_peer(9, 960 * 8, false, &[0x03, 0xff], &mut out);
        assert_eq!(out.len(), 3, "a refused packet still gives a frame");
        assert_eq!(leg.stats().errors, 1);
        assert_eq!(leg.peer_event(10, 960 * 9), Some(160 * 9));
        assert_eq!(leg.peer_event(10, 960 * 9), None, "a repeat is late");
        assert_eq!(enc.to_peer(&[0xff; 100]), None, "not an opus frame length");
        assert_eq!(to_peer_timestamp(u32::MAX).wrapping_add(6), 0);
    }
}
