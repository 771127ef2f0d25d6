//! `ostree-gateway rule …`

use anyhow::bail;

use super::{output, Admin};
use crate::cli::{RuleAddArgs, RuleCmd};
use crate::store::rules::{self, NewRule, RuleRecord};
use crate::store::{teams, users};

pub async fn run(admin: &Admin, cmd: RuleCmd) -> anyhow::Result<()> {
    match cmd {
        RuleCmd::Add(args) => add(admin, args).await,
        RuleCmd::List { repo, json } => {
            let mut conn = admin.store.conn().await?;
            let mut list = rules::list(&mut conn).await?;
            if let Some(repo) = &repo {
                // Keep the rules that can apply to this repo name (for some user, when the
                // pattern names `{user}`).
                list.retain(|r| {
                    r.repo_pattern.contains("{user}")
                        || r.to_policy()
                            .map(|rule| rule.repo.matches(repo, ""))
                            .unwrap_or(true)
                });
            }
            if json.json {
                return output::json(&list);
            }
            let rows = list.iter().map(row).collect::<Vec<_>>();
            output::table(
                &[
                    "ID",
                    "POS",
                    "SUBJECT",
                    "EFFECT",
                    "OPS",
                    "REPO",
                    "REF",
                    "CONDITIONS",
                    "COMMENT",
                ],
                &rows,
            );
            Ok(())
        }
        RuleCmd::Remove { id } => {
            let mut tx = admin.store.begin().await?;
            rules::remove(&mut tx, id).await?;
            tx.commit().await?;
            println!("removed rule #{id}");
            Ok(())
        }
    }
}

async fn add(admin: &Admin, args: RuleAddArgs) -> anyhow::Result<()> {
    policy::Pattern::parse(&args.repo).map_err(|e| anyhow::anyhow!("invalid repo pattern: {e}"))?;
    policy::Pattern::parse(&args.ref_pattern).map_err(|e| anyhow::anyhow!("invalid ref pattern: {e}"))?;
    let (effect, ops) = match (&args.allow, &args.deny) {
        (Some(ops), None) => ("allow", ops),
        (None, Some(ops)) => ("deny", ops),
        _ => bail!("give exactly one of --allow OPS or --deny OPS"),
    };
    let ops = policy::OpSet::parse(ops)?;
    let mut tx = admin.store.begin().await?;
    let (subject_kind, subject_name) = if let Some(user) = args.user {
        users::get(&mut tx, &user).await?;
        ("user", Some(user))
    } else if let Some(team) = args.team {
        teams::get(&mut tx, &team).await?;
        ("team", Some(team))
    } else {
        ("everyone", None)
    };
    let new = NewRule {
        subject_kind: subject_kind.into(),
        subject_name,
        repo_pattern: args.repo,
        ref_pattern: args.ref_pattern,
        ops: ops.to_string(),
        effect: effect.into(),
        require_signature: args.require_signature,
        timestamp_check: !args.no_timestamp_check,
        comment: args.comment,
    };
    let rule = rules::add(&mut tx, &new, args.position).await?;
    tx.commit().await?;
    println!(
        "added rule #{} at position {}: {}",
        rule.id,
        rule.position,
        rule.to_policy()?
    );
    Ok(())
}

fn row(r: &RuleRecord) -> Vec<String> {
    let subject = match &r.subject_name {
        Some(name) => format!("{}:{name}", r.subject_kind),
        None => r.subject_kind.clone(),
    };
    let mut conditions = Vec::new();
    if r.require_signature {
        conditions.push("signed");
    }
    if !r.timestamp_check {
        conditions.push("any-timestamp");
    }
    vec![
        r.id.to_string(),
        r.position.to_string(),
        subject,
        r.effect.clone(),
        r.ops.clone(),
        r.repo_pattern.clone(),
        r.ref_pattern.clone(),
        if conditions.is_empty() {
            "-".into()
        } else {
            conditions.join(",")
        },
        output::opt(&r.comment),
    ]
}
