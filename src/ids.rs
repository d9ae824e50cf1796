//! Identifiers written as UUIDs: the text form and fresh random ones.
//!
//! Owns: the `8-4-4-4-12` hex form and making random (version 4) UUIDs.
//! Imports nothing of the project, so the store and the gateways can both use it.

/// The UUID as text (`8-4-4-4-12` hex).
pub fn uuid_text(id: &[u8; 16]) -> String {
    let h: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A fresh random (version 4) UUID as text.
pub fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_8_4_4_4_12_hex_and_random_ones_are_version_4() {
        let id: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(uuid_text(&id), "00112233-4455-6677-8899-aabbccddeeff");
        let r = random_uuid();
        assert_eq!(r.len(), 36);
        assert_eq!(&r[14..15], "4", "{r}");
        assert!(matches!(&r[19..20], "8" | "9" | "a" | "b"), "{r}");
        assert_ne!(random_uuid(), r);
    }
}
