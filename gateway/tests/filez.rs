//! Our `.filez` checksum against libostree's, on objects libostree wrote: regular files of
//! several sizes and modes, an empty file, symlinks. Then every single-byte corruption and
//! truncation of a real object is refused or named differently, never accepted as the original.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ostree_gateway::receive::filez;
use proptest::prelude::*;

fn ostree(repo: &Path, args: &[&str]) {
    let status = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(args)
        .status()
        .expect("ostree");
    assert!(status.success(), "ostree {args:?}");
}

/// An archive repo with one commit of a varied tree; its `.filez` paths.
fn repo_with_objects(dir: &Path) -> Vec<PathBuf> {
    let repo = dir.join("repo");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::write(tree.join("empty"), b"").unwrap();
    std::fs::write(tree.join("small.txt"), b"hello\n").unwrap();
    let mut x = 12345u32;
    let big: Vec<u8> = (0..1_500_000)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(tree.join("sub/big.bin"), &big).unwrap();
    std::fs::write(tree.join("sub/deeper/text"), "line\n".repeat(40_000)).unwrap();
    std::fs::write(tree.join("run.sh"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(tree.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(tree.join("small.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("small.txt", tree.join("link")).unwrap();
    std::os::unix::fs::symlink("/nowhere/at/all", tree.join("sub/dangling")).unwrap();
    ostree(&repo, &["init", "--mode=archive"]);
    ostree(
        &repo,
        &[
            "commit",
            "--branch=t",
            "--subject=s",
            &format!("--tree=dir={}", tree.display()),
        ],
    );
    let mut out = Vec::new();
    for d in std::fs::read_dir(repo.join("objects")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "filez") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The objects of one such repo, built once for all tests: (name, bytes).
fn objects() -> &'static [(String, Vec<u8>)] {
    static OBJECTS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    OBJECTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        repo_with_objects(dir.path())
            .iter()
            .map(|p| (name_of(p), std::fs::read(p).unwrap()))
            .collect()
    })
}

/// Header and inflated content of a `.filez`, as libostree reads them. A symlink has no
/// content, and libostree ignores the size field of its header (bytes 8..16).
fn decoded(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use std::io::Read;
    let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
    let body = &data[8 + size..];
    let mut header = data[..8 + size].to_vec();
    let mut content = Vec::new();
    if body.is_empty() {
        header[8..16].fill(0);
    } else {
        flate2::read::DeflateDecoder::new(body)
            .read_to_end(&mut content)
            .unwrap();
    }
    (header, content)
}

fn name_of(path: &Path) -> String {
    let dir = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    dir + path.file_stem().unwrap().to_string_lossy().as_ref()
}

#[test]
fn matches_libostree_on_every_object_it_wrote() {
    let sizes: Vec<usize> = objects().iter().map(|(_, d)| d.len()).collect();
    // 5 regular files and 2 symlinks, one of them with over a megabyte of content.
    assert_eq!(sizes.len(), 7, "{sizes:?}");
    assert!(sizes.iter().any(|s| *s > 1_000_000), "{sizes:?}");
    for (name, data) in objects() {
        assert_eq!(filez::checksum(data).as_deref(), Ok(name.as_str()));
    }
}

#[test]
fn trailing_bytes_and_truncation_are_refused() {
    for (name, data) in objects() {
        let mut longer = data.clone();
        longer.push(0);
        assert!(filez::checksum(&longer).is_err(), "{name} with a trailing byte");
        for cut in [1, 4, 8, data.len() / 2, data.len() - 1] {
            if cut < data.len() {
                assert!(filez::checksum(&data[..cut]).is_err(), "{name} cut at {cut}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Flipping any bit of a real object never yields the original name (nor a panic) unless
    /// the object still reads the same: the padding bits after deflate's last code and a
    /// symlink's size field are ignored by libostree too.
    #[test]
    fn a_flipped_bit_never_keeps_the_name(which in 0usize..8, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (name, original) = &objects()[which % objects().len()];
        let mut data = original.clone();
        let i = at.index(data.len());
        data[i] ^= 1 << bit;
        if let Ok(sum) = filez::checksum(&data) {
            if &sum == name {
                prop_assert_eq!(decoded(&data), decoded(original));
            }
        }
    }
}
