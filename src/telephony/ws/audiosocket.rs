//! AudioSocket frames (Asterisk's `AudioSocket()` application and channel):
//! a plain TCP stream of frames, each one type byte, a big-endian u16
//! length and the payload. `0x01` carries the call's UUID (16 bytes) first,
//! `0x10` 20 ms of signed 16-bit 8 kHz audio (320 bytes, little-endian),
//! `0x03` one DTMF digit (ASCII), `0x00` hang-up, `0xff` an error code.
//! The application paces its own 20 ms frames (Asterisk plays what arrives).
//!
//! Owns the framing both ways, as an incremental decoder over whatever bytes
//! the socket gave (frames split or joined anyhow), with a size limit checked
//! before a payload is buffered. Never touches a socket, clock or call.

use super::FrameError;

/// Frame type byte: hang up.
pub const KIND_HANGUP: u8 = 0x00;
/// Frame type byte: the call's UUID.
pub const KIND_ID: u8 = 0x01;
/// Frame type byte: silence (some senders use it instead of quiet audio).
pub const KIND_SILENCE: u8 = 0x02;
/// Frame type byte: one DTMF digit.
pub const KIND_DTMF: u8 = 0x03;
/// Frame type byte: signed linear 16-bit, 8 kHz mono.
pub const KIND_SLIN: u8 = 0x10;
/// Frame type byte: an error code.
pub const KIND_ERROR: u8 = 0xff;

/// Bytes of one 20 ms audio frame.
pub const FRAME_BYTES: usize = 320;

/// One AudioSocket frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The far end hung up (or we do).
    Hangup,
    /// The call's UUID (the first frame Asterisk sends).
    Id([u8; 16]),
    /// Signed linear 8 kHz samples.
    Audio(Vec<i16>),
    /// Silence of unspecified length (treated as one quiet frame).
    Silence,
    /// One DTMF digit.
    Dtmf(char),
    /// Asterisk reported an error (code byte when given).
    Error(Option<u8>),
    /// A type this implementation does not handle (other sample rates).
    Other(u8),
}

pub use crate::ids::uuid_text;

/// Parses a UUID written as 32 hex digits with or without dashes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Writes one frame.
pub fn encode(f: &Frame, out: &mut Vec<u8>) {
    let mut put = |kind: u8, payload: &[u8]| {
        out.push(kind);
        out.extend_from_slice(&(payload.len().min(u16::MAX as usize) as u16).to_be_bytes());
        out.extend_from_slice(&payload[..payload.len().min(u16::MAX as usize)]);
    };
    match f {
        Frame::Hangup => put(KIND_HANGUP, &[]),
        Frame::Id(id) => put(KIND_ID, id),
        Frame::Audio(pcm) => {
            let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
            put(KIND_SLIN, &bytes)
        }
        Frame::Silence => put(KIND_SILENCE, &[]),
        Frame::Dtmf(d) => put(KIND_DTMF, &[*d as u8]),
        Frame::Error(code) => match code {
            Some(c) => put(KIND_ERROR, &[*c]),
            None => put(KIND_ERROR, &[]),
        },
        Frame::Other(k) => put(*k, &[]),
    }
}

/// Incremental decoder: feed it bytes as they come, take frames out.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    max_payload: usize,
}

impl Decoder {
    /// A decoder refusing payloads over `max_payload` bytes.
    pub fn new(max_payload: usize) -> Decoder {
        Decoder {
            buf: Vec::with_capacity(1024),
            max_payload: max_payload.min(u16::MAX as usize),
        }
    }

    /// Appends bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held waiting for the rest of a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed. An
    /// error leaves the stream unusable (the length can no longer be trusted).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < 3 {
            return Ok(None);
        }
        let kind = self.buf[0];
        let len = u16::from_be_bytes([self.buf[1], self.buf[2]]) as usize;
        if len > self.max_payload {
            return Err(FrameError::TooLarge {
                what: "AudioSocket frame",
                limit: self.max_payload,
            });
        }
        if self.buf.len() < 3 + len {
            return Ok(None);
        }
        let payload = &self.buf[3..3 + len];
        let frame = match kind {
            KIND_HANGUP => Frame::Hangup,
            KIND_ID => {
                let id: [u8; 16] = payload.try_into().map_err(|_| FrameError::Bad {
                    field: "AudioSocket id",
                    reason: format!("{len} bytes, expected 16"),
                })?;
                Frame::Id(id)
            }
            KIND_SLIN => {
                if !len.is_multiple_of(2) {
                    return Err(FrameError::Bad {
                        field: "AudioSocket audio",
                        reason: format!("{len} bytes is not whole 16-bit samples"),
                    });
                }
                Frame::Audio(
                    payload
                        .chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]))
                        .collect(),
                )
            }
            KIND_SILENCE => Frame::Silence,
            KIND_DTMF => {
                let c = payload.first().map(|b| *b as char);
                match c {
                    Some(c) if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => {
                        Frame::Dtmf(c)
                    }
                    _ => {
                        return Err(FrameError::Bad {
                            field: "AudioSocket dtmf",
                            reason: format!("{payload:?} is not one DTMF digit"),
                        })
                    }
                }
            }
            KIND_ERROR => Frame::Error(payload.first().copied()),
            other => Frame::Other(other),
        };
        self.buf.drain(..3 + len);
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_split_anyhow_come_out_whole() {
        let id = parse_uuid("40325ec2-5efd-4bd3-805f-53576e581d13").unwrap();
        assert_eq!(uuid_text(&id), "40325ec2-5efd-4bd3-805f-53576e581d13");
        let frames = vec![
            Frame::Id(id),
            Frame::Audio((0..160).map(|i| i * 100 - 8000).collect()),
            Frame::Dtmf('#'),
            Frame::Hangup,
        ];
        let mut bytes = Vec::new();
        for f in &frames {
            encode(f, &mut bytes);
        }
        assert_eq!(bytes[0..3], [0x01, 0x00, 0x10]);
        assert_eq!(bytes[19..22], [0x10, 0x01, 0x40], "320 bytes of audio");
        let mut d = Decoder::new(4096);
        let mut out = Vec::new();
        for chunk in bytes.chunks(7) {
            d.feed(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out, frames);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn oversize_and_odd_frames_are_refused_naming_why() {
        let mut d = Decoder::new(640);
        d.feed(&[0x10, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { .. })));
        let mut d = Decoder::new(640);
        d.feed(&[0x10, 0x00, 0x03, 1, 2, 3]);
        assert!(d.next_frame().unwrap_err().to_string().contains("16-bit"));
        let mut d = Decoder::new(640);
        d.feed(&[0x01, 0x00, 0x02, 1, 2]);
        assert!(d.next_frame().unwrap_err().to_string().contains("16"));
        let mut d = Decoder::new(640);
        d.feed(&[0x03, 0x00, 0x01, b'x']);
        assert!(d.next_frame().is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics_and_never_holds_more_than_one_frame(bytes in proptest::collection::vec(any::<u8>(), 0..2000), split in 1usize..50) {
            let mut d = Decoder::new(640);
            for chunk in bytes.chunks(split) {
                d.feed(chunk);
                loop {
                    match d.next_frame() {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(_) => return Ok(()),
                    }
                }
                prop_assert!(d.pending() < 3 + 640);
            }
        }
    }
}
