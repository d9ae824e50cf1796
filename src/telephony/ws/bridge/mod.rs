//! The bridge: a stand-in media-streaming platform for tests, the demo and
//! the benchmarks, since no Twilio or Asterisk installs here. It is a real
//! far end for the WebSocket path: a SIP user agent on one side (duecall's
//! own `SipGateway`, so sipp, baresip and the simulated debtors answer it)
//! and a Twilio Media Streams, chan_websocket or AudioSocket client on the
//! other, connecting to duecall's stream endpoints exactly as the platform
//! would.
//!
//! It serves the platform's control API on loopback, so the origination and
//! transfer hooks duecall is configured with are exercised as written:
//! Twilio's `POST .../Calls.json` (`To`, `From`, `Twiml` with
//! `<Connect><Stream url>` and `<Parameter>`s) and `POST .../Calls/{sid}.json`
//! (`Twiml` with `<Dial><Sip>` moves the call: the bridge REFERs its SIP leg),
//! and an ARI-like `POST /ari/channels` (`endpoint`, `variables`) and
//! `POST /ari/channels/{id}/redirect` for the Asterisk protocols.
//!
//! Faults for the hostile-input tests (swapped media, garbage frames, a
//! stall, a socket closed mid-call, marks never echoed) are the bridge's
//! knobs. Owns the simulated platform only; nothing here is used by duecall
//! when it places real calls.

mod relay;
mod shared;
mod twiml;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::telephony::sip::{DialRequest, SipGateway};

use shared::Shared;
pub use shared::{AsteriskMedia, BridgeCall, BridgeConfig, Faults};
pub use twiml::{parse_dial_sip, parse_stream, StreamTwiml};

/// A running bridge.
pub struct Bridge {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Its SIP side.
    #[error(transparent)]
    Sip(#[from] crate::telephony::sip::SipError),
    /// Its API listener.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

impl Bridge {
    /// Starts the SIP side and the control API.
    pub async fn start(cfg: BridgeConfig) -> Result<Bridge, BridgeError> {
        let sip = SipGateway::start(Config::default()).await?;
        let listener = TcpListener::bind(cfg.bind)
            .await
            .map_err(|e| BridgeError::Bind(cfg.bind, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BridgeError::Bind(cfg.bind, e))?;
        let shared = Arc::new(Shared {
            sip,
            asterisk: Mutex::new(cfg.asterisk.clone()),
            cfg,
            calls: Mutex::new(HashMap::new()),
            transfers: Mutex::new(HashMap::new()),
            ended: tokio::sync::Notify::new(),
            shutdown: CancellationToken::new(),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(twilio_create),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{file}",
                post(twilio_update),
            )
            .route("/ari/channels", post(ari_create))
            .route("/ari/channels/{id}/redirect", post(ari_redirect))
            .with_state(shared.clone());
        let token = shared.shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Ok(Bridge { shared, addr })
    }

    /// The control API's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Twilio's REST base for this bridge (`http://addr/2010-04-01/Accounts/AC..`).
    pub fn twilio_base(&self, account: &str) -> String {
        format!("http://{}/2010-04-01/Accounts/{account}", self.addr)
    }

    /// Where ARI-originated calls stream to (duecall's addresses are known
    /// only once it has started).
    pub fn set_asterisk(&self, media: AsteriskMedia) {
        if let Ok(mut a) = self.shared.asterisk.lock() {
            *a = Some(media);
        }
    }

    /// What the bridge saw of the call with this sid.
    pub fn call(&self, call_sid: &str) -> Option<BridgeCall> {
        self.shared.calls.lock().ok().and_then(|c| {
            c.get(call_sid)
                .and_then(|x| x.lock().ok().map(|x| x.clone()))
        })
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<BridgeCall> {
        self.shared
            .calls
            .lock()
            .map(|c| {
                c.values()
                    .filter_map(|x| x.lock().ok().map(|x| x.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the call has ended on the bridge: its relay is over, so
    /// the SIP report and who ended the stream are both in.
    pub async fn wait_ended(&self, call_sid: &str, within: Duration) -> Option<BridgeCall> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.ended.notified();
            if let Some(c) = self.call(call_sid) {
                if c.relayed {
                    return Some(c);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.call(call_sid);
            }
        }
    }

    /// Stops the API and every call.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.sip.shutdown();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    match &shared.cfg.expect_authorization {
        None => true,
        Some(want) => {
            headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
        }
    }
}

fn dial_uri(shared: &Shared, to: &str) -> String {
    if to.starts_with("sip:") || to.starts_with("sips:") {
        to.to_string()
    } else {
        shared.cfg.dial_template.replace("{to}", to)
    }
}

/// Places the SIP leg and starts the relay once it answers; returns the sid.
async fn place(shared: Arc<Shared>, to: &str, plan: relay::Plan) -> Result<String, String> {
    let uri = dial_uri(&shared, to);
    let leg = shared
        .sip
        .dial(DialRequest::to(&uri))
        .await
        .map_err(|e| e.to_string())?;
    let sid = leg.call_id.clone();
    let record = Arc::new(Mutex::new(BridgeCall {
        call_sid: sid.clone(),
        dialled: uri,
        params: plan.params(),
        ..BridgeCall::default()
    }));
    let (xfer_tx, xfer_rx) = mpsc::channel(4);
    if let Ok(mut c) = shared.calls.lock() {
        c.insert(sid.clone(), record.clone());
    }
    if let Ok(mut t) = shared.transfers.lock() {
        t.insert(sid.clone(), xfer_tx);
    }
    let s = shared.clone();
    tokio::spawn(async move {
        let sid = leg.call_id.clone();
        relay::run(s.clone(), leg, plan, record.clone(), xfer_rx).await;
        if let Ok(mut c) = record.lock() {
            c.relayed = true;
        }
        if let Ok(mut t) = s.transfers.lock() {
            t.remove(&sid);
        }
        s.ended.notify_waiters();
    });
    Ok(sid)
}

async fn transfer(shared: &Shared, sid: &str, target: String) -> Response {
    let tx = shared
        .transfers
        .lock()
        .ok()
        .and_then(|t| t.get(sid).cloned());
    let Some(tx) = tx else {
        return (StatusCode::NOT_FOUND, format!("no live call {sid}")).into_response();
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    if tx.send((target, reply_tx)).await.is_err() {
        return (StatusCode::NOT_FOUND, "the call ended").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(40), reply_rx).await {
        Ok(Ok(Ok(()))) => {
            if let Some(ms) = shared.cfg.faults.transfer_answer_delay_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            (
                StatusCode::OK,
                Json(serde_json::json!({"sid": sid, "status": "completed"})),
            )
                .into_response()
        }
        Ok(Ok(Err(why))) => (StatusCode::CONFLICT, why).into_response(),
        _ => (StatusCode::GATEWAY_TIMEOUT, "no transfer result").into_response(),
    }
}

async fn twilio_create(
    State(shared): State<Arc<Shared>>,
    Path(_account): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !authorized(&shared, &headers) {
        return (StatusCode::UNAUTHORIZED, "authenticate").into_response();
    }
    let (Some(to), Some(twiml)) = (form.get("To"), form.get("Twiml")) else {
        return (StatusCode::BAD_REQUEST, "To and Twiml are required").into_response();
    };
    let Some(stream) = parse_stream(twiml) else {
        return (
            StatusCode::BAD_REQUEST,
            "Twiml has no <Connect><Stream url=...>",
        )
            .into_response();
    };
    match place(shared, to, relay::Plan::Twilio(stream)).await {
        Ok(sid) => (
            StatusCode::CREATED,
            Json(serde_json::json!({"sid": sid, "status": "queued"})),
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn twilio_update(
    State(shared): State<Arc<Shared>>,
    Path((_account, file)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !authorized(&shared, &headers) {
        return (StatusCode::UNAUTHORIZED, "authenticate").into_response();
    }
    let sid = file.trim_end_matches(".json").to_string();
    match form.get("Twiml").and_then(|t| parse_dial_sip(t)) {
        Some(target) => transfer(&shared, &sid, target).await,
        None => (
            StatusCode::BAD_REQUEST,
            "Twiml with <Dial><Sip>uri</Sip></Dial> expected",
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct AriCreate {
    endpoint: Option<String>,
    #[serde(default)]
    variables: HashMap<String, String>,
}

#[derive(Deserialize)]
struct EndpointQuery {
    endpoint: Option<String>,
}

/// `PJSIP/+1555@trunk` or `PJSIP/sip:x@h` -> what to dial.
fn endpoint_target(endpoint: &str) -> &str {
    let rest = endpoint.split_once('/').map(|(_, r)| r).unwrap_or(endpoint);
    if rest.starts_with("sip:") {
        rest
    } else {
        rest.split('@').next().unwrap_or(rest)
    }
}

async fn ari_create(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<EndpointQuery>,
    headers: HeaderMap,
    Json(body): Json<AriCreate>,
) -> Response {
    if !authorized(&shared, &headers) {
        return (StatusCode::UNAUTHORIZED, "authenticate").into_response();
    }
    let Some(endpoint) = body.endpoint.or(q.endpoint) else {
        return (StatusCode::BAD_REQUEST, "endpoint is required").into_response();
    };
    let Some(media) = shared.asterisk.lock().ok().and_then(|a| a.clone()) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this bridge has no Asterisk media configured",
        )
            .into_response();
    };
    let to = endpoint_target(&endpoint).to_string();
    match place(
        shared,
        &to,
        relay::Plan::Asterisk {
            media,
            variables: body.variables,
        },
    )
    .await
    {
        Ok(sid) => (
            StatusCode::OK,
            Json(serde_json::json!({"id": sid, "state": "Down"})),
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn ari_redirect(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<EndpointQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return (StatusCode::UNAUTHORIZED, "authenticate").into_response();
    }
    let Some(endpoint) = q.endpoint else {
        return (StatusCode::BAD_REQUEST, "endpoint is required").into_response();
    };
    let target = endpoint
        .split_once('/')
        .map(|(_, r)| r.to_string())
        .unwrap_or(endpoint);
    transfer(&shared, &id, target).await
}
