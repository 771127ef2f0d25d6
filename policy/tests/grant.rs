//! What a team admin may grant: containment by an allow rule that applies to them, and no
//! earlier rule taking part of the grant first.

use policy::{check_grant, Effect, Grant, GrantRefusal, OpSet, Pattern, Rule};

const BOB: &str = "bob";

fn teams() -> Vec<String> {
    vec!["apps".to_string()]
}

/// A rule numbered by its place in `rules` below; `subject`: `user:…`, `team:…`, `everyone`.
fn rule(subject: &str, repo: &str, refs: &str, ops: &str, effect: Effect) -> Rule {
    Rule::new(
        0,
        0,
        subject.parse().unwrap(),
        Pattern::parse(repo).unwrap(),
        Pattern::parse(refs).unwrap(),
        OpSet::parse(ops).unwrap(),
        effect,
    )
}

fn allow(subject: &str, repo: &str, refs: &str, ops: &str) -> Rule {
    rule(subject, repo, refs, ops, Effect::Allow)
}

fn deny(subject: &str, repo: &str, refs: &str, ops: &str) -> Rule {
    rule(subject, repo, refs, ops, Effect::Deny)
}

fn numbered(mut rules: Vec<Rule>) -> Vec<Rule> {
    for (i, r) in rules.iter_mut().enumerate() {
        r.id = i as i64 + 1;
        r.position = i as i64 + 1;
    }
    rules
}

/// Bob's grant of `ops` on `repo`/`refs`, unsigned, timestamp check on.
fn grant(rules: &[Rule], repo: &str, refs: &str, ops: &str) -> Result<i64, GrantRefusal> {
    grant_with(rules, repo, refs, ops, false, true)
}

fn grant_with(
    rules: &[Rule],
    repo: &str,
    refs: &str,
    ops: &str,
    require_signature: bool,
    timestamp_check: bool,
) -> Result<i64, GrantRefusal> {
    let (repo, refs) = (Pattern::parse(repo).unwrap(), Pattern::parse(refs).unwrap());
    let g = Grant {
        repo: &repo,
        refs: &refs,
        ops: OpSet::parse(ops).unwrap(),
        require_signature,
        timestamp_check,
    };
    check_grant(rules, BOB, &teams(), &g)
}

#[test]
fn contained_shapes_are_granted() {
    let rules = numbered(vec![allow("team:apps", "main", "app/**", "create,update")]);
    assert_eq!(grant(&rules, "main", "app/*/stable", "create"), Ok(1));
    assert_eq!(
        grant(&rules, "main", "app/org.example.*/**", "create,update"),
        Ok(1)
    );
    assert_eq!(grant(&rules, "main", "app", "update"), Ok(1));
    assert!(matches!(
        grant(&rules, "main", "app/**", "force"),
        Err(GrantRefusal::NotHeld { .. })
    ));
    assert!(matches!(
        grant(&rules, "main", "**", "create"),
        Err(GrantRefusal::NotHeld { .. })
    ));
    assert!(matches!(
        grant(&rules, "*", "app/**", "create"),
        Err(GrantRefusal::NotHeld { .. })
    ));
    let wide_repo = numbered(vec![allow("everyone", "*", "app/**", "create")]);
    assert_eq!(grant(&wide_repo, "main", "app/x", "create"), Ok(1));
    assert!(
        grant(&wide_repo, "a/b", "app/x", "create").is_err(),
        "repo names have no '/'"
    );
}

#[test]
fn rules_of_others_are_not_held() {
    let rules = numbered(vec![
        allow("user:alice", "main", "**", "create"),
        allow("team:other", "main", "**", "create"),
    ]);
    assert!(grant(&rules, "main", "app/x", "create").is_err());
}

#[test]
fn conditions_are_no_weaker() {
    let mut signed = allow("team:apps", "main", "app/**", "create,update");
    signed.require_signature = true;
    let rules = numbered(vec![signed]);
    assert!(grant(&rules, "main", "app/x", "create").is_err());
    assert_eq!(grant_with(&rules, "main", "app/x", "create", true, true), Ok(1));
    let rules = numbered(vec![allow("team:apps", "main", "app/**", "update")]);
    assert!(grant_with(&rules, "main", "app/x", "update", false, false).is_err());
}

#[test]
fn an_earlier_deny_for_the_admin_shadows_the_held_rule() {
    let rules = numbered(vec![
        deny("user:bob", "main", "app/secret/**", "create,update"),
        allow("team:apps", "main", "app/**", "create,update"),
    ]);
    let refused = grant(&rules, "main", "app/*/x", "create").unwrap_err();
    assert_eq!(
        refused.to_string(),
        "rule #1 denies you create on part of ref \"app/*/x\" in repo \"main\" \
         before your allow rule #2 applies"
    );
    assert!(grant(&rules, "main", "app/**", "update").is_err());
    assert!(
        grant(&rules, "main", "app/secret", "update").is_err(),
        "** takes zero segments"
    );
    assert_eq!(grant(&rules, "main", "app/public/*", "create"), Ok(2));
    assert_eq!(grant(&rules, "main", "app/secretive/*", "create"), Ok(2));
}

#[test]
fn deny_rules_that_do_not_take_part_of_the_grant() {
    let rules = numbered(vec![
        deny("user:bob", "main", "app/**", "delete"),   // other operations
        deny("user:carol", "main", "app/**", "create"), // someone else
        deny("team:apps", "other", "app/**", "create"), // another repo
        allow("team:apps", "main", "app/**", "create,update"),
        deny("user:bob", "main", "app/**", "create"), // after the held rule
    ]);
    assert_eq!(grant(&rules, "main", "app/**", "create"), Ok(4));
}

#[test]
fn a_held_rule_before_the_deny_still_holds() {
    let rules = numbered(vec![
        allow("team:apps", "main", "app/**", "create"),
        deny("user:bob", "main", "app/secret/**", "create"),
        allow("everyone", "main", "**", "create"),
    ]);
    assert_eq!(grant(&rules, "main", "app/**", "create"), Ok(1));
}

#[test]
fn an_earlier_stricter_allow_shadows_too() {
    let mut signed = allow("user:bob", "main", "app/signed/**", "create");
    signed.require_signature = true;
    let rules = numbered(vec![signed, allow("team:apps", "main", "app/**", "create")]);
    let refused = grant(&rules, "main", "app/*", "create").unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("rule #1 requires a signature from you"),
        "{refused}"
    );
    assert_eq!(grant_with(&rules, "main", "app/*", "create", true, true), Ok(2));
    assert_eq!(grant(&rules, "main", "app/other/*", "create"), Ok(2));
}

#[test]
fn user_placeholders() {
    let rules = numbered(vec![
        deny("everyone", "main", "users/{user}/private/**", "create"),
        allow("everyone", "main", "users/{user}/**", "create"),
    ]);
    // Held: bob's own namespace; the deny is bob's private corner.
    assert_eq!(grant(&rules, "main", "users/bob/public/*", "create"), Ok(2));
    assert!(grant(&rules, "main", "users/bob/private/x", "create").is_err());
    assert!(grant(&rules, "main", "users/*/public/*", "create").is_err());
    // Requested `{user}` is every member's name, not bob's.
    assert!(matches!(
        grant(&rules, "main", "users/{user}/public/*", "create"),
        Err(GrantRefusal::NotHeld { .. })
    ));
}
