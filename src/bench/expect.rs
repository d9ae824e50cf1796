//! What each simulated debtor's script implies for its case, and the judge
//! that compares an attempt's outcome with it: the same routes the
//! single-call conversation tests assert, so a load run proves that nothing
//! changes when many conversations share the machine. Pure: outcome in,
//! verdict out.

use chrono::NaiveDate;

use crate::agent::AttemptOutcome;
use crate::outcome::{Disposition, RouteKind, SuppressScope};

/// The moment every benchmark call is placed: Monday 2026-11-23, 10:00 in
/// Los Angeles (inside every calling window). The expected pause dates
/// below follow from it.
pub const BENCH_NOW: &str = "2026-11-23T18:00:00Z";

/// What one persona's call must end in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    /// The simulated debtor (`src/sim/persona.rs`).
    pub persona: &'static str,
    /// The disposition of the call.
    pub disposition: Disposition,
    /// The route of the case (None: not judged; an unanswered call's retry
    /// is the scheduler's business).
    pub route: Option<RouteKind>,
    /// The suppression scope, for a suppress route.
    pub scope: Option<SuppressScope>,
    /// The day a pause ends, for a pause route.
    pub until: Option<(i32, u32, u32)>,
    /// Whether the recogniser is on the path (the debtor speaks its replies).
    pub spoken: bool,
}

const fn spoken(
    persona: &'static str,
    route: RouteKind,
    scope: Option<SuppressScope>,
    until: Option<(i32, u32, u32)>,
) -> Expected {
    Expected {
        persona,
        disposition: Disposition::Answered,
        route: Some(route),
        scope,
        until,
        spoken: true,
    }
}

/// The debtors of a load run: every one speaks its replies through the
/// recogniser and reaches a different route.
pub const LOAD_MIX: &[Expected] = &[
    // "I already paid that last week": pause 3 days to verify.
    spoken("paid", RouteKind::Pause, None, Some((2026, 11, 26))),
    // "I can pay on Friday", read back, confirmed: pause to the day after.
    spoken("promise", RouteKind::Pause, None, Some((2026, 11, 28))),
    // "I lost my job...": live transfer to a collector.
    spoken("hardship", RouteKind::Agent, None, None),
    // "Stop calling me.": the account is suppressed.
    spoken(
        "stop",
        RouteKind::Suppress,
        Some(SuppressScope::Account),
        None,
    ),
    // "Sorry, you have the wrong number.": the number is suppressed.
    spoken(
        "wrong_number",
        RouteKind::Suppress,
        Some(SuppressScope::Number),
        None,
    ),
];

/// The soak's calls: the load mix plus the short ways a call ends (busy,
/// a hang-up in the middle of a prompt), so their paths are soaked too.
pub const SOAK_MIX: &[Expected] = &[
    LOAD_MIX[0],
    LOAD_MIX[1],
    LOAD_MIX[2],
    LOAD_MIX[3],
    LOAD_MIX[4],
    Expected {
        persona: "busy",
        disposition: Disposition::Busy,
        route: None,
        scope: None,
        until: None,
        spoken: false,
    },
    Expected {
        persona: "hangup_mid_prompt",
        disposition: Disposition::Answered,
        route: Some(RouteKind::Retry),
        scope: None,
        until: None,
        spoken: false,
    },
];

impl Expected {
    /// `Ok` when the outcome is what the script implies; otherwise what
    /// differs, in words.
    pub fn judge(&self, out: &AttemptOutcome) -> Result<(), String> {
        if out.call.disposition != self.disposition {
            return Err(format!(
                "disposition {} (expected {})",
                out.call.disposition.as_str(),
                self.disposition.as_str()
            ));
        }
        let got = out.route.as_ref();
        match (self.route, got) {
            (None, _) => return Ok(()),
            (Some(k), None) => return Err(format!("no route (expected {})", k.as_str())),
            (Some(k), Some(r)) if r.kind != k => {
                return Err(format!(
                    "route {} ({}) (expected {}); heard {:?}",
                    r.kind.as_str(),
                    r.reason,
                    k.as_str(),
                    heard(out)
                ))
            }
            _ => {}
        }
        let Some(r) = got else { return Ok(()) };
        if self.scope.is_some() && r.scope != self.scope {
            return Err(format!(
                "suppress scope {:?} (expected {:?}); heard {:?}",
                r.scope,
                self.scope,
                heard(out)
            ));
        }
        if let Some((y, m, d)) = self.until {
            let want = NaiveDate::from_ymd_opt(y, m, d);
            let day = r.until.map(|u| u.date_naive());
            if day != want {
                return Err(format!(
                    "pause until {day:?} (expected {want:?}); heard {:?}",
                    heard(out)
                ));
            }
        }
        Ok(())
    }
}

/// What the recogniser heard, turn by turn (for a wrong route's report).
fn heard(out: &AttemptOutcome) -> Vec<String> {
    out.turns.iter().filter_map(|t| t.heard.clone()).collect()
}
