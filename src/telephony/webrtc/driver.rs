//! The thin tokio driver around the sans-IO [`Engine`]: the public UDP
//! socket (ICE, DTLS, SRTP with the peer), a loopback socket facing the
//! call's RTP media session, the engine's own timeouts, and a clean end on
//! the call's cancellation.
//!
//! Never: decides anything about the media (the engine does), or waits on
//! anything but its sockets, its timer and its stop token.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::engine::{Agreed, Engine, EngineStats, Step};
use super::{WebRtcCodec, WebRtcError};
use crate::telephony::rtp;
use crate::telephony::sdp::{Direction, Negotiated, DEFAULT_PTIME};

/// Largest datagram read from the peer (browsers keep to ~1200 bytes).
const MAX_DATAGRAM: usize = 4096;

/// A call's WebRTC media before the answer: the engine with its offer and
/// the public socket its host candidate names.
#[derive(Debug)]
pub struct DirectMedia {
    engine: Engine,
    socket: UdpSocket,
}

impl DirectMedia {
    /// Binds the public socket on `ip` (any free port) and makes the SDP
    /// offer (returned with it).
    pub async fn offer(
        ip: IpAddr,
        codecs: &[WebRtcCodec],
        dtmf_pt: u8,
    ) -> Result<(DirectMedia, String), WebRtcError> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let local = socket.local_addr()?;
        let (engine, sdp) = Engine::offer(local, codecs, dtmf_pt, std::time::Instant::now())?;
        Ok((DirectMedia { engine, socket }, sdp))
    }

    /// Takes the peer's answer and starts the driver. The media session at
    /// `session` (its socket's address) gets what it needs as if the peer
    /// spoke plain RTP: its remote is the driver's loopback socket.
    pub async fn answer(
        mut self,
        sdp: &[u8],
        session: SocketAddr,
    ) -> Result<(Negotiated, Bridge), WebRtcError> {
        let text = std::str::from_utf8(sdp).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let agreed = self.engine.accept_answer(text)?;
        let inner = UdpSocket::bind(SocketAddr::new(session.ip(), 0)).await?;
        let here = inner.local_addr()?;
        // The session's RTCP goes to the same loopback socket (muxed), where
        // the engine drops it (not an agreed payload type): str0m makes the
        // browser's RTCP itself. No comfort noise, no SDES keys: DTLS-SRTP
        // protects the browser's leg.
        let negotiated = Negotiated {
            codec: agreed.codec,
            payload_type: agreed.payload_type,
            dtmf_payload_type: agreed.dtmf_payload_type,
            remote_rtp: here,
            direction: Direction::SendRecv,
            ptime: DEFAULT_PTIME,
            remote_rtcp: here,
            rtcp_mux: true,
            cn_payload_type: None,
            savp: false,
            crypto: None,
        };
        tracing::info!(
            local = %self.engine.local(),
            codec = agreed.peer_codec.name(),
            session_codec = agreed.codec.name(),
            dtmf = ?agreed.dtmf_payload_type,
            "webrtc: answer taken, waiting for ICE and DTLS"
        );
        let stop = CancellationToken::new();
        let (connected_tx, connected) = watch::channel(false);
        let task = tokio::spawn(run(
            self.engine,
            self.socket,
            inner,
            session,
            stop.clone(),
            connected_tx,
        ));
        Ok((
            negotiated,
            Bridge {
                agreed,
                stop: stop.clone(),
                _guard: stop.drop_guard(),
                connected,
                task,
            },
        ))
    }
}

/// A running driver. Dropping it stops the driver.
#[derive(Debug)]
pub struct Bridge {
    agreed: Agreed,
    stop: CancellationToken,
    _guard: DropGuard,
    connected: watch::Receiver<bool>,
    task: JoinHandle<EngineStats>,
}

impl Bridge {
    /// What the browser's answer agreed (its codec: Opus, PCMU or PCMA).
    pub fn agreed(&self) -> Agreed {
        self.agreed
    }

    /// Waits until DTLS-SRTP is up (ICE checked, keys agreed), at most `within`.
    pub async fn wait_connected(&mut self, within: Duration) -> Result<(), WebRtcError> {
        match tokio::time::timeout(within, self.connected.wait_for(|c| *c)).await {
            Ok(Ok(_)) => Ok(()),
            // The driver ended (ICE failed) or the time ran out.
            _ => Err(WebRtcError::NotConnected(within)),
        }
    }

    /// Stops the driver and returns its counters.
    pub async fn stop(self) -> Option<EngineStats> {
        self.stop.cancel();
        match self.task.await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "webrtc driver failed");
                None
            }
        }
    }
}

/// The driver's loop: the engine's steps out, datagrams and timeouts in,
/// until `stop`, the engine's end, or a failed socket.
async fn run(
    mut engine: Engine,
    public: UdpSocket,
    inner: UdpSocket,
    session: SocketAddr,
    stop: CancellationToken,
    connected: watch::Sender<bool>,
) -> EngineStats {
    let mut net_buf = vec![0u8; MAX_DATAGRAM];
    let mut ses_buf = vec![0u8; rtp::MAX_PACKET_LEN + 1];
    loop {
        let wait = loop {
            match engine.poll() {
                Step::Network { to, data } => {
                    if let Err(e) = public.send_to(&data, to).await {
                        tracing::debug!(error = %e, "webrtc: send failed");
                    }
                }
                Step::Session(pkt) => {
                    if let Err(e) = inner.send_to(&pkt, session).await {
                        tracing::debug!(error = %e, "webrtc: hand-on to the session failed");
                    }
                }
                Step::Wait(at) => break Some(at),
                Step::Closed => break None,
            }
        };
        if engine.connected() && !*connected.borrow() {
            connected.send_replace(true);
        }
        let Some(at) = wait else {
            tracing::info!("webrtc: the peer's media ended");
            break;
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = public.recv_from(&mut net_buf) => match r {
                Ok((n, from)) => engine.network_in(std::time::Instant::now(), from, &net_buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    tracing::warn!(error = %e, "webrtc socket failed");
                    break;
                }
            },
            r = inner.recv_from(&mut ses_buf) => match r {
                // Only our media session speaks on the loopback socket.
                Ok((n, from)) if from == session => engine.session_in(std::time::Instant::now(), &ses_buf[..n]),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    tracing::warn!(error = %e, "webrtc loopback socket failed");
                    break;
                }
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                engine.timeout(std::time::Instant::now());
            }
        }
    }
    let stats = engine.stats();
    tracing::info!(?stats, "webrtc: media ended");
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::Codec;
    use str0m::change::SdpOffer;
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event, Input, Output, Rtc};

    /// A browser-like str0m peer on its own UDP socket, until `stop`:
    /// returns the audio payload types it received.
    async fn browser(mut rtc: Rtc, socket: UdpSocket, stop: CancellationToken) -> Vec<u8> {
        let local = socket.local_addr().unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let at = loop {
                match rtc.poll_output().unwrap() {
                    Output::Transmit(t) => {
                        socket.send_to(&t.contents, t.destination).await.unwrap();
                    }
                    Output::Event(Event::RtpPacket(p)) => got.push(*p.header.payload_type),
                    Output::Event(_) => {}
                    Output::Timeout(at) => break at,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return got,
                r = socket.recv_from(&mut buf) => {
                    let (n, from) = r.unwrap();
                    let recv = Receive::new(Protocol::Udp, from, local, &buf[..n]).unwrap();
                    rtc.handle_input(Input::Receive(std::time::Instant::now(), recv)).unwrap();
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                    rtc.handle_input(Input::Timeout(std::time::Instant::now())).unwrap();
                }
            }
        }
    }

    #[tokio::test]
    async fn the_driver_connects_a_browser_and_carries_session_rtp_to_it_until_stopped() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let session = UdpSocket::bind((lo, 0)).await.unwrap();
        let (direct, offer) = DirectMedia::offer(lo, &[WebRtcCodec::G711(Codec::Pcmu)], 101)
            .await
            .unwrap();
        let bsock = UdpSocket::bind((lo, 0)).await.unwrap();
        let mut cfg = Rtc::builder().set_rtp_mode(true).clear_codecs();
        cfg.codec_config().enable_pcmu(true, false);
        let mut b = cfg.build(std::time::Instant::now());
        b.add_local_candidate(Candidate::host(bsock.local_addr().unwrap(), "udp").unwrap());
        let answer = b
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
            .unwrap()
            .to_sdp_string();
        let bstop = CancellationToken::new();
        let phone = tokio::spawn(browser(b, bsock, bstop.clone()));

        let (n, mut bridge) = direct
            .answer(answer.as_bytes(), session.local_addr().unwrap())
            .await
            .unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
        assert_eq!(
            n.remote_rtp.ip(),
            lo,
            "the session talks to the driver on loopback"
        );
        bridge
            .wait_connected(Duration::from_secs(10))
            .await
            .expect("ICE and DTLS-SRTP complete");
        let mut pkt = Vec::new();
        for i in 0..10u16 {
            let h = rtp::RtpHeader {
                marker: i == 0,
                payload_type: 0,
                sequence: i,
                timestamp: 160 * u32::from(i),
                ssrc: 9,
            };
            rtp::write(&h, &[0x42; 160], &mut pkt);
            session.send_to(&pkt, n.remote_rtp).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = bridge.stop().await.expect("the driver's counters");
        assert_eq!(stats.to_peer, 10, "{stats:?}");
        bstop.cancel();
        let got = phone.await.unwrap();
        assert_eq!(got.iter().filter(|&&pt| pt == 0).count(), 10, "{got:?}");
    }

    #[tokio::test]
    async fn a_peer_that_never_connects_is_reported_not_connected() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let session = UdpSocket::bind((lo, 0)).await.unwrap();
        let (direct, offer) = DirectMedia::offer(lo, &[WebRtcCodec::G711(Codec::Pcmu)], 101)
            .await
            .unwrap();
        // A browser that answers but never sends a datagram.
        let mut cfg = Rtc::builder().clear_codecs();
        cfg.codec_config().enable_pcmu(true, false);
        let mut b = cfg.build(std::time::Instant::now());
        let answer = b
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
            .unwrap()
            .to_sdp_string();
        let (_, mut bridge) = direct
            .answer(answer.as_bytes(), session.local_addr().unwrap())
            .await
            .unwrap();
        let r = bridge.wait_connected(Duration::from_millis(300)).await;
        assert!(matches!(r, Err(WebRtcError::NotConnected(_))), "{r:?}");
        let stats = bridge.stop().await.unwrap();
        assert!(!stats.connected);
    }
}
