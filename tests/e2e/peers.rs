//! Real SIP peers for the end-to-end tests: sipp, baresip and kamailio,
//! started on 127.0.0.1 with ports the OS gives, and stopped by PID when the
//! test drops them. Test audio is rendered with espeak-ng and sox.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A child process killed (TERM, then KILL) by PID on drop.
pub struct Peer {
    #[allow(dead_code)]
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Peer {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Peer {
        let out = std::fs::File::create(&log).expect("create peer log");
        let err = out.try_clone().expect("clone log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (run scripts/setup): {e}"));
        Peer {
            name: name.into(),
            child,
            log,
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        let pid = self.child.id() as i32;
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(pid, libc::SIGTERM) };
            for _ in 0..20 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The crate root (tests/sipp, prompts, ...).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!(
        "e2e-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// A UDP port (and the one above it, for RTCP) that is free right now.
pub fn free_udp_pair() -> u16 {
    for _ in 0..200 {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind probe");
        let p = s.local_addr().unwrap().port();
        if p.is_multiple_of(2) && p < 65000 && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free UDP port pair")
}

/// A free SIP port: free for UDP and for TCP, since baresip and kamailio
/// listen on both (a port free for UDP but held by a TCP connection made
/// baresip fail with "Address already in use").
pub fn free_udp_port() -> u16 {
    for _ in 0..200 {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind probe");
        let p = s.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no port free for both UDP and TCP")
}

/// A free TCP port.
pub fn free_tcp_port() -> u16 {
    let s = std::net::TcpListener::bind("127.0.0.1:0").expect("bind probe");
    s.local_addr().unwrap().port()
}

/// Waits until something binds `port` on 127.0.0.1 (UDP).
pub fn wait_udp_bound(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits until the process `child` itself has a UDP socket bound to `port` on
/// 127.0.0.1 (its socket inode in /proc/net/udp is one of its open fds).
/// False when it exits first or the time runs out.
pub fn wait_udp_bound_by(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let owned = socket_inodes(child.id());
        if udp_inodes_on(port).iter().any(|i| owned.contains(i)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().to_string();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The inodes of UDP sockets bound to 127.0.0.1:`port` (or the wildcard).
fn udp_inodes_on(port: u16) -> Vec<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let want = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            if want.iter().any(|w| w == local) {
                f.get(9)?.parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// Waits until a TCP port accepts connections.
pub fn wait_tcp(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    false
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (run scripts/setup): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Speaks `text` with espeak-ng into an 8 kHz mono 16-bit WAV, with
/// `pad_s` seconds of silence after it.
pub fn speak_wav(text: &str, voice: &str, out: &Path, pad_s: f32) {
    let raw = out.with_extension("espeak.wav");
    run(Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(&raw)
        .arg(text));
    run(Command::new("sox")
        .arg("-R") // repeatable: no random dither
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(out)
        .args(["pad", "0", &pad_s.to_string()]));
    let _ = std::fs::remove_file(raw);
}

/// Converts a WAV into headerless G.711 (`ul` or `al`) for sipp's rtp_stream.
pub fn wav_to_g711(wav: &Path, out: &Path, kind: &str) {
    run(Command::new("sox")
        .arg("-R") // repeatable: no random dither
        .arg(wav)
        .args(["-r", "8000", "-c", "1", "-t", kind])
        .arg(out));
}

/// A sipp instance running one scenario from tests/sipp as the callee.
pub struct Sipp {
    pub peer: Peer,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sipp {
    /// Starts `tests/sipp/<scenario>` answering one call, in `dir` (where
    /// its audio files are), with OS-given ports.
    pub fn uas(scenario: &str, dir: &Path) -> Sipp {
        Self::uas_calls(scenario, dir, 1, &[])
    }

    /// Same, for `calls` calls, with extra arguments.
    pub fn uas_calls(scenario: &str, dir: &Path, calls: u32, extra: &[&str]) -> Sipp {
        let sf = root().join("tests/sipp").join(scenario);
        for _ in 0..5 {
            let port = free_udp_port();
            let mp = free_udp_pair();
            let mut cmd = Command::new("sipp");
            cmd.current_dir(dir)
                .arg("-sf")
                .arg(&sf)
                .args([
                    "-i",
                    "127.0.0.1",
                    "-mi",
                    "127.0.0.1",
                    "-nostdin",
                    "-trace_err",
                    "-trace_logs",
                ])
                .args([
                    "-p",
                    &port.to_string(),
                    "-mp",
                    &mp.to_string(),
                    "-m",
                    &calls.to_string(),
                ])
                .args(extra);
            let mut peer = Peer::spawn("sipp", &mut cmd, dir.join(format!("sipp-{scenario}.log")));
            // The port was free when probed, but another test may take it
            // before sipp binds: then sipp exits ("Unable to bind main
            // socket") while the port looks bound. Only sipp's own socket counts.
            if wait_udp_bound_by(&mut peer.child, port, Duration::from_secs(5)) {
                return Sipp {
                    peer,
                    port,
                    dir: dir.to_path_buf(),
                };
            }
        }
        panic!("sipp did not bind its port");
    }

    /// `sip:callee@127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("sip:callee@127.0.0.1:{}", self.port)
    }

    /// Waits for sipp to finish its calls; true when every call succeeded.
    pub fn finished_ok(&mut self, timeout: Duration) -> bool {
        match self.peer.wait_timeout(timeout) {
            Some(s) => s.success(),
            None => false,
        }
    }

    /// sipp's own error log, for assertion messages.
    pub fn errors(&self) -> String {
        let mut s = self.peer.log_text();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.ends_with("_errors.log") || n.ends_with("_logs.log") {
                    s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        s
    }
}

/// Reads a WAV as per-channel i16 samples.
pub fn read_channels(path: &Path) -> (u16, Vec<Vec<i16>>) {
    let mut r =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let spec = r.spec();
    let ch = spec.channels as usize;
    let mut out = vec![Vec::new(); ch];
    for (i, s) in r.samples::<i16>().enumerate() {
        out[i % ch].push(s.expect("sample"));
    }
    (spec.channels, out)
}

/// Root-mean-square level of a stretch of samples.
pub fn rms(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / s.len() as f64).sqrt()
}

/// Milliseconds of "loud" 20 ms frames (RMS above `thr`).
pub fn loud_ms(s: &[i16], thr: f64) -> u64 {
    s.chunks(160).filter(|c| rms(c) > thr).count() as u64 * 20
}

/// The harness itself: a sipp that could not bind its port (another process
/// holds it) is not taken for a ready callee.
#[test]
fn sipp_on_a_taken_port_is_not_mistaken_for_ready() {
    let dir = scratch("sipp-taken-port");
    let thief = UdpSocket::bind("127.0.0.1:0").expect("bind thief");
    let port = thief.local_addr().expect("thief addr").port();
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir)
        .arg("-sf")
        .arg(root().join("tests/sipp/uas_486.xml"))
        .args(["-i", "127.0.0.1", "-nostdin", "-m", "1", "-p"])
        .arg(port.to_string());
    let mut peer = Peer::spawn("sipp", &mut cmd, dir.join("sipp.log"));
    assert!(
        !wait_udp_bound_by(&mut peer.child, port, Duration::from_secs(3)),
        "a port held by another socket was taken for sipp's: {}",
        peer.log_text()
    );
    // And sipp on a free port is seen as ready.
    let free = free_udp_port();
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir)
        .arg("-sf")
        .arg(root().join("tests/sipp/uas_486.xml"))
        .args(["-i", "127.0.0.1", "-nostdin", "-m", "1", "-p"])
        .arg(free.to_string());
    let mut ok = Peer::spawn("sipp", &mut cmd, dir.join("sipp-free.log"));
    assert!(
        wait_udp_bound_by(&mut ok.child, free, Duration::from_secs(5)),
        "sipp on a free port was not seen bound: {}",
        ok.log_text()
    );
    drop(thief);
}

/// Taken by the tests that load the machine most (the forty-call soak, the
/// multi-node campaigns of hundreds of calls), so that none of them runs
/// beside another: the soak checks that every conversation ends right, and
/// a recognizer starved by another test's hundreds of calls hears late.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lowers the calling test's thread (and every tool it starts from now on)
/// to nice 10. For the batch evaluations that decode hundreds of clips as
/// fast as they can: beside them, ten tests at a time on 2 cores, the other
/// tests' calls are real time, and a recogniser starved of CPU falls behind
/// the audio and mishears (CI dry runs under load: a browser phone's "I can
/// pay on Friday" heard as "i can do five"). Each test runs on a thread of
/// its own, so no other test inherits this.
pub fn batch_priority() {
    if !duecall::priority::set_thread_nice(10) {
        eprintln!("could not lower this batch test's priority; it runs at the suite's");
    }
}

/// Every attempt in a data directory's store, oldest first (ids are dense
/// but a crashed write may skip one: five misses in a row end the list).
pub fn attempts(data: &Path) -> Vec<duecall::store::AttemptRecord> {
    attempts_in(&duecall::store::Store::open_existing(data).expect("campaign database"))
}

/// Every attempt in `store`, oldest first (as [`attempts`]).
pub fn attempts_in(store: &duecall::store::Store) -> Vec<duecall::store::AttemptRecord> {
    let mut out = Vec::new();
    let (mut id, mut misses) = (1, 0);
    while misses < 5 {
        match store
            .attempt(duecall::store::AttemptId(id))
            .expect("read attempt")
        {
            Some(a) => {
                out.push(a);
                misses = 0;
            }
            None => misses += 1,
        }
        id += 1;
    }
    out
}

/// The gate's allow for `account` at `now` on the data directory `data`
/// (a fresh one: the conversation tests' calls go through the gate like
/// every reminder call, by `duecall call --account`'s path).
pub fn allowed_dial(
    data: &Path,
    account: &duecall::account::Account,
    now: chrono::DateTime<chrono::Utc>,
) -> duecall::policy::AllowedDial {
    duecall::campaign::manual::ManualCall::open(
        &duecall::store::Location::local(data),
        None,
        chrono::Duration::seconds(30),
        account,
        now,
    )
    .expect("data dir")
    .authorise(account, &duecall::policy::PolicyConfig::default(), now)
    .expect("store")
    .unwrap_or_else(|d| panic!("the gate denies {}: {d:?}", account.account_id))
}

/// The engine a campaign test's store runs on. The campaign, compliance and
/// storage-fault tests run once on each ([`campaign_test!`]): on the data
/// directory's SQLite, and on a fresh database in the test's own PostgreSQL
/// cluster (`--store URL`), the data directory then holding only what is
/// the node's own.
pub enum Backend {
    /// The data directory's SQLite (the embedded default).
    Sqlite,
    /// A database in a cluster started for this test, stopped by PID when
    /// the backend is dropped.
    Postgres {
        url: String,
        cluster: std::sync::Arc<duecall::store::pg_cluster::PgCluster>,
    },
}

impl Backend {
    /// PostgreSQL for the test `tag`, or `None` (the test returns) where it
    /// is not installed on a developer's machine; under `CI=true` a missing
    /// PostgreSQL fails the test. Started on a thread of its own: the sync
    /// client cannot run inside the test's tokio runtime.
    pub fn postgres(tag: &str) -> Option<Backend> {
        // The cluster's socket lives in a directory named after the tag:
        // keep the path under the socket path limit.
        let tag: String = tag.chars().take(24).collect();
        std::thread::spawn(move || {
            let cluster = duecall::store::pg_cluster::for_test(&tag)?;
            let url = cluster
                .create_database("campaign")
                .expect("create the test's database");
            Some(Backend::Postgres {
                url,
                cluster: std::sync::Arc::new(cluster),
            })
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// A store of its own for one more campaign in the same test (as a
    /// fresh data directory is on SQLite): a new database `name` in the
    /// same cluster.
    pub fn fresh(&self, name: &str) -> Backend {
        match self {
            Backend::Sqlite => Backend::Sqlite,
            Backend::Postgres { cluster, .. } => {
                let cluster = cluster.clone();
                let name = name.to_string();
                std::thread::spawn(move || {
                    let url = cluster
                        .create_database(&name)
                        .expect("create the test's database");
                    Backend::Postgres { url, cluster }
                })
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
        }
    }

    /// The shared store's URL (`RunArgs::store`), `None` on SQLite.
    pub fn url(&self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres { url, .. } => Some(url.clone()),
        }
    }

    /// `--store URL` for a `duecall` command, nothing on SQLite.
    pub fn args(&self) -> Vec<String> {
        match self.url() {
            Some(url) => vec!["--store".into(), url],
            None => Vec::new(),
        }
    }

    /// Whether a run on `data` has made its store yet (SQLite: the file;
    /// PostgreSQL: the test's database exists from the start).
    pub fn stored(&self, data: &Path) -> bool {
        match self {
            Backend::Sqlite => data.join("duecall.db").exists(),
            Backend::Postgres { .. } => true,
        }
    }

    /// Runs `f` on the store a run on `data` uses (which must exist), on a
    /// thread of its own (see [`Backend::postgres`]).
    pub fn with_store<T: Send>(
        &self,
        data: &Path,
        f: impl FnOnce(&mut duecall::store::Store) -> T + Send,
    ) -> T {
        let url = self.url();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut store = duecall::store::Store::open_existing_at(data, url.as_deref())
                    .expect("the campaign's store");
                f(&mut store)
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Every attempt a run on `data` stored, oldest first (as [`attempts`]).
    pub fn attempts(&self, data: &Path) -> Vec<duecall::store::AttemptRecord> {
        self.with_store(data, |s| attempts_in(s))
    }
}

/// One campaign test body, `async fn NAME(backend: Backend)` (or a plain
/// `fn`), as two tests: `NAME::sqlite` and `NAME::postgres`.
macro_rules! campaign_test {
    (async $name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::peers::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(backend) = crate::peers::Backend::postgres(stringify!($name)) else {
                    return;
                };
                super::$name(backend).await
            }
        }
    };
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(crate::peers::Backend::Sqlite)
            }

            #[test]
            fn postgres() {
                let Some(backend) = crate::peers::Backend::postgres(stringify!($name)) else {
                    return;
                };
                super::$name(backend)
            }
        }
    };
}
