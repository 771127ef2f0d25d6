//! What a team admin (a member marked `team set-admin`) may do over SSH: read commands, manage
//! the members of the teams they administer, and add or remove rules whose subject is one of
//! those teams — never granting more than they hold themselves (`policy::check_grant`): an
//! allow rule must be contained in an allow rule that applies to the team admin (repo and ref
//! patterns compared as languages, a subset of its operations, no weaker conditions) that no
//! earlier rule applying to them (a deny, a stricter allow) cuts into. Deny rules
//! (restrictions) for their teams are always fine.

use clap::Parser;

use crate::cli::{Cli, Command, RuleCmd, TeamCmd};
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
            let grant = policy::Grant {
                repo: &policy::Pattern::parse(&args.repo).map_err(|e| e.to_string())?,
                refs: &policy::Pattern::parse(&args.ref_pattern).map_err(|e| e.to_string())?,
                ops: policy::OpSet::parse(ops).map_err(|e| e.to_string())?,
                require_signature: args.require_signature,
                timestamp_check: !args.no_timestamp_check,
            };
            let teams = users::teams_of(&mut conn, me.id)
                .await
                .map_err(|e| e.to_string())?;
            let held = rules::list(&mut conn)
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .map(|r| r.to_policy())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            policy::check_grant(&held, user, &teams, &grant)
                .map(|_| ())
                .map_err(|refusal| format!("you cannot grant more than you hold: {refusal}"))
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
