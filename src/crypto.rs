//! The process-wide TLS crypto provider, shared by the server (`server`)
//! and the webhook client (`webhooks`).

/// Installs the process-wide TLS crypto provider once (for the server and
/// the webhook client). ring, not aws-lc-rs: a far lighter build, and no
/// C toolchain beyond what the crate already needs; rustls marks it
/// deprecated only for lacking post-quantum key exchange.
#[allow(deprecated)]
pub fn install_crypto() {
    // A second install is refused and changes nothing.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
