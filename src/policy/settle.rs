//! What the end of a pause means when the person said they paid or
//! promised to: the payments imported (`duecall payments`) either cover the
//! amount due (the case is closed: no more robot calls), or they do not (a
//! claimed payment goes to a collector as `paid-unverified`; a broken
//! promise becomes a retry, or goes to a collector as `promise-broken` when
//! `[policy] broken_promise = "escalate"`). Pure: the driver reads the
//! pause and the payments and writes what this says.

use rust_decimal::Decimal;
use serde::Serialize;

use super::config::{BrokenPromise, PolicyConfig};

/// The pause reasons the conversation gives a claimed payment and a
/// promise to pay (spelled once, in the core's words).
pub use crate::outcome::reason::{PROMISE_TO_PAY, VERIFY_PAYMENT};

/// How an ended pause settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "settlement")]
pub enum Settlement {
    /// The payments cover the amount due: the case is closed (the account
    /// is suppressed with reason `paid`).
    Paid,
    /// A collector takes it (an escalation with this reason, and a hold on
    /// robot calls while they do).
    Escalate {
        /// `paid-unverified` or `promise-broken`.
        reason: &'static str,
    },
    /// The robot calls again (the pause is simply over).
    Retry,
}

impl Settlement {
    /// The spelling kept with the pause.
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::Paid => "paid",
            Settlement::Escalate { reason } => reason,
            Settlement::Retry => "retry",
        }
    }
}

/// How a pause with `reason` that has ended settles, given the amount due
/// and what has been paid towards it; `None` for pauses that settle
/// nothing (hardship: the robot simply may call again).
pub fn settle(reason: &str, due: Decimal, paid: Decimal, cfg: &PolicyConfig) -> Option<Settlement> {
    let covered = paid >= due;
    match reason {
        VERIFY_PAYMENT if covered => Some(Settlement::Paid),
        VERIFY_PAYMENT => Some(Settlement::Escalate {
            reason: "paid-unverified",
        }),
        PROMISE_TO_PAY if covered => Some(Settlement::Paid),
        PROMISE_TO_PAY => Some(match cfg.broken_promise {
            BrokenPromise::Retry => Settlement::Retry,
            BrokenPromise::Escalate => Settlement::Escalate {
                reason: "promise-broken",
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_payment_closes_when_covered_and_goes_to_a_person_when_not() {
        let cfg = PolicyConfig::default();
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        assert_eq!(
            settle(VERIFY_PAYMENT, d("125.50"), d("125.50"), &cfg),
            Some(Settlement::Paid)
        );
        assert_eq!(
            settle(VERIFY_PAYMENT, d("125.50"), d("125.49"), &cfg),
            Some(Settlement::Escalate {
                reason: "paid-unverified"
            })
        );
        assert_eq!(
            settle(PROMISE_TO_PAY, d("10"), d("0"), &cfg),
            Some(Settlement::Retry)
        );
        let escalate = PolicyConfig {
            broken_promise: BrokenPromise::Escalate,
            ..PolicyConfig::default()
        };
        assert_eq!(
            settle(PROMISE_TO_PAY, d("10"), d("3"), &escalate),
            Some(Settlement::Escalate {
                reason: "promise-broken"
            })
        );
        assert_eq!(
            settle(PROMISE_TO_PAY, d("10"), d("10.00"), &escalate),
            Some(Settlement::Paid)
        );
        assert_eq!(settle("hardship", d("10"), d("0"), &cfg), None);
    }
}
