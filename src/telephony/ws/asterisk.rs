//! Asterisk `chan_websocket` frames: BINARY frames are raw media in the
//! channel's format (u-law, A-law or signed linear), TEXT frames are control
//! messages, either plain text (`MEDIA_START connection_id:x channel:y ...`)
//! or JSON (`{"event":"MEDIA_START",...}`, chosen by `control_message_format`
//! or the dial string's `f(json)`). Events come from Asterisk, commands go to
//! it; a reply uses the format the channel's `MEDIA_START` came in.
//!
//! Owns both directions of the control format (the stream server parses
//! events and writes commands; the bridge in tests does the reverse). Never
//! touches a socket, a clock or a call; a malformed frame is an error naming
//! what is wrong.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::twilio::clip;
use super::FrameError;

/// chan_websocket ignores text messages longer than this (its
/// `MAX_TEXT_MESSAGE_LEN`): mark ids and buffering ids must fit.
pub const MAX_TEXT_LEN: usize = 128;

/// How the channel writes control messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFormat {
    /// `EVENT key:value key:value` on one line (the default, deprecated).
    PlainText,
    /// One JSON object per message.
    Json,
}

/// The media format a channel streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFormat {
    /// G.711 u-law, 160 bytes per 20 ms.
    Ulaw,
    /// G.711 A-law, 160 bytes per 20 ms.
    Alaw,
    /// Signed linear 16-bit 8 kHz, little-endian (the host order of the
    /// machines Asterisk runs on), 320 bytes per 20 ms.
    Slin,
}

impl MediaFormat {
    /// From chan_websocket's format name.
    pub fn from_name(name: &str) -> Option<MediaFormat> {
        match name {
            "ulaw" => Some(MediaFormat::Ulaw),
            "alaw" => Some(MediaFormat::Alaw),
            "slin" => Some(MediaFormat::Slin),
            _ => None,
        }
    }

    /// chan_websocket's name for it.
    pub fn name(self) -> &'static str {
        match self {
            MediaFormat::Ulaw => "ulaw",
            MediaFormat::Alaw => "alaw",
            MediaFormat::Slin => "slin",
        }
    }

    /// Bytes in one 20 ms frame.
    pub fn frame_bytes(self) -> usize {
        match self {
            MediaFormat::Ulaw | MediaFormat::Alaw => 160,
            MediaFormat::Slin => 320,
        }
    }
}

/// The `MEDIA_START` event: which channel this socket carries.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaStart {
    /// The websocket_client.conf id (outgoing) or the ephemeral id (incoming).
    pub connection_id: String,
    /// Channel name (`WebSocket/duecall/0x...`).
    pub channel: String,
    /// Channel unique id (`1761245643.1`), for ARI.
    pub channel_id: String,
    /// Media format name as Asterisk spells it.
    pub format: String,
    /// Bytes of one 20 ms frame.
    pub optimal_frame_size: u32,
    /// Packetisation time, ms.
    pub ptime: u32,
    /// Channel variables (JSON format only): the dialplan can set
    /// `DUECALL_ATTEMPT_ID` here.
    pub channel_variables: BTreeMap<String, String>,
    /// Which format the message came in (replies use the same).
    pub control_format: ControlFormat,
}

/// A control message from Asterisk.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The channel is connected.
    MediaStart(Box<MediaStart>),
    /// A DTMF digit ended.
    DtmfEnd {
        /// 0-9, *, #, A-D.
        digit: char,
    },
    /// Asterisk's queue is nearly full: stop sending media.
    MediaXoff,
    /// Queue drained below the low-water mark: send again.
    MediaXon,
    /// A `MARK_MEDIA` reached the head of the queue: what was queued before
    /// it has gone to the caller.
    MarkProcessed {
        /// The id we gave.
        id: String,
    },
    /// A bulk transfer (`STOP_MEDIA_BUFFERING id`) has been sent on.
    BufferingCompleted {
        /// The id we gave, if any.
        id: Option<String>,
    },
    /// The queue ran empty after a `REPORT_QUEUE_DRAINED`.
    QueueDrained,
    /// Answer to `GET_STATUS` (kept as key/values).
    Status(BTreeMap<String, String>),
    /// Asterisk refused a command.
    Error {
        /// Its text.
        text: String,
    },
}

/// A command to Asterisk.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Answer the channel (when dialled with `n`).
    Answer,
    /// Hang up the channel and close the socket.
    Hangup,
    /// Mark the queue: `MEDIA_MARK_PROCESSED id` comes back when it is reached.
    MarkMedia(String),
    /// Drop queued media (barge-in). Queued marks are dropped with it.
    FlushMedia,
    /// Start a bulk transfer of oddly sized media.
    StartMediaBuffering,
    /// End a bulk transfer.
    StopMediaBuffering(Option<String>),
    /// Ask for a `STATUS`.
    GetStatus,
}

fn bad(field: &'static str, reason: impl Into<String>) -> FrameError {
    FrameError::Bad {
        field,
        reason: reason.into(),
    }
}

fn dtmf_digit(s: &str) -> Result<char, FrameError> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => Ok(c),
        _ => Err(bad("digit", format!("`{}` is not one DTMF digit", clip(s)))),
    }
}

fn id_ok(id: &str) -> Result<(), FrameError> {
    if id.is_empty() || id.len() > 100 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "id",
            format!("`{}` must be 1-100 characters without spaces", clip(id)),
        ));
    }
    Ok(())
}

/// Parses one TEXT frame from Asterisk, in either control format.
pub fn parse_event(text: &str) -> Result<Event, FrameError> {
    let t = text.trim();
    if t.starts_with('{') {
        parse_json_event(t)
    } else {
        parse_plain_event(t)
    }
}

fn kv(rest: &str) -> BTreeMap<String, String> {
    rest.split_whitespace()
        .filter_map(|p| p.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_plain_event(t: &str) -> Result<Event, FrameError> {
    let (name, rest) = t.split_once(' ').unwrap_or((t, ""));
    let rest = rest.trim();
    match name {
        "MEDIA_START" => {
            let m = kv(rest);
            let get = |k: &'static str| m.get(k).cloned().ok_or(FrameError::Missing(k));
            Ok(Event::MediaStart(Box::new(MediaStart {
                connection_id: get("connection_id")?,
                channel: get("channel")?,
                channel_id: m.get("channel_id").cloned().unwrap_or_default(),
                format: get("format")?,
                optimal_frame_size: num(
                    m.get("optimal_frame_size").map(String::as_str),
                    "optimal_frame_size",
                )?
                .unwrap_or(160),
                ptime: num(m.get("ptime").map(String::as_str), "ptime")?.unwrap_or(20),
                channel_variables: BTreeMap::new(),
                control_format: ControlFormat::PlainText,
            })))
        }
        "DTMF_END" => {
            let m = kv(rest);
            Ok(Event::DtmfEnd {
                digit: dtmf_digit(m.get("digit").ok_or(FrameError::Missing("digit"))?)?,
            })
        }
        "MEDIA_XOFF" => Ok(Event::MediaXoff),
        "MEDIA_XON" => Ok(Event::MediaXon),
        "QUEUE_DRAINED" => Ok(Event::QueueDrained),
        "MEDIA_MARK_PROCESSED" => {
            if rest.is_empty() {
                return Err(FrameError::Missing("id"));
            }
            Ok(Event::MarkProcessed {
                id: rest.to_string(),
            })
        }
        "MEDIA_BUFFERING_COMPLETED" => Ok(Event::BufferingCompleted {
            id: (!rest.is_empty()).then(|| rest.to_string()),
        }),
        "STATUS" => Ok(Event::Status(kv(rest))),
        "ERROR" => Ok(Event::Error {
            text: rest
                .split_once("error_text:")
                .map(|(_, e)| e.to_string())
                .unwrap_or_else(|| rest.to_string()),
        }),
        other => Err(FrameError::UnknownEvent(clip(other))),
    }
}

fn num(v: Option<&str>, field: &'static str) -> Result<Option<u32>, FrameError> {
    match v {
        None => Ok(None),
        Some(s) => s
            .parse::<u32>()
            .map(Some)
            .map_err(|_| bad(field, format!("`{}` is not a whole number", clip(s)))),
    }
}

fn json_num(v: &Value, field: &'static str) -> Result<Option<u32>, FrameError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(field, format!("{n} is not a whole number"))),
        Some(Value::String(s)) => num(Some(s), field),
        Some(_) => Err(bad(field, "expected a number")),
    }
}

fn json_str(v: &Value, field: &'static str) -> Result<String, FrameError> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(field, "expected a string")),
        None => Err(FrameError::Missing(field)),
    }
}

fn parse_json_event(t: &str) -> Result<Event, FrameError> {
    let v: Value = serde_json::from_str(t).map_err(|e| FrameError::NotJson(e.to_string()))?;
    let event = json_str(&v, "event")?;
    match event.as_str() {
        "MEDIA_START" => {
            let channel_variables = match v.get("channel_variables") {
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| {
                        let s = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), s)
                    })
                    .collect(),
                None | Some(Value::Null) => BTreeMap::new(),
                Some(_) => return Err(bad("channel_variables", "expected an object")),
            };
            Ok(Event::MediaStart(Box::new(MediaStart {
                connection_id: json_str(&v, "connection_id")?,
                channel: json_str(&v, "channel")?,
                channel_id: v
                    .get("channel_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                format: json_str(&v, "format")?,
                optimal_frame_size: json_num(&v, "optimal_frame_size")?.unwrap_or(160),
                ptime: json_num(&v, "ptime")?.unwrap_or(20),
                channel_variables,
                control_format: ControlFormat::Json,
            })))
        }
        "DTMF_END" => Ok(Event::DtmfEnd {
            digit: dtmf_digit(&json_str(&v, "digit")?)?,
        }),
        "MEDIA_XOFF" => Ok(Event::MediaXoff),
        "MEDIA_XON" => Ok(Event::MediaXon),
        "QUEUE_DRAINED" => Ok(Event::QueueDrained),
        "MEDIA_MARK_PROCESSED" => Ok(Event::MarkProcessed {
            id: json_str(&v, "correlation_id")?,
        }),
        "MEDIA_BUFFERING_COMPLETED" => Ok(Event::BufferingCompleted {
            id: v
                .get("correlation_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }),
        "STATUS" => Ok(Event::Status(
            v.as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| k.as_str() != "event")
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        )),
        "ERROR" => Ok(Event::Error {
            text: v
                .get("error_text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }),
        other => Err(FrameError::UnknownEvent(clip(other))),
    }
}

/// Writes a command in the channel's control format. Ids that do not fit
/// the protocol (spaces, over 100 characters) are refused.
pub fn write_command(c: &Command, format: ControlFormat) -> Result<String, FrameError> {
    let (name, id) = match c {
        Command::Answer => ("ANSWER", None),
        Command::Hangup => ("HANGUP", None),
        Command::MarkMedia(id) => ("MARK_MEDIA", Some(id.as_str())),
        Command::FlushMedia => ("FLUSH_MEDIA", None),
        Command::StartMediaBuffering => ("START_MEDIA_BUFFERING", None),
        Command::StopMediaBuffering(id) => ("STOP_MEDIA_BUFFERING", id.as_deref()),
        Command::GetStatus => ("GET_STATUS", None),
    };
    if let Some(id) = id {
        id_ok(id)?;
    }
    Ok(match (format, id) {
        (ControlFormat::PlainText, None) => name.to_string(),
        (ControlFormat::PlainText, Some(id)) => format!("{name} {id}"),
        (ControlFormat::Json, None) => json!({"command": name}).to_string(),
        (ControlFormat::Json, Some(id)) => {
            json!({"command": name, "correlation_id": id}).to_string()
        }
    })
}

/// Parses a command (the bridge plays Asterisk in tests).
pub fn parse_command(text: &str) -> Result<Command, FrameError> {
    let t = text.trim();
    let (name, id) = if t.starts_with('{') {
        let v: Value = serde_json::from_str(t).map_err(|e| FrameError::NotJson(e.to_string()))?;
        (
            json_str(&v, "command")?,
            v.get("correlation_id")
                .and_then(Value::as_str)
                .map(str::to_string),
        )
    } else {
        let (n, rest) = t.split_once(' ').unwrap_or((t, ""));
        (
            n.to_string(),
            (!rest.trim().is_empty()).then(|| rest.trim().to_string()),
        )
    };
    Ok(match name.as_str() {
        "ANSWER" => Command::Answer,
        "HANGUP" => Command::Hangup,
        "MARK_MEDIA" => Command::MarkMedia(id.ok_or(FrameError::Missing("id"))?),
        "FLUSH_MEDIA" => Command::FlushMedia,
        "START_MEDIA_BUFFERING" => Command::StartMediaBuffering,
        "STOP_MEDIA_BUFFERING" => Command::StopMediaBuffering(id),
        "GET_STATUS" => Command::GetStatus,
        other => return Err(FrameError::UnknownEvent(clip(other))),
    })
}

/// Writes an event as Asterisk would (the bridge).
pub fn write_event(e: &Event, format: ControlFormat, channel_id: &str) -> String {
    match format {
        ControlFormat::PlainText => match e {
            Event::MediaStart(m) => format!(
                "MEDIA_START connection_id:{} channel:{} channel_id:{} format:{} optimal_frame_size:{} ptime:{}",
                m.connection_id, m.channel, m.channel_id, m.format, m.optimal_frame_size, m.ptime
            ),
            Event::DtmfEnd { digit } => format!("DTMF_END digit:{digit} channel_id:{channel_id}"),
            Event::MediaXoff => "MEDIA_XOFF".into(),
            Event::MediaXon => "MEDIA_XON".into(),
            Event::QueueDrained => "QUEUE_DRAINED".into(),
            Event::MarkProcessed { id } => format!("MEDIA_MARK_PROCESSED {id}"),
            Event::BufferingCompleted { id } => match id {
                Some(id) => format!("MEDIA_BUFFERING_COMPLETED {id}"),
                None => "MEDIA_BUFFERING_COMPLETED".into(),
            },
            Event::Status(m) => {
                let kvs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("STATUS {}", kvs.join(" "))
            }
            Event::Error { text } => format!("ERROR channel_id:{channel_id} error_text:{text}"),
        },
        ControlFormat::Json => match e {
            Event::MediaStart(m) => json!({
                "event": "MEDIA_START", "connection_id": m.connection_id, "channel": m.channel,
                "channel_id": m.channel_id, "format": m.format, "optimal_frame_size": m.optimal_frame_size,
                "ptime": m.ptime, "channel_variables": m.channel_variables,
            }),
            Event::DtmfEnd { digit } => json!({"event": "DTMF_END", "channel_id": channel_id, "digit": digit.to_string()}),
            Event::MediaXoff => json!({"event": "MEDIA_XOFF", "channel_id": channel_id}),
            Event::MediaXon => json!({"event": "MEDIA_XON", "channel_id": channel_id}),
            Event::QueueDrained => json!({"event": "QUEUE_DRAINED", "channel_id": channel_id}),
            Event::MarkProcessed { id } => {
                json!({"event": "MEDIA_MARK_PROCESSED", "channel_id": channel_id, "correlation_id": id})
            }
            Event::BufferingCompleted { id } => json!({
                "event": "MEDIA_BUFFERING_COMPLETED", "channel_id": channel_id,
                "correlation_id": id.clone().unwrap_or_default()
            }),
            Event::Status(m) => {
                let mut o = serde_json::Map::new();
                o.insert("event".into(), "STATUS".into());
                for (k, v) in m {
                    o.insert(k.clone(), Value::String(v.clone()));
                }
                Value::Object(o)
            }
            Event::Error { text } => json!({"event": "ERROR", "channel_id": channel_id, "error_text": text}),
        }
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn media_start_in_both_formats() {
        let p = parse_event(
            "MEDIA_START connection_id:duecall channel:WebSocket/duecall/0x5140 channel_id:1761245643.1 format:ulaw optimal_frame_size:160 ptime:20",
        )
        .unwrap();
        let Event::MediaStart(m) = p else {
            panic!("{p:?}")
        };
        assert_eq!(m.channel_id, "1761245643.1");
        assert_eq!(m.format, "ulaw");
        assert_eq!(m.control_format, ControlFormat::PlainText);
        let j = parse_event(
            r#"{"event":"MEDIA_START","connection_id":"media_connection1","channel":"WebSocket/media_connection1/0x5140001a0040","channel_id":"1761245643.1","format":"ulaw","optimal_frame_size":160,"ptime":20,"channel_variables":{"DUECALL_ATTEMPT_ID":"42","MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE":"160"}}"#,
        )
        .unwrap();
        let Event::MediaStart(j) = j else { panic!() };
        assert_eq!(j.channel_variables["DUECALL_ATTEMPT_ID"], "42");
        assert_eq!(j.control_format, ControlFormat::Json);
    }

    #[test]
    fn marks_and_dtmf_both_formats() {
        assert_eq!(
            parse_event("MEDIA_MARK_PROCESSED p-3").unwrap(),
            Event::MarkProcessed { id: "p-3".into() }
        );
        assert_eq!(
            parse_event(
                r#"{"event":"MEDIA_MARK_PROCESSED","channel_id":"1.1","correlation_id":"p-3"}"#
            )
            .unwrap(),
            Event::MarkProcessed { id: "p-3".into() }
        );
        assert_eq!(
            parse_event("DTMF_END digit:# channel_id:1.1").unwrap(),
            Event::DtmfEnd { digit: '#' }
        );
        assert_eq!(
            parse_event(r#"{"event":"DTMF_END","channel_id":"1.1","digit":"7"}"#).unwrap(),
            Event::DtmfEnd { digit: '7' }
        );
        assert_eq!(
            write_command(&Command::MarkMedia("p-3".into()), ControlFormat::PlainText).unwrap(),
            "MARK_MEDIA p-3"
        );
        assert_eq!(
            write_command(&Command::FlushMedia, ControlFormat::Json).unwrap(),
            r#"{"command":"FLUSH_MEDIA"}"#
        );
        assert!(write_command(
            &Command::MarkMedia("has space".into()),
            ControlFormat::PlainText
        )
        .is_err());
    }

    #[test]
    fn bad_events_name_what_is_wrong() {
        assert!(parse_event("MEDIA_START channel:x format:ulaw")
            .unwrap_err()
            .to_string()
            .contains("connection_id"));
        assert!(parse_event("DTMF_END digit:xx")
            .unwrap_err()
            .to_string()
            .contains("digit"));
        assert!(matches!(
            parse_event("WHATEVER 1").unwrap_err(),
            FrameError::UnknownEvent(_)
        ));
        assert!(matches!(
            parse_event("{nope").unwrap_err(),
            FrameError::NotJson(_)
        ));
        assert!(parse_event(
            "MEDIA_START connection_id:a channel:b format:ulaw optimal_frame_size:-1"
        )
        .unwrap_err()
        .to_string()
        .contains("optimal_frame_size"));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,300}") {
            let _ = parse_event(&s);
            let _ = parse_command(&s);
        }

        #[test]
        fn commands_and_events_round_trip(id in "[A-Za-z0-9._-]{1,60}", json in any::<bool>(), d in proptest::sample::select(vec!['1','#','*','D'])) {
            let f = if json { ControlFormat::Json } else { ControlFormat::PlainText };
            for c in [Command::MarkMedia(id.clone()), Command::FlushMedia, Command::Hangup, Command::StopMediaBuffering(Some(id.clone()))] {
                prop_assert_eq!(parse_command(&write_command(&c, f).unwrap()).unwrap(), c);
            }
            for e in [Event::MarkProcessed { id: id.clone() }, Event::DtmfEnd { digit: d }, Event::MediaXoff] {
                prop_assert_eq!(parse_event(&write_event(&e, f, "1.1")).unwrap(), e);
            }
        }
    }
}
