//! The SSH connection (pure Rust, russh): host key check, public key authentication, and the
//! `forwarded-tcpip` channels a `tcpip-forward` brings back.

mod auth;
mod hostkey;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use russh::client::{self, Msg, Session};
use russh::keys::PublicKey;
use russh::{Channel, ChannelOpenFailure, ChannelStream, Disconnect};
use tokio::sync::mpsc;

use hostkey::HostKeyCheck;
pub use hostkey::HostKeyError;

use crate::sshopts::SshSettings;

/// Forwarded connections of one `tcpip-forward`, as byte streams.
pub type ForwardedStreams = mpsc::UnboundedReceiver<ChannelStream<Msg>>;

#[derive(Default)]
struct Shared {
    hostkey_error: Mutex<Option<HostKeyError>>,
    warnings: Mutex<Vec<String>>,
    /// The remote port we forwarded and where its connections go.
    forward: Mutex<Option<(u32, mpsc::UnboundedSender<ChannelStream<Msg>>)>>,
}

pub struct ClientHandler {
    check: HostKeyCheck,
    shared: Arc<Shared>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // A certificate's key is checked like a plain key (no @cert-authority support).
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        match self.check.verify(&key) {
            Ok(warnings) => {
                self.shared.warnings.lock().expect("lock").extend(warnings);
                Ok(true)
            }
            Err(e) => {
                *self.shared.hostkey_error.lock().expect("lock") = Some(e);
                Ok(false)
            }
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let target = self.shared.forward.lock().expect("lock").clone();
        match target {
            Some((port, sender)) if port == connected_port => {
                tracing::debug!(
                    %connected_address, connected_port, %originator_address, originator_port,
                    "forwarded connection"
                );
                reply.accept().await;
                let _ = sender.send(channel.into_stream());
            }
            _ => {
                tracing::debug!(
                    connected_port,
                    "refusing a forwarded connection we did not ask for"
                );
                reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            }
        }
        Ok(())
    }
}

/// An authenticated SSH session.
pub struct Connection {
    handle: client::Handle<ClientHandler>,
    shared: Arc<Shared>,
    /// How we authenticated (which key), for -v.
    pub authenticated_with: String,
}

impl Connection {
    pub fn handle(&self) -> &client::Handle<ClientHandler> {
        &self.handle
    }

    /// Asks the server to listen on a loopback port and bring its connections back to us.
    /// Returns the allocated port and the connections.
    pub async fn forward_remote_port(&self) -> Result<(u32, ForwardedStreams)> {
        let port = self
            .handle
            .tcpip_forward("127.0.0.1", 0)
            .await
            .context("the server refused the port forward (tcpip-forward)")?;
        if port == 0 {
            return Err(anyhow!("the server did not allocate a port for the forward"));
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.shared.forward.lock().expect("lock") = Some((port, sender));
        Ok((port, receiver))
    }

    /// Refuses further forwarded connections and cancels the forward.
    pub async fn stop_forwarding(&self) {
        let taken = self.shared.forward.lock().expect("lock").take();
        if let Some((port, _)) = taken {
            let cancel = self.handle.cancel_tcpip_forward("127.0.0.1", port);
            let _ = tokio::time::timeout(Duration::from_secs(2), cancel).await;
        }
    }

    /// Says goodbye to the server (bounded in time).
    pub async fn close(self, reason: &str) {
        *self.shared.forward.lock().expect("lock") = None;
        let bye = self.handle.disconnect(Disconnect::ByApplication, reason, "en");
        let _ = tokio::time::timeout(Duration::from_secs(2), bye).await;
    }
}

/// Connects, checks the host key and authenticates. `warn` gets non-fatal messages.
pub async fn connect(settings: &SshSettings, warn: &mut dyn FnMut(String)) -> Result<Connection> {
    let shared = Arc::new(Shared::default());
    let handler = ClientHandler {
        check: HostKeyCheck::new(settings),
        shared: shared.clone(),
    };
    let config = client::Config {
        // AES-GCM first: it runs on the CPU's AES instructions, where there are any (the
        // client's order decides); the gateway decrypts every byte of a push.
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(&[
                russh::cipher::AES_256_GCM,
                russh::cipher::CHACHA20_POLY1305,
                russh::cipher::AES_256_CTR,
            ]),
            ..russh::Preferred::default()
        },
        nodelay: true,
        keepalive_interval: settings.server_alive_interval,
        inactivity_timeout: None,
        ..Default::default()
    };
    let address = (settings.hostname.as_str(), settings.port);
    tracing::debug!(host = %settings.hostname, port = settings.port, "connecting");
    let connecting = client::connect(Arc::new(config), address, handler);
    let result = match settings.connect_timeout {
        Some(limit) => tokio::time::timeout(limit, connecting)
            .await
            .map_err(|_| anyhow!("connection to {}:{} timed out", settings.hostname, settings.port))?,
        None => connecting.await,
    };
    for w in shared.warnings.lock().expect("lock").drain(..) {
        warn(w);
    }
    let mut handle = match result {
        Ok(handle) => handle,
        Err(e) => {
            if let Some(hk) = shared.hostkey_error.lock().expect("lock").take() {
                return Err(hk.into());
            }
            return Err(anyhow!(
                "cannot connect to {}:{}: {e}",
                settings.hostname,
                settings.port
            ));
        }
    };
    let authenticated_with = auth::authenticate(&mut handle, settings, warn).await?;
    Ok(Connection {
        handle,
        shared,
        authenticated_with,
    })
}
