//! The audio codecs a direct WebRTC leg can speak, as `[media] codecs`
//! names them: Opus (transcoded to G.711 for the media session) or G.711
//! passed through.
//!
//! Owns: the names and the G.711 view. Imports only `media::g711`, so the
//! configuration can name codecs without reaching telephony.

use super::g711::Codec;

/// An audio codec of a direct WebRTC leg (`[media] codecs` names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebRtcCodec {
    /// Opus at 48 kHz (RFC 7587), transcoded to G.711 for the media session.
    Opus,
    /// PCMU or PCMA, passed through as it is.
    G711(Codec),
}

impl WebRtcCodec {
    /// The codec for a `[media] codecs` name: PCMU, PCMA or opus (any case).
    pub fn from_name(name: &str) -> Option<WebRtcCodec> {
        if name.eq_ignore_ascii_case("opus") {
            Some(WebRtcCodec::Opus)
        } else {
            Codec::from_name(name).map(WebRtcCodec::G711)
        }
    }

    /// The name as in SDP and the call report: `opus`, `PCMU`, `PCMA`.
    pub fn name(self) -> &'static str {
        match self {
            WebRtcCodec::Opus => "opus",
            WebRtcCodec::G711(c) => c.name(),
        }
    }

    /// The G.711 codec, if this is one.
    pub fn g711(self) -> Option<Codec> {
        match self {
            WebRtcCodec::G711(c) => Some(c),
            WebRtcCodec::Opus => None,
        }
    }
}
