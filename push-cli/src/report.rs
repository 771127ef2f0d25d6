//! The receiver's stderr lines (progress, per-ref results, errors) and the final report:
//! a table for people, one JSON object for programs.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Created,
    Updated,
    ForceUpdated,
    Deleted,
    UpToDate,
    Rejected,
    DryRun,
}

impl Status {
    /// Whether the ref ended where the pusher wanted (a dry run counts: nothing failed).
    pub fn ok(self) -> bool {
        self != Status::Rejected
    }

    fn verdict(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Updated => "updated",
            Status::ForceUpdated => "force-updated",
            Status::Deleted => "deleted",
            Status::UpToDate => "up to date",
            Status::Rejected => "rejected",
            Status::DryRun => "would update (dry run)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefResult {
    #[serde(rename = "ref")]
    pub name: String,
    /// The remote's previous commit (`null` when the ref was new or unknown); possibly
    /// abbreviated to 12 hex digits as the receiver reports it.
    pub old: Option<String>,
    pub new: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Progress { done: u64, total: u64 },
    Result(RefResult),
    Error(String),
    Other(String),
}

fn csum(text: &str) -> Option<String> {
    let t = text.trim();
    (t != "(none)" && !t.is_empty()).then(|| t.to_string())
}

fn old_new(text: &str) -> Option<(Option<String>, Option<String>)> {
    let (old, new) = text.split_once(" → ").or_else(|| text.split_once(" -> "))?;
    Some((csum(old), csum(new)))
}

/// Classifies one stderr line of `ostree-receive-1`; `refs` are the refs we asked for.
pub fn parse_line(line: &str, refs: &[String]) -> Line {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("Receiving objects: ") {
        let counts = rest.split([',', ' ']).next().unwrap_or_default();
        if let Some((done, total)) = counts.split_once('/') {
            if let (Ok(done), Ok(total)) = (done.parse(), total.parse()) {
                return Line::Progress { done, total };
            }
        }
    }
    if let Some(message) = line.strip_prefix("error: ") {
        return Line::Error(message.to_string());
    }
    let named = refs
        .iter()
        .filter(|r| line.len() > r.len() + 2 && line.starts_with(r.as_str()))
        .filter(|r| &line[r.len()..r.len() + 2] == ": ")
        .max_by_key(|r| r.len());
    let Some(name) = named else {
        return Line::Other(line.to_string());
    };
    let body = &line[name.len() + 2..];
    let result = |status, (old, new): (Option<String>, Option<String>), reason| {
        Line::Result(RefResult {
            name: name.clone(),
            old,
            new,
            status,
            reason,
        })
    };
    for (word, status) in [
        ("created ", Status::Created),
        ("updated ", Status::Updated),
        ("force-updated ", Status::ForceUpdated),
    ] {
        if let Some(pair) = body.strip_prefix(word).and_then(old_new) {
            return result(status, pair, None);
        }
    }
    if let Some(rest) = body.strip_prefix("up to date") {
        let c = rest.trim().trim_start_matches('(').trim_end_matches(')');
        return result(Status::UpToDate, (csum(c), csum(c)), None);
    }
    if let Some(reason) = body.strip_prefix("rejected: ") {
        return result(Status::Rejected, (None, None), Some(reason.to_string()));
    }
    if let Some(rest) = body.strip_prefix("would ") {
        let rest = rest.trim_end_matches(" (dry run)");
        if let Some(pair) = rest.split_once(' ').and_then(|(_, p)| old_new(p)) {
            let verb = rest.split(' ').next().unwrap_or("update");
            return result(Status::DryRun, pair, Some(format!("dry run: would {verb}")));
        }
    }
    Line::Other(line.to_string())
}

/// Everything about one push, printed at the end.
#[derive(Debug, Serialize)]
pub struct Report {
    pub dest: String,
    pub repo: String,
    pub refs: Vec<RefResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub exit_code: i32,
}

/// Merges the receiver's results with what we asked for (`wanted`: name and local commit).
/// Refs without a result are rejected with the receiver's error (or its exit status).
pub fn merge(
    wanted: &[(String, String)],
    mut results: Vec<RefResult>,
    errors: &[String],
    remote_status: u32,
) -> (Vec<RefResult>, i32) {
    let mut out = Vec::with_capacity(wanted.len());
    for (name, local) in wanted {
        let found = results.iter().position(|r| &r.name == name);
        let mut r = match found {
            Some(i) => results.swap_remove(i),
            // A classic ostree-receive prints no per-ref line: its exit status is the verdict.
            None if remote_status == 0 && errors.is_empty() => RefResult {
                name: name.clone(),
                old: None,
                new: Some(local.clone()),
                status: Status::Updated,
                reason: Some("accepted by the receiver (it reports no per-ref detail)".into()),
            },
            None => RefResult {
                name: name.clone(),
                old: None,
                new: Some(local.clone()),
                status: Status::Rejected,
                reason: Some(match errors.first() {
                    Some(e) => e.clone(),
                    None => format!("no result from the receiver (exit status {remote_status})"),
                }),
            },
        };
        // The receiver abbreviates; we know the full checksum we sent.
        if r.new.as_deref().is_none_or(|n| local.starts_with(n)) {
            r.new = Some(local.clone());
        }
        if r.status == Status::UpToDate {
            r.old = r.new.clone();
        }
        out.push(r);
    }
    let ok = remote_status == 0 && out.iter().all(|r| r.status.ok());
    (out, if ok { 0 } else { 1 })
}

fn short(c: &Option<String>) -> String {
    match c {
        Some(c) => c.chars().take(12).collect(),
        None => "(none)".into(),
    }
}

/// The per-ref table: ref, old → new, verdict.
pub fn table(refs: &[RefResult]) -> String {
    let width = refs.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in refs {
        let change = match r.status {
            Status::Rejected if r.old.is_none() => format!("{:>12} → {}", "", short(&r.new)),
            _ => format!("{:>12} → {}", short(&r.old), short(&r.new)),
        };
        let verdict = match (&r.status, &r.reason) {
            (Status::Rejected, Some(reason)) => format!("rejected: {reason}"),
            (s, _) => s.verdict().to_string(),
        };
        out.push_str(&format!(" {:<width$}  {change}  {verdict}\n", r.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs() -> Vec<String> {
        vec!["os/main".into(), "os".into()]
    }

    #[test]
    fn lines() {
        assert_eq!(
            parse_line("Receiving objects: 3/10", &refs()),
            Line::Progress { done: 3, total: 10 }
        );
        assert_eq!(
            parse_line("Receiving objects: 10/10, done.", &refs()),
            Line::Progress { done: 10, total: 10 }
        );
        let Line::Result(r) = parse_line("os/main: created (none) → 0123456789ab", &refs()) else {
            panic!()
        };
        assert_eq!(
            (r.name.as_str(), r.status, r.old),
            ("os/main", Status::Created, None)
        );
        let Line::Result(r) = parse_line("os: up to date (0123456789ab)", &refs()) else {
            panic!()
        };
        assert_eq!(r.status, Status::UpToDate);
        let Line::Result(r) = parse_line("os: rejected: no rule allows: it", &refs()) else {
            panic!()
        };
        assert_eq!(r.reason.as_deref(), Some("no rule allows: it"));
        let Line::Result(r) = parse_line("os: would update aaaaaaaaaaaa → bbbbbbbbbbbb (dry run)", &refs())
        else {
            panic!()
        };
        assert_eq!(
            (r.status, r.old.as_deref()),
            (Status::DryRun, Some("aaaaaaaaaaaa"))
        );
        assert_eq!(parse_line("error: boom", &refs()), Line::Error("boom".into()));
        assert!(matches!(
            parse_line("other: created x → y", &refs()),
            Line::Other(_)
        ));
    }

    #[test]
    fn merging() {
        let full = "0123456789ab".to_string() + &"c".repeat(52);
        let wanted = vec![("a".to_string(), full.clone()), ("b".to_string(), full.clone())];
        let results = vec![RefResult {
            name: "a".into(),
            old: None,
            new: Some("0123456789ab".into()),
            status: Status::Created,
            reason: None,
        }];
        let (out, code) = merge(&wanted, results, &["denied".into()], 1);
        assert_eq!(code, 1);
        assert_eq!(out[0].new.as_deref(), Some(full.as_str()));
        assert_eq!(
            (out[1].status, out[1].reason.as_deref()),
            (Status::Rejected, Some("denied"))
        );
        let (_, code) = merge(&wanted[..1], out[..1].to_vec(), &[], 0);
        assert_eq!(code, 0);
        assert!(table(&out).contains("rejected: denied"));
    }
}
