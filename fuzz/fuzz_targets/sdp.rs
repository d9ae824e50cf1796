//! SDP bodies as a peer sends them: parse, negotiate against our codecs,
//! and answer. Must never panic; an answer we build must parse back.
#![no_main]

use duecall::media::g711::Codec;
use duecall::telephony::sdp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sd) = sdp::parse_bytes(data) else {
        return;
    };
    for ours in [&[Codec::Pcmu, Codec::Pcma][..], &[Codec::Pcma][..]] {
        if let Ok(n) = sdp::negotiate(&sd, ours) {
            let p = sdp::OfferParams::new("127.0.0.1".parse().unwrap(), 40000, 1);
            let answer = sdp::build_answer(&p, &n);
            let back = sdp::parse(&answer).expect("our own answer parses");
            let again = sdp::negotiate(&back, ours).expect("our own answer negotiates");
            assert_eq!(again.codec, n.codec);
        }
    }
});
