//! Files of a data directory that hold people's data (the database, the
//! lock, outcome JSON): created readable by their owner only (files 0600,
//! directories 0700), and written whole or not at all (a temporary file,
//! fsync, rename), so a crash or a full disk never leaves half an outcome.
//!
//! It never decides what goes in a file; it only creates and writes them.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file duecall writes people's data to.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory it creates for them.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents, each new one 0700. A directory
/// that already exists keeps its mode (the operator chose it).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Makes an existing file of ours owner-only (a database made by an older
/// duecall with the default umask). A missing file is no error.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `path` 0600 if it does not exist (so SQLite, which gives its WAL
/// and shared-memory files the database's mode, keeps them private too).
pub fn touch_private(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` whole or not at all, 0600: into a temporary file
/// beside it, synced, then renamed over `path`. On any error the temporary
/// file is removed and `path` is left as it was.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_and_dirs_are_owner_only_and_written_whole() {
        let base = std::env::temp_dir().join(format!("duecall-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("a").join("b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&base.join("a")), 0o700, "new parents too");
        let f = dir.join("outcome.json");
        write_private(&f, b"{\"a\":1}").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(std::fs::read(&f).unwrap(), b"{\"a\":1}");
        write_private(&f, b"{\"a\":2}").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"{\"a\":2}");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file left behind");
        let loose = dir.join("loose");
        std::fs::write(&loose, b"x").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        make_private(&loose).unwrap();
        assert_eq!(mode(&loose), 0o600);
        // A name too long for the file system fails cleanly, leaving nothing.
        let long = dir.join("x".repeat(300));
        assert!(write_private(&long, b"x").is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
