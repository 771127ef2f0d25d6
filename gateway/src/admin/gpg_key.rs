//! `ostree-gateway gpg-key …`

use anyhow::Context;

use super::{output, Admin};
use crate::cli::GpgKeyCmd;
use crate::gpg;
use crate::store::{gpg_keys, repos};

pub async fn run(admin: &Admin, cmd: GpgKeyCmd) -> anyhow::Result<()> {
    let mut conn = admin.store.conn().await?;
    match cmd {
        GpgKeyCmd::Add { repo, file } => {
            let repo = repos::get(&mut conn, &repo).await?;
            let data = if file.as_os_str() == "-" {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut data).context("cannot read stdin")?;
                data
            } else {
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?
            };
            let keys = tokio::task::spawn_blocking(move || gpg::read_public_keys(&data)).await??;
            let mut tx = admin.store.begin().await?;
            for key in &keys {
                let uids = key.user_ids.join("\n");
                gpg_keys::add(
                    &mut tx,
                    repo.id,
                    &key.fingerprint,
                    Some(uids.as_str()).filter(|s| !s.is_empty()),
                    &key.armored,
                )
                .await?;
            }
            tx.commit().await?;
            for key in &keys {
                println!(
                    "trusted GPG key {} ({}) for repo {}",
                    key.fingerprint,
                    key.user_ids.join(", "),
                    repo.name
                );
            }
        }
        GpgKeyCmd::List { repo, json } => {
            let repo = repos::get(&mut conn, &repo).await?;
            let list = gpg_keys::list(&mut conn, repo.id).await?;
            if json.json {
                return output::json(&list);
            }
            let rows = list
                .iter()
                .map(|k| {
                    vec![
                        k.fingerprint.clone(),
                        output::opt(&k.user_ids).replace('\n', "; "),
                        k.created_at.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(&["FINGERPRINT", "USER IDS", "ADDED"], &rows);
        }
        GpgKeyCmd::Remove { repo, fingerprint } => {
            let repo = repos::get(&mut conn, &repo).await?;
            gpg_keys::remove(&mut conn, repo.id, &fingerprint.to_uppercase()).await?;
            println!("removed GPG key {fingerprint} from repo {}", repo.name);
        }
    }
    Ok(())
}
