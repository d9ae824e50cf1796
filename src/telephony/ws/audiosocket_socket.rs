//! AudioSocket over TCP (Asterisk connects to `--audiosocket HOST:PORT`):
//! the first frame names the call's UUID, which must be the `stream_id` of
//! an attempt duecall placed (the protocol has no room for a token, so the
//! random, single-use UUID is the credential); then audio, DTMF and the
//! hang-up both ways. duecall paces its own frames (send-ahead 0, no marks:
//! a prompt has played when its last frame has gone).
//!
//! Owns the listener and this protocol's connections. A connection closed
//! without the hang-up frame is a broken stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::audiosocket::{self, Decoder, Frame};
use super::driver::{Incoming, Outgoing, Protocol, SocketEnds, StreamInfo, StreamPipe};
use super::hub::StreamHub;

/// Connections served at once (each is one call).
const MAX_CONNECTIONS: usize = 512;

/// Accepts AudioSocket connections until `shutdown` fires.
pub async fn serve(listener: TcpListener, hub: Arc<StreamHub>, shutdown: CancellationToken) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "audiosocket connection refused: too many at once");
                        continue;
                    };
                    let hub = hub.clone();
                    tokio::spawn(async move {
                        run(sock, hub, peer).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audiosocket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn read_frame(
    sock: &mut TcpStream,
    dec: &mut Decoder,
    buf: &mut [u8],
) -> Result<Option<Frame>, String> {
    loop {
        match dec.next_frame() {
            Ok(Some(f)) => return Ok(Some(f)),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        match sock.read(buf).await {
            Ok(0) => return Ok(None),
            Ok(n) => dec.feed(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Runs one AudioSocket connection to its end.
pub async fn run(mut sock: TcpStream, hub: Arc<StreamHub>, peer: SocketAddr) {
    let cfg = hub.config().clone();
    let _ = sock.set_nodelay(true);
    let mut dec = Decoder::new(cfg.max_frame_bytes.min(u16::MAX as usize));
    let mut buf = vec![0u8; 4096];
    let first = tokio::time::timeout(
        Duration::from_millis(cfg.start_timeout_ms),
        read_frame(&mut sock, &mut dec, &mut buf),
    )
    .await;
    let id = match first {
        Ok(Ok(Some(Frame::Id(id)))) => id,
        other => {
            let why = match other {
                Err(_) => "no id frame in time".to_string(),
                Ok(Ok(Some(f))) => format!("the first frame must be the call's id, got {f:?}"),
                Ok(Ok(None)) => "closed before the id frame".to_string(),
                Ok(Err(e)) => e,
            };
            tracing::warn!(%peer, why = %why, "audiosocket connection refused");
            return;
        }
    };
    let uuid = audiosocket::uuid_text(&id);
    let mut params = Map::new();
    params.insert("stream_id".into(), Value::String(uuid.clone()));
    let info = StreamInfo {
        protocol: Protocol::AudioSocket,
        call_id: uuid.clone(),
        codec: "L16",
        params,
        ids: [("call_id".to_string(), uuid.clone())].into(),
        peer: Some(peer),
    };
    let (pipe, ends) = StreamPipe::open(info, &cfg);
    let SocketEnds {
        incoming: in_tx,
        outgoing: mut out_rx,
    } = ends;
    if let Err(refusal) = hub.arrive(pipe) {
        tracing::warn!(%peer, reason = %refusal, "audiosocket connection refused");
        let mut b = Vec::new();
        audiosocket::encode(&Frame::Hangup, &mut b);
        let _ = sock.write_all(&b).await;
        return;
    }
    let (mut rd, mut wr) = sock.into_split();
    let writer = tokio::spawn(async move {
        let mut b = Vec::with_capacity(400);
        while let Some(o) = out_rx.recv().await {
            b.clear();
            match o {
                Outgoing::Audio(f) => audiosocket::encode(&Frame::Audio(f.to_vec()), &mut b),
                Outgoing::Mark(_) | Outgoing::Clear => continue,
                Outgoing::Hangup | Outgoing::Refuse(_) => break,
            }
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
        b.clear();
        audiosocket::encode(&Frame::Hangup, &mut b);
        let _ = wr.write_all(&b).await;
        let _ = wr.shutdown().await;
    });
    loop {
        let f = loop {
            match dec.next_frame() {
                Ok(Some(f)) => break Ok(Some(f)),
                Ok(None) => {}
                Err(e) => break Err(e.to_string()),
            }
            // The call may end first (we hung up): stop reading then.
            let r = tokio::select! {
                r = rd.read(&mut buf) => r,
                _ = in_tx.closed() => break Ok(None),
            };
            match r {
                Ok(0) => break Ok(None),
                Ok(n) => dec.feed(&buf[..n]),
                Err(e) => break Err(e.to_string()),
            }
        };
        if in_tx.is_closed() {
            break;
        }
        let inc = match f {
            Ok(Some(Frame::Audio(pcm))) => Incoming::Audio {
                pcm,
                timestamp_ms: None,
            },
            Ok(Some(Frame::Silence)) => Incoming::Audio {
                pcm: vec![0; 160],
                timestamp_ms: None,
            },
            Ok(Some(Frame::Dtmf(d))) => Incoming::Dtmf(d),
            Ok(Some(Frame::Hangup)) => {
                let _ = in_tx.send(Incoming::Stop).await;
                break;
            }
            Ok(Some(Frame::Error(code))) => {
                let _ = in_tx
                    .send(Incoming::Broken(format!(
                        "asterisk sent an error frame (code {code:?})"
                    )))
                    .await;
                break;
            }
            Ok(Some(Frame::Id(_))) => Incoming::Alive,
            Ok(Some(Frame::Other(kind))) => Incoming::Bad(super::FrameError::Bad {
                field: "AudioSocket frame type",
                reason: format!("0x{kind:02x} is not handled (8 kHz signed linear only)"),
            }),
            Ok(None) => {
                let _ = in_tx
                    .send(Incoming::Broken(
                        "the connection closed without a hang-up frame".into(),
                    ))
                    .await;
                break;
            }
            Err(e) => {
                let _ = in_tx.send(Incoming::Broken(e)).await;
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
