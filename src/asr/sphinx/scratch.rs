//! Scratch files PocketSphinx reads: n-gram models written as ARPA text to
//! new owner-only files in the temp directory, removed by the caller once
//! read. Owns only writing them safely in a shared /tmp.

use super::ffi::Ptr;
use super::ENGINE;
use crate::asr::ngram::NgramModel;
use crate::asr::AsrError;

/// Writes `model` as ARPA text to a new file of decoder `owner`'s in the
/// temp directory (`tag` names which model), for PocketSphinx to read;
/// the caller removes it once read ([`write_new_private`]).
pub(super) fn write_arpa(
    owner: Ptr,
    tag: &str,
    model: &NgramModel,
) -> Result<std::path::PathBuf, AsrError> {
    let dir = std::env::temp_dir();
    let stem = format!("duecall-sphinx-{}-{:p}-{tag}", std::process::id(), owner);
    write_new_private(&dir, &stem, model.to_arpa().as_bytes()).map_err(|e| AsrError::Engine {
        engine: ENGINE,
        what: format!(
            "cannot write the {tag} n-gram model in {}: {e}",
            dir.display()
        ),
    })
}

/// Writes `bytes` to a new file `<stem>-<n>.arpa` in `dir`, created
/// owner-only (0600) and never over an existing path (`O_EXCL`: a name
/// planted in a shared /tmp is skipped to the next, not followed or
/// overwritten); returns its path.
pub(super) fn write_new_private(
    dir: &std::path::Path,
    stem: &str,
    bytes: &[u8],
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut tries = 0;
    loop {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{stem}-{n}-{nanos:x}.arpa"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                if let Err(e) = f.write_all(bytes) {
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::testutil::TempDir;

    #[test]
    fn temp_model_files_are_new_owner_only_and_distinct() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = TempDir::new("arpa");
        let dir = tmp.0.clone();
        let a = write_new_private(&dir, "m", b"\\data\\\n").unwrap();
        let b = write_new_private(&dir, "m", b"other").unwrap();
        assert_ne!(a, b);
        assert_eq!(std::fs::read(&a).unwrap(), b"\\data\\\n");
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
}
