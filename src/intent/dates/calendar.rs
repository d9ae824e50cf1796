//! Calendar arithmetic the date conventions rest on (the next weekday,
//! next week's Monday, a day of this or next month, the month's last day).
//! Pure.

use chrono::{Datelike, Duration, Months, NaiveDate, Weekday};

pub(super) fn last_day_of_month(y: i32, m: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MIN);
    first
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(first)
}

pub(super) fn first_of_next_month(today: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .and_then(|d| d.checked_add_months(Months::new(1)))
        .unwrap_or(today)
}

pub(super) fn monday_of_week(d: NaiveDate) -> NaiveDate {
    d - Duration::days(d.weekday().num_days_from_monday() as i64)
}

/// The next `wd` strictly after today (1..=7 days ahead).
pub(super) fn next_weekday(today: NaiveDate, wd: Weekday) -> NaiveDate {
    let diff = (wd.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64)
        .rem_euclid(7);
    today + Duration::days(if diff == 0 { 7 } else { diff })
}

/// `wd` today or later this week; if already past, next week's.
pub(super) fn this_weekday(today: NaiveDate, wd: Weekday) -> NaiveDate {
    let d = monday_of_week(today) + Duration::days(wd.num_days_from_monday() as i64);
    if d < today {
        d + Duration::days(7)
    } else {
        d
    }
}

/// `wd` in the week after this one.
pub(super) fn weekday_next_week(today: NaiveDate, wd: Weekday) -> NaiveDate {
    monday_of_week(today) + Duration::days(7 + wd.num_days_from_monday() as i64)
}

/// Day `day` of this month if not past, else of next month; clamped.
pub(super) fn day_of_month(today: NaiveDate, day: u32) -> Option<NaiveDate> {
    if !(1..=31).contains(&day) {
        return None;
    }
    let (y, m) = if day >= today.day() {
        (today.year(), today.month())
    } else {
        let n = first_of_next_month(today);
        (n.year(), n.month())
    };
    let last = last_day_of_month(y, m);
    NaiveDate::from_ymd_opt(y, m, day.min(last.day()))
}

/// Month and day, this year if not past, else next year.
pub(super) fn month_day(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(today.year(), month, day)?;
    if d < today {
        NaiveDate::from_ymd_opt(today.year() + 1, month, day)
    } else {
        Some(d)
    }
}
