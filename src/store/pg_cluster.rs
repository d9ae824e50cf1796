//! A throwaway PostgreSQL cluster for tests (the store's own tests, the
//! several-node e2e tests): `initdb` into a fresh temporary directory,
//! the postmaster on a free port of 127.0.0.1 (and a Unix socket in that
//! directory, never the system's), stopped by its PID when dropped, its
//! directory removed. Debian's `postgresql` package provides the programs
//! (`scripts/setup` installs it).
//!
//! `initdb` and `postgres` refuse to run as root: as root the cluster runs
//! as the `postgres` user (`runuser -u postgres`) on a directory it owns.
//! The cluster uses the C collation (text orders by bytes, as SQLite's) and
//! trusts local connections (it listens on loopback only, for one test).
//!
//! Owns only the cluster's life; never touches another PostgreSQL (the
//! machine's own service stays as it was).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running cluster, stopped (by PID) and removed on drop.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    pid: Option<i32>,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: Debian's
/// `/usr/lib/postgresql/<major>/bin` (the newest), else `pg_config
/// --bindir`, else the PATH.
pub fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    crate::testkit::find_on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of the `postgres` user.
fn postgres_ids() -> Result<(u32, u32), String> {
    let name = std::ffi::CString::new("postgres").map_err(|e| e.to_string())?;
    // SAFETY: getpwnam reads a NUL-terminated name; the result is read at
    // once, before any other passwd call on this thread.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err("no `postgres` user (install Debian's postgresql: scripts/setup)".into());
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| format!("chown {} to postgres: {e}", path.display()))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A command that runs `program` as the cluster's owner.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e} (install Debian's postgresql: scripts/setup)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PgCluster {
    /// Makes and starts a cluster; `tag` names its directory.
    pub fn start(tag: &str) -> Result<PgCluster, String> {
        let bin = bin_dir()
            .ok_or("PostgreSQL's initdb not found (install Debian's postgresql: scripts/setup)")?;
        let dir = std::env::temp_dir().join(format!(
            "duecall-pg-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cluster = PgCluster {
            dir: dir.clone(),
            port: 0,
            pid: None,
        };
        if is_root() {
            let (uid, gid) = postgres_ids()?;
            chown(&dir, uid, gid)?;
        }
        let data = dir.join("data");
        run(
            as_owner(&bin.join("initdb")).arg("-D").arg(&data).args([
                "-U",
                "duecall",
                "--auth=trust",
                "--locale=C",
                "--encoding=UTF8",
                "--no-sync",
            ]),
            "initdb",
        )?;
        // The port is free when asked; another process may take it before
        // the postmaster binds it, so a failed start tries another.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let opts = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                dir.display()
            );
            let started = run(
                as_owner(&bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(dir.join("postgres.log"))
                    .args(["-w", "-t", "60", "-o", &opts, "start"]),
                "pg_ctl start",
            );
            match started {
                Ok(()) => {
                    cluster.port = port;
                    cluster.pid = Some(read_pid(&data)?);
                    return Ok(cluster);
                }
                Err(e) => last = format!("{e}\n{}", cluster.log()),
            }
        }
        Err(last)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` in this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://duecall@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .map_err(|e| format!("connect to the test cluster: {e}"))?;
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(self.url(name))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }
}

fn read_pid(data: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(data.join("postmaster.pid"))
        .map_err(|e| format!("postmaster.pid: {e}"))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("postmaster.pid does not start with a pid: {text:?}"))
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SIGINT: PostgreSQL's fast shutdown (ends sessions, no wait).
            // SAFETY: pid is the postmaster this cluster started.
            unsafe { libc::kill(pid, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if alive(pid) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A cluster for a test, or `None` (the test returns) where PostgreSQL is
/// not installed on a developer's machine. Under CI (`testkit::strict`) a
/// missing PostgreSQL fails the test; a cluster that will not start always
/// does.
pub fn for_test(tag: &str) -> Option<PgCluster> {
    if !crate::testkit::needs()
        .present(bin_dir().is_some(), "PostgreSQL's initdb and pg_ctl")
        .setup("scripts/setup (Debian's postgresql)")
        .met()
    {
        return None;
    }
    match PgCluster::start(tag) {
        Ok(c) => Some(c),
        Err(e) => panic!("the test's PostgreSQL cluster did not start: {e}"),
    }
}
