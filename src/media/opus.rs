//! Opus (RFC 6716) through a thin FFI of our own to the system libopus
//! (Debian `libopus-dev`, linked by build.rs through pkg-config), mono at
//! 8 kHz on our side: libopus encodes from and decodes to 8000 Hz itself, so
//! no resampler is needed; the RTP clock stays 48 kHz (RFC 7587, the
//! caller scales timestamps).
//!
//! Owns: the declarations of the few libopus functions we call, the
//! [`Encoder`] and [`Decoder`] owning their C state (freed on drop), packet
//! loss concealment and in-band FEC decoding. Never: touches sockets, clocks
//! or files.

use std::os::raw::{c_int, c_uchar};

/// The internal sample rate we use for both directions (the call's rate).
pub const SAMPLE_RATE: u32 = 8000;
/// The RTP clock rate of Opus, whatever the audio bandwidth (RFC 7587).
pub const RTP_CLOCK: u32 = 48_000;
/// RTP ticks per sample at [`SAMPLE_RATE`].
pub const TICKS_PER_SAMPLE: u32 = RTP_CLOCK / SAMPLE_RATE;
/// The longest Opus packet (120 ms) in samples at [`SAMPLE_RATE`].
pub const MAX_FRAME_SAMPLES: usize = 960;
/// Bytes reserved for one encoded packet (libopus's recommended maximum).
const MAX_PACKET_BYTES: usize = 4000;

const OPUS_APPLICATION_VOIP: c_int = 2048;
const OPUS_SET_BITRATE_REQUEST: c_int = 4002;

#[repr(C)]
struct OpusEncoder {
    _private: [u8; 0],
}

#[repr(C)]
struct OpusDecoder {
    _private: [u8; 0],
}

extern "C" {
    fn opus_encoder_create(
        fs: i32,
        channels: c_int,
        application: c_int,
        error: *mut c_int,
    ) -> *mut OpusEncoder;
    fn opus_encoder_destroy(st: *mut OpusEncoder);
    fn opus_encoder_ctl(st: *mut OpusEncoder, request: c_int, ...) -> c_int;
    fn opus_encode(
        st: *mut OpusEncoder,
        pcm: *const i16,
        frame_size: c_int,
        data: *mut c_uchar,
        max_data_bytes: i32,
    ) -> i32;
    fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int) -> *mut OpusDecoder;
    fn opus_decoder_destroy(st: *mut OpusDecoder);
    fn opus_decode(
        st: *mut OpusDecoder,
        data: *const c_uchar,
        len: i32,
        pcm: *mut i16,
        frame_size: c_int,
        decode_fec: c_int,
    ) -> c_int;
    fn opus_decoder_get_nb_samples(
        dec: *const OpusDecoder,
        packet: *const c_uchar,
        len: i32,
    ) -> c_int;
}

/// A libopus failure, named after its error code (or a frame size we
/// refuse before calling it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpusError {
    /// `OPUS_BAD_ARG` (-1): an argument was invalid or out of range.
    #[error("libopus {0}: OPUS_BAD_ARG (-1)")]
    BadArg(&'static str),
    /// `OPUS_BUFFER_TOO_SMALL` (-2).
    #[error("libopus {0}: OPUS_BUFFER_TOO_SMALL (-2)")]
    BufferTooSmall(&'static str),
    /// `OPUS_INTERNAL_ERROR` (-3).
    #[error("libopus {0}: OPUS_INTERNAL_ERROR (-3)")]
    Internal(&'static str),
    /// `OPUS_INVALID_PACKET` (-4): corrupted or unsupported data.
    #[error("libopus {0}: OPUS_INVALID_PACKET (-4)")]
    InvalidPacket(&'static str),
    /// `OPUS_UNIMPLEMENTED` (-5).
    #[error("libopus {0}: OPUS_UNIMPLEMENTED (-5)")]
    Unimplemented(&'static str),
    /// `OPUS_INVALID_STATE` (-6).
    #[error("libopus {0}: OPUS_INVALID_STATE (-6)")]
    InvalidState(&'static str),
    /// `OPUS_ALLOC_FAIL` (-7).
    #[error("libopus {0}: OPUS_ALLOC_FAIL (-7)")]
    AllocFail(&'static str),
    /// A code libopus 1.3 does not document.
    #[error("libopus {0}: unknown error code {1}")]
    Unknown(&'static str, i32),
    /// Not an Opus frame length (2.5, 5, 10, 20, 40 or 60 ms) at 8 kHz.
    #[error("opus: {0} samples is not a frame length at 8 kHz")]
    FrameSize(usize),
}

impl OpusError {
    fn from_code(call: &'static str, code: i32) -> OpusError {
        match code {
            -1 => OpusError::BadArg(call),
            -2 => OpusError::BufferTooSmall(call),
            -3 => OpusError::Internal(call),
            -4 => OpusError::InvalidPacket(call),
            -5 => OpusError::Unimplemented(call),
            -6 => OpusError::InvalidState(call),
            -7 => OpusError::AllocFail(call),
            c => OpusError::Unknown(call, c),
        }
    }
}

/// A libopus return value: non-negative counts pass, negatives are errors.
fn check(call: &'static str, r: i32) -> Result<usize, OpusError> {
    usize::try_from(r).map_err(|_| OpusError::from_code(call, r))
}

/// Whether `n` samples at 8 kHz is one Opus frame (2.5 to 60 ms).
pub fn is_frame_size(n: usize) -> bool {
    matches!(n, 20 | 40 | 80 | 160 | 320 | 480)
}

/// A mono Opus encoder fed 8 kHz samples (`OPUS_APPLICATION_VOIP`).
#[derive(Debug)]
pub struct Encoder {
    st: *mut OpusEncoder,
    scratch: Vec<u8>,
}

// SAFETY: the encoder state is plain memory owned by this value alone; it
// is only used through `&mut self`, never from two threads at once, and no
// `&self` method touches it (so sharing a reference is harmless).
unsafe impl Send for Encoder {}
// SAFETY: see above.
unsafe impl Sync for Encoder {}

impl Encoder {
    /// A new encoder at 8 kHz mono, `bitrate` bits per second (libopus
    /// clamps it to what the bandwidth can use).
    pub fn new(bitrate: i32) -> Result<Encoder, OpusError> {
        let mut err: c_int = 0;
        // SAFETY: valid arguments; `err` is a valid out pointer.
        let st =
            unsafe { opus_encoder_create(SAMPLE_RATE as i32, 1, OPUS_APPLICATION_VOIP, &mut err) };
        if st.is_null() || err != 0 {
            if !st.is_null() {
                // SAFETY: created above, not used again.
                unsafe { opus_encoder_destroy(st) };
            }
            return Err(OpusError::from_code("opus_encoder_create", err.min(-3)));
        }
        let enc = Encoder {
            st,
            scratch: vec![0; MAX_PACKET_BYTES],
        };
        // SAFETY: a live encoder; OPUS_SET_BITRATE takes one opus_int32.
        let r = unsafe { opus_encoder_ctl(enc.st, OPUS_SET_BITRATE_REQUEST, bitrate) };
        check("OPUS_SET_BITRATE", r)?;
        Ok(enc)
    }

    /// Encodes one frame of 8 kHz samples (see [`is_frame_size`]) as one
    /// Opus packet, appended to `out`; returns its length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, OpusError> {
        if !is_frame_size(pcm.len()) {
            return Err(OpusError::FrameSize(pcm.len()));
        }
        // SAFETY: `pcm` holds `frame_size` samples (mono); `scratch` is
        // writable for its whole length.
        let r = unsafe {
            opus_encode(
                self.st,
                pcm.as_ptr(),
                pcm.len() as c_int,
                self.scratch.as_mut_ptr(),
                self.scratch.len() as i32,
            )
        };
        let n = check("opus_encode", r)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_encoder_create, freed once.
        unsafe { opus_encoder_destroy(self.st) };
    }
}

/// A mono Opus decoder giving 8 kHz samples (a stereo stream is mixed down
/// by libopus).
#[derive(Debug)]
pub struct Decoder {
    st: *mut OpusDecoder,
    scratch: Vec<i16>,
}

// SAFETY: as for `Encoder`: owned state, changed only through `&mut self`;
// the one `&self` method (`packet_samples`) only reads the sample rate.
unsafe impl Send for Decoder {}
// SAFETY: see above.
unsafe impl Sync for Decoder {}

impl Decoder {
    /// A new decoder at 8 kHz mono.
    pub fn new() -> Result<Decoder, OpusError> {
        let mut err: c_int = 0;
        // SAFETY: valid arguments; `err` is a valid out pointer.
        let st = unsafe { opus_decoder_create(SAMPLE_RATE as i32, 1, &mut err) };
        if st.is_null() || err != 0 {
            if !st.is_null() {
                // SAFETY: created above, not used again.
                unsafe { opus_decoder_destroy(st) };
            }
            return Err(OpusError::from_code("opus_decoder_create", err.min(-3)));
        }
        Ok(Decoder {
            st,
            scratch: vec![0; MAX_FRAME_SAMPLES],
        })
    }

    /// How many 8 kHz samples `packet` decodes to.
    pub fn packet_samples(&self, packet: &[u8]) -> Result<usize, OpusError> {
        // SAFETY: a live decoder; `packet` is readable for its length.
        let r =
            unsafe { opus_decoder_get_nb_samples(self.st, packet.as_ptr(), packet.len() as i32) };
        check("opus_decoder_get_nb_samples", r)
    }

    /// Decodes one packet, appending its samples to `out`; returns how many.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, OpusError> {
        if packet.is_empty() {
            return Err(OpusError::InvalidPacket("opus_decode"));
        }
        self.run(Some(packet), MAX_FRAME_SAMPLES, false, out)
    }

    /// Packet loss concealment: `samples` (a frame length) of audio
    /// guessed for a lost packet, appended to `out`.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, OpusError> {
        if !is_frame_size(samples) {
            return Err(OpusError::FrameSize(samples));
        }
        self.run(None, samples, false, out)
    }

    /// The lost packet before `next` rebuilt from `next`'s in-band FEC
    /// (`samples` long); without FEC data libopus conceals instead.
    pub fn recover(
        &mut self,
        next: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<usize, OpusError> {
        if !is_frame_size(samples) {
            return Err(OpusError::FrameSize(samples));
        }
        if next.is_empty() {
            return self.conceal(samples, out);
        }
        self.run(Some(next), samples, true, out)
    }

    fn run(
        &mut self,
        packet: Option<&[u8]>,
        frame_size: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<usize, OpusError> {
        let frame_size = frame_size.min(self.scratch.len());
        let (data, len) = match packet {
            Some(p) => (p.as_ptr(), p.len() as i32),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: a live decoder; `data` is null (loss) or readable for
        // `len`; `scratch` holds at least `frame_size` samples.
        let r = unsafe {
            opus_decode(
                self.st,
                data,
                len,
                self.scratch.as_mut_ptr(),
                frame_size as c_int,
                c_int::from(fec),
            )
        };
        let n = check("opus_decode", r)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create, freed once.
        unsafe { opus_decoder_destroy(self.st) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `freq` Hz tone at 8 kHz, `n` samples, amplitude `amp`.
    fn tone(freq: f32, n: usize, amp: f32) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    fn rms(x: &[i16]) -> f32 {
        (x.iter().map(|&s| f32::from(s).powi(2)).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    /// Power at `freq` (Goertzel), normalised by length.
    fn power_at(x: &[i16], freq: f32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * freq / 8000.0;
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s = f32::from(v) + c * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len() as f32).powi(2)
    }

    fn round_trip(pcm: &[i16]) -> Vec<i16> {
        let mut enc = Encoder::new(24_000).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut out = Vec::new();
        for frame in pcm.chunks(160) {
            let mut pkt = Vec::new();
            enc.encode(frame, &mut pkt).unwrap();
            assert_eq!(dec.packet_samples(&pkt).unwrap(), 160);
            assert_eq!(dec.decode(&pkt, &mut out).unwrap(), 160);
        }
        out
    }

    #[test]
    fn a_tone_survives_the_round_trip_with_its_frequency_and_energy() {
        let pcm = tone(700.0, 8000, 8000.0);
        let out = round_trip(&pcm);
        assert_eq!(out.len(), pcm.len());
        // Skip the codec's start-up (lookahead and the first frames).
        let tail = &out[1600..];
        let ratio = rms(tail) / rms(&pcm[1600..]);
        assert!((0.7..1.3).contains(&ratio), "energy ratio {ratio}");
        let at = power_at(tail, 700.0);
        for other in [300.0, 1100.0, 1500.0, 2500.0] {
            assert!(
                at > 50.0 * power_at(tail, other),
                "700 Hz {at} vs {other} Hz {}",
                power_at(tail, other)
            );
        }
    }

    #[test]
    fn silence_stays_quiet() {
        let out = round_trip(&vec![0i16; 1600]);
        assert!(rms(&out) < 50.0, "rms {}", rms(&out));
    }

    #[test]
    fn a_lost_packet_is_concealed_with_sound_not_a_gap() {
        let pcm = tone(500.0, 160 * 30, 8000.0);
        let mut enc = Encoder::new(24_000).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut out = Vec::new();
        let mut concealed = Vec::new();
        for (i, frame) in pcm.chunks(160).enumerate() {
            let mut pkt = Vec::new();
            enc.encode(frame, &mut pkt).unwrap();
            if i == 20 {
                // Lost: conceal 20 ms instead.
                assert_eq!(dec.conceal(160, &mut concealed).unwrap(), 160);
                out.extend_from_slice(&concealed);
            } else {
                dec.decode(&pkt, &mut out).unwrap();
            }
        }
        assert_eq!(out.len(), pcm.len());
        let r = rms(&concealed);
        assert!(
            r > 0.3 * rms(&pcm),
            "the concealed frame is near silent: {r}"
        );
        assert!(
            power_at(&concealed, 500.0) > 10.0 * power_at(&concealed, 1500.0),
            "the concealed frame goes on with the tone"
        );
        // The frame after the loss decodes normally again.
        let after = &out[160 * 22..160 * 23];
        assert!(rms(after) > 0.5 * rms(&pcm), "{}", rms(after));
    }

    #[test]
    fn fec_recovery_and_bad_input_are_errors_or_sound_never_a_crash() {
        let mut dec = Decoder::new().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            dec.conceal(100, &mut out),
            Err(OpusError::FrameSize(100)),
            "not a frame length"
        );
        assert_eq!(
            dec.decode(&[], &mut out),
            Err(OpusError::InvalidPacket("opus_decode"))
        );
        // A TOC byte promising more frames than there are bytes.
        assert!(dec.decode(&[0x03, 0xff], &mut out).is_err());
        let mut enc = Encoder::new(24_000).unwrap();
        assert_eq!(
            enc.encode(&[0; 100], &mut Vec::new()),
            Err(OpusError::FrameSize(100))
        );
        let mut pkt = Vec::new();
        enc.encode(&tone(400.0, 160, 5000.0), &mut pkt).unwrap();
        assert_eq!(dec.recover(&pkt, 160, &mut out).unwrap(), 160);
        assert_eq!(dec.recover(&[], 160, &mut out).unwrap(), 160);
        assert!(OpusError::from_code("x", -4)
            .to_string()
            .contains("OPUS_INVALID_PACKET"));
    }
}
