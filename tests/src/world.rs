//! A ready world for push tests: a served gateway with user alice (one key), repo `main`,
//! rules, and alice's local archive repo served over HTTP for the tunnel flow.

use std::process::Output;

use serde_json::Value;

use crate::server::{OpenSsh, Served, StaticHttp};
use crate::{describe, Gateway, OstreeRepo, SshKeyPair};

/// A fixed base timestamp: tests set commit times explicitly (the gateway refuses a new commit
/// that is not strictly newer, and two commits made in one second would tie).
pub const T0: i64 = 1_700_000_000;

/// A served gateway with user alice (one key) and repo `main`, plus alice's local repo.
pub struct World {
    pub gw: Gateway,
    pub served: Served,
    pub alice: SshKeyPair,
    pub local: OstreeRepo,
    pub http: StaticHttp,
}

impl World {
    /// `rules`: extra `rule add` argument lists; default allows alice everything but force.
    pub fn new(rules: &[&[&str]]) -> World {
        World::new_with_env(rules, &[])
    }

    /// Like [`World::new`], the gateway started with extra environment variables.
    pub fn new_with_env(rules: &[&[&str]], env: &[(&str, &str)]) -> World {
        World::build(rules, env, |_| None)
    }

    /// Like [`World::new`], with a config file written before the gateway starts; `config`
    /// may use the gateway's work dir (for hook scripts, keyrings…).
    pub fn with_config(rules: &[&[&str]], config: impl FnOnce(&Gateway) -> String) -> World {
        World::build(rules, &[], |gw| Some(config(gw)))
    }

    fn build(
        rules: &[&[&str]],
        env: &[(&str, &str)],
        config: impl FnOnce(&Gateway) -> Option<String>,
    ) -> World {
        let gw = Gateway::new();
        if let Some(text) = config(&gw) {
            gw.write_config(&text);
        }
        gw.ok(&["user", "add", "alice"]);
        let alice = SshKeyPair::generate(&gw.work_dir(), "alice", "alice@test");
        gw.ok(&[
            "key".as_ref(),
            "add".as_ref(),
            "alice".as_ref(),
            alice.public.as_os_str(),
        ]);
        gw.ok(&["repo", "add", "main", "--init"]);
        if rules.is_empty() {
            gw.ok(&[
                "rule",
                "add",
                "--repo",
                "*",
                "--ref",
                "**",
                "--user",
                "alice",
                "--allow",
                "create,update",
            ]);
        }
        for rule in rules {
            let mut args = vec!["rule", "add"];
            args.extend_from_slice(rule);
            gw.ok(&args);
        }
        let local = OstreeRepo::init(&gw.work_dir().join("local"), "archive");
        let http = StaticHttp::serve(&local.path);
        let served = Served::start_with(&gw, env);
        World {
            gw,
            served,
            alice,
            local,
            http,
        }
    }

    pub fn ssh(&self) -> OpenSsh {
        OpenSsh::new(&self.gw, &self.served, &self.alice, "alice")
    }

    pub fn push(&self, args: &str) -> Output {
        self.ssh().tunnel_push(&self.http, args)
    }

    pub fn target(&self) -> OstreeRepo {
        OstreeRepo::at(&self.gw.repos_root().join("main"))
    }

    pub fn audit(&self) -> Vec<Value> {
        self.gw
            .ok_json(&["audit", "--json"])
            .as_array()
            .expect("array")
            .clone()
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}
