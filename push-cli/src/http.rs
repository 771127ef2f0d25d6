//! A read-only HTTP/1.1 file server for the local repository (what the gateway pulls from in
//! the tunnel flow). GET and HEAD only, under a random path prefix, only regular files of the
//! repository's public parts (config, summary, objects, refs, deltas), never a directory
//! listing, never a path that leaves the repository (`..`, symlinks: canonicalized and
//! checked). Everything else is 404.
//!
//! It serves connections handed to it (the SSH forwarded channels) rather than listening on a
//! local port, so no other local process can reach it.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// Top-level entries of a repo that a puller may read.
const PUBLIC_ENTRIES: &[&str] = &[
    "config",
    "summary",
    "summary.sig",
    "objects",
    "refs",
    "deltas",
    "delta-indexes",
];

const CHUNK: usize = 64 * 1024;

type ResponseBody = BoxBody<Bytes, io::Error>;

#[derive(Clone)]
pub struct RepoServer {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// `/<32 hex>/`
    prefix: String,
    /// A summary made in memory for the refs being pushed (see `with_summary`).
    summary: Option<Bytes>,
}

impl RepoServer {
    /// Serves `root` (canonicalized) under a fresh random prefix.
    pub fn new(root: &Path) -> io::Result<RepoServer> {
        let root = std::fs::canonicalize(root)?;
        let secret: [u8; 16] = rand::random();
        Ok(RepoServer {
            inner: Arc::new(Inner {
                root,
                prefix: format!("/{}/", hex::encode(secret)),
                summary: None,
            }),
        })
    }

    /// Serves `summary` instead of the repo's own summary file (and no `summary.sig`): a
    /// classic receiver lists refs from it, and we never write into the local repo.
    pub fn with_summary(self, summary: Vec<u8>) -> RepoServer {
        let inner = Inner {
            root: self.inner.root.clone(),
            prefix: self.inner.prefix.clone(),
            summary: Some(Bytes::from(summary)),
        };
        RepoServer {
            inner: Arc::new(inner),
        }
    }

    /// The URL path prefix, with leading and trailing slashes.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Serves HTTP/1.1 (keep-alive) on one connection until the peer closes it.
    pub async fn serve_connection<IO>(&self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let inner = self.inner.clone();
        let service = hyper::service::service_fn(move |req| {
            let inner = inner.clone();
            async move { Ok::<_, std::convert::Infallible>(inner.respond(req).await) }
        });
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service)
            .await
        {
            tracing::debug!(error = %e, "HTTP connection ended with an error");
        }
    }
}

impl Inner {
    async fn respond(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut r = status(StatusCode::METHOD_NOT_ALLOWED);
                r.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                return r;
            }
        };
        let path = req.uri().path();
        if let (Some(summary), Some(rest)) = (&self.summary, path.strip_prefix(self.prefix.as_str())) {
            match rest {
                "summary" => {
                    let len = summary.len() as u64;
                    let body = if head {
                        Empty::new().map_err(|never| match never {}).boxed()
                    } else {
                        Full::new(summary.clone()).map_err(|never| match never {}).boxed()
                    };
                    let mut r = Response::new(body);
                    r.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(len));
                    return r;
                }
                "summary.sig" => return status(StatusCode::NOT_FOUND),
                _ => {}
            }
        }
        let Some(file) = self.resolve(path).await else {
            tracing::debug!(%path, "404");
            return status(StatusCode::NOT_FOUND);
        };
        match self.open(&file).await {
            Ok((f, len)) => {
                tracing::trace!(%path, len, "200");
                let body = if head {
                    Empty::new().map_err(|never| match never {}).boxed()
                } else {
                    FileBody::new(f, len).boxed()
                };
                let mut r = Response::new(body);
                r.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(len));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                r
            }
            Err(e) => {
                tracing::debug!(%path, error = %e, "404 (cannot open)");
                status(StatusCode::NOT_FOUND)
            }
        }
    }

    /// The file a request path names, if it may be served.
    async fn resolve(&self, path: &str) -> Option<PathBuf> {
        let relative = relative_path(path, &self.prefix)?;
        let joined = self.root.join(&relative);
        let canonical = tokio::fs::canonicalize(&joined).await.ok()?;
        let inside = canonical.strip_prefix(&self.root).ok()?;
        // After resolving symlinks it must still be a public part of the repo.
        let first = inside.components().next()?;
        if !PUBLIC_ENTRIES.iter().any(|e| first.as_os_str() == *e) {
            return None;
        }
        let meta = tokio::fs::metadata(&canonical).await.ok()?;
        meta.is_file().then_some(canonical)
    }

    async fn open(&self, file: &Path) -> io::Result<(tokio::fs::File, u64)> {
        let f = tokio::fs::File::open(file).await?;
        let meta = f.metadata().await?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok((f, meta.len()))
    }
}

/// Checks a request path and returns the repo-relative part: it must start with `prefix`,
/// have only normal components (no `.`, `..`, empty, backslash, NUL, `%`), and start with a
/// public entry.
pub fn relative_path(path: &str, prefix: &str) -> Option<PathBuf> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() || rest.contains(['\\', '\0', '%']) {
        return None;
    }
    let mut out = PathBuf::new();
    for (i, segment) in rest.split('/').enumerate() {
        if segment.is_empty() || segment == "." || segment == ".." {
            return None;
        }
        if i == 0 && !PUBLIC_ENTRIES.contains(&segment) {
            return None;
        }
        out.push(segment);
    }
    out.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(out)
}

fn status(code: StatusCode) -> Response<ResponseBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{code}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = code;
    r
}

/// A file streamed in chunks, exactly `remaining` bytes long.
struct FileBody {
    file: tokio::io::Take<tokio::fs::File>,
    remaining: u64,
    buf: BytesMut,
}

impl FileBody {
    fn new(file: tokio::fs::File, len: u64) -> FileBody {
        FileBody {
            file: file.take(len),
            remaining: len,
            buf: BytesMut::new(),
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        this.buf.reserve(CHUNK);
        match tokio_util::io::poll_read_buf(Pin::new(&mut this.file), cx, &mut this.buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(0)) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being sent",
            )))),
            Poll::Ready(Ok(n)) => {
                this.remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/0123456789abcdef0123456789abcdef/";

    #[test]
    fn paths() {
        let ok = |p: &str| relative_path(&format!("{P}{p}"), P);
        assert_eq!(ok("config"), Some(PathBuf::from("config")));
        assert_eq!(
            ok("objects/ab/cd.commit"),
            Some(PathBuf::from("objects/ab/cd.commit"))
        );
        assert_eq!(ok("refs/heads/a/b"), Some(PathBuf::from("refs/heads/a/b")));
        for bad in [
            "",
            "objects/../config",
            "./config",
            "objects//x",
            "tmp/x",
            "state/x",
            "objects/%2e%2e/x",
            "refs/heads/",
            ".lock",
            "objects\\x",
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
        assert_eq!(relative_path("/config", P), None);
        assert_eq!(relative_path("/other/config", P), None);
    }

    async fn fetch(server: &RepoServer, request: &str) -> String {
        use tokio::io::AsyncWriteExt;
        let (mut client, served) = tokio::io::duplex(1 << 16);
        let server = server.clone();
        let task = tokio::spawn(async move { server.serve_connection(served).await });
        client.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        client.read_to_end(&mut response).await.unwrap();
        task.await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }

    #[tokio::test]
    async fn serves_only_repo_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("objects/ab")).unwrap();
        std::fs::create_dir_all(repo.join("tmp")).unwrap();
        std::fs::write(repo.join("config"), "[core]\n").unwrap();
        std::fs::write(repo.join("objects/ab/cd.commit"), "commit-bytes").unwrap();
        std::fs::write(repo.join("tmp/secret"), "no").unwrap();
        std::fs::write(dir.path().join("outside"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), repo.join("objects/ab/evil.filez")).unwrap();
        std::os::unix::fs::symlink(repo.join("tmp/secret"), repo.join("objects/ab/tmp.filez")).unwrap();
        let server = RepoServer::new(&repo).unwrap();
        let p = server.prefix().to_string();
        let get = |path: &str| format!("GET {p}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        let ok = fetch(&server, &get("objects/ab/cd.commit")).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(
            ok.contains("content-length: 12") && ok.ends_with("commit-bytes"),
            "{ok}"
        );
        let head = format!("HEAD {p}config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = fetch(&server, &head).await;
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("content-length: 7"),
            "{r}"
        );
        for path in [
            "objects/ab/evil.filez",
            "objects/ab/tmp.filez",
            "tmp/secret",
            "objects/ab",
            "objects/../config",
            "../outside",
        ] {
            let r = fetch(&server, &get(path)).await;
            assert!(r.starts_with("HTTP/1.1 404"), "{path}: {r}");
        }
        let r = fetch(
            &server,
            "GET /config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let post =
            format!("POST {p}config HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let r = fetch(&server, &post).await;
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");

        // Keep-alive: two requests on one connection.
        let two = format!(
            "GET {p}config HTTP/1.1\r\nHost: x\r\n\r\nGET {p}objects/ab/cd.commit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let r = fetch(&server, &two).await;
        assert_eq!(r.matches("HTTP/1.1 200").count(), 2, "{r}");
    }
}
