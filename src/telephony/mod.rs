//! Telephony: SIP signalling (rsipstack), SDP, RTP, and the `CallLeg` a
//! dialogue drives. Moves bytes and time; decides nothing about the case.

pub mod arrival;
pub mod bridge;
pub mod gateway;
pub mod leg;
pub mod media_clock;
pub mod media_session;
pub mod memory;
pub mod report;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sip;
pub mod source;
pub mod srtp;
pub mod trunk;
pub mod webrtc;
pub mod ws;
