//! Mandarin date expressions ("下周五", "月底", "十二月三日"), resolved
//! against `today`. Pure.

use chrono::{Datelike, Duration, Months, NaiveDate, Weekday};

use crate::intent::text::Tokens;

use super::calendar::*;
use super::words::*;

// ---------------------------------------------------------------- Chinese dates

pub(super) fn zh_date_at(t: &Tokens, i: usize, today: NaiveDate) -> Option<(NaiveDate, usize)> {
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
