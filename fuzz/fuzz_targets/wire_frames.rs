//! The native protocol's decoders (`wire::decode_*`, `wire::read_frame`) on arbitrary bytes:
//! never panic, never return a frame above the limit, and what they accept re-encodes to
//! exactly the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(ids) = wire::decode_ids(data) {
        assert_eq!(ids.len() * wire::ObjectId::LEN, data.len());
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
    // A stream of frames with a small limit taken from the input.
    let max = data.first().map_or(0, |&b| u32::from(b) * 64);
    runtime().block_on(async {
        let mut reader = data;
        let mut consumed = 0usize;
        loop {
            match wire::read_frame(&mut reader, max).await {
                Ok(Some((_, payload))) => {
                    assert!(payload.len() as u64 <= u64::from(max));
                    consumed += 5 + payload.len();
                    assert_eq!(consumed, data.len() - reader.len());
                }
                Ok(None) => {
                    assert!(reader.is_empty());
                    break;
                }
                Err(_) => break,
            }
        }
    });
});
