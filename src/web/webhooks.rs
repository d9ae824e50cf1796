//! Webhook delivery: reads the outbox the store fills (in the same
//! transactions as the changes it reports), posts each event to every
//! endpoint that wants it, signed, and retries with exponential backoff
//! until a 2xx comes: at least once, in order per call, never blocking a
//! call (the calls only append rows). Owns the HTTP client, the signature
//! and the retry timing; never writes an event itself.
//!
//! Each POST carries `X-Duecall-Event`, `X-Duecall-Delivery` (the same on
//! every retry: receivers de-duplicate by it), `X-Duecall-Timestamp` (Unix
//! seconds) and `X-Duecall-Signature: sha256=<hex HMAC-SHA256 of
//! timestamp + "." + body>`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::WebhookConfig;
use super::state::AppState;
use crate::store::outbox::{Delivery, EventKind};

/// Deliveries posted at once per endpoint (each of a different call).
const BATCH: u32 = 16;
/// How often the outbox is looked at when nothing is due sooner.
const POLL: Duration = Duration::from_millis(250);

/// `sha256=<hex>` of HMAC-SHA256(secret, `timestamp.body`).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// How long to wait before try `attempts + 1` (after `attempts` failures):
/// base doubling each time, capped, with up to 20% jitter so that many
/// failed deliveries do not come back at the same instant.
pub fn backoff(base_ms: u64, max_s: u64, attempts: u32, jitter: f64) -> chrono::Duration {
    let exp = base_ms.saturating_mul(1u64 << attempts.min(30));
    let capped = exp.min(max_s.saturating_mul(1000));
    let with_jitter = capped as f64 * (1.0 + 0.2 * jitter.clamp(0.0, 1.0));
    chrono::Duration::milliseconds(with_jitter as i64)
}

/// The running delivery workers.
pub struct Workers {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Stops the workers and waits for them (a POST in flight is dropped;
    /// its delivery stays pending and is sent again at the next start).
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts one delivery loop per configured endpoint, and the outbox pruner.
pub fn start(st: AppState) -> Workers {
    let stop = st.shutdown.child_token();
    let mut tasks = Vec::new();
    if !st.webhooks().is_empty() {
        crate::crypto::install_crypto();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(st.serve().webhook_timeout_s))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("duecall/", env!("CARGO_PKG_VERSION")))
            .build();
        match client {
            Ok(client) => {
                for hook in st.webhooks().to_vec() {
                    tasks.push(tokio::spawn(endpoint_loop(
                        st.clone(),
                        client.clone(),
                        hook,
                        stop.clone(),
                    )));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "webhooks disabled: cannot build the HTTP client")
            }
        }
    }
    tasks.push(tokio::spawn(prune_loop(st, stop.clone())));
    Workers { stop, tasks }
}

async fn prune_loop(st: AppState, stop: CancellationToken) {
    let days = i64::from(st.serve().event_retention_days);
    loop {
        let before = st.now() - chrono::Duration::days(days);
        if let Err(e) = st.db.run(move |s| s.prune_outbox(before)).await {
            tracing::warn!(error = %e, "pruning the webhook outbox failed");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

async fn endpoint_loop(
    st: AppState,
    client: reqwest::Client,
    hook: WebhookConfig,
    stop: CancellationToken,
) {
    let kinds: Vec<EventKind> = hook
        .events
        .iter()
        .filter_map(|e| EventKind::parse(e))
        .collect();
    let target = redact(&hook.url);
    tracing::info!(endpoint = %target, "webhook delivery started");
    loop {
        if stop.is_cancelled() {
            return;
        }
        let worked = match round(&st, &client, &hook, &kinds).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(endpoint = %target, error = %e, "webhook outbox unreadable; retrying");
                false
            }
        };
        if !worked {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// One pass: fan out new events, post what is due. Returns how many
/// deliveries were tried.
async fn round(
    st: &AppState,
    client: &reqwest::Client,
    hook: &WebhookConfig,
    kinds: &[EventKind],
) -> Result<usize, crate::web::error::WebError> {
    let now = st.now();
    let (url, ks) = (hook.url.clone(), kinds.to_vec());
    let hold = claim_hold(st.serve().webhook_timeout_s);
    let due = st
        .db
        .run(move |s| {
            s.fan_out(&url, &ks, now, 1000)?;
            s.claim_deliveries(&url, now, hold, BATCH)
        })
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut set = tokio::task::JoinSet::new();
    for d in due.clone() {
        let (client, secret) = (client.clone(), hook.secret.clone());
        set.spawn(async move {
            let r = post(&client, &secret, &d).await;
            (d, r)
        });
    }
    let n = due.len();
    let mut results = Vec::with_capacity(n);
    while let Some(j) = set.join_next().await {
        if let Ok(r) = j {
            results.push(r);
        }
    }
    let cfg = st.serve().clone();
    let target = redact(&hook.url);
    let now = st.now();
    // Per delivery: delivered, or why not and when to try again.
    type Tried = (i64, Result<(), (String, DateTime<Utc>)>);
    let mut outcomes: Vec<Tried> = Vec::new();
    for (d, r) in results {
        match r {
            Ok(()) => {
                st.metrics.webhook_try("delivered");
                outcomes.push((d.id, Ok(())));
            }
            Err(why) => {
                st.metrics.webhook_try("failed");
                let wait = backoff(
                    cfg.webhook_retry_base_ms,
                    cfg.webhook_retry_max_s,
                    d.attempts,
                    rand::random::<f64>(),
                );
                tracing::warn!(endpoint = %target, delivery = %d.uid, event = %d.kind, tries = d.attempts + 1, error = %why, retry_in_ms = wait.num_milliseconds(), "webhook delivery failed");
                outcomes.push((d.id, Err((why, now + wait))));
            }
        }
    }
    st.db
        .run(move |s| {
            for (id, o) in outcomes {
                match o {
                    Ok(()) => s.mark_delivered(id, now)?,
                    Err((why, next)) => s.mark_failed(id, &why, next)?,
                }
            }
            Ok(())
        })
        .await?;
    Ok(n)
}

/// How long a claimed delivery is this sender's: the POST's timeout twice
/// over and a minute, so a slow receiver is never posted the same event by
/// a second node (or a second round of this one) while the first try runs.
fn claim_hold(timeout_s: u64) -> chrono::Duration {
    chrono::Duration::seconds(timeout_s.min(3600) as i64 * 2 + 60)
}

async fn post(client: &reqwest::Client, secret: &str, d: &Delivery) -> Result<(), String> {
    let ts = Utc::now().timestamp();
    let sig = signature(secret, ts, &d.body);
    let resp = client
        .post(&d.endpoint)
        .header("content-type", "application/json")
        .header("x-duecall-event", &d.kind)
        .header("x-duecall-delivery", &d.uid)
        .header("x-duecall-timestamp", ts.to_string())
        .header("x-duecall-signature", sig)
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// A URL without its query string or credentials, for logs.
fn redact(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let host_path = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
            format!("{scheme}://{host_path}")
        }
        None => no_query.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        let s = signature("key", 1700000000, "{\"a\":1}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(s, format!("sha256={hex}"));
        // RFC 4231 test case 2: key "Jefe", message "what do ya want for nothing?".
        let mut rfc = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        rfc.update(b"what do ya want for nothing?");
        let rfc: String = rfc
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            rfc,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = |n| backoff(1000, 600, n, 0.0).num_milliseconds();
        assert_eq!(b(0), 1000);
        assert_eq!(b(1), 2000);
        assert_eq!(b(5), 32_000);
        assert_eq!(b(20), 600_000);
        assert_eq!(b(u32::MAX), 600_000);
        assert_eq!(backoff(1000, 600, 0, 1.0).num_milliseconds(), 1200);
    }

    #[test]
    fn logged_urls_lose_credentials_and_queries() {
        assert_eq!(
            redact("https://u:p@crm.example/hook?key=s3cret"),
            "https://crm.example/hook"
        );
        assert_eq!(redact("http://127.0.0.1:9/h"), "http://127.0.0.1:9/h");
    }
}
