//! The words the date and time scans read: token matching and the numbers,
//! weekdays and months of both languages (English words, Mandarin
//! characters). Pure.

use chrono::Weekday;

use crate::intent::text::Tokens;

// ---------------------------------------------------------------- helpers

pub(super) fn tok(t: &Tokens, i: usize) -> &str {
    t.toks.get(i).map(String::as_str).unwrap_or("")
}

pub(super) fn is(t: &Tokens, i: usize, words: &[&str]) -> bool {
    words.contains(&tok(t, i))
}

/// Matches the consecutive tokens `seq` at `i`; returns its length.
pub(super) fn seq(t: &Tokens, i: usize, seq: &[&str]) -> Option<usize> {
    seq.iter()
        .enumerate()
        .all(|(k, w)| tok(t, i + k) == *w)
        .then_some(seq.len())
}

// ---------------------------------------------------------------- English numbers

/// "zero" .. "nineteen": one list for saying numbers (`dialogue::speak`)
/// and reading them here.
use crate::account::EN_NUMBER_WORDS as EN_UNITS;
pub(super) const EN_ORD_UNITS: [&str; 20] = [
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

pub(super) fn en_tens(w: &str) -> Option<u32> {
    match w {
        "twenty" => Some(20),
        "thirty" => Some(30),
        "forty" => Some(40),
        "fifty" => Some(50),
        _ => None,
    }
}

/// A cardinal at `i`: "15", "fifteen", "twenty one". Returns (value, tokens).
pub(super) fn en_num_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
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
pub(super) fn en_ord_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
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

pub(super) fn en_weekday(w: &str) -> Option<Weekday> {
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
pub(super) fn en_month(w: &str) -> Option<(u32, bool)> {
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
pub(super) fn en_count_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
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

// ---------------------------------------------------------------- Chinese numbers

pub(super) fn zh_digit(c: &str) -> Option<u32> {
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
pub(super) fn zh_num_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
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

pub(super) fn zh_weekday(w: &str) -> Option<Weekday> {
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
pub(super) fn zh_week_word(t: &Tokens, i: usize) -> Option<usize> {
    seq(t, i, &["周"])
        .or(seq(t, i, &["星", "期"]))
        .or(seq(t, i, &["礼", "拜"]))
}
