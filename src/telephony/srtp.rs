//! SRTP and SRTCP (RFC 3711) with keys exchanged in SDP (SDES, RFC 4568):
//! the `AES_CM_128_HMAC_SHA1_80` and `_32` suites.
//!
//! Owns: the `a=crypto` attribute (parse, write), session-key derivation
//! from a master key (RFC 3711 4.3, key derivation rate 0), AES counter
//! mode and HMAC-SHA1 authentication of RTP and RTCP packets in place, the
//! rollover counter and the replay windows of what we receive.
//! Never: logs or prints a key (the key types' Debug says `<redacted>`),
//! touches sockets, allocates per packet (the caller's buffer grows once by
//! the tag), or panics on any input.

use std::fmt;

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use thiserror::Error;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// Master key length (AES-128).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length.
pub const MASTER_SALT_LEN: usize = 14;
/// SRTCP authentication tag length: 80 bits in both suites (RFC 4568 6.2).
pub const SRTCP_TAG_LEN: usize = 10;
/// Replay window (packets behind the highest index still accepted once).
pub const REPLAY_WINDOW: u64 = 64;

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrtpError {
    /// Shorter than its header and tag, or an RTP header that runs past it.
    #[error("SRTP packet too short ({len} bytes)")]
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The authentication tag does not match: forged, corrupt or the wrong key.
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// An index already received, or older than the replay window.
    #[error("SRTP replay: index {index} already seen or too old")]
    Replay {
        /// The packet index.
        index: u64,
    },
    /// An SRTCP packet without the encryption flag (we never negotiate
    /// unencrypted SRTCP).
    #[error("SRTCP packet not encrypted")]
    NotEncrypted,
}

/// Why an `a=crypto` attribute or a master key is unusable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoAttrError {
    /// Not `<tag> <suite> inline:<key>...`.
    #[error("malformed a=crypto attribute")]
    Malformed,
    /// A suite duecall does not implement.
    #[error("unsupported crypto suite {0}")]
    UnsupportedSuite(String),
    /// The key is not base64 of 30 bytes.
    #[error("a=crypto key is not 30 bytes of base64")]
    BadKey,
    /// An MKI or a session parameter duecall does not implement.
    #[error("a=crypto with MKI or session parameters is not supported")]
    Unsupported,
}

/// `[sip] srtp`: whether calls use SRTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    /// Plain RTP (no `a=crypto` offered; an offer with keys is answered plain).
    #[default]
    Off,
    /// Offer keys in an `RTP/AVP` offer; SRTP when the answer has one.
    Offer,
    /// Offer `RTP/SAVP`; an answer without a usable key fails the call.
    Require,
}

/// The crypto suites duecall speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    #[serde(rename = "AES_CM_128_HMAC_SHA1_80")]
    AesCm128HmacSha1_80,
    /// The same with a 32-bit SRTP tag (SRTCP keeps 80 bits).
    #[serde(rename = "AES_CM_128_HMAC_SHA1_32")]
    AesCm128HmacSha1_32,
}

impl Suite {
    /// The SDP name.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite an SDP name stands for.
    pub fn from_name(name: &str) -> Option<Suite> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// SRTP authentication tag length in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// A master key and salt. Debug never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; MASTER_KEY_LEN],
    salt: [u8; MASTER_SALT_LEN],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A key and salt given as bytes.
    pub fn new(key: [u8; MASTER_KEY_LEN], salt: [u8; MASTER_SALT_LEN]) -> Self {
        MasterKey { key, salt }
    }

    /// A fresh random key and salt (one per call and direction).
    pub fn random() -> Self {
        MasterKey {
            key: rand::random(),
            salt: rand::random(),
        }
    }

    /// The base64 of key || salt (RFC 4568's `inline:` value, 40 characters).
    pub fn to_base64(&self) -> String {
        let mut both = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        both[..MASTER_KEY_LEN].copy_from_slice(&self.key);
        both[MASTER_KEY_LEN..].copy_from_slice(&self.salt);
        base64::engine::general_purpose::STANDARD.encode(both)
    }

    /// Reads key || salt from base64 (padding optional).
    pub fn from_base64(s: &str) -> Result<Self, CryptoAttrError> {
        let s = s.trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(s)
            .map_err(|_| CryptoAttrError::BadKey)?;
        if bytes.len() != MASTER_KEY_LEN + MASTER_SALT_LEN {
            return Err(CryptoAttrError::BadKey);
        }
        let mut key = [0u8; MASTER_KEY_LEN];
        let mut salt = [0u8; MASTER_SALT_LEN];
        key.copy_from_slice(&bytes[..MASTER_KEY_LEN]);
        salt.copy_from_slice(&bytes[MASTER_KEY_LEN..]);
        Ok(MasterKey { key, salt })
    }
}

/// One `a=crypto` line (RFC 4568 9.1): tag, suite, key. Lifetimes are
/// accepted and ignored (a call never comes near 2^31 packets); MKIs and
/// session parameters are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttr {
    /// The tag (1..=999999999) that an answer repeats.
    pub tag: u32,
    /// The suite.
    pub suite: Suite,
    /// The sender's master key (the answerer's in an answer).
    pub key: MasterKey,
}

impl CryptoAttr {
    /// Parses the value of an `a=crypto:` attribute.
    pub fn parse(value: &str) -> Result<CryptoAttr, CryptoAttrError> {
        let mut f = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(params)) = (f.next(), f.next(), f.next()) else {
            return Err(CryptoAttrError::Malformed);
        };
        if f.next().is_some() {
            return Err(CryptoAttrError::Unsupported);
        }
        let tag: u32 = tag
            .parse()
            .ok()
            .filter(|t| (1..=999_999_999).contains(t))
            .ok_or(CryptoAttrError::Malformed)?;
        let suite = Suite::from_name(suite)
            .ok_or_else(|| CryptoAttrError::UnsupportedSuite(suite.chars().take(40).collect()))?;
        // One key parameter only (several keys need MKIs).
        if params.contains(';') {
            return Err(CryptoAttrError::Unsupported);
        }
        let inline = params
            .strip_prefix("inline:")
            .ok_or(CryptoAttrError::Malformed)?;
        let mut parts = inline.split('|');
        let key = MasterKey::from_base64(parts.next().unwrap_or(""))?;
        for p in parts {
            if p.contains(':') {
                return Err(CryptoAttrError::Unsupported); // MKI
            }
        }
        Ok(CryptoAttr { tag, suite, key })
    }

    /// The attribute value (`<tag> <suite> inline:<key>`), for SDP only: it
    /// carries the key, so it must never reach a log.
    pub fn to_sdp_value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            self.key.to_base64()
        )
    }
}

/// RFC 3711 4.3.3 labels.
const LABEL_RTP_ENC: u8 = 0;
const LABEL_RTP_AUTH: u8 = 1;
const LABEL_RTP_SALT: u8 = 2;
const LABEL_RTCP_ENC: u8 = 3;
const LABEL_RTCP_AUTH: u8 = 4;
const LABEL_RTCP_SALT: u8 = 5;

/// AES-CM PRF of RFC 3711 4.3.1 (key derivation rate 0): `out.len()`
/// bytes of keystream from IV = (salt XOR label << 48) || 0x0000.
fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(&master.salt);
    iv[7] ^= label;
    out.fill(0);
    Aes128Ctr::new(&master.key.into(), &iv.into()).apply_keystream(out);
}

/// The session keys of one direction of RTP or RTCP.
#[derive(Clone)]
struct SessionKeys {
    enc: [u8; 16],
    salt: [u8; 14],
    auth: HmacSha1,
}

impl SessionKeys {
    fn derive(master: &MasterKey, rtcp: bool) -> Self {
        let (le, la, ls) = if rtcp {
            (LABEL_RTCP_ENC, LABEL_RTCP_AUTH, LABEL_RTCP_SALT)
        } else {
            (LABEL_RTP_ENC, LABEL_RTP_AUTH, LABEL_RTP_SALT)
        };
        let mut enc = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; 14];
        derive(master, le, &mut enc);
        derive(master, la, &mut auth);
        derive(master, ls, &mut salt);
        SessionKeys {
            enc,
            salt,
            // HMAC takes a key of any length: this cannot fail.
            auth: <HmacSha1 as Mac>::new_from_slice(&auth).expect("HMAC accepts any key length"),
        }
    }

    /// AES-CM over `data` with the IV of RFC 3711 4.1.1 for `ssrc` and
    /// packet `index` (48 bits for SRTP, 31 for SRTCP).
    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        Aes128Ctr::new(&self.enc.into(), &iv.into()).apply_keystream(data);
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut m = self.auth.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.auth.clone();
        for p in parts {
            m.update(p);
        }
        m.verify_truncated_left(tag).is_ok()
    }
}

/// Which indices were seen: the highest and a bitmap of the 64 below.
#[derive(Debug, Clone, Default)]
struct ReplayWindow {
    highest: Option<u64>,
    bits: u64,
}

impl ReplayWindow {
    fn check(&self, index: u64) -> bool {
        match self.highest {
            None => true,
            Some(h) if index > h => true,
            Some(h) => {
                let d = h - index;
                d < REPLAY_WINDOW && (self.bits >> d) & 1 == 0
            }
        }
    }

    fn accept(&mut self, index: u64) {
        match self.highest {
            None => {
                self.highest = Some(index);
                self.bits = 1;
            }
            Some(h) if index > h => {
                let shift = index - h;
                self.bits = if shift >= 64 { 0 } else { self.bits << shift };
                self.bits |= 1;
                self.highest = Some(index);
            }
            Some(h) => self.bits |= 1 << (h - index),
        }
    }
}

/// Length of an RTP header (fixed, CSRCs, extension) in `buf`.
fn rtp_header_len(buf: &[u8]) -> Option<usize> {
    let b0 = *buf.first()?;
    let mut len = 12 + 4 * usize::from(b0 & 0x0F);
    if b0 & 0x10 != 0 {
        let ext = buf.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (len <= buf.len()).then_some(len)
}

/// One direction of a call's SRTP and SRTCP: a sender protects with its
/// own master key, a receiver unprotects with the peer's.
#[derive(Clone)]
pub struct SrtpContext {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// Rollover counter (sender: of what we sent; receiver: its estimate).
    roc: u32,
    /// Highest sequence number sent or received (s_l of RFC 3711 3.3.1).
    last_seq: Option<u16>,
    srtcp_index: u32,
    replay: ReplayWindow,
    rtcp_replay: ReplayWindow,
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("roc", &self.roc)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// A context for `suite` with `master`'s session keys.
    pub fn new(suite: Suite, master: &MasterKey) -> Self {
        SrtpContext {
            suite,
            rtp: SessionKeys::derive(master, false),
            rtcp: SessionKeys::derive(master, true),
            roc: 0,
            last_seq: None,
            srtcp_index: 0,
            replay: ReplayWindow::default(),
            rtcp_replay: ReplayWindow::default(),
        }
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Encrypts the payload of the RTP packet in `pkt` in place and appends
    /// the tag. Sequence numbers must come in sending order (the ROC counts
    /// their wraps).
    pub fn protect_rtp(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        let hlen = rtp_header_len(pkt).ok_or(SrtpError::TooShort { len: pkt.len() })?;
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
        if let Some(prev) = self.last_seq {
            if seq < prev && prev.wrapping_sub(seq) > 0x8000 {
                self.roc = self.roc.wrapping_add(1);
            }
        }
        self.last_seq = Some(seq);
        let index = (u64::from(self.roc) << 16) | u64::from(seq);
        self.rtp.crypt(ssrc, index, &mut pkt[hlen..]);
        let tag = self.rtp.mac(&[pkt, &self.roc.to_be_bytes()]);
        pkt.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        Ok(())
    }

    /// The packet index a received sequence number stands for (RFC 3711
    /// 3.3.1) and the ROC it implies.
    fn estimate(&self, seq: u16) -> (u32, u64) {
        let Some(s_l) = self.last_seq else {
            return (self.roc, (u64::from(self.roc) << 16) | u64::from(seq));
        };
        let v = if s_l < 0x8000 {
            if i32::from(seq) - i32::from(s_l) > 0x8000 {
                self.roc.wrapping_sub(1)
            } else {
                self.roc
            }
        } else if i32::from(s_l) - 0x8000 > i32::from(seq) {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        };
        (v, (u64::from(v) << 16) | u64::from(seq))
    }

    /// Checks the tag and the replay window of a received SRTP packet and
    /// decrypts it in place; returns the length of the plain RTP packet
    /// (the tag cut off). A packet that fails changes no state.
    pub fn unprotect_rtp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let len = pkt.len();
        let too_short = SrtpError::TooShort { len };
        let body_len = len.checked_sub(tag_len).ok_or(too_short.clone())?;
        let hlen = rtp_header_len(&pkt[..body_len]).ok_or(too_short)?;
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
        let (v, index) = self.estimate(seq);
        if !self.replay.check(index) {
            return Err(SrtpError::Replay { index });
        }
        let (body, tag) = pkt.split_at_mut(body_len);
        if !self.rtp.verify(&[body, &v.to_be_bytes()], tag) {
            return Err(SrtpError::AuthFailed);
        }
        self.rtp.crypt(ssrc, index, &mut body[hlen..]);
        self.replay.accept(index);
        match self.last_seq {
            None => self.last_seq = Some(seq),
            Some(s_l) => {
                if v == self.roc.wrapping_add(1) {
                    self.roc = v;
                    self.last_seq = Some(seq);
                } else if v == self.roc && seq > s_l {
                    self.last_seq = Some(seq);
                }
            }
        }
        Ok(body_len)
    }

    /// Encrypts an RTCP compound in place (all after the first 8 bytes),
    /// appends E || SRTCP index and the 80-bit tag.
    pub fn protect_rtcp(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        if pkt.len() < 8 {
            return Err(SrtpError::TooShort { len: pkt.len() });
        }
        self.srtcp_index = (self.srtcp_index + 1) & 0x7FFF_FFFF;
        let index = self.srtcp_index;
        let ssrc = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        self.rtcp.crypt(ssrc, u64::from(index), &mut pkt[8..]);
        pkt.extend_from_slice(&(0x8000_0000 | index).to_be_bytes());
        let tag = self.rtcp.mac(&[pkt]);
        pkt.extend_from_slice(&tag[..SRTCP_TAG_LEN]);
        Ok(())
    }

    /// Checks and decrypts a received SRTCP packet in place; returns the
    /// length of the plain compound.
    pub fn unprotect_rtcp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        let len = pkt.len();
        if len < 8 + 4 + SRTCP_TAG_LEN {
            return Err(SrtpError::TooShort { len });
        }
        let body_len = len - SRTCP_TAG_LEN;
        let (body, tag) = pkt.split_at_mut(body_len);
        if !self.rtcp.verify(&[body], tag) {
            return Err(SrtpError::AuthFailed);
        }
        let plain_len = body_len - 4;
        let e_index = u32::from_be_bytes([
            body[plain_len],
            body[plain_len + 1],
            body[plain_len + 2],
            body[plain_len + 3],
        ]);
        if e_index & 0x8000_0000 == 0 {
            return Err(SrtpError::NotEncrypted);
        }
        let index = u64::from(e_index & 0x7FFF_FFFF);
        if !self.rtcp_replay.check(index) {
            return Err(SrtpError::Replay { index });
        }
        let ssrc = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        self.rtcp.crypt(ssrc, index, &mut body[8..plain_len]);
        self.rtcp_replay.accept(index);
        Ok(plain_len)
    }
}

/// Both directions of a call's SRTP: ours (protect) and the peer's
/// (unprotect), as an SDES offer/answer settled them.
#[derive(Debug, Clone)]
pub struct SrtpSession {
    /// What we send, with our key.
    pub tx: SrtpContext,
    /// What we receive, with the peer's key.
    pub rx: SrtpContext,
}

impl SrtpSession {
    /// Our key and the peer's, one suite.
    pub fn new(suite: Suite, ours: &MasterKey, theirs: &MasterKey) -> Self {
        SrtpSession {
            tx: SrtpContext::new(suite, ours),
            rx: SrtpContext::new(suite, theirs),
        }
    }
}

#[cfg(test)]
#[path = "srtp_tests.rs"]
mod tests;
