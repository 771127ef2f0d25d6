//! Teams and their members: the second kind of rule subject.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::{map_unique, now, Result, StoreError};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Member {
    pub user: String,
    pub is_admin: bool,
}

pub async fn add(conn: &mut SqliteConnection, name: &str) -> Result<i64> {
    let id = sqlx::query("INSERT INTO teams (name, created_at) VALUES (?, ?) RETURNING id")
        .bind(name)
        .bind(now())
        .fetch_one(conn)
        .await
        .map_err(map_unique("team", name))?
        .get("id");
    Ok(id)
}

async fn id_of(conn: &mut SqliteConnection, name: &str) -> Result<i64> {
    sqlx::query("SELECT id FROM teams WHERE name = ?")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .map(|r| r.get("id"))
        .ok_or_else(|| StoreError::not_found("team", name))
}

async fn members(conn: &mut SqliteConnection, team_id: i64) -> Result<Vec<Member>> {
    let rows = sqlx::query(
        "SELECT u.name, m.is_admin FROM team_members m JOIN users u ON u.id = m.user_id
         WHERE m.team_id = ? ORDER BY u.name",
    )
    .bind(team_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Member {
            user: r.get("name"),
            is_admin: r.get("is_admin"),
        })
        .collect())
}

pub async fn get(conn: &mut SqliteConnection, name: &str) -> Result<Team> {
    let row = sqlx::query("SELECT id, name, created_at FROM teams WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("team", name))?;
    let id: i64 = row.get("id");
    Ok(Team {
        id,
        name: row.get("name"),
        created_at: row.get("created_at"),
        members: members(conn, id).await?,
    })
}

pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<Team>> {
    let rows = sqlx::query("SELECT id, name, created_at FROM teams ORDER BY name")
        .fetch_all(&mut *conn)
        .await?;
    let mut teams = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.get("id");
        teams.push(Team {
            id,
            name: row.get("name"),
            created_at: row.get("created_at"),
            members: members(conn, id).await?,
        });
    }
    Ok(teams)
}

/// Removes the team, its memberships and the rules whose subject it is.
pub async fn remove(conn: &mut SqliteConnection, name: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM teams WHERE name = ?")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("team", name));
    }
    sqlx::query("DELETE FROM rules WHERE subject_kind = 'team' AND subject_name = ?")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    super::rules::compact_positions(conn).await
}

pub async fn add_member(conn: &mut SqliteConnection, team: &str, user_id: i64, user: &str) -> Result<()> {
    let team_id = id_of(conn, team).await?;
    sqlx::query("INSERT INTO team_members (team_id, user_id, added_at) VALUES (?, ?, ?)")
        .bind(team_id)
        .bind(user_id)
        .bind(now())
        .execute(conn)
        .await
        .map_err(|e| match map_unique("member", user)(e) {
            StoreError::Duplicate { .. } => {
                StoreError::Invalid(format!("user \"{user}\" is already a member of team \"{team}\""))
            }
            other => other,
        })?;
    Ok(())
}

pub async fn remove_member(conn: &mut SqliteConnection, team: &str, user_id: i64, user: &str) -> Result<()> {
    let team_id = id_of(conn, team).await?;
    let done = sqlx::query("DELETE FROM team_members WHERE team_id = ? AND user_id = ?")
        .bind(team_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!(
            "user \"{user}\" is not a member of team \"{team}\""
        )));
    }
    Ok(())
}

pub async fn set_member_admin(
    conn: &mut SqliteConnection,
    team: &str,
    user_id: i64,
    user: &str,
    admin: bool,
) -> Result<()> {
    let team_id = id_of(conn, team).await?;
    let done = sqlx::query("UPDATE team_members SET is_admin = ? WHERE team_id = ? AND user_id = ?")
        .bind(admin)
        .bind(team_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!(
            "user \"{user}\" is not a member of team \"{team}\""
        )));
    }
    Ok(())
}
