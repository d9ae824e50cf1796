//! What every request handler shares: the store pool, the clock, the
//! config, the metrics registry, the login throttle, the dialler's wake-up
//! and the shutdown token. Owns their bundling and the wake-up
//! (`DiallerWake`, a notify the dialler waits on); cheap to clone.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::api::views::Scripts;
use super::config::{ServeConfig, WebhookConfig};
use super::db::Db;
use super::metrics::Metrics;
use super::throttle::LoginThrottle;
use crate::campaign::clock::Clock;
use crate::config::Config;
use crate::policy::PolicyConfig;

/// The service's shared state.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub db: Db,
    /// The data directory (recordings are served from inside it only).
    pub data_dir: PathBuf,
    /// Other directories recordings may be in (an absolute
    /// `[recording] dir`), canonical.
    pub recording_roots: Arc<Vec<PathBuf>>,
    /// The service's clock (`--now` anchors it for tests).
    pub clock: Clock,
    /// The whole config.
    pub config: Arc<Config>,
    /// Whether this process terminates TLS itself.
    pub tls: bool,
    /// Counters and histograms exported at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Failed logins.
    pub logins: Arc<LoginThrottle>,
    /// Fires when the service stops.
    pub shutdown: CancellationToken,
    /// The call scripts by language, to show what each prompt said.
    pub scripts: Arc<Scripts>,
    /// The compliance gate's settings (`[policy]`), for "next allowed dial".
    pub policy: Arc<PolicyConfig>,
    /// Tells the dialler that campaigns or holds changed.
    pub dialler: DiallerWake,
    /// The OpenAPI document, set once the router is built.
    pub openapi: Arc<std::sync::OnceLock<serde_json::Value>>,
    /// Where media streams (`/ws/*`) arrive (`web::streams`).
    pub streams: Arc<crate::telephony::ws::hub::StreamHub>,
    /// The service's hold on its data directory (`duecall.lock`), shared by
    /// its dialler and its direct streams (`campaign::owner`).
    pub owner: Arc<crate::campaign::owner::DataDirOwner>,
}

impl AppState {
    /// The service's present moment.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// `[serve]`.
    pub fn serve(&self) -> &ServeConfig {
        &self.config.serve
    }

    /// `[[webhooks]]`.
    pub fn webhooks(&self) -> &[WebhookConfig] {
        &self.config.webhooks
    }

    /// Whether the session cookie is marked `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.config.serve.secure_cookies.unwrap_or(self.tls)
    }
}

/// How the rest of the service tells the dialler something changed.
#[derive(Debug, Clone, Default)]
pub struct DiallerWake(Arc<Notify>);

impl DiallerWake {
    /// Campaigns or holds changed: re-read what to dial.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Waits until `wake` is called (the dialler's runners).
    pub(super) async fn changed(&self) {
        self.0.notified().await
    }
}
