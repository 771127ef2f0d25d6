//! Pattern containment and overlap: tables of tricky cases, witnesses checked with `matches`,
//! and properties against brute-force matching of generated names.

use policy::{Pattern, TooComplex};
use proptest::prelude::*;

fn p(s: &str) -> Pattern {
    Pattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Names have no empty segments (refs and repos never do).
fn valid_shape(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(|s| !s.is_empty())
}

/// `held` contains `requested` as expected; a "no" comes with a name proving it.
#[track_caller]
fn check_contains(held: &str, requested: &str, expected: bool) {
    let (h, r) = (p(held), p(requested));
    assert_eq!(h.contains(&r), expected, "{held} contains {requested}");
    if let Some(w) = h.uncovered_name(&r).unwrap() {
        assert!(valid_shape(&w), "{w:?}");
        assert!(r.matches(&w, "alice") && !h.matches(&w, "alice"), "witness {w:?}");
    }
}

/// `a` and `b` overlap as expected; a "yes" comes with a name both match.
#[track_caller]
fn check_overlaps(a: &str, b: &str, expected: bool) {
    let (x, y) = (p(a), p(b));
    assert_eq!(x.overlaps(&y), expected, "{a} overlaps {b}");
    assert_eq!(y.overlaps(&x), expected, "{b} overlaps {a} (symmetric)");
    if let Some(w) = x.common_name(&y).unwrap() {
        assert!(valid_shape(&w), "{w:?}");
        assert!(x.matches(&w, "alice") && y.matches(&w, "alice"), "witness {w:?}");
    }
}

#[test]
fn containment_table() {
    let cases = [
        // (held, requested, contained)
        ("app/**", "app/*/stable", true),
        ("app/**", "app/org.example.*/**", true),
        ("app/**", "app", true), // `**` takes zero segments
        ("app/**", "application/x", false),
        ("app/*", "app", false),
        ("app/*", "app/x/y", false),
        ("a/**", "a/*/c", true),
        ("a/*/c", "a/**", false),
        ("a/**", "a/**/b", true),
        ("a/**/b", "a/**", false),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**/c", "a/**/b/**/c", true),
        ("a/**/b/**/c", "a/**/c", false),
        ("a/**/b/**/c", "a/b/c", true),
        ("a/**/b/**/c", "a/x/b/y/z/c", true),
        ("**", "anything/**", true),
        ("**", "a", true),
        ("*", "**", false),
        ("*/**", "**", true),
        ("**", "*/**", true),
        ("**/**", "**", true),
        ("**/x/**", "x", true),
        ("**/x/**", "a/x*", false),
        ("x*", "x?", true),
        ("x?", "x*", false),
        ("x*", "x", true),
        ("a*", "a*b", true),
        ("a*b", "a*", false),
        ("*a*", "?a", true),
        ("*a*", "?b", false),
        ("*.*", "org.*", true),
        ("a?c", "abc", true),
        ("abc", "a?c", false),
        ("*-stable", "app-*-stable", true),
        ("app-*-stable", "*-stable", false),
        // Names have no empty segment: `?*` and `*` match the same segments.
        ("?*", "*", true),
        ("a/?*/b", "a/*/b", true),
        ("a/*/b", "a/b", false),
        ("main", "main", true),
        ("main", "*", false),
        ("*", "main", true),
    ];
    for (held, requested, expected) in cases {
        check_contains(held, requested, expected);
    }
}

#[test]
fn overlap_table() {
    let cases = [
        ("app/secret/**", "app/*/stable", true),
        ("app/secret/**", "app/**", true),
        ("app/secret/**", "app/public/*", false),
        ("app/secret/**", "app/secret", true), // zero segments
        ("a/**/b", "a/*", true),
        ("a/*/b", "a/b", false), // no empty middle segment
        ("x?", "x*", true),
        ("x?", "y*", false),
        ("*", "a/b", false),
        ("**", "a/b", true),
        ("a/**", "b/**", false),
        ("**/a", "b/**", true),
        ("a*", "*b", true),
        ("a?", "?b", true),
        ("a??", "?b", false),
        ("a", "a/**", true),
        ("*", "?*", true),
        ("a/**/c", "a/b/**/d", false),
        ("a/**/c", "a/b/**/c*", true),
    ];
    for (a, b, expected) in cases {
        check_overlaps(a, b, expected);
    }
}

#[test]
fn user_bound_and_unbound() {
    let held = p("users/{user}/**").bind_user("alice").unwrap();
    assert_eq!(held.as_str(), "users/alice/**");
    assert!(held.contains(&p("users/alice/x")));
    assert!(!held.contains(&p("users/bob/x")));
    // Unbound, `{user}` is any user's name: nobody's single namespace contains it.
    assert!(!held.contains(&p("users/{user}/**")));
    assert!(p("users/*/**").contains(&p("users/{user}/**")));
    assert!(p("users/?*").contains(&p("users/{user}")));
    assert!(!p("users/?").contains(&p("users/{user}")));
    assert!(p("users/alice/x").overlaps(&p("users/{user}/*")));
    assert!(!p("users/alice/x").overlaps(&p("teams/{user}/*")));
    // A name that could never match for that user: no bound pattern.
    assert!(p("{user}").bind_user("").is_none());
    assert!(p("{user}").bind_user("a/b").is_none());
    assert_eq!(p("app/**").bind_user(""), Some(p("app/**")));
}

#[test]
fn hostile_patterns_are_bounded_and_answer_safely() {
    // `*a` followed by many `?`: the subset construction has 2^n states.
    let hostile = p(&format!("*a{}", "?".repeat(24)));
    assert_eq!(hostile.uncovered_name(&hostile), Err(TooComplex));
    assert!(!hostile.contains(&hostile), "too complex: not contained (refuse)");
    // Overlap is a product of the two NFAs (polynomial): still exact.
    assert!(hostile.overlaps(&hostile));
    assert!(!hostile.overlaps(&p("a")), "too short");
    assert!(!hostile.overlaps(&p("x/**")), "two segments");
}

// ---- properties against brute force ----

/// Patterns over the literals `a` and `b` (names also use `c`, an "other" character).
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("**".to_string()),
        6 => prop::collection::vec(prop::sample::select(vec!["a", "b", "*", "?"]), 1..4)
            .prop_map(|toks| toks.concat().replace("**", "*")),
    ]
}

fn pattern_text() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..4).prop_map(|segs| segs.join("/"))
}

/// Like [`pattern_text`], some segments holding `{user}`.
fn user_pattern_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => segment(),
            1 => Just("{user}".to_string()),
            1 => Just("a{user}*".to_string()),
        ],
        1..4,
    )
    .prop_map(|segs| segs.join("/"))
}

/// Every name of up to `max_len` characters over `a b c /` without empty segments.
fn all_names(max_len: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut layer = vec![String::new()];
    for _ in 0..max_len {
        let mut next = Vec::new();
        for prefix in &layer {
            for c in ['a', 'b', 'c', '/'] {
                next.push(format!("{prefix}{c}"));
            }
        }
        names.extend(next.iter().filter(|n| valid_shape(n)).cloned());
        layer = next;
    }
    names
}

fn names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| all_names(6))
}

fn long_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[abc]{1,4}", 1..6).prop_map(|segs| segs.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `contains` agrees with matching: a "no" has a witness; a "yes" holds on every short
    /// name and on random longer ones.
    #[test]
    fn contains_agrees_with_matching(
        held in pattern_text(),
        requested in pattern_text(),
        extra in prop::collection::vec(long_name(), 32),
    ) {
        let (h, r) = (p(&held), p(&requested));
        match h.uncovered_name(&r).expect("small patterns are never too complex") {
            Some(w) => {
                prop_assert!(valid_shape(&w), "{:?}", w);
                prop_assert!(r.matches(&w, "u") && !h.matches(&w, "u"), "witness {:?}", w);
                prop_assert!(!h.contains(&r));
            }
            None => {
                prop_assert!(h.contains(&r));
                for name in names().iter().chain(&extra) {
                    prop_assert!(!r.matches(name, "u") || h.matches(name, "u"), "{:?}", name);
                }
            }
        }
    }

    /// `overlaps` agrees with matching: a "yes" has a common name; a "no" means no short or
    /// random name matches both.
    #[test]
    fn overlaps_agrees_with_matching(
        a in pattern_text(),
        b in pattern_text(),
        extra in prop::collection::vec(long_name(), 32),
    ) {
        let (x, y) = (p(&a), p(&b));
        prop_assert_eq!(x.overlaps(&y), y.overlaps(&x));
        match x.common_name(&y).expect("small patterns are never too complex") {
            Some(w) => {
                prop_assert!(valid_shape(&w), "{:?}", w);
                prop_assert!(x.matches(&w, "u") && y.matches(&w, "u"), "witness {:?}", w);
            }
            None => {
                for name in names().iter().chain(&extra) {
                    prop_assert!(!(x.matches(name, "u") && y.matches(name, "u")), "{:?}", name);
                }
            }
        }
    }

    /// Every pattern contains itself and overlaps itself.
    #[test]
    fn reflexive(text in user_pattern_text()) {
        let pattern = p(&text);
        prop_assert!(pattern.contains(&pattern));
        prop_assert!(pattern.overlaps(&pattern));
    }

    /// A held pattern bound to its admin contains an unbound requested one only when, for
    /// every user, what the request matches the admin's pattern matches too.
    #[test]
    fn unbound_user_is_any_user(held in user_pattern_text(), requested in user_pattern_text()) {
        let h = p(&held);
        let bound = h.bind_user("ab").unwrap();
        let r = p(&requested);
        // The bound pattern is exactly the admin's view.
        for name in names() {
            prop_assert_eq!(bound.matches(name, "zz"), h.matches(name, "ab"), "{:?}", name);
        }
        if bound.contains(&r) {
            for user in ["a", "b", "c", "ab", "ba", "cab"] {
                for name in names() {
                    prop_assert!(
                        !r.matches(name, user) || h.matches(name, "ab"),
                        "{:?} for user {}", name, user
                    );
                }
            }
        }
    }
}
