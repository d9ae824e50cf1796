//! Twilio Media Streams frames (the schema Telnyx, Exotel, Fonoster and
//! others copy): JSON text frames, numbers spelled as strings, audio as
//! base64 8 kHz u-law.
//!
//! Owns both directions of the wire format: what a platform sends
//! (`connected`, `start`, `media`, `dtmf`, `mark`, `stop`), parsed by the
//! stream server and written by the bridge that plays the platform in tests,
//! and what duecall sends back (`media`, `mark`, `clear`), written by the
//! server and parsed by the bridge. Never touches a socket, a clock or a
//! call: it turns text into values and back, and every malformed frame is an
//! error naming what is wrong (never a panic).

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::FrameError;

/// The largest audio payload one `media` frame may carry once decoded
/// (Telnyx allows up to 30 s; Twilio sends 20 ms). Larger frames are refused.
pub const MAX_MEDIA_BYTES: usize = 240_000;

/// A frame a platform sends to duecall.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformFrame {
    /// The socket is up; the protocol the platform speaks.
    Connected {
        /// `Call`.
        protocol: String,
        /// e.g. `1.0.0`.
        version: String,
    },
    /// The stream starts: who it is and what it carries.
    Start(Box<StartInfo>),
    /// Audio from the call.
    Media {
        /// Message order over the whole stream (every event counts).
        sequence: Option<u64>,
        /// `inbound` (the callee) or `outbound`.
        track: Option<String>,
        /// Media message counter (1, 2, ...).
        chunk: Option<u64>,
        /// Milliseconds since the stream started.
        timestamp_ms: Option<u64>,
        /// Decoded payload (u-law bytes for `audio/x-mulaw`).
        payload: Vec<u8>,
    },
    /// A key the callee pressed.
    Dtmf {
        /// Message order.
        sequence: Option<u64>,
        /// 0-9, *, #, A-D.
        digit: char,
    },
    /// The audio queued before a `mark` we sent has played (or was cleared).
    Mark {
        /// Message order.
        sequence: Option<u64>,
        /// The name we gave it.
        name: String,
    },
    /// The stream ended (the call hung up, or the TwiML moved on).
    Stop {
        /// Message order.
        sequence: Option<u64>,
    },
}

impl PlatformFrame {
    /// The message's `sequenceNumber`, when it carries one.
    pub fn sequence(&self) -> Option<u64> {
        match self {
            PlatformFrame::Connected { .. } => None,
            PlatformFrame::Start(s) => s.sequence,
            PlatformFrame::Media { sequence, .. }
            | PlatformFrame::Dtmf { sequence, .. }
            | PlatformFrame::Mark { sequence, .. }
            | PlatformFrame::Stop { sequence } => *sequence,
        }
    }
}

/// The `start` message's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct StartInfo {
    /// Message order.
    pub sequence: Option<u64>,
    /// The stream's id (`MZ...`).
    pub stream_sid: String,
    /// The call's id (`CA...`).
    pub call_sid: String,
    /// The platform account (`AC...`).
    pub account_sid: String,
    /// `<Parameter>`s of the TwiML `<Stream>`: `attempt_id`, or the account
    /// JSON fields of a direct stream. Values are kept as JSON (strings on
    /// Twilio; other platforms may send numbers).
    pub custom_parameters: Map<String, Value>,
    /// `audio/x-mulaw` (the only encoding duecall takes on this protocol).
    pub encoding: String,
    /// 8000.
    pub sample_rate: u32,
    /// 1.
    pub channels: u16,
    /// Tracks streamed (`inbound`, `outbound`).
    pub tracks: Vec<String>,
}

/// A frame duecall sends to the platform.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentFrame {
    /// Audio to play to the callee, queued after what is already queued.
    Media {
        /// u-law bytes.
        payload: Vec<u8>,
    },
    /// Tell us when everything queued before this has played.
    Mark {
        /// Echoed back in the platform's `mark`.
        name: String,
    },
    /// Drop everything queued (barge-in); queued marks come back at once.
    Clear,
}

fn field<'a>(v: &'a Value, key: &'static str) -> Result<&'a Value, FrameError> {
    v.get(key).ok_or(FrameError::Missing(key))
}

fn text(v: &Value, key: &'static str) -> Result<String, FrameError> {
    match field(v, key)? {
        Value::String(s) => Ok(s.clone()),
        other => Err(FrameError::Bad {
            field: key,
            reason: format!("expected a string, got {}", kind(other)),
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A number Twilio spells as a string ("3"); a bare number is taken too.
fn number(v: &Value, key: &'static str) -> Result<Option<u64>, FrameError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| FrameError::Bad {
                field: key,
                reason: format!("`{}` is not a whole number", clip(s)),
            }),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| FrameError::Bad {
            field: key,
            reason: format!("{n} is not a whole number"),
        }),
        Some(other) => Err(FrameError::Bad {
            field: key,
            reason: format!("expected a number, got {}", kind(other)),
        }),
    }
}

/// At most 40 characters of untrusted text, for error messages and logs.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn object<'a>(v: &'a Value, key: &'static str) -> Result<&'a Value, FrameError> {
    let o = field(v, key)?;
    if o.is_object() {
        Ok(o)
    } else {
        Err(FrameError::Bad {
            field: key,
            reason: format!("expected an object, got {}", kind(o)),
        })
    }
}

fn digit(s: &str) -> Result<char, FrameError> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => Ok(c),
        _ => Err(FrameError::Bad {
            field: "dtmf.digit",
            reason: format!("`{}` is not one DTMF digit (0-9, *, #, A-D)", clip(s)),
        }),
    }
}

/// Decodes base64 audio, refusing more than [`MAX_MEDIA_BYTES`] before
/// allocating for it.
fn decode_payload(s: &str) -> Result<Vec<u8>, FrameError> {
    if s.len() / 4 * 3 > MAX_MEDIA_BYTES + 3 {
        return Err(FrameError::TooLarge {
            what: "media.payload",
            limit: MAX_MEDIA_BYTES,
        });
    }
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| FrameError::Bad {
            field: "media.payload",
            reason: format!("not base64: {e}"),
        })
}

/// Parses one text frame a platform sent. Unknown events are
/// [`FrameError::UnknownEvent`] (the caller logs and ignores them).
pub fn parse_platform(text_frame: &str) -> Result<PlatformFrame, FrameError> {
    let v: Value =
        serde_json::from_str(text_frame).map_err(|e| FrameError::NotJson(e.to_string()))?;
    if !v.is_object() {
        return Err(FrameError::NotJson(format!(
            "expected an object, got {}",
            kind(&v)
        )));
    }
    let event = text(&v, "event")?;
    let sequence = number(&v, "sequenceNumber")?;
    match event.as_str() {
        "connected" => Ok(PlatformFrame::Connected {
            protocol: v
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            version: v
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }),
        "start" => {
            let s = object(&v, "start")?;
            let stream_sid = match v.get("streamSid").and_then(Value::as_str) {
                Some(x) => x.to_string(),
                None => text(s, "streamSid")?,
            };
            let custom_parameters = match s.get("customParameters") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(other) => {
                    return Err(FrameError::Bad {
                        field: "start.customParameters",
                        reason: format!("expected an object, got {}", kind(other)),
                    })
                }
            };
            let (encoding, sample_rate, channels) = match s.get("mediaFormat") {
                None | Some(Value::Null) => ("audio/x-mulaw".to_string(), 8000, 1),
                Some(f) if f.is_object() => (
                    f.get("encoding")
                        .and_then(Value::as_str)
                        .unwrap_or("audio/x-mulaw")
                        .to_string(),
                    number(f, "sampleRate")?
                        .unwrap_or(8000)
                        .min(u32::MAX as u64) as u32,
                    number(f, "channels")?.unwrap_or(1).min(u16::MAX as u64) as u16,
                ),
                Some(other) => {
                    return Err(FrameError::Bad {
                        field: "start.mediaFormat",
                        reason: format!("expected an object, got {}", kind(other)),
                    })
                }
            };
            let tracks = match s.get("tracks") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect(),
                _ => vec!["inbound".to_string()],
            };
            Ok(PlatformFrame::Start(Box::new(StartInfo {
                sequence,
                stream_sid,
                call_sid: s
                    .get("callSid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                account_sid: s
                    .get("accountSid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                custom_parameters,
                encoding,
                sample_rate,
                channels,
                tracks,
            })))
        }
        "media" => {
            let m = object(&v, "media")?;
            Ok(PlatformFrame::Media {
                sequence,
                track: m.get("track").and_then(Value::as_str).map(str::to_string),
                chunk: number(m, "chunk")?,
                timestamp_ms: number(m, "timestamp")?,
                payload: decode_payload(&text(m, "payload")?)?,
            })
        }
        "dtmf" => {
            let d = object(&v, "dtmf")?;
            Ok(PlatformFrame::Dtmf {
                sequence,
                digit: digit(&text(d, "digit")?)?,
            })
        }
        "mark" => {
            let m = object(&v, "mark")?;
            Ok(PlatformFrame::Mark {
                sequence,
                name: text(m, "name")?,
            })
        }
        "stop" => Ok(PlatformFrame::Stop { sequence }),
        other => Err(FrameError::UnknownEvent(clip(other))),
    }
}

/// Writes a frame as the platform would send it (the bridge, tests).
pub fn write_platform(f: &PlatformFrame, stream_sid: &str) -> String {
    let seq = |s: &Option<u64>| {
        s.map(|n| Value::String(n.to_string()))
            .unwrap_or(Value::Null)
    };
    let v = match f {
        PlatformFrame::Connected { protocol, version } => {
            json!({"event": "connected", "protocol": protocol, "version": version})
        }
        PlatformFrame::Start(s) => json!({
            "event": "start",
            "sequenceNumber": seq(&s.sequence),
            "streamSid": s.stream_sid,
            "start": {
                "streamSid": s.stream_sid,
                "accountSid": s.account_sid,
                "callSid": s.call_sid,
                "tracks": s.tracks,
                "customParameters": s.custom_parameters,
                "mediaFormat": {"encoding": s.encoding, "sampleRate": s.sample_rate, "channels": s.channels},
            }
        }),
        PlatformFrame::Media {
            sequence,
            track,
            chunk,
            timestamp_ms,
            payload,
        } => json!({
            "event": "media",
            "sequenceNumber": seq(sequence),
            "streamSid": stream_sid,
            "media": {
                "track": track.as_deref().unwrap_or("inbound"),
                "chunk": seq(chunk),
                "timestamp": seq(timestamp_ms),
                "payload": base64::engine::general_purpose::STANDARD.encode(payload),
            }
        }),
        PlatformFrame::Dtmf { sequence, digit } => json!({
            "event": "dtmf",
            "sequenceNumber": seq(sequence),
            "streamSid": stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
        }),
        PlatformFrame::Mark { sequence, name } => json!({
            "event": "mark",
            "sequenceNumber": seq(sequence),
            "streamSid": stream_sid,
            "mark": {"name": name},
        }),
        PlatformFrame::Stop { sequence } => json!({
            "event": "stop",
            "sequenceNumber": seq(sequence),
            "streamSid": stream_sid,
            "stop": {},
        }),
    };
    v.to_string()
}

/// Writes a frame duecall sends to the platform.
pub fn write_agent(f: &AgentFrame, stream_sid: &str) -> String {
    match f {
        AgentFrame::Media { payload } => json!({
            "event": "media",
            "streamSid": stream_sid,
            "media": {"payload": base64::engine::general_purpose::STANDARD.encode(payload)},
        }),
        AgentFrame::Mark { name } => json!({
            "event": "mark",
            "streamSid": stream_sid,
            "mark": {"name": name},
        }),
        AgentFrame::Clear => json!({"event": "clear", "streamSid": stream_sid}),
    }
    .to_string()
}

/// Parses a frame duecall sent (the bridge's side).
pub fn parse_agent(text_frame: &str) -> Result<AgentFrame, FrameError> {
    let v: Value =
        serde_json::from_str(text_frame).map_err(|e| FrameError::NotJson(e.to_string()))?;
    match text(&v, "event")?.as_str() {
        "media" => Ok(AgentFrame::Media {
            payload: decode_payload(&text(object(&v, "media")?, "payload")?)?,
        }),
        "mark" => Ok(AgentFrame::Mark {
            name: text(object(&v, "mark")?, "name")?,
        }),
        "clear" => Ok(AgentFrame::Clear),
        other => Err(FrameError::UnknownEvent(clip(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn twilio_documented_shapes_parse() {
        let m = parse_platform(
            r#"{"event":"media","sequenceNumber":"3","streamSid":"MZ1","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"//8A"}}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            PlatformFrame::Media {
                sequence: Some(3),
                track: Some("inbound".into()),
                chunk: Some(2),
                timestamp_ms: Some(40),
                payload: vec![0xff, 0xff, 0x00],
            }
        );
        let d = parse_platform(r#"{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"5"}}"#).unwrap();
        assert_eq!(
            d,
            PlatformFrame::Dtmf {
                sequence: Some(5),
                digit: '5'
            }
        );
        let s = parse_platform(
            r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"attempt_id":"42"}},"streamSid":"MZ1"}"#,
        )
        .unwrap();
        let PlatformFrame::Start(s) = s else { panic!() };
        assert_eq!(s.call_sid, "CA1");
        assert_eq!(s.custom_parameters["attempt_id"], "42");
        assert_eq!(s.sample_rate, 8000);
        assert_eq!(
            parse_platform(r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"prompt-3"}}"#).unwrap(),
            PlatformFrame::Mark { sequence: Some(4), name: "prompt-3".into() }
        );
        assert_eq!(
            parse_platform(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap(),
            PlatformFrame::Connected {
                protocol: "Call".into(),
                version: "1.0.0".into()
            }
        );
    }

    #[test]
    fn bad_frames_name_what_is_wrong() {
        let e = parse_platform("not json").unwrap_err();
        assert!(matches!(e, FrameError::NotJson(_)), "{e}");
        let e = parse_platform(r#"{"event":"media","media":{"payload":"@@@"}}"#).unwrap_err();
        assert!(e.to_string().contains("media.payload"), "{e}");
        let e = parse_platform(r#"{"event":"media","sequenceNumber":"x3","media":{"payload":""}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("sequenceNumber"), "{e}");
        let e = parse_platform(r#"{"event":"dtmf","dtmf":{"digit":"12"}}"#).unwrap_err();
        assert!(e.to_string().contains("dtmf.digit"), "{e}");
        let e = parse_platform(r#"{"event":"transcription"}"#).unwrap_err();
        assert!(
            matches!(e, FrameError::UnknownEvent(ref n) if n == "transcription"),
            "{e}"
        );
        let e = parse_platform(r#"{"event":"media"}"#).unwrap_err();
        assert!(e.to_string().contains("media"), "{e}");
        let huge = format!(
            r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
            "A".repeat(MAX_MEDIA_BYTES / 3 * 4 + 40)
        );
        assert!(matches!(
            parse_platform(&huge).unwrap_err(),
            FrameError::TooLarge { .. }
        ));
    }

    #[test]
    fn agent_frames_round_trip() {
        for f in [
            AgentFrame::Media {
                payload: vec![1, 2, 3, 255],
            },
            AgentFrame::Mark { name: "p-1".into() },
            AgentFrame::Clear,
        ] {
            assert_eq!(parse_agent(&write_agent(&f, "MZ9")).unwrap(), f);
        }
        let v: Value = serde_json::from_str(&write_agent(&AgentFrame::Clear, "MZ9")).unwrap();
        assert_eq!(v, json!({"event": "clear", "streamSid": "MZ9"}));
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_any_text(s in ".{0,400}") {
            let _ = parse_platform(&s);
            let _ = parse_agent(&s);
        }

        #[test]
        fn parser_never_panics_on_mutated_frames(
            seq in proptest::option::of(any::<u64>()),
            payload in proptest::collection::vec(any::<u8>(), 0..400),
            cut in 0usize..600,
            flip in proptest::collection::vec((0usize..600, any::<u8>()), 0..6),
        ) {
            let f = PlatformFrame::Media { sequence: seq, track: Some("inbound".into()), chunk: seq, timestamp_ms: seq, payload };
            let good = write_platform(&f, "MZ1");
            prop_assert_eq!(parse_platform(&good).unwrap(), f);
            let mut bytes = good.into_bytes();
            for (i, b) in flip { if !bytes.is_empty() { let n = bytes.len(); bytes[i % n] = b; } }
            bytes.truncate(cut.min(bytes.len()));
            let _ = parse_platform(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn platform_frames_round_trip(
            seq in proptest::option::of(0u64..1_000_000),
            digit in proptest::sample::select(vec!['0','5','9','*','#','A','D']),
            name in "[a-z0-9-]{1,20}",
        ) {
            for f in [
                PlatformFrame::Dtmf { sequence: seq, digit },
                PlatformFrame::Mark { sequence: seq, name: name.clone() },
                PlatformFrame::Stop { sequence: seq },
            ] {
                prop_assert_eq!(parse_platform(&write_platform(&f, "MZ1")).unwrap(), f);
            }
        }
    }
}
