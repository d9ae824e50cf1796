//! A scripted RTP peer for the hostile-network tests: the callee's media
//! end (sipp does the signalling, its SDP points here with -key peer_port),
//! and a stranger that sprays a call's RTP port. Real UDP on 127.0.0.1.
//!
//! The peer learns duecall's RTP address from duecall's first packet, then
//! sends what its plan says (audio at any ptime, a sequence jump, a flood,
//! a storm of DTMF end packets), and logs everything duecall sends it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duecall::media::g711::{self, Codec};
use duecall::media::rfc4733::DtmfEventPayload;

/// A tone of `hz` for `ms`, amplitude `amp`.
pub fn tone(hz: f64, ms: u64, amp: f64) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| ((i as f64) * 2.0 * std::f64::consts::PI * hz / 8000.0).sin() * amp)
        .map(|v| v as i16)
        .collect()
}

/// Power of `hz` in `pcm` relative to its total power (0..1), by Goertzel.
pub fn tone_share(pcm: &[i16], hz: f64) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut total = 0.0f64;
    for &x in pcm {
        let x = f64::from(x);
        total += x * x;
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if total == 0.0 {
        return 0.0;
    }
    // Goertzel power of a pure tone is (N * A / 2)^2; the signal's energy N * A^2 / 2.
    (2.0 * power / (pcm.len() as f64 * total)).min(1.0)
}

/// RMS of samples.
pub fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    (pcm.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt()
}

/// What the peer does once duecall's first packet arrived.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Packet size in ms (10, 20, 30).
    pub ptime_ms: u64,
    /// Audio sent once from the start; silence packets after it.
    pub audio: Vec<i16>,
    /// At this many ms in, add this much to the sequence number.
    pub seq_jump: Option<(u64, u16)>,
    /// At this many ms in, one stray packet this far ahead in sequence
    /// (the stream itself goes on as before).
    pub stray: Option<(u64, u16)>,
    /// Send PCMA (PT 8) once duecall sends PCMA (a re-INVITE switched it).
    pub follow_our_codec: bool,
    /// Send nothing while duecall sends nothing (a held phone).
    pub quiet_while_we_are: bool,
    /// From `start` ms, for `len` ms, also send `pps` packets a second.
    pub flood: Option<(u64, u64, u64)>,
    /// From `start` ms, `count` DTMF end packets at `pps`, each a new event.
    pub dtmf_end_storm: Option<(u64, u64, u64)>,
    /// Ordinary DTMF digits (RFC 4733, 100 ms each) to send from `start` ms.
    pub digits: Option<(u64, String)>,
    /// How long to keep sending after duecall's first packet.
    pub run_for: Duration,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            ptime_ms: 20,
            audio: Vec::new(),
            seq_jump: None,
            stray: None,
            follow_our_codec: false,
            quiet_while_we_are: false,
            flood: None,
            dtmf_end_storm: None,
            digits: None,
            run_for: Duration::from_secs(5),
        }
    }
}

/// What duecall sent the peer.
#[derive(Debug, Default)]
pub struct PeerLog {
    /// duecall's RTP address.
    pub ours: Option<SocketAddr>,
    /// When the first packet from it came.
    pub first_at: Option<Instant>,
    /// Packets from duecall.
    pub packets: u64,
    /// Of which PCMA (PT 8).
    pub pcma_packets: u64,
    /// When the first PCMA packet came.
    pub first_pcma_at: Option<Instant>,
    /// Everything duecall sent, decoded, as it arrived.
    pub heard: Vec<i16>,
    /// Arrival time of each packet from duecall.
    pub arrivals: Vec<Instant>,
    /// Packets this peer sent.
    pub sent: u64,
}

/// The callee's media end.
pub struct RtpPeer {
    sock: UdpSocket,
    /// The port to put in the SDP.
    pub port: u16,
    log: Arc<Mutex<PeerLog>>,
}

const SSRC: u32 = 0x0DEB_7042;

impl RtpPeer {
    pub fn bind() -> RtpPeer {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind rtp peer");
        let port = sock.local_addr().unwrap().port();
        RtpPeer {
            sock,
            port,
            log: Arc::default(),
        }
    }

    /// Runs the plan on two threads (one listens, one sends).
    pub fn run(self, plan: Plan) -> PeerRun {
        let rx_sock = self.sock.try_clone().unwrap();
        rx_sock
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let log = self.log.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_rx = stop.clone();
        let listener = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop_rx.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = rx_sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(p) = duecall::telephony::rtp::parse(&buf[..n]) else {
                    continue;
                };
                let mut l = log.lock().unwrap();
                let now = Instant::now();
                l.ours.get_or_insert(from);
                l.first_at.get_or_insert(now);
                l.packets += 1;
                l.arrivals.push(now);
                let codec = match p.header.payload_type {
                    0 => Some(Codec::Pcmu),
                    8 => {
                        l.pcma_packets += 1;
                        l.first_pcma_at.get_or_insert(now);
                        Some(Codec::Pcma)
                    }
                    _ => None,
                };
                if let Some(c) = codec {
                    let mut pcm = Vec::new();
                    g711::decode(c, p.payload, &mut pcm);
                    l.heard.extend_from_slice(&pcm);
                }
            }
        });
        let log = self.log.clone();
        let sock = self.sock;
        let handle = std::thread::spawn(move || {
            send_plan(&sock, &log, &plan);
            // Keep listening a little: duecall's last packets.
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            listener.join().unwrap();
            std::mem::take(&mut *log.lock().unwrap())
        });
        PeerRun {
            log: self.log,
            handle,
        }
    }
}

/// A running peer.
pub struct PeerRun {
    log: Arc<Mutex<PeerLog>>,
    handle: std::thread::JoinHandle<PeerLog>,
}

impl PeerRun {
    /// duecall's RTP address, once its first packet came (up to 20 s).
    pub fn ours(&self) -> Option<SocketAddr> {
        wait_for_us(&self.log)
    }

    /// Waits for the plan to end; what duecall sent.
    pub fn join(self) -> PeerLog {
        self.handle.join().expect("rtp peer thread")
    }
}

/// Waits (up to 20 s) for duecall's first packet; returns its address.
fn wait_for_us(log: &Mutex<PeerLog>) -> Option<SocketAddr> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(a) = log.lock().unwrap().ours {
            return Some(a);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn packet(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let h = duecall::telephony::rtp::RtpHeader {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc: SSRC,
    };
    let mut out = Vec::new();
    duecall::telephony::rtp::write(&h, payload, &mut out);
    out
}

fn send_plan(sock: &UdpSocket, log: &Mutex<PeerLog>, plan: &Plan) {
    let Some(ours) = wait_for_us(log) else { return };
    let start = Instant::now();
    let step = Duration::from_millis(plan.ptime_ms);
    let samples = (plan.ptime_ms * 8) as usize;
    let mut seq: u16 = 1000;
    let mut ts: u32 = 50_000;
    let mut pos = 0usize;
    let mut jumped = false;
    let mut strayed = false;
    let mut n: u32 = 0;
    let mut flood_sent = 0u64;
    let mut storm_sent = 0u64;
    let mut digit_plan: Vec<char> = plan
        .digits
        .as_ref()
        .map(|(_, d)| d.chars().rev().collect())
        .unwrap_or_default();
    let mut sent = 0u64;
    let mut payload = Vec::with_capacity(samples);
    while start.elapsed() < plan.run_for {
        let at_ms = start.elapsed().as_millis() as u64;
        if let Some((jump_at, by)) = plan.seq_jump {
            if !jumped && at_ms >= jump_at {
                jumped = true;
                seq = seq.wrapping_add(by);
            }
        }
        if let Some((stray_at, ahead)) = plan.stray {
            if !strayed && at_ms >= stray_at {
                strayed = true;
                let p = packet(0, seq.wrapping_add(ahead), ts, false, &[0x55; 160]);
                let _ = sock.send_to(&p, ours);
            }
        }
        let (quiet, codec) = {
            let l = log.lock().unwrap();
            let last = l.arrivals.last().copied();
            let quiet = plan.quiet_while_we_are
                && last.is_some_and(|t| t.elapsed() > Duration::from_millis(200));
            let codec = if plan.follow_our_codec && l.pcma_packets > 0 {
                Codec::Pcma
            } else {
                Codec::Pcmu
            };
            (quiet, codec)
        };
        // Ordinary digits: 5 packets of 20 ms, then 3 end packets.
        if let Some((from, _)) = &plan.digits {
            if at_ms >= *from {
                if let Some(d) = digit_plan.pop() {
                    let event = duecall::media::rfc4733::event_for_digit(d).unwrap();
                    for i in 1..=8u16 {
                        let end = i > 5;
                        let p = DtmfEventPayload {
                            event,
                            end,
                            volume: 10,
                            duration: i.min(5) * 160,
                        };
                        let _ = sock.send_to(&packet(101, seq, ts, i == 1, &p.to_bytes()), ours);
                        seq = seq.wrapping_add(1);
                        sent += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    ts = ts.wrapping_add(8 * 160);
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        if !quiet {
            payload.clear();
            let mut pcm = vec![0i16; samples];
            if pos < plan.audio.len() {
                let m = (plan.audio.len() - pos).min(samples);
                pcm[..m].copy_from_slice(&plan.audio[pos..pos + m]);
                pos += m;
            }
            g711::encode(codec, &pcm, &mut payload);
            let _ = sock.send_to(
                &packet(codec.payload_type(), seq, ts, n == 0, &payload),
                ours,
            );
            seq = seq.wrapping_add(1);
            sent += 1;
        }
        ts = ts.wrapping_add(samples as u32);
        // A flood from the peer's own address: valid packets of its stream.
        if let Some((from, len, pps)) = plan.flood {
            if at_ms >= from && at_ms < from + len {
                let due = (at_ms - from + plan.ptime_ms) * pps / 1000;
                let loud = vec![0x80u8; 160];
                while flood_sent < due {
                    let _ = sock.send_to(&packet(0, seq, ts, false, &loud), ours);
                    seq = seq.wrapping_add(1);
                    flood_sent += 1;
                    sent += 1;
                    if flood_sent.is_multiple_of(64) {
                        // Spread the batch over the step.
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
        }
        if let Some((from, count, pps)) = plan.dtmf_end_storm {
            if at_ms >= from {
                let due = ((at_ms - from + plan.ptime_ms) * pps / 1000).min(count);
                while storm_sent < due {
                    let p = DtmfEventPayload {
                        event: (storm_sent % 10) as u8,
                        end: true,
                        volume: 10,
                        duration: 160,
                    };
                    let ev_ts = ts.wrapping_add((storm_sent as u32).wrapping_mul(320));
                    let _ = sock.send_to(&packet(101, seq, ev_ts, true, &p.to_bytes()), ours);
                    seq = seq.wrapping_add(1);
                    storm_sent += 1;
                    sent += 1;
                }
            }
        }
        n += 1;
        let next = start + step * n;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    log.lock().unwrap().sent = sent;
}

/// A stranger on another port of the same host: sprays PCMU (a loud 1 kHz
/// tone) and telephone-event packets at `to` for `dur`, at 100 packets a
/// second; returns how many packets it got back.
pub fn spray(to: SocketAddr, dur: Duration) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        let loud = tone(1000.0, 20, 20000.0);
        let mut payload = Vec::new();
        g711::encode(Codec::Pcmu, &loud, &mut payload);
        let start = Instant::now();
        let mut got = 0u64;
        let mut buf = [0u8; 2048];
        let mut i: u32 = 0;
        while start.elapsed() < dur {
            // Its own stream, consecutive, so it looks like a real one.
            let seq = 7000u16.wrapping_add(i as u16);
            let _ = sock.send_to(&packet(0, seq, i * 160, i == 0, &payload), to);
            let ev = DtmfEventPayload {
                event: (i % 10) as u8,
                end: i % 2 == 1,
                volume: 10,
                duration: 320,
            };
            let _ = sock.send_to(
                &packet(101, seq.wrapping_add(1), i * 160, true, &ev.to_bytes()),
                to,
            );
            while sock.recv_from(&mut buf).is_ok() {
                got += 1;
            }
            i += 2;
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        while sock.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        got
    })
}
