//! What a caller asks of the gateway for one call. Owns only the request's
//! shape; never checks it (the gateway does, as it writes the INVITE).

use std::path::PathBuf;
use std::time::Duration;

/// A request to place one call.
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// Request-URI (`sip:debtor@trunk`).
    pub to: String,
    /// From URI; defaults to config `sip.from`, else `sip:duecall@<local>`.
    pub from: Option<String>,
    /// The caller ID (E.164): the From user, over the trunk's `caller_id`
    /// (the account's, else the campaign's). Ignored when `from` is set.
    pub caller_id: Option<String>,
    /// Digest user/password (override config).
    pub credentials: Option<(String, String)>,
    /// Where to write the two-channel recording.
    pub record: Option<PathBuf>,
    /// Extra headers on the INVITE (checked: token names, no line breaks).
    pub headers: Vec<(String, String)>,
    /// Ring timeout (overrides config).
    pub ring_timeout: Option<Duration>,
    /// The attempt this dial is (the store's id): a streaming platform's
    /// origination hook names it, so the stream it sends back finds it.
    pub attempt_id: Option<i64>,
}

impl DialRequest {
    /// A request to `to` with everything else from the config.
    pub fn to(to: impl Into<String>) -> Self {
        DialRequest {
            to: to.into(),
            from: None,
            caller_id: None,
            credentials: None,
            record: None,
            headers: Vec::new(),
            ring_timeout: None,
            attempt_id: None,
        }
    }
}
