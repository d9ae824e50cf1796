//! Receive jitter buffer for 20 ms G.711 frames.
//!
//! Owns: putting received RTP payloads back in sequence order and handing out
//! exactly one frame (or a gap) per 20 ms tick; counting what arrived, what
//! was lost, late, duplicated or reordered.
//! Never: reads a clock (the driver calls [`JitterBuffer::pop`] once per
//! tick), decodes audio, or looks at payload types (the driver filters them).
//!
//! Playout follows the sequence number, not the timestamp: a sender that
//! stops sending (silence suppression, hold, the end of sipp's file) does
//! not advance the sequence, so when the buffer runs dry the play position
//! is held instead of marching on, and the buffer refills to its depth before
//! playing again. Nothing is counted lost while the sender is silent; a frame
//! is lost only when its slot is played while a later frame is already here.

use serde::Serialize;

/// Default depth: 3 frames = 60 ms.
pub const DEFAULT_DEPTH: usize = 3;

/// Slots in the ring; a packet further ahead than this cannot be stored.
const WINDOW: i64 = 128;
/// A packet more than this many sequence numbers from the play position is
/// not a late or early packet of this stream but a jump (new stream, SSRC
/// change, restart): it needs a second, consecutive packet to confirm.
const FAR: i64 = 100;
/// How far past a first far packet the confirming packet may be (allows for
/// one lost or reordered packet at the start of the new stream).
const CONFIRM_WITHIN: u16 = 3;

/// What the driver plays in this 20 ms tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Playout {
    /// The payload of the next packet in sequence, as received (normally
    /// 160 bytes of G.711; other sizes are passed through unchanged).
    Frame(Vec<u8>),
    /// No frame for this tick: lost, not yet arrived, or the sender paused.
    /// Play silence or conceal.
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
    /// Frames whose slot was played while missing (a later frame was here).
    pub lost: u64,
    /// Packets that arrived after their slot was played (dropped; such a
    /// frame was also counted in `lost`).
    pub late: u64,
    /// Second and later copies of a packet (dropped).
    pub duplicates: u64,
    /// Packets accepted although a higher sequence number had arrived first.
    pub reordered: u64,
    /// Times the buffer restarted on a new stream after a sequence jump.
    pub resyncs: u64,
    /// Isolated far-off packets that no consecutive packet confirmed as a
    /// new stream (dropped).
    pub strays: u64,
    /// Frames dropped unplayed because the buffer grew far past its depth
    /// (sender clock faster than ours, or a long burst).
    pub overflow: u64,
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

/// A first packet far from the play position, waiting for a consecutive one.
#[derive(Clone, Debug)]
struct Pending {
    sequence: u16,
    timestamp: u32,
    data: Vec<u8>,
}

/// Reorders packets of one RTP stream and releases one frame per tick.
#[derive(Clone, Debug)]
pub struct JitterBuffer {
    depth: usize,
    state: State,
    slots: Vec<Slot>,
    /// Packets in `slots` (all at or after `next_play`).
    count: usize,
    /// Extended sequence number of the next frame to play.
    next_play: i64,
    /// Highest extended sequence number accepted.
    max_seen: i64,
    /// Bit i set: frame `next_play - 1 - i` was played (tells duplicates of
    /// played frames from late arrivals).
    played: u128,
    pending: Option<Pending>,
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
            slots: vec![Slot::default(); WINDOW as usize],
            count: 0,
            next_play: 0,
            max_seen: 0,
            played: 0,
            pending: None,
            last_timestamp: None,
            stats: JitterStats::default(),
        }
    }

    /// The configured depth in frames.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Frames queued now.
    pub fn buffered(&self) -> usize {
        self.count
    }

    /// RTP timestamp of the last frame returned by [`JitterBuffer::pop`].
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last_timestamp
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
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

    /// Hands in one received packet's payload (the driver has already
    /// checked SSRC-independent things: RTP version, payload type).
    pub fn push(&mut self, sequence: u16, timestamp: u32, payload: &[u8]) {
        self.stats.received += 1;
        if self.state == State::Idle {
            // Start well away from zero so extended numbers never go negative.
            self.next_play = (1i64 << 32) + i64::from(sequence);
            self.max_seen = self.next_play;
            self.state = State::Starting { waited: 0 };
            self.store(self.next_play, timestamp, payload);
            return;
        }
        let ext = self.extend(sequence);
        let delta = ext - self.next_play;
        if !(-FAR..=FAR).contains(&delta) {
            self.far_packet(sequence, timestamp, payload);
            return;
        }
        if ext < self.next_play {
            let lowers_start =
                matches!(self.state, State::Starting { .. }) && self.max_seen - ext < WINDOW;
            if lowers_start {
                // Reordered before playout began: the stream starts earlier.
                self.next_play = ext;
                self.stats.reordered += 1;
                self.store(ext, timestamp, payload);
                return;
            }
            let age = self.next_play - 1 - ext;
            if age < 128 && (self.played >> age) & 1 == 1 {
                self.stats.duplicates += 1;
            } else {
                self.stats.late += 1;
            }
            return;
        }
        let slot = &self.slots[Self::index(ext)];
        if slot.full && slot.ext == ext {
            self.stats.duplicates += 1;
            return;
        }
        if ext < self.max_seen {
            self.stats.reordered += 1;
        }
        self.store(ext, timestamp, payload);
    }

    fn store(&mut self, ext: i64, timestamp: u32, payload: &[u8]) {
        let slot = &mut self.slots[Self::index(ext)];
        // Window invariants keep every stored ext within WINDOW of next_play,
        // so a full slot here would be a different frame: never happens, but
        // keep the count right if it did.
        if !slot.full {
            self.count += 1;
        }
        slot.full = true;
        slot.ext = ext;
        slot.timestamp = timestamp;
        slot.data.clear();
        slot.data.extend_from_slice(payload);
        self.max_seen = self.max_seen.max(ext);
    }

    fn far_packet(&mut self, sequence: u16, timestamp: u32, payload: &[u8]) {
        let confirmed = match &self.pending {
            Some(p) => {
                let d = sequence.wrapping_sub(p.sequence);
                (1..=CONFIRM_WITHIN).contains(&d)
            }
            None => false,
        };
        if !confirmed {
            if self.pending.is_some() {
                self.stats.strays += 1;
            }
            self.pending = Some(Pending {
                sequence,
                timestamp,
                data: payload.to_vec(),
            });
            return;
        }
        let Some(first) = self.pending.take() else {
            return;
        };
        // New stream: forget the old one and refill from its first packet.
        for slot in &mut self.slots {
            slot.full = false;
        }
        self.count = 0;
        self.played = 0;
        self.stats.resyncs += 1;
        self.next_play = (1i64 << 32) + i64::from(first.sequence);
        self.max_seen = self.next_play;
        self.store(self.next_play, first.timestamp, &first.data);
        let ext = self.extend(sequence);
        self.store(ext, timestamp, payload);
        self.state = match self.state {
            State::Starting { .. } | State::Idle => State::Starting { waited: 0 },
            _ => State::Refilling { waited: 0 },
        };
    }

    /// Called once per 20 ms tick: the frame to play now.
    #[must_use]
    pub fn pop(&mut self) -> Playout {
        match self.state {
            State::Idle => Playout::NotStarted,
            State::Starting { waited } => {
                let waited = waited + 1;
                if self.count >= self.depth || waited >= self.depth {
                    self.state = State::Playing;
                    self.play()
                } else {
                    self.state = State::Starting { waited };
                    Playout::NotStarted
                }
            }
            State::Refilling { waited } => {
                if self.count == 0 {
                    return Playout::Missing;
                }
                let waited = waited + 1;
                if self.count >= self.depth || waited >= self.depth {
                    self.state = State::Playing;
                    self.play()
                } else {
                    self.state = State::Refilling { waited };
                    Playout::Missing
                }
            }
            State::Playing => self.play(),
        }
    }

    fn play(&mut self) -> Playout {
        if self.count == 0 {
            // Dry: the sender may just be silent. Hold the position.
            self.state = State::Refilling { waited: 0 };
            return Playout::Missing;
        }
        // Sender clock faster than ours, or a burst after a stall: shed one
        // frame per tick (a 20 ms gap) rather than let the delay grow.
        if self.count > self.high_water() {
            let i = Self::index(self.next_play);
            if self.slots[i].full && self.slots[i].ext == self.next_play {
                self.slots[i].full = false;
                self.count -= 1;
                self.stats.overflow += 1;
                self.advance(true);
            } else {
                self.stats.lost += 1;
                self.advance(false);
            }
        }
        let i = Self::index(self.next_play);
        let slot = &mut self.slots[i];
        if slot.full && slot.ext == self.next_play {
            slot.full = false;
            self.count -= 1;
            // Hand the bytes out and leave the slot's buffer for reuse.
            let frame = slot.data.clone();
            self.last_timestamp = Some(slot.timestamp);
            self.advance(true);
            Playout::Frame(frame)
        } else {
            self.stats.lost += 1;
            self.advance(false);
            Playout::Missing
        }
    }

    /// Queue length above which frames are shed: twice the depth plus 80 ms.
    fn high_water(&self) -> usize {
        self.depth * 2 + 4
    }

    fn advance(&mut self, played: bool) {
        self.played = (self.played << 1) | u128::from(played);
        self.next_play += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u16) -> Vec<u8> {
        let mut v = vec![0u8; 160];
        v[..2].copy_from_slice(&n.to_be_bytes());
        v
    }

    fn push(jb: &mut JitterBuffer, seq: u16) {
        jb.push(seq, u32::from(seq).wrapping_mul(160), &frame(seq));
    }

    fn seq_of(p: &Playout) -> Option<u16> {
        match p {
            Playout::Frame(f) => Some(u16::from_be_bytes([f[0], f[1]])),
            _ => None,
        }
    }

    /// Pops until the buffer has played what it holds; returns the sequence
    /// numbers (None for a gap).
    fn drain(jb: &mut JitterBuffer, ticks: usize) -> Vec<Option<u16>> {
        (0..ticks).map(|_| seq_of(&jb.pop())).collect()
    }

    #[test]
    fn nothing_received_is_not_started() {
        let mut jb = JitterBuffer::new(3);
        assert_eq!(jb.pop(), Playout::NotStarted);
        push(&mut jb, 10);
        assert_eq!(jb.pop(), Playout::NotStarted);
    }

    #[test]
    fn playout_starts_at_depth_and_keeps_order() {
        let mut jb = JitterBuffer::new(3);
        let mut out = Vec::new();
        for s in 100..110u16 {
            push(&mut jb, s);
            out.push(seq_of(&jb.pop()));
        }
        assert_eq!(out[..2], [None, None]);
        assert_eq!(out[2..], (100..108).map(Some).collect::<Vec<_>>()[..]);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let mut jb = JitterBuffer::new(3);
        for s in [1u16, 3, 2, 5, 4, 6] {
            push(&mut jb, s);
        }
        let got = drain(&mut jb, 6);
        assert_eq!(got, (1..=6).map(Some).collect::<Vec<_>>());
        assert_eq!(jb.stats().reordered, 2);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn reordering_before_the_first_frame_moves_the_start_back() {
        let mut jb = JitterBuffer::new(3);
        push(&mut jb, 11);
        push(&mut jb, 10);
        push(&mut jb, 12);
        assert_eq!(drain(&mut jb, 3), vec![Some(10), Some(11), Some(12)]);
    }

    #[test]
    fn late_packet_is_dropped_and_counted() {
        let mut jb = JitterBuffer::new(2);
        push(&mut jb, 1);
        push(&mut jb, 3);
        assert_eq!(drain(&mut jb, 2), vec![Some(1), None]);
        push(&mut jb, 2); // its slot was just played as Missing
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
        // More ticks: frame 5, then the sender is silent: gaps but no loss.
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
        push(&mut jb, 3);
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
        push(&mut jb, 7); // still queued
        push(&mut jb, 8);
        assert_eq!(drain(&mut jb, 1), vec![Some(7)]);
        push(&mut jb, 7); // already played
        push(&mut jb, 9);
        assert_eq!(drain(&mut jb, 3), vec![Some(8), Some(9), None]);
        let st = jb.stats();
        assert_eq!((st.duplicates, st.late, st.lost), (2, 0, 0));
    }

    #[test]
    fn resyncs_after_a_sequence_jump() {
        let mut jb = JitterBuffer::new(2);
        for s in 1..=4u16 {
            push(&mut jb, s);
        }
        assert_eq!(drain(&mut jb, 2), vec![Some(1), Some(2)]);
        // New stream far away: the first far packet waits for a second.
        push(&mut jb, 30000);
        assert_eq!(drain(&mut jb, 1), vec![Some(3)]);
        push(&mut jb, 30001);
        push(&mut jb, 30002);
        let got = drain(&mut jb, 3);
        assert_eq!(got, vec![Some(30000), Some(30001), Some(30002)]);
        let st = jb.stats();
        assert_eq!((st.resyncs, st.late, st.strays), (1, 0, 0));
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
        assert_eq!(jb.stats().strays, 1);
    }

    #[test]
    fn odd_sized_payloads_pass_through_unchanged() {
        let mut jb = JitterBuffer::new(1);
        jb.push(5, 0, &[1, 2, 3]);
        jb.push(6, 240, &[9; 240]);
        assert_eq!(jb.pop(), Playout::Frame(vec![1, 2, 3]));
        assert_eq!(jb.pop(), Playout::Frame(vec![9; 240]));
        assert_eq!(jb.last_timestamp(), Some(240));
    }

    #[test]
    fn overfull_buffer_sheds_one_frame_per_tick_down_to_high_water() {
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
        for tick in 0..30_000u32 {
            push(&mut jb, seq);
            seq = seq.wrapping_add(1);
            if tick % 100 == 99 {
                push(&mut jb, seq);
                seq = seq.wrapping_add(1);
            }
            let _ = jb.pop();
            assert!(jb.buffered() <= 11);
        }
        assert_eq!(jb.stats().lost, 0);
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
                        if let Playout::Frame(f) = jb.pop() {
                            let s = u16::from_be_bytes([f[0], f[1]]);
                            if let Some(prev) = last {
                                let d = s.wrapping_sub(prev);
                                // Increasing, unless a resync happened.
                                prop_assert!(d != 0);
                            }
                            last = Some(s);
                        }
                    } else {
                        // Mostly near the stream, sometimes anywhere.
                        let s = if raw % 10 == 0 { raw } else { base.wrapping_add(jitter) };
                        base = base.wrapping_add(1);
                        jb.push(s, 0, &frame(s));
                    }
                    prop_assert!(jb.buffered() <= WINDOW as usize);
                }
            }
        }
    }
}
