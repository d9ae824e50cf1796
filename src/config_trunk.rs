//! `[[trunk]]` tables: the one name for where calls go. Each table is a
//! carrier's trunk (address, transport, credentials, registration, caller
//! ID, priority/weight, a concurrency cap). The old `[sip] outbound_proxy`,
//! `transport`, `user`/`password` and `register*` keys still work for a
//! release: they are one implicit trunk named `default`. `--trunk NAME`
//! picks a table, `--trunk ADDRESS` makes a one-off trunk.
//!
//! The gateway still reads the primary trunk through `[sip]` (the fold
//! below writes it there), so code that builds a `Config` by hand keeps
//! working; the trunk chooser reads the whole list.

use serde::Deserialize;

use super::{invalid, parse_proxy, Config, ConfigError, SipTransport};

/// The `[sip]` keys a `[[trunk]]` table replaces; setting one of them next
/// to `[[trunk]]` tables is an error naming both.
pub const LEGACY_SIP_KEYS: &[&str] = &[
    "outbound_proxy",
    "transport",
    "user",
    "password",
    "register",
    "registrar",
    "register_expires",
];

/// The name of the trunk the old `[sip]` keys make.
pub const DEFAULT_TRUNK: &str = "default";

/// What a trunk sends in `Privacy:` (RFC 3323).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// `Privacy: id`: the carrier hides the asserted identity from the callee.
    Id,
    /// `Privacy: none`.
    None,
}

impl Privacy {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Id => "id",
            Privacy::None => "none",
        }
    }
}

/// One `[[trunk]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// The trunk's name (`--trunk NAME`, the outcome's `trunk`).
    pub name: String,
    /// Where INVITEs go (what `[sip] outbound_proxy` takes: an IP address,
    /// a host name, a `sip:`/`sips:` URI, `ws://host:port/path`). Only the
    /// implicit `default` trunk may lack one (calls then route by the
    /// Request-URI).
    #[serde(default)]
    pub address: Option<String>,
    /// `udp`, `tcp`, `tls` or `ws` (default: the address's `;transport=`,
    /// else udp).
    #[serde(default)]
    pub transport: Option<SipTransport>,
    /// Digest user for 401/407 challenges and REGISTER.
    #[serde(default)]
    pub user: Option<String>,
    /// Digest password.
    #[serde(default)]
    pub password: Option<String>,
    /// Register at this trunk (REGISTER with the digest credentials).
    #[serde(default)]
    pub register: bool,
    /// The registrar (default: the address).
    #[serde(default)]
    pub registrar: Option<String>,
    /// Registration lifetime asked for, seconds (3600).
    #[serde(default)]
    pub register_expires: Option<u32>,
    /// The caller ID (E.164, `+14155550100`): the `From` user of calls
    /// through this trunk, unless the campaign or the account gives one.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Lower is tried first (as in DNS SRV); 0 by default.
    #[serde(default)]
    pub priority: u32,
    /// Share of calls among trunks of the same priority (1..=1000; 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Calls in flight through this trunk at most (none: no cap).
    #[serde(default)]
    pub max_concurrent: Option<usize>,
    /// Send `P-Asserted-Identity` with the caller ID (some carriers require it).
    #[serde(default)]
    pub pai: bool,
    /// Send `Privacy: id` or `Privacy: none` (unset: no header).
    #[serde(default)]
    pub privacy: Option<Privacy>,
}

fn one() -> u32 {
    1
}

impl TrunkConfig {
    /// A trunk named `name` at `address`, everything else at its default.
    pub fn new(name: impl Into<String>, address: Option<String>) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            address,
            transport: None,
            user: None,
            password: None,
            register: false,
            registrar: None,
            register_expires: None,
            caller_id: None,
            priority: 0,
            weight: 1,
            max_concurrent: None,
            pai: false,
            privacy: None,
        }
    }

    /// The transport: the address's `;transport=` (or `sips:`/`ws://`),
    /// else `transport`, else udp.
    pub fn effective_transport(&self) -> SipTransport {
        self.address
            .as_deref()
            .and_then(|a| parse_proxy("", a).ok())
            .and_then(|p| p.transport)
            .or(self.transport)
            .unwrap_or_default()
    }

    fn key(&self, key: &str) -> String {
        format!("trunk.{}.{key}", self.name)
    }
}

pub use crate::account::csv::is_e164;

impl Config {
    /// The `[sip]` keys set next to `[[trunk]]` tables in the raw TOML: an
    /// error naming both when there is one.
    pub(super) fn check_no_legacy_keys(raw: &toml::Value) -> Result<(), ConfigError> {
        let tables = raw
            .get("trunk")
            .and_then(|t| t.as_array())
            .is_some_and(|a| !a.is_empty());
        if !tables {
            return Ok(());
        }
        let Some(sip) = raw.get("sip").and_then(|s| s.as_table()) else {
            return Ok(());
        };
        for k in LEGACY_SIP_KEYS {
            if sip.contains_key(*k) {
                return Err(invalid(
                    &format!("sip.{k}"),
                    &format!(
                        "either `[sip] {k}` (the old single trunk) or `[[trunk]]` tables, not both: move it into the trunk's table (`trunk.<name>.{k}`)"
                    ),
                    format!("both `sip.{k}` and `[[trunk]]`"),
                ));
            }
        }
        Ok(())
    }

    /// A registrar: `sip:domain` or `host[:port]`.
    pub(super) fn check_registrar(key: &str, r: &str) -> Result<(), ConfigError> {
        let s = r.trim_start_matches("sip:");
        let ok = !s.is_empty()
            && !s.contains(|c: char| c.is_control() || c.is_whitespace() || "<>\"@;".contains(c));
        if ok {
            Ok(())
        } else {
            Err(invalid(
                key,
                "a SIP domain or host[:port] (sip:carrier.example, 192.0.2.7:5060)",
                r.escape_debug(),
            ))
        }
    }

    /// The trunks calls go through: the `[[trunk]]` tables, else the one
    /// the old `[sip]` keys make (named `default`), else none (calls route
    /// by the Request-URI).
    pub fn trunks(&self) -> Vec<TrunkConfig> {
        if !self.trunk.is_empty() {
            return self.trunk.clone();
        }
        let s = &self.sip;
        if s.outbound_proxy.is_none() && s.user.is_none() && !s.register {
            return Vec::new();
        }
        let mut t = TrunkConfig::new(DEFAULT_TRUNK, s.outbound_proxy.clone());
        t.transport = Some(s.transport);
        t.user = s.user.clone();
        t.password = s.password.clone();
        t.register = s.register;
        t.registrar = s.registrar.clone();
        t.register_expires = Some(s.register_expires);
        vec![t]
    }

    /// Every trunk's address (for the loopback check of test clocks).
    pub fn trunk_addresses(&self) -> Vec<String> {
        self.trunks()
            .into_iter()
            .filter_map(|t| t.address)
            .collect()
    }

    /// The trunk tried first: the lowest priority, the first listed among equals.
    pub fn primary_trunk(&self) -> Option<TrunkConfig> {
        let trunks = self.trunks();
        trunks.iter().min_by_key(|t| t.priority).cloned()
    }

    /// `--trunk NAME|ADDRESS` (and the old `call --proxy`): a table of
    /// that name becomes the only trunk; anything else must be an address,
    /// which becomes a one-off trunk named by it (keeping the credentials
    /// and transport of the configured trunk when there is exactly one).
    /// Returns whether `sel` was an address.
    pub fn select_trunk(&mut self, sel: &str) -> Result<bool, ConfigError> {
        let trunks = self.trunks();
        if let Some(t) = trunks.iter().find(|t| t.name == sel) {
            self.trunk = vec![t.clone()];
            self.fold_trunks();
            self.validate()?;
            return Ok(false);
        }
        // A word without `.`, `:` or a scheme is a misspelt table name
        // when there are tables, not a host name.
        let word = !sel.contains(['.', ':', '[', ';']);
        let parsed = parse_proxy("--trunk", sel);
        if parsed.is_err() || (word && !trunks.is_empty()) {
            if let (Err(e), true) = (parsed, trunks.is_empty()) {
                return Err(e);
            }
            let names: Vec<&str> = trunks.iter().map(|t| t.name.as_str()).collect();
            return Err(invalid(
                "--trunk",
                &format!(
                    "the name of a [[trunk]] table ({}) or a trunk address",
                    names.join(", ")
                ),
                sel,
            ));
        }
        let mut t = match trunks.as_slice() {
            [only] => only.clone(),
            _ => TrunkConfig::new(sel, None),
        };
        t.name = sel.to_string();
        t.address = Some(sel.to_string());
        self.trunk = vec![t];
        self.fold_trunks();
        self.validate()?;
        Ok(true)
    }

    /// Sets the digest credentials of every trunk (`call --user/--password`).
    pub fn set_credentials(&mut self, user: Option<String>, password: Option<String>) {
        self.sip.user = user.clone();
        self.sip.password = password.clone();
        for t in &mut self.trunk {
            t.user = user.clone();
            t.password = password.clone();
        }
    }

    /// Writes the primary trunk into `[sip]` (outbound proxy, transport,
    /// credentials, registration), which is what the gateway reads. Without `[[trunk]]` tables `[sip]` already
    /// is the trunk: nothing changes.
    pub(super) fn fold_trunks(&mut self) {
        if self.trunk.is_empty() {
            return;
        }
        let Some(p) = self.primary_trunk() else {
            return;
        };
        let s = &mut self.sip;
        s.outbound_proxy = p.address.clone();
        s.transport = p.transport.unwrap_or_default();
        s.user = p.user.clone();
        s.password = p.password.clone();
        s.register = false;
        s.registrar = None;
        s.register_expires = super::SipConfig::default().register_expires;
        if p.register {
            s.register = true;
            s.registrar = p.registrar.clone();
            s.register_expires = p.register_expires.unwrap_or(s.register_expires);
        }
    }

    /// Checks the `[[trunk]]` tables; errors name the trunk and the key
    /// (`trunk.carrier-a.address`).
    pub(super) fn validate_trunks(&self) -> Result<(), ConfigError> {
        let mut transport: Option<(String, SipTransport)> = None;
        for (i, t) in self.trunk.iter().enumerate() {
            let name_ok = !t.name.is_empty()
                && t.name.len() <= 64
                && !t
                    .name
                    .contains(|c: char| c.is_control() || c.is_whitespace());
            if !name_ok {
                return Err(invalid(
                    &format!("trunk[{i}].name"),
                    "a name without spaces, 1..=64 characters",
                    t.name.escape_debug(),
                ));
            }
            if self.trunk[..i].iter().any(|o| o.name == t.name) {
                return Err(invalid(
                    &t.key("name"),
                    "a name no other [[trunk]] has",
                    &t.name,
                ));
            }
            let Some(address) = &t.address else {
                return Err(invalid(
                    &t.key("address"),
                    "the trunk's address (192.0.2.7:5060, trunk.example.com, sips:trunk.example.com)",
                    "none",
                ));
            };
            let host = parse_proxy(&t.key("address"), address)?;
            if let (Some(a), Some(k)) = (host.transport, t.transport) {
                if a != k && k != SipTransport::Udp {
                    return Err(invalid(
                        &t.key("address"),
                        &format!("the same transport as `transport = \"{}\"`", k.name()),
                        format!("transport={}", a.name()),
                    ));
                }
            }
            if t.effective_transport() == SipTransport::Ws && host.port.is_none() {
                return Err(invalid(
                    &t.key("address"),
                    "the WebSocket proxy with its port (ws://127.0.0.1:5066)",
                    address,
                ));
            }
            // Trunks may speak UDP, TCP and TLS side by side (one endpoint
            // binds them all); a WebSocket trunk is the process's only one
            // (its URL path and connection belong to the whole endpoint).
            let kind = t.effective_transport();
            match &transport {
                None => transport = Some((t.name.clone(), kind)),
                Some((first, k))
                    if *k != kind && (*k == SipTransport::Ws || kind == SipTransport::Ws) =>
                {
                    return Err(invalid(
                        &t.key("transport"),
                        &format!(
                            "the transport of trunk `{first}` ({}): a WebSocket trunk cannot share the process with trunks on other transports",
                            k.name()
                        ),
                        kind.name(),
                    ))
                }
                Some(_) => {}
            }
            if t.user.is_some() != t.password.is_some() {
                return Err(invalid(
                    &t.key("password"),
                    "user and password set together",
                    "only one of them",
                ));
            }
            if t.register && t.user.is_none() {
                return Err(invalid(
                    &t.key("user"),
                    "a user and password to register with (`register = true`)",
                    "none",
                ));
            }
            if let Some(e) = t.register_expires {
                if !(2..=86_400).contains(&e) {
                    return Err(invalid(&t.key("register_expires"), "2..=86400 seconds", e));
                }
            }
            if let Some(r) = &t.registrar {
                Self::check_registrar(&t.key("registrar"), r)?;
            }
            if let Some(c) = &t.caller_id {
                if !is_e164(c) {
                    return Err(invalid(
                        &t.key("caller_id"),
                        "an E.164 number (+14155550100)",
                        c.escape_debug(),
                    ));
                }
            }
            if !(1..=1000).contains(&t.weight) {
                return Err(invalid(&t.key("weight"), "1..=1000", t.weight));
            }
            if let Some(m) = t.max_concurrent {
                if !(1..=10_000).contains(&m) {
                    return Err(invalid(&t.key("max_concurrent"), "1..=10000 calls", m));
                }
            }
            if t.pai && t.caller_id.is_none() && self.campaign_caller_id().is_none() {
                return Err(invalid(
                    &t.key("pai"),
                    "a caller_id (the trunk's or `[campaign] caller_id`) to assert",
                    "none",
                ));
            }
        }
        Ok(())
    }

    /// `[campaign] caller_id`, if set.
    fn campaign_caller_id(&self) -> Option<&str> {
        self.campaign.caller_id.as_deref()
    }
}
