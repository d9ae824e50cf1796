//! A Twilio Media Streams socket after the upgrade: waits for `start`,
//! checks the media format, hands the stream to the hub, then runs the
//! writer (duecall's `media`/`mark`/`clear` out; a hang-up closes the socket,
//! which ends Twilio's `<Connect>`) and the reader (frames parsed, put back in
//! `sequenceNumber` order, handed to the call driver).
//!
//! Owns this protocol's socket only. A frame that cannot be read is logged
//! and counted by the driver; the socket closing without `stop` is a broken
//! stream (`failed`/`network`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};

use super::driver::{
    platform_ids, Incoming, Outgoing, Protocol, SocketEnds, StreamInfo, StreamPipe,
};
use super::hub::StreamHub;
use super::reorder::{Released, Resequencer};
use super::twilio::{self, AgentFrame, PlatformFrame, StartInfo};
use super::FrameError;
use crate::media::g711::{self, Codec};

/// WebSocket close code: policy violation (refused stream).
const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code: unsupported data (wrong media format).
const CLOSE_UNSUPPORTED: u16 = 1003;

async fn close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    code: u16,
    reason: &str,
) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.chars().take(120).collect::<String>().into(),
        })))
        .await;
}

/// Reads until `start` (or the deadline): `connected` and pings are fine,
/// anything else before `start` is unreadable.
async fn wait_start(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    within: Duration,
) -> Result<StartInfo, String> {
    let wait = async {
        let mut bad = 0;
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) => match twilio::parse_platform(t.as_str()) {
                    Ok(PlatformFrame::Start(s)) => return Ok(*s),
                    Ok(PlatformFrame::Connected { .. }) => {}
                    Ok(other) => {
                        tracing::debug!(?other, "frame before start ignored");
                    }
                    Err(e) => {
                        bad += 1;
                        tracing::warn!(error = %e, "unreadable frame before start");
                        if bad > 5 {
                            return Err(format!("unreadable frames before start ({e})"));
                        }
                    }
                },
                Some(Ok(Message::Close(_))) | None => return Err("closed before start".into()),
                Some(Ok(Message::Binary(_))) => return Err(
                    "a binary frame: this endpoint speaks Twilio Media Streams (JSON text frames)"
                        .into(),
                ),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("socket error before start: {e}")),
            }
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .unwrap_or_else(|_| Err(format!("no start within {} ms", within.as_millis())))
}

/// Runs one Twilio stream to its end.
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
            tracing::warn!(?peer, why = %why, "twilio stream refused");
            close(&mut sink, CLOSE_POLICY, &why).await;
            return;
        }
    };
    if !start.encoding.eq_ignore_ascii_case("audio/x-mulaw")
        || start.sample_rate != 8000
        || start.channels != 1
    {
        let why = format!(
            "media format {} {} Hz x{}: duecall takes audio/x-mulaw 8000 Hz mono",
            twilio::clip(&start.encoding),
            start.sample_rate,
            start.channels
        );
        tracing::warn!(?peer, why = %why, "twilio stream refused");
        close(&mut sink, CLOSE_UNSUPPORTED, &why).await;
        return;
    }
    let mut params: Map<String, Value> = start.custom_parameters.clone();
    for (k, v) in query {
        if k != "token" {
            params.entry(k).or_insert(Value::String(v));
        }
    }
    let (call_id, ids) = platform_ids(
        ("call_sid", &start.call_sid),
        ("stream_sid", &start.stream_sid),
    );
    let info = StreamInfo {
        protocol: Protocol::Twilio,
        call_id,
        codec: "PCMU",
        params,
        ids,
        peer,
    };
    let (pipe, ends) = StreamPipe::open(info, &cfg);
    let SocketEnds {
        incoming: in_tx,
        outgoing: mut out_rx,
    } = ends;
    if let Err(refusal) = hub.arrive(pipe) {
        tracing::warn!(?peer, reason = %refusal, "twilio stream refused");
        close(&mut sink, CLOSE_POLICY, &refusal.to_string()).await;
        return;
    }

    let stream_sid = start.stream_sid.clone();
    let writer = tokio::spawn(async move {
        let mut ulaw = Vec::with_capacity(160);
        while let Some(o) = out_rx.recv().await {
            let frame = match o {
                Outgoing::Audio(f) => {
                    ulaw.clear();
                    g711::encode(Codec::Pcmu, &f[..], &mut ulaw);
                    AgentFrame::Media {
                        payload: ulaw.clone(),
                    }
                }
                Outgoing::Mark(name) => AgentFrame::Mark { name },
                Outgoing::Clear => AgentFrame::Clear,
                Outgoing::Hangup => break,
                Outgoing::Refuse(why) => {
                    close(&mut sink, CLOSE_POLICY, &why).await;
                    return;
                }
            };
            if sink
                .send(Message::Text(
                    twilio::write_agent(&frame, &stream_sid).into(),
                ))
                .await
                .is_err()
            {
                return;
            }
        }
        // Closing the socket ends <Connect><Stream>; Twilio goes on with the
        // TwiML after it (nothing: the call hangs up).
        close(&mut sink, 1000, "duecall ended the call").await;
    });

    let mut reseq: Resequencer<PlatformFrame> = Resequencer::new(cfg.reorder_window, 10);
    let mut released = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stopped = false;
    let mut pcm = Vec::with_capacity(160);
    'read: loop {
        tokio::select! {
            msg = stream.next() => {
                let ev = match msg {
                    Some(Ok(Message::Text(t))) => match twilio::parse_platform(t.as_str()) {
                        Ok(f) => {
                            let seq = f.sequence();
                            reseq.push(seq, f, &mut released);
                            None
                        }
                        Err(FrameError::UnknownEvent(name)) => {
                            tracing::debug!(event = %name, "unknown twilio event ignored");
                            Some(Incoming::Alive)
                        }
                        Err(e) => Some(Incoming::Bad(e)),
                    },
                    Some(Ok(Message::Binary(_))) => Some(Incoming::Bad(FrameError::NotJson("a binary frame".into()))),
                    Some(Ok(Message::Close(_))) | None => {
                        reseq.flush(&mut released);
                        for r in released.drain(..) {
                            if let Some(i) = to_incoming(r, &mut pcm, &mut stopped) {
                                if in_tx.send(i).await.is_err() { break 'read; }
                            }
                        }
                        if !stopped {
                            let _ = in_tx.send(Incoming::Broken("the socket closed without a stop".into())).await;
                        }
                        break 'read;
                    }
                    Some(Ok(_)) => None,
                    Some(Err(e)) => {
                        let _ = in_tx.send(Incoming::Broken(format!("socket error: {e}"))).await;
                        break 'read;
                    }
                };
                if let Some(i) = ev {
                    if in_tx.send(i).await.is_err() { break 'read; }
                }
            }
            _ = tick.tick(), if reseq.held() > 0 => reseq.tick(&mut released),
            // The call ended on our side: nothing more to read.
            _ = in_tx.closed() => break 'read,
        }
        for r in released.drain(..) {
            if let Some(i) = to_incoming(r, &mut pcm, &mut stopped) {
                if in_tx.send(i).await.is_err() {
                    break 'read;
                }
            }
        }
        if stopped {
            // Twilio closes after stop; nothing more to read for the call.
            break;
        }
    }
    drop(in_tx);
    let _ = writer.await;
}

fn to_incoming(
    r: Released<PlatformFrame>,
    pcm: &mut Vec<i16>,
    stopped: &mut bool,
) -> Option<Incoming> {
    let (f, late) = match r {
        Released::InOrder(f) => (f, false),
        Released::Late(f) => (f, true),
    };
    Some(match f {
        PlatformFrame::Media {
            track,
            payload,
            timestamp_ms,
            ..
        } => {
            if late || track.as_deref().is_some_and(|t| t != "inbound") {
                // Late audio would play out of order; the other track is ours.
                return Some(Incoming::Alive);
            }
            pcm.clear();
            g711::decode(Codec::Pcmu, &payload, pcm);
            Incoming::Audio {
                pcm: pcm.clone(),
                timestamp_ms,
            }
        }
        PlatformFrame::Dtmf { digit, .. } => Incoming::Dtmf(digit),
        PlatformFrame::Mark { name, .. } => Incoming::Mark(name),
        PlatformFrame::Stop { .. } => {
            *stopped = true;
            Incoming::Stop
        }
        PlatformFrame::Connected { .. } => Incoming::Alive,
        PlatformFrame::Start(_) => Incoming::Bad(FrameError::Bad {
            field: "event",
            reason: "a second start on one stream".into(),
        }),
    })
}
