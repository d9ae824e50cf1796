use super::*;
use chrono::NaiveTime;
use std::collections::HashMap;

/// Wednesday 15 May 2024.
fn wed() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 5, 15).unwrap()
}
fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}
fn date(s: &str, today: NaiveDate) -> Option<NaiveDate> {
    let t = super::super::text::tokenize(s, &HashMap::new());
    find_date(&t, today).map(|f| f.value)
}
fn time(s: &str, today: NaiveDate, now: Option<(u32, u32)>) -> Option<NaiveDateTime> {
    let t = super::super::text::tokenize(s, &HashMap::new());
    let now = now.map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).unwrap());
    find_time(&t, today, now).map(|f| f.value.at)
}
fn dt(y: i32, mo: u32, day: u32, h: u32, mi: u32) -> NaiveDateTime {
    d(y, mo, day).and_hms_opt(h, mi, 0).unwrap()
}

#[test]
fn bare_weekday_is_the_next_one() {
    assert_eq!(date("I'll pay Friday", wed()), Some(d(2024, 5, 17)));
    assert_eq!(date("on monday", wed()), Some(d(2024, 5, 20)));
    // same weekday as today means a week ahead
    assert_eq!(date("wednesday", wed()), Some(d(2024, 5, 22)));
}

#[test]
fn next_weekday_is_in_next_week() {
    assert_eq!(date("next Friday", wed()), Some(d(2024, 5, 24)));
    assert_eq!(date("next monday", wed()), Some(d(2024, 5, 20)));
    assert_eq!(date("this friday", wed()), Some(d(2024, 5, 17)));
    assert_eq!(date("this wednesday", wed()), Some(d(2024, 5, 15)));
}

#[test]
fn next_week_is_its_monday() {
    assert_eq!(date("sometime next week", wed()), Some(d(2024, 5, 20)));
    let sunday = d(2024, 5, 19);
    assert_eq!(date("next week", sunday), Some(d(2024, 5, 20)));
}

#[test]
fn relative_days() {
    assert_eq!(date("tomorrow", wed()), Some(d(2024, 5, 16)));
    assert_eq!(date("the day after tomorrow", wed()), Some(d(2024, 5, 17)));
    assert_eq!(date("today", wed()), Some(d(2024, 5, 15)));
    assert_eq!(date("in two weeks", wed()), Some(d(2024, 5, 29)));
    assert_eq!(date("in 3 days", wed()), Some(d(2024, 5, 18)));
    assert_eq!(date("in a couple of days", wed()), Some(d(2024, 5, 17)));
    assert_eq!(date("a week from now", wed()), Some(d(2024, 5, 22)));
    assert_eq!(date("within a month", wed()), Some(d(2024, 6, 15)));
}

#[test]
fn day_of_month_this_month_or_next() {
    assert_eq!(date("the 15th", wed()), Some(d(2024, 5, 15)));
    assert_eq!(date("on the 20th", wed()), Some(d(2024, 5, 20)));
    assert_eq!(date("by the 3rd", wed()), Some(d(2024, 6, 3)));
    assert_eq!(date("the fifteenth", d(2024, 5, 16)), Some(d(2024, 6, 15)));
    assert_eq!(date("on the twenty first", wed()), Some(d(2024, 5, 21)));
    assert_eq!(date("the 31st", d(2024, 6, 2)), Some(d(2024, 6, 30)));
}

#[test]
fn month_and_day_both_orders() {
    assert_eq!(date("on the 3rd of December", wed()), Some(d(2024, 12, 3)));
    assert_eq!(date("December 3", wed()), Some(d(2024, 12, 3)));
    assert_eq!(date("december third", wed()), Some(d(2024, 12, 3)));
    assert_eq!(date("3 december", wed()), Some(d(2024, 12, 3)));
    assert_eq!(date("jan 5th", wed()), Some(d(2025, 1, 5)));
    assert_eq!(date("may 20", wed()), Some(d(2024, 5, 20)));
}

#[test]
fn may_as_a_verb_is_not_a_month() {
    assert_eq!(date("I may pay", wed()), None);
    assert_eq!(date("I paid a second time", wed()), None);
}

#[test]
fn end_of_month_and_next_month() {
    assert_eq!(date("by the end of the month", wed()), Some(d(2024, 5, 31)));
    assert_eq!(date("end of next month", wed()), Some(d(2024, 6, 30)));
    assert_eq!(date("next month", wed()), Some(d(2024, 6, 1)));
    assert_eq!(
        date("end of the month", d(2024, 2, 10)),
        Some(d(2024, 2, 29))
    );
    assert_eq!(date("end of the week", wed()), Some(d(2024, 5, 17)));
}

#[test]
fn payday_is_not_a_date() {
    assert_eq!(date("when I get paid on payday", wed()), None);
}

#[test]
fn mandarin_relative_days() {
    assert_eq!(date("明天", wed()), Some(d(2024, 5, 16)));
    assert_eq!(date("我后天还", wed()), Some(d(2024, 5, 17)));
    assert_eq!(date("大后天", wed()), Some(d(2024, 5, 18)));
    assert_eq!(date("三天后", wed()), Some(d(2024, 5, 18)));
    assert_eq!(date("两个星期以后", wed()), Some(d(2024, 5, 29)));
    assert_eq!(date("过两天", wed()), Some(d(2024, 5, 17)));
}

#[test]
fn mandarin_weeks() {
    assert_eq!(date("下周五", wed()), Some(d(2024, 5, 24)));
    assert_eq!(date("下个星期一", wed()), Some(d(2024, 5, 20)));
    assert_eq!(date("下礼拜三", wed()), Some(d(2024, 5, 22)));
    assert_eq!(date("周五", wed()), Some(d(2024, 5, 17)));
    assert_eq!(date("这周五", wed()), Some(d(2024, 5, 17)));
    assert_eq!(date("星期天", wed()), Some(d(2024, 5, 19)));
    assert_eq!(date("下周", wed()), Some(d(2024, 5, 20)));
    assert_eq!(date("下个星期", wed()), Some(d(2024, 5, 20)));
    assert_eq!(date("周末", wed()), Some(d(2024, 5, 18)));
}

#[test]
fn mandarin_months_and_days() {
    assert_eq!(date("月底", wed()), Some(d(2024, 5, 31)));
    assert_eq!(date("这个月底前", wed()), Some(d(2024, 5, 31)));
    assert_eq!(date("下个月底", wed()), Some(d(2024, 6, 30)));
    assert_eq!(date("下个月", wed()), Some(d(2024, 6, 1)));
    assert_eq!(date("15号", wed()), Some(d(2024, 5, 15)));
    assert_eq!(date("十五号", d(2024, 5, 20)), Some(d(2024, 6, 15)));
    assert_eq!(date("二十号", wed()), Some(d(2024, 5, 20)));
    assert_eq!(date("十二月三日", wed()), Some(d(2024, 12, 3)));
    assert_eq!(date("12月3号", wed()), Some(d(2024, 12, 3)));
    assert_eq!(date("三月一号", wed()), Some(d(2025, 3, 1)));
}

#[test]
fn traditional_characters_parse_too() {
    assert_eq!(date("下週五", wed()), Some(d(2024, 5, 24)));
    assert_eq!(date("十五號", wed()), Some(d(2024, 5, 15)));
}

#[test]
fn callback_clock_times() {
    let now = Some((10, 0));
    assert_eq!(
        time("call me after 6", wed(), now),
        Some(dt(2024, 5, 15, 18, 0))
    );
    assert_eq!(
        time("at 10 am", wed(), Some((9, 0))),
        Some(dt(2024, 5, 15, 10, 0))
    );
    assert_eq!(
        time("at 9", wed(), Some((14, 0))),
        Some(dt(2024, 5, 16, 9, 0))
    );
    assert_eq!(
        time("around 4:30", wed(), now),
        Some(dt(2024, 5, 15, 16, 30))
    );
    assert_eq!(
        time("six o'clock", wed(), now),
        Some(dt(2024, 5, 15, 18, 0))
    );
    assert_eq!(
        time("at half past five", wed(), now),
        Some(dt(2024, 5, 15, 17, 30))
    );
    assert_eq!(time("7 pm", wed(), now), Some(dt(2024, 5, 15, 19, 0)));
}

fn hours(s: &str) -> Option<String> {
    let t = super::super::text::tokenize(s, &HashMap::new());
    find_hours(&t).map(|f| f.value.to_string())
}

#[test]
fn standing_hours_are_bounds_a_moment_is_not() {
    let h = |s: &str| hours(s).unwrap_or_else(|| "none".into());
    // lower bounds
    assert_eq!(h("call me after 6"), "18:00-24:00");
    assert_eq!(h("she'll be home after six call then"), "18:00-24:00");
    assert_eq!(h("any time past seven"), "19:00-24:00");
    assert_eq!(h("not before 9 am please"), "09:00-24:00");
    assert_eq!(h("after nine in the evening"), "21:00-24:00");
    assert_eq!(h("i'm at work call me after five thirty"), "17:30-24:00");
    // upper bounds
    assert_eq!(h("call before 5"), "00:00-17:00");
    assert_eq!(h("no later than 4 pm"), "00:00-16:00");
    assert_eq!(h("before seven in the morning"), "00:00-07:00");
    // ranges, one marker covering both ends
    assert_eq!(h("between six and eight"), "18:00-20:00");
    assert_eq!(h("between 9 and 11 am"), "09:00-11:00");
    assert_eq!(h("from 6 to 8 pm is best"), "18:00-20:00");
    // a moment alone is a one-off callback
    assert_eq!(h("call me at six"), "none");
    assert_eq!(h("at half past six"), "none");
    assert_eq!(h("tomorrow morning"), "none");
    assert_eq!(h("call back in an hour"), "none");
    // busy hours are not asked hours
    assert_eq!(h("i'm at work from nine to five"), "none");
    assert_eq!(h("i'm busy until five"), "none");
    assert_eq!(h("i'm in a meeting before 3"), "none");
}

#[test]
fn mandarin_standing_hours() {
    let h = |s: &str| hours(s).unwrap_or_else(|| "none".into());
    assert_eq!(h("六点以后再打"), "18:00-24:00");
    assert_eq!(h("晚上七点之后"), "19:00-24:00");
    assert_eq!(h("上午十点以前打"), "00:00-10:00");
    assert_eq!(h("晚上六点到八点之间"), "18:00-20:00");
    assert_eq!(h("晚上七点打给我"), "none");
    assert_eq!(h("我九点到五点上班"), "none");
}

#[test]
fn callback_parts_of_day_and_days() {
    assert_eq!(
        time("tomorrow morning", wed(), None),
        Some(dt(2024, 5, 16, 9, 0))
    );
    assert_eq!(
        time("friday afternoon", wed(), None),
        Some(dt(2024, 5, 17, 14, 0))
    );
    assert_eq!(
        time("tomorrow at 3", wed(), None),
        Some(dt(2024, 5, 16, 15, 0))
    );
    assert_eq!(
        time("in the evening", wed(), Some((10, 0))),
        Some(dt(2024, 5, 15, 18, 0))
    );
    assert_eq!(
        time("tonight at 8", wed(), None),
        Some(dt(2024, 5, 15, 20, 0))
    );
    let t = super::super::text::tokenize("call me monday", &HashMap::new());
    let m = find_time(&t, wed(), None).unwrap().value;
    assert_eq!(m.at, dt(2024, 5, 20, 9, 0));
    assert!(!m.has_clock);
}

#[test]
fn callback_delays_need_now() {
    assert_eq!(
        time("in an hour", wed(), Some((10, 15))),
        Some(dt(2024, 5, 15, 11, 15))
    );
    assert_eq!(
        time("in half an hour", wed(), Some((23, 45))),
        Some(dt(2024, 5, 16, 0, 15))
    );
    assert_eq!(
        time("in 20 minutes", wed(), Some((10, 0))),
        Some(dt(2024, 5, 15, 10, 20))
    );
    assert_eq!(time("in an hour", wed(), None), None);
}

#[test]
fn two_weeks_is_not_two_oclock() {
    assert_eq!(
        time("I will pay in two weeks", wed(), Some((10, 0))).map(|x| x.time()),
        Some(NaiveTime::from_hms_opt(9, 0, 0).unwrap())
    );
    let t = super::super::text::tokenize("in two weeks", &HashMap::new());
    assert!(!find_time(&t, wed(), None).unwrap().value.has_clock);
}

#[test]
fn mandarin_callback_times() {
    assert_eq!(
        time("晚上七点", wed(), Some((10, 0))),
        Some(dt(2024, 5, 15, 19, 0))
    );
    assert_eq!(time("明天上午", wed(), None), Some(dt(2024, 5, 16, 9, 0)));
    assert_eq!(
        time("明天下午三点半", wed(), None),
        Some(dt(2024, 5, 16, 15, 30))
    );
    assert_eq!(
        time("一个小时后再打", wed(), Some((10, 0))),
        Some(dt(2024, 5, 15, 11, 0))
    );
    assert_eq!(
        time("半小时以后", wed(), Some((10, 0))),
        Some(dt(2024, 5, 15, 10, 30))
    );
    assert_eq!(
        time("六点以后", wed(), Some((10, 0))),
        Some(dt(2024, 5, 15, 18, 0))
    );
    assert_eq!(
        time("上午十点钟", wed(), Some((8, 0))),
        Some(dt(2024, 5, 15, 10, 0))
    );
    assert_eq!(time("今晚", wed(), None), Some(dt(2024, 5, 15, 19, 0)));
    assert_eq!(time("明晚八点", wed(), None), Some(dt(2024, 5, 16, 20, 0)));
}

#[test]
fn no_time_in_plain_text() {
    assert_eq!(time("I already paid", wed(), Some((10, 0))), None);
    assert_eq!(time("我已经还了", wed(), Some((10, 0))), None);
}
