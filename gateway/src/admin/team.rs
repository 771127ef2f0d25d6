//! `ostree-gateway team …`

use super::{output, Admin};
use crate::cli::TeamCmd;
use crate::store::{teams, users};

pub async fn run(admin: &Admin, cmd: TeamCmd) -> anyhow::Result<()> {
    let mut conn = admin.store.conn().await?;
    match cmd {
        TeamCmd::Add { name } => {
            policy::validate_name("team", &name)?;
            teams::add(&mut conn, &name).await?;
            println!("added team {name}");
        }
        TeamCmd::List(flag) => {
            let list = teams::list(&mut conn).await?;
            if flag.json {
                return output::json(&list);
            }
            let rows = list
                .iter()
                .map(|t| {
                    let members = t
                        .members
                        .iter()
                        .map(|m| m.user.as_str())
                        .collect::<Vec<_>>()
                        .join(",");
                    vec![
                        t.name.clone(),
                        if members.is_empty() { "-".into() } else { members },
                        t.created_at.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(&["NAME", "MEMBERS", "CREATED"], &rows);
        }
        TeamCmd::Remove { name } => {
            let mut tx = admin.store.begin().await?;
            teams::remove(&mut tx, &name).await?;
            tx.commit().await?;
            println!("removed team {name}");
        }
        TeamCmd::AddMember { team, user } => {
            let u = users::get(&mut conn, &user).await?;
            teams::add_member(&mut conn, &team, u.id, &user).await?;
            println!("added {user} to team {team}");
        }
        TeamCmd::SetAdmin { team, user } => {
            let u = users::get(&mut conn, &user).await?;
            teams::set_member_admin(&mut conn, &team, u.id, &user, true).await?;
            println!("{user} is now an admin of team {team}");
        }
        TeamCmd::UnsetAdmin { team, user } => {
            let u = users::get(&mut conn, &user).await?;
            teams::set_member_admin(&mut conn, &team, u.id, &user, false).await?;
            println!("{user} is no longer an admin of team {team}");
        }
        TeamCmd::RemoveMember { team, user } => {
            let u = users::get(&mut conn, &user).await?;
            teams::remove_member(&mut conn, &team, u.id, &user).await?;
            println!("removed {user} from team {team}");
        }
    }
    Ok(())
}
