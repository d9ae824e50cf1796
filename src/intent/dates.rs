//! Dates and times in replies, resolved against an explicit "today" (pure).
//!
//! Owns the slot grammar: the promised day of a `promise_to_pay` ("Friday",
//! "next week", "the 15th", "下周五", "月底", "十二月三日") and the asked-for
//! moment of a `callback_later` ("after 6", "tomorrow morning", "in an hour",
//! "晚上七点"). Works on the classifier's tokens (words for English, single
//! characters for Mandarin) so both languages, and mixed replies, share one
//! scan. Never reads the clock: `today` and `now` come in as arguments.
//!
//! Conventions (the date is repeated back to the debtor, so a guess is heard):
//! - a bare weekday is the next one after today (1..=7 days ahead);
//!   "this/coming <day>" / "这周<day>" may be today; "next <day>" / "下周<day>"
//!   is that day in next week (weeks start on Monday);
//! - "next week" / "下周" is next week's Monday; "next month" / "下个月" its 1st;
//! - "end of the month" / "月底" is the month's last day;
//! - a day of the month ("the 15th", "15号") is this month's if not yet past,
//!   else next month's (clamped to the month's length);
//! - a clock hour without am/pm from 1 to 7 is afternoon/evening
//!   (calls happen in the day), and a moment already past today moves to
//!   tomorrow.

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

use super::text::Tokens;
use crate::outcome::AskedHours;

/// A value found in tokens `start..end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found<T> {
    /// The resolved value.
    pub value: T,
    /// First token of the expression.
    pub start: usize,
    /// One past the last token.
    pub end: usize,
}

/// A callback moment, and whether the reply named a clock time or part of day
/// (as opposed to only a day, which defaults to the morning).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moment {
    /// Local date and time asked for.
    pub at: NaiveDateTime,
    /// True when a clock time, part of day, or relative delay was said.
    pub has_clock: bool,
}

// ---------------------------------------------------------------- helpers

fn tok(t: &Tokens, i: usize) -> &str {
    t.toks.get(i).map(String::as_str).unwrap_or("")
}

fn is(t: &Tokens, i: usize, words: &[&str]) -> bool {
    words.contains(&tok(t, i))
}

/// Matches the consecutive tokens `seq` at `i`; returns its length.
fn seq(t: &Tokens, i: usize, seq: &[&str]) -> Option<usize> {
    seq.iter()
        .enumerate()
        .all(|(k, w)| tok(t, i + k) == *w)
        .then_some(seq.len())
}

fn last_day_of_month(y: i32, m: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MIN);
    first
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(first)
}

fn first_of_next_month(today: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .and_then(|d| d.checked_add_months(Months::new(1)))
        .unwrap_or(today)
}

fn monday_of_week(d: NaiveDate) -> NaiveDate {
    d - Duration::days(d.weekday().num_days_from_monday() as i64)
}

/// The next `wd` strictly after today (1..=7 days ahead).
fn next_weekday(today: NaiveDate, wd: Weekday) -> NaiveDate {
    let diff = (wd.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64)
        .rem_euclid(7);
    today + Duration::days(if diff == 0 { 7 } else { diff })
}

/// `wd` today or later this week; if already past, next week's.
fn this_weekday(today: NaiveDate, wd: Weekday) -> NaiveDate {
    let d = monday_of_week(today) + Duration::days(wd.num_days_from_monday() as i64);
    if d < today {
        d + Duration::days(7)
    } else {
        d
    }
}

/// `wd` in the week after this one.
fn weekday_next_week(today: NaiveDate, wd: Weekday) -> NaiveDate {
    monday_of_week(today) + Duration::days(7 + wd.num_days_from_monday() as i64)
}

/// Day `day` of this month if not past, else of next month; clamped.
fn day_of_month(today: NaiveDate, day: u32) -> Option<NaiveDate> {
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
fn month_day(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
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

// ---------------------------------------------------------------- English numbers

/// "zero" .. "nineteen": one list for saying numbers (`dialogue::speak`)
/// and reading them here.
use crate::account::EN_NUMBER_WORDS as EN_UNITS;
const EN_ORD_UNITS: [&str; 20] = [
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
];

fn en_tens(w: &str) -> Option<u32> {
    match w {
        "twenty" => Some(20),
        "thirty" => Some(30),
        "forty" => Some(40),
        "fifty" => Some(50),
        _ => None,
    }
}

/// A cardinal at `i`: "15", "fifteen", "twenty one". Returns (value, tokens).
fn en_num_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
    let w = tok(t, i);
    if !w.is_empty() && w.len() <= 4 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.parse().ok().map(|v| (v, 1));
    }
    if let Some(v) = EN_UNITS.iter().position(|u| *u == w) {
        return Some((v as u32, 1));
    }
    if let Some(tens) = en_tens(w) {
        if let Some(u) = EN_UNITS[1..10].iter().position(|u| *u == tok(t, i + 1)) {
            return Some((tens + u as u32 + 1, 2));
        }
        return Some((tens, 1));
    }
    None
}

/// An ordinal at `i`: "15th", "3rd", "fifteenth", "twenty first", "thirtieth".
fn en_ord_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
    let w = tok(t, i);
    for suf in ["st", "nd", "rd", "th"] {
        if let Some(num) = w.strip_suffix(suf) {
            if !num.is_empty() && num.len() <= 2 && num.chars().all(|c| c.is_ascii_digit()) {
                return num.parse().ok().map(|v| (v, 1));
            }
        }
    }
    if let Some(v) = EN_ORD_UNITS.iter().position(|u| *u == w) {
        return Some((v as u32, 1));
    }
    match w {
        "twentieth" => return Some((20, 1)),
        "thirtieth" => return Some((30, 1)),
        _ => {}
    }
    if let Some(tens) = en_tens(w) {
        if let Some(u) = EN_ORD_UNITS[1..10].iter().position(|u| *u == tok(t, i + 1)) {
            return Some((tens + u as u32 + 1, 2));
        }
    }
    None
}

fn en_weekday(w: &str) -> Option<Weekday> {
    Some(match w {
        "monday" | "mon" | "mondays" => Weekday::Mon,
        "tuesday" | "tue" | "tues" | "tuesdays" => Weekday::Tue,
        "wednesday" | "wed" | "wednesdays" | "wensday" => Weekday::Wed,
        "thursday" | "thu" | "thur" | "thurs" | "thursdays" => Weekday::Thu,
        "friday" | "fri" | "fridays" => Weekday::Fri,
        "saturday" | "sat" | "saturdays" => Weekday::Sat,
        "sunday" | "sun" | "sundays" => Weekday::Sun,
        _ => return None,
    })
}

/// English month names, January first.
pub const EN_MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Month names; "may", "march" and short forms only count next to a day.
fn en_month(w: &str) -> Option<(u32, bool)> {
    let full = EN_MONTHS;
    if let Some(p) = full.iter().position(|m| *m == w) {
        return Some((p as u32 + 1, w != "may" && w != "march"));
    }
    let short = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    if let Some(p) = short.iter().position(|m| *m == w) {
        return Some((p as u32 + 1, false));
    }
    if w == "sept" {
        return Some((9, false));
    }
    None
}

/// "a", "an", "one", "2", "a couple of", "a few" before a unit.
fn en_count_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
    if let Some(n) = seq(t, i, &["a", "couple", "of"]).or(seq(t, i, &["couple", "of"])) {
        return Some((2, n));
    }
    if let Some(n) = seq(t, i, &["a", "few"]).or(seq(t, i, &["few"])) {
        return Some((3, n));
    }
    if is(t, i, &["a", "an"]) {
        return Some((1, 1));
    }
    en_num_at(t, i)
}

// ---------------------------------------------------------------- English dates

fn en_date_at(t: &Tokens, i: usize, today: NaiveDate) -> Option<(NaiveDate, usize)> {
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

fn add_unit(today: NaiveDate, n: u32, unit: &str) -> Option<NaiveDate> {
    match unit {
        "day" | "days" => Some(today + Duration::days(n as i64)),
        "week" | "weeks" | "wks" => Some(today + Duration::days(7 * n as i64)),
        "fortnight" => Some(today + Duration::days(14 * n as i64)),
        "month" | "months" => today.checked_add_months(Months::new(n)),
        _ => None,
    }
}

// ---------------------------------------------------------------- Chinese numbers

fn zh_digit(c: &str) -> Option<u32> {
    Some(match c {
        "零" | "〇" => 0,
        "一" => 1,
        "二" | "两" => 2,
        "三" => 3,
        "四" => 4,
        "五" => 5,
        "六" => 6,
        "七" => 7,
        "八" => 8,
        "九" => 9,
        _ => return None,
    })
}

/// A number at `i`: an Arabic token, or Chinese numerals up to 99.
fn zh_num_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
    let w = tok(t, i);
    if !w.is_empty() && w.len() <= 4 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.parse().ok().map(|v| (v, 1));
    }
    let a = zh_digit(w);
    if w == "十" {
        // 十, 十五
        return match zh_digit(tok(t, i + 1)) {
            Some(u) if u > 0 => Some((10 + u, 2)),
            _ => Some((10, 1)),
        };
    }
    let a = a?;
    if tok(t, i + 1) == "十" {
        return match zh_digit(tok(t, i + 2)) {
            Some(u) if u > 0 => Some((a * 10 + u, 3)),
            _ => Some((a * 10, 2)),
        };
    }
    Some((a, 1))
}

fn zh_weekday(w: &str) -> Option<Weekday> {
    Some(match w {
        "一" | "1" => Weekday::Mon,
        "二" | "2" => Weekday::Tue,
        "三" | "3" => Weekday::Wed,
        "四" | "4" => Weekday::Thu,
        "五" | "5" => Weekday::Fri,
        "六" | "6" => Weekday::Sat,
        "日" | "天" | "7" => Weekday::Sun,
        _ => return None,
    })
}

/// 周 / 星期 / 礼拜 at `i`; returns its length.
fn zh_week_word(t: &Tokens, i: usize) -> Option<usize> {
    seq(t, i, &["周"])
        .or(seq(t, i, &["星", "期"]))
        .or(seq(t, i, &["礼", "拜"]))
}

// ---------------------------------------------------------------- Chinese dates

fn zh_date_at(t: &Tokens, i: usize, today: NaiveDate) -> Option<(NaiveDate, usize)> {
    let w = tok(t, i);
    if let Some(n) = seq(t, i, &["大", "后", "天"]) {
        return Some((today + Duration::days(3), n));
    }
    for (words, days) in [
        (&["今", "天"][..], 0),
        (&["今", "晚"][..], 0),
        (&["今", "日"][..], 0),
        (&["明", "天"][..], 1),
        (&["明", "日"][..], 1),
        (&["明", "早"][..], 1),
        (&["明", "晚"][..], 1),
        (&["后", "天"][..], 2),
    ] {
        if let Some(n) = seq(t, i, words) {
            return Some((today + Duration::days(days), n));
        }
    }
    // 下(个)周五 / 这周五 / 周五 / 下周 / 下个星期
    let (modifier, mlen) = if let Some(n) =
        seq(t, i, &["下", "下", "个"]).or(seq(t, i, &["下", "下"]))
    {
        (2, n)
    } else if let Some(n) = seq(t, i, &["下", "个"]).or(seq(t, i, &["下"])) {
        (1, n)
    } else if let Some(n) = seq(t, i, &["这", "个"])
        .or(seq(t, i, &["这"]))
        .or(seq(t, i, &["本"]))
    {
        (0, n)
    } else {
        (-1, 0)
    };
    if let Some(wl) = zh_week_word(t, i + mlen) {
        let j = i + mlen + wl;
        let wd = zh_weekday(tok(t, j));
        let weekend = tok(t, j) == "末";
        let target = if weekend { Some(Weekday::Sat) } else { wd };
        let extra = usize::from(target.is_some());
        let d = match (modifier, target) {
            (2, Some(wd)) => Some(weekday_next_week(today, wd) + Duration::days(7)),
            (2, None) => Some(monday_of_week(today) + Duration::days(14)),
            (1, Some(wd)) => Some(weekday_next_week(today, wd)),
            (1, None) => Some(monday_of_week(today) + Duration::days(7)),
            (0, Some(wd)) => Some(this_weekday(today, wd)),
            (0, None) => None,
            (_, Some(wd)) if weekend => Some(this_weekday(today, wd)),
            (_, Some(wd)) => Some(next_weekday(today, wd)),
            (_, None) => None,
        };
        if let Some(d) = d {
            return Some((d, mlen + wl + extra));
        }
    }
    // 月底 / 下个月底 / 下个月 / 月初
    if modifier == 1 {
        let j = i + mlen;
        if let Some(n) = seq(t, j, &["月", "底"]) {
            let b = first_of_next_month(today);
            return Some((last_day_of_month(b.year(), b.month()), mlen + n));
        }
        if let Some(n) = seq(t, j, &["月", "初"]).or(seq(t, j, &["月"])) {
            return Some((first_of_next_month(today), mlen + n));
        }
    }
    if modifier == 0 || w == "月" {
        let j = if modifier == 0 { i + mlen } else { i };
        if let Some(n) = seq(t, j, &["月", "底"]).or(seq(t, j, &["月", "末"])) {
            return Some((last_day_of_month(today.year(), today.month()), j - i + n));
        }
        if modifier == -1 || w == "月" {
            if let Some(n) = seq(t, j, &["月", "初"]) {
                return Some((first_of_next_month(today), n));
            }
        }
    }
    // N天后 / 两周后 / 一个星期以后 / 过两天
    let guo = usize::from(w == "过");
    if let Some((n, len)) =
        zh_num_at(t, i + guo).or_else(|| (tok(t, i + guo) == "几").then_some((3, 1)))
    {
        let j = i + guo + len;
        let ge = usize::from(tok(t, j) == "个");
        let (days, ul) = if tok(t, j) == "天" {
            (Some(n as i64), 1)
        } else if let Some(wl) = zh_week_word(t, j + ge) {
            (Some(7 * n as i64), ge + wl)
        } else if tok(t, j + ge) == "月" && ge == 1 {
            (None, 2)
        } else {
            (None, 0)
        };
        if ul > 0 {
            let k = j + ul;
            let after = seq(t, k, &["以", "后"])
                .or(seq(t, k, &["之", "后"]))
                .or(seq(t, k, &["后"]))
                .or(seq(t, k, &["内"]))
                .or(seq(t, k, &["以", "内"]));
            if guo == 1 || after.is_some() {
                let total = guo + len + ul + after.unwrap_or(0);
                return match days {
                    Some(d) => Some((today + Duration::days(d), total)),
                    None => today.checked_add_months(Months::new(n)).map(|d| (d, total)),
                };
            }
        }
    }
    // M月D日/号, D号/日
    if let Some((a, len)) = zh_num_at(t, i) {
        let j = i + len;
        if tok(t, j) == "月" {
            if let Some((d, dl)) = zh_num_at(t, j + 1) {
                if is(t, j + 1 + dl, &["日", "号"]) {
                    return month_day(today, a, d).map(|x| (x, len + 1 + dl + 1));
                }
                return month_day(today, a, d).map(|x| (x, len + 1 + dl));
            }
        }
        if is(t, j, &["号", "日"]) {
            return day_of_month(today, a).map(|x| (x, len + 1));
        }
    }
    None
}

// ---------------------------------------------------------------- public: dates

/// Finds the first date expression in `t` (English or Mandarin).
pub fn find_date(t: &Tokens, today: NaiveDate) -> Option<Found<NaiveDate>> {
    (0..t.len()).find_map(|i| date_at(t, i, today))
}

/// A date expression starting exactly at token `i` (used by `{date}` in patterns).
pub fn date_at(t: &Tokens, i: usize, today: NaiveDate) -> Option<Found<NaiveDate>> {
    en_date_at(t, i, today)
        .or_else(|| zh_date_at(t, i, today))
        .map(|(value, n)| Found {
            value,
            start: i,
            end: (i + n).min(t.len()),
        })
}

/// Length of a clock time, part of day or delay starting exactly at token
/// `i` (used by `{time}` in patterns).
pub fn time_at(t: &Tokens, i: usize) -> Option<usize> {
    delay_at(t, i)
        .map(|(_, n)| n)
        .or_else(|| daypart_at(t, i).map(|(_, _, n, _)| n))
        .or_else(|| en_clock_at(t, i).map(|(_, _, _, n)| n))
        .or_else(|| zh_clock_at(t, i).map(|(_, _, _, n)| n))
}

// ---------------------------------------------------------------- times

/// A part of the day at `i`: (default hour, is_pm_context, tokens, day offset).
fn daypart_at(t: &Tokens, i: usize) -> Option<(u32, bool, usize, Option<i64>)> {
    let en = [
        (&["in", "the", "morning"][..], 9, false),
        (&["morning"][..], 9, false),
        (&["first", "thing"][..], 9, false),
        (&["after", "lunch"][..], 13, true),
        (&["at", "noon"][..], 12, true),
        (&["noon"][..], 12, true),
        (&["lunchtime"][..], 12, true),
        (&["lunch", "time"][..], 12, true),
        (&["in", "the", "afternoon"][..], 14, true),
        (&["afternoon"][..], 14, true),
        (&["in", "the", "evening"][..], 18, true),
        (&["evening"][..], 18, true),
        (&["after", "work"][..], 18, true),
        (&["at", "night"][..], 19, true),
        (&["tonight"][..], 19, true),
        (&["night"][..], 19, true),
    ];
    for (words, h, pm) in en {
        if let Some(n) = seq(t, i, words) {
            return Some((h, pm, n, None));
        }
    }
    let zh = [
        (&["明", "早"][..], 9, false, Some(1)),
        (&["明", "晚"][..], 19, true, Some(1)),
        (&["今", "晚"][..], 19, true, Some(0)),
        (&["上", "午"][..], 9, false, None),
        (&["早", "上"][..], 9, false, None),
        (&["早", "晨"][..], 9, false, None),
        (&["中", "午"][..], 12, true, None),
        (&["下", "午"][..], 14, true, None),
        (&["傍", "晚"][..], 18, true, None),
        (&["晚", "上"][..], 19, true, None),
        (&["下", "班", "后"][..], 18, true, None),
        (&["下", "班", "以", "后"][..], 18, true, None),
    ];
    for (words, h, pm, day) in zh {
        if let Some(n) = seq(t, i, words) {
            return Some((h, pm, n, day));
        }
    }
    None
}

/// A clock time at `i`: (hour, minute, am/pm marker, tokens). English needs a
/// preposition or a marker so "two weeks" is not two o'clock.
fn en_clock_at(t: &Tokens, i: usize) -> Option<(u32, u32, Option<bool>, usize)> {
    let prep = usize::from(is(
        t,
        i,
        &[
            "at", "after", "around", "about", "by", "before", "till", "until", "past",
        ],
    ));
    let j = i + prep;
    // half past six / quarter past six
    if prep == 0 || tok(t, i) != "past" {
        for (words, min) in [(&["half", "past"][..], 30), (&["quarter", "past"][..], 15)] {
            if let Some(n) = seq(t, j, words) {
                if let Some((h, hl)) = en_num_at(t, j + n) {
                    if (1..=12).contains(&h) {
                        return Some((h, min, None, prep + n + hl));
                    }
                }
            }
        }
    }
    let w = tok(t, j);
    let (h, m, len) = if let Some((hs, ms)) = w.split_once(':') {
        (hs.parse().ok()?, ms.parse().ok()?, 1)
    } else {
        let (h, hl) = en_num_at(t, j)?;
        // "six thirty", "six fifteen"
        match en_num_at(t, j + hl) {
            Some((m, ml)) if (10..60).contains(&m) && !is(t, j + hl + ml, &["days", "minutes"]) => {
                (h, m, hl + ml)
            }
            _ => (h, 0, hl),
        }
    };
    if h > 23 || m > 59 {
        return None;
    }
    let k = j + len;
    let marker = if is(t, k, &["pm", "p.m"]) || seq(t, k, &["p", "m"]).is_some() {
        Some((true, if tok(t, k) == "p" { 2 } else { 1 }))
    } else if is(t, k, &["am", "a.m"]) || seq(t, k, &["a", "m"]).is_some() {
        Some((false, if tok(t, k) == "a" { 2 } else { 1 }))
    } else {
        None
    };
    let oclock = seq(t, k, &["o'clock"])
        .or(seq(t, k, &["oclock"]))
        .or(seq(t, k, &["o", "clock"]));
    if is(
        t,
        k,
        &[
            "days", "day", "weeks", "week", "months", "month", "hours", "hour", "minutes", "mins",
            "dollars", "pounds", "th", "st",
        ],
    ) {
        return None;
    }
    if prep == 0 && marker.is_none() && oclock.is_none() {
        return None;
    }
    let extra = marker.map(|(_, n)| n).unwrap_or(0) + oclock.unwrap_or(0);
    Some((h, m, marker.map(|(pm, _)| pm), prep + len + extra))
}

/// A Mandarin clock time at `i`: 七点, 七点半, 7点30, 十点钟, 六点以后.
fn zh_clock_at(t: &Tokens, i: usize) -> Option<(u32, u32, Option<bool>, usize)> {
    let (h, hl) = zh_num_at(t, i)?;
    let j = i + hl;
    if !is(t, j, &["点"]) {
        return None;
    }
    let mut len = hl + 1;
    let mut m = 0;
    if tok(t, j + 1) == "半" {
        m = 30;
        len += 1;
    } else if seq(t, j + 1, &["一", "刻"]).is_some() {
        m = 15;
        len += 2;
    } else if let Some((mm, ml)) = zh_num_at(t, j + 1) {
        if mm < 60 {
            m = mm;
            len += ml;
            if tok(t, j + 1 + ml) == "分" {
                len += 1;
            }
        }
    }
    if tok(t, i + len) == "钟" {
        len += 1;
    }
    if let Some(n) = seq(t, i + len, &["以", "后"])
        .or(seq(t, i + len, &["之", "后"]))
        .or(seq(t, i + len, &["后"]))
    {
        len += n;
    }
    (h <= 23).then_some((h, m, None, len))
}

/// A relative delay at `i`: "in an hour", "in 20 minutes", "一个小时后", "半小时后", "一会儿".
fn delay_at(t: &Tokens, i: usize) -> Option<(Duration, usize)> {
    if is(t, i, &["in", "within"]) {
        if let Some(n) = seq(t, i + 1, &["half", "an", "hour"]) {
            return Some((Duration::minutes(30), n + 1));
        }
        if let Some((n, len)) = en_count_at(t, i + 1) {
            let u = tok(t, i + 1 + len);
            let d = match u {
                "hour" | "hours" | "hrs" | "hr" => Duration::hours(n as i64),
                "minute" | "minutes" | "mins" | "min" => Duration::minutes(n as i64),
                _ => return None,
            };
            return Some((d, len + 2));
        }
    }
    if let Some(n) = seq(t, i, &["半", "个", "小", "时"]).or(seq(t, i, &["半", "小", "时"]))
    {
        let after = seq(t, i + n, &["以", "后"])
            .or(seq(t, i + n, &["之", "后"]))
            .or(seq(t, i + n, &["后"]))?;
        return Some((Duration::minutes(30), n + after));
    }
    if let Some((n, len)) = zh_num_at(t, i) {
        let j = i + len;
        let (d, ul) = if let Some(u) = seq(t, j, &["个", "小", "时"])
            .or(seq(t, j, &["小", "时"]))
            .or(seq(t, j, &["个", "钟", "头"]))
        {
            (Duration::hours(n as i64), u)
        } else if let Some(u) = seq(t, j, &["分", "钟"]) {
            (Duration::minutes(n as i64), u)
        } else {
            return None;
        };
        let after = seq(t, j + ul, &["以", "后"])
            .or(seq(t, j + ul, &["之", "后"]))
            .or(seq(t, j + ul, &["后"]))?;
        return Some((d, len + ul + after));
    }
    if let Some(n) = seq(t, i, &["一", "会", "儿"])
        .or(seq(t, i, &["过", "会", "儿"]))
        .or(seq(t, i, &["等", "会", "儿"]))
    {
        return Some((Duration::minutes(30), n));
    }
    None
}

/// The 24-hour clock hour of a spoken hour: an am/pm marker decides; then a
/// pm part of the day ("six in the evening"); then, with no part of the day
/// said, 1 to 7 are afternoon/evening (calls happen in the day).
fn day_hour(h: u32, marker: Option<bool>, pm_context: bool, part_said: bool) -> u32 {
    match marker {
        Some(true) if h < 12 => h + 12,
        Some(false) if h == 12 => 0,
        Some(_) => h,
        None if pm_context && h < 12 => h + 12,
        None if !part_said && (1..=7).contains(&h) => h + 12,
        None => h,
    }
}

/// A clock time at `i` resolved to a time of day (the `day_hour`
/// conventions): (time, tokens).
fn clock_time_at(
    t: &Tokens,
    i: usize,
    pm_context: bool,
    part_said: bool,
) -> Option<(NaiveTime, usize)> {
    let (h, m, mk, n) = en_clock_at(t, i).or_else(|| zh_clock_at(t, i))?;
    let time = NaiveTime::from_hms_opt(day_hour(h, mk, pm_context, part_said), m, 0)?;
    Some((time, n))
}

/// A bare number ("six", "8", "8 pm") as the second end of a range: (hour,
/// minute, marker, tokens). English clock words need a preposition on
/// their own; after "between six and" they do not.
fn range_end_at(t: &Tokens, i: usize) -> Option<(u32, u32, Option<bool>, usize)> {
    if let Some(c) = en_clock_at(t, i).or_else(|| zh_clock_at(t, i)) {
        return Some(c);
    }
    let w = tok(t, i);
    let (h, m, len) = match w.split_once(':') {
        Some((hs, ms)) => (hs.parse().ok()?, ms.parse().ok()?, 1),
        None => {
            let (h, hl) = en_num_at(t, i)?;
            (h, 0, hl)
        }
    };
    if h > 23 || m > 59 {
        return None;
    }
    let k = i + len;
    if is(t, k, &["pm", "p.m"]) {
        return Some((h, m, Some(true), len + 1));
    }
    if is(t, k, &["am", "a.m"]) {
        return Some((h, m, Some(false), len + 1));
    }
    Some((h, m, None, len))
}

/// Standing hours in a callback reply (local times, `day_hour`
/// conventions): "after six" / "any time past 7" / "not before 9 am" /
/// "六点以后" are a lower bound; "before 5" / "no later than 4 pm" / "五点以前"
/// an upper bound; "between six and eight" / "from 6 to 8" / "六点到八点" both.
/// A moment alone ("at six", "tomorrow") is a one-off callback, not standing
/// hours: `None`. When the reply says the debtor is busy ("I'm at work from
/// nine to five", "我九点到五点上班"), a range or an upper bound describes the
/// busy hours, not the asked ones, so only a lower bound ("after six") is
/// taken; "until"/"till" are never a bound ("busy till five").
pub fn find_hours(t: &Tokens) -> Option<Found<AskedHours>> {
    let parts: Vec<bool> = (0..t.len())
        .filter_map(|i| daypart_at(t, i))
        .map(|d| d.1)
        .collect();
    let pm_context = parts.contains(&true);
    let part_said = !parts.is_empty();
    let busy = (0..t.len()).any(|i| {
        is(
            t,
            i,
            &[
                "work", "working", "busy", "meeting", "driving", "class", "school", "shift",
            ],
        ) || seq(t, i, &["上", "班"]).is_some()
            || seq(t, i, &["开", "会"]).is_some()
            || tok(t, i) == "忙"
    });
    let mut hours = AskedHours::default();
    let (mut start, mut end) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < t.len() {
        // between A and B / from A to B / A到B
        let opener = usize::from(is(t, i, &["between", "from"]));
        let first = if opener == 1 {
            range_end_at(t, i + 1)
        } else {
            zh_clock_at(t, i)
        };
        if let Some((h1, m1, mk1, n1)) = first.filter(|_| !busy) {
            let j = i + opener + n1;
            if let Some(sep) = seq(t, j, &["and"])
                .or(seq(t, j, &["to"]))
                .or(seq(t, j, &["到"]))
                .or(seq(t, j, &["至"]))
            {
                if let Some((h2, m2, mk2, n2)) = range_end_at(t, j + sep) {
                    // one marker covers both ends: "between 6 and 8 pm"
                    let mk1 = mk1.or(mk2);
                    let a = day_hour(h1, mk1, pm_context, part_said);
                    let mut b = day_hour(h2, mk2.or(mk1), pm_context, part_said);
                    if b < a && b < 12 && b + 12 > a {
                        b += 12;
                    }
                    let mut n = opener + n1 + sep + n2;
                    n += seq(t, i + n, &["之", "间"]).unwrap_or(0);
                    hours.not_before = NaiveTime::from_hms_opt(a, m1, 0);
                    hours.not_after = NaiveTime::from_hms_opt(b, m2, 0);
                    start = start.min(i);
                    end = end.max(i + n);
                    i += n;
                    continue;
                }
            }
        }
        // not before A
        if seq(t, i, &["not", "before"]).is_some() {
            if let Some((at, n)) = clock_time_at(t, i + 1, pm_context, part_said) {
                hours.not_before = Some(at);
                start = start.min(i);
                end = end.max(i + 1 + n);
                i += 1 + n;
                continue;
            }
        }
        // no later than A
        if seq(t, i, &["no", "later", "than"]).is_some() && !busy {
            if let Some((h, m, mk, n)) = range_end_at(t, i + 3) {
                let h = day_hour(h, mk, pm_context, part_said);
                hours.not_after = NaiveTime::from_hms_opt(h, m, 0);
                start = start.min(i);
                end = end.max(i + 3 + n);
                i += 3 + n;
                continue;
            }
        }
        // "past" only as "any time past seven" (not "half past six")
        let lower = tok(t, i) == "after"
            || (tok(t, i) == "past" && is(t, i.wrapping_sub(1), &["time", "anytime"]));
        let upper = tok(t, i) == "before" && !busy;
        if lower || upper {
            if let Some((at, n)) = clock_time_at(t, i, pm_context, part_said) {
                if lower {
                    hours.not_before = Some(at);
                } else {
                    hours.not_after = Some(at);
                }
                start = start.min(i);
                end = end.max(i + n);
                i += n;
                continue;
            }
        }
        // 六点以后 / 六点之后 / 六点后; 五点以前 / 五点之前 / 五点前
        if let Some((at, n)) =
            zh_clock_at(t, i).and_then(|_| clock_time_at(t, i, pm_context, part_said))
        {
            let after_marker = ["后"].contains(&tok(t, i + n - 1));
            let before = seq(t, i + n, &["以", "前"])
                .or(seq(t, i + n, &["之", "前"]))
                .or(seq(t, i + n, &["前"]));
            if after_marker {
                hours.not_before = Some(at);
                start = start.min(i);
                end = end.max(i + n);
            } else if let Some(b) = before.filter(|_| !busy) {
                hours.not_after = Some(at);
                start = start.min(i);
                end = end.max(i + n + b);
            }
            i += n;
            continue;
        }
        i += 1;
    }
    (!hours.is_empty()).then_some(Found {
        value: hours,
        start,
        end,
    })
}

/// Finds the callback moment in `t`: an optional day, a clock time or part
/// of day, or a delay from `now`. A day alone gives 09:00 with
/// `has_clock = false`. Delays need `now`; without it they are not resolved.
pub fn find_time(t: &Tokens, today: NaiveDate, now: Option<NaiveTime>) -> Option<Found<Moment>> {
    let day = find_date(t, today);
    let mut start = usize::MAX;
    let mut end = 0usize;
    let mut hour: Option<(u32, u32)> = None;
    let mut marker: Option<bool> = None;
    let mut pm_context = false;
    let mut part_default: Option<u32> = None;
    let mut day_from_part: Option<i64> = None;

    for i in 0..t.len() {
        if let (Some(now), Some((d, n))) = (now, delay_at(t, i)) {
            let at = today.and_time(now) + d;
            return Some(Found {
                value: Moment {
                    at,
                    has_clock: true,
                },
                start: i,
                end: i + n,
            });
        }
    }
    let mut i = 0;
    while i < t.len() {
        if let Some((h, pm, n, dayoff)) = daypart_at(t, i) {
            if part_default.is_none() {
                part_default = Some(h);
                pm_context = pm;
                day_from_part = dayoff;
            }
            start = start.min(i);
            end = end.max(i + n);
            i += n;
            continue;
        }
        if hour.is_none() {
            if let Some((h, m, mk, n)) = en_clock_at(t, i).or_else(|| zh_clock_at(t, i)) {
                hour = Some((h, m));
                marker = mk;
                start = start.min(i);
                end = end.max(i + n);
                i += n;
                continue;
            }
        }
        i += 1;
    }
    let has_clock = hour.is_some() || part_default.is_some();
    if !has_clock && day.is_none() {
        return None;
    }
    let date = match (day, day_from_part) {
        (Some(d), _) => d.value,
        (None, Some(off)) => today + Duration::days(off),
        (None, None) => today,
    };
    if let Some(d) = day {
        start = start.min(d.start);
        end = end.max(d.end);
    }
    let (h, m) = match hour {
        Some((h, m)) => (day_hour(h, marker, pm_context, part_default.is_some()), m),
        None => (part_default.unwrap_or(9), 0),
    };
    let time = NaiveTime::from_hms_opt(h, m, 0)?;
    let mut at = date.and_time(time);
    if day.is_none() && day_from_part.is_none() {
        if let Some(now) = now {
            if at <= today.and_time(now) {
                at += Duration::days(1);
            }
        }
    }
    Some(Found {
        value: Moment { at, has_clock },
        start,
        end,
    })
}

#[cfg(test)]
#[path = "dates_tests.rs"]
mod tests;
