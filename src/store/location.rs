//! Where one node's store is: its data directory (the lock, caches and
//! recordings being written, always node-local) and, when several nodes
//! share a campaign, the shared PostgreSQL database (`--store URL`,
//! `$DUECALL_STORE` or `[store] url`). Every part of a process that opens
//! the store (the campaign runner, `serve`'s connections, its dialler, its
//! direct streams, `call --account`, crash recovery) opens it through one
//! `Location`, so no part can fall back to the directory's SQLite while
//! the others write to the shared database.
//!
//! Owns that choice only; never opens a connection it does not hand out.

use std::path::{Path, PathBuf};

use super::{Store, StoreError};

/// The data directory and, for several nodes, the shared database's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    dir: PathBuf,
    url: Option<String>,
}

impl Location {
    /// The data directory's own SQLite database.
    pub fn local(dir: impl Into<PathBuf>) -> Location {
        Location {
            dir: dir.into(),
            url: None,
        }
    }

    /// The data directory `dir` and the store `url` names, if any (a
    /// `postgres://` URL, already checked by [`super::cli::store_url`]).
    pub fn new(dir: impl Into<PathBuf>, url: Option<String>) -> Location {
        Location {
            dir: dir.into(),
            url,
        }
    }

    /// The node-local data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shared database's URL (`None`: the directory's SQLite).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Whether several nodes may share this store.
    pub fn is_shared(&self) -> bool {
        self.url.is_some()
    }

    /// Opens the store (creating and migrating it).
    pub fn open(&self) -> Result<Store, StoreError> {
        Store::open_at(&self.dir, self.url.as_deref())
    }

    /// Opens the store for reading: without a shared database the data
    /// directory must already hold one.
    pub fn open_existing(&self) -> Result<Store, StoreError> {
        Store::open_existing_at(&self.dir, self.url.as_deref())
    }

    /// How to name the store in a log line or a message: the directory, or
    /// the database's URL without its password.
    pub fn describe(&self) -> String {
        match &self.url {
            Some(u) => super::redact_url(u),
            None => self.dir.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_location_opens_the_directorys_sqlite_and_names_the_directory() {
        let dir = std::env::temp_dir().join(format!("duecall-loc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let loc = Location::local(&dir);
        assert!(!loc.is_shared());
        assert!(loc.open_existing().is_err(), "nothing stored there yet");
        let s = loc.open().expect("created");
        assert_eq!(s.dialect(), crate::store::db::Dialect::Sqlite);
        assert!(loc.open_existing().is_ok());
        assert_eq!(loc.describe(), dir.display().to_string());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_shared_location_never_shows_the_password() {
        let loc = Location::new(
            "/tmp/x",
            Some("postgres://app:s3cret@db:5432/duecall".into()),
        );
        assert!(loc.is_shared());
        assert!(!loc.describe().contains("s3cret"), "{}", loc.describe());
        assert_eq!(loc.dir(), Path::new("/tmp/x"));
    }
}
