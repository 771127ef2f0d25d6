//! `ostree-gateway policy explain …`: the gateway's own decision function, run on the stored
//! rules for a hypothetical update, with the trace of every rule it looked at.

use policy::{Facts, Op, Request, SignatureStatus};

use super::{output, Admin};
use crate::cli::{PolicyCmd, SignatureArg};
use crate::store::{rules, users};

pub async fn run(admin: &Admin, cmd: PolicyCmd) -> anyhow::Result<()> {
    let PolicyCmd::Explain(args) = cmd;
    let op: Op = args.op.parse().map_err(|_| {
        anyhow::anyhow!(
            "invalid --op \"{}\": use create, update, force or delete",
            args.op
        )
    })?;
    policy::validate_ref_name(&args.ref_name)?;
    let mut conn = admin.store.conn().await?;
    let user = users::get(&mut conn, &args.user).await?;
    let teams = users::teams_of(&mut conn, user.id).await?;
    let rules = rules::list(&mut conn)
        .await?
        .iter()
        .map(|r| r.to_policy())
        .collect::<Result<Vec<_>, _>>()?;
    let assumed = "(assumed)".to_string();
    let signature = match args.signature {
        SignatureArg::Valid => SignatureStatus::Valid { fingerprint: assumed },
        SignatureArg::Unsigned => SignatureStatus::Unsigned,
        SignatureArg::Untrusted => SignatureStatus::UntrustedKey { fingerprint: assumed },
        SignatureArg::Expired => SignatureStatus::ExpiredKey { fingerprint: assumed },
        SignatureArg::Revoked => SignatureStatus::RevokedKey { fingerprint: assumed },
        SignatureArg::Invalid => SignatureStatus::Invalid {
            detail: "assumed bad signature".into(),
        },
        SignatureArg::Unchecked => SignatureStatus::NotChecked,
    };
    let request = Request {
        user: &user.name,
        teams: &teams,
        repo: &args.repo,
        ref_name: &args.ref_name,
        op,
        facts: Facts {
            signature,
            old_timestamp: args.old_timestamp,
            new_timestamp: args.new_timestamp,
        },
    };
    let decision = policy::decide(&rules, &request);
    if user.disabled {
        println!(
            "note: user {} is disabled: every push is refused at login",
            user.name
        );
    }
    if args.json.json {
        return output::json(&decision);
    }
    print!("{}", decision.explain());
    if !decision.explain().ends_with('\n') {
        println!();
    }
    Ok(())
}
