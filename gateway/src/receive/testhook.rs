//! TEST-ONLY fault-injection hook: lets the kill -9 tests (`tests/tests/faults.rs`) stop a
//! push at a known phase. Never set it in production.
//!
//! When `OSTREE_GATEWAY_TEST_PAUSE` names the phase a push reaches (`metadata`, `transfer`,
//! `before-update`, `summary`), the first push of the process to reach it writes the marker
//! file `<state_dir>/paused-<phase>` and waits for as long as the marker exists; the test
//! then kills the gateway, or removes the marker to let the push go on. Later pushes do not
//! pause. Unset (the normal case), [`pause`] returns at once.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable naming the phase to pause at.
pub const ENV: &str = "OSTREE_GATEWAY_TEST_PAUSE";

/// Pauses the first push to get here while `OSTREE_GATEWAY_TEST_PAUSE=<phase>`, for as long
/// as the marker file exists.
pub async fn pause(state_dir: &Path, phase: &str) {
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    static DONE: AtomicBool = AtomicBool::new(false);
    let wanted = WANTED.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if wanted.as_deref() != Some(phase) || DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let marker = state_dir.join(format!("paused-{phase}"));
    if let Err(e) = std::fs::write(&marker, b"") {
        tracing::error!(marker = %marker.display(), error = %e, "test pause: cannot write marker");
        return;
    }
    tracing::warn!(phase, marker = %marker.display(), "test pause: waiting while the marker exists");
    while marker.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::warn!(phase, "test pause: resumed");
}
