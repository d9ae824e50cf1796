//! SIP over WebSocket (RFC 7118) against an in-process WebSocket server
//! standing in for the proxy: the handshake asks for the `sip`
//! subprotocol, every SIP message is one text frame, the Via says
//! `SIP/2.0/WS`, the Contact is a `.invalid` host with `;transport=ws`,
//! and the proxy's answers come back on the same connection; the proxy's
//! WebSocket closing mid-call ends the call at once as failed/network.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use super::{DialRequest, SipGateway};
use crate::config::{Config, SipTransport};
use crate::outcome::{Disposition, FailReason};
use crate::telephony::leg::LegEvent;

/// The header `name`'s value in a SIP message (first occurrence).
fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or("")
}

/// The next text frame (skipping pings), within 5 s.
async fn next_text<S>(ws: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the connection stays open")
            .expect("a good frame");
        match m {
            Message::Text(t) => return t.to_string(),
            Message::Binary(b) => panic!("SIP over WebSocket is text frames, got binary {b:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn ws_proxy_gets_one_invite_per_text_frame_and_its_answer_ends_the_call() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let proxy = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut asked = (String::new(), String::new());
        let mut ws =
            tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, mut resp: Response| {
                asked = (
                    req.uri().path().to_string(),
                    req.headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string(),
                );
                resp.headers_mut()
                    .insert("sec-websocket-protocol", "sip".parse().unwrap());
                Ok(resp)
            })
            .await
            .expect("a WebSocket handshake");
        let invite = next_text(&mut ws).await;
        let busy = format!(
            "SIP/2.0 486 Busy Here\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=ws1\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
            header(&invite, "Via"),
            header(&invite, "From"),
            header(&invite, "To"),
            header(&invite, "Call-ID"),
            header(&invite, "CSeq"),
        );
        ws.send(Message::Text(busy.into())).await.unwrap();
        let ack = next_text(&mut ws).await;
        (asked, invite, ack)
    });

    let mut cfg = Config::default();
    cfg.sip.outbound_proxy = Some(format!("ws://127.0.0.1:{port}/sip"));
    cfg.validate().expect("a valid ws config");
    assert_eq!(cfg.sip_transport(), SipTransport::Ws);
    let gw = SipGateway::start(cfg).await.expect("gateway");
    let mut leg = gw
        .dial(DialRequest::to("sip:webuser@127.0.0.1"))
        .await
        .expect("dial");
    let report = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match leg.next_event().await.expect("events until Ended") {
                LegEvent::Ended(r) => break r,
                _ => continue,
            }
        }
    })
    .await
    .expect("the call ends on the proxy's 486");
    assert_eq!(report.disposition, Disposition::Busy, "{report:?}");

    let ((path, protocol), invite, ack) = proxy.await.unwrap();
    assert_eq!(path, "/sip", "the URL's path is the GET's");
    assert!(
        protocol.split(',').any(|p| p.trim() == "sip"),
        "Sec-WebSocket-Protocol: {protocol:?}"
    );
    assert!(
        invite.starts_with("INVITE sip:webuser@127.0.0.1 SIP/2.0\r\n"),
        "{invite}"
    );
    assert_eq!(
        invite.matches("\r\n\r\n").count(),
        1,
        "one message per frame:\n{invite}"
    );
    let len: usize = header(&invite, "Content-Length").parse().unwrap();
    let body = invite.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(
        body.len(),
        len,
        "the whole SDP in the same frame:\n{invite}"
    );
    assert!(body.starts_with("v=0"), "{invite}");
    assert!(
        header(&invite, "Via").starts_with("SIP/2.0/WS "),
        "{invite}"
    );
    let contact = header(&invite, "Contact");
    assert!(
        contact.contains(".invalid") && contact.to_ascii_lowercase().contains("transport=ws"),
        "Contact: {contact}"
    );
    assert!(
        ack.starts_with("ACK sip:webuser@127.0.0.1 SIP/2.0\r\n"),
        "{ack}"
    );
    gw.shutdown();
    tokio::time::timeout(Duration::from_secs(10), gw.closed())
        .await
        .expect("the gateway stops");
}

#[tokio::test]
async fn ws_proxy_connection_closing_mid_call_ends_it_as_failed_network() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let media = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media_port = media.local_addr().unwrap().port();
    let proxy = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // Nobody listens any more: the BYE after the close cannot reconnect.
        drop(listener);
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, |_: &Request, mut resp: Response| {
            resp.headers_mut()
                .insert("sec-websocket-protocol", "sip".parse().unwrap());
            Ok(resp)
        })
        .await
        .expect("a WebSocket handshake");
        let invite = next_text(&mut ws).await;
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=ws2\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:webuser@127.0.0.1:{port};transport=ws>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            header(&invite, "Via"),
            header(&invite, "From"),
            header(&invite, "To"),
            header(&invite, "Call-ID"),
            header(&invite, "CSeq"),
            sdp.len(),
        );
        ws.send(Message::Text(ok.into())).await.unwrap();
        let ack = next_text(&mut ws).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The proxy goes away: the socket closes without a BYE.
        drop(ws);
        ack
    });

    let mut cfg = Config::default();
    cfg.sip.outbound_proxy = Some(format!("ws://127.0.0.1:{port}"));
    let gw = SipGateway::start(cfg).await.expect("gateway");
    let mut leg = gw
        .dial(DialRequest::to("sip:webuser@127.0.0.1"))
        .await
        .expect("dial");
    let mut answered = false;
    let report = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match leg.next_event().await.expect("events until Ended") {
                LegEvent::Answered { .. } => answered = true,
                LegEvent::Ended(r) => break r,
                _ => continue,
            }
        }
    })
    .await
    .expect("the call ends when its WebSocket closes, not at the media timeout");
    let ack = proxy.await.unwrap();
    assert!(ack.starts_with("ACK "), "{ack}");
    assert!(answered, "{report:?}");
    assert_eq!(report.disposition, Disposition::Failed, "{report:?}");
    assert_eq!(report.reason, Some(FailReason::Network), "{report:?}");
    gw.shutdown();
}
