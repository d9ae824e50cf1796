//! DTMF as RFC 4733 telephone-events: the 4-byte payload, turning a received
//! event stream into digits (each reported exactly once), and the packet
//! sequence for sending one digit.
//!
//! Owns: the event payload format, the digit <-> event code table, and the
//! de-duplication rules (repeated end packets, lost end packets).
//! Never: looks at RTP payload types (sipp uses 96, baresip 101: the driver
//! filters by the negotiated type), touches sockets or clocks, or panics on a
//! malformed payload.

use thiserror::Error;

/// Length of one telephone-event payload.
pub const EVENT_LEN: usize = 4;

/// Duration (in 8 kHz timestamp units) an event must have lasted to be
/// reported when its end packets were all lost: 40 ms.
pub const MIN_UNENDED_DURATION: u16 = 320;

/// How many times the end packet is sent (RFC 4733 2.5.1.4 recommends 3).
pub const END_REPEATS: usize = 3;

/// Timestamp units per 20 ms packet at 8 kHz.
const TICK_DURATION: u16 = 160;

/// Why a payload is not a telephone-event.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rfc4733Error {
    /// Not exactly 4 bytes (the packet's padding has already been stripped
    /// by the RTP parser; RFC 2198 redundancy is not supported).
    #[error("telephone-event payload must be 4 bytes, got {len}")]
    BadLength {
        /// Bytes in the payload.
        len: usize,
    },
}

/// One telephone-event payload (RFC 4733 2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DtmfEventPayload {
    /// Event code: 0-9 digits, 10 `*`, 11 `#`, 12-15 A-D, 16 flash.
    pub event: u8,
    /// E bit: this is (a repeat of) the last packet of the event.
    pub end: bool,
    /// Power level in -dBm0, 0..=63.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl DtmfEventPayload {
    /// The 4 wire bytes of this payload (volume is clamped to 6 bits).
    pub fn to_bytes(&self) -> [u8; EVENT_LEN] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// Parses a telephone-event payload.
pub fn parse_event(payload: &[u8]) -> Result<DtmfEventPayload, Rfc4733Error> {
    let b: &[u8; EVENT_LEN] = payload
        .try_into()
        .map_err(|_| Rfc4733Error::BadLength { len: payload.len() })?;
    Ok(DtmfEventPayload {
        event: b[0],
        end: b[1] & 0x80 != 0,
        volume: b[1] & 0x3F,
        duration: u16::from_be_bytes([b[2], b[3]]),
    })
}

/// The DTMF key for an event code (0-9, `*`, `#`, A-D), or None for other
/// events (flash, tones).
pub fn digit_for_event(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + (event - 12))),
        _ => None,
    }
}

/// The event code for a DTMF key (A-D in either case).
pub fn event_for_digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        _ => None,
    }
}

/// Digits per second a receiver passes on at most, sustained: a person
/// presses at most about ten keys a second (ITU-T Q.24: 40 ms tone and 40 ms
/// pause at the very least).
pub const MAX_DIGITS_PER_SECOND: u64 = 20;

/// Digits that may come back to back before the rate limit applies (a
/// burst of end packets released together by the network).
pub const DIGIT_BURST: u64 = 4;

/// The event being received (one SSRC and RTP timestamp).
#[derive(Clone, Copy, Debug)]
struct Current {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    max_duration: u16,
    ended: bool,
    reported: bool,
}

impl Current {
    /// Whether this event, now superseded or at the end of the call, should
    /// still be reported.
    fn owed(&self) -> Option<char> {
        if self.reported || !(self.ended || self.max_duration >= MIN_UNENDED_DURATION) {
            return None;
        }
        digit_for_event(self.event)
    }
}

/// Turns received telephone-event payloads into digits, each exactly once,
/// and never faster than a person can press keys.
///
/// An event is one (SSRC, RTP timestamp). A digit is reported on the first
/// end packet of its event (the two repeats are ignored). If all end packets
/// are lost, it is reported when the next event starts (or at
/// [`DtmfReceiver::finish`]) provided it lasted at least 40 ms. Packets of an
/// event already superseded (reordered stragglers) are ignored. A key-down
/// packet (duration under 40 ms) at the timestamp of an event that has
/// already ended starts a new event: sipp stamps the first digit of every
/// `play_dtmf` action with the same timestamp.
///
/// A sender that makes up a new event in every packet (end packets with new
/// timestamps) gets at most [`MAX_DIGITS_PER_SECOND`] digits through, after
/// a burst of [`DIGIT_BURST`], on the caller's clock: the digit list and the
/// transcript grow with the length of the call, not with the packet rate.
#[derive(Clone, Debug, Default)]
pub struct DtmfReceiver {
    current: Option<Current>,
    /// (SSRC, timestamp) of recent finished events, to ignore their stragglers.
    recent: [Option<(u32, u32)>; 4],
    recent_next: usize,
    /// Rate limit (GCRA): the earliest moment, in ms, the limiter is back
    /// to an empty bucket.
    tat_ms: u64,
    ignored: u64,
}

impl DtmfReceiver {
    /// A receiver with no event in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Digits the rate limit held back so far.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Handles one telephone-event packet (its SSRC, RTP timestamp and
    /// payload) received at `now_ms` on the caller's clock. Returns a digit
    /// when one is complete. Malformed payloads are ignored.
    #[must_use]
    pub fn on_packet(
        &mut self,
        now_ms: u64,
        ssrc: u32,
        rtp_timestamp: u32,
        payload: &[u8],
    ) -> Option<char> {
        let d = self.event_packet(ssrc, rtp_timestamp, payload)?;
        self.admit(now_ms, d)
    }

    fn admit(&mut self, now_ms: u64, d: char) -> Option<char> {
        const SPACING_MS: u64 = 1000 / MAX_DIGITS_PER_SECOND;
        if self.tat_ms > now_ms + (DIGIT_BURST - 1) * SPACING_MS {
            self.ignored += 1;
            return None;
        }
        self.tat_ms = self.tat_ms.max(now_ms) + SPACING_MS;
        Some(d)
    }

    fn event_packet(&mut self, ssrc: u32, rtp_timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = parse_event(payload).ok()?;
        if let Some(cur) = &mut self.current {
            let same = cur.ssrc == ssrc && cur.timestamp == rtp_timestamp;
            // sipp starts every play_dtmf action at the same RTP timestamp:
            // a fresh key-down (short duration) after the end is a new event.
            let restarted = same
                && cur.ended
                && !ev.end
                && ev.duration < MIN_UNENDED_DURATION
                && (ev.event != cur.event || ev.duration < cur.max_duration);
            if same && !restarted {
                cur.max_duration = cur.max_duration.max(ev.duration);
                if ev.end && !cur.reported {
                    cur.ended = true;
                    cur.reported = true;
                    return digit_for_event(cur.event);
                }
                return None;
            }
        }
        let key = (ssrc, rtp_timestamp);
        let restarted = self.current.is_some_and(|c| (c.ssrc, c.timestamp) == key);
        if !restarted && self.recent.contains(&Some(key)) {
            return None;
        }
        // A new event: settle the previous one first.
        let owed = self.retire_current();
        let mut new = Current {
            ssrc,
            timestamp: rtp_timestamp,
            event: ev.event,
            max_duration: ev.duration,
            ended: ev.end,
            reported: false,
        };
        let out = match owed {
            // Only one digit can be returned: the new event's repeats (or the
            // next event, or finish) report it.
            Some(d) => Some(d),
            None if ev.end => {
                new.reported = true;
                digit_for_event(ev.event)
            }
            None => None,
        };
        self.current = Some(new);
        out
    }

    /// End of the stream at `now_ms`: a digit still owed (its end packets
    /// all lost, or its first end packet arrived together with a pending
    /// report).
    #[must_use]
    pub fn finish(&mut self, now_ms: u64) -> Option<char> {
        let d = self.retire_current()?;
        self.admit(now_ms, d)
    }

    fn retire_current(&mut self) -> Option<char> {
        let cur = self.current.take()?;
        self.recent[self.recent_next] = Some((cur.ssrc, cur.timestamp));
        self.recent_next = (self.recent_next + 1) % self.recent.len();
        cur.owed()
    }
}

/// The packets that send one digit: one per 20 ms tick while the key is
/// "down" (duration growing by 160 each), then three identical end packets.
/// The caller stamps every packet with the same RTP timestamp (the event
/// start) through `RtpSender::event`, and sets the marker on the first.
#[derive(Clone, Debug)]
pub struct DtmfSender {
    event: u8,
    volume: u8,
    /// Non-end packets to send.
    ticks: u16,
    sent: u16,
    ends_sent: usize,
}

impl DtmfSender {
    /// A sender for `digit` (0-9, *, #, A-D) lasting about `duration_ms`
    /// (rounded up to 20 ms; at least one tick, at most 8 s so the duration
    /// fits 16 bits). `volume` is in -dBm0 (typically 10), clamped to 63.
    /// None if the character is not a DTMF key.
    pub fn new(digit: char, duration_ms: u32, volume: u8) -> Option<Self> {
        let event = event_for_digit(digit)?;
        let max_ticks = u32::from(u16::MAX / TICK_DURATION);
        let ticks = duration_ms.div_ceil(20).clamp(1, max_ticks);
        Some(DtmfSender {
            event,
            volume: volume.min(63),
            ticks: u16::try_from(ticks).unwrap_or(u16::MAX / TICK_DURATION),
            sent: 0,
            ends_sent: 0,
        })
    }

    /// The event code being sent.
    pub fn event(&self) -> u8 {
        self.event
    }

    /// The next packet: (4-byte payload, marker, is_end). None once the
    /// three end packets have been handed out. Call once per 20 ms tick.
    #[must_use]
    pub fn next_packet(&mut self) -> Option<([u8; EVENT_LEN], bool, bool)> {
        let (duration, end) = if self.sent < self.ticks {
            self.sent += 1;
            (self.sent * TICK_DURATION, false)
        } else if self.ends_sent < END_REPEATS {
            self.ends_sent += 1;
            (self.ticks * TICK_DURATION, true)
        } else {
            return None;
        };
        let marker = self.sent == 1 && !end;
        let p = DtmfEventPayload {
            event: self.event,
            end,
            volume: self.volume,
            duration,
        };
        Some((p.to_bytes(), marker, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pkt(event: u8, end: bool, duration: u16) -> [u8; 4] {
        DtmfEventPayload {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    /// A receiver fed the way a media session feeds it: one SSRC, packets
    /// 20 ms apart on its clock.
    struct Rx {
        rx: DtmfReceiver,
        now_ms: u64,
    }

    impl Rx {
        fn new() -> Self {
            Rx {
                rx: DtmfReceiver::new(),
                now_ms: 0,
            }
        }
        fn on_packet(&mut self, ts: u32, payload: &[u8]) -> Option<char> {
            self.now_ms += 20;
            self.rx.on_packet(self.now_ms, 7, ts, payload)
        }
        fn finish(&mut self) -> Option<char> {
            self.rx.finish(self.now_ms)
        }
    }

    /// Feeds a full event the way a sender does: growing durations, then
    /// three end packets.
    fn feed_event(rx: &mut Rx, ts: u32, event: u8, ticks: u16) -> Vec<char> {
        let mut out = Vec::new();
        for i in 1..=ticks {
            out.extend(rx.on_packet(ts, &pkt(event, false, i * 160)));
        }
        for _ in 0..3 {
            out.extend(rx.on_packet(ts, &pkt(event, true, ticks * 160)));
        }
        out
    }

    #[test]
    fn payload_fields_are_parsed() {
        let ev = parse_event(&[11, 0x80 | 10, 0x03, 0x20]).unwrap();
        assert_eq!(
            ev,
            DtmfEventPayload {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.to_bytes(), [11, 0x8A, 0x03, 0x20]);
        assert_eq!(
            parse_event(&[1, 2, 3]),
            Err(Rfc4733Error::BadLength { len: 3 })
        );
        assert_eq!(
            parse_event(&[0; 8]),
            Err(Rfc4733Error::BadLength { len: 8 })
        );
    }

    #[test]
    fn digits_and_event_codes_map_both_ways() {
        for (c, e) in [
            ('0', 0),
            ('9', 9),
            ('*', 10),
            ('#', 11),
            ('A', 12),
            ('D', 15),
        ] {
            assert_eq!(event_for_digit(c), Some(e));
            assert_eq!(digit_for_event(e), Some(c));
        }
        assert_eq!(event_for_digit('b'), Some(13));
        assert_eq!(event_for_digit('x'), None);
        assert_eq!(digit_for_event(16), None);
    }

    #[test]
    fn digit_is_reported_once_despite_three_end_packets() {
        let mut rx = Rx::new();
        assert_eq!(feed_event(&mut rx, 1000, 1, 5), vec!['1']);
        assert_eq!(feed_event(&mut rx, 3000, 2, 5), vec!['2']);
        assert_eq!(feed_event(&mut rx, 5000, 11, 5), vec!['#']);
        assert_eq!(rx.finish(), None);
    }

    #[test]
    fn same_digit_twice_is_reported_twice() {
        let mut rx = Rx::new();
        assert_eq!(feed_event(&mut rx, 1000, 5, 4), vec!['5']);
        assert_eq!(feed_event(&mut rx, 2000, 5, 4), vec!['5']);
    }

    #[test]
    fn event_with_all_end_packets_lost_is_reported_when_the_next_starts() {
        let mut rx = Rx::new();
        for i in 1..=4u16 {
            assert_eq!(rx.on_packet(100, &pkt(7, false, i * 160)), None);
        }
        // Next event starts: the lost-end '7' (80 ms) is reported now.
        assert_eq!(rx.on_packet(900, &pkt(8, false, 160)), Some('7'));
        assert_eq!(rx.on_packet(900, &pkt(8, true, 320)), Some('8'));
        assert_eq!(rx.on_packet(900, &pkt(8, true, 320)), None);
    }

    #[test]
    fn too_short_unended_event_is_not_reported() {
        let mut rx = Rx::new();
        assert_eq!(rx.on_packet(100, &pkt(3, false, 160)), None);
        assert_eq!(rx.on_packet(900, &pkt(4, false, 160)), None);
        assert_eq!(rx.finish(), None);
    }

    #[test]
    fn unended_event_is_reported_at_finish() {
        let mut rx = Rx::new();
        let _ = rx.on_packet(100, &pkt(12, false, 160));
        let _ = rx.on_packet(100, &pkt(12, false, 320));
        assert_eq!(rx.finish(), Some('A'));
        assert_eq!(rx.finish(), None);
    }

    #[test]
    fn end_of_new_event_arriving_with_an_owed_digit_is_reported_by_its_repeat() {
        let mut rx = Rx::new();
        let _ = rx.on_packet(100, &pkt(1, false, 320));
        // Only the end packets of '2' get through.
        assert_eq!(rx.on_packet(500, &pkt(2, true, 640)), Some('1'));
        assert_eq!(rx.on_packet(500, &pkt(2, true, 640)), Some('2'));
        assert_eq!(rx.on_packet(500, &pkt(2, true, 640)), None);
    }

    #[test]
    fn sender_reusing_a_timestamp_for_the_next_key_is_reported_again() {
        // Two sipp play_dtmf actions: both start at timestamp 24400, duration 0.
        let mut rx = Rx::new();
        let sipp_digit = |rx: &mut Rx, event: u8| -> Vec<char> {
            let mut out = Vec::new();
            for d in (0..200u16).step_by(20) {
                out.extend(rx.on_packet(24400, &pkt(event, false, d * 8)));
            }
            for _ in 0..3 {
                out.extend(rx.on_packet(24400, &pkt(event, true, 1600)));
            }
            out
        };
        assert_eq!(sipp_digit(&mut rx, 1), vec!['1']);
        assert_eq!(sipp_digit(&mut rx, 1), vec!['1']);
        assert_eq!(sipp_digit(&mut rx, 11), vec!['#']);
        assert_eq!(rx.finish(), None);
    }

    #[test]
    fn late_key_down_packet_after_the_end_is_not_a_phantom_digit() {
        let mut rx = Rx::new();
        let _ = rx.on_packet(100, &pkt(4, false, 160));
        let _ = rx.on_packet(100, &pkt(4, false, 320));
        assert_eq!(rx.on_packet(100, &pkt(4, true, 480)), Some('4'));
        // A reordered mid-event packet arrives after the end.
        assert_eq!(rx.on_packet(100, &pkt(4, false, 320)), None);
        assert_eq!(rx.on_packet(100, &pkt(4, true, 480)), None);
        assert_eq!(rx.on_packet(900, &pkt(5, false, 160)), None);
        assert_eq!(rx.finish(), None);
    }

    #[test]
    fn stragglers_of_a_finished_event_are_ignored() {
        let mut rx = Rx::new();
        assert_eq!(feed_event(&mut rx, 100, 1, 3), vec!['1']);
        let _ = rx.on_packet(900, &pkt(2, false, 160));
        assert_eq!(rx.on_packet(100, &pkt(1, true, 480)), None);
        assert_eq!(rx.on_packet(900, &pkt(2, true, 480)), Some('2'));
    }

    #[test]
    fn non_digit_events_are_never_reported() {
        let mut rx = Rx::new();
        assert!(feed_event(&mut rx, 100, 16, 5).is_empty());
        assert_eq!(rx.finish(), None);
    }

    #[test]
    fn sender_sends_growing_durations_then_three_ends() {
        let mut tx = DtmfSender::new('#', 100, 10).unwrap();
        let mut pkts = Vec::new();
        while let Some(p) = tx.next_packet() {
            pkts.push(p);
        }
        assert_eq!(pkts.len(), 5 + 3);
        let parsed: Vec<_> = pkts
            .iter()
            .map(|(b, _, _)| parse_event(b).unwrap())
            .collect();
        let durations: Vec<u16> = parsed.iter().map(|e| e.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800, 800]);
        assert!(parsed.iter().all(|e| e.event == 11 && e.volume == 10));
        let markers: Vec<bool> = pkts.iter().map(|p| p.1).collect();
        assert_eq!(
            markers,
            vec![true, false, false, false, false, false, false, false]
        );
        let ends: Vec<bool> = pkts.iter().map(|p| p.2).collect();
        assert_eq!(
            ends,
            vec![false, false, false, false, false, true, true, true]
        );
        assert!(pkts
            .iter()
            .all(|(b, _, e)| parse_event(b).unwrap().end == *e));
    }

    #[test]
    fn sender_output_is_received_as_the_same_digit_once() {
        let mut rx = Rx::new();
        let mut got = Vec::new();
        for (i, d) in "12#".chars().enumerate() {
            let mut tx = DtmfSender::new(d, 80, 10).unwrap();
            while let Some((b, _, _)) = tx.next_packet() {
                got.extend(rx.on_packet(1000 * i as u32, &b));
            }
        }
        assert_eq!(got, vec!['1', '2', '#']);
    }

    #[test]
    fn sender_rejects_non_keys_and_bounds_the_duration() {
        assert!(DtmfSender::new('x', 100, 10).is_none());
        let mut tx = DtmfSender::new('1', 60_000, 99).unwrap();
        let mut last = None;
        while let Some(p) = tx.next_packet() {
            last = Some(p);
        }
        let (b, _, end) = last.unwrap();
        let ev = parse_event(&b).unwrap();
        assert!(end);
        assert_eq!(ev.volume, 63);
        assert_eq!(ev.duration, 409 * 160);
        let mut short = DtmfSender::new('1', 0, 10).unwrap();
        assert_eq!(
            parse_event(&short.next_packet().unwrap().0)
                .unwrap()
                .duration,
            160
        );
    }

    #[test]
    fn end_packets_with_new_timestamps_give_at_most_the_human_rate() {
        // 5 s of a flood at 20,000 packets/s, every packet an "event" of its own.
        let mut rx = DtmfReceiver::new();
        let mut digits = 0u64;
        for i in 0..100_000u64 {
            let now_ms = i / 20;
            let ts = (i as u32).wrapping_mul(160);
            if rx
                .on_packet(now_ms, 1, ts, &pkt((i % 10) as u8, true, 160))
                .is_some()
            {
                digits += 1;
            }
        }
        assert!(
            digits <= DIGIT_BURST + 5 * MAX_DIGITS_PER_SECOND,
            "{digits} digits in 5 s"
        );
        assert!(
            digits >= 5 * MAX_DIGITS_PER_SECOND,
            "the limit still lets digits through"
        );
        assert_eq!(rx.ignored(), 100_000 - digits);
    }

    #[test]
    fn a_person_typing_fast_is_not_limited() {
        // Ten keys a second: 50 ms tone, 50 ms pause.
        let mut rx = Rx::new();
        let mut got = Vec::new();
        for i in 0..30u32 {
            got.extend(feed_event(&mut rx, 1000 + i * 800, (i % 10) as u8, 2));
            rx.now_ms += 10;
        }
        assert_eq!(got.len(), 30);
    }

    #[test]
    fn events_are_keyed_on_ssrc_and_timestamp() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.on_packet(0, 1, 500, &pkt(1, true, 320)), Some('1'));
        // Another source at the same timestamp is another event...
        assert_eq!(rx.on_packet(100, 2, 500, &pkt(2, true, 320)), Some('2'));
        // ...and a straggler of the first is still recognised as one.
        assert_eq!(rx.on_packet(200, 1, 500, &pkt(1, true, 320)), None);
    }

    proptest! {
        #[test]
        fn parse_event_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = parse_event(&buf);
            prop_assert_eq!(r.is_ok(), buf.len() == 4);
        }

        #[test]
        fn receiver_reports_at_most_one_digit_per_event(
            pkts in proptest::collection::vec((0u32..2, proptest::collection::vec(any::<u8>(), 0..6)), 0..100),
        ) {
            // Timestamps never go back: each distinct one is one event.
            let mut rx = Rx::new();
            let mut ts = 0u32;
            let mut reports = 0usize;
            let mut events = std::collections::HashSet::new();
            for (step, payload) in &pkts {
                ts += step;
                if rx.on_packet(ts, payload).is_some() { reports += 1; }
                if payload.len() == 4 { events.insert(ts); }
            }
            if rx.finish().is_some() { reports += 1; }
            prop_assert!(reports <= events.len());
        }
    }
}
