//! Routing (pure): what a reply's intent means for the case, per
//! COLLECTIONS.md "What each reply leads to". Takes the intent, the account
//! and the moment of the call (the debtor's local time, explicit); returns a
//! `Route`. Never reads the clock, never checks the calling policy (the
//! campaign's gate decides whether a retry time is allowed).

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};

use crate::account::Account;
use crate::intent::{Intent, IntentKind};
use crate::outcome::{reason, Disposition, FailReason, Route, SuppressScope};

/// What to do with a case whose reply stayed unclear after the re-ask and the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownRoute {
    /// Escalate to a human with the transcript.
    Agent,
    /// Call again later.
    Retry,
}

/// `[dialogue.routing]`: the numbers behind each route (COLLECTIONS.md defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// already_paid: pause this many days to verify (3).
    pub verify_paid_days: i64,
    /// promise_to_pay: the furthest date a bot may accept, in days from today (14).
    pub max_promise_days: i64,
    /// hardship: the follow-up pause (30 days).
    pub hardship_pause_days: i64,
    /// not_available / no time given: retry after this many hours (3).
    pub retry_later_hours: i64,
    /// identity_denied: retry after this many hours (4); the gate moves it to an allowed slot.
    pub identity_denied_retry_hours: i64,
    /// voicemail: retry after this many days (1).
    pub voicemail_retry_days: i64,
    /// unknown / silence after the menu.
    pub unknown: UnknownRoute,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            verify_paid_days: 3,
            max_promise_days: 14,
            hardship_pause_days: 30,
            retry_later_hours: 3,
            identity_denied_retry_hours: 4,
            voicemail_retry_days: 1,
            unknown: UnknownRoute::Agent,
        }
    }
}

/// The call's situation when a route is chosen.
#[derive(Debug, Clone, Copy)]
pub struct RouteContext<'a> {
    /// The account called.
    pub account: &'a Account,
    /// The moment, in the debtor's local offset.
    pub now: DateTime<FixedOffset>,
    /// Was the right person confirmed? (A stop request from someone else
    /// covers only the number called.)
    pub identity_confirmed: bool,
}

/// Local midnight at the start of `date`, in the account's IANA zone when it
/// has a valid one (DST-aware), else in `now`'s offset.
pub fn local_midnight(date: NaiveDate, ctx: &RouteContext) -> DateTime<FixedOffset> {
    local_at(date.and_hms_opt(0, 0, 0).unwrap_or_default(), ctx)
}

/// A local wall-clock moment as a fixed-offset time (see `local_midnight`).
pub fn local_at(at: NaiveDateTime, ctx: &RouteContext) -> DateTime<FixedOffset> {
    if let Some(tz) = ctx
        .account
        .timezone
        .as_deref()
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
    {
        // A skipped local time (DST gap) falls forward an hour; an ambiguous one takes the first.
        let resolved = tz.from_local_datetime(&at).earliest().or_else(|| {
            tz.from_local_datetime(&(at + Duration::hours(1)))
                .earliest()
        });
        if let Some(t) = resolved {
            return t.fixed_offset();
        }
    }
    let off = *ctx.now.offset();
    off.from_local_datetime(&at).single().unwrap_or(ctx.now)
}

fn pause_until(date: NaiveDate, reason: &str, ctx: &RouteContext) -> Route {
    Route::pause(reason, local_midnight(date, ctx))
}

fn retry_at(at: DateTime<FixedOffset>, reason: &str) -> Route {
    Route::retry(reason, at)
}

/// The route for a reply's intent (COLLECTIONS.md table). `identity_confirmed`
/// and `who_is_calling` do not end a call; if a call ends on them (the caller
/// hung up) the case is retried.
pub fn route_for(intent: &Intent, ctx: &RouteContext, cfg: &RoutingConfig) -> Route {
    let today = ctx.now.date_naive();
    match intent.kind {
        IntentKind::AlreadyPaid => pause_until(
            today + Duration::days(cfg.verify_paid_days),
            reason::VERIFY_PAYMENT,
            ctx,
        ),
        IntentKind::PromiseToPay => match intent.slots.date {
            None => Route::agent("promise-without-date"),
            Some(d) if d < today => Route::agent("promise-date-in-past"),
            Some(d) if (d - today).num_days() > cfg.max_promise_days => {
                Route::agent("promise-too-far")
            }
            Some(d) => pause_until(d + Duration::days(1), reason::PROMISE_TO_PAY, ctx),
        },
        IntentKind::Hardship => Route::agent(reason::HARDSHIP).then(pause_until(
            today + Duration::days(cfg.hardship_pause_days),
            reason::HARDSHIP,
            ctx,
        )),
        IntentKind::WrongNumber => Route::suppress("wrong_number", SuppressScope::Number),
        IntentKind::NotAvailable => retry_at(
            ctx.now + Duration::hours(cfg.retry_later_hours),
            "not_available",
        ),
        IntentKind::Dispute => Route::agent(reason::DISPUTE),
        // A third party cannot opt the debtor out: only the number stops.
        IntentKind::StopCalling => Route::suppress(
            "stop_calling",
            if ctx.identity_confirmed {
                SuppressScope::Account
            } else {
                SuppressScope::Number
            },
        ),
        IntentKind::RequestAgent => Route::agent("request_agent"),
        IntentKind::CallbackLater => {
            let asked = intent
                .slots
                .time
                .map(|t| local_at(t, ctx))
                .filter(|t| *t > ctx.now);
            retry_at(
                asked.unwrap_or(ctx.now + Duration::hours(cfg.retry_later_hours)),
                "callback_later",
            )
            .with_hours(intent.slots.hours)
        }
        IntentKind::IdentityDenied => retry_at(
            ctx.now + Duration::hours(cfg.identity_denied_retry_hours),
            "identity_denied",
        ),
        IntentKind::Unknown => match cfg.unknown {
            UnknownRoute::Agent => Route::agent("unknown"),
            UnknownRoute::Retry => {
                retry_at(ctx.now + Duration::hours(cfg.retry_later_hours), "unknown")
            }
        },
        IntentKind::IdentityConfirmed | IntentKind::WhoIsCalling => {
            retry_at(ctx.now + Duration::hours(cfg.retry_later_hours), "hung-up")
        }
    }
}

/// The route after an answering machine: retry the next day (the attempt counts).
pub fn route_voicemail(ctx: &RouteContext, cfg: &RoutingConfig) -> Route {
    retry_at(
        ctx.now + Duration::days(cfg.voicemail_retry_days),
        "voicemail",
    )
}

/// The route when the caller hung up before any reply decided one.
pub fn route_hung_up(ctx: &RouteContext, cfg: &RoutingConfig) -> Route {
    let reason = if ctx.identity_confirmed {
        "hung-up"
    } else {
        "hung-up-before-identity"
    };
    retry_at(ctx.now + Duration::hours(cfg.retry_later_hours), reason)
}

/// The route when the conversation ended the call early (`max-call-length`,
/// `shutdown`) before any reply decided one: call again later.
pub fn route_cut_short(ctx: &RouteContext, cfg: &RoutingConfig, why: &str) -> Route {
    retry_at(ctx.now + Duration::hours(cfg.retry_later_hours), why)
}

/// The route of a call that never reached a conversation, when how it
/// ended says something lasting: a dead number (`not-found` with reason
/// `dead-number`, from a SIT in early media) is suppressed for the account
/// (scope `number`), so no campaign dials it again. Anything else: none
/// (the campaign retries by disposition).
pub fn route_unanswered(disposition: Disposition, why: Option<FailReason>) -> Option<Route> {
    (disposition == Disposition::NotFound && why == Some(FailReason::DeadNumber))
        .then(|| Route::suppress(reason::DEAD_NUMBER, SuppressScope::Number))
}

/// True when the promised date is one a bot may accept (today .. today + max).
pub fn promise_acceptable(date: NaiveDate, today: NaiveDate, cfg: &RoutingConfig) -> bool {
    date >= today && (date - today).num_days() <= cfg.max_promise_days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_number_leaves_a_route_when_nobody_answered() {
        let dead = route_unanswered(Disposition::NotFound, Some(FailReason::DeadNumber))
            .expect("a dead number is suppressed");
        assert_eq!(dead.kind, crate::outcome::RouteKind::Suppress);
        assert_eq!(dead.scope, Some(SuppressScope::Number));
        assert_eq!(dead.reason, reason::DEAD_NUMBER);
        assert_eq!(
            route_unanswered(Disposition::NotFound, None),
            None,
            "a plain 404"
        );
        for (d, r) in [
            (Disposition::NoAnswer, None),
            (Disposition::Failed, Some(FailReason::NoCircuit)),
            (Disposition::Failed, Some(FailReason::Reorder)),
            (Disposition::Busy, None),
        ] {
            assert_eq!(route_unanswered(d, r), None, "{d} {r:?}");
        }
    }
    use crate::outcome::RouteKind;
    use rust_decimal::Decimal;

    fn account(tz: Option<&str>) -> Account {
        Account {
            account_id: "A1".into(),
            name: "Maria Lopez".into(),
            phone: "+14155550100".into(),
            amount: Decimal::new(12550, 2),
            currency: None,
            due_date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            timezone: tz.map(str::to_string),
            language: Default::default(),
            jurisdiction: None,
            alt_phones: vec![],
            days_past_due: None,
            agent_uri: None,
            caller_id: None,
        }
    }
    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00-08:00").unwrap()
    }
    fn intent(kind: IntentKind) -> Intent {
        Intent::new(kind, 0.9, "")
    }
    fn go(i: &Intent, tz: Option<&str>, confirmed: bool) -> Route {
        let a = account(tz);
        route_for(
            i,
            &RouteContext {
                account: &a,
                now: now(),
                identity_confirmed: confirmed,
            },
            &RoutingConfig::default(),
        )
    }
    fn at(s: &str) -> Option<DateTime<FixedOffset>> {
        Some(DateTime::parse_from_rfc3339(s).unwrap())
    }

    #[test]
    fn already_paid_pauses_three_days_to_verify() {
        let r = go(&intent(IntentKind::AlreadyPaid), None, true);
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (RouteKind::Pause, "verify-payment")
        );
        assert_eq!(r.until, at("2026-11-26T00:00:00-08:00"));
    }

    #[test]
    fn the_pauses_a_payment_reply_leaves_are_the_ones_that_settle_and_a_dispute_holds() {
        use crate::policy::holds::HoldKind;
        use crate::policy::settle::{settle, Settlement};
        let cfg = crate::policy::PolicyConfig::default();
        let (due, nothing) = (Decimal::new(12550, 2), Decimal::ZERO);
        let paid = go(&intent(IntentKind::AlreadyPaid), None, true);
        assert_eq!(
            settle(&paid.reason, due, nothing, &cfg),
            Some(Settlement::Escalate {
                reason: "paid-unverified"
            })
        );
        let mut i = intent(IntentKind::PromiseToPay);
        i.slots.date = NaiveDate::from_ymd_opt(2026, 11, 27);
        let promise = go(&i, None, true);
        assert_eq!(
            settle(&promise.reason, due, due, &cfg),
            Some(Settlement::Paid)
        );
        let hardship = go(&intent(IntentKind::Hardship), None, true);
        let pause = hardship.follow_up.unwrap();
        assert_eq!(settle(&pause.reason, due, nothing, &cfg), None);
        let dispute = go(&intent(IntentKind::Dispute), None, true);
        assert_eq!(HoldKind::for_route(&dispute), Some(HoldKind::Dispute));
    }

    #[test]
    fn a_promise_pauses_until_the_day_after_in_the_debtors_zone() {
        let mut i = intent(IntentKind::PromiseToPay);
        i.slots.date = NaiveDate::from_ymd_opt(2026, 11, 27);
        let r = go(&i, Some("America/Los_Angeles"), true);
        assert_eq!(r.kind, RouteKind::Pause);
        assert_eq!(r.until, at("2026-11-28T00:00:00-08:00"));
    }

    #[test]
    fn a_promise_across_a_dst_change_uses_the_new_offset() {
        let a = account(Some("America/New_York"));
        let ctx = RouteContext {
            account: &a,
            now: DateTime::parse_from_rfc3339("2027-03-05T10:00:00-05:00").unwrap(),
            identity_confirmed: true,
        };
        let mut i = intent(IntentKind::PromiseToPay);
        i.slots.date = NaiveDate::from_ymd_opt(2027, 3, 15);
        let r = route_for(&i, &ctx, &RoutingConfig::default());
        assert_eq!(r.until, at("2027-03-16T00:00:00-04:00"));
    }

    #[test]
    fn a_promise_more_than_fourteen_days_out_goes_to_an_agent() {
        let mut i = intent(IntentKind::PromiseToPay);
        i.slots.date = NaiveDate::from_ymd_opt(2026, 12, 7); // 14 days: accepted
        assert_eq!(go(&i, None, true).kind, RouteKind::Pause);
        i.slots.date = NaiveDate::from_ymd_opt(2026, 12, 8); // 15 days
        let r = go(&i, None, true);
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (RouteKind::Agent, "promise-too-far")
        );
        i.slots.date = NaiveDate::from_ymd_opt(2026, 11, 22);
        assert_eq!(go(&i, None, true).reason, "promise-date-in-past");
        i.slots.date = None;
        assert_eq!(go(&i, None, true).reason, "promise-without-date");
    }

    #[test]
    fn hardship_goes_to_an_agent_and_pauses_thirty_days() {
        let r = go(&intent(IntentKind::Hardship), None, true);
        assert_eq!(r.kind, RouteKind::Agent);
        let f = r.follow_up.unwrap();
        assert_eq!(
            (f.kind, f.until),
            (RouteKind::Pause, at("2026-12-23T00:00:00-08:00"))
        );
    }

    #[test]
    fn wrong_number_suppresses_the_number_and_stop_suppresses_the_account() {
        let r = go(&intent(IntentKind::WrongNumber), None, false);
        assert_eq!(
            (r.kind, r.scope),
            (RouteKind::Suppress, Some(SuppressScope::Number))
        );
        let r = go(&intent(IntentKind::StopCalling), None, true);
        assert_eq!(
            (r.kind, r.scope),
            (RouteKind::Suppress, Some(SuppressScope::Account))
        );
        let r = go(&intent(IntentKind::StopCalling), None, false);
        assert_eq!(
            r.scope,
            Some(SuppressScope::Number),
            "a third party cannot opt the debtor out"
        );
    }

    #[test]
    fn callbacks_retry_at_the_asked_time_or_later_today() {
        let mut i = intent(IntentKind::CallbackLater);
        i.slots.time = NaiveDate::from_ymd_opt(2026, 11, 24).and_then(|d| d.and_hms_opt(15, 0, 0));
        let r = go(&i, None, true);
        assert_eq!(
            (r.kind, r.until),
            (RouteKind::Retry, at("2026-11-24T15:00:00-08:00"))
        );
        i.slots.time = None;
        assert_eq!(go(&i, None, true).until, at("2026-11-23T13:00:00-08:00"));
        i.slots.time = NaiveDate::from_ymd_opt(2026, 11, 23).and_then(|d| d.and_hms_opt(8, 0, 0));
        assert_eq!(
            go(&i, None, true).until,
            at("2026-11-23T13:00:00-08:00"),
            "a past time is not a retry time"
        );
    }

    #[test]
    fn a_callback_carries_the_standing_hours_asked_for() {
        let mut i = intent(IntentKind::CallbackLater);
        i.slots.time = NaiveDate::from_ymd_opt(2026, 11, 23).and_then(|d| d.and_hms_opt(18, 0, 0));
        let hours = crate::outcome::AskedHours {
            not_before: chrono::NaiveTime::from_hms_opt(18, 0, 0),
            not_after: None,
        };
        i.slots.hours = Some(hours);
        let r = go(&i, None, true);
        assert_eq!(
            (r.kind, r.until, r.hours),
            (
                RouteKind::Retry,
                at("2026-11-23T18:00:00-08:00"),
                Some(hours)
            )
        );
        i.slots.hours = None;
        assert_eq!(go(&i, None, true).hours, None);
    }

    #[test]
    fn the_other_intents_follow_the_table() {
        assert_eq!(
            go(&intent(IntentKind::Dispute), None, true).kind,
            RouteKind::Agent
        );
        assert_eq!(
            go(&intent(IntentKind::RequestAgent), None, true).kind,
            RouteKind::Agent
        );
        let r = go(&intent(IntentKind::NotAvailable), None, false);
        assert_eq!(
            (r.kind, r.until),
            (RouteKind::Retry, at("2026-11-23T13:00:00-08:00"))
        );
        let r = go(&intent(IntentKind::IdentityDenied), None, false);
        assert_eq!(
            (r.kind, r.reason.as_str()),
            (RouteKind::Retry, "identity_denied")
        );
        assert_eq!(
            go(&intent(IntentKind::Unknown), None, true).kind,
            RouteKind::Agent
        );
        let a = account(None);
        let ctx = RouteContext {
            account: &a,
            now: now(),
            identity_confirmed: true,
        };
        let cfg = RoutingConfig {
            unknown: UnknownRoute::Retry,
            ..RoutingConfig::default()
        };
        assert_eq!(
            route_for(&intent(IntentKind::Unknown), &ctx, &cfg).kind,
            RouteKind::Retry
        );
        let vm = route_voicemail(&ctx, &cfg);
        assert_eq!(
            (vm.kind, vm.until, vm.reason.as_str()),
            (
                RouteKind::Retry,
                at("2026-11-24T10:00:00-08:00"),
                "voicemail"
            )
        );
    }
}
