//! Store round-trips on a real SQLite file: migrations from empty, every table, the audit
//! trail's append-only guarantees, and several store calls sharing one transaction.

use std::path::PathBuf;

use ostree_gateway::store::audit::{self, NewEntry, State};
use ostree_gateway::store::keys::{self, NewKey};
use ostree_gateway::store::rules::{self, NewRule};
use ostree_gateway::store::{gpg_keys, repos, teams, users, Store, StoreError};
use sqlx::Row;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
}

async fn open() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.db");
    let store = Store::open(&path).await.unwrap();
    Db {
        _dir: dir,
        path,
        store,
    }
}

fn key(n: u8) -> NewKey {
    NewKey {
        algorithm: "ssh-ed25519".into(),
        key_blob: format!("AAAAblob{n}"),
        fingerprint: format!("SHA256:fp{n}"),
        comment: Some(format!("key {n}")),
    }
}

fn rule(subject: &str, ref_pattern: &str) -> NewRule {
    let (kind, name) = match subject.split_once(':') {
        Some((kind, name)) => (kind.to_string(), Some(name.to_string())),
        None => (subject.to_string(), None),
    };
    NewRule {
        subject_kind: kind,
        subject_name: name,
        repo_pattern: "**".into(),
        ref_pattern: ref_pattern.into(),
        ops: "create,update".into(),
        effect: "allow".into(),
        require_signature: false,
        timestamp_check: true,
        comment: None,
    }
}

/// (ref_pattern, position) of every rule in order.
async fn rule_order(conn: &mut sqlx::SqliteConnection) -> Vec<(String, i64)> {
    rules::list(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.ref_pattern, r.position))
        .collect()
}

async fn count(conn: &mut sqlx::SqliteConnection, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(conn)
        .await
        .unwrap()
        .get("n")
}

fn assert_timestamp(text: &str) {
    assert!(
        chrono::DateTime::parse_from_rfc3339(text).is_ok() && text.ends_with('Z') && text.len() == 24,
        "not an RFC 3339 UTC millisecond timestamp: {text:?}"
    );
}

#[tokio::test]
async fn migrations_from_empty_and_reopen() {
    let db = open().await;
    assert!(db.path.is_file());
    let mut conn = db.store.conn().await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "audit",
            "gpg_keys",
            "repos",
            "rules",
            "ssh_keys",
            "team_members",
            "teams",
            "users"
        ]
    );
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(fk, 1);
    let applied = count(&mut conn, "_sqlx_migrations").await;
    assert!(applied >= 1);
    users::add(&mut conn, "alice").await.unwrap();
    drop(conn);
    db.store.close().await;

    // Reopening applies nothing new and keeps the data.
    let store = Store::open(&db.path).await.unwrap();
    let mut conn = store.conn().await.unwrap();
    assert_eq!(count(&mut conn, "_sqlx_migrations").await, applied);
    assert_eq!(users::get(&mut conn, "alice").await.unwrap().name, "alice");
}

#[tokio::test]
async fn users_round_trip() {
    let db = open().await;
    let mut conn = db.store.conn().await.unwrap();
    let bob = users::add(&mut conn, "bob").await.unwrap();
    let alice = users::add(&mut conn, "alice").await.unwrap();
    assert_eq!(alice.name, "alice");
    assert!(!alice.disabled && !alice.is_admin);
    assert_timestamp(&alice.created_at);
    assert_ne!(alice.id, bob.id);

    assert!(matches!(
        users::add(&mut conn, "alice").await,
        Err(StoreError::Duplicate { kind: "user", ref name }) if name == "alice"
    ));
    assert_eq!(users::find(&mut conn, "carol").await.unwrap(), None);
    let err = users::get(&mut conn, "carol").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { kind: "user", .. }));
    assert_eq!(err.to_string(), "unknown user \"carol\"");

    let names: Vec<String> = users::list(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    users::set_disabled(&mut conn, "alice", true).await.unwrap();
    users::set_admin(&mut conn, "alice", true).await.unwrap();
    let got = users::get(&mut conn, "alice").await.unwrap();
    assert!(got.disabled && got.is_admin);
    assert_eq!(got.created_at, alice.created_at);
    users::set_disabled(&mut conn, "alice", false).await.unwrap();
    assert!(!users::get(&mut conn, "alice").await.unwrap().disabled);
    assert!(matches!(
        users::set_disabled(&mut conn, "nobody", true).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        users::set_admin(&mut conn, "nobody", true).await,
        Err(StoreError::NotFound { .. })
    ));

    // Removal cascades to keys, memberships and the user's rules (positions compacted).
    keys::add(&mut conn, alice.id, &key(1)).await.unwrap();
    teams::add(&mut conn, "devs").await.unwrap();
    teams::add_member(&mut conn, "devs", alice.id, "alice")
        .await
        .unwrap();
    teams::add_member(&mut conn, "devs", bob.id, "bob").await.unwrap();
    assert_eq!(users::teams_of(&mut conn, alice.id).await.unwrap(), ["devs"]);
    rules::add(&mut conn, &rule("everyone", "first"), None)
        .await
        .unwrap();
    rules::add(&mut conn, &rule("user:alice", "alice"), None)
        .await
        .unwrap();
    rules::add(&mut conn, &rule("user:bob", "bob"), None)
        .await
        .unwrap();
    users::remove(&mut conn, "alice").await.unwrap();
    assert_eq!(users::find(&mut conn, "alice").await.unwrap(), None);
    assert!(keys::list(&mut conn, None).await.unwrap().is_empty());
    let devs = teams::get(&mut conn, "devs").await.unwrap();
    assert_eq!(devs.members.len(), 1);
    assert_eq!(devs.members[0].user, "bob");
    assert_eq!(
        rule_order(&mut conn).await,
        [("first".to_string(), 1), ("bob".to_string(), 2)]
    );
    assert!(matches!(
        users::remove(&mut conn, "alice").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn keys_round_trip() {
    let db = open().await;
    let mut conn = db.store.conn().await.unwrap();
    let bob = users::add(&mut conn, "bob").await.unwrap();
    let alice = users::add(&mut conn, "alice").await.unwrap();
    let id = keys::add(&mut conn, bob.id, &key(1)).await.unwrap();
    keys::add(&mut conn, alice.id, &key(2)).await.unwrap();
    keys::add(
        &mut conn,
        alice.id,
        &NewKey {
            comment: None,
            ..key(3)
        },
    )
    .await
    .unwrap();

    // One fingerprint, one key, whoever the user.
    assert!(matches!(
        keys::add(&mut conn, alice.id, &key(1)).await,
        Err(StoreError::Duplicate { kind: "key", ref name }) if name == "SHA256:fp1"
    ));

    let found = keys::find_by_fingerprint(&mut conn, "SHA256:fp1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.user, "bob");
    assert_eq!(found.algorithm, "ssh-ed25519");
    assert_eq!(found.key_blob, "AAAAblob1");
    assert_eq!(found.comment.as_deref(), Some("key 1"));
    assert_timestamp(&found.created_at);
    assert_eq!(found.last_used_at, None);
    assert_eq!(
        keys::find_by_fingerprint(&mut conn, "SHA256:none").await.unwrap(),
        None
    );

    // All keys sort by user name then insertion; a user's keys by insertion.
    let all: Vec<(String, String)> = keys::list(&mut conn, None)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.user, k.fingerprint))
        .collect();
    assert_eq!(
        all,
        [
            ("alice".to_string(), "SHA256:fp2".to_string()),
            ("alice".to_string(), "SHA256:fp3".to_string()),
            ("bob".to_string(), "SHA256:fp1".to_string()),
        ]
    );
    let alice_keys = keys::list(&mut conn, Some("alice")).await.unwrap();
    assert_eq!(alice_keys.len(), 2);
    assert_eq!(alice_keys[1].comment, None);
    assert!(keys::list(&mut conn, Some("nobody")).await.unwrap().is_empty());

    keys::touch_last_used(&mut conn, "SHA256:fp1").await.unwrap();
    let touched = keys::find_by_fingerprint(&mut conn, "SHA256:fp1")
        .await
        .unwrap()
        .unwrap();
    assert_timestamp(touched.last_used_at.as_deref().unwrap());

    keys::remove(&mut conn, "SHA256:fp1").await.unwrap();
    assert!(matches!(
        keys::remove(&mut conn, "SHA256:fp1").await,
        Err(StoreError::NotFound { kind: "key", .. })
    ));
    assert_eq!(keys::list(&mut conn, None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn teams_round_trip() {
    let db = open().await;
    let mut conn = db.store.conn().await.unwrap();
    let alice = users::add(&mut conn, "alice").await.unwrap();
    let bob = users::add(&mut conn, "bob").await.unwrap();
    let devs_id = teams::add(&mut conn, "devs").await.unwrap();
    teams::add(&mut conn, "admins").await.unwrap();
    assert!(matches!(
        teams::add(&mut conn, "devs").await,
        Err(StoreError::Duplicate { kind: "team", .. })
    ));

    teams::add_member(&mut conn, "devs", bob.id, "bob").await.unwrap();
    teams::add_member(&mut conn, "devs", alice.id, "alice")
        .await
        .unwrap();
    let err = teams::add_member(&mut conn, "devs", alice.id, "alice")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "user \"alice\" is already a member of team \"devs\""
    );
    assert!(matches!(
        teams::add_member(&mut conn, "ops", alice.id, "alice").await,
        Err(StoreError::NotFound { kind: "team", .. })
    ));
    teams::set_member_admin(&mut conn, "devs", bob.id, "bob", true)
        .await
        .unwrap();

    let devs = teams::get(&mut conn, "devs").await.unwrap();
    assert_eq!(devs.id, devs_id);
    assert_eq!(devs.name, "devs");
    assert_timestamp(&devs.created_at);
    let members: Vec<(String, bool)> = devs
        .members
        .iter()
        .map(|m| (m.user.clone(), m.is_admin))
        .collect();
    assert_eq!(members, [("alice".to_string(), false), ("bob".to_string(), true)]);
    let list = teams::list(&mut conn).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "admins");
    assert!(list[0].members.is_empty());
    assert_eq!(list[1], devs);

    teams::remove_member(&mut conn, "devs", alice.id, "alice")
        .await
        .unwrap();
    let err = teams::remove_member(&mut conn, "devs", alice.id, "alice")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "user \"alice\" is not a member of team \"devs\"");
    assert!(matches!(
        teams::set_member_admin(&mut conn, "devs", alice.id, "alice", true).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        teams::get(&mut conn, "ops").await,
        Err(StoreError::NotFound { kind: "team", .. })
    ));

    // Removing a team removes its memberships and its rules, and compacts positions.
    rules::add(&mut conn, &rule("team:devs", "devs-a"), None)
        .await
        .unwrap();
    rules::add(&mut conn, &rule("team:admins", "admins"), None)
        .await
        .unwrap();
    rules::add(&mut conn, &rule("team:devs", "devs-b"), None)
        .await
        .unwrap();
    teams::remove(&mut conn, "devs").await.unwrap();
    assert_eq!(rule_order(&mut conn).await, [("admins".to_string(), 1)]);
    assert_eq!(count(&mut conn, "team_members").await, 0);
    assert!(users::teams_of(&mut conn, bob.id).await.unwrap().is_empty());
    assert!(matches!(
        teams::remove(&mut conn, "devs").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn repos_and_gpg_keys_round_trip() {
    let db = open().await;
    let mut conn = db.store.conn().await.unwrap();
    let main = repos::add(&mut conn, "main", "/srv/repos/main", "archive", None)
        .await
        .unwrap();
    assert_eq!(main.name, "main");
    assert_eq!(main.path, "/srv/repos/main");
    assert_eq!(main.mode, "archive");
    assert_eq!(main.collection_id, None);
    assert_timestamp(&main.created_at);
    let os = repos::add(
        &mut conn,
        "os",
        "/srv/repos/os",
        "bare-user",
        Some("org.example.Os"),
    )
    .await
    .unwrap();
    assert_eq!(os.collection_id.as_deref(), Some("org.example.Os"));

    assert!(matches!(
        repos::add(&mut conn, "main", "/srv/repos/main2", "archive", None).await,
        Err(StoreError::Duplicate { kind: "repo", .. })
    ));
    let err = repos::add(&mut conn, "alias", "/srv/repos/main", "archive", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "path /srv/repos/main is already used by repo \"main\""
    );
    // The schema refuses modes the gateway does not know.
    assert!(matches!(
        repos::add(&mut conn, "odd", "/srv/repos/odd", "archive-z2", None).await,
        Err(StoreError::Db(_))
    ));

    assert_eq!(repos::get(&mut conn, "os").await.unwrap(), os);
    assert_eq!(repos::find(&mut conn, "nope").await.unwrap(), None);
    assert_eq!(
        repos::find_by_path(&mut conn, "/srv/repos/main").await.unwrap(),
        Some(main.clone())
    );
    assert!(matches!(
        repos::get(&mut conn, "nope").await,
        Err(StoreError::NotFound { kind: "repo", .. })
    ));
    assert_eq!(repos::list(&mut conn).await.unwrap(), [main.clone(), os.clone()]);

    // GPG keys: unique per repo, the same key may be trusted by several repos.
    let fpr = "C1FA4B0F97D3994595F096CEAF38E2C214AA54EB";
    let id = gpg_keys::add(&mut conn, main.id, fpr, Some("Test <t@example.com>"), "ARMOR")
        .await
        .unwrap();
    gpg_keys::add(&mut conn, os.id, fpr, None, "ARMOR").await.unwrap();
    assert!(matches!(
        gpg_keys::add(&mut conn, main.id, fpr, None, "ARMOR").await,
        Err(StoreError::Duplicate { kind: "GPG key", .. })
    ));
    let list = gpg_keys::list(&mut conn, main.id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].repo, "main");
    assert_eq!(list[0].fingerprint, fpr);
    assert_eq!(list[0].user_ids.as_deref(), Some("Test <t@example.com>"));
    assert_eq!(list[0].armored, "ARMOR");
    assert_timestamp(&list[0].created_at);
    gpg_keys::remove(&mut conn, main.id, fpr).await.unwrap();
    assert!(gpg_keys::list(&mut conn, main.id).await.unwrap().is_empty());
    assert!(matches!(
        gpg_keys::remove(&mut conn, main.id, fpr).await,
        Err(StoreError::NotFound { kind: "GPG key", .. })
    ));

    // Removing a repo cascades to its GPG keys.
    repos::remove(&mut conn, "os").await.unwrap();
    assert_eq!(count(&mut conn, "gpg_keys").await, 0);
    assert!(matches!(
        repos::remove(&mut conn, "os").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(repos::list(&mut conn).await.unwrap(), [main]);
}

#[tokio::test]
async fn rules_positions_insert_and_compact() {
    let db = open().await;
    let mut tx = db.store.begin().await.unwrap();
    let r1 = rules::add(&mut tx, &rule("everyone", "a"), None).await.unwrap();
    assert_eq!((r1.position, r1.ref_pattern.as_str()), (1, "a"));
    rules::add(&mut tx, &rule("everyone", "b"), None).await.unwrap();
    rules::add(&mut tx, &rule("everyone", "c"), None).await.unwrap();
    // Insert at the front, in the middle, past the end (clamped to last).
    let front = rules::add(&mut tx, &rule("everyone", "front"), Some(1))
        .await
        .unwrap();
    assert_eq!(front.position, 1);
    rules::add(&mut tx, &rule("everyone", "mid"), Some(3))
        .await
        .unwrap();
    let last = rules::add(&mut tx, &rule("everyone", "last"), Some(100))
        .await
        .unwrap();
    assert_eq!(last.position, 6);
    tx.commit().await.unwrap();

    let mut conn = db.store.conn().await.unwrap();
    let order = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs.iter().map(|(r, p)| (r.to_string(), *p)).collect()
    };
    assert_eq!(
        rule_order(&mut conn).await,
        order(&[
            ("front", 1),
            ("a", 2),
            ("mid", 3),
            ("b", 4),
            ("c", 5),
            ("last", 6)
        ])
    );
    for bad in [0, -1] {
        let err = rules::add(&mut conn, &rule("everyone", "x"), Some(bad))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid position {bad}: positions start at 1")
        );
    }

    // Removal compacts to 1..=n keeping the order.
    let mid = rules::list(&mut conn).await.unwrap()[2].clone();
    rules::remove(&mut conn, mid.id).await.unwrap();
    rules::remove(&mut conn, front.id).await.unwrap();
    assert_eq!(
        rule_order(&mut conn).await,
        order(&[("a", 1), ("b", 2), ("c", 3), ("last", 4)])
    );
    let err = rules::remove(&mut conn, mid.id).await.unwrap_err();
    assert_eq!(err.to_string(), format!("unknown rule \"#{}\"", mid.id));
    assert!(matches!(
        rules::get(&mut conn, 9999).await,
        Err(StoreError::NotFound { kind: "rule", .. })
    ));

    // Every field round-trips, and the policy view agrees.
    let full = NewRule {
        subject_kind: "user".into(),
        subject_name: Some("alice".into()),
        repo_pattern: "apps/*".into(),
        ref_pattern: "users/{user}/**".into(),
        ops: "create,update,force,delete".into(),
        effect: "deny".into(),
        require_signature: true,
        timestamp_check: false,
        comment: Some("why".into()),
    };
    let stored = rules::add(&mut conn, &full, Some(2)).await.unwrap();
    let got = rules::get(&mut conn, stored.id).await.unwrap();
    assert_eq!(got, stored);
    assert_eq!(got.position, 2);
    assert_eq!(got.subject_kind, "user");
    assert_eq!(got.subject_name.as_deref(), Some("alice"));
    assert_eq!(got.repo_pattern, "apps/*");
    assert_eq!(got.ref_pattern, "users/{user}/**");
    assert_eq!(got.ops, "create,update,force,delete");
    assert_eq!(got.effect, "deny");
    assert!(got.require_signature);
    assert!(!got.timestamp_check);
    assert_eq!(got.comment.as_deref(), Some("why"));
    assert_timestamp(&got.created_at);
    let policy = got.to_policy().unwrap();
    assert_eq!(policy.id, got.id);
    assert_eq!(policy.position, 2);
    assert_eq!(policy.subject, policy::Subject::User("alice".into()));
    assert_eq!(policy.effect, policy::Effect::Deny);
    assert_eq!(policy.ops, policy::OpSet::ALL);
    assert!(policy.require_signature && !policy.timestamp_check);
    assert_eq!(policy.comment.as_deref(), Some("why"));

    // The schema refuses a subject name on `everyone`, and none on `user`.
    let mut bad = rule("everyone", "x");
    bad.subject_name = Some("alice".into());
    assert!(matches!(
        rules::add(&mut conn, &bad, None).await,
        Err(StoreError::Db(_))
    ));
    let mut bad = rule("user:alice", "x");
    bad.subject_name = None;
    assert!(matches!(
        rules::add(&mut conn, &bad, None).await,
        Err(StoreError::Db(_))
    ));
    assert_eq!(rules::list(&mut conn).await.unwrap().len(), 5);
}

fn entry(user: &str, repo: &str, push: &str) -> NewEntry {
    NewEntry {
        push_id: Some(push.into()),
        user_name: Some(user.into()),
        key_fingerprint: Some("SHA256:fp".into()),
        peer_addr: Some("127.0.0.1:40000".into()),
        repo: Some(repo.into()),
        ref_name: Some("app/x".into()),
        old_rev: None,
        new_rev: Some("ab".repeat(32)),
        op: Some("create".into()),
        decision: "allow".into(),
        matched_rule: Some(7),
        reason: Some("first".into()),
    }
}

#[tokio::test]
async fn audit_append_settle_recover_query() {
    let db = open().await;
    let mut conn = db.store.conn().await.unwrap();
    let a = audit::append(&mut conn, &entry("alice", "main", "p1"), State::InProgress)
        .await
        .unwrap();
    let b = audit::append(&mut conn, &entry("alice", "main", "p1"), State::InProgress)
        .await
        .unwrap();
    let mut denied = entry("bob", "os", "p2");
    denied.decision = "deny".into();
    denied.matched_rule = None;
    denied.reason = Some("no rule matched".into());
    let c = audit::append(&mut conn, &denied, State::Rejected).await.unwrap();
    let d = audit::append(&mut conn, &entry("carol", "os", "p3"), State::InProgress)
        .await
        .unwrap();
    assert!(a < b && b < c && c < d);

    let all = audit::query(&mut conn, &audit::Filter::default()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [d, c, b, a]);
    let first = all.iter().find(|e| e.id == a).unwrap();
    assert_timestamp(&first.time);
    assert_eq!(first.push_id.as_deref(), Some("p1"));
    assert_eq!(first.user.as_deref(), Some("alice"));
    assert_eq!(first.key_fingerprint.as_deref(), Some("SHA256:fp"));
    assert_eq!(first.peer_addr.as_deref(), Some("127.0.0.1:40000"));
    assert_eq!(first.repo.as_deref(), Some("main"));
    assert_eq!(first.ref_name.as_deref(), Some("app/x"));
    assert_eq!(first.old_rev, None);
    assert_eq!(first.new_rev, Some("ab".repeat(32)));
    assert_eq!(first.op.as_deref(), Some("create"));
    assert_eq!(first.decision, "allow");
    assert_eq!(first.matched_rule, Some(7));
    assert_eq!(first.reason.as_deref(), Some("first"));
    assert_eq!(first.state, "in_progress");
    assert_eq!(first.finished_at, None);
    // A row appended settled gets its finish time at once.
    let rejected = all.iter().find(|e| e.id == c).unwrap();
    assert_eq!(rejected.state, "rejected");
    assert_eq!(rejected.finished_at.as_deref(), Some(rejected.time.as_str()));
    assert_eq!(rejected.matched_rule, None);

    // Settle: new state and finish time; reason replaced only when given.
    audit::settle(&mut conn, a, State::Accepted, None).await.unwrap();
    audit::settle(&mut conn, b, State::Failed, Some("disk full"))
        .await
        .unwrap();
    // Settling a settled row is a no-op.
    audit::settle(&mut conn, a, State::Failed, Some("late"))
        .await
        .unwrap();
    let filter = audit::Filter {
        push_id: Some("p1".into()),
        ..Default::default()
    };
    let p1 = audit::query(&mut conn, &filter).await.unwrap();
    assert_eq!(p1.len(), 2);
    let (rb, ra) = (&p1[0], &p1[1]);
    assert_eq!(
        (ra.id, ra.state.as_str(), ra.reason.as_deref()),
        (a, "accepted", Some("first"))
    );
    assert_eq!(
        (rb.id, rb.state.as_str(), rb.reason.as_deref()),
        (b, "failed", Some("disk full"))
    );
    assert_timestamp(ra.finished_at.as_deref().unwrap());
    assert!(ra.finished_at.as_deref().unwrap() >= ra.time.as_str());

    // Recovery marks what a crash left in progress as failed, once.
    assert_eq!(audit::recover_in_progress(&mut conn).await.unwrap(), 1);
    assert_eq!(audit::recover_in_progress(&mut conn).await.unwrap(), 0);
    let recovered = &audit::query(
        &mut conn,
        &audit::Filter {
            push_id: Some("p3".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()[0];
    assert_eq!(recovered.id, d);
    assert_eq!(recovered.state, "failed");
    assert!(recovered
        .reason
        .as_deref()
        .unwrap()
        .contains("recovered at startup"));
    assert!(recovered.finished_at.is_some());

    // Filters.
    let ids = |entries: Vec<audit::Entry>| entries.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let by = |repo: Option<&str>, user: Option<&str>, limit: Option<i64>| audit::Filter {
        repo: repo.map(str::to_string),
        user: user.map(str::to_string),
        limit,
        ..Default::default()
    };
    assert_eq!(
        ids(audit::query(&mut conn, &by(Some("os"), None, None))
            .await
            .unwrap()),
        [d, c]
    );
    assert_eq!(
        ids(audit::query(&mut conn, &by(None, Some("alice"), None))
            .await
            .unwrap()),
        [b, a]
    );
    assert_eq!(
        ids(audit::query(&mut conn, &by(Some("os"), Some("bob"), None))
            .await
            .unwrap()),
        [c]
    );
    assert_eq!(
        ids(audit::query(&mut conn, &by(None, None, Some(2))).await.unwrap()),
        [d, c]
    );
    assert!(audit::query(&mut conn, &by(Some("none"), None, None))
        .await
        .unwrap()
        .is_empty());
    let since = |since: &str| audit::Filter {
        since: Some(since.into()),
        ..Default::default()
    };
    assert_eq!(
        ids(audit::query(&mut conn, &since(&first.time)).await.unwrap()),
        [d, c, b, a]
    );
    assert!(audit::query(&mut conn, &since("2999-01-01T00:00:00.000Z"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn audit_rows_cannot_be_deleted_and_settled_rows_cannot_change() {
    let db = open().await;
    let mut conn = db.store.conn().await.unwrap();
    let open_row = audit::append(&mut conn, &entry("alice", "main", "p1"), State::InProgress)
        .await
        .unwrap();
    let settled = audit::append(&mut conn, &entry("alice", "main", "p1"), State::Accepted)
        .await
        .unwrap();

    for sql in [
        "DELETE FROM audit",
        "DELETE FROM audit WHERE state = 'in_progress'",
    ] {
        let err = sqlx::query(sql).execute(&mut *conn).await.unwrap_err();
        assert!(err.to_string().contains("audit rows are append-only"), "{err}");
    }
    let err = sqlx::query("UPDATE audit SET reason = 'rewritten' WHERE id = ?")
        .bind(settled)
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("settled audit rows are immutable"),
        "{err}"
    );
    let err = sqlx::query("UPDATE audit SET state = 'in_progress', finished_at = NULL WHERE id = ?")
        .bind(settled)
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    // Once settled through the store, the in-progress row is frozen too.
    audit::settle(&mut conn, open_row, State::Rejected, Some("denied"))
        .await
        .unwrap();
    let err = sqlx::query("UPDATE audit SET decision = 'allow' WHERE id = ?")
        .bind(open_row)
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    // The schema refuses unknown states and decisions.
    assert!(sqlx::query(
        "INSERT INTO audit (time, decision, state) VALUES ('2026-01-01T00:00:00.000Z', 'maybe', 'accepted')"
    )
    .execute(&mut *conn)
    .await
    .is_err());
    assert!(sqlx::query(
        "INSERT INTO audit (time, decision, state) VALUES ('2026-01-01T00:00:00.000Z', 'allow', 'done')"
    )
    .execute(&mut *conn)
    .await
    .is_err());

    let rows = audit::query(&mut conn, &audit::Filter::default()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].reason.as_deref(), Some("first"));
    assert_eq!(rows[0].state, "accepted");
    assert_eq!(rows[1].state, "rejected");
    assert_eq!(rows[1].reason.as_deref(), Some("denied"));
}

#[tokio::test]
async fn one_transaction_rolled_back_leaves_nothing() {
    let db = open().await;
    {
        let mut tx = db.store.begin().await.unwrap();
        let user = users::add(&mut tx, "alice").await.unwrap();
        keys::add(&mut tx, user.id, &key(1)).await.unwrap();
        teams::add(&mut tx, "devs").await.unwrap();
        teams::add_member(&mut tx, "devs", user.id, "alice")
            .await
            .unwrap();
        let repo = repos::add(&mut tx, "main", "/srv/main", "archive", None)
            .await
            .unwrap();
        gpg_keys::add(&mut tx, repo.id, "ABCD", None, "ARMOR")
            .await
            .unwrap();
        rules::add(&mut tx, &rule("user:alice", "a"), None).await.unwrap();
        audit::append(&mut tx, &entry("alice", "main", "p1"), State::InProgress)
            .await
            .unwrap();
        // Visible inside the transaction…
        assert_eq!(users::list(&mut tx).await.unwrap().len(), 1);
        tx.rollback().await.unwrap();
    }
    {
        // …and dropping a transaction without commit rolls back as well.
        let mut tx = db.store.begin().await.unwrap();
        users::add(&mut tx, "bob").await.unwrap();
        audit::append(&mut tx, &entry("bob", "main", "p2"), State::Accepted)
            .await
            .unwrap();
        drop(tx);
    }
    let mut conn = db.store.conn().await.unwrap();
    for table in [
        "users",
        "ssh_keys",
        "teams",
        "team_members",
        "repos",
        "gpg_keys",
        "rules",
        "audit",
    ] {
        assert_eq!(count(&mut conn, table).await, 0, "{table} is not empty");
    }

    // A committed transaction is all there, including after reopening the file.
    let mut tx = db.store.begin().await.unwrap();
    let user = users::add(&mut tx, "carol").await.unwrap();
    keys::add(&mut tx, user.id, &key(9)).await.unwrap();
    tx.commit().await.unwrap();
    drop(conn);
    db.store.close().await;
    let store = Store::open(&db.path).await.unwrap();
    let mut conn = store.conn().await.unwrap();
    assert_eq!(keys::list(&mut conn, Some("carol")).await.unwrap().len(), 1);
}
