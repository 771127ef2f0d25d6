//! The stall watchdog: a pusher that goes silent, or trickles bytes to hold a push (and its
//! staging space and session) open, is cut off. Like curl's low-speed limit: a transfer that
//! averages fewer than `min_rate` bytes/s over any `window` fails. Both paths count every
//! byte they read from the pusher here, as it arrives (not per object: a large object sent
//! at a fair pace is not a stall).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug)]
pub struct RateWatch {
    received: AtomicU64,
    min_rate: u64,
    window: Duration,
}

impl RateWatch {
    pub fn new(min_rate: u64, window: Duration) -> RateWatch {
        RateWatch {
            received: AtomicU64::new(0),
            min_rate,
            window: window.max(Duration::from_secs(1)),
        }
    }

    pub fn add(&self, bytes: usize) {
        self.received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Resolves when the rate over the last `window` falls under `min_rate`, with a message
    /// for the pusher. Never resolves for a transfer that keeps pace; drop it to stop.
    pub async fn stalled(&self) -> String {
        let tick = Duration::from_secs(1);
        let slots = self.window.as_secs() as usize;
        // Byte counts at each of the last `slots` ticks; the window is full once it wraps.
        let mut history = std::collections::VecDeque::with_capacity(slots + 1);
        history.push_back(self.received());
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
        loop {
            interval.tick().await;
            history.push_back(self.received());
            if history.len() <= slots {
                continue;
            }
            let oldest = history.pop_front().expect("non-empty");
            let got = history.back().expect("non-empty") - oldest;
            if got < self.min_rate * slots as u64 {
                return format!(
                    "the pusher sent {got} bytes in the last {slots} s (the minimum is {} bytes/s): \
                     stalled or too slow",
                    self.min_rate
                );
            }
        }
    }
}

/// An `AsyncRead` that counts what passes through into a `RateWatch`.
pub struct Counted<'a, R> {
    inner: R,
    watch: &'a RateWatch,
}

impl<'a, R> Counted<'a, R> {
    pub fn new(inner: R, watch: &'a RateWatch) -> Counted<'a, R> {
        Counted { inner, watch }
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<'_, R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.watch.add(n);
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_trips_after_the_window() {
        let watch = RateWatch::new(100, Duration::from_secs(3));
        let started = tokio::time::Instant::now();
        let message = watch.stalled().await;
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert!(message.contains("0 bytes in the last 3 s"), "{message}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_pace_never_trips_and_a_trickle_does() {
        let watch = std::sync::Arc::new(RateWatch::new(100, Duration::from_secs(3)));
        let feeder = {
            let watch = watch.clone();
            tokio::spawn(async move {
                for second in 0..20 {
                    // 20 s at 150 bytes/s, then a trickle of 10 bytes/s.
                    watch.add(if second < 10 { 150 } else { 10 });
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let started = tokio::time::Instant::now();
        let message = watch.stalled().await;
        let tripped_at = started.elapsed();
        assert!(
            tripped_at >= Duration::from_secs(10) && tripped_at <= Duration::from_secs(14),
            "tripped at {tripped_at:?}: {message}"
        );
        feeder.abort();
    }
}
