//! Repositories the gateway publishes into. Paths are canonical and inside the repos root
//! (the admin layer checks that before calling `add`).

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::{map_unique, now, Result, StoreError};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Repo {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub mode: String,
    pub collection_id: Option<String>,
    pub created_at: String,
}

const SELECT: &str = "SELECT id, name, path, mode, collection_id, created_at FROM repos";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Repo {
    Repo {
        id: row.get("id"),
        name: row.get("name"),
        path: row.get("path"),
        mode: row.get("mode"),
        collection_id: row.get("collection_id"),
        created_at: row.get("created_at"),
    }
}

pub async fn add(
    conn: &mut SqliteConnection,
    name: &str,
    path: &str,
    mode: &str,
    collection_id: Option<&str>,
) -> Result<Repo> {
    // Two names for one directory would let rules for one name be bypassed through the other.
    if let Some(other) = find_by_path(&mut *conn, path).await? {
        return Err(StoreError::Invalid(format!(
            "path {path} is already used by repo \"{}\"",
            other.name
        )));
    }
    let row = sqlx::query(super::sql(format!(
        "INSERT INTO repos (name, path, mode, collection_id, created_at) VALUES (?, ?, ?, ?, ?)
         RETURNING {}",
        "id, name, path, mode, collection_id, created_at"
    )))
    .bind(name)
    .bind(path)
    .bind(mode)
    .bind(collection_id)
    .bind(now())
    .fetch_one(conn)
    .await
    .map_err(map_unique("repo", name))?;
    Ok(from_row(&row))
}

pub async fn find(conn: &mut SqliteConnection, name: &str) -> Result<Option<Repo>> {
    let row = sqlx::query(super::sql(format!("{SELECT} WHERE name = ?")))
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn find_by_path(conn: &mut SqliteConnection, path: &str) -> Result<Option<Repo>> {
    let row = sqlx::query(super::sql(format!("{SELECT} WHERE path = ?")))
        .bind(path)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn get(conn: &mut SqliteConnection, name: &str) -> Result<Repo> {
    find(conn, name)
        .await?
        .ok_or_else(|| StoreError::not_found("repo", name))
}

pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<Repo>> {
    let rows = sqlx::query(super::sql(format!("{SELECT} ORDER BY name")))
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Forgets the repo (its trusted GPG keys cascade). The files on disk are left alone.
pub async fn remove(conn: &mut SqliteConnection, name: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM repos WHERE name = ?")
        .bind(name)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("repo", name));
    }
    Ok(())
}
