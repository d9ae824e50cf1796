//! G.711 (PCMU / PCMA) at 8 kHz: the codec identity used in SDP and RTP, and
//! the sample conversion, built on `audio-codec-algorithms`.
//!
//! Owns: the mapping between codec, RTP static payload type and SDP name, and
//! frame-sized encode/decode that append to caller-owned buffers (so the 20 ms
//! loop can reuse its buffers and allocate nothing per frame).
//! Never: touches sockets, clocks or files.

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

/// G.711 sample rate (RTP clock rate of PCMU/PCMA and telephone-event).
pub const SAMPLE_RATE: u32 = 8000;
/// Samples (and, for G.711, payload bytes) in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 160;
/// Duration of one frame in milliseconds.
pub const FRAME_MS: u64 = 20;

/// A G.711 variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Codec {
    /// G.711 u-law, RTP static payload type 0.
    Pcmu,
    /// G.711 A-law, RTP static payload type 8.
    Pcma,
}

impl Codec {
    /// The RTP static payload type (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name as written in an SDP `a=rtpmap` line.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec for a static payload type, if it is 0 or 8.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec for an SDP encoding name ("PCMU"/"PCMA", any case).
    pub fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// The byte a frame of digital silence (sample 0) encodes to:
    /// 0xFF for u-law, 0xD5 for A-law.
    pub fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcmu => encode_ulaw(0),
            Codec::Pcma => encode_alaw(0),
        }
    }
}

/// Encodes linear 16-bit samples, appending one byte per sample to `out`.
pub fn encode(codec: Codec, pcm: &[i16], out: &mut Vec<u8>) {
    out.reserve(pcm.len());
    match codec {
        Codec::Pcmu => out.extend(pcm.iter().map(|&s| encode_ulaw(s))),
        Codec::Pcma => out.extend(pcm.iter().map(|&s| encode_alaw(s))),
    }
}

/// Decodes G.711 bytes, appending one sample per byte to `out`.
///
/// The underlying decoders are already 256-entry table lookups, so there is
/// no table of our own here.
pub fn decode(codec: Codec, payload: &[u8], out: &mut Vec<i16>) {
    out.reserve(payload.len());
    match codec {
        Codec::Pcmu => out.extend(payload.iter().map(|&b| decode_ulaw(b))),
        Codec::Pcma => out.extend(payload.iter().map(|&b| decode_alaw(b))),
    }
}

/// Decodes G.711 bytes into `out`, one sample per byte, up to the shorter
/// of the two (no allocation: for the fixed frames of the 20 ms loop).
pub fn decode_into(codec: Codec, payload: &[u8], out: &mut [i16]) {
    let pairs = out.iter_mut().zip(payload);
    match codec {
        Codec::Pcmu => pairs.for_each(|(o, &b)| *o = decode_ulaw(b)),
        Codec::Pcma => pairs.for_each(|(o, &b)| *o = decode_alaw(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest quantisation step of G.711 is 1/16 of the segment range; for
    /// the top segment of u-law this is 1024 (on a 16-bit scale), A-law 1024.
    /// The error of a round trip is at most half a step plus rounding.
    fn max_error(x: i16) -> i32 {
        let a = i32::from(x).abs();
        // step size grows with the magnitude: about a/16 (3% relative) with a
        // floor for the smallest segment.
        (a / 16).max(16) + 8
    }

    #[test]
    fn round_trip_stays_within_quantisation_error() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let pcm: Vec<i16> = (i16::MIN..=i16::MAX).step_by(7).collect();
            let mut enc = Vec::new();
            encode(codec, &pcm, &mut enc);
            assert_eq!(enc.len(), pcm.len());
            let mut dec = Vec::new();
            decode(codec, &enc, &mut dec);
            for (&x, &y) in pcm.iter().zip(&dec) {
                let err = (i32::from(x) - i32::from(y)).abs();
                assert!(err <= max_error(x), "{codec:?}: {x} -> {y} (error {err})");
            }
        }
    }

    #[test]
    fn silence_encodes_to_the_codec_silence_byte() {
        let zeros = [0i16; FRAME_SAMPLES];
        let mut out = Vec::new();
        encode(Codec::Pcmu, &zeros, &mut out);
        assert!(out.iter().all(|&b| b == 0xFF));
        assert_eq!(Codec::Pcmu.silence_byte(), 0xFF);
        out.clear();
        encode(Codec::Pcma, &zeros, &mut out);
        assert!(out.iter().all(|&b| b == 0xD5));
        assert_eq!(Codec::Pcma.silence_byte(), 0xD5);
    }

    #[test]
    fn ulaw_and_alaw_produce_different_bytes() {
        let pcm: Vec<i16> = (0..FRAME_SAMPLES as i32)
            .map(|i| ((i * 200) - 16000) as i16)
            .collect();
        let (mut u, mut a) = (Vec::new(), Vec::new());
        encode(Codec::Pcmu, &pcm, &mut u);
        encode(Codec::Pcma, &pcm, &mut a);
        assert_ne!(u, a);
    }

    #[test]
    fn encode_and_decode_append_rather_than_overwrite() {
        let mut out = vec![1u8, 2];
        encode(Codec::Pcmu, &[0, 0], &mut out);
        assert_eq!(out, vec![1, 2, 0xFF, 0xFF]);
        let mut pcm = vec![7i16];
        decode(Codec::Pcma, &[0xD5], &mut pcm);
        assert_eq!(pcm.len(), 2);
        assert_eq!(pcm[0], 7);
        assert!(pcm[1].abs() <= 8);
    }

    #[test]
    fn codec_identity_maps_both_ways() {
        for c in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(Codec::from_payload_type(c.payload_type()), Some(c));
            assert_eq!(Codec::from_name(c.name()), Some(c));
            assert_eq!(Codec::from_name(&c.name().to_lowercase()), Some(c));
        }
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(9), None);
        assert_eq!(Codec::from_name("G722"), None);
    }
}
