//! RTCP compounds: parse; a compound that parses feeds a session (the
//! statistics never panic); what we write always parses.
#![no_main]

use duecall::telephony::rtcp::{self, RtcpPacket, RtcpSession};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pkts) = rtcp::parse(data) else { return };
    assert!(!pkts.is_empty() && pkts.len() <= data.len() / 4);
    let mut s = RtcpSession::new(1, "fuzz".into(), 0, false, 0);
    s.on_datagram(data, 1_000_000).expect("parsed once, parses again");
    let mut out = Vec::new();
    s.write_report(&mut out, 2_000_000, (0, 1, 160), true, 5_000_000);
    assert!(rtcp::parse(&out).is_ok());
    if let RtcpPacket::Sender { blocks, .. } | RtcpPacket::Receiver { blocks, .. } = &pkts[0] {
        assert!(blocks.len() <= 31);
    }
    let _ = s.finish();
});
