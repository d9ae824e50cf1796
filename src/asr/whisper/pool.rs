//! The shared Whisper decode pool: one worker thread per core, each with its
//! own decoding state over the one shared model, serving every call of the
//! process. A call never owns a model or a state: capacity and memory stay
//! flat in the number of calls (a queue forms instead).
//!
//! Owns: the workers, the queue (finals before speculative decodes; a
//! speculative decode whose ticket was dropped before it started is never
//! run; any decode whose ticket is dropped while it runs is abandoned) and the tickets results come back on, and the
//! numbers admission control reads of its queue ([`backlog`]). Never decides what a result
//! means.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::decode::{decode_unless, DecodeOptions, Decoded};
use super::model::WhisperModel;
use super::ENGINE;
use crate::asr::AsrError;

/// How urgent a decode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The utterance has ended and a caller waits for the reply.
    Final,
    /// Started during the end silence in case the utterance is over; may be
    /// superseded.
    Speculative,
}

struct Job {
    /// A final (submitted as one, or promoted): its queue wait is counted.
    is_final: Arc<AtomicBool>,
    pcm: Vec<f32>,
    opts: DecodeOptions,
    candidates: Vec<String>,
    queued: Instant,
    id: u64,
    cancelled: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
    reply: mpsc::Sender<Result<(Decoded, u64), AsrError>>,
}

#[derive(Default)]
struct Queue {
    finals: VecDeque<Job>,
    speculative: VecDeque<Job>,
    closed: bool,
    /// When finals started decoding and how long each had queued, within
    /// [`RECENT_WINDOW`].
    recent_waits: VecDeque<(Instant, Duration)>,
    /// When finals were given up before their result came (the caller's
    /// deadline passed: `WhisperUse::Late`), within [`RECENT_WINDOW`].
    recent_late: VecDeque<Instant>,
}

/// How long a final's queue wait or a late final stays in [`backlog`].
pub const RECENT_WINDOW: Duration = Duration::from_secs(5);

/// Entries kept per recent list at most (the oldest go first).
const RECENT_MAX: usize = 1024;

impl Queue {
    fn prune(&mut self, now: Instant) {
        let old = |at: &Instant| now.saturating_duration_since(*at) > RECENT_WINDOW;
        while self.recent_waits.front().is_some_and(|(at, _)| old(at))
            || self.recent_waits.len() > RECENT_MAX
        {
            self.recent_waits.pop_front();
        }
        while self.recent_late.front().is_some_and(old) || self.recent_late.len() > RECENT_MAX {
            self.recent_late.pop_front();
        }
    }
}

/// The Whisper pools' queue as admission control reads it
/// (`campaign::admission`): numbers only, summed over the process's pools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WhisperBacklog {
    /// Worker threads.
    pub workers: usize,
    /// Decodes a new final would find ahead of it (running or queued
    /// finals).
    pub ahead: usize,
    /// The running estimate of one decode's time (ms; 0: none yet).
    pub decode_ms: u64,
    /// How long the oldest final still queued has waited.
    pub oldest_final_wait: Duration,
    /// The longest queue wait of a final that started within
    /// [`RECENT_WINDOW`].
    pub recent_final_wait: Duration,
    /// Finals given up before their result came within [`RECENT_WINDOW`]
    /// (the turn fell back as `Late`).
    pub recent_late: usize,
}

impl WhisperBacklog {
    fn add(self, o: WhisperBacklog) -> WhisperBacklog {
        WhisperBacklog {
            workers: self.workers + o.workers,
            ahead: self.ahead + o.ahead,
            decode_ms: self.decode_ms.max(o.decode_ms),
            oldest_final_wait: self.oldest_final_wait.max(o.oldest_final_wait),
            recent_final_wait: self.recent_final_wait.max(o.recent_final_wait),
            recent_late: self.recent_late + o.recent_late,
        }
    }
}

type Pools = Mutex<HashMap<PathBuf, Arc<WhisperPool>>>;

/// The process-wide pools, by model path.
fn pools() -> &'static Pools {
    static POOLS: OnceLock<Pools> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The queue of every shared pool in the process, now (`None` when no
/// Whisper pool was started: the turns do not use Whisper).
pub fn backlog() -> Option<WhisperBacklog> {
    let pools: Vec<Arc<WhisperPool>> = pools()
        .lock()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    let now = Instant::now();
    pools
        .iter()
        .map(|p| p.backlog(now))
        .reduce(WhisperBacklog::add)
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    busy: AtomicUsize,
    /// The running estimate of one decode's time (ms; 0: none yet).
    decode_ms: AtomicU64,
    next_id: AtomicU64,
}

/// A pending decode. Dropping it cancels the decode if it has not started.
pub struct Ticket {
    rx: mpsc::Receiver<Result<(Decoded, u64), AsrError>>,
    id: u64,
    cancelled: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
    is_final: Arc<AtomicBool>,
    got: Option<Result<(Decoded, u64), AsrError>>,
    /// A result came back to the caller (or is held in `got`).
    delivered: bool,
    shared: Arc<Shared>,
}

impl Ticket {
    /// Waits for the result; also returns how long the job queued (ms).
    pub fn wait(mut self) -> Result<(Decoded, u64), AsrError> {
        self.delivered = true;
        if let Some(r) = self.got.take() {
            return r;
        }
        self.rx.recv().unwrap_or_else(|_| Err(pool_gone()))
    }

    /// Waits at most `timeout` for the result; None when it did not come.
    pub fn wait_timeout(mut self, timeout: Duration) -> Option<Result<(Decoded, u64), AsrError>> {
        if let Some(r) = self.got.take() {
            self.delivered = true;
            return Some(r);
        }
        let r = match self.rx.recv_timeout(timeout) {
            Ok(r) => Some(r),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err(pool_gone())),
        };
        self.delivered = r.is_some();
        r
    }

    /// Waits at most `timeout`; None when the result is not there yet.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<&Result<(Decoded, u64), AsrError>> {
        if self.got.is_none() {
            match self.rx.recv_timeout(timeout) {
                Ok(r) => self.got = Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => self.got = Some(Err(pool_gone())),
            }
            self.delivered = true;
        }
        self.got.as_ref()
    }

    /// Whether a worker has taken the decode (it runs or has run).
    pub fn started(&self) -> bool {
        self.got.is_some() || self.started.load(Ordering::Relaxed)
    }

    /// Whether the result is there (without waiting).
    pub fn is_done(&mut self) -> bool {
        self.wait_for(Duration::ZERO).is_some()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
        // A final given up before its result came: the turn fell back.
        if !self.delivered && self.is_final.load(Ordering::Relaxed) {
            let now = Instant::now();
            let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.recent_late.push_back(now);
            q.prune(now);
        }
    }
}

fn pool_gone() -> AsrError {
    AsrError::Engine {
        engine: ENGINE,
        what: "the decode pool stopped".into(),
    }
}

/// Worker threads decoding with one shared model.
pub struct WhisperPool {
    shared: Arc<Shared>,
    model: Arc<WhisperModel>,
    workers: usize,
}

impl std::fmt::Debug for WhisperPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperPool")
            .field("model", &self.model.path())
            .field("workers", &self.workers)
            .finish()
    }
}

/// The default pool size: the cores this process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl WhisperPool {
    /// Starts `workers` threads, each with its own state over `model`.
    pub fn new(model: Arc<WhisperModel>, workers: usize) -> Result<WhisperPool, AsrError> {
        let workers = workers.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            busy: AtomicUsize::new(0),
            decode_ms: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        });
        for i in 0..workers {
            let state = model
                .context()
                .create_state()
                .map_err(|e| AsrError::Engine {
                    engine: ENGINE,
                    what: format!("cannot create a decoding state: {e}"),
                })?;
            let (shared, model) = (shared.clone(), model.clone());
            std::thread::Builder::new()
                .name(format!("duecall-whisper-{i}"))
                .spawn(move || worker(shared, model, state))
                .map_err(|e| AsrError::Engine {
                    engine: ENGINE,
                    what: format!("cannot start a decode thread: {e}"),
                })?;
        }
        Ok(WhisperPool {
            shared,
            model,
            workers,
        })
    }

    /// The process-wide pool for the model at `path` (made on first use
    /// with `workers` threads; later callers share it whatever they ask).
    pub fn shared(path: &Path, workers: usize) -> Result<Arc<WhisperPool>, AsrError> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut map = pools().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(&key) {
            return Ok(p.clone());
        }
        let model = WhisperModel::shared(path)?;
        let pool = Arc::new(WhisperPool::new(model, workers)?);
        map.insert(key, pool.clone());
        Ok(pool)
    }

    /// The model the workers decode with.
    pub fn model(&self) -> &Arc<WhisperModel> {
        &self.model
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Decodes being worked on right now.
    pub fn busy(&self) -> usize {
        self.shared.busy.load(Ordering::Relaxed)
    }

    /// Decodes a new final decode would find ahead of it: those running
    /// and the finals queued (speculative decodes wait behind finals).
    pub fn ahead_of_final(&self) -> usize {
        let q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        let queued = q
            .finals
            .iter()
            .filter(|j| !j.cancelled.load(Ordering::Relaxed))
            .count();
        queued + self.busy()
    }

    /// The running estimate of one decode's time (ms; 0 before the first
    /// decode), [`super::wait::next_estimate`] over the decodes so far.
    pub fn decode_estimate_ms(&self) -> u64 {
        self.shared.decode_ms.load(Ordering::Relaxed)
    }

    /// This pool's queue at `now` (see [`backlog`]).
    pub fn backlog(&self, now: Instant) -> WhisperBacklog {
        let ahead = self.ahead_of_final();
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.prune(now);
        WhisperBacklog {
            workers: self.workers,
            ahead,
            decode_ms: self.decode_estimate_ms(),
            oldest_final_wait: q
                .finals
                .iter()
                .filter(|j| !j.cancelled.load(Ordering::Relaxed))
                .map(|j| now.saturating_duration_since(j.queued))
                .max()
                .unwrap_or_default(),
            recent_final_wait: q
                .recent_waits
                .iter()
                .map(|(_, w)| *w)
                .max()
                .unwrap_or_default(),
            recent_late: q.recent_late.len(),
        }
    }

    /// Moves `ticket`'s decode, if it still waits among the speculative
    /// ones, to the back of the finals (the utterance has ended: a caller
    /// now waits for it). Returns whether it moved.
    pub fn promote(&self, ticket: &Ticket) -> bool {
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        let Some(i) = q.speculative.iter().position(|j| j.id == ticket.id) else {
            return false;
        };
        match q.speculative.remove(i) {
            Some(job) => {
                job.is_final.store(true, Ordering::Relaxed);
                q.finals.push_back(job);
                true
            }
            None => false,
        }
    }

    /// Queues a decode of 16 kHz `pcm`.
    pub fn submit(&self, pcm: Vec<f32>, opts: DecodeOptions, priority: Priority) -> Ticket {
        self.submit_scoring(pcm, opts, Vec::new(), priority)
    }

    /// Queues a decode of 16 kHz `pcm` that also scores `candidates`
    /// against the same audio ([`Decoded::scores`]).
    pub fn submit_scoring(
        &self,
        pcm: Vec<f32>,
        opts: DecodeOptions,
        candidates: Vec<String>,
        priority: Priority,
    ) -> Ticket {
        let (tx, rx) = mpsc::channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let is_final = Arc::new(AtomicBool::new(priority == Priority::Final));
        let job = Job {
            is_final: is_final.clone(),
            pcm,
            opts,
            candidates,
            queued: Instant::now(),
            id,
            cancelled: cancelled.clone(),
            started: started.clone(),
            reply: tx,
        };
        {
            let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            match priority {
                Priority::Final => q.finals.push_back(job),
                Priority::Speculative => q.speculative.push_back(job),
            }
        }
        self.shared.ready.notify_one();
        Ticket {
            rx,
            id,
            cancelled,
            started,
            is_final,
            got: None,
            delivered: false,
            shared: self.shared.clone(),
        }
    }

    /// Decodes `pcm` now on the calling thread's turn in the queue and waits.
    pub fn decode(&self, pcm: Vec<f32>, opts: DecodeOptions) -> Result<Decoded, AsrError> {
        self.submit(pcm, opts, Priority::Final)
            .wait()
            .map(|(d, _)| d)
    }
}

impl Drop for WhisperPool {
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = true;
        self.shared.ready.notify_all();
    }
}

/// The decode threads' niceness (Linux): below the real-time work of the
/// process (the grammar engines keep up with the audio of every call, the
/// media never waits), so on a saturated machine Whisper slows down and
/// hybrid turns fall back to the grammar engine at their deadline, instead
/// of every call's recognizer falling behind.
const WORKER_NICE: i32 = 5;

/// Lowers the calling thread's priority to [`WORKER_NICE`]; elsewhere, or
/// when refused, nothing.
fn lower_priority() {
    if !crate::priority::set_thread_nice(WORKER_NICE) {
        tracing::debug!("cannot lower the Whisper decode thread's priority");
    }
}

fn worker(shared: Arc<Shared>, model: Arc<WhisperModel>, mut state: whisper_rs::WhisperState) {
    lower_priority();
    loop {
        let job = {
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(j) = q.finals.pop_front().or_else(|| q.speculative.pop_front()) {
                    if j.cancelled.load(Ordering::Relaxed) {
                        continue;
                    }
                    if j.is_final.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        q.recent_waits
                            .push_back((now, now.saturating_duration_since(j.queued)));
                        q.prune(now);
                    }
                    break j;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let waited = job.queued.elapsed().as_millis() as u64;
        job.started.store(true, Ordering::Relaxed);
        shared.busy.fetch_add(1, Ordering::Relaxed);
        let r = decode_unless(
            &model,
            &mut state,
            &job.pcm,
            &job.opts,
            &job.candidates,
            &job.cancelled,
        )
        .map(|d| (d, waited));
        shared.busy.fetch_sub(1, Ordering::Relaxed);
        if let Ok((d, _)) = &r {
            let prev = shared.decode_ms.load(Ordering::Relaxed);
            shared.decode_ms.store(
                super::wait::next_estimate(prev, d.decode_ms),
                Ordering::Relaxed,
            );
        }
        let _ = job.reply.send(r);
    }
}
