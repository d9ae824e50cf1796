//! RTP (RFC 3550) packets: parsing what arrives, writing what we send, and
//! the sequence/timestamp state of one outgoing stream.
//!
//! Owns: the wire format of the fixed header and the rules for CSRCs, header
//! extensions and padding; the counters of the outgoing stream.
//! Never: touches sockets or clocks (the driver paces and sends), never
//! panics on any input, and never allocates while parsing (the payload is a
//! borrow of the received buffer).

use thiserror::Error;

/// Length of the fixed RTP header we write (no CSRC, no extension).
pub const HEADER_LEN: usize = 12;

/// Largest packet [`parse`] accepts. Far above any telephony packet (a
/// 160-byte G.711 frame makes a 172-byte packet) and below what a UDP socket
/// can hand us, so anything larger is a peer bug or an attack.
pub const MAX_PACKET_LEN: usize = 16 * 1024;

/// Why a received datagram is not a usable RTP packet.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer bytes than the 12-byte fixed header.
    #[error("RTP packet too short: {len} bytes, the fixed header alone is 12")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// Larger than [`MAX_PACKET_LEN`].
    #[error("RTP packet too large: {len} bytes, at most {max} accepted")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The version field is not 2 (e.g. STUN or a stray datagram on the port).
    #[error("not RTP version 2 (version field is {version})")]
    BadVersion {
        /// The two version bits.
        version: u8,
    },
    /// The CSRC list announced by the CC field does not fit in the packet.
    #[error(
        "RTP packet truncated: {csrc_count} CSRCs need {needed} header bytes, packet has {len}"
    )]
    TruncatedCsrc {
        /// The CC field.
        csrc_count: u8,
        /// Bytes the header needs with the CSRC list.
        needed: usize,
        /// Bytes received.
        len: usize,
    },
    /// The X bit is set but the extension header or its body is cut short.
    #[error("RTP header extension truncated: needs {needed} bytes, packet has {len}")]
    TruncatedExtension {
        /// Bytes the header needs including the extension.
        needed: usize,
        /// Bytes received.
        len: usize,
    },
    /// The P bit is set but the padding count is 0 or larger than what
    /// follows the header.
    #[error("RTP padding invalid: count {count}, but only {available} bytes follow the header")]
    BadPadding {
        /// The last byte of the packet (padding length).
        count: u8,
        /// Bytes after the header, padding included.
        available: usize,
    },
}

/// The fields of an RTP header that duecall reads or writes. Version is
/// always 2; CSRCs, extensions and padding are handled by [`parse`] and never
/// written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RtpHeader {
    /// M bit: first packet of a talkspurt, or first packet of a DTMF event.
    pub marker: bool,
    /// 7-bit payload type.
    pub payload_type: u8,
    /// Sequence number, wraps at 65535.
    pub sequence: u16,
    /// Media timestamp in clock-rate units (8000 Hz for G.711).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// A parsed packet: the header and a borrow of the payload (padding removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The header fields.
    pub header: RtpHeader,
    /// The payload, without CSRCs, header extension or padding.
    pub payload: &'a [u8],
}

/// Parses one RTP datagram. Rejects anything inconsistent with an error that
/// names what was wrong; never panics.
pub fn parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let len = buf.len();
    if len > MAX_PACKET_LEN {
        return Err(RtpError::TooLarge {
            len,
            max: MAX_PACKET_LEN,
        });
    }
    let fixed: &[u8; HEADER_LEN] = match buf.get(..HEADER_LEN).and_then(|s| s.try_into().ok()) {
        Some(h) => h,
        None => return Err(RtpError::TooShort { len }),
    };
    let version = fixed[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion { version });
    }
    let has_padding = fixed[0] & 0x20 != 0;
    let has_extension = fixed[0] & 0x10 != 0;
    let csrc_count = fixed[0] & 0x0F;
    let header = RtpHeader {
        marker: fixed[1] & 0x80 != 0,
        payload_type: fixed[1] & 0x7F,
        sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
        timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
    };

    let mut offset = HEADER_LEN + 4 * usize::from(csrc_count);
    if offset > len {
        return Err(RtpError::TruncatedCsrc {
            csrc_count,
            needed: offset,
            len,
        });
    }
    if has_extension {
        // 16-bit profile id, 16-bit length in 32-bit words, then the body.
        let ext_len_bytes = match buf.get(offset + 2..offset + 4) {
            Some(b) => 4 * usize::from(u16::from_be_bytes([b[0], b[1]])),
            None => {
                return Err(RtpError::TruncatedExtension {
                    needed: offset + 4,
                    len,
                })
            }
        };
        let needed = offset + 4 + ext_len_bytes;
        if needed > len {
            return Err(RtpError::TruncatedExtension { needed, len });
        }
        offset = needed;
    }
    let mut end = len;
    if has_padding {
        let available = len - offset;
        let count = buf[len - 1];
        if count == 0 || usize::from(count) > available {
            return Err(RtpError::BadPadding { count, available });
        }
        end -= usize::from(count);
    }
    Ok(RtpPacket {
        header,
        payload: &buf[offset..end],
    })
}

/// Writes a packet with a 12-byte header (version 2, no padding, no
/// extension, no CSRC) followed by `payload`. Clears `out` first so the
/// caller can reuse one buffer for every packet.
pub fn write(header: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(HEADER_LEN + payload.len());
    out.push(0x80);
    out.push((u8::from(header.marker) << 7) | (header.payload_type & 0x7F));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// State of one outgoing RTP stream: SSRC, next sequence number, current
/// timestamp, and what has been sent.
///
/// The driver calls [`RtpSender::audio`] for every audio packet and
/// [`RtpSender::event`] for every RFC 4733 packet. While it sends events
/// instead of audio, or sends nothing, media time still passes: it calls
/// [`RtpSender::advance_timestamp`] once per tick so the next audio packet
/// carries the right timestamp.
#[derive(Clone, Debug)]
pub struct RtpSender {
    ssrc: u32,
    next_seq: u16,
    timestamp: u32,
    packets_sent: u64,
    bytes_sent: u64,
}

impl RtpSender {
    /// A stream starting at the given sequence number and timestamp (pick
    /// them at random, RFC 3550 5.1).
    pub fn new(ssrc: u32, initial_seq: u16, initial_ts: u32) -> Self {
        RtpSender {
            ssrc,
            next_seq: initial_seq,
            timestamp: initial_ts,
            packets_sent: 0,
            bytes_sent: 0,
        }
    }

    /// Header for the next audio packet carrying `samples` samples; then the
    /// sequence advances by 1 and the timestamp by `samples`. Counts
    /// `samples` payload bytes (G.711: one byte per sample).
    #[must_use]
    pub fn audio(&mut self, payload_type: u8, samples: u32, marker: bool) -> RtpHeader {
        let h = self.header(payload_type, self.timestamp, marker);
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.bytes_sent += u64::from(samples);
        h
    }

    /// Header for the next RFC 4733 packet of an event that started at
    /// `event_ts` (all packets of one event share it). Only the sequence
    /// advances; counts 4 payload bytes.
    #[must_use]
    pub fn event(&mut self, payload_type: u8, event_ts: u32, marker: bool) -> RtpHeader {
        let h = self.header(payload_type, event_ts, marker);
        self.bytes_sent += 4;
        h
    }

    fn header(&mut self, payload_type: u8, timestamp: u32, marker: bool) -> RtpHeader {
        let h = RtpHeader {
            marker,
            payload_type: payload_type & 0x7F,
            sequence: self.next_seq,
            timestamp,
            ssrc: self.ssrc,
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        self.packets_sent += 1;
        h
    }

    /// The timestamp the next audio packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Lets media time pass without sending audio (silence suppression,
    /// DTMF events, hold).
    pub fn advance_timestamp(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_seq
    }

    /// This stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Packets handed out so far (audio and events).
    pub fn packets_sent(&self) -> u64 {
        self.packets_sent
    }

    /// Payload bytes handed out so far (the RTCP sender-report octet count).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0xBEEF,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
        }
    }

    #[test]
    fn written_packet_parses_back_to_the_same_header_and_payload() {
        let mut out = vec![9, 9, 9];
        write(&sample_header(), &[1, 2, 3], &mut out);
        assert_eq!(out.len(), 15);
        assert_eq!(out[0], 0x80);
        assert_eq!(out[1], 0x88);
        let p = parse(&out).unwrap();
        assert_eq!(p.header, sample_header());
        assert_eq!(p.payload, &[1, 2, 3]);
    }

    #[test]
    fn csrcs_and_extension_are_skipped() {
        let mut pkt = vec![0x80 | 0x10 | 2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        pkt.extend_from_slice(&[0xAA; 8]); // two CSRCs
        pkt.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x11, 0x22, 0x33, 0x44]); // ext, 1 word
        pkt.extend_from_slice(&[5, 6, 7]);
        let p = parse(&pkt).unwrap();
        assert_eq!(p.payload, &[5, 6, 7]);
        assert_eq!(p.header.sequence, 1);
        assert_eq!(p.header.timestamp, 2);
        assert_eq!(p.header.ssrc, 3);
    }

    #[test]
    fn padding_is_stripped() {
        let mut pkt = vec![0xA0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 5, 6, 0, 0, 3];
        assert_eq!(parse(&pkt).unwrap().payload, &[5, 6]);
        *pkt.last_mut().unwrap() = 0;
        assert!(matches!(
            parse(&pkt),
            Err(RtpError::BadPadding { count: 0, .. })
        ));
        *pkt.last_mut().unwrap() = 6;
        assert!(matches!(
            parse(&pkt),
            Err(RtpError::BadPadding {
                count: 6,
                available: 5
            })
        ));
    }

    #[test]
    fn wrong_version_is_rejected() {
        let mut out = Vec::new();
        write(&sample_header(), &[], &mut out);
        out[0] = 0x40;
        assert_eq!(parse(&out), Err(RtpError::BadVersion { version: 1 }));
    }

    #[test]
    fn truncated_headers_are_errors() {
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::TooShort { len: 11 }));
        let cc = [0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert!(matches!(
            parse(&cc),
            Err(RtpError::TruncatedCsrc { csrc_count: 3, .. })
        ));
        let ext = [
            0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 2, 1, 2, 3, 4,
        ];
        assert!(matches!(
            parse(&ext),
            Err(RtpError::TruncatedExtension {
                needed: 24,
                len: 20
            })
        ));
        assert!(matches!(
            parse(&ext[..14]),
            Err(RtpError::TruncatedExtension { .. })
        ));
    }

    #[test]
    fn oversized_packet_is_rejected() {
        let mut big = vec![0u8; MAX_PACKET_LEN + 1];
        big[0] = 0x80;
        assert!(matches!(parse(&big), Err(RtpError::TooLarge { .. })));
    }

    #[test]
    fn sender_advances_sequence_and_timestamp_for_audio() {
        let mut s = RtpSender::new(7, 65535, u32::MAX - 100);
        let a = s.audio(0, 160, true);
        assert_eq!(
            (a.sequence, a.timestamp, a.marker, a.ssrc),
            (65535, u32::MAX - 100, true, 7)
        );
        let b = s.audio(0, 160, false);
        assert_eq!((b.sequence, b.timestamp), (0, 59));
        assert_eq!(s.timestamp(), 219);
        assert_eq!(s.packets_sent(), 2);
        assert_eq!(s.bytes_sent(), 320);
    }

    #[test]
    fn event_packets_keep_the_event_timestamp_and_advance_sequence() {
        let mut s = RtpSender::new(1, 10, 1000);
        let _ = s.audio(0, 160, false);
        let start = s.timestamp();
        let e1 = s.event(101, start, true);
        s.advance_timestamp(160);
        let e2 = s.event(101, start, false);
        s.advance_timestamp(160);
        assert_eq!(
            (e1.sequence, e1.timestamp, e1.payload_type),
            (11, 1160, 101)
        );
        assert_eq!((e2.sequence, e2.timestamp, e2.marker), (12, 1160, false));
        let next = s.audio(0, 160, false);
        assert_eq!((next.sequence, next.timestamp), (13, 1480));
        assert_eq!(s.bytes_sent(), 160 + 4 + 4 + 160);
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&buf);
        }

        #[test]
        fn parse_never_panics_on_rtp_like_bytes(first in 0x80u8..=0xBF, rest in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = vec![first];
            buf.extend(rest);
            if let Ok(p) = parse(&buf) {
                prop_assert!(p.payload.len() <= buf.len() - HEADER_LEN);
            }
        }

        #[test]
        fn truncated_valid_packet_is_an_error_or_a_shorter_payload(
            payload in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..212,
        ) {
            let mut out = Vec::new();
            write(&sample_header(), &payload, &mut out);
            let cut = cut.min(out.len());
            match parse(&out[..cut]) {
                Ok(p) => prop_assert_eq!(p.payload, &payload[..cut - HEADER_LEN]),
                Err(e) => prop_assert_eq!(e, RtpError::TooShort { len: cut }),
            }
        }
    }
}
