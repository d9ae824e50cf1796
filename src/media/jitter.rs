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
        if payload.is_empty() {
            self.stats.received += 1;
            self.stats.rejected += 1;
            return Arrival::Rejected;
        }
        self.push_any(ssrc, sequence, timestamp, payload)
    }

    /// Hands in a packet of the stream that carries no audio (comfort
    /// noise, RFC 3389): it takes its place in the sequence, so its turn is
    /// neither a loss nor a gap, and plays as nothing.
    pub fn push_silent(&mut self, ssrc: u32, sequence: u16, timestamp: u32) -> Arrival {
        self.push_any(ssrc, sequence, timestamp, &[])
    }

    fn push_any(&mut self, ssrc: u32, sequence: u16, timestamp: u32, payload: &[u8]) -> Arrival {
        self.stats.received += 1;
        if payload.len() > MAX_PAYLOAD {
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
                // An empty (comfort-noise) packet plays as nothing.
                got |= n > 0;
                if self.cursor == slot.data.len() {
                    slot.full = false;
                    self.count -= 1;
                    if !slot.data.is_empty() {
                        self.last_len = slot.data.len();
                    }
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
#[path = "jitter_tests.rs"]
mod tests;
