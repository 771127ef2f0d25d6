//! Users: the identities that SSH keys map to.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::{map_unique, now, Result, StoreError};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub disabled: bool,
    pub is_admin: bool,
    pub created_at: String,
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> User {
    User {
        id: row.get("id"),
        name: row.get("name"),
        disabled: row.get("disabled"),
        is_admin: row.get("is_admin"),
        created_at: row.get("created_at"),
    }
}

pub async fn add(conn: &mut SqliteConnection, name: &str) -> Result<User> {
    let row = sqlx::query(
        "INSERT INTO users (name, created_at) VALUES (?, ?)
         RETURNING id, name, disabled, is_admin, created_at",
    )
    .bind(name)
    .bind(now())
    .fetch_one(conn)
    .await
    .map_err(map_unique("user", name))?;
    Ok(from_row(&row))
}

pub async fn find(conn: &mut SqliteConnection, name: &str) -> Result<Option<User>> {
    let row = sqlx::query("SELECT id, name, disabled, is_admin, created_at FROM users WHERE name = ?")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn get(conn: &mut SqliteConnection, name: &str) -> Result<User> {
    find(conn, name)
        .await?
        .ok_or_else(|| StoreError::not_found("user", name))
}

pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<User>> {
    let rows = sqlx::query("SELECT id, name, disabled, is_admin, created_at FROM users ORDER BY name")
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn set_disabled(conn: &mut SqliteConnection, name: &str, disabled: bool) -> Result<()> {
    let done = sqlx::query("UPDATE users SET disabled = ? WHERE name = ?")
        .bind(disabled)
        .bind(name)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("user", name));
    }
    Ok(())
}

pub async fn set_admin(conn: &mut SqliteConnection, name: &str, admin: bool) -> Result<()> {
    let done = sqlx::query("UPDATE users SET is_admin = ? WHERE name = ?")
        .bind(admin)
        .bind(name)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("user", name));
    }
    Ok(())
}

/// Removes the user with their keys and memberships (cascade). Rules naming the user are
/// removed too: a rule for a deleted name would silently apply to a future user of that name.
pub async fn remove(conn: &mut SqliteConnection, name: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM users WHERE name = ?")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("user", name));
    }
    sqlx::query("DELETE FROM rules WHERE subject_kind = 'user' AND subject_name = ?")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    super::rules::compact_positions(conn).await
}

/// Names of the teams the user belongs to, sorted.
pub async fn teams_of(conn: &mut SqliteConnection, user_id: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT t.name FROM teams t JOIN team_members m ON m.team_id = t.id
         WHERE m.user_id = ? ORDER BY t.name",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|r| r.get("name")).collect())
}
