//! WebRTC media terminated in duecall (`[sip] webrtc_media = "direct"`): a
//! browser phone's ICE, DTLS-SRTP and RTP on one UDP socket of ours, no
//! media relay (rtpengine) needed.
//!
//! The sans-IO engine ([`engine`], on str0m) makes the offer, takes the
//! answer and translates between the peer's SRTP and plain RTP; the driver
//! ([`driver`]) is the thin tokio task around it: the public socket, the
//! engine's timeouts, and a loopback hop to the call's ordinary RTP media
//! session, which goes on doing what it does for every SIP call (pacing,
//! jitter buffer, RFC 4733 DTMF, the two-channel recording, the report).

pub mod driver;
pub mod engine;
pub mod transcode;

pub use crate::media::codec::WebRtcCodec;
pub use driver::{Bridge, DirectMedia};

/// The loopback address of `ip`'s family: where the media session and the
/// driver meet.
pub fn loopback_of(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    }
}

/// What can go wrong with a call's WebRTC media.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// A socket could not be bound or read.
    #[error("webrtc socket: {0}")]
    Io(#[from] std::io::Error),
    /// Our host candidate was refused.
    #[error("webrtc candidate: {0}")]
    Candidate(String),
    /// An SDP could not be made or read.
    #[error("webrtc sdp: {0}")]
    Sdp(String),
    /// No codec is configured to offer.
    #[error("webrtc: no codec to offer")]
    NoCodec,
    /// The answer has no audio m-line we offered.
    #[error("webrtc: the answer has no audio")]
    NoAudio,
    /// The answer takes none of the codecs we offered.
    #[error("webrtc: no common codec (opus/PCMU/PCMA) in the answer")]
    NoCommonCodec,
    /// libopus could not make an encoder or decoder.
    #[error("webrtc: {0}")]
    Opus(#[from] crate::media::opus::OpusError),
    /// A second answer to the same offer.
    #[error("webrtc: the offer was already answered")]
    AnsweredTwice,
    /// ICE and DTLS did not complete in time.
    #[error("webrtc: DTLS-SRTP not connected within {0:?}")]
    NotConnected(std::time::Duration),
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, WebRtcMedia};

    #[test]
    fn webrtc_media_is_relay_unless_set_to_direct_and_other_values_are_refused() {
        let relay = Config::from_toml("", "t").unwrap();
        assert_eq!(relay.sip.webrtc_media, WebRtcMedia::Relay);
        let direct = Config::from_toml("[sip]\nwebrtc_media = \"direct\"\n", "t").unwrap();
        assert_eq!(direct.sip.webrtc_media, WebRtcMedia::Direct);
        assert!(Config::from_toml("[sip]\nwebrtc_media = \"sfu\"\n", "t").is_err());
    }

    #[test]
    fn opus_in_media_codecs_is_for_webrtc_legs_only_and_g711_stays_required() {
        use super::WebRtcCodec;
        use crate::media::g711::Codec;
        let c = Config::from_toml("[media]\ncodecs = [\"opus\", \"PCMA\"]\n", "t").unwrap();
        assert_eq!(
            c.webrtc_codecs().unwrap(),
            vec![WebRtcCodec::Opus, WebRtcCodec::G711(Codec::Pcma)]
        );
        assert_eq!(
            c.codecs().unwrap(),
            vec![Codec::Pcma],
            "RTP legs: G.711 only"
        );
        assert!(Config::from_toml("[media]\ncodecs = [\"opus\"]\n", "t").is_err());
        assert!(Config::from_toml("[media]\ncodecs = [\"G722\"]\n", "t").is_err());
        assert_eq!(WebRtcCodec::from_name("OPUS"), Some(WebRtcCodec::Opus));
        assert_eq!(WebRtcCodec::Opus.name(), "opus");
    }

    #[test]
    fn the_loopback_follows_the_address_family() {
        assert_eq!(
            super::loopback_of("192.0.2.1".parse().unwrap()),
            "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            super::loopback_of("2001:db8::1".parse().unwrap()),
            "::1".parse::<std::net::IpAddr>().unwrap()
        );
    }
}
