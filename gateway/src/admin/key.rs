//! `ostree-gateway key …`

use std::io::Read;

use anyhow::{bail, Context};

use super::{output, Admin};
use crate::authorized_keys;
use crate::cli::KeyCmd;
use crate::store::{keys, users};

pub async fn run(admin: &Admin, cmd: KeyCmd) -> anyhow::Result<()> {
    let mut conn = admin.store.conn().await?;
    match cmd {
        KeyCmd::Add { user, file } => {
            let text = match file {
                Some(path) if path.as_os_str() != "-" => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                _ => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("cannot read stdin")?;
                    text
                }
            };
            let parsed = match authorized_keys::parse(&text) {
                Ok(keys) => keys,
                Err(e) => bail!(e),
            };
            let mut tx = admin.store.begin().await?;
            let owner = users::get(&mut tx, &user).await?;
            for key in &parsed {
                if let Some(existing) = keys::find_by_fingerprint(&mut tx, &key.fingerprint).await? {
                    bail!(
                        "key {} is already registered to user \"{}\"",
                        key.fingerprint,
                        existing.user
                    );
                }
                keys::add(&mut tx, owner.id, key).await?;
            }
            tx.commit().await?;
            for key in &parsed {
                println!("added key {} ({}) to user {user}", key.fingerprint, key.algorithm);
            }
        }
        KeyCmd::List { user, json } => {
            if let Some(name) = &user {
                users::get(&mut conn, name).await?;
            }
            let list = keys::list(&mut conn, user.as_deref()).await?;
            if json.json {
                return output::json(&list);
            }
            let rows = list
                .iter()
                .map(|k| {
                    vec![
                        k.user.clone(),
                        k.fingerprint.clone(),
                        k.algorithm.clone(),
                        output::opt(&k.last_used_at),
                        output::opt(&k.comment),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(&["USER", "FINGERPRINT", "TYPE", "LAST USED", "COMMENT"], &rows);
        }
        KeyCmd::Remove { fingerprint } => {
            keys::remove(&mut conn, &fingerprint).await?;
            println!("removed key {fingerprint}");
        }
    }
    Ok(())
}
