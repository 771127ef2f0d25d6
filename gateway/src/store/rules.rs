//! Ordered access rules. Positions are kept compact (1..=n) so that `--position N` and
//! `rule list` always agree on what "the Nth rule" is.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::{now, Result, StoreError};

/// A rule as stored. Patterns and ops were validated by the policy crate before insertion.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleRecord {
    pub id: i64,
    pub position: i64,
    pub subject_kind: String,
    pub subject_name: Option<String>,
    pub repo_pattern: String,
    pub ref_pattern: String,
    pub ops: String,
    pub effect: String,
    pub require_signature: bool,
    pub timestamp_check: bool,
    pub comment: Option<String>,
    pub created_at: String,
}

/// The fields of a rule to insert.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub subject_kind: String,
    pub subject_name: Option<String>,
    pub repo_pattern: String,
    pub ref_pattern: String,
    pub ops: String,
    pub effect: String,
    pub require_signature: bool,
    pub timestamp_check: bool,
    pub comment: Option<String>,
}

const SELECT: &str = "SELECT id, position, subject_kind, subject_name, repo_pattern, ref_pattern, ops,
                             effect, require_signature, timestamp_check, comment, created_at FROM rules";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> RuleRecord {
    RuleRecord {
        id: row.get("id"),
        position: row.get("position"),
        subject_kind: row.get("subject_kind"),
        subject_name: row.get("subject_name"),
        repo_pattern: row.get("repo_pattern"),
        ref_pattern: row.get("ref_pattern"),
        ops: row.get("ops"),
        effect: row.get("effect"),
        require_signature: row.get("require_signature"),
        timestamp_check: row.get("timestamp_check"),
        comment: row.get("comment"),
        created_at: row.get("created_at"),
    }
}

/// Inserts a rule at `position` (1-based; rules at or after it move down), or last when `None`.
/// Call inside a transaction: the renumbering and the insert must be seen together.
pub async fn add(conn: &mut SqliteConnection, rule: &NewRule, position: Option<i64>) -> Result<RuleRecord> {
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM rules")
        .fetch_one(&mut *conn)
        .await?
        .get("n");
    let position = match position {
        None => count + 1,
        Some(p) if p >= 1 => p.min(count + 1),
        Some(p) => {
            return Err(StoreError::Invalid(format!(
                "invalid position {p}: positions start at 1"
            )))
        }
    };
    // Positions are UNIQUE and SQLite checks that row by row, so shift through negatives.
    sqlx::query("UPDATE rules SET position = -(position + 1) WHERE position >= ?")
        .bind(position)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE rules SET position = -position WHERE position < 0")
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(
        "INSERT INTO rules (position, subject_kind, subject_name, repo_pattern, ref_pattern, ops, effect,
                            require_signature, timestamp_check, comment, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         RETURNING id, position, subject_kind, subject_name, repo_pattern, ref_pattern, ops, effect,
                   require_signature, timestamp_check, comment, created_at",
    )
    .bind(position)
    .bind(&rule.subject_kind)
    .bind(&rule.subject_name)
    .bind(&rule.repo_pattern)
    .bind(&rule.ref_pattern)
    .bind(&rule.ops)
    .bind(&rule.effect)
    .bind(rule.require_signature)
    .bind(rule.timestamp_check)
    .bind(&rule.comment)
    .bind(now())
    .fetch_one(&mut *conn)
    .await?;
    Ok(from_row(&row))
}

/// All rules in evaluation order.
pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<RuleRecord>> {
    let rows = sqlx::query(super::sql(format!("{SELECT} ORDER BY position")))
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn get(conn: &mut SqliteConnection, id: i64) -> Result<RuleRecord> {
    let row = sqlx::query(super::sql(format!("{SELECT} WHERE id = ?")))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref()
        .map(from_row)
        .ok_or_else(|| StoreError::not_found("rule", format!("#{id}")))
}

pub async fn remove(conn: &mut SqliteConnection, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM rules WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("rule", format!("#{id}")));
    }
    compact_positions(conn).await
}

/// Renumbers positions to 1..=n keeping their order.
pub(crate) async fn compact_positions(conn: &mut SqliteConnection) -> Result<()> {
    sqlx::query("UPDATE rules SET position = -position")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE rules SET position = ranked.n
         FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY position DESC) AS n FROM rules) AS ranked
         WHERE rules.id = ranked.id",
    )
    .execute(conn)
    .await?;
    Ok(())
}

impl RuleRecord {
    /// The policy crate's view of this rule. Fails only if the row was edited by hand into
    /// something `rule add` would have refused.
    pub fn to_policy(&self) -> Result<policy::Rule> {
        let invalid = |what: String| {
            StoreError::Invalid(format!("rule #{} in the database is invalid: {what}", self.id))
        };
        let subject = match (self.subject_kind.as_str(), &self.subject_name) {
            ("user", Some(name)) => policy::Subject::User(name.clone()),
            ("team", Some(name)) => policy::Subject::Team(name.clone()),
            ("everyone", None) => policy::Subject::Everyone,
            (kind, _) => return Err(invalid(format!("subject {kind}"))),
        };
        let effect = match self.effect.as_str() {
            "allow" => policy::Effect::Allow,
            "deny" => policy::Effect::Deny,
            other => return Err(invalid(format!("effect {other}"))),
        };
        Ok(policy::Rule {
            id: self.id,
            position: self.position,
            subject,
            repo: policy::Pattern::parse(&self.repo_pattern).map_err(|e| invalid(e.to_string()))?,
            refs: policy::Pattern::parse(&self.ref_pattern).map_err(|e| invalid(e.to_string()))?,
            ops: policy::OpSet::parse(&self.ops).map_err(|e| invalid(e.to_string()))?,
            effect,
            require_signature: self.require_signature,
            timestamp_check: self.timestamp_check,
            comment: self.comment.clone(),
        })
    }
}
