//! The native stream transport: the `wire` protocol on the stdin/stdout of one exec of
//! `ostree-gateway-receive`. One round trip negotiates refs and commits, the gateway says which
//! objects it lacks, and those stream as their raw repo bytes (archive `.filez` as stored, no
//! re-compression). Returns `None` when the server has no native command (exit 127), so the
//! caller can fall back to the tunnel.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ostree::gio;
use ostree::gio::prelude::*;
use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncWriteExt};
use wire::treediff::{self, Root};
use wire::{kind, ObjectId, RefRequest, Status as WireStatus};

use super::{PushRequest, RemoteOutcome};
use crate::report::{RefResult, Status};
use crate::ssh::Connection;
use crate::ui::Ui;

const EXIT_NOT_FOUND: u32 = 127;
const MAX_CONTROL: u32 = 64 << 20;
/// Objects are written through a buffer of this size: a little under the gateway's maximum
/// SSH packet (65,535 bytes), so one flush fills one packet.
const OBJECT_BUFFER: usize = 63 << 10;

pub async fn push(conn: &Connection, request: &PushRequest, ui: &mut Ui) -> Result<Option<RemoteOutcome>> {
    let channel = conn
        .handle()
        .channel_open_session()
        .await
        .context("cannot open an SSH session channel")?;
    channel
        .exec(true, wire::COMMAND)
        .await
        .context("cannot start the native receive")?;
    let (mut read, write) = channel.split();
    // One pump owns the read half: stdout bytes → a pipe we parse frames from; stderr → lines;
    // the exit status → the end.
    let (mut frames, mut pipe) = tokio::io::duplex(1 << 20);
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let pump = tokio::spawn(async move {
        let mut status = None;
        let mut pending = Vec::new();
        while let Some(msg) = read.wait().await {
            match msg {
                ChannelMsg::Data { data } if pipe.write_all(&data).await.is_err() => break,
                ChannelMsg::Data { .. } => {}
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    pending.extend_from_slice(&data);
                    while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        let _ = lines_tx.send(String::from_utf8_lossy(&line).trim_end().to_string());
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Eof => {
                    let _ = pipe.shutdown().await;
                }
                _ => {}
            }
        }
        drop(pipe);
        status
    });
    let mut out = write.make_writer();
    let session = Session {
        request,
        local: request.repo.clone(),
    };
    let result = session.run(&mut frames, &mut out, ui, &mut lines_rx).await;
    if let Err(e) = &result {
        // A local failure mid-protocol (an unreadable object, a missing commit): tell the
        // gateway and end our side, so it stops with nothing moved and closes the channel
        // instead of waiting for frames that will never come.
        let message = wire::ErrorMessage {
            message: format!("{e:#}"),
        };
        let _ = wire::write_json(&mut out, kind::ERROR, &message).await;
        let _ = out.shutdown().await;
    }
    drop(out);
    let status = pump.await.ok().flatten();
    let mut errors = Vec::new();
    while let Ok(line) = lines_rx.try_recv() {
        if let Some(e) = line.strip_prefix("error: ") {
            errors.push(e.to_string());
        } else if !line.is_empty() {
            ui.verbose(&line);
        }
    }
    match result {
        Ok(Some(last)) => {
            let results = last.refs.iter().map(convert).collect();
            if let Some(e) = last.error {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
            Ok(Some(RemoteOutcome {
                results,
                errors,
                status: last.exit_code,
            }))
        }
        Ok(None) if status == Some(EXIT_NOT_FOUND) => Ok(None),
        Ok(None) => bail!(
            "the gateway ended the push without a result (exit status {}){}",
            status.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()),
            errors.first().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        Err(e) if status == Some(EXIT_NOT_FOUND) => {
            tracing::debug!(error = %e, "no native receive on the server");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn convert(r: &wire::RefResult) -> RefResult {
    let status = match r.status {
        WireStatus::Created => Status::Created,
        WireStatus::Updated => Status::Updated,
        WireStatus::ForceUpdated => Status::ForceUpdated,
        WireStatus::Deleted => Status::Deleted,
        WireStatus::UpToDate => Status::UpToDate,
        WireStatus::DryRun => Status::DryRun,
        _ => Status::Rejected,
    };
    let reason = match (status, &r.reason) {
        (Status::Rejected, None) => Some(format!("{:?}", r.status).to_lowercase()),
        (_, reason) => reason.clone(),
    };
    RefResult {
        name: r.name.clone(),
        old: r.old.clone(),
        new: r.new.clone(),
        status,
        reason,
    }
}

struct Session<'a> {
    request: &'a PushRequest,
    local: PathBuf,
}

impl Session<'_> {
    /// `Ok(None)`: the stream ended before the gateway said anything (no native command).
    async fn run<R: AsyncRead + Unpin>(
        &self,
        frames: &mut R,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
        ui: &mut Ui,
        lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    ) -> Result<Option<wire::Final>> {
        let hello = wire::Hello {
            version: wire::PROTOCOL_VERSION,
            client: format!("ostree-push/{}", env!("CARGO_PKG_VERSION")),
        };
        let mut refs: Vec<RefRequest> = self
            .request
            .refs
            .iter()
            .map(|(n, c)| RefRequest {
                name: n.clone(),
                new: Some(c.clone()),
            })
            .collect();
        refs.extend(self.request.deletions.iter().map(|n| RefRequest {
            name: n.clone(),
            new: None,
        }));
        let req = wire::Request {
            repo: self.request.remote_path.clone(),
            refs,
            dry_run: self.request.dry_run,
            force: self.request.force,
            no_update: false,
        };
        // A server without the command closes the channel: writes may fail, that's fine.
        if wire::write_json(out, kind::HELLO, &hello).await.is_err()
            || wire::write_json(out, kind::REQUEST, &req).await.is_err()
        {
            return Ok(None);
        }
        let Some((k, payload)) = wire::read_frame(frames, MAX_CONTROL).await? else {
            return Ok(None);
        };
        if k == kind::FINAL {
            return Ok(Some(wire::parse_json(&payload)?));
        }
        if k != kind::REF_STATUS {
            bail!("protocol error: unexpected first frame '{}'", k as char);
        }
        let status: wire::RefStatus = wire::parse_json(&payload)?;
        let pending: Vec<(Option<String>, String)> = status
            .refs
            .iter()
            .filter(|r| r.status == WireStatus::Pending)
            .filter_map(|r| r.new.clone().map(|n| (r.old.clone(), n)))
            .collect();
        // Commits (with the chain down to the gateway's values); the object list is walked
        // while the gateway checks them.
        let local = self.local.clone();
        let plan = tokio::task::spawn_blocking(move || plan(&local, &pending)).await??;
        let local = self.local.clone();
        let walks = plan.walks;
        let listing = tokio::task::spawn_blocking(move || list_objects(&local, &walks));
        for (checksum, bytes, meta) in &plan.commits {
            wire::write_frame(
                out,
                kind::COMMIT,
                &[&wire::encode_commit(checksum, bytes, meta.as_deref())],
            )
            .await?;
        }
        wire::write_json(out, kind::COMMITS_DONE, &serde_json::json!({})).await?;
        out.flush().await?;
        let (k, payload) = wire::read_frame(frames, MAX_CONTROL)
            .await?
            .ok_or_else(|| anyhow!("the gateway closed the stream"))?;
        if k == kind::FINAL {
            return Ok(Some(wire::parse_json(&payload)?));
        }
        let decisions: wire::Decisions = wire::parse_json(&payload)?;
        if !decisions.proceed {
            return read_final(frames, ui).await;
        }
        let objects = listing.await??;
        for chunk in objects.chunks(30_000) {
            wire::write_frame(out, kind::OBJECT_LIST, &[&wire::encode_ids(chunk)]).await?;
        }
        wire::write_json(out, kind::LIST_DONE, &serde_json::json!({})).await?;
        out.flush().await?;
        let mut need = Vec::new();
        loop {
            let (k, payload) = wire::read_frame(frames, MAX_CONTROL)
                .await?
                .ok_or_else(|| anyhow!("the gateway closed the stream"))?;
            match k {
                kind::NEED => need.extend(wire::decode_ids(&payload)?),
                kind::NEED_DONE => break,
                kind::FINAL => return Ok(Some(wire::parse_json(&payload)?)),
                other => bail!("protocol error: unexpected frame '{}'", other as char),
            }
        }
        ui.verbose(&format!("Sending {} objects", need.len()));
        // Objects read on a blocking thread, written here.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(ObjectId, u8, Vec<u8>)>>(32);
        let local = self.local.clone();
        let total = need.len() as u64;
        let reader = tokio::task::spawn_blocking(move || read_objects(&local, need, tx));
        // Each write on the channel becomes an SSH packet of its own: a frame is three writes
        // (frame header, object header, bytes) and most objects are small, so without the
        // buffer a push sent three packets per object, each encrypted, queued and decrypted
        // on its own.
        let mut out = tokio::io::BufWriter::with_capacity(OBJECT_BUFFER, &mut *out);
        let (mut sent, mut sent_bytes) = (0u64, 0u64);
        let streamed: Result<()> = async {
            while let Some(item) = rx.recv().await {
                let (id, flags, bytes) = item?;
                wire::write_frame(
                    &mut out,
                    kind::OBJECT,
                    &[&wire::object_header(&id, flags), &bytes],
                )
                .await?;
                sent += 1;
                sent_bytes += bytes.len() as u64;
                ui.progress_of("Sending objects", sent, total, Some(sent_bytes));
                while let Ok(line) = lines.try_recv() {
                    ui.verbose(&line);
                }
            }
            reader.await??;
            wire::write_json(&mut out, kind::OBJECTS_DONE, &serde_json::json!({})).await?;
            Ok(())
        }
        .await;
        // Only whole frames are buffered: deliver them even after a local failure, so the
        // ERROR frame that follows is read as one.
        out.flush().await?;
        streamed?;
        read_final(frames, ui).await
    }
}

async fn read_final<R: AsyncRead + Unpin>(frames: &mut R, ui: &mut Ui) -> Result<Option<wire::Final>> {
    while let Some((k, payload)) = wire::read_frame(frames, MAX_CONTROL).await? {
        match k {
            kind::PROGRESS => {
                let p: wire::Progress = wire::parse_json(&payload)?;
                ui.progress_of("Verified objects", p.received, p.total, Some(p.bytes));
            }
            kind::FINAL => return Ok(Some(wire::parse_json(&payload)?)),
            _ => {}
        }
    }
    Ok(None)
}

type CommitFrame = ([u8; 32], Vec<u8>, Option<Vec<u8>>);

struct Plan {
    commits: Vec<CommitFrame>,
    /// Each new commit, with the gateway's commit to diff its tree against (when known here).
    walks: Vec<(String, Option<String>)>,
}

fn open(path: &Path) -> Result<ostree::Repo> {
    let repo = ostree::Repo::new_for_path(path);
    repo.open(gio::Cancellable::NONE)?;
    Ok(repo)
}

/// For each (gateway's current, new) pair: the new commit and its parents down to the current
/// one (the gateway checks the fast-forward with them), and what to walk for the object list.
fn plan(path: &Path, pending: &[(Option<String>, String)]) -> Result<Plan> {
    let repo = open(path)?;
    let mut commits = Vec::new();
    let mut sent = HashSet::new();
    let mut walks = Vec::new();
    for (old, new) in pending {
        let mut chain = Vec::new();
        let mut current = Some(new.clone());
        let mut reached_old = false;
        for _ in 0..1000 {
            let Some(c) = current.take() else { break };
            if Some(&c) == old.as_ref() {
                reached_old = true;
                break;
            }
            let Some(variant) = repo.load_variant_if_exists(ostree::ObjectType::Commit, &c)? else {
                break;
            };
            current = ostree::commit_get_parent(&variant).map(|s| s.to_string());
            chain.push((c, variant));
        }
        // Without the old commit in our history the chain proves nothing: send the tip only.
        if !reached_old {
            chain.truncate(1);
        }
        for (c, variant) in chain {
            if !sent.insert(c.clone()) {
                continue;
            }
            let meta = repo.read_commit_detached_metadata(&c, gio::Cancellable::NONE)?;
            let checksum = wire::unhex(&c).ok_or_else(|| anyhow!("bad checksum {c}"))?;
            commits.push((
                checksum,
                variant.data_as_bytes().to_vec(),
                meta.map(|m| m.data_as_bytes().to_vec()),
            ));
        }
        walks.push((new.clone(), old.clone().filter(|_| reached_old)));
    }
    Ok(Plan { commits, walks })
}

/// Every object of each new commit's tree that is not at the same path in the gateway's
/// commit (see `wire::treediff`): unchanged subtrees are not walked.
fn list_objects(path: &Path, walks: &[(String, Option<String>)]) -> Result<Vec<ObjectId>> {
    let repo = open(path)?;
    let mut objects = Vec::new();
    let mut listed = HashSet::new();
    let root_of = |c: &str| -> Result<Root> {
        Ok(Root::of_commit(
            &repo.load_variant(ostree::ObjectType::Commit, c)?,
        ))
    };
    for (new, old) in walks {
        let base = old.as_deref().map(root_of).transpose()?;
        treediff::walk::<anyhow::Error>(&repo, &root_of(new)?, base.as_ref(), &mut listed, &mut |id| {
            objects.push(id);
            Ok(())
        })?;
    }
    Ok(objects)
}

/// Reads each needed object's bytes: archive repos' files as stored (`.filez` compressed);
/// otherwise metadata via libostree and content as an uncompressed content stream.
fn read_objects(
    path: &Path,
    need: Vec<ObjectId>,
    tx: tokio::sync::mpsc::Sender<Result<(ObjectId, u8, Vec<u8>)>>,
) -> Result<()> {
    let repo = open(path)?;
    let archive = repo.mode() == ostree::RepoMode::Archive;
    for id in need {
        let hex = id.hex();
        let item = (|| -> Result<(ObjectId, u8, Vec<u8>)> {
            if archive {
                let ext = match id.objtype {
                    wire::objtype::FILE => "filez",
                    wire::objtype::DIR_TREE => "dirtree",
                    wire::objtype::DIR_META => "dirmeta",
                    _ => "commit",
                };
                let file = path
                    .join("objects")
                    .join(&hex[..2])
                    .join(format!("{}.{ext}", &hex[2..]));
                let bytes =
                    std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
                let flags = if id.objtype == wire::objtype::FILE {
                    wire::FLAG_COMPRESSED
                } else {
                    0
                };
                return Ok((id, flags, bytes));
            }
            let kind = match id.objtype {
                wire::objtype::FILE => {
                    let (stream, _len) =
                        repo.load_object_stream(ostree::ObjectType::File, &hex, gio::Cancellable::NONE)?;
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut stream.into_read(), &mut bytes)?;
                    return Ok((id, 0, bytes));
                }
                wire::objtype::DIR_TREE => ostree::ObjectType::DirTree,
                wire::objtype::DIR_META => ostree::ObjectType::DirMeta,
                _ => ostree::ObjectType::Commit,
            };
            Ok((id, 0, repo.load_variant(kind, &hex)?.data_as_bytes().to_vec()))
        })();
        if tx.blocking_send(item).is_err() {
            break;
        }
    }
    Ok(())
}
