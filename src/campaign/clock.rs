//! The campaign's clock: the real one, or `--now` plus the real time
//! elapsed since the run started. The only place the campaign reads time.

use chrono::{DateTime, Duration, Utc};

/// The campaign's clock: the real one, or a fixed anchor plus the real time
/// elapsed since the run started (`--now`, for tests and replays).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Option<(DateTime<Utc>, tokio::time::Instant)>,
}

impl Clock {
    /// The real clock.
    pub fn real() -> Clock {
        Clock { anchor: None }
    }

    /// `at` now, moving on with real time.
    pub fn anchored(at: DateTime<Utc>) -> Clock {
        Clock {
            anchor: Some((at, tokio::time::Instant::now())),
        }
    }

    /// Whether this is a test clock (`--now`): such a run may dial only
    /// loopback targets.
    pub fn is_anchored(&self) -> bool {
        self.anchor.is_some()
    }

    /// The campaign's present moment.
    pub fn now(&self) -> DateTime<Utc> {
        match self.anchor {
            None => Utc::now(),
            Some((at, started)) => {
                at + Duration::from_std(started.elapsed()).unwrap_or_else(|_| Duration::zero())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::t0;
    use super::*;

    #[test]
    fn anchored_clock_starts_at_the_anchor_and_moves_forward() {
        let c = Clock::anchored(t0());
        let a = c.now();
        assert!(a >= t0() && a < t0() + Duration::seconds(5));
        assert!(c.now() >= a);
    }
}
