//! Phase 1: what is being asked — which repo (by name or configured path), which refs, and
//! from which URL (only a loopback forward held by this very session).

use std::sync::Arc;
use std::time::Duration;

use super::http::HttpSource;
use super::ReceiveError;
use crate::server::forward::ForwardPorts;
use crate::server::Shared;
use crate::store::repos::{self, Repo};

/// Finds the repo a client named. A leading `/` is ignored so `ssh://host:port/NAME` works;
/// the full configured path is accepted too (ostree-push users often pass paths).
pub async fn resolve_repo(shared: &Arc<Shared>, requested: &str) -> Result<Repo, ReceiveError> {
    let mut conn = shared.store.conn().await?;
    let trimmed = requested.trim_start_matches('/').trim_end_matches('/');
    if policy::validate_name("repo", trimmed).is_ok() {
        if let Some(repo) = repos::find(&mut conn, trimmed).await? {
            return Ok(repo);
        }
    }
    if requested.starts_with('/') && !requested.split('/').any(|c| c == ".." || c == ".") {
        if let Some(repo) = repos::find_by_path(&mut conn, requested.trim_end_matches('/')).await? {
            return Ok(repo);
        }
    }
    Err(ReceiveError::UnknownRepo(requested.chars().take(200).collect()))
}

pub fn validate_refs(refs: &[String], max: usize) -> Result<(), ReceiveError> {
    if refs.len() > max {
        return Err(ReceiveError::Request(format!(
            "too many refs in one push ({}, limit {max})",
            refs.len()
        )));
    }
    for name in refs {
        policy::validate_ref_name(name).map_err(|e| ReceiveError::Request(e.to_string()))?;
    }
    Ok(())
}

/// Accepts only `http://127.0.0.1:PORT/…` or `http://localhost:PORT/…` where PORT is one of
/// this session's forwards: the gateway must never be made to fetch from anywhere else.
pub fn tunnel_source(
    url: &str,
    forwards: &ForwardPorts,
    timeout: Duration,
) -> Result<HttpSource, ReceiveError> {
    let refuse = |why: &str| ReceiveError::Request(format!("refused URL {url}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| refuse("only http:// through this session's ssh -R forward is allowed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| refuse("the URL must name the forwarded port"))?;
    if host != "127.0.0.1" && host != "localhost" {
        return Err(refuse(
            "the host must be 127.0.0.1 or localhost (this session's forward)",
        ));
    }
    let port: u16 = port.parse().map_err(|_| refuse("invalid port"))?;
    if !forwards.contains(port) {
        return Err(refuse("the port is not a forward held by this SSH session"));
    }
    if path.contains("..") || path.contains(['?', '#', ' ', '%']) {
        return Err(refuse("invalid path"));
    }
    Ok(HttpSource {
        port,
        base: path.trim_end_matches('/').to_string(),
        timeout,
    })
}
