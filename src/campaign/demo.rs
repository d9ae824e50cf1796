//! `duecall demo`: a whole campaign against simulated debtors, with nothing
//! but `scripts/setup` done. Owns the fictional accounts (one per persona,
//! due dates relative to today, time zones where the present moment is
//! inside the calling window, chosen by asking the real gate), the demo's
//! files in a fresh data directory, and the closing table. Everything in
//! between is the real thing: `duecall run`'s code path, SIP/RTP over
//! loopback, the recognizer, the store.
//!
//! It never uses a real person's data: every name and number is made up.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::account::{Account, Language};
use crate::policy::{self, PolicyConfig};

/// Zones tried for the demo's debtors, about one per hour of UTC offset, so
/// that at any moment some are inside any window of 8 hours or more.
pub const CANDIDATE_ZONES: [&str; 20] = [
    "Pacific/Kiritimati",
    "Pacific/Auckland",
    "Australia/Sydney",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Bangkok",
    "Asia/Dhaka",
    "Asia/Karachi",
    "Asia/Dubai",
    "Europe/Moscow",
    "Europe/Athens",
    "Europe/Berlin",
    "Europe/London",
    "Atlantic/Azores",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
];

/// The zones (best first) where an account of `jurisdiction`, `days_past_due`
/// days past due there, may be called at `now` and still `margin` later,
/// according to the real gate with no history. Best: local time nearest
/// the middle of the day, farthest from the window's edges.
pub fn open_zones(
    policy_cfg: &PolicyConfig,
    jurisdiction: &str,
    days_past_due: i64,
    now: DateTime<Utc>,
    margin: Duration,
) -> Vec<(Tz, NaiveDate)> {
    let mut found: Vec<(i64, Tz, NaiveDate)> = Vec::new();
    for name in CANDIDATE_ZONES {
        let Ok(tz) = name.parse::<Tz>() else { continue };
        let local = now.with_timezone(&tz);
        let due = local.date_naive() - Duration::days(days_past_due);
        let probe = probe_account(name, jurisdiction, due);
        let state = policy::AccountState::default();
        let ok = [now, now + margin]
            .iter()
            .all(|t| policy::decide(&probe, &[tz], &[], &state, policy_cfg, *t).allowed());
        if ok {
            let mins = i64::from(chrono::Timelike::hour(&local)) * 60 + i64::from(chrono::Timelike::minute(&local));
            found.push(((mins - 14 * 60).abs(), tz, due));
        }
    }
    found.sort_by_key(|(d, _, _)| *d);
    found.into_iter().map(|(_, tz, due)| (tz, due)).collect()
}

fn probe_account(zone: &str, jurisdiction: &str, due: NaiveDate) -> Account {
    Account {
        account_id: "probe".into(),
        name: "Probe".into(),
        phone: "+12025550100".into(),
        amount: rust_decimal::Decimal::ONE,
        currency: None,
        due_date: due,
        timezone: Some(zone.into()),
        language: Language::En,
        jurisdiction: Some(jurisdiction.into()),
        alt_phones: vec![],
        days_past_due: None,
        agent_uri: None,
    }
}

/// Writes accounts as the CSV `duecall run` reads.
pub fn write_accounts_csv(path: &Path, accounts: &[Account]) -> Result<(), super::CampaignError> {
    let werr = |source| super::CampaignError::Write { path: path.to_path_buf(), source };
    let mut w = csv::Writer::from_path(path).map_err(|e| werr(std::io::Error::other(e)))?;
    w.write_record(["account_id", "name", "phone", "amount", "currency", "due_date", "timezone", "language", "jurisdiction", "alt_phones", "agent_uri"])
        .map_err(|e| werr(std::io::Error::other(e)))?;
    for a in accounts {
        w.write_record([
            a.account_id.as_str(),
            a.name.as_str(),
            a.phone.as_str(),
            &a.amount.to_string(),
            a.currency.as_deref().unwrap_or(""),
            &a.due_date.to_string(),
            a.timezone.as_deref().unwrap_or(""),
            a.language.as_str(),
            a.jurisdiction.as_deref().unwrap_or(""),
            &a.alt_phones.join(";"),
            a.agent_uri.as_deref().unwrap_or(""),
        ])
        .map_err(|e| werr(std::io::Error::other(e)))?;
    }
    w.flush().map_err(werr)
}

/// A fresh demo directory name under `base`: `duecall-demo-<UTC stamp>`.
pub fn fresh_dir(base: &Path, now: DateTime<Utc>) -> PathBuf {
    let stem = format!("duecall-demo-{}", now.format("%Y%m%d-%H%M%S"));
    let mut d = base.join(&stem);
    let mut n = 1;
    while d.exists() {
        n += 1;
        d = base.join(format!("{stem}-{n}"));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn some_zone_is_open_at_every_hour_of_the_day() {
        let cfg = PolicyConfig::default();
        for h in 0..24 {
            for j in ["us", "cn"] {
                let now = Utc.with_ymd_and_hms(2026, 11, 20, h, 17, 0).unwrap();
                let z = open_zones(&cfg, j, 5, now, Duration::minutes(10));
                assert!(!z.is_empty(), "{j}: no open zone at {now}");
                let (tz, due) = z[0];
                let local = now.with_timezone(&tz);
                assert_eq!(local.date_naive() - due, Duration::days(5));
            }
        }
    }
}
