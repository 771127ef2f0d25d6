//! Commit objects fetched from a pusher: checked against their name (sha256) and parsed
//! strictly (GVariant normal form) before anything else looks at them.

use ostree::glib;
use sha2::{Digest, Sha256};

pub const COMMIT_TYPE: &str = "(a{sv}aya(say)sstayay)";
/// Commit objects are small; anything bigger is hostile.
pub const MAX_COMMIT_SIZE: u64 = 16 << 20;
pub const MAX_COMMITMETA_SIZE: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub checksum: String,
    pub parent: Option<String>,
    pub timestamp: u64,
    pub subject: String,
    pub root_tree: String,
    pub root_meta: String,
    pub bytes: Vec<u8>,
    pub detached: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommitError {
    #[error("commit {expected}: content has checksum {actual} (corrupted or forged object)")]
    ChecksumMismatch { expected: String, actual: String },
    #[error("commit {0}: not a valid commit object")]
    Malformed(String),
    #[error("commit {0}: detached metadata is not a valid a{{sv}} dictionary")]
    BadDetached(String),
}

pub fn is_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Verifies `bytes` hash to `checksum` and parse as a commit in normal form.
pub fn parse(checksum: &str, bytes: Vec<u8>, detached: Option<Vec<u8>>) -> Result<CommitInfo, CommitError> {
    let actual = sha256_hex(&bytes);
    if actual != checksum {
        return Err(CommitError::ChecksumMismatch {
            expected: checksum.into(),
            actual,
        });
    }
    let malformed = || CommitError::Malformed(checksum.into());
    let ty = glib::VariantTy::new(COMMIT_TYPE).expect("valid type string");
    let variant = glib::Variant::from_bytes_with_type(&glib::Bytes::from(&bytes), ty);
    if !variant.is_normal_form() {
        return Err(malformed());
    }
    let csum = |index: usize, allow_empty: bool| -> Result<Option<String>, CommitError> {
        let child = variant.child_value(index);
        let raw = child.fixed_array::<u8>().map_err(|_| malformed())?;
        match raw.len() {
            0 if allow_empty => Ok(None),
            32 => Ok(Some(hex::encode(raw))),
            _ => Err(malformed()),
        }
    };
    let parent = csum(1, true)?;
    let root_tree = csum(6, false)?.ok_or_else(malformed)?;
    let root_meta = csum(7, false)?.ok_or_else(malformed)?;
    let subject = variant.child_value(3).str().unwrap_or_default().to_string();
    let timestamp = u64::from_be(variant.child_value(5).get::<u64>().ok_or_else(malformed)?);
    if let Some(meta) = &detached {
        let ty = glib::VariantTy::new("a{sv}").expect("valid type string");
        let v = glib::Variant::from_bytes_with_type(&glib::Bytes::from(meta), ty);
        if !v.is_normal_form() {
            return Err(CommitError::BadDetached(checksum.into()));
        }
    }
    Ok(CommitInfo {
        checksum: checksum.into(),
        parent,
        timestamp,
        subject,
        root_tree,
        root_meta,
        bytes,
        detached,
    })
}
