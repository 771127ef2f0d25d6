//! One SSH session: public-key authentication bound to a stored identity, then only `exec`
//! of a receive command and loopback `-R` forwards. Everything else is refused without ever
//! returning `Err` (which would kill the whole session): refusals are channel-level.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::HashAlg;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure};

use super::forward::Forwards;
use super::limits::{ConnectionSlot, UserSlot};
use super::remote_admin;
use super::reporter::Reporter;
use super::Shared;
use crate::command::{self, Command};
use crate::metrics::METRICS;
use crate::receive::{self, Identity};
use crate::store::{keys, users};

pub struct SessionHandler {
    shared: Arc<Shared>,
    peer: SocketAddr,
    identity: Option<Identity>,
    /// `None` after auth when the user is over `max_sessions_per_user`: commands are refused.
    user_slot: Option<UserSlot>,
    _connection: ConnectionSlot,
    channels: HashMap<ChannelId, Channel<Msg>>,
    forwards: Forwards,
    /// Set once authenticated; the accept loop disconnects sessions that never get there.
    authenticated: Arc<std::sync::atomic::AtomicBool>,
    /// One span per session (user, key, peer): every task the session starts runs in it.
    span: tracing::Span,
}

impl SessionHandler {
    pub fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        connection: ConnectionSlot,
        authenticated: Arc<std::sync::atomic::AtomicBool>,
    ) -> SessionHandler {
        let max_forwards = shared.config().server.max_forwards_per_session;
        SessionHandler {
            shared,
            peer,
            identity: None,
            user_slot: None,
            _connection: connection,
            channels: HashMap::new(),
            forwards: Forwards::new(max_forwards),
            authenticated,
            span: tracing::info_span!("session", %peer),
        }
    }

    /// The user owning this key, if the key is known and the user enabled.
    async fn lookup(&self, fingerprint: &str) -> Option<(keys::SshKey, users::User)> {
        let mut conn = self.shared.store.conn().await.ok()?;
        let key = keys::find_by_fingerprint(&mut conn, fingerprint).await.ok()??;
        let user = users::find(&mut conn, &key.user).await.ok()??;
        (!user.disabled).then_some((key, user))
    }

    /// Accepts the request, then writes `message` to stderr and ends the channel with `status`.
    fn refuse_channel(&mut self, channel: ChannelId, session: &mut Session, message: String, status: u32) {
        let _ = session.channel_success(channel);
        let Some(ch) = self.channels.remove(&channel) else {
            return;
        };
        tokio::spawn(async move {
            let (_read, write) = ch.split();
            let reporter = Reporter::new(write, 0);
            reporter.line(&message).await;
            reporter.finish(status).await;
        });
    }
}

/// Whether an exec line starts with an admin command group (`user`, `rule`, …).
fn is_admin_command(data: &[u8]) -> bool {
    let line = String::from_utf8_lossy(data);
    let first = line.split_whitespace().next().unwrap_or_default();
    remote_admin::GROUPS.contains(&first)
}

impl SessionHandler {
    /// Runs an admin command for an admin user; everyone else is refused.
    async fn admin_command(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        identity: Identity,
        session: &mut Session,
    ) {
        let is_admin = self
            .lookup(&identity.key_fingerprint)
            .await
            .is_some_and(|(_, user)| user.is_admin);
        let words = match command::split_words(&String::from_utf8_lossy(data)) {
            Ok(words) => words,
            Err(e) => return self.refuse_channel(channel, session, e.to_string(), 2),
        };
        if !is_admin {
            // Team admins: a narrower set, checked here before anything runs.
            if let Err(why) = super::team_admin::authorize(&self.shared.store, &identity.user, &words).await {
                tracing::warn!(user = %identity.user, command = %words.join(" "), %why, "admin command refused");
                return self.refuse_channel(channel, session, format!("error: {why}"), 1);
            }
        }
        if let Some(why) = remote_admin::refusal(&words) {
            return self.refuse_channel(channel, session, format!("error: {why}"), 2);
        }
        let Some(ch) = self.channels.remove(&channel) else {
            let _ = session.channel_failure(channel);
            return;
        };
        let _ = session.channel_success(channel);
        tracing::info!(user = %identity.user, command = %words.join(" "), "remote admin command");
        let shared = self.shared.clone();
        let span = self.span.clone();
        tokio::spawn(tracing::Instrument::instrument(
            remote_admin::run(shared, identity, words, ch),
            span,
        ));
    }
}

impl Drop for SessionHandler {
    fn drop(&mut self) {
        if self.identity.is_some() {
            METRICS.session_closed();
        }
    }
}

impl russh::server::Handler for SessionHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // A cheap filter only: the identity is bound after the signature check below.
        let fingerprint = offer.public_key.fingerprint(HashAlg::Sha256).to_string();
        Ok(match self.lookup(&fingerprint).await {
            Some(_) => Auth::Accept,
            None => Auth::reject(),
        })
    }

    async fn auth_publickey(&mut self, login: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        let fingerprint = key.public_key.fingerprint(HashAlg::Sha256).to_string();
        let Some((_key, user)) = self.lookup(&fingerprint).await else {
            tracing::info!(peer = %self.peer, %login, %fingerprint, "authentication refused");
            return Ok(Auth::reject());
        };
        if let Ok(mut conn) = self.shared.store.conn().await {
            let _ = keys::touch_last_used(&mut conn, &fingerprint).await;
        }
        tracing::info!(peer = %self.peer, %login, user = %user.name, %fingerprint, "authenticated");
        self.user_slot = self
            .shared
            .sessions
            .user(&user.name, self.shared.config().server.max_sessions_per_user);
        if self.identity.is_none() {
            METRICS.session_opened();
        }
        self.span = tracing::info_span!("session", peer = %self.peer, user = %user.name, key = %fingerprint);
        self.authenticated
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.identity = Some(Identity {
            user: user.name,
            user_id: user.id,
            key_fingerprint: fingerprint,
            peer: self.peer,
        });
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.identity.is_none() {
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::warn!(peer = %self.peer, %host, port, "refused direct-tcpip (ssh -L)");
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let _ = session.channel_failure(channel);
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let _ = session.channel_failure(channel);
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let _ = session.channel_failure(channel);
        Ok(())
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let _ = session.channel_failure(channel);
        Ok(false)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer, subsystem = %name, "refused subsystem");
        let _ = session.channel_failure(channel);
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        let who = self.identity.as_ref().map(|i| i.user.clone()).unwrap_or_default();
        let message = format!(
            "Hi {who}! This is an ostree-gateway: there is no shell here.\n\
             Push with: ostree-push ssh://HOST:PORT/REPO REF"
        );
        self.refuse_channel(channel, session, message, 1);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(identity) = self.identity.clone() else {
            let _ = session.channel_failure(channel);
            return Ok(());
        };
        // A user disabled (or a key removed) since login runs nothing more in open sessions.
        if self
            .lookup(&identity.key_fingerprint)
            .await
            .is_none_or(|(_, user)| user.name != identity.user)
        {
            let message = format!("user \"{}\" is disabled or this key was removed", identity.user);
            self.refuse_channel(channel, session, message, 1);
            return Ok(());
        }
        if self.user_slot.is_none() {
            let limit = self.shared.config().server.max_sessions_per_user;
            let message = format!(
                "too many concurrent sessions for user \"{}\" (limit {limit})",
                identity.user
            );
            self.refuse_channel(channel, session, message, 1);
            return Ok(());
        }
        let args = match command::parse(data) {
            Ok(Command::Receive(args)) => args,
            Ok(Command::Native) => {
                let Some(ch) = self.channels.remove(&channel) else {
                    let _ = session.channel_failure(channel);
                    return Ok(());
                };
                let _ = session.channel_success(channel);
                let shared = self.shared.clone();
                let work = async move {
                    let (read, write) = ch.split();
                    let reporter = Reporter::new(write, 0);
                    let started = std::time::Instant::now();
                    let status = receive::native::run_native(&shared, identity, read, &reporter).await;
                    METRICS.push_finished(status, started.elapsed());
                    reporter.finish(status).await;
                };
                self.shared
                    .receives
                    .spawn(tracing::Instrument::instrument(work, self.span.clone()));
                return Ok(());
            }
            Err(command::CommandError::Unknown(_)) if is_admin_command(data) => {
                self.admin_command(channel, data, identity, session).await;
                return Ok(());
            }
            Err(e) => {
                tracing::info!(user = %identity.user, command = %String::from_utf8_lossy(data), "refused command");
                let status = e.exit_status();
                self.refuse_channel(channel, session, e.to_string(), status);
                return Ok(());
            }
        };
        let Some(ch) = self.channels.remove(&channel) else {
            let _ = session.channel_failure(channel);
            return Ok(());
        };
        let _ = session.channel_success(channel);
        let shared = self.shared.clone();
        let forwards = self.forwards.ports();
        let tracker = shared.receives.clone();
        let work = async move {
            let (read, write) = ch.split();
            let reporter = Reporter::new(write, args.verbosity);
            let started = std::time::Instant::now();
            let status = receive::run_tunnel(&shared, identity, args, forwards, read, &reporter).await;
            METRICS.push_finished(status, started.elapsed());
            reporter.finish(status).await;
        };
        tracker.spawn(tracing::Instrument::instrument(work, self.span.clone()));
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if self.identity.is_none() {
            return Ok(false);
        }
        match self.forwards.open(address, session.handle()).await {
            Ok(bound) => {
                tracing::debug!(peer = %self.peer, %address, requested = *port, bound, "remote forward");
                *port = bound as u32;
                Ok(true)
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, error = %e, "remote forward refused");
                Ok(false)
            }
        }
    }

    async fn cancel_tcpip_forward(
        &mut self,
        _address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(u16::try_from(port)
            .map(|p| self.forwards.close(p))
            .unwrap_or(false))
    }
}
