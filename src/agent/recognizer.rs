//! The recognizer's thread and the bounded link to it. Audio and control
//! (a new grammar, the end of an utterance) travel in one bounded queue so
//! they stay in order; audio is dropped (and counted) when the recognizer
//! falls behind, control never is: what the queue cannot take yet waits in
//! a short list of its own and goes first. A busy recognizer never delays
//! a packet and a flood never grows memory.

use std::collections::VecDeque;
use std::sync::mpsc::{self as std_mpsc, TrySendError};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::asr::{Recognizer, Transcript};

/// Commands the recognizer thread can hold before audio is dropped: five
/// seconds of 20 ms frames.
const QUEUE: usize = 250;
/// Control commands waiting for room at most; older ones are merged away.
const MAX_PENDING: usize = 64;
/// The recognizer threads' niceness (Linux). Below the media clock and the
/// call's own tasks (nice 0), which need little CPU but need it on time:
/// on a saturated machine decoders run for tens of ms at a stretch, and at
/// equal priority the RTP sender of 100 calls woke behind them and sent
/// late (p99 20 ms off the 20 ms beat, issue 23). Above the Whisper pool
/// (nice 5), whose hybrid turns fall back to the grammar at a deadline.
pub(crate) const ASR_NICE: i32 = 3;

enum AsrCmd {
    Frames(Vec<i16>),
    /// A listening turn and its grammar phrases.
    Listen(String, Vec<String>),
    /// End the utterance; sent at this instant.
    Finish(Instant),
}

/// What the recognizer thread reports.
pub(super) enum AsrOut {
    Partial(String),
    Final(Transcript, AsrWork),
    Failed(String),
}

/// What the recognizer thread spent on one utterance (ms).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct AsrWork {
    /// The end of the utterance waited behind earlier work.
    pub waited: u64,
    /// The end-of-utterance search.
    pub search: u64,
    /// Grammar switches since the last utterance ended.
    pub setup: u64,
    /// Decoding the utterance's audio.
    pub decode: u64,
    /// Audio decoded.
    pub audio: u64,
    /// What became of Whisper in a turn that uses it.
    pub whisper: Option<crate::asr::whisper::WhisperUse>,
}

/// The pump's end of the link.
pub(super) struct AsrLink {
    tx: std_mpsc::SyncSender<AsrCmd>,
    pending: VecDeque<AsrCmd>,
    /// Audio frames dropped because the recognizer was behind.
    pub dropped_frames: u64,
}

impl AsrLink {
    /// Queues audio of the current utterance (dropped if the queue is full
    /// or control is still waiting for room).
    pub fn audio(&mut self, pcm: Vec<i16>) {
        self.flush();
        if !self.pending.is_empty() {
            self.dropped_frames += 1;
            return;
        }
        match self.tx.try_send(AsrCmd::Frames(pcm)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => self.dropped_frames += 1,
        }
    }

    /// Starts a listening turn (its engine and grammar) for the next
    /// utterance.
    pub fn listen(&mut self, turn: &str, phrases: Vec<String>) {
        // Only the latest turn matters for what comes after it.
        if let Some(AsrCmd::Listen(..)) = self.pending.back() {
            self.pending.pop_back();
        }
        self.control(AsrCmd::Listen(turn.to_string(), phrases));
    }

    /// Ends the current utterance: its final comes back as `AsrOut::Final`.
    pub fn finish(&mut self) {
        if let Some(AsrCmd::Finish(_)) = self.pending.back() {
            return;
        }
        self.control(AsrCmd::Finish(Instant::now()));
    }

    fn control(&mut self, cmd: AsrCmd) {
        if self.pending.len() >= MAX_PENDING {
            // The recognizer is stuck: keep the newest control only.
            self.pending.pop_front();
        }
        self.pending.push_back(cmd);
        self.flush();
    }

    /// Moves waiting control into the queue as room appears (called with
    /// every frame, so it never waits long).
    pub fn flush(&mut self) {
        while let Some(cmd) = self.pending.pop_front() {
            match self.tx.try_send(cmd) {
                Ok(()) => {}
                Err(TrySendError::Full(cmd)) => {
                    self.pending.push_front(cmd);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.pending.clear();
                    return;
                }
            }
        }
    }
}

/// Runs `rec` on its own thread; the thread hands it back when the link is
/// dropped.
pub(super) fn spawn(
    mut rec: Box<dyn Recognizer>,
    results: mpsc::Sender<AsrOut>,
) -> std::io::Result<(AsrLink, std::thread::JoinHandle<Box<dyn Recognizer>>)> {
    let (tx, rx) = std_mpsc::sync_channel::<AsrCmd>(QUEUE);
    let h = std::thread::Builder::new()
        .name("duecall-asr".into())
        .spawn(move || {
            if !crate::priority::set_thread_nice(ASR_NICE) {
                tracing::debug!("cannot lower the recognizer thread's priority");
            }
            let mut ready = false;
            let mut fed = false;
            let mut work = AsrWork::default();
            let mut held: Option<AsrCmd> = None;
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
                                Ok(AsrCmd::Frames(more)) => pcm.extend_from_slice(&more),
                                Ok(other) => {
                                    held = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        AsrCmd::Frames(pcm)
                    }
                    other => other,
                };
                match cmd {
                    AsrCmd::Listen(turn, p) => {
                        let t = Instant::now();
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
                        let t = Instant::now();
                        work.audio += pcm.len() as u64 / 8;
                        match rec.accept(&pcm) {
                            Ok(Some(p)) if !p.text.is_empty() => {
                                // A partial may be lost; the final never is.
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
                            let picked = Instant::now();
                            work.waited = picked.duration_since(sent).as_millis() as u64;
                            match rec.finish() {
                                Ok(t) => {
                                    work.search = picked.elapsed().as_millis() as u64;
                                    work.whisper = rec.whisper_use();
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
        })?;
    Ok((
        AsrLink {
            tx,
            pending: VecDeque::new(),
            dropped_frames: 0,
        },
        h,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::{AsrError, Partial};
    use std::sync::{Arc, Mutex};

    /// A recognizer that blocks until released and records what it got.
    struct Slow {
        gate: Arc<Mutex<()>>,
        log: Arc<Mutex<Vec<String>>>,
        /// Calls to `accept` begun (before waiting on the gate).
        entered: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Recognizer for Slow {
        fn engine(&self) -> &'static str {
            "slow"
        }
        fn set_phrases(&mut self, p: &[String]) -> Result<(), AsrError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("phrases {}", p.len()));
            Ok(())
        }
        fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
            self.entered
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _held = self.gate.lock().unwrap();
            self.log
                .lock()
                .unwrap()
                .push(format!("audio {}", pcm.len()));
            Ok(None)
        }
        fn finish(&mut self) -> Result<Transcript, AsrError> {
            self.log.lock().unwrap().push("finish".into());
            Ok(Transcript::default())
        }
        fn reset(&mut self) {}
    }

    /// A recognizer that reports the niceness of the thread it runs on.
    struct Niceness(std::sync::mpsc::Sender<i32>);

    impl Recognizer for Niceness {
        fn engine(&self) -> &'static str {
            "niceness"
        }
        fn set_phrases(&mut self, _: &[String]) -> Result<(), AsrError> {
            Ok(())
        }
        fn accept(&mut self, _: &[i16]) -> Result<Option<Partial>, AsrError> {
            // SAFETY: plain integers in and out.
            let nice = unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            };
            let _ = self.0.send(nice);
            Ok(None)
        }
        fn finish(&mut self) -> Result<Transcript, AsrError> {
            Ok(Transcript::default())
        }
        fn reset(&mut self) {}
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_recognizer_decodes_below_the_media_clocks_priority() {
        let (nice_tx, nice_rx) = std::sync::mpsc::channel();
        let (tx, _rx) = mpsc::channel(8);
        let (mut link, thread) = spawn(Box::new(Niceness(nice_tx)), tx).unwrap();
        link.listen("identity", vec!["yes".into()]);
        link.audio(vec![0; 160]);
        let nice = nice_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        // At least ASR_NICE (a test run already niced higher stays there).
        assert!(nice >= ASR_NICE, "recognizer thread at nice {nice}");
        drop(link);
        thread.join().unwrap();
    }

    #[test]
    fn a_flood_of_audio_is_dropped_but_control_arrives_in_order() {
        let gate = Arc::new(Mutex::new(()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rec = Box::new(Slow {
            gate: gate.clone(),
            log: log.clone(),
            entered: entered.clone(),
        });
        let (tx, mut rx) = mpsc::channel(8);
        let (mut link, thread) = spawn(rec, tx).unwrap();
        link.listen("identity", vec!["yes".into()]);
        let held = gate.lock().unwrap();
        // The recognizer gets stuck in its first frame (the thread would
        // otherwise coalesce whatever is queued into that frame while the
        // flood is still arriving, and how much depends on scheduling).
        link.audio(vec![0; 160]);
        let stuck = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while entered.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < stuck, "recognizer never fed");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The recognizer is stuck: 10,000 frames (200 s of audio) arrive.
        for _ in 0..10_000 {
            link.audio(vec![0; 160]);
        }
        link.finish();
        link.listen("reminder", vec!["a".into(), "b".into()]);
        assert!(
            link.dropped_frames >= 10_000 - QUEUE as u64 - 2,
            "dropped {}",
            link.dropped_frames
        );
        assert!(link.pending.len() <= 2, "control waits, bounded");
        drop(held);
        // Frames arriving later carry the waiting control into the queue.
        for _ in 0..QUEUE * 2 {
            link.audio(vec![0; 160]);
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        link.finish();
        drop(link);
        let _rec = thread.join().unwrap();
        let log = log.lock().unwrap();
        let finish = log
            .iter()
            .position(|l| l == "finish")
            .expect("the final was asked for");
        let second = log
            .iter()
            .position(|l| l == "phrases 2")
            .expect("the new grammar arrived");
        assert!(finish < second, "in the order sent: {log:?}");
        assert!(matches!(rx.try_recv(), Ok(AsrOut::Final(..))));
    }
}
