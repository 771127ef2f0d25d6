//! Helpers shared by the end-to-end tests.
//!
//! The e2e tests drive our binaries as separate processes against real tools: `ostree` for
//! repositories, `ssh-keygen` for keys, `gpg` for signing keys. Nothing here links the gateway
//! library; what is tested is what an operator runs.
//!
//! - [`workspace_bin`] finds a binary the workspace built (the Makefile builds before testing).
//! - [`Gateway`] is a throw-away state dir plus a runner for `ostree-gateway` admin commands.
//! - [`SshKeyPair`] makes ed25519 keys with `ssh-keygen`.
//! - [`OstreeRepo`] makes repos and commits with the `ostree` CLI.
//! - [`GpgHome`] makes a private GnuPG home with a fresh signing key.
//! - [`server`]: a served gateway, a static HTTP server and the OpenSSH client, for SSH tests.
//! - [`pusher`]: our `ostree-push` client pointed at a served gateway.
//!
//! Helpers panic with a message naming the command and its output: in a test, that is the most
//! useful failure.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// Name of the gateway binary.
pub const GATEWAY_BIN: &str = "ostree-gateway";

/// Path of a binary built by this workspace.
///
/// `$OSTREE_GATEWAY_BIN` wins for the gateway binary (to test a release build or an installed
/// copy). Otherwise the binary is looked up beside the running test executable
/// (`target/<profile>/deps/..`, which honours `CARGO_TARGET_DIR` and the profile), then in
/// `<workspace>/target/debug`. Panics, saying how to build it, when it is missing.
pub fn workspace_bin(name: &str) -> PathBuf {
    if name == GATEWAY_BIN {
        if let Some(path) = std::env::var_os("OSTREE_GATEWAY_BIN") {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "OSTREE_GATEWAY_BIN={} is not a file",
                path.display()
            );
            return path;
        }
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join(name));
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    candidates.push(workspace.join("target/debug").join(name));
    for candidate in &candidates {
        if candidate.is_file() {
            return candidate.clone();
        }
    }
    panic!(
        "binary {name} not found (looked at {candidates:?}); build it first with \
         `cargo build --workspace` (or `make build`), or set OSTREE_GATEWAY_BIN"
    );
}

/// Runs `command` to completion, panicking if it cannot be started.
pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs `command` with `stdin` as its standard input.
pub fn run_with_stdin(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    // Write from a thread so a child that never reads stdin cannot dead-lock us.
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {command:?}: {e}"));
    writer.join().expect("stdin writer thread");
    output
}

/// Runs `command`, asserts it succeeded and returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        describe(&output)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Exit status, stdout and stderr of `output`, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A gateway state dir in a temporary directory, and a runner for admin commands on it.
///
/// Every command runs as a new `ostree-gateway` process with `--state-dir` set. The
/// environment's `OSTREE_GATEWAY_*` variables are removed and `OSTREE_GATEWAY_CONFIG` points
/// at an (initially empty) config file in the temp dir, so the machine's
/// `/etc/ostree-gateway/gateway.toml` never leaks into a test. Standard input is empty unless a
/// `*_stdin` method is used.
pub struct Gateway {
    dir: TempDir,
    bin: PathBuf,
}

impl Default for Gateway {
    fn default() -> Self {
        Self::new()
    }
}

impl Gateway {
    pub fn new() -> Gateway {
        let dir = tempfile::Builder::new()
            .prefix("gw-e2e-")
            .tempdir()
            .expect("temp dir");
        let gateway = Gateway {
            bin: workspace_bin(GATEWAY_BIN),
            dir,
        };
        std::fs::create_dir_all(gateway.work_dir()).expect("work dir");
        gateway.write_config("");
        gateway
    }

    /// The temp dir holding everything of this fixture (removed on drop).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The `--state-dir` given to every command.
    pub fn state_dir(&self) -> PathBuf {
        self.root().join("state")
    }

    /// The default repos root, `<state>/repos` (created by the first command).
    pub fn repos_root(&self) -> PathBuf {
        self.state_dir().join("repos")
    }

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("gateway.db")
    }

    /// A scratch directory outside the state dir for keys, trees, inputs…
    pub fn work_dir(&self) -> PathBuf {
        self.root().join("work")
    }

    /// The config file passed through `OSTREE_GATEWAY_CONFIG`.
    pub fn config_path(&self) -> PathBuf {
        self.root().join("gateway.toml")
    }

    /// Replaces the config file's contents (TOML).
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.config_path(), toml).expect("write config");
    }

    /// The gateway binary with the fixture's environment and `--state-dir`, ready for more
    /// arguments. Use it to spawn long-running commands such as `serve`.
    pub fn command(&self) -> Command {
        let mut command = self.bare_command();
        command.arg("--state-dir").arg(self.state_dir());
        command
    }

    /// Like [`Gateway::command`] but without `--state-dir`, to test its other sources.
    pub fn bare_command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .env_remove("OSTREE_GATEWAY_STATE_DIR")
            .env("OSTREE_GATEWAY_CONFIG", self.config_path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    /// Runs `ostree-gateway --state-dir S ARGS…` and returns its output, whatever it is.
    pub fn admin<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        run(self.command().args(args))
    }

    /// Like [`Gateway::admin`], feeding `stdin`.
    pub fn admin_stdin<S: AsRef<OsStr>>(&self, args: &[S], stdin: &str) -> Output {
        run_with_stdin(self.command().args(args), stdin.as_bytes())
    }

    /// Runs an admin command that must exit 0; returns its stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        expect_ok(args, self.admin(args))
    }

    /// Like [`Gateway::ok`], feeding `stdin`.
    pub fn ok_stdin<S: AsRef<OsStr>>(&self, args: &[S], stdin: &str) -> String {
        expect_ok(args, self.admin_stdin(args, stdin))
    }

    /// Runs an admin command that must exit 0 and print JSON; returns the parsed value.
    pub fn ok_json<S: AsRef<OsStr>>(&self, args: &[S]) -> serde_json::Value {
        let stdout = self.ok(args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{:?} printed invalid JSON ({e}):\n{stdout}", show(args)))
    }

    /// Runs an admin command that must exit with `code`; returns its stderr.
    pub fn fails<S: AsRef<OsStr>>(&self, args: &[S], code: i32) -> String {
        expect_code(args, self.admin(args), code)
    }

    /// Like [`Gateway::fails`], feeding `stdin`.
    pub fn fails_stdin<S: AsRef<OsStr>>(&self, args: &[S], stdin: &str, code: i32) -> String {
        expect_code(args, self.admin_stdin(args, stdin), code)
    }

    /// Runs an admin command that must fail at run time: exit 1 with exactly one line
    /// `error: MESSAGE` on stderr and nothing on stdout. Returns MESSAGE.
    pub fn error<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let output = self.admin(args);
        expect_runtime_error(args, output)
    }

    /// Like [`Gateway::error`], feeding `stdin`.
    pub fn error_stdin<S: AsRef<OsStr>>(&self, args: &[S], stdin: &str) -> String {
        expect_runtime_error(args, self.admin_stdin(args, stdin))
    }
}

fn show<S: AsRef<OsStr>>(args: &[S]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

fn expect_ok<S: AsRef<OsStr>>(args: &[S], output: Output) -> String {
    assert!(
        output.status.success(),
        "ostree-gateway {:?} failed: {}",
        show(args),
        describe(&output)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

fn expect_code<S: AsRef<OsStr>>(args: &[S], output: Output, code: i32) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "ostree-gateway {:?}: expected exit {code}, got {}",
        show(args),
        describe(&output)
    );
    String::from_utf8(output.stderr).expect("stderr is UTF-8")
}

fn expect_runtime_error<S: AsRef<OsStr>>(args: &[S], output: Output) -> String {
    let shown = describe(&output);
    let stderr = expect_code(args, output.clone(), 1);
    assert!(
        output.stdout.is_empty(),
        "ostree-gateway {:?} printed to stdout on error: {shown}",
        show(args)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "ostree-gateway {:?}: expected one error line: {shown}",
        show(args)
    );
    lines[0]
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("ostree-gateway {:?}: no `error: ` prefix: {shown}", show(args)))
        .to_string()
}

/// An ed25519 key pair made by `ssh-keygen`, without a passphrase.
#[derive(Debug, Clone)]
pub struct SshKeyPair {
    pub private: PathBuf,
    pub public: PathBuf,
}

impl SshKeyPair {
    /// Generates `dir/name` and `dir/name.pub` with `comment`.
    pub fn generate(dir: &Path, name: &str, comment: &str) -> SshKeyPair {
        std::fs::create_dir_all(dir).expect("key dir");
        let private = dir.join(name);
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(&private),
        );
        SshKeyPair {
            public: dir.join(format!("{name}.pub")),
            private,
        }
    }

    /// The `ssh-ed25519 AAAA… comment` line (no trailing newline).
    pub fn public_line(&self) -> String {
        std::fs::read_to_string(&self.public)
            .expect("read public key")
            .trim()
            .to_string()
    }

    /// The base64 key blob, the second field of the public line.
    pub fn blob(&self) -> String {
        self.public_line()
            .split_whitespace()
            .nth(1)
            .expect("public key has a blob")
            .to_string()
    }

    /// `SHA256:…` as printed by `ssh-keygen -l`.
    pub fn fingerprint(&self) -> String {
        let out = run_ok(
            Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(&self.public),
        );
        out.split_whitespace()
            .nth(1)
            .expect("ssh-keygen -l prints a fingerprint")
            .to_string()
    }
}

/// An OSTree repository driven through the `ostree` CLI.
#[derive(Debug, Clone)]
pub struct OstreeRepo {
    pub path: PathBuf,
}

impl OstreeRepo {
    /// `ostree init --mode=MODE` at `path` (parents created). Modes: archive, bare-user, bare…
    pub fn init(path: &Path, mode: &str) -> OstreeRepo {
        std::fs::create_dir_all(path).expect("repo dir");
        run_ok(
            Command::new("ostree")
                .arg("init")
                .arg(format!("--mode={mode}"))
                .arg(repo_arg(path)),
        );
        OstreeRepo::at(path)
    }

    /// An existing repo.
    pub fn at(path: &Path) -> OstreeRepo {
        OstreeRepo {
            path: path.to_path_buf(),
        }
    }

    /// `ostree --repo=R ARGS…`, not yet run.
    pub fn ostree(&self) -> Command {
        let mut command = Command::new("ostree");
        command.arg(repo_arg(&self.path));
        command
    }

    /// Starts a commit to `branch`; add files and options, then [`Commit::run`].
    pub fn commit(&self, branch: &str) -> Commit<'_> {
        Commit {
            repo: self,
            branch: branch.to_string(),
            files: Vec::new(),
            timestamp: None,
            subject: format!("commit to {branch}"),
            orphan: false,
            gpg: None,
        }
    }

    /// The commit `refspec` points at, or `None` when there is no such ref.
    pub fn rev_parse(&self, refspec: &str) -> Option<String> {
        let output = run(self.ostree().args(["rev-parse", refspec]));
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Local refs, sorted.
    pub fn refs(&self) -> Vec<String> {
        let mut refs: Vec<String> = run_ok(self.ostree().arg("refs"))
            .lines()
            .map(str::to_string)
            .collect();
        refs.sort();
        refs
    }

    /// `ostree config get KEY`.
    pub fn config_get(&self, key: &str) -> String {
        run_ok(self.ostree().args(["config", "get", key]))
            .trim()
            .to_string()
    }

    /// Runs `ostree fsck` and asserts it found no error.
    pub fn fsck(&self) {
        run_ok(self.ostree().arg("fsck"));
    }
}

fn repo_arg(path: &Path) -> String {
    format!("--repo={}", path.display())
}

/// A commit being prepared by [`OstreeRepo::commit`].
#[must_use = "a commit is only made by .run()"]
pub struct Commit<'a> {
    repo: &'a OstreeRepo,
    branch: String,
    files: Vec<(String, Vec<u8>)>,
    timestamp: Option<i64>,
    subject: String,
    orphan: bool,
    gpg: Option<(PathBuf, String)>,
}

impl Commit<'_> {
    /// Adds a file (relative path, parents created) to the committed tree.
    pub fn file(mut self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        self.files.push((path.to_string(), contents.as_ref().to_vec()));
        self
    }

    /// Commit time in seconds since the epoch (default: now).
    pub fn timestamp(mut self, unix_seconds: i64) -> Self {
        self.timestamp = Some(unix_seconds);
        self
    }

    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = subject.to_string();
        self
    }

    /// No parent: the commit does not descend from the branch's current commit (for force
    /// pushes). The branch still moves to it.
    pub fn orphan(mut self) -> Self {
        self.orphan = true;
        self
    }

    /// Signs with `key` from the GnuPG home `gpg`.
    pub fn gpg_sign(mut self, gpg: &GpgHome, key: &str) -> Self {
        self.gpg = Some((gpg.path().to_path_buf(), key.to_string()));
        self
    }

    /// Makes the commit and returns its checksum (which the branch now points at).
    pub fn run(self) -> String {
        let tree = tempfile::tempdir().expect("tree dir");
        if self.files.is_empty() {
            std::fs::write(tree.path().join("README"), &self.subject).expect("write tree file");
        }
        for (path, contents) in &self.files {
            let file = tree.path().join(path);
            std::fs::create_dir_all(file.parent().expect("file has a parent")).expect("tree dir");
            std::fs::write(&file, contents).expect("write tree file");
        }
        let mut command = self.repo.ostree();
        command
            .arg("commit")
            .arg(format!("--branch={}", self.branch))
            .arg(format!("--tree=dir={}", tree.path().display()))
            .arg(format!("--subject={}", self.subject));
        if let Some(t) = self.timestamp {
            command.arg(format!("--timestamp=@{t}"));
        }
        if self.orphan {
            command.arg("--parent=none");
        }
        if let Some((home, key)) = &self.gpg {
            command
                .arg(format!("--gpg-sign={key}"))
                .arg(format!("--gpg-homedir={}", home.display()));
        }
        let printed = run_ok(&mut command).trim().to_string();
        let checksum = self
            .repo
            .rev_parse(&self.branch)
            .unwrap_or_else(|| panic!("branch {} missing after commit", self.branch));
        assert_eq!(printed, checksum, "ostree commit printed another checksum");
        checksum
    }
}

/// A private GnuPG home in a temp dir, with helpers to make and export keys.
///
/// The gpg-agent it may start is killed on drop.
pub struct GpgHome {
    dir: TempDir,
}

impl Default for GpgHome {
    fn default() -> Self {
        Self::new()
    }
}

impl GpgHome {
    pub fn new() -> GpgHome {
        // Short prefix: the agent's socket path must stay under ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir()
            .expect("gpg home");
        let mut perms = std::fs::metadata(dir.path()).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        std::fs::set_permissions(dir.path(), perms).expect("chmod gpg home");
        GpgHome { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `gpg --batch …` in this home.
    pub fn gpg(&self) -> Command {
        let mut command = Command::new("gpg");
        command
            .env("GNUPGHOME", self.path())
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .stdin(Stdio::null());
        command
    }

    /// Generates an ed25519 signing key without passphrase for `user_id`
    /// (e.g. `Test <t@example.com>`); returns its 40-hex fingerprint.
    pub fn generate_key(&self, user_id: &str) -> String {
        run_ok(
            self.gpg()
                .args(["--quick-gen-key", user_id, "ed25519", "sign", "never"]),
        );
        let listing = run_ok(self.gpg().args(["--with-colons", "--list-keys", user_id]));
        listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|f| !f.is_empty()))
            .expect("gpg lists a fingerprint")
            .to_string()
    }

    /// The public key, ASCII-armored.
    pub fn export_armored(&self, fingerprint: &str) -> Vec<u8> {
        self.export(&["--export", "--armor", fingerprint])
    }

    /// The public key, binary.
    pub fn export_binary(&self, fingerprint: &str) -> Vec<u8> {
        self.export(&["--export", fingerprint])
    }

    /// The secret key, ASCII-armored (what an admin must never hand the gateway).
    pub fn export_secret_armored(&self, fingerprint: &str) -> Vec<u8> {
        self.export(&["--export-secret-keys", "--armor", fingerprint])
    }

    /// The secret key, binary.
    pub fn export_secret_binary(&self, fingerprint: &str) -> Vec<u8> {
        self.export(&["--export-secret-keys", fingerprint])
    }

    fn export(&self, args: &[&str]) -> Vec<u8> {
        let output = run(self.gpg().args(args));
        assert!(
            output.status.success() && !output.stdout.is_empty(),
            "gpg {args:?}: {}",
            describe(&output)
        );
        output.stdout
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.path())
            .args(["--kill", "gpg-agent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Reads a JSON value's string field, panicking with the value when absent.
pub fn json_str<'a>(value: &'a serde_json::Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field:?} is not a string in {value:#}"))
}

/// Asserts `text` looks like the store's timestamps: RFC 3339 UTC with milliseconds.
pub fn assert_timestamp(text: &str) {
    let bytes = text.as_bytes();
    let ok = text.len() == 24
        && text.ends_with('Z')
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'.';
    assert!(ok, "not an RFC 3339 UTC millisecond timestamp: {text:?}");
}
pub mod native;
pub mod pusher;
pub mod python;
pub mod server;
pub mod world;

/// Incompressible bytes (a fixed LCG), so `.filez` sizes stay near the raw size.
pub fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}
