use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 3711 B.3 and libsrtp's test key.
fn master() -> MasterKey {
    let mut key = [0u8; 16];
    let mut salt = [0u8; 14];
    key.copy_from_slice(&hex("E1F97A0D3E018BE0D64FA32C06DE4139"));
    salt.copy_from_slice(&hex("0EC675AD498AFEEBB6960B3AABE6"));
    MasterKey::new(key, salt)
}

#[test]
fn aes_cm_keystream_matches_rfc_3711_b2() {
    let mut key = [0u8; 16];
    key.copy_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C"));
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
    let mut ks = [0u8; 48];
    Aes128Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut ks);
    assert_eq!(
        ks.to_vec(),
        hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
    );
}

#[test]
fn session_keys_match_rfc_3711_b3() {
    let k = SessionKeys::derive(&master(), false);
    assert_eq!(k.enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(k.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 20];
    derive(&master(), LABEL_RTP_AUTH, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

const RTP_PLAIN: &str = "800f1234 decafbad cafebabe abababab abababab abababab abababab";

#[test]
fn an_rtp_packet_protects_to_libsrtps_reference_ciphertext() {
    for (suite, tag) in [
        (Suite::AesCm128HmacSha1_80, "b78d6acc99ea179b8dbb"),
        (Suite::AesCm128HmacSha1_32, "b78d6acc"),
    ] {
        let mut tx = SrtpContext::new(suite, &master());
        let mut pkt = hex(RTP_PLAIN);
        tx.protect_rtp(&mut pkt).unwrap();
        let want = hex(&format!(
            "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 {tag}"
        ));
        assert_eq!(pkt, want, "{suite:?}");
        let mut rx = SrtpContext::new(suite, &master());
        let n = rx.unprotect_rtp(&mut pkt).unwrap();
        assert_eq!(pkt[..n].to_vec(), hex(RTP_PLAIN));
    }
}

#[test]
fn an_rtcp_packet_protects_to_libsrtps_reference_ciphertext() {
    let plain = hex("81c8000b cafebabe abababab abababab abababab abababab");
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    let mut pkt = plain.clone();
    tx.protect_rtcp(&mut pkt).unwrap();
    assert_eq!(
        pkt,
        hex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798")
    );
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_32, &master());
    let n = rx.unprotect_rtcp(&mut pkt.clone()).unwrap();
    let mut copy = pkt.clone();
    assert_eq!(
        rx.unprotect_rtcp(&mut copy),
        Err(SrtpError::Replay { index: 1 })
    );
    let mut again = pkt;
    let mut rx2 = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    assert_eq!(rx2.unprotect_rtcp(&mut again).unwrap(), n);
    assert_eq!(again[..n].to_vec(), plain);
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 0, 0, 0, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44];
    v[2..4].copy_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn a_flipped_bit_or_the_wrong_key_fails_authentication_and_changes_nothing() {
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    let mut p = rtp(1, &[1; 160]);
    tx.protect_rtp(&mut p).unwrap();
    for i in [0usize, 3, 20, p.len() - 1] {
        let mut bad = p.clone();
        bad[i] ^= 1;
        assert_eq!(
            rx.unprotect_rtp(&mut bad),
            Err(SrtpError::AuthFailed),
            "bit in byte {i}"
        );
    }
    let mut other = SrtpContext::new(Suite::AesCm128HmacSha1_80, &MasterKey::random());
    assert_eq!(
        other.unprotect_rtp(&mut p.clone()),
        Err(SrtpError::AuthFailed)
    );
    // The genuine packet still goes through: the failures left no state.
    assert!(rx.unprotect_rtp(&mut p).is_ok());
}

#[test]
fn a_replayed_packet_is_refused_and_a_late_one_in_the_window_is_not() {
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_32, &master());
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_32, &master());
    let pkts: Vec<Vec<u8>> = (0..100u16)
        .map(|s| {
            let mut p = rtp(s, &[s as u8; 20]);
            tx.protect_rtp(&mut p).unwrap();
            p
        })
        .collect();
    for i in (0..100).filter(|i| i % 10 != 5) {
        assert!(rx.unprotect_rtp(&mut pkts[i].clone()).is_ok());
    }
    assert_eq!(
        rx.unprotect_rtp(&mut pkts[99].clone()),
        Err(SrtpError::Replay { index: 99 })
    );
    // 95 is late but within 64 of 99: accepted once.
    assert!(rx.unprotect_rtp(&mut pkts[95].clone()).is_ok());
    assert!(rx.unprotect_rtp(&mut pkts[95].clone()).is_err());
    // 25 is older than the window.
    assert_eq!(
        rx.unprotect_rtp(&mut pkts[25].clone()),
        Err(SrtpError::Replay { index: 25 })
    );
}

#[test]
fn the_rollover_counter_follows_the_sequence_wrap_both_ways() {
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    let mut seq: u16 = 65_000;
    let mut sent = Vec::new();
    for _ in 0..1200 {
        let mut p = rtp(seq, &seq.to_be_bytes());
        tx.protect_rtp(&mut p).unwrap();
        sent.push((seq, p));
        seq = seq.wrapping_add(1);
    }
    assert_eq!(tx.roc, 1);
    // Received with a little reordering across the wrap.
    sent.swap(535, 536);
    for (s, mut p) in sent {
        let n = rx
            .unprotect_rtp(&mut p)
            .unwrap_or_else(|e| panic!("seq {s}: {e}"));
        assert_eq!(p[12..n].to_vec(), s.to_be_bytes().to_vec());
    }
    assert_eq!(rx.roc, 1);
}

#[test]
fn csrcs_and_header_extensions_stay_in_the_clear() {
    let mut p = vec![0x91, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2];
    p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
    p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 5, 5, 5, 5]); // extension
    p.extend_from_slice(&[0xAB; 8]);
    let plain = p.clone();
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    tx.protect_rtp(&mut p).unwrap();
    assert_eq!(p[..24], plain[..24]);
    assert_ne!(p[24..32], plain[24..32]);
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    let n = rx.unprotect_rtp(&mut p).unwrap();
    assert_eq!(p[..n], plain[..]);
}

#[test]
fn short_and_unencrypted_packets_are_errors() {
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    for len in 0..22 {
        assert!(rx.unprotect_rtp(&mut vec![0x80; len]).is_err());
        assert!(rx.unprotect_rtcp(&mut vec![0x80; len]).is_err());
    }
    // An SRTCP packet whose E bit is clear, correctly authenticated.
    let tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
    let mut p = hex("81c8000b cafebabe abababab abababab abababab abababab");
    p.extend_from_slice(&1u32.to_be_bytes());
    let tag = tx.rtcp.mac(&[&p]);
    p.extend_from_slice(&tag[..10]);
    assert_eq!(rx.unprotect_rtcp(&mut p), Err(SrtpError::NotEncrypted));
}

#[test]
fn crypto_attributes_parse_and_write_back() {
    let key = master();
    let a = CryptoAttr {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        key: key.clone(),
    };
    let v = a.to_sdp_value();
    assert!(v.starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert_eq!(CryptoAttr::parse(&v).unwrap(), a);
    // baresip's style: lifetime given.
    let b = CryptoAttr::parse(&format!(
        "2 AES_CM_128_HMAC_SHA1_32 inline:{}|2^20",
        key.to_base64()
    ))
    .unwrap();
    assert_eq!((b.tag, b.suite), (2, Suite::AesCm128HmacSha1_32));
    assert_eq!(
        CryptoAttr::parse(&format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{}|2^20|1:4",
            key.to_base64()
        )),
        Err(CryptoAttrError::Unsupported)
    );
    assert!(matches!(
        CryptoAttr::parse("1 AES_256_CM_HMAC_SHA1_80 inline:AAAA"),
        Err(CryptoAttrError::UnsupportedSuite(_))
    ));
    assert_eq!(
        CryptoAttr::parse("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"),
        Err(CryptoAttrError::BadKey)
    );
    assert_eq!(CryptoAttr::parse("x"), Err(CryptoAttrError::Malformed));
    assert_eq!(
        CryptoAttr::parse(&format!(
            "0 AES_CM_128_HMAC_SHA1_80 inline:{}",
            key.to_base64()
        )),
        Err(CryptoAttrError::Malformed)
    );
}

#[test]
fn keys_never_show_in_debug_output() {
    let key = master();
    let b64 = key.to_base64();
    let a = CryptoAttr {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        key: key.clone(),
    };
    let s = SrtpSession::new(Suite::AesCm128HmacSha1_80, &key, &key);
    for text in [format!("{key:?}"), format!("{a:?}"), format!("{s:?}")] {
        assert!(
            !text.contains(&b64[..8]) && !text.contains("e1f97a"),
            "{text}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn unprotect_never_panics(buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master());
        let _ = rx.unprotect_rtp(&mut buf.clone());
        let _ = rx.unprotect_rtcp(&mut buf.clone());
        let _ = CryptoAttr::parse(&String::from_utf8_lossy(&buf));
    }
}
