//! How a run shows itself: the live progress line (counts only: no
//! numbers, no names) and the summary printed at the end.

use crate::stats::Durations;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::outcomes::AttemptResult;
use super::recovery::RecoveredAttempt;
use super::scheduler::Summary;

/// How progress is shown while the campaign runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A line redrawn in place on stderr (a terminal).
    Live,
    /// A plain line on stderr every `progress_s`.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// `Live` when stderr is a terminal, else `Lines`.
    pub fn detect() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Live
        } else {
            Progress::Lines
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignSummary {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The database file.
    pub database: PathBuf,
    /// Where recordings and outcome JSON went.
    pub recordings: Option<PathBuf>,
    /// The run's start and end on the campaign clock.
    pub started_at: DateTime<Utc>,
    /// End of the run.
    pub ended_at: DateTime<Utc>,
    /// The scheduler's final counts (by disposition and by route).
    pub scheduler: Summary,
    /// Every attempt of this run, in the order they ended; empty when the
    /// run was set up not to keep them (`CampaignSetup::keep_attempts`:
    /// `duecall serve`, whose run lasts days).
    pub attempts: Vec<AttemptResult>,
    /// How many attempts of this run ended (kept or not).
    pub attempts_ended: u64,
    /// Attempts of a crashed run, recovered at start-up.
    pub recovered: Vec<RecoveredAttempt>,
    /// Whether the run was stopped (Ctrl-C) rather than finished.
    pub interrupted: bool,
    /// How long this node's claims took (wall time): the store's write
    /// lock, the gate asked again, the decision stored. What several nodes
    /// on one store wait for. Fixed memory however long the run.
    pub claims: Durations,
}

impl CampaignSummary {
    /// The summary in a few lines for a person.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = &self.scheduler;
        writeln!(
            out,
            "campaign {}: {} accounts, {} dials, {} done ({} blocked by the rules), {} left for a later run",
            if self.interrupted { "stopped" } else { "finished" },
            s.total,
            s.dials,
            s.done,
            s.blocked,
            s.remaining
        )?;
        writeln!(
            out,
            "by disposition: {}",
            join_counts(s.by_disposition.iter().map(|(k, v)| (k.as_str(), *v)))
        )?;
        writeln!(
            out,
            "by route: {}",
            join_counts(s.by_route.iter().map(|(k, v)| (k.as_str(), *v)))
        )?;
        if let Some(a) = &s.admission {
            writeln!(
                out,
                "admission: limit {} at the end (highest {}, lowest after a cut {}), cut {} times, {} congested samples{}",
                a.limit,
                a.highest,
                a.lowest,
                a.cuts,
                a.congested,
                if a.slow_start { ", still in slow start" } else { "" }
            )?;
        }
        if !self.recovered.is_empty() {
            let n: usize = self.recovered.iter().map(|r| r.recordings.len()).sum();
            let imported = self
                .recovered
                .iter()
                .filter(|r| r.imported_from.is_some())
                .count();
            writeln!(
                out,
                "recovered after a crash: {} attempts ({imported} outcomes imported, {} failed with reason crash), {n} recordings repaired",
                self.recovered.len(),
                self.recovered.len() - imported
            )?;
        }
        if let Some(t) = s.next_at {
            writeln!(
                out,
                "next allowed dial: {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )?;
        }
        let claims = &self.claims;
        if let (Some(p50), Some(p95), Some(max)) = (
            claims.quantile(0.5),
            claims.quantile(0.95),
            claims.quantile(1.0),
        ) {
            let ms = |us: u64| us as f64 / 1000.0;
            writeln!(
                out,
                "claims: {} (p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms)",
                claims.count(),
                ms(p50),
                ms(p95),
                ms(max)
            )?;
        }
        writeln!(out, "database: {}", self.database.display())?;
        if let Some(r) = &self.recordings {
            writeln!(out, "recordings and outcomes: {}", r.display())?;
        }
        Ok(())
    }
}

/// `name n, name n` in name order (`-` for none).
fn join_counts<'a>(counts: impl Iterator<Item = (&'a str, u64)>) -> String {
    let mut v: Vec<_> = counts.collect();
    v.sort();
    if v.is_empty() {
        return "-".into();
    }
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The progress line: redrawn in place on a terminal, else printed as plain
/// lines. Counts only: no numbers, no names.
pub(super) struct ProgressLine {
    mode: Progress,
    drawn: bool,
}

impl ProgressLine {
    pub(super) fn new(mode: Progress) -> Self {
        ProgressLine { mode, drawn: false }
    }

    fn text(s: &Summary, now: DateTime<Utc>) -> String {
        let next = s
            .next_at
            .map(|t| format!(", next at {}", t.format("%H:%M:%S")))
            .unwrap_or_default();
        let limit = s
            .admission
            .map(|a| {
                let how = if a.slow_start { ", slow start" } else { "" };
                format!(" (limit {}{how}, cut {})", a.limit, a.cuts)
            })
            .unwrap_or_default();
        format!(
            "{} in flight {}{limit}, done {}/{}, remaining {}, dials {}; {}{}",
            now.format("%H:%M:%S"),
            s.in_flight,
            s.done,
            s.total,
            s.remaining,
            s.dials,
            join_counts(s.by_disposition.iter().map(|(k, v)| (k.as_str(), *v))),
            next
        )
    }

    pub(super) fn show(&mut self, s: &Summary, now: DateTime<Utc>) {
        let line = Self::text(s, now);
        let mut err = std::io::stderr().lock();
        match self.mode {
            Progress::Live => {
                let _ = write!(err, "\r{line}\x1b[K");
                let _ = err.flush();
                self.drawn = true;
            }
            Progress::Lines => {
                let _ = writeln!(err, "campaign: {line}");
            }
            Progress::Quiet => {}
        }
    }

    pub(super) fn message(&mut self, m: &str) {
        if self.mode == Progress::Quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.drawn {
            let _ = writeln!(err);
            self.drawn = false;
        }
        let _ = writeln!(err, "campaign: {m}");
    }

    pub(super) fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}
