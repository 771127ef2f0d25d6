//! Early writeback of staged objects, in batches. The `syncfs` before the import must find
//! most of a push's data already on disk, or it flushes the whole push at once (measured:
//! 431 ms for the default benchmark push). Asking for writeback file by file
//! (`sync_file_range`) submits one block-device request per object, each its own virtio
//! notification: 8 % of all CPU samples of an initial push. One `syncfs` per few MiB lets the
//! kernel's flusher submit many files per request instead, on a thread of its own, while the
//! workers go on writing.
//!
//! Once a batch is on disk, the pages of its content objects are dropped from the page
//! cache: nothing reads them again during the push (metadata stays: the completeness proof
//! reads every dirtree), so a push keeps a few batches cached instead of all it wrote
//! (it would otherwise push other data out), and the next batches reuse those pages. On a VM
//! that hands free memory back to its host (the benchmark machine), a page never used before
//! most likely costs a fault in the host on first touch: measured there, the gateway spent
//! 0.2-0.5 CPU-s less per default-preset initial push.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::{Advice, Mode, OFlags};

/// Bytes written since the last flush that start the next one.
const BATCH_BYTES: u64 = 16 << 20;

pub struct Writeback {
    /// The staging repo's root: `syncfs` flushes its whole filesystem.
    root: Arc<File>,
    /// The staging repo's `objects` directory, which the written paths are relative to.
    objects: Arc<File>,
    /// Content files written since the last flush started.
    written: Mutex<Vec<String>>,
    pending: AtomicU64,
    flushing: Arc<AtomicBool>,
    started: AtomicU64,
}

impl Writeback {
    pub fn open(root: &Path) -> std::io::Result<Writeback> {
        Ok(Writeback {
            root: Arc::new(File::open(root)?),
            objects: Arc::new(File::open(root.join("objects"))?),
            written: Mutex::new(Vec::new()),
            pending: AtomicU64::new(0),
            flushing: Arc::new(AtomicBool::new(false)),
            started: AtomicU64::new(0),
        })
    }

    /// Counts a file just written (`bytes` long; its `path` under `objects` if its pages are
    /// to leave the cache once on disk); starts a flush in the background once a batch is
    /// full and none is running. Never blocks the caller.
    pub fn wrote(&self, path: Option<String>, bytes: u64) {
        if let Some(path) = path {
            self.written.lock().expect("writeback list").push(path);
        }
        let pending = self.pending.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if pending < BATCH_BYTES || self.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.pending.store(0, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        let batch = std::mem::take(&mut *self.written.lock().expect("writeback list"));
        let (root, objects, flushing) = (self.root.clone(), self.objects.clone(), self.flushing.clone());
        let spawned = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                // SAFETY: a valid descriptor, kept open by the Arc for the call. A failure is
                // harmless here: the import's own `syncfs` reports it, and the pages stay.
                if unsafe { libc::syncfs(root.as_raw_fd()) } == 0 {
                    drop_cached(&objects, &batch);
                }
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

/// Drops the (clean, written back) cached pages of `paths`. Best effort: a file that cannot
/// be opened keeps its pages.
fn drop_cached(objects: &File, paths: &[String]) {
    for path in paths {
        if let Ok(file) = rustix::fs::openat(objects, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            let _ = rustix::fs::fadvise(&file, 0, None, Advice::DontNeed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staging-like directory on the build's filesystem (a tmpfs /tmp would keep pages).
    fn staging() -> tempfile::TempDir {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        std::fs::create_dir(dir.path().join("objects")).unwrap();
        dir
    }

    fn resident_pages(path: &Path) -> usize {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        // SAFETY: a read-only shared mapping of a file we keep open, unmapped below; mincore
        // writes one byte per page into a vector of that many bytes.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let mut pages = vec![0u8; len.div_ceil(4096)];
            assert_eq!(libc::mincore(map, len, pages.as_mut_ptr()), 0);
            libc::munmap(map, len);
            pages.iter().filter(|p| **p & 1 == 1).count()
        }
    }

    #[test]
    fn a_flushed_batch_leaves_the_page_cache() {
        let dir = staging();
        let writeback = Writeback::open(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("objects/ab")).unwrap();
        let (flushed, later) = (
            dir.path().join("objects/ab/1.filez"),
            dir.path().join("objects/ab/2.filez"),
        );
        std::fs::write(&flushed, vec![7u8; 1 << 20]).unwrap();
        assert!(resident_pages(&flushed) > 0, "just written: cached");
        writeback.wrote(Some("ab/1.filez".into()), BATCH_BYTES);
        writeback.wait_idle();
        assert_eq!(resident_pages(&flushed), 0, "on disk, then dropped");
        std::fs::write(&later, vec![7u8; 1 << 20]).unwrap();
        writeback.wrote(Some("ab/2.filez".into()), 1);
        writeback.wait_idle();
        assert!(resident_pages(&later) > 0, "not flushed yet: stays");
    }

    #[test]
    fn flushes_once_per_full_batch_and_never_two_at_once() {
        let dir = staging();
        let writeback = Writeback::open(dir.path()).unwrap();
        writeback.wrote(Some("a".into()), BATCH_BYTES - 1);
        assert_eq!(writeback.flushes(), 0, "a batch not yet full starts nothing");
        writeback.wrote(Some("b".into()), 1);
        assert_eq!(writeback.flushes(), 1);
        // While that flush may still run, a second full batch starts one only once it ended.
        writeback.wait_idle();
        writeback.wrote(Some("c".into()), BATCH_BYTES / 2);
        assert_eq!(writeback.flushes(), 1, "the counter was reset by the first flush");
        writeback.wrote(Some("c".into()), BATCH_BYTES / 2);
        assert_eq!(writeback.flushes(), 2);
        writeback.wait_idle();
    }

    #[test]
    fn a_running_flush_is_not_doubled() {
        let dir = staging();
        let writeback = Writeback::open(dir.path()).unwrap();
        writeback.flushing.store(true, Ordering::Release); // as if one were running
        writeback.wrote(Some("d".into()), 3 * BATCH_BYTES);
        assert_eq!(writeback.flushes(), 0);
        writeback.flushing.store(false, Ordering::Release);
        writeback.wrote(Some("b".into()), 1); // the bytes counted meanwhile still start the next one
        assert_eq!(writeback.flushes(), 1);
        writeback.wait_idle();
    }
}
