//! SIP over TLS to the trunk (`[sip] transport = "tls"`, `sips:`): a rustls
//! (ring) client plugged into rsipstack's TLS connector seam, with the CA
//! file and the client certificate the config names. The stack dials
//! through it whenever a target's transport is TLS; the certificate is
//! checked against the name the target was given by (an IP address needs
//! it in the certificate's subjectAltName).
//!
//! The seam is process-wide: the last gateway started with TLS sets it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rsipstack::platform::tls::{TlsClientConfig, TlsConnector, TlsStream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::SipError;
use crate::config::SipConfig;

/// How long the TCP connect and the TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn tls_err(what: &str, path: &Path, e: impl std::fmt::Display) -> SipError {
    SipError::Tls(format!("{what} {}: {e}", path.display()))
}

/// The rustls client configuration from `[sip] tls_*` (ring, as the web
/// side: rustls deprecates it only for lacking post-quantum key exchange).
#[allow(deprecated)]
pub(super) fn client_config(sip: &SipConfig) -> Result<rustls::ClientConfig, SipError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &sip.tls_ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_err("[sip] tls_ca_file", path, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| tls_err("[sip] tls_ca_file", path, e))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(tls_err(
                    "[sip] tls_ca_file",
                    path,
                    "no usable CA certificate",
                ));
            }
        }
        None => {
            for path in ["/etc/ssl/certs/ca-certificates.crt"] {
                if let Ok(it) = CertificateDer::pem_file_iter(path) {
                    roots.add_parsable_certificates(it.flatten());
                }
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SipError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match (&sip.tls_cert_file, &sip.tls_key_file) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| tls_err("[sip] tls_cert_file", cert, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| tls_err("[sip] tls_cert_file", cert, e))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| tls_err("[sip] tls_key_file", key, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| SipError::Tls(format!("[sip] tls_cert_file/tls_key_file: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Dials TLS for the stack with one rustls configuration.
pub(super) struct Connector {
    pub(super) config: Arc<rustls::ClientConfig>,
}

/// Registers `config` as the process's SIP TLS client.
pub(super) fn install(config: rustls::ClientConfig) {
    rsipstack::platform::tls::set_client_connector(Arc::new(Connector {
        config: Arc::new(config),
    }));
}

#[async_trait::async_trait]
impl TlsConnector for Connector {
    async fn connect(
        &self,
        config: &TlsClientConfig,
        addr: SocketAddr,
    ) -> rsipstack::Result<Box<dyn TlsStream>> {
        let name = ServerName::try_from(config.server_name.clone())
            .map_err(|e| rsipstack::Error::Error(format!("TLS server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let dial = async {
            let tcp = TcpStream::connect(addr).await?;
            let local = tcp.local_addr()?;
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>((tls, local))
        };
        let (tls, local) = tokio::time::timeout(HANDSHAKE_TIMEOUT, dial)
            .await
            .map_err(|_| rsipstack::Error::Error(format!("TLS to {addr}: timed out")))?
            .map_err(|e| {
                tracing::warn!(trunk = %addr, error = %e, "TLS connection to the trunk failed");
                rsipstack::Error::Error(format!("TLS to {addr}: {e}"))
            })?;
        let (r, w) = tokio::io::split(tls);
        Ok(Box::new(Stream {
            read: Mutex::new(r),
            write: Mutex::new(w),
            local,
        }))
    }
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// One TLS session to the trunk.
struct Stream {
    read: Mutex<ReadHalf<Tls>>,
    write: Mutex<WriteHalf<Tls>>,
    local: SocketAddr,
}

#[async_trait::async_trait]
impl TlsStream for Stream {
    async fn recv(&self) -> rsipstack::Result<Vec<u8>> {
        let mut buf = vec![0u8; 16 * 1024];
        let n = self
            .read
            .lock()
            .await
            .read(&mut buf)
            .await
            .map_err(|e| rsipstack::Error::Error(e.to_string()))?;
        buf.truncate(n);
        Ok(buf)
    }

    async fn send_all(&self, data: Vec<u8>) -> rsipstack::Result<()> {
        let mut w = self.write.lock().await;
        w.write_all(&data)
            .await
            .map_err(|e| rsipstack::Error::Error(e.to_string()))?;
        w.flush()
            .await
            .map_err(|e| rsipstack::Error::Error(e.to_string()))
    }

    async fn shutdown(&self) -> rsipstack::Result<()> {
        self.write
            .lock()
            .await
            .shutdown()
            .await
            .map_err(|e| rsipstack::Error::Error(e.to_string()))
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_an_error_naming_the_key() {
        let mut sip = SipConfig {
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..SipConfig::default()
        };
        let e = client_config(&sip).unwrap_err().to_string();
        assert!(e.contains("[sip] tls_ca_file"), "{e}");
        sip.tls_ca_file = None;
        assert!(client_config(&sip).is_ok(), "system roots");
    }
}
