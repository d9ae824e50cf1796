//! The session's bridged-audio path (`MediaCmd::Feed`), over a real
//! loopback socket.

use super::*;

/// What the peer receives: the first sample of each audio packet's payload.
async fn first_samples(peer: &UdpSocket, packets: usize) -> Vec<i16> {
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::new();
    for _ in 0..packets {
        let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buf)).await
        else {
            break;
        };
        let pkt = rtp::parse(&buf[..n]).expect("rtp");
        let mut pcm = Vec::new();
        g711::decode(Codec::Pcmu, pkt.payload, &mut pcm);
        out.push(pcm[0]);
    }
    out
}

/// A PCMU session's parameters on loopback, and the peer socket it sends to.
async fn pcmu_session() -> (MediaParams, UdpSocket) {
    let ours = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p = MediaParams {
        socket: ours,
        remote: peer.local_addr().unwrap(),
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: None,
        jitter_frames: 3,
        record: None,
        media_timeout: Duration::ZERO,
        sit: None,
        options: MediaOptions::default(),
    };
    (p, peer)
}

#[tokio::test]
async fn fed_frames_go_out_when_nothing_plays_and_a_backlog_keeps_only_the_newest() {
    let (p, peer) = pcmu_session().await;
    let (tx, rx) = mpsc::channel(64);
    let (events, _events_rx) = crate::telephony::leg::event_channel();
    let stop = CancellationToken::new();
    // 20 frames at once (another leg's burst): levels 100, 200, ... 2000.
    for n in 1..=20i16 {
        tx.send(MediaCmd::Feed([n * 100; FRAME_SAMPLES]))
            .await
            .unwrap();
    }
    let session = tokio::spawn(run(p, rx, events, stop.clone()));
    let got = first_samples(&peer, 12).await;
    stop.cancel();
    let summary = session.await.unwrap();
    let loud: Vec<i16> = got.iter().copied().filter(|&s| s.abs() > 50).collect();
    assert_eq!(
        loud.len(),
        BRIDGE_QUEUE_FRAMES,
        "only the newest frames are sent: {got:?}"
    );
    // The newest, in order (u-law quantises: within 5 %).
    for (i, s) in loud.iter().enumerate() {
        let want = (20 - BRIDGE_QUEUE_FRAMES + 1 + i) as f64 * 100.0;
        assert!(
            ((*s as f64) - want).abs() <= want * 0.05,
            "frame {i}: {s} vs {want} ({got:?})"
        );
    }
    assert_eq!(summary.bridge_dropped, (20 - BRIDGE_QUEUE_FRAMES) as u64);
}

#[tokio::test]
async fn a_prompt_that_plays_goes_before_fed_frames() {
    let (p, peer) = pcmu_session().await;
    let (tx, rx) = mpsc::channel(64);
    let (events, _events_rx) = crate::telephony::leg::event_channel();
    let stop = CancellationToken::new();
    let prompt: Arc<[i16]> = Arc::from(vec![-3000i16; FRAME_SAMPLES * 2]);
    tx.send(MediaCmd::Play("p".into(), prompt)).await.unwrap();
    tx.send(MediaCmd::Feed([1000; FRAME_SAMPLES]))
        .await
        .unwrap();
    let session = tokio::spawn(run(p, rx, events, stop.clone()));
    let got = first_samples(&peer, 5).await;
    stop.cancel();
    session.await.unwrap();
    let loud: Vec<i16> = got.iter().copied().filter(|&s| s.abs() > 50).collect();
    assert_eq!(loud.len(), 3, "{got:?}");
    assert!(
        loud[0] < -2800 && loud[1] < -2800,
        "the prompt first: {got:?}"
    );
    assert!(
        (950..=1050).contains(&loud[2]),
        "then the fed frame: {got:?}"
    );
}
