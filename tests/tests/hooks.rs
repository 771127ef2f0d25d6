//! Per-repo hooks: a pre-update hook that can veto a push before any ref moves (its stderr is
//! what the pusher sees) and a post-update hook; both get ostree-receive's environment plus
//! who pushed and what moved. A failing post-update hook is audited.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use e2e_tests::world::{assert_exit, stderr, World, T0};
use e2e_tests::OstreeRepo;

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn wait_for(path: &Path) -> String {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return text;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never written", path.display());
}

#[test]
fn pre_update_veto_and_post_update_environment() {
    let w = World::with_config(&[], |gw| {
        let dir = gw.work_dir();
        let (pre, post) = (dir.join("pre.sh"), dir.join("post.sh"));
        let (pre_log, post_log) = (dir.join("pre.env"), dir.join("post.env"));
        script(
            &pre,
            &format!(
                "env | grep -E '^OSTREE_(RECEIVE|GATEWAY)_' | sort > {log}\ncat > {log}.stdin\n\
                 case \"$OSTREE_RECEIVE_REFS\" in *blocked*) echo \"blocked refs need review\" >&2; exit 3;; esac\n\
                 test -d \"$OSTREE_GATEWAY_STAGING/objects\" || exit 9",
                log = pre_log.display()
            ),
        );
        script(
            &post,
            &format!(
                "env | grep -E '^OSTREE_(RECEIVE|GATEWAY)_' | sort > {}",
                post_log.display()
            ),
        );
        format!(
            "[repos.main]\npre_update_hook = \"{}\"\npost_update_hook = \"{}\"\nhook_timeout_secs = 20\n",
            pre.display(),
            post.display()
        )
    });
    let (gw, key, http) = (&w.gw, &w.alice, &w.http);
    let (pre_log, post_log) = (gw.work_dir().join("pre.env"), gw.work_dir().join("post.env"));
    let commit = w.local.commit("app/a").timestamp(T0).run();
    w.local.commit("blocked/b").timestamp(T0).run();
    let mut ssh = w.ssh();
    let target = OstreeRepo::at(&gw.repos_root().join("main"));

    // Vetoed: nothing moves, the hook's stderr reaches the pusher, the audit says why.
    let out = ssh.tunnel_push(http, "main URL blocked/b");
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("refused by the pre-update hook: blocked refs need review"),
        "{}",
        stderr(&out)
    );
    assert_eq!(target.rev_parse("blocked/b"), None);
    let audit = gw.ok_json(&["audit", "--json"]);
    assert_eq!(audit[0]["state"], "rejected", "{audit}");
    assert!(audit[0]["reason"]
        .as_str()
        .unwrap()
        .contains("blocked refs need review"));
    std::fs::remove_file(&pre_log).unwrap();

    // Accepted: both hooks ran with the environment.
    assert_exit(&ssh.tunnel_push(http, "main URL app/a"), 0);
    assert_eq!(target.rev_parse("app/a").as_deref(), Some(commit.as_str()));
    let env = wait_for(&pre_log);
    assert!(env.contains("OSTREE_RECEIVE_REFS=app/a"), "{env}");
    assert!(
        env.contains(&format!(
            "OSTREE_RECEIVE_REPO={}",
            target.path.canonicalize().unwrap().display()
        )),
        "{env}"
    );
    assert!(env.contains("OSTREE_GATEWAY_USER=alice"), "{env}");
    assert!(
        env.contains(&format!("OSTREE_GATEWAY_KEY_FINGERPRINT={}", key.fingerprint())),
        "{env}"
    );
    let stdin = std::fs::read_to_string(format!("{}.stdin", pre_log.display())).unwrap();
    assert_eq!(stdin, format!("app/a {} {commit}\n", "0".repeat(64)));
    let env = wait_for(&post_log);
    assert!(env.contains("OSTREE_RECEIVE_REFS=app/a"), "{env}");
    assert!(
        !env.contains("OSTREE_GATEWAY_STAGING"),
        "no staging after the update: {env}"
    );
}

#[test]
fn failing_post_update_hook_is_audited() {
    let w = World::with_config(
        &[&[
            "--repo", "main", "--ref", "**", "--user", "alice", "--allow", "create",
        ]],
        |gw| {
            let post = gw.work_dir().join("post.sh");
            script(&post, "echo 'mirror sync failed' >&2; exit 1");
            format!("[repos.main]\npost_update_hook = \"{}\"\n", post.display())
        },
    );
    let gw = &w.gw;
    w.local.commit("app/a").timestamp(T0).run();
    let mut ssh = w.ssh();
    assert_exit(&ssh.tunnel_push(&w.http, "main URL app/a"), 0);
    for _ in 0..100 {
        let audit = gw.ok_json(&["audit", "--json"]);
        if let Some(row) = audit
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["op"] == "post-update-hook")
        {
            assert_eq!(row["state"], "failed");
            assert_eq!(row["reason"], "mirror sync failed");
            assert_eq!(row["user"], "alice");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("post-update hook failure not audited");
}
