//! One bridged call: the SIP leg (the callee) on one side, duecall's stream
//! endpoint on the other, speaking as the platform would. Callee audio goes
//! out as 20 ms stream frames; duecall's audio is queued on the SIP leg and
//! played in real time; a mark comes back when the audio queued before it
//! has played (Twilio: also at once when cleared; chan_websocket: dropped by
//! a flush); the platform's hang-up ends the stream with its goodbye.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::shared::{AsteriskMedia, BridgeCall, Faults, Shared, TransferAsk};
use super::twiml::StreamTwiml;
use crate::media::g711::{self, Codec};
use crate::telephony::leg::{CallLeg, LegCommand, LegEvent};
use crate::telephony::report::CallReport;
use crate::telephony::ws::asterisk::{self, Command, ControlFormat, Event, MediaStart};
use crate::telephony::ws::audiosocket::{self, Decoder, Frame};
use crate::telephony::ws::twilio::{self, AgentFrame, PlatformFrame, StartInfo};

/// What the answered call connects to.
#[derive(Debug, Clone)]
pub enum Plan {
    /// A Twilio `<Connect><Stream>`.
    Twilio(StreamTwiml),
    /// An ARI channel whose dialplan streams to duecall.
    Asterisk {
        /// How.
        media: AsteriskMedia,
        /// Channel variables (`DUECALL_ATTEMPT_ID`, `DUECALL_STREAM_ID`).
        variables: HashMap<String, String>,
    },
}

impl Plan {
    pub(crate) fn params(&self) -> HashMap<String, String> {
        match self {
            Plan::Twilio(s) => s.params.iter().cloned().collect(),
            Plan::Asterisk { variables, .. } => variables.clone(),
        }
    }
}

type TransferRx = mpsc::Receiver<TransferAsk>;

/// Playback of duecall's audio on the SIP leg, and the marks waiting on it.
struct Playout {
    queued: u64,
    played: u64,
    marks: VecDeque<(String, u64)>,
}

impl Playout {
    fn new() -> Self {
        Playout {
            queued: 0,
            played: 0,
            marks: VecDeque::new(),
        }
    }

    async fn queue(&mut self, leg: &CallLeg, pcm: Vec<i16>) {
        self.queued += 1;
        leg.send(LegCommand::Play {
            id: format!("a{}", self.queued),
            pcm: Arc::from(pcm),
        })
        .await;
    }

    /// A mark: returned now if nothing is queued, else once played.
    fn mark(&mut self, name: String) -> Option<String> {
        if self.played >= self.queued {
            Some(name)
        } else {
            self.marks.push_back((name, self.queued));
            None
        }
    }

    /// A chunk played (or was cut): marks now due.
    fn played(&mut self, id: &str) -> Vec<String> {
        if let Some(n) = id.strip_prefix('a').and_then(|n| n.parse::<u64>().ok()) {
            self.played = self.played.max(n);
        }
        let mut due = Vec::new();
        while self
            .marks
            .front()
            .is_some_and(|(_, after)| *after <= self.played)
        {
            if let Some((m, _)) = self.marks.pop_front() {
                due.push(m);
            }
        }
        due
    }

    /// Everything queued is dropped; returns the marks that were waiting.
    async fn clear(&mut self, leg: &CallLeg) -> Vec<String> {
        leg.send(LegCommand::ClearPlayQueue).await;
        self.played = self.queued;
        self.marks.drain(..).map(|(m, _)| m).collect()
    }
}

/// Runs one call from the SIP answer to its end.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut leg: CallLeg,
    plan: Plan,
    record: Arc<Mutex<BridgeCall>>,
    mut xfer_rx: TransferRx,
) {
    // Ring until answered (or the call fails: no stream then).
    loop {
        match leg.next_event().await {
            Some(LegEvent::Answered { .. }) => break,
            Some(LegEvent::Ended(r)) => {
                if let Ok(mut c) = record.lock() {
                    c.sip = Some(*r);
                }
                return;
            }
            Some(_) => {}
            None => return,
        }
    }
    let faults = shared.cfg.faults.clone();
    let result = match plan {
        Plan::Twilio(s) => twilio_call(&mut leg, s, &record, &mut xfer_rx, &faults).await,
        Plan::Asterisk {
            media: AsteriskMedia::WebSocket { url, json },
            variables,
        } => {
            asterisk_call(
                &mut leg,
                &url,
                json,
                variables,
                &record,
                &mut xfer_rx,
                &faults,
            )
            .await
        }
        Plan::Asterisk {
            media: AsteriskMedia::AudioSocket(addr),
            variables,
        } => audiosocket_call(&mut leg, addr, variables, &record, &mut xfer_rx, &faults).await,
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "bridge stream failed");
        if let Ok(mut c) = record.lock() {
            c.stream_error = Some(e);
        }
    }
    leg.send(LegCommand::Hangup).await;
    // The report, unless the stream's loop already took it.
    if let Some(report) = leg.wait_end().await {
        note(&record, |c| c.sip = Some(report));
    }
}

fn note<F: FnOnce(&mut BridgeCall)>(record: &Mutex<BridgeCall>, f: F) {
    if let Ok(mut c) = record.lock() {
        f(&mut c);
    }
}

/// What happened on the SIP leg that the stream must tell.
enum LegHappened {
    Audio(Vec<i16>),
    Dtmf(char),
    Played(String),
    Transfer(bool),
    /// The SIP leg ended (its report, when it came).
    Ended(Option<Box<CallReport>>),
    Nothing,
}

fn leg_event(e: Option<LegEvent>) -> LegHappened {
    match e {
        Some(LegEvent::Audio { pcm, .. }) => LegHappened::Audio(pcm.to_vec()),
        Some(LegEvent::Dtmf { digit, .. }) => LegHappened::Dtmf(digit),
        Some(LegEvent::PlayFinished { id, .. }) | Some(LegEvent::PlayStopped { id, .. }) => {
            LegHappened::Played(id)
        }
        Some(LegEvent::TransferResult { ok, .. }) => LegHappened::Transfer(ok),
        Some(LegEvent::Ended(r)) => LegHappened::Ended(Some(r)),
        None => LegHappened::Ended(None),
        Some(_) => LegHappened::Nothing,
    }
}

/// Starts a transfer: REFERs the callee to the target (URI headers kept).
async fn start_transfer(leg: &CallLeg, target: &str) {
    let (uri, headers) = crate::sim::parse_refer_to(target);
    leg.send(LegCommand::Transfer {
        target: uri,
        headers,
    })
    .await;
}

fn elapsed_ms(start: tokio::time::Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Whether a timed fault (`stall_after_ms`, `close_after_ms`) is due.
fn due(after_ms: Option<u64>, started: tokio::time::Instant) -> bool {
    after_ms.is_some_and(|t| elapsed_ms(started) >= t)
}

/// Answers the pending transfer request (if any) with the callee's answer
/// and notes it; true when the call moved (the stream must end).
fn transfer_answered(
    record: &Mutex<BridgeCall>,
    pending: &mut Option<TransferAsk>,
    ok: bool,
) -> bool {
    let Some((target, reply)) = pending.take() else {
        return false;
    };
    note(record, |c| c.transfers.push((target, ok)));
    if ok {
        let _ = reply.send(Ok(()));
    } else {
        let _ = reply.send(Err("the callee's phone refused the transfer".into()));
    }
    ok
}

async fn twilio_call(
    leg: &mut CallLeg,
    stream: StreamTwiml,
    record: &Mutex<BridgeCall>,
    xfer_rx: &mut TransferRx,
    faults: &Faults,
) -> Result<(), String> {
    let (ws, _) = tokio_tungstenite::connect_async(stream.url.as_str())
        .await
        .map_err(|e| format!("cannot connect the stream: {e}"))?;
    let (mut sink, mut source) = ws.split();
    let call_sid = leg.call_id.clone();
    let stream_sid = format!("MZ{:032x}", rand::random::<u128>());
    let mut params = Map::new();
    for (k, v) in &stream.params {
        params.insert(k.clone(), Value::String(v.clone()));
    }
    let mut seq = 1u64;
    let send = |f: PlatformFrame| Message::Text(twilio::write_platform(&f, &stream_sid).into());
    sink.send(send(PlatformFrame::Connected {
        protocol: "Call".into(),
        version: "1.0.0".into(),
    }))
    .await
    .map_err(|e| e.to_string())?;
    sink.send(send(PlatformFrame::Start(Box::new(StartInfo {
        sequence: Some(seq),
        stream_sid: stream_sid.clone(),
        call_sid: call_sid.clone(),
        account_sid: "AC00000000000000000000000000000000".into(),
        custom_parameters: params,
        encoding: "audio/x-mulaw".into(),
        sample_rate: 8000,
        channels: 1,
        tracks: vec!["inbound".into()],
    }))))
    .await
    .map_err(|e| e.to_string())?;
    let started = tokio::time::Instant::now();
    let mut chunk = 0u64;
    let mut held: Option<Message> = None;
    let mut play = Playout::new();
    let mut transfer_reply: Option<TransferAsk> = None;
    let mut ulaw = Vec::with_capacity(160);
    loop {
        if due(faults.close_after_ms, started) {
            // Gone without a stop: the TCP connection just drops.
            drop(sink);
            drop(source);
            note(record, |c| c.ended_by = Some("platform"));
            return Ok(());
        }
        let stalled = due(faults.stall_after_ms, started);
        tokio::select! {
            ev = leg.next_event() => match leg_event(ev) {
                LegHappened::Audio(pcm) => {
                    if stalled { continue; }
                    seq += 1;
                    chunk += 1;
                    ulaw.clear();
                    g711::encode(Codec::Pcmu, &pcm, &mut ulaw);
                    let m = send(PlatformFrame::Media {
                        sequence: Some(seq),
                        track: Some("inbound".into()),
                        chunk: Some(chunk),
                        timestamp_ms: Some((chunk - 1) * 20),
                        payload: ulaw.clone(),
                    });
                    note(record, |c| c.frames_to_duecall += 1);
                    if faults.garbage_every.is_some_and(|n| chunk.is_multiple_of(n)) {
                        sink.send(Message::Text("{\"event\":\"media\",\"media\":{\"payload\":\"@@not base64@@\"}}".into())).await.map_err(|e| e.to_string())?;
                    }
                    match (faults.swap_media_every, held.take()) {
                        (_, Some(h)) => {
                            sink.send(m).await.map_err(|e| e.to_string())?;
                            sink.send(h).await.map_err(|e| e.to_string())?;
                        }
                        (Some(n), None) if chunk.is_multiple_of(n) => held = Some(m),
                        _ => sink.send(m).await.map_err(|e| e.to_string())?,
                    }
                }
                LegHappened::Dtmf(d) => {
                    if stalled { continue; }
                    seq += 1;
                    sink.send(send(PlatformFrame::Dtmf { sequence: Some(seq), digit: d })).await.map_err(|e| e.to_string())?;
                }
                LegHappened::Played(id) => {
                    for m in play.played(&id) {
                        if faults.drop_marks || stalled { continue; }
                        seq += 1;
                        note(record, |c| c.marks_echoed += 1);
                        sink.send(send(PlatformFrame::Mark { sequence: Some(seq), name: m })).await.map_err(|e| e.to_string())?;
                    }
                }
                LegHappened::Transfer(ok) => {
                    if transfer_answered(record, &mut transfer_reply, ok) {
                        // The call left <Connect>: the stream stops.
                        seq += 1;
                        let _ = sink.send(send(PlatformFrame::Stop { sequence: Some(seq) })).await;
                        let _ = sink.close().await;
                        note(record, |c| c.ended_by = Some("platform"));
                        return Ok(());
                    }
                }
                LegHappened::Ended(report) => {
                    note(record, |c| c.sip = report.map(|r| *r));
                    seq += 1;
                    let _ = sink.send(send(PlatformFrame::Stop { sequence: Some(seq) })).await;
                    let _ = sink.close().await;
                    note(record, |c| c.ended_by = Some("platform"));
                    return Ok(());
                }
                LegHappened::Nothing => {}
            },
            msg = source.next() => match msg {
                Some(Ok(Message::Text(t))) => match twilio::parse_agent(t.as_str()) {
                    Ok(AgentFrame::Media { payload }) => {
                        let mut pcm = Vec::with_capacity(payload.len());
                        g711::decode(Codec::Pcmu, &payload, &mut pcm);
                        note(record, |c| c.frames_from_duecall += 1);
                        play.queue(leg, pcm).await;
                    }
                    Ok(AgentFrame::Mark { name }) => {
                        if let Some(m) = play.mark(name) {
                            if !faults.drop_marks {
                                seq += 1;
                                note(record, |c| c.marks_echoed += 1);
                                sink.send(send(PlatformFrame::Mark { sequence: Some(seq), name: m })).await.map_err(|e| e.to_string())?;
                            }
                        }
                    }
                    Ok(AgentFrame::Clear) => {
                        note(record, |c| c.clears += 1);
                        // Twilio returns the cleared marks at once.
                        for m in play.clear(leg).await {
                            if faults.drop_marks { continue; }
                            seq += 1;
                            sink.send(send(PlatformFrame::Mark { sequence: Some(seq), name: m })).await.map_err(|e| e.to_string())?;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "bridge: unreadable frame from duecall"),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // duecall closed the stream: Twilio moves past <Connect> and hangs up.
                    note(record, |c| c.ended_by = Some("duecall"));
                    return Ok(());
                }
                Some(Ok(_)) => {}
            },
            Some((target, reply)) = xfer_rx.recv() => {
                start_transfer(leg, &target).await;
                transfer_reply = Some((target, reply));
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn asterisk_call(
    leg: &mut CallLeg,
    url: &str,
    json: bool,
    variables: HashMap<String, String>,
    record: &Mutex<BridgeCall>,
    xfer_rx: &mut TransferRx,
    faults: &Faults,
) -> Result<(), String> {
    // Dial(WebSocket/duecall/c(ulaw)v(attempt_id=${DUECALL_ATTEMPT_ID},
    // stream_id=${DUECALL_STREAM_ID})): the v() parameters go on the URL
    // (the plain-text MEDIA_START carries no channel variables).
    let mut full = url.to_string();
    for (var, param) in [
        ("DUECALL_ATTEMPT_ID", "attempt_id"),
        ("DUECALL_STREAM_ID", "stream_id"),
    ] {
        if let Some(v) = variables.get(var).filter(|v| !v.is_empty()) {
            let sep = if full.contains('?') { '&' } else { '?' };
            full = format!(
                "{full}{sep}{param}={}",
                crate::telephony::ws::hook::percent_encode(v)
            );
        }
    }
    let (ws, _) = tokio_tungstenite::connect_async(full.as_str())
        .await
        .map_err(|e| format!("cannot connect the stream: {e}"))?;
    let (mut sink, mut source) = ws.split();
    let format = if json {
        ControlFormat::Json
    } else {
        ControlFormat::PlainText
    };
    let channel_id = leg.call_id.clone();
    let start = MediaStart {
        connection_id: "duecall".into(),
        channel: format!("WebSocket/duecall/0x{:x}", rand::random::<u32>()),
        channel_id: channel_id.clone(),
        format: "ulaw".into(),
        optimal_frame_size: 160,
        ptime: 20,
        channel_variables: variables.into_iter().collect(),
        control_format: format,
    };
    let ev = |e: Event| Message::Text(asterisk::write_event(&e, format, &channel_id).into());
    sink.send(ev(Event::MediaStart(Box::new(start))))
        .await
        .map_err(|e| e.to_string())?;
    let started = tokio::time::Instant::now();
    let mut play = Playout::new();
    let mut transfer_reply: Option<TransferAsk> = None;
    let mut ulaw = Vec::with_capacity(160);
    let mut n = 0u64;
    loop {
        if due(faults.close_after_ms, started) {
            note(record, |c| c.ended_by = Some("platform"));
            return Ok(());
        }
        let stalled = due(faults.stall_after_ms, started);
        tokio::select! {
            e = leg.next_event() => match leg_event(e) {
                LegHappened::Audio(pcm) => {
                    if stalled { continue; }
                    n += 1;
                    ulaw.clear();
                    g711::encode(Codec::Pcmu, &pcm, &mut ulaw);
                    note(record, |c| c.frames_to_duecall += 1);
                    if faults.garbage_every.is_some_and(|k| n.is_multiple_of(k)) {
                        sink.send(Message::Text("MEDIA_WHAT digit".into())).await.map_err(|e| e.to_string())?;
                    }
                    sink.send(Message::Binary(ulaw.clone().into())).await.map_err(|e| e.to_string())?;
                }
                LegHappened::Dtmf(d) => {
                    sink.send(ev(Event::DtmfEnd { digit: d })).await.map_err(|e| e.to_string())?;
                }
                LegHappened::Played(id) => {
                    for m in play.played(&id) {
                        if faults.drop_marks || stalled { continue; }
                        note(record, |c| c.marks_echoed += 1);
                        sink.send(ev(Event::MarkProcessed { id: m })).await.map_err(|e| e.to_string())?;
                    }
                }
                LegHappened::Transfer(ok) => {
                    if transfer_answered(record, &mut transfer_reply, ok) {
                        let _ = sink.close().await;
                        note(record, |c| c.ended_by = Some("platform"));
                        return Ok(());
                    }
                }
                LegHappened::Ended(report) => {
                    note(record, |c| c.sip = report.map(|r| *r));
                    // Asterisk hangs up a websocket channel by closing it.
                    let _ = sink.close().await;
                    note(record, |c| c.ended_by = Some("platform"));
                    return Ok(());
                }
                LegHappened::Nothing => {}
            },
            msg = source.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    let mut pcm = Vec::with_capacity(b.len());
                    g711::decode(Codec::Pcmu, &b, &mut pcm);
                    note(record, |c| c.frames_from_duecall += 1);
                    play.queue(leg, pcm).await;
                }
                Some(Ok(Message::Text(t))) => match asterisk::parse_command(t.as_str()) {
                    Ok(Command::MarkMedia(id)) => {
                        if let Some(m) = play.mark(id) {
                            if !faults.drop_marks {
                                note(record, |c| c.marks_echoed += 1);
                                sink.send(ev(Event::MarkProcessed { id: m })).await.map_err(|e| e.to_string())?;
                            }
                        }
                    }
                    Ok(Command::FlushMedia) => {
                        note(record, |c| c.clears += 1);
                        // Flushed marks are dropped with the media.
                        let _ = play.clear(leg).await;
                    }
                    Ok(Command::Hangup) => {
                        note(record, |c| c.ended_by = Some("duecall"));
                        let _ = sink.close().await;
                        return Ok(());
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "bridge: unreadable command from duecall"),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    note(record, |c| c.ended_by = Some("duecall"));
                    return Ok(());
                }
                Some(Ok(_)) => {}
            },
            Some((target, reply)) = xfer_rx.recv() => {
                start_transfer(leg, &target).await;
                transfer_reply = Some((target, reply));
            }
        }
    }
}

async fn audiosocket_call(
    leg: &mut CallLeg,
    addr: SocketAddr,
    variables: HashMap<String, String>,
    record: &Mutex<BridgeCall>,
    xfer_rx: &mut TransferRx,
    faults: &Faults,
) -> Result<(), String> {
    let uuid = variables
        .get("DUECALL_STREAM_ID")
        .and_then(|s| audiosocket::parse_uuid(s))
        .ok_or("AudioSocket needs DUECALL_STREAM_ID (a UUID)")?;
    let sock = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect AudioSocket: {e}"))?;
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let mut b = Vec::new();
    audiosocket::encode(&Frame::Id(uuid), &mut b);
    wr.write_all(&b).await.map_err(|e| e.to_string())?;
    let started = tokio::time::Instant::now();
    let mut dec = Decoder::new(4096);
    let mut buf = vec![0u8; 4096];
    let mut play = Playout::new();
    let mut transfer_reply: Option<TransferAsk> = None;
    loop {
        if due(faults.close_after_ms, started) {
            note(record, |c| c.ended_by = Some("platform"));
            return Ok(());
        }
        let stalled = due(faults.stall_after_ms, started);
        tokio::select! {
            e = leg.next_event() => match leg_event(e) {
                LegHappened::Audio(pcm) => {
                    if stalled { continue; }
                    b.clear();
                    audiosocket::encode(&Frame::Audio(pcm), &mut b);
                    note(record, |c| c.frames_to_duecall += 1);
                    wr.write_all(&b).await.map_err(|e| e.to_string())?;
                }
                LegHappened::Dtmf(d) => {
                    b.clear();
                    audiosocket::encode(&Frame::Dtmf(d), &mut b);
                    wr.write_all(&b).await.map_err(|e| e.to_string())?;
                }
                LegHappened::Played(id) => {
                    let _ = play.played(&id);
                }
                LegHappened::Transfer(ok) => {
                    if transfer_answered(record, &mut transfer_reply, ok) {
                        b.clear();
                        audiosocket::encode(&Frame::Hangup, &mut b);
                        let _ = wr.write_all(&b).await;
                        note(record, |c| c.ended_by = Some("platform"));
                        return Ok(());
                    }
                }
                LegHappened::Ended(report) => {
                    note(record, |c| c.sip = report.map(|r| *r));
                    b.clear();
                    audiosocket::encode(&Frame::Hangup, &mut b);
                    let _ = wr.write_all(&b).await;
                    note(record, |c| c.ended_by = Some("platform"));
                    return Ok(());
                }
                LegHappened::Nothing => {}
            },
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => {
                        note(record, |c| c.ended_by = Some("duecall"));
                        return Ok(());
                    }
                    Ok(n) => n,
                };
                dec.feed(&buf[..n]);
                loop {
                    match dec.next_frame() {
                        Ok(Some(Frame::Audio(pcm))) => {
                            note(record, |c| c.frames_from_duecall += 1);
                            play.queue(leg, pcm).await;
                        }
                        Ok(Some(Frame::Hangup)) => {
                            note(record, |c| c.ended_by = Some("duecall"));
                            return Ok(());
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => return Err(format!("unreadable AudioSocket frame from duecall: {e}")),
                    }
                }
            }
            Some((target, reply)) = xfer_rx.recv() => {
                start_transfer(leg, &target).await;
                transfer_reply = Some((target, reply));
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}
