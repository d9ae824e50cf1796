//! The compliance gate: may this account be dialled at this instant, and if
//! not, when first? Pure: takes the account, its candidate zones, its attempt
//! history, its state and an explicit `now`; never reads a clock, a file or
//! the network. Every rule is checked (no short-circuit) so the audit record
//! carries every figure.
//!
//! Days are the debtor's local calendar days in each candidate zone
//! (chrono-tz, DST-aware); with several candidate zones a rule must pass in
//! every one of them.
//!
//! `next_allowed_at` is exact: the rules only change truth value at a known
//! set of instants (local midnights, window and asked-hours openings in each
//! zone, both instants of an ambiguous local time, each zone's UTC-offset
//! transitions, the pause end, the callback time, the stage start), so the
//! earliest allowed instant is `now` or one of those, and each is verified by
//! the same evaluation `decide` uses.

use std::borrow::Cow;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

use super::config::{CapCounts, PolicyConfig, Window};
use super::decision::{AccountState, Decision, Figures, PolicyDecision, RuleCheck};
use super::holds::HoldKind;
use super::prep::{hold_until, prepare, NumPrep, Prep};
use crate::account::history::PastAttempt;
use crate::account::{mask_phone, Account};

#[derive(Debug, Clone, Copy)]
struct Outcome {
    pass: bool,
    /// No later instant can pass either.
    permanent: bool,
    human_queue: bool,
    number: Option<usize>,
}

struct Audit {
    out: Option<Vec<RuleCheck>>,
}

/// The details of a rule that holds calls back until a time: while it
/// holds (`{held} {time}`), once the time is reached (`{ended.0} {time}{ended.1}`)
/// and without a time (`none`).
struct UntilWords {
    held: &'static str,
    ended: (&'static str, &'static str),
    none: &'static str,
}

impl Audit {
    /// Checks a rule that holds calls back until a time (`pause`,
    /// `callback`): it passes without a time or once `t` reaches it.
    fn until(
        &mut self,
        rule: &'static str,
        until: Option<DateTime<Utc>>,
        t: DateTime<Utc>,
        words: UntilWords,
    ) -> bool {
        let ok = until.is_none_or(|u| t >= u);
        self.add(rule, ok, || match until {
            Some(u) if !ok => (
                format!("{} {}", words.held, u.to_rfc3339()),
                Some(Figures {
                    until: Some(u),
                    ..Default::default()
                }),
            ),
            Some(u) => (
                format!("{} {}{}", words.ended.0, u.to_rfc3339(), words.ended.1),
                None,
            ),
            None => (words.none.into(), None),
        });
        ok
    }

    fn add(
        &mut self,
        rule: impl Into<Cow<'static, str>>,
        passed: bool,
        f: impl FnOnce() -> (String, Option<Figures>),
    ) {
        if let Some(out) = self.out.as_mut() {
            let (detail, figures) = f();
            out.push(RuleCheck {
                rule: rule.into(),
                passed,
                detail,
                figures,
            });
        }
    }
}

fn count_in(dates: &[NaiveDate], from: NaiveDate, to: NaiveDate) -> u32 {
    dates.iter().filter(|d| **d >= from && **d <= to).count() as u32
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

struct Local {
    date: NaiveDate,
    secs: u32,
}

fn window_for(p: &Prep, date: NaiveDate) -> Window {
    match (p.state.night_call_consent, p.rules.consent_window) {
        (true, Some(w)) => w,
        _ if is_weekend(date) => p.rules.weekend_window,
        _ => p.rules.weekday_window,
    }
}

fn hhmm(secs: u32) -> String {
    format!("{:02}:{:02}", secs / 3600, (secs / 60) % 60)
}

fn eval(p: &Prep, t: DateTime<Utc>, audit: &mut Audit) -> Outcome {
    let mut pass = true;
    let mut permanent = false;
    let locals: Vec<Local> = p
        .zones
        .iter()
        .map(|z| {
            let l = t.with_timezone(z).naive_local();
            Local {
                date: l.date(),
                secs: l.time().num_seconds_from_midnight(),
            }
        })
        .collect();
    let jur = p.jur;
    // Rules that can never pass again are settled first, so that a scan
    // (no audit) may stop at the first failing rule.
    if p.numbers.iter().all(|n| n.suppressed.is_some()) {
        pass = false;
        permanent = true;
    }

    // jurisdiction
    if !p.jur_known {
        pass = false;
        permanent = true;
    }
    audit.add("jurisdiction", p.jur_known, || {
        let detail = if p.jur_known {
            format!("{jur} preset")
        } else {
            format!("unknown jurisdiction '{jur}' (cn, us, uk, au); figures below use the default preset")
        };
        (detail, None)
    });

    // suppression (account scope)
    let sup = p.account_suppressed;
    if sup.is_some() {
        pass = false;
        permanent = true;
    }
    audit.add("suppression", sup.is_none(), || match sup {
        Some(s) => (
            format!(
                "account suppressed ({}): no robot calls on any number",
                s.reason
            ),
            None,
        ),
        None => ("no account suppression".into(), None),
    });

    // holds (a dispute until released; a collector's case until closed or
    // agent_hold_days pass)
    let dispute = p.state.holds.iter().find(|h| h.kind == HoldKind::Dispute);
    let agent_until = hold_until(p);
    let agent_held = agent_until.is_some_and(|u| t < u);
    if dispute.is_some() {
        pass = false;
        permanent = true;
    }
    pass &= !agent_held;
    if !p.state.holds.is_empty() {
        audit.add("hold", dispute.is_none() && !agent_held, || {
            if let Some(h) = dispute {
                (
                    format!(
                        "debt disputed {} (FDCPA 809(b)): no robot contact until a person releases the hold after verification",
                        h.since.to_rfc3339()
                    ),
                    None,
                )
            } else if let (true, Some(u)) = (agent_held, agent_until) {
                (
                    format!(
                        "case with a collector: no robot contact until its escalation is closed or {}",
                        u.to_rfc3339()
                    ),
                    Some(Figures {
                        until: Some(u),
                        days: Some(p.agent_hold_days),
                        ..Default::default()
                    }),
                )
            } else {
                ("collector hold ended".into(), None)
            }
        });
    }

    // zones
    if p.zones.is_empty() {
        pass = false;
        permanent = true;
        audit.add("window", false, || {
            ("no time zone for this account".into(), None)
        });
    }

    // stage
    let days: Vec<i64> = locals.iter().map(|l| (l.date - p.due).num_days()).collect();
    let min_day = days.iter().copied().min().unwrap_or(0);
    let max_day = days.iter().copied().max().unwrap_or(0);
    let past = max_day > p.last_bot_day;
    let stage_ok = !days.is_empty() && min_day >= 1 && !past;
    if !stage_ok {
        pass = false;
    }
    if past {
        permanent = true;
    }
    let last = p.last_bot_day;
    let due = p.due;
    audit.add("stage", stage_ok, || {
        let detail = if past {
            format!("day {max_day} after due date {due}: past the last bot day {last}, human queue")
        } else if min_day < 1 {
            format!("day {min_day} after due date {due}: not yet due (bot days 1-{last})")
        } else {
            format!("day {min_day} after due date {due} (bot days 1-{last})")
        };
        (
            detail,
            Some(Figures {
                day: Some(if past { max_day } else { min_day }),
                limit: Some(last as u32),
                ..Default::default()
            }),
        )
    });

    macro_rules! early_out {
        () => {
            if !pass && audit.out.is_none() {
                return Outcome {
                    pass,
                    permanent,
                    human_queue: past,
                    number: None,
                };
            }
        };
    }
    early_out!();

    // pause
    pass &= audit.until(
        "pause",
        p.state.pause_until,
        t,
        UntilWords {
            held: "paused until",
            ended: ("pause ended", ""),
            none: "not paused",
        },
    );

    early_out!();

    // callback
    pass &= audit.until(
        "callback",
        p.state.callback_at,
        t,
        UntilWords {
            held: "debtor asked to be called back from",
            ended: ("callback time", " reached"),
            none: "no callback time",
        },
    );

    early_out!();

    // window
    if !p.zones.is_empty() {
        let inside: Vec<bool> = locals
            .iter()
            .map(|l| window_for(p, l.date).contains_secs(l.secs))
            .collect();
        let ok = inside.iter().all(|x| *x);
        pass &= ok;
        audit.add("window", ok, || {
            let parts: Vec<String> = p
                .zones
                .iter()
                .zip(&locals)
                .zip(&inside)
                .map(|((z, l), i)| {
                    format!(
                        "{} {} {} {} {}",
                        hhmm(l.secs),
                        z.name(),
                        l.date.weekday(),
                        if *i { "inside" } else { "outside" },
                        window_for(p, l.date)
                    )
                })
                .collect();
            let l0 = &locals[0];
            (
                format!("{jur}: {}", parts.join("; ")),
                Some(Figures {
                    local_time: Some(hhmm(l0.secs)),
                    zone: Some(p.zones[0].name().to_string()),
                    window: Some(window_for(p, l0.date).to_string()),
                    ..Default::default()
                }),
            )
        });
    }

    early_out!();

    // holiday
    if !p.rules.holidays.is_empty() {
        let hol = locals
            .iter()
            .find(|l| p.rules.holidays.contains(&l.date))
            .map(|l| l.date);
        pass &= hol.is_none();
        audit.add("holiday", hol.is_none(), || match hol {
            Some(d) => (
                format!("{jur}: {d} is a public holiday in the debtor's zone"),
                None,
            ),
            None => (format!("{jur}: not a listed public holiday"), None),
        });
    }

    early_out!();

    // asked hours
    if p.state.asked_not_before.is_some() || p.state.asked_not_after.is_some() {
        let nb = p
            .state
            .asked_not_before
            .map(|x| x.num_seconds_from_midnight());
        let na = p
            .state
            .asked_not_after
            .map(|x| x.num_seconds_from_midnight());
        let ok = locals
            .iter()
            .all(|l| nb.is_none_or(|b| l.secs >= b) && na.is_none_or(|a| l.secs < a));
        pass &= ok;
        audit.add("asked_hours", ok, || {
            let b = nb.map(hhmm).unwrap_or_else(|| "00:00".into());
            let a = na.map(hhmm).unwrap_or_else(|| "24:00".into());
            let l = locals.first().map(|l| hhmm(l.secs)).unwrap_or_default();
            (
                format!("debtor asked for calls {b}-{a} local; now {l}"),
                None,
            )
        });
    }

    early_out!();

    // hours the debtor asked for in the accounts file
    if !p.state.call_hours.is_empty() {
        let ok = locals
            .iter()
            .all(|l| p.state.call_hours.iter().any(|r| r.contains(l.secs)));
        pass &= ok;
        audit.add("call_hours", ok, || {
            let asked: Vec<String> = p.state.call_hours.iter().map(|r| r.to_string()).collect();
            let l = locals.first().map(|l| hhmm(l.secs)).unwrap_or_default();
            (
                format!(
                    "debtor asked for calls {} local; now {l}",
                    asked.join(" or ")
                ),
                None,
            )
        });
    }

    early_out!();

    // rolling caps per person per debt
    for cap in &p.rules.caps {
        let src = match cap.counts {
            CapCounts::Attempts => &p.attempts,
            CapCounts::Conversations => &p.convs,
        };
        let span = i64::from(cap.days) - 1;
        let count = locals
            .iter()
            .zip(src)
            .map(|(l, dates)| count_in(dates, l.date - Duration::days(span), l.date))
            .max()
            .unwrap_or(0);
        let ok = count < cap.max;
        pass &= ok;
        if audit.out.is_none() {
            continue;
        }
        let name = format!("{}_in_{}_days", cap.counts.as_str(), cap.days);
        audit.add(name, ok, || {
            (
                format!(
                    "{jur}: {count} of {} {} in the {} local days ending today",
                    cap.max,
                    cap.counts.as_str(),
                    cap.days
                ),
                Some(Figures {
                    count: Some(count),
                    limit: Some(cap.max),
                    days: Some(cap.days),
                    ..Default::default()
                }),
            )
        });
    }

    early_out!();

    // quiet period after a conversation (its day is day 1)
    let q = p.rules.quiet_days_after_conversation;
    if q > 0 {
        let mut worst: Option<(NaiveDate, i64)> = None;
        for (l, dates) in locals.iter().zip(&p.convs) {
            for d in dates {
                let day = (l.date - *d).num_days() + 1;
                if day >= 1 && day <= i64::from(q) && worst.is_none_or(|(_, w)| day < w) {
                    worst = Some((*d, day));
                }
            }
        }
        pass &= worst.is_none();
        audit.add(
            "quiet_after_conversation",
            worst.is_none(),
            || match worst {
                Some((d, day)) => (
                    format!("{jur}: conversation on {d}; today is day {day} of {q} with no calls"),
                    Some(Figures {
                        day: Some(day),
                        days: Some(q),
                        ..Default::default()
                    }),
                ),
                None => (
                    format!("{jur}: no conversation in the last {q} local days"),
                    None,
                ),
            },
        );
    }

    early_out!();

    // per-number rules: pick the first number that passes them
    let cap = p.rules.attempts_per_number_per_day;
    let hard = p.rules.hard_cap_per_number_per_day;
    let today_count = |n: &NumPrep| -> u32 {
        locals
            .iter()
            .zip(&n.dates)
            .map(|(l, d)| count_in(d, l.date, l.date))
            .max()
            .unwrap_or(0)
    };
    let usable: Vec<usize> = (0..p.numbers.len())
        .filter(|i| p.numbers[*i].suppressed.is_none())
        .collect();
    let chosen = usable.iter().copied().find(|i| {
        let c = today_count(&p.numbers[*i]);
        cap.is_none_or(|m| c < m) && hard.is_none_or(|m| c < m)
    });
    let shown = chosen.or(usable.first().copied());
    if usable.is_empty() {
        pass = false;
        permanent = true;
    }
    if chosen.is_none() {
        pass = false;
    }
    audit.add("number_available", !usable.is_empty(), || {
        let sup: Vec<String> = p
            .numbers
            .iter()
            .filter_map(|n| {
                n.suppressed
                    .map(|s| format!("{} ({})", mask_phone(n.number), s.reason))
            })
            .collect();
        let mut d = format!("{} of {} numbers usable", usable.len(), p.numbers.len());
        if !sup.is_empty() {
            d.push_str(&format!("; suppressed: {}", sup.join(", ")));
        }
        (d, None)
    });
    if let Some(i) = shown {
        let n = &p.numbers[i];
        let c = today_count(n);
        for (rule, limit, words) in [
            ("attempts_per_number_per_day", cap, ""),
            ("hard_cap_per_number_per_day", hard, "hard cap "),
        ] {
            let Some(m) = limit else { continue };
            audit.add(rule, c < m, || {
                (
                    format!(
                        "{jur}: {c} of {words}{m} attempts today on {}",
                        mask_phone(n.number)
                    ),
                    Some(Figures {
                        count: Some(c),
                        limit: Some(m),
                        days: Some(1),
                        ..Default::default()
                    }),
                )
            });
        }
    }

    Outcome {
        pass,
        permanent,
        human_queue: past,
        number: shown,
    }
}

/// Resolves a local wall-clock time to the instants it names (none in a DST
/// gap, two in an overlap).
fn resolve(z: &Tz, date: NaiveDate, tod: NaiveTime, out: &mut Vec<DateTime<Utc>>) {
    match z.from_local_datetime(&date.and_time(tod)) {
        chrono::LocalResult::Single(x) => out.push(x.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(a, b) => {
            out.push(a.with_timezone(&Utc));
            out.push(b.with_timezone(&Utc));
        }
        chrono::LocalResult::None => {}
    }
}

fn offset_secs(z: &Tz, t: DateTime<Utc>) -> i32 {
    z.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The local times of day at which some rule can turn from failing to passing.
fn opening_times(p: &Prep) -> Vec<NaiveTime> {
    let mut mins: Vec<u16> = vec![
        0,
        p.rules.weekday_window.start_min,
        p.rules.weekend_window.start_min,
    ];
    if p.state.night_call_consent {
        if let Some(c) = p.rules.consent_window {
            mins.push(c.start_min);
        }
    }
    let mut times: Vec<NaiveTime> = mins
        .into_iter()
        .filter_map(|m| NaiveTime::from_hms_opt(u32::from(m) / 60, u32::from(m) % 60, 0))
        .collect();
    if let Some(b) = p.state.asked_not_before {
        times.push(b);
    }
    times.extend(p.state.call_hours.iter().filter_map(|r| r.opening()));
    times.sort();
    times.dedup();
    times
}

/// Every instant in `(a, b]` at which some rule may start passing.
fn candidates(
    p: &Prep,
    times: &[NaiveTime],
    a: DateTime<Utc>,
    b: DateTime<Utc>,
    out: &mut Vec<DateTime<Utc>>,
) {
    out.clear();
    for z in p.zones {
        let d0 = a.with_timezone(z).date_naive() - Duration::days(1);
        let d1 = b.with_timezone(z).date_naive() + Duration::days(1);
        let mut d = d0;
        while d <= d1 {
            for t in times {
                resolve(z, d, *t, out);
            }
            d += Duration::days(1);
        }
        // An offset change moves local time past a boundary without the wall
        // clock showing it (a gap swallowing an opening, a repeated hour).
        let off_a = offset_secs(z, a);
        if offset_secs(z, b) != off_a {
            // Offsets change on whole seconds: search over seconds.
            let (mut lo, mut hi) = (a.timestamp(), b.timestamp() + 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let m = Utc.timestamp_opt(mid, 0).single().unwrap_or(a);
                if offset_secs(z, m) == off_a {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            if let Some(x) = Utc.timestamp_opt(hi, 0).single() {
                out.push(x);
            }
        }
    }
    out.retain(|c| *c > a && *c <= b);
    out.sort();
    out.dedup();
}

fn start_of_local_day(z: &Tz, d: NaiveDate) -> DateTime<Utc> {
    // Midnight may fall in a gap: the day then starts at the first instant
    // whose local date is `d`.
    let mut v = Vec::new();
    resolve(z, d, NaiveTime::MIN, &mut v);
    if let Some(x) = v.first() {
        return *x;
    }
    let guess = Utc
        .from_utc_datetime(&d.and_time(NaiveTime::MIN))
        .timestamp()
        - 30 * 3600;
    let (mut lo, mut hi) = (guess, guess + 60 * 3600);
    let at = |s: i64| {
        Utc.timestamp_opt(s, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if at(mid).with_timezone(z).date_naive() >= d {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    at(hi)
}

fn next_allowed(
    p: &Prep,
    now: DateTime<Utc>,
    first: Outcome,
    search_days: u32,
) -> Option<DateTime<Utc>> {
    let mut quiet = Audit { out: None };
    if first.pass {
        return Some(now);
    }
    if first.permanent {
        return None;
    }
    let mut lo = now;
    for u in [p.state.pause_until, p.state.callback_at, hold_until(p)]
        .into_iter()
        .flatten()
    {
        lo = lo.max(u);
    }
    if let Some(due1) = p.due.succ_opt() {
        for z in p.zones {
            lo = lo.max(start_of_local_day(z, due1));
        }
    }
    if lo > now {
        let o = eval(p, lo, &mut quiet);
        if o.pass {
            return Some(lo);
        }
        if o.permanent {
            return None;
        }
    }
    let end = lo + Duration::days(i64::from(search_days));
    let times = opening_times(p);
    let mut cands = Vec::new();
    let mut a = lo;
    while a < end {
        let b = a + Duration::days(1);
        candidates(p, &times, a, b, &mut cands);
        for c in &cands {
            let o = eval(p, *c, &mut quiet);
            if o.pass {
                return Some(*c);
            }
            if o.permanent {
                return None;
            }
        }
        a = b;
    }
    None
}

/// Decides whether `account` may be dialled at `now`, checking every rule,
/// and computes the earliest allowed instant. `zones` are the debtor's
/// candidate zones (`account::tz::zones_for`); `history` may hold other
/// accounts' records: per-debt caps count records with this `account_id`,
/// per-number caps count every record to that number.
pub fn decide(
    account: &Account,
    zones: &[Tz],
    history: &[PastAttempt],
    state: &AccountState,
    cfg: &PolicyConfig,
    now: DateTime<Utc>,
) -> PolicyDecision {
    let p = prepare(account, zones, history, state, cfg);
    let mut audit = Audit {
        out: Some(Vec::with_capacity(12)),
    };
    let o = eval(&p, now, &mut audit);
    let next_allowed_at = next_allowed(&p, now, o, cfg.search_days);
    PolicyDecision {
        account_id: p.account_id.to_string(),
        decision: if o.pass {
            Decision::Allow
        } else {
            Decision::Deny
        },
        number: o.number.map(|i| p.numbers[i].number.to_string()),
        jurisdiction: p.jur.to_string(),
        zones: zones.iter().map(|z| Cow::Borrowed(z.name())).collect(),
        at: now,
        rules: audit.out.unwrap_or_default(),
        next_allowed_at,
        human_queue: o.human_queue,
    }
}

/// Whether `account` may be dialled at `t`, without the audit or the search
/// (for callers that scan many instants).
pub fn allowed_at(
    account: &Account,
    zones: &[Tz],
    history: &[PastAttempt],
    state: &AccountState,
    cfg: &PolicyConfig,
    t: DateTime<Utc>,
) -> bool {
    let p = prepare(account, zones, history, state, cfg);
    eval(&p, t, &mut Audit { out: None }).pass
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
