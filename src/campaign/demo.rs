//! `duecall demo`: a whole campaign against simulated debtors, with nothing
//! but `scripts/setup` done. Owns the fictional accounts (one per persona,
//! due dates relative to today, time zones where the present moment is
//! inside the calling window, chosen by asking the real gate), the demo's
//! files in a fresh data directory, and the closing table. Everything in
//! between is the real thing: `duecall run`'s code path, SIP/RTP over
//! loopback, the recognizer, the store.
//!
//! It never uses a real person's data: every name and number is made up.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::cli::{ctrl_c_shutdown, run_campaign_with, RunArgs};
use super::outcomes::AttemptResult;
use super::{CampaignError, CampaignSummary, Progress};
use crate::account::{Account, Language};
use crate::outcome::Route;
use crate::policy::{self, PolicyConfig};

/// Every persona the demo calls, in the order of the table.
pub const PERSONAS: [&str; 12] = [
    "paid",
    "promise",
    "hardship",
    "wrong_number",
    "stop",
    "silent",
    "no_answer",
    "busy",
    "voicemail",
    "dtmf",
    "hangup_mid_prompt",
    "barge_in",
];

/// Fictional debtors, one per persona.
const NAMES: [&str; 12] = [
    "Maria Lopez",
    "James Carter",
    "Aisha Khan",
    "Tom Baker",
    "Li Na",
    "Ana Silva",
    "David Okoro",
    "Sofia Rossi",
    "Omar Haddad",
    "Emma Novak",
    "Lucas Meyer",
    "Priya Nair",
];

/// Arguments of `duecall demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the fresh demo directory is created (default: the current directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Calls at once.
    #[arg(long, default_value_t = 6)]
    pub max_concurrent: usize,
    /// Only these personas (comma-separated; default: all twelve).
    #[arg(long, value_delimiter = ',')]
    pub personas: Vec<String>,
}

/// The demo's accounts at `now`: one per persona, 3-10 days past due, each
/// in a zone where the gate allows a call now and for the next few minutes.
pub fn demo_accounts(
    personas: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<(Account, String)>, CampaignError> {
    let cfg = PolicyConfig::default();
    let mut out = Vec::new();
    for (i, persona) in personas.iter().enumerate() {
        let dpd = 3 + (i as i64 % 8);
        let zones = open_zones(&cfg, "us", dpd, now, Duration::minutes(10));
        // Spread the debtors over the open zones, best first.
        let Some(&(tz, due)) = zones.get(i % zones.len().clamp(1, 3)).or(zones.first()) else {
            return Err(CampaignError::Sim(format!(
                "no time zone is inside the calling window at {now}"
            )));
        };
        let account = Account {
            account_id: format!("DEMO-{:02}", i + 1),
            name: NAMES[i % NAMES.len()].to_string(),
            phone: format!("+1202555{:04}", 100 + i),
            amount: Decimal::new(4_990 + 1_250 * i as i64, 2),
            currency: Some("USD".into()),
            due_date: due,
            timezone: Some(tz.name().to_string()),
            language: Language::En,
            jurisdiction: Some("us".into()),
            alt_phones: vec![],
            days_past_due: None,
            agent_uri: None,
            caller_id: None,
        };
        out.push((account, persona.clone()));
    }
    Ok(out)
}

/// Longer conversations rank first (measured on the demo's own runs).
fn length_rank(persona: &str) -> usize {
    const LONGEST_FIRST: [&str; 12] = [
        "barge_in",
        "dtmf",
        "paid",
        "hardship",
        "promise",
        "silent",
        "stop",
        "voicemail",
        "wrong_number",
        "no_answer",
        "hangup_mid_prompt",
        "busy",
    ];
    LONGEST_FIRST
        .iter()
        .position(|p| *p == persona)
        .unwrap_or(0)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// What a demo run left behind.
#[derive(Debug, Clone)]
pub struct DemoRun {
    /// The fresh directory (database, recordings, accounts.csv, duecall.toml).
    pub dir: PathBuf,
    /// The accounts called and the persona each dialled.
    pub accounts: Vec<(Account, String)>,
    /// The campaign's summary.
    pub summary: CampaignSummary,
}

/// Runs `duecall demo` and prints the table and where everything is;
/// returns the run (its directory is where the console login goes).
pub async fn run_demo(args: &DemoArgs) -> Result<DemoRun, CampaignError> {
    let run = demo(args).await?;
    let mut out = std::io::stdout().lock();
    write_report(&mut out, &run).map_err(|source| CampaignError::Write {
        path: PathBuf::from("<stdout>"),
        source,
    })?;
    Ok(run)
}

/// The demo without the final report: starts the simulated debtors on
/// loopback, writes the accounts and a config into a fresh directory, runs
/// the campaign exactly as `duecall run` does, and stops the debtors.
pub async fn demo(args: &DemoArgs) -> Result<DemoRun, CampaignError> {
    let now = Utc::now();
    let personas: Vec<String> = if args.personas.is_empty() {
        PERSONAS.iter().map(|p| p.to_string()).collect()
    } else {
        args.personas.clone()
    };
    let base = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let dir = fresh_dir(&base, now);
    std::fs::create_dir_all(&dir).map_err(|source| CampaignError::Write {
        path: dir.clone(),
        source,
    })?;
    println!("demo directory: {}", dir.display());

    let sim_cfg = crate::sim::SimConfig {
        ring_ms: Some(400),
        ..crate::sim::SimConfig::default()
    };
    println!("starting the simulated debtors (rendering their lines with espeak-ng) ...");
    let sim = crate::sim::start(sim_cfg)
        .await
        .map_err(|e| CampaignError::Sim(e.to_string()))?;
    let result = demo_campaign(args, &dir, &personas, now, &sim).await;
    sim.shutdown();
    let (accounts, summary) = result?;
    Ok(DemoRun {
        dir,
        accounts,
        summary,
    })
}

/// The table, the campaign summary, and where the files are.
pub fn write_report(out: &mut dyn Write, run: &DemoRun) -> std::io::Result<()> {
    writeln!(out)?;
    write_table(out, &run.accounts, &run.summary)?;
    writeln!(out)?;
    run.summary.write_text(out)?;
    writeln!(
        out,
        "accounts and config: {} and {}",
        run.dir.join("accounts.csv").display(),
        run.dir.join("duecall.toml").display()
    )?;
    writeln!(
        out,
        "export: duecall export --data-dir {} --since {}",
        run.dir.display(),
        run.summary.started_at.date_naive()
    )
}

async fn demo_campaign(
    args: &DemoArgs,
    dir: &Path,
    personas: &[String],
    now: DateTime<Utc>,
    sim: &crate::sim::SimCallee,
) -> Result<(Vec<(Account, String)>, CampaignSummary), CampaignError> {
    let accounts = demo_accounts(personas, now)?;
    let csv = dir.join("accounts.csv");
    // The campaign dials in file order: the longest conversations first,
    // so the short ones fill the gaps and the run ends sooner.
    let mut dial_order: Vec<&(Account, String)> = accounts.iter().collect();
    dial_order.sort_by_key(|(_, p)| length_rank(p));
    write_accounts_csv(
        &csv,
        &dial_order
            .iter()
            .map(|(a, _)| a.clone())
            .collect::<Vec<_>>(),
    )?;
    let mut config = String::new();
    config.push_str(
        "# Written by duecall demo: short timers, every account dials a simulated debtor.\n",
    );
    config.push_str("[sip]\nring_timeout_s = 8\n\n");
    config.push_str(&format!(
        "[dialogue]\nagent_uri = {}\n\n",
        toml_str(&sim.uri_for("agent"))
    ));
    config.push_str(&format!(
        "[campaign]\nmax_concurrent = {}\ncalls_per_second = 2.0\nshutdown_grace_s = 20\n\n[campaign.dial_uri_by_account]\n",
        args.max_concurrent
    ));
    for (a, persona) in &accounts {
        config.push_str(&format!(
            "{} = {}\n",
            toml_str(&a.account_id),
            toml_str(&sim.uri_for(persona))
        ));
    }
    let config_path = dir.join("duecall.toml");
    std::fs::write(&config_path, config).map_err(|source| CampaignError::Write {
        path: config_path.clone(),
        source,
    })?;
    let run = RunArgs::new(csv, config_path, dir.to_path_buf())
        .until((now + Duration::minutes(10)).fixed_offset())
        .max_concurrent(args.max_concurrent);
    println!(
        "calling {} fictional debtors, {} at a time ...",
        accounts.len(),
        args.max_concurrent
    );
    let (shutdown, watcher) = ctrl_c_shutdown();
    let summary = run_campaign_with(&run, shutdown, Progress::detect()).await;
    watcher.abort();
    Ok((accounts, summary?))
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

/// A route in a few words: `agent (hardship) + pause to 2026-12-20`.
pub fn route_text(r: &Route) -> String {
    let mut s = format!("{} ({})", r.kind.as_str(), r.reason);
    if let Some(u) = r.until {
        s.push_str(&format!(" to {}", u.format("%Y-%m-%d %H:%M %:z")));
    }
    if let Some(f) = &r.follow_up {
        s.push_str(" + ");
        s.push_str(&route_text(f));
    }
    s
}

/// The closing table: one line per account (its last attempt).
pub fn write_table(
    out: &mut dyn Write,
    accounts: &[(Account, String)],
    summary: &CampaignSummary,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<8} {:<13} {:<18} {:<10} {:<34} {:<18} route",
        "account", "name", "persona", "dispo", "heard (last reply)", "intent"
    )?;
    for (a, persona) in accounts {
        let last: Option<&AttemptResult> = summary
            .attempts
            .iter()
            .rev()
            .find(|r| r.account_id == a.account_id);
        let (dispo, heard, intent, route) = match last {
            Some(r) => (
                r.disposition.as_str().to_string(),
                r.heard.clone().unwrap_or_else(|| "-".into()),
                r.intent.clone().unwrap_or_else(|| "-".into()),
                r.route
                    .as_ref()
                    .map(route_text)
                    .unwrap_or_else(|| "-".into()),
            ),
            None => ("not dialled".into(), "-".into(), "-".into(), "-".into()),
        };
        writeln!(
            out,
            "{:<8} {:<13} {:<18} {:<10} {:<34} {:<18} {}",
            a.account_id.trim_start_matches("DEMO-"),
            clip(&a.name, 13),
            persona,
            dispo,
            clip(&heard, 34),
            intent,
            route
        )?;
    }
    Ok(())
}

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
            let mins = i64::from(chrono::Timelike::hour(&local)) * 60
                + i64::from(chrono::Timelike::minute(&local));
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
        caller_id: None,
    }
}

/// Writes accounts as the CSV `duecall run` reads.
pub fn write_accounts_csv(path: &Path, accounts: &[Account]) -> Result<(), super::CampaignError> {
    let werr = |source| super::CampaignError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(|e| werr(std::io::Error::other(e)))?;
    w.write_record([
        "account_id",
        "name",
        "phone",
        "amount",
        "currency",
        "due_date",
        "timezone",
        "language",
        "jurisdiction",
        "alt_phones",
        "agent_uri",
    ])
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
    fn the_builtin_persona_book_has_every_persona_the_demo_dials() {
        let b = crate::sim::PersonaBook::builtin();
        for n in PERSONAS {
            assert!(b.get(n).is_some(), "missing {n}");
        }
    }

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
