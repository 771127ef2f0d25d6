//! Issue 6, a malicious pusher: a public key offered for one identity with a signature made by
//! another key, or over another session's data. A real gateway process, and a russh client whose
//! signer can forge (OpenSSH cannot be made to): it offers one public key and signs with
//! whatever private key the test gives it.
//!
//! Every test also authenticates honestly through the same signer code, before and after the
//! forgeries: without that, a wrongly encoded signature would make every rejection pass.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use e2e_tests::world::{assert_exit, World, T0};
use e2e_tests::SshKeyPair;
use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::ssh_encoding::Encode;
use russh::keys::{HashAlg, PrivateKey, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, MethodKind, Signer};
use serde_json::Value;

/// What the signer does with the buffer russh hands it: the session id (an SSH string), then
/// the userauth request it is about to send.
#[derive(Clone)]
enum Forge {
    /// Signs the buffer as given: a correct signature when the key matches the offered one.
    Nothing,
    /// Signs a copy whose session id has one bit flipped, then sends the untouched request.
    FlipSessionId,
    /// Sends this signature blob, captured on another connection, instead of signing.
    Replay(Vec<u8>),
}

/// A [`Signer`] holding one private key, whatever key was offered.
struct KeySigner {
    key: PrivateKey,
    forge: Forge,
    /// The key russh asked a signature for, and the signature blob sent: set once asked.
    asked_for: Option<PublicKey>,
    sent: Option<Vec<u8>>,
}

impl KeySigner {
    fn new(pair: &SshKeyPair, forge: Forge) -> KeySigner {
        KeySigner {
            key: russh::keys::load_secret_key(&pair.private, None).expect("load private key"),
            forge,
            asked_for: None,
            sent: None,
        }
    }
}

impl Signer for KeySigner {
    type Error = russh::SendError;

    fn auth_sign(
        &mut self,
        key: &AgentIdentity,
        _hash_alg: Option<HashAlg>,
        mut to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        self.asked_for = Some(key.public_key().into_owned());
        let blob = match &self.forge {
            Forge::Nothing => sign(&self.key, &to_sign),
            Forge::FlipSessionId => {
                let mut other = to_sign.clone();
                // Byte 4 is the session id's first byte (after its u32 length).
                other[4] ^= 1;
                sign(&self.key, &other)
            }
            Forge::Replay(blob) => blob.clone(),
        };
        // As the agent client does: the request, then the signature blob as an SSH string.
        blob.encode(&mut to_sign).expect("append the signature");
        self.sent = Some(blob);
        std::future::ready(Ok(to_sign))
    }
}

/// The SSH signature blob (algorithm name, then the signature) of `data` by `key`.
fn sign(key: &PrivateKey, data: &[u8]) -> Vec<u8> {
    let signature: russh::keys::ssh_key::Signature =
        russh::keys::signature::Signer::try_sign(key, data).expect("sign");
    let mut blob = Vec::new();
    signature.encode(&mut blob).expect("encode the signature");
    blob
}

/// Accepts only the gateway's own host key.
struct PinnedHost(PublicKey);

impl client::Handler for PinnedHost {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()),
        )
    }
}

/// One connection's authentication attempt.
struct Attempt {
    result: AuthResult,
    /// Our end of the connection: the `peer` the gateway logs.
    peer: SocketAddr,
    /// After a success: the exit status and stderr of `ostree-receive-1 --help`.
    help: Option<(Option<u32>, String)>,
    /// The "authenticated" events the gateway logged during this attempt. Attempts run one at a
    /// time and the gateway logs before it answers, so these are this connection's.
    logged: Vec<(String, String)>,
}

/// A russh client for the world's gateway.
struct Client<'w> {
    world: &'w World,
    runtime: tokio::runtime::Runtime,
    host_key: PublicKey,
}

impl Client<'_> {
    fn new(world: &World) -> Client<'_> {
        let path = world.gw.state_dir().join("host_keys/ssh_host_ed25519_key.pub");
        Client {
            world,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            host_key: russh::keys::load_public_key(path).expect("host public key"),
        }
    }

    /// A new connection; `user` offers `offered` and `signer` answers the signature request.
    /// On success, runs `ostree-receive-1 --help` to show the session is usable.
    fn attempt(&self, user: &str, offered: &SshKeyPair, signer: &mut KeySigner) -> Attempt {
        let offered = load_public(offered);
        let logged_before = authenticated(self.world).len();
        let mut attempt = self.runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.world.served.port))
                .await
                .expect("connect to the gateway");
            let peer = stream.local_addr().expect("local address");
            let config = Arc::new(client::Config::default());
            let mut handle = client::connect_stream(config, stream, PinnedHost(self.host_key.clone()))
                .await
                .expect("SSH handshake with the gateway");
            let result = handle
                .authenticate_publickey_with(user, offered, None, signer)
                .await
                .expect("the signer never fails");
            let help = match result {
                AuthResult::Success => Some(exec(&handle, "ostree-receive-1 --help").await),
                AuthResult::Failure { .. } => None,
            };
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
            Attempt {
                result,
                peer,
                help,
                logged: Vec::new(),
            }
        });
        attempt.logged = authenticated(self.world).split_off(logged_before);
        attempt
    }

    /// An honest attempt: `pair` offered as `user` and signed by itself. Must succeed, be logged
    /// as `user`, and run a command. Returns the signature blob sent.
    #[track_caller]
    fn honest(&self, user: &str, pair: &SshKeyPair) -> Vec<u8> {
        let mut signer = KeySigner::new(pair, Forge::Nothing);
        let attempt = self.attempt(user, pair, &mut signer);
        assert_eq!(attempt.result, AuthResult::Success, "honest {user}");
        let (status, stderr) = attempt.help.clone().expect("ran --help");
        assert_eq!(status, Some(0), "ostree-receive-1 --help: {stderr}");
        assert!(stderr.contains("usage: ostree-receive-1"), "{stderr}");
        let expected = vec![(attempt.peer.to_string(), user.to_string())];
        assert_eq!(attempt.logged, expected, "honest {user}: the gateway's log");
        signer.sent.expect("the signer was asked to sign")
    }

    /// A forged attempt: `offered` as `user`, answered by `signer`. Must be refused with an
    /// ordinary USERAUTH_FAILURE after the signature was sent (so the offered key itself was
    /// acceptable and the refusal is of the signature), and not logged as authenticated.
    #[track_caller]
    fn forged(&self, user: &str, offered: &SshKeyPair, signer: &mut KeySigner) {
        let attempt = self.attempt(user, offered, signer);
        assert_refused(&attempt.result, user);
        assert_eq!(
            signer.asked_for.as_ref().map(PublicKey::key_data),
            Some(load_public(offered).key_data()),
            "{user}: the gateway should have asked a signature for the offered key"
        );
        assert!(signer.sent.is_some(), "{user}: a signature was sent");
        assert_eq!(attempt.logged, [], "{user}: logged as authenticated");
    }
}

/// Exit status and stderr of `command` on an authenticated connection.
async fn exec(handle: &Handle<PinnedHost>, command: &str) -> (Option<u32>, String) {
    let mut channel = handle.channel_open_session().await.expect("session channel");
    channel.exec(true, command).await.expect("exec");
    let mut status = None;
    let mut stderr = Vec::new();
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    (status, String::from_utf8_lossy(&stderr).into_owned())
}

fn load_public(pair: &SshKeyPair) -> PublicKey {
    russh::keys::load_public_key(&pair.public).expect("public key")
}

/// A refusal the client may retry, not a dropped connection (which also reads as a failure).
#[track_caller]
fn assert_refused(result: &AuthResult, user: &str) {
    match result {
        AuthResult::Failure {
            remaining_methods,
            partial_success,
        } => {
            assert!(!partial_success, "{user}: partial success");
            assert!(
                remaining_methods.contains(&MethodKind::PublicKey),
                "{user}: not an ordinary refusal (connection dropped?): {remaining_methods:?}"
            );
        }
        AuthResult::Success => panic!("{user}: a forged signature was accepted"),
    }
}

/// A world logging JSON (so the auth lines can be read field by field), with mallory and her
/// key B registered, and a ref alice pushed with OpenSSH: the state forgeries must not touch.
fn world_with_mallory() -> (World, SshKeyPair) {
    let w = World::with_config(&[], |_| "[log]\nformat = \"json\"\n".to_string());
    w.gw.ok(&["user", "add", "mallory"]);
    let mallory = SshKeyPair::generate(&w.gw.work_dir(), "mallory", "mallory@test");
    w.gw.ok(&[
        "key".as_ref(),
        "add".as_ref(),
        "mallory".as_ref(),
        mallory.public.as_os_str(),
    ]);
    w.local.commit("app/a").file("f", "one").timestamp(T0).run();
    assert_exit(&w.push("main URL app/a"), 0);
    (w, mallory)
}

/// What a forgery must leave alone: refs of the served repo and the audit.
struct Untouched {
    refs: Vec<(String, Option<String>)>,
    audit: Vec<Value>,
}

impl Untouched {
    fn take(w: &World) -> Untouched {
        let target = w.target();
        let refs = target
            .refs()
            .into_iter()
            .map(|r| {
                let rev = target.rev_parse(&r);
                (r, rev)
            })
            .collect();
        Untouched {
            refs,
            audit: w.audit(),
        }
    }

    #[track_caller]
    fn check(&self, w: &World) {
        let now = Untouched::take(w);
        assert_eq!(now.refs, self.refs, "refs moved");
        assert_eq!(now.audit, self.audit, "audit changed");
    }
}

/// `(peer, user)` of every "authenticated" event in the gateway's JSON log, in order.
fn authenticated(w: &World) -> Vec<(String, String)> {
    w.served
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["fields"]["message"] == "authenticated")
        .map(|event| {
            let field = |name: &str| event["fields"][name].as_str().unwrap_or_default().to_string();
            (field("peer"), field("user"))
        })
        .collect()
}

#[test]
fn alices_key_signed_by_mallory_is_refused() {
    let (w, mallory) = world_with_mallory();
    let alice = &w.alice;
    let before = Untouched::take(&w);
    let client = Client::new(&w);
    // (1) Control: the signer's encoding is right, alice gets in.
    client.honest("alice", alice);
    let mallorys = |forge| KeySigner::new(&mallory, forge);
    let alices = |forge| KeySigner::new(alice, forge);
    // (2) Alice's key offered as alice, signed by mallory.
    client.forged("alice", alice, &mut mallorys(Forge::Nothing));
    // (3) Crossed: alice's key offered as mallory signed by mallory; mallory's key offered as
    // alice signed by alice.
    client.forged("mallory", alice, &mut mallorys(Forge::Nothing));
    client.forged("alice", &mallory, &mut alices(Forge::Nothing));
    before.check(&w);
    // Mallory's own key works for her: what was refused above is the signatures, not the keys.
    client.honest("mallory", &mallory);
    // The gateway still serves alice.
    client.honest("alice", alice);
    before.check(&w);
}

#[test]
fn signature_over_other_session_data_is_refused() {
    let (w, _mallory) = world_with_mallory();
    let alice = &w.alice;
    let before = Untouched::take(&w);
    let client = Client::new(&w);
    let blob = client.honest("alice", alice);
    // (4) Alice's own key, but the signature covers another session id.
    client.forged("alice", alice, &mut KeySigner::new(alice, Forge::FlipSessionId));
    // The first connection's valid signature, replayed on a new connection.
    client.forged("alice", alice, &mut KeySigner::new(alice, Forge::Replay(blob)));
    before.check(&w);
    client.honest("alice", alice);
    before.check(&w);
}

#[test]
fn unregistered_key_cannot_sign_for_alice() {
    let (w, _mallory) = world_with_mallory();
    let alice = &w.alice;
    let stranger = SshKeyPair::generate(&w.gw.work_dir(), "stranger", "stranger@test");
    let before = Untouched::take(&w);
    let client = Client::new(&w);
    client.honest("alice", alice);
    // Alice's key offered, signed by a key the gateway does not know.
    client.forged("alice", alice, &mut KeySigner::new(&stranger, Forge::Nothing));
    // The stranger's own key is refused at the offer, before any signature is asked for.
    let mut signer = KeySigner::new(&stranger, Forge::Nothing);
    let offered = client.attempt("alice", &stranger, &mut signer);
    assert_refused(&offered.result, "alice (stranger's key)");
    assert!(
        signer.asked_for.is_none(),
        "the gateway asked a signature for an unknown key"
    );
    assert_eq!(offered.logged, [], "the stranger logged as authenticated");
    before.check(&w);
    client.honest("alice", alice);
    before.check(&w);
}
