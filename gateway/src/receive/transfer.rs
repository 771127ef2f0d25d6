//! Phase "transfer", tunnel path: the gateway walks each new commit's trees itself and fetches
//! the objects the target lacks from the pusher's archive repo over its `-R` forward, several
//! requests at a time. Every object goes through the same verified ingest as the native path
//! (content checksummed over its decompressed stream, metadata by sha256 + normal form; `.filez`
//! stored as sent), with the same size limits and stall watchdog. libostree's HTTP pull would
//! re-compress every content object and has neither limit.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ostree::glib;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wire::{objtype, ObjectId, FLAG_COMPRESSED};

use super::commit::CommitInfo;
use super::http::HttpSource;
use super::ingest::{self, Ingest};
use super::ingest_pool::IngestPool;
use super::watchdog::RateWatch;
use super::ReceiveError;
use crate::server::reporter::Reporter;

/// Requests in flight through the tunnel. ostree-push serves each from its own thread (and
/// each is a TCP connection and an SSH channel of its own); 8 is what libostree's pull uses.
const PARALLEL: usize = 8;

/// Where objects go and how much a push may bring.
pub struct Fetch<'a> {
    pub http: &'a HttpSource,
    pub staging: &'a Path,
    pub target: &'a Path,
    /// The target (and so the staging repo) is an archive repo.
    pub archive: bool,
    pub max_object_size: u64,
    pub max_push_size: u64,
    pub watch: Arc<RateWatch>,
}

/// Brings every object reachable from `commits` that the target lacks into staging, verified.
pub async fn fetch_tunnel(
    fetch: Fetch<'_>,
    commits: &[CommitInfo],
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Result<(), ReceiveError> {
    check_source_mode(fetch.http).await?;
    {
        let (path, commits) = (fetch.staging.to_path_buf(), commits.to_vec());
        tokio::task::spawn_blocking(move || ingest::store_commits(&path, &commits)).await??;
    }
    let pool = IngestPool::start(fetch.staging, fetch.archive)?;
    let walked = walk(&fetch, commits, &pool, reporter, cancel).await;
    // Whatever the walk's outcome, let the workers finish with the staging repo.
    let stored = pool.finish().await;
    let (objects, bytes) = walked?;
    stored?;
    crate::metrics::METRICS.received(objects, bytes);
    if objects > 0 {
        reporter
            .info(&format!(
                "Receiving objects: {objects}, {}, done.",
                human_bytes(bytes)
            ))
            .await;
    }
    Ok(())
}

async fn walk(
    fetch: &Fetch<'_>,
    commits: &[CommitInfo],
    pool: &IngestPool,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Result<(u64, u64), ReceiveError> {
    let mut plan = Plan::new(fetch.staging, fetch.target, fetch.archive);
    for c in commits {
        plan.want(objtype::DIR_TREE, &c.root_tree)?;
        plan.want(objtype::DIR_META, &c.root_meta)?;
    }
    let mut inflight = JoinSet::new();
    let stalled = fetch.watch.stalled();
    tokio::pin!(stalled);
    let (mut objects, mut bytes) = (0u64, 0u64);
    let mut last_report = Instant::now();
    loop {
        while inflight.len() < PARALLEL {
            let Some(id) = plan.queue.pop_front() else { break };
            let (http, watch, limit) = (fetch.http.clone(), fetch.watch.clone(), fetch.max_object_size);
            inflight.spawn(async move {
                let path = source_path(&id);
                let result = http.get_watched(&path, limit, &watch).await;
                (id, result)
            });
        }
        let joined = tokio::select! {
            joined = inflight.join_next() => joined,
            why = &mut stalled => return Err(ReceiveError::Stalled(why)),
            _ = cancel.cancelled() => return Err(ReceiveError::Aborted),
        };
        let Some(joined) = joined else { break };
        let (id, result) = joined?;
        let data = result?.ok_or_else(|| {
            ReceiveError::Source(format!(
                "object {}.{} is missing on the pusher's side",
                id.hex(),
                ingest::ext(id.objtype)
            ))
        })?;
        bytes += data.len() as u64;
        if bytes > fetch.max_push_size {
            return Err(ReceiveError::Request(format!(
                "push is larger than the limit of {} bytes",
                fetch.max_push_size
            )));
        }
        let flags = match id.objtype {
            objtype::FILE => FLAG_COMPRESSED,
            objtype::DIR_TREE => {
                // Trusted only once verified: its children are what we fetch next.
                Ingest::check_metadata(&id, &data)?;
                for (kind, checksum) in dirtree_children(&data) {
                    plan.want(kind, &checksum)?;
                }
                0
            }
            _ => 0,
        };
        if !pool.send(id, flags, data, 0).await {
            break; // a worker rejected an object: `finish` reports it
        }
        objects += 1;
        if last_report.elapsed() > Duration::from_millis(500) {
            last_report = Instant::now();
            let total = objects + plan.queue.len() as u64 + inflight.len() as u64;
            reporter
                .info(&format!(
                    "Receiving objects: {objects}/{total}, {}",
                    human_bytes(bytes)
                ))
                .await;
        }
    }
    Ok((objects, bytes))
}

/// The objects still to fetch: each wanted object once, unless staging or the target has it.
struct Plan {
    staging: PathBuf,
    target: PathBuf,
    content_ext: &'static str,
    seen: HashSet<ObjectId>,
    queue: VecDeque<ObjectId>,
}

impl Plan {
    fn new(staging: &Path, target: &Path, archive: bool) -> Plan {
        Plan {
            staging: staging.to_path_buf(),
            target: target.to_path_buf(),
            content_ext: if archive { "filez" } else { "file" },
            seen: HashSet::new(),
            queue: VecDeque::new(),
        }
    }

    /// Queues `checksum` unless it is held here already. A dirtree held here is still walked
    /// (from the local copy): an interrupted import can leave a dirtree in the target without
    /// all of its children, and those must be fetched, not assumed. The completeness proof
    /// checks the result either way.
    fn want(&mut self, kind: u8, checksum: &str) -> Result<(), ReceiveError> {
        let mut local_trees = Vec::new();
        self.want_one(kind, checksum, &mut local_trees)?;
        while let Some(tree) = local_trees.pop() {
            for (kind, checksum) in dirtree_children(&std::fs::read(&tree)?) {
                self.want_one(kind, &checksum, &mut local_trees)?;
            }
        }
        Ok(())
    }

    fn want_one(
        &mut self,
        kind: u8,
        checksum: &str,
        local_trees: &mut Vec<PathBuf>,
    ) -> Result<(), ReceiveError> {
        let id = ObjectId::from_hex(kind, checksum)
            .ok_or_else(|| ReceiveError::BadObject(format!("invalid object name {checksum}")))?;
        if !self.seen.insert(id) {
            return Ok(());
        }
        let ext = match kind {
            objtype::FILE => self.content_ext,
            other => ingest::ext(other),
        };
        let rel = format!("objects/{}/{}.{ext}", &checksum[..2], &checksum[2..]);
        // symlink_metadata: a bare repo stores a symlink's object as the (dangling) symlink.
        let held = [&self.target, &self.staging]
            .into_iter()
            .map(|root| root.join(&rel))
            .find(|path| path.symlink_metadata().is_ok());
        match held {
            None => self.queue.push_back(id),
            Some(path) if kind == objtype::DIR_TREE => local_trees.push(path),
            Some(_) => {}
        }
        Ok(())
    }
}

/// Where an object lives in the pusher's archive repo.
fn source_path(id: &ObjectId) -> String {
    let hex = id.hex();
    let ext = match id.objtype {
        objtype::FILE => "filez",
        other => ingest::ext(other),
    };
    format!("objects/{}/{}.{ext}", &hex[..2], &hex[2..])
}

/// Files, then subdirectories (tree and meta) of a verified dirtree.
fn dirtree_children(data: &[u8]) -> Vec<(u8, String)> {
    let ty = glib::VariantTy::new("(a(say)a(sayay))").expect("valid type");
    let tree = glib::Variant::from_bytes_with_type(&glib::Bytes::from(data), ty);
    let mut out = Vec::new();
    for file in tree.child_value(0).iter() {
        out.push((objtype::FILE, checksum_of(&file.child_value(1))));
    }
    for dir in tree.child_value(1).iter() {
        out.push((objtype::DIR_TREE, checksum_of(&dir.child_value(1))));
        out.push((objtype::DIR_META, checksum_of(&dir.child_value(2))));
    }
    out
}

fn checksum_of(v: &glib::Variant) -> String {
    // A wrong length yields a name `Plan::want` refuses.
    hex::encode(v.fixed_array::<u8>().unwrap_or_default())
}

/// Only an archive repo can be verified over HTTP: a bare repo's file modes and owners are
/// not in its object files.
async fn check_source_mode(http: &HttpSource) -> Result<(), ReceiveError> {
    let config = http
        .get("config", 64 * 1024)
        .await?
        .ok_or_else(|| ReceiveError::Source("the pushed repo has no config file".into()))?;
    let text = String::from_utf8_lossy(&config);
    let mode = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "mode")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "bare".into());
    if mode == "archive" || mode == "archive-z2" {
        Ok(())
    } else {
        Err(ReceiveError::Source(format!(
            "the pushed repo is in mode \"{mode}\": only archive repos can be pushed through the tunnel"
        )))
    }
}

pub(crate) fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{} MiB", n >> 20),
        n if n >= 10 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}
