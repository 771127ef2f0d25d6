//! SSH public keys, each bound to one user by its unique SHA256 fingerprint.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::{map_unique, now, Result, StoreError};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SshKey {
    pub id: i64,
    pub user: String,
    pub algorithm: String,
    pub key_blob: String,
    pub fingerprint: String,
    pub comment: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// A key ready to be stored (already parsed and fingerprinted).
#[derive(Debug, Clone)]
pub struct NewKey {
    pub algorithm: String,
    pub key_blob: String,
    pub fingerprint: String,
    pub comment: Option<String>,
}

const SELECT: &str = "SELECT k.id, u.name AS user, k.algorithm, k.key_blob, k.fingerprint, k.comment,
                             k.created_at, k.last_used_at
                      FROM ssh_keys k JOIN users u ON u.id = k.user_id";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> SshKey {
    SshKey {
        id: row.get("id"),
        user: row.get("user"),
        algorithm: row.get("algorithm"),
        key_blob: row.get("key_blob"),
        fingerprint: row.get("fingerprint"),
        comment: row.get("comment"),
        created_at: row.get("created_at"),
        last_used_at: row.get("last_used_at"),
    }
}

pub async fn add(conn: &mut SqliteConnection, user_id: i64, key: &NewKey) -> Result<i64> {
    let id = sqlx::query(
        "INSERT INTO ssh_keys (user_id, algorithm, key_blob, fingerprint, comment, created_at)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(user_id)
    .bind(&key.algorithm)
    .bind(&key.key_blob)
    .bind(&key.fingerprint)
    .bind(&key.comment)
    .bind(now())
    .fetch_one(conn)
    .await
    .map_err(map_unique("key", &key.fingerprint))?
    .get("id");
    Ok(id)
}

pub async fn list(conn: &mut SqliteConnection, user: Option<&str>) -> Result<Vec<SshKey>> {
    let rows = match user {
        Some(name) => {
            sqlx::query(super::sql(format!("{SELECT} WHERE u.name = ? ORDER BY k.id")))
                .bind(name)
                .fetch_all(conn)
                .await?
        }
        None => {
            sqlx::query(super::sql(format!("{SELECT} ORDER BY u.name, k.id")))
                .fetch_all(conn)
                .await?
        }
    };
    Ok(rows.iter().map(from_row).collect())
}

pub async fn find_by_fingerprint(conn: &mut SqliteConnection, fingerprint: &str) -> Result<Option<SshKey>> {
    let row = sqlx::query(super::sql(format!("{SELECT} WHERE k.fingerprint = ?")))
        .bind(fingerprint)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn remove(conn: &mut SqliteConnection, fingerprint: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM ssh_keys WHERE fingerprint = ?")
        .bind(fingerprint)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("key", fingerprint));
    }
    Ok(())
}

pub async fn touch_last_used(conn: &mut SqliteConnection, fingerprint: &str) -> Result<()> {
    sqlx::query("UPDATE ssh_keys SET last_used_at = ? WHERE fingerprint = ?")
        .bind(now())
        .bind(fingerprint)
        .execute(conn)
        .await?;
    Ok(())
}
