//! The process-wide TLS crypto provider (rustls), shared by every TLS client
//! and server of the process: the service (`web::server`), its webhooks
//! (`web::webhooks`) and the origination and transfer hooks
//! (`telephony::ws::hook`). Owns only the choice of provider.

/// Installs the process-wide TLS crypto provider once. ring, not
/// aws-lc-rs: a far lighter build, and no C toolchain beyond what the crate
/// already needs; rustls marks it deprecated only for lacking post-quantum
/// key exchange. A second call (or another part's install) changes nothing.
#[allow(deprecated)]
pub fn install_crypto() {
    // A second install is refused and changes nothing.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
