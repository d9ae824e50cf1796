//! RTP datagrams: parse; a packet that parses is written back and must
//! parse to the same header and payload.
#![no_main]

use duecall::telephony::rtp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = rtp::parse(data) else { return };
    assert!(p.payload.len() <= data.len());
    let mut out = Vec::new();
    rtp::write(&p.header, p.payload, &mut out);
    let q = rtp::parse(&out).expect("what we write parses");
    assert_eq!(q.header, p.header);
    assert_eq!(q.payload, p.payload);
});
