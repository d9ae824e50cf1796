//! One process at a time per data directory: `<dir>/duecall.lock`, held
//! with `flock` for as long as the process dials from that directory, with
//! the holder's PID written in it. A second `duecall run` on the same
//! directory would count caps and recover "crashed" attempts that are in
//! fact another process's live calls; it refuses instead, naming the PID.
//!
//! The kernel drops the lock when its holder dies (even by `kill -9`), so a
//! crash never leaves a stale lock behind. It never touches the database.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::files::{create_private_dir, FILE_MODE};
use super::StoreError;

/// The lock file inside a data directory.
pub const LOCK_FILE: &str = "duecall.lock";

/// The held lock of a data directory; released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the data directory's lock (creating the directory 0700 if
    /// needed), or fails with `StoreError::Locked` naming the holder's PID.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let path = dir.join(LOCK_FILE);
        let io = |source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            return Err(io(err));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DataDirLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // Leave the file (removing it would race a process about to lock
        // it); an empty file says nobody holds it.
        let _ = self.file.set_len(0);
        // Unlock explicitly rather than by closing the fd: a child forked
        // by another thread of this process (espeak-ng, sox, sipp) holds a
        // copy of every fd until its exec closes it, and with it the lock,
        // so a close alone can leave the directory locked for that moment
        // (the likely cause of a test run that once found it still locked
        // right after the drop).
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = std::env::temp_dir().join(format!("duecall-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = DataDirLock::acquire(&dir).expect("first holder");
        let held = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(held.trim(), std::process::id().to_string());
        match DataDirLock::acquire(&dir) {
            Err(StoreError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Locked, got {other:?}"),
        }
        let e = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&format!("pid {}", std::process::id()))
                && e.contains(&dir.display().to_string()),
            "{e}"
        );
        drop(first);
        let again = DataDirLock::acquire(&dir).expect("free once the first let go");
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
