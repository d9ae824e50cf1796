//! One conversation over one call: the event pump between the `CallLeg`,
//! the VAD and tone detectors, the recognizer thread and the pure
//! `Conversation`. Time is milliseconds since the dial, from one monotonic
//! clock; the conversation never reads it itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Agent, AgentError};
use crate::account::{mask_phone, Account};
use crate::asr::{Recognizer, Transcript};
use crate::dialogue::{
    Action, AmdResult, Conversation, DialogueConfig, Escalation, Event, TurnRecord,
};
use crate::media::tone::{BeepDetector, DtmfDetector};
use crate::media::vad::{SpeechGate, VadConfig, VadEvent};
use crate::outcome::Route;
use crate::telephony::leg::{LegCommand, LegEvent};
use crate::telephony::report::CallReport;
use crate::telephony::sip::DialRequest;

/// How to place one attempt.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Request-URI to dial.
    pub to: String,
    /// The moment the attempt starts (the gate's clock; `--now`).
    pub now: DateTime<Utc>,
    /// The gate's allow, already stored as an attempt: no reminder call
    /// without one (its decision and attempt id go with the outcome).
    pub dial: crate::policy::AllowedDial,
    /// Directory for the recording and the outcome JSON (None: no files).
    pub record_dir: Option<PathBuf>,
    /// Case id for the X-Duecall-Case header.
    pub case_id: Option<String>,
    /// Told when a live transfer starts (webhooks); None: nobody asks.
    pub on_transfer: Option<super::TransferHook>,
}

/// Where the time went between the end of one reply and the first frame of
/// the prompt that answered it, on the driver's clock (ms since the dial).
/// Kept for QA and the latency benchmark; never used to decide anything.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplyTiming {
    /// What the recognizer heard.
    pub heard: String,
    /// End of the last voiced frame of the reply (VAD).
    pub voice_end_ms: u64,
    /// The VAD ended the utterance (after the end silence).
    pub speech_end_ms: u64,
    /// The recognizer's final arrived.
    pub final_ms: u64,
    /// Of which: the end of the utterance queued behind earlier audio.
    pub asr_wait_ms: u64,
    /// Of which: the recognizer's end-of-utterance search.
    pub asr_finish_ms: u64,
    /// Recognizer time spent switching grammars since the previous reply.
    pub asr_setup_ms: u64,
    /// Recognizer time spent decoding this reply's audio.
    pub asr_decode_ms: u64,
    /// Audio of this reply fed to the recognizer.
    pub asr_audio_ms: u64,
    /// The prompt that answered the reply.
    pub prompt: String,
    /// The driver queued it on the leg.
    pub play_ms: u64,
    /// Its first frame went out (the media session's report arrived).
    pub started_ms: u64,
    /// Quiet audio at the head of the prompt before its first voiced frame.
    pub lead_ms: u64,
}

/// The outcome of one attempt (ARCHITECTURE.md "Shapes"): the `call`, the
/// turns, the route, and what AMD decided.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptOutcome {
    /// What happened on the wire.
    pub call: CallReport,
    /// The account called.
    pub account_id: String,
    /// Store id of the attempt.
    pub attempt_id: Option<i64>,
    /// The decision that allowed the dial.
    pub policy: Option<serde_json::Value>,
    /// Prompts and replies.
    pub turns: Vec<TurnRecord>,
    /// Where the case goes.
    pub route: Option<Route>,
    /// Answering-machine detection.
    pub amd: Option<AmdResult>,
    /// Was the right person confirmed?
    pub identity_confirmed: bool,
    /// The deciding intent.
    pub intent: Option<crate::intent::IntentKind>,
    /// Escalations for the collectors (the conversation decided every one).
    pub escalations: Vec<Escalation>,
    /// Did the callee talk with us (a conversation, for the caps)?
    pub conversation: bool,
    /// Debt prompts the guard refused (must stay empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused_prompts: Vec<String>,
    /// Per reply answered by a prompt: where the reply latency went.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reply_timings: Vec<ReplyTiming>,
}

enum AsrCmd {
    Frames(Vec<i16>),
    /// A listening turn and its grammar phrases.
    Listen(String, Vec<String>),
    /// End the utterance; sent at this instant.
    Finish(std::time::Instant),
}

enum AsrOut {
    Partial(String),
    Final(Transcript, AsrWork),
    Failed(String),
}

/// What the recognizer thread spent on one utterance (ms).
#[derive(Debug, Default, Clone, Copy)]
struct AsrWork {
    /// The end of the utterance waited behind earlier work.
    waited: u64,
    /// The end-of-utterance search.
    search: u64,
    /// Grammar switches since the last utterance ended.
    setup: u64,
    /// Decoding the utterance's audio.
    decode: u64,
    /// Audio decoded.
    audio: u64,
}

/// Runs the recognizer on its own thread; hands it back when the call ends.
fn spawn_asr(
    mut rec: Box<dyn Recognizer>,
    results: mpsc::Sender<AsrOut>,
) -> (
    std::sync::mpsc::Sender<AsrCmd>,
    std::thread::JoinHandle<Box<dyn Recognizer>>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<AsrCmd>();
    let h = std::thread::Builder::new()
        .name("duecall-asr".into())
        .spawn(move || {
            let mut ready = false;
            let mut fed = false;
            let mut work = AsrWork::default();
            let mut held: Option<AsrCmd> = None;
            let mut batch: Vec<i16> = Vec::new();
            while let Some(cmd) = held.take().or_else(|| rx.recv().ok()) {
                // Audio that queued up while the recognizer was busy (the
                // pre-roll burst at a speech start, a slow moment) is decoded
                // in one call: one partial hypothesis for the lot instead of
                // one per 20 ms, so a recognizer that fell behind catches up
                // before the utterance ends instead of delaying its final.
                let cmd = match cmd {
                    AsrCmd::Frames(mut pcm) => {
                        loop {
                            match rx.try_recv() {
                                Ok(AsrCmd::Frames(more)) => {
                                    if batch.is_empty() {
                                        batch = std::mem::take(&mut pcm);
                                    }
                                    batch.extend_from_slice(&more);
                                }
                                Ok(other) => {
                                    held = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        if batch.is_empty() {
                            AsrCmd::Frames(pcm)
                        } else {
                            AsrCmd::Frames(std::mem::take(&mut batch))
                        }
                    }
                    other => other,
                };
                match cmd {
                    AsrCmd::Listen(turn, p) => {
                        let t = std::time::Instant::now();
                        let r = rec.listen(&turn, &p);
                        work.setup += t.elapsed().as_millis() as u64;
                        match r {
                            Ok(()) => ready = true,
                            Err(e) => {
                                let _ = results.blocking_send(AsrOut::Failed(e.to_string()));
                            }
                        }
                        fed = false;
                    }
                    AsrCmd::Frames(pcm) if ready => {
                        let t = std::time::Instant::now();
                        work.audio += pcm.len() as u64 / 8;
                        match rec.accept(&pcm) {
                            Ok(Some(p)) if !p.text.is_empty() => {
                                let _ = results.try_send(AsrOut::Partial(p.text));
                            }
                            Ok(_) => {}
                            Err(e) => {
                                let _ = results.blocking_send(AsrOut::Failed(e.to_string()));
                            }
                        }
                        fed = true;
                        work.decode += t.elapsed().as_millis() as u64;
                    }
                    AsrCmd::Frames(_) => {}
                    AsrCmd::Finish(sent) => {
                        if ready && fed {
                            let picked = std::time::Instant::now();
                            work.waited = picked.duration_since(sent).as_millis() as u64;
                            match rec.finish() {
                                Ok(t) => {
                                    work.search = picked.elapsed().as_millis() as u64;
                                    let _ = results
                                        .blocking_send(AsrOut::Final(t, std::mem::take(&mut work)));
                                }
                                Err(e) => {
                                    let _ = results.blocking_send(AsrOut::Failed(e.to_string()));
                                }
                            }
                        }
                        fed = false;
                    }
                }
            }
            rec
        })
        .expect("spawn recognizer thread");
    (tx, h)
}

impl Agent {
    /// Places one reminder call to `account` and holds the whole
    /// conversation; returns when the call is over.
    pub async fn call(
        &self,
        account: &Account,
        opts: CallOptions,
    ) -> Result<AttemptOutcome, AgentError> {
        let lang = account.language;
        let kit = self.kits.get(&lang).ok_or_else(|| AgentError::Config {
            key: "account.language".into(),
            message: format!("no script loaded for `{}`", lang.as_str()),
        })?;
        let zone = crate::account::tz::zones_for(account)
            .0
            .first()
            .copied()
            .unwrap_or(chrono_tz::UTC);
        let local: DateTime<FixedOffset> = opts.now.with_timezone(&zone).fixed_offset();
        let mut dcfg = DialogueConfig::new(local);
        dcfg.no_input_ms = self.dialogue.no_input_ms;
        dcfg.barge_in_min_speech_ms = self.dialogue.barge_in_min_speech_ms;
        dcfg.speak_delay_ms = self.dialogue.speak_delay_ms;
        dcfg.voicemail = self.dialogue.voicemail;
        dcfg.amd.enabled = self.dialogue.amd;
        dcfg.intent_threshold = self.dialogue.intent_threshold;
        dcfg.agent_uri = account
            .agent_uri
            .clone()
            .or_else(|| self.dialogue.agent_uri.clone());
        dcfg.case_id = opts.case_id.clone();
        let mut conv = Conversation::new(
            kit.script.clone(),
            account.clone(),
            dcfg,
            kit.understand.clone(),
        );

        // Every prompt this call can reach, rendered before the INVITE leaves.
        let texts = conv.texts_to_prepare();
        let promise_texts = conv.promise_texts_to_prepare();
        let audio = kit.audio.clone();
        let script = kit.script.clone();
        let prepared: HashMap<String, (String, Arc<[i16]>)> =
            tokio::task::spawn_blocking(move || {
                let mut m = HashMap::new();
                for (id, text) in texts {
                    let fixed = script.prompt(&id).map(|p| p.is_fixed()).unwrap_or(false);
                    let (pcm, _) = audio
                        .load(&id, &text, fixed)
                        .map_err(|e| AgentError::Audio(e.to_string()))?;
                    m.insert(id, (text, Arc::<[i16]>::from(trim_leading_silence(pcm))));
                }
                // Read-backs of every date a promise can name: rendered into the
                // cache now (once a day for all calls), read from it when played.
                let promised: Vec<&str> = promise_texts.iter().map(|(_, t)| t.as_str()).collect();
                audio
                    .prepare(&promised)
                    .map_err(|e| AgentError::Audio(e.to_string()))?;
                Ok::<_, AgentError>(m)
            })
            .await
            .map_err(|e| AgentError::Audio(e.to_string()))??;

        let rec = self.take_recognizer(lang)?;
        let (asr_tx, mut asr_rx) = mpsc::channel(64);
        let (asr_cmd, asr_thread) = spawn_asr(rec, asr_tx);

        let record = match &opts.record_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| AgentError::Write {
                    path: d.clone(),
                    source,
                })?;
                let stem = super::attempt_file_stem(
                    &account.account_id,
                    Some(opts.dial.attempt_id()),
                    opts.now,
                );
                Some(d.join(format!("{stem}.wav")))
            }
            None => None,
        };
        let mut req = DialRequest::to(&opts.to);
        req.record = record.clone();
        tracing::info!(account = %account.account_id, phone = %mask_phone(&account.phone), "placing reminder call");
        let t0 = Instant::now();
        let mut leg = self.gateway.dial(req).await?;
        let ms = |t0: Instant| t0.elapsed().as_millis() as u64;

        let mut gate = SpeechGate::new(VadConfig {
            min_speech_ms: self.dialogue.min_speech_ms,
            end_silence_ms: self.dialogue.end_silence_ms,
            ..VadConfig::default()
        });
        let mut beep = BeepDetector::new(200);
        let mut inband = DtmfDetector::new();
        let mut inband_digits = Vec::new();
        let mut rfc4733_seen = false;
        let mut speech_buf: Vec<i16> = Vec::with_capacity(4000);
        let mut answered = false;
        // The reply being answered (from its end until our prompt starts).
        let mut timing: Option<ReplyTiming> = None;
        let mut reply_timings = Vec::new();

        let report = loop {
            // Drain what the conversation wants done.
            while let Some(action) = conv.poll_action() {
                match action {
                    Action::Play {
                        prompt_id, text, ..
                    } => {
                        let pcm = match prepared.get(&prompt_id) {
                            Some((t, pcm)) if *t == text => pcm.clone(),
                            _ => {
                                // A value known only now (a promised date): render it.
                                let audio = kit.audio.clone();
                                let (id, tx) = (prompt_id.clone(), text.clone());
                                match tokio::task::spawn_blocking(move || {
                                    audio.load(&id, &tx, false)
                                })
                                .await
                                {
                                    Ok(Ok((pcm, _))) => Arc::from(trim_leading_silence(pcm)),
                                    other => {
                                        tracing::warn!(prompt = %prompt_id, "cannot render prompt: {:?}", other.err());
                                        Arc::from(Vec::new())
                                    }
                                }
                            }
                        };
                        if let Some(t) = timing
                            .as_mut()
                            .filter(|t| t.prompt.is_empty() && t.final_ms > 0)
                        {
                            t.prompt = prompt_id.clone();
                            t.play_ms = ms(t0);
                            t.lead_ms = voice_onset_ms(&pcm);
                        }
                        leg.send(LegCommand::Play { id: prompt_id, pcm }).await;
                    }
                    Action::StopPlaying { .. } => {
                        leg.send(LegCommand::ClearPlayQueue).await;
                    }
                    Action::Listen { turn, phrases } => {
                        let grammar = kit
                            .sphinx_grammars
                            .as_ref()
                            .and_then(|g| g.get(&turn))
                            .cloned();
                        let _ = asr_cmd.send(AsrCmd::Listen(turn, grammar.unwrap_or(phrases)));
                    }
                    Action::Transfer { agent_uri, headers } => {
                        if let Some(hook) = &opts.on_transfer {
                            let so_far = conv.outcome();
                            let intent = so_far
                                .intent
                                .map(|i| i.as_str().to_string())
                                .unwrap_or_else(|| "unknown".into());
                            (hook.0)(super::TransferStarted {
                                account_id: account.account_id.clone(),
                                attempt_id: Some(opts.dial.attempt_id()),
                                agent_uri: agent_uri.clone(),
                                reason: so_far
                                    .route
                                    .as_ref()
                                    .map(|r| r.reason.clone())
                                    .unwrap_or_else(|| intent.clone()),
                                intent,
                                at: opts.now + chrono::Duration::milliseconds(ms(t0) as i64),
                                transcript: so_far.turns,
                            });
                        }
                        leg.send(LegCommand::Transfer {
                            target: agent_uri,
                            headers,
                        })
                        .await;
                    }
                    Action::Hangup => {
                        leg.send(LegCommand::Hangup).await;
                    }
                }
            }
            let timer = conv.poll_timeout().map(|t| t0 + Duration::from_millis(t));
            tokio::select! {
                ev = leg.next_event() => {
                    let Some(ev) = ev else { return Err(AgentError::Audio("call ended without a report".into())) };
                    let now = ms(t0);
                    match ev {
                        LegEvent::Answered { .. } => {
                            answered = true;
                            conv.handle(now, Event::Answered);
                        }
                        LegEvent::Audio { pcm, received, .. } => {
                            if !answered { continue; }
                            speech_buf.clear();
                            let vad_ev = gate.process(&pcm[..], &mut speech_buf);
                            if !speech_buf.is_empty() {
                                let _ = asr_cmd.send(AsrCmd::Frames(std::mem::take(&mut speech_buf)));
                            }
                            match vad_ev {
                                Some(VadEvent::SpeechStart { .. }) => conv.handle(now, Event::SpeechStart),
                                Some(VadEvent::SpeechEnd { at_frame, .. }) => {
                                    let silent = gate.vad().frames_seen().saturating_sub(at_frame) * 20;
                                    timing = Some(ReplyTiming {
                                        voice_end_ms: now.saturating_sub(silent),
                                        speech_end_ms: now,
                                        ..ReplyTiming::default()
                                    });
                                    conv.handle(now, Event::SpeechEnd);
                                    let _ = asr_cmd.send(AsrCmd::Finish(std::time::Instant::now()));
                                }
                                None => {}
                            }
                            if received && beep.process(&pcm[..]).is_some() {
                                conv.handle(now, Event::Tone);
                            }
                            if self.dialogue.inband_dtmf && !rfc4733_seen {
                                inband_digits.clear();
                                inband.process(&pcm[..], &mut inband_digits);
                                for d in inband_digits.drain(..) {
                                    conv.handle(now, Event::Dtmf(d.digit));
                                }
                            }
                        }
                        LegEvent::Dtmf { digit, .. } => {
                            rfc4733_seen = true;
                            conv.handle(now, Event::Dtmf(digit));
                        }
                        LegEvent::PlayFinished { id, .. } => conv.handle(now, Event::PlaybackFinished { prompt_id: id }),
                        LegEvent::TransferResult { ok, .. } => conv.handle(now, Event::TransferResult { ok }),
                        LegEvent::Ended(r) => {
                            if !conv.is_ended() {
                                conv.handle(now, Event::Hangup);
                                while conv.poll_action().is_some() {}
                            }
                            break *r;
                        }
                        LegEvent::PlayStarted { id, .. } => {
                            if timing.as_ref().is_some_and(|t| t.prompt == id) {
                                if let Some(mut t) = timing.take() {
                                    t.started_ms = now;
                                    reply_timings.push(t);
                                }
                            }
                        }
                        LegEvent::Ringing | LegEvent::PlayStopped { .. } => {}
                    }
                }
                Some(out) = asr_rx.recv() => {
                    let now = ms(t0);
                    match out {
                        AsrOut::Partial(text) => conv.handle(now, Event::Partial(text)),
                        AsrOut::Final(t, work) => {
                            if let Some(rt) = timing.as_mut().filter(|rt| rt.final_ms == 0) {
                                rt.heard = t.text.clone();
                                rt.final_ms = now;
                                rt.asr_wait_ms = work.waited;
                                rt.asr_finish_ms = work.search;
                                rt.asr_setup_ms = work.setup;
                                rt.asr_decode_ms = work.decode;
                                rt.asr_audio_ms = work.audio;
                            }
                            conv.handle(now, Event::Final { text: t.text, confidence: t.confidence });
                        }
                        AsrOut::Failed(e) => tracing::warn!(error = %e, "recognizer failed on this utterance"),
                    }
                }
                _ = async { match timer { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                    conv.handle(ms(t0), Event::Timeout);
                }
            }
        };
        drop(asr_cmd);
        if let Ok(Ok(rec)) = tokio::task::spawn_blocking(move || asr_thread.join()).await {
            self.give_back(lang, rec);
        }

        let out = conv.outcome();
        let mut call = report;
        let conversation = out.was_conversation(call.disposition);
        call.disposition = out.attempt_disposition(call.disposition);
        let outcome = AttemptOutcome {
            call,
            account_id: account.account_id.clone(),
            attempt_id: Some(opts.dial.attempt_id()),
            policy: serde_json::to_value(opts.dial.decision()).ok(),
            turns: out.turns,
            route: out.route,
            amd: if answered { Some(out.amd) } else { None },
            identity_confirmed: out.identity_confirmed,
            intent: out.intent,
            escalations: out.escalations,
            conversation,
            refused_prompts: out.refused_prompts,
            reply_timings,
        };
        // The outcome JSON beside the recording is the driver's to write,
        // after its database has the outcome (campaign::persist).
        Ok(outcome)
    }
}

/// Drops the silence a synthesizer (or a recording) puts before the first
/// word, keeping one frame: every millisecond of it is reply latency.
fn trim_leading_silence(mut pcm: Vec<i16>) -> Vec<i16> {
    const LOUD: i32 = 300;
    if let Some(first) = pcm.iter().position(|s| (*s as i32).abs() > LOUD) {
        let keep_from = first.saturating_sub(160);
        pcm.drain(..keep_from);
    }
    pcm
}

/// How far into `pcm` the first frame a listener's VAD would call voice
/// starts (energy over -50 dBFS and not noise-like), in ms.
fn voice_onset_ms(pcm: &[i16]) -> u64 {
    pcm.chunks(crate::telephony::leg::FRAME_SAMPLES)
        .position(|f| {
            let s = crate::media::vad::frame_stats(f);
            s.energy_db > -50.0 && !(s.zcr > 0.45 && s.energy_db < -38.0)
        })
        .unwrap_or(0) as u64
        * 20
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs espeak-ng. The promise read-back is rendered per call; its
    /// leading "Th" once left 100 ms of aliased hiss before the first word.
    #[test]
    fn a_read_back_rendered_per_call_voices_within_one_frame() {
        let dir = std::env::temp_dir().join(format!("duecall-readback-{}", std::process::id()));
        let audio = crate::media::tts::PromptAudio::new(&dir, "en", &dir, "en-us", 165);
        let text = "Thank you. We have noted that you will pay on Friday, November 27th.";
        let (pcm, _) = audio
            .load("promise_recorded", text, false)
            .expect("espeak-ng renders");
        let pcm = trim_leading_silence(pcm);
        assert!(
            voice_onset_ms(&pcm) <= 20,
            "voice starts {} ms in",
            voice_onset_ms(&pcm)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn leading_silence_is_trimmed_to_one_frame_and_speech_kept_whole() {
        let mut pcm = vec![0i16; 8000];
        pcm.extend(std::iter::repeat_n(5000, 800));
        pcm.extend(vec![0; 400]);
        let out = trim_leading_silence(pcm);
        assert_eq!(out.len(), 160 + 800 + 400);
        assert_eq!(out[160], 5000);
        assert!(
            trim_leading_silence(vec![0; 100]).len() == 100,
            "all-silent audio is left alone"
        );
    }
}
