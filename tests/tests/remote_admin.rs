//! Admin commands over SSH for admin users (same grammar as the local CLI), refused for
//! everyone else, never reaching server files; every change audited with who and from where.

use e2e_tests::server::OpenSsh;
use e2e_tests::world::{assert_exit, stderr, World};
use e2e_tests::{run_with_stdin, SshKeyPair};

#[test]
fn admins_run_admin_commands_over_ssh_and_others_are_refused() {
    let w = World::new(&[]);
    w.gw.ok(&["user", "add", "bob"]);
    let bob_key = SshKeyPair::generate(&w.gw.work_dir(), "bob", "bob@x");
    w.gw.ok(&[
        "key".as_ref(),
        "add".as_ref(),
        "bob".as_ref(),
        bob_key.public.as_os_str(),
    ]);
    let alice = w.ssh();
    let bob = OpenSsh::new(&w.gw, &w.served, &bob_key, "bob");

    // Not an admin yet.
    let out = alice.exec("user list --json");
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("is not an admin"), "{}", stderr(&out));

    w.gw.ok(&["user", "set-admin", "alice"]);
    let out = alice.exec("user list --json");
    assert_exit(&out, 0);
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(users[0]["is_admin"], true);

    // A change with data on stdin, and usage errors carried back.
    let carol = SshKeyPair::generate(&w.gw.work_dir(), "carol", "carol@x");
    assert_exit(&alice.exec("user add carol"), 0);
    let out = run_with_stdin(
        alice.ssh().arg(alice.target()).arg("key add carol -"),
        &std::fs::read(&carol.public).unwrap(),
    );
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("added key"),
        "{}",
        stderr(&out)
    );
    assert_exit(&alice.exec("user frobnicate"), 2);

    // Server files and other state dirs are out of reach; the server is not startable remotely.
    let out = alice.exec("gpg-key add main /etc/passwd");
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("stdin"), "{}", stderr(&out));
    assert_exit(&alice.exec("user list --state-dir /tmp"), 2);
    assert_exit(&alice.exec("serve --listen 127.0.0.1:0"), 127);

    // Bob is not an admin.
    let out = bob.exec("rule add --repo ** --ref ** --user bob --allow all");
    assert_exit(&out, 1);
    assert!(w.gw.ok(&["rule", "list"]).lines().count() == 2, "no rule added");

    // Every change is audited with the actor; reads are not.
    let audit = w.gw.ok_json(&["audit", "--admin", "--json"]);
    let rows = audit.as_array().unwrap();
    let key_add = rows
        .iter()
        .find(|r| r["op"] == "admin: key add carol -")
        .expect("audited");
    assert_eq!(key_add["user"], "alice");
    assert_eq!(key_add["state"], "accepted");
    assert!(key_add["peer_addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    let failed = rows
        .iter()
        .find(|r| r["op"] == "admin: gpg-key add main /etc/passwd");
    assert!(failed.is_none(), "refused before running: nothing changed");
    assert!(
        rows.iter().all(|r| r["op"] != "admin: user list --json"),
        "reads are not audited"
    );
    assert!(rows.iter().any(
        |r| r["op"] == "admin: user set-admin alice" && r["user"].as_str().unwrap().starts_with("local:")
    ));
    // Push rows and admin rows are apart.
    let pushes = w.gw.ok_json(&["audit", "--json"]);
    assert!(pushes.as_array().unwrap().is_empty(), "{pushes}");
}

/// World (rule #1: alice create,update everywhere) plus bob, admin of team `apps`, with
/// rule #2: `apps` may create,update `app/**` in repo `main`. Returns bob's SSH client.
fn team_admin_world() -> (World, SshKeyPair) {
    let w = World::new(&[]);
    let gw = &w.gw;
    for user in ["bob", "carol"] {
        gw.ok(&["user", "add", user]);
    }
    let bob_key = SshKeyPair::generate(&gw.work_dir(), "bob", "bob@x");
    gw.ok(&[
        "key".as_ref(),
        "add".as_ref(),
        "bob".as_ref(),
        bob_key.public.as_os_str(),
    ]);
    gw.ok(&["team", "add", "apps"]);
    gw.ok(&["team", "add", "other"]);
    gw.ok(&["team", "add-member", "apps", "bob"]);
    gw.ok(&["team", "set-admin", "apps", "bob"]);
    gw.ok(&[
        "rule",
        "add",
        "--repo",
        "main",
        "--ref",
        "app/**",
        "--team",
        "apps",
        "--allow",
        "create,update",
    ]);
    (w, bob_key)
}

/// Runs `line` as `bob`; it must succeed.
fn ok(bob: &OpenSsh, line: &str) {
    assert_exit(&bob.exec(line), 0);
}

/// Runs `line` as `bob`; it must fail with `why` on stderr.
fn refused(bob: &OpenSsh, line: &str, why: &str) {
    let out = bob.exec(line);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains(why), "{line}: {}", stderr(&out));
}

#[test]
fn team_admins_manage_their_team_and_cannot_grant_more_than_they_hold() {
    let (w, bob_key) = team_admin_world();
    let gw = &w.gw;
    let bob = OpenSsh::new(gw, &w.served, &bob_key, "bob");
    let ok = |line: &str| ok(&bob, line);
    let refused = |line: &str, why: &str| refused(&bob, line, why);

    ok("team list --json");
    ok("team add-member apps carol");
    refused("team add-member other carol", "not \"other\"");
    refused("user add eve", "team admins may");
    ok("rule add --repo main --ref app/org.example.*/** --team apps --allow create");
    refused(
        "rule add --repo main --ref app/** --team apps --allow force",
        "cannot grant more than you hold",
    );
    refused(
        "rule add --repo main --ref release/** --team apps --allow create",
        "cannot grant more than you hold",
    );
    refused(
        "rule add --repo * --ref app/** --team apps --allow create",
        "cannot grant more than you hold",
    );
    refused(
        "rule add --repo main --ref app/** --team other --allow create",
        "not \"other\"",
    );
    refused(
        "rule add --repo main --ref app/x --team apps --allow create --position 1",
        "--position",
    );
    ok("rule add --repo main --ref app/** --team apps --deny delete");
    refused("rule remove 1", "not a rule of a team you administer");
    let rules = gw.ok_json(&["rule", "list", "--json"]);
    let mine = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ref_pattern"] == "app/org.example.*/**")
        .unwrap();
    ok(&format!("rule remove {}", mine["id"]));
    let members = gw.ok_json(&["team", "list", "--json"]);
    let apps = members
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "apps")
        .unwrap();
    assert_eq!(apps["members"].as_array().unwrap().len(), 2, "{apps}");
    // Each change is audited under bob's name.
    let audit = gw.ok_json(&["audit", "--admin", "--json"]);
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["user"] == "bob" && r["op"] == "admin: team add-member apps carol"));
}

#[test]
fn team_admin_grants_are_compared_as_languages_and_earlier_denies_count() {
    let (w, bob_key) = team_admin_world();
    let gw = &w.gw;
    let bob = OpenSsh::new(gw, &w.served, &bob_key, "bob");
    // Rule #3: apps may create `release/*/stable` in every repo.
    gw.ok(&[
        "rule",
        "add",
        "--repo",
        "*",
        "--ref",
        "release/*/stable",
        "--team",
        "apps",
        "--allow",
        "create",
    ]);
    // Shapes the former string check refused, inside what bob holds.
    ok(
        &bob,
        "rule add --repo main --ref release/x86_64/stable --team apps --allow create",
    );
    ok(&bob, "rule add --repo main --ref app --team apps --allow update");
    refused(
        &bob,
        "rule add --repo main --ref release/*/beta --team apps --allow create",
        "you cannot grant more than you hold: no allow rule gives you create",
    );
    // A deny for bob ahead of rule #2 takes app/secret/** from him: he cannot hand it out.
    gw.ok(&[
        "rule",
        "add",
        "--repo",
        "main",
        "--ref",
        "app/secret/**",
        "--user",
        "bob",
        "--deny",
        "create",
        "--position",
        "1",
    ]);
    let rules = gw.ok_json(&["rule", "list", "--json"]);
    let deny = &rules.as_array().unwrap()[0];
    assert_eq!(deny["effect"], "deny");
    let why = format!(
        "you cannot grant more than you hold: rule #{} denies you create on part of ref",
        deny["id"]
    );
    for ref_pattern in ["app/**", "app/*/stable", "app/secret"] {
        refused(
            &bob,
            &format!("rule add --repo main --ref {ref_pattern} --team apps --allow create"),
            &why,
        );
    }
    ok(
        &bob,
        "rule add --repo main --ref app/public/** --team apps --allow create",
    );
    ok(
        &bob,
        "rule add --repo main --ref app/** --team apps --allow update",
    ); // not denied
    let granted: Vec<String> = gw
        .ok_json(&["rule", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["subject_kind"] == "team" && r["subject_name"] == "apps")
        .map(|r| {
            format!(
                "{} {}",
                r["ref_pattern"].as_str().unwrap(),
                r["ops"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        granted,
        [
            "app/** create,update",
            "release/*/stable create",
            "release/x86_64/stable create",
            "app update",
            "app/public/** create",
            "app/** update"
        ],
        "bob's refused grants left no rule"
    );
}
