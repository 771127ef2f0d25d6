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
