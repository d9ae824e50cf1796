//! The simulated callee's SIP side: one rsipstack endpoint on UDP, one task
//! per incoming INVITE that rings, answers (or rejects), runs the persona's
//! script over a `media_session`, accepts or refuses REFER, and keeps a
//! record of the call. Owns the far end's signalling and bookkeeping; the
//! turn-taking decisions are `script`'s, the media clock is `media_session`'s.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::dialog::{Dialog, DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{udp::UdpConnection, SipAddr, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::dialogue::prompt::PromptId;
use crate::media::g711::Codec;
use crate::telephony::leg::LegEvent;
use crate::telephony::media_session::{self, MediaCmd, MediaParams};
use crate::telephony::sdp::{self, OfferParams};

use super::audio::{self, LineAudio};
use super::cue::{confirm_parts, cue_speed, cue_texts, cue_voice, PromptCues, PromptKind};
use super::meaning::confirmable_lines;
use super::persona::{yes_no_line, Answer, ConfirmHabit, Persona, PersonaBook, ReferPolicy};
use super::record::{
    ByeFrom, ReferReceived, SaidLine, SentDtmf, SimCallRecord, SimEvent, SimEventKind,
};
use super::script::{Act, ConfirmAnswer, Heard, Performer, PromptHeard, PromptTracker};
use super::{SimConfig, SimError};

/// The speaking rate of a line said again when re-asked: 85 % of the usual.
fn again_speed(speed: u32) -> u32 {
    (speed * 85 / 100).max(80)
}

/// How `persona` answers "Just to be sure: ...?", if its habits answer it.
fn confirm_answer(
    persona: &Persona,
    confirmable: &Arc<HashMap<String, PromptId>>,
) -> Option<ConfirmAnswer> {
    let line = |yes| yes_no_line(&persona.voice, yes).to_string();
    Some(match persona.habits.confirm? {
        ConfirmHabit::Yes => ConfirmAnswer::Always(line(true)),
        ConfirmHabit::No => ConfirmAnswer::Always(line(false)),
        ConfirmHabit::Meant => ConfirmAnswer::ByMeaning {
            yes: line(true),
            no: line(false),
            confirmable: confirmable.clone(),
        },
    })
}

/// A confirmation question's audio around its name slot: its id, the
/// words before the slot, and those after it (None: no slot).
type ConfirmAudio = (PromptId, Arc<[i16]>, Option<Arc<[i16]>>);

struct Shared {
    cfg: SimConfig,
    lines: LineAudio,
    /// The same lines said again, slower ([`again_speed`]).
    again: LineAudio,
    /// Per voice: how a debtor of that voice knows duecall's confirmations and re-asks.
    cues: HashMap<String, Arc<PromptCues>>,
    /// The debtors' lines that mean a consequential intent (they say yes to
    /// its confirmation, no to a confirmation after any other line).
    confirmable: Arc<HashMap<String, PromptId>>,
    dialog_layer: Arc<DialogLayer>,
    contact: rsipstack::sip::Uri,
    local: SocketAddr,
    records: Mutex<Records>,
    changed: watch::Sender<u64>,
    events: broadcast::Sender<SimEvent>,
    cancel: CancellationToken,
}

/// Every call's record, by call number (arrival order); a taken record
/// leaves, its number is never reused (it seeds the call's reply gaps).
#[derive(Default)]
struct Records {
    next: usize,
    by_idx: std::collections::BTreeMap<usize, SimCallRecord>,
}

impl Shared {
    fn book(&self) -> &PersonaBook {
        &self.cfg.personas
    }

    fn update(&self, idx: usize, f: impl FnOnce(&mut SimCallRecord)) {
        if let Ok(mut r) = self.records.lock() {
            if let Some(rec) = r.by_idx.get_mut(&idx) {
                f(rec);
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }

    fn emit(&self, call_id: &str, persona: &str, at_ms: u64, kind: SimEventKind) {
        let _ = self.events.send(SimEvent {
            call_id: call_id.to_string(),
            persona: persona.to_string(),
            at_ms,
            kind,
        });
    }
}

/// A running simulated callee.
pub struct SimCallee {
    shared: Arc<Shared>,
}

impl SimCallee {
    /// Binds, renders every persona's lines, and starts serving.
    pub async fn start(cfg: SimConfig) -> Result<SimCallee, SimError> {
        // Render before answering anything: a call must never wait on espeak-ng.
        let mut lines = LineAudio::default();
        let mut wanted: Vec<(String, String)> = cfg
            .personas
            .iter()
            .flat_map(|p| {
                p.lines()
                    .map(|l| (p.voice.clone(), l.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        // Each voice's cues: the opening words of duecall's confirmations and re-asks.
        let voices: BTreeSet<String> = cfg
            .personas
            .iter()
            .map(|p| cue_voice(&p.voice).to_string())
            .collect();
        for v in &voices {
            wanted.extend(cue_texts(v).iter().map(|(_, t)| (v.clone(), t.to_string())));
        }
        // And each confirmation question whole (around its slot), at the
        // speed duecall speaks it, to tell which one is asked.
        let question_texts: Vec<(String, Vec<String>)> = voices
            .iter()
            .map(|v| {
                let texts = confirm_parts(v)
                    .into_iter()
                    .flat_map(|(_, head, tail)| [Some(head), tail.filter(|t| !t.is_empty())])
                    .flatten()
                    .map(str::to_string)
                    .collect();
                (v.clone(), texts)
            })
            .collect();
        // The lines a debtor may say again when re-asked: slower (a caller
        // repeating itself speaks more slowly), so the repeat is not the
        // same audio the recogniser already missed.
        let again_wanted: Vec<(String, String)> = cfg
            .personas
            .iter()
            .filter(|p| p.habits.repeats > 0)
            .flat_map(|p| {
                p.lines()
                    .map(|l| (p.voice.clone(), l.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let cache = cfg.audio_cache.clone();
        let speed = cfg.speed;
        let (lines, again, questions) = tokio::task::spawn_blocking(move || {
            let mut again = LineAudio::default();
            let mut questions = LineAudio::default();
            for (v, texts) in &question_texts {
                questions.prepare(
                    &cache,
                    cue_speed(v),
                    texts.iter().map(|t| (v.as_str(), t.as_str())),
                )?;
            }
            lines.prepare(
                &cache,
                speed,
                wanted.iter().map(|(v, t)| (v.as_str(), t.as_str())),
            )?;
            again.prepare(
                &cache,
                again_speed(speed),
                again_wanted.iter().map(|(v, t)| (v.as_str(), t.as_str())),
            )?;
            Ok::<_, SimError>((lines, again, questions))
        })
        .await
        .map_err(|e| SimError::Audio(e.to_string()))??;
        let cues: HashMap<String, Arc<PromptCues>> = voices
            .iter()
            .map(|v| {
                let rendered: Vec<(PromptKind, Arc<[i16]>)> = cue_texts(v)
                    .iter()
                    .filter_map(|(k, t)| lines.get(v, t).map(|pcm| (*k, pcm)))
                    .collect();
                let empty: Arc<[i16]> = Arc::from(Vec::new());
                let parts: Vec<ConfirmAudio> = confirm_parts(v)
                    .into_iter()
                    .filter_map(|(id, head, tail)| {
                        let tail = match tail {
                            None => None,
                            Some("") => Some(empty.clone()),
                            Some(t) => Some(questions.get(v, t)?),
                        };
                        Some((id, questions.get(v, head)?, tail))
                    })
                    .collect();
                let cues = PromptCues::new(rendered.iter().map(|(k, p)| (*k, &p[..])))
                    .with_confirms(parts.iter().map(|(id, h, t)| (*id, &h[..], t.as_deref())));
                (v.clone(), Arc::new(cues))
            })
            .collect();

        let cancel = CancellationToken::new();
        let transport_layer = TransportLayer::new(cancel.child_token());
        let conn = UdpConnection::create_connection(cfg.bind, None, Some(cancel.child_token()))
            .await
            .map_err(|e| SimError::Bind {
                addr: cfg.bind,
                message: e.to_string(),
            })?;
        transport_layer.add_transport(conn.into());
        let option = EndpointOption {
            callid_suffix: Some("sim.duecall.test".into()),
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.child_token())
            .with_transport_layer(transport_layer)
            .with_user_agent("duecall-sim")
            .with_option(option)
            .build();
        let local: SocketAddr = endpoint
            .get_addrs()
            .first()
            .and_then(|a: &SipAddr| a.addr.to_string().parse().ok())
            .ok_or_else(|| SimError::Stack("endpoint has no local address".into()))?;
        let mut incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SimError::Stack(e.to_string()))?;
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let contact = rsipstack::sip::Uri::try_from(format!("sip:sim@{local}").as_str())
            .map_err(|e| SimError::Stack(e.to_string()))?;
        let confirmable =
            confirmable_lines(cfg.personas.iter()).map_err(|e| SimError::Personas {
                source_name: "the intent lexicon".into(),
                message: format!("cannot read what the debtors' lines mean: {e}"),
            })?;
        let (changed, _) = watch::channel(0u64);
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            cfg,
            lines,
            again,
            cues,
            confirmable: Arc::new(confirmable),
            dialog_layer,
            contact,
            local,
            records: Mutex::new(Records::default()),
            changed,
            events,
            cancel: cancel.clone(),
        });

        let ep_cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = endpoint.serve() => {},
                _ = ep_cancel.cancelled() => {},
            }
        });
        let sh = shared.clone();
        tokio::spawn(async move {
            loop {
                let tx = tokio::select! {
                    _ = sh.cancel.cancelled() => break,
                    tx = incoming.recv() => match tx { Some(tx) => tx, None => break },
                };
                route(&sh, tx);
            }
        });
        Ok(SimCallee { shared })
    }

    /// The SIP address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// `sip:<persona>@<ip>:<port>`.
    pub fn uri_for(&self, persona: &str) -> String {
        format!("sip:{persona}@{}", self.shared.local)
    }

    /// `sip:<persona>-<tag>@<ip>:<port>`: the same persona under a distinct
    /// URI (one per account in a campaign). `tag` keeps only URI-safe characters.
    pub fn uri_for_tagged(&self, persona: &str, tag: &str) -> String {
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        format!("sip:{persona}-{tag}@{}", self.shared.local)
    }

    /// Names of the personas served.
    pub fn persona_names(&self) -> Vec<String> {
        self.shared.book().names().map(str::to_string).collect()
    }

    /// Records of every call so far (live ones included), in arrival order.
    pub fn records(&self) -> Vec<SimCallRecord> {
        self.shared
            .records
            .lock()
            .map(|r| r.by_idx.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Like [`Self::wait_ended`], but the record leaves the callee's memory:
    /// for long runs (the soak), where keeping every record would itself be
    /// the growth being measured. Clones nothing else while waiting.
    pub async fn take_ended(&self, call_id: &str, timeout: Duration) -> Option<SimCallRecord> {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(mut r) = self.shared.records.lock() {
                let idx = r
                    .by_idx
                    .iter()
                    .find(|(_, rec)| rec.call_id == call_id && rec.ended)
                    .map(|(i, _)| *i);
                if let Some(i) = idx {
                    return r.by_idx.remove(&i);
                }
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return None },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// The record of call `call_id`, once it has ended; None after `timeout`.
    pub async fn wait_ended(&self, call_id: &str, timeout: Duration) -> Option<SimCallRecord> {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self
                .records()
                .into_iter()
                .find(|r| r.call_id == call_id && r.ended);
            if found.is_some() {
                return found;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return None },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// Live events of every call.
    pub fn subscribe(&self) -> broadcast::Receiver<SimEvent> {
        self.shared.events.subscribe()
    }

    /// Stops serving: calls in progress get a BYE, the endpoint closes.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }
}

impl Drop for SimCallee {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

fn route(sh: &Arc<Shared>, mut tx: Transaction) {
    match sh.dialog_layer.match_dialog(&tx) {
        Some(Dialog::Invite(mut d)) => {
            tokio::spawn(async move {
                if let Err(e) = d.handle(&mut tx).await {
                    tracing::debug!(error = %e, "sim: in-dialog request failed");
                }
            });
        }
        _ => match tx.original.method {
            Method::Invite => {
                tokio::spawn(serve_invite(sh.clone(), tx));
            }
            Method::Ack => {}
            m => {
                let status = if m == Method::Options {
                    StatusCode::OK
                } else {
                    StatusCode::CallTransactionDoesNotExist
                };
                tokio::spawn(async move {
                    tx.reply(status).await.ok();
                });
            }
        },
    }
}

/// Splits a Refer-To value (`<sip:agent@h?X-A=1&X-B=c%201>`, with or
/// without a display name) into the target URI and its percent-decoded URI
/// headers (RFC 3261 19.1.5).
pub fn parse_refer_to(value: &str) -> (String, Vec<(String, String)>) {
    let v = value.trim();
    let inner = match (v.find('<'), v.rfind('>')) {
        (Some(a), Some(b)) if b > a => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    };
    let (target, query) = inner.split_once('?').unwrap_or((inner, ""));
    let headers = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (target.to_string(), headers)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the ringing phase ended.
enum Ring {
    Answer,
    Cancelled,
    Shutdown,
}

async fn ring(sh: &Shared, states: &mut DialogStateReceiver, ms: Option<u64>) -> Ring {
    let sleep = tokio::time::sleep(Duration::from_millis(ms.unwrap_or(sh.cfg.max_ring_ms)));
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return Ring::Answer,
            _ = sh.cancel.cancelled() => return Ring::Shutdown,
            st = states.recv() => match st {
                Some(DialogState::Terminated(..)) | None => return Ring::Cancelled,
                _ => {}
            }
        }
    }
}

async fn serve_invite(sh: Arc<Shared>, tx: Transaction) {
    let req = tx.original.clone();
    let uri = req.uri.to_string();
    let user = req.uri.user().unwrap_or("").to_string();
    let (state_tx, mut states) = sh.dialog_layer.new_dialog_state_channel();
    let dialog = match sh.dialog_layer.get_or_create_server_invite(
        &tx,
        state_tx,
        None,
        Some(sh.contact.clone()),
    ) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "sim: cannot create a dialog for an INVITE");
            let mut tx = tx;
            tx.reply(StatusCode::ServerInternalError).await.ok();
            return;
        }
    };
    let call_id = dialog.id().call_id.clone();
    let mut driver = dialog.clone();
    let mut tx = tx;
    tokio::spawn(async move {
        if let Err(e) = driver.handle(&mut tx).await {
            tracing::debug!(error = %e, "sim: INVITE transaction ended with an error");
        }
    });

    let mut record = SimCallRecord::new(call_id.clone(), uri.clone());
    record.invite_headers = req
        .headers
        .iter()
        .filter(|h| h.name().len() > 2 && h.name()[..2].eq_ignore_ascii_case("x-"))
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    let persona = sh.book().select(&user).cloned();
    if let Some(p) = &persona {
        record.persona = p.name.clone();
    }
    let idx = {
        let Ok(mut r) = sh.records.lock() else { return };
        let idx = r.next;
        r.next += 1;
        r.by_idx.insert(idx, record);
        idx
    };
    sh.changed.send_modify(|n| *n += 1);
    let pname = persona
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "?".into());
    sh.emit(&call_id, &pname, 0, SimEventKind::Incoming { uri });

    let finish = |status: Option<u16>, kind: SimEventKind| {
        sh.update(idx, |r| {
            if status.is_some() {
                r.status = status;
            }
            r.ended = true;
        });
        sh.emit(&call_id, &pname, 0, kind);
        sh.emit(&call_id, &pname, 0, SimEventKind::Ended(None));
        sh.dialog_layer.remove_dialog(&dialog.id());
    };

    let Some(persona) = persona else {
        dialog.reject(Some(StatusCode::NotFound), None).ok();
        finish(Some(404), SimEventKind::Rejected(404));
        return;
    };
    match persona.answer {
        Answer::Reject { code, after_ms } => {
            let _ = dialog.ringing(None, None);
            match ring(&sh, &mut states, Some(after_ms)).await {
                Ring::Answer | Ring::Shutdown => {
                    dialog.reject(Some(StatusCode::from(code)), None).ok();
                    finish(Some(code), SimEventKind::Rejected(code));
                }
                Ring::Cancelled => finish(Some(487), SimEventKind::Cancelled),
            }
        }
        Answer::NoAnswer => {
            let _ = dialog.ringing(None, None);
            match ring(&sh, &mut states, None).await {
                Ring::Answer | Ring::Shutdown => {
                    dialog
                        .reject(Some(StatusCode::TemporarilyUnavailable), None)
                        .ok();
                    finish(Some(480), SimEventKind::Rejected(480));
                }
                Ring::Cancelled => finish(Some(487), SimEventKind::Cancelled),
            }
        }
        Answer::Ring { ring_ms } => {
            let _ = dialog.ringing(None, None);
            match ring(&sh, &mut states, Some(sh.cfg.ring_ms.unwrap_or(ring_ms))).await {
                Ring::Cancelled => finish(Some(487), SimEventKind::Cancelled),
                Ring::Shutdown => {
                    dialog
                        .reject(Some(StatusCode::TemporarilyUnavailable), None)
                        .ok();
                    finish(Some(480), SimEventKind::Rejected(480));
                }
                Ring::Answer => {
                    let call = Call {
                        sh: sh.clone(),
                        idx,
                        call_id: call_id.clone(),
                        persona,
                        dialog: dialog.clone(),
                    };
                    match call.run(&req.body, &mut states).await {
                        Ok(()) => {
                            sh.update(idx, |r| r.ended = true);
                            sh.dialog_layer.remove_dialog(&dialog.id());
                        }
                        Err(code) => {
                            dialog.reject(Some(StatusCode::from(code)), None).ok();
                            finish(Some(code), SimEventKind::Rejected(code));
                        }
                    }
                    drop(states);
                    return;
                }
            }
        }
    }
    drop(states);
}

struct Call {
    sh: Arc<Shared>,
    idx: usize,
    call_id: String,
    persona: Persona,
    dialog: InviteDialog,
}

impl Call {
    fn emit(&self, at_ms: u64, kind: SimEventKind) {
        self.sh.emit(&self.call_id, &self.persona.name, at_ms, kind);
    }

    /// Answers the offer and runs the call to its end; Err(status) when the
    /// offer cannot be answered (nothing was sent yet).
    async fn run(self, offer: &[u8], states: &mut DialogStateReceiver) -> Result<(), u16> {
        let sh = self.sh.clone();
        let ours = [Codec::Pcmu, Codec::Pcma];
        let negotiated = sdp::parse_bytes(offer)
            .and_then(|o| sdp::negotiate(&o, &ours))
            .map_err(|e| {
                tracing::info!(call_id = %self.call_id, error = %e, "sim: unusable offer");
                488u16
            })?;
        let ip: IpAddr = sh.local.ip();
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|_| 500u16)?;
        let rtp_port = socket.local_addr().map_err(|_| 500u16)?.port();
        let mut params = OfferParams::new(ip, rtp_port, rand::random::<u32>() as u64);
        params.codecs = ours.to_vec();
        let answer = sdp::build_answer(&params, &negotiated);
        let hdrs = vec![Header::ContentType("application/sdp".into())];
        self.dialog
            .accept(Some(hdrs), Some(answer.into_bytes()))
            .map_err(|_| 500u16)?;

        let record_path = sh.cfg.record_dir.as_ref().map(|d| {
            let safe: String = self
                .call_id
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            d.join(format!("sim-{}-{safe}.wav", self.persona.name))
        });
        if let Some(d) = &sh.cfg.record_dir {
            let _ = std::fs::create_dir_all(d);
        }
        let (media_cmd, media_rx) = mpsc::channel(64);
        let (ev_tx, mut media_ev) = crate::telephony::leg::event_channel();
        let media_stop = CancellationToken::new();
        let mp = MediaParams {
            socket,
            remote: negotiated.remote_rtp,
            codec: negotiated.codec,
            payload_type: negotiated.payload_type,
            dtmf_payload_type: negotiated.dtmf_payload_type,
            jitter_frames: 3,
            record: record_path,
            media_timeout: Duration::from_millis(sh.cfg.media_timeout_ms),
            sit: None,
            options: media_session::MediaOptions::negotiated(&negotiated, &params),
        };
        let media = tokio::spawn(media_session::run(mp, media_rx, ev_tx, media_stop.clone()));
        sh.update(self.idx, |r| {
            r.status = Some(200);
            r.answered = true;
            r.codec = Some(negotiated.codec.name().to_string());
        });
        self.emit(0, SimEventKind::Answered);

        let seed = sh.cfg.seed.unwrap_or_else(rand::random)
            ^ (self.idx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut performer = Performer::new(self.persona.steps.clone(), sh.cfg.reply_gap_ms, seed)
            .with_habits(
                confirm_answer(&self.persona, &sh.confirmable),
                self.persona.habits.repeats,
            );
        let mut tracker = PromptTracker::new(sh.cfg.prompt_end_silence_ms);
        if let Some(c) = sh.cues.get(cue_voice(&self.persona.voice)) {
            tracker = tracker.with_cues(c.clone());
        }
        let mut now: u64 = 0;
        let mut session_version = params.session_version;
        let mut lines_playing: Vec<(String, usize)> = Vec::new();
        let mut n_played = 0usize;

        let bye_from = loop {
            tokio::select! {
                _ = sh.cancel.cancelled() => {
                    self.dialog.bye().await.ok();
                    break ByeFrom::Sim;
                }
                st = states.recv() => match st {
                    None => break ByeFrom::Caller,
                    Some(DialogState::Terminated(_, reason)) => {
                        break match reason {
                            TerminatedReason::UasBye => ByeFrom::Sim,
                            _ => ByeFrom::Caller,
                        };
                    }
                    Some(DialogState::Refer(_, req, handle)) => {
                        let value = req.headers.iter().find(|h| h.name().eq_ignore_ascii_case("Refer-To") || h.name() == "r")
                            .map(|h| h.value().to_string()).unwrap_or_default();
                        let (target, headers) = parse_refer_to(&value);
                        let status = match self.persona.refer {
                            ReferPolicy::Accept if !target.is_empty() => 202,
                            ReferPolicy::Accept => 400,
                            ReferPolicy::Reject(c) => c,
                        };
                        handle.reply(StatusCode::from(status)).await.ok();
                        let rr = ReferReceived { refer_to: value, target, headers, status, at_ms: now };
                        sh.update(self.idx, |r| r.refer_received = Some(rr.clone()));
                        self.emit(now, SimEventKind::Refer(rr));
                        if status == 202 {
                            // The phone "calls" the target and reports success.
                            let d = self.dialog.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                let hdrs = vec![
                                    Header::Event("refer".into()),
                                    Header::SubscriptionState("terminated;reason=noresource".into()),
                                    Header::ContentType("message/sipfrag".into()),
                                ];
                                if let Err(e) = d.notify(Some(hdrs), Some(b"SIP/2.0 200 OK\r\n".to_vec())).await {
                                    tracing::debug!(error = %e, "sim: NOTIFY failed");
                                }
                            });
                        }
                    }
                    Some(DialogState::Updated(_, req, handle)) => {
                        let body = match sdp::parse_bytes(&req.body).and_then(|o| sdp::negotiate(&o, &ours)) {
                            Ok(n) => {
                                let _ = media_cmd.send(MediaCmd::Negotiated(n.clone())).await;
                                session_version += 1;
                                let mut p = params.clone();
                                p.session_version = session_version;
                                Some(sdp::build_answer(&p, &n))
                            }
                            Err(_) => None,
                        };
                        match body {
                            Some(b) => {
                                let hdrs = vec![Header::ContentType("application/sdp".into())];
                                handle.respond(StatusCode::OK, Some(hdrs), Some(b.into_bytes())).await.ok();
                            }
                            None => { handle.reply(StatusCode::NotAcceptableHere).await.ok(); }
                        }
                    }
                    Some(DialogState::Info(_, _, h)) | Some(DialogState::Options(_, _, h))
                    | Some(DialogState::Message(_, _, h)) | Some(DialogState::Notify(_, _, h)) => {
                        h.reply(StatusCode::OK).await.ok();
                    }
                    Some(_) => {}
                },
                ev = media_ev.recv() => {
                    let Some(ev) = ev else {
                        // The media session stopped by itself: no RTP for too long.
                        self.dialog.bye().await.ok();
                        break ByeFrom::Sim;
                    };
                    match ev {
                        LegEvent::Audio { at_ms, pcm, .. } => {
                            now = at_ms;
                            if let Some(h) = tracker.frame(at_ms, &pcm[..]) {
                                match h {
                                    Heard::PromptStart { start_ms } => sh.update(self.idx, |r| {
                                        r.prompts.push(PromptHeard { start_ms, end_ms: None, kind: PromptKind::Other });
                                    }),
                                    Heard::PromptEnd { end_ms, kind } => {
                                        let mut done = None;
                                        sh.update(self.idx, |r| {
                                            if let Some(p) = r.prompts.last_mut() {
                                                p.end_ms = Some(end_ms);
                                                p.kind = kind;
                                                done = Some(*p);
                                            }
                                            r.prompts_heard += 1;
                                        });
                                        if let Some(p) = done {
                                            self.emit(now, SimEventKind::Prompt(p));
                                        }
                                    }
                                }
                                performer.heard(h, now);
                            }
                        }
                        LegEvent::PlayStarted { id, at_ms } => {
                            if let Some((_, i)) = lines_playing.iter().find(|(pid, _)| *pid == id) {
                                let i = *i;
                                sh.update(self.idx, |r| {
                                    if let Some(l) = r.lines_said.get_mut(i) {
                                        let len = l.end_ms - l.at_ms;
                                        l.at_ms = at_ms;
                                        l.end_ms = at_ms + len;
                                    }
                                });
                            }
                        }
                        LegEvent::PlayFinished { id, .. } | LegEvent::PlayStopped { id, .. } => {
                            lines_playing.retain(|(pid, _)| *pid != id);
                            performer.play_finished();
                        }
                        LegEvent::Dtmf { digit, .. } => sh.update(self.idx, |r| r.dtmf_received.push(digit)),
                        _ => {}
                    }
                    if now >= sh.cfg.max_call_ms {
                        self.dialog.bye().await.ok();
                        break ByeFrom::Sim;
                    }
                    let mut hung_up = false;
                    while let Some(act) = performer.poll(now) {
                        let again = matches!(act, Act::SayAgain(_));
                        match act {
                            Act::Say(text) | Act::SayAgain(text) => {
                                let lines = if again { &sh.again } else { &sh.lines };
                                let pcm = lines.get(&self.persona.voice, &text).unwrap_or_else(|| Arc::from(Vec::new()));
                                n_played += 1;
                                let id = format!("line{n_played}");
                                let len_ms = pcm.len() as u64 / 8;
                                let mut line_idx = 0;
                                sh.update(self.idx, |r| {
                                    r.lines_said.push(SaidLine { text: text.clone(), at_ms: now + 20, end_ms: now + 20 + len_ms });
                                    line_idx = r.lines_said.len() - 1;
                                });
                                lines_playing.push((id.clone(), line_idx));
                                self.emit(now, SimEventKind::Said(text));
                                let _ = media_cmd.send(MediaCmd::Play(id, pcm)).await;
                            }
                            Act::Tone { hz, ms } => {
                                n_played += 1;
                                let _ = media_cmd.send(MediaCmd::Play(format!("tone{n_played}"), audio::tone(hz, ms).into())).await;
                            }
                            Act::Dtmf(d) => {
                                sh.update(self.idx, |r| r.dtmf_sent.push(SentDtmf { digits: d.clone(), at_ms: now }));
                                self.emit(now, SimEventKind::Dtmf(d.clone()));
                                let _ = media_cmd.send(MediaCmd::Dtmf(d)).await;
                            }
                            Act::Hangup => {
                                hung_up = true;
                                break;
                            }
                        }
                    }
                    if hung_up {
                        self.dialog.bye().await.ok();
                        break ByeFrom::Sim;
                    }
                }
            }
        };
        media_stop.cancel();
        let summary = media.await.ok();
        sh.update(self.idx, |r| {
            // A prompt still playing (or within its end silence) when the
            // call ended lasted until the last frame heard.
            if let Some(p) = r.prompts.last_mut().filter(|p| p.end_ms.is_none()) {
                p.end_ms = Some(now.max(p.start_ms));
            }
            r.bye_from = Some(bye_from);
            if let Some(s) = &summary {
                r.recording = s.recording.as_ref().map(|i| i.path.clone());
            }
        });
        self.emit(now, SimEventKind::Ended(Some(bye_from)));
        Ok(())
    }
}

#[cfg(test)]
#[path = "callee_tests.rs"]
mod tests;
