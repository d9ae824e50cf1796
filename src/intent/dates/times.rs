//! Times in replies: clock times ("after 6", "晚上七点"), parts of the day,
//! delays ("in an hour"), the hours a debtor asks to be called in, and a
//! callback moment (a day and a time). Pure: `now` comes in as an argument.

use chrono::{Duration, NaiveDate, NaiveTime};

use crate::intent::text::Tokens;
use crate::outcome::AskedHours;

use super::words::*;
use super::{find_date, Found, Moment};

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
pub(super) fn daypart_at(t: &Tokens, i: usize) -> Option<(u32, bool, usize, Option<i64>)> {
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
pub(super) fn en_clock_at(t: &Tokens, i: usize) -> Option<(u32, u32, Option<bool>, usize)> {
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
pub(super) fn zh_clock_at(t: &Tokens, i: usize) -> Option<(u32, u32, Option<bool>, usize)> {
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
pub(super) fn delay_at(t: &Tokens, i: usize) -> Option<(Duration, usize)> {
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
pub(super) fn day_hour(h: u32, marker: Option<bool>, pm_context: bool, part_said: bool) -> u32 {
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
pub(super) fn clock_time_at(
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
pub(super) fn range_end_at(t: &Tokens, i: usize) -> Option<(u32, u32, Option<bool>, usize)> {
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
