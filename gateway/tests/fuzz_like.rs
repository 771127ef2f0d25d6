//! Bounded randomized ("fuzz-like") tests of the gateway's parsers of untrusted input, run on
//! stable in `make test`. They mirror the cargo-fuzz targets `command_line` and
//! `commit_object` in `fuzz/` (longer campaigns: docs/FUZZING.md): arbitrary input never
//! panics, and what is accepted satisfies the parser's contract.

use ostree::glib;
use ostree::glib::prelude::*;
use ostree_gateway::command::{parse, split_words, Command, CommandError, EXIT_UNKNOWN_COMMAND};
use ostree_gateway::receive::commit::{self, CommitError, COMMIT_TYPE};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// `cases` per property; `FUZZ_LIKE_CASES=N` runs N instead (longer campaigns).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("FUZZ_LIKE_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        // Failures print their minimal input; no regression files beside the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// command_line: ostree_gateway::command::parse

/// The contract of `parse`, checked on any input.
fn check_command(data: &[u8]) {
    let result = parse(data);
    if let Err(e) = &result {
        let _ = e.to_string();
        let _ = e.exit_status();
    }
    let Ok(line) = std::str::from_utf8(data) else {
        assert!(matches!(result, Err(CommandError::Unknown(_))), "{result:?}");
        return;
    };
    let program = split_words(line)
        .ok()
        .and_then(|w| w.first().map(|p| p.rsplit('/').next().unwrap_or(p).to_string()));
    let receive = matches!(program.as_deref(), Some("ostree-receive-1" | "ostree-receive"));
    let native = program.as_deref() == Some(wire::COMMAND);
    match &result {
        Ok(Command::Receive(args)) => {
            assert!(receive, "accepted {line:?} as a receive command");
            assert!(!line.contains('\0'));
            let words = split_words(line).unwrap();
            assert!(words.len() >= 3, "REPO and URL are required: {line:?}");
            assert!(args.refs.len() <= words.len() - 3);
        }
        Ok(Command::Native) => {
            assert!(native, "accepted {line:?} as the native command");
            assert_eq!(split_words(line).unwrap().len(), 1);
        }
        Err(e) if e.exit_status() == EXIT_UNKNOWN_COMMAND => {
            assert!(!(receive || native) || line.contains('\0'), "{line:?}: {e}");
        }
        Err(CommandError::Help) => assert!(receive, "{line:?}"),
        Err(_) => {}
    }
}

const PROGRAMS: &[&str] = &[
    "ostree-receive-1",
    "ostree-receive",
    "ostree-gateway-receive",
    "/usr/bin/ostree-receive-1",
    "./ostree-receive",
    "'ostree-receive-1'",
    "\"ostree-gateway-receive\"",
    "ostree-receive-2",
    "ostree-receive-1x",
    "xostree-receive",
    "OSTREE-RECEIVE-1",
    "ostree-gateway-receive2",
    "ostree-receive-1/",
    "bash",
    "sh -c",
    "scp",
    "",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        "-[a-z]{1,4}",
        "--[a-z-]{1,10}",
        Just("--".to_string()),
        Just("-".to_string()),
        Just("--repo=/x".to_string()),
        "[\\\\'\" \t]{1,4}",
        any::<String>(),
    ]
}

/// Safe positional words: no leading '-', no quotes or spaces.
fn plain() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_./:][A-Za-z0-9_./:@-]{0,15}"
}

fn quote(word: &str, how: u8) -> String {
    match how % 3 {
        0 => word.to_string(),
        1 => format!("'{word}'"),
        _ => format!("\"{word}\""),
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn command_line_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..160)) {
        check_command(&data);
    }

    #[test]
    fn command_line_near_misses(
        program in prop::sample::select(PROGRAMS),
        words in prop::collection::vec(word(), 0..6),
        sep in prop::sample::select(vec![" ", "  ", "\t", " \n "]),
    ) {
        let mut line = program.to_string();
        for w in &words {
            line.push_str(sep);
            line.push_str(w);
        }
        check_command(line.as_bytes());
    }

    /// Well-formed receive commands (quoted or not) parse to exactly what was sent.
    #[test]
    fn command_line_round_trip(
        program in prop::sample::select(&["ostree-receive-1", "ostree-receive", "/usr/bin/ostree-receive-1"][..]),
        flags in prop::sample::subsequence(&["-n", "-f", "--no-update", "-q"][..], 0..=4),
        repo in plain(),
        url in plain(),
        refs in prop::collection::vec(plain(), 0..5),
        quoting in prop::collection::vec(any::<u8>(), 8),
    ) {
        let mut line = program.to_string();
        for f in &flags {
            line.push(' ');
            line.push_str(f);
        }
        let positional: Vec<&String> = std::iter::once(&repo).chain([&url]).chain(&refs).collect();
        for (i, w) in positional.iter().enumerate() {
            line.push(' ');
            line.push_str(&quote(w, quoting[i % quoting.len()]));
        }
        check_command(line.as_bytes());
        let Ok(Command::Receive(args)) = parse(line.as_bytes()) else {
            panic!("{line:?} was refused: {:?}", parse(line.as_bytes()));
        };
        prop_assert_eq!(&args.repo, &repo);
        prop_assert_eq!(&args.url, &url);
        prop_assert_eq!(&args.refs, &refs);
        prop_assert_eq!(args.dry_run, flags.contains(&"-n"));
        prop_assert_eq!(args.force, flags.contains(&"-f"));
        prop_assert_eq!(args.no_update, flags.contains(&"--no-update"));
    }
}

// ---------------------------------------------------------------------------------------
// commit_object: ostree_gateway::receive::commit::parse

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn commit_type() -> &'static glib::VariantTy {
    glib::VariantTy::new(COMMIT_TYPE).unwrap()
}

/// The contract of `commit::parse` for `bytes` named by their own sha256.
fn check_commit(bytes: &[u8], detached: Option<Vec<u8>>) -> Option<commit::CommitInfo> {
    let checksum = sha256_hex(bytes);
    let result = commit::parse(&checksum, bytes.to_vec(), detached.clone());
    let accepted = match result {
        Ok(info) => {
            assert_eq!(info.checksum, checksum);
            assert_eq!(info.bytes, bytes);
            assert_eq!(info.detached, detached);
            let v = glib::Variant::from_bytes_with_type(&glib::Bytes::from(bytes), commit_type());
            assert_eq!(
                v.normal_form().data(),
                bytes,
                "accepted a commit not in normal form"
            );
            if let Some(meta) = &detached {
                let ty = glib::VariantTy::new("a{sv}").unwrap();
                let m = glib::Variant::from_bytes_with_type(&glib::Bytes::from(meta), ty);
                assert_eq!(
                    m.normal_form().data(),
                    &meta[..],
                    "detached metadata not in normal form"
                );
            }
            for c in [Some(&info.root_tree), Some(&info.root_meta), info.parent.as_ref()]
                .into_iter()
                .flatten()
            {
                assert!(commit::is_checksum(c), "{c}");
            }
            Some(info)
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(!matches!(e, CommitError::ChecksumMismatch { .. }), "{e}");
            None
        }
    };
    // Any other name is a mismatch, whatever the bytes.
    let mut wrong = checksum.into_bytes();
    wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    assert!(matches!(
        commit::parse(&wrong, bytes.to_vec(), detached),
        Err(CommitError::ChecksumMismatch { .. })
    ));
    accepted
}

#[derive(Debug, Clone)]
struct CommitParts {
    meta: Vec<(String, String)>,
    parent: Vec<u8>,
    subject: String,
    body: String,
    timestamp: u64,
    root_tree: Vec<u8>,
    root_meta: Vec<u8>,
}

impl CommitParts {
    fn serialize(&self) -> Vec<u8> {
        let dict = glib::VariantDict::new(None);
        for (k, v) in &self.meta {
            dict.insert(k, v);
        }
        let related = glib::Variant::array_from_iter_with_type(
            glib::VariantTy::new("(say)").unwrap(),
            std::iter::empty::<glib::Variant>(),
        );
        let v = glib::Variant::tuple_from_iter([
            dict.end(),
            glib::Variant::array_from_fixed_array(&self.parent),
            related,
            self.subject.to_variant(),
            self.body.to_variant(),
            self.timestamp.to_be().to_variant(),
            glib::Variant::array_from_fixed_array(&self.root_tree),
            glib::Variant::array_from_fixed_array(&self.root_meta),
        ]);
        assert_eq!(v.type_().as_str(), COMMIT_TYPE);
        v.data().to_vec()
    }
}

fn commit_parts() -> impl Strategy<Value = CommitParts> {
    (
        prop::collection::vec(("[a-z.]{1,12}", any::<String>()), 0..4),
        prop_oneof![
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 32),
            prop::collection::vec(any::<u8>(), 0..40),
        ],
        any::<String>(),
        "[ -~]{0,40}",
        any::<u64>(),
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 32),
            1 => prop::collection::vec(any::<u8>(), 0..40),
        ],
        prop::collection::vec(any::<u8>(), 32),
    )
        .prop_map(
            |(meta, parent, subject, body, timestamp, root_tree, root_meta)| CommitParts {
                meta,
                parent,
                subject,
                body,
                timestamp,
                root_tree,
                root_meta,
            },
        )
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn commit_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        detached in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    ) {
        check_commit(&bytes, detached);
    }

    /// Real commits (as libostree lays them out) parse to their fields; checksums of the
    /// wrong length are refused.
    #[test]
    fn commit_well_formed(parts in commit_parts()) {
        let bytes = parts.serialize();
        let info = check_commit(&bytes, None);
        let lengths_ok = matches!(parts.parent.len(), 0 | 32)
            && parts.root_tree.len() == 32
            && parts.root_meta.len() == 32;
        prop_assert_eq!(info.is_some(), lengths_ok, "{:?}", parts);
        if let Some(info) = info {
            prop_assert_eq!(info.parent, (!parts.parent.is_empty()).then(|| hex::encode(&parts.parent)));
            prop_assert_eq!(info.root_tree, hex::encode(&parts.root_tree));
            prop_assert_eq!(info.root_meta, hex::encode(&parts.root_meta));
            prop_assert_eq!(info.timestamp, parts.timestamp);
            prop_assert_eq!(info.subject, parts.subject);
        }
    }

    /// Damaged commits (a byte changed, cut short, or extended) never panic, and whatever is
    /// still accepted is in normal form.
    #[test]
    fn commit_mutated(
        parts in commit_parts(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0u8..3,
        tail in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let mut bytes = parts.serialize();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] ^= byte | 1,
                1 => bytes.truncate(i),
                _ => {
                    bytes.splice(i..i, tail);
                }
            };
        }
        check_commit(&bytes, None);
    }

    /// Detached metadata: accepted only as an a{sv} in normal form.
    #[test]
    fn commit_detached_metadata(
        parts in commit_parts(),
        meta in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(("[a-z]{1,8}", any::<String>()), 0..3).prop_map(|entries| {
                let dict = glib::VariantDict::new(None);
                for (k, v) in &entries {
                    dict.insert(k, v);
                }
                dict.end().data().to_vec()
            }),
        ],
    ) {
        let bytes = parts.serialize();
        check_commit(&bytes, Some(meta));
    }
}
