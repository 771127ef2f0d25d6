//! Validation of user, team, repo and ref names.
//!
//! Names end up in file paths, log lines and SSH command arguments, so they
//! are restricted to a boring character set up front; `..` is refused so a
//! name can never climb out of a directory.

use serde::Serialize;
use thiserror::Error;

/// Longest user/team/repo name we accept.
pub const MAX_NAME_LEN: usize = 64;
/// Longest ref name we accept (in bytes).
pub const MAX_REF_LEN: usize = 255;

/// A rejected name, with a message meant to be shown to the user as-is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Error)]
pub enum NameError {
    /// A user/team/repo name (`kind` says which) broke the naming rules.
    #[error(
        "invalid {kind} name {name:?}: use 1-64 characters from A-Z a-z 0-9 . _ - \
         starting with a letter or digit (no \"..\")"
    )]
    InvalidName { kind: String, name: String },
    /// A ref name broke OSTree ref syntax; `reason` says how.
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRef { name: String, reason: String },
}

/// Validates a user, team or repo name; `kind` (e.g. `"user"`) is only used
/// in the error message.
pub fn validate_name(kind: &str, s: &str) -> Result<(), NameError> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && s.len() <= MAX_NAME_LEN && !s.contains("..") {
        Ok(())
    } else {
        Err(NameError::InvalidName {
            kind: kind.to_owned(),
            name: s.to_owned(),
        })
    }
}

/// Validates an OSTree ref name such as `app/org.example.App/x86_64/stable`.
///
/// Stricter than OSTree itself in two ways that matter to a gateway: a
/// `remote:` prefix is refused (clients push to *this* repo) and `..` is
/// refused anywhere (refs map onto paths under `refs/heads`).
pub fn validate_ref_name(s: &str) -> Result<(), NameError> {
    ref_problem(s).map_or(Ok(()), |reason| {
        Err(NameError::InvalidRef {
            name: s.to_owned(),
            reason,
        })
    })
}

fn ref_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("must not be empty".into());
    }
    if s.len() > MAX_REF_LEN {
        return Some(format!(
            "is {} bytes long; at most {MAX_REF_LEN} are allowed",
            s.len()
        ));
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("contains whitespace or a control character ({c:?})"));
    }
    if s.contains(':') {
        return Some("contains ':' (remote prefixes are not allowed)".into());
    }
    if s.contains("..") {
        return Some("contains \"..\"".into());
    }
    if s.starts_with('/') || s.ends_with('/') || s.contains("//") {
        return Some("has an empty segment (leading, trailing or doubled '/')".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Some(format!(
            "character {c:?} is not allowed (use A-Z a-z 0-9 . _ - and / between segments)"
        ));
    }
    if let Some(seg) = s
        .split('/')
        .find(|seg| !seg.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Some(format!("segment {seg:?} must start with a letter, digit or '_'"));
    }
    None
}
