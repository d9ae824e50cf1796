//! QA labels: a reviewer's verdict on a call or one of its replies, and
//! the export of labelled replies as JSON lines `{"text", "intent",
//! "lang", "audio", "start_ms", "end_ms"}` (ARCHITECTURE.md's labelled
//! utterance plus where the reply's audio is) for the speech and intent
//! evaluations.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::attempts::intent_param;
use super::views;
use crate::store::qa_labels::{Label, LabelledTurn, NewLabel, Verdict};
use crate::web::auth::{Authed, Review};
use crate::web::error::{ErrorBody, WebError};
use crate::web::input::{ApiJson, Id};
use crate::web::state::AppState;

/// A label to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelBody {
    /// The reply (turn index from 0, as in the transcript); none: the whole call.
    #[schema(minimum = 0)]
    pub turn: Option<u32>,
    /// The verdict.
    pub verdict: Verdict,
    /// For `wrong_intent`: what the reply meant (required then, refused otherwise).
    pub right_intent: Option<String>,
    /// What the debtor really said, when the recogniser got it wrong.
    #[schema(max_length = 2000)]
    pub right_text: Option<String>,
    /// 1 (bad) to 5 (good).
    #[schema(minimum = 1, maximum = 5)]
    pub score: Option<u8>,
    /// Free text.
    #[schema(max_length = 4000)]
    pub note: Option<String>,
}

fn check(b: &LabelBody) -> Result<NewLabel, WebError> {
    let right_intent = intent_param("right_intent", b.right_intent.clone())?;
    match (b.verdict, &right_intent) {
        (Verdict::WrongIntent, None) => {
            return Err(WebError::bad(
                "right_intent",
                "a wrong_intent verdict needs the right intent",
            ))
        }
        (v, Some(_)) if v != Verdict::WrongIntent => {
            return Err(WebError::bad(
                "right_intent",
                "only a wrong_intent verdict takes a right intent",
            ))
        }
        _ => {}
    }
    if (b.verdict == Verdict::WrongIntent || b.right_text.is_some()) && b.turn.is_none() {
        return Err(WebError::bad(
            "turn",
            "a verdict on what was heard names the reply (its turn)",
        ));
    }
    if let Some(s) = b.score {
        if !(1..=5).contains(&s) {
            return Err(WebError::bad("score", "must be 1..=5"));
        }
    }
    let clean = |field: &str, v: &Option<String>, max: usize| -> Result<Option<String>, WebError> {
        match v {
            None => Ok(None),
            Some(t) if t.trim().is_empty() => Ok(None),
            Some(t) if t.chars().count() > max => {
                Err(WebError::bad(field, format!("at most {max} characters")))
            }
            Some(t) if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
                Err(WebError::bad(field, "must not contain control characters"))
            }
            Some(t) => Ok(Some(t.trim().to_string())),
        }
    };
    Ok(NewLabel {
        attempt_id: 0,
        turn_idx: b.turn,
        verdict: b.verdict,
        right_intent,
        right_text: clean("right_text", &b.right_text, 2000)?,
        score: b.score,
        note: clean("note", &b.note, 4000)?,
    })
}

/// Labels a call (or one of its replies).
#[utoipa::path(post, path = "/api/v1/attempts/{id}/labels", tag = "qa",
    params(("id" = i64, Path, description = "Attempt id", minimum = 1)),
    request_body = LabelBody,
    responses((status = 201, body = Label),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add(
    State(st): State<AppState>,
    who: Authed<Review>,
    Id(id): Id,
    ApiJson(body): ApiJson<LabelBody>,
) -> Result<(StatusCode, Json<Label>), WebError> {
    let mut l = check(&body)?;
    l.attempt_id = id;
    let now = st.now();
    let actor = who.who.actor.clone();
    let turn = l.turn_idx;
    let label = st
        .db
        .run(move |s| s.add_label(&l, &actor, now))
        .await?
        .ok_or_else(|| WebError::NotFound {
            what: if turn.is_some() {
                "turn of attempt"
            } else {
                "attempt"
            },
            id: match turn {
                Some(t) => format!("{t} of {id}"),
                None => id.to_string(),
            },
        })?;
    Ok((StatusCode::CREATED, Json(label)))
}

/// One labelled reply as the export writes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LabelledUtterance {
    /// What the debtor said (the reviewer's correction, else what was heard).
    pub text: String,
    /// Its true intent (the reviewer's for `wrong_intent`, else the recognised one).
    pub intent: String,
    /// `en` or `zh`.
    pub lang: String,
    /// The call's recording (the reply is on the right channel).
    pub audio: Option<String>,
    /// Where the reply starts in the recording, ms.
    pub start_ms: u64,
    /// Where it ends, ms.
    pub end_ms: u64,
    /// The call.
    pub attempt_id: i64,
    /// The reply's turn.
    pub turn: u32,
    /// What the recogniser heard.
    pub heard: Option<String>,
    /// What the agent decided.
    pub recognised_intent: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
}

/// The export line of a labelled reply, if its verdict says what the
/// reply meant (`correct` or `wrong_intent`) and its text is known.
pub fn utterance(
    t: &LabelledTurn,
    lang: &str,
    data_dir: &std::path::Path,
) -> Option<LabelledUtterance> {
    let l = &t.label;
    let turn = l.turn_idx?;
    let intent = match l.verdict {
        Verdict::WrongIntent => l.right_intent.clone()?,
        Verdict::Correct => t.intent.clone()?,
        Verdict::ScriptProblem | Verdict::ComplianceConcern => return None,
    };
    let text = l.right_text.clone().or_else(|| t.heard.clone())?;
    if text.starts_with("dtmf:") {
        return None;
    }
    // The outcome JSON has the reply's own start and end (the store's turn
    // row starts with the prompt); both in ms since the dial.
    let o = t.outcome.as_ref();
    let ot = o
        .and_then(|o| o.get("turns"))
        .and_then(|ts| ts.get(turn as usize));
    let start = ot
        .and_then(|x| x.get("start_ms"))
        .and_then(|v| v.as_u64())
        .unwrap_or(t.start_ms);
    let end = ot
        .and_then(|x| x.get("end_ms"))
        .and_then(|v| v.as_u64())
        .unwrap_or(t.end_ms);
    let off = o.and_then(views::recording_offset_ms).unwrap_or(0);
    let audio = t.recording.as_ref().map(|r| {
        let p = std::path::Path::new(r);
        if p.is_absolute() {
            r.clone()
        } else {
            data_dir.join(p).display().to_string()
        }
    });
    Some(LabelledUtterance {
        text,
        intent,
        lang: lang.to_string(),
        audio,
        start_ms: start.saturating_sub(off),
        end_ms: end.saturating_sub(off),
        attempt_id: l.attempt_id,
        turn,
        heard: t.heard.clone(),
        recognised_intent: t.intent.clone(),
        verdict: l.verdict,
    })
}

/// Every labelled reply whose true intent the label establishes, as JSON
/// lines (`application/x-ndjson`), the latest label of each reply. Audited
/// (`labels.export`).
#[utoipa::path(get, path = "/api/v1/labels/export", tag = "qa",
    responses((status = 200, description = "One LabelledUtterance per line", content_type = "application/x-ndjson", body = LabelledUtterance),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn export(State(st): State<AppState>, who: Authed<Review>) -> Result<Response, WebError> {
    let now = st.now();
    let actor = who.who.actor.clone();
    let rows = st
        .db
        .run(move |s| {
            let turns = s.labelled_turns()?;
            let mut out = Vec::with_capacity(turns.len());
            for t in turns {
                let lang = s
                    .account(&t.account_id)?
                    .map(|a| a.language.as_str().to_string())
                    .unwrap_or_else(|| "en".into());
                out.push((t, lang));
            }
            s.audit(
                now,
                &actor,
                "labels.export",
                "labels",
                &serde_json::json!({"labels": out.len()}),
            )?;
            Ok(out)
        })
        .await?;
    let mut body = String::new();
    for (t, lang) in &rows {
        if let Some(u) = utterance(t, lang, &st.data_dir) {
            if let Ok(line) = serde_json::to_string(&u) {
                body.push_str(&line);
                body.push('\n');
            }
        }
    }
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"labels.jsonl\""),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(verdict: Verdict) -> LabelBody {
        LabelBody {
            turn: Some(1),
            verdict,
            right_intent: None,
            right_text: None,
            score: Some(4),
            note: None,
        }
    }

    fn field(r: Result<NewLabel, WebError>) -> String {
        match r {
            Err(WebError::BadInput { field, .. }) => field,
            other => panic!("expected bad input, got {other:?}"),
        }
    }

    #[test]
    fn labels_are_checked_field_by_field() {
        assert!(check(&body(Verdict::Correct)).is_ok());
        assert_eq!(field(check(&body(Verdict::WrongIntent))), "right_intent");
        let mut b = body(Verdict::WrongIntent);
        b.right_intent = Some("hardshipp".into());
        assert_eq!(field(check(&b)), "right_intent");
        b.right_intent = Some("hardship".into());
        assert!(check(&b).is_ok());
        b.turn = None;
        assert_eq!(field(check(&b)), "turn");
        let mut c = body(Verdict::Correct);
        c.right_intent = Some("hardship".into());
        assert_eq!(field(check(&c)), "right_intent");
        let mut d = body(Verdict::ScriptProblem);
        d.score = Some(9);
        assert_eq!(field(check(&d)), "score");
    }

    fn labelled(verdict: Verdict, right: Option<&str>) -> LabelledTurn {
        LabelledTurn {
            label: Label {
                id: 1,
                attempt_id: 7,
                turn_idx: Some(1),
                verdict,
                right_intent: right.map(str::to_string),
                right_text: None,
                score: None,
                note: None,
                labelled_by: "q".into(),
                created_at: chrono::Utc::now(),
            },
            heard: Some("i lost my job".into()),
            intent: Some("unknown".into()),
            start_ms: 9000,
            end_ms: 14000,
            account_id: "A".into(),
            recording: Some("/d/r.wav".into()),
            outcome: Some(serde_json::json!({
                "call": {"started_at": "2026-01-01T00:00:00Z", "answered_at": "2026-01-01T00:00:00.500Z"},
                "turns": [{}, {"start_ms": 12000, "end_ms": 14000}]
            })),
        }
    }

    #[test]
    fn the_export_line_has_the_true_intent_and_the_reply_s_place_in_the_recording() {
        let dir = std::path::Path::new("/d");
        let u = utterance(&labelled(Verdict::WrongIntent, Some("hardship")), "en", dir).unwrap();
        assert_eq!(u.intent, "hardship");
        assert_eq!(u.text, "i lost my job");
        assert_eq!((u.start_ms, u.end_ms), (11500, 13500));
        assert_eq!(u.audio.as_deref(), Some("/d/r.wav"));
        let c = utterance(&labelled(Verdict::Correct, None), "en", dir).unwrap();
        assert_eq!(c.intent, "unknown");
        assert!(utterance(&labelled(Verdict::ScriptProblem, None), "en", dir).is_none());
    }
}
