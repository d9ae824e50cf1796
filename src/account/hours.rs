//! The hours a debtor asked to be called in (`call_hours` in the accounts
//! CSV, like `18:00-20:00;07:30-08:30`; a range may cross midnight, as in
//! `21:00-02:00`). They narrow the jurisdiction's window, never widen it.
//! Owns their spelling, the test "is this local time inside", and the
//! contact preferences an accounts file gives (with night-call consent);
//! never decides a call by itself. (The standing hours a debtor asks for on
//! a call are `outcome::AskedHours`: they travel in the route.)

use std::fmt;

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

/// One range of local wall-clock time, `[start, end)`, seconds from
/// midnight; `end` below `start` crosses midnight; `end` 86400 is `24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HoursRange {
    /// First second inside.
    pub start: u32,
    /// First second outside.
    pub end: u32,
}

impl HoursRange {
    /// Whether `secs` from local midnight is inside.
    pub fn contains(&self, secs: u32) -> bool {
        if self.start <= self.end {
            secs >= self.start && secs < self.end
        } else {
            secs >= self.start || secs < self.end
        }
    }

    /// When the range opens, as a time of day.
    pub fn opening(&self) -> Option<NaiveTime> {
        NaiveTime::from_num_seconds_from_midnight_opt(self.start, 0)
    }
}

fn hhmm(secs: u32) -> String {
    format!("{:02}:{:02}", secs / 3600, (secs / 60) % 60)
}

impl fmt::Display for HoursRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", hhmm(self.start), hhmm(self.end))
    }
}

fn parse_time(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(86_400),
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        _ => None,
    }
}

/// Reads `HH:MM-HH:MM` ranges separated by `;`. The error names the part
/// that is wrong.
pub fn parse_call_hours(s: &str) -> Result<Vec<HoursRange>, String> {
    let mut out = Vec::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("call_hours '{part}' is not HH:MM-HH:MM (several separated by ;)");
        let (a, b) = part.split_once('-').ok_or_else(bad)?;
        let (start, end) = (
            parse_time(a).ok_or_else(bad)?,
            parse_time(b).ok_or_else(bad)?,
        );
        if start == end || start == 86_400 {
            return Err(format!("call_hours '{part}' is empty"));
        }
        out.push(HoursRange { start, end });
    }
    if out.is_empty() {
        return Err("call_hours is empty".into());
    }
    Ok(out)
}

/// What a debtor asked about when to be called, from the accounts file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactPrefs {
    /// Only inside these local hours (none: the jurisdiction's window).
    #[serde(default)]
    pub call_hours: Vec<HoursRange>,
    /// Consented to calls outside the normal window (where the
    /// jurisdiction has a consent window: cn night calls).
    #[serde(default)]
    pub night_call_consent: bool,
}

/// Writes ranges back the way `parse_call_hours` reads them.
pub fn format_call_hours(ranges: &[HoursRange]) -> String {
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";")
}

impl Serialize for HoursRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HoursRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match parse_call_hours(&s)
            .map_err(serde::de::Error::custom)?
            .as_slice()
        {
            [one] => Ok(*one),
            _ => Err(serde::de::Error::custom(format!(
                "'{s}' is not one HH:MM-HH:MM range"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_cross_midnight_and_round_trip() {
        let r = parse_call_hours("18:00-20:00; 21:30-02:00").unwrap();
        assert_eq!(r.len(), 2);
        assert!(r[0].contains(18 * 3600) && !r[0].contains(20 * 3600));
        assert!(r[1].contains(23 * 3600) && r[1].contains(3600) && !r[1].contains(2 * 3600));
        assert!(!r[1].contains(12 * 3600));
        assert_eq!(format_call_hours(&r), "18:00-20:00;21:30-02:00");
        assert_eq!(parse_call_hours("08:00-24:00").unwrap()[0].end, 86_400);
        for bad in [
            "",
            "18-20",
            "18:00",
            "25:00-26:00",
            "18:00-18:00",
            "18:60-19:00",
        ] {
            assert!(parse_call_hours(bad).is_err(), "{bad}");
        }
        let e = parse_call_hours("18:00-20:00;7-8").unwrap_err();
        assert!(e.contains("'7-8'"), "{e}");
    }
}
