//! `ssh -R` forwards. Whatever the client asks, the gateway binds an ephemeral port on
//! 127.0.0.1 and relays each connection to the client over a `forwarded-tcpip` channel. Only
//! the receive of the same session may fetch through it (see `receive::request`), and every
//! forward closes with its session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use russh::server::Handle;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("too many forwards in this session (limit {0})")]
    TooMany(usize),
    #[error("cannot bind a loopback port: {0}")]
    Bind(#[from] std::io::Error),
}

/// The forwards of one session; dropping it stops them all.
pub struct Forwards {
    max: usize,
    active: Arc<Mutex<HashMap<u16, JoinHandle<()>>>>,
}

/// A snapshot of a session's forwarded ports, for URL checks.
#[derive(Clone, Default, Debug)]
pub struct ForwardPorts(Arc<Mutex<HashMap<u16, JoinHandle<()>>>>);

impl ForwardPorts {
    pub fn contains(&self, port: u16) -> bool {
        self.0.lock().expect("forwards lock").contains_key(&port)
    }
}

impl Forwards {
    pub fn new(max: usize) -> Forwards {
        Forwards {
            max,
            active: Arc::default(),
        }
    }

    pub fn ports(&self) -> ForwardPorts {
        ForwardPorts(self.active.clone())
    }

    /// Binds a loopback port and starts relaying; returns the port.
    pub async fn open(&mut self, requested_address: &str, handle: Handle) -> Result<u16, ForwardError> {
        if self.active.lock().expect("forwards lock").len() >= self.max {
            return Err(ForwardError::TooMany(self.max));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        // OpenSSH matches the forwarded-tcpip channel by the address it asked for: echo it.
        let address = requested_address.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, origin)) = listener.accept().await else {
                    break;
                };
                let handle = handle.clone();
                let address = address.clone();
                tokio::spawn(async move {
                    let channel = match handle
                        .channel_open_forwarded_tcpip(
                            address,
                            u32::from(port),
                            origin.ip().to_string(),
                            u32::from(origin.port()),
                        )
                        .await
                    {
                        Ok(channel) => channel,
                        Err(e) => {
                            tracing::debug!(error = %e, "client refused forwarded connection");
                            return;
                        }
                    };
                    let mut stream = channel.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut stream).await;
                });
            }
        });
        self.active.lock().expect("forwards lock").insert(port, task);
        Ok(port)
    }

    pub fn close(&mut self, port: u16) -> bool {
        match self.active.lock().expect("forwards lock").remove(&port) {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        }
    }
}

impl Drop for Forwards {
    fn drop(&mut self) {
        for (_, task) in self.active.lock().expect("forwards lock").drain() {
            task.abort();
        }
    }
}
