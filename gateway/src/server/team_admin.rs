//! What a team admin (a member marked `team set-admin`) may do over SSH: read commands, manage
//! the members of the teams they administer, and add or remove rules whose subject is one of
//! those teams — never granting more than they hold themselves: an allow rule must be covered
//! by an existing allow rule that applies to the team admin, for the same repo pattern, a ref
//! pattern inside it, a subset of its operations, and no weaker signature requirement. Deny
//! rules (restrictions) for their teams are always fine.

use clap::Parser;

use crate::cli::{Cli, Command, RuleCmd, TeamCmd};
use crate::store::rules::RuleRecord;
use crate::store::{rules, users, Store};

/// `Ok(())` when `user` (not a full admin) may run `words`; otherwise the reason.
pub async fn authorize(store: &Store, user: &str, words: &[String]) -> Result<(), String> {
    let cli = Cli::try_parse_from(std::iter::once("ostree-gateway".to_string()).chain(words.iter().cloned()))
        .map_err(|e| {
            e.to_string()
                .lines()
                .next()
                .unwrap_or("invalid command")
                .to_string()
        })?;
    let mut conn = store.conn().await.map_err(|e| e.to_string())?;
    let me = users::get(&mut conn, user).await.map_err(|e| e.to_string())?;
    let administered = admin_teams(&mut conn, me.id).await?;
    if administered.is_empty() {
        return Err(format!(
            "user \"{user}\" is not an admin: admin commands are refused"
        ));
    }
    let team_ok = |team: &str| {
        if administered.iter().any(|t| t == team) {
            Ok(())
        } else {
            Err(format!(
                "you administer team(s) {} only, not \"{team}\"",
                administered.join(", ")
            ))
        }
    };
    match cli.command {
        Command::User(crate::cli::UserCmd::List(_))
        | Command::User(crate::cli::UserCmd::Show { .. })
        | Command::Team(TeamCmd::List(_))
        | Command::Rule(RuleCmd::List { .. })
        | Command::Policy(_) => Ok(()),
        Command::Team(TeamCmd::AddMember { team, .. })
        | Command::Team(TeamCmd::RemoveMember { team, .. }) => team_ok(&team),
        Command::Rule(RuleCmd::Remove { id }) => {
            let rule = rules::get(&mut conn, id).await.map_err(|e| e.to_string())?;
            match (rule.subject_kind.as_str(), &rule.subject_name) {
                ("team", Some(team)) => team_ok(team),
                _ => Err(format!("rule #{id} is not a rule of a team you administer")),
            }
        }
        Command::Rule(RuleCmd::Add(args)) => {
            let team = args
                .team
                .clone()
                .ok_or("team admins add rules for their teams only (--team)")?;
            team_ok(&team)?;
            if args.position.is_some() {
                return Err("team admins cannot place rules (--position): their rules go last".into());
            }
            let Some(ops) = &args.allow else { return Ok(()) }; // a deny only restricts
            let ops = policy::OpSet::parse(ops).map_err(|e| e.to_string())?;
            let teams = users::teams_of(&mut conn, me.id)
                .await
                .map_err(|e| e.to_string())?;
            let held = rules::list(&mut conn).await.map_err(|e| e.to_string())?;
            let covered = held.iter().any(|r| {
                covers(
                    r,
                    user,
                    &teams,
                    &args.repo,
                    &args.ref_pattern,
                    ops,
                    args.require_signature,
                    !args.no_timestamp_check,
                )
            });
            if covered {
                Ok(())
            } else {
                Err(format!(
                    "you cannot grant more than you hold: no allow rule gives you {ops} on ref \"{}\" in repo \"{}\"",
                    args.ref_pattern, args.repo
                ))
            }
        }
        _ => Err("team admins may list, manage their teams' members and their teams' rules only".into()),
    }
}

async fn admin_teams(conn: &mut sqlx::SqliteConnection, user_id: i64) -> Result<Vec<String>, String> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT t.name FROM teams t JOIN team_members m ON m.team_id = t.id
         WHERE m.user_id = ? AND m.is_admin = 1 ORDER BY t.name",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|r| r.get("name")).collect())
}

/// Whether `held` (an allow rule applying to the admin) covers the requested grant.
#[allow(clippy::too_many_arguments)]
fn covers(
    held: &RuleRecord,
    user: &str,
    teams: &[String],
    repo: &str,
    refs: &str,
    ops: policy::OpSet,
    require_signature: bool,
    timestamp_check: bool,
) -> bool {
    let applies = match (held.subject_kind.as_str(), &held.subject_name) {
        ("everyone", _) => true,
        ("user", Some(name)) => name == user,
        ("team", Some(team)) => teams.contains(team),
        _ => false,
    };
    let held_ops = policy::OpSet::parse(&held.ops).unwrap_or(policy::OpSet::EMPTY);
    applies
        && held.effect == "allow"
        && held.repo_pattern == repo
        && ref_within(&held.ref_pattern, refs)
        && ops.iter().all(|op| held_ops.contains(op))
        && (require_signature || !held.require_signature)
        && (timestamp_check || !held.timestamp_check)
}

/// Conservative containment: equal patterns, or `held` is `PREFIX/**` and `requested` is
/// a pattern under `PREFIX/` (so everything it matches, `held` matches).
fn ref_within(held: &str, requested: &str) -> bool {
    if held == requested || held == "**" {
        return true;
    }
    match held.strip_suffix("/**") {
        Some(prefix) if !prefix.contains(['*', '?', '{']) => requested.starts_with(&format!("{prefix}/")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::ref_within;

    #[test]
    fn containment_is_conservative() {
        assert!(ref_within("app/**", "app/org.example.*/**"));
        assert!(ref_within("app/**", "app/x"));
        assert!(ref_within("**", "anything/**"));
        assert!(ref_within("app/x", "app/x"));
        assert!(!ref_within("app/**", "application/x"));
        assert!(!ref_within("app/*", "app/x/y"));
        assert!(!ref_within("app/*/stable", "app/x/stable"));
        assert!(!ref_within("users/{user}/**", "users/bob/x"));
    }
}
