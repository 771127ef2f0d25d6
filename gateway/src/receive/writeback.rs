//! Early writeback of staged objects, in batches. The `syncfs` before the import must find
//! most of a push's data already on disk, or it flushes the whole push at once (measured:
//! 431 ms for the default benchmark push). Asking for writeback file by file
//! (`sync_file_range`) submits one block-device request per object, each its own virtio
//! notification: 8 % of all CPU samples of an initial push. One `syncfs` per few MiB lets the
//! kernel's flusher submit many files per request instead, on a thread of its own, while the
//! workers go on writing.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes written since the last flush that start the next one.
const BATCH_BYTES: u64 = 16 << 20;

pub struct Writeback {
    /// The staging repo's root: `syncfs` flushes its whole filesystem.
    root: Arc<File>,
    pending: AtomicU64,
    flushing: Arc<AtomicBool>,
    started: AtomicU64,
}

impl Writeback {
    pub fn open(root: &Path) -> std::io::Result<Writeback> {
        Ok(Writeback {
            root: Arc::new(File::open(root)?),
            pending: AtomicU64::new(0),
            flushing: Arc::new(AtomicBool::new(false)),
            started: AtomicU64::new(0),
        })
    }

    /// Counts bytes just written; starts a flush in the background once a batch is full and
    /// none is running. Never blocks the caller.
    pub fn wrote(&self, bytes: u64) {
        let pending = self.pending.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if pending < BATCH_BYTES || self.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.pending.store(0, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        let (root, flushing) = (self.root.clone(), self.flushing.clone());
        let spawned = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                // SAFETY: a valid descriptor, kept open by the Arc for the call. A failure is
                // harmless here: the import's own `syncfs` reports it.
                unsafe { libc::syncfs(root.as_raw_fd()) };
                flushing.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.flushing.store(false, Ordering::Release);
        }
    }

    /// How many flushes were started (for the debug log).
    pub fn flushes(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn wait_idle(&self) {
        while self.flushing.load(Ordering::Acquire) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_once_per_full_batch_and_never_two_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let writeback = Writeback::open(dir.path()).unwrap();
        writeback.wrote(BATCH_BYTES - 1);
        assert_eq!(writeback.flushes(), 0, "a batch not yet full starts nothing");
        writeback.wrote(1);
        assert_eq!(writeback.flushes(), 1);
        // While that flush may still run, a second full batch starts one only once it ended.
        writeback.wait_idle();
        writeback.wrote(BATCH_BYTES / 2);
        assert_eq!(writeback.flushes(), 1, "the counter was reset by the first flush");
        writeback.wrote(BATCH_BYTES / 2);
        assert_eq!(writeback.flushes(), 2);
        writeback.wait_idle();
    }

    #[test]
    fn a_running_flush_is_not_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let writeback = Writeback::open(dir.path()).unwrap();
        writeback.flushing.store(true, Ordering::Release); // as if one were running
        writeback.wrote(3 * BATCH_BYTES);
        assert_eq!(writeback.flushes(), 0);
        writeback.flushing.store(false, Ordering::Release);
        writeback.wrote(1); // the bytes counted meanwhile still start the next one
        assert_eq!(writeback.flushes(), 1);
        writeback.wait_idle();
    }
}
