//! The part of SDP (RFC 4566) and offer/answer (RFC 3264) a G.711 voice call
//! needs: parsing what peers send, building our offer or answer, and picking
//! the codec, DTMF payload type, remote RTP address and direction.
//!
//! Owns: our own small model of a session description (not a general SDP
//! library: unknown lines are ignored, not kept).
//! Never: opens sockets or resolves host names (a host name in `c=` is an
//! error), never panics on any input, and refuses bodies over
//! [`MAX_SDP_LEN`].

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use thiserror::Error;

use crate::media::g711::{Codec, SAMPLE_RATE};
use crate::telephony::srtp::{CryptoAttr, MasterKey, SrtpMode, Suite};

/// Largest SDP body [`parse`] accepts. A voice offer is a few hundred bytes;
/// even WebRTC offers with many candidates stay far below this.
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// Default packetisation time in milliseconds.
pub const DEFAULT_PTIME: u32 = 20;

/// Why an SDP body is unusable, or why no call can be set up from it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_LEN`].
    #[error("SDP body too large: {len} bytes, at most {max} accepted")]
    TooLarge {
        /// Bytes in the body.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not UTF-8 text.
    #[error("SDP body is not UTF-8 text")]
    NotUtf8,
    /// The first line is not `v=0`.
    #[error("SDP must start with v=0 (first line is {first_line:?})")]
    MissingVersion {
        /// The first non-empty line, shortened.
        first_line: String,
    },
    /// No `m=` line at all.
    #[error("SDP has no media (m=) line")]
    NoMedia,
    /// We offered `RTP/SAVP` (`[sip] srtp = "require"`) and the answer
    /// carries no `a=crypto` line answering ours.
    #[error("SRTP required ([sip] srtp = \"require\") but the answer has no usable a=crypto line")]
    SrtpRequired,
    /// An `m=` line without kind, port, proto and at least one format.
    #[error(
        "line {line}: malformed m= line {text:?}: expected `m=<media> <port> <proto> <fmt> ...`"
    )]
    BadMediaLine {
        /// 1-based line number.
        line: usize,
        /// The line, shortened.
        text: String,
    },
    /// The port of an `m=` line is not a number 0..=65535.
    #[error("line {line}: bad media port {value:?}")]
    BadPort {
        /// 1-based line number.
        line: usize,
        /// The port field.
        value: String,
    },
    /// A format of an RTP `m=` line is not a payload type 0..=127.
    #[error("line {line}: RTP format {value:?} is not a payload type 0-127")]
    BadFormat {
        /// 1-based line number.
        line: usize,
        /// The format field.
        value: String,
    },
    /// A `c=` line that is not `IN IP4|IP6 <address>` with a literal address.
    #[error("line {line}: bad connection line {text:?}: expected `c=IN IP4 <address>` with a literal IP")]
    BadConnection {
        /// 1-based line number.
        line: usize,
        /// The line, shortened.
        text: String,
    },
    /// No audio stream with a non-zero port.
    #[error("SDP has no active audio stream (no m=audio line with a non-zero port)")]
    NoAudio,
    /// The audio stream offers none of the codecs we can use.
    #[error("no common codec: peer offers payload types {offered:?}, we support {ours:?}")]
    NoCommonCodec {
        /// The peer's formats.
        offered: Vec<u8>,
        /// Our codecs' names.
        ours: Vec<&'static str>,
    },
    /// Neither the audio stream nor the session has a `c=` line.
    #[error("audio stream has no connection address (no c= line at media or session level)")]
    NoConnection,
}

/// Media direction attribute (RFC 3264 5.1), from the point of view of the
/// side that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    #[default]
    SendRecv,
    /// `a=sendonly`: the writer sends but will not receive (it holds the other side).
    SendOnly,
    /// `a=recvonly`: the writer receives but will not send.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// The attribute name as written after `a=`.
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(a: &str) -> Option<Direction> {
        match a {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the side this direction belongs to sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side this direction belongs to receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other side (sendonly <-> recvonly).
    pub fn reversed(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// Both restrictions at once (an answer may only narrow the offer).
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

/// `o=` line (only what we might log or compare).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when unset).
    pub username: String,
    /// Session id.
    pub session_id: u64,
    /// Session version: bumped by the writer on every change.
    pub session_version: u64,
    /// Address, if it is a literal IP.
    pub address: Option<IpAddr>,
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written (e.g. `PCMU`, `telephone-event`).
    pub encoding: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channels (1 when not given).
    pub channels: u16,
}

/// One `m=` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub kind: String,
    /// RTP port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// Transport protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// Payload types, in the writer's order of preference. Empty for
    /// non-RTP protocols (their formats are not payload types).
    pub formats: Vec<u8>,
    /// `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` lines: payload type and parameters.
    pub fmtp: Vec<(u8, String)>,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Direction: media-level attribute, else session-level, else sendrecv.
    pub direction: Direction,
    /// `a=ptime`, if given.
    pub ptime: Option<u32>,
    /// `a=rtcp` port, if given.
    pub rtcp_port: Option<u16>,
    /// `a=rtcp-mux` (RFC 5761): RTCP on the RTP port.
    pub rtcp_mux: bool,
    /// `a=crypto` values (RFC 4568), as written, at most
    /// [`MAX_CRYPTO_LINES`]; read with [`CryptoAttr::parse`].
    pub crypto: Vec<String>,
}

/// `a=crypto` lines kept per media section (more are ignored).
pub const MAX_CRYPTO_LINES: usize = 16;

impl MediaDescription {
    /// The rtpmap for a payload type, if any.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }

    /// The codec a payload type stands for: by rtpmap name and 8 kHz clock,
    /// or by the static assignment (0, 8) when there is no rtpmap.
    pub fn codec_for(&self, pt: u8) -> Option<Codec> {
        match self.rtpmap(pt) {
            Some(m) if m.clock_rate == SAMPLE_RATE && m.channels == 1 => {
                Codec::from_name(&m.encoding)
            }
            Some(_) => None,
            None => Codec::from_payload_type(pt),
        }
    }

    /// The CN/8000 payload type among the formats, if any (by rtpmap, or
    /// the static 13 without one).
    pub fn comfort_noise_pt(&self) -> Option<u8> {
        self.formats
            .iter()
            .copied()
            .find(|&pt| match self.rtpmap(pt) {
                Some(m) => m.encoding.eq_ignore_ascii_case("CN") && m.clock_rate == SAMPLE_RATE,
                None => pt == CN_PAYLOAD_TYPE,
            })
    }

    /// The telephone-event/8000 payload type among the formats, if any.
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.formats.iter().copied().find(|&pt| {
            self.rtpmap(pt).is_some_and(|m| {
                m.encoding.eq_ignore_ascii_case("telephone-event") && m.clock_rate == SAMPLE_RATE
            })
        })
    }
}

/// A parsed session description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line, if well formed.
    pub origin: Option<Origin>,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute, if any (already applied to media
    /// sections without their own).
    pub direction: Option<Direction>,
    /// The `m=` sections in order.
    pub media: Vec<MediaDescription>,
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

fn parse_connection(value: &str, line: usize) -> Result<IpAddr, SdpError> {
    let bad = || SdpError::BadConnection {
        line,
        text: shorten(value),
    };
    let mut parts = value.split_ascii_whitespace();
    let (Some("IN"), Some(addrtype), Some(addr)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    // Multicast addresses may carry /ttl[/count]; we take the base address.
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    match (addrtype, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(bad()),
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, id, version, "IN", _addrtype, addr] = f.as_slice() else {
        return None;
    };
    Some(Origin {
        username: (*username).to_string(),
        session_id: id.parse().ok()?,
        session_version: version.parse().ok()?,
        address: addr.parse().ok(),
    })
}

fn parse_media(value: &str, line: usize) -> Result<MediaDescription, SdpError> {
    let mut f = value.split_ascii_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (f.next(), f.next(), f.next()) else {
        return Err(SdpError::BadMediaLine {
            line,
            text: shorten(value),
        });
    };
    let fmts: Vec<&str> = f.collect();
    if fmts.is_empty() {
        return Err(SdpError::BadMediaLine {
            line,
            text: shorten(value),
        });
    }
    // `<port>/<number of ports>` is allowed; we use the first.
    let port_str = port.split('/').next().unwrap_or(port);
    let port: u16 = port_str.parse().map_err(|_| SdpError::BadPort {
        line,
        value: shorten(port),
    })?;
    let formats = if proto.to_ascii_uppercase().contains("RTP/") {
        fmts.iter()
            .map(|s| match s.parse::<u8>() {
                Ok(pt) if pt <= 127 => Ok(pt),
                _ => Err(SdpError::BadFormat {
                    line,
                    value: shorten(s),
                }),
            })
            .collect::<Result<Vec<u8>, _>>()?
    } else {
        Vec::new()
    };
    Ok(MediaDescription {
        kind: kind.to_string(),
        port,
        proto: proto.to_string(),
        formats,
        rtpmaps: Vec::new(),
        fmtp: Vec::new(),
        connection: None,
        direction: Direction::SendRecv,
        ptime: None,
        rtcp_port: None,
        rtcp_mux: false,
        crypto: Vec::new(),
    })
}

fn parse_rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, rest) = v.split_once(' ')?;
    let mut p = rest.trim().split('/');
    Some(RtpMap {
        payload_type: pt.trim().parse().ok().filter(|&pt: &u8| pt <= 127)?,
        encoding: p.next()?.to_string(),
        clock_rate: p.next()?.trim().parse().ok()?,
        channels: match p.next() {
            Some(c) => c.trim().parse().ok()?,
            None => 1,
        },
    })
}

/// Parses an SDP body given as bytes (e.g. a SIP message body).
pub fn parse_bytes(body: &[u8]) -> Result<SessionDescription, SdpError> {
    if body.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge {
            len: body.len(),
            max: MAX_SDP_LEN,
        });
    }
    parse(std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?)
}

/// Parses an SDP body. Accepts `\r\n` or `\n` line ends and ignores lines
/// and attributes it does not use; malformed rtpmap/fmtp/ptime attributes
/// are ignored rather than fatal.
pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    if text.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge {
            len: text.len(),
            max: MAX_SDP_LEN,
        });
    }
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, l)) if l.trim_end() == "v=0" => {}
        other => {
            return Err(SdpError::MissingVersion {
                first_line: shorten(other.map_or("", |(_, l)| l)),
            });
        }
    }
    let mut sd = SessionDescription {
        origin: None,
        connection: None,
        direction: None,
        media: Vec::new(),
    };
    // Media-level directions seen, to apply the session default afterwards.
    let mut media_dir: Vec<Option<Direction>> = Vec::new();
    for (n, l) in lines {
        let Some((key, value)) = l.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match (key, sd.media.last_mut()) {
            ("m", _) => {
                sd.media.push(parse_media(value, n)?);
                media_dir.push(None);
            }
            ("o", None) => sd.origin = parse_origin(value),
            ("c", None) => sd.connection = Some(parse_connection(value, n)?),
            ("c", Some(m)) => m.connection = Some(parse_connection(value, n)?),
            ("a", mut media) => {
                let (name, arg) = match value.split_once(':') {
                    Some((a, b)) => (a, Some(b.trim())),
                    None => (value, None),
                };
                if let Some(d) = Direction::from_attribute(name) {
                    match media_dir.last_mut() {
                        Some(slot) => *slot = Some(d),
                        None => sd.direction = Some(d),
                    }
                    continue;
                }
                if let (Some(m), "rtcp-mux") = (media.as_deref_mut(), name) {
                    m.rtcp_mux = true;
                    continue;
                }
                let (Some(m), Some(arg)) = (media, arg) else {
                    continue;
                };
                match name {
                    "rtpmap" => m.rtpmaps.extend(parse_rtpmap(arg)),
                    "fmtp" => {
                        if let Some((pt, params)) = arg.split_once(' ') {
                            if let Ok(pt) = pt.parse::<u8>() {
                                m.fmtp.push((pt, params.trim().to_string()));
                            }
                        }
                    }
                    "ptime" => m.ptime = arg.parse().ok().filter(|&p| p > 0),
                    "crypto" if m.crypto.len() < MAX_CRYPTO_LINES => m.crypto.push(arg.to_string()),
                    "rtcp" => {
                        m.rtcp_port = arg
                            .split_ascii_whitespace()
                            .next()
                            .and_then(|p| p.parse().ok())
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if sd.media.is_empty() {
        return Err(SdpError::NoMedia);
    }
    let session_dir = sd.direction.unwrap_or_default();
    for (m, d) in sd.media.iter_mut().zip(media_dir) {
        m.direction = d.unwrap_or(session_dir);
    }
    Ok(sd)
}

/// What we put in an offer (or an answer to a re-INVITE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferParams {
    /// Our address for `o=` and `c=`.
    pub local_ip: IpAddr,
    /// Our RTP port.
    pub rtp_port: u16,
    /// Session id for `o=` (random, fixed for the call).
    pub session_id: u64,
    /// Session version for `o=`: bump with [`OfferParams::bump_version`] for
    /// every new offer or changed answer in the same call.
    pub session_version: u64,
    /// Codecs in order of preference (written as PT 0 / 8).
    pub codecs: Vec<Codec>,
    /// Payload type for telephone-event/8000 (101).
    pub dtmf_payload_type: u8,
    /// Packetisation time in ms (20).
    pub ptime: u32,
    /// Our direction (sendrecv; sendonly to hold the other side).
    pub direction: Direction,
    /// Offer `a=rtcp-mux` (RFC 5761); an answer carries it only when the
    /// offer did.
    pub rtcp_mux: bool,
    /// Offer comfort noise (RFC 3389, `CN/8000` on its static payload type 13).
    pub comfort_noise: bool,
    /// SRTP with SDES: our key, and whether it is required (`RTP/SAVP`) or
    /// only offered (`RTP/AVP` with `a=crypto`). None: plain RTP.
    pub srtp: Option<SdesOffer>,
}

/// What we offer of SRTP (RFC 4568): both suites with one key of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdesOffer {
    /// `RTP/SAVP` (the call fails without SRTP) or `RTP/AVP` with keys.
    pub required: bool,
    /// Our master key (what we send is protected with it).
    pub key: MasterKey,
}

impl SdesOffer {
    /// The offer for a `[sip] srtp` mode, with a fresh key; None for `off`.
    pub fn for_mode(mode: SrtpMode) -> Option<SdesOffer> {
        match mode {
            SrtpMode::Off => None,
            SrtpMode::Offer | SrtpMode::Require => Some(SdesOffer {
                required: mode == SrtpMode::Require,
                key: MasterKey::random(),
            }),
        }
    }

    /// The `a=crypto` lines of our offer: tag 1 the 80-bit suite, tag 2 the 32-bit one.
    fn attrs(&self) -> [CryptoAttr; 2] {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32].map(|suite| CryptoAttr {
            tag: if suite == Suite::AesCm128HmacSha1_80 {
                1
            } else {
                2
            },
            suite,
            key: self.key.clone(),
        })
    }
}

impl OfferParams {
    /// The usual offer: PCMU then PCMA, telephone-event on 101, 20 ms,
    /// sendrecv, version equal to the session id.
    pub fn new(local_ip: IpAddr, rtp_port: u16, session_id: u64) -> Self {
        OfferParams {
            local_ip,
            rtp_port,
            session_id,
            session_version: session_id,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            dtmf_payload_type: 101,
            ptime: DEFAULT_PTIME,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            comfort_noise: true,
            srtp: None,
        }
    }

    /// Increments the session version (RFC 3264 8: every changed SDP in a
    /// session carries a higher version).
    pub fn bump_version(&mut self) {
        self.session_version = self.session_version.wrapping_add(1);
    }
}

/// Payload type of comfort noise (RFC 3389; static, RFC 3551).
pub const CN_PAYLOAD_TYPE: u8 = 13;

/// What an SDP we write says about SRTP: the profile and the crypto lines.
struct SecureMedia<'a> {
    proto: &'a str,
    crypto: &'a [CryptoAttr],
}

const PLAIN: SecureMedia<'static> = SecureMedia {
    proto: "RTP/AVP",
    crypto: &[],
};

fn write_sdp(
    p: &OfferParams,
    audio: &[(u8, &str)],
    dtmf_pt: Option<u8>,
    cn_pt: Option<u8>,
    direction: Direction,
    secure: &SecureMedia<'_>,
) -> String {
    let ipv = if p.local_ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(320);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "v=0\r\no=duecall {} {} IN {ipv} {}\r\n",
        p.session_id, p.session_version, p.local_ip
    );
    let _ = write!(s, "s=duecall\r\nc=IN {ipv} {}\r\nt=0 0\r\n", p.local_ip);
    let _ = write!(s, "m=audio {} {}", p.rtp_port, secure.proto);
    for (pt, _) in audio {
        let _ = write!(s, " {pt}");
    }
    for pt in dtmf_pt.iter().chain(cn_pt.iter()) {
        let _ = write!(s, " {pt}");
    }
    s.push_str("\r\n");
    for (pt, name) in audio {
        let _ = write!(s, "a=rtpmap:{pt} {name}/{SAMPLE_RATE}\r\n");
    }
    if let Some(pt) = cn_pt {
        let _ = write!(s, "a=rtpmap:{pt} CN/{SAMPLE_RATE}\r\n");
    }
    if let Some(pt) = dtmf_pt {
        let _ = write!(
            s,
            "a=rtpmap:{pt} telephone-event/{SAMPLE_RATE}\r\na=fmtp:{pt} 0-16\r\n"
        );
    }
    let _ = write!(s, "a=ptime:{}\r\na={}\r\n", p.ptime, direction.attribute());
    if p.rtcp_mux {
        s.push_str("a=rtcp-mux\r\n");
    }
    for c in secure.crypto {
        let _ = write!(s, "a=crypto:{}\r\n", c.to_sdp_value());
    }
    s
}

/// Builds our offer: one audio stream with the given codecs in order
/// (static PTs 0 / 8), telephone-event/8000 with fmtp 0-16, ptime and
/// direction, `\r\n` line ends. Duplicate codecs are written once.
pub fn build_offer(p: &OfferParams) -> String {
    let mut audio: Vec<(u8, &str)> = Vec::with_capacity(p.codecs.len());
    for c in &p.codecs {
        if !audio.iter().any(|(pt, _)| *pt == c.payload_type()) {
            audio.push((c.payload_type(), c.name()));
        }
    }
    let cn = p.comfort_noise.then_some(CN_PAYLOAD_TYPE);
    let attrs = p.srtp.as_ref().map(SdesOffer::attrs);
    let secure = match (&p.srtp, &attrs) {
        (Some(o), Some(a)) => SecureMedia {
            proto: if o.required { "RTP/SAVP" } else { "RTP/AVP" },
            crypto: a,
        },
        _ => PLAIN,
    };
    write_sdp(
        p,
        &audio,
        Some(p.dtmf_payload_type),
        cn,
        p.direction,
        &secure,
    )
}

/// Builds our answer to a peer's offer, from [`negotiate`]'s result: only
/// the chosen codec and telephone-event, with the peer's payload type
/// numbers, and our direction narrowed to what the offer allows (an offer
/// with `a=sendonly`, i.e. hold, is answered `a=recvonly`). Bump
/// `p.session_version` before answering a changed offer.
pub fn build_answer(p: &OfferParams, negotiated: &Negotiated) -> String {
    let audio = [(negotiated.payload_type, negotiated.codec.name())];
    let direction = p.direction.intersect(negotiated.direction);
    let answer = OfferParams {
        ptime: negotiated.ptime,
        rtcp_mux: p.rtcp_mux && negotiated.rtcp_mux,
        ..p.clone()
    };
    let cn = negotiated.cn_payload_type.filter(|_| p.comfort_noise);
    // SRTP when the offer had a crypto line we take and we have a key: the
    // same tag and suite, our key, the offer's profile.
    let ours = match (&negotiated.crypto, &p.srtp) {
        (Some(theirs), Some(o)) => Some([CryptoAttr {
            key: o.key.clone(),
            ..theirs.clone()
        }]),
        _ => None,
    };
    let secure = match &ours {
        Some(c) => SecureMedia {
            proto: if negotiated.savp {
                "RTP/SAVP"
            } else {
                "RTP/AVP"
            },
            crypto: c,
        },
        None => PLAIN,
    };
    write_sdp(
        &answer,
        &audio,
        negotiated.dtmf_payload_type,
        cn,
        direction,
        &secure,
    )
}

/// The media parameters of a call, from the peer's answer (or offer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Negotiated {
    /// The codec to send and expect.
    pub codec: Codec,
    /// Its payload type as the peer numbers it.
    pub payload_type: u8,
    /// The peer's telephone-event payload type, if it supports RFC 4733.
    pub dtmf_payload_type: Option<u8>,
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// OUR direction as the peer allows it: `RecvOnly` when the peer holds
    /// us (`a=sendonly`), `SendOnly` when it only listens (`a=recvonly` or
    /// `c=0.0.0.0`), `Inactive` when no media flows.
    pub direction: Direction,
    /// Packetisation time in ms (peer's `a=ptime`, else 20).
    pub ptime: u32,
    /// Where to send RTCP: the RTP address with `a=rtcp-mux`, else the
    /// `a=rtcp` port, else the RTP port + 1 (RFC 3605, RFC 3550 11).
    pub remote_rtcp: SocketAddr,
    /// RTCP shares the RTP port (the peer's SDP has `a=rtcp-mux`).
    pub rtcp_mux: bool,
    /// The peer's comfort-noise (`CN/8000`) payload type, if it offers one.
    pub cn_payload_type: Option<u8>,
    /// The profile is `RTP/SAVP` (SRTP is mandatory).
    pub savp: bool,
    /// The peer's SRTP key and suite: the first `a=crypto` line we can use
    /// (never serialized: it holds the key).
    #[serde(skip)]
    pub crypto: Option<CryptoAttr>,
}

impl Negotiated {
    /// Whether the peer has put the call on hold (it sends us nothing, or
    /// wants nothing from us).
    pub fn is_held(&self) -> bool {
        self.direction != Direction::SendRecv
    }
}

/// Picks the call's media from the peer's SDP: the first `m=audio` with a
/// non-zero port, the first of its formats that is one of `offered`, its
/// telephone-event payload type, and the remote RTP address (media-level
/// `c=`, else session-level).
pub fn negotiate(answer: &SessionDescription, offered: &[Codec]) -> Result<Negotiated, SdpError> {
    let m = answer
        .media
        .iter()
        .find(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
        .ok_or(SdpError::NoAudio)?;
    let (payload_type, codec) = m
        .formats
        .iter()
        .find_map(|&pt| {
            m.codec_for(pt)
                .filter(|c| offered.contains(c))
                .map(|c| (pt, c))
        })
        .ok_or_else(|| SdpError::NoCommonCodec {
            offered: m.formats.clone(),
            ours: offered.iter().map(|c| c.name()).collect(),
        })?;
    let ip = m
        .connection
        .or(answer.connection)
        .ok_or(SdpError::NoConnection)?;
    // RFC 2543 hold: c=0.0.0.0 means "do not send to me".
    let peer = if ip.is_unspecified() {
        m.direction.intersect(Direction::SendOnly)
    } else {
        m.direction
    };
    let remote_rtcp = if m.rtcp_mux {
        SocketAddr::new(ip, m.port)
    } else {
        SocketAddr::new(ip, m.rtcp_port.unwrap_or(m.port.wrapping_add(1)))
    };
    Ok(Negotiated {
        codec,
        payload_type,
        dtmf_payload_type: m.telephone_event_pt(),
        remote_rtp: SocketAddr::new(ip, m.port),
        direction: peer.reversed(),
        ptime: m.ptime.unwrap_or(DEFAULT_PTIME),
        remote_rtcp,
        rtcp_mux: m.rtcp_mux,
        cn_payload_type: m.comfort_noise_pt(),
        savp: m.proto.to_ascii_uppercase().contains("SAVP"),
        crypto: m.crypto.iter().find_map(|v| CryptoAttr::parse(v).ok()),
    })
}

/// [`negotiate`] for the answer to our own offer `p`: its crypto line must
/// answer one of ours (same tag and suite), else it counts as absent; when
/// we required SRTP, an answer without one is an error.
pub fn negotiate_answer(
    answer: &SessionDescription,
    p: &OfferParams,
) -> Result<Negotiated, SdpError> {
    let mut n = negotiate(answer, &p.codecs)?;
    let offered = p.srtp.as_ref().map(SdesOffer::attrs);
    n.crypto = match (&offered, &n.crypto) {
        (Some(ours), Some(theirs))
            if ours
                .iter()
                .any(|o| o.tag == theirs.tag && o.suite == theirs.suite) =>
        {
            n.crypto.take()
        }
        _ => None,
    };
    if p.srtp.as_ref().is_some_and(|o| o.required) && n.crypto.is_none() {
        return Err(SdpError::SrtpRequired);
    }
    Ok(n)
}

#[cfg(test)]
#[path = "sdp_tests.rs"]
mod tests;
