//! `duecall check <csv>` and `duecall plan <csv> --at T`: the policy layer's
//! command entries, wired into clap by main.rs. Owns reading the files these
//! commands name and printing their results; never dials, never writes state
//! (plan has no side effects), never reads the clock (`--at` is required).

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{decide, AccountState, PolicyConfig, PolicyDecision, PolicyError};
use crate::account::csv::{load_accounts_with, CheckReport, LoadOptions};
use crate::account::history::{load_history, PastAttempt};
use crate::account::tz::{zones_for, TzSource};

/// `duecall check <csv>`: validate an accounts file.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The accounts CSV.
    pub csv: PathBuf,
    /// One JSON line per error, then a JSON summary line.
    #[arg(long)]
    pub json: bool,
    /// Config TOML with a `[policy]` table (for `default_region`).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `duecall plan <csv> --at T`: what the gate would decide for every account at T.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// The accounts CSV.
    pub csv: PathBuf,
    /// The instant to decide for (RFC 3339, e.g. 2026-11-21T10:00:00-08:00).
    #[arg(long)]
    pub at: chrono::DateTime<chrono::FixedOffset>,
    /// Attempt history from another dialler (JSON lines).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Config TOML with a `[policy]` table.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Decide on this data directory's store exactly as `duecall run` does
    /// (attempts, suppressions and the do-not-call list, pauses and how they
    /// settle, holds); read only.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Decide on this shared PostgreSQL store (`postgres://user@host:port/db`)
    /// exactly as `duecall run --store` does; read only. With `--data-dir`
    /// and without this flag, `$DUECALL_STORE` names it when set.
    #[arg(long)]
    pub store: Option<String>,
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    policy: PolicyConfig,
}

/// Reads the `[policy]` table of a config file (other tables are left to
/// their owners); the default config when no path is given.
pub fn load_policy_config(path: Option<&Path>) -> Result<PolicyConfig, PolicyError> {
    let Some(path) = path else {
        return Ok(PolicyConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let f: ConfigFile = toml::from_str(&text).map_err(|e| PolicyError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(f.policy)
}

fn read_accounts(path: &Path, cfg: &PolicyConfig) -> Result<CheckReport, PolicyError> {
    let file = std::fs::File::open(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(load_accounts_with(
        BufReader::new(file),
        &LoadOptions {
            default_region: cfg.default_region.clone(),
        },
    ))
}

#[derive(Serialize)]
struct Summary<'a> {
    accounts: usize,
    errors: usize,
    warnings: &'a [String],
}

/// Validates the accounts file and prints one line per bad row then a
/// summary. Returns the exit code: 0 when every row is good, 1 otherwise.
pub fn run_check(args: &CheckArgs, out: &mut dyn Write) -> Result<i32, PolicyError> {
    let cfg = load_policy_config(args.config.as_deref())?;
    let report = read_accounts(&args.csv, &cfg)?;
    if args.json {
        for e in &report.errors {
            serde_json::to_writer(&mut *out, e).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        let s = Summary {
            accounts: report.accounts.len(),
            errors: report.errors.len(),
            warnings: &report.warnings,
        };
        serde_json::to_writer(&mut *out, &serde_json::json!({ "summary": s }))
            .map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        for e in &report.errors {
            writeln!(out, "line {}: {}", e.line, e.reason)?;
        }
        for w in &report.warnings {
            writeln!(out, "warning: {w}")?;
        }
        writeln!(
            out,
            "{} accounts ok, {} rows rejected",
            report.accounts.len(),
            report.errors.len()
        )?;
    }
    Ok(if report.errors.is_empty() { 0 } else { 1 })
}

#[derive(Serialize)]
struct PlanLine<'a> {
    #[serde(flatten)]
    decision: &'a PolicyDecision,
    tz_source: TzSource,
}

/// Indexes a history so each account gets its own records and every record to
/// any of its numbers.
pub struct HistoryIndex<'a> {
    records: &'a [PastAttempt],
    by_account: HashMap<&'a str, Vec<usize>>,
    by_phone: HashMap<&'a str, Vec<usize>>,
}

impl<'a> HistoryIndex<'a> {
    /// Builds the index.
    pub fn new(records: &'a [PastAttempt]) -> Self {
        let mut by_account: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_phone: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            by_account.entry(r.account_id.as_str()).or_default().push(i);
            by_phone.entry(r.phone.as_str()).or_default().push(i);
        }
        HistoryIndex {
            records,
            by_account,
            by_phone,
        }
    }

    /// The records the gate needs for one account.
    pub fn for_account(&self, account: &crate::account::Account) -> Vec<PastAttempt> {
        let mut idx: Vec<usize> = self
            .by_account
            .get(account.account_id.as_str())
            .cloned()
            .unwrap_or_default();
        for n in std::iter::once(&account.phone).chain(account.alt_phones.iter()) {
            if let Some(v) = self.by_phone.get(n.as_str()) {
                idx.extend_from_slice(v);
            }
        }
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter().map(|i| self.records[i].clone()).collect()
    }
}

/// Prints one JSON line per account: the decision at `--at` with every rule,
/// its figures and `next_allowed_at`. Bad CSV rows and history lines are
/// printed as `{"line":..,"error":..}` / `{"history_line":..,"error":..}`.
/// No side effects.
pub fn run_plan(args: &PlanArgs, out: &mut dyn Write) -> Result<(), PolicyError> {
    let cfg = load_policy_config(args.config.as_deref())?;
    let report = read_accounts(&args.csv, &cfg)?;
    if report.accounts.is_empty()
        && report
            .errors
            .iter()
            .any(|e| e.line == 1 && e.account_id.is_none())
    {
        let message = report
            .errors
            .iter()
            .map(|e| e.reason.clone())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(PolicyError::Accounts {
            path: args.csv.clone(),
            message,
        });
    }
    let json_line = |out: &mut dyn Write, v: &dyn erased::Ser| -> Result<(), PolicyError> {
        v.write_json(out)?;
        writeln!(out)?;
        Ok(())
    };
    for e in &report.errors {
        json_line(
            out,
            &serde_json::json!({ "line": e.line, "account_id": e.account_id, "error": e.reason }),
        )?;
    }
    let history = match &args.history {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|source| PolicyError::Read {
                path: p.clone(),
                source,
            })?;
            let h = load_history(BufReader::new(f), &cfg.default_region);
            // Fail closed: an unreadable line may be an attempt the caps
            // must count; planning without it could allow a call too many.
            if let Some(e) = h.errors.first() {
                return Err(PolicyError::History {
                    path: p.clone(),
                    line: e.line as u64,
                    reason: e.reason.clone(),
                });
            }
            h.records
        }
        None => Vec::new(),
    };
    let index = HistoryIndex::new(&history);
    let now = args.at.with_timezone(&Utc);
    // The store `run` would decide on: --store (or $DUECALL_STORE beside
    // --data-dir), else the data directory's SQLite; none without either.
    let store = match (&args.store, &args.data_dir) {
        (None, None) => None,
        (flag, dir) => {
            let url = crate::store::cli::store_url(flag.as_deref(), None)?;
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from("."));
            Some(crate::store::Store::open_existing_at(&dir, url.as_deref())?)
        }
    };
    for a in &report.accounts {
        let (zones, tz_source) = zones_for(a);
        // What the file says about when to call wins, as `run` stores it
        // before deciding.
        let contact = report.contact.get(&a.account_id);
        let with_contact = |mut state: AccountState| {
            if let Some(c) = contact {
                state.call_hours = c.call_hours.clone();
                state.night_call_consent = c.night_call_consent;
            }
            state
        };
        let d = match &store {
            // The run's own read of the store (`gate::state_on_store` and
            // `history_on_store`, as `decide_on_store` does), over what the
            // run writes first: the file's contact columns and the --history
            // lines it imports.
            Some(s) => {
                let state = with_contact(crate::campaign::gate::state_on_store(s, a, &cfg, now)?);
                let mut h = crate::campaign::gate::history_on_store(s, a)?;
                for r in index.for_account(a) {
                    if !h
                        .iter()
                        .any(|x| x.account_id == r.account_id && x.phone == r.phone && x.at == r.at)
                    {
                        h.push(r);
                    }
                }
                decide(a, &zones, &h, &state, &cfg, now)
            }
            None => decide(
                a,
                &zones,
                &index.for_account(a),
                &with_contact(AccountState::default()),
                &cfg,
                now,
            ),
        };
        json_line(
            out,
            &PlanLine {
                decision: &d,
                tz_source,
            },
        )?;
    }
    Ok(())
}

mod erased {
    /// Lets one closure print several serialisable types.
    pub trait Ser {
        fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
            serde_json::to_writer(out, self).map_err(std::io::Error::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("duecall-policy-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn check_prints_one_line_per_bad_row_and_exits_1() {
        let p = tmp("check.csv", "account_id,name,phone,amount,due_date\nA1,N,+14155550100,1,2026-01-01\nA2,N,12ab,1,2026-01-01\n");
        let mut out = Vec::new();
        let code = run_check(
            &CheckArgs {
                csv: p.clone(),
                json: false,
                config: None,
            },
            &mut out,
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(code, 1);
        assert!(
            s.starts_with("line 3: phone '12ab' is not a valid number\n"),
            "{s}"
        );
        assert!(s.contains("1 accounts ok, 1 rows rejected"));
        let mut out = Vec::new();
        run_check(
            &CheckArgs {
                csv: p,
                json: true,
                config: None,
            },
            &mut out,
        )
        .unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["line"], 3);
        assert_eq!(lines[1]["summary"]["errors"], 1);
    }

    /// `duecall plan <csv> --history <hist> --at 2026-11-20T14:00:00+08:00`.
    fn plan_at_2pm_shanghai(csv: PathBuf, hist: PathBuf) -> PlanArgs {
        PlanArgs {
            csv,
            at: chrono::DateTime::parse_from_rfc3339("2026-11-20T14:00:00+08:00").unwrap(),
            history: Some(hist),
            config: None,
            data_dir: None,
            store: None,
        }
    }

    #[test]
    fn plan_prints_a_decision_per_account_with_history_counted() {
        let csv = tmp(
            "plan.csv",
            "account_id,name,phone,amount,due_date,jurisdiction,timezone\nA1,N,+8613812345678,1,2026-11-18,cn,\nA2,N,+14155550100,1,2026-11-18,us,\n",
        );
        let hist = tmp(
            "plan.jsonl",
            concat!(
                r#"{"account_id":"A1","phone":"+8613812345678","at":"2026-11-20T01:00:00Z","disposition":"no-answer"}"#,
                "\n",
                r#"{"account_id":"A1","phone":"+8613812345678","at":"2026-11-20T02:00:00Z","disposition":"busy"}"#,
                "\n",
                r#"{"account_id":"A1","phone":"+8613812345678","at":"2026-11-20T03:00:00Z","disposition":"busy"}"#,
                "\n",
            ),
        );
        let args = plan_at_2pm_shanghai(csv, hist);
        let mut out = Vec::new();
        run_plan(&args, &mut out).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let a1 = &lines[0];
        assert_eq!(a1["account_id"], "A1");
        assert_eq!(a1["decision"], "deny");
        let rule = a1["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == "attempts_per_number_per_day")
            .unwrap();
        assert_eq!(rule["figures"]["count"], 3);
        assert_eq!(a1["next_allowed_at"], "2026-11-21T00:00:00Z"); // 08:00 Shanghai next day
        let a2 = &lines[1];
        assert_eq!(a2["tz_source"], "number_prefix");
        assert_eq!(a2["decision"], "deny"); // 22:00 in Los Angeles
        assert_eq!(a2["next_allowed_at"], "2026-11-20T16:00:00Z"); // 08:00 PST
    }

    #[test]
    fn plan_refuses_to_decide_on_a_history_it_cannot_read_whole() {
        let csv = tmp(
            "plan-bad.csv",
            "account_id,name,phone,amount,due_date,jurisdiction,timezone\nA1,N,+8613812345678,1,2026-11-18,cn,\n",
        );
        // Three busy dials today would deny A1; the third is unreadable.
        let hist = tmp(
            "plan-bad.jsonl",
            concat!(
                r#"{"account_id":"A1","phone":"+8613812345678","at":"2026-11-20T01:00:00Z","disposition":"busy"}"#,
                "\n",
                r#"{"account_id":"A1","phone":"+8613812345678","at":"2026-11-20T02:00:00Z","disposition":"busy"}"#,
                "\n",
                r#"{"account_id":"A1","phone":"+8613812345678","at":"2026-11-20T03:00"#,
                "\n",
            ),
        );
        let args = plan_at_2pm_shanghai(csv, hist);
        let mut out = Vec::new();
        let e = run_plan(&args, &mut out).unwrap_err();
        assert!(
            matches!(e, PolicyError::History { line: 3, .. }),
            "the line is named: {e}"
        );
        assert!(out.is_empty(), "no decision printed, let alone an allow");
    }
}
