//! Trusted GPG public keys per repo: signatures by these keys satisfy `--require-signature`.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::{map_unique, now, Result, StoreError};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GpgKey {
    pub id: i64,
    pub repo: String,
    pub fingerprint: String,
    pub user_ids: Option<String>,
    pub armored: String,
    pub created_at: String,
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> GpgKey {
    GpgKey {
        id: row.get("id"),
        repo: row.get("repo"),
        fingerprint: row.get("fingerprint"),
        user_ids: row.get("user_ids"),
        armored: row.get("armored"),
        created_at: row.get("created_at"),
    }
}

pub async fn add(
    conn: &mut SqliteConnection,
    repo_id: i64,
    fingerprint: &str,
    user_ids: Option<&str>,
    armored: &str,
) -> Result<i64> {
    let id = sqlx::query(
        "INSERT INTO gpg_keys (repo_id, fingerprint, user_ids, armored, created_at)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(repo_id)
    .bind(fingerprint)
    .bind(user_ids)
    .bind(armored)
    .bind(now())
    .fetch_one(conn)
    .await
    .map_err(map_unique("GPG key", fingerprint))?
    .get("id");
    Ok(id)
}

pub async fn list(conn: &mut SqliteConnection, repo_id: i64) -> Result<Vec<GpgKey>> {
    let rows = sqlx::query(
        "SELECT g.id, r.name AS repo, g.fingerprint, g.user_ids, g.armored, g.created_at
         FROM gpg_keys g JOIN repos r ON r.id = g.repo_id WHERE g.repo_id = ? ORDER BY g.id",
    )
    .bind(repo_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn remove(conn: &mut SqliteConnection, repo_id: i64, fingerprint: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM gpg_keys WHERE repo_id = ? AND fingerprint = ?")
        .bind(repo_id)
        .bind(fingerprint)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("GPG key", fingerprint));
    }
    Ok(())
}
