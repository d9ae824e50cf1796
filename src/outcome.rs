//! The words every layer shares about how an attempt ended: disposition,
//! who ended it, and the route a case takes (ARCHITECTURE.md "Words"). This
//! module owns those shapes and their one spelling (JSON, CSV, the store);
//! it imports nothing of the project and never decides anything about a
//! case, except what a route means for later calls (`Route::effect`), which
//! is said here once so no driver has to.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveTime};
use serde::{Deserialize, Serialize};

/// An enum of fixed words with one spelling: `as_str`, `parse`, `ALL`,
/// `Display` and serde all come from the one list, so no hand-written
/// `match` elsewhere can drift from the JSON.
macro_rules! spelled {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $spelling:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The one spelling, used in JSON, TOML, CSV and the store.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $spelling),+
                }
            }

            /// Parses the spelling (`None` for anything else).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($spelling => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::unknown_variant(&s, &[$($spelling),+])
                })
            }
        }
    };
}
pub(crate) use spelled;

spelled! {
    /// How one dial ended, one list everywhere (ARCHITECTURE.md "Words").
    pub enum Disposition {
        /// A person (or not yet known) answered.
        Answered = "answered",
        /// A machine answered.
        Voicemail = "voicemail",
        /// 486 or 600.
        Busy = "busy",
        /// Ring timeout and our CANCEL, 408, 480, 487.
        NoAnswer = "no-answer",
        /// 603 or 607.
        Rejected = "rejected",
        /// 404, 484, 604.
        NotFound = "not-found",
        /// Any other final status, no media, a transport error (see `FailReason`).
        Failed = "failed",
        /// We cancelled for another reason (shutdown, operator).
        Cancelled = "cancelled",
    }
}

spelled! {
    /// Why a `failed` attempt failed, or why a number is `not-found`
    /// (`dead-number`).
    pub enum FailReason {
        /// 401/403/407 we could not satisfy.
        Auth = "auth",
        /// 488/606 or an answer whose SDP we cannot use.
        NoCommonCodec = "no-common-codec",
        /// Answered but no media arrived.
        MediaTimeout = "media-timeout",
        /// Transport error, unreachable peer, transaction timeout.
        Network = "network",
        /// 5xx or another final status.
        Server = "server",
        /// With `not-found`: early media said the number does not work (a
        /// vacant-code or intercept SIT before the failure).
        DeadNumber = "dead-number",
        /// Early media played a no-circuit SIT (trunks busy in the network).
        NoCircuit = "no-circuit",
        /// Early media played a reorder SIT (equipment irregularity).
        Reorder = "reorder",
    }
}

spelled! {
    /// Who ended an answered call.
    pub enum EndedBy {
        /// duecall hung up (or cancelled).
        Us = "us",
        /// The far end hung up (or rejected).
        Them = "them",
        /// A timer ended it (ring timeout, hold time, media timeout).
        Timeout = "timeout",
    }
}

/// Maps a final SIP status of an INVITE to a disposition (and reason for
/// `failed`). A 487 after a CANCEL for another reason than the ring timeout
/// is re-labelled `cancelled` by the caller, which knows why it cancelled.
pub fn disposition_for_status(status: u16) -> (Disposition, Option<FailReason>) {
    match status {
        200..=299 => (Disposition::Answered, None),
        486 | 600 => (Disposition::Busy, None),
        408 | 480 | 487 => (Disposition::NoAnswer, None),
        603 | 607 => (Disposition::Rejected, None),
        404 | 484 | 604 => (Disposition::NotFound, None),
        401 | 403 | 407 => (Disposition::Failed, Some(FailReason::Auth)),
        488 | 606 => (Disposition::Failed, Some(FailReason::NoCommonCodec)),
        _ => (Disposition::Failed, Some(FailReason::Server)),
    }
}

spelled! {
    /// Where a case goes after a call (ARCHITECTURE.md "route").
    pub enum RouteKind {
        /// Live transfer to a collector, or an escalation carrying the transcript.
        Agent = "agent",
        /// Collection pauses until a date.
        Pause = "pause",
        /// No more robot calls (scope number or account).
        Suppress = "suppress",
        /// Call again, not before a moment.
        Retry = "retry",
        /// Nothing more to do for this case.
        Done = "done",
    }
}

spelled! {
    /// What a suppression covers.
    pub enum SuppressScope {
        /// This phone number, for this account.
        Number = "number",
        /// Every number of the account.
        Account = "account",
    }
}

/// The route reasons whose meaning outlives the call: the conversation
/// writes them and later layers act on them (the end of a pause settles
/// by its reason in `policy::settle`, a dispute holds in `policy::holds`).
/// One spelling, here, so that writer and readers cannot drift apart.
pub mod reason {
    /// A claimed payment: pause to verify it.
    pub const VERIFY_PAYMENT: &str = "verify-payment";
    /// A promise to pay on a date: pause until the day after.
    pub const PROMISE_TO_PAY: &str = "promise_to_pay";
    /// Cannot pay now: to a collector, then a pause.
    pub const HARDSHIP: &str = "hardship";
    /// The debt is disputed: to a collector, robot contact held until a
    /// person releases it.
    pub const DISPUTE: &str = "dispute";
    /// Early media said the number does not work (a SIT before the
    /// failure): the number is suppressed.
    pub const DEAD_NUMBER: &str = "dead-number";
}

/// Standing hours a debtor asked for on a call ("call me after six": not
/// before 18:00; "only before noon": not after 12:00; "between six and
/// eight": both). They stand for every later call until the debtor says
/// otherwise, unlike a one-off callback moment. Local wall-clock times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskedHours {
    /// No calls before this local time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hhmm")]
    pub not_before: Option<NaiveTime>,
    /// No calls at or after this local time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hhmm")]
    pub not_after: Option<NaiveTime>,
}

impl AskedHours {
    /// True when neither bound is set (nothing asked).
    pub fn is_empty(&self) -> bool {
        self.not_before.is_none() && self.not_after.is_none()
    }
}

impl fmt::Display for AskedHours {
    /// `18:00-24:00`, `00:00-12:00`, `18:00-20:00`: the range the calls must fall in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self
            .not_before
            .map(hhmm_time)
            .unwrap_or_else(|| "00:00".into());
        let a = self
            .not_after
            .map(hhmm_time)
            .unwrap_or_else(|| "24:00".into());
        write!(f, "{b}-{a}")
    }
}

impl std::str::FromStr for AskedHours {
    type Err = String;

    /// Reads what `Display` writes: `18:00-24:00` (`00:00` and `24:00` are
    /// no bound). The error names the text.
    fn from_str(s: &str) -> Result<AskedHours, String> {
        let (b, a) = s
            .split_once('-')
            .ok_or_else(|| format!("asked hours '{s}' are not HH:MM-HH:MM"))?;
        let not_before = match b.trim() {
            "00:00" => None,
            b => Some(parse_hhmm(b)?),
        };
        let not_after = match a.trim() {
            "24:00" => None,
            a => Some(parse_hhmm(a)?),
        };
        Ok(AskedHours {
            not_before,
            not_after,
        })
    }
}

fn hhmm_time(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// Reads a stored `HH:MM` (the spelling `AskedHours` writes). The error
/// names the text.
pub fn parse_hhmm(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| format!("'{s}' is not HH:MM"))
}

/// Serde for `Option<NaiveTime>` as `"HH:MM"`.
mod opt_hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<NaiveTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(&t.format("%H:%M")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::parse_hhmm(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// A route with its reason and parameters, as written to the outcome JSON.
/// Build it with the constructors (`Route::suppress` cannot be built without
/// a scope); read what it means for later calls with `effect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The kind of route.
    pub kind: RouteKind,
    /// Why (e.g. `hardship`, `paid-unverified`, `stop_calling`).
    pub reason: String,
    /// For `pause` and `retry`: until / earliest (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<FixedOffset>>,
    /// For `suppress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<SuppressScope>,
    /// For `retry` after "call me after six": the standing local hours the
    /// debtor asked for, honoured on every later call (the gate's
    /// `asked_hours` rule), not only this retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<AskedHours>,
    /// A second route that also applies (hardship: agent, then pause 30 days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<Box<Route>>,
}

/// What one route step means for the calls that follow, decided here once
/// (the store writes it, the scheduler follows it; neither interprets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEffect {
    /// A person takes the case (live or through an escalation); robot calls
    /// for this case end.
    Agent,
    /// No robot calls until this moment; `None`: until a person lifts it.
    Pause(Option<DateTime<FixedOffset>>),
    /// No more robot calls to the number dialled, or to the whole account.
    Suppress(SuppressScope),
    /// Call again, not before this moment (`None`: the usual retry delay).
    Retry(Option<DateTime<FixedOffset>>),
    /// Nothing more to do.
    Done,
}

impl Route {
    fn bare(kind: RouteKind, reason: &str) -> Route {
        Route {
            kind,
            reason: reason.to_string(),
            until: None,
            scope: None,
            hours: None,
            follow_up: None,
        }
    }

    /// To a collector.
    pub fn agent(reason: &str) -> Route {
        Route::bare(RouteKind::Agent, reason)
    }

    /// Pause collection until `until`.
    pub fn pause(reason: &str, until: DateTime<FixedOffset>) -> Route {
        Route {
            until: Some(until),
            ..Route::bare(RouteKind::Pause, reason)
        }
    }

    /// No more robot calls within `scope`.
    pub fn suppress(reason: &str, scope: SuppressScope) -> Route {
        Route {
            scope: Some(scope),
            ..Route::bare(RouteKind::Suppress, reason)
        }
    }

    /// Call again, not before `at`.
    pub fn retry(reason: &str, at: DateTime<FixedOffset>) -> Route {
        Route {
            until: Some(at),
            ..Route::bare(RouteKind::Retry, reason)
        }
    }

    /// This route, carrying the standing hours the debtor asked for.
    pub fn with_hours(mut self, hours: Option<AskedHours>) -> Route {
        self.hours = hours.filter(|h| !h.is_empty());
        self
    }

    /// Nothing more to do.
    pub fn done(reason: &str) -> Route {
        Route::bare(RouteKind::Done, reason)
    }

    /// This route, then `next` as well.
    pub fn then(mut self, next: Route) -> Route {
        self.follow_up = Some(Box::new(next));
        self
    }

    /// What this step means for later calls. A `suppress` read from outside
    /// without a scope (an old outcome JSON, a hand-edited row) covers the
    /// whole account: the wider reading, never the narrower one.
    pub fn effect(&self) -> RouteEffect {
        match self.kind {
            RouteKind::Agent => RouteEffect::Agent,
            RouteKind::Pause => RouteEffect::Pause(self.until),
            RouteKind::Suppress => {
                RouteEffect::Suppress(self.scope.unwrap_or(SuppressScope::Account))
            }
            RouteKind::Retry => RouteEffect::Retry(self.until),
            RouteKind::Done => RouteEffect::Done,
        }
    }

    /// This step and its follow-ups, in order.
    pub fn steps(&self) -> impl Iterator<Item = &Route> {
        std::iter::successors(Some(self), |r| r.follow_up.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_map_to_the_documented_dispositions() {
        assert_eq!(disposition_for_status(486).0, Disposition::Busy);
        assert_eq!(disposition_for_status(600).0, Disposition::Busy);
        assert_eq!(disposition_for_status(480).0, Disposition::NoAnswer);
        assert_eq!(disposition_for_status(487).0, Disposition::NoAnswer);
        assert_eq!(disposition_for_status(603).0, Disposition::Rejected);
        assert_eq!(disposition_for_status(404).0, Disposition::NotFound);
        assert_eq!(disposition_for_status(604).0, Disposition::NotFound);
        assert_eq!(
            disposition_for_status(503),
            (Disposition::Failed, Some(FailReason::Server))
        );
        assert_eq!(
            disposition_for_status(407),
            (Disposition::Failed, Some(FailReason::Auth))
        );
        assert_eq!(
            disposition_for_status(488),
            (Disposition::Failed, Some(FailReason::NoCommonCodec))
        );
    }

    #[test]
    fn asked_hours_are_spelled_hh_mm_both_in_json_and_in_text() {
        let h = AskedHours {
            not_before: NaiveTime::from_hms_opt(18, 0, 0),
            not_after: None,
        };
        let route = Route::retry(
            "callback_later",
            DateTime::parse_from_rfc3339("2026-11-23T18:00:00-08:00").unwrap(),
        )
        .with_hours(Some(h));
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["hours"], serde_json::json!({"not_before": "18:00"}));
        let back: Route = serde_json::from_value(json).unwrap();
        assert_eq!(back.hours, Some(h));
        assert_eq!(h.to_string(), "18:00-24:00");
        assert_eq!("18:00-24:00".parse::<AskedHours>(), Ok(h));
        assert_eq!(
            "09:00-11:30".parse::<AskedHours>().map(|h| h.to_string()),
            Ok("09:00-11:30".into())
        );
        assert!("9-11".parse::<AskedHours>().is_err());
        assert!(serde_json::from_str::<AskedHours>(r#"{"not_before":"25:00"}"#).is_err());
        // empty hours are not carried
        assert_eq!(
            Route::done("x")
                .with_hours(Some(AskedHours::default()))
                .hours,
            None
        );
    }

    #[test]
    fn disposition_spelling_round_trips() {
        for &d in Disposition::ALL {
            assert_eq!(Disposition::parse(d.as_str()), Some(d));
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!("\"{}\"", d.as_str())
            );
        }
    }

    #[test]
    fn spellings_are_the_documented_words() {
        let words: Vec<&str> = Disposition::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(
            words,
            [
                "answered",
                "voicemail",
                "busy",
                "no-answer",
                "rejected",
                "not-found",
                "failed",
                "cancelled"
            ]
        );
        assert_eq!(FailReason::NoCommonCodec.as_str(), "no-common-codec");
        assert_eq!(
            serde_json::to_string(&FailReason::MediaTimeout).unwrap(),
            "\"media-timeout\""
        );
        assert_eq!(RouteKind::parse("suppress"), Some(RouteKind::Suppress));
        assert_eq!(SuppressScope::Account.to_string(), "account");
        let e = serde_json::from_str::<RouteKind>("\"transfer\"").unwrap_err();
        assert!(e.to_string().contains("transfer"), "{e}");
    }

    #[test]
    fn a_route_reads_back_from_its_json_and_says_what_it_means() {
        let until = DateTime::parse_from_rfc3339("2026-12-23T00:00:00-08:00").unwrap();
        let r = Route::agent("hardship").then(Route::pause("hardship", until));
        let back: Route = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let effects: Vec<RouteEffect> = back.steps().map(Route::effect).collect();
        assert_eq!(
            effects,
            [RouteEffect::Agent, RouteEffect::Pause(Some(until))]
        );
        let stop = Route::suppress("stop_calling", SuppressScope::Number);
        assert_eq!(stop.effect(), RouteEffect::Suppress(SuppressScope::Number));
        // A suppression read from outside without its scope covers the account.
        let old: Route =
            serde_json::from_str(r#"{"kind":"suppress","reason":"stop_calling"}"#).unwrap();
        assert_eq!(old.effect(), RouteEffect::Suppress(SuppressScope::Account));
    }
}
