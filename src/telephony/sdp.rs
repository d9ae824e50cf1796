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
}

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
            ("a", media) => {
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
        }
    }

    /// Increments the session version (RFC 3264 8: every changed SDP in a
    /// session carries a higher version).
    pub fn bump_version(&mut self) {
        self.session_version = self.session_version.wrapping_add(1);
    }
}

fn write_sdp(
    p: &OfferParams,
    audio: &[(u8, &str)],
    dtmf_pt: Option<u8>,
    direction: Direction,
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
    let _ = write!(s, "m=audio {} RTP/AVP", p.rtp_port);
    for (pt, _) in audio {
        let _ = write!(s, " {pt}");
    }
    if let Some(pt) = dtmf_pt {
        let _ = write!(s, " {pt}");
    }
    s.push_str("\r\n");
    for (pt, name) in audio {
        let _ = write!(s, "a=rtpmap:{pt} {name}/{SAMPLE_RATE}\r\n");
    }
    if let Some(pt) = dtmf_pt {
        let _ = write!(
            s,
            "a=rtpmap:{pt} telephone-event/{SAMPLE_RATE}\r\na=fmtp:{pt} 0-16\r\n"
        );
    }
    let _ = write!(s, "a=ptime:{}\r\na={}\r\n", p.ptime, direction.attribute());
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
    write_sdp(p, &audio, Some(p.dtmf_payload_type), p.direction)
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
        ..p.clone()
    };
    write_sdp(&answer, &audio, negotiated.dtmf_payload_type, direction)
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
    Ok(Negotiated {
        codec,
        payload_type,
        dtmf_payload_type: m.telephone_event_pt(),
        remote_rtp: SocketAddr::new(ip, m.port),
        direction: peer.reversed(),
        ptime: m.ptime.unwrap_or(DEFAULT_PTIME),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// What sipp's uas_callee.xml answers, with its keywords filled in.
    const SIPP_ANSWER: &str = "v=0\r\n\
        o=callee 53655765 2353687637 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 6000 RTP/AVP 0 96\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:96 telephone-event/8000\r\n\
        a=fmtp:96 0-16\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n";

    /// A typical baresip 1.0 answer.
    const BARESIP_ANSWER: &str = "v=0\r\n\
        o=- 1786012829 1480373340 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 10010 RTP/AVP 8 0 101\r\n\
        b=AS:88\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=rtcp:10011\r\n\
        a=sendrecv\r\n\
        a=label:1\r\n\
        a=ssrc:4103587853 cname:3c0f2a4e-1b5d-4e5f-9a6b\r\n\
        a=rtcp-rsize\r\n\
        a=ptime:20\r\n";

    /// A linphone hold re-INVITE: session-level sendonly, video disabled.
    const LINPHONE_HOLD: &str = "v=0\n\
        o=bob 3456 3458 IN IP4 192.0.2.7\n\
        s=Talk\n\
        c=IN IP4 192.0.2.7\n\
        t=0 0\n\
        a=sendonly\n\
        m=audio 7078 RTP/AVP 96 0 8 101\n\
        a=rtpmap:96 opus/48000/2\n\
        a=rtpmap:101 telephone-event/8000\n\
        m=video 0 RTP/AVP 96\n";

    fn ours() -> Vec<Codec> {
        vec![Codec::Pcmu, Codec::Pcma]
    }

    #[test]
    fn sipp_answer_parses_and_negotiates_pcmu_with_dtmf_96() {
        let sd = parse(SIPP_ANSWER).unwrap();
        assert_eq!(sd.connection, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let o = sd.origin.as_ref().unwrap();
        assert_eq!((o.session_id, o.session_version), (53655765, 2353687637));
        let m = &sd.media[0];
        assert_eq!(
            (m.kind.as_str(), m.port, m.proto.as_str()),
            ("audio", 6000, "RTP/AVP")
        );
        assert_eq!(m.formats, vec![0, 96]);
        assert_eq!(m.fmtp, vec![(96, "0-16".to_string())]);
        assert_eq!(m.ptime, Some(20));
        let n = negotiate(&sd, &ours()).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.payload_type, 0);
        assert_eq!(n.dtmf_payload_type, Some(96));
        assert_eq!(n.remote_rtp, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
        assert!(!n.is_held());
    }

    #[test]
    fn baresip_answer_picks_its_first_format_and_reads_rtcp_and_dtmf_101() {
        let sd = parse(BARESIP_ANSWER).unwrap();
        let m = &sd.media[0];
        assert_eq!(m.rtcp_port, Some(10011));
        assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
        let n = negotiate(&sd, &ours()).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (Codec::Pcma, 8, Some(101))
        );
        assert_eq!(n.ptime, 20);
        // If we only offered PCMU, the answer's second choice is used.
        let n = negotiate(&sd, &[Codec::Pcmu]).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
    }

    #[test]
    fn hold_with_session_level_sendonly_makes_us_receive_only() {
        let sd = parse(LINPHONE_HOLD).unwrap();
        assert_eq!(sd.direction, Some(Direction::SendOnly));
        assert_eq!(sd.media[1].direction, Direction::SendOnly);
        let n = negotiate(&sd, &ours()).unwrap();
        // opus (96) is skipped; PCMU is the first format we offered.
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(n.is_held());
    }

    #[test]
    fn media_level_direction_overrides_session_level() {
        let text = SIPP_ANSWER
            .replace("a=sendrecv\r\n", "a=recvonly\r\n")
            .replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n");
        let sd = parse(&text).unwrap();
        assert_eq!(sd.media[0].direction, Direction::RecvOnly);
        assert_eq!(
            negotiate(&sd, &ours()).unwrap().direction,
            Direction::SendOnly
        );
        let inactive = parse(&SIPP_ANSWER.replace("a=sendrecv", "a=inactive")).unwrap();
        assert_eq!(
            negotiate(&inactive, &ours()).unwrap().direction,
            Direction::Inactive
        );
    }

    #[test]
    fn old_style_hold_with_zero_address_stops_our_sending() {
        let sd = parse(&SIPP_ANSWER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")).unwrap();
        let n = negotiate(&sd, &ours()).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(!n.direction.sends());
    }

    #[test]
    fn dynamic_payload_type_is_matched_by_rtpmap_name() {
        let text = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 97 120\na=rtpmap:97 pcma/8000\na=rtpmap:120 telephone-event/8000\n";
        let n = negotiate(&parse(text).unwrap(), &ours()).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (Codec::Pcma, 97, Some(120))
        );
    }

    #[test]
    fn rtpmap_overrides_a_static_number_and_wrong_clock_is_not_g711() {
        let text = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0 8\na=rtpmap:0 G722/8000\na=rtpmap:8 PCMA/16000\n";
        let err = negotiate(&parse(text).unwrap(), &ours()).unwrap_err();
        assert_eq!(
            err,
            SdpError::NoCommonCodec {
                offered: vec![0, 8],
                ours: vec!["PCMU", "PCMA"]
            }
        );
    }

    #[test]
    fn media_level_connection_wins_and_rejected_streams_are_skipped() {
        let text = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\nm=video 5000 RTP/AVP 96\r\n\
                    m=audio 5002 RTP/AVP 8\r\nc=IN IP6 ::1\r\n";
        let n = negotiate(&parse(text).unwrap(), &ours()).unwrap();
        assert_eq!(n.remote_rtp, "[::1]:5002".parse().unwrap());
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.dtmf_payload_type, None);
    }

    #[test]
    fn negotiation_errors_say_what_is_missing() {
        let no_audio =
            parse("v=0\nc=IN IP4 1.2.3.4\nm=audio 0 RTP/AVP 0\nm=video 9 RTP/AVP 96\n").unwrap();
        assert_eq!(negotiate(&no_audio, &ours()), Err(SdpError::NoAudio));
        let no_conn = parse("v=0\nm=audio 9 RTP/AVP 0\n").unwrap();
        assert_eq!(negotiate(&no_conn, &ours()), Err(SdpError::NoConnection));
        let g729 = parse("v=0\nc=IN IP4 1.2.3.4\nm=audio 9 RTP/AVP 18\n").unwrap();
        assert!(matches!(
            negotiate(&g729, &ours()),
            Err(SdpError::NoCommonCodec { .. })
        ));
        assert!(matches!(
            negotiate(&g729, &[]),
            Err(SdpError::NoCommonCodec { .. })
        ));
    }

    #[test]
    fn malformed_bodies_are_rejected_with_the_reason() {
        assert!(matches!(parse(""), Err(SdpError::MissingVersion { .. })));
        assert!(matches!(
            parse("o=x 1 1 IN IP4 1.2.3.4\nv=0\n"),
            Err(SdpError::MissingVersion { .. })
        ));
        assert_eq!(parse("v=0\r\ns=-\r\n"), Err(SdpError::NoMedia));
        assert!(matches!(
            parse("v=0\nm=audio 70000 RTP/AVP 0\n"),
            Err(SdpError::BadPort { line: 2, .. })
        ));
        assert!(matches!(
            parse("v=0\nm=audio x RTP/AVP 0\n"),
            Err(SdpError::BadPort { .. })
        ));
        assert!(matches!(
            parse("v=0\nm=audio 5 RTP/AVP PCMU\n"),
            Err(SdpError::BadFormat { .. })
        ));
        assert!(matches!(
            parse("v=0\nm=audio 5 RTP/AVP 200\n"),
            Err(SdpError::BadFormat { .. })
        ));
        assert!(matches!(
            parse("v=0\nm=audio 5 RTP/AVP\n"),
            Err(SdpError::BadMediaLine { .. })
        ));
        assert!(matches!(
            parse("v=0\nc=IN IP4 host.example\nm=audio 5 RTP/AVP 0\n"),
            Err(SdpError::BadConnection { .. })
        ));
        assert!(matches!(
            parse("v=0\nc=IN IP6 1.2.3.4\nm=audio 5 RTP/AVP 0\n"),
            Err(SdpError::BadConnection { .. })
        ));
        let big = format!("v=0\n{}", "a=x\n".repeat(MAX_SDP_LEN / 4));
        assert!(matches!(parse(&big), Err(SdpError::TooLarge { .. })));
        assert_eq!(parse_bytes(&[b'v', b'=', 0xFF]), Err(SdpError::NotUtf8));
    }

    #[test]
    fn unknown_lines_and_non_rtp_streams_are_tolerated() {
        let text = "v=0\nx-weird\nz=0\nc=IN IP4 224.2.1.1/127/3\nm=image 9 udptl t38\nm=audio 49170/2 RTP/AVP 0\na=rtpmap:bad\na=ptime:abc\n";
        let sd = parse(text).unwrap();
        assert_eq!(sd.media[0].formats, Vec::<u8>::new());
        assert_eq!(sd.media[1].port, 49170);
        assert_eq!(sd.media[1].ptime, None);
        assert_eq!(sd.connection, Some("224.2.1.1".parse().unwrap()));
    }

    #[test]
    fn built_offer_is_valid_sdp_with_crlf_and_both_codecs_in_order() {
        let mut p = OfferParams::new("192.0.2.10".parse().unwrap(), 40000, 777);
        p.codecs = vec![Codec::Pcma, Codec::Pcmu, Codec::Pcma];
        let text = build_offer(&p);
        assert!(text.ends_with("\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert!(text.contains("m=audio 40000 RTP/AVP 8 0 101\r\n"));
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert!(text.contains("a=ptime:20\r\na=sendrecv\r\n"));
        let sd = parse(&text).unwrap();
        assert_eq!(sd.origin.as_ref().unwrap().session_version, 777);
        let n = negotiate(&sd, &ours()).unwrap();
        assert_eq!((n.codec, n.dtmf_payload_type), (Codec::Pcma, Some(101)));
        assert_eq!(n.remote_rtp, "192.0.2.10:40000".parse().unwrap());

        p.bump_version();
        let sd2 = parse(&build_offer(&p)).unwrap();
        assert_eq!(sd2.origin.unwrap().session_version, 778);
    }

    #[test]
    fn ipv6_offer_uses_ip6_address_type() {
        let p = OfferParams::new("::1".parse().unwrap(), 4000, 1);
        let text = build_offer(&p);
        assert!(text.contains("c=IN IP6 ::1\r\n"));
        assert_eq!(
            parse(&text).unwrap().connection,
            Some("::1".parse().unwrap())
        );
    }

    #[test]
    fn answer_to_a_hold_offer_is_recvonly_with_the_peers_numbers() {
        let offer = parse(LINPHONE_HOLD).unwrap();
        let n = negotiate(&offer, &ours()).unwrap();
        let mut p = OfferParams::new("127.0.0.1".parse().unwrap(), 30000, 5);
        p.bump_version();
        let text = build_answer(&p, &n);
        assert!(text.contains("m=audio 30000 RTP/AVP 0 101\r\n"));
        assert!(text.contains("a=recvonly\r\n"));
        assert!(text.contains("o=duecall 5 6 IN IP4 127.0.0.1\r\n"));
        let back = negotiate(&parse(&text).unwrap(), &ours()).unwrap();
        assert_eq!(back.direction, Direction::SendOnly);
    }

    #[test]
    fn direction_algebra() {
        use Direction::*;
        assert_eq!(SendOnly.reversed(), RecvOnly);
        assert_eq!(Inactive.reversed(), Inactive);
        assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
    }

    fn sdp_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("v=0".to_string()),
            Just("c=IN IP4 127.0.0.1".to_string()),
            Just("a=sendonly".to_string()),
            "m=[a-z]{0,6} [0-9/]{0,7} [A-Z/]{0,8}( [0-9]{1,3}){0,4}",
            "a=(rtpmap|fmtp|ptime|rtcp):[0-9 ]{0,4}[A-Za-z/0-9-]{0,16}",
            "c=IN IP[46] [0-9a-f.:/]{0,20}",
            "o=[ -~]{0,40}",
            "[ -~]{0,30}",
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_bytes(&bytes);
        }

        #[test]
        fn parse_and_negotiate_never_panic_on_sdp_like_lines(
            lines in proptest::collection::vec(sdp_line(), 0..20), crlf in any::<bool>(),
        ) {
            let sep = if crlf { "\r\n" } else { "\n" };
            let text = format!("v=0{sep}{}", lines.join(sep));
            if let Ok(sd) = parse(&text) {
                let _ = negotiate(&sd, &ours());
            }
        }

        #[test]
        fn truncated_valid_sdp_never_panics(cut in 0usize..600) {
            let text = BARESIP_ANSWER;
            let cut = cut.min(text.len());
            if let Ok(sd) = parse(&text[..cut]) {
                let _ = negotiate(&sd, &ours());
            }
        }
    }
}
