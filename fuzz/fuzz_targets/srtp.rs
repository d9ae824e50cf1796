//! SRTP and SRTCP as received, and `a=crypto` values: unprotect never
//! panics and never accepts what it was not given by the key's owner; a
//! packet protected by the sender always unprotects to itself.
#![no_main]

use duecall::telephony::srtp::{CryptoAttr, MasterKey, SrtpContext, Suite};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::new([7; 16], [9; 14]);
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &key);
    assert!(rx.unprotect_rtp(&mut data.to_vec()).is_err() || data.len() >= 22);
    let _ = rx.unprotect_rtcp(&mut data.to_vec());
    let _ = CryptoAttr::parse(&String::from_utf8_lossy(data));
    if data.len() >= 12 && data.len() < 2048 {
        let mut plain = data.to_vec();
        plain[0] = 0x80; // no CSRC, no extension
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let mut tx = SrtpContext::new(suite, &key);
            let mut rx = SrtpContext::new(suite, &key);
            let mut p = plain.clone();
            tx.protect_rtp(&mut p).expect("a 12-byte header fits");
            let n = rx.unprotect_rtp(&mut p).expect("what we protect unprotects");
            assert_eq!(&p[..n], &plain[..]);
        }
    }
});
