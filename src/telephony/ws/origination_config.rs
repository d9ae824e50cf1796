//! `[origination]`: how duecall asks a streaming platform to place a call
//! (the origination hook), and the transfer hook, with the checks made when
//! the config is read. Owns only the section's shape and its checks; never
//! places a call (origination.rs does).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::hook::{HookConfig, HookError, HttpHook};

/// Values an origination template may use.
pub const ORIGINATION_VALUES: &[&str] = &[
    "phone",
    "attempt_id",
    "stream_url",
    "caller_id",
    "stream_id",
];
/// Values a transfer template may use.
pub const TRANSFER_VALUES: &[&str] = &[
    "target",
    "target_uri",
    "case_id",
    "call_id",
    "call_sid",
    "stream_sid",
    "channel_id",
    "channel",
    "attempt_id",
    "stream_id",
    "phone",
];

/// The host of a hook URL (`http://127.0.0.1:8080/...` -> `127.0.0.1`,
/// IPv6 in brackets); an unreadable URL gives itself, which no loopback
/// check passes.
pub fn hook_host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.to_string())
}

/// `[origination]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OriginationConfig {
    /// Request URL template.
    pub url: String,
    /// HTTP method (default POST).
    #[serde(default)]
    pub method: Option<String>,
    /// Header templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Form fields (templates).
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
    /// JSON body (string leaves are templates).
    #[serde(default)]
    pub json: Option<toml::Value>,
    /// Seconds to wait for the hook's answer.
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// The stream URL the platform connects to (`wss://duecall.example/ws/twilio`);
    /// `{stream_url}` is this plus `?token=<stream_secret>`. Default: the
    /// Twilio route on `[gateway] listen`.
    #[serde(default)]
    pub stream_url: Option<String>,
    /// Caller id for `{caller_id}`.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Seconds from the hook's answer to the stream's arrival before the
    /// attempt is `no-answer`.
    #[serde(default = "default_answer_timeout")]
    pub answer_timeout_s: u64,
    /// The transfer hook.
    #[serde(default)]
    pub transfer: Option<HookConfig>,
}

fn default_answer_timeout() -> u64 {
    60
}

impl OriginationConfig {
    /// The origination hook as the HTTP hook runs it.
    pub(super) fn hook(&self) -> HookConfig {
        HookConfig {
            url: self.url.clone(),
            method: self.method.clone(),
            headers: self.headers.clone(),
            form: self.form.clone(),
            json: self.json.clone(),
            timeout_s: self.timeout_s,
        }
    }

    /// Checks the templates and values (config load).
    pub fn check(&self) -> Result<(), HookError> {
        HttpHook::new(&self.hook(), ORIGINATION_VALUES, "origination")?;
        if let Some(t) = &self.transfer {
            HttpHook::new(t, TRANSFER_VALUES, "origination.transfer")?;
        }
        if let Some(u) = &self.stream_url {
            if !(u.starts_with("ws://") || u.starts_with("wss://"))
                || u.contains(['&', '<', '>', '"', '\'', ' '])
            {
                return Err(HookError::Template {
                    key: "origination.stream_url".into(),
                    message: "a ws:// or wss:// URL without &, <, >, quotes or spaces".into(),
                });
            }
        }
        if self.answer_timeout_s == 0 || self.answer_timeout_s > 600 {
            return Err(HookError::Template {
                key: "origination.answer_timeout_s".into(),
                message: format!("1 to 600 seconds (got {})", self.answer_timeout_s),
            });
        }
        Ok(())
    }
}
