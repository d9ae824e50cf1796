//! The fixed set of intents (ARCHITECTURE.md "Words") and their priority.

use crate::outcome::spelled;

spelled! {
    /// What a reply means. The set is fixed; the lexicon that finds them lives in
    /// `prompts/<lang>.toml`. Declared in priority order: when a reply matches
    /// several, the first wins (`Unknown` last).
    #[derive(PartialOrd, Ord)]
    pub enum IntentKind {
        /// The callee is not the debtor and does not know them.
        WrongNumber = "wrong_number",
        /// Asks for no more calls.
        StopCalling = "stop_calling",
        /// Disputes the debt or the amount.
        Dispute = "dispute",
        /// Asks for a person.
        RequestAgent = "request_agent",
        /// Cannot pay: job loss, illness, disaster.
        Hardship = "hardship",
        /// Says it is paid.
        AlreadyPaid = "already_paid",
        /// Will pay (slot: date).
        PromiseToPay = "promise_to_pay",
        /// Call me later (slot: time).
        CallbackLater = "callback_later",
        /// Someone else answered; the debtor is not there.
        NotAvailable = "not_available",
        /// Asks who is calling.
        WhoIsCalling = "who_is_calling",
        /// "No, that's not me."
        IdentityDenied = "identity_denied",
        /// "Yes, speaking."
        IdentityConfirmed = "identity_confirmed",
        /// Nothing recognised with enough confidence.
        Unknown = "unknown",
    }
}

impl IntentKind {
    /// Every intent, in priority order: when a reply matches several, the
    /// first in this list wins (`Unknown` last).
    pub const PRIORITY: [IntentKind; 13] = {
        let mut out = [IntentKind::Unknown; 13];
        let mut i = 0;
        while i < out.len() {
            out[i] = IntentKind::ALL[i];
            i += 1;
        }
        out
    };

    /// Rank in the priority order (0 wins).
    pub fn rank(self) -> usize {
        self as usize
    }

    /// Replies about the debt itself, which only the confirmed debtor may
    /// discuss: paid, will pay, cannot pay, disputes it.
    pub fn is_about_the_debt(self) -> bool {
        matches!(
            self,
            IntentKind::AlreadyPaid
                | IntentKind::PromiseToPay
                | IntentKind::Hardship
                | IntentKind::Dispute
        )
    }
}
