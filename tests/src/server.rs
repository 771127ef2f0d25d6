//! Running processes for SSH-level tests: a gateway serving on a loopback port, a static
//! HTTP server for a pusher's repo (what ostree-push's tunnel serves), and the real OpenSSH
//! client with a control master, the way ostree-push 1.2.0 drives it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{run, Gateway, SshKeyPair};

/// `ostree-gateway serve` on 127.0.0.1, an ephemeral port; killed on drop.
pub struct Served {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Served {
    /// Starts serving `gateway`'s state dir and waits for the "listening on" line.
    pub fn start(gateway: &Gateway) -> Served {
        Served::start_with(gateway, &[])
    }

    /// Like [`Served::start`] with extra environment variables (e.g. `OSTREE_REPO_TEST_ERROR`,
    /// `OSTREE_GATEWAY_TEST_PAUSE`). Each start logs to a file of its own.
    pub fn start_with(gateway: &Gateway, env: &[(&str, &str)]) -> Served {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = gateway
            .work_dir()
            .join(format!("gateway-{}-{n}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = gateway.command();
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "ostree_gateway=debug,info")
            .stdout(Stdio::piped())
            .stderr(log_file);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start gateway");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("ostree-gateway listening on ") {
                        break addr.rsplit(':').next().unwrap().parse().expect("port");
                    }
                }
                _ => panic!(
                    "gateway did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
        };
        // Keep draining stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Served { child, port, log }
    }

    /// The gateway's host key as a known_hosts line for `[127.0.0.1]:PORT`.
    pub fn known_hosts_line(&self, gateway: &Gateway) -> String {
        let public = std::fs::read_to_string(gateway.state_dir().join("host_keys/ssh_host_ed25519_key.pub"))
            .expect("host public key");
        format!("[127.0.0.1]:{} {}", self.port, public.trim())
    }

    /// Sends a signal (`HUP`, `TERM`, …) to the gateway process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` the gateway (no shutdown of any kind) and reap it. The value stays usable for
    /// its log; replace it with a new [`Served`] to restart.
    pub fn kill9(&mut self) {
        // Child::kill sends SIGKILL on Unix.
        self.child.kill().expect("kill -9 the gateway");
        let status = self.child.wait().expect("reap the gateway");
        assert!(
            std::os::unix::process::ExitStatusExt::signal(&status) == Some(9),
            "gateway was not killed by SIGKILL: {status}"
        );
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `python3 -m http.server` serving a directory on 127.0.0.1 (an ephemeral port).
pub struct StaticHttp {
    child: Child,
    pub port: u16,
}

/// A threaded static server that sends the bodies of paths ending in `SUFFIX` a byte every
/// 100 ms: a pusher that trickles.
const TRICKLING_SERVER: &str = r#"
import functools, http.server, os, sys, time
SUFFIX = os.environ["TRICKLE_SUFFIX"]
class Handler(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, source, dest):
        if not self.path.endswith(SUFFIX):
            return super().copyfile(source, dest)
        while byte := source.read(1):
            dest.write(byte)
            dest.flush()
            time.sleep(0.1)
    def log_message(self, *args):
        pass
handler = functools.partial(Handler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(f"Serving HTTP on 127.0.0.1 port {server.server_address[1]} (trickling)", flush=True)
server.serve_forever()
"#;

impl StaticHttp {
    pub fn serve(dir: &Path) -> StaticHttp {
        let mut command = Command::new("python3");
        command.args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ]);
        StaticHttp::start(command.arg(dir))
    }

    /// Serves `dir`, trickling the bodies of paths that end in `suffix`.
    pub fn serve_trickling(dir: &Path, suffix: &str) -> StaticHttp {
        let mut command = Command::new("python3");
        command
            .args(["-u", "-c", TRICKLING_SERVER])
            .arg(dir)
            .env("TRICKLE_SUFFIX", suffix);
        StaticHttp::start(&mut command)
    }

    fn start(command: &mut Command) -> StaticHttp {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("http.server banner").expect("utf-8");
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected http.server banner: {line}"));
        std::thread::spawn(move || for _ in lines {});
        StaticHttp { child, port }
    }
}

impl Drop for StaticHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenSSH client as one user: a key, known_hosts pinned to the gateway, BatchMode.
pub struct OpenSsh {
    pub key: PathBuf,
    pub port: u16,
    pub user: String,
    known_hosts: PathBuf,
    control: PathBuf,
    master: bool,
}

impl OpenSsh {
    pub fn new(gateway: &Gateway, served: &Served, key: &SshKeyPair, user: &str) -> OpenSsh {
        let dir = tempfile::Builder::new()
            .prefix("ssh-")
            .tempdir_in(gateway.work_dir())
            .expect("dir")
            .keep();
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, served.known_hosts_line(gateway) + "\n").expect("known_hosts");
        OpenSsh {
            key: key.private.clone(),
            port: served.port,
            user: user.to_string(),
            known_hosts,
            control: dir.join("ctl"),
            master: false,
        }
    }

    /// `ssh` with this identity and no other (agent and default keys ignored).
    pub fn ssh(&self) -> Command {
        let mut command = Command::new("ssh");
        command
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"])
            .arg("-i")
            .arg(&self.key)
            .args(["-p", &self.port.to_string()])
            .arg("-o")
            .arg(format!("ControlPath={}", self.control.display()))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        command
    }

    pub fn target(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// Runs a command on the gateway (through the master when one is up).
    pub fn exec(&self, command_line: &str) -> Output {
        run(self.ssh().arg(self.target()).arg(command_line))
    }

    /// Starts a control master (as ostree-push does). Panics if it cannot.
    pub fn start_master(&mut self) {
        let output = run(self
            .ssh()
            .args(["-M", "-f", "-N", "-o", "ControlPersist=no"])
            .arg(self.target()));
        assert!(
            output.status.success(),
            "ssh master failed: {}",
            crate::describe(&output)
        );
        self.master = true;
    }

    /// `ssh -O forward -R 0:127.0.0.1:LOCAL`: returns the port the gateway allocated.
    pub fn forward(&self, local_port: u16) -> u16 {
        let output = run(self
            .ssh()
            .args(["-O", "forward", "-R", &format!("0:127.0.0.1:{local_port}")])
            .arg(self.target()));
        assert!(
            output.status.success(),
            "ssh -O forward failed: {}",
            crate::describe(&output)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("allocated port")
    }

    /// The classic tunnel push: master, forward to `http`, then `ostree-receive-1 ARGS`.
    pub fn tunnel_push(&mut self, http: &StaticHttp, receive_args: &str) -> Output {
        if !self.master {
            self.start_master();
        }
        let port = self.forward(http.port);
        self.exec(&format!(
            "ostree-receive-1 {}",
            receive_args.replace("URL", &format!("http://127.0.0.1:{port}"))
        ))
    }
}

impl Drop for OpenSsh {
    fn drop(&mut self) {
        if self.master {
            let _ = self.ssh().args(["-O", "exit"]).arg(self.target()).output();
        }
    }
}
