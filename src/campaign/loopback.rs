//! A test clock never dials a real person: `--now` (which starts the gate's
//! clock at a chosen moment) is refused unless every dial target resolves
//! to a loopback address only. Owns that check; never dials.

use std::net::ToSocketAddrs;

use super::error::CampaignError;

/// The host of a dial target: `sip:user@host:port;params`, `host:port`,
/// `[::1]:5060`, or a bare host.
pub fn target_host(target: &str) -> &str {
    let t = target.trim();
    let t = t
        .strip_prefix("sips:")
        .or_else(|| t.strip_prefix("sip:"))
        .unwrap_or(t);
    let t = t.rsplit_once('@').map(|(_, h)| h).unwrap_or(t);
    let t = t.split([';', '?', '>']).next().unwrap_or(t);
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    t.split(':').next().unwrap_or(t)
}

/// Whether `target` resolves, and only to loopback addresses.
pub fn is_loopback(target: &str) -> bool {
    let host = target_host(target);
    if host.is_empty() {
        return false;
    }
    match (host, 0u16).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// Refuses `--now` unless every target is loopback, naming the first that is not.
pub fn require_loopback<'a>(
    targets: impl IntoIterator<Item = &'a str>,
) -> Result<(), CampaignError> {
    for t in targets {
        if !is_loopback(t) {
            return Err(CampaignError::TestClock {
                target: t.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_pass_and_the_first_other_one_is_named() {
        assert_eq!(
            target_host("sip:+1415@127.0.0.1:5060;transport=udp"),
            "127.0.0.1"
        );
        assert_eq!(target_host("sip:alice@[::1]:5070"), "::1");
        assert_eq!(target_host("localhost:5060"), "localhost");
        assert!(is_loopback("sip:a@127.0.0.1:5070"));
        assert!(is_loopback("127.0.0.9:5060"));
        assert!(is_loopback("sip:alice@[::1]:5070"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("sip:+14155550100@10.1.2.3:5060"));
        assert!(!is_loopback("carrier.invalid:5060"));
        assert!(!is_loopback(""));
        match require_loopback(["127.0.0.1:5060", "sip:x@192.0.2.1:5060"]) {
            Err(CampaignError::TestClock { target }) => assert_eq!(target, "sip:x@192.0.2.1:5060"),
            other => panic!("{other:?}"),
        }
        assert!(require_loopback(["127.0.0.1:1"]).is_ok());
    }
}
