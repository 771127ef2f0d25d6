//! Policy enforced end to end: team prefixes, personal `{user}` namespaces, deny-before-allow,
//! GPG signatures checked against each repo's trusted keys, and `policy explain`. Every denial
//! is asserted as the pusher sees it (stderr of the real OpenSSH client) and in the audit.

use e2e_tests::world::{assert_exit, stderr, World, T0};
use e2e_tests::{run_ok, GpgHome};

/// A world whose only rules are `rules`, with alice in team `apps`.
fn team_world(rules: &[&[&str]]) -> World {
    let w = World::new(&[]);
    w.gw.ok(&["rule", "remove", "1"]);
    w.gw.ok(&["team", "add", "apps"]);
    w.gw.ok(&["team", "add-member", "apps", "alice"]);
    for rule in rules {
        let mut args = vec!["rule", "add"];
        args.extend_from_slice(rule);
        w.gw.ok(&args);
    }
    w
}

#[test]
fn team_member_inside_and_outside_the_team_prefix() {
    let w = team_world(&[&[
        "--repo",
        "main",
        "--ref",
        "app/org.example.*/**",
        "--team",
        "apps",
        "--allow",
        "create,update",
    ]]);
    let inside = w
        .local
        .commit("app/org.example.Foo/x86_64/stable")
        .timestamp(T0)
        .run();
    w.local.commit("runtime/org.other/x86_64/1").timestamp(T0).run();
    assert_exit(&w.push("main URL app/org.example.Foo/x86_64/stable"), 0);
    assert_eq!(
        w.target()
            .rev_parse("app/org.example.Foo/x86_64/stable")
            .as_deref(),
        Some(inside.as_str())
    );
    let out = w.push("main URL runtime/org.other/x86_64/1");
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("runtime/org.other/x86_64/1: rejected: no rule allows create"),
        "{}",
        stderr(&out)
    );
    // Removed from the team: the same kind of push is now denied.
    w.gw.ok(&["team", "remove-member", "apps", "alice"]);
    w.local
        .commit("app/org.example.Bar/x86_64/stable")
        .timestamp(T0)
        .run();
    assert_exit(&w.push("main URL app/org.example.Bar/x86_64/stable"), 1);
}

#[test]
fn personal_namespaces_with_user_placeholder() {
    let w = World::new(&[&[
        "--repo",
        "main",
        "--ref",
        "users/{user}/**",
        "--everyone",
        "--allow",
        "all",
    ]]);
    w.local.commit("users/alice/scratch").timestamp(T0).run();
    w.local.commit("users/bob/scratch").timestamp(T0).run();
    assert_exit(&w.push("main URL users/alice/scratch"), 0);
    let out = w.push("main URL users/bob/scratch");
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("users/bob/scratch: rejected"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn deny_placed_before_allow_wins() {
    let w = team_world(&[
        &["--repo", "**", "--ref", "**", "--team", "apps", "--allow", "all"],
        &[
            "--repo",
            "main",
            "--ref",
            "release/**",
            "--everyone",
            "--deny",
            "all",
            "--position",
            "1",
            "--comment",
            "releases are cut by CI",
        ],
    ]);
    w.local.commit("release/1.0").timestamp(T0).run();
    w.local.commit("app/x").timestamp(T0).run();
    let out = w.push("main URL release/1.0");
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("denied by rule #3"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("releases are cut by CI"),
        "{}",
        stderr(&out)
    );
    assert_exit(&w.push("main URL app/x"), 0);
    let audit = w.audit();
    let denied = audit.iter().find(|r| r["ref"] == "release/1.0").unwrap();
    assert_eq!(denied["matched_rule"], 3);
    assert_eq!(denied["decision"], "deny");
}

struct Signing {
    gpg: GpgHome,
    trusted: String,
    untrusted: String,
}

fn signing_world() -> (World, Signing) {
    let w = World::new(&[&[
        "--repo",
        "main",
        "--ref",
        "release/**",
        "--user",
        "alice",
        "--allow",
        "create,update",
        "--require-signature",
    ]]);
    let gpg = GpgHome::new();
    let trusted = gpg.generate_key("Release Key <release@example.com>");
    let untrusted = gpg.generate_key("Someone Else <else@example.com>");
    let key_file = w.gw.work_dir().join("release.asc");
    std::fs::write(&key_file, gpg.export_armored(&trusted)).unwrap();
    w.gw.ok(&[
        "gpg-key".as_ref(),
        "add".as_ref(),
        "main".as_ref(),
        key_file.as_os_str(),
    ]);
    (
        w,
        Signing {
            gpg,
            trusted,
            untrusted,
        },
    )
}

#[test]
fn unsigned_commit_denied_where_a_signature_is_required() {
    let (w, _s) = signing_world();
    w.local.commit("release/1").timestamp(T0).run();
    let out = w.push("main URL release/1");
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("commit is not signed"), "{}", stderr(&out));
    assert!(w.target().refs().is_empty());
}

#[test]
fn commit_signed_by_an_untrusted_key_is_denied() {
    let (w, s) = signing_world();
    w.local
        .commit("release/1")
        .timestamp(T0)
        .gpg_sign(&s.gpg, &s.untrusted)
        .run();
    let out = w.push("main URL release/1");
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("signed by untrusted key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn commit_signed_by_a_trusted_key_is_accepted_with_its_signature() {
    let (w, s) = signing_world();
    let commit = w
        .local
        .commit("release/1")
        .timestamp(T0)
        .gpg_sign(&s.gpg, &s.trusted)
        .run();
    let out = w.push("main URL release/1");
    assert_exit(&out, 0);
    let target = w.target();
    assert_eq!(target.rev_parse("release/1").as_deref(), Some(commit.as_str()));
    // The detached signature travelled with the commit.
    let sigs = run_ok(target.ostree().args([
        "show",
        "release/1",
        "--print-detached-metadata-key=ostree.gpgsigs",
    ]));
    assert!(sigs.contains("byte 0x"), "{sigs}");
}

#[test]
fn commit_signed_by_a_revoked_key_is_denied() {
    let (w, s) = signing_world();
    w.local
        .commit("release/1")
        .timestamp(T0)
        .gpg_sign(&s.gpg, &s.trusted)
        .run();
    // GnuPG 2.2 writes a revocation certificate at key creation; import it.
    let rev =
        std::fs::read_to_string(s.gpg.path().join(format!("openpgp-revocs.d/{}.rev", s.trusted))).unwrap();
    let cert: String = rev
        .lines()
        .map(|l| l.strip_prefix(':').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let cert_file = w.gw.work_dir().join("revoke.asc");
    std::fs::write(&cert_file, cert).unwrap();
    run_ok(s.gpg.gpg().arg("--import").arg(&cert_file));
    // The operator replaces the trusted key with its revoked version.
    w.gw.ok(&["gpg-key", "remove", "main", &s.trusted]);
    let key_file = w.gw.work_dir().join("revoked.asc");
    std::fs::write(&key_file, s.gpg.export_armored(&s.trusted)).unwrap();
    w.gw.ok(&[
        "gpg-key".as_ref(),
        "add".as_ref(),
        "main".as_ref(),
        key_file.as_os_str(),
    ]);
    let out = w.push("main URL release/1");
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("is revoked"), "{}", stderr(&out));
}

#[test]
fn explain_prints_the_decision_and_trace() {
    let w = team_world(&[
        &[
            "--repo",
            "main",
            "--ref",
            "app/**",
            "--team",
            "apps",
            "--allow",
            "create,update",
        ],
        &[
            "--repo",
            "main",
            "--ref",
            "app/**",
            "--everyone",
            "--deny",
            "force",
            "--position",
            "1",
        ],
    ]);
    let out = w.gw.ok(&[
        "policy", "explain", "--user", "alice", "--repo", "main", "--ref", "app/a", "--op", "update",
    ]);
    assert!(out.starts_with("ALLOWED"), "{out}");
    assert!(
        out.contains("ref_mismatch") || out.contains("does not match") || out.contains("op"),
        "{out}"
    );
    let out = w.gw.ok(&[
        "policy", "explain", "--user", "alice", "--repo", "main", "--ref", "app/a", "--op", "force",
    ]);
    assert!(out.starts_with("DENIED"), "{out}");
    let json = w.gw.ok_json(&[
        "policy", "explain", "--user", "alice", "--repo", "main", "--ref", "app/a", "--op", "create",
        "--json",
    ]);
    assert_eq!(json["allowed"], true);
    assert_eq!(json["matched_rule"], 2);
    assert_eq!(json["trace"].as_array().unwrap().len(), 2);
    let err = w.gw.fails(
        &[
            "policy", "explain", "--user", "nobody", "--repo", "main", "--ref", "a", "--op", "create",
        ],
        1,
    );
    assert!(err.contains("unknown user"), "{err}");
    let err = w.gw.fails(
        &[
            "policy", "explain", "--user", "alice", "--repo", "main", "--ref", "a", "--op", "push",
        ],
        1,
    );
    assert!(err.contains("invalid --op"), "{err}");
}

#[test]
fn detached_metadata_swapped_between_check_and_fetch_is_not_stored() {
    // A pusher's server answers the gateway's first fetch of the signatures with "none" and
    // would serve them to a second fetch: what was checked must be what gets stored.
    let (w, s) = signing_world();
    let commit = w
        .local
        .commit("app/x")
        .timestamp(T0)
        .gpg_sign(&s.gpg, &s.trusted)
        .run();
    w.gw.ok(&[
        "rule", "add", "--repo", "main", "--ref", "app/**", "--user", "alice", "--allow", "create",
    ]);
    let script = w.gw.work_dir().join("swap.py");
    std::fs::write(
        &script,
        "import http.server, sys, functools\n\
         seen = set()\n\
         class H(http.server.SimpleHTTPRequestHandler):\n\
         \x20   def log_message(self, *a): pass\n\
         \x20   def do_GET(self):\n\
         \x20       if self.path.endswith('.commitmeta') and self.path not in seen:\n\
         \x20           seen.add(self.path); self.send_error(404); return\n\
         \x20       super().do_GET()\n\
         s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(H, directory=sys.argv[1]))\n\
         print('Serving HTTP on 127.0.0.1 port', s.server_address[1], '(x)', flush=True)\n\
         s.serve_forever()\n",
    )
    .unwrap();
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .arg(&w.local.path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = line.split_whitespace().nth(5).unwrap().parse().unwrap();
    let mut ssh = w.ssh();
    ssh.start_master();
    let rport = ssh.forward(port);
    let out = ssh.exec(&format!("ostree-receive-1 main http://127.0.0.1:{rport} app/x"));
    let _ = child.kill();
    let _ = child.wait();
    // The rule needs no signature: the push of the (as checked) unsigned commit goes through,
    // and the target holds no signatures for it, not the ones served later.
    assert_exit(&out, 0);
    assert_eq!(w.target().rev_parse("app/x").as_deref(), Some(commit.as_str()));
    let meta = w
        .target()
        .path
        .join(format!("objects/{}/{}.commitmeta", &commit[..2], &commit[2..]));
    assert!(!meta.exists(), "unchecked signatures were stored");
    assert!(w
        .local
        .path
        .join(format!("objects/{}/{}.commitmeta", &commit[..2], &commit[2..]))
        .exists());
}
