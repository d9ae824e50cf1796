//! What the simulated callee keeps of each call (`SimCallRecord`: the lines
//! it said, the DTMF it sent, the REFER it got, who hung up) and the events
//! it tells as the call goes (`SimEvent`). Plain records; the callee
//! (`callee`) fills them.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::script::PromptHeard;

/// Who ended an answered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeFrom {
    /// The simulated debtor hung up (its script, a timeout, shutdown).
    Sim,
    /// duecall (the caller) hung up.
    Caller,
}

/// A line the debtor said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SaidLine {
    /// The text.
    pub text: String,
    /// When its first frame went out, ms on the sim's media clock (from the answer).
    pub at_ms: u64,
    /// When its last voiced audio went out (lines are trimmed of silence).
    pub end_ms: u64,
}

/// DTMF the debtor pressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentDtmf {
    /// Digits.
    pub digits: String,
    /// Media clock when queued.
    pub at_ms: u64,
}

/// A REFER the debtor's phone received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferReceived {
    /// The Refer-To header as received.
    pub refer_to: String,
    /// The target URI without its headers (`sip:agent@host`).
    pub target: String,
    /// The URI headers (`?X-Duecall-Case=...`), percent-decoded, in order.
    pub headers: Vec<(String, String)>,
    /// The status we answered (202, or the persona's refusal).
    pub status: u16,
    /// When it arrived, ms on the sim's media clock (from the answer).
    pub at_ms: u64,
}

impl ReferReceived {
    /// The value of URI header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Everything the sim saw and did on one call.
#[derive(Debug, Clone, Serialize)]
pub struct SimCallRecord {
    /// The persona that took the call (`?` when none matched: 404).
    pub persona: String,
    /// SIP Call-ID (the caller's `CallLeg::call_id`).
    pub call_id: String,
    /// The Request-URI.
    pub request_uri: String,
    /// `X-*` headers of the INVITE.
    pub invite_headers: Vec<(String, String)>,
    /// The final status the sim answered the INVITE with (200, 486, 487, 404, ...).
    pub status: Option<u16>,
    /// Answered (200 OK sent).
    pub answered: bool,
    /// Negotiated codec.
    pub codec: Option<String>,
    /// duecall's prompts as heard (start and end of voice).
    pub prompts: Vec<PromptHeard>,
    /// How many prompts (speech segments) of duecall's were heard.
    pub prompts_heard: u32,
    /// Lines said, in order.
    pub lines_said: Vec<SaidLine>,
    /// DTMF pressed.
    pub dtmf_sent: Vec<SentDtmf>,
    /// DTMF digits duecall sent.
    pub dtmf_received: Vec<char>,
    /// The REFER, if one came.
    pub refer_received: Option<ReferReceived>,
    /// Who hung up an answered call.
    pub bye_from: Option<ByeFrom>,
    /// The two-channel recording (left: the sim, right: what it heard).
    pub recording: Option<PathBuf>,
    /// Call over (record final).
    pub ended: bool,
}

impl SimCallRecord {
    /// An empty record of the call `call_id` to `request_uri`.
    pub(super) fn new(call_id: String, request_uri: String) -> Self {
        SimCallRecord {
            persona: "?".into(),
            call_id,
            request_uri,
            invite_headers: Vec::new(),
            status: None,
            answered: false,
            codec: None,
            prompts: Vec::new(),
            prompts_heard: 0,
            lines_said: Vec::new(),
            dtmf_sent: Vec::new(),
            dtmf_received: Vec::new(),
            refer_received: None,
            bye_from: None,
            recording: None,
            ended: false,
        }
    }

    /// Reply latencies as the callee hears them: from the end of each line
    /// it said to the first voiced frame of duecall's next prompt (ms), for
    /// every line that a prompt followed.
    pub fn reply_latencies_ms(&self) -> Vec<u64> {
        self.reply_latencies()
            .into_iter()
            .map(|(_, ms)| ms)
            .collect()
    }

    /// [`Self::reply_latencies_ms`] with the line each latency followed.
    pub fn reply_latencies(&self) -> Vec<(&str, u64)> {
        let mut out = Vec::new();
        for (i, line) in self.lines_said.iter().enumerate() {
            let next_line = self
                .lines_said
                .get(i + 1)
                .map(|l| l.at_ms)
                .unwrap_or(u64::MAX);
            if let Some(p) = self
                .prompts
                .iter()
                .find(|p| p.start_ms >= line.end_ms && p.start_ms < next_line)
            {
                out.push((line.text.as_str(), p.start_ms - line.end_ms));
            }
        }
        out
    }
}

/// What happens on the sim's calls, live (for `duecall sim` and the demo).
#[derive(Debug, Clone)]
pub struct SimEvent {
    /// SIP Call-ID.
    pub call_id: String,
    /// Persona.
    pub persona: String,
    /// Media clock (0 before the answer).
    pub at_ms: u64,
    /// What.
    pub kind: SimEventKind,
}

/// Kinds of [`SimEvent`].
#[derive(Debug, Clone)]
pub enum SimEventKind {
    /// An INVITE arrived.
    Incoming {
        /// Its Request-URI.
        uri: String,
    },
    /// Answered (200 OK).
    Answered,
    /// Rejected with this status.
    Rejected(u16),
    /// The caller cancelled while it rang.
    Cancelled,
    /// One of duecall's prompts ended.
    Prompt(PromptHeard),
    /// The debtor said a line.
    Said(String),
    /// The debtor pressed digits.
    Dtmf(String),
    /// A REFER arrived.
    Refer(ReferReceived),
    /// The call ended.
    Ended(Option<ByeFrom>),
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id: String = self.call_id.chars().take(12).collect();
        write!(f, "[{id} {} {:>6} ms] ", self.persona, self.at_ms)?;
        match &self.kind {
            SimEventKind::Incoming { uri } => write!(f, "INVITE {uri}"),
            SimEventKind::Answered => write!(f, "answered"),
            SimEventKind::Rejected(c) => write!(f, "rejected {c}"),
            SimEventKind::Cancelled => write!(f, "cancelled by the caller"),
            SimEventKind::Prompt(p) => {
                write!(
                    f,
                    "heard a prompt {}..{} ms",
                    p.start_ms,
                    p.end_ms.unwrap_or(0)
                )?;
                match p.kind {
                    super::PromptKind::Other => Ok(()),
                    k => write!(f, " ({k:?})"),
                }
            }
            SimEventKind::Said(t) => write!(f, "says: {t}"),
            SimEventKind::Dtmf(d) => write!(f, "presses {d}"),
            SimEventKind::Refer(r) => {
                write!(f, "REFER to {} {:?} -> {}", r.target, r.headers, r.status)
            }
            SimEventKind::Ended(by) => write!(
                f,
                "ended ({})",
                match by {
                    Some(ByeFrom::Sim) => "sim hung up",
                    Some(ByeFrom::Caller) => "caller hung up",
                    None => "not answered",
                }
            ),
        }
    }
}
