//! A native-protocol client for tests: speaks `wire` frames to `ostree-gateway-receive`
//! through the real OpenSSH client (a child process), reading objects straight from a local
//! archive repo. Hooks let a test play a hostile client.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use ostree::gio;
use wire::{kind, ObjectId, RefRequest, Status};

use crate::server::OpenSsh;

pub fn write_frame(w: &mut impl Write, k: u8, parts: &[&[u8]]) -> std::io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    w.write_all(&[k])?;
    w.write_all(&(len as u32).to_be_bytes())?;
    for p in parts {
        w.write_all(p)?;
    }
    Ok(())
}

pub fn write_json(w: &mut impl Write, k: u8, value: &impl serde::Serialize) -> std::io::Result<()> {
    write_frame(w, k, &[&serde_json::to_vec(value).unwrap()])
}

pub fn read_frame(r: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    r.read_exact(&mut header).ok()?;
    let mut payload = vec![0u8; u32::from_be_bytes(header[1..].try_into().unwrap()) as usize];
    r.read_exact(&mut payload).ok()?;
    Some((header[0], payload))
}

/// Rewrites an object's bytes before sending (`None`: send them as they are).
pub type Corruptor = Box<dyn Fn(&ObjectId, &[u8]) -> Option<Vec<u8>>>;

/// How the client misbehaves (all off by default).
#[derive(Default)]
pub struct Hostility {
    /// Replace an object's bytes before sending: (id, flags, bytes) → new bytes.
    pub corrupt: Option<Corruptor>,
    /// Send this object type byte instead of the real one for the first content object.
    pub wrong_type_for_first_file: Option<u8>,
    /// Also send an object the gateway did not ask for.
    pub unrequested: bool,
    /// Leave these object types out of the list (so the gateway never asks for them).
    pub omit_from_list: Option<u8>,
    /// Stop sending after this many objects, mid-frame, and close the connection.
    pub truncate_after: Option<usize>,
    /// Send the first object over 1000 bytes a byte every 100 ms (for at most a minute, or
    /// until the gateway hangs up).
    pub trickle_large: bool,
}

/// The outcome: the final frame (if any), all frames seen, the ssh exit status and stderr.
pub struct Outcome {
    pub last: Option<wire::Final>,
    pub decisions: Option<wire::Decisions>,
    pub needed: usize,
    pub exit: Option<i32>,
    pub stderr: String,
}

impl Outcome {
    pub fn status_of(&self, name: &str) -> Option<Status> {
        self.last
            .as_ref()?
            .refs
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.status)
    }
}

pub struct NativeClient {
    local: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

fn objtype_of(t: ostree::ObjectType) -> Option<u8> {
    Some(match t {
        ostree::ObjectType::File => wire::objtype::FILE,
        ostree::ObjectType::DirTree => wire::objtype::DIR_TREE,
        ostree::ObjectType::DirMeta => wire::objtype::DIR_META,
        ostree::ObjectType::Commit => wire::objtype::COMMIT,
        _ => return None,
    })
}

fn ext(t: u8) -> &'static str {
    match t {
        wire::objtype::FILE => "filez",
        wire::objtype::DIR_TREE => "dirtree",
        wire::objtype::DIR_META => "dirmeta",
        _ => "commit",
    }
}

impl NativeClient {
    pub fn connect(ssh: &OpenSsh, local: &Path) -> NativeClient {
        let mut child = ssh
            .ssh()
            .arg(ssh.target())
            .arg(wire::COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        NativeClient {
            local: local.to_path_buf(),
            child,
            stdin,
            stdout,
        }
    }

    fn repo(&self) -> ostree::Repo {
        let repo = ostree::Repo::new_for_path(&self.local);
        repo.open(gio::Cancellable::NONE).unwrap();
        repo
    }

    fn object_bytes(&self, id: &ObjectId) -> Vec<u8> {
        let hex = id.hex();
        std::fs::read(
            self.local
                .join(format!("objects/{}/{}.{}", &hex[..2], &hex[2..], ext(id.objtype))),
        )
        .unwrap()
    }

    /// Pushes `refs` (name → commit, or None to delete) to `repo` and returns what happened.
    pub fn push(
        mut self,
        repo_name: &str,
        refs: &[(&str, Option<String>)],
        dry_run: bool,
        evil: Hostility,
    ) -> Outcome {
        let mut w = self.stdin.take().unwrap();
        let local = self.repo();
        let hello = wire::Hello {
            version: wire::PROTOCOL_VERSION,
            client: "e2e-test".into(),
        };
        let request = wire::Request {
            repo: repo_name.into(),
            refs: refs
                .iter()
                .map(|(n, c)| RefRequest {
                    name: n.to_string(),
                    new: c.clone(),
                })
                .collect(),
            dry_run,
            force: false,
            no_update: false,
        };
        let mut outcome = Outcome {
            last: None,
            decisions: None,
            needed: 0,
            exit: None,
            stderr: String::new(),
        };
        let go = (|| -> Option<()> {
            write_json(&mut w, kind::HELLO, &hello).ok()?;
            write_json(&mut w, kind::REQUEST, &request).ok()?;
            w.flush().ok()?;
            let (k, p) = read_frame(&mut self.stdout)?;
            if k != kind::REF_STATUS {
                outcome.last = serde_json::from_slice(&p).ok();
                return None;
            }
            let status: wire::RefStatus = serde_json::from_slice(&p).unwrap();
            // Commits: each new one and its chain down to the gateway's value.
            let mut roots = Vec::new();
            let mut stop_at = Vec::new();
            for r in status.refs.iter().filter(|r| r.status == Status::Pending) {
                let Some(new) = &r.new else { continue };
                roots.push(new.clone());
                let mut current = Some(new.clone());
                for _ in 0..100 {
                    let Some(c) = current.clone() else { break };
                    if Some(&c) == r.old.as_ref() {
                        stop_at.push(c);
                        break;
                    }
                    let id = ObjectId::from_hex(wire::objtype::COMMIT, &c).unwrap();
                    let hex = id.hex();
                    let Ok(bytes) = std::fs::read(self.local.join(format!(
                        "objects/{}/{}.commit",
                        &hex[..2],
                        &hex[2..]
                    ))) else {
                        break;
                    };
                    let meta = std::fs::read(self.local.join(format!(
                        "objects/{}/{}.commitmeta",
                        &hex[..2],
                        &hex[2..]
                    )))
                    .ok();
                    write_frame(
                        &mut w,
                        kind::COMMIT,
                        &[&wire::encode_commit(&id.checksum, &bytes, meta.as_deref())],
                    )
                    .ok()?;
                    let variant = local.load_variant(ostree::ObjectType::Commit, &c).unwrap();
                    current = ostree::commit_get_parent(&variant).map(|s| s.to_string());
                }
            }
            write_json(&mut w, kind::COMMITS_DONE, &serde_json::json!({})).ok()?;
            w.flush().ok()?;
            let (k, p) = read_frame(&mut self.stdout)?;
            if k != kind::DECISIONS {
                outcome.last = serde_json::from_slice(&p).ok();
                return None;
            }
            let decisions: wire::Decisions = serde_json::from_slice(&p).unwrap();
            let proceed = decisions.proceed;
            outcome.decisions = Some(decisions);
            if !proceed {
                return None;
            }
            // List every reachable object, minus what the gateway's current commits reach.
            let mut have = HashSet::new();
            for old in &stop_at {
                for o in local.traverse_commit(old, 0, gio::Cancellable::NONE).unwrap() {
                    have.insert((o.checksum().to_string(), o.object_type()));
                }
            }
            let mut ids = Vec::new();
            for root in &roots {
                for o in local.traverse_commit(root, 0, gio::Cancellable::NONE).unwrap() {
                    let Some(t) = objtype_of(o.object_type()) else {
                        continue;
                    };
                    if have.contains(&(o.checksum().to_string(), o.object_type()))
                        || evil.omit_from_list == Some(t)
                    {
                        continue;
                    }
                    ids.push(ObjectId::from_hex(t, o.checksum()).unwrap());
                }
            }
            write_frame(&mut w, kind::OBJECT_LIST, &[&wire::encode_ids(&ids)]).ok()?;
            write_json(&mut w, kind::LIST_DONE, &serde_json::json!({})).ok()?;
            w.flush().ok()?;
            let mut need = Vec::new();
            loop {
                let (k, p) = read_frame(&mut self.stdout)?;
                match k {
                    kind::NEED => need.extend(wire::decode_ids(&p).unwrap()),
                    kind::NEED_DONE => break,
                    _ => {
                        outcome.last = serde_json::from_slice(&p).ok();
                        return None;
                    }
                }
            }
            outcome.needed = need.len();
            let mut wrong_type_used = false;
            for (i, id) in need.iter().enumerate() {
                let mut bytes = self.object_bytes(id);
                if let Some(corrupt) = &evil.corrupt {
                    if let Some(b) = corrupt(id, &bytes) {
                        bytes = b;
                    }
                }
                let mut sent = *id;
                if id.objtype == wire::objtype::FILE && !wrong_type_used {
                    if let Some(t) = evil.wrong_type_for_first_file {
                        sent.objtype = t;
                        wrong_type_used = true;
                    }
                }
                let flags = if id.objtype == wire::objtype::FILE {
                    wire::FLAG_COMPRESSED
                } else {
                    0
                };
                if evil.truncate_after == Some(i) {
                    let header = wire::object_header(&sent, flags);
                    let len = (header.len() + bytes.len()) as u32;
                    w.write_all(&[kind::OBJECT]).ok()?;
                    w.write_all(&len.to_be_bytes()).ok()?;
                    w.write_all(&header).ok()?;
                    w.write_all(&bytes[..bytes.len() / 2]).ok()?;
                    return None;
                }
                if evil.trickle_large && bytes.len() > 1000 {
                    let header = wire::object_header(&sent, flags);
                    let len = (header.len() + bytes.len()) as u32;
                    w.write_all(&[kind::OBJECT]).ok()?;
                    w.write_all(&len.to_be_bytes()).ok()?;
                    w.write_all(&header).ok()?;
                    for byte in bytes.iter().take(600) {
                        w.write_all(&[*byte]).ok()?;
                        w.flush().ok()?;
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    return None;
                }
                write_frame(
                    &mut w,
                    kind::OBJECT,
                    &[&wire::object_header(&sent, flags), &bytes],
                )
                .ok()?;
            }
            if evil.unrequested {
                let id = ObjectId {
                    objtype: wire::objtype::DIR_META,
                    checksum: [9; 32],
                };
                write_frame(&mut w, kind::OBJECT, &[&wire::object_header(&id, 0), b"x"]).ok()?;
            }
            write_json(&mut w, kind::OBJECTS_DONE, &serde_json::json!({})).ok()?;
            w.flush().ok()?;
            Some(())
        })();
        // Keep our side open until the final frame (closing it cancels the push), except
        // after a deliberate truncation, where going away is the point.
        if go.is_none() {
            drop(w);
            while let Some((k, p)) = read_frame(&mut self.stdout) {
                if k == kind::FINAL {
                    outcome.last = serde_json::from_slice(&p).ok();
                }
            }
        } else {
            while let Some((k, p)) = read_frame(&mut self.stdout) {
                if k == kind::FINAL {
                    outcome.last = serde_json::from_slice(&p).ok();
                    break;
                }
            }
            drop(w);
        }
        let out = self.child.wait_with_output().unwrap();
        outcome.exit = out.status.code();
        outcome.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        outcome
    }
}
