//! Gitolite-style decision table: rule set + request → verdict, deciding
//! rule and a reason fragment. Rules are written compactly as
//! `EFFECT SUBJECT REPO REFS OPS [sig] [nots] [-- comment]`; rule N (1-based)
//! gets id N and position 10·N.

use policy::{decide, Effect, Facts, MatchOutcome, Op, OpSet, Pattern, Request, Rule};
use policy::{SignatureStatus as Sig, Subject};

fn rule(n: usize, text: &str) -> Rule {
    let (spec, comment) = match text.split_once(" -- ") {
        Some((s, c)) => (s, Some(c.to_owned())),
        None => (text, None),
    };
    let w: Vec<&str> = spec.split_whitespace().collect();
    let mut r = Rule::new(
        n as i64,
        n as i64 * 10,
        w[1].parse::<Subject>().unwrap(),
        Pattern::parse(w[2]).unwrap(),
        Pattern::parse(w[3]).unwrap(),
        OpSet::parse(w[4]).unwrap(),
        w[0].parse::<Effect>().unwrap(),
    );
    r.require_signature = w[5..].contains(&"sig");
    r.timestamp_check = !w[5..].contains(&"nots");
    r.comment = comment;
    r
}

fn rules(texts: &[&str]) -> Vec<Rule> {
    texts.iter().enumerate().map(|(i, t)| rule(i + 1, t)).collect()
}

struct Case {
    rules: &'static [&'static str],
    user: &'static str,
    teams: &'static [&'static str],
    repo: &'static str,
    ref_name: &'static str,
    op: Op,
    facts: Facts,
    allowed: bool,
    rule: Option<i64>,
    reason: &'static str,
}

#[allow(clippy::too_many_arguments)]
fn case(
    rules: &'static [&'static str],
    user: &'static str,
    teams: &'static [&'static str],
    repo: &'static str,
    ref_name: &'static str,
    op: Op,
    allowed: bool,
    rule: Option<i64>,
    reason: &'static str,
) -> Case {
    Case {
        rules,
        user,
        teams,
        repo,
        ref_name,
        op,
        facts: Facts::default(),
        allowed,
        rule,
        reason,
    }
}

impl Case {
    fn sig(mut self, s: Sig) -> Case {
        self.facts.signature = s;
        self
    }
    fn ts(mut self, old: Option<u64>, new: Option<u64>) -> Case {
        self.facts.old_timestamp = old;
        self.facts.new_timestamp = new;
        self
    }
}

use Op::{Create as C, Delete as D, Force as F, Update as U};

const DEVS_APP: &[&str] = &["allow team:devs flathub app/** create,update"];
const RELEASE: &[&str] = &[
    "deny everyone * release/** force,delete",
    "allow team:devs * ** all",
];
const ROOT_FIRST: &[&str] = &["allow user:root * ** all", "deny everyone * ** all"];
const SIGNED: &[&str] = &["allow team:devs * ** all sig"];
const TS: &[&str] = &["allow everyone * ** all"];
const TS_WAIVED: &[&str] = &["allow everyone * ** all nots"];
const DEVS: &[&str] = &["devs"];
const NONE: &[&str] = &[];
const T0: u64 = 1_700_000_000;
const NO_RULE: &str = "no rule allows";
const FPR: &str = "0123456789ABCDEF";

#[rustfmt::skip] // one line per case reads as a table
fn cases() -> Vec<Case> {
    vec![
        // Team prefixes; op mismatch falls through to default deny.
        case(DEVS_APP, "alice", DEVS, "flathub", "app/org.x/stable", C, true, Some(1), "allowed by rule #1"),
        case(DEVS_APP, "alice", DEVS, "flathub", "app/org.x/stable", U, true, Some(1), "allowed by rule #1"),
        case(DEVS_APP, "alice", DEVS, "flathub", "app/org.x/stable", F, false, None,
            "no rule allows force on ref \"app/org.x/stable\" in repo \"flathub\" for user \"alice\""),
        case(DEVS_APP, "alice", DEVS, "flathub", "app/org.x/stable", D, false, None, "no rule allows delete"),
        case(DEVS_APP, "alice", &["qa"], "flathub", "app/x", C, false, None, NO_RULE),
        case(DEVS_APP, "alice", &["qa", "devs"], "flathub", "app/x", C, true, Some(1), "allowed"),
        case(DEVS_APP, "alice", DEVS, "flathub", "runtime/x", C, false, None, NO_RULE),
        case(DEVS_APP, "alice", DEVS, "flathub", "app", C, true, Some(1), "allowed"),
        case(DEVS_APP, "alice", DEVS, "flathub", "apps/x", C, false, None, NO_RULE),
        case(DEVS_APP, "alice", DEVS, "other", "app/x", C, false, None, "in repo \"other\""),
        case(&["allow team:devs * app/** create,update", "allow team:devs * app/** force"],
            "alice", DEVS, "r", "app/x", F, true, Some(2), "allowed by rule #2"),
        // Deny before allow / allow before deny.
        case(RELEASE, "alice", DEVS, "r", "release/1.0", F, false, Some(1),
            "denied by rule #1 (deny force,delete on ref \"release/**\")"),
        case(RELEASE, "alice", DEVS, "r", "release/1.0", D, false, Some(1), "denied by rule #1"),
        case(RELEASE, "alice", DEVS, "r", "release/1.0", U, true, Some(2), "allowed by rule #2"),
        case(RELEASE, "alice", DEVS, "r", "release", F, false, Some(1), "denied by rule #1"),
        case(RELEASE, "alice", DEVS, "r", "releases/x", F, true, Some(2), "allowed by rule #2"),
        case(ROOT_FIRST, "root", NONE, "r", "x", F, true, Some(1), "allowed by rule #1"),
        case(ROOT_FIRST, "bob", NONE, "r", "x", C, false, Some(2),
            "denied by rule #2 (deny create,update,force,delete on ref \"**\")"),
        case(&["deny everyone * release/** force -- releases are immutable"],
            "alice", NONE, "r", "release/1", F, false, Some(1),
            "denied by rule #1 (deny force on ref \"release/**\"): releases are immutable"),
        // Everyone, exact users, unknown users.
        case(&["allow everyone * sandbox/** all"], "anyone", NONE, "r", "sandbox/a/b", D, true, Some(1), "allowed"),
        case(&["allow user:alice * ** all"], "mallory", NONE, "r", "x", C, false, None,
            "no rule allows create on ref \"x\" in repo \"r\" for user \"mallory\""),
        case(&["allow user:alice * ** all"], "alic", NONE, "r", "x", C, false, None, NO_RULE),
        case(&[], "alice", DEVS, "r", "x", C, false, None, NO_RULE),
        // {user} namespaces.
        case(&["allow everyone * users/{user}/** all"], "alice", NONE, "r", "users/alice/wip", F, true, Some(1), "allowed"),
        case(&["allow everyone * users/{user}/** all"], "alice", NONE, "r", "users/bob/wip", F, false, None, NO_RULE),
        case(&["allow everyone * users/{user}/** all"], "alice", NONE, "r", "users/alice2/wip", C, false, None, NO_RULE),
        case(&["allow everyone * dev-{user}-* create"], "bob", NONE, "r", "dev-bob-feature", C, true, Some(1), "allowed"),
        case(&["allow everyone * dev-{user}-* create"], "bob", NONE, "r", "dev-alice-feature", C, false, None, NO_RULE),
        // Repo patterns.
        case(&["allow team:devs team-* ** all"], "alice", DEVS, "team-a", "x", C, true, Some(1), "allowed"),
        case(&["allow team:devs team-* ** all"], "alice", DEVS, "flathub", "x", C, false, None, NO_RULE),
        case(&["allow everyone {user} ** all"], "alice", NONE, "alice", "x", C, true, Some(1), "allowed"),
        case(&["allow everyone {user} ** all"], "alice", NONE, "bob", "x", C, false, None, NO_RULE),
        case(&["allow everyone repo? ** all"], "a", NONE, "repo1", "x", C, true, Some(1), "allowed"),
        case(&["allow everyone repo? ** all"], "a", NONE, "repo12", "x", C, false, None, NO_RULE),
        // `*` stays within a segment, `?` is one char, `**` spans zero or more.
        case(&["allow everyone * app/* create"], "a", NONE, "r", "app/x", C, true, Some(1), "allowed"),
        case(&["allow everyone * app/* create"], "a", NONE, "r", "app/x/y", C, false, None, NO_RULE),
        case(&["allow everyone * v?.? create"], "a", NONE, "r", "v1.2", C, true, Some(1), "allowed"),
        case(&["allow everyone * v?.? create"], "a", NONE, "r", "v10.2", C, false, None, NO_RULE),
        case(&["allow everyone * **/stable create"], "a", NONE, "r", "stable", C, true, Some(1), "allowed"),
        case(&["allow everyone * **/stable create"], "a", NONE, "r", "a/b/stable", C, true, Some(1), "allowed"),
        case(&["allow everyone * **/stable create"], "a", NONE, "r", "a/b/stable2", C, false, None, NO_RULE),
        case(&["allow everyone * app/**/stable create"], "a", NONE, "r", "app/stable", C, true, Some(1), "allowed"),
        // Signatures: each status has its own reason.
        case(SIGNED, "alice", DEVS, "r", "x", U, true, Some(1), "allowed by rule #1")
            .sig(Sig::Valid { fingerprint: FPR.into() }),
        case(SIGNED, "alice", DEVS, "r", "x", U, false, Some(1), "signature required but not checked"),
        case(SIGNED, "alice", DEVS, "r", "x", C, false, Some(1),
            "commit is not signed; rule #1 requires a signature by a trusted key").sig(Sig::Unsigned),
        case(SIGNED, "alice", DEVS, "r", "x", F, false, Some(1), "bad signature: digest mismatch")
            .sig(Sig::Invalid { detail: "digest mismatch".into() }),
        case(SIGNED, "alice", DEVS, "r", "x", U, false, Some(1), "signed by untrusted key 0123456789ABCDEF")
            .sig(Sig::UntrustedKey { fingerprint: FPR.into() }),
        case(SIGNED, "alice", DEVS, "r", "x", U, false, Some(1), "signing key 0123456789ABCDEF has expired")
            .sig(Sig::ExpiredKey { fingerprint: FPR.into() }),
        case(SIGNED, "alice", DEVS, "r", "x", U, false, Some(1), "signing key 0123456789ABCDEF is revoked")
            .sig(Sig::RevokedKey { fingerprint: FPR.into() }),
        case(TS, "alice", NONE, "r", "x", U, true, Some(1), "allowed").sig(Sig::Unsigned),
        case(SIGNED, "alice", DEVS, "r", "x", D, true, Some(1), "allowed by rule #1").sig(Sig::Unsigned),
        // The first match decides even when its conditions fail.
        case(&["allow team:devs * ** update sig", "allow everyone * ** update"],
            "alice", DEVS, "r", "x", U, false, Some(1), "not signed").sig(Sig::Unsigned),
        // Signature is checked before the timestamp.
        case(SIGNED, "alice", DEVS, "r", "x", U, false, Some(1), "not signed")
            .sig(Sig::Unsigned).ts(Some(T0), Some(T0 - 1)),
        // Timestamps: strictly newer, unless waived; not for create/delete.
        case(TS, "a", NONE, "r", "x", U, true, Some(1), "allowed").ts(Some(T0), Some(T0 + 1)),
        case(TS, "a", NONE, "r", "x", U, false, Some(1),
            "commit timestamp 1699999999 (2023-11-14T22:13:19Z) is older than the current \
             commit's 1700000000 (2023-11-14T22:13:20Z)").ts(Some(T0), Some(T0 - 1)),
        case(TS, "a", NONE, "r", "x", U, false, Some(1),
            "commit timestamp equals the current commit's (1700000000 (2023-11-14T22:13:20Z)): \
             a new commit must be strictly newer").ts(Some(T0), Some(T0)),
        case(TS, "a", NONE, "r", "x", F, false, Some(1), "is older than").ts(Some(T0), Some(5)),
        case(TS_WAIVED, "a", NONE, "r", "x", U, true, Some(1), "allowed").ts(Some(T0), Some(5)),
        case(TS_WAIVED, "a", NONE, "r", "x", F, true, Some(1), "allowed").ts(Some(T0), Some(T0)),
        case(TS, "a", NONE, "r", "x", D, true, Some(1), "allowed").ts(Some(T0), Some(5)),
        case(TS, "a", NONE, "r", "x", C, true, Some(1), "allowed").ts(Some(T0), Some(5)),
        case(TS, "a", NONE, "r", "x", U, true, Some(1), "allowed").ts(None, Some(5)),
        case(TS, "a", NONE, "r", "x", U, true, Some(1), "allowed").ts(Some(T0), None),
    ]
}

#[test]
fn decision_table() {
    let cases = cases();
    assert!(cases.len() >= 45, "only {} cases", cases.len());
    for (i, c) in cases.iter().enumerate() {
        let rules = rules(c.rules);
        let teams: Vec<String> = c.teams.iter().map(|t| t.to_string()).collect();
        let req = Request {
            user: c.user,
            teams: &teams,
            repo: c.repo,
            ref_name: c.ref_name,
            op: c.op,
            facts: c.facts.clone(),
        };
        let d = decide(&rules, &req);
        let ctx = format!(
            "case {i} ({:?} {} {}):\n{}",
            c.rules,
            c.op,
            c.ref_name,
            d.explain()
        );
        assert_eq!(d.allowed, c.allowed, "{ctx}");
        assert_eq!(d.matched_rule, c.rule, "{ctx}");
        assert!(d.reason.contains(c.reason), "{ctx}\nwanted: {}", c.reason);
        let expected_len = c.rule.map_or(rules.len(), |id| id as usize);
        assert_eq!(d.trace.len(), expected_len, "{ctx}");
        let matched = d
            .trace
            .iter()
            .filter(|s| s.outcome == MatchOutcome::Matched)
            .count();
        assert_eq!(matched, usize::from(c.rule.is_some()), "{ctx}");
        assert!(d.explain().lines().next().unwrap().contains(&d.reason), "{ctx}");
    }
}

#[test]
fn trace_explains_each_mismatch() {
    let rules = rules(&[
        "allow user:bob * ** all",
        "allow team:ops * ** all",
        "allow everyone flathub ** all",
        "allow everyone * app/** all",
        "allow everyone * ** delete",
        "deny everyone * ** force",
        "allow everyone * ** all",
    ]);
    let teams = vec!["devs".to_string()];
    let req = Request {
        user: "alice",
        teams: &teams,
        repo: "fedora",
        ref_name: "runtime/x",
        op: Op::Force,
        facts: Facts::default(),
    };
    let d = decide(&rules, &req);
    use MatchOutcome::*;
    let outcomes: Vec<_> = d.trace.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [
            SubjectMismatch,
            SubjectMismatch,
            RepoMismatch,
            RefMismatch,
            OpMismatch,
            Matched
        ]
    );
    assert!(!d.allowed);
    assert_eq!(d.matched_rule, Some(6));
    assert_eq!(d.trace[0].detail, "rule is for user:bob, not user \"alice\"");
    assert_eq!(
        d.trace[1].detail,
        "user \"alice\" is not in team:ops (teams: devs)"
    );
    assert_eq!(d.trace[2].detail, "repo \"fedora\" does not match \"flathub\"");
    assert_eq!(d.trace[3].detail, "ref \"runtime/x\" does not match \"app/**\"");
    assert_eq!(d.trace[4].detail, "force is not one of delete");
    assert_eq!(d.trace[5].detail, d.reason);
    assert_eq!((d.trace[2].rule_id, d.trace[2].position), (3, 30));
    assert_eq!(d.trace[0].rule, rules[0].to_string());

    let text = d.explain();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert_eq!(lines[0], "DENIED: denied by rule #6 (deny force on ref \"**\")");
    assert_eq!(
        lines[3],
        "  3. [pos 30] #3 allow create,update,force,delete on repo \"flathub\" ref \"**\" \
         for everyone => repo mismatch: repo \"fedora\" does not match \"flathub\""
    );
}

#[test]
fn explain_allowed_and_default_deny() {
    let rules = rules(&["allow everyone * ** create"]);
    let mut req = Request {
        user: "alice",
        teams: &[],
        repo: "r",
        ref_name: "x",
        op: Op::Create,
        facts: Facts::default(),
    };
    let d = decide(&rules, &req);
    assert!(d
        .explain()
        .starts_with("ALLOWED: allowed by rule #1\n  1. [pos 10] #1 allow"));
    req.op = Op::Delete;
    let d = decide(&rules, &req);
    assert!(d.explain().starts_with("DENIED: no rule allows delete"));
    assert!(d
        .explain()
        .ends_with("=> op mismatch: delete is not one of create"));
}
