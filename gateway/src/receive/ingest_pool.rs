//! Verification workers shared by both paths: objects go in as they arrive from the pusher,
//! two blocking threads (one per core of a small server) verify and store them in the staging
//! repo. The queue is bounded by bytes, not by count, so a push of large objects cannot pile
//! up memory while the workers catch up.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use wire::ObjectId;

use super::ingest::{Converter, Ingest};
use super::writeback::Writeback;
use super::ReceiveError;

const WORKERS: usize = 2;
/// Bytes queued for verification at most (a larger object waits for an empty queue).
const QUEUE_BYTES: usize = 4 << 20;

/// An object: its id, flags, and a buffer holding its bytes from `start` on (a received frame
/// as it came, so the bytes are not copied again).
type Item = (ObjectId, u8, Vec<u8>, usize, OwnedSemaphorePermit);

pub struct IngestPool {
    tx: Option<mpsc::UnboundedSender<Item>>,
    budget: Arc<Semaphore>,
    stored: Arc<AtomicU64>,
    workers: Vec<tokio::task::JoinHandle<Result<(), ReceiveError>>>,
    converter: Arc<Converter>,
    writeback: Arc<Writeback>,
}

impl IngestPool {
    pub fn start(staging: &Path, archive: bool) -> std::io::Result<IngestPool> {
        let (tx, rx) = mpsc::unbounded_channel::<Item>();
        let rx = Arc::new(Mutex::new(rx));
        let stored = Arc::new(AtomicU64::new(0));
        let budget = Arc::new(Semaphore::new(QUEUE_BYTES));
        let converter = Converter::new(staging);
        let writeback = Arc::new(Writeback::open(staging)?);
        let workers = (0..WORKERS)
            .map(|_| {
                let (rx, stored, path) = (rx.clone(), stored.clone(), staging.to_path_buf());
                let (budget, converter) = (budget.clone(), converter.clone());
                let writeback = writeback.clone();
                tokio::task::spawn_blocking(move || -> Result<(), ReceiveError> {
                    let ingest = Ingest::new(&path, archive, converter, writeback);
                    let result = ingest.and_then(|mut ingest| loop {
                        let item = rx.lock().expect("ingest queue").blocking_recv();
                        let Some((id, flags, data, start, permit)) = item else {
                            break Ok(());
                        };
                        if let Err(e) = ingest.store(&id, flags, &data[start..]) {
                            break Err(e);
                        }
                        drop((data, permit));
                        stored.fetch_add(1, Ordering::Relaxed);
                    });
                    if result.is_err() {
                        // Wake a sender waiting for queue space: there is no point anymore.
                        budget.close();
                    }
                    result
                })
            })
            .collect();
        Ok(IngestPool {
            tx: Some(tx),
            budget,
            stored,
            workers,
            converter,
            writeback,
        })
    }

    /// Queues one object; waits while the queue is full. `false` once a worker stopped on a
    /// rejected object (`finish` reports why).
    pub async fn send(&self, id: ObjectId, flags: u8, data: Vec<u8>, start: usize) -> bool {
        let cost = data.len().clamp(1, QUEUE_BYTES) as u32;
        let Ok(permit) = self.budget.clone().acquire_many_owned(cost).await else {
            return false;
        };
        match &self.tx {
            Some(tx) => tx.send((id, flags, data, start, permit)).is_ok() && !self.any_worker_done(),
            None => false,
        }
    }

    fn any_worker_done(&self) -> bool {
        self.workers.iter().any(|w| w.is_finished())
    }

    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Waits for every queued object; the first rejection, if any.
    pub async fn finish(mut self) -> Result<u64, ReceiveError> {
        drop(self.tx.take());
        let mut first_error = None;
        tracing::debug!(flushes = self.writeback.flushes(), "early writeback");
        for worker in self.workers.drain(..) {
            if let Err(e) = worker.await? {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => {
                let converter = self.converter.clone();
                tokio::task::spawn_blocking(move || converter.finish()).await??;
                Ok(self.stored())
            }
        }
    }
}
