//! `duecall serve`: builds the router (open routes, the API behind its
//! auth layer, the console), starts the background workers (webhook
//! delivery), binds the listener (plain or TLS) and runs until the
//! shutdown token fires; then stops taking connections, lets requests in
//! flight finish, and stops the workers. Owns start-up and shutdown order;
//! never decides anything a route or a worker decides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::{OpenApi, ToSchema};

use super::api::{self, views::Scripts, ApiDoc};
use super::auth::{self, principal_of};
use super::console;
use super::db::Db;
use super::error::{ErrorBody, WebError};
use super::metrics::Metrics;
use super::state::AppState;
use super::throttle::LoginThrottle;
use crate::account::Language;
use crate::campaign::clock::Clock;
use crate::config::Config;
use crate::dialogue::Script;
use crate::policy::PolicyConfig;
use crate::store::{Location, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (choose another with --listen or [serve] listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `[policy]` is invalid.
    #[error("config [policy]: {0}")]
    Policy(String),
    /// The server failed while running.
    #[error("serving HTTP: {0}")]
    Io(std::io::Error),
    /// `[gateway]` is invalid, or direct streams cannot be served.
    #[error("config {0}")]
    Streams(String),
}

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The whole config.
    pub config: Config,
    /// The data directory (node-local: its lock, recordings being written).
    pub data_dir: PathBuf,
    /// The shared PostgreSQL database several nodes' services and runs
    /// share (`--store`, `$DUECALL_STORE`, `[store] url`); `None`: the data
    /// directory's SQLite.
    pub store_url: Option<String>,
    /// Where to listen (default `[serve] listen`).
    pub listen: Option<SocketAddr>,
    /// The service's clock starts here (tests); default the real clock.
    pub now: Option<DateTime<Utc>>,
    /// Where the prompts live (`prompts/<lang>.toml`).
    pub prompts_dir: PathBuf,
}

/// A running service: where it listens.
#[derive(Debug, Clone)]
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
}

fn load_scripts(dir: &Path) -> Scripts {
    let mut m = Scripts::new();
    for lang in [Language::En, Language::Zh] {
        let p = dir.join(format!("{}.toml", lang.as_str()));
        match Script::load(&p) {
            Ok(s) => {
                m.insert(lang.as_str(), s);
            }
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "prompt texts unavailable; transcripts show prompt ids")
            }
        }
    }
    m
}

/// `[policy]`, parsed and checked when the config was loaded.
fn policy_of(config: &Config) -> Result<PolicyConfig, ServeError> {
    Ok(config.policy.clone())
}

/// Builds the shared state: opens (and migrates) the store.
pub fn state(
    opts: &ServeOptions,
    tls: bool,
    shutdown: CancellationToken,
) -> Result<AppState, ServeError> {
    crate::store::files::create_private_dir(&opts.data_dir).map_err(|source| {
        StoreError::DataDir {
            path: opts.data_dir.clone(),
            source,
        }
    })?;
    let data_dir = opts
        .data_dir
        .canonicalize()
        .unwrap_or_else(|_| opts.data_dir.clone());
    let at = Location::new(data_dir.clone(), opts.store_url.clone());
    let db = Db::open(&at, 4)?;
    let mut roots = vec![data_dir.clone()];
    let rec = &opts.config.recording.dir;
    if rec.is_absolute() {
        if let Ok(r) = rec.canonicalize() {
            roots.push(r);
        }
    }
    // Every node's finished recordings, when they share a directory.
    if let Some(r) = &opts.config.store.recordings {
        crate::store::files::create_private_dir(r).map_err(|source| StoreError::DataDir {
            path: r.clone(),
            source,
        })?;
        if let Ok(r) = r.canonicalize() {
            roots.push(r);
        }
    }
    let clock = match opts.now {
        Some(t) => Clock::anchored(t),
        None => Clock::real(),
    };
    let owner = crate::campaign::owner::DataDirOwner::new(
        at.clone(),
        super::dialler::record_dir(&opts.config, &data_dir),
        opts.config.store.lease(),
        Arc::new(move || clock.now()),
    );
    Ok(AppState {
        db,
        data_dir,
        recording_roots: Arc::new(roots),
        clock,
        config: Arc::new(opts.config.clone()),
        tls,
        metrics: Arc::new(Metrics::default()),
        logins: Arc::new(LoginThrottle::default()),
        shutdown,
        scripts: Arc::new(load_scripts(&opts.prompts_dir)),
        policy: Arc::new(policy_of(&opts.config)?),
        openapi: Arc::new(std::sync::OnceLock::new()),
        dialler: Default::default(),
        streams: super::streams::hub(&opts.config),
        owner,
    })
}

/// The whole application and its OpenAPI document.
pub fn app(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (api_router, mut doc) = api::router().split_for_parts();
    let (open_router, open_doc) = open_routes().split_for_parts();
    let mut base = ApiDoc::openapi();
    base.merge(doc.clone());
    base.merge(open_doc);
    doc = base;
    let _ = state
        .openapi
        .set(serde_json::to_value(&doc).unwrap_or_default());
    let api_router = api_router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            super::input::JSON_LIMIT,
        ));
    let router = Router::new()
        .merge(open_router)
        .merge(api_router)
        .merge(console::router(state.clone()))
        .merge(super::streams::stream_routes(&state))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_and_harden,
        ))
        .with_state(state);
    (router, doc)
}

fn open_routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(metrics))
        .routes(utoipa_axum::routes!(openapi_json))
}

/// This document: the OpenAPI 3 description of every route, made from
/// the same annotations as the router (no authentication).
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json(st.openapi.get().cloned().unwrap_or_default())
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().chars().take(200).collect::<String>();
    WebError::NotFound {
        what: "route",
        id: path,
    }
    .into_response()
}

/// Counts every answer for `/metrics` and sets the headers every answer
/// carries (no sniffing, no framing, no referrer).
async fn count_and_harden(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let mut resp = next.run(req).await;
    st.metrics.http(&route, resp.status().as_u16());
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if st.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

/// The service's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The store's schema version.
    pub schema_version: i64,
    /// The service's clock.
    pub now: DateTime<Utc>,
    /// duecall's version.
    pub version: String,
}

/// Alive and the store readable (no authentication).
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn healthz(State(st): State<AppState>) -> Result<Json<Health>, WebError> {
    let v = st
        .db
        .run(|s| s.schema_version())
        .await
        .map_err(|e| WebError::Unavailable(format!("store unreadable: {e}")))?;
    Ok(Json(Health {
        status: "ok".into(),
        schema_version: v,
        now: st.now(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// Prometheus metrics (a token of any role, unless `[serve] metrics_open`).
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = ErrorBody)),
    security(("bearer" = []), ()))]
pub async fn metrics(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, WebError> {
    if !st.serve().metrics_open && principal_of(&st, &headers).await?.is_none() {
        return Err(WebError::Unauthorized);
    }
    let m = st.metrics.clone();
    let text = st.db.run(move |s| m.render(s)).await?;
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}

/// Binds, starts the workers and serves until `shutdown` fires. `ready`
/// is told where it listens once the socket is bound.
pub async fn serve(
    opts: ServeOptions,
    shutdown: CancellationToken,
    ready: impl FnOnce(&Running),
) -> Result<(), ServeError> {
    let serve_cfg = opts.config.serve.clone();
    let addr = opts.listen.unwrap_or(serve_cfg.listen);
    let tls = match (&serve_cfg.tls_cert, &serve_cfg.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k).await?),
        _ => None,
    };
    opts.config
        .gateway
        .check()
        .map_err(|(key, expected, got)| {
            ServeError::Streams(format!("{key}: expected {expected}, got {got}"))
        })?;
    let st = state(&opts, tls.is_some(), shutdown.clone())?;
    let direct = super::streams::start(&st).map_err(|e| ServeError::Streams(e.to_string()))?;
    // AudioSocket streams (`[gateway] audiosocket`, `--audiosocket`) go to
    // the same hub as the WebSocket routes: the calls the service's
    // campaigns place through `[origination]` find their attempt there.
    if let Some(addr) = opts.config.gateway.audiosocket {
        let bind_err = |e: std::io::Error| {
            ServeError::Streams(format!(
                "cannot take AudioSocket connections on {addr}: {e} (choose another with --audiosocket or [gateway] audiosocket)"
            ))
        };
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_err)?;
        let local = l.local_addr().map_err(bind_err)?;
        crate::telephony::ws::server::spawn_audiosocket(l, st.streams.clone(), shutdown.clone());
        tracing::info!(%local, "media streams: AudioSocket");
    }
    let (router, _doc) = app(st.clone());
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let running = Running {
        addr: bound,
        scheme: if tls.is_some() { "https" } else { "http" },
    };
    if !bound.ip().is_loopback() {
        tracing::warn!(addr = %bound, "serving beyond loopback: put TLS in front (or set [serve] tls_cert/tls_key)");
    }
    let workers = super::webhooks::start(st.clone());
    // Where a streaming platform reaches this service's /ws/twilio (for
    // [origination] without a stream_url of its own).
    let own_stream_url = (!bound.ip().is_unspecified()).then(|| {
        format!(
            "{}://{bound}/ws/twilio",
            if tls.is_some() { "wss" } else { "ws" }
        )
    });
    let dialler = super::dialler::start(st.clone(), own_stream_url);
    ready(&running);
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
    }
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let result = match tls {
        Some(cfg) => {
            axum_server::from_tcp_rustls(listener, cfg)
                .handle(handle)
                .serve(service)
                .await
        }
        None => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(service)
                .await
        }
    };
    shutdown.cancel();
    // Calls in flight end (within [campaign] shutdown_grace_s) before the
    // process exits; their outcomes and events are stored.
    // Direct-stream conversations likewise say their closing line.
    tokio::join!(dialler.stop(), direct.stop());
    workers.stop().await;
    result.map_err(ServeError::Io)
}

async fn tls_config(
    cert: &Path,
    key: &Path,
) -> Result<axum_server::tls_rustls::RustlsConfig, ServeError> {
    crate::crypto::install_crypto();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| {
            ServeError::Tls(format!(
                "serve.tls_cert {} / serve.tls_key {}: {e}",
                cert.display(),
                key.display()
            ))
        })
}
