//! The admin CLI driven as a process: every subcommand, its `--json` output field by field,
//! and its error cases (runtime errors exit 1 with one `error: …` line, usage errors exit 2).

use std::path::{Path, PathBuf};

use e2e_tests::{assert_timestamp, json_str, run, run_ok, Gateway, GpgHome, OstreeRepo, SshKeyPair};
use serde_json::Value;

fn array(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {value:#}"))
}

fn names(value: &Value, field: &str) -> Vec<String> {
    array(value)
        .iter()
        .map(|v| json_str(v, field).to_string())
        .collect()
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|e| panic!("canonicalize {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// users

#[test]
fn user_add_list_show_disable_enable_remove() {
    let gw = Gateway::new();
    assert_eq!(gw.ok(&["user", "add", "alice"]), "added user alice\n");
    gw.ok(&["user", "add", "bob"]);

    let list = gw.ok_json(&["user", "list", "--json"]);
    assert_eq!(names(&list, "name"), ["alice", "bob"]);
    let alice = &list[0];
    assert!(alice["id"].as_i64().unwrap() >= 1);
    assert_eq!(alice["disabled"], false);
    assert_eq!(alice["is_admin"], false);
    assert_timestamp(json_str(alice, "created_at"));
    assert_eq!(alice.as_object().unwrap().len(), 5, "{alice:#}");

    let text = gw.ok(&["user", "list"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("DISABLED"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("alice ") && lines[1].contains(" no "),
        "{text}"
    );

    assert_eq!(gw.ok(&["user", "disable", "alice"]), "disabled user alice\n");
    let show = gw.ok_json(&["user", "show", "alice", "--json"]);
    assert_eq!(show["name"], "alice");
    assert_eq!(show["disabled"], true);
    assert_eq!(show["is_admin"], false);
    assert_eq!(show["id"], alice["id"]);
    assert_eq!(show["created_at"], alice["created_at"]);
    assert_eq!(show["teams"], serde_json::json!([]));
    assert_eq!(show["keys"], serde_json::json!([]));
    let text = gw.ok(&["user", "show", "alice"]);
    assert!(text.contains("name:     alice\n"), "{text}");
    assert!(text.contains("disabled: yes\n"), "{text}");
    assert!(text.contains("teams:    -\n"), "{text}");

    assert_eq!(gw.ok(&["user", "enable", "alice"]), "enabled user alice\n");
    assert_eq!(
        gw.ok_json(&["user", "show", "alice", "--json"])["disabled"],
        false
    );

    assert_eq!(gw.ok(&["user", "remove", "alice"]), "removed user alice\n");
    assert_eq!(names(&gw.ok_json(&["user", "list", "--json"]), "name"), ["bob"]);
    assert_eq!(gw.error(&["user", "show", "alice"]), "unknown user \"alice\"");
}

#[test]
fn user_errors() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    assert_eq!(
        gw.error(&["user", "add", "alice"]),
        "user \"alice\" already exists"
    );
    for cmd in ["show", "disable", "enable", "remove"] {
        assert_eq!(
            gw.error(&["user", cmd, "nobody"]),
            "unknown user \"nobody\"",
            "user {cmd}"
        );
    }
}

#[test]
fn invalid_names_are_refused_for_users_teams_and_repos() {
    let gw = Gateway::new();
    let long = "a".repeat(65);
    let add = |kind: &str, name: &str| -> Vec<String> {
        let mut args = vec![kind.to_string(), "add".to_string()];
        if kind == "repo" {
            args.push("--init".into());
        }
        // `--` so that names starting with '-' reach the gateway rather than clap's parser.
        args.push("--".into());
        args.push(name.into());
        args
    };
    for kind in ["user", "team", "repo"] {
        for bad in [
            "a/b",
            "..",
            "a b",
            "",
            "-x",
            ".hidden",
            "a..b",
            "é",
            long.as_str(),
        ] {
            let msg = gw.error(&add(kind, bad));
            assert!(
                msg.starts_with(&format!("invalid {kind} name {bad:?}")),
                "{kind} {bad:?}: {msg}"
            );
        }
        // The longest allowed name, and the allowed punctuation.
        let longest = format!("{}{}", &kind[..1], "b".repeat(63));
        gw.ok(&add(kind, &longest));
        gw.ok(&add(kind, "x1.y_z-w"));
    }
    assert_eq!(names(&gw.ok_json(&["user", "list", "--json"]), "name").len(), 2);
    assert_eq!(names(&gw.ok_json(&["team", "list", "--json"]), "name").len(), 2);
    // Nothing was created on disk for refused repo names.
    let mut entries: Vec<String> = std::fs::read_dir(gw.repos_root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, [format!("r{}", "b".repeat(63)), "x1.y_z-w".to_string()]);
}

// ---------------------------------------------------------------------------------------------
// SSH keys

#[test]
fn key_add_from_file_and_list() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    let key = SshKeyPair::generate(&gw.work_dir(), "alice", "alice@laptop");
    let fingerprint = key.fingerprint();

    let out = gw.ok(&["key", "add", "alice", key.public.to_str().unwrap()]);
    assert_eq!(
        out,
        format!("added key {fingerprint} (ssh-ed25519) to user alice\n")
    );

    let list = gw.ok_json(&["key", "list", "--json"]);
    assert_eq!(array(&list).len(), 1);
    let k = &list[0];
    assert!(k["id"].as_i64().unwrap() >= 1);
    assert_eq!(k["user"], "alice");
    assert_eq!(k["algorithm"], "ssh-ed25519");
    assert_eq!(json_str(k, "key_blob"), key.blob());
    assert_eq!(json_str(k, "fingerprint"), fingerprint);
    assert_eq!(k["comment"], "alice@laptop");
    assert_timestamp(json_str(k, "created_at"));
    assert_eq!(k["last_used_at"], Value::Null);
    assert_eq!(k.as_object().unwrap().len(), 8, "{k:#}");

    let text = gw.ok(&["key", "list"]);
    assert!(text.starts_with("USER"), "{text}");
    let row = text.lines().nth(1).unwrap();
    assert!(row.starts_with("alice "), "{text}");
    assert!(
        row.contains(&fingerprint) && row.contains("ssh-ed25519"),
        "{text}"
    );
    assert!(row.ends_with("alice@laptop"), "{text}");

    let show = gw.ok_json(&["user", "show", "alice", "--json"]);
    assert_eq!(show["keys"], list);
    let text = gw.ok(&["user", "show", "alice"]);
    assert!(
        text.contains(&format!("  {fingerprint} ssh-ed25519 alice@laptop\n")),
        "{text}"
    );
}

#[test]
fn key_add_from_stdin_with_options_comments_and_blank_lines() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    gw.ok(&["user", "add", "bob"]);
    let dir = gw.work_dir();
    let k1 = SshKeyPair::generate(&dir, "k1", "first key");
    let k2 = SshKeyPair::generate(&dir, "k2", "second@host");
    let k3 = SshKeyPair::generate(&dir, "k3", "");
    let k4 = SshKeyPair::generate(&dir, "k4", "bob@host");
    let input = format!(
        "# alice's keys\n\n   \n{}\nno-pty,command=\"/bin/true\",from=\"10.0.0.0/8\",environment=\"A=b\" {}\n  # indented comment\n\t{}\n\n",
        k1.public_line(),
        k2.public_line(),
        k3.public_line()
    );
    let out = gw.ok_stdin(&["key", "add", "alice", "-"], &input);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("added key {} (ssh-ed25519) to user alice", k1.fingerprint()),
            format!("added key {} (ssh-ed25519) to user alice", k2.fingerprint()),
            format!("added key {} (ssh-ed25519) to user alice", k3.fingerprint()),
        ]
    );
    // Without a FILE argument, stdin is read too.
    gw.ok_stdin(&["key", "add", "bob"], &format!("{}\n", k4.public_line()));

    let alice = gw.ok_json(&["key", "list", "--user", "alice", "--json"]);
    assert_eq!(
        names(&alice, "fingerprint"),
        [k1.fingerprint(), k2.fingerprint(), k3.fingerprint()]
    );
    assert_eq!(alice[0]["comment"], "first key");
    assert_eq!(alice[1]["comment"], "second@host");
    assert_eq!(alice[2]["comment"], Value::Null);
    assert_eq!(json_str(&alice[1], "key_blob"), k2.blob());
    for k in array(&alice) {
        assert_eq!(k["user"], "alice");
    }
    let bob = gw.ok_json(&["key", "list", "--user", "bob", "--json"]);
    assert_eq!(names(&bob, "fingerprint"), [k4.fingerprint()]);
    let all = gw.ok_json(&["key", "list", "--json"]);
    assert_eq!(names(&all, "user"), ["alice", "alice", "alice", "bob"]);
    let text = gw.ok(&["key", "list", "--user", "bob"]);
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[test]
fn key_add_accepts_quoted_options_with_spaces() {
    // authorized_keys options may quote values holding spaces (sshd(8) AUTHORIZED_KEYS FILE
    // FORMAT); such a line is valid and must be accepted like any other.
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    let key = SshKeyPair::generate(&gw.work_dir(), "k", "alice@laptop");
    let line = format!(
        "no-pty,command=\"echo hi there\",from=\"10.0.0.1\" {}\n",
        key.public_line()
    );
    gw.ok_stdin(&["key", "add", "alice"], &line);
    let list = gw.ok_json(&["key", "list", "--json"]);
    assert_eq!(json_str(&list[0], "fingerprint"), key.fingerprint());
    assert_eq!(list[0]["comment"], "alice@laptop");
}

#[test]
fn key_remove_and_cascade_on_user_remove() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    let dir = gw.work_dir();
    let k1 = SshKeyPair::generate(&dir, "k1", "one");
    let k2 = SshKeyPair::generate(&dir, "k2", "two");
    gw.ok_stdin(
        &["key", "add", "alice"],
        &format!("{}\n{}\n", k1.public_line(), k2.public_line()),
    );
    let fp1 = k1.fingerprint();
    assert_eq!(gw.ok(&["key", "remove", &fp1]), format!("removed key {fp1}\n"));
    assert_eq!(
        names(&gw.ok_json(&["key", "list", "--json"]), "fingerprint"),
        [k2.fingerprint()]
    );
    assert_eq!(
        gw.error(&["key", "remove", &fp1]),
        format!("unknown key \"{fp1}\"")
    );

    gw.ok(&["user", "remove", "alice"]);
    assert_eq!(gw.ok_json(&["key", "list", "--json"]), serde_json::json!([]));
    // The key is free again for someone else.
    gw.ok(&["user", "add", "bob"]);
    gw.ok(&["key", "add", "bob", k2.public.to_str().unwrap()]);
}

#[test]
fn key_errors() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    gw.ok(&["user", "add", "bob"]);
    let dir = gw.work_dir();
    let k1 = SshKeyPair::generate(&dir, "k1", "one");
    let k2 = SshKeyPair::generate(&dir, "k2", "two");
    let fp1 = k1.fingerprint();
    gw.ok(&["key", "add", "alice", k1.public.to_str().unwrap()]);

    // The same key for another user, or again for the same user.
    for user in ["bob", "alice"] {
        assert_eq!(
            gw.error(&["key", "add", user, k1.public.to_str().unwrap()]),
            format!("key {fp1} is already registered to user \"alice\""),
        );
    }
    // A batch is all or nothing: k2 is not added when k1 in the same input is refused.
    let msg = gw.error_stdin(
        &["key", "add", "bob", "-"],
        &format!("{}\n{}\n", k2.public_line(), k1.public_line()),
    );
    assert!(msg.contains("already registered"), "{msg}");
    assert_eq!(
        gw.ok_json(&["key", "list", "--user", "bob", "--json"]),
        serde_json::json!([])
    );
    // Twice in one input.
    let msg = gw.error_stdin(
        &["key", "add", "bob"],
        &format!("{}\n{}\n", k2.public_line(), k2.public_line()),
    );
    assert!(msg.starts_with("line 2: key ") && msg.contains("twice"), "{msg}");

    // Malformed keys name their line.
    let msg = gw.error_stdin(
        &["key", "add", "bob"],
        &format!("# c\n{}\nssh-ed25519 AAAA!!notbase64 x\n", k2.public_line()),
    );
    assert!(msg.starts_with("line 3: malformed public key"), "{msg}");
    let msg = gw.error_stdin(&["key", "add", "bob"], "hello world\n");
    assert!(msg.starts_with("line 1: malformed public key"), "{msg}");
    let private = std::fs::read_to_string(&k2.private).unwrap();
    let msg = gw.error_stdin(&["key", "add", "bob"], &private);
    assert!(msg.contains("malformed public key"), "{msg}");
    assert_eq!(
        gw.error_stdin(&["key", "add", "bob"], "# only a comment\n\n"),
        "no public key found in the input"
    );
    assert_eq!(
        gw.error_stdin(&["key", "add", "bob"], ""),
        "no public key found in the input"
    );

    // Unknown user, unreadable file, unknown fingerprint.
    assert_eq!(
        gw.error(&["key", "add", "carol", k2.public.to_str().unwrap()]),
        "unknown user \"carol\""
    );
    let missing = dir.join("missing.pub");
    let msg = gw.error(&["key", "add", "bob", missing.to_str().unwrap()]);
    assert!(
        msg.starts_with(&format!("cannot read {}", missing.display())),
        "{msg}"
    );
    assert_eq!(
        gw.error(&["key", "list", "--user", "carol"]),
        "unknown user \"carol\""
    );
    assert_eq!(
        gw.error(&["key", "remove", "SHA256:nope"]),
        "unknown key \"SHA256:nope\""
    );
    assert_eq!(
        names(&gw.ok_json(&["key", "list", "--json"]), "fingerprint"),
        [fp1]
    );
}

// ---------------------------------------------------------------------------------------------
// teams

#[test]
fn team_add_list_members_remove() {
    let gw = Gateway::new();
    for user in ["carol", "alice", "bob"] {
        gw.ok(&["user", "add", user]);
    }
    assert_eq!(gw.ok(&["team", "add", "devs"]), "added team devs\n");
    gw.ok(&["team", "add", "admins"]);
    assert_eq!(
        gw.ok(&["team", "add-member", "devs", "carol"]),
        "added carol to team devs\n"
    );
    gw.ok(&["team", "add-member", "devs", "alice"]);
    gw.ok(&["team", "add-member", "admins", "alice"]);

    let list = gw.ok_json(&["team", "list", "--json"]);
    assert_eq!(names(&list, "name"), ["admins", "devs"]);
    let devs = &list[1];
    assert!(devs["id"].as_i64().unwrap() >= 1);
    assert_timestamp(json_str(devs, "created_at"));
    assert_eq!(
        devs["members"],
        serde_json::json!([
            {"user": "alice", "is_admin": false},
            {"user": "carol", "is_admin": false},
        ])
    );
    assert_eq!(devs.as_object().unwrap().len(), 4, "{devs:#}");
    let text = gw.ok(&["team", "list"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("devs ") && l.contains("alice,carol")),
        "{text}"
    );

    let show = gw.ok_json(&["user", "show", "alice", "--json"]);
    assert_eq!(show["teams"], serde_json::json!(["admins", "devs"]));
    assert!(gw
        .ok(&["user", "show", "alice"])
        .contains("teams:    admins, devs\n"));

    assert_eq!(
        gw.ok(&["team", "remove-member", "devs", "carol"]),
        "removed carol from team devs\n"
    );
    // Removing a user drops their memberships.
    gw.ok(&["user", "remove", "alice"]);
    let list = gw.ok_json(&["team", "list", "--json"]);
    assert_eq!(list[0]["members"], serde_json::json!([]));
    assert_eq!(list[1]["members"], serde_json::json!([]));

    assert_eq!(gw.ok(&["team", "remove", "devs"]), "removed team devs\n");
    assert_eq!(
        names(&gw.ok_json(&["team", "list", "--json"]), "name"),
        ["admins"]
    );
}

#[test]
fn team_errors() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    gw.ok(&["team", "add", "devs"]);
    assert_eq!(gw.error(&["team", "add", "devs"]), "team \"devs\" already exists");
    assert_eq!(gw.error(&["team", "remove", "ops"]), "unknown team \"ops\"");
    assert_eq!(
        gw.error(&["team", "add-member", "ops", "alice"]),
        "unknown team \"ops\""
    );
    assert_eq!(
        gw.error(&["team", "add-member", "devs", "nobody"]),
        "unknown user \"nobody\""
    );
    gw.ok(&["team", "add-member", "devs", "alice"]);
    assert_eq!(
        gw.error(&["team", "add-member", "devs", "alice"]),
        "user \"alice\" is already a member of team \"devs\""
    );
    gw.ok(&["team", "remove-member", "devs", "alice"]);
    assert_eq!(
        gw.error(&["team", "remove-member", "devs", "alice"]),
        "user \"alice\" is not a member of team \"devs\""
    );
    assert_eq!(
        gw.error(&["team", "remove-member", "ops", "alice"]),
        "unknown team \"ops\""
    );
    assert_eq!(
        gw.error(&["team", "remove-member", "devs", "nobody"]),
        "unknown user \"nobody\""
    );
}

// ---------------------------------------------------------------------------------------------
// repos

#[test]
fn repo_add_init_defaults_to_archive() {
    let gw = Gateway::new();
    let out = gw.ok(&["repo", "add", "main", "--init"]);
    let root = canonical(&gw.repos_root());
    let path = root.join("main");
    assert_eq!(out, format!("added repo main at {} (archive)\n", path.display()));
    let repo = OstreeRepo::at(&path);
    assert!(
        ["archive", "archive-z2"].contains(&repo.config_get("core.mode").as_str()),
        "mode {}",
        repo.config_get("core.mode")
    );
    repo.fsck();
    // The repo is usable: a commit lands in it.
    let rev = repo
        .commit("app/x")
        .file("a.txt", "hello")
        .timestamp(1_700_000_000)
        .run();
    assert_eq!(repo.rev_parse("app/x").as_deref(), Some(rev.as_str()));

    let show = gw.ok_json(&["repo", "show", "main", "--json"]);
    assert!(show["id"].as_i64().unwrap() >= 1);
    assert_eq!(show["name"], "main");
    assert_eq!(json_str(&show, "path"), path.to_str().unwrap());
    assert_eq!(show["mode"], "archive");
    assert_eq!(show["collection_id"], Value::Null);
    assert_timestamp(json_str(&show, "created_at"));
    assert_eq!(show.as_object().unwrap().len(), 6, "{show:#}");

    let text = gw.ok(&["repo", "show", "main"]);
    assert!(text.contains("name:       main\n"), "{text}");
    assert!(
        text.contains(&format!("path:       {}\n", path.display())),
        "{text}"
    );
    assert!(text.contains("mode:       archive\n"), "{text}");
    assert!(text.contains("collection: -\n"), "{text}");

    let list = gw.ok_json(&["repo", "list", "--json"]);
    assert_eq!(list, serde_json::json!([show]));
    let text = gw.ok(&["repo", "list"]);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.lines().nth(1).unwrap().starts_with("main "), "{text}");
}

#[test]
fn repo_add_bare_user_relative_absolute_and_collection_id() {
    let gw = Gateway::new();
    let root = {
        gw.ok(&["user", "list"]); // creates the state dir and repos root
        canonical(&gw.repos_root())
    };

    let out = gw.ok(&["repo", "add", "bu", "--init", "--mode", "bare-user"]);
    assert!(out.ends_with("(bare-user)\n"), "{out}");
    assert_eq!(
        OstreeRepo::at(&root.join("bu")).config_get("core.mode"),
        "bare-user"
    );

    gw.ok(&["repo", "add", "rel", "--init", "--path", "group/sub/rel"]);
    let show = gw.ok_json(&["repo", "show", "rel", "--json"]);
    assert_eq!(
        json_str(&show, "path"),
        root.join("group/sub/rel").to_str().unwrap()
    );
    assert!(root.join("group/sub/rel/config").is_file());

    let absolute = root.join("abs-dir");
    gw.ok(&[
        "repo",
        "add",
        "abs",
        "--init",
        "--path",
        absolute.to_str().unwrap(),
        "--collection-id",
        "org.example.Os",
    ]);
    let show = gw.ok_json(&["repo", "show", "abs", "--json"]);
    assert_eq!(json_str(&show, "path"), absolute.to_str().unwrap());
    assert_eq!(show["collection_id"], "org.example.Os");
    assert_eq!(show["mode"], "archive");
    assert_eq!(
        OstreeRepo::at(&absolute).config_get("core.collection-id"),
        "org.example.Os"
    );
    assert!(gw
        .ok(&["repo", "show", "abs"])
        .contains("collection: org.example.Os\n"));

    let list = gw.ok_json(&["repo", "list", "--json"]);
    assert_eq!(names(&list, "name"), ["abs", "bu", "rel"]);
    assert_eq!(names(&list, "mode"), ["archive", "bare-user", "archive"]);
}

#[test]
fn repo_add_existing_without_init() {
    let gw = Gateway::new();
    gw.ok(&["user", "list"]);
    let root = canonical(&gw.repos_root());
    let existing = OstreeRepo::init(&root.join("existing"), "bare-user");
    let rev = existing.commit("os/stable").timestamp(1_700_000_000).run();

    // Mode is detected; a wrong --mode is refused before anything is stored.
    let msg = gw.error(&["repo", "add", "existing", "--mode", "archive"]);
    assert_eq!(
        msg,
        format!(
            "repo at {} is in bare-user mode, not archive",
            root.join("existing").display()
        )
    );
    gw.ok(&["repo", "add", "existing"]);
    let show = gw.ok_json(&["repo", "show", "existing", "--json"]);
    assert_eq!(show["mode"], "bare-user");
    // --init on an existing repo leaves it alone.
    OstreeRepo::init(&root.join("other"), "archive");
    gw.ok(&["repo", "add", "other", "--init", "--mode", "archive"]);
    assert_eq!(existing.rev_parse("os/stable"), Some(rev));

    // No repo and no --init.
    let msg = gw.error(&["repo", "add", "missing"]);
    assert_eq!(
        msg,
        format!(
            "no OSTree repo at {} (use --init to create it)",
            root.join("missing").display()
        )
    );
    assert!(!root.join("missing").exists());
}

#[test]
fn repo_remove_forgets_but_keeps_files() {
    let gw = Gateway::new();
    gw.ok(&["repo", "add", "main", "--init"]);
    let path = canonical(&gw.repos_root()).join("main");
    assert_eq!(
        gw.ok(&["repo", "remove", "main"]),
        "removed repo main (files left on disk)\n"
    );
    assert_eq!(gw.ok_json(&["repo", "list", "--json"]), serde_json::json!([]));
    assert!(path.join("config").is_file());
    assert_eq!(gw.error(&["repo", "show", "main"]), "unknown repo \"main\"");
    // Re-adding adopts the repo left on disk.
    gw.ok(&["repo", "add", "main"]);
}

#[test]
fn repo_errors() {
    let gw = Gateway::new();
    gw.ok(&["repo", "add", "main", "--init"]);
    let root = canonical(&gw.repos_root());

    assert_eq!(
        gw.error(&["repo", "add", "main", "--init"]),
        "repo \"main\" already exists"
    );
    assert_eq!(
        gw.error(&["repo", "add", "alias", "--path", "main"]),
        format!(
            "path {} is already used by repo \"main\"",
            root.join("main").display()
        )
    );
    assert_eq!(gw.error(&["repo", "show", "nope"]), "unknown repo \"nope\"");
    assert_eq!(gw.error(&["repo", "remove", "nope"]), "unknown repo \"nope\"");
    let msg = gw.error(&["repo", "add", "c", "--init", "--collection-id", "not a valid id"]);
    assert!(
        msg.starts_with("invalid collection id \"not a valid id\""),
        "{msg}"
    );

    // Outside the repos root: an absolute path elsewhere, `..`, a symlink, the root itself.
    let outside = tempfile::tempdir().unwrap();
    let outside_repo = outside.path().join("r");
    let msg = gw.error(&[
        "repo",
        "add",
        "o1",
        "--init",
        "--path",
        outside_repo.to_str().unwrap(),
    ]);
    assert_eq!(
        msg,
        format!(
            "repo path {} is outside the repos root {}",
            outside_repo.display(),
            root.display()
        )
    );
    let msg = gw.error(&["repo", "add", "o2", "--init", "--path", "../x"]);
    assert_eq!(msg, "repo path ../x must not contain \"..\" or \".\" components");
    let msg = gw.error(&["repo", "add", "o3", "--init", "--path", "a/../../x"]);
    assert!(msg.contains("must not contain"), "{msg}");
    std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
    let msg = gw.error(&["repo", "add", "o4", "--init", "--path", "escape/r"]);
    assert_eq!(
        msg,
        format!("repo path escape/r is outside the repos root {}", root.display())
    );
    let msg = gw.error(&["repo", "add", "o5", "--init", "--path", "escape"]);
    assert!(msg.contains("outside the repos root"), "{msg}");
    let msg = gw.error(&["repo", "add", "o6", "--init", "--path", root.to_str().unwrap()]);
    assert!(msg.contains("outside the repos root"), "{msg}");
    // Nothing was created outside, nor recorded.
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_eq!(names(&gw.ok_json(&["repo", "list", "--json"]), "name"), ["main"]);
}

// ---------------------------------------------------------------------------------------------
// rules

fn rule_ids(gw: &Gateway) -> Vec<(i64, i64)> {
    array(&gw.ok_json(&["rule", "list", "--json"]))
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["position"].as_i64().unwrap()))
        .collect()
}

#[test]
fn rule_add_every_option_and_list() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    gw.ok(&["team", "add", "devs"]);

    let out = gw.ok(&[
        "rule",
        "add",
        "--repo",
        "apps",
        "--ref",
        "app/org.example.*/**",
        "--user",
        "alice",
        "--allow",
        "update,create",
    ]);
    assert!(out.starts_with("added rule #1 at position 1: "), "{out}");
    gw.ok(&[
        "rule",
        "add",
        "--repo",
        "apps",
        "--ref",
        "**",
        "--team",
        "devs",
        "--deny",
        "all",
        "--comment",
        "devs may not touch apps",
    ]);
    gw.ok(&[
        "rule",
        "add",
        "--repo",
        "**",
        "--ref",
        "users/{user}/**",
        "--everyone",
        "--allow",
        "create, update ,force,delete",
        "--require-signature",
        "--no-timestamp-check",
    ]);
    let out = gw.ok(&[
        "rule",
        "add",
        "--repo",
        "os-*",
        "--ref",
        "os/?/stable",
        "--everyone",
        "--deny",
        "force",
        "--position",
        "1",
    ]);
    assert!(out.starts_with("added rule #4 at position 1: "), "{out}");

    let list = gw.ok_json(&["rule", "list", "--json"]);
    let rules = array(&list);
    assert_eq!(rules.len(), 4);
    let expected = [
        // id, position, kind, name, repo, ref, ops, effect, signed, timestamp_check, comment
        (
            4,
            1,
            "everyone",
            None,
            "os-*",
            "os/?/stable",
            "force",
            "deny",
            false,
            true,
            None,
        ),
        (
            1,
            2,
            "user",
            Some("alice"),
            "apps",
            "app/org.example.*/**",
            "create,update",
            "allow",
            false,
            true,
            None,
        ),
        (
            2,
            3,
            "team",
            Some("devs"),
            "apps",
            "**",
            "create,update,force,delete",
            "deny",
            false,
            true,
            Some("devs may not touch apps"),
        ),
        (
            3,
            4,
            "everyone",
            None,
            "**",
            "users/{user}/**",
            "create,update,force,delete",
            "allow",
            true,
            false,
            None,
        ),
    ];
    for (rule, e) in rules.iter().zip(expected) {
        assert_eq!(rule["id"], e.0, "{rule:#}");
        assert_eq!(rule["position"], e.1, "{rule:#}");
        assert_eq!(rule["subject_kind"], e.2, "{rule:#}");
        assert_eq!(rule["subject_name"], serde_json::json!(e.3), "{rule:#}");
        assert_eq!(rule["repo_pattern"], e.4, "{rule:#}");
        assert_eq!(rule["ref_pattern"], e.5, "{rule:#}");
        assert_eq!(rule["ops"], e.6, "{rule:#}");
        assert_eq!(rule["effect"], e.7, "{rule:#}");
        assert_eq!(rule["require_signature"], e.8, "{rule:#}");
        assert_eq!(rule["timestamp_check"], e.9, "{rule:#}");
        assert_eq!(rule["comment"], serde_json::json!(e.10), "{rule:#}");
        assert_timestamp(json_str(rule, "created_at"));
        assert_eq!(rule.as_object().unwrap().len(), 12, "{rule:#}");
    }

    let text = gw.ok(&["rule", "list"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("CONDITIONS"),
        "{text}"
    );
    let cells = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cells(lines[1]),
        [
            "4",
            "1",
            "everyone",
            "deny",
            "force",
            "os-*",
            "os/?/stable",
            "-",
            "-"
        ]
    );
    assert_eq!(
        cells(lines[2]),
        [
            "1",
            "2",
            "user:alice",
            "allow",
            "create,update",
            "apps",
            "app/org.example.*/**",
            "-",
            "-"
        ]
    );
    assert!(lines[3].contains("team:devs") && lines[3].ends_with("devs may not touch apps"));
    assert!(lines[4].contains(" signed,any-timestamp "), "{text}");

    // A position past the end appends.
    let out = gw.ok(&[
        "rule",
        "add",
        "--repo",
        "x",
        "--ref",
        "y",
        "--everyone",
        "--allow",
        "create",
        "--position",
        "99",
    ]);
    assert!(out.starts_with("added rule #5 at position 5: "), "{out}");
}

#[test]
fn rule_list_filters_by_repo() {
    let gw = Gateway::new();
    let add = |repo: &str| {
        gw.ok(&[
            "rule",
            "add",
            "--repo",
            repo,
            "--ref",
            "**",
            "--everyone",
            "--allow",
            "all",
        ]);
    };
    add("apps");
    add("app*");
    add("os");
    add("**");
    add("team/*");
    let repos = |filter: &str| {
        names(
            &gw.ok_json(&["rule", "list", "--repo", filter, "--json"]),
            "repo_pattern",
        )
    };
    assert_eq!(repos("apps"), ["apps", "app*", "**"]);
    assert_eq!(repos("os"), ["os", "**"]);
    assert_eq!(repos("team/a"), ["**", "team/*"]);
    assert_eq!(repos("zzz"), ["**"]);
    let text = gw.ok(&["rule", "list", "--repo", "os"]);
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn rule_remove_compacts_positions() {
    let gw = Gateway::new();
    for i in 0..4 {
        gw.ok(&[
            "rule",
            "add",
            "--repo",
            "r",
            "--ref",
            &format!("ref{i}"),
            "--everyone",
            "--allow",
            "all",
        ]);
    }
    assert_eq!(rule_ids(&gw), [(1, 1), (2, 2), (3, 3), (4, 4)]);
    assert_eq!(gw.ok(&["rule", "remove", "2"]), "removed rule #2\n");
    assert_eq!(rule_ids(&gw), [(1, 1), (3, 2), (4, 3)]);
    gw.ok(&["rule", "remove", "1"]);
    assert_eq!(rule_ids(&gw), [(3, 1), (4, 2)]);
    // Insert in the middle after compaction.
    gw.ok(&[
        "rule",
        "add",
        "--repo",
        "r",
        "--ref",
        "mid",
        "--everyone",
        "--deny",
        "all",
        "--position",
        "2",
    ]);
    assert_eq!(rule_ids(&gw), [(3, 1), (5, 2), (4, 3)]);
    assert_eq!(gw.error(&["rule", "remove", "2"]), "unknown rule \"#2\"");
    assert_eq!(gw.error(&["rule", "remove", "99"]), "unknown rule \"#99\"");

    // Removing a user or team removes the rules naming it, and compacts.
    gw.ok(&["user", "add", "alice"]);
    gw.ok(&["team", "add", "devs"]);
    gw.ok(&[
        "rule",
        "add",
        "--repo",
        "r",
        "--ref",
        "a",
        "--user",
        "alice",
        "--allow",
        "all",
        "--position",
        "1",
    ]);
    gw.ok(&[
        "rule",
        "add",
        "--repo",
        "r",
        "--ref",
        "t",
        "--team",
        "devs",
        "--allow",
        "all",
        "--position",
        "3",
    ]);
    assert_eq!(rule_ids(&gw), [(6, 1), (3, 2), (7, 3), (5, 4), (4, 5)]);
    gw.ok(&["user", "remove", "alice"]);
    assert_eq!(rule_ids(&gw), [(3, 1), (7, 2), (5, 3), (4, 4)]);
    gw.ok(&["team", "remove", "devs"]);
    assert_eq!(rule_ids(&gw), [(3, 1), (5, 2), (4, 3)]);
}

#[test]
fn rule_errors() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["rule", "add", "--repo", "r", "--everyone"];
        args.extend_from_slice(extra);
        args
    }
    let msg = gw.error(&with(&["--ref", "a//b", "--allow", "all"]));
    assert!(msg.starts_with("invalid ref pattern: "), "{msg}");
    for bad_ref in ["", "a b", "x:y", "a/**b", "{owner}/x", "/a"] {
        let msg = gw.error(&with(&["--ref", bad_ref, "--allow", "all"]));
        assert!(msg.starts_with("invalid ref pattern: "), "{bad_ref:?}: {msg}");
    }
    let msg = gw.error(&[
        "rule",
        "add",
        "--repo",
        "a b",
        "--ref",
        "x",
        "--everyone",
        "--allow",
        "all",
    ]);
    assert!(msg.starts_with("invalid repo pattern: "), "{msg}");
    assert_eq!(
        gw.error(&with(&["--ref", "x", "--allow", "create,push"])),
        "unknown operation \"push\": valid operations are create, update, force, delete (or all)"
    );
    let msg = gw.error(&with(&["--ref", "x", "--deny", " , "]));
    assert!(msg.starts_with("empty operation list"), "{msg}");
    assert_eq!(
        gw.error(&with(&["--ref", "x", "--allow", "all", "--position", "0"])),
        "invalid position 0: positions start at 1"
    );
    assert_eq!(
        gw.error(&["rule", "add", "--repo", "r", "--ref", "x", "--user", "bob", "--allow", "all"]),
        "unknown user \"bob\""
    );
    assert_eq!(
        gw.error(&["rule", "add", "--repo", "r", "--ref", "x", "--team", "devs", "--allow", "all"]),
        "unknown team \"devs\""
    );
    // Usage errors: no subject, two subjects, no effect, both effects, bad numbers.
    for args in [
        vec!["rule", "add", "--repo", "r", "--ref", "x", "--allow", "all"],
        vec![
            "rule",
            "add",
            "--repo",
            "r",
            "--ref",
            "x",
            "--user",
            "alice",
            "--everyone",
            "--allow",
            "all",
        ],
        vec!["rule", "add", "--repo", "r", "--ref", "x", "--user", "alice"],
        vec![
            "rule", "add", "--repo", "r", "--ref", "x", "--user", "alice", "--allow", "all", "--deny", "all",
        ],
        vec!["rule", "add", "--ref", "x", "--everyone", "--allow", "all"],
        vec![
            "rule",
            "add",
            "--repo",
            "r",
            "--ref",
            "x",
            "--everyone",
            "--allow",
            "all",
            "--position",
            "one",
        ],
        vec!["rule", "remove", "one"],
        vec!["rule", "remove"],
    ] {
        let stderr = gw.fails(&args, 2);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    assert_eq!(gw.ok_json(&["rule", "list", "--json"]), serde_json::json!([]));
}

// ---------------------------------------------------------------------------------------------
// trusted GPG keys

#[test]
fn gpg_key_add_list_remove_with_a_real_key() {
    let gw = Gateway::new();
    gw.ok(&["repo", "add", "main", "--init"]);
    gw.ok(&["repo", "add", "other", "--init"]);
    let gpg = GpgHome::new();
    let fpr = gpg.generate_key("Test <t@example.com>");
    assert_eq!(fpr.len(), 40);
    let armored = gw.work_dir().join("pub.asc");
    std::fs::write(&armored, gpg.export_armored(&fpr)).unwrap();
    let binary = gw.work_dir().join("pub.gpg");
    std::fs::write(&binary, gpg.export_binary(&fpr)).unwrap();

    let out = gw.ok(&["gpg-key", "add", "main", armored.to_str().unwrap()]);
    assert_eq!(
        out,
        format!("trusted GPG key {fpr} (Test <t@example.com>) for repo main\n")
    );
    // The binary export works too, for another repo.
    gw.ok(&["gpg-key", "add", "other", binary.to_str().unwrap()]);

    let list = gw.ok_json(&["gpg-key", "list", "main", "--json"]);
    assert_eq!(array(&list).len(), 1);
    let k = &list[0];
    assert!(k["id"].as_i64().unwrap() >= 1);
    assert_eq!(k["repo"], "main");
    assert_eq!(json_str(k, "fingerprint"), fpr);
    assert_eq!(k["user_ids"], "Test <t@example.com>");
    let stored = json_str(k, "armored");
    assert!(
        stored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{stored}"
    );
    assert!(!stored.contains("PRIVATE"));
    assert_timestamp(json_str(k, "created_at"));
    assert_eq!(k.as_object().unwrap().len(), 6, "{k:#}");
    // What was stored is a usable key: gpg imports it into a fresh home.
    let check = GpgHome::new();
    let key_file = gw.work_dir().join("stored.asc");
    std::fs::write(&key_file, stored).unwrap();
    run_ok(check.gpg().arg("--import").arg(&key_file));
    let listing = run_ok(check.gpg().args(["--with-colons", "--list-keys"]));
    assert!(listing.contains(&fpr), "{listing}");

    let text = gw.ok(&["gpg-key", "list", "main"]);
    assert!(text.starts_with("FINGERPRINT"), "{text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{fpr}  Test <t@example.com>")),
        "{text}"
    );

    assert_eq!(
        gw.error(&["gpg-key", "add", "main", armored.to_str().unwrap()]),
        format!("GPG key \"{fpr}\" already exists")
    );
    // Lower-case fingerprints are accepted on removal.
    let lower = fpr.to_lowercase();
    assert_eq!(
        gw.ok(&["gpg-key", "remove", "main", &lower]),
        format!("removed GPG key {lower} from repo main\n")
    );
    assert_eq!(
        gw.ok_json(&["gpg-key", "list", "main", "--json"]),
        serde_json::json!([])
    );
    assert_eq!(
        gw.error(&["gpg-key", "remove", "main", &fpr]),
        format!("unknown GPG key \"{fpr}\"")
    );
    assert_eq!(
        array(&gw.ok_json(&["gpg-key", "list", "other", "--json"])).len(),
        1
    );
    // Removing the repo forgets its keys.
    gw.ok(&["repo", "remove", "other"]);
    gw.ok(&["repo", "add", "other"]);
    assert_eq!(
        gw.ok_json(&["gpg-key", "list", "other", "--json"]),
        serde_json::json!([])
    );
}

#[test]
fn gpg_key_errors() {
    let gw = Gateway::new();
    gw.ok(&["repo", "add", "main", "--init"]);
    let gpg = GpgHome::new();
    let fpr = gpg.generate_key("Secret <s@example.com>");
    let work = gw.work_dir();
    let public = work.join("pub.asc");
    std::fs::write(&public, gpg.export_armored(&fpr)).unwrap();

    for (name, data) in [
        ("sec.asc", gpg.export_secret_armored(&fpr)),
        ("sec.gpg", gpg.export_secret_binary(&fpr)),
    ] {
        let file = work.join(name);
        std::fs::write(&file, data).unwrap();
        let msg = gw.error(&["gpg-key", "add", "main", file.to_str().unwrap()]);
        assert!(msg.contains("PRIVATE key"), "{name}: {msg}");
    }
    let garbage = work.join("garbage.asc");
    std::fs::write(&garbage, "this is not a key\n").unwrap();
    let msg = gw.error(&["gpg-key", "add", "main", garbage.to_str().unwrap()]);
    assert!(
        msg.contains("no OpenPGP public key") || msg.contains("not an OpenPGP key"),
        "{msg}"
    );
    let missing = work.join("missing.asc");
    let msg = gw.error(&["gpg-key", "add", "main", missing.to_str().unwrap()]);
    assert!(
        msg.starts_with(&format!("cannot read {}", missing.display())),
        "{msg}"
    );
    assert_eq!(
        gw.error(&["gpg-key", "add", "nope", public.to_str().unwrap()]),
        "unknown repo \"nope\""
    );
    assert_eq!(gw.error(&["gpg-key", "list", "nope"]), "unknown repo \"nope\"");
    assert_eq!(
        gw.error(&["gpg-key", "remove", "nope", &fpr]),
        "unknown repo \"nope\""
    );
    assert_eq!(
        gw.ok_json(&["gpg-key", "list", "main", "--json"]),
        serde_json::json!([])
    );
}

// ---------------------------------------------------------------------------------------------
// audit

/// Writes audit rows straight into the database with the sqlite3 CLI (nothing in the admin CLI
/// writes them yet; the SSH receive will).
fn seed_audit(gw: &Gateway, rows: &[(&str, &str, &str, &str)]) {
    let mut sql = String::new();
    for (time, user, repo, state) in rows {
        let finished = if *state == "in_progress" {
            "NULL".to_string()
        } else {
            format!("'{time}'")
        };
        sql.push_str(&format!(
            "INSERT INTO audit (time, push_id, user_name, key_fingerprint, peer_addr, repo, ref_name,
                                old_rev, new_rev, op, decision, matched_rule, reason, state, finished_at)
             VALUES ('{time}', 'push-{user}', '{user}', 'SHA256:fp', '127.0.0.1:5555', '{repo}',
                     'app/x', NULL, '{rev}', 'create', 'allow', 3, NULL, '{state}', {finished});\n",
            rev = "ab".repeat(32),
        ));
    }
    run_ok(std::process::Command::new("sqlite3").arg(gw.db_path()).arg(sql));
}

#[test]
fn audit_queries() {
    let gw = Gateway::new();
    assert_eq!(gw.ok_json(&["audit", "--json"]), serde_json::json!([]));
    let empty = gw.ok(&["audit"]);
    assert_eq!(empty.lines().count(), 1, "{empty}");
    assert!(empty.starts_with("ID  TIME"), "{empty}");

    seed_audit(
        &gw,
        &[
            ("2020-01-01T00:00:00.000Z", "alice", "main", "accepted"),
            ("2020-06-01T00:00:00.000Z", "bob", "main", "rejected"),
            ("2099-01-01T00:00:00.000Z", "alice", "other", "in_progress"),
        ],
    );
    let all = gw.ok_json(&["audit", "--json"]);
    let rows = array(&all);
    assert_eq!(rows.len(), 3);
    // Newest first.
    assert_eq!(rows[0]["id"], 3);
    assert_eq!(rows[2]["id"], 1);
    let first = &rows[2];
    assert_eq!(first["time"], "2020-01-01T00:00:00.000Z");
    assert_eq!(first["push_id"], "push-alice");
    assert_eq!(first["user"], "alice");
    assert_eq!(first["key_fingerprint"], "SHA256:fp");
    assert_eq!(first["peer_addr"], "127.0.0.1:5555");
    assert_eq!(first["repo"], "main");
    assert_eq!(first["ref"], "app/x");
    assert_eq!(first["old_rev"], Value::Null);
    assert_eq!(json_str(first, "new_rev"), "ab".repeat(32));
    assert_eq!(first["op"], "create");
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["matched_rule"], 3);
    assert_eq!(first["reason"], Value::Null);
    assert_eq!(first["state"], "accepted");
    assert_eq!(first["finished_at"], "2020-01-01T00:00:00.000Z");
    assert_eq!(first.as_object().unwrap().len(), 16, "{first:#}");
    assert_eq!(rows[0]["finished_at"], Value::Null);

    let ids = |args: &[&str]| -> Vec<i64> {
        let mut full = vec!["audit", "--json"];
        full.extend_from_slice(args);
        array(&gw.ok_json(&full))
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&["--limit", "2"]), [3, 2]);
    assert_eq!(ids(&["--limit", "1"]), [3]);
    assert_eq!(ids(&["--user", "alice"]), [3, 1]);
    assert_eq!(ids(&["--repo", "main"]), [2, 1]);
    assert_eq!(ids(&["--repo", "main", "--user", "bob"]), [2]);
    assert_eq!(ids(&["--user", "nobody"]), Vec::<i64>::new());
    assert_eq!(ids(&["--since", "2020-03-01"]), [3, 2]);
    assert_eq!(ids(&["--since", "2020-06-01T00:00:00Z"]), [3, 2]);
    assert_eq!(ids(&["--since", "2020-06-01T02:00:00+02:00"]), [3, 2]);
    assert_eq!(ids(&["--since", "7d"]), [3]);
    assert_eq!(ids(&["--since", "90s"]), [3]);

    let text = gw.ok(&["audit", "--limit", "3"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let row = lines[3];
    assert!(row.starts_with("1 "), "{text}");
    for cell in [
        "alice",
        "main",
        "app/x",
        "create",
        "-→abababababab",
        "accepted",
        "#3",
    ] {
        assert!(row.contains(cell), "{cell} missing in {row}");
    }
}

#[test]
fn audit_errors() {
    let gw = Gateway::new();
    for bad in ["yesterday", "3y", "2026-13-01", "-5d", ""] {
        let msg = gw.error(&["audit", &format!("--since={bad}")]);
        assert!(msg.starts_with("invalid --since"), "{bad:?}: {msg}");
    }
    assert_eq!(gw.error(&["audit", "--limit", "0"]), "--limit must be at least 1");
    assert_eq!(gw.error(&["audit", "--limit=-3"]), "--limit must be at least 1");
    gw.fails(&["audit", "--limit", "many"], 2);
    gw.fails(&["audit", "--bogus"], 2);
}

// ---------------------------------------------------------------------------------------------
// usage, configuration, database

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let gw = Gateway::new();
    for args in [
        vec![],
        vec!["bogus"],
        vec!["user"],
        vec!["user", "add"],
        vec!["user", "add", "a", "b"],
        vec!["user", "list", "--yaml"],
        vec!["key", "remove"],
        vec!["team", "add-member", "devs"],
        vec!["repo", "add", "r", "--mode", "weird"],
        vec!["gpg-key", "add", "r"],
        vec!["serve", "--listen", "not-an-address"],
    ] {
        let stderr = gw.fails(&args, 2);
        assert!(
            stderr.starts_with("error: ") || stderr.contains("Usage:"),
            "{args:?}: {stderr}"
        );
    }
    let help = gw.ok(&["--help"]);
    for cmd in ["user", "key", "team", "repo", "rule", "gpg-key", "audit", "serve"] {
        assert!(help.contains(cmd), "{cmd} missing from --help:\n{help}");
    }
    let version = gw.ok(&["--version"]);
    assert!(version.starts_with("ostree-gateway "), "{version}");
    gw.ok(&["rule", "add", "--help"]);
}

#[test]
fn config_file_is_strict_and_used() {
    let gw = Gateway::new();
    let config = gw.work_dir().join("bad.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:2222\"\nlissten = 3\n").unwrap();
    let msg = gw.error(&["--config", config.to_str().unwrap(), "user", "list"]);
    assert!(
        msg.starts_with(&format!("invalid config {}: ", config.display())),
        "{msg}"
    );
    assert!(msg.contains("lissten"), "{msg}");

    std::fs::write(&config, "state_dirr = \"/tmp/x\"\n").unwrap();
    let msg = gw.error(&["user", "list", "--config", config.to_str().unwrap()]);
    assert!(msg.contains("state_dirr"), "{msg}");

    std::fs::write(&config, "[limits]\nmax_push_size = \"big\"\n").unwrap();
    let msg = gw.error(&["--config", config.to_str().unwrap(), "user", "list"]);
    assert!(msg.starts_with("invalid config"), "{msg}");

    let missing = gw.work_dir().join("missing.toml");
    let msg = gw.error(&["--config", missing.to_str().unwrap(), "user", "list"]);
    assert!(
        msg.starts_with(&format!("cannot read config {}", missing.display())),
        "{msg}"
    );

    // The example config shipped in the repo is valid.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.toml");
    gw.ok(&["--config", example.to_str().unwrap(), "user", "list"]);

    // repos_root from the config (through $OSTREE_GATEWAY_CONFIG) is where repos go.
    let repos = gw.root().join("elsewhere");
    gw.write_config(&format!("repos_root = \"{}\"\n", repos.display()));
    gw.ok(&["repo", "add", "r", "--init"]);
    assert!(repos.join("r/config").is_file());
    let msg = gw.error(&[
        "repo",
        "add",
        "s",
        "--init",
        "--path",
        gw.repos_root().join("s").to_str().unwrap(),
    ]);
    assert!(msg.contains("outside the repos root"), "{msg}");
}

#[test]
fn state_dir_from_env_and_config() {
    let gw = Gateway::new();
    let from_env = gw.root().join("env-state");
    run_ok(
        gw.bare_command()
            .env("OSTREE_GATEWAY_STATE_DIR", &from_env)
            .args(["user", "add", "envuser"]),
    );
    assert!(from_env.join("gateway.db").is_file());

    let from_config = gw.root().join("config-state");
    gw.write_config(&format!("state_dir = \"{}\"\n", from_config.display()));
    run_ok(gw.bare_command().args(["user", "add", "cfguser"]));
    assert!(from_config.join("gateway.db").is_file());
    // --state-dir beats the config; the environment beats the config too.
    let out = run_ok(gw.command().args(["user", "list", "--json"]));
    assert_eq!(out.trim(), "[]");
    let out = run_ok(
        gw.bare_command()
            .env("OSTREE_GATEWAY_STATE_DIR", &from_env)
            .args(["user", "list", "--json"]),
    );
    assert!(out.contains("envuser") && !out.contains("cfguser"), "{out}");
}

#[test]
fn database_is_wal_and_survives_reopen() {
    let gw = Gateway::new();
    gw.ok(&["user", "add", "alice"]);
    let db = std::fs::read(gw.db_path()).unwrap();
    assert_eq!(&db[..16], b"SQLite format 3\0");
    // File format write/read versions 2 = WAL.
    assert_eq!((db[18], db[19]), (2, 2), "database is not in WAL mode");

    // Every command is a new process: data written by one is read by the next.
    gw.ok(&["team", "add", "devs"]);
    gw.ok(&["team", "add-member", "devs", "alice"]);
    gw.ok(&["repo", "add", "main", "--init"]);
    gw.ok(&[
        "rule", "add", "--repo", "main", "--ref", "**", "--team", "devs", "--allow", "all",
    ]);
    let before: Vec<Value> = ["user", "team", "repo", "rule"]
        .iter()
        .map(|group| gw.ok_json(&[*group, "list", "--json"]))
        .collect();
    let after: Vec<Value> = ["user", "team", "repo", "rule"]
        .iter()
        .map(|group| gw.ok_json(&[*group, "list", "--json"]))
        .collect();
    assert_eq!(before, after);
    assert_eq!(after[0][0]["name"], "alice");
    assert_eq!(after[1][0]["members"][0]["user"], "alice");

    // Migrations ran once and are not re-applied on reopen.
    let applied = run_ok(
        std::process::Command::new("sqlite3")
            .arg(gw.db_path())
            .arg("SELECT COUNT(*) FROM _sqlx_migrations; PRAGMA journal_mode;"),
    );
    let migrations = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count();
    assert_eq!(applied, format!("{migrations}\nwal\n"));

    // A state dir copied elsewhere (e.g. restored from backup) opens with its data.
    let output = run(std::process::Command::new("cp")
        .arg("-a")
        .arg(gw.state_dir())
        .arg(gw.root().join("copy")));
    assert!(output.status.success());
    let out = run_ok(
        gw.bare_command()
            .arg("--state-dir")
            .arg(gw.root().join("copy"))
            .args(["user", "list", "--json"]),
    );
    assert!(out.contains("\"alice\""), "{out}");
}

#[test]
fn repo_add_refuses_the_staging_area_and_a_mismatched_collection_id() {
    let gw = Gateway::new();
    let err = gw.fails(&["repo", "add", "st", "--init", "--path", ".staging/x"], 1);
    assert!(err.contains("staging area"), "{err}");
    let path = gw.repos_root().join("c");
    std::fs::create_dir_all(&path).unwrap();
    e2e_tests::run_ok(
        std::process::Command::new("ostree")
            .arg(format!("--repo={}", path.display()))
            .args(["init", "--mode=archive", "--collection-id=org.example.A"]),
    );
    let err = gw.fails(&["repo", "add", "c", "--collection-id", "org.example.Other"], 1);
    assert!(err.contains("has collection id org.example.A"), "{err}");
    gw.ok(&["repo", "add", "c", "--collection-id", "org.example.A"]);
}
