//! The native stream path (`ostree-gateway-receive`): the protocol in `wire` driven over the
//! exec channel. Refs, commits and objects come from the client; every other phase is the
//! same as the tunnel path's (checks, audit, completeness proof, locked update, summary).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::ChannelReadHalf;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use wire::{kind, ObjectId, RefResult, Status};

use super::commit::{self, CommitInfo};
use super::ingest_pool::IngestPool;
use super::present::Presence;
use super::source::Source;
use super::watchdog::{Counted, RateWatch};
use super::{audit, checks, finish, new_push_id, read_refs, request, Identity, ReceiveError, RefUpdate};
use crate::server::reporter::Reporter;
use crate::server::Shared;
use crate::store::repos::Repo;

type Out = Pin<Box<dyn AsyncWrite + Send>>;

/// Control frames are small; a bigger one is hostile.
const MAX_CONTROL: u32 = 16 << 20;
/// Object ids one push may list (33 bytes each).
const MAX_LISTED: usize = 20_000_000;

struct Push<'a> {
    shared: &'a Arc<Shared>,
    identity: &'a Identity,
    push_id: String,
    reporter: &'a Reporter,
    cancel: CancellationToken,
    results: Vec<RefResult>,
    updates: Vec<RefUpdate>,
    audited: bool,
}

/// Runs one native push; returns the exit status.
pub async fn run_native(
    shared: &Arc<Shared>,
    identity: Identity,
    mut input: ChannelReadHalf,
    reporter: &Reporter,
) -> u32 {
    let mut out = reporter.stdout_writer();
    let mut push = Push {
        shared,
        identity: &identity,
        push_id: new_push_id(),
        reporter,
        cancel: shared.abort.child_token(),
        results: Vec::new(),
        updates: Vec::new(),
        audited: false,
    };
    let timeout = Duration::from_secs(shared.config().limits.push_timeout_secs);
    let result = {
        let mut reader = input.make_reader();
        let span = tracing::info_span!("native", push = %push.push_id, user = %identity.user);
        let work = tracing::Instrument::instrument(push.run(&mut reader, &mut out), span);
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ReceiveError::TimedOut),
        }
    };
    let (exit_code, error) = match result {
        Ok(code) => (code, None),
        Err(e) => {
            tracing::info!(push = %push.push_id, error = %e, "push failed");
            if push.audited {
                audit::settle(
                    &shared.store,
                    &push.updates,
                    e.audit_state(),
                    Some(&e.to_string()),
                )
                .await;
            }
            for r in push
                .results
                .iter_mut()
                .filter(|r| !matches!(r.status, Status::UpToDate | Status::Rejected))
            {
                r.status = Status::Failed;
                r.reason = Some(e.to_string());
            }
            reporter.line(&format!("error: {e}")).await;
            (1, Some(e.to_string()))
        }
    };
    let last = wire::Final {
        refs: push.results,
        exit_code,
        error,
    };
    let _ = wire::write_json(&mut out, kind::FINAL, &last).await;
    exit_code
}

fn client_gave_up(payload: &[u8]) -> ReceiveError {
    match wire::parse_json::<wire::ErrorMessage>(payload) {
        Ok(msg) => ReceiveError::Request(format!("client gave up: {}", msg.message)),
        Err(e) => e.into(),
    }
}

async fn expect<R: AsyncRead + Unpin>(reader: &mut R, want: u8, max: u32) -> Result<Vec<u8>, ReceiveError> {
    match wire::read_frame(reader, max).await? {
        Some((k, payload)) if k == want => Ok(payload),
        Some((kind::ERROR, payload)) => Err(client_gave_up(&payload)),
        Some((k, _)) => Err(ReceiveError::Request(format!(
            "protocol error: expected frame '{}', got '{}'",
            want as char, k as char
        ))),
        None => Err(ReceiveError::Aborted),
    }
}

impl Push<'_> {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        out: &mut Out,
    ) -> Result<u32, ReceiveError> {
        let shared = self.shared;
        // Hello + request.
        let hello: wire::Hello = wire::parse_json(&expect(reader, kind::HELLO, MAX_CONTROL).await?)?;
        if hello.version != wire::PROTOCOL_VERSION {
            return Err(ReceiveError::Request(format!(
                "unsupported protocol version {} (this gateway speaks {})",
                hello.version,
                wire::PROTOCOL_VERSION
            )));
        }
        let req: wire::Request = wire::parse_json(&expect(reader, kind::REQUEST, MAX_CONTROL).await?)?;
        let repo = request::resolve_repo(shared, &req.repo).await?;
        let names: Vec<String> = req.refs.iter().map(|r| r.name.clone()).collect();
        request::validate_refs(&names, shared.config().limits.max_refs_per_push)?;
        if names.iter().collect::<HashSet<_>>().len() != names.len() {
            return Err(ReceiveError::Request("a ref is named twice in the push".into()));
        }
        for r in &req.refs {
            if let Some(new) = &r.new {
                if !commit::is_checksum(new) {
                    return Err(ReceiveError::Request(format!(
                        "ref {}: \"{new}\" is not a commit checksum",
                        r.name
                    )));
                }
            }
        }
        let current = read_refs(PathBuf::from(&repo.path), names).await?;
        let mut refused_early = false;
        for (r, old) in req.refs.iter().zip(current) {
            if r.new.is_none() && old.is_none() {
                refused_early = true;
                self.results.push(RefResult {
                    name: r.name.clone(),
                    old: None,
                    new: None,
                    status: Status::Rejected,
                    op: Some("delete".into()),
                    reason: Some("cannot delete: the ref does not exist".into()),
                });
                continue;
            }
            let up_to_date = r.new == old;
            self.results.push(RefResult {
                name: r.name.clone(),
                old: old.clone(),
                new: r.new.clone(),
                status: if up_to_date {
                    Status::UpToDate
                } else {
                    Status::Pending
                },
                op: None,
                reason: None,
            });
            if !up_to_date {
                self.updates.push(RefUpdate {
                    name: r.name.clone(),
                    old,
                    new: r.new.clone(),
                    commit: None,
                    op: None,
                    old_timestamp: None,
                    decision: None,
                    audit_id: None,
                });
            }
        }
        if refused_early {
            // All or nothing: a push naming a ref that cannot be deleted moves nothing.
            self.updates.clear();
            for r in self.results.iter_mut().filter(|r| r.status == Status::Pending) {
                r.status = Status::Rejected;
                r.reason = Some("not applied because another ref was refused".into());
            }
        }
        let status = wire::RefStatus {
            version: wire::PROTOCOL_VERSION,
            refs: self.results.clone(),
        };
        wire::write_json(out, kind::REF_STATUS, &status).await?;
        if refused_early {
            for r in self.results.iter().filter(|r| r.status == Status::Rejected) {
                let reason = r.reason.as_deref().unwrap_or("");
                self.reporter
                    .line(&format!("{}: rejected: {reason}", r.name))
                    .await;
            }
            return Ok(1);
        }

        if self.updates.is_empty() {
            // Every ref is up to date: nothing to check, stage or audit. The client still
            // sends its (empty) commit list; read it so it is not cut off mid-write.
            while let Some((k, _)) = wire::read_frame(reader, commit::MAX_COMMIT_SIZE as u32 * 2).await? {
                if k == kind::COMMITS_DONE {
                    break;
                }
            }
            return Ok(0);
        }

        // Commits: each new commit, plus its chain down to the current value (fast-forward proof).
        super::testhook::pause(&shared.state.root, "metadata").await;
        let mut commits = HashMap::new();
        loop {
            let Some((k, payload)) = wire::read_frame(reader, commit::MAX_COMMIT_SIZE as u32 * 2).await?
            else {
                return Err(ReceiveError::Aborted);
            };
            match k {
                kind::COMMIT => {
                    let (checksum, bytes, meta) = wire::decode_commit(&payload)?;
                    let info =
                        commit::parse(&wire::hex(&checksum), bytes.to_vec(), meta.map(<[u8]>::to_vec))?;
                    if commits.len() > shared.config().limits.max_ancestry_depth as usize + self.updates.len()
                    {
                        return Err(ReceiveError::Request("too many commits sent".into()));
                    }
                    commits.insert(info.checksum.clone(), info);
                }
                kind::COMMITS_DONE => break,
                kind::ERROR => return Err(client_gave_up(&payload)),
                other => {
                    return Err(ReceiveError::Request(format!(
                        "protocol error: unexpected frame '{}'",
                        other as char
                    )))
                }
            }
        }
        for u in self.updates.iter_mut() {
            if let Some(new) = &u.new {
                let info = commits.get(new).ok_or_else(|| {
                    ReceiveError::Source(format!("commit {new} of ref {} was not sent", u.name))
                })?;
                u.commit = Some(info.clone());
            }
        }

        // Checks, decisions, audit.
        let source = Source::Native(commits);
        checks::classify(
            &source,
            &repo,
            &mut self.updates,
            shared.config().limits.max_ancestry_depth,
        )
        .await?;
        let all_allowed = checks::decide(&shared.store, self.identity, &repo, &mut self.updates).await?;
        let refused = (!all_allowed).then_some("not applied: another ref of this push was denied");
        audit::record(
            &shared.store,
            &self.push_id,
            self.identity,
            &repo.name,
            &mut self.updates,
            refused,
        )
        .await?;
        self.audited = all_allowed;
        tracing::debug!(allowed = all_allowed, "decided and audited");
        for u in &self.updates {
            let d = u.decision.as_ref().expect("decided");
            let r = self
                .results
                .iter_mut()
                .find(|r| r.name == u.name)
                .expect("listed");
            r.op = u.op.map(|op| op.to_string());
            (r.status, r.reason) = match (d.allowed, all_allowed) {
                (true, true) => (Status::Allowed, None),
                (true, false) => (
                    Status::Rejected,
                    Some("not applied because another ref was denied".into()),
                ),
                (false, _) => (Status::Rejected, Some(d.reason.clone())),
            };
        }
        wire::write_json(
            out,
            kind::DECISIONS,
            &wire::Decisions {
                refs: self.results.clone(),
                proceed: all_allowed,
            },
        )
        .await?;
        if !all_allowed {
            for r in &self.results {
                if let Some(reason) = &r.reason {
                    self.reporter
                        .line(&format!("{}: rejected: {reason}", r.name))
                        .await;
                }
            }
            return Ok(1);
        }

        // What the gateway lacks.
        let staging = finish::create_staging(shared, &repo, &self.push_id).await?;
        let new_commits: Vec<CommitInfo> = self.updates.iter().filter_map(|u| u.commit.clone()).collect();
        let listed = read_list(reader).await?;
        tracing::debug!(objects = listed.len(), "object list received");
        let need = missing_objects(&repo, listed, &new_commits).await?;
        for chunk in need.chunks(30_000) {
            wire::write_frame(out, kind::NEED, &[&wire::encode_ids(chunk)]).await?;
        }
        wire::write_json(
            out,
            kind::NEED_DONE,
            &wire::NeedDone {
                count: need.len() as u64,
            },
        )
        .await?;
        self.reporter
            .verbose(&format!("{} objects to receive", need.len()))
            .await;
        tracing::debug!(objects = need.len(), "objects requested");

        // Objects, verified in parallel as they arrive.
        super::ingest::store_commits(&staging.path, &new_commits)?;
        self.receive_objects(reader, out, need, &staging.path, repo.mode == "archive")
            .await?;
        tracing::debug!("objects received and stored");

        let dry_run = req.dry_run;
        let ctx = finish::Ctx {
            shared,
            repo: &repo,
            identity: self.identity,
            reporter: self.reporter,
            cancel: &self.cancel,
        };
        // The client sends nothing more until our final frame: anything on the stream now
        // (end of stream, a frame) means it went away or broke the protocol. Stop before the
        // ref move then; once the move has started it completes.
        let applied = finish::prove_and_apply(&ctx, staging, &self.updates, dry_run);
        tokio::pin!(applied);
        tokio::select! {
            result = &mut applied => result?,
            _ = wire::read_frame(reader, MAX_CONTROL) => {
                self.cancel.cancel();
                applied.await?;
            }
        }
        finish::settle_and_summarize(&ctx, &self.updates, dry_run, req.no_update).await;
        for u in &self.updates {
            let r = self
                .results
                .iter_mut()
                .find(|r| r.name == u.name)
                .expect("listed");
            r.status = finish::status_of(u, dry_run);
            self.reporter.verbose(&finish::result_line(u, dry_run)).await;
        }
        Ok(0)
    }

    async fn receive_objects<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        out: &mut Out,
        need: Vec<ObjectId>,
        staging: &std::path::Path,
        archive: bool,
    ) -> Result<(), ReceiveError> {
        let limits = self.shared.config().limits.clone();
        let total = need.len() as u64;
        let mut pending: HashSet<ObjectId> = need.into_iter().collect();
        let pool = IngestPool::start(staging, archive)?;
        let watch = RateWatch::new(
            limits.min_transfer_rate,
            Duration::from_secs(limits.stall_timeout_secs),
        );
        let stalled = watch.stalled();
        tokio::pin!(stalled);
        let mut reader = Counted::new(reader, &watch);
        let max_frame =
            (limits.max_object_size + wire::OBJECT_HEADER as u64).min(wire::MAX_FRAME as u64) as u32;
        let mut bytes = 0u64;
        let mut last_progress = Instant::now();
        let result: Result<(), ReceiveError> = async {
            loop {
                let frame = tokio::select! {
                    frame = wire::read_frame(&mut reader, max_frame) => frame,
                    why = &mut stalled => return Err(ReceiveError::Stalled(why)),
                    _ = self.cancel.cancelled() => return Err(ReceiveError::Aborted),
                };
                let (k, payload) = match frame {
                    Ok(Some(frame)) => frame,
                    Ok(None) => return Err(ReceiveError::Aborted),
                    Err(wire::WireError::TooLarge(n)) => {
                        return Err(ReceiveError::Request(format!(
                            "object of {n} bytes is larger than the limit of {} bytes",
                            limits.max_object_size
                        )))
                    }
                    Err(e) => return Err(e.into()),
                };
                match k {
                    kind::OBJECT => {
                        let (id, flags, data) = wire::decode_object(&payload)?;
                        if !pending.remove(&id) {
                            return Err(ReceiveError::BadObject(format!(
                                "{}.{}: not requested (or sent twice)",
                                id.hex(),
                                super::ingest::ext(id.objtype)
                            )));
                        }
                        bytes += data.len() as u64;
                        if bytes > limits.max_push_size {
                            return Err(ReceiveError::Request(format!(
                                "push is larger than the limit of {} bytes",
                                limits.max_push_size
                            )));
                        }
                        let start = payload.len() - data.len();
                        if !pool.send(id, flags, payload, start).await {
                            // A worker stopped on a bad object: its error is reported below.
                            return Ok(());
                        }
                        super::testhook::pause(&self.shared.state.root, "transfer").await;
                        if last_progress.elapsed() > Duration::from_millis(250) {
                            last_progress = Instant::now();
                            let p = wire::Progress {
                                received: pool.stored(),
                                total,
                                bytes,
                            };
                            wire::write_json(out, kind::PROGRESS, &p).await?;
                        }
                    }
                    kind::OBJECTS_DONE => {
                        if !pending.is_empty() {
                            return Err(ReceiveError::Incomplete(format!(
                                "{} requested objects were not sent",
                                pending.len()
                            )));
                        }
                        return Ok(());
                    }
                    kind::ERROR => return Err(client_gave_up(&payload)),
                    other => {
                        return Err(ReceiveError::Request(format!(
                            "protocol error: unexpected frame '{}'",
                            other as char
                        )))
                    }
                }
            }
        }
        .await;
        let stored = pool.finish().await;
        result?;
        let p = wire::Progress {
            received: stored?,
            total,
            bytes,
        };
        crate::metrics::METRICS.received(p.received, bytes);
        wire::write_json(out, kind::PROGRESS, &p).await?;
        Ok(())
    }
}

async fn read_list<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Vec<ObjectId>, ReceiveError> {
    let mut listed = Vec::new();
    loop {
        let Some((k, payload)) = wire::read_frame(reader, MAX_CONTROL).await? else {
            return Err(ReceiveError::Aborted);
        };
        match k {
            kind::OBJECT_LIST => {
                listed.extend(wire::decode_ids(&payload)?);
                if listed.len() > MAX_LISTED {
                    return Err(ReceiveError::Request("too many objects listed".into()));
                }
            }
            kind::LIST_DONE => return Ok(listed),
            kind::ERROR => return Err(client_gave_up(&payload)),
            other => {
                return Err(ReceiveError::Request(format!(
                    "protocol error: unexpected frame '{}'",
                    other as char
                )))
            }
        }
    }
}

/// The listed objects the target lacks (commits we already hold are not asked for again).
async fn missing_objects(
    repo: &Repo,
    listed: Vec<ObjectId>,
    held: &[CommitInfo],
) -> Result<Vec<ObjectId>, ReceiveError> {
    let held: HashSet<String> = held.iter().map(|c| c.checksum.clone()).collect();
    let (path, archive) = (PathBuf::from(&repo.path), repo.mode == "archive");
    tokio::task::spawn_blocking(move || {
        let target = Presence::open(&[&path], archive)?;
        let mut seen = HashSet::new();
        let mut need = Vec::new();
        for id in listed {
            if !seen.insert(id) {
                continue;
            }
            match id.objtype {
                wire::objtype::FILE | wire::objtype::DIR_TREE | wire::objtype::DIR_META => {}
                wire::objtype::COMMIT if held.contains(&id.hex()) => continue,
                wire::objtype::COMMIT => {}
                other => {
                    return Err(ReceiveError::Request(format!(
                        "unknown object type {other} in the list"
                    )))
                }
            }
            if !target.has(&id)? {
                need.push(id);
            }
        }
        Ok(need)
    })
    .await?
}
