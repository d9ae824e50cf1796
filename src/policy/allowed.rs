//! The one way to a reminder call: an `AllowedDial`, which only
//! [`authorise`] makes, from an `allow` decision, and only after the
//! decision has been stored (the attempt counts from then on). Placing a
//! reminder call takes one (`agent::CallOptions::dial`), so no path in the
//! code reaches the debt conversation without the gate's allow on record.
//!
//! Owns that construction; it never decides (the policy's `decide` does)
//! and never writes (the caller's `store` closure does).

use serde::Serialize;

use super::PolicyDecision;

/// A dial the gate allowed, its decision already stored. Cannot be built
/// outside this module; it is consumed by the call it allows.
#[derive(Debug, Clone, Serialize)]
pub struct AllowedDial {
    decision: PolicyDecision,
    number: String,
    attempt_id: i64,
}

impl AllowedDial {
    /// The decision that allowed the dial (stored with the outcome).
    pub fn decision(&self) -> &PolicyDecision {
        &self.decision
    }

    /// The number the gate allowed (E.164).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The stored attempt this dial is.
    pub fn attempt_id(&self) -> i64 {
        self.attempt_id
    }
}

/// Why no `AllowedDial` was made.
#[derive(Debug)]
pub enum Refused<E> {
    /// The gate denied the dial (or allowed no number): the decision says why.
    Denied(Box<PolicyDecision>),
    /// The decision could not be stored: no dial without it on record.
    NotStored(E),
}

/// Makes the `AllowedDial` for an `allow` decision: first `store` records
/// the decision (for the number it allows) and returns the attempt id, then
/// the dial exists. A deny, or an allow naming no number, is refused and
/// nothing is stored.
pub fn authorise<E>(
    decision: PolicyDecision,
    store: impl FnOnce(&PolicyDecision, &str) -> Result<i64, E>,
) -> Result<AllowedDial, Refused<E>> {
    let number = match (&decision.number, decision.allowed()) {
        (Some(n), true) => n.clone(),
        _ => return Err(Refused::Denied(Box::new(decision))),
    };
    let attempt_id = store(&decision, &number).map_err(Refused::NotStored)?;
    Ok(AllowedDial {
        decision,
        number,
        attempt_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Decision;

    fn decision(allow: bool) -> PolicyDecision {
        PolicyDecision {
            account_id: "A1".into(),
            decision: if allow {
                Decision::Allow
            } else {
                Decision::Deny
            },
            number: Some("+14155550100".into()),
            jurisdiction: "us".into(),
            zones: vec![],
            at: chrono::DateTime::UNIX_EPOCH,
            rules: vec![],
            next_allowed_at: None,
            human_queue: false,
        }
    }

    #[test]
    fn an_allow_becomes_a_dial_only_once_stored_and_a_deny_never() {
        let mut stored = Vec::new();
        let d = authorise(decision(true), |d, n| {
            stored.push((d.account_id.clone(), n.to_string()));
            Ok::<_, ()>(7)
        })
        .expect("allowed and stored");
        assert_eq!((d.attempt_id(), d.number()), (7, "+14155550100"));
        assert_eq!(stored.len(), 1);
        let denied = authorise(decision(false), |_, _| -> Result<i64, ()> {
            panic!("a deny is never stored as an attempt")
        });
        assert!(matches!(denied, Err(Refused::Denied(_))));
        let unstored = authorise(decision(true), |_, _| Err("database locked"));
        assert!(matches!(
            unstored,
            Err(Refused::NotStored("database locked"))
        ));
    }
}
