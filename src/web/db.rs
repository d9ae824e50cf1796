//! The service's way to the store (the data directory's SQLite, or the
//! shared PostgreSQL database several nodes' services read and write: a
//! [`Location`]): a few open connections shared by the request handlers, each call run on the blocking pool so a slow query or
//! a busy database never stalls the async workers. Owns the connections;
//! never holds one across an await.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::error::WebError;
use crate::store::{Location, Store, StoreError};

/// A small pool of store connections on one store.
#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    at: Location,
    idle: Mutex<Vec<Store>>,
    permits: Semaphore,
}

impl Db {
    /// Opens the store `at` once (creating and migrating it), and allows
    /// `size` connections at a time.
    pub fn open(at: &Location, size: usize) -> Result<Db, StoreError> {
        let first = at.open()?;
        Ok(Db {
            inner: Arc::new(Inner {
                at: at.clone(),
                idle: Mutex::new(vec![first]),
                permits: Semaphore::new(size.max(1)),
            }),
        })
    }

    /// The node-local data directory.
    pub fn dir(&self) -> &Path {
        self.inner.at.dir()
    }

    /// Where the store is (the data directory and the shared database).
    pub fn location(&self) -> &Location {
        &self.inner.at
    }

    /// Runs `f` with a connection on the blocking pool.
    pub async fn run<R, F>(&self, f: F) -> Result<R, WebError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    {
        self.run_web(move |s| f(s).map_err(WebError::from)).await
    }

    /// Runs `f`, whose errors are already the service's, with a connection
    /// on the blocking pool.
    pub async fn run_web<R, F>(&self, f: F) -> Result<R, WebError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R, WebError> + Send + 'static,
    {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| WebError::Unavailable("the service is shutting down".into()))?;
        let inner = self.inner.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let taken = inner.idle.lock().ok().and_then(|mut v| v.pop());
            let mut store = match taken {
                Some(s) => s,
                None => inner.at.open_existing().map_err(WebError::from)?,
            };
            let r = f(&mut store);
            if let Ok(mut v) = inner.idle.lock() {
                v.push(store);
            }
            r
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => Err(WebError::Internal(format!("store task failed: {e}"))),
        }
    }
}
