//! The call recording: a two-channel 8 kHz 16-bit WAV (left: what duecall
//! sent, right: what it heard), written frame by frame as the call runs.
//!
//! Owns: keeping both channels aligned in time (one 20 ms tick per call),
//! checkpointing the WAV header about once a second so a recording survives
//! kill -9, and repairing the header of a recording whose writer died.
//! Never: holds the whole call in memory, reads a clock, or decides where
//! recordings live (the caller passes the path).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(create_err)?;
        }
        let spec = hound::WavSpec {
            channels: CHANNELS,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).map_err(|e| match e {
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
}
