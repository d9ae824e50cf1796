//! English date expressions ("Friday", "next week", "the 15th", "end of
//! the month", "in two weeks"), resolved against `today`. Pure.

use chrono::{Datelike, Duration, Months, NaiveDate, Weekday};

use crate::intent::text::Tokens;

use super::calendar::*;
use super::words::*;

// ---------------------------------------------------------------- English dates

pub(super) fn en_date_at(t: &Tokens, i: usize, today: NaiveDate) -> Option<(NaiveDate, usize)> {
    let w = tok(t, i);
    // relative days
    if let Some(n) =
        seq(t, i, &["the", "day", "after", "tomorrow"]).or(seq(t, i, &["day", "after", "tomorrow"]))
    {
        return Some((today + Duration::days(2), n));
    }
    match w {
        "today" | "tonight" => return Some((today, 1)),
        "tomorrow" | "tomorow" | "tommorow" | "tommorrow" | "tmrw" | "tmr" => {
            return Some((today + Duration::days(1), 1))
        }
        _ => {}
    }
    // weekdays, with modifiers
    if is(t, i, &["next"]) {
        if let Some(wd) = en_weekday(tok(t, i + 1)) {
            return Some((weekday_next_week(today, wd), 2));
        }
        if is(t, i + 1, &["week"]) {
            return Some((monday_of_week(today) + Duration::days(7), 2));
        }
        if is(t, i + 1, &["month"]) {
            return Some((first_of_next_month(today), 2));
        }
        if is(t, i + 1, &["weekend"]) {
            return Some((weekday_next_week(today, Weekday::Sat), 2));
        }
    }
    if is(t, i, &["this", "coming"]) {
        if let Some(wd) = en_weekday(tok(t, i + 1)) {
            return Some((this_weekday(today, wd), 2));
        }
        if is(t, i + 1, &["weekend"]) {
            return Some((this_weekday(today, Weekday::Sat), 2));
        }
    }
    if is(t, i, &["this"]) && is(t, i + 1, &["coming"]) {
        if let Some(wd) = en_weekday(tok(t, i + 2)) {
            return Some((this_weekday(today, wd), 3));
        }
    }
    if let Some(wd) = en_weekday(w) {
        return Some((next_weekday(today, wd), 1));
    }
    if w == "weekend" {
        return Some((this_weekday(today, Weekday::Sat), 1));
    }
    // end / start of the month or week
    for (words, next) in [
        (&["end", "of", "the", "month"][..], false),
        (&["end", "of", "this", "month"][..], false),
        (&["end", "of", "month"][..], false),
        (&["month", "end"][..], false),
        (&["end", "of", "next", "month"][..], true),
        (&["end", "of", "the", "next", "month"][..], true),
    ] {
        if let Some(n) = seq(t, i, words) {
            let base = if next {
                first_of_next_month(today)
            } else {
                today
            };
            return Some((last_day_of_month(base.year(), base.month()), n));
        }
    }
    for words in [
        &["end", "of", "the", "week"][..],
        &["end", "of", "this", "week"][..],
        &["end", "of", "week"][..],
    ] {
        if let Some(n) = seq(t, i, words) {
            return Some((this_weekday(today, Weekday::Fri), n));
        }
    }
    if let Some(n) = seq(t, i, &["end", "of", "next", "week"]) {
        return Some((weekday_next_week(today, Weekday::Fri), n));
    }
    for words in [
        &["beginning", "of", "next", "month"][..],
        &["start", "of", "next", "month"][..],
        &["early", "next", "month"][..],
        &["beginning", "of", "the", "month"][..],
        &["start", "of", "the", "month"][..],
    ] {
        if let Some(n) = seq(t, i, words) {
            return Some((first_of_next_month(today), n));
        }
    }
    // in N days / weeks / months ; N weeks from now
    if is(t, i, &["in", "within"]) {
        if let Some((n, len)) = en_count_at(t, i + 1) {
            if let Some(d) = add_unit(today, n, tok(t, i + 1 + len)) {
                return Some((d, len + 2));
            }
        }
    }
    if let Some((n, len)) = en_count_at(t, i) {
        if let Some(d) = add_unit(today, n, tok(t, i + len)) {
            if seq(t, i + len + 1, &["from", "now"]).is_some()
                || is(t, i + len + 1, &["later", "time"])
            {
                return Some((d, len + 2));
            }
        }
    }
    // day of month, with or without a month
    let the = usize::from(is(t, i, &["the"]));
    if let Some((day, len)) = en_ord_at(t, i + the) {
        let j = i + the + len;
        let of = usize::from(is(t, j, &["of"]));
        if let Some((m, _)) = en_month(tok(t, j + of)) {
            return month_day(today, m, day).map(|d| (d, the + len + of + 1));
        }
        if (1..=31).contains(&day)
            && (the == 1 || (len == 1 && tok(t, i).chars().any(|c| c.is_ascii_digit())) || day > 3)
        {
            // "second"/"third" alone are too common as ordinary words
            return day_of_month(today, day).map(|d| (d, the + len));
        }
    }
    if the == 1 {
        if let Some((day, len)) = en_num_at(t, i + 1) {
            if (1..=31).contains(&day)
                && !is(
                    t,
                    i + 1 + len,
                    &["days", "weeks", "months", "hours", "minutes"],
                )
            {
                let j = i + 1 + len;
                let of = usize::from(is(t, j, &["of"]));
                if let Some((m, _)) = en_month(tok(t, j + of)) {
                    return month_day(today, m, day).map(|d| (d, 1 + len + of + 1));
                }
                return day_of_month(today, day).map(|d| (d, 1 + len));
            }
        }
    }
    if let Some((m, _)) = en_month(w) {
        let the = usize::from(is(t, i + 1, &["the"]));
        if let Some((day, len)) = en_ord_at(t, i + 1 + the).or_else(|| en_num_at(t, i + 1 + the)) {
            return month_day(today, m, day).map(|d| (d, 1 + the + len));
        }
    }
    if let Some((day, len)) = en_num_at(t, i) {
        if let Some((m, _)) = en_month(tok(t, i + len)) {
            return month_day(today, m, day).map(|d| (d, len + 1));
        }
    }
    None
}

pub(super) fn add_unit(today: NaiveDate, n: u32, unit: &str) -> Option<NaiveDate> {
    match unit {
        "day" | "days" => Some(today + Duration::days(n as i64)),
        "week" | "weeks" | "wks" => Some(today + Duration::days(7 * n as i64)),
        "fortnight" => Some(today + Duration::days(14 * n as i64)),
        "month" | "months" => today.checked_add_months(Months::new(n)),
        _ => None,
    }
}
