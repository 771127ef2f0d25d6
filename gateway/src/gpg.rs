//! GnuPG through gpgme, always in a private throw-away home so the operator's own keyrings
//! never influence what the gateway trusts.

use anyhow::{bail, Context as _};
use gpgme::{Context, ExportMode, Protocol};

/// A public key found in admin input, normalised to its own armored export.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub fingerprint: String,
    pub user_ids: Vec<String>,
    pub armored: String,
}

/// A gpgme context bound to a fresh temporary GnuPG home (deleted on drop).
pub struct Scratch {
    pub ctx: Context,
    _home: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> anyhow::Result<Scratch> {
        let home = tempfile::Builder::new().prefix("ostree-gateway-gpg-").tempdir()?;
        let mut ctx = Context::from_protocol(Protocol::OpenPgp).context("cannot start gpgme")?;
        ctx.set_engine_home_dir(home.path().to_string_lossy().as_ref())
            .context("cannot set GnuPG home")?;
        Ok(Scratch { ctx, _home: home })
    }
}

/// Reads every public key in `data` (armored or binary). Secret keys are refused outright:
/// the gateway must never hold signing material that an admin pasted by mistake.
pub fn read_public_keys(data: &[u8]) -> anyhow::Result<Vec<PublicKey>> {
    if data.windows(18).any(|w| w == b"PRIVATE KEY BLOCK-") {
        bail!("the file holds a PRIVATE key: give the public key only (gpg --export --armor FPR)");
    }
    let mut scratch = Scratch::new()?;
    let result = scratch.ctx.import(data).context("not an OpenPGP key")?;
    if result.secret_imported() > 0 || result.secret_considered() > 0 {
        bail!("the file holds a PRIVATE key: give the public key only (gpg --export --armor FPR)");
    }
    let mut fingerprints: Vec<String> = result
        .imports()
        .filter_map(|i| i.fingerprint().ok().map(str::to_string))
        .collect();
    fingerprints.sort();
    fingerprints.dedup();
    if fingerprints.is_empty() {
        bail!("no OpenPGP public key found");
    }
    scratch.ctx.set_armor(true);
    let mut keys = Vec::new();
    for fingerprint in fingerprints {
        let key = scratch.ctx.get_key(fingerprint.as_str())?;
        let user_ids = key
            .user_ids()
            .filter_map(|u| u.id().ok().map(str::to_string))
            .collect();
        let mut armored = Vec::new();
        scratch
            .ctx
            .export_keys([&key], ExportMode::empty(), &mut armored)?;
        keys.push(PublicKey {
            fingerprint,
            user_ids,
            armored: String::from_utf8(armored)?,
        });
    }
    Ok(keys)
}

/// The signature facts of a commit for the policy: signatures are read from the commit's
/// detached metadata (`ostree.gpgsigs`, each element one OpenPGP signature over the raw commit
/// object bytes) and checked against the repo's trusted keys only.
pub fn verify_commit(
    trusted_armored: &[String],
    commit: &[u8],
    detached: Option<&[u8]>,
) -> policy::SignatureStatus {
    use policy::SignatureStatus;
    let signatures = match detached.map(signatures_of).transpose() {
        Ok(Some(sigs)) if !sigs.is_empty() => sigs,
        Ok(_) => return SignatureStatus::Unsigned,
        Err(detail) => return SignatureStatus::Invalid { detail },
    };
    let mut scratch = match Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            return SignatureStatus::Invalid {
                detail: format!("cannot run GnuPG: {e}"),
            }
        }
    };
    for key in trusted_armored {
        if let Err(e) = scratch.ctx.import(key.as_bytes()) {
            tracing::warn!(error = %e, "cannot load a trusted key");
        }
    }
    let mut best: Option<SignatureStatus> = None;
    for signature in &signatures {
        let result = match scratch.ctx.verify_detached(&signature[..], commit) {
            Ok(result) => result,
            Err(e) => {
                keep_best(
                    &mut best,
                    SignatureStatus::Invalid {
                        detail: e.to_string(),
                    },
                );
                continue;
            }
        };
        for sig in result.signatures() {
            let status = classify(&sig);
            if matches!(status, SignatureStatus::Valid { .. }) {
                return status;
            }
            keep_best(&mut best, status);
        }
    }
    best.unwrap_or(SignatureStatus::Unsigned)
}

/// Whether `signatures` (a repo's `summary.sig`) hold a good signature over `summary` by `key`,
/// the summary signing key in the GnuPG home `homedir`. Only the key's public part is taken
/// from that home; the check runs in a scratch home like a commit's.
pub fn summary_signed_by(
    homedir: &std::path::Path,
    key: &str,
    summary: &[u8],
    signatures: &[u8],
) -> anyhow::Result<bool> {
    let mut ctx = Context::from_protocol(Protocol::OpenPgp).context("cannot start gpgme")?;
    ctx.set_engine_home_dir(homedir.to_string_lossy().as_ref())
        .context("cannot set GnuPG home")?;
    ctx.set_armor(true);
    let found = ctx
        .get_key(key)
        .with_context(|| format!("no key {key} in {}", homedir.display()))?;
    let mut armored = Vec::new();
    ctx.export_keys([&found], ExportMode::empty(), &mut armored)?;
    // summary.sig has the layout of a commit's detached metadata (`ostree.gpgsigs`).
    let status = verify_commit(&[String::from_utf8(armored)?], summary, Some(signatures));
    Ok(matches!(status, policy::SignatureStatus::Valid { .. }))
}

fn classify(sig: &gpgme::results::Signature<'_>) -> policy::SignatureStatus {
    use gpgme::SignatureSummary as S;
    use policy::SignatureStatus;
    let fingerprint = sig.fingerprint().unwrap_or("unknown").to_string();
    let summary = sig.summary();
    match sig.status() {
        _ if summary.contains(S::KEY_REVOKED) => SignatureStatus::RevokedKey { fingerprint },
        _ if summary.contains(S::KEY_EXPIRED) => SignatureStatus::ExpiredKey { fingerprint },
        _ if summary.contains(S::KEY_MISSING) => SignatureStatus::UntrustedKey { fingerprint },
        Err(e) if e.code() == gpgme::Error::NO_PUBKEY.code() => SignatureStatus::UntrustedKey { fingerprint },
        Err(e) if e.code() == gpgme::Error::CERT_REVOKED.code() => {
            SignatureStatus::RevokedKey { fingerprint }
        }
        Err(e) if e.code() == gpgme::Error::KEY_EXPIRED.code() => SignatureStatus::ExpiredKey { fingerprint },
        _ if summary.contains(S::SIG_EXPIRED) => SignatureStatus::Invalid {
            detail: format!("signature by {fingerprint} has expired"),
        },
        // A good signature by a key of the scratch keyring, which holds only trusted keys.
        Ok(()) => SignatureStatus::Valid { fingerprint },
        Err(e) => SignatureStatus::Invalid {
            detail: format!("signature by {fingerprint}: {e}"),
        },
    }
}

/// Keeps the most telling failure: key problems say more than "bad signature".
fn keep_best(best: &mut Option<policy::SignatureStatus>, candidate: policy::SignatureStatus) {
    use policy::SignatureStatus as S;
    let rank = |s: &S| match s {
        S::Valid { .. } => 5,
        S::RevokedKey { .. } | S::ExpiredKey { .. } => 4,
        S::UntrustedKey { .. } => 3,
        S::Invalid { .. } => 2,
        _ => 1,
    };
    if best.as_ref().is_none_or(|b| rank(&candidate) > rank(b)) {
        *best = Some(candidate);
    }
}

/// The `ostree.gpgsigs` entries of a detached-metadata a{sv}.
fn signatures_of(detached: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use ostree::glib;
    let ty = glib::VariantTy::new("a{sv}").expect("valid type");
    let dict = glib::Variant::from_bytes_with_type(&glib::Bytes::from(detached), ty);
    if !dict.is_normal_form() {
        return Err("detached metadata is malformed".into());
    }
    let aay = glib::VariantTy::new("aay").expect("valid type");
    let Some(sigs) = glib::VariantDict::new(Some(&dict)).lookup_value("ostree.gpgsigs", Some(aay)) else {
        return Ok(Vec::new());
    };
    Ok(sigs
        .iter()
        .map(|s| s.fixed_array::<u8>().map(<[u8]>::to_vec).unwrap_or_default())
        .collect())
}
