//! Bounded randomized ("fuzz-like") tests of ref-name validation and patterns, run on stable
//! in `make test`; they mirror the cargo-fuzz target `ref_name` in `fuzz/` (longer campaigns:
//! docs/FUZZING.md). `validate_ref_name` agrees with the documented grammar on any string;
//! `Pattern::parse`/`matches` never panic and agree with a naive reference matcher.

use policy::{validate_ref_name, Pattern};
use proptest::prelude::*;

/// `cases` per property; `FUZZ_LIKE_CASES=N` runs N instead (longer campaigns).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("FUZZ_LIKE_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The ref grammar, written independently: 1-255 bytes; `/`-separated non-empty segments of
/// `A-Z a-z 0-9 . _ -`, each starting with a letter, digit or `_`; no `..` anywhere.
fn grammar_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.contains("..")
        && s.split('/').all(|seg| {
            let b = seg.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        })
}

/// Strings near the grammar's edges.
fn ref_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._/-]{0,24}",
        "[a-z0-9._/:\\- *?{}~^@\\\\]{0,24}",
        prop::collection::vec("[A-Za-z0-9_.-]{0,6}", 1..6).prop_map(|s| s.join("/")),
        "[a-z]{250,260}",
        prop::collection::vec("[a-z]{1,60}", 4..6).prop_map(|s| s.join("/")),
        any::<String>(),
        "[a-z/\u{e9}\u{2028}\u{0}\t\n\u{7f}]{0,10}",
    ]
}

// A naive reference matcher: backtracking over segments and characters.

fn seg_matches(pat: &[char], cand: &[char], user: &[char]) -> bool {
    if pat.is_empty() {
        return cand.is_empty();
    }
    // `{user}` stands for the user's name, literally.
    if pat.starts_with(&['{', 'u', 's', 'e', 'r', '}']) {
        return cand.starts_with(user) && seg_matches(&pat[6..], &cand[user.len()..], user);
    }
    match pat[0] {
        '*' => (0..=cand.len()).any(|k| seg_matches(&pat[1..], &cand[k..], user)),
        '?' => !cand.is_empty() && seg_matches(&pat[1..], &cand[1..], user),
        c => cand.first() == Some(&c) && seg_matches(&pat[1..], &cand[1..], user),
    }
}

fn segs_match(pat: &[&str], cand: &[&str], user: &[char]) -> bool {
    let Some((first, rest)) = pat.split_first() else {
        return cand.is_empty();
    };
    if *first == "**" {
        return (0..=cand.len()).any(|k| segs_match(rest, &cand[k..], user));
    }
    let Some((c, crest)) = cand.split_first() else {
        return false;
    };
    let p: Vec<char> = first.chars().collect();
    let c: Vec<char> = c.chars().collect();
    seg_matches(&p, &c, user) && segs_match(rest, crest, user)
}

fn naive_matches(pattern: &str, candidate: &str, user: &str) -> bool {
    if candidate.is_empty() || (pattern.contains("{user}") && (user.is_empty() || user.contains('/'))) {
        return false;
    }
    let pat: Vec<&str> = pattern.split('/').collect();
    let cand: Vec<&str> = candidate.split('/').collect();
    let user: Vec<char> = user.chars().collect();
    segs_match(&pat, &cand, &user)
}

fn pattern_like() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(
            prop_oneof![
                "[ab.*?_-]{1,4}",
                Just("**".to_string()),
                Just("{user}".to_string()),
                "[ab]\\{user\\}[*]?",
            ],
            1..5
        )
        .prop_map(|s| s.join("/")),
        "[ab*?/{}user.]{0,12}",
        any::<String>(),
    ]
}

fn candidate_like() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec("[ab._-]{0,4}", 1..6).prop_map(|s| s.join("/")),
        prop::collection::vec(prop_oneof!["[ab]{0,3}", Just("al".to_string())], 1..5)
            .prop_map(|s| s.join("/")),
        any::<String>(),
    ]
}

fn user_like() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("al".to_string()),
        Just("a".to_string()),
        Just(String::new()),
        Just("a/b".to_string()),
        "[ab*?.]{0,3}",
    ]
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn ref_names_follow_the_grammar(s in ref_like()) {
        let verdict = validate_ref_name(&s);
        prop_assert_eq!(verdict.is_ok(), grammar_ok(&s), "{:?}: {:?}", s, verdict);
        if let Err(e) = verdict {
            prop_assert!(e.to_string().starts_with("invalid ref name "));
        }
    }

    /// A valid ref is a valid pattern that matches itself (and only itself, for any user).
    #[test]
    fn valid_refs_are_literal_patterns(s in ref_like(), other in ref_like(), user in user_like()) {
        if validate_ref_name(&s).is_ok() {
            let p = Pattern::parse(&s).expect("a valid ref parses as a pattern");
            prop_assert!(p.matches(&s, &user));
            prop_assert_eq!(p.matches(&other, &user), other == s);
        }
    }

    #[test]
    fn patterns_never_panic_and_match_like_the_reference(
        pattern in pattern_like(),
        candidate in candidate_like(),
        user in user_like(),
    ) {
        match Pattern::parse(&pattern) {
            Ok(p) => {
                prop_assert_eq!(p.as_str(), pattern.as_str());
                let got = p.matches(&candidate, &user);
                prop_assert_eq!(
                    got,
                    naive_matches(&pattern, &candidate, &user),
                    "{:?} on {:?} (user {:?})", pattern, candidate, user
                );
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn double_star_matches_everything(candidate in candidate_like(), user in user_like()) {
        let p = Pattern::parse("**").unwrap();
        prop_assert_eq!(p.matches(&candidate, &user), !candidate.is_empty());
    }
}
