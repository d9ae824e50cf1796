//! Receive jitter buffer for one RTP stream of G.711 audio (one byte per
//! sample), and the judge of which arriving packets are new.
//!
//! Owns: putting received payloads back in sequence order and handing out
//! exactly one 20 ms frame (160 samples, or a gap) per tick whatever the
//! sender's packet size (ptime 10, 20, 30, ...); telling the driver, for each
//! arriving packet, whether it is the newest of the stream (so the arrival
//! path hands each sample on once, in order), and following the stream
//! across a sequence jump or an SSRC change only once a second, consecutive
//! packet confirms it; counting what arrived, was lost, late, duplicated or
//! reordered.
//! Never: reads a clock (the driver calls [`JitterBuffer::pop_into`] once per
//! tick), decodes audio, looks at payload types or addresses (the driver
//! filters them), or allocates per packet: every slot holds 30 ms from the
//! start (packets of 10, 20 and 30 ms never allocate); a larger ptime grows
//! each slot once.
//!
//! Playout follows the sequence number, not the timestamp: a sender that
//! stops sending (silence suppression, hold, the end of sipp's file) does
//! not advance the sequence, so when the buffer runs dry the play position
//! is held instead of marching on, and the buffer refills to its depth before
//! playing again. Nothing is counted lost while the sender is silent; a packet
//! is lost only when its turn comes while a later packet is already here.

use serde::Serialize;

/// Default depth: 3 frames = 60 ms.
pub const DEFAULT_DEPTH: usize = 3;

/// Samples in one 20 ms frame at 8 kHz (one byte each in G.711).
pub const FRAME_BYTES: usize = 160;

/// Largest payload accepted: 1024 samples (128 ms of G.711). Larger
/// payloads are no voice stream we negotiated and are dropped (counted).
pub const MAX_PAYLOAD: usize = 1024;

/// Bytes each slot holds from the start: 30 ms of G.711.
const SLOT_CAPACITY: usize = 240;

/// Slots in the ring; a packet further ahead than this cannot be stored.
const WINDOW: i64 = 128;
/// A packet more than this many sequence numbers from the play position is
/// not a late or early packet of this stream but a jump (new stream, SSRC
/// change, restart): it needs a second, consecutive packet to confirm.
const FAR: i64 = 100;
/// How far past a first far packet the confirming packet may be (allows for
/// one lost or reordered packet at the start of the new stream).
const CONFIRM_WITHIN: u16 = 3;

/// What became of one pushed packet, for the arrival path (which hands each
/// new sample on once, as soon as it arrives).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The newest packet of the stream so far: hand its audio on.
    Fresh,
    /// A new stream was confirmed (a sequence jump or another SSRC, then a
    /// consecutive packet): its first packet ([`JitterBuffer::resync_head`])
    /// and this one are both new.
    Resync,
    /// Not newer than what was already seen: reordered, late or a repeat.
    Old,
    /// Far from the stream (a jump, another SSRC): held until a consecutive
    /// packet confirms it, dropped if none does.
    Held,
    /// Empty or larger than [`MAX_PAYLOAD`]: dropped.
    Rejected,
}

/// What the driver plays in this tick (the samples are in the buffer given
/// to [`JitterBuffer::pop_into`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Playout {
    /// Received audio fills the frame (any gap in it filled with the fill
    /// byte).
    Audio,
    /// No audio for this tick: lost, not yet arrived, or the sender paused.
    Missing,
    /// Nothing has been played yet: no packet received, or still filling to
    /// the initial depth.
    NotStarted,
}

/// Counters of the received stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JitterStats {
    /// Packets handed to [`JitterBuffer::push`], whatever became of them.
    pub received: u64,
    /// Packets whose turn came while they were missing (a later one was here).
    pub lost: u64,
    /// Packets that arrived after their turn (dropped; also counted in `lost`).
    pub late: u64,
    /// Second and later copies of a packet (dropped).
    pub duplicates: u64,
    /// Packets accepted although a higher sequence number had arrived first.
    pub reordered: u64,
    /// Times the buffer restarted on a new stream (sequence jump, new SSRC).
    pub resyncs: u64,
    /// Isolated far-off packets that no consecutive packet confirmed as a
    /// new stream (dropped).
    pub strays: u64,
    /// Packets dropped unplayed because the buffer grew far past its depth
    /// (sender clock faster than ours, a burst, a flood).
    pub overflow: u64,
    /// Empty or oversized payloads (dropped).
    pub rejected: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No packet yet.
    Idle,
    /// Filling to depth before the first frame is played; `waited` counts
    /// ticks with something buffered.
    Starting {
        waited: usize,
    },
    /// Ran dry (or resynced); the play position is held while refilling.
    Refilling {
        waited: usize,
    },
    Playing,
}

#[derive(Clone, Debug, Default)]
struct Slot {
    full: bool,
    ext: i64,
    timestamp: u32,
    data: Vec<u8>,
}

/// A first packet far from the play position (or of another SSRC), waiting
/// for a consecutive one. Its bytes live in `JitterBuffer::pending_data`.
#[derive(Clone, Copy, Debug)]
struct Pending {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

/// Reorders the packets of one RTP stream and releases one 20 ms frame per
/// tick.
#[derive(Clone, Debug)]
pub struct JitterBuffer {
    depth: usize,
    state: State,
    slots: Vec<Slot>,
    /// Packets in `slots` (all at or after `next_play`).
    count: usize,
    /// Samples in those packets, less what `cursor` has played of the first.
    queued: usize,
    /// Samples of the packet at `next_play` already played.
    cursor: usize,
    /// Samples of silence still owed for a lost packet being "played".
    gap_left: usize,
    /// Size of the last packet played (stands in for a lost one's size).
    last_len: usize,
    /// Extended sequence number of the next packet to play.
    next_play: i64,
    /// Highest extended sequence number accepted.
    max_seen: i64,
    /// The stream's SSRC (None before the first packet).
    ssrc: Option<u32>,
    /// Bit i set: packet `next_play - 1 - i` was played (tells duplicates of
    /// played packets from late arrivals).
    played: u128,
    pending: Option<Pending>,
    pending_data: Vec<u8>,
    last_timestamp: Option<u32>,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        JitterBuffer::new(DEFAULT_DEPTH)
    }
}

impl JitterBuffer {
    /// A buffer that starts playing once `depth_frames` frames (20 ms each)
    /// are queued. Depth is clamped to 1..=32.
    pub fn new(depth_frames: usize) -> Self {
        JitterBuffer {
            depth: depth_frames.clamp(1, 32),
            state: State::Idle,
            slots: (0..WINDOW)
                .map(|_| Slot {
                    data: Vec::with_capacity(SLOT_CAPACITY),
                    ..Slot::default()
                })
                .collect(),
            count: 0,
            queued: 0,
            cursor: 0,
            gap_left: 0,
            last_len: FRAME_BYTES,
            next_play: 0,
            max_seen: 0,
            ssrc: None,
            played: 0,
            pending: None,
            pending_data: Vec::with_capacity(SLOT_CAPACITY),
            last_timestamp: None,
            stats: JitterStats::default(),
        }
    }

    /// The configured depth in frames.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Packets queued now.
    pub fn buffered(&self) -> usize {
        self.count
    }

    /// Samples queued now (not yet played).
    pub fn buffered_samples(&self) -> usize {
        self.queued
    }

    /// RTP timestamp of the last packet played out.
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last_timestamp
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Forgets the stream (the codec changed, the peer moved): the next
    /// packet starts a new one. Counters are kept.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            slot.full = false;
        }
        self.state = State::Idle;
        self.count = 0;
        self.queued = 0;
        self.cursor = 0;
        self.gap_left = 0;
        self.played = 0;
        self.pending = None;
        self.ssrc = None;
    }

    fn index(ext: i64) -> usize {
        // rem_euclid of a positive modulus is in 0..WINDOW.
        ext.rem_euclid(WINDOW) as usize
    }

    /// The extended sequence number nearest to the play position.
    fn extend(&self, sequence: u16) -> i64 {
        let base = self.next_play;
        // Truncation to 16 bits is the point: distance modulo 2^16.
        let delta = sequence.wrapping_sub(base as u16) as i16;
        base + i64::from(delta)
    }

    /// Hands in one received packet (the driver has already checked the
    /// source address and payload type) and says whether it is new.
    pub fn push(&mut self, ssrc: u32, sequence: u16, timestamp: u32, payload: &[u8]) -> Arrival {
        self.stats.received += 1;
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            self.stats.rejected += 1;
            return Arrival::Rejected;
        }
        if self.state == State::Idle {
            self.begin(ssrc, sequence, timestamp, payload);
            self.state = State::Starting { waited: 0 };
            return Arrival::Fresh;
        }
        if self.ssrc != Some(ssrc) {
            return self.far_packet(ssrc, sequence, timestamp, payload);
        }
        let ext = self.extend(sequence);
        let delta = ext - self.next_play;
        if !(-FAR..=FAR).contains(&delta) {
            return self.far_packet(ssrc, sequence, timestamp, payload);
        }
        // A packet of the stream itself: any far packet held was a stray.
        if self.pending.take().is_some() {
            self.stats.strays += 1;
        }
        if ext < self.next_play || (ext == self.next_play && self.cursor > 0) {
            let lowers_start =
                matches!(self.state, State::Starting { .. }) && self.max_seen - ext < WINDOW;
            if lowers_start && ext < self.next_play {
                // Reordered before playout began: the stream starts earlier.
                self.next_play = ext;
                self.stats.reordered += 1;
                self.store(ext, timestamp, payload);
                return Arrival::Old;
            }
            let age = self.next_play - 1 - ext;
            if ext == self.next_play || (age < 128 && (self.played >> age) & 1 == 1) {
                self.stats.duplicates += 1;
            } else {
                self.stats.late += 1;
            }
            return Arrival::Old;
        }
        let slot = &self.slots[Self::index(ext)];
        if slot.full && slot.ext == ext {
            self.stats.duplicates += 1;
            return Arrival::Old;
        }
        let fresh = ext > self.max_seen;
        if !fresh {
            self.stats.reordered += 1;
        }
        self.store(ext, timestamp, payload);
        if fresh {
            Arrival::Fresh
        } else {
            Arrival::Old
        }
    }

    /// After [`Arrival::Resync`]: the payload of the new stream's first
    /// packet (held until the confirming one came).
    pub fn resync_head(&self) -> Option<&[u8]> {
        let slot = &self.slots[Self::index(self.next_play)];
        (slot.full && slot.ext == self.next_play && self.cursor == 0).then_some(&slot.data[..])
    }

    /// Starts a stream at this packet.
    fn begin(&mut self, ssrc: u32, sequence: u16, timestamp: u32, payload: &[u8]) {
        // Start well away from zero so extended numbers never go negative.
        self.next_play = (1i64 << 32) + i64::from(sequence);
        self.max_seen = self.next_play;
        self.ssrc = Some(ssrc);
        self.store(self.next_play, timestamp, payload);
    }

    fn store(&mut self, ext: i64, timestamp: u32, payload: &[u8]) {
        let slot = &mut self.slots[Self::index(ext)];
        // Window invariants keep every stored ext within WINDOW of next_play,
        // so a full slot here would be a different packet: never happens,
        // but keep the counts right if it did.
        if slot.full {
            self.queued -= slot.data.len();
        } else {
            self.count += 1;
        }
        slot.full = true;
        slot.ext = ext;
        slot.timestamp = timestamp;
        slot.data.clear();
        slot.data.extend_from_slice(payload);
        self.queued += payload.len();
        self.max_seen = self.max_seen.max(ext);
    }

    fn far_packet(&mut self, ssrc: u32, sequence: u16, timestamp: u32, payload: &[u8]) -> Arrival {
        let confirmed = self.pending.is_some_and(|p| {
            p.ssrc == ssrc && (1..=CONFIRM_WITHIN).contains(&sequence.wrapping_sub(p.sequence))
        });
        if !confirmed {
            if self.pending.is_some() {
                self.stats.strays += 1;
            }
            self.pending = Some(Pending {
                ssrc,
                sequence,
                timestamp,
            });
            self.pending_data.clear();
            self.pending_data.extend_from_slice(payload);
            return Arrival::Held;
        }
        let Some(first) = self.pending.take() else {
            return Arrival::Held;
        };
        // New stream: forget the old one and refill from its first packet.
        for slot in &mut self.slots {
            slot.full = false;
        }
        self.count = 0;
        self.queued = 0;
        self.cursor = 0;
        self.gap_left = 0;
        self.played = 0;
        self.stats.resyncs += 1;
        let head = std::mem::take(&mut self.pending_data);
        self.begin(ssrc, first.sequence, first.timestamp, &head);
        self.pending_data = head;
        let ext = self.extend(sequence);
        self.store(ext, timestamp, payload);
        self.state = match self.state {
            State::Starting { .. } | State::Idle => State::Starting { waited: 0 },
            _ => State::Refilling { waited: 0 },
        };
        Arrival::Resync
    }

    /// Called once per 20 ms tick: fills `out` (normally 160 bytes) with
    /// what to play now, `fill` (the codec's silence byte) where nothing is.
    #[must_use]
    pub fn pop_into(&mut self, out: &mut [u8], fill: u8) -> Playout {
        let need = out.len().max(1);
        match self.state {
            State::Idle => {
                out.fill(fill);
                Playout::NotStarted
            }
            State::Starting { waited } => {
                let waited = waited + 1;
                if self.queued >= self.depth * need || waited >= self.depth {
                    self.state = State::Playing;
                    self.play(out, fill)
                } else {
                    self.state = State::Starting { waited };
                    out.fill(fill);
                    Playout::NotStarted
                }
            }
            State::Refilling { waited } => {
                if self.count == 0 {
                    out.fill(fill);
                    return Playout::Missing;
                }
                let waited = waited + 1;
                if self.queued >= self.depth * need || waited >= self.depth {
                    self.state = State::Playing;
                    self.play(out, fill)
                } else {
                    self.state = State::Refilling { waited };
                    out.fill(fill);
                    Playout::Missing
                }
            }
            State::Playing => self.play(out, fill),
        }
    }

    fn play(&mut self, out: &mut [u8], fill: u8) -> Playout {
        // Sender clock faster than ours, a burst after a stall, a flood:
        // shed one packet per tick rather than let the delay grow.
        if self.queued > self.high_water(out.len()) && self.gap_left == 0 {
            let i = Self::index(self.next_play);
            if self.slots[i].full && self.slots[i].ext == self.next_play {
                self.slots[i].full = false;
                self.count -= 1;
                self.queued -= self.slots[i].data.len() - self.cursor;
                self.cursor = 0;
                self.stats.overflow += 1;
                self.advance(true);
            } else {
                self.stats.lost += 1;
                self.advance(false);
            }
        }
        let mut pos = 0;
        let mut got = false;
        while pos < out.len() {
            if self.gap_left > 0 {
                let n = self.gap_left.min(out.len() - pos);
                out[pos..pos + n].fill(fill);
                self.gap_left -= n;
                pos += n;
                continue;
            }
            if self.count == 0 {
                // Dry: the sender may just be silent. Hold the position.
                out[pos..].fill(fill);
                self.state = State::Refilling { waited: 0 };
                break;
            }
            let i = Self::index(self.next_play);
            let slot = &mut self.slots[i];
            if slot.full && slot.ext == self.next_play {
                let n = (slot.data.len() - self.cursor).min(out.len() - pos);
                out[pos..pos + n].copy_from_slice(&slot.data[self.cursor..self.cursor + n]);
                self.cursor += n;
                self.queued -= n;
                pos += n;
                got = true;
                if self.cursor == slot.data.len() {
                    slot.full = false;
                    self.count -= 1;
                    self.last_len = slot.data.len();
                    self.last_timestamp = Some(slot.timestamp);
                    self.cursor = 0;
                    self.advance(true);
                }
            } else {
                // Its turn came and a later packet is here: lost. It stands
                // for as much time as the last packet that did arrive.
                self.stats.lost += 1;
                self.advance(false);
                self.gap_left = self.last_len;
            }
        }
        if got {
            Playout::Audio
        } else {
            Playout::Missing
        }
    }

    /// Samples queued above which packets are shed: twice the depth plus
    /// 80 ms.
    fn high_water(&self, frame: usize) -> usize {
        (self.depth * 2 + 4) * frame.max(1)
    }

    fn advance(&mut self, played: bool) {
        self.played = (self.played << 1) | u128::from(played);
        self.next_play += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x5EED;

    fn frame(n: u16) -> Vec<u8> {
        let mut v = vec![0u8; 160];
        v[..2].copy_from_slice(&n.to_be_bytes());
        v
    }

    fn push(jb: &mut JitterBuffer, seq: u16) -> Arrival {
        jb.push(SSRC, seq, u32::from(seq).wrapping_mul(160), &frame(seq))
    }

    /// One tick: the sequence number written in the frame played, if any.
    fn pop_seq(jb: &mut JitterBuffer) -> Option<u16> {
        let mut out = [0u8; 160];
        match jb.pop_into(&mut out, 0xFF) {
            Playout::Audio => Some(u16::from_be_bytes([out[0], out[1]])),
            _ => None,
        }
    }

    /// Pops `ticks` frames; returns the sequence numbers (None for a gap).
    fn drain(jb: &mut JitterBuffer, ticks: usize) -> Vec<Option<u16>> {
        (0..ticks).map(|_| pop_seq(jb)).collect()
    }

    #[test]
    fn nothing_received_is_not_started() {
        let mut jb = JitterBuffer::new(3);
        let mut out = [0u8; 160];
        assert_eq!(jb.pop_into(&mut out, 0xFF), Playout::NotStarted);
        assert!(out.iter().all(|&b| b == 0xFF), "filled with silence");
        push(&mut jb, 10);
        assert_eq!(jb.pop_into(&mut out, 0xFF), Playout::NotStarted);
    }

    #[test]
    fn playout_starts_at_depth_and_keeps_order() {
        let mut jb = JitterBuffer::new(3);
        let mut out = Vec::new();
        for s in 100..110u16 {
            assert_eq!(push(&mut jb, s), Arrival::Fresh);
            out.push(pop_seq(&mut jb));
        }
        assert_eq!(out[..2], [None, None]);
        assert_eq!(out[2..], (100..108).map(Some).collect::<Vec<_>>()[..]);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn reordered_packets_come_out_in_order_and_only_the_newest_are_fresh() {
        let mut jb = JitterBuffer::new(3);
        let arrivals: Vec<Arrival> = [1u16, 3, 2, 5, 4, 6]
            .iter()
            .map(|&s| push(&mut jb, s))
            .collect();
        use Arrival::*;
        assert_eq!(arrivals, vec![Fresh, Fresh, Old, Fresh, Old, Fresh]);
        let got = drain(&mut jb, 6);
        assert_eq!(got, (1..=6).map(Some).collect::<Vec<_>>());
        assert_eq!(jb.stats().reordered, 2);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn reordering_before_the_first_frame_moves_the_start_back() {
        let mut jb = JitterBuffer::new(3);
        push(&mut jb, 11);
        assert_eq!(push(&mut jb, 10), Arrival::Old);
        push(&mut jb, 12);
        assert_eq!(drain(&mut jb, 3), vec![Some(10), Some(11), Some(12)]);
    }

    #[test]
    fn late_packet_is_dropped_and_counted() {
        let mut jb = JitterBuffer::new(2);
        push(&mut jb, 1);
        push(&mut jb, 3);
        assert_eq!(drain(&mut jb, 2), vec![Some(1), None]);
        assert_eq!(push(&mut jb, 2), Arrival::Old); // its slot was just played as missing
        assert_eq!(drain(&mut jb, 1), vec![Some(3)]);
        let st = jb.stats();
        assert_eq!((st.late, st.lost, st.received), (1, 1, 3));
    }

    #[test]
    fn loss_is_counted_once() {
        let mut jb = JitterBuffer::new(2);
        for s in [1u16, 2, 4, 5] {
            push(&mut jb, s);
        }
        assert_eq!(drain(&mut jb, 4), vec![Some(1), Some(2), None, Some(4)]);
        // More ticks: packet 5, then the sender is silent: gaps but no loss.
        assert_eq!(drain(&mut jb, 5), vec![Some(5), None, None, None, None]);
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn silent_sender_holds_the_play_position() {
        let mut jb = JitterBuffer::new(2);
        push(&mut jb, 1);
        push(&mut jb, 2);
        assert_eq!(drain(&mut jb, 5), vec![Some(1), Some(2), None, None, None]);
        // The sender resumes with the next sequence number: not late.
        assert_eq!(push(&mut jb, 3), Arrival::Fresh);
        push(&mut jb, 4);
        assert_eq!(drain(&mut jb, 2), vec![Some(3), Some(4)]);
        assert_eq!((jb.stats().late, jb.stats().lost), (0, 0));
    }

    #[test]
    fn sequence_wraps_around_at_65535() {
        let mut jb = JitterBuffer::new(3);
        for s in [65533u16, 65534, 0, 65535, 1, 2] {
            push(&mut jb, s);
        }
        let got = drain(&mut jb, 6);
        assert_eq!(
            got,
            vec![
                Some(65533),
                Some(65534),
                Some(65535),
                Some(0),
                Some(1),
                Some(2)
            ]
        );
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().reordered, 1);
    }

    #[test]
    fn duplicate_is_ignored() {
        let mut jb = JitterBuffer::new(2);
        push(&mut jb, 7);
        assert_eq!(push(&mut jb, 7), Arrival::Old); // still queued
        push(&mut jb, 8);
        assert_eq!(drain(&mut jb, 1), vec![Some(7)]);
        assert_eq!(push(&mut jb, 7), Arrival::Old); // already played
        push(&mut jb, 9);
        assert_eq!(drain(&mut jb, 3), vec![Some(8), Some(9), None]);
        let st = jb.stats();
        assert_eq!((st.duplicates, st.late, st.lost), (2, 0, 0));
    }

    #[test]
    fn resyncs_after_a_sequence_jump_and_the_new_stream_is_fresh() {
        let mut jb = JitterBuffer::new(2);
        for s in 1..=4u16 {
            push(&mut jb, s);
        }
        assert_eq!(drain(&mut jb, 2), vec![Some(1), Some(2)]);
        // New stream far away: the first far packet waits for a second.
        assert_eq!(push(&mut jb, 30004), Arrival::Held);
        assert_eq!(drain(&mut jb, 1), vec![Some(3)]);
        assert_eq!(push(&mut jb, 30005), Arrival::Resync);
        let head = jb.resync_head().expect("first packet of the new stream");
        assert_eq!(u16::from_be_bytes([head[0], head[1]]), 30004);
        assert_eq!(push(&mut jb, 30006), Arrival::Fresh);
        let got = drain(&mut jb, 3);
        assert_eq!(got, vec![Some(30004), Some(30005), Some(30006)]);
        let st = jb.stats();
        assert_eq!((st.resyncs, st.late, st.strays), (1, 0, 0));
    }

    #[test]
    fn one_packet_30000_ahead_does_not_make_the_stream_old() {
        let mut jb = JitterBuffer::new(2);
        push(&mut jb, 1);
        push(&mut jb, 2);
        assert_eq!(push(&mut jb, 30002), Arrival::Held);
        // The genuine stream goes on: every packet is still new.
        for s in 3..=20u16 {
            assert_eq!(push(&mut jb, s), Arrival::Fresh, "packet {s}");
        }
        assert_eq!(jb.stats().strays, 1);
        assert_eq!(jb.stats().resyncs, 0);
    }

    #[test]
    fn isolated_far_packet_is_a_stray_not_a_resync() {
        let mut jb = JitterBuffer::new(1);
        push(&mut jb, 1);
        push(&mut jb, 20000);
        push(&mut jb, 2);
        push(&mut jb, 50000);
        push(&mut jb, 3);
        assert_eq!(drain(&mut jb, 3), vec![Some(1), Some(2), Some(3)]);
        assert_eq!(jb.stats().resyncs, 0);
        assert_eq!(jb.stats().strays, 2);
    }

    #[test]
    fn another_ssrc_needs_two_consecutive_packets_to_take_over() {
        let mut jb = JitterBuffer::new(1);
        push(&mut jb, 1);
        // Same sequence numbers, another source: not this stream.
        assert_eq!(jb.push(99, 2, 0, &frame(502)), Arrival::Held);
        assert_eq!(push(&mut jb, 2), Arrival::Fresh);
        assert_eq!(jb.push(99, 3, 0, &frame(503)), Arrival::Held);
        assert_eq!(jb.push(99, 4, 0, &frame(504)), Arrival::Resync);
        assert_eq!(jb.stats().resyncs, 1);
        assert_eq!(jb.stats().strays, 1);
    }

    #[test]
    fn ten_and_thirty_ms_packets_are_played_as_20_ms_frames() {
        for size in [80usize, 240] {
            let mut jb = JitterBuffer::new(3);
            let total = 7680usize; // 0.96 s: whole packets at either size
            let mut played = Vec::new();
            let mut sent = 0usize;
            let mut seq = 0u16;
            let mut out = [0u8; 160];
            // The sender's clock: packets leave as their audio is due.
            for tick in 0..70usize {
                while sent < total && sent < (tick + 1) * 160 {
                    let payload: Vec<u8> = (sent..sent + size).map(|i| (i / 160) as u8).collect();
                    jb.push(SSRC, seq, sent as u32, &payload);
                    seq = seq.wrapping_add(1);
                    sent += size;
                }
                if jb.pop_into(&mut out, 0xFF) == Playout::Audio {
                    played.extend_from_slice(&out);
                }
            }
            let audio: Vec<u8> = played.iter().copied().filter(|&b| b != 0xFF).collect();
            assert_eq!(
                audio.len(),
                total,
                "ptime {} ms: every sample once",
                size / 8
            );
            assert!(
                audio.windows(2).all(|w| w[0] <= w[1]),
                "ptime {} ms: in order",
                size / 8
            );
            assert_eq!(jb.stats().lost, 0);
            assert_eq!(jb.stats().overflow, 0, "ptime {} ms", size / 8);
        }
    }

    #[test]
    fn a_lost_10_ms_packet_leaves_a_10_ms_gap() {
        let mut jb = JitterBuffer::new(1);
        for s in [0u16, 1, 3, 4] {
            jb.push(SSRC, s, u32::from(s) * 80, &[s as u8 + 1; 80]);
        }
        let mut out = [0u8; 160];
        assert_eq!(jb.pop_into(&mut out, 0), Playout::Audio);
        assert!(out[..80].iter().all(|&b| b == 1) && out[80..].iter().all(|&b| b == 2));
        assert_eq!(jb.pop_into(&mut out, 0), Playout::Audio);
        assert!(out[..80].iter().all(|&b| b == 0), "the lost packet's 10 ms");
        assert!(out[80..].iter().all(|&b| b == 4));
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn empty_and_oversized_payloads_are_rejected() {
        let mut jb = JitterBuffer::new(1);
        assert_eq!(jb.push(SSRC, 1, 0, &[]), Arrival::Rejected);
        assert_eq!(
            jb.push(SSRC, 1, 0, &vec![0; MAX_PAYLOAD + 1]),
            Arrival::Rejected
        );
        assert_eq!(jb.stats().rejected, 2);
        assert_eq!(jb.buffered(), 0);
    }

    #[test]
    fn overfull_buffer_sheds_one_packet_per_tick_down_to_high_water() {
        let mut jb = JitterBuffer::new(3);
        for s in 0..20u16 {
            push(&mut jb, s);
        }
        // 20 queued, high water 10: each tick sheds one and plays one.
        let got = drain(&mut jb, 6);
        assert_eq!(
            got,
            vec![Some(1), Some(3), Some(5), Some(7), Some(9), Some(10)]
        );
        assert_eq!(jb.stats().overflow, 5);
        assert_eq!(jb.buffered(), 9);
        assert_eq!(drain(&mut jb, 1), vec![Some(11)]);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn clock_drift_does_not_grow_latency_without_bound() {
        // Sender 1% fast: one extra packet every 100 ticks, for 10 minutes.
        let mut jb = JitterBuffer::new(3);
        let mut seq = 0u16;
        let mut out = [0u8; 160];
        for tick in 0..30_000u32 {
            push(&mut jb, seq);
            seq = seq.wrapping_add(1);
            if tick % 100 == 99 {
                push(&mut jb, seq);
                seq = seq.wrapping_add(1);
            }
            let _ = jb.pop_into(&mut out, 0xFF);
            assert!(jb.buffered() <= 11);
        }
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn reset_starts_a_new_stream_with_the_next_packet() {
        let mut jb = JitterBuffer::new(1);
        push(&mut jb, 1);
        push(&mut jb, 2);
        jb.reset();
        assert_eq!(jb.buffered(), 0);
        assert_eq!(jb.push(7, 40000, 0, &frame(40000)), Arrival::Fresh);
        assert_eq!(drain(&mut jb, 1), vec![Some(40000)]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_arrival_order_never_panics_and_frames_come_out_increasing(
                ops in proptest::collection::vec((any::<bool>(), any::<u16>(), 0u16..8), 0..400),
                depth in 1usize..6,
            ) {
                let mut jb = JitterBuffer::new(depth);
                let mut base = 1000u16;
                let mut last: Option<u16> = None;
                for (is_pop, raw, jitter) in ops {
                    if is_pop {
                        if let Some(s) = pop_seq(&mut jb) {
                            if let Some(prev) = last {
                                // Increasing, unless a resync happened.
                                prop_assert!(s.wrapping_sub(prev) != 0);
                            }
                            last = Some(s);
                        }
                    } else {
                        // Mostly near the stream, sometimes anywhere.
                        let s = if raw % 10 == 0 { raw } else { base.wrapping_add(jitter) };
                        base = base.wrapping_add(1);
                        let _ = jb.push(SSRC, s, 0, &frame(s));
                    }
                    prop_assert!(jb.buffered() <= WINDOW as usize);
                    prop_assert!(jb.buffered_samples() <= WINDOW as usize * 160);
                }
            }

            #[test]
            fn any_packet_sizes_and_sources_never_panic_and_stay_bounded(
                ops in proptest::collection::vec((0u8..4, any::<u16>(), 0usize..1100, 0u32..3), 0..300),
            ) {
                let mut jb = JitterBuffer::new(3);
                let mut out = [0u8; 160];
                for (op, seq, len, ssrc) in ops {
                    if op == 0 {
                        let _ = jb.pop_into(&mut out, 0xFF);
                    } else {
                        let payload = vec![1u8; len];
                        let a = jb.push(ssrc, seq, 0, &payload);
                        if a == Arrival::Resync {
                            prop_assert!(jb.resync_head().is_some());
                        }
                    }
                    prop_assert!(jb.buffered_samples() <= WINDOW as usize * MAX_PAYLOAD);
                }
            }
        }
    }
}
