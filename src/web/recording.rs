//! Serving a call's recording: where the stored path may point (inside the
//! data directory or a configured recordings directory, after every `..`
//! and symlink is resolved), and HTTP range requests so a player can seek.
//! Owns path checks and byte ranges; never builds a path from request
//! input (the route takes an attempt id; the path comes from the store).

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::error::WebError;

/// Where a stored recording path really is, if it is inside one of the
/// allowed roots (canonical paths). A relative path is taken relative to
/// the working directory (as the campaign wrote it), else relative to the
/// data directory with leading components dropped (a campaign run from
/// another directory). Symlinks are resolved before the check, so a link
/// that leads out of the roots is refused.
pub fn locate(stored: &str, data_dir: &Path, roots: &[PathBuf]) -> Option<PathBuf> {
    let p = Path::new(stored);
    let mut candidates = vec![p.to_path_buf()];
    if p.is_relative() {
        let parts: Vec<Component> = p.components().collect();
        for skip in 0..parts.len() {
            let tail: PathBuf = parts[skip..].iter().collect();
            candidates.push(data_dir.join(tail));
        }
    }
    for c in candidates {
        let Ok(real) = c.canonicalize() else { continue };
        if roots.iter().any(|r| real.starts_with(r)) && real.is_file() {
            return Some(real);
        }
    }
    None
}

/// One byte range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

/// What a `Range` header asks of a file of `len` bytes: `Ok(None)` for the
/// whole file (no header, a unit other than bytes, several ranges, or a
/// header we cannot read: RFC 9110 lets a server ignore it), `Err` when
/// the one range asked for lies outside the file (416).
pub fn parse_range(value: Option<&str>, len: u64) -> Result<Option<ByteRange>, WebError> {
    let Some(v) = value else { return Ok(None) };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let range = match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => {
            let Some(n) = num(b) else { return Ok(None) };
            if n == 0 || len == 0 {
                return Err(WebError::RangeNotSatisfiable { len });
            }
            ByteRange {
                start: len.saturating_sub(n),
                end: len - 1,
            }
        }
        // bytes=N-: from N to the end.
        (false, true) => {
            let Some(s) = num(a) else { return Ok(None) };
            if s >= len {
                return Err(WebError::RangeNotSatisfiable { len });
            }
            ByteRange {
                start: s,
                end: len - 1,
            }
        }
        (false, false) => {
            let (Some(s), Some(e)) = (num(a), num(b)) else {
                return Ok(None);
            };
            if e < s {
                return Ok(None);
            }
            if s >= len {
                return Err(WebError::RangeNotSatisfiable { len });
            }
            ByteRange {
                start: s,
                end: e.min(len - 1),
            }
        }
        (true, true) => return Ok(None),
    };
    Ok(Some(range))
}

/// Streams a file, or the range the request asks for, as `audio/wav`.
pub async fn serve_file(path: &Path, req_headers: &HeaderMap) -> Result<Response, WebError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| WebError::Internal(format!("opening a recording: {e}")))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| WebError::Internal(format!("reading a recording's size: {e}")))?;
    let len = meta.len();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let etag = format!("\"{len:x}-{mtime:x}\"");
    // If-Range with another validator: the file changed, send it whole.
    let if_range_ok = req_headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == etag);
    let range_header = req_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_ok);
    let range = parse_range(range_header, len)?;
    let (status, start, count) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1),
        None => (StatusCode::OK, 0, len),
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| WebError::Internal(format!("seeking in a recording: {e}")))?;
    }
    let stream = tokio_util::io::ReaderStream::new(file.take(count));
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(r) = range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, len: u64) -> Result<Option<(u64, u64)>, u16> {
        parse_range(Some(v), len)
            .map(|o| o.map(|r| (r.start, r.end)))
            .map_err(|e| e.status().as_u16())
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(r("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(r("bytes=100-", 1000), Ok(Some((100, 999))));
        assert_eq!(r("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(r("bytes=-5000", 1000), Ok(Some((0, 999))));
        assert_eq!(r("bytes=990-5000", 1000), Ok(Some((990, 999))));
        assert_eq!(r("bytes=1000-", 1000), Err(416));
        assert_eq!(r("bytes=2000-3000", 1000), Err(416));
        assert_eq!(r("bytes=-0", 1000), Err(416));
        // Ignored (whole file): other units, several ranges, nonsense.
        assert_eq!(r("items=0-1", 1000), Ok(None));
        assert_eq!(r("bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(r("bytes=5-1", 1000), Ok(None));
        assert_eq!(r("bytes=a-b", 1000), Ok(None));
        assert_eq!(r("bytes=-", 1000), Ok(None));
        assert_eq!(parse_range(None, 10).unwrap(), None);
    }

    #[test]
    fn only_files_inside_the_roots_are_found() {
        let base = std::env::temp_dir().join(format!("duecall-web-locate-{}", std::process::id()));
        let data = base.join("data");
        let outside = base.join("outside");
        std::fs::create_dir_all(data.join("recordings")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(data.join("recordings/a.wav"), b"RIFF").unwrap();
        std::fs::write(outside.join("secret.wav"), b"RIFF").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.wav"), data.join("recordings/link.wav"))
            .unwrap();
        let roots = vec![data.canonicalize().unwrap()];
        let inside = data.join("recordings/a.wav");
        assert!(locate(inside.to_str().unwrap(), &data, &roots).is_some());
        // Stored relative to another working directory.
        assert!(locate("elsewhere/data/recordings/a.wav", &data, &roots).is_some());
        let up = data.join("recordings/../../outside/secret.wav");
        assert_eq!(locate(up.to_str().unwrap(), &data, &roots), None);
        let link = data.join("recordings/link.wav");
        assert_eq!(locate(link.to_str().unwrap(), &data, &roots), None);
        assert_eq!(locate("../outside/secret.wav", &data, &roots), None);
        assert_eq!(locate("/etc/passwd", &data, &roots), None);
        let _ = std::fs::remove_dir_all(&base);
    }
}
