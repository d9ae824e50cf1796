//! RTCP (RFC 3550 6, A.1, A.3, A.8): the compound packets a call sends and
//! receives, and the statistics they carry: interarrival jitter and loss of
//! the stream we receive, the peer's view of ours, and the round-trip time
//! from LSR/DLSR.
//!
//! Owns: the wire format of SR, RR, SDES (CNAME) and BYE; the strict
//! validity checks of a received compound packet (every length and count is
//! checked against the bytes that are really there); the receive-side
//! sequence and jitter bookkeeping; the [`RtcpReport`] a call ends with.
//! Never: touches sockets or clocks (the session passes arrival times and
//! the NTP time in), never panics on any input.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Sender report.
pub const PT_SR: u8 = 200;
/// Receiver report.
pub const PT_RR: u8 = 201;
/// Source description.
pub const PT_SDES: u8 = 202;
/// Goodbye.
pub const PT_BYE: u8 = 203;
/// Extended report (RFC 3611), the highest RTCP type we know.
pub const PT_XR: u8 = 207;

/// Largest compound packet [`parse`] accepts (far above the few hundred
/// bytes a voice call's reports take).
pub const MAX_PACKET_LEN: usize = 4096;

/// How often a session sends a report (RFC 3550 6.2's 5 s minimum).
pub const REPORT_INTERVAL_MS: u64 = 5000;

/// RFC 3550 A.1: a jump of more than this many sequence numbers is not a
/// loss but a restart (unless confirmed by the next packet).
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: packets this far behind the highest are late, not a wrap.
const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// Why a received datagram is not a valid RTCP compound packet.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpError {
    /// Not even one 8-byte header with an SSRC, or more than [`MAX_PACKET_LEN`].
    #[error("RTCP datagram of {len} bytes is outside 8..={MAX_PACKET_LEN}")]
    BadSize {
        /// Bytes received.
        len: usize,
    },
    /// A packet's version field is not 2.
    #[error("RTCP packet at byte {offset}: version {version}, not 2")]
    BadVersion {
        /// Where the packet starts.
        offset: usize,
        /// The two version bits.
        version: u8,
    },
    /// The first packet's type is no RTCP packet type (200..=207).
    #[error("RTCP compound starts with packet type {packet_type}, not an RTCP type")]
    NotRtcp {
        /// The first packet's type.
        packet_type: u8,
    },
    /// A packet's length field runs past the datagram, or the packets do not
    /// end exactly where the datagram does.
    #[error("RTCP packet at byte {offset} claims {claimed} bytes, {available} remain")]
    BadLength {
        /// Where the packet starts.
        offset: usize,
        /// Bytes the length field claims.
        claimed: usize,
        /// Bytes left in the datagram.
        available: usize,
    },
    /// A report or BYE count needs more bytes than the packet has.
    #[error(
        "RTCP packet type {packet_type}: count {count} needs {needed} bytes, packet has {len}"
    )]
    BadCount {
        /// Packet type.
        packet_type: u8,
        /// The count field.
        count: u8,
        /// Bytes the count needs.
        needed: usize,
        /// The packet's length.
        len: usize,
    },
    /// Padding on a packet that is not the last, or a padding count of 0 or
    /// larger than the packet.
    #[error("RTCP padding invalid in the packet at byte {offset}")]
    BadPadding {
        /// Where the packet starts.
        offset: usize,
    },
}

/// One report block (RFC 3550 6.4.1): what a receiver says about one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from the source.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// The sender-info part of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP time of the report.
    pub ntp: u64,
    /// The RTP timestamp that corresponds to it.
    pub rtp_timestamp: u32,
    /// Packets sent so far (wraps).
    pub packets: u32,
    /// Payload octets sent so far (wraps).
    pub octets: u32,
}

/// One packet of a received compound, as far as duecall reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// A sender report and its report blocks.
    Sender {
        /// The sender's SSRC.
        ssrc: u32,
        /// What it sent.
        info: SenderInfo,
        /// Its reports (at most 31).
        blocks: Vec<ReportBlock>,
    },
    /// A receiver report.
    Receiver {
        /// The reporter's SSRC.
        ssrc: u32,
        /// Its reports (at most 31).
        blocks: Vec<ReportBlock>,
    },
    /// The sources leaving.
    Bye {
        /// SSRCs (at most 31).
        ssrcs: Vec<u32>,
    },
    /// SDES, APP, feedback, XR: checked for length, not read.
    Other {
        /// Packet type.
        packet_type: u8,
    },
}

/// Whether a datagram on a multiplexed RTP port is RTCP (RFC 5761 4: the
/// second byte is an RTCP packet type 192..=223, which no RTP payload type
/// with the marker bit maps to among those in use).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

fn be32(b: &[u8], at: usize) -> u32 {
    // Callers check the bounds first; a short slice reads as 0 (never panics).
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn block_at(b: &[u8], at: usize) -> ReportBlock {
    let word = be32(b, at + 4);
    // 24-bit two's complement.
    let lost = ((word & 0x00FF_FFFF) << 8) as i32 >> 8;
    ReportBlock {
        ssrc: be32(b, at),
        fraction_lost: (word >> 24) as u8,
        cumulative_lost: lost,
        highest_seq: be32(b, at + 8),
        jitter: be32(b, at + 12),
        lsr: be32(b, at + 16),
        dlsr: be32(b, at + 20),
    }
}

/// Parses a compound RTCP packet (RFC 3550 6.1, A.2): version 2 in every
/// packet, an RTCP type first, every length within the datagram and the last
/// ending exactly at its end, counts that fit their packet, padding only on
/// the last packet. Never panics; allocates at most 31 entries per packet.
pub fn parse(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let len = buf.len();
    if !(8..=MAX_PACKET_LEN).contains(&len) {
        return Err(RtcpError::BadSize { len });
    }
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < len {
        let available = len - offset;
        if available < 4 {
            return Err(RtcpError::BadLength {
                offset,
                claimed: 4,
                available,
            });
        }
        let b0 = buf[offset];
        let packet_type = buf[offset + 1];
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion { offset, version });
        }
        // RFC 3550 A.2 wants SR or RR first; RFC 5506 allows any single
        // packet, and libre sends a lone APP "PING" and a BYE-first
        // compound: any RTCP type may come first, nothing else.
        if offset == 0 && !(PT_SR..=PT_XR).contains(&packet_type) {
            return Err(RtcpError::NotRtcp { packet_type });
        }
        let words = usize::from(u16::from_be_bytes([buf[offset + 2], buf[offset + 3]]));
        let claimed = (words + 1) * 4;
        if claimed > available {
            return Err(RtcpError::BadLength {
                offset,
                claimed,
                available,
            });
        }
        let pkt = &buf[offset..offset + claimed];
        let mut body_end = claimed;
        if b0 & 0x20 != 0 {
            let count = usize::from(pkt[claimed - 1]);
            if offset + claimed != len || count == 0 || count > claimed - 4 {
                return Err(RtcpError::BadPadding { offset });
            }
            body_end -= count;
        }
        let count = b0 & 0x1F;
        let need = |fixed: usize, each: usize| fixed + each * usize::from(count);
        let check = |needed: usize| {
            if needed > body_end {
                Err(RtcpError::BadCount {
                    packet_type,
                    count,
                    needed,
                    len: body_end,
                })
            } else {
                Ok(())
            }
        };
        let blocks = |first: usize| -> Vec<ReportBlock> {
            (0..usize::from(count))
                .map(|i| block_at(pkt, first + 24 * i))
                .collect()
        };
        out.push(match packet_type {
            PT_SR => {
                check(need(28, 24))?;
                RtcpPacket::Sender {
                    ssrc: be32(pkt, 4),
                    info: SenderInfo {
                        ntp: (u64::from(be32(pkt, 8)) << 32) | u64::from(be32(pkt, 12)),
                        rtp_timestamp: be32(pkt, 16),
                        packets: be32(pkt, 20),
                        octets: be32(pkt, 24),
                    },
                    blocks: blocks(28),
                }
            }
            PT_RR => {
                check(need(8, 24))?;
                RtcpPacket::Receiver {
                    ssrc: be32(pkt, 4),
                    blocks: blocks(8),
                }
            }
            PT_BYE => {
                check(need(4, 4))?;
                RtcpPacket::Bye {
                    ssrcs: (0..usize::from(count))
                        .map(|i| be32(pkt, 4 + 4 * i))
                        .collect(),
                }
            }
            _ => RtcpPacket::Other { packet_type },
        });
        offset += claimed;
    }
    Ok(out)
}

fn header(out: &mut Vec<u8>, count: u8, packet_type: u8, total_len: usize) {
    out.push(0x80 | (count & 0x1F));
    out.push(packet_type);
    out.extend_from_slice(&((total_len / 4 - 1) as u16).to_be_bytes());
}

fn write_block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
    out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.lsr.to_be_bytes());
    out.extend_from_slice(&b.dlsr.to_be_bytes());
}

/// Writes one compound packet into `out` (cleared first): an SR when
/// `sender` is given (we sent since the last report), else an RR; at most
/// one report block (duecall receives one stream); an SDES with our CNAME
/// (cut to 255 bytes); and a BYE when `bye`.
pub fn write_compound(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<&SenderInfo>,
    block: Option<&ReportBlock>,
    cname: &str,
    bye: bool,
) {
    out.clear();
    let rc = u8::from(block.is_some());
    match sender {
        Some(s) => {
            header(out, rc, PT_SR, 28 + 24 * usize::from(rc));
            out.extend_from_slice(&ssrc.to_be_bytes());
            out.extend_from_slice(&s.ntp.to_be_bytes());
            out.extend_from_slice(&s.rtp_timestamp.to_be_bytes());
            out.extend_from_slice(&s.packets.to_be_bytes());
            out.extend_from_slice(&s.octets.to_be_bytes());
        }
        None => {
            header(out, rc, PT_RR, 8 + 24 * usize::from(rc));
            out.extend_from_slice(&ssrc.to_be_bytes());
        }
    }
    if let Some(b) = block {
        write_block(out, b);
    }
    // SDES: one chunk (SSRC, CNAME item, END), padded to a 32-bit boundary.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + cname.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    header(out, 1, PT_SDES, 4 + padded);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + padded - chunk + 1, 0);
    if bye {
        header(out, 1, PT_BYE, 8);
        out.extend_from_slice(&ssrc.to_be_bytes());
    }
}

/// The NTP time (64-bit, seconds since 1900 in the high half) of a time
/// given as microseconds since the Unix epoch.
pub fn ntp_from_unix_micros(us: u64) -> u64 {
    const UNIX_TO_NTP_S: u64 = 2_208_988_800;
    let secs = us / 1_000_000 + UNIX_TO_NTP_S;
    let frac = ((us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP time (the LSR format, 1/65536 s units).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Receive-side statistics of one incoming RTP stream (RFC 3550 A.1, A.3,
/// A.8), fed every packet the source check let through.
#[derive(Debug, Clone, Default)]
pub struct ReceiveStats {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Previous relative transit time (timestamp units), for the jitter.
    transit: Option<i32>,
    /// Jitter in timestamp units, times 16 (A.8's integer form).
    jitter16: u32,
    jitter_max16: u32,
    /// Middle NTP bits of the last SR from this source and when it came (us).
    last_sr: Option<(u32, u64)>,
}

impl ReceiveStats {
    /// Nothing received.
    pub fn new() -> Self {
        Self::default()
    }

    fn init(&mut self, ssrc: u32, seq: u16) {
        *self = ReceiveStats {
            ssrc: Some(ssrc),
            base_seq: u32::from(seq),
            max_seq: seq,
            ..ReceiveStats::default()
        };
    }

    /// One RTP packet from the peer: sequence bookkeeping (A.1: a new SSRC
    /// or a confirmed jump restarts the counts), and when `timing` is
    /// given as (RTP timestamp, arrival in the same units) the jitter (A.8;
    /// audio only: DTMF events repeat their timestamp).
    pub fn on_rtp(&mut self, ssrc: u32, seq: u16, timing: Option<(u32, u32)>) {
        if self.ssrc != Some(ssrc) {
            self.init(ssrc, seq);
        } else {
            let udelta = seq.wrapping_sub(self.max_seq);
            if udelta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
                }
                self.max_seq = seq;
            } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
                // A very large jump: a restart if the next packet follows it.
                if self.bad_seq == Some(seq) {
                    let last_sr = self.last_sr;
                    self.init(ssrc, seq);
                    self.last_sr = last_sr;
                } else {
                    self.bad_seq = Some(seq.wrapping_add(1));
                    return;
                }
            }
            // else: a duplicate or a late packet; counted below.
        }
        self.received += 1;
        if let Some((ts, arrival)) = timing {
            let transit = arrival.wrapping_sub(ts) as i32;
            if let Some(prev) = self.transit {
                let d = transit.wrapping_sub(prev).unsigned_abs();
                // J += (|D| - J) / 16, in the x16 integer form.
                let j =
                    i64::from(self.jitter16) + i64::from(d) - ((i64::from(self.jitter16) + 8) >> 4);
                self.jitter16 = j.clamp(0, i64::from(u32::MAX)) as u32;
                self.jitter_max16 = self.jitter_max16.max(self.jitter16);
            }
            self.transit = Some(transit);
        }
    }

    /// An SR from the peer arrived at `at_us` (the session's microseconds).
    pub fn on_sender_report(&mut self, ssrc: u32, ntp: u64, at_us: u64) {
        if self.ssrc.is_none_or(|s| s == ssrc) {
            self.last_sr = Some((ntp_middle(ntp), at_us));
        }
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u64 {
        u64::from(self.extended_max().wrapping_sub(self.base_seq)) + 1
    }

    /// Cumulative lost (expected minus received; negative with duplicates).
    pub fn lost(&self) -> i64 {
        if self.ssrc.is_none() {
            return 0;
        }
        self.expected() as i64 - self.received as i64
    }

    /// Packets counted.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Current interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter16 >> 4
    }

    /// Largest jitter seen, in timestamp units.
    pub fn jitter_max(&self) -> u32 {
        self.jitter_max16 >> 4
    }

    /// Lost over expected since the first packet (0 before any).
    pub fn fraction_lost_total(&self) -> f64 {
        if self.ssrc.is_none() {
            return 0.0;
        }
        (self.lost().max(0) as f64 / self.expected() as f64).min(1.0)
    }

    /// The report block for the next report at `now_us`, or None before
    /// any packet; starts the next interval (A.3).
    pub fn report_block(&mut self, now_us: u64) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => (lsr, (now_us.saturating_sub(at) * 65536 / 1_000_000) as u32),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq: self.extended_max(),
            jitter: self.jitter(),
            lsr,
            dlsr,
        })
    }
}

/// Round-trip time from a report block about our stream (RFC 3550 6.4.1):
/// arrival (middle NTP bits) minus LSR minus DLSR, in milliseconds. None
/// when the peer has not had an SR from us yet (LSR 0) or the result is
/// negative (clocks or a forged block).
pub fn round_trip_ms(block: &ReportBlock, arrival_ntp: u64) -> Option<f64> {
    if block.lsr == 0 {
        return None;
    }
    let rtt = ntp_middle(arrival_ntp)
        .wrapping_sub(block.lsr)
        .wrapping_sub(block.dlsr);
    // More than 2^31 units (9 h) is a negative difference.
    (rtt < 0x8000_0000).then(|| f64::from(rtt) * 1000.0 / 65536.0)
}

/// How one direction of the audio went, in a call's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamQuality {
    /// Interarrival jitter (RFC 3550 A.8) at the end of the call, ms.
    pub jitter_ms: f64,
    /// Largest jitter reported or measured during the call, ms.
    pub jitter_max_ms: f64,
    /// Cumulative packets lost (negative when duplicates arrived).
    pub lost: i64,
    /// Lost over expected: for `rx` over the whole call, for `peer` the
    /// peer's last report interval (what RTCP carries).
    pub fraction_lost: f64,
}

/// Round-trip times measured from the peer's reports, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundTrip {
    /// The last one.
    pub last: f64,
    /// The largest.
    pub max: f64,
    /// How many reports gave one.
    pub samples: u64,
}

/// The `call.rtcp` object of an outcome: the reports exchanged during the
/// call and what they said (ARCHITECTURE.md "Shapes").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RtcpReport {
    /// RTCP multiplexed on the RTP port (`a=rtcp-mux`), else RTP port + 1.
    pub mux: bool,
    /// Compound reports we sent (the BYE's included).
    pub sent_reports: u64,
    /// Valid compounds with an SR or RR received from the peer.
    pub received_reports: u64,
    /// Datagrams dropped: malformed, or from anyone but the peer.
    pub dropped: u64,
    /// What we received, as we measured it.
    pub rx: StreamQuality,
    /// What the peer reported about our stream (None: it never did).
    pub peer: Option<StreamQuality>,
    /// Round-trip time from LSR/DLSR (None: no report echoed one of our SRs).
    pub rtt_ms: Option<RoundTrip>,
    /// The peer said BYE.
    pub peer_bye: bool,
}

/// Milliseconds of `units` at 8 kHz, to 0.01 ms.
pub fn units_to_ms(units: u32) -> f64 {
    (f64::from(units) / 8.0 * 100.0).round() / 100.0
}

impl RtcpReport {
    /// A report block about our stream arrived at `arrival_ntp`.
    pub fn peer_block(&mut self, b: &ReportBlock, arrival_ntp: u64) {
        let jitter_ms = units_to_ms(b.jitter);
        let prev_max = self.peer.map_or(0.0, |p| p.jitter_max_ms);
        self.peer = Some(StreamQuality {
            jitter_ms,
            jitter_max_ms: prev_max.max(jitter_ms),
            lost: i64::from(b.cumulative_lost),
            fraction_lost: f64::from(b.fraction_lost) / 256.0,
        });
        if let Some(rtt) = round_trip_ms(b, arrival_ntp) {
            let rtt = (rtt * 100.0).round() / 100.0;
            let r = self.rtt_ms.get_or_insert_with(RoundTrip::default);
            r.last = rtt;
            r.max = r.max.max(rtt);
            r.samples += 1;
        }
    }

    /// Fills `rx` from the receive statistics at the end of the call.
    pub fn finish_rx(&mut self, stats: &ReceiveStats) {
        self.rx = StreamQuality {
            jitter_ms: units_to_ms(stats.jitter()),
            jitter_max_ms: units_to_ms(stats.jitter_max()),
            lost: stats.lost(),
            fraction_lost: (stats.fraction_lost_total() * 10_000.0).round() / 10_000.0,
        };
    }
}

/// One call's RTCP as the media session drives it: what we measure of the
/// stream we receive, what the peer reports of ours, and the reports we
/// send. Times are microseconds on the session's monotonic clock; the NTP
/// times in reports are that clock plus the wall time the session started.
#[derive(Debug, Clone)]
pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    epoch_unix_us: u64,
    stats: ReceiveStats,
    report: RtcpReport,
    next_due_us: u64,
    packets_at_last_report: u64,
}

impl RtcpSession {
    /// A session for our stream `ssrc`, started at `epoch_unix_us` (wall
    /// clock, microseconds since 1970); the first report is due at
    /// `first_due_us`.
    pub fn new(ssrc: u32, cname: String, epoch_unix_us: u64, mux: bool, first_due_us: u64) -> Self {
        RtcpSession {
            ssrc,
            cname,
            epoch_unix_us,
            stats: ReceiveStats::new(),
            report: RtcpReport {
                mux,
                ..RtcpReport::default()
            },
            next_due_us: first_due_us,
            packets_at_last_report: 0,
        }
    }

    fn ntp(&self, now_us: u64) -> u64 {
        ntp_from_unix_micros(self.epoch_unix_us.saturating_add(now_us))
    }

    /// Whether RTCP now shares the RTP port (a new SDP may change it).
    pub fn set_mux(&mut self, mux: bool) {
        self.report.mux = mux;
    }

    /// Receive statistics, fed every RTP packet from the peer.
    pub fn stats_mut(&mut self) -> &mut ReceiveStats {
        &mut self.stats
    }

    /// A datagram the source check judged to be from the peer; a malformed
    /// one is counted as dropped and its error returned.
    pub fn on_datagram(&mut self, buf: &[u8], now_us: u64) -> Result<(), RtcpError> {
        let packets = match parse(buf) {
            Ok(p) => p,
            Err(e) => {
                self.report.dropped += 1;
                return Err(e);
            }
        };
        if packets
            .iter()
            .any(|p| matches!(p, RtcpPacket::Sender { .. } | RtcpPacket::Receiver { .. }))
        {
            self.report.received_reports += 1;
        }
        let arrival = self.ntp(now_us);
        for p in &packets {
            let blocks = match p {
                RtcpPacket::Sender { ssrc, info, blocks } => {
                    self.stats.on_sender_report(*ssrc, info.ntp, now_us);
                    blocks
                }
                RtcpPacket::Receiver { blocks, .. } => blocks,
                RtcpPacket::Bye { .. } => {
                    self.report.peer_bye = true;
                    continue;
                }
                RtcpPacket::Other { .. } => continue,
            };
            for b in blocks.iter().filter(|b| b.ssrc == self.ssrc) {
                self.report.peer_block(b, arrival);
            }
        }
        Ok(())
    }

    /// A datagram dropped before parsing (not from the peer).
    pub fn dropped(&mut self) {
        self.report.dropped += 1;
    }

    /// Whether a report is due at `now_us`.
    pub fn due(&self, now_us: u64) -> bool {
        now_us >= self.next_due_us
    }

    /// Writes our next compound into `out`: an SR when we sent RTP since
    /// the last report (`sent` is the next RTP timestamp, packets and
    /// octets sent so far), else an RR; a BYE when `bye`. The next report
    /// is due `next_in_us` later.
    pub fn write_report(
        &mut self,
        out: &mut Vec<u8>,
        now_us: u64,
        sent: (u32, u64, u64),
        bye: bool,
        next_in_us: u64,
    ) {
        let (rtp_timestamp, packets, octets) = sent;
        let info = (packets > self.packets_at_last_report).then(|| SenderInfo {
            ntp: self.ntp(now_us),
            rtp_timestamp,
            packets: packets as u32,
            octets: octets as u32,
        });
        self.packets_at_last_report = packets;
        let block = self.stats.report_block(now_us);
        write_compound(
            out,
            self.ssrc,
            info.as_ref(),
            block.as_ref(),
            &self.cname,
            bye,
        );
        self.report.sent_reports += 1;
        self.next_due_us = now_us.saturating_add(next_in_us);
    }

    /// The call's report, with our receive statistics as they ended.
    pub fn finish(mut self) -> RtcpReport {
        self.report.finish_rx(&self.stats);
        self.report
    }
}

#[cfg(test)]
#[path = "rtcp_tests.rs"]
mod tests;
