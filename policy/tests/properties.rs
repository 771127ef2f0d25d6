//! Property tests for the decision procedure and patterns.

use policy::{
    decide, validate_ref_name, Effect, Facts, Op, OpSet, Pattern, Request, Rule, SignatureStatus, Subject,
};
use proptest::prelude::*;

fn ref_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9_][-._A-Za-z0-9_]{0,8}", 1..5)
        .prop_map(|segs| segs.join("/"))
        .prop_filter("valid ref", |r| validate_ref_name(r).is_ok())
}

fn user() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["alice", "bob", "carol", "root"]).prop_map(String::from)
}

fn teams() -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(vec!["devs", "ops", "qa"], 0..=3)
        .prop_map(|t| t.into_iter().map(String::from).collect())
}

fn op() -> impl Strategy<Value = Op> {
    prop::sample::select(Op::ALL.to_vec())
}

fn signature() -> impl Strategy<Value = SignatureStatus> {
    prop_oneof![
        Just(SignatureStatus::NotChecked),
        Just(SignatureStatus::Unsigned),
        Just(SignatureStatus::Invalid { detail: "x".into() }),
        Just(SignatureStatus::UntrustedKey {
            fingerprint: "F".into()
        }),
        Just(SignatureStatus::Valid {
            fingerprint: "F".into()
        }),
    ]
}

fn facts() -> impl Strategy<Value = Facts> {
    (
        signature(),
        prop::option::of(0u64..10),
        prop::option::of(0u64..10),
    )
        .prop_map(|(signature, old_timestamp, new_timestamp)| Facts {
            signature,
            old_timestamp,
            new_timestamp,
        })
}

fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        Just(Subject::Everyone),
        user().prop_map(Subject::User),
        prop::sample::select(vec!["devs", "ops", "qa"]).prop_map(|t| Subject::Team(t.into())),
    ]
}

fn pattern() -> impl Strategy<Value = Pattern> {
    prop::sample::select(vec![
        "**",
        "*",
        "app/**",
        "r?",
        "r1",
        "**/x",
        "users/{user}/**",
        "a*/**",
        "{user}",
    ])
    .prop_map(|p| Pattern::parse(p).unwrap())
}

fn opset() -> impl Strategy<Value = OpSet> {
    prop::sample::subsequence(Op::ALL.to_vec(), 1..=4).prop_map(|ops| ops.into_iter().collect())
}

/// A rule with a placeholder id; ids are assigned by [`number`].
fn any_rule() -> impl Strategy<Value = Rule> {
    (
        subject(),
        pattern(),
        pattern(),
        opset(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(subject, repo, refs, ops, allow, sig, ts)| {
            let effect = if allow { Effect::Allow } else { Effect::Deny };
            let mut r = Rule::new(0, 0, subject, repo, refs, ops, effect);
            r.require_signature = sig;
            r.timestamp_check = ts;
            r
        })
}

fn rules(max: usize) -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec(any_rule(), 0..max)
}

/// Gives rules distinct ids (100, 101, …) and ascending positions.
fn number(rules: &mut [Rule]) {
    for (i, r) in rules.iter_mut().enumerate() {
        r.id = 100 + i as i64;
        r.position = 10 * i as i64;
    }
}

#[derive(Debug, Clone)]
struct Req {
    user: String,
    teams: Vec<String>,
    repo: String,
    ref_name: String,
    op: Op,
    facts: Facts,
}

impl Req {
    fn as_request(&self) -> Request<'_> {
        Request {
            user: &self.user,
            teams: &self.teams,
            repo: &self.repo,
            ref_name: &self.ref_name,
            op: self.op,
            facts: self.facts.clone(),
        }
    }
}

fn request() -> impl Strategy<Value = Req> {
    let repo = prop::sample::select(vec!["r1", "r2", "alice", "flathub"]).prop_map(String::from);
    let refs = prop_oneof![
        ref_name(),
        prop::sample::select(vec!["app/x", "users/alice/w", "users/bob/w", "x", "a/x"])
            .prop_map(String::from),
    ];
    (user(), teams(), repo, refs, op(), facts()).prop_map(|(user, teams, repo, ref_name, op, facts)| Req {
        user,
        teams,
        repo,
        ref_name,
        op,
        facts,
    })
}

fn deny_all() -> Rule {
    let p = Pattern::parse("**").unwrap();
    Rule::new(0, 0, Subject::Everyone, p.clone(), p, OpSet::ALL, Effect::Deny)
}

proptest! {
    #[test]
    fn leading_deny_all_always_denies(mut rs in rules(8), req in request()) {
        rs.insert(0, deny_all());
        number(&mut rs);
        let d = decide(&rs, &req.as_request());
        prop_assert!(!d.allowed);
        prop_assert_eq!(d.matched_rule, Some(100));
        prop_assert_eq!(d.trace.len(), 1);
        prop_assert!(d.reason.starts_with("denied by rule #100"));
    }

    #[test]
    fn allow_after_matching_deny_changes_nothing(
        mut prefix in rules(5),
        suffix in rules(5),
        extra in any_rule(),
        req in request(),
        literal_subject in any::<bool>(),
    ) {
        // A deny rule built to match the request.
        let subject = if literal_subject { Subject::User(req.user.clone()) } else { Subject::Everyone };
        let deny = Rule::new(
            0, 0, subject,
            Pattern::parse(&req.repo).unwrap(),
            Pattern::parse("**").unwrap(),
            [req.op].into_iter().collect(),
            Effect::Deny,
        );
        let deny_id = 100 + prefix.len() as i64;
        prefix.push(deny);
        prefix.extend(suffix);
        number(&mut prefix);
        let before = decide(&prefix, &req.as_request());
        // Some rule (the deny, or an earlier one) always matches.
        prop_assert!(before.matched_rule.is_some());
        if before.matched_rule == Some(deny_id) {
            prop_assert!(!before.allowed);
        }

        let mut allow = extra;
        allow.effect = Effect::Allow;
        let mut catch_all = deny_all();
        catch_all.effect = Effect::Allow;
        prefix.push(allow);
        prefix.push(catch_all);
        number(&mut prefix);
        let after = decide(&prefix, &req.as_request());
        prop_assert_eq!(before, after);
    }

    #[test]
    fn deterministic_and_trace_stops_at_match(mut rs in rules(10), req in request()) {
        number(&mut rs);
        let d1 = decide(&rs, &req.as_request());
        let d2 = decide(&rs, &req.as_request());
        prop_assert_eq!(&d1, &d2);
        let expected = match d1.matched_rule {
            Some(id) => rs.iter().position(|r| r.id == id).unwrap() + 1,
            None => rs.len(),
        };
        prop_assert_eq!(d1.trace.len(), expected);
        for (step, rule) in d1.trace.iter().zip(&rs) {
            prop_assert_eq!(step.rule_id, rule.id);
        }
        if d1.matched_rule.is_none() {
            prop_assert!(!d1.allowed);
        }
    }

    #[test]
    fn no_rules_always_denied(req in request()) {
        let d = decide(&[], &req.as_request());
        prop_assert!(!d.allowed);
        prop_assert_eq!(d.matched_rule, None);
        prop_assert!(d.trace.is_empty());
        prop_assert!(d.reason.starts_with("no rule allows"));
    }

    #[test]
    fn double_star_matches_every_valid_ref(r in ref_name(), u in user()) {
        prop_assert!(Pattern::parse("**").unwrap().matches(&r, &u));
    }

    #[test]
    fn literal_pattern_matches_exactly_itself(a in ref_name(), b in ref_name(), u in user()) {
        let p = Pattern::parse(&a).unwrap();
        prop_assert!(p.matches(&a, &u));
        prop_assert_eq!(p.matches(&b, &u), a == b);
        prop_assert_eq!(p.as_str(), a.as_str());
    }
}
