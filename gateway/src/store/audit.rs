//! The append-only audit trail: one row per ref update attempt (and per admin change).
//!
//! A push writes its rows as `in_progress` before touching the repo and settles them at the end,
//! so a crash leaves evidence; `recover_in_progress` marks such rows failed at startup.

use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{now, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    InProgress,
    Accepted,
    Rejected,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::InProgress => "in_progress",
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Failed => "failed",
        }
    }
}

/// What is known about an update when its row is written.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    pub push_id: Option<String>,
    pub user_name: Option<String>,
    pub key_fingerprint: Option<String>,
    pub peer_addr: Option<String>,
    pub repo: Option<String>,
    pub ref_name: Option<String>,
    pub old_rev: Option<String>,
    pub new_rev: Option<String>,
    pub op: Option<String>,
    /// "allow" or "deny".
    pub decision: String,
    pub matched_rule: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub time: String,
    pub push_id: Option<String>,
    pub user: Option<String>,
    pub key_fingerprint: Option<String>,
    pub peer_addr: Option<String>,
    pub repo: Option<String>,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub old_rev: Option<String>,
    pub new_rev: Option<String>,
    pub op: Option<String>,
    pub decision: String,
    pub matched_rule: Option<i64>,
    pub reason: Option<String>,
    pub state: String,
    pub finished_at: Option<String>,
}

/// Appends a row in `state`; terminal states get their finish time at once.
pub async fn append(conn: &mut SqliteConnection, entry: &NewEntry, state: State) -> Result<i64> {
    let time = now();
    let finished = (state != State::InProgress).then(|| time.clone());
    let id = sqlx::query(
        "INSERT INTO audit (time, push_id, user_name, key_fingerprint, peer_addr, repo, ref_name, old_rev,
                            new_rev, op, decision, matched_rule, reason, state, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&time)
    .bind(&entry.push_id)
    .bind(&entry.user_name)
    .bind(&entry.key_fingerprint)
    .bind(&entry.peer_addr)
    .bind(&entry.repo)
    .bind(&entry.ref_name)
    .bind(&entry.old_rev)
    .bind(&entry.new_rev)
    .bind(&entry.op)
    .bind(&entry.decision)
    .bind(entry.matched_rule)
    .bind(&entry.reason)
    .bind(state.as_str())
    .bind(finished)
    .fetch_one(conn)
    .await?
    .get("id");
    Ok(id)
}

/// Settles an in-progress row. `reason` replaces the stored one when given.
pub async fn settle(conn: &mut SqliteConnection, id: i64, state: State, reason: Option<&str>) -> Result<()> {
    sqlx::query(
        "UPDATE audit SET state = ?, reason = COALESCE(?, reason), finished_at = ?
         WHERE id = ? AND state = 'in_progress'",
    )
    .bind(state.as_str())
    .bind(reason)
    .bind(now())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks rows a crash left in progress as failed; returns how many.
pub async fn recover_in_progress(conn: &mut SqliteConnection) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE audit SET state = 'failed', finished_at = ?,
                reason = 'gateway stopped before the push finished (recovered at startup)'
         WHERE state = 'in_progress'",
    )
    .bind(now())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub repo: Option<String>,
    pub user: Option<String>,
    /// RFC 3339 UTC lower bound (inclusive).
    pub since: Option<String>,
    pub push_id: Option<String>,
    pub limit: Option<i64>,
    /// `Some(true)`: only admin changes; `Some(false)`: only pushes; `None`: both.
    pub admin: Option<bool>,
}

/// Matching rows, newest first.
pub async fn query(conn: &mut SqliteConnection, filter: &Filter) -> Result<Vec<Entry>> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT id, time, push_id, user_name, key_fingerprint, peer_addr, repo, ref_name, old_rev, new_rev,
                op, decision, matched_rule, reason, state, finished_at FROM audit WHERE 1 = 1",
    );
    if let Some(repo) = &filter.repo {
        q.push(" AND repo = ").push_bind(repo);
    }
    if let Some(user) = &filter.user {
        q.push(" AND user_name = ").push_bind(user);
    }
    if let Some(since) = &filter.since {
        q.push(" AND time >= ").push_bind(since);
    }
    match filter.admin {
        Some(true) => {
            q.push(" AND op LIKE 'admin:%'");
        }
        Some(false) => {
            q.push(" AND (op IS NULL OR op NOT LIKE 'admin:%')");
        }
        None => {}
    }
    if let Some(push_id) = &filter.push_id {
        q.push(" AND push_id = ").push_bind(push_id);
    }
    q.push(" ORDER BY id DESC");
    if let Some(limit) = filter.limit {
        q.push(" LIMIT ").push_bind(limit);
    }
    let rows = q.build().fetch_all(conn).await?;
    Ok(rows
        .iter()
        .map(|r| Entry {
            id: r.get("id"),
            time: r.get("time"),
            push_id: r.get("push_id"),
            user: r.get("user_name"),
            key_fingerprint: r.get("key_fingerprint"),
            peer_addr: r.get("peer_addr"),
            repo: r.get("repo"),
            ref_name: r.get("ref_name"),
            old_rev: r.get("old_rev"),
            new_rev: r.get("new_rev"),
            op: r.get("op"),
            decision: r.get("decision"),
            matched_rule: r.get("matched_rule"),
            reason: r.get("reason"),
            state: r.get("state"),
            finished_at: r.get("finished_at"),
        })
        .collect())
}
