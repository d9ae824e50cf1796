//! Where a request to a trunk goes: RFC 3263 server location. A trunk
//! named by an IP address is used as given; one named by a host name with a
//! port is looked up by A/AAAA; one named by a bare host name is looked up
//! by NAPTR (the services the carrier offers, in its order), then SRV for
//! the chosen service (priorities, weights per RFC 2782), then A/AAAA for
//! each SRV target; with no NAPTR, the SRV names of each transport we speak
//! are tried; with no SRV, the host's own addresses on the default port.
//! The result is an ordered list of targets: the call goes to the first
//! and fails over to the next.
//!
//! Owns the ordering rules (pure functions over the records, tested on
//! their own) and a thin driver over hickory-resolver (the system's
//! resolv.conf, or the name servers the config names). Never sends SIP.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use rand::Rng;

/// A SIP transport, as NAPTR services and SRV names say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (`SIP+D2U`, `_sip._udp`).
    Udp,
    /// TCP (`SIP+D2T`, `_sip._tcp`).
    Tcp,
    /// TLS over TCP (`SIPS+D2T`, `_sips._tcp`).
    Tls,
}

impl Transport {
    /// The NAPTR service field for this transport (RFC 3263 4.1).
    pub fn naptr_service(self) -> &'static str {
        match self {
            Transport::Udp => "SIP+D2U",
            Transport::Tcp => "SIP+D2T",
            Transport::Tls => "SIPS+D2T",
        }
    }

    /// The SRV prefix for this transport.
    pub fn srv_prefix(self) -> &'static str {
        match self {
            Transport::Udp => "_sip._udp.",
            Transport::Tcp => "_sip._tcp.",
            Transport::Tls => "_sips._tcp.",
        }
    }

    /// The port when none is given (5060, or 5061 for TLS).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }

    fn from_service(s: &str) -> Option<Transport> {
        [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .find(|t| t.naptr_service().eq_ignore_ascii_case(s))
    }
}

/// One place to send a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// How to reach it.
    pub transport: Transport,
    /// Where.
    pub addr: SocketAddr,
}

/// A NAPTR record as the ordering needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower first; only the lowest order with a usable record counts.
    pub order: u16,
    /// Lower first within an order.
    pub preference: u16,
    /// `s` (an SRV name follows) is the only flag SIP uses.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`.
    pub service: String,
    /// The SRV name to look up.
    pub replacement: String,
}

/// An SRV record as the ordering needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower first.
    pub priority: u16,
    /// Share of the traffic among equal priorities.
    pub weight: u16,
    /// Port on the target.
    pub port: u16,
    /// Host name to look up by A/AAAA.
    pub target: String,
}

/// Why a trunk's address could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The resolver could not be set up (unreadable resolv.conf, ...).
    #[error("DNS resolver: {0}")]
    Setup(String),
    /// Nothing in DNS for the host with a transport we speak.
    #[error("trunk `{host}`: no SIP server found in DNS ({detail})")]
    NotFound {
        /// The host looked up.
        host: String,
        /// What was tried and what failed.
        detail: String,
    },
}

/// The NAPTR records we can use, in the order to try them: the lowest
/// order holding a record with flag `s` and a service of a transport we
/// speak, by preference (RFC 3263 4.1: other orders are not considered).
pub fn order_naptr(records: &[Naptr], speak: &[Transport]) -> Vec<(Transport, String)> {
    let usable: Vec<(&Naptr, Transport)> = records
        .iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| Transport::from_service(&r.service).map(|t| (r, t)))
        .filter(|(_, t)| speak.contains(t))
        .collect();
    let Some(lowest) = usable.iter().map(|(r, _)| r.order).min() else {
        return Vec::new();
    };
    let mut chosen: Vec<_> = usable
        .into_iter()
        .filter(|(r, _)| r.order == lowest)
        .collect();
    chosen.sort_by_key(|(r, _)| r.preference);
    chosen
        .into_iter()
        .map(|(r, t)| (t, r.replacement.trim_end_matches('.').to_string()))
        .collect()
}

/// SRV records in the order to try them (RFC 2782): by priority; within a
/// priority, a weighted random order (zero weights last, a small chance
/// first). A single `.` target means "no service here": none.
pub fn order_srv(records: &[Srv], rng: &mut impl Rng) -> Vec<Srv> {
    let mut by_priority: Vec<Srv> = records
        .iter()
        .filter(|r| !r.target.is_empty() && r.target != ".")
        .cloned()
        .collect();
    by_priority.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(by_priority.len());
    let mut rest = by_priority.as_slice();
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(n);
        // Zero weights first in the list, as RFC 2782 asks, so that they
        // only win when the draw lands on them with no weight before.
        let mut pool: Vec<Srv> = group.to_vec();
        pool.sort_by_key(|r| r.weight != 0);
        while !pool.is_empty() {
            let total: u32 = pool.iter().map(|r| u32::from(r.weight)).sum();
            let draw = rng.gen_range(0..=total);
            let mut running = 0u32;
            let i = pool
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= draw
                })
                .unwrap_or(0);
            out.push(pool.remove(i));
        }
        rest = tail;
    }
    out
}

/// Looks trunks up in DNS.
pub struct Resolver {
    dns: TokioResolver,
}

impl Resolver {
    /// A resolver asking `servers` (e.g. `127.0.0.1:5353`), or the system's
    /// name servers (`/etc/resolv.conf`) when the list is empty.
    pub fn new(servers: &[SocketAddr]) -> Result<Resolver, ResolveError> {
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| ResolveError::Setup(e.to_string()))?
        } else {
            let ns = servers
                .iter()
                .map(|s| {
                    let mut c = NameServerConfig::udp(s.ip());
                    for conn in &mut c.connections {
                        conn.port = s.port();
                    }
                    c
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(ns),
                TokioRuntimeProvider::default(),
            )
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        let dns = builder
            .build()
            .map_err(|e| ResolveError::Setup(e.to_string()))?;
        Ok(Resolver { dns })
    }

    /// The targets for `host` (a name or an IP literal), with the port and
    /// transport the trunk's address gave, if any; only transports in
    /// `speak` are returned.
    pub async fn targets(
        &self,
        host: &str,
        port: Option<u16>,
        transport: Option<Transport>,
        speak: &[Transport],
    ) -> Result<Vec<Target>, ResolveError> {
        let speak: Vec<Transport> = match transport {
            Some(t) => speak.iter().copied().filter(|s| *s == t).collect(),
            None => speak.to_vec(),
        };
        let Some(&first) = speak.first() else {
            return Err(ResolveError::NotFound {
                host: host.into(),
                detail: "no transport we speak was asked for".into(),
            });
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let port = port.unwrap_or(first.default_port());
            return Ok(vec![Target {
                transport: first,
                addr: SocketAddr::new(ip, port),
            }]);
        }
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        if let Some(port) = port {
            let ips = self.addresses(&fqdn).await;
            return Self::found(
                host,
                ips.into_iter().map(|ip| Target {
                    transport: first,
                    addr: SocketAddr::new(ip, port),
                }),
            );
        }
        // NAPTR, else the SRV name of every transport we speak.
        let naptr = self.naptr(&fqdn).await;
        let services = if naptr.is_empty() {
            speak
                .iter()
                .map(|t| {
                    (
                        *t,
                        format!("{}{}", t.srv_prefix(), host.trim_end_matches('.')),
                    )
                })
                .collect()
        } else {
            let ordered = order_naptr(&naptr, &speak);
            if ordered.is_empty() {
                return Err(ResolveError::NotFound {
                    host: host.into(),
                    detail: format!(
                        "its NAPTR records offer no transport we speak ({})",
                        naptr
                            .iter()
                            .map(|r| r.service.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            ordered
        };
        let mut targets = Vec::new();
        for (transport, name) in services {
            let srv = order_srv(
                &self.srv(&format!("{name}.")).await,
                &mut rand::thread_rng(),
            );
            for s in srv {
                for ip in self
                    .addresses(&format!("{}.", s.target.trim_end_matches('.')))
                    .await
                {
                    targets.push(Target {
                        transport,
                        addr: SocketAddr::new(ip, s.port),
                    });
                }
            }
        }
        if targets.is_empty() && naptr.is_empty() {
            // No SRV either: the host itself, on the default port.
            targets = self
                .addresses(&fqdn)
                .await
                .into_iter()
                .map(|ip| Target {
                    transport: first,
                    addr: SocketAddr::new(ip, first.default_port()),
                })
                .collect();
        }
        Self::found(host, targets)
    }

    fn found(
        host: &str,
        targets: impl IntoIterator<Item = Target>,
    ) -> Result<Vec<Target>, ResolveError> {
        let mut out: Vec<Target> = Vec::new();
        for t in targets {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        if out.is_empty() {
            Err(ResolveError::NotFound {
                host: host.into(),
                detail: "no NAPTR, SRV or address records answered".into(),
            })
        } else {
            Ok(out)
        }
    }

    async fn naptr(&self, name: &str) -> Vec<Naptr> {
        let Ok(l) = self.dns.lookup(name, RecordType::NAPTR).await else {
            return Vec::new();
        };
        l.answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::NAPTR(n) => Some(Naptr {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    service: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_utf8(),
                }),
                _ => None,
            })
            .collect()
    }

    async fn srv(&self, name: &str) -> Vec<Srv> {
        let Ok(l) = self.dns.lookup(name, RecordType::SRV).await else {
            return Vec::new();
        };
        l.answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(Srv {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_utf8(),
                }),
                _ => None,
            })
            .collect()
    }

    async fn addresses(&self, name: &str) -> Vec<IpAddr> {
        match self.dns.lookup_ip(name).await {
            Ok(l) => l.iter().collect(),
            Err(e) => {
                tracing::debug!(name, error = %e, "address lookup failed");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn naptr(order: u16, pref: u16, service: &str, repl: &str) -> Naptr {
        Naptr {
            order,
            preference: pref,
            flags: "s".into(),
            service: service.into(),
            replacement: format!("{repl}."),
        }
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn naptr_takes_the_lowest_usable_order_by_preference() {
        let recs = [
            naptr(20, 1, "SIP+D2U", "_sip._udp.late"),
            naptr(10, 60, "SIP+D2U", "_sip._udp.b"),
            naptr(10, 50, "SIP+D2T", "_sip._tcp.a"),
            naptr(5, 1, "E2U+sip", "ignored"),
        ];
        // We speak UDP only: the TCP record is passed over, order 20 never.
        assert_eq!(
            order_naptr(&recs, &[Transport::Udp]),
            vec![(Transport::Udp, "_sip._udp.b".to_string())]
        );
        assert_eq!(
            order_naptr(&recs, &[Transport::Udp, Transport::Tcp]),
            vec![
                (Transport::Tcp, "_sip._tcp.a".to_string()),
                (Transport::Udp, "_sip._udp.b".to_string())
            ]
        );
        let mut wrong_flag = naptr(1, 1, "SIP+D2U", "x");
        wrong_flag.flags = "u".into();
        assert!(order_naptr(&[wrong_flag], &[Transport::Udp]).is_empty());
    }

    #[test]
    fn srv_orders_by_priority_then_by_weight() {
        let recs = [
            srv(20, 0, "backup"),
            srv(10, 90, "big"),
            srv(10, 10, "small"),
            srv(30, 0, "."),
        ];
        let mut big_first = 0;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let o = order_srv(&recs, &mut rng);
            let names: Vec<&str> = o.iter().map(|s| s.target.as_str()).collect();
            assert_eq!(names.len(), 3, "the '.' target means no service");
            assert_eq!(names[2], "backup", "priority 20 after both of 10");
            if names[0] == "big" {
                big_first += 1;
            }
        }
        // Weight 90 against 10: first about 90% of the time.
        assert!((850..=950).contains(&big_first), "{big_first}");
    }

    #[test]
    fn zero_weights_are_still_tried() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let o = order_srv(&[srv(1, 0, "a"), srv(1, 0, "b")], &mut rng);
        assert_eq!(o.len(), 2);
    }
}
