//! The 20 ms media loop allocates nothing per packet once a call is under
//! way. A counting global allocator counts, per thread, every allocation
//! and reallocation; a real media session (`telephony::media_session::run`
//! on its own current-thread runtime, a UDP socket on 127.0.0.1) plays a
//! long prompt while a peer on another thread sends PCMU every 20 ms and a
//! driver on a third thread takes the audio frames, and a recording is
//! written. Over 3 s of steady state (150 ticks, 150 packets each way,
//! 150 frames handed on, 150 recorded) the session's thread must not
//! allocate once.
//!
//! A separate test binary: the counting allocator must not be global to
//! the rest of the suite.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::UdpSocket as StdUdp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use duecall::media::g711::Codec;
use duecall::telephony::leg::{event_channel, LegEvent};
use duecall::telephony::media_session::{self, MediaCmd, MediaEnd, MediaOptions, MediaParams};
use duecall::telephony::rtp::{self, RtpSender};
use tokio_util::sync::CancellationToken;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// This thread's allocations so far.
fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

// SAFETY: forwards every call to the system allocator unchanged; counting
// touches only a const-initialised thread-local without a destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Sends 20 ms PCMU packets to `to` until `stop`, and reads what comes back.
fn peer(sock: StdUdp, to: std::net::SocketAddr, stop: Arc<AtomicBool>, got: Arc<AtomicU64>) {
    sock.set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let mut tx = RtpSender::new(0x5eed, 1, 0);
    let payload = [0x55u8; 160];
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    let start = std::time::Instant::now();
    let mut n: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + Duration::from_millis(20) * n;
        while std::time::Instant::now() < due {
            if sock.recv_from(&mut buf).is_ok() {
                got.fetch_add(1, Ordering::Relaxed);
            }
        }
        let h = tx.audio(0, 160, n == 0);
        out.clear();
        rtp::write(&h, &payload, &mut out);
        let _ = sock.send_to(&out, to);
        n += 1;
    }
}

#[test]
fn the_media_loop_does_not_allocate_per_packet_in_steady_state() {
    let dir = std::env::temp_dir().join(format!("duecall-media-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let peer_sock = StdUdp::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer_sock.local_addr().unwrap();
    let ours = StdUdp::bind("127.0.0.1:0").unwrap();
    ours.set_nonblocking(true).unwrap();
    let our_addr = ours.local_addr().unwrap();

    let stop_peer = Arc::new(AtomicBool::new(false));
    let peer_got = Arc::new(AtomicU64::new(0));
    let peer_thread = {
        let (stop, got) = (stop_peer.clone(), peer_got.clone());
        std::thread::spawn(move || peer(peer_sock, our_addr, stop, got))
    };

    // The driver: takes every event on its own thread and runtime.
    let (events_tx, mut events) = event_channel();
    let frames = Arc::new(AtomicU64::new(0));
    let driver = {
        let frames = frames.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                while let Some(ev) = events.recv().await {
                    match ev {
                        LegEvent::Audio { received: true, .. } => {
                            frames.fetch_add(1, Ordering::Relaxed);
                        }
                        LegEvent::Ended(_) => break,
                        _ => {}
                    }
                }
            })
        })
    };

    let record = dir.join("call.wav");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (summary, steady, frames_in_window, peer_in_window) = rt.block_on(async {
        let socket = tokio::net::UdpSocket::from_std(ours).unwrap();
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(8);
        // 10 s of prompt: it plays through the whole window.
        let prompt: Arc<[i16]> = (0..80_000)
            .map(|i| ((i % 40) * 400 - 8000) as i16)
            .collect();
        cmd_tx
            .send(MediaCmd::Play("reminder".into(), prompt))
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let params = MediaParams {
            socket,
            remote: peer_addr,
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            jitter_frames: 3,
            record: Some(record.clone()),
            media_timeout: Duration::from_secs(5),
            sit: None,
            // RTCP on the RTP port: its first report (due 1.25-3.75 s in)
            // falls in the window and must not allocate either.
            options: MediaOptions {
                remote_rtcp: Some(peer_addr),
                rtcp_mux: true,
                cn_payload_type: None,
                srtp: None,
            },
        };
        let session = media_session::run(params, cmd_rx, events_tx, stop.clone());
        let measure = async {
            // Warm-up: queues, buffers and the recorder reach their size.
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let (a, f0, p0) = (
                allocs(),
                frames.load(Ordering::Relaxed),
                peer_got.load(Ordering::Relaxed),
            );
            tokio::time::sleep(Duration::from_millis(3000)).await;
            let (b, f1, p1) = (
                allocs(),
                frames.load(Ordering::Relaxed),
                peer_got.load(Ordering::Relaxed),
            );
            stop.cancel();
            drop(cmd_tx);
            (b - a, f1 - f0, p1 - p0)
        };
        let (summary, (steady, f, p)) = tokio::join!(session, measure);
        (summary, steady, f, p)
    });
    stop_peer.store(true, Ordering::Relaxed);
    peer_thread.join().unwrap();
    driver.join().unwrap();

    assert_eq!(summary.end, MediaEnd::Stopped);
    // The window really was steady state with traffic both ways (a loaded
    // machine may lose some ticks; 3 s is 150).
    assert!(
        frames_in_window >= 100,
        "frames handed on: {frames_in_window}"
    );
    assert!(
        peer_in_window >= 100,
        "packets the peer got: {peer_in_window}"
    );
    assert!(summary.recording.is_some(), "{:?}", summary.recording_error);
    let rtcp = summary.rtcp.expect("RTCP ran");
    assert!(rtcp.sent_reports >= 2, "a report and the BYE: {rtcp:?}");
    assert_eq!(
        steady, 0,
        "allocations on the media thread over 3 s of steady state \
         ({frames_in_window} frames handed on, {peer_in_window} packets sent)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
