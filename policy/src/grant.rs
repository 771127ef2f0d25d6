//! "Cannot grant more than you hold": whether a team admin may add an allow rule for one of
//! their teams. The new rule goes last, so it can only let its members do what it names; the
//! admin must be allowed all of that themselves, under conditions no weaker.
//!
//! The grant is held when some allow rule that applies to the admin contains it (repo and ref
//! patterns, with the admin's name for `{user}`; a superset of its operations; its signature
//! and timestamp conditions no stricter than the grant's), and no earlier rule that applies to
//! the admin takes part of it first (rules are first-match): a deny rule, or an allow rule with
//! a stricter condition, overlapping the grant's repo and ref patterns for one of its
//! operations. In the grant, `{user}` means any member's name.

use thiserror::Error;

use crate::pattern::Pattern;
use crate::rule::{Effect, OpSet, Rule};

/// The allow rule a team admin asks to add.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub repo: &'a Pattern,
    pub refs: &'a Pattern,
    pub ops: OpSet,
    pub require_signature: bool,
    pub timestamp_check: bool,
}

/// Why a grant exceeds what the admin holds; shown to them after "you cannot grant more than
/// you hold: ".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GrantRefusal {
    #[error("no allow rule gives you {ops} on ref {refs:?} in repo {repo:?}")]
    NotHeld { ops: OpSet, refs: String, repo: String },
    #[error(
        "rule #{earlier} {what} on part of ref {refs:?} in repo {repo:?} \
         before your allow rule #{held} applies"
    )]
    Shadowed {
        held: i64,
        earlier: i64,
        /// `denies you OPS`, `requires a signature from you`, …
        what: String,
        refs: String,
        repo: String,
    },
}

/// Checks `grant` for `user` (member of `teams`) against `rules` in evaluation order; returns
/// the id of the allow rule that holds it.
pub fn check_grant(rules: &[Rule], user: &str, teams: &[String], grant: &Grant) -> Result<i64, GrantRefusal> {
    let mine = |r: &Rule| r.subject.covers(user, teams);
    let mut refusal = None;
    for (i, held) in rules.iter().enumerate() {
        if !(mine(held) && held.effect == Effect::Allow && contains(held, user, grant)) {
            continue;
        }
        let earlier = rules[..i]
            .iter()
            .filter(|r| mine(r))
            .find_map(|r| takes_part(r, user, grant).map(|what| (r.id, what)));
        match earlier {
            None => return Ok(held.id),
            Some((earlier, what)) => {
                refusal.get_or_insert(GrantRefusal::Shadowed {
                    held: held.id,
                    earlier,
                    what,
                    refs: grant.refs.to_string(),
                    repo: grant.repo.to_string(),
                });
            }
        }
    }
    Err(refusal.unwrap_or_else(|| GrantRefusal::NotHeld {
        ops: grant.ops,
        refs: grant.refs.to_string(),
        repo: grant.repo.to_string(),
    }))
}

/// Whether allow rule `held`, as it applies to `user`, covers all of `grant`.
fn contains(held: &Rule, user: &str, grant: &Grant) -> bool {
    let (Some(repo), Some(refs)) = (held.repo.bind_user(user), held.refs.bind_user(user)) else {
        return false;
    };
    grant.ops.iter().all(|op| held.ops.contains(op))
        && (grant.require_signature || !held.require_signature)
        && (grant.timestamp_check || !held.timestamp_check)
        && repo.contains(grant.repo)
        && refs.contains(grant.refs)
}

/// What `earlier` (applying to `user`) does on part of `grant` that the grant would not, if
/// anything.
fn takes_part(earlier: &Rule, user: &str, grant: &Grant) -> Option<String> {
    let what = match earlier.effect {
        Effect::Deny => {
            let mut shared = OpSet::EMPTY;
            for op in grant.ops.iter().filter(|&op| earlier.ops.contains(op)) {
                shared.insert(op);
            }
            format!("denies you {shared}")
        }
        Effect::Allow if earlier.require_signature && !grant.require_signature => {
            "requires a signature from you".to_string()
        }
        Effect::Allow if earlier.timestamp_check && !grant.timestamp_check => {
            "requires the timestamp check from you".to_string()
        }
        Effect::Allow => return None,
    };
    let shares_op = grant.ops.iter().any(|op| earlier.ops.contains(op));
    // Bound to `user`: a pattern that can match nothing for them takes nothing.
    let overlaps = |pattern: &Pattern, requested: &Pattern| {
        pattern.bind_user(user).is_some_and(|p| p.overlaps(requested))
    };
    (shares_op && overlaps(&earlier.repo, grant.repo) && overlaps(&earlier.refs, grant.refs)).then_some(what)
}
