//! How refs and objects get to the receiver. Each transport is one module; the rest of the
//! client (local repo, SSH, reporting) is shared.
//!
//! - [`tunnel`]: the classic ostree-push 1.x flow: serve the local repo over HTTP through an
//!   SSH remote forward and run `ostree-receive-1` on the server, which pulls from it.
//!
//! - [`native`]: the gateway's stream protocol on the exec channel (faster; deletions).

pub mod native;
pub mod tunnel;

use std::path::PathBuf;

use anyhow::Result;

use crate::report::RefResult;
use crate::ssh::Connection;
use crate::ui::{Ui, Verbosity};

/// What to push, independent of the transport.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// Local repository (canonical path).
    pub repo: PathBuf,
    /// Repository path on the server, as given in DEST.
    pub remote_path: String,
    /// Refs and the local commits they point at, sorted by name.
    pub refs: Vec<(String, String)>,
    /// Refs to delete on the server (`:REF`; native protocol only).
    pub deletions: Vec<String>,
    pub dry_run: bool,
    pub force: bool,
    pub verbosity: Verbosity,
    /// Remote commands to try in order (`--command`).
    pub commands: Vec<String>,
}

impl PushRequest {
    pub fn ref_names(&self) -> Vec<String> {
        self.refs.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// What the receiver said.
#[derive(Debug, Default)]
pub struct RemoteOutcome {
    /// One per ref the receiver reported on.
    pub results: Vec<RefResult>,
    /// `error: …` lines.
    pub errors: Vec<String>,
    /// Exit status of the remote command.
    pub status: u32,
}

/// The ways to push (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Native,
    Tunnel,
}

impl Transport {
    /// Pushes `request` over `conn`. The caller closes the connection afterwards.
    /// `Ok(None)` only from the native transport: the server does not speak it.
    pub async fn push(
        self,
        conn: &Connection,
        request: &PushRequest,
        ui: &mut Ui,
    ) -> Result<Option<RemoteOutcome>> {
        match self {
            Transport::Native => native::push(conn, request, ui).await,
            Transport::Tunnel => tunnel::push(conn, request, ui).await.map(Some),
        }
    }
}
