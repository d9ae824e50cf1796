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

use chrono::{NaiveDate, NaiveDateTime};

use super::text::Tokens;

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

mod calendar;
mod en;
mod times;
mod words;
mod zh;

pub use times::{find_hours, find_time, time_at};
pub use words::EN_MONTHS;

/// Finds the first date expression in `t` (English or Mandarin).
pub fn find_date(t: &Tokens, today: NaiveDate) -> Option<Found<NaiveDate>> {
    (0..t.len()).find_map(|i| date_at(t, i, today))
}

/// A date expression starting exactly at token `i` (used by `{date}` in patterns).
pub fn date_at(t: &Tokens, i: usize, today: NaiveDate) -> Option<Found<NaiveDate>> {
    en::en_date_at(t, i, today)
        .or_else(|| zh::zh_date_at(t, i, today))
        .map(|(value, n)| Found {
            value,
            start: i,
            end: (i + n).min(t.len()),
        })
}

#[cfg(test)]
mod tests;
