//! The arrival path: what the far end says, handed on to the driver (the
//! recogniser, the VAD) the moment it arrives, in 20 ms frames.
//!
//! Owns: cutting the audio of new packets (10, 20, 30 ms or any size) into
//! 20 ms frames; never handing on more audio than the media clock allows (a
//! flood or a burst is cut to the media rate plus a little slack, counted);
//! standing in silence for time in which nothing arrived, so the consumer's
//! VAD hears time pass and can end an utterance. The jitter buffer decides
//! which packets are new (each sample is handed on once, in order).
//! Never: reads a clock (the driver passes its tick), touches sockets,
//! allocates, or waits.

use super::leg::FRAME_SAMPLES;

/// How far the frames handed on may run ahead of, or fall behind, the media
/// clock: 60 ms. Ahead: a burst after a stall still goes through. Behind: a
/// packet two ticks late is still on time, not a gap.
pub const SLACK_SAMPLES: u64 = 3 * FRAME_SAMPLES as u64;

const SILENCE: [i16; FRAME_SAMPLES] = [0; FRAME_SAMPLES];

/// Frames the received audio for the consumer at the media rate.
#[derive(Debug, Clone)]
pub struct ArrivalFramer {
    partial: [i16; FRAME_SAMPLES],
    filled: usize,
    first_tick: Option<u64>,
    /// Samples handed on (frames and the partial one, silence included).
    handed: u64,
    over_rate: u64,
}

impl Default for ArrivalFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl ArrivalFramer {
    /// Nothing received yet.
    pub fn new() -> Self {
        ArrivalFramer {
            partial: SILENCE,
            filled: 0,
            first_tick: None,
            handed: 0,
            over_rate: 0,
        }
    }

    /// Samples dropped because they came faster than the media clock.
    pub fn over_rate(&self) -> u64 {
        self.over_rate
    }

    /// The decoded audio of a new packet, arrived during `tick`. Each frame
    /// it completes goes to `emit(frame, true)`.
    pub fn received(
        &mut self,
        tick: u64,
        pcm: &[i16],
        mut emit: impl FnMut(&[i16; FRAME_SAMPLES], bool),
    ) {
        let first = *self.first_tick.get_or_insert(tick);
        let allowed = (tick.saturating_sub(first) + 1) * FRAME_SAMPLES as u64 + SLACK_SAMPLES;
        let room = allowed.saturating_sub(self.handed);
        let take = (pcm.len() as u64).min(room) as usize;
        self.over_rate += (pcm.len() - take) as u64;
        self.handed += take as u64;
        let mut rest = &pcm[..take];
        while !rest.is_empty() {
            let n = (FRAME_SAMPLES - self.filled).min(rest.len());
            self.partial[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
            if self.filled == FRAME_SAMPLES {
                emit(&self.partial, true);
                self.filled = 0;
            }
        }
    }

    /// Once per tick, after that tick's packets: silence for time in which
    /// nothing arrived (one frame per tick before the first packet; later,
    /// whatever the handed audio lags the clock by more than the slack).
    pub fn tick(&mut self, tick: u64, mut emit: impl FnMut(&[i16; FRAME_SAMPLES], bool)) {
        let Some(first) = self.first_tick else {
            emit(&SILENCE, false);
            return;
        };
        let expected = tick.saturating_sub(first) * FRAME_SAMPLES as u64;
        while self.handed + SLACK_SAMPLES < expected {
            if self.filled > 0 {
                // A packet that ended mid-frame: its frame is completed with
                // silence and handed on as received audio.
                self.partial[self.filled..].fill(0);
                self.handed += (FRAME_SAMPLES - self.filled) as u64;
                self.filled = 0;
                emit(&self.partial, true);
            } else {
                self.handed += FRAME_SAMPLES as u64;
                emit(&SILENCE, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_ms_packets_go_through_one_frame_each() {
        let mut f = ArrivalFramer::new();
        let mut out = Vec::new();
        for t in 0..10u64 {
            f.received(t, &[t as i16; 160], |fr, r| out.push((fr[0], r)));
            f.tick(t, |fr, r| out.push((fr[0], r)));
        }
        assert_eq!(out, (0..10).map(|t| (t as i16, true)).collect::<Vec<_>>());
        assert_eq!(f.over_rate(), 0);
    }

    #[test]
    fn ten_and_thirty_ms_packets_are_cut_into_20_ms_frames() {
        for size in [80usize, 240] {
            let mut f = ArrivalFramer::new();
            let mut frames = Vec::new();
            let mut sent = 0usize;
            for t in 0..60u64 {
                while sent < (t as usize + 1) * 160 {
                    let pcm: Vec<i16> = (sent..sent + size).map(|i| i as i16).collect();
                    f.received(t, &pcm, |fr, r| frames.push((*fr, r)));
                    sent += size;
                }
                f.tick(t, |fr, r| frames.push((*fr, r)));
            }
            let samples: Vec<i16> = frames
                .iter()
                .flat_map(|(fr, _)| fr.iter().copied())
                .collect();
            assert!(
                frames.iter().all(|(_, r)| *r),
                "ptime {}: all received",
                size / 8
            );
            assert_eq!(samples, (0..samples.len() as i16).collect::<Vec<_>>());
            assert!(
                samples.len() >= 59 * 160,
                "ptime {}: {}",
                size / 8,
                samples.len()
            );
        }
    }

    #[test]
    fn a_flood_is_cut_to_the_media_rate() {
        let mut f = ArrivalFramer::new();
        let mut frames = 0u64;
        // 5 s at 20,000 packets a second: 400 packets per 20 ms tick.
        for t in 0..250u64 {
            for _ in 0..400 {
                f.received(t, &[1; 160], |_, _| frames += 1);
            }
            f.tick(t, |_, _| frames += 1);
        }
        assert!(frames <= 250 + 3, "{frames} frames for 250 ticks");
        assert!(frames >= 250);
        assert_eq!(f.over_rate(), 250 * 400 * 160 - frames * 160);
    }

    #[test]
    fn silence_stands_in_for_time_without_packets() {
        let mut f = ArrivalFramer::new();
        let mut out = Vec::new();
        f.tick(0, |_, r| out.push(r));
        f.tick(1, |_, r| out.push(r));
        assert_eq!(
            out,
            vec![false, false],
            "before the first packet, a frame a tick"
        );
        out.clear();
        f.received(2, &[5; 160], |_, r| out.push(r));
        for t in 2..12 {
            f.tick(t, |_, r| out.push(r));
        }
        // One received frame, then silence once the slack is used up.
        assert!(out[0]);
        assert_eq!(out.len(), 1 + 5, "{out:?}");
        assert!(out[1..].iter().all(|r| !r));
    }

    #[test]
    fn a_half_frame_left_hanging_is_completed_with_silence() {
        let mut f = ArrivalFramer::new();
        let mut out = Vec::new();
        f.received(0, &[7; 80], |fr, r| out.push((fr[0], fr[159], r)));
        for t in 0..6 {
            f.tick(t, |fr, r| out.push((fr[0], fr[159], r)));
        }
        assert_eq!(out[0], (7, 0, true));
    }
}
