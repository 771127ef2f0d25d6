//! Prometheus metrics (text format 0.0.4) on a loopback address: pushes by result and their
//! duration, ref updates by final state, denials by reason class, objects and bytes received,
//! active sessions. Process-wide atomics: recording is a few relaxed increments.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Upper bounds (seconds) of the push duration histogram buckets.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

pub struct Metrics {
    pushes_ok: AtomicU64,
    pushes_failed: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_micros: AtomicU64,
    refs_accepted: AtomicU64,
    refs_rejected: AtomicU64,
    refs_failed: AtomicU64,
    denials: [AtomicU64; DENIAL_CLASSES.len()],
    objects: AtomicU64,
    bytes: AtomicU64,
    sessions: AtomicU64,
}

/// Low-cardinality classes of denial reasons (the full reason is in the audit).
const DENIAL_CLASSES: [&str; 6] = [
    "no_rule",
    "deny_rule",
    "signature",
    "timestamp",
    "all_or_nothing",
    "other",
];

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

pub static METRICS: Metrics = Metrics {
    pushes_ok: ZERO,
    pushes_failed: ZERO,
    duration_buckets: [ZERO; BUCKETS.len()],
    duration_count: ZERO,
    duration_sum_micros: ZERO,
    refs_accepted: ZERO,
    refs_rejected: ZERO,
    refs_failed: ZERO,
    denials: [ZERO; DENIAL_CLASSES.len()],
    objects: ZERO,
    bytes: ZERO,
    sessions: ZERO,
};

impl Metrics {
    pub fn push_finished(&self, exit_status: u32, took: Duration) {
        if exit_status == 0 {
            &self.pushes_ok
        } else {
            &self.pushes_failed
        }
        .fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.duration_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Relaxed);
        self.duration_sum_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// A ref update reached its final audit state.
    pub fn ref_settled(&self, state: &str) {
        match state {
            "accepted" => &self.refs_accepted,
            "failed" => &self.refs_failed,
            _ => &self.refs_rejected,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn denied(&self, reason: &str) {
        let class = if reason.starts_with("no rule allows") {
            0
        } else if reason.starts_with("denied by rule") {
            1
        } else if reason.contains("sign") {
            2
        } else if reason.contains("timestamp") || reason.contains("newer") {
            3
        } else if reason.contains("another ref") {
            4
        } else {
            5
        };
        self.denials[class].fetch_add(1, Relaxed);
    }

    pub fn received(&self, objects: u64, bytes: u64) {
        self.objects.fetch_add(objects, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    pub fn session_opened(&self) {
        self.sessions.fetch_add(1, Relaxed);
    }

    pub fn session_closed(&self) {
        self.sessions.fetch_sub(1, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        };
        metric(
            "ostree_gateway_pushes_total",
            "counter",
            "Receives run, by result (ok: exit status 0).",
        );
        let mut lines = vec![
            format!(
                "ostree_gateway_pushes_total{{result=\"ok\"}} {}",
                self.pushes_ok.load(Relaxed)
            ),
            format!(
                "ostree_gateway_pushes_total{{result=\"failed\"}} {}",
                self.pushes_failed.load(Relaxed)
            ),
        ];
        out.push_str(&(lines.join("\n") + "\n"));
        out.push_str("# HELP ostree_gateway_push_duration_seconds Duration of receives.\n");
        out.push_str("# TYPE ostree_gateway_push_duration_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.duration_buckets) {
            out.push_str(&format!(
                "ostree_gateway_push_duration_seconds_bucket{{le=\"{bound}\"}} {}\n",
                bucket.load(Relaxed)
            ));
        }
        let count = self.duration_count.load(Relaxed);
        out.push_str(&format!(
            "ostree_gateway_push_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n"
        ));
        out.push_str(&format!(
            "ostree_gateway_push_duration_seconds_sum {}\n",
            self.duration_sum_micros.load(Relaxed) as f64 / 1e6
        ));
        out.push_str(&format!("ostree_gateway_push_duration_seconds_count {count}\n"));
        out.push_str("# HELP ostree_gateway_ref_updates_total Ref updates by final audit state.\n");
        out.push_str("# TYPE ostree_gateway_ref_updates_total counter\n");
        lines = vec![
            format!(
                "ostree_gateway_ref_updates_total{{state=\"accepted\"}} {}",
                self.refs_accepted.load(Relaxed)
            ),
            format!(
                "ostree_gateway_ref_updates_total{{state=\"rejected\"}} {}",
                self.refs_rejected.load(Relaxed)
            ),
            format!(
                "ostree_gateway_ref_updates_total{{state=\"failed\"}} {}",
                self.refs_failed.load(Relaxed)
            ),
        ];
        out.push_str(&(lines.join("\n") + "\n"));
        out.push_str("# HELP ostree_gateway_denials_total Ref updates denied by policy, by reason class.\n");
        out.push_str("# TYPE ostree_gateway_denials_total counter\n");
        for (class, n) in DENIAL_CLASSES.iter().zip(&self.denials) {
            out.push_str(&format!(
                "ostree_gateway_denials_total{{reason=\"{class}\"}} {}\n",
                n.load(Relaxed)
            ));
        }
        out.push_str("# HELP ostree_gateway_objects_received_total Objects received and verified.\n");
        out.push_str("# TYPE ostree_gateway_objects_received_total counter\n");
        out.push_str(&format!(
            "ostree_gateway_objects_received_total {}\n",
            self.objects.load(Relaxed)
        ));
        out.push_str("# HELP ostree_gateway_bytes_received_total Object bytes received (native path).\n");
        out.push_str("# TYPE ostree_gateway_bytes_received_total counter\n");
        out.push_str(&format!(
            "ostree_gateway_bytes_received_total {}\n",
            self.bytes.load(Relaxed)
        ));
        out.push_str("# HELP ostree_gateway_sessions Authenticated SSH sessions open now.\n");
        out.push_str("# TYPE ostree_gateway_sessions gauge\n");
        out.push_str(&format!(
            "ostree_gateway_sessions {}\n",
            self.sessions.load(Relaxed)
        ));
        out
    }
}

/// Serves `GET /metrics` on `listen`, which must be a loopback address (metrics reveal repo
/// activity; exposing them is a deliberate proxy decision, not a default).
pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!("metrics.listen {listen} is not a loopback address");
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for metrics"))?;
    tracing::info!(%listen, "metrics endpoint");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let response = if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(METRICS.render())))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::new()))
                    };
                    Ok::<_, std::convert::Infallible>(response.expect("valid response"))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}
