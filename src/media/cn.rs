//! Comfort noise (RFC 3389): what a peer's `CN` packet says, and the noise
//! that stands in for the silence it announces.
//!
//! Owns: reading the noise level of a CN payload (one byte, -dBov, then
//! optional spectral coefficients that duecall does not model) and making
//! white noise of that level.
//! Never: allocates, reads a clock, or panics on any payload.

/// Payloads longer than this are no CN packet (1 level byte + at most a
/// handful of reflection coefficients; RFC 3389 3 allows up to 255 in
/// theory, no telephony peer sends more than 12).
pub const MAX_CN_PAYLOAD: usize = 64;

/// Loudest level we play (in -dBov): a CN packet claiming louder is a peer
/// bug or an attack on whoever listens to the recording.
pub const LOUDEST_DBOV: u8 = 30;

/// The noise level a CN payload announces, in -dBov (0..=127); None for an
/// empty or oversized payload.
pub fn level_dbov(payload: &[u8]) -> Option<u8> {
    match payload.first() {
        Some(&b) if payload.len() <= MAX_CN_PAYLOAD => Some(b & 0x7F),
        _ => None,
    }
}

/// White noise at a signalled level, from a small xorshift generator (no
/// allocation, the same sequence for the same seed).
#[derive(Debug, Clone)]
pub struct ComfortNoise {
    state: u32,
    /// Peak amplitude of the uniform noise (0: silence).
    peak: i32,
}

impl ComfortNoise {
    /// Noise of `dbov` (-dBov, RFC 3389 3: 0 is full scale, 127 silence),
    /// never louder than [`LOUDEST_DBOV`].
    pub fn new(dbov: u8, seed: u32) -> Self {
        let dbov = dbov.max(LOUDEST_DBOV);
        // RMS of level L: full scale * 10^(-L/20); a uniform noise of peak
        // a has an RMS of a / sqrt(3).
        let rms = 32767.0 * 10f64.powf(-f64::from(dbov) / 20.0);
        let peak = (rms * 3f64.sqrt()).round() as i32;
        ComfortNoise {
            state: seed | 1,
            peak: if dbov >= 127 { 0 } else { peak },
        }
    }

    fn next(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        x
    }

    /// Fills `out` with noise.
    pub fn fill(&mut self, out: &mut [i16]) {
        if self.peak == 0 {
            out.fill(0);
            return;
        }
        let span = (2 * self.peak + 1) as u32;
        for s in out.iter_mut() {
            *s = ((self.next() % span) as i32 - self.peak) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms_db(s: &[i16]) -> f64 {
        let mean = s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64;
        20.0 * (mean.sqrt() / 32767.0).log10()
    }

    #[test]
    fn the_level_byte_is_read_and_bad_payloads_are_not_cn() {
        assert_eq!(level_dbov(&[60]), Some(60));
        assert_eq!(
            level_dbov(&[0x80 | 60, 1, 2, 3]),
            Some(60),
            "reserved bit ignored"
        );
        assert_eq!(level_dbov(&[]), None);
        assert_eq!(level_dbov(&[40; MAX_CN_PAYLOAD + 1]), None);
    }

    #[test]
    fn noise_has_the_signalled_level() {
        for dbov in [30u8, 45, 60] {
            let mut n = ComfortNoise::new(dbov, 7);
            let mut buf = [0i16; 8000];
            n.fill(&mut buf);
            let db = rms_db(&buf);
            assert!(
                (db + f64::from(dbov)).abs() < 1.0,
                "-{dbov} dBov gave {db:.1}"
            );
        }
    }

    #[test]
    fn a_loud_claim_is_capped_and_127_is_silence() {
        let mut buf = [0i16; 1600];
        ComfortNoise::new(0, 1).fill(&mut buf);
        assert!(rms_db(&buf) < -f64::from(LOUDEST_DBOV) + 1.0);
        ComfortNoise::new(127, 1).fill(&mut buf);
        assert!(buf.iter().all(|&s| s == 0));
    }
}
