//! The call recording: a two-channel 8 kHz 16-bit WAV (left: what duecall
//! sent, right: what it heard), written frame by frame as the call runs.
//!
//! Owns: keeping both channels aligned in time (one 20 ms tick per call),
//! checkpointing the WAV header about once a second so a recording survives
//! kill -9, repairing the header of a recording whose writer died, writing
//! on a thread of its own ([`RecordingWriter`]) so a slow or stalled disk
//! never delays a call's 20 ms loop, and keeping recordings private: files
//! are created 0600 and the directories it creates 0700.
//! Never: holds the whole call in memory, reads a clock, blocks its caller
//! on the disk, or decides where recordings live (the caller passes the path).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use super::g711::{FRAME_SAMPLES, SAMPLE_RATE};

/// Frames between header checkpoints: 50 x 20 ms = 1 s of audio at most is
/// unaccounted for in the header after a crash (and `repair` recovers it).
pub const FLUSH_EVERY_FRAMES: u64 = 50;

const CHANNELS: u16 = 2;
/// Bytes per stereo sample frame (2 channels x 16 bits).
const BLOCK_ALIGN: u64 = 4;
/// Header bytes we read at most while looking for the data chunk.
const MAX_HEADER_SCAN: u64 = 4096;

/// What went wrong with a recording.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// The file or its directory could not be created.
    #[error("cannot create recording {path}: {source}")]
    Create {
        /// The recording's path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Writing samples or the header failed (disk full, I/O error).
    #[error("cannot write recording {path}: {source}")]
    Write {
        /// The recording's path.
        path: PathBuf,
        /// The underlying error.
        source: hound::Error,
    },
    /// Reading or fixing an existing recording failed.
    #[error("cannot repair recording {path}: {source}")]
    Io {
        /// The recording's path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not a WAV we can repair (no RIFF/WAVE header, no fmt or
    /// data chunk, or not 2-channel 16-bit).
    #[error("cannot repair recording {path}: {reason}")]
    NotRecording {
        /// The recording's path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The writer thread did not close the file in time (a stalled disk or
    /// network mount); it goes on in the background and the header is
    /// repaired by the next start-up's recovery if it never finishes.
    #[error("recording {path} still not written after {waited_ms} ms (disk stalled?)")]
    Stalled {
        /// The recording's path.
        path: PathBuf,
        /// How long the call waited for it.
        waited_ms: u64,
    },
    /// The writer thread could not start or died without a result.
    #[error("recording {path}: writer thread failed ({reason})")]
    Writer {
        /// The recording's path.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
}

/// Creates `dir` and its missing parents, owner-only (0700). Directories
/// that already exist keep their mode.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates (or truncates) `path` for writing, readable by its owner only
/// (0600, also when it existed with a wider mode), creating its directory
/// 0700 if missing.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// A finished (or repaired) recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordingInfo {
    /// Where it is.
    pub path: PathBuf,
    /// 20 ms frames it holds (a trailing partial frame counts as one).
    pub frames: u64,
    /// Its length in milliseconds.
    pub duration_ms: u64,
}

impl RecordingInfo {
    fn from_sample_frames(path: PathBuf, sample_frames: u64) -> Self {
        RecordingInfo {
            path,
            frames: sample_frames.div_ceil(FRAME_SAMPLES as u64),
            duration_ms: sample_frames * 1000 / u64::from(SAMPLE_RATE),
        }
    }
}

/// Writes a stereo recording as the call runs.
pub struct StereoRecorder {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    frames: u64,
    /// Samples per channel written.
    sample_frames: u64,
}

impl std::fmt::Debug for StereoRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StereoRecorder")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl StereoRecorder {
    /// Creates the file (and its parent directories) and writes a valid,
    /// empty WAV header to disk at once.
    pub fn create(path: &Path) -> Result<Self, RecorderError> {
        let create_err = |source| RecorderError::Create {
            path: path.to_path_buf(),
            source,
        };
        let file = create_private_file(path).map_err(create_err)?;
        let spec = hound::WavSpec {
            channels: CHANNELS,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer =
            hound::WavWriter::new(BufWriter::new(file), spec).map_err(|e| match e {
                hound::Error::IoError(source) => create_err(source),
                other => RecorderError::Write {
                    path: path.to_path_buf(),
                    source: other,
                },
            })?;
        // A crash before the first checkpoint still leaves a repairable file.
        writer.flush().map_err(|source| RecorderError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(StereoRecorder {
            path: path.to_path_buf(),
            writer,
            frames: 0,
            sample_frames: 0,
        })
    }

    /// Writes one tick: `sent` on the left, `heard` on the right. Both are
    /// normally 160 samples; the shorter one (or both, if under 160) is
    /// padded with zeros so the channels stay aligned in time.
    pub fn write_frame(&mut self, sent: &[i16], heard: &[i16]) -> Result<(), RecorderError> {
        let n = sent.len().max(heard.len()).max(FRAME_SAMPLES);
        let result = (|| {
            for i in 0..n {
                self.writer
                    .write_sample(sent.get(i).copied().unwrap_or(0))?;
                self.writer
                    .write_sample(heard.get(i).copied().unwrap_or(0))?;
            }
            self.frames += 1;
            self.sample_frames += n as u64;
            if self.frames.is_multiple_of(FLUSH_EVERY_FRAMES) {
                self.writer.flush()?;
            }
            Ok(())
        })();
        result.map_err(|source| RecorderError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Ticks written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Where the recording is being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the final header and closes the file.
    pub fn finish(self) -> Result<RecordingInfo, RecorderError> {
        let StereoRecorder {
            path,
            writer,
            sample_frames,
            ..
        } = self;
        writer.finalize().map_err(|source| RecorderError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(RecordingInfo::from_sample_frames(path, sample_frames))
    }
}

/// Frames a [`RecordingWriter`] queues before it drops (2 s of audio):
/// enough to ride out a slow write, small enough to bound memory per call.
pub const WRITER_QUEUE_FRAMES: usize = 100;

/// One tick on its way to the writer thread.
struct QueuedFrame {
    /// Ticks dropped just before this one (queue full): written as silence.
    gap_before: u32,
    sent: [i16; FRAME_SAMPLES],
    heard: [i16; FRAME_SAMPLES],
}

/// A call's recording written on a thread of its own: the 20 ms loop hands
/// each tick over without ever touching the disk or blocking. When the disk
/// is slower than the call (the queue of [`WRITER_QUEUE_FRAMES`] is full)
/// a tick is dropped and the writer puts silence in its place, so the two
/// channels stay aligned with the call's time; the drops are counted.
pub struct RecordingWriter {
    path: PathBuf,
    tx: Option<SyncSender<QueuedFrame>>,
    done: tokio::sync::oneshot::Receiver<Result<RecordingInfo, RecorderError>>,
    gap: u32,
    dropped: u64,
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("path", &self.path)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl RecordingWriter {
    /// Starts the writer thread; the file is created there (an open that
    /// hangs on a dead mount hangs that thread, not the call).
    pub fn spawn(path: PathBuf) -> Result<Self, RecorderError> {
        let (tx, rx) = mpsc::sync_channel::<QueuedFrame>(WRITER_QUEUE_FRAMES);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("duecall-rec".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let result = (|| {
                    let mut rec = StereoRecorder::create(&thread_path)?;
                    let silence = [0i16; FRAME_SAMPLES];
                    while let Ok(f) = rx.recv() {
                        for _ in 0..f.gap_before {
                            rec.write_frame(&silence, &silence)?;
                        }
                        rec.write_frame(&f.sent, &f.heard)?;
                    }
                    rec.finish()
                })();
                let _ = done_tx.send(result);
            })
            .map_err(|e| RecorderError::Writer {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(RecordingWriter {
            path,
            tx: Some(tx),
            done,
            gap: 0,
            dropped: 0,
        })
    }

    /// Where the recording goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ticks dropped because the disk was behind (written as silence).
    pub fn frames_dropped(&self) -> u64 {
        self.dropped
    }

    /// Hands one tick over (`sent` on the left, `heard` on the right).
    /// Never blocks. Returns false once the writer has stopped (an error
    /// that [`RecordingWriter::finish`] reports).
    pub fn write_frame(
        &mut self,
        sent: &[i16; FRAME_SAMPLES],
        heard: &[i16; FRAME_SAMPLES],
    ) -> bool {
        let Some(tx) = &self.tx else { return false };
        let frame = QueuedFrame {
            gap_before: self.gap,
            sent: *sent,
            heard: *heard,
        };
        match tx.try_send(frame) {
            Ok(()) => {
                self.gap = 0;
                true
            }
            Err(TrySendError::Full(_)) => {
                self.gap = self.gap.saturating_add(1);
                self.dropped += 1;
                true
            }
            Err(TrySendError::Disconnected(_)) => {
                self.tx = None;
                false
            }
        }
    }

    /// Closes the recording and waits up to `wait` for the writer to put
    /// the final header in place.
    pub async fn finish(mut self, wait: Duration) -> Result<RecordingInfo, RecorderError> {
        if let Some(tx) = self.tx.take() {
            if self.gap > 0 {
                // The ticks dropped at the very end still count as time.
                let _ = tx.try_send(QueuedFrame {
                    gap_before: self.gap - 1,
                    sent: [0; FRAME_SAMPLES],
                    heard: [0; FRAME_SAMPLES],
                });
            }
        }
        match tokio::time::timeout(wait, &mut self.done).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RecorderError::Writer {
                path: self.path.clone(),
                reason: "it ended without a result".into(),
            }),
            Err(_) => Err(RecorderError::Stalled {
                path: self.path.clone(),
                waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }
}

/// Fixes the RIFF and data chunk sizes of a recording whose writer died
/// (kill -9, power loss), from the file's length. A trailing partial sample
/// frame is cut off. Safe to run on a good recording (it is left as is).
pub fn repair(path: &Path) -> Result<RecordingInfo, RecorderError> {
    let io_err = |source| RecorderError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad = |reason: &str| RecorderError::NotRecording {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };

    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut head = Vec::new();
    (&mut file)
        .take(MAX_HEADER_SCAN)
        .read_to_end(&mut head)
        .map_err(io_err)?;

    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(bad("no RIFF/WAVE header"));
    }
    let le32 = |at: usize| -> Option<u32> {
        head.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let le16 = |at: usize| -> Option<u16> {
        head.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };

    // Walk the chunks up to "data"; its size field is the one to trust least.
    let mut pos = 12usize;
    let mut fmt_ok = false;
    let data_size_at = loop {
        let (Some(id), Some(size)) = (head.get(pos..pos + 4), le32(pos + 4)) else {
            return Err(bad("no data chunk in the header"));
        };
        if id == b"data" {
            break pos + 4;
        }
        if id == b"fmt " {
            let channels = le16(pos + 10);
            let bits = le16(pos + 22);
            if channels != Some(CHANNELS) || bits != Some(16) {
                return Err(bad("not a 2-channel 16-bit WAV"));
            }
            fmt_ok = true;
        }
        // Chunks are padded to an even size.
        let next = usize::try_from(size)
            .ok()
            .and_then(|s| pos.checked_add(8 + s + (s & 1)));
        pos = match next {
            Some(p) => p,
            None => return Err(bad("chunk size overflows")),
        };
    };
    if !fmt_ok {
        return Err(bad("no fmt chunk before the data chunk"));
    }
    let data_start = data_size_at as u64 + 4;
    if file_len < data_start {
        return Err(bad("file ends inside the header"));
    }
    let data_len = (file_len - data_start) / BLOCK_ALIGN * BLOCK_ALIGN;
    let riff_len = data_start + data_len - 8;
    let (Ok(data_len32), Ok(riff_len32)) = (u32::try_from(data_len), u32::try_from(riff_len))
    else {
        return Err(bad("longer than a WAV file can describe (4 GiB)"));
    };
    if data_start + data_len != file_len {
        file.set_len(data_start + data_len).map_err(io_err)?;
    }
    file.seek(SeekFrom::Start(4)).map_err(io_err)?;
    file.write_all(&riff_len32.to_le_bytes()).map_err(io_err)?;
    file.seek(SeekFrom::Start(data_size_at as u64))
        .map_err(io_err)?;
    file.write_all(&data_len32.to_le_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    Ok(RecordingInfo::from_sample_frames(
        path.to_path_buf(),
        data_len / BLOCK_ALIGN,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("duecall-recorder-{}-{}", name, std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn left(frame: u64, i: usize) -> i16 {
        (frame as i16).wrapping_mul(100).wrapping_add(i as i16)
    }

    fn right(frame: u64, i: usize) -> i16 {
        -left(frame, i) - 1
    }

    fn write_frames(rec: &mut StereoRecorder, from: u64, to: u64) {
        for f in from..to {
            let sent: Vec<i16> = (0..FRAME_SAMPLES).map(|i| left(f, i)).collect();
            let heard: Vec<i16> = (0..FRAME_SAMPLES).map(|i| right(f, i)).collect();
            rec.write_frame(&sent, &heard).unwrap();
        }
    }

    fn read_back(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        let samples = r.samples::<i16>().collect::<Result<Vec<_>, _>>().unwrap();
        (spec, samples)
    }

    #[test]
    fn one_and_a_half_seconds_read_back_as_two_aligned_channels() {
        let dir = temp_dir("readback");
        let path = dir.join("nested/call.wav");
        let mut rec = StereoRecorder::create(&path).unwrap();
        write_frames(&mut rec, 0, 75);
        assert_eq!(rec.frames(), 75);
        let info = rec.finish().unwrap();
        assert_eq!(
            info,
            RecordingInfo {
                path: path.clone(),
                frames: 75,
                duration_ms: 1500
            }
        );

        let (spec, samples) = read_back(&path);
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(samples.len(), 75 * 160 * 2);
        for f in [0u64, 37, 74] {
            for i in [0usize, 80, 159] {
                let at = ((f as usize) * 160 + i) * 2;
                assert_eq!(samples[at], left(f, i), "left, frame {f} sample {i}");
                assert_eq!(samples[at + 1], right(f, i), "right, frame {f} sample {i}");
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn short_or_missing_side_is_padded_with_silence() {
        let dir = temp_dir("pad");
        let path = dir.join("pad.wav");
        let mut rec = StereoRecorder::create(&path).unwrap();
        rec.write_frame(&[7; 160], &[]).unwrap();
        rec.write_frame(&[5; 100], &[9; 160]).unwrap();
        rec.finish().unwrap();
        let (_, s) = read_back(&path);
        assert_eq!(s.len(), 2 * 160 * 2);
        let (l, r): (Vec<i16>, Vec<i16>) = s.chunks(2).map(|c| (c[0], c[1])).unzip();
        assert!(l[..160].iter().all(|&x| x == 7));
        assert!(r[..160].iter().all(|&x| x == 0));
        assert!(l[160..260].iter().all(|&x| x == 5));
        assert!(l[260..].iter().all(|&x| x == 0));
        assert!(r[160..].iter().all(|&x| x == 9));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn header_is_valid_on_disk_after_each_checkpoint() {
        let dir = temp_dir("checkpoint");
        let path = dir.join("live.wav");
        let mut rec = StereoRecorder::create(&path).unwrap();
        assert_eq!(read_back(&path).1.len(), 0);
        write_frames(&mut rec, 0, 60);
        // Read while the writer is still open: at least the first second.
        let (_, s) = read_back(&path);
        assert_eq!(s.len(), 50 * 160 * 2);
        rec.finish().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recording_whose_writer_died_is_repaired_and_readable() {
        let dir = temp_dir("died");
        let path = dir.join("died.wav");
        let mut rec = StereoRecorder::create(&path).unwrap();
        write_frames(&mut rec, 0, 130);
        // kill -9: nothing after this point runs (no finish, no Drop).
        std::mem::forget(rec);
        let on_disk = fs::metadata(&path).unwrap().len();
        let info = repair(&path).unwrap();
        let (spec, s) = read_back(&path);
        assert_eq!(spec.channels, 2);
        // All that reached the disk is readable, at least two checkpoints.
        assert_eq!(s.len() as u64, (on_disk - 44) / 4 * 2);
        assert!(info.frames >= 100, "{info:?}");
        assert_eq!(s.len() as u64 / 2, info.duration_ms * 8);
        assert_eq!(s[2 * (99 * 160 + 3)], left(99, 3));
        assert_eq!(s[2 * (99 * 160 + 3) + 1], right(99, 3));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_file_with_stale_sizes_is_cut_to_whole_samples() {
        let dir = temp_dir("trunc");
        let path = dir.join("t.wav");
        let mut rec = StereoRecorder::create(&path).unwrap();
        write_frames(&mut rec, 0, 10);
        rec.finish().unwrap();
        // Sizes as right after create (0), then a torn final sample.
        let mut bytes = fs::read(&path).unwrap();
        bytes[4..8].copy_from_slice(&36u32.to_le_bytes());
        bytes[40..44].copy_from_slice(&0u32.to_le_bytes());
        bytes.truncate(44 + 7 * 160 * 4 + 3);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read_back(&path).1.len(), 0);

        let info = repair(&path).unwrap();
        assert_eq!(info.frames, 7);
        assert_eq!(info.duration_ms, 140);
        let (_, s) = read_back(&path);
        assert_eq!(s.len(), 7 * 160 * 2);
        assert_eq!(s[s.len() - 2], left(6, 159));
        // Repairing a good file changes nothing.
        assert_eq!(repair(&path).unwrap(), info);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn repair_refuses_what_is_not_a_recording() {
        let dir = temp_dir("refuse");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.wav");
        for bytes in [
            &b""[..],
            b"RIFF\0\0\0\0WAVE",
            b"RIFF\0\0\0\0WAVEfmt \xff\xff\xff\xff",
            b"hello world, not a wav",
        ] {
            fs::write(&path, bytes).unwrap();
            assert!(
                matches!(repair(&path), Err(RecorderError::NotRecording { .. })),
                "{bytes:?}"
            );
        }
        assert!(matches!(
            repair(&dir.join("missing.wav")),
            Err(RecorderError::Io { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recordings_and_the_directories_made_for_them_are_private() {
        let dir = temp_dir("private");
        let path = dir.join("calls/2026/rec.wav");
        let rec = StereoRecorder::create(&path).unwrap();
        rec.finish().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("calls/2026")), 0o700);
        assert_eq!(mode(&dir.join("calls")), 0o700);
        // An existing world-readable file is made private when rewritten.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        StereoRecorder::create(&path).unwrap().finish().unwrap();
        assert_eq!(mode(&path), 0o600);
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_writer_thread_writes_every_frame_in_order() {
        let dir = temp_dir("writer");
        let path = dir.join("call.wav");
        let mut w = RecordingWriter::spawn(path.clone()).unwrap();
        for f in 0..60u64 {
            let sent: [i16; FRAME_SAMPLES] = std::array::from_fn(|i| left(f, i));
            let heard: [i16; FRAME_SAMPLES] = std::array::from_fn(|i| right(f, i));
            assert!(w.write_frame(&sent, &heard));
            if f % 20 == 19 {
                // Let the writer keep up: nothing is dropped at this pace.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(w.frames_dropped(), 0);
        let info = w.finish(Duration::from_secs(10)).await.unwrap();
        assert_eq!(info.frames, 60);
        let (_, samples) = read_back(&path);
        assert_eq!(samples.len(), 60 * FRAME_SAMPLES * 2);
        assert_eq!(samples[2 * (59 * FRAME_SAMPLES + 3)], left(59, 3));
        assert_eq!(samples[2 * (59 * FRAME_SAMPLES + 3) + 1], right(59, 3));
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_stalled_disk_never_blocks_the_caller_and_finish_gives_up_in_time() {
        // A FIFO nobody reads: opening it for writing hangs, as a write to a
        // dead network mount would. The caller must not notice.
        let dir = temp_dir("stalled");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stuck.wav");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let mut w = RecordingWriter::spawn(path.clone()).unwrap();
        let silence = [0i16; FRAME_SAMPLES];
        for _ in 0..(WRITER_QUEUE_FRAMES + 400) {
            assert!(w.write_frame(&silence, &silence));
        }
        assert_eq!(
            w.frames_dropped(),
            400,
            "what did not fit was dropped, not waited for"
        );
        let r = w.finish(Duration::from_millis(200)).await;
        assert!(matches!(r, Err(RecorderError::Stalled { .. })), "{r:?}");
        // Release the writer thread (it then fails on the FIFO and ends).
        let _reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}
