//! Name and ref validation.

use policy::{validate_name, validate_ref_name, NameError};

#[test]
fn valid_names() {
    for n in [
        "a",
        "alice",
        "Bob",
        "0day",
        "team.ops",
        "a_b-c.d",
        &"x".repeat(64),
    ] {
        assert_eq!(validate_name("user", n), Ok(()), "{n}");
    }
}

#[test]
fn invalid_names_have_clear_message() {
    let long = "x".repeat(65);
    for n in [
        "", "a/b", "-a", ".a", "_a", "a..b", "a b", "a:b", "é", "a\n", &long,
    ] {
        let err = validate_name("user", n).expect_err(n);
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("invalid user name {n:?}: ")), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
}

#[test]
fn name_error_message_exact() {
    let err = validate_name("team", "a/b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid team name \"a/b\": use 1-64 characters from A-Z a-z 0-9 . _ - \
         starting with a letter or digit (no \"..\")"
    );
    assert!(matches!(err, NameError::InvalidName { ref kind, .. } if kind == "team"));
}

#[test]
fn valid_refs() {
    for r in [
        "main",
        "app/org.example.App/x86_64/stable",
        "_private/x",
        "users/alice/wip-1",
        "a.b-c_d",
        &"a".repeat(255),
    ] {
        assert_eq!(validate_ref_name(r), Ok(()), "{r}");
    }
}

#[test]
fn invalid_refs_each_explained() {
    let long = "a".repeat(256);
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        (&long, "256 bytes"),
        ("/a", "empty segment"),
        ("a/", "empty segment"),
        ("a//b", "empty segment"),
        ("a/../b", "\"..\""),
        ("a..b", "\"..\""),
        ("origin:main", "remote prefix"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("a\u{7}b", "control"),
        ("a/-b", "segment \"-b\""),
        ("a/.b", "segment \".b\""),
        ("a*b", "'*'"),
        ("a~b", "'~'"),
        ("é", "'é'"),
    ];
    for (r, frag) in cases {
        let msg = validate_ref_name(r).expect_err(r).to_string();
        assert!(msg.starts_with("invalid ref name "), "{msg}");
        assert!(msg.contains(&format!("{r:?}")), "names the ref: {msg}");
        assert!(msg.contains(frag), "{r:?}: {msg} lacks {frag}");
        assert!(!msg.contains('\n'));
    }
}
