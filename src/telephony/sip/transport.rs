//! The transports the gateway speaks to its trunk: the UDP socket always,
//! and with `[sip] transport = "tcp"` a TCP listener on the same port (for
//! requests the trunk opens towards our Contact) beside the connection the
//! stack opens to the trunk (TLS: the connection only, see `tls.rs`). A stream connection that closes is announced
//! on a channel, so a call whose trunk connection goes away mid-call ends
//! with a clear disposition instead of waiting for a media timeout; CRLF
//! keep-alives (RFC 5626 3.5.1) keep the trunk connection from idling out.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use rsipstack::sip::Transport;
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::{
    udp::UdpConnection, SipAddr, SipConnection, TransportEvent, TransportLayer,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::SipError;
use crate::config::SipTransport;

/// A stream connection nothing is read from for this long is closed (the
/// stack's default is 5 min, shorter than a call can be; a stranger's idle
/// connection to our listener must still end some time). Longer than any
/// call the dialogue allows (`[dialogue] max_call_ms`, 10 min by default).
pub const STREAM_IDLE: Duration = Duration::from_secs(3600);

/// Binds the UDP socket on `bind` and, when some trunk speaks TCP
/// (`listen_tcp`), a listener on the same port (with port 0 the OS picks
/// one free for both: a few tries).
pub(super) async fn bind(
    layer: &TransportLayer,
    bind: SocketAddr,
    listen_tcp: bool,
    cancel: &CancellationToken,
) -> Result<(), SipError> {
    let tries = if bind.port() == 0 { 8 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = UdpConnection::create_connection(bind, None, Some(cancel.child_token()))
            .await
            .map_err(|e| SipError::Bind {
                addr: bind,
                source: std::io::Error::other(e.to_string()),
            })?;
        if !listen_tcp {
            // TLS: no listener of our own (rsipstack's TLS listener needs
            // its rustls feature); the trunk answers on our connection.
            // WebSocket the same (RFC 7118: the client opens the connection).
            layer.add_transport(udp.into());
            return Ok(());
        }
        let port = udp
            .get_addr()
            .addr
            .port
            .map(u16::from)
            .unwrap_or(bind.port());
        let tcp_addr = SocketAddr::new(bind.ip(), port);
        // The listener binds when the endpoint serves: check the port is
        // free for TCP now, or a bind failure would only be a warning.
        match std::net::TcpListener::bind(tcp_addr) {
            Ok(probe) => drop(probe),
            Err(source) => {
                last = Some(SipError::Bind {
                    addr: tcp_addr,
                    source,
                });
                continue;
            }
        }
        let listener = TcpListenerConnection::new(tcp_addr, None)
            .await
            .map_err(|e| SipError::Bind {
                addr: tcp_addr,
                source: std::io::Error::other(e.to_string()),
            })?;
        layer.add_transport(udp.into());
        layer.add_transport(listener.into());
        return Ok(());
    }
    Err(last.unwrap_or(SipError::Stack("cannot bind SIP".into())))
}

/// The rsipstack transport type for a configured transport.
pub(super) fn stack_transport(t: SipTransport) -> Transport {
    match t {
        SipTransport::Udp => Transport::Udp,
        SipTransport::Tcp => Transport::Tcp,
        SipTransport::Tls => Transport::Tls,
        SipTransport::Ws => Transport::Ws,
    }
}

/// Our Contact for registrations (and, over WebSocket, calls): over
/// WebSocket a `.invalid` host (RFC 7118 section 5: nobody can open a
/// connection to us; the proxy reaches us on the one we opened, kamailio
/// by the `alias` it adds), else our SIP address, with the transport named.
pub(super) fn contact_uri(user: &str, local: SocketAddr, t: SipTransport) -> String {
    match t {
        SipTransport::Ws => format!(
            "sip:{user}@{:08x}.invalid;transport=ws",
            rand::random::<u32>()
        ),
        _ => format!("sip:{user}@{local};transport={}", t.name()),
    }
}

/// Announces the remote address of every stream connection that closes.
pub(super) struct ClosedConnections {
    pub(super) tx: broadcast::Sender<SocketAddr>,
}

impl TransportEventInspector for ClosedConnections {
    fn handle<'life0, 'async_trait>(
        &'life0 self,
        event: TransportEvent,
    ) -> Pin<Box<dyn Future<Output = Option<TransportEvent>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if let TransportEvent::Closed(c) = &event {
                if c.is_reliable() {
                    if let Some(remote) = c.get_remote_addr().and_then(|a| a.get_socketaddr().ok())
                    {
                        tracing::debug!(remote = %remote, "SIP connection closed");
                        let _ = self.tx.send(remote);
                    }
                }
            }
            Some(event)
        })
    }
}

/// Sends a CRLF keep-alive (RFC 5626 4.4.1 double CRLF) to the trunk
/// `target` over TCP or TLS every `every`, opening the connection when
/// there is none (the flow to the trunk stays up between calls, RFC 5626
/// style). The stack answers the trunk's own pings with a single CRLF.
pub(super) async fn keepalive(
    endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    trunk: String,
    target: SipAddr,
    every: Duration,
    stop: CancellationToken,
) {
    use rsipstack::transport::connection::KEEPALIVE_REQUEST;
    use rsipstack::transport::stream::StreamConnection;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let sent = match endpoint.transport_layer.lookup(&target, None).await {
            Ok((SipConnection::Tcp(c), _)) => c.send_raw(KEEPALIVE_REQUEST).await,
            Ok((SipConnection::TlsPlatform(c), _)) => c.send_raw(KEEPALIVE_REQUEST).await,
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                if failing {
                    tracing::info!(trunk = %trunk, server = %target.addr, "keep-alive to the trunk goes through again");
                }
                failing = false;
                tracing::trace!(trunk = %trunk, server = %target.addr, "CRLF keep-alive sent");
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(trunk = %trunk, server = %target.addr, error = %e, "keep-alive to the trunk failed");
                }
                failing = true;
            }
        }
    }
}
