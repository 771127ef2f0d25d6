//! `ostree-gateway user …`

use serde::Serialize;

use super::{output, Admin};
use crate::cli::UserCmd;
use crate::store::{keys, users, users::User};

#[derive(Serialize)]
struct UserDetail {
    #[serde(flatten)]
    user: User,
    teams: Vec<String>,
    keys: Vec<keys::SshKey>,
}

pub async fn run(admin: &Admin, cmd: UserCmd) -> anyhow::Result<()> {
    let mut conn = admin.store.conn().await?;
    match cmd {
        UserCmd::Add { name } => {
            policy::validate_name("user", &name)?;
            users::add(&mut conn, &name).await?;
            println!("added user {name}");
        }
        UserCmd::List(flag) => {
            let list = users::list(&mut conn).await?;
            if flag.json {
                return output::json(&list);
            }
            let rows = list
                .iter()
                .map(|u| {
                    vec![
                        u.name.clone(),
                        output::yes_no(u.disabled),
                        output::yes_no(u.is_admin),
                        u.created_at.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(&["NAME", "DISABLED", "ADMIN", "CREATED"], &rows);
        }
        UserCmd::Show { name, json } => {
            let user = users::get(&mut conn, &name).await?;
            let detail = UserDetail {
                teams: users::teams_of(&mut conn, user.id).await?,
                keys: keys::list(&mut conn, Some(&name)).await?,
                user,
            };
            if json.json {
                return output::json(&detail);
            }
            println!("name:     {}", detail.user.name);
            println!("disabled: {}", output::yes_no(detail.user.disabled));
            println!("admin:    {}", output::yes_no(detail.user.is_admin));
            println!("created:  {}", detail.user.created_at);
            println!(
                "teams:    {}",
                if detail.teams.is_empty() {
                    "-".into()
                } else {
                    detail.teams.join(", ")
                }
            );
            println!("keys:");
            for key in &detail.keys {
                println!(
                    "  {} {} {}",
                    key.fingerprint,
                    key.algorithm,
                    output::opt(&key.comment)
                );
            }
        }
        UserCmd::Disable { name } => {
            users::set_disabled(&mut conn, &name, true).await?;
            println!("disabled user {name}");
        }
        UserCmd::Enable { name } => {
            users::set_disabled(&mut conn, &name, false).await?;
            println!("enabled user {name}");
        }
        UserCmd::SetAdmin { name } => {
            users::set_admin(&mut conn, &name, true).await?;
            println!("{name} is now an admin");
        }
        UserCmd::UnsetAdmin { name } => {
            users::set_admin(&mut conn, &name, false).await?;
            println!("{name} is no longer an admin");
        }
        UserCmd::Remove { name } => {
            let mut tx = admin.store.begin().await?;
            users::remove(&mut tx, &name).await?;
            tx.commit().await?;
            println!("removed user {name}");
        }
    }
    Ok(())
}
