//! A stream of telephone-event packets (each: 2 bytes of clock step, 4 of
//! SSRC low bits and timestamp step, then the payload) through one
//! receiver: never panics, each event yields at most one digit, and the
//! rate limit holds.
#![no_main]

use duecall::media::rfc4733::{self, DtmfReceiver, DIGIT_BURST, MAX_DIGITS_PER_SECOND};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rx = DtmfReceiver::new();
    let (mut now_ms, mut ts) = (0u64, 0u32);
    let mut digits = 0u64;
    for chunk in data.chunks(10) {
        let _ = rfc4733::parse_event(chunk);
        if chunk.len() < 6 {
            continue;
        }
        now_ms += u64::from(chunk[0]);
        let ssrc = u32::from(chunk[1] & 3);
        ts = ts.wrapping_add(u32::from(u16::from_be_bytes([chunk[2], chunk[3]])));
        if rx.on_packet(now_ms, ssrc, ts, &chunk[4..]).is_some() {
            digits += 1;
        }
    }
    if rx.finish(now_ms).is_some() {
        digits += 1;
    }
    assert!(digits <= DIGIT_BURST + now_ms * MAX_DIGITS_PER_SECOND / 1000 + 1);
});
