//! Holds: robot contact stopped on an account because of what the person
//! said, until a person lets it go. A `dispute` (FDCPA 809(b): collection
//! stops until the debt is verified) holds until a person releases it; a
//! request for a person (`request_agent`, and every other route to a
//! collector) holds until its escalation is closed or `[policy]
//! agent_hold_days` have passed. Decides what a route means for holds and
//! when a hold ends; never reads the store or a clock.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::outcome::{reason, Route, RouteEffect};

/// Why robot contact is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// The person disputed the debt: no robot contact until a person
    /// releases the hold (after verification).
    Dispute,
    /// The case went to a collector: no robot contact until the escalation
    /// is closed or `agent_hold_days` pass.
    Agent,
}

impl HoldKind {
    /// The spelling in the store and the audit.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Dispute => "dispute",
            HoldKind::Agent => "agent",
        }
    }

    /// Reads the spelling back.
    pub fn parse(s: &str) -> Option<HoldKind> {
        match s {
            "dispute" => Some(HoldKind::Dispute),
            "agent" => Some(HoldKind::Agent),
            _ => None,
        }
    }

    /// The hold one route step leaves: every route to a collector holds
    /// robot contact; a dispute until a person releases it.
    pub fn for_route(step: &Route) -> Option<HoldKind> {
        match step.effect() {
            RouteEffect::Agent if step.reason == reason::DISPUTE => Some(HoldKind::Dispute),
            RouteEffect::Agent => Some(HoldKind::Agent),
            _ => None,
        }
    }
}

/// A hold in force on an account (released holds are not given to the gate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// Dispute or agent.
    pub kind: HoldKind,
    /// The route's reason (`dispute`, `request_agent`, `hardship`, ...).
    pub reason: String,
    /// When it began (the call that raised it ended).
    pub since: DateTime<Utc>,
}

impl Hold {
    /// When the hold ends by itself: never for a dispute; `agent_hold_days`
    /// after it began for an agent hold.
    pub fn ends_at(&self, agent_hold_days: u32) -> Option<DateTime<Utc>> {
        match self.kind {
            HoldKind::Dispute => None,
            HoldKind::Agent => Some(self.since + Duration::days(i64::from(agent_hold_days))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dispute_holds_for_good_and_a_route_to_a_person_for_agent_hold_days() {
        assert_eq!(
            HoldKind::for_route(&Route::agent("dispute")),
            Some(HoldKind::Dispute)
        );
        assert_eq!(
            HoldKind::for_route(&Route::agent("request_agent")),
            Some(HoldKind::Agent)
        );
        assert_eq!(HoldKind::for_route(&Route::done("paid")), None);
        let since = DateTime::parse_from_rfc3339("2026-11-20T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let d = Hold {
            kind: HoldKind::Dispute,
            reason: "dispute".into(),
            since,
        };
        assert_eq!(d.ends_at(7), None);
        let a = Hold {
            kind: HoldKind::Agent,
            ..d
        };
        assert_eq!(a.ends_at(7), Some(since + Duration::days(7)));
        for k in [HoldKind::Dispute, HoldKind::Agent] {
            assert_eq!(HoldKind::parse(k.as_str()), Some(k));
        }
    }
}
