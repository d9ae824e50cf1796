//! Spoken values: amounts, dates, times and phone numbers written the way the
//! agent says them, in English and Mandarin. Pure text functions; they never
//! read the clock (today's date comes in as an argument) and never fail: every
//! decimal and date has a spoken form.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::account::Language;
use crate::outcome::AskedHours;

use crate::account::EN_NUMBER_WORDS as EN_ONES;
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const ZH_DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];

/// English words for a whole number ("one hundred twenty-five"), up to
/// 999 999 999 999 999; larger numbers are read digit by digit.
pub fn en_number(n: u64) -> String {
    if n >= 1_000_000_000_000_000 {
        return digits_en(&n.to_string());
    }
    if n < 20 {
        return EN_ONES[n as usize].to_string();
    }
    let mut parts: Vec<String> = Vec::new();
    let scales = [
        (1_000_000_000_000u64, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ];
    let mut rest = n;
    for (value, word) in scales {
        if rest >= value {
            parts.push(format!("{} {}", en_below_thousand(rest / value), word));
            rest %= value;
        }
    }
    if rest > 0 {
        parts.push(en_below_thousand(rest));
    }
    parts.join(" ")
}

fn en_below_thousand(n: u64) -> String {
    debug_assert!(n < 1000);
    let mut out = Vec::new();
    if n >= 100 {
        out.push(format!("{} hundred", EN_ONES[(n / 100) as usize]));
    }
    let r = n % 100;
    if r > 0 {
        if r < 20 {
            out.push(EN_ONES[r as usize].to_string());
        } else if r.is_multiple_of(10) {
            out.push(EN_TENS[(r / 10) as usize].to_string());
        } else {
            out.push(format!(
                "{}-{}",
                EN_TENS[(r / 10) as usize],
                EN_ONES[(r % 10) as usize]
            ));
        }
    }
    out.join(" ")
}

fn digits_en(s: &str) -> String {
    s.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| EN_ONES[d as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Mandarin reading of a whole number with 十/百/千/万/亿 and the 零 rules:
/// one 零 for any run of zeros inside a group or between groups, none at the
/// end, and 一十 shortened to 十 at the start (1005 一千零五, 10050 一万零五十,
/// 100000 十万, 110 一百一十).
pub fn zh_number(n: u64) -> String {
    if n == 0 {
        return "零".to_string();
    }
    if n >= 1_0000_0000_0000_0000 {
        return n
            .to_string()
            .chars()
            .filter_map(|c| c.to_digit(10))
            .map(|d| ZH_DIGITS[d as usize])
            .collect();
    }
    // Groups of four digits, most significant first, with their unit.
    let groups = [
        (n / 1_0000_0000_0000 % 1_0000, "万亿"),
        (n / 1_0000_0000 % 1_0000, "亿"),
        (n / 1_0000 % 1_0000, "万"),
        (n % 1_0000, ""),
    ];
    let mut out = String::new();
    let mut started = false;
    let mut zero_pending = false;
    for (g, unit) in groups {
        if g == 0 {
            if started {
                zero_pending = true;
            }
            continue;
        }
        // A group below 1000 after a higher group needs a 零 (一万零五十).
        if started && (zero_pending || g < 1000) {
            out.push('零');
        }
        out.push_str(&zh_group(g, !started));
        out.push_str(unit);
        started = true;
        zero_pending = false;
    }
    out
}

/// One group of up to four digits. `leading` allows 十 for 一十.
fn zh_group(g: u64, leading: bool) -> String {
    let digits = [g / 1000, g / 100 % 10, g / 10 % 10, g % 10];
    let units = ["千", "百", "十", ""];
    let mut out = String::new();
    let mut seen = false;
    let mut zero_pending = false;
    for (i, d) in digits.iter().enumerate() {
        if *d == 0 {
            if seen {
                zero_pending = true;
            }
            continue;
        }
        if zero_pending {
            out.push('零');
            zero_pending = false;
        }
        let short_ten = i == 2 && *d == 1 && !seen && leading;
        if !short_ten {
            out.push(ZH_DIGITS[*d as usize]);
        }
        out.push_str(units[i]);
        seen = true;
    }
    out
}

/// Currency names: (singular major, plural major, singular minor, plural minor).
fn en_currency(code: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    match code.to_ascii_uppercase().as_str() {
        "EUR" => ("euro", "euros", "cent", "cents"),
        "GBP" => ("pound", "pounds", "penny", "pence"),
        "CNY" | "RMB" => ("yuan", "yuan", "fen", "fen"),
        "JPY" => ("yen", "yen", "sen", "sen"),
        _ => ("dollar", "dollars", "cent", "cents"),
    }
}

/// Rounds to cents and splits into (negative, major, minor).
fn split_cents(amount: Decimal) -> (bool, u64, u64) {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let abs = rounded.abs();
    let cents = (abs * Decimal::from(100)).to_u128().unwrap_or(0);
    let major = u64::try_from(cents / 100).unwrap_or(u64::MAX);
    (negative, major, (cents % 100) as u64)
}

/// An amount in words, rounded to the cent: "one hundred twenty-five dollars
/// and fifty cents", "一千二百五十元五角". `currency` is ISO 4217 (None: USD
/// for English, CNY for Mandarin).
pub fn amount_words(amount: Decimal, currency: Option<&str>, lang: Language) -> String {
    match lang {
        Language::En => amount_en(amount, currency.unwrap_or("USD")),
        Language::Zh => amount_zh(amount, currency.unwrap_or("CNY")),
    }
}

fn amount_en(amount: Decimal, currency: &str) -> String {
    let (negative, major, minor) = split_cents(amount);
    let (one, many, minor_one, minor_many) = en_currency(currency);
    let major_words = format!(
        "{} {}",
        en_number(major),
        if major == 1 { one } else { many }
    );
    let minor_words = format!(
        "{} {}",
        en_number(minor),
        if minor == 1 { minor_one } else { minor_many }
    );
    let body = match (major, minor) {
        (0, 0) => major_words,
        (0, _) => minor_words,
        (_, 0) => major_words,
        _ => format!("{major_words} and {minor_words}"),
    };
    if negative {
        format!("minus {body}")
    } else {
        body
    }
}

fn amount_zh(amount: Decimal, currency: &str) -> String {
    let (negative, major, minor) = split_cents(amount);
    let mut out = String::new();
    if negative {
        out.push('负');
    }
    match currency.to_ascii_uppercase().as_str() {
        "CNY" | "RMB" => {
            let (jiao, fen) = (minor / 10, minor % 10);
            if major > 0 || minor == 0 {
                out.push_str(&zh_number(major));
                out.push('元');
            }
            if jiao > 0 {
                out.push(ZH_DIGITS[jiao as usize]);
                out.push('角');
            } else if fen > 0 && major > 0 {
                // 五元零五分: the missing 角 is read as 零.
                out.push('零');
            }
            if fen > 0 {
                out.push(ZH_DIGITS[fen as usize]);
                out.push('分');
            }
        }
        other => {
            let (major_unit, minor_unit) = match other {
                "USD" => ("美元", "美分"),
                "EUR" => ("欧元", "欧分"),
                "GBP" => ("英镑", "便士"),
                "HKD" => ("港元", "港分"),
                "JPY" => ("日元", "钱"),
                _ => ("元", "分"),
            };
            if major > 0 || minor == 0 {
                out.push_str(&zh_number(major));
                out.push_str(major_unit);
            }
            if minor > 0 {
                out.push_str(&zh_number(minor));
                out.push_str(minor_unit);
            }
        }
    }
    out
}

fn en_ordinal_suffix(day: u32) -> &'static str {
    match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

fn en_weekday(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn zh_weekday(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "星期一",
        Weekday::Tue => "星期二",
        Weekday::Wed => "星期三",
        Weekday::Thu => "星期四",
        Weekday::Fri => "星期五",
        Weekday::Sat => "星期六",
        Weekday::Sun => "星期日",
    }
}

/// A year read digit by digit in Mandarin (二〇二七).
fn zh_year(year: i32) -> String {
    year.to_string()
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(0) => '〇',
            Some(d) => ZH_DIGITS[d as usize],
            None => c,
        })
        .collect()
}

/// A date as spoken: "Friday, November 27th" ("Friday, January 8th, 2027"
/// when not in `today`'s year); "十一月二十七日" ("二〇二七年一月八日").
pub fn date_words(date: NaiveDate, lang: Language, today: NaiveDate) -> String {
    let other_year = date.year() != today.year();
    match lang {
        Language::En => {
            let mut s = format!(
                "{}, {} {}{}",
                en_weekday(date.weekday()),
                EN_MONTHS[date.month0() as usize],
                date.day(),
                en_ordinal_suffix(date.day())
            );
            if other_year {
                s.push_str(&format!(", {}", date.year()));
            }
            s
        }
        Language::Zh => {
            let mut s = String::new();
            if other_year {
                s.push_str(&zh_year(date.year()));
                s.push('年');
            }
            s.push_str(&zh_number(date.month() as u64));
            s.push('月');
            s.push_str(&zh_number(date.day() as u64));
            s.push('日');
            s
        }
    }
}

/// A date with its weekday in Mandarin ("十一月二十七日星期五"); English
/// `date_words` already names the weekday.
pub fn date_words_with_weekday(date: NaiveDate, lang: Language, today: NaiveDate) -> String {
    match lang {
        Language::En => date_words(date, lang, today),
        Language::Zh => format!(
            "{}{}",
            date_words(date, lang, today),
            zh_weekday(date.weekday())
        ),
    }
}

/// A time of day as spoken: "3 PM", "3:30 PM", "noon"; "下午三点", "下午三点半",
/// "上午九点十五分".
pub fn time_words(hour: u32, minute: u32, lang: Language) -> String {
    match lang {
        Language::En => {
            if hour == 12 && minute == 0 {
                return "noon".to_string();
            }
            if hour == 0 && minute == 0 {
                return "midnight".to_string();
            }
            let (h12, half) = match hour {
                0 => (12, "AM"),
                1..=11 => (hour, "AM"),
                12 => (12, "PM"),
                _ => (hour - 12, "PM"),
            };
            if minute == 0 {
                format!("{h12} {half}")
            } else {
                format!("{h12}:{minute:02} {half}")
            }
        }
        Language::Zh => {
            let (period, h12) = match hour {
                0..=5 => ("凌晨", hour),
                6..=11 => ("上午", hour),
                12 => ("中午", 12),
                13..=17 => ("下午", hour - 12),
                _ => ("晚上", hour - 12),
            };
            let h = if h12 == 2 {
                "两".to_string()
            } else {
                zh_number(h12 as u64)
            };
            let m = match minute {
                0 => String::new(),
                30 => "半".to_string(),
                m => format!("{}分", zh_number(m as u64)),
            };
            format!("{period}{h}点{m}")
        }
    }
}

/// A moment as spoken relative to `today`: "today at 3 PM", "tomorrow at
/// 9:30 AM", "Friday, November 27th at 3 PM"; "今天下午三点", "明天上午九点半".
pub fn datetime_words(at: NaiveDateTime, lang: Language, today: NaiveDate) -> String {
    let date = at.date();
    let time = time_words(at.hour(), at.minute(), lang);
    let day = match lang {
        Language::En => {
            if date == today {
                "today".to_string()
            } else if Some(date) == today.succ_opt() {
                "tomorrow".to_string()
            } else {
                date_words(date, lang, today)
            }
        }
        Language::Zh => {
            if date == today {
                "今天".to_string()
            } else if Some(date) == today.succ_opt() {
                "明天".to_string()
            } else {
                date_words(date, lang, today)
            }
        }
    };
    match lang {
        Language::En => format!("{day} at {time}"),
        Language::Zh => format!("{day}{time}"),
    }
}

/// The standing hours a debtor asked for, as the agent repeats them:
/// "only after 6 PM" / "only before noon" / "only between 6 PM and 8 PM";
/// "只在晚上六点以后" / "只在中午十二点以前" / "只在晚上六点到晚上八点之间".
pub fn asked_hours_words(h: &AskedHours, lang: Language) -> Option<String> {
    let w = |t: NaiveTime| time_words(t.hour(), t.minute(), lang);
    let s = match (lang, h.not_before, h.not_after) {
        (_, None, None) => return None,
        (Language::En, Some(b), None) => format!("only after {}", w(b)),
        (Language::En, None, Some(a)) => format!("only before {}", w(a)),
        (Language::En, Some(b), Some(a)) => format!("only between {} and {}", w(b), w(a)),
        (Language::Zh, Some(b), None) => format!("只在{}以后", w(b)),
        (Language::Zh, None, Some(a)) => format!("只在{}以前", w(a)),
        (Language::Zh, Some(b), Some(a)) => format!("只在{}到{}之间", w(b), w(a)),
    };
    Some(s)
}

/// The callback the agent confirms: the moment, and the standing hours when
/// the debtor asked for some ("today at 6 PM, and from now on only after 6
/// PM"; "今天晚上六点，以后只在晚上六点以后").
pub fn callback_words(
    at: NaiveDateTime,
    hours: Option<&AskedHours>,
    lang: Language,
    today: NaiveDate,
) -> String {
    let moment = datetime_words(at, lang, today);
    match (hours.and_then(|h| asked_hours_words(h, lang)), lang) {
        (Some(h), Language::En) => format!("{moment}, and from now on {h}"),
        (Some(h), Language::Zh) => format!("{moment}，以后{h}"),
        (None, _) => moment,
    }
}

/// A phone number read digit by digit, groups separated by commas so the
/// voice pauses: "1-800-555-0199" -> "1 8 0 0, 5 5 5, 0 1 9 9". Characters
/// other than digits, `+`, `-`, spaces, dots and brackets are dropped.
pub fn phone_words(number: &str) -> String {
    let mut groups: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for c in number.chars() {
        if c.is_ascii_digit() {
            current.push(c.to_string());
        } else if matches!(c, '-' | ' ' | '.' | '(' | ')' | '/') && !current.is_empty() {
            groups.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        groups.push(current.join(" "));
    }
    groups.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }
    fn date(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn callback_words_add_the_standing_hours_in_both_languages() {
        let today = date(2026, 11, 23);
        let at = today.and_hms_opt(18, 0, 0).unwrap();
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0);
        let after = AskedHours {
            not_before: t(18, 0),
            not_after: None,
        };
        let range = AskedHours {
            not_before: t(18, 0),
            not_after: t(20, 30),
        };
        let before = AskedHours {
            not_before: None,
            not_after: t(12, 0),
        };
        assert_eq!(
            callback_words(at, Some(&after), Language::En, today),
            "today at 6 PM, and from now on only after 6 PM"
        );
        assert_eq!(
            callback_words(at, Some(&range), Language::En, today),
            "today at 6 PM, and from now on only between 6 PM and 8:30 PM"
        );
        assert_eq!(
            callback_words(at, Some(&before), Language::En, today),
            "today at 6 PM, and from now on only before noon"
        );
        assert_eq!(
            callback_words(at, None, Language::En, today),
            datetime_words(at, Language::En, today)
        );
        let zh = callback_words(at, Some(&after), Language::Zh, today);
        assert!(zh.ends_with("，以后只在晚上六点以后"), "{zh}");
        assert_eq!(
            callback_words(at, Some(&AskedHours::default()), Language::En, today),
            "today at 6 PM"
        );
    }

    #[test]
    fn english_numbers_read_without_and_with_hyphenated_tens() {
        let cases = [
            (0, "zero"),
            (7, "seven"),
            (13, "thirteen"),
            (20, "twenty"),
            (21, "twenty-one"),
            (99, "ninety-nine"),
            (100, "one hundred"),
            (101, "one hundred one"),
            (125, "one hundred twenty-five"),
            (1000, "one thousand"),
            (1001, "one thousand one"),
            (1250, "one thousand two hundred fifty"),
            (12_345, "twelve thousand three hundred forty-five"),
            (1_000_000, "one million"),
            (2_000_500, "two million five hundred"),
            (1_234_567_890, "one billion two hundred thirty-four million five hundred sixty-seven thousand eight hundred ninety"),
        ];
        for (n, w) in cases {
            assert_eq!(en_number(n), w, "{n}");
        }
    }

    #[test]
    fn english_amounts_name_dollars_and_cents_with_singulars() {
        let cases = [
            ("125.50", "one hundred twenty-five dollars and fifty cents"),
            ("125.5", "one hundred twenty-five dollars and fifty cents"),
            ("125", "one hundred twenty-five dollars"),
            ("125.00", "one hundred twenty-five dollars"),
            ("1", "one dollar"),
            ("1.01", "one dollar and one cent"),
            ("0.99", "ninety-nine cents"),
            ("0", "zero dollars"),
            (
                "2500.05",
                "two thousand five hundred dollars and five cents",
            ),
            ("19.999", "twenty dollars"),
            ("0.005", "one cent"),
        ];
        for (a, w) in cases {
            assert_eq!(amount_words(d(a), None, Language::En), w, "{a}");
        }
    }

    #[test]
    fn english_amounts_follow_the_currency() {
        assert_eq!(
            amount_words(d("10.50"), Some("EUR"), Language::En),
            "ten euros and fifty cents"
        );
        assert_eq!(
            amount_words(d("1.01"), Some("gbp"), Language::En),
            "one pound and one penny"
        );
        assert_eq!(
            amount_words(d("3.20"), Some("GBP"), Language::En),
            "three pounds and twenty pence"
        );
    }

    #[test]
    fn chinese_numbers_follow_the_zero_rules() {
        let cases = [
            (0, "零"),
            (5, "五"),
            (10, "十"),
            (11, "十一"),
            (20, "二十"),
            (110, "一百一十"),
            (105, "一百零五"),
            (1000, "一千"),
            (1005, "一千零五"),
            (1050, "一千零五十"),
            (1250, "一千二百五十"),
            (10_000, "一万"),
            (10_050, "一万零五十"),
            (10_500, "一万零五百"),
            (15_000, "一万五千"),
            (100_000, "十万"),
            (100_010, "十万零一十"),
            (101_000, "十万一千"),
            (1_000_001, "一百万零一"),
            (10_000_000, "一千万"),
            (100_000_000, "一亿"),
            (100_000_100, "一亿零一百"),
            (120_003_000, "一亿二千万三千"),
            (100_001_000, "一亿零一千"),
        ];
        for (n, w) in cases {
            assert_eq!(zh_number(n), w, "{n}");
        }
    }

    #[test]
    fn chinese_amounts_use_yuan_jiao_fen() {
        let cases = [
            ("1250.50", "一千二百五十元五角"),
            ("1250.55", "一千二百五十元五角五分"),
            ("1250.05", "一千二百五十元零五分"),
            ("1250", "一千二百五十元"),
            ("100", "一百元"),
            ("0.50", "五角"),
            ("0.05", "五分"),
            ("0", "零元"),
            ("10.10", "十元一角"),
            ("1005.00", "一千零五元"),
        ];
        for (a, w) in cases {
            assert_eq!(amount_words(d(a), None, Language::Zh), w, "{a}");
        }
    }

    #[test]
    fn chinese_amounts_in_dollars_name_the_currency() {
        assert_eq!(
            amount_words(d("125.50"), Some("USD"), Language::Zh),
            "一百二十五美元五十美分"
        );
    }

    #[test]
    fn dates_read_with_weekday_and_ordinal_in_english() {
        let today = date(2026, 11, 23);
        assert_eq!(
            date_words(date(2026, 11, 27), Language::En, today),
            "Friday, November 27th"
        );
        assert_eq!(
            date_words(date(2026, 12, 1), Language::En, today),
            "Tuesday, December 1st"
        );
        assert_eq!(
            date_words(date(2026, 12, 2), Language::En, today),
            "Wednesday, December 2nd"
        );
        assert_eq!(
            date_words(date(2026, 12, 3), Language::En, today),
            "Thursday, December 3rd"
        );
        assert_eq!(
            date_words(date(2026, 12, 11), Language::En, today),
            "Friday, December 11th"
        );
        assert_eq!(
            date_words(date(2026, 12, 12), Language::En, today),
            "Saturday, December 12th"
        );
        assert_eq!(
            date_words(date(2026, 12, 13), Language::En, today),
            "Sunday, December 13th"
        );
        assert_eq!(
            date_words(date(2026, 12, 22), Language::En, today),
            "Tuesday, December 22nd"
        );
        assert_eq!(
            date_words(date(2027, 1, 8), Language::En, today),
            "Friday, January 8th, 2027"
        );
    }

    #[test]
    fn dates_read_month_and_day_in_chinese() {
        let today = date(2026, 11, 23);
        assert_eq!(
            date_words(date(2026, 11, 27), Language::Zh, today),
            "十一月二十七日"
        );
        assert_eq!(
            date_words(date(2026, 10, 10), Language::Zh, today),
            "十月十日"
        );
        assert_eq!(
            date_words(date(2026, 12, 31), Language::Zh, today),
            "十二月三十一日"
        );
        assert_eq!(
            date_words(date(2027, 1, 8), Language::Zh, today),
            "二〇二七年一月八日"
        );
        assert_eq!(
            date_words_with_weekday(date(2026, 11, 27), Language::Zh, today),
            "十一月二十七日星期五"
        );
    }

    #[test]
    fn times_read_in_twelve_hour_english_and_periods_in_chinese() {
        assert_eq!(time_words(15, 0, Language::En), "3 PM");
        assert_eq!(time_words(9, 30, Language::En), "9:30 AM");
        assert_eq!(time_words(12, 0, Language::En), "noon");
        assert_eq!(time_words(0, 5, Language::En), "12:05 AM");
        assert_eq!(time_words(15, 0, Language::Zh), "下午三点");
        assert_eq!(time_words(9, 30, Language::Zh), "上午九点半");
        assert_eq!(time_words(14, 15, Language::Zh), "下午两点十五分");
        assert_eq!(time_words(20, 0, Language::Zh), "晚上八点");
    }

    #[test]
    fn moments_say_today_and_tomorrow() {
        let today = date(2026, 11, 23);
        let at = |d: NaiveDate, h, m| d.and_hms_opt(h, m, 0).unwrap();
        assert_eq!(
            datetime_words(at(today, 15, 0), Language::En, today),
            "today at 3 PM"
        );
        assert_eq!(
            datetime_words(at(date(2026, 11, 24), 9, 30), Language::En, today),
            "tomorrow at 9:30 AM"
        );
        assert_eq!(
            datetime_words(at(date(2026, 11, 27), 15, 0), Language::En, today),
            "Friday, November 27th at 3 PM"
        );
        assert_eq!(
            datetime_words(at(date(2026, 11, 24), 9, 30), Language::Zh, today),
            "明天上午九点半"
        );
    }

    #[test]
    fn phone_numbers_are_read_digit_by_digit_in_groups() {
        assert_eq!(phone_words("1-800-555-0199"), "1, 8 0 0, 5 5 5, 0 1 9 9");
        assert_eq!(phone_words("400 800 1234"), "4 0 0, 8 0 0, 1 2 3 4");
        assert_eq!(phone_words("+1 (415) 555"), "1, 4 1 5, 5 5 5");
    }
}
