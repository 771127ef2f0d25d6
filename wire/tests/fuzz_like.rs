//! Bounded randomized ("fuzz-like") tests of the protocol decoders, run on stable in
//! `make test`; they mirror the cargo-fuzz target `wire_frames` in `fuzz/` (longer campaigns:
//! docs/FUZZING.md). Decoders never panic on arbitrary bytes, never hand out a frame above the
//! limit, and what they accept re-encodes to exactly the input.

use proptest::prelude::*;
use wire::{ObjectId, WireError};

/// `cases` per property; `FUZZ_LIKE_CASES=N` runs N instead (longer campaigns).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("FUZZ_LIKE_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

type Frame = (u8, Vec<u8>);

/// Reads frames until a clean end or an error: the frames, how it ended, bytes left unread.
fn read_all(data: &[u8], max: u32) -> (Vec<Frame>, Result<(), WireError>, usize) {
    block_on(async {
        let mut reader = data;
        let mut frames = Vec::new();
        loop {
            match wire::read_frame(&mut reader, max).await {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => return (frames, Ok(()), reader.len()),
                Err(e) => return (frames, Err(e), reader.len()),
            }
        }
    })
}

fn check_decoders(data: &[u8]) {
    if let Ok(ids) = wire::decode_ids(data) {
        assert_eq!(ids.len() * ObjectId::LEN, data.len());
        assert_eq!(wire::encode_ids(&ids), data);
    }
    if let Ok((checksum, commit, meta)) = wire::decode_commit(data) {
        assert_eq!(wire::encode_commit(&checksum, commit, meta), data);
        assert!(meta.is_none_or(|m| !m.is_empty()));
    }
    if let Ok((id, flags, body)) = wire::decode_object(data) {
        let mut again = wire::object_header(&id, flags).to_vec();
        again.extend_from_slice(body);
        assert_eq!(again, data);
    }
}

fn object_id() -> impl Strategy<Value = ObjectId> {
    (any::<u8>(), any::<[u8; 32]>()).prop_map(|(objtype, checksum)| ObjectId { objtype, checksum })
}

fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    block_on(async {
        let mut out = Vec::new();
        for (k, p) in frames {
            wire::write_frame(&mut out, *k, &[p]).await.unwrap();
        }
        out
    })
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn decoders_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        check_decoders(&data);
    }

    #[test]
    fn frame_reader_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300), max in 0u32..400) {
        let (frames, _, left) = read_all(&data, max);
        let consumed: usize = frames.iter().map(|(_, p)| 5 + p.len()).sum();
        prop_assert!(consumed <= data.len() - left);
        for (_, p) in &frames {
            prop_assert!(p.len() as u64 <= u64::from(max));
        }
    }

    #[test]
    fn ids_round_trip(ids in prop::collection::vec(object_id(), 0..20), cut in 1usize..33) {
        let bytes = wire::encode_ids(&ids);
        prop_assert_eq!(wire::decode_ids(&bytes).unwrap(), ids.clone());
        if !bytes.is_empty() {
            prop_assert!(wire::decode_ids(&bytes[..bytes.len() - cut]).is_err());
        }
    }

    #[test]
    fn commit_and_object_frames_round_trip(
        checksum in any::<[u8; 32]>(),
        commit in prop::collection::vec(any::<u8>(), 0..100),
        meta in prop::option::of(prop::collection::vec(any::<u8>(), 1..50)),
        id in object_id(),
        flags in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let payload = wire::encode_commit(&checksum, &commit, meta.as_deref());
        let (c, b, m) = wire::decode_commit(&payload).unwrap();
        prop_assert_eq!(c, checksum);
        prop_assert_eq!(b, &commit[..]);
        prop_assert_eq!(m, meta.as_deref());
        // Cut inside the commit bytes: refused.
        if !commit.is_empty() {
            prop_assert!(wire::decode_commit(&payload[..36 + commit.len() - 1]).is_err());
        }
        let mut object = wire::object_header(&id, flags).to_vec();
        object.extend_from_slice(&body);
        let (i, f, d) = wire::decode_object(&object).unwrap();
        prop_assert_eq!((i, f, d), (id, flags, &body[..]));
    }

    /// Written frames read back identically; a stream cut anywhere yields the whole frames
    /// before the cut, then a clean end (at a boundary) or an error (mid-frame).
    #[test]
    fn frame_streams(
        frames in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode_frames(&frames);
        let (read, end, _) = read_all(&bytes, 64);
        prop_assert!(end.is_ok());
        prop_assert_eq!(&read, &frames);

        let at = cut.index(bytes.len() + 1);
        let (read, end, _) = read_all(&bytes[..at], 64);
        let mut boundaries = vec![0usize];
        for (_, p) in &frames {
            boundaries.push(boundaries.last().unwrap() + 5 + p.len());
        }
        let whole = boundaries.iter().filter(|&&b| b <= at).count() - 1;
        prop_assert_eq!(&read[..], &frames[..whole]);
        prop_assert_eq!(end.is_ok(), boundaries.contains(&at));
    }

    /// A frame above the limit is refused from its header, before its payload is read.
    #[test]
    fn frames_above_the_limit(
        k in any::<u8>(),
        len in 1u32..1000,
        max in 0u32..1000,
    ) {
        let mut bytes = vec![k];
        bytes.extend_from_slice(&len.to_be_bytes());
        let (read, end, left) = read_all(&bytes, max);
        prop_assert!(read.is_empty());
        if len > max {
            prop_assert!(matches!(end, Err(WireError::TooLarge(n)) if n == u64::from(len)));
            prop_assert_eq!(left, 0);
        } else {
            prop_assert!(end.is_err(), "payload missing: truncated");
        }
    }
}
