//! The decision: first matching rule wins, default deny, with a trace.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rule::{Effect, Op, Rule, Subject};
use crate::timefmt;

/// What signature verification (done by the gateway) found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// Verification was not attempted (e.g. no keyring configured).
    #[default]
    NotChecked,
    Unsigned,
    Invalid {
        detail: String,
    },
    UntrustedKey {
        fingerprint: String,
    },
    ExpiredKey {
        fingerprint: String,
    },
    RevokedKey {
        fingerprint: String,
    },
    Valid {
        fingerprint: String,
    },
}

/// Facts about the pushed commit, established by the gateway before asking.
/// Timestamps are unix seconds; `None` means unknown (e.g. `old` for a
/// create), in which case no timestamp condition is applied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Facts {
    pub signature: SignatureStatus,
    pub old_timestamp: Option<u64>,
    pub new_timestamp: Option<u64>,
}

/// One ref update to decide on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request<'a> {
    pub user: &'a str,
    pub teams: &'a [String],
    pub repo: &'a str,
    pub ref_name: &'a str,
    pub op: Op,
    pub facts: Facts,
}

/// How a single rule related to the request; checks run in this order and
/// the first failing one is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOutcome {
    SubjectMismatch,
    RepoMismatch,
    RefMismatch,
    OpMismatch,
    Matched,
}

impl fmt::Display for MatchOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOutcome::SubjectMismatch => "subject mismatch",
            MatchOutcome::RepoMismatch => "repo mismatch",
            MatchOutcome::RefMismatch => "ref mismatch",
            MatchOutcome::OpMismatch => "op mismatch",
            MatchOutcome::Matched => "matched",
        })
    }
}

/// One rule looked at during a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    pub rule_id: i64,
    pub position: i64,
    /// The rule's one-line `Display`.
    pub rule: String,
    pub outcome: MatchOutcome,
    pub detail: String,
}

/// The verdict, the deciding rule (if any), a human reason, and the trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub matched_rule: Option<i64>,
    pub reason: String,
    pub trace: Vec<TraceStep>,
}

impl Decision {
    /// Multi-line text for operators: a verdict line, then one line per
    /// rule examined.
    pub fn explain(&self) -> String {
        let verdict = if self.allowed { "ALLOWED" } else { "DENIED" };
        let mut out = format!("{verdict}: {}", self.reason);
        for (i, step) in self.trace.iter().enumerate() {
            out.push_str(&format!(
                "\n  {}. [pos {}] {} => {}: {}",
                i + 1,
                step.position,
                step.rule,
                step.outcome,
                step.detail
            ));
        }
        out
    }
}

/// Decides `req` against `rules`, evaluated in slice order (the caller
/// sorts by position). The first rule whose subject, repo, ref and op all
/// match decides; if none does, the request is denied.
pub fn decide(rules: &[Rule], req: &Request) -> Decision {
    let mut trace = Vec::new();
    for rule in rules {
        let (outcome, detail) = check(rule, req);
        let mut step = TraceStep {
            rule_id: rule.id,
            position: rule.position,
            rule: rule.to_string(),
            outcome,
            detail,
        };
        if outcome != MatchOutcome::Matched {
            trace.push(step);
            continue;
        }
        let verdict = verdict(rule, req);
        let allowed = verdict.is_ok();
        let reason = verdict.unwrap_or_else(|denied| denied);
        step.detail = reason.clone();
        trace.push(step);
        return Decision {
            allowed,
            matched_rule: Some(rule.id),
            reason,
            trace,
        };
    }
    Decision {
        allowed: false,
        matched_rule: None,
        reason: format!(
            "no rule allows {} on ref {:?} in repo {:?} for user {:?}",
            req.op, req.ref_name, req.repo, req.user
        ),
        trace,
    }
}

/// Whether `rule` applies to `req`, and if not, the first reason why not.
fn check(rule: &Rule, req: &Request) -> (MatchOutcome, String) {
    if !rule.subject.covers(req.user, req.teams) {
        let detail = match &rule.subject {
            Subject::Team(_) => format!(
                "user {:?} is not in {} (teams: {})",
                req.user,
                rule.subject,
                if req.teams.is_empty() {
                    "none".to_owned()
                } else {
                    req.teams.join(", ")
                }
            ),
            _ => format!("rule is for {}, not user {:?}", rule.subject, req.user),
        };
        return (MatchOutcome::SubjectMismatch, detail);
    }
    if !rule.repo.matches(req.repo, req.user) {
        return (
            MatchOutcome::RepoMismatch,
            format!("repo {:?} does not match {:?}", req.repo, rule.repo.as_str()),
        );
    }
    if !rule.refs.matches(req.ref_name, req.user) {
        return (
            MatchOutcome::RefMismatch,
            format!("ref {:?} does not match {:?}", req.ref_name, rule.refs.as_str()),
        );
    }
    if !rule.ops.contains(req.op) {
        return (
            MatchOutcome::OpMismatch,
            format!("{} is not one of {}", req.op, rule.ops),
        );
    }
    (MatchOutcome::Matched, String::new())
}

/// The verdict of the deciding rule: `Ok(reason)` to allow, `Err(reason)`
/// to deny.
fn verdict(rule: &Rule, req: &Request) -> Result<String, String> {
    if rule.effect == Effect::Deny {
        let mut reason = format!(
            "denied by rule #{} (deny {} on ref {:?})",
            rule.id,
            rule.ops,
            rule.refs.as_str()
        );
        if let Some(comment) = rule.comment.as_deref().map(str::trim) {
            if !comment.is_empty() {
                // Keep the reason on one line whatever the comment holds.
                let flat: Vec<&str> = comment.split_whitespace().collect();
                reason.push_str(&format!(": {}", flat.join(" ")));
            }
        }
        return Err(reason);
    }
    // Deleting never introduces a commit, so there is nothing to verify.
    if req.op == Op::Delete {
        return Ok(format!("allowed by rule #{}", rule.id));
    }
    if rule.require_signature {
        signature_ok(rule.id, &req.facts.signature)?;
    }
    if matches!(req.op, Op::Update | Op::Force) && rule.timestamp_check {
        if let (Some(old), Some(new)) = (req.facts.old_timestamp, req.facts.new_timestamp) {
            if new < old {
                return Err(format!(
                    "commit timestamp {} is older than the current commit's {}",
                    timefmt::describe(new),
                    timefmt::describe(old)
                ));
            }
            if new == old {
                return Err(format!(
                    "commit timestamp equals the current commit's ({}): \
                     a new commit must be strictly newer",
                    timefmt::describe(new)
                ));
            }
        }
    }
    Ok(format!("allowed by rule #{}", rule.id))
}

/// A distinct message per failure so users know what to fix.
fn signature_ok(rule_id: i64, status: &SignatureStatus) -> Result<(), String> {
    Err(match status {
        SignatureStatus::Valid { .. } => return Ok(()),
        SignatureStatus::NotChecked => {
            format!("signature required but not checked (rule #{rule_id})")
        }
        SignatureStatus::Unsigned => {
            format!("commit is not signed; rule #{rule_id} requires a signature by a trusted key")
        }
        SignatureStatus::Invalid { detail } => format!("bad signature: {detail}"),
        SignatureStatus::UntrustedKey { fingerprint } => {
            format!("signed by untrusted key {fingerprint}; rule #{rule_id} requires a trusted key")
        }
        SignatureStatus::ExpiredKey { fingerprint } => {
            format!("signing key {fingerprint} has expired")
        }
        SignatureStatus::RevokedKey { fingerprint } => {
            format!("signing key {fingerprint} is revoked")
        }
    })
}
