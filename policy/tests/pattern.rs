//! Pattern parsing and matching.

use std::time::{Duration, Instant};

use policy::{Pattern, PatternError};

fn m(p: &str, s: &str) -> bool {
    Pattern::parse(p).unwrap().matches(s, "alice")
}

#[test]
fn literal() {
    assert!(m("main", "main"));
    assert!(!m("main", "mainx"));
    assert!(!m("main", "mai"));
    assert!(m("app/org.x.App/stable", "app/org.x.App/stable"));
    assert!(!m("app/org.x.App/stable", "app/org.x.App"));
}

#[test]
fn star_stays_in_one_segment() {
    assert!(m("app/*", "app/x"));
    assert!(m("app/*", "app/"), "empty run");
    assert!(!m("app/*", "app/x/y"));
    assert!(!m("app/*", "app"));
    assert!(m("*", "flathub"));
    assert!(!m("*", "a/b"));
    assert!(m("a*b*c", "abc"));
    assert!(m("a*b*c", "aXXbYYc"));
    assert!(!m("a*b*c", "aXXbYY"));
    assert!(m("*-stable", "app-stable"));
    assert!(!m("*-stable", "app-stable2"));
}

#[test]
fn question_mark() {
    assert!(m("v?", "v1"));
    assert!(!m("v?", "v"));
    assert!(!m("v?", "v12"));
    assert!(!m("a?b", "a/b"));
    assert!(m("??", "ab"));
}

#[test]
fn double_star() {
    assert!(m("a/**", "a"));
    assert!(m("a/**", "a/b"));
    assert!(m("a/**", "a/b/c"));
    assert!(!m("a/**", "ab"));
    assert!(!m("a/**", "b/a"));
    assert!(m("**/x", "x"));
    assert!(m("**/x", "p/q/x"));
    assert!(!m("**/x", "p/q/xy"));
    assert!(m("a/**/b", "a/b"));
    assert!(m("a/**/b", "a/1/2/b"));
    assert!(!m("a/**/b", "a/1/2/c"));
    assert!(m("**", "anything/at/all"));
    assert!(m("**/**", "x"));
    assert!(m("**/*/**", "x/y"));
    assert!(!m("**", ""), "empty candidate never matches");
}

#[test]
fn user_placeholder() {
    let p = Pattern::parse("users/{user}/**").unwrap();
    assert!(p.matches("users/alice/wip", "alice"));
    assert!(p.matches("users/alice", "alice"));
    assert!(!p.matches("users/bob/wip", "alice"));
    assert!(!p.matches("users/alice2/wip", "alice"));
    let p = Pattern::parse("dev-{user}-*").unwrap();
    assert!(p.matches("dev-bob-1", "bob"));
    assert!(!p.matches("dev-bob-1", "alice"));
    // The user name is literal: metacharacters in it are not wildcards.
    let p = Pattern::parse("u/{user}").unwrap();
    assert!(!p.matches("u/abc", "a*"));
    assert!(p.matches("u/a*", "a*"));
    // A name that could escape the namespace never matches.
    assert!(!p.matches("u/", ""));
    assert!(!Pattern::parse("u/{user}/**").unwrap().matches("u/a/b", "a/b"));
}

#[test]
fn keeps_source_and_displays_it() {
    let p: Pattern = "app/{user}/**".parse().unwrap();
    assert_eq!(p.as_str(), "app/{user}/**");
    assert_eq!(p.to_string(), "app/{user}/**");
}

#[test]
fn deserializes_from_source_string_and_validates() {
    use serde::de::value::{Error, StrDeserializer};
    use serde::Deserialize;
    let p = Pattern::deserialize(StrDeserializer::<Error>::new("app/**")).unwrap();
    assert_eq!(p, Pattern::parse("app/**").unwrap());
    assert!(Pattern::deserialize(StrDeserializer::<Error>::new("a//b")).is_err());
}

#[test]
fn invalid_patterns_rejected_with_message() {
    let cases: &[(&str, &str)] = &[
        ("", "empty pattern"),
        ("a//b", "empty segment"),
        ("/a", "empty segment"),
        ("a/", "empty segment"),
        ("a**", "'**' must be a whole segment"),
        ("**b/c", "'**' must be a whole segment"),
        ("a/***", "'**' must be a whole segment"),
        ("{usr}", "braces"),
        ("{user", "braces"),
        ("a}", "braces"),
        ("{}", "braces"),
        ("a b", "' '"),
        ("a:b", "':'"),
        ("a[b]", "'['"),
        ("é", "'é'"),
    ];
    for (p, frag) in cases {
        let err = Pattern::parse(p).expect_err(p);
        let msg = err.to_string();
        assert!(msg.contains(frag), "{p:?}: {msg} lacks {frag}");
        if !p.is_empty() {
            assert!(msg.contains(&format!("{p:?}")), "names the pattern: {msg}");
        }
    }
    assert_eq!(Pattern::parse(""), Err(PatternError::Empty));
}

#[test]
fn no_exponential_blowup() {
    // Classic catastrophic cases for naive backtracking matchers.
    let star_heavy = format!("{}b", "*a".repeat(30));
    let seg_heavy = ["**"; 20].join("/") + "/*a*a*a*a*/**/*b";
    let long_seg = "a".repeat(2000);
    let many_segs = vec!["aaaaaaaaaa"; 120].join("/");
    let start = Instant::now();
    assert!(!m(&star_heavy, &long_seg));
    assert!(!m(&seg_heavy, &many_segs));
    assert!(!m(&["*a*"; 60].join("/"), &many_segs));
    assert!(m(&seg_heavy, &format!("{many_segs}/xb")));
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}
