//! The shapes the API answers with, and their making from what the store
//! keeps: the timed transcript of a call (who said what, when, in the
//! recording's own time), masked numbers, the pages of a list. Pure: no
//! store, no clock.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::account::{mask_phone, Account, Language};
use crate::dialogue::script::Vars;
use crate::dialogue::{PromptId, Script};

/// Paging of a list.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// At most this many items (1-500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Skip this many items (default 0).
    #[param(minimum = 0, maximum = 10000000)]
    pub offset: Option<u32>,
}

/// The largest page.
pub const MAX_LIMIT: u32 = 500;

impl Page {
    /// The limit and offset, checked.
    pub fn get(self) -> Result<(u32, u32), crate::web::error::WebError> {
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(crate::web::error::WebError::bad(
                "limit",
                format!("must be 1..={MAX_LIMIT}"),
            ));
        }
        let offset = self.offset.unwrap_or(0);
        if offset > 10_000_000 {
            return Err(crate::web::error::WebError::bad(
                "offset",
                "must be at most 10000000",
            ));
        }
        Ok((limit, offset))
    }
}

/// Who spoke a line of the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// duecall (a prompt played).
    Agent,
    /// The person called.
    Debtor,
}

/// One line of a call's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TranscriptLine {
    /// The turn (prompt and its reply) this line belongs to, from 0.
    pub turn: u32,
    /// Who.
    pub speaker: Speaker,
    /// When it started, ms since the dial.
    pub at_ms: u64,
    /// When it ended, ms since the dial (a prompt: start + played).
    pub end_ms: Option<u64>,
    /// Where it starts in the recording, ms (the recording starts with the
    /// media: at the answer or at early media).
    pub rec_ms: Option<u64>,
    /// Where it ends in the recording, ms.
    pub rec_end_ms: Option<u64>,
    /// What was said: the prompt's text from the script (dates the debtor
    /// gave are in their own reply), or what the recogniser heard.
    pub text: String,
    /// Agent lines: the prompt id.
    pub prompt: Option<String>,
    /// Agent lines: played to the end (false: cut by barge-in or hang-up).
    pub finished: Option<bool>,
    /// Agent lines: how far into the prompt it was cut, ms.
    pub cut_at_ms: Option<u64>,
    /// Debtor lines: the intent recognised.
    pub intent: Option<String>,
    /// Debtor lines: its confidence, 0..1.
    pub confidence: Option<f64>,
    /// Debtor lines: the words or digit that decided the intent.
    pub reason: Option<String>,
    /// Debtor lines heard over a prompt but not acted on (fillers, speech
    /// over a disclosure).
    pub ignored: bool,
}

fn u(v: &serde_json::Value, k: &str) -> Option<u64> {
    v.get(k).and_then(|x| x.as_u64())
}

fn s(v: &serde_json::Value, k: &str) -> Option<String> {
    v.get(k).and_then(|x| x.as_str()).map(str::to_string)
}

/// Where ms-since-dial falls in the recording: the recording starts when
/// media does, which the outcome's `answered_at - started_at` measures.
pub fn recording_offset_ms(outcome: &serde_json::Value) -> Option<u64> {
    let call = outcome.get("call")?;
    let parse = |k: &str| {
        call.get(k)
            .and_then(|v| v.as_str())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    };
    let (start, answer) = (parse("started_at")?, parse("answered_at")?);
    let d = (answer - start).num_milliseconds();
    (d >= 0).then_some(d as u64)
}

/// The values a script fills into prompts for this account.
pub fn vars_for(account: &Account, today: NaiveDate) -> Vars {
    Vars {
        promise_date: Some("…".into()),
        callback_time: Some("…".into()),
        ..Vars::for_account(account, account.language, today)
    }
}

/// The transcript of a call from its turns as the outcome JSON (or an
/// escalation) records them: one agent line per prompt, one debtor line
/// per reply, ignored speech flagged. `script` and `vars` render prompt
/// texts; without them the prompt id stands in.
pub fn transcript(
    turns: &serde_json::Value,
    offset_ms: Option<u64>,
    script: Option<&Script>,
    vars: Option<&Vars>,
) -> Vec<TranscriptLine> {
    let rec = |t: u64| offset_ms.map(|o| t.saturating_sub(o));
    let mut out = Vec::new();
    let Some(turns) = turns.as_array() else {
        return out;
    };
    for (i, t) in turns.iter().enumerate() {
        let turn = i as u32;
        let prompt = s(t, "prompt").unwrap_or_default();
        // The store's turn rows call the prompt's start `start_ms`; the
        // outcome JSON calls it `prompt_start_ms`.
        let p_start = u(t, "prompt_start_ms")
            .or_else(|| {
                t.get("prompt_start_ms")
                    .is_none()
                    .then(|| u(t, "start_ms"))
                    .flatten()
            })
            .unwrap_or(0);
        let played = u(t, "played_ms").unwrap_or(0);
        let text = match (script, vars) {
            // A prompt id this build no longer knows shows as its id.
            (Some(sc), Some(v)) => PromptId::parse(&prompt).map(|id| sc.render(id, v)),
            _ => None,
        }
        .unwrap_or_else(|| format!("[{prompt}]"));
        let p_end = p_start + played;
        out.push(TranscriptLine {
            turn,
            speaker: Speaker::Agent,
            at_ms: p_start,
            end_ms: Some(p_end),
            rec_ms: rec(p_start),
            rec_end_ms: rec(p_end),
            text,
            prompt: Some(prompt),
            finished: t.get("finished").and_then(|v| v.as_bool()),
            cut_at_ms: u(t, "cut_at_ms"),
            intent: None,
            confidence: None,
            reason: None,
            ignored: false,
        });
        if let Some(ign) = t.get("ignored").and_then(|v| v.as_array()) {
            for text in ign.iter().filter_map(|x| x.as_str()) {
                out.push(TranscriptLine {
                    turn,
                    speaker: Speaker::Debtor,
                    at_ms: p_start,
                    end_ms: None,
                    rec_ms: rec(p_start),
                    rec_end_ms: None,
                    text: text.to_string(),
                    prompt: None,
                    finished: None,
                    cut_at_ms: None,
                    intent: None,
                    confidence: None,
                    reason: None,
                    ignored: true,
                });
            }
        }
        if let Some(heard) = s(t, "heard") {
            let is_outcome_shape = t.get("prompt_start_ms").is_some();
            let start = if is_outcome_shape {
                u(t, "start_ms")
            } else {
                None
            };
            let end = u(t, "end_ms");
            let at = start.or(end).unwrap_or(p_end);
            out.push(TranscriptLine {
                turn,
                speaker: Speaker::Debtor,
                at_ms: at,
                end_ms: end,
                rec_ms: rec(at),
                rec_end_ms: end.and_then(rec),
                text: heard,
                prompt: None,
                finished: None,
                cut_at_ms: None,
                intent: s(t, "intent"),
                confidence: t.get("confidence").and_then(|v| v.as_f64()),
                reason: s(t, "reason"),
                ignored: false,
            });
        }
    }
    out.sort_by_key(|l| (l.at_ms, l.speaker == Speaker::Debtor));
    out
}

/// [`transcript`] for a call with an account: prompt texts in the
/// account's script, its figures as of `day` (the day of the call); without
/// the account (no longer stored), prompt ids.
pub fn account_transcript(
    turns: &serde_json::Value,
    offset_ms: Option<u64>,
    scripts: &Scripts,
    account: Option<&Account>,
    day: NaiveDate,
) -> Vec<TranscriptLine> {
    let vars = account.map(|a| vars_for(a, day));
    let script = account.and_then(|a| script_for(scripts, a.language));
    transcript(turns, offset_ms, script, vars.as_ref())
}

/// Each row with its account (`None`: no longer stored), for lists that
/// show the account.
pub fn with_accounts<T>(
    s: &crate::store::Store,
    rows: Vec<T>,
    account_id: impl Fn(&T) -> &str,
) -> Result<Vec<(T, Option<Account>)>, crate::store::StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let a = s.account(account_id(&r))?;
        out.push((r, a));
    }
    Ok(out)
}

/// Where an attempt's recording is served.
pub fn recording_url(attempt: i64) -> String {
    format!("/api/v1/attempts/{attempt}/recording")
}

/// A stored route as the API shows it (JSON, as the outcome has it).
pub fn route_json(route: Option<&impl Serialize>) -> Option<serde_json::Value> {
    route.and_then(|r| serde_json::to_value(r).ok())
}

/// Scripts by language, for rendering prompt texts.
pub type Scripts = BTreeMap<&'static str, Script>;

/// The script for a language, if loaded.
pub fn script_for(scripts: &Scripts, lang: Language) -> Option<&Script> {
    scripts.get(lang.as_str())
}

/// An account as lists show it (number masked).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AccountBrief {
    /// The lender's id.
    pub account_id: String,
    /// The debtor's name.
    pub name: String,
    /// Main number, masked (`+1********67`).
    pub phone_masked: String,
    /// Amount due (exact decimal as a string).
    pub amount: String,
    /// Currency.
    pub currency: Option<String>,
    /// Due date.
    pub due_date: NaiveDate,
    /// Days past due (the lender's figure, else from the due date).
    pub days_past_due: i64,
    /// Script language.
    pub language: String,
}

/// The brief of an account at `today`.
pub fn brief(a: &Account, today: NaiveDate) -> AccountBrief {
    AccountBrief {
        account_id: a.account_id.clone(),
        name: a.name.clone(),
        phone_masked: mask_phone(&a.phone),
        amount: a.amount.to_string(),
        currency: a.currency.clone(),
        due_date: a.due_date,
        days_past_due: a
            .days_past_due
            .unwrap_or_else(|| (today - a.due_date).num_days()),
        language: a.language.as_str().to_string(),
    }
}

/// A UTC instant's date in UTC.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transcript_puts_prompts_and_replies_in_recording_time() {
        let outcome = json!({
            "call": {"started_at": "2026-12-06T03:32:45.636Z", "answered_at": "2026-12-06T03:32:46.037Z"},
            "turns": [
                {"prompt": "opening", "prompt_start_ms": 2263, "played_ms": 8778, "finished": true,
                 "heard": null, "intent": null, "confidence": null, "start_ms": null, "end_ms": null},
                {"prompt": "right_party", "prompt_start_ms": 11041, "played_ms": 1941, "finished": false,
                 "cut_at_ms": 1500, "heard": "yeah please", "intent": "identity_confirmed",
                 "confidence": 0.6, "reason": "matched 'yes'", "start_ms": 13543, "end_ms": 14812,
                 "ignored": ["uh"]}
            ]
        });
        let off = recording_offset_ms(&outcome);
        assert_eq!(off, Some(401));
        let lines = transcript(&outcome["turns"], off, None, None);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].speaker, Speaker::Agent);
        assert_eq!(lines[0].rec_ms, Some(2263 - 401));
        assert_eq!(lines[0].text, "[opening]");
        let reply = lines.iter().find(|l| l.text == "yeah please").unwrap();
        assert_eq!(reply.speaker, Speaker::Debtor);
        assert_eq!(reply.at_ms, 13543);
        assert_eq!(reply.rec_end_ms, Some(14812 - 401));
        assert_eq!(reply.intent.as_deref(), Some("identity_confirmed"));
        let cut = lines
            .iter()
            .find(|l| l.prompt.as_deref() == Some("right_party"))
            .unwrap();
        assert_eq!(cut.finished, Some(false));
        assert_eq!(cut.cut_at_ms, Some(1500));
        assert!(lines.iter().any(|l| l.ignored && l.text == "uh"));
        // In time order.
        assert!(lines.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }

    #[test]
    fn a_script_renders_the_prompt_text_for_the_account() {
        let script = Script::parse(include_str!("../../../prompts/en.toml"), "en.toml").unwrap();
        let account: Account = serde_json::from_value(json!({
            "account_id": "A1", "name": "Maria Lopez", "phone": "+14155550167",
            "amount": "125.50", "due_date": "2026-11-20"
        }))
        .unwrap();
        let vars = vars_for(&account, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        let turns = json!([{"prompt": "right_party", "prompt_start_ms": 100, "played_ms": 900, "finished": true}]);
        let lines = transcript(&turns, None, Some(&script), Some(&vars));
        assert!(lines[0].text.contains("Maria Lopez"), "{}", lines[0].text);
        assert_eq!(
            brief(&account, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()).phone_masked,
            "+1********67"
        );
    }
}
