//! Which datagrams on a call's RTP port come from the peer, and where our
//! RTP goes.
//!
//! Owns the rule that keeps strangers out of a call: RTP is taken only from
//! the address the peer's SDP names, or (symmetric RTP, for a peer behind a
//! NAT that rewrote its port) from another port of that same IP, latched
//! only while nothing came from the SDP address and only once one stream
//! (one port, one SSRC, consecutive sequence numbers) has run alone for
//! [`LATCH_AFTER_MS`]; until then its packets are dropped. The SDP address,
//! once heard from, always wins and ends latching. Someone racing the
//! peer from another port never gets latched: the peer's first packet from
//! its SDP address ends the race, and two interleaved streams keep
//! restarting each other's wait. Everything else is a stranger: dropped before it is
//! parsed further, never answered, never latched to. Our prompts (names,
//! amounts) therefore go only to the SDP address or the latched port.
//! Never: touches sockets or clocks, or looks at payloads (the SSRC and
//! sequence continuity of the stream itself is the jitter buffer's).

use std::net::SocketAddr;

/// How long a stream from another port of the SDP's IP must run alone
/// (and nothing come from the SDP address) before it is latched.
pub const LATCH_AFTER_MS: u64 = 200;

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// From the peer: use it.
    Peer,
    /// From anyone else: drop it.
    Stranger,
}

/// A port of the SDP's IP that sent one packet, waiting for a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    from: SocketAddr,
    ssrc: u32,
    sequence: u16,
    since_ms: u64,
}

/// The peer's RTP address as the SDP gave it and as packets confirmed it.
#[derive(Clone, Debug)]
pub struct RtpSource {
    expected: SocketAddr,
    latched: Option<SocketAddr>,
    /// A packet came from the exact SDP address: no latching any more.
    heard_expected: bool,
    candidate: Option<Candidate>,
    strangers: u64,
}

impl RtpSource {
    /// Traffic from the address an SDP (offer, answer or re-INVITE) named.
    pub fn new(expected: SocketAddr) -> Self {
        RtpSource {
            expected,
            latched: None,
            heard_expected: false,
            candidate: None,
            strangers: 0,
        }
    }

    /// A new SDP moved the peer: start over with its address.
    pub fn move_to(&mut self, expected: SocketAddr) {
        if expected != self.expected {
            *self = RtpSource {
                strangers: self.strangers,
                ..RtpSource::new(expected)
            };
        }
    }

    /// Where our RTP goes.
    pub fn send_to(&self) -> SocketAddr {
        self.latched.unwrap_or(self.expected)
    }

    /// The address the SDP named.
    pub fn expected(&self) -> SocketAddr {
        self.expected
    }

    /// Datagrams dropped as coming from a stranger.
    pub fn strangers(&self) -> u64 {
        self.strangers
    }

    /// Judges one RTP packet by its source address, SSRC and sequence,
    /// arrived at `at_ms` on the caller's clock.
    pub fn judge(&mut self, from: SocketAddr, ssrc: u32, sequence: u16, at_ms: u64) -> Verdict {
        if from == self.expected {
            if !self.heard_expected {
                if let Some(l) = self.latched.take() {
                    tracing::debug!(latched = %l, sdp = %from, "rtp: SDP address took over");
                }
                self.heard_expected = true;
                self.candidate = None;
            }
            return Verdict::Peer;
        }
        if Some(from) == self.latched {
            return Verdict::Peer;
        }
        let may_latch =
            !self.heard_expected && self.latched.is_none() && from.ip() == self.expected.ip();
        if may_latch {
            let follows = self.candidate.filter(|c| {
                c.from == from
                    && c.ssrc == ssrc
                    && (1..=3).contains(&sequence.wrapping_sub(c.sequence))
            });
            match follows {
                Some(c) if at_ms.saturating_sub(c.since_ms) >= LATCH_AFTER_MS => {
                    tracing::debug!(%from, sdp = %self.expected, "rtp: latched (symmetric RTP)");
                    self.latched = Some(from);
                    self.candidate = None;
                    return Verdict::Peer;
                }
                Some(c) => {
                    self.candidate = Some(Candidate { sequence, ..c });
                }
                None => {
                    self.candidate = Some(Candidate {
                        from,
                        ssrc,
                        sequence,
                        since_ms: at_ms,
                    });
                }
            }
        }
        self.strangers += 1;
        Verdict::Stranger
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Feeds a stream of `n` consecutive packets, 20 ms apart from `t0`;
    /// returns the verdicts.
    fn stream(
        s: &mut RtpSource,
        from: &str,
        ssrc: u32,
        seq0: u16,
        t0: u64,
        n: u16,
    ) -> Vec<Verdict> {
        (0..n)
            .map(|i| s.judge(a(from), ssrc, seq0.wrapping_add(i), t0 + 20 * u64::from(i)))
            .collect()
    }

    #[test]
    fn the_sdp_address_is_the_peer_and_anyone_else_a_stranger() {
        let mut s = RtpSource::new(a("10.0.0.5:4000"));
        assert_eq!(s.judge(a("10.0.0.5:4000"), 1, 10, 0), Verdict::Peer);
        assert_eq!(s.judge(a("192.0.2.9:4000"), 1, 11, 20), Verdict::Stranger);
        let v = stream(&mut s, "10.0.0.5:4002", 1, 11, 20, 30);
        assert!(
            v.iter().all(|v| *v == Verdict::Stranger),
            "no latching once the SDP address spoke"
        );
        assert_eq!(s.send_to(), a("10.0.0.5:4000"));
        assert_eq!(s.strangers(), 31);
    }

    #[test]
    fn another_port_of_the_sdp_ip_is_latched_once_its_stream_ran_alone_200_ms() {
        let mut s = RtpSource::new(a("10.0.0.5:4000"));
        let v = stream(&mut s, "10.0.0.5:7078", 9, 100, 0, 12);
        let first_peer = v.iter().position(|v| *v == Verdict::Peer).expect("latched");
        assert_eq!(first_peer as u64 * 20, LATCH_AFTER_MS, "{v:?}");
        assert!(v[first_peer..].iter().all(|v| *v == Verdict::Peer));
        assert_eq!(s.send_to(), a("10.0.0.5:7078"));
        // Once latched, no other port gets in.
        let v = stream(&mut s, "10.0.0.5:9999", 9, 500, 300, 30);
        assert!(v.iter().all(|v| *v == Verdict::Stranger));
        assert_eq!(s.send_to(), a("10.0.0.5:7078"));
    }

    #[test]
    fn another_ip_is_never_latched() {
        let mut s = RtpSource::new(a("10.0.0.5:4000"));
        let v = stream(&mut s, "203.0.113.7:4000", 3, 0, 0, 100);
        assert!(v.iter().all(|v| *v == Verdict::Stranger));
        assert_eq!(s.send_to(), a("10.0.0.5:4000"));
    }

    #[test]
    fn packets_that_do_not_follow_each_other_latch_nothing() {
        let mut s = RtpSource::new(a("10.0.0.5:4000"));
        // A sprayer with random sequence numbers or SSRCs, for a second.
        for i in 0..50u64 {
            let (ssrc, seq) = ((i % 3) as u32, (i * 7919 % 65536) as u16);
            assert_eq!(
                s.judge(a("10.0.0.5:7000"), ssrc, seq, i * 20),
                Verdict::Stranger
            );
        }
        assert_eq!(s.send_to(), a("10.0.0.5:4000"));
    }

    #[test]
    fn two_interleaved_streams_never_latch() {
        let mut s = RtpSource::new(a("10.0.0.5:4000"));
        for i in 0..100u16 {
            let t = u64::from(i) * 10;
            assert_eq!(s.judge(a("10.0.0.5:7000"), 1, i, t), Verdict::Stranger);
            assert_eq!(s.judge(a("10.0.0.5:7002"), 2, i, t + 5), Verdict::Stranger);
        }
    }

    #[test]
    fn the_sdp_address_wins_over_a_latched_port_and_ends_latching() {
        let mut s = RtpSource::new(a("10.0.0.5:4000"));
        let v = stream(&mut s, "10.0.0.5:7000", 1, 1, 0, 20);
        assert_eq!(v.last(), Some(&Verdict::Peer));
        assert_eq!(s.judge(a("10.0.0.5:4000"), 5, 1, 500), Verdict::Peer);
        assert_eq!(s.send_to(), a("10.0.0.5:4000"));
        assert_eq!(s.judge(a("10.0.0.5:7000"), 1, 21, 520), Verdict::Stranger);
        let v = stream(&mut s, "10.0.0.5:7001", 1, 100, 600, 30);
        assert!(v.iter().all(|v| *v == Verdict::Stranger));
    }

    #[test]
    fn a_stranger_racing_the_peer_is_never_latched() {
        // The stranger starts first; the peer's first packet (from its SDP
        // address) comes 60 ms later: the stranger never gets in.
        let mut s = RtpSource::new(a("10.0.0.5:4000"));
        let v = stream(&mut s, "10.0.0.5:6666", 77, 0, 0, 3);
        assert!(v.iter().all(|v| *v == Verdict::Stranger));
        assert_eq!(s.judge(a("10.0.0.5:4000"), 1, 1, 60), Verdict::Peer);
        let v = stream(&mut s, "10.0.0.5:6666", 77, 3, 80, 50);
        assert!(v.iter().all(|v| *v == Verdict::Stranger));
        assert_eq!(s.send_to(), a("10.0.0.5:4000"));
    }

    #[test]
    fn a_new_sdp_starts_over() {
        let mut s = RtpSource::new(a("10.0.0.5:4000"));
        let _ = s.judge(a("10.0.0.5:4000"), 1, 1, 0);
        s.move_to(a("10.0.0.6:5000"));
        assert_eq!(s.judge(a("10.0.0.5:4000"), 1, 2, 20), Verdict::Stranger);
        assert_eq!(s.judge(a("10.0.0.6:5000"), 1, 3, 40), Verdict::Peer);
        assert_eq!(s.send_to(), a("10.0.0.6:5000"));
        assert_eq!(s.strangers(), 1);
    }
}
