//! Configuration: one TOML file (`--config`), every section typed and
//! validated up front (unknown keys refused); command-line flags override
//! it. Owns the file's shape and the `[sip]`, `[media]` and `[recording]`
//! sections; the `[dialogue]`, `[asr]`, `[policy]` and `[campaign]` types
//! live with the layers that use them and are parsed and checked here, so
//! a bad value stops the program at start-up with the key named. Never
//! opens sockets or reads anything but the file it is given.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::asr::AsrConfig;
use crate::campaign::settings::CampaignSettings;
use crate::dialogue::config::DialogueConfig;
use crate::media::codec::WebRtcCodec;
use crate::media::g711::Codec;
use crate::policy::config::PolicyConfig;

/// What went wrong reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or a key is unknown or of the wrong type
    /// (the message names the key and line).
    #[error("config {path}: {message}")]
    Parse {
        /// The file (or `<inline>`).
        path: String,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A key has a value of the right type that makes no sense.
    #[error("config key `{key}`: {expected} (got {got})")]
    Invalid {
        /// Dotted key, e.g. `media.codecs`.
        key: String,
        /// What was expected.
        expected: String,
        /// What was found.
        got: String,
    },
    /// A key of a layer's section makes no sense (the layer's own message,
    /// which says what was expected and what was found).
    #[error("config key `{key}`: {message}")]
    Key {
        /// Dotted key, e.g. `campaign.max_concurrent`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// SIP signalling: trunk, credentials, timers.
    pub sip: SipConfig,
    /// RTP media.
    pub media: MediaConfig,
    /// Where recordings and outcomes go.
    pub recording: RecordingConfig,
    /// `[dialogue]`: the conversation's timings and rules.
    pub dialogue: DialogueConfig,
    /// `[asr]`: speech recognition engines, models, Whisper and the engine
    /// per listening turn (owned by `asr`).
    pub asr: AsrConfig,
    /// `[policy]`: the compliance gate.
    pub policy: PolicyConfig,
    /// `[campaign]`: the campaign runner.
    pub campaign: CampaignSettings,
    /// `duecall serve`: listen address, TLS, metrics access (owned by `web`).
    pub serve: crate::web::config::ServeConfig,
    /// Webhook endpoints, `[[webhooks]]` (owned by `web`).
    pub webhooks: Vec<crate::web::config::WebhookConfig>,
    /// How media streams are accepted (`telephony::ws`).
    pub gateway: crate::telephony::ws::GatewayConfig,
    /// Calls placed through a streaming platform's origination hook instead
    /// of the SIP trunk (`telephony::ws::origination`).
    pub origination: Option<crate::telephony::ws::origination_config::OriginationConfig>,
    /// `[store]`: where the campaign is stored (owned by `store`).
    pub store: StoreConfig,
    /// `[[trunk]]` tables: the carriers' trunks (see [`TrunkConfig`]).
    pub trunk: Vec<TrunkConfig>,
    /// `[transfer]`: blind (REFER) or bridged live transfers.
    pub transfer: crate::telephony::bridge::TransferConfig,
}

/// `[store]`: the embedded SQLite database of the data directory (the
/// default), or a PostgreSQL database several nodes share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://user@host:port/db`: the shared database (`--store` and
    /// `$DUECALL_STORE` take precedence). Unset: SQLite in the data directory.
    pub url: Option<String>,
    /// How long a node's lease on its calls in flight lasts without a
    /// heartbeat, seconds (30; the heartbeat comes every third of it).
    /// Another node takes over a dead node's calls this long after its last
    /// heartbeat; nodes' clocks must agree far better than this (NTP).
    pub lease_s: u64,
    /// Where finished recordings go when several nodes share the store (a
    /// directory every node mounts, e.g. NFS): each call's recording is
    /// moved there after the call and its attempt row names it there, so
    /// the service on any node plays it. Unset: recordings stay where the
    /// node wrote them (`[recording] dir`).
    pub recordings: Option<std::path::PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            lease_s: 30,
            recordings: None,
        }
    }
}

impl StoreConfig {
    /// The lease as a duration.
    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.lease_s.min(86_400) as i64)
    }
}

/// The transport SIP signalling to the trunk uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    /// UDP (the default).
    #[default]
    Udp,
    /// TCP: one connection to the trunk, a listener on our SIP port for
    /// requests it opens towards us.
    Tcp,
    /// TLS over TCP (rustls): `sips:`; the trunk's certificate checked
    /// against `tls_ca_file` (else the system's roots).
    Tls,
    /// SIP over WebSocket (RFC 7118): one WebSocket connection to the
    /// proxy (`Sec-WebSocket-Protocol: sip`, one message per text frame),
    /// the way a browser phone's proxy (kamailio's websocket module) is
    /// reached; `outbound_proxy = "ws://host:port/path"`.
    Ws,
}

impl SipTransport {
    /// The name as in the config and in a URI's `transport=` parameter.
    pub fn name(self) -> &'static str {
        match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
            SipTransport::Tls => "tls",
            SipTransport::Ws => "ws",
        }
    }
}

/// SIP signalling settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Local address to bind signalling and media to.
    pub local_ip: IpAddr,
    /// Local SIP port (0: the OS picks one).
    pub local_port: u16,
    /// Outbound proxy / trunk address; every INVITE goes there. An IP
    /// address (`127.0.0.1:5060`), a host name with a port (looked up by
    /// A/AAAA), or a bare host name (RFC 3263: NAPTR, SRV, then A/AAAA; the
    /// call fails over to the next server on a 503 or no answer).
    /// `;transport=tcp` after it sets the transport; `ws://host:port/path`
    /// (or `host:port;transport=ws`) speaks SIP over WebSocket to it.
    pub outbound_proxy: Option<String>,
    /// The transport to the trunk: `udp` (default), `tcp`, `tls` or `ws`.
    pub transport: SipTransport,
    /// PEM CA certificates the trunk's TLS certificate must chain to
    /// (default: the system's roots).
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate for trunks that ask for one (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Name servers for trunk host names (`127.0.0.1:5353`); empty: the
    /// system's (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
    /// Our From URI (the caller ID the trunk sees).
    pub from: Option<String>,
    /// Digest user for 401/407 challenges.
    pub user: Option<String>,
    /// Digest password.
    pub password: Option<String>,
    /// Seconds to ring before we CANCEL (disposition `no-answer`).
    pub ring_timeout_s: u64,
    /// Our own Call-ID suffix (`<random>@<suffix>`).
    pub callid_suffix: String,
    /// User-Agent header.
    pub user_agent: String,
    /// Seconds to wait for a transfer's result (the NOTIFY that ends a
    /// REFER); the one transfer timeout: the conversation gives up at the
    /// same moment.
    pub transfer_timeout_s: u64,
    /// Register at the trunk (REGISTER with `user`/`password` digest) at
    /// start, refresh before expiry, un-register at shutdown.
    pub register: bool,
    /// Registration lifetime asked for, seconds (the registrar may grant
    /// less; the refresh follows what it grants).
    pub register_expires: u32,
    /// The registrar (`sip:carrier.example`, `host[:port]`); defaults to
    /// the trunk (`outbound_proxy`). REGISTERs are sent through the
    /// outbound proxy when both are set.
    pub registrar: Option<String>,
    /// Send an OPTIONS to the trunk every this many seconds (0: off). While
    /// it does not answer (two pings in a row, or a 503), campaigns place
    /// no new calls: no decision is stored, nothing counts against the caps.
    pub options_ping_s: u64,
    /// A CRLF keep-alive (RFC 5626 double CRLF) on each TCP or TLS trunk's
    /// connection every this many seconds (30; 0: off). It keeps NATs and
    /// the carrier from idling the connection out between calls.
    pub keepalive_s: u64,
    /// A browser callee's media: `relay` (default: our plain RTP offer, a
    /// media relay such as rtpengine next to the proxy translates it) or
    /// `direct` (duecall offers WebRTC itself: ICE-lite on `local_ip`,
    /// DTLS-SRTP, `UDP/TLS/RTP/SAVPF`; src/telephony/webrtc).
    pub webrtc_media: WebRtcMedia,
    /// SRTP with SDES keys (RFC 4568): `off` (plain RTP), `offer` (keys in
    /// an `RTP/AVP` offer: SRTP when the trunk answers with a key), or
    /// `require` (`RTP/SAVP`: a plain answer fails the call).
    pub srtp: crate::telephony::srtp::SrtpMode,
}

/// Who terminates a WebRTC callee's media (`[sip] webrtc_media`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebRtcMedia {
    /// A media relay (rtpengine) on the proxy's side: we offer plain RTP.
    #[default]
    Relay,
    /// duecall itself: a WebRTC offer, ICE/DTLS-SRTP on our own socket.
    Direct,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            local_port: 0,
            outbound_proxy: None,
            transport: SipTransport::Udp,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            dns_servers: Vec::new(),
            from: None,
            user: None,
            password: None,
            ring_timeout_s: 30,
            callid_suffix: "duecall.invalid".into(),
            user_agent: concat!("duecall/", env!("CARGO_PKG_VERSION")).into(),
            transfer_timeout_s: 10,
            register: false,
            register_expires: 3600,
            registrar: None,
            options_ping_s: 0,
            keepalive_s: 30,
            webrtc_media: WebRtcMedia::Relay,
            srtp: Default::default(),
        }
    }
}

/// RTP media settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Codecs offered, in order of preference (`PCMU`, `PCMA`; `opus` for
    /// direct WebRTC legs only).
    pub codecs: Vec<String>,
    /// Payload type offered for telephone-event (RFC 4733).
    pub dtmf_payload_type: u8,
    /// Jitter buffer depth in 20 ms frames.
    pub jitter_frames: usize,
    /// No longer here: `[dialogue] speak_delay_ms` is the one speak delay
    /// (kept only to name the new key in the error).
    #[serde(default, skip_serializing)]
    pub speak_delay_ms: Option<u64>,
    /// Seconds without any RTP from the far end before the call is ended
    /// (`failed`, reason `media-timeout`). 0 disables.
    pub media_timeout_s: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            codecs: vec!["PCMU".into(), "PCMA".into()],
            dtmf_payload_type: 101,
            jitter_frames: 3,
            speak_delay_ms: None,
            media_timeout_s: 30,
        }
    }
}

/// Where per-call files go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Directory for recordings and outcome JSON.
    pub dir: PathBuf,
    /// Record calls at all.
    pub enabled: bool,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            dir: PathBuf::from("recordings"),
            enabled: true,
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        };
        let mut cfg: Config = toml::from_str(text).map_err(parse_err)?;
        let raw: toml::Value = toml::from_str(text).map_err(parse_err)?;
        Config::check_no_legacy_keys(&raw)?;
        cfg.validate_trunks()?;
        cfg.fold_trunks();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values whose type is right but whose meaning is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.codecs()?;
        self.validate_trunks()?;
        if self.sip.ring_timeout_s == 0 || self.sip.ring_timeout_s > 600 {
            return Err(invalid(
                "sip.ring_timeout_s",
                "1..=600 seconds",
                self.sip.ring_timeout_s,
            ));
        }
        if !(96..=127).contains(&self.media.dtmf_payload_type) {
            return Err(invalid(
                "media.dtmf_payload_type",
                "a dynamic payload type 96..=127",
                self.media.dtmf_payload_type,
            ));
        }
        if self.media.jitter_frames == 0 || self.media.jitter_frames > 50 {
            return Err(invalid(
                "media.jitter_frames",
                "1..=50 frames",
                self.media.jitter_frames,
            ));
        }
        if let Some(t) = self.proxy_host()?.and_then(|p| p.transport) {
            if t != self.sip.transport && self.sip.transport != SipTransport::Udp {
                return Err(invalid(
                    "sip.outbound_proxy",
                    &format!(
                        "the same transport as `[sip] transport = \"{}\"`",
                        self.sip.transport.name()
                    ),
                    format!("transport={}", t.name()),
                ));
            }
        }
        if self.sip_transport() == SipTransport::Ws {
            // SIP over WebSocket goes to a proxy (a browser phone's
            // registrar), on the port its WebSocket server listens on.
            match self.proxy_host()? {
                Some(p) if p.port.is_some() => {}
                _ => {
                    return Err(invalid(
                        "sip.outbound_proxy",
                        "the WebSocket proxy with its port for `transport = \"ws\"` (ws://127.0.0.1:5066)",
                        self.sip.outbound_proxy.as_deref().unwrap_or("(none)"),
                    ))
                }
            }
        }
        if !(3..=3600).contains(&self.store.lease_s) {
            return Err(invalid(
                "store.lease_s",
                "3..=3600 seconds",
                self.store.lease_s,
            ));
        }
        if self.sip.user.is_some() != self.sip.password.is_some() {
            return Err(invalid(
                "sip.password",
                "user and password set together",
                "only one of them",
            ));
        }
        if self.sip.callid_suffix.is_empty() || self.sip.callid_suffix.contains(char::is_whitespace)
        {
            return Err(invalid(
                "sip.callid_suffix",
                "a host-like token",
                &self.sip.callid_suffix,
            ));
        }
        if self.sip.transfer_timeout_s == 0 || self.sip.transfer_timeout_s > 300 {
            return Err(invalid(
                "sip.transfer_timeout_s",
                "1..=300 seconds",
                self.sip.transfer_timeout_s,
            ));
        }
        if self.sip.register {
            if self.sip.user.is_none() {
                return Err(invalid(
                    "sip.user",
                    "a user and password to register with (`register = true`)",
                    "none",
                ));
            }
            if self.sip.registrar.is_none() && self.sip.outbound_proxy.is_none() {
                return Err(invalid(
                    "sip.registrar",
                    "a registrar or an outbound_proxy to register at (`register = true`)",
                    "none",
                ));
            }
        }
        if self.sip.tls_cert_file.is_some() != self.sip.tls_key_file.is_some() {
            return Err(invalid(
                "sip.tls_key_file",
                "tls_cert_file and tls_key_file set together",
                "only one of them",
            ));
        }
        if self.sip.keepalive_s > 3_600 {
            return Err(invalid(
                "sip.keepalive_s",
                "0 (off) to 3600 seconds",
                self.sip.keepalive_s,
            ));
        }
        if self.sip.options_ping_s > 3_600 {
            return Err(invalid(
                "sip.options_ping_s",
                "0 (off) to 3600 seconds",
                self.sip.options_ping_s,
            ));
        }
        if self.sip.options_ping_s > 0 && self.sip.outbound_proxy.is_none() {
            return Err(invalid(
                "sip.options_ping_s",
                "an outbound_proxy to ping (the trunk)",
                "none",
            ));
        }
        if !(2..=86_400).contains(&self.sip.register_expires) {
            return Err(invalid(
                "sip.register_expires",
                "2..=86400 seconds",
                self.sip.register_expires,
            ));
        }
        if let Some(r) = &self.sip.registrar {
            Config::check_registrar("sip.registrar", r)?;
        }
        if let Some(ms) = self.media.speak_delay_ms {
            return Err(invalid(
                "media.speak_delay_ms",
                "no such key: the speak delay is `[dialogue] speak_delay_ms`",
                ms,
            ));
        }
        if let Some(e) = &self.asr.engine {
            if !matches!(e.to_ascii_lowercase().as_str(), "vosk" | "sphinx") {
                return Err(invalid("asr.engine", "vosk or sphinx", e));
            }
        }
        self.asr
            .validate()
            .map_err(|e| invalid(&e.key, &e.expected, e.got))?;
        self.dialogue
            .validate()
            .map_err(|e| invalid(&e.key, &e.expected, e.got))?;
        self.campaign.validate().map_err(|e| ConfigError::Key {
            key: format!("campaign.{}", e.key),
            message: e.message,
        })?;
        crate::web::config::check(&self.serve, &self.webhooks).map_err(|e| {
            ConfigError::Invalid {
                key: e.key,
                expected: e.expected,
                got: e.got,
            }
        })?;
        self.gateway
            .check()
            .map_err(|(key, expected, got)| ConfigError::Invalid { key, expected, got })?;
        if let Some(o) = &self.origination {
            o.check().map_err(|e| ConfigError::Invalid {
                key: "origination".into(),
                expected: "valid hook templates".into(),
                got: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// The codecs offered on RTP legs, parsed: the G.711 ones of
    /// `[media] codecs` (`opus` there is for WebRTC legs only).
    pub fn codecs(&self) -> Result<Vec<Codec>, ConfigError> {
        let g711: Vec<Codec> = self
            .webrtc_codecs()?
            .into_iter()
            .filter_map(WebRtcCodec::g711)
            .collect();
        if g711.is_empty() {
            let got = format!("{:?}", self.media.codecs);
            return Err(invalid("media.codecs", "at least one of PCMU, PCMA", got));
        }
        Ok(g711)
    }

    /// The codecs offered on direct WebRTC legs, in `[media] codecs` order
    /// (PCMU, PCMA and opus).
    pub fn webrtc_codecs(&self) -> Result<Vec<WebRtcCodec>, ConfigError> {
        self.media
            .codecs
            .iter()
            .map(|c| {
                WebRtcCodec::from_name(c)
                    .ok_or_else(|| invalid("media.codecs", "PCMU, PCMA or opus", c))
            })
            .collect()
    }

    /// The outbound proxy's host and port, if set: `host`, `host:port`,
    /// `[v6]:port`, an IP address, with or without `sip:`.
    pub fn proxy_host(&self) -> Result<Option<ProxyHost>, ConfigError> {
        match &self.sip.outbound_proxy {
            None => Ok(None),
            Some(p) => parse_proxy("sip.outbound_proxy", p).map(Some),
        }
    }

    /// The path of a `ws://` outbound proxy's URL (`/` when it names none;
    /// None for any other proxy).
    pub fn ws_path(&self) -> Option<String> {
        let rest = self.sip.outbound_proxy.as_deref()?.strip_prefix("ws://")?;
        Some(
            rest.find('/')
                .map_or("/".to_string(), |i| rest[i..].to_string()),
        )
    }

    /// The transport to the trunk: the outbound proxy's `;transport=` if
    /// it has one, else `[sip] transport`.
    pub fn sip_transport(&self) -> SipTransport {
        self.proxy_host()
            .ok()
            .flatten()
            .and_then(|p| p.transport)
            .unwrap_or(self.sip.transport)
    }
}

/// Where the outbound proxy is, as the config gives it (resolved per call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHost {
    /// An IP address (no brackets) or a host name.
    pub host: String,
    /// The port, if given.
    pub port: Option<u16>,
    /// The `;transport=` parameter, if given.
    pub transport: Option<SipTransport>,
}

/// Parses a trunk address (`host`, `host:port`, `[v6]:port`, an IP
/// address, with or without `sip:`/`sips:`, `;transport=`, or
/// `ws://host:port/path`); errors name `key`.
pub fn parse_proxy(key: &str, p: &str) -> Result<ProxyHost, ConfigError> {
    let bad = || {
        invalid(
            key,
            "an IP address or host name, with an optional port and ;transport=udp|tcp|tls|ws, sips:, or ws://host:port/path (trunk.example.com, 192.0.2.7:5060;transport=tcp, sips:trunk.example.com, ws://127.0.0.1:5066)",
            p,
        )
    };
    let sips = p.starts_with("sips:");
    let (s, transport) = if let Some(rest) = p.strip_prefix("ws://") {
        // RFC 7118: the proxy is a WebSocket URL; the path goes in the
        // GET (see `ws_path`), the host and port are the target. A
        // WebSocket server has no SIP default port: it must be named.
        let hostport = rest.split_once('/').map_or(rest, |(h, _)| h);
        if hostport.contains(';') || !hostport.contains(':') || hostport.ends_with(']') {
            return Err(bad());
        }
        (hostport, Some(SipTransport::Ws))
    } else {
        let s = p.trim_start_matches("sip:").trim_start_matches("sips:");
        match s.split_once(';') {
            None => (s, sips.then_some(SipTransport::Tls)),
            Some((h, param)) => {
                let t = match param.to_ascii_lowercase().as_str() {
                    "transport=udp" if !sips => SipTransport::Udp,
                    "transport=tcp" if !sips => SipTransport::Tcp,
                    "transport=tls" => SipTransport::Tls,
                    "transport=ws" if !sips => SipTransport::Ws,
                    _ => return Err(bad()),
                };
                (h, Some(t))
            }
        }
    };
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(ProxyHost {
            host: a.ip().to_string(),
            port: Some(a.port()),
            transport,
        });
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(ProxyHost {
            host: ip.to_string(),
            port: None,
            transport,
        });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, port)) => (h, Some(port.parse::<u16>().map_err(|_| bad())?)),
        None => (s, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let name = host.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) || port == Some(0) {
        return Err(bad());
    }
    Ok(ProxyHost {
        host: name.to_ascii_lowercase(),
        port,
        transport,
    })
}

fn invalid(key: &str, expected: &str, got: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        expected: expected.into(),
        got: got.to_string(),
    }
}

#[path = "config_trunk.rs"]
mod trunk;
pub use trunk::{is_e164, Privacy, TrunkConfig, DEFAULT_TRUNK, LEGACY_SIP_KEYS};

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
