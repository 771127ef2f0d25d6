//! A deliberately small HTTP/1.0 GET client for the tunnel source. It only ever talks to a
//! loopback port the pusher forwarded, with bounded sizes and timeouts, so it needs no more.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::watchdog::RateWatch;

const HEADER_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach the pusher through the tunnel (port {port}): {source}")]
    Connect { port: u16, source: std::io::Error },
    #[error("tunnel I/O error fetching {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("timed out fetching {0} through the tunnel")]
    Timeout(String),
    #[error("malformed HTTP response for {0}")]
    Malformed(String),
    #[error("{path}: HTTP status {status}")]
    Status { path: String, status: u16 },
    #[error("{path} is larger than the limit of {limit} bytes")]
    TooLarge { path: String, limit: u64 },
}

#[derive(Debug, Clone)]
pub struct HttpSource {
    pub port: u16,
    /// URL path prefix without a trailing slash ("" for the root).
    pub base: String,
    pub timeout: Duration,
}

impl HttpSource {
    /// GETs `base/path` within the source's timeout. `Ok(None)` on 404.
    pub async fn get(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, HttpError> {
        let full = format!("{}/{}", self.base, path);
        match tokio::time::timeout(self.timeout, self.get_inner(&full, limit, None)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(full)),
        }
    }

    /// GETs `base/path` with no deadline of its own: every byte read is counted in `watch`,
    /// whose stall check bounds the whole transfer instead (a big object at a fair pace may
    /// take longer than any fixed per-request timeout).
    pub async fn get_watched(
        &self,
        path: &str,
        limit: u64,
        watch: &RateWatch,
    ) -> Result<Option<Vec<u8>>, HttpError> {
        self.get_inner(&format!("{}/{}", self.base, path), limit, Some(watch))
            .await
    }

    async fn get_inner(
        &self,
        path: &str,
        limit: u64,
        watch: Option<&RateWatch>,
    ) -> Result<Option<Vec<u8>>, HttpError> {
        let count = |n: usize| {
            if let Some(watch) = watch {
                watch.add(n);
            }
        };
        let io = |source| HttpError::Io {
            path: path.to_string(),
            source,
        };
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|source| HttpError::Connect {
                port: self.port,
                source,
            })?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nUser-Agent: ostree-gateway\r\n\r\n",
            self.port
        );
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut buf = Vec::with_capacity(8192);
        let header_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if buf.len() > HEADER_LIMIT {
                return Err(HttpError::Malformed(path.into()));
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.map_err(io)?;
            count(n);
            if n == 0 {
                return Err(HttpError::Malformed(path.into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buf[..header_end]).map_err(|_| HttpError::Malformed(path.into()))?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HttpError::Malformed(path.into()))?;
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(HttpError::Status {
                path: path.into(),
                status,
            });
        }
        let length: Option<u64> = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok());
        if length.is_some_and(|n| n > limit) {
            return Err(HttpError::TooLarge {
                path: path.into(),
                limit,
            });
        }
        let mut body = buf.split_off(header_end);
        if let Some(n) = length {
            body.reserve_exact((n as usize).saturating_sub(body.len()));
        }
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if body.len() as u64 > limit {
                return Err(HttpError::TooLarge {
                    path: path.into(),
                    limit,
                });
            }
            let n = stream.read(&mut chunk).await.map_err(io)?;
            count(n);
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        if length.is_some_and(|n| n != body.len() as u64) {
            return Err(HttpError::Malformed(format!("{path} (truncated)")));
        }
        Ok(Some(body))
    }
}
