//! Where a push's refs and objects come from. The tunnel source reads the pusher's repo over
//! HTTP through its `-R` forward; the native stream source (push CLI) plugs in beside it.
//! Only this module and `transfer` differ between the two: every other phase is shared.

use ostree::glib;

use super::commit::{self, CommitInfo, MAX_COMMITMETA_SIZE, MAX_COMMIT_SIZE};
use super::http::HttpSource;
use super::ReceiveError;

/// Summaries list every ref; big Flatpak repos have large ones, but not this large.
const MAX_SUMMARY_SIZE: u64 = 256 << 20;

pub enum Source {
    Tunnel(HttpSource),
    /// Native path: the commits the client sent (new ones and their chain down to the
    /// gateway's current values), already verified.
    Native(std::collections::HashMap<String, CommitInfo>),
}

/// Refs never pushed when none are named (as ostree-receive does).
pub fn is_default_excluded(name: &str) -> bool {
    name.starts_with("appstream/") || name.starts_with("appstream2/") || name == "ostree-metadata"
}

fn object_path(checksum: &str, ext: &str) -> String {
    format!("objects/{}/{}.{ext}", &checksum[..2], &checksum[2..])
}

impl Source {
    /// The commit a named ref points to on the pusher's side.
    pub async fn resolve_ref(&self, name: &str) -> Result<Option<String>, ReceiveError> {
        match self {
            Source::Tunnel(http) => {
                let Some(body) = http.get(&format!("refs/heads/{name}"), 1024).await? else {
                    return Ok(None);
                };
                let text = String::from_utf8_lossy(&body).trim().to_string();
                if !commit::is_checksum(&text) {
                    return Err(ReceiveError::Source(format!(
                        "ref {name} on the pusher is not a commit checksum"
                    )));
                }
                Ok(Some(text))
            }
            Source::Native(_) => Err(ReceiveError::Source(
                "the native client names every commit".into(),
            )),
        }
    }

    /// Every ref of the pusher's repo, from its summary.
    pub async fn list_refs(&self) -> Result<Vec<(String, String)>, ReceiveError> {
        match self {
            Source::Tunnel(http) => {
                let body = http.get("summary", MAX_SUMMARY_SIZE).await?.ok_or_else(|| {
                    ReceiveError::Source("the pusher's repo has no summary: name the refs to push".into())
                })?;
                parse_summary_refs(&body)
            }
            Source::Native(_) => Err(ReceiveError::Source("the native client names every ref".into())),
        }
    }

    /// A commit and its detached metadata, verified and parsed; `None` if the pusher lacks it.
    pub async fn fetch_commit(&self, checksum: &str) -> Result<Option<CommitInfo>, ReceiveError> {
        match self {
            Source::Tunnel(http) => {
                let Some(bytes) = http
                    .get(&object_path(checksum, "commit"), MAX_COMMIT_SIZE)
                    .await?
                else {
                    return Ok(None);
                };
                let detached = http
                    .get(&object_path(checksum, "commitmeta"), MAX_COMMITMETA_SIZE)
                    .await?;
                Ok(Some(commit::parse(checksum, bytes, detached)?))
            }
            Source::Native(commits) => Ok(commits.get(checksum).cloned()),
        }
    }
}

/// Refs of a summary file: `(a(s(taya{sv}))a{sv})`.
pub fn parse_summary_refs(bytes: &[u8]) -> Result<Vec<(String, String)>, ReceiveError> {
    let bad = || ReceiveError::Source("the pusher's summary file is malformed".into());
    let ty = glib::VariantTy::new("(a(s(taya{sv}))a{sv})").expect("valid type");
    let summary = glib::Variant::from_bytes_with_type(&glib::Bytes::from(bytes), ty);
    if !summary.is_normal_form() {
        return Err(bad());
    }
    let refs = summary.child_value(0);
    let mut out = Vec::with_capacity(refs.n_children());
    for entry in refs.iter() {
        let name = entry.child_value(0).str().ok_or_else(bad)?.to_string();
        let raw = entry.child_value(1).child_value(1);
        let csum = raw.fixed_array::<u8>().map_err(|_| bad())?;
        if csum.len() != 32 {
            return Err(bad());
        }
        out.push((name, hex::encode(csum)));
    }
    Ok(out)
}
