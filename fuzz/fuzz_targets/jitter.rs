//! Any sequence of arrivals (any SSRC, sequence number, size) and playout
//! ticks through one jitter buffer: never panics, never holds more than its
//! window, a resync always has its head, and a tick always fills its frame.
#![no_main]

use duecall::media::jitter::{Arrival, JitterBuffer, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&depth, ops)) = data.split_first() else {
        return;
    };
    let mut jb = JitterBuffer::new(usize::from(depth % 8));
    let mut out = [0u8; 160];
    let payload = [0x55u8; MAX_PAYLOAD + 8];
    for op in ops.chunks(5) {
        if op[0] & 1 == 0 || op.len() < 5 {
            let _ = jb.pop_into(&mut out, 0xFF);
            continue;
        }
        let ssrc = u32::from(op[0] >> 6);
        let seq = u16::from_be_bytes([op[1], op[2]]);
        let len = usize::from(u16::from_be_bytes([op[3], op[4]])) % (MAX_PAYLOAD + 8);
        if jb.push(ssrc, seq, u32::from(seq) * 160, &payload[..len]) == Arrival::Resync {
            assert!(jb.resync_head().is_some());
        }
        assert!(jb.buffered() <= 128);
    }
});
