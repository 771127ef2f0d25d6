//! Commit objects from a pusher (`ostree_gateway::receive::commit::parse`): arbitrary bytes
//! named by their own sha256. Never panics; accepts only GVariant normal form; a wrong name
//! is always a checksum mismatch. Input: `flag byte, commit bytes [, 0xff 0xfe, detached]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ostree::glib;
use ostree_gateway::receive::commit::{self, CommitError, COMMIT_TYPE};
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let (bytes, detached) = if flag & 1 == 1 {
        match rest.windows(2).position(|w| w == [0xff, 0xfe]) {
            Some(i) => (&rest[..i], Some(rest[i + 2..].to_vec())),
            None => (rest, Some(Vec::new())),
        }
    } else {
        (rest, None)
    };
    let checksum = hex::encode(Sha256::digest(bytes));
    match commit::parse(&checksum, bytes.to_vec(), detached.clone()) {
        Ok(info) => {
            assert_eq!(info.checksum, checksum);
            assert_eq!(info.bytes, bytes);
            let ty = glib::VariantTy::new(COMMIT_TYPE).unwrap();
            let v = glib::Variant::from_bytes_with_type(&glib::Bytes::from(bytes), ty);
            assert_eq!(
                v.normal_form().data(),
                bytes,
                "accepted a commit not in normal form"
            );
            for c in [Some(&info.root_tree), Some(&info.root_meta), info.parent.as_ref()]
                .into_iter()
                .flatten()
            {
                assert!(commit::is_checksum(c), "{c}");
            }
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(!matches!(e, CommitError::ChecksumMismatch { .. }));
        }
    }
    // Any other name: always refused as a mismatch.
    let mut wrong = checksum.into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    assert!(matches!(
        commit::parse(&wrong, bytes.to_vec(), detached),
        Err(CommitError::ChecksumMismatch { .. })
    ));
});
