//! Decoders per utterance, not per call: a process-wide [`DecoderPool`] of
//! PocketSphinx decoders and the call's side of it, [`PooledSphinx`].
//!
//! A call holds no decoder between its utterances. At the first audio of an
//! utterance (the VAD outside sends audio only from speech start, with its
//! pre-roll) it takes an idle decoder, preferring one that has already
//! compiled the turn's grammar, switches it to that grammar and decodes as
//! it streams (partials and latency as before); the final gives the decoder
//! back. The decoders a process opens therefore follow the utterances in
//! progress at once (debtors speak a small part of a call), not the calls.
//!
//! When every decoder is busy and the pool is at its size
//! (`[asr] decoders`, [`default_decoders`]), the call buffers its audio
//! and tries again with every frame; at the end of the utterance it queues
//! for the next decoder given back, at most [`WAIT_AT_FINAL`], and only
//! then opens an extra decoder for the utterance (closed when given back),
//! so a full pool never hangs a call. Queueing comes first because a full
//! pool usually means a starved CPU: with extra decoders opened after 2 s,
//! 100 conversations on a loaded machine opened 72 more (each 0.4 s of
//! `ps_init` and its grammars), which starved it further (README
//! Performance). Waits and extra decoders are counted ([`pool_stats`]).
//!
//! Cepstral normalisation: a decoder carries the live cepstral mean of the
//! last utterance it decoded (any call's; phone-line audio), starting from
//! [`super::SphinxConfig::cmninit`], as the per-call pool did between calls.
//!
//! Owns: the pools (one per decoder configuration), taking and giving back
//! decoders, the waiting audio. Never endpoints and never decides anything.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::SphinxConfig;
use super::recognizer::SphinxRecognizer;
use super::ENGINE;
use crate::asr::{AsrError, Partial, Recognizer, SecondPass, Transcript};

/// The longest an utterance's final waits for a free decoder before an
/// extra one is opened for it (a last resort: decoders are given back at
/// every final, so the queue moves as fast as the CPU decodes).
pub const WAIT_AT_FINAL: Duration = Duration::from_secs(30);

/// Audio kept for an utterance waiting for a decoder (8 kHz samples: 30 s).
const MAX_WAITING: usize = 8_000 * 30;

/// How long an ended wait for a decoder stays in [`backlog`]'s
/// `recent_wait`.
pub const RECENT_WINDOW: Duration = Duration::from_secs(5);

/// Ended waits kept for [`RECENT_WINDOW`] at most (older ones go first).
const MAX_RECENT: usize = 256;

/// Ids of the calls' recognizers (to tell their waits apart).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The recognisers' backlog: utterances waiting for a decoder, what
/// admission control (`campaign::admission`) reads to tell a full machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Utterances waiting for a decoder now.
    pub waiting: usize,
    /// How long the oldest of them has waited.
    pub oldest_wait: Duration,
    /// The longest wait for a decoder that ended within [`RECENT_WINDOW`].
    pub recent_wait: Duration,
}

impl Backlog {
    /// Both pools' backlogs as one (waits add, the longest stand).
    fn add(self, o: Backlog) -> Backlog {
        Backlog {
            waiting: self.waiting + o.waiting,
            oldest_wait: self.oldest_wait.max(o.oldest_wait),
            recent_wait: self.recent_wait.max(o.recent_wait),
        }
    }
}

/// The backlog of every pool in the process, now.
pub fn backlog() -> Backlog {
    let pools: Vec<Arc<DecoderPool>> = POOLS
        .lock()
        .map(|p| p.iter().map(|(_, p)| p.clone()).collect())
        .unwrap_or_default();
    let now = Instant::now();
    pools
        .iter()
        .fold(Backlog::default(), |b, p| b.add(p.backlog(now)))
}

/// Environment variable overriding the default pool size.
pub const DECODERS_ENV: &str = "DUECALL_SPHINX_DECODERS";

/// Decoders a pool opens at most unless `[asr] decoders` says otherwise:
/// `DUECALL_SPHINX_DECODERS`, else four per core (utterances in progress at
/// once; a decoder is idle between a call's utterances).
pub fn default_decoders() -> usize {
    std::env::var(DECODERS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| 4 * std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// What the process's decoder pools did (summed over pools).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolStats {
    /// Pool size (`[asr] decoders`), summed over pools.
    pub max: usize,
    /// Decoders open now (idle or busy).
    pub open: usize,
    /// Most decoders open at once.
    pub open_peak: usize,
    /// Most decoders decoding at once (utterances in progress).
    pub busy_peak: usize,
    /// Utterances that found no free decoder at their first audio.
    pub waits: u64,
    /// The longest such wait, ms (from the first audio to a decoder).
    pub wait_ms_max: u64,
    /// Extra decoders opened because a final waited [`WAIT_AT_FINAL`].
    pub overflow: u64,
    /// Grammar searches compiled (a decoder compiles a turn's grammar the
    /// first time it decodes that turn, 10-15 MB each, and keeps it).
    #[serde(default)]
    pub grammars: u64,
}

impl std::fmt::Display for PoolStats {
    /// One line for the benches' text reports.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} open at most of {} (busy at most {}), {} grammars compiled, {} utterances waited (longest {} ms), {} extra",
            self.open_peak, self.max, self.busy_peak, self.grammars, self.waits, self.wait_ms_max, self.overflow
        )
    }
}

/// A decoder and the grammars (phrase-set hashes) it has compiled.
struct Slot {
    dec: SphinxRecognizer,
    grammars: HashSet<u64>,
}

struct State {
    idle: Vec<Slot>,
    /// Phrase sets some decoder compiled without an error.
    valid: HashSet<u64>,
    busy: usize,
    stats: PoolStats,
    /// Utterances waiting for a decoder now: recognizer id, since when.
    waiting: Vec<(u64, Instant)>,
    /// Waits that ended: when, how long (newest last).
    recent: VecDeque<(Instant, Duration)>,
}

/// Decoders of one configuration, shared by every call in the process.
pub struct DecoderPool {
    config: SphinxConfig,
    /// [`WAIT_AT_FINAL`] (shorter in tests).
    final_wait: Duration,
    state: Mutex<State>,
    freed: Condvar,
}

/// Every pool in the process, by configuration.
static POOLS: Mutex<Vec<(String, Arc<DecoderPool>)>> = Mutex::new(Vec::new());

fn pool_key(config: &SphinxConfig) -> String {
    let mut c = config.clone();
    let replies = c.replies.take().map_or(0, |r| Arc::as_ptr(&r) as usize);
    format!("{c:?} replies@{replies:x}")
}

fn phrase_key(phrases: &[String]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    phrases.hash(&mut h);
    h.finish()
}

/// The process's pools' statistics, summed.
pub fn pool_stats() -> PoolStats {
    let pools: Vec<Arc<DecoderPool>> = POOLS
        .lock()
        .map(|p| p.iter().map(|(_, p)| p.clone()).collect())
        .unwrap_or_default();
    let mut s = PoolStats::default();
    for p in pools {
        let t = p.lock().stats;
        s.max += t.max;
        s.open += t.open;
        s.open_peak += t.open_peak;
        s.busy_peak += t.busy_peak;
        s.waits += t.waits;
        s.wait_ms_max = s.wait_ms_max.max(t.wait_ms_max);
        s.overflow += t.overflow;
        s.grammars += t.grammars;
    }
    s
}

impl DecoderPool {
    /// An empty pool (no decoder open yet) whose finals wait at most
    /// `final_wait` for a free decoder.
    fn new(config: SphinxConfig, final_wait: Duration) -> DecoderPool {
        DecoderPool {
            config,
            final_wait,
            state: Mutex::new(State {
                idle: Vec::new(),
                valid: HashSet::new(),
                busy: 0,
                stats: PoolStats::default(),
                waiting: Vec::new(),
                recent: VecDeque::new(),
            }),
            freed: Condvar::new(),
        }
    }

    /// The process's pool for `config` (made on first use), at most
    /// `max` decoders (the latest caller's size stands).
    pub fn shared(config: &SphinxConfig, max: usize) -> Arc<DecoderPool> {
        let key = pool_key(config);
        let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        let pool = match pools.iter().find(|(k, _)| *k == key) {
            Some((_, p)) => p.clone(),
            None => {
                let p = Arc::new(DecoderPool::new(config.clone(), WAIT_AT_FINAL));
                pools.push((key, p.clone()));
                p
            }
        };
        drop(pools);
        pool.lock().stats.max = max.max(1);
        pool
    }

    /// Opens the pool's first decoder if it has none (the model's errors
    /// show when a call's recognizer opens, as at start-up's check).
    pub fn ensure_one(&self) -> Result<(), AsrError> {
        if self.lock().stats.open > 0 {
            return Ok(());
        }
        if let Some(slot) = self.take(0, None)? {
            self.give_back(slot);
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle decoder (one that compiled `key` if any), or a new one while
    /// the pool is below its size; None when all are busy. With `wait`, waits
    /// that long for one to be given back, then opens an extra one.
    fn take(&self, key: u64, wait: Option<Duration>) -> Result<Option<Slot>, AsrError> {
        let mut st = self.lock();
        let until = wait.map(|w| Instant::now() + w);
        let mut overflow = false;
        loop {
            if !st.idle.is_empty() {
                let i = st
                    .idle
                    .iter()
                    .rposition(|s| s.grammars.contains(&key))
                    .unwrap_or(st.idle.len() - 1);
                let slot = st.idle.swap_remove(i);
                st.busy += 1;
                st.stats.busy_peak = st.stats.busy_peak.max(st.busy);
                return Ok(Some(slot));
            }
            if st.stats.open < st.stats.max {
                break;
            }
            let Some(until) = until else {
                return Ok(None);
            };
            let now = Instant::now();
            if now >= until {
                overflow = true;
                break;
            }
            st = self
                .freed
                .wait_timeout(st, until - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        // Opened outside the lock: ps_init reads the acoustic model.
        st.stats.open += 1;
        st.stats.open_peak = st.stats.open_peak.max(st.stats.open);
        st.busy += 1;
        st.stats.busy_peak = st.stats.busy_peak.max(st.busy);
        if overflow {
            st.stats.overflow += 1;
        }
        drop(st);
        match SphinxRecognizer::new(&self.config) {
            Ok(dec) => Ok(Some(Slot {
                dec,
                grammars: HashSet::new(),
            })),
            Err(e) => {
                let mut st = self.lock();
                st.stats.open -= 1;
                st.busy -= 1;
                Err(e)
            }
        }
    }

    /// Gives a decoder back (closed if the pool is over its size).
    fn give_back(&self, mut slot: Slot) {
        slot.dec.reset();
        let mut st = self.lock();
        st.busy = st.busy.saturating_sub(1);
        if st.stats.open > st.stats.max {
            st.stats.open -= 1;
            drop(st);
            drop(slot);
            return;
        }
        st.idle.push(slot);
        drop(st);
        self.freed.notify_one();
    }

    /// Recognizer `id` has an utterance waiting for a decoder since `since`.
    fn start_wait(&self, id: u64, since: Instant) {
        let mut st = self.lock();
        if !st.waiting.iter().any(|(i, _)| *i == id) {
            st.waiting.push((id, since));
        }
    }

    /// Recognizer `id`'s wait is over: it got a decoder at `now`
    /// (`got`), or gave the utterance up.
    fn end_wait(&self, id: u64, now: Instant, got: bool) {
        let mut st = self.lock();
        let Some(i) = st.waiting.iter().position(|(w, _)| *w == id) else {
            return;
        };
        let (_, since) = st.waiting.swap_remove(i);
        if !got {
            return;
        }
        let waited = now.saturating_duration_since(since);
        st.stats.waits += 1;
        st.stats.wait_ms_max = st.stats.wait_ms_max.max(waited.as_millis() as u64);
        if st.recent.len() >= MAX_RECENT {
            st.recent.pop_front();
        }
        st.recent.push_back((now, waited));
    }

    /// This pool's backlog at `now`.
    pub fn backlog(&self, now: Instant) -> Backlog {
        let mut st = self.lock();
        while st
            .recent
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RECENT_WINDOW)
        {
            st.recent.pop_front();
        }
        Backlog {
            waiting: st.waiting.len(),
            oldest_wait: st
                .waiting
                .iter()
                .map(|(_, since)| now.saturating_duration_since(*since))
                .max()
                .unwrap_or_default(),
            recent_wait: st.recent.iter().map(|(_, w)| *w).max().unwrap_or_default(),
        }
    }
}

/// A call's PocketSphinx recognizer on a [`DecoderPool`]: holds a decoder
/// only from an utterance's first audio to its final.
pub struct PooledSphinx {
    pool: Arc<DecoderPool>,
    /// Tells this recognizer's waits apart in the pool's backlog.
    id: u64,
    phrases: Vec<String>,
    key: u64,
    slot: Option<Slot>,
    /// Audio of this utterance that arrived while no decoder was free.
    waiting: Vec<i16>,
    /// When this utterance started waiting for a decoder.
    waiting_since: Option<Instant>,
    last_lm: Option<SecondPass>,
}

impl PooledSphinx {
    /// A recognizer on `pool`; opens no decoder yet.
    pub fn new(pool: Arc<DecoderPool>) -> PooledSphinx {
        PooledSphinx {
            pool,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            phrases: Vec::new(),
            key: 0,
            slot: None,
            waiting: Vec::new(),
            waiting_since: None,
            last_lm: None,
        }
    }

    /// Switches a taken decoder to this call's grammar.
    fn ready(&mut self, mut slot: Slot) -> Result<Slot, AsrError> {
        match slot.dec.set_phrases(&self.phrases) {
            Ok(()) => {
                if slot.grammars.insert(self.key) {
                    let mut st = self.pool.lock();
                    st.valid.insert(self.key);
                    st.stats.grammars += 1;
                }
                Ok(slot)
            }
            Err(e) => {
                self.pool.give_back(slot);
                Err(e)
            }
        }
    }

    /// Takes a decoder for this utterance (waiting as [`DecoderPool::take`]
    /// says) and feeds it the audio that waited: None when none is free,
    /// else the partial hypothesis.
    fn acquire(&mut self, wait: Option<Duration>) -> Result<Option<Option<Partial>>, AsrError> {
        let Some(slot) = self.pool.take(self.key, wait)? else {
            return Ok(None);
        };
        let mut slot = self.ready(slot)?;
        if self.waiting_since.take().is_some() {
            self.pool.end_wait(self.id, Instant::now(), true);
        }
        let pcm = std::mem::take(&mut self.waiting);
        let partial = if pcm.is_empty() {
            None
        } else {
            match slot.dec.accept(&pcm) {
                Ok(p) => p,
                Err(e) => {
                    self.pool.give_back(slot);
                    return Err(e);
                }
            }
        };
        self.slot = Some(slot);
        Ok(Some(partial))
    }

    fn release(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.pool.give_back(slot);
        }
        self.waiting.clear();
        if self.waiting_since.take().is_some() {
            self.pool.end_wait(self.id, Instant::now(), false);
        }
    }
}

impl Recognizer for PooledSphinx {
    fn accept(&mut self, pcm: &[i16]) -> Result<Option<Partial>, AsrError> {
        if self.phrases.is_empty() {
            return Err(AsrError::Engine {
                engine: ENGINE,
                what: "no grammar: PocketSphinx needs set_phrases before audio".into(),
            });
        }
        if let Some(slot) = self.slot.as_mut() {
            return slot.dec.accept(pcm);
        }
        if self.waiting.len() + pcm.len() <= MAX_WAITING {
            self.waiting.extend_from_slice(pcm);
        }
        match self.acquire(None)? {
            Some(partial) => Ok(partial),
            None => {
                if self.waiting_since.is_none() {
                    let now = Instant::now();
                    self.waiting_since = Some(now);
                    self.pool.start_wait(self.id, now);
                }
                Ok(None)
            }
        }
    }

    fn set_phrases(&mut self, phrases: &[String]) -> Result<(), AsrError> {
        self.release();
        self.phrases = phrases.to_vec();
        self.key = phrase_key(phrases);
        if self.pool.lock().valid.contains(&self.key) {
            return Ok(());
        }
        // A phrase set no decoder has compiled yet: compile it now on a
        // free decoder (errors show here, as with a decoder per call, and
        // the first utterance does not pay for it); with none free, it is
        // compiled at the first audio.
        if let Some(slot) = self.pool.take(self.key, None)? {
            let slot = self.ready(slot)?;
            self.pool.give_back(slot);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Transcript, AsrError> {
        self.last_lm = None;
        if self.slot.is_none() {
            if self.waiting.is_empty() {
                self.release();
                return Ok(Transcript::default());
            }
            self.acquire(Some(self.pool.final_wait))?;
        }
        let Some(mut slot) = self.slot.take() else {
            self.release();
            return Ok(Transcript::default());
        };
        let t = slot.dec.finish();
        self.last_lm = slot.dec.second_pass();
        self.pool.give_back(slot);
        self.release();
        t
    }

    fn reset(&mut self) {
        self.release();
        self.last_lm = None;
    }

    fn second_pass(&self) -> Option<SecondPass> {
        self.last_lm.clone()
    }

    fn engine(&self) -> &'static str {
        ENGINE
    }
}

impl Drop for PooledSphinx {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::testutil::{speak_8k, sphinx_tools, TempDir};

    /// A pool of its own (not the process's shared one) of at most `max`.
    fn pool(max: usize) -> Arc<DecoderPool> {
        let p = Arc::new(DecoderPool::new(
            SphinxConfig::default(),
            Duration::from_secs(1),
        ));
        p.lock().stats.max = max;
        p
    }

    fn phrases() -> Vec<String> {
        [
            "I already paid",
            "wrong number",
            "yes speaking",
            "stop calling me",
            "I will pay next week",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn feed(rec: &mut dyn Recognizer, pcm: &[i16]) {
        for chunk in pcm.chunks(160) {
            rec.accept(chunk).expect("accept");
        }
    }

    #[test]
    fn the_pool_key_tells_configs_apart_but_not_copies_of_one() {
        let a = SphinxConfig::default();
        assert_eq!(pool_key(&a), pool_key(&a.clone()));
        let b = SphinxConfig {
            cmninit: "40".into(),
            ..a.clone()
        };
        assert_ne!(pool_key(&a), pool_key(&b));
        assert_ne!(phrase_key(&["yes".into()]), phrase_key(&["no".into()]));
    }

    #[test]
    fn an_utterance_that_waited_for_the_busy_decoder_is_heard_as_one_decoder_would_hear_it() {
        if !sphinx_tools() {
            return;
        }
        let d = TempDir::new("sphinx-pool");
        let first = speak_8k(&d.0, "a", "en-us", 160, "yes speaking", true);
        let second = speak_8k(&d.0, "b", "en-us", 160, "I already paid", true);
        // What one decoder hears fed the same two utterances in turn.
        let mut one = SphinxRecognizer::new(&SphinxConfig::default()).unwrap();
        one.set_phrases(&phrases()).unwrap();
        feed(&mut one, &first);
        let want_first = one.finish().unwrap();
        // b's audio all waits, so it reaches the decoder in one piece (as
        // the agent's recognizer thread hands over audio that queued up).
        one.accept(&second).unwrap();
        let want_second = one.finish().unwrap();
        assert_eq!(want_second.text, "i already paid");

        let p = pool(1);
        let (mut a, mut b) = (PooledSphinx::new(p.clone()), PooledSphinx::new(p.clone()));
        a.set_phrases(&phrases()).unwrap();
        b.set_phrases(&phrases()).unwrap();
        // a takes the only decoder; b's whole utterance arrives meanwhile.
        // (Split on a 20 ms frame: the decoder's frame count, which word
        // times are told from, is counted per piece of audio fed.)
        let half = first.len() / 2 / 160 * 160;
        feed(&mut a, &first[..half]);
        feed(&mut b, &second);
        assert!(b.slot.is_none(), "no decoder was free");
        feed(&mut a, &first[half..]);
        let got_first = a.finish().unwrap();
        let got_second = b.finish().unwrap();
        assert_eq!(got_first.text, want_first.text);
        assert_eq!(got_second.text, want_second.text);
        assert_eq!(got_second.words, want_second.words);
        let s = p.lock().stats;
        assert_eq!((s.open, s.open_peak, s.waits, s.overflow), (1, 1, 1, 0));
    }

    #[test]
    fn a_final_that_finds_every_decoder_busy_gets_an_extra_one_after_the_bounded_wait() {
        if !sphinx_tools() {
            return;
        }
        let d = TempDir::new("sphinx-pool-full");
        let pcm = speak_8k(&d.0, "a", "en-us", 160, "wrong number", true);
        let p = pool(1);
        let (mut a, mut b) = (PooledSphinx::new(p.clone()), PooledSphinx::new(p.clone()));
        a.set_phrases(&phrases()).unwrap();
        b.set_phrases(&phrases()).unwrap();
        feed(&mut a, &pcm[..1600]);
        feed(&mut b, &pcm);
        let t = Instant::now();
        let heard = b.finish().unwrap();
        assert!(t.elapsed() >= p.final_wait, "waited {:?}", t.elapsed());
        assert_eq!(heard.text, "wrong number");
        let s = p.lock().stats;
        assert_eq!((s.overflow, s.open, s.open_peak), (1, 1, 2), "{s:?}");
        a.reset();
        assert_eq!(p.lock().idle.len(), 1);
    }

    #[test]
    fn an_utterance_waiting_for_a_decoder_shows_in_the_backlog_and_then_as_a_recent_wait() {
        if !sphinx_tools() {
            return;
        }
        let p = pool(1);
        let (mut a, mut b) = (PooledSphinx::new(p.clone()), PooledSphinx::new(p.clone()));
        a.set_phrases(&phrases()).unwrap();
        b.set_phrases(&phrases()).unwrap();
        assert_eq!(p.backlog(Instant::now()), Backlog::default());
        // a holds the only decoder; b's audio waits.
        a.accept(&[0; 160]).unwrap();
        b.accept(&[0; 160]).unwrap();
        b.accept(&[0; 160]).unwrap();
        let later = Instant::now() + Duration::from_millis(700);
        let now = p.backlog(later);
        assert_eq!(now.waiting, 1, "{now:?}");
        assert!(now.oldest_wait >= Duration::from_millis(700), "{now:?}");
        assert_eq!(now.recent_wait, Duration::ZERO);
        // a's utterance ends; b's next frame takes the decoder.
        a.finish().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        b.accept(&[0; 160]).unwrap();
        let after = p.backlog(Instant::now());
        assert_eq!(after.waiting, 0, "{after:?}");
        assert!(after.recent_wait >= Duration::from_millis(20), "{after:?}");
        // It leaves the window.
        let gone = p.backlog(Instant::now() + RECENT_WINDOW + Duration::from_secs(1));
        assert_eq!(gone, Backlog::default());
        // A wait given up (the call hung up) is no backlog either.
        b.reset();
        a.accept(&[0; 160]).unwrap();
        let mut c = PooledSphinx::new(p.clone());
        c.set_phrases(&phrases()).unwrap();
        c.accept(&[0; 160]).unwrap();
        assert_eq!(p.backlog(Instant::now()).waiting, 1);
        drop(c);
        assert_eq!(p.backlog(Instant::now()).waiting, 0);
        a.reset();
    }

    #[test]
    fn a_word_missing_from_the_dictionary_is_named_when_the_turn_starts() {
        if !sphinx_tools() {
            return;
        }
        let mut r = PooledSphinx::new(pool(2));
        let e = r
            .set_phrases(&["pay with zorblatt".to_string()])
            .unwrap_err();
        assert!(e.to_string().contains("zorblatt"), "{e}");
    }
}
