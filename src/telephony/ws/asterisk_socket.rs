//! An Asterisk chan_websocket socket after the upgrade (Asterisk connects
//! out to duecall: `websocket_client.conf` names `/ws/asterisk`): waits for
//! `MEDIA_START`, takes the attempt from the URL parameters (the dial
//! string's `v(attempt_id=...)`) or the channel variables (JSON control
//! format), hands the stream to the hub, then runs the writer (binary media,
//! `MARK_MEDIA`, `FLUSH_MEDIA` on barge-in, `HANGUP`) and the reader (binary
//! media, `DTMF_END`, `MEDIA_MARK_PROCESSED`).
//!
//! Owns this protocol's socket only. Closing the socket is how Asterisk
//! hangs up a websocket channel, so a close is the callee's goodbye here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};

use super::asterisk::{self, Command, ControlFormat, Event, MediaFormat, MediaStart};
use super::driver::{
    platform_ids, Incoming, Outgoing, Protocol, SocketEnds, StreamInfo, StreamPipe,
};
use super::hub::StreamHub;
use super::FrameError;
use crate::media::g711::{self, Codec};

/// Channel variables the dialplan may set for duecall.
const VAR_ATTEMPT: &str = "DUECALL_ATTEMPT_ID";
const VAR_STREAM: &str = "DUECALL_STREAM_ID";

async fn refuse(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    format: ControlFormat,
    why: &str,
) {
    if let Ok(t) = asterisk::write_command(&Command::Hangup, format) {
        let _ = sink.send(Message::Text(t.into())).await;
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: why.chars().take(120).collect::<String>().into(),
        })))
        .await;
}

async fn wait_start(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    within: Duration,
) -> Result<MediaStart, String> {
    let wait = async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) => match asterisk::parse_event(t.as_str()) {
                    Ok(Event::MediaStart(m)) => return Ok(*m),
                    Ok(other) => tracing::debug!(?other, "event before MEDIA_START ignored"),
                    Err(e) => {
                        return Err(format!(
                            "unreadable control message before MEDIA_START: {e}"
                        ))
                    }
                },
                Some(Ok(Message::Binary(_))) => {}
                Some(Ok(Message::Close(_))) | None => {
                    return Err("closed before MEDIA_START".into())
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("socket error before MEDIA_START: {e}")),
            }
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .unwrap_or_else(|_| Err(format!("no MEDIA_START within {} ms", within.as_millis())))
}

fn decode(format: MediaFormat, bytes: &[u8], out: &mut Vec<i16>) {
    out.clear();
    match format {
        MediaFormat::Ulaw => g711::decode(Codec::Pcmu, bytes, out),
        MediaFormat::Alaw => g711::decode(Codec::Pcma, bytes, out),
        MediaFormat::Slin => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]])),
        ),
    }
}

fn encode(format: MediaFormat, pcm: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pcm.len() * 2);
    match format {
        MediaFormat::Ulaw => g711::encode(Codec::Pcmu, pcm, &mut out),
        MediaFormat::Alaw => g711::encode(Codec::Pcma, pcm, &mut out),
        MediaFormat::Slin => out.extend(pcm.iter().flat_map(|s| s.to_le_bytes())),
    }
    out
}

/// Runs one chan_websocket stream to its end.
pub async fn run(
    socket: WebSocket,
    hub: Arc<StreamHub>,
    peer: Option<SocketAddr>,
    query: BTreeMap<String, String>,
) {
    let cfg = hub.config().clone();
    let (mut sink, mut stream) = socket.split();
    let start = match wait_start(&mut stream, Duration::from_millis(cfg.start_timeout_ms)).await {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!(?peer, why = %why, "asterisk stream refused");
            refuse(&mut sink, ControlFormat::PlainText, &why).await;
            return;
        }
    };
    let control = start.control_format;
    let Some(format) = MediaFormat::from_name(&start.format) else {
        let why = format!(
            "media format `{}`: duecall takes ulaw, alaw or slin (dial with c(ulaw))",
            super::twilio::clip(&start.format)
        );
        tracing::warn!(?peer, why = %why, "asterisk stream refused");
        refuse(&mut sink, control, &why).await;
        return;
    };
    let mut params: Map<String, Value> = Map::new();
    for (k, v) in query {
        if k != "token" {
            params.insert(k, Value::String(v));
        }
    }
    if let Some(a) = start.channel_variables.get(VAR_ATTEMPT) {
        params
            .entry("attempt_id")
            .or_insert(Value::String(a.clone()));
    }
    if let Some(s) = start.channel_variables.get(VAR_STREAM) {
        params
            .entry("stream_id")
            .or_insert(Value::String(s.clone()));
    }
    let (call_id, ids) = platform_ids(
        ("channel_id", &start.channel_id),
        ("channel", &start.channel),
    );
    let info = StreamInfo {
        protocol: Protocol::Asterisk,
        call_id,
        codec: match format {
            MediaFormat::Ulaw => "PCMU",
            MediaFormat::Alaw => "PCMA",
            MediaFormat::Slin => "L16",
        },
        params,
        ids,
        peer,
    };
    // FLUSH_MEDIA drops queued marks without echoing them (StreamPipe::open).
    let (pipe, ends) = StreamPipe::open(info, &cfg);
    let SocketEnds {
        incoming: in_tx,
        outgoing: mut out_rx,
    } = ends;
    if let Err(refusal) = hub.arrive(pipe) {
        tracing::warn!(?peer, reason = %refusal, "asterisk stream refused");
        refuse(&mut sink, control, &refusal.to_string()).await;
        return;
    }

    let writer = tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            let msg = match o {
                Outgoing::Audio(f) => Message::Binary(encode(format, &f[..]).into()),
                Outgoing::Mark(name) => {
                    match asterisk::write_command(&Command::MarkMedia(name), control) {
                        Ok(t) => Message::Text(t.into()),
                        Err(e) => {
                            tracing::warn!(error = %e, "mark not sent");
                            continue;
                        }
                    }
                }
                Outgoing::Clear => match asterisk::write_command(&Command::FlushMedia, control) {
                    Ok(t) => Message::Text(t.into()),
                    Err(_) => continue,
                },
                Outgoing::Hangup => break,
                Outgoing::Refuse(why) => {
                    refuse(&mut sink, control, &why).await;
                    return;
                }
            };
            if sink.send(msg).await.is_err() {
                return;
            }
        }
        if let Ok(t) = asterisk::write_command(&Command::Hangup, control) {
            let _ = sink.send(Message::Text(t.into())).await;
        }
        let _ = sink.send(Message::Close(None)).await;
    });

    let mut pcm = Vec::with_capacity(320);
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            // The call ended on our side: nothing more to read.
            _ = in_tx.closed() => break,
        };
        let inc = match msg {
            Some(Ok(Message::Binary(b))) => {
                decode(format, &b, &mut pcm);
                Incoming::Audio {
                    pcm: pcm.clone(),
                    timestamp_ms: None,
                }
            }
            Some(Ok(Message::Text(t))) => match asterisk::parse_event(t.as_str()) {
                Ok(Event::DtmfEnd { digit }) => Incoming::Dtmf(digit),
                Ok(Event::MarkProcessed { id }) => Incoming::Mark(id),
                Ok(Event::MediaXoff) => {
                    tracing::info!("asterisk asks to pause media (MEDIA_XOFF)");
                    Incoming::Alive
                }
                Ok(Event::Error { text }) => {
                    tracing::warn!(error = %super::twilio::clip(&text), "asterisk reported an error");
                    Incoming::Alive
                }
                Ok(_) => Incoming::Alive,
                Err(FrameError::UnknownEvent(name)) => {
                    tracing::debug!(event = %name, "unknown chan_websocket event ignored");
                    Incoming::Alive
                }
                Err(e) => Incoming::Bad(e),
            },
            // chan_websocket hangs up by closing the socket.
            Some(Ok(Message::Close(_))) | None => {
                let _ = in_tx.send(Incoming::Stop).await;
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                let _ = in_tx
                    .send(Incoming::Broken(format!("socket error: {e}")))
                    .await;
                break;
            }
        };
        if in_tx.send(inc).await.is_err() {
            break;
        }
    }
    drop(in_tx);
    let _ = writer.await;
}
