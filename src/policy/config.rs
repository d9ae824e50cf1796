//! The compliance gate's parameters: jurisdiction presets (cn, us, uk, au, as
//! COLLECTIONS.md's table and "How the caps count" give them), every number
//! overridable from TOML. Owns the config shape and its validation; never
//! decides a call and never reads files.
//!
//! ```toml
//! [policy]
//! default_jurisdiction = "us"   # for accounts without one
//! default_region = "US"         # for phone numbers written without +
//! last_bot_day = 15             # bot calls on days 1..=15 after the due date
//! search_days = 60              # how far next_allowed_at looks ahead
//! agent_hold_days = 7           # a case with a collector holds robot calls this long at most
//! broken_promise = "retry"      # or "escalate": a passed promise date goes to a collector
//!
//! [policy.au]                   # any key of a preset; the rest stay as preset
//! window = "08:00-20:00"        # sets weekday_window and weekend_window
//! weekday_window = "07:30-21:00"
//! weekend_window = "09:00-21:00"
//! consent_window = "00:00-24:00"   # used instead when the debtor consented to night calls
//! holidays = ["2026-01-01"]        # local dates with no calls (replaces the preset list)
//! attempts_per_number_per_day = 3
//! hard_cap_per_number_per_day = 6
//! quiet_days_after_conversation = 7  # day of the conversation is day 1
//! caps = [{ days = 7, max = 3, counts = "conversations" }]  # rolling caps per person per debt
//! ```

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A daily calling window in local wall-clock time, `[start, end)`, written
/// `"HH:MM-HH:MM"` (`end` may be `24:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Window {
    /// Minutes after local midnight when calls may start.
    pub start_min: u16,
    /// Minutes after local midnight when calls must have started by (exclusive).
    pub end_min: u16,
}

impl Window {
    /// A window from minutes after midnight; `None` unless `start < end <= 1440`.
    pub fn new(start_min: u16, end_min: u16) -> Option<Window> {
        (start_min < end_min && end_min <= 1440).then_some(Window { start_min, end_min })
    }

    /// Whether a local time (seconds after midnight) is inside.
    pub fn contains_secs(&self, secs: u32) -> bool {
        secs >= u32::from(self.start_min) * 60 && secs < u32::from(self.end_min) * 60
    }
}

fn fmt_min(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", fmt_min(self.start_min), fmt_min(self.end_min))
    }
}

impl From<Window> for String {
    fn from(w: Window) -> String {
        w.to_string()
    }
}

impl TryFrom<String> for Window {
    type Error = String;
    fn try_from(s: String) -> Result<Window, String> {
        let bad = || {
            format!("window '{s}' is not \"HH:MM-HH:MM\" with start before end (end may be 24:00)")
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let parse = |x: &str| -> Option<u16> {
            let (h, m) = x.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        Window::new(parse(a).ok_or_else(bad)?, parse(b).ok_or_else(bad)?).ok_or_else(bad)
    }
}

/// What a rolling cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapCounts {
    /// Every dial that left, any disposition.
    Attempts,
    /// Calls that reached the debtor (au "contacts").
    Conversations,
}

impl CapCounts {
    /// The snake_case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CapCounts::Attempts => "attempts",
            CapCounts::Conversations => "conversations",
        }
    }
}

/// At most `max` of `counts` per person per debt in any `days` consecutive
/// local days; a new call is allowed only if it would be at most the `max`th.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollingCap {
    /// Length of the rolling window in local days (7 = today and the 6 before).
    pub days: u32,
    /// Most calls allowed in the window.
    pub max: u32,
    /// What is counted.
    pub counts: CapCounts,
}

/// One jurisdiction's rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JurisdictionRules {
    /// Monday to Friday window, debtor's local time.
    pub weekday_window: Window,
    /// Saturday and Sunday window.
    pub weekend_window: Window,
    /// Window used instead when the account consented to night calls (cn).
    pub consent_window: Option<Window>,
    /// Local dates with no calls at all (au national holidays).
    pub holidays: Vec<NaiveDate>,
    /// Dials per number per local day (cn default 3).
    pub attempts_per_number_per_day: Option<u32>,
    /// Absolute ceiling the per-number cap may not be configured above (cn 6).
    pub hard_cap_per_number_per_day: Option<u32>,
    /// After a conversation no call on days 1..=N, the conversation's day being day 1 (us 7; 0 = none).
    pub quiet_days_after_conversation: u32,
    /// Rolling caps per person per debt, across all their numbers.
    pub caps: Vec<RollingCap>,
}

fn w(s: u16, e: u16) -> Window {
    Window {
        start_min: s,
        end_min: e,
    }
}

fn dates(list: &[(i32, u32, u32)]) -> Vec<NaiveDate> {
    list.iter()
        .filter_map(|&(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
        .collect()
}

impl JurisdictionRules {
    /// cn: 08:00-22:00 (night only with consent), 3 dials per number per day, hard cap 6.
    pub fn cn() -> Self {
        JurisdictionRules {
            weekday_window: w(8 * 60, 22 * 60),
            weekend_window: w(8 * 60, 22 * 60),
            consent_window: Some(w(0, 24 * 60)),
            holidays: vec![],
            attempts_per_number_per_day: Some(3),
            hard_cap_per_number_per_day: Some(6),
            quiet_days_after_conversation: 0,
            caps: vec![],
        }
    }

    /// us (Reg F / TCPA): 08:00-21:00, 7 calls in any 7 days, 7 quiet days after a conversation.
    pub fn us() -> Self {
        JurisdictionRules {
            weekday_window: w(8 * 60, 21 * 60),
            weekend_window: w(8 * 60, 21 * 60),
            consent_window: None,
            holidays: vec![],
            attempts_per_number_per_day: None,
            hard_cap_per_number_per_day: None,
            quiet_days_after_conversation: 7,
            caps: vec![RollingCap {
                days: 7,
                max: 7,
                counts: CapCounts::Attempts,
            }],
        }
    }

    /// uk (FCA CONC 7): "reasonable" hours, 08:00-21:00 by default; per-number cap configurable (none by default).
    pub fn uk() -> Self {
        JurisdictionRules {
            weekday_window: w(8 * 60, 21 * 60),
            weekend_window: w(8 * 60, 21 * 60),
            consent_window: None,
            holidays: vec![],
            attempts_per_number_per_day: None,
            hard_cap_per_number_per_day: None,
            quiet_days_after_conversation: 0,
            caps: vec![],
        }
    }

    /// au (ACCC/ASIC): weekdays 07:30-21:00, weekends 09:00-21:00, no national
    /// holidays (2026-2027 list below), 3 contacts in any 7 days, 10 in any 30.
    pub fn au() -> Self {
        JurisdictionRules {
            weekday_window: w(7 * 60 + 30, 21 * 60),
            weekend_window: w(9 * 60, 21 * 60),
            consent_window: None,
            holidays: au_national_holidays_2026_2027(),
            attempts_per_number_per_day: None,
            hard_cap_per_number_per_day: None,
            quiet_days_after_conversation: 0,
            caps: vec![
                RollingCap {
                    days: 7,
                    max: 3,
                    counts: CapCounts::Conversations,
                },
                RollingCap {
                    days: 30,
                    max: 10,
                    counts: CapCounts::Conversations,
                },
            ],
        }
    }
}

/// Australian national public holidays 2026-2027 with the observed
/// substitute days (and the 2027 Anzac Day Monday several states observe).
/// State-only holidays are not included: add them with `policy.au.holidays`.
pub fn au_national_holidays_2026_2027() -> Vec<NaiveDate> {
    dates(&[
        (2026, 1, 1),   // New Year's Day
        (2026, 1, 26),  // Australia Day
        (2026, 4, 3),   // Good Friday
        (2026, 4, 6),   // Easter Monday
        (2026, 4, 25),  // Anzac Day (Saturday)
        (2026, 12, 25), // Christmas Day
        (2026, 12, 26), // Boxing Day (Saturday)
        (2026, 12, 28), // Boxing Day observed
        (2027, 1, 1),   // New Year's Day
        (2027, 1, 26),  // Australia Day
        (2027, 3, 26),  // Good Friday
        (2027, 3, 29),  // Easter Monday
        (2027, 4, 25),  // Anzac Day (Sunday)
        (2027, 4, 26),  // Anzac Day observed (several states)
        (2027, 12, 25), // Christmas Day (Saturday)
        (2027, 12, 26), // Boxing Day (Sunday)
        (2027, 12, 27), // Christmas Day observed
        (2027, 12, 28), // Boxing Day observed
    ])
}

/// What a promise to pay whose date passed without a payment becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokenPromise {
    /// The robot calls again (the pause is over).
    Retry,
    /// A collector takes it: an escalation with reason `promise-broken`.
    Escalate,
}

/// The gate's configuration: global settings and one rule set per jurisdiction.
/// Deserialises from the `[policy]` table; every key is optional and unknown
/// keys are rejected by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPolicyConfig")]
pub struct PolicyConfig {
    /// Preset for accounts without a jurisdiction (`us`).
    pub default_jurisdiction: String,
    /// ISO 3166 region for phone numbers written without `+` (`US`).
    pub default_region: String,
    /// Last day after the due date the bot may call (15); later goes to humans.
    pub last_bot_day: i64,
    /// How many days past the earliest possible moment `next_allowed_at` searches (60).
    pub search_days: u32,
    /// How long a case handed to a collector holds robot contact when its
    /// escalation is not closed sooner (7 days).
    pub agent_hold_days: u32,
    /// What a promise date that passes without a payment becomes: `retry`
    /// (the robot calls again) or `escalate` (a collector, reason `promise-broken`).
    pub broken_promise: BrokenPromise,
    /// China preset.
    pub cn: JurisdictionRules,
    /// United States preset.
    pub us: JurisdictionRules,
    /// United Kingdom preset.
    pub uk: JurisdictionRules,
    /// Australia preset.
    pub au: JurisdictionRules,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            default_jurisdiction: "us".into(),
            default_region: "US".into(),
            last_bot_day: 15,
            search_days: 60,
            agent_hold_days: 7,
            broken_promise: BrokenPromise::Retry,
            cn: JurisdictionRules::cn(),
            us: JurisdictionRules::us(),
            uk: JurisdictionRules::uk(),
            au: JurisdictionRules::au(),
        }
    }
}

impl PolicyConfig {
    /// The rules of a jurisdiction (`cn`, `us`, `uk`, `au`).
    pub fn rules(&self, jurisdiction: &str) -> Option<&JurisdictionRules> {
        match jurisdiction {
            "cn" => Some(&self.cn),
            "us" => Some(&self.us),
            "uk" => Some(&self.uk),
            "au" => Some(&self.au),
            _ => None,
        }
    }

    /// Parses a TOML document holding the policy keys at its top level.
    pub fn from_toml_str(s: &str) -> Result<PolicyConfig, String> {
        toml::from_str(s).map_err(|e| e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyConfig {
    default_jurisdiction: Option<String>,
    default_region: Option<String>,
    last_bot_day: Option<i64>,
    search_days: Option<u32>,
    agent_hold_days: Option<u32>,
    broken_promise: Option<BrokenPromise>,
    cn: Option<RulesPatch>,
    us: Option<RulesPatch>,
    uk: Option<RulesPatch>,
    au: Option<RulesPatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesPatch {
    window: Option<Window>,
    weekday_window: Option<Window>,
    weekend_window: Option<Window>,
    consent_window: Option<Window>,
    holidays: Option<Vec<NaiveDate>>,
    attempts_per_number_per_day: Option<u32>,
    hard_cap_per_number_per_day: Option<u32>,
    quiet_days_after_conversation: Option<u32>,
    caps: Option<Vec<RollingCap>>,
}

impl RulesPatch {
    fn apply(self, name: &str, mut r: JurisdictionRules) -> Result<JurisdictionRules, String> {
        if let Some(x) = self.window {
            r.weekday_window = x;
            r.weekend_window = x;
        }
        if let Some(x) = self.weekday_window {
            r.weekday_window = x;
        }
        if let Some(x) = self.weekend_window {
            r.weekend_window = x;
        }
        if let Some(x) = self.consent_window {
            r.consent_window = Some(x);
        }
        if let Some(x) = self.holidays {
            r.holidays = x;
        }
        if let Some(x) = self.attempts_per_number_per_day {
            r.attempts_per_number_per_day = Some(x);
        }
        if let Some(x) = self.hard_cap_per_number_per_day {
            r.hard_cap_per_number_per_day = Some(x);
        }
        if let Some(x) = self.quiet_days_after_conversation {
            r.quiet_days_after_conversation = x;
        }
        if let Some(x) = self.caps {
            r.caps = x;
        }
        if let (Some(a), Some(h)) = (r.attempts_per_number_per_day, r.hard_cap_per_number_per_day) {
            if a > h {
                return Err(format!(
                    "policy.{name}.attempts_per_number_per_day = {a} is above policy.{name}.hard_cap_per_number_per_day = {h}"
                ));
            }
        }
        if r.attempts_per_number_per_day == Some(0) || r.hard_cap_per_number_per_day == Some(0) {
            return Err(format!("policy.{name}: a per-number daily cap of 0 would forbid every call; remove the robot calls with a suppression instead"));
        }
        for (i, c) in r.caps.iter().enumerate() {
            if c.days == 0 || c.days > 366 || c.max == 0 {
                return Err(format!("policy.{name}.caps[{i}]: days must be 1..=366 and max at least 1 (got days = {}, max = {})", c.days, c.max));
            }
        }
        if r.quiet_days_after_conversation > 366 {
            return Err(format!(
                "policy.{name}.quiet_days_after_conversation = {} is more than a year",
                r.quiet_days_after_conversation
            ));
        }
        Ok(r)
    }
}

impl TryFrom<RawPolicyConfig> for PolicyConfig {
    type Error = String;
    fn try_from(raw: RawPolicyConfig) -> Result<PolicyConfig, String> {
        let mut c = PolicyConfig::default();
        if let Some(j) = raw.default_jurisdiction {
            if c.rules(&j).is_none() {
                return Err(format!(
                    "policy.default_jurisdiction = '{j}' is not one of cn, us, uk, au"
                ));
            }
            c.default_jurisdiction = j;
        }
        if let Some(r) = raw.default_region {
            use std::str::FromStr;
            if phonenumber::country::Id::from_str(&r.to_ascii_uppercase()).is_err() {
                return Err(format!(
                    "policy.default_region = '{r}' is not an ISO 3166 region code like US or CN"
                ));
            }
            c.default_region = r.to_ascii_uppercase();
        }
        if let Some(d) = raw.last_bot_day {
            if !(1..=365).contains(&d) {
                return Err(format!("policy.last_bot_day = {d} must be 1..=365"));
            }
            c.last_bot_day = d;
        }
        if let Some(s) = raw.search_days {
            if !(1..=400).contains(&s) {
                return Err(format!("policy.search_days = {s} must be 1..=400"));
            }
            c.search_days = s;
        }
        if let Some(d) = raw.agent_hold_days {
            if !(1..=366).contains(&d) {
                return Err(format!("policy.agent_hold_days = {d} must be 1..=366"));
            }
            c.agent_hold_days = d;
        }
        if let Some(b) = raw.broken_promise {
            c.broken_promise = b;
        }
        if let Some(p) = raw.cn {
            c.cn = p.apply("cn", c.cn)?;
        }
        if let Some(p) = raw.us {
            c.us = p.apply("us", c.us)?;
        }
        if let Some(p) = raw.uk {
            c.uk = p.apply("uk", c.uk)?;
        }
        if let Some(p) = raw.au {
            c.au = p.apply("au", c.au)?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_collections_table() {
        let c = PolicyConfig::default();
        assert_eq!(c.cn.weekday_window.to_string(), "08:00-22:00");
        assert_eq!(c.cn.attempts_per_number_per_day, Some(3));
        assert_eq!(c.cn.hard_cap_per_number_per_day, Some(6));
        assert_eq!(c.us.weekday_window.to_string(), "08:00-21:00");
        assert_eq!(
            c.us.caps,
            vec![RollingCap {
                days: 7,
                max: 7,
                counts: CapCounts::Attempts
            }]
        );
        assert_eq!(c.us.quiet_days_after_conversation, 7);
        assert_eq!(c.uk.weekend_window.to_string(), "08:00-21:00");
        assert_eq!(c.au.weekday_window.to_string(), "07:30-21:00");
        assert_eq!(c.au.weekend_window.to_string(), "09:00-21:00");
        assert_eq!(c.au.caps.len(), 2);
        assert!(c
            .au
            .holidays
            .contains(&NaiveDate::from_ymd_opt(2026, 4, 3).unwrap()));
        assert_eq!(c.last_bot_day, 15);
    }

    #[test]
    fn overrides_change_only_the_keys_given() {
        let c = PolicyConfig::from_toml_str(
            "last_bot_day = 10\n[cn]\nattempts_per_number_per_day = 5\n[au]\ncaps = [{ days = 7, max = 2, counts = \"conversations\" }]\n",
        )
        .unwrap();
        assert_eq!(c.last_bot_day, 10);
        assert_eq!(c.cn.attempts_per_number_per_day, Some(5));
        assert_eq!(c.cn.weekday_window, JurisdictionRules::cn().weekday_window);
        assert_eq!(c.au.caps[0].max, 2);
        assert_eq!(c.au.weekday_window.to_string(), "07:30-21:00");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = PolicyConfig::from_toml_str("[us]\nwindw = \"08:00-21:00\"\n").unwrap_err();
        assert!(e.contains("windw"), "{e}");
        let e = PolicyConfig::from_toml_str("[cn]\nattempts_per_number_per_day = 8\n").unwrap_err();
        assert!(
            e.contains("policy.cn.attempts_per_number_per_day = 8"),
            "{e}"
        );
        let e = PolicyConfig::from_toml_str("[uk]\nwindow = \"21:00-08:00\"\n").unwrap_err();
        assert!(e.contains("21:00-08:00"), "{e}");
        let e = PolicyConfig::from_toml_str("default_jurisdiction = \"mx\"\n").unwrap_err();
        assert!(e.contains("default_jurisdiction"), "{e}");
    }
}
