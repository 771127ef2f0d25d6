//! Ref names and rule patterns (`policy::validate_ref_name`, `Pattern::parse`/`matches`).
//! Input: `name \n candidate \n user` (UTF-8). The validator agrees with the documented
//! grammar; parsing and matching never panic; a valid ref is a pattern matching itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy::{validate_ref_name, Pattern};

/// The grammar, written independently: 1-255 bytes; `/`-separated non-empty segments of
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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let name = parts.next().unwrap_or("");
    let candidate = parts.next().unwrap_or("");
    let user = parts.next().unwrap_or("");

    let valid = validate_ref_name(name).is_ok();
    assert_eq!(valid, grammar_ok(name), "validate_ref_name({name:?})");
    if let Err(e) = validate_ref_name(name) {
        assert!(!e.to_string().contains('\n') || name.contains('\n'));
    }

    match Pattern::parse(name) {
        Ok(p) => {
            assert_eq!(p.as_str(), name);
            let _ = p.matches(candidate, user);
            if valid {
                assert!(p.matches(name, user), "{name:?} must match itself");
            }
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(!valid, "a valid ref {name:?} must be a valid pattern: {e}");
        }
    }
    if !candidate.is_empty() {
        assert!(Pattern::parse("**").unwrap().matches(candidate, user));
    }
});
