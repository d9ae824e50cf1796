//! The media streams a WebSocket gateway sends to the service (`/ws/*`:
//! Twilio Media Streams, Asterisk chan_websocket). This is the one place
//! their routes are mounted and the one place the service's direct-stream
//! conversations are started and waited for.
//!
//! The routes sit outside the API's auth layer: each stream authenticates
//! with `[gateway] stream_secret` before its upgrade (`?token=` or
//! `Authorization: Bearer`; a wrong or missing one gets 401 and no socket),
//! as on the gateways' own listeners; the service's hardening headers and
//! request counters still apply. A stream that names no attempt is refused,
//! unless `[gateway] allow_direct_streams`: then its account (the stream's
//! parameters) goes through the compliance gate and, allowed, the agent
//! converses on it and stores the attempt in the data directory like a SIP
//! attempt (`telephony::ws::direct`). On the service's shutdown each such
//! conversation says its closing line and hangs up, and the service waits
//! for their outcomes (`[campaign] shutdown_grace_s` at most).
//!
//! Owns the mounting and the direct conversations' lifetime; never runs a
//! call's media (the ws drivers do) nor decides a dial (the gate does).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use super::state::AppState;
use crate::account::Language;
use crate::agent::{Agent, AgentPaths};
use crate::telephony::ws::direct::{DirectRunner, ParkedStreams};
use crate::telephony::ws::hub::StreamHub;
use crate::telephony::ws::server;

/// The `/ws/*` routes over the service's stream hub, merged into the
/// service's router by `server::app`.
pub fn stream_routes(st: &AppState) -> Router<AppState> {
    server::routes(st.streams.clone())
}

/// The hub the service's streams arrive at (`[gateway]` as configured).
pub fn hub(config: &crate::config::Config) -> Arc<StreamHub> {
    StreamHub::new(config.gateway.clone())
}

/// How long conversations hung up at the end of the grace period get to
/// store their outcome.
const AFTER_HANGUP: Duration = Duration::from_secs(5);

/// The direct-stream conversations of a running service.
pub struct DirectStreams {
    runner: Option<Arc<DirectRunner>>,
    /// The gateway the conversations' streams run on: shut down (every
    /// stream still open hangs up at once) only after the grace period.
    gateway: Option<Arc<ParkedStreams>>,
    grace: Duration,
}

/// Why the direct streams cannot be served (the service does not start).
#[derive(Debug, thiserror::Error)]
#[error("[gateway] allow_direct_streams: {0}")]
pub struct StreamsError(String);

/// Installs the direct-stream runner on the service's hub when `[gateway]
/// allow_direct_streams` is on: an agent over the parked streams (the
/// languages whose script loads; none loading is an error), the compliance
/// gate on the service's data directory and clock, recordings where
/// `[recording]` says. With direct streams off, streams that name no
/// attempt are refused by the hub.
pub fn start(st: &AppState) -> Result<DirectStreams, StreamsError> {
    let config = &*st.config;
    let grace = Duration::from_secs(config.campaign.shutdown_grace_s);
    if !config.gateway.allow_direct_streams {
        return Ok(DirectStreams {
            runner: None,
            gateway: None,
            grace,
        });
    }
    // Two ends, in order. The service's shutdown asks each conversation to
    // say its closing line and hang up (the agent's token); the streams
    // themselves are cut (the gateway's own token, not a child of the
    // service's) only when the grace period is over. Were the gateway's
    // token a child of the service's, every stream would hang up at the
    // signal, before the closing line is played.
    let shutdown = st.shutdown.child_token();
    let gateway = Arc::new(ParkedStreams::new(
        st.streams.clone(),
        tokio_util::sync::CancellationToken::new(),
    ));
    let paths = AgentPaths::under(&AgentPaths::default_root());
    let all = [Language::En, Language::Zh];
    let agent = match Agent::new(gateway.clone(), config, &paths, &all) {
        Ok(a) => a,
        Err(_) => {
            // Serve the languages that load; say which do not.
            let mut languages = Vec::new();
            for lang in all {
                match Agent::new(gateway.clone(), config, &paths, &[lang]) {
                    Ok(_) => languages.push(lang),
                    Err(e) => {
                        tracing::warn!(language = lang.as_str(), error = %e, "direct streams: this language is unavailable (its accounts' streams end failed)")
                    }
                }
            }
            if languages.is_empty() {
                return Err(StreamsError(format!(
                    "no language's script loads from {}",
                    paths.prompts.display()
                )));
            }
            Agent::new(gateway.clone(), config, &paths, &languages)
                .map_err(|e| StreamsError(e.to_string()))?
        }
    };
    let record_dir = super::dialler::record_dir(config, &st.data_dir);
    let clock = st.clock;
    let runner = Arc::new(DirectRunner {
        agent: Arc::new(agent),
        store: st.db.location().clone(),
        owner: st.owner.clone(),
        record_dir,
        shared_recordings: config.store.recordings.clone(),
        policy: st.policy.clone(),
        clock: Arc::new(move || clock.now()),
        hub: st.streams.clone(),
        shutdown,
        tasks: Default::default(),
    });
    st.streams.set_direct_handler(runner.clone().handler());
    tracing::info!(
        "direct media streams accepted at /ws/twilio and /ws/asterisk (through the compliance gate)"
    );
    Ok(DirectStreams {
        runner: Some(runner),
        gateway: Some(gateway),
        grace,
    })
}

impl DirectStreams {
    /// After the service's shutdown fired: waits for the direct
    /// conversations to say their closing line and store their outcome
    /// (the grace period at most). Streams still open then are hung up,
    /// and their outcomes waited for a little longer (logged if they do not
    /// come).
    pub async fn stop(self) {
        let Some(r) = self.runner else { return };
        let left = r.wait(self.grace).await;
        if let Some(g) = &self.gateway {
            crate::telephony::gateway::Gateway::shutdown(g.as_ref());
        }
        if left > 0 {
            tracing::warn!(
                left,
                "direct stream conversations still going at the end of the grace period: hung up"
            );
            let left = r.wait(AFTER_HANGUP).await;
            if left > 0 {
                tracing::error!(
                    left,
                    "direct stream conversations did not store their outcome after the hang-up"
                );
            }
        }
    }
}
