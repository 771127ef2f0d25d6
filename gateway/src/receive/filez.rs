//! The checksum of an archive content object (`.filez`), computed the way libostree defines it
//! but without GLib: GChecksum's software SHA-256 was a quarter of the gateway's CPU on an
//! initial push, and `sha2` uses the CPU's SHA extensions.
//!
//! A `.filez` is `u32 BE header size`, 4 bytes of padding, the header GVariant
//! `(tuuuusa(ayay))` (uncompressed size, uid, gid, mode, rdev, symlink target, xattrs; integers
//! big-endian), then the content as raw deflate. Its object name is the SHA-256 of the *file
//! header* `(uuuusa(ayay))` — written the same way, size + padding + GVariant — followed by the
//! decompressed content. This parser is stricter than libostree's (normal-form header, valid
//! mode bits, exact uncompressed size, nothing after the deflate stream, nothing after a
//! symlink's header): objects libostree writes always pass; anything it would read differently
//! from us is refused.

use flate2::{Decompress, FlushDecompress, Status};
use ostree::glib;
use ostree::glib::prelude::ToVariant;
use sha2::{Digest, Sha256};

const ZLIB_HEADER: &str = "(tuuuusa(ayay))";
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilezError {
    #[error("truncated header")]
    Truncated,
    #[error("header size {0} is out of range")]
    HeaderSize(u32),
    #[error("non-zero header padding")]
    Padding,
    #[error("header is not a valid {ZLIB_HEADER} in normal form")]
    Header,
    #[error("invalid rdev {0}")]
    Rdev(u32),
    #[error("invalid mode {0:o}")]
    Mode(u32),
    #[error("a symlink object carries content")]
    SymlinkContent,
    #[error("corrupt compressed content: {0}")]
    Inflate(String),
    #[error("content is {actual} bytes, the header says {declared}")]
    Size { declared: u64, actual: u64 },
    #[error("data after the end of the compressed content")]
    Trailing,
}

/// The object checksum (hex) of a `.filez` as sent.
pub fn checksum(data: &[u8]) -> Result<String, FilezError> {
    if data.len() < 8 {
        return Err(FilezError::Truncated);
    }
    let header_size = u32::from_be_bytes(data[..4].try_into().expect("4 bytes"));
    let body_start = 8usize
        .checked_add(header_size as usize)
        .filter(|end| header_size > 0 && *end <= data.len())
        .ok_or(FilezError::HeaderSize(header_size))?;
    if data[4..8] != [0; 4] {
        return Err(FilezError::Padding);
    }
    let ty = glib::VariantTy::new(ZLIB_HEADER).expect("valid type");
    let header = glib::Variant::from_bytes_with_type(&glib::Bytes::from(&data[8..body_start]), ty);
    if !header.is_normal_form() {
        return Err(FilezError::Header);
    }
    let be_u32 = |i: usize| u32::from_be(header.child_value(i).get::<u32>().expect("typed"));
    let size = u64::from_be(header.child_value(0).get::<u64>().expect("typed"));
    let (uid, gid, mode, rdev) = (be_u32(1), be_u32(2), be_u32(3), be_u32(4));
    if rdev != 0 {
        return Err(FilezError::Rdev(rdev));
    }
    if mode & !(S_IFMT | 0o7777) != 0 || !matches!(mode & S_IFMT, S_IFREG | S_IFLNK) {
        return Err(FilezError::Mode(mode));
    }
    let is_link = mode & S_IFMT == S_IFLNK;
    let target = if is_link {
        header.child_value(5).str().expect("typed").to_string()
    } else {
        String::new()
    };
    // The file header libostree hashes: the same fields minus the size, integers as stored.
    let file_header = glib::Variant::tuple_from_iter([
        uid.to_be().to_variant(),
        gid.to_be().to_variant(),
        mode.to_be().to_variant(),
        0u32.to_variant(),
        target.to_variant(),
        header.child_value(6),
    ]);
    let mut hasher = Sha256::new();
    let bytes = file_header.data();
    hasher.update((bytes.len() as u32).to_be_bytes());
    hasher.update([0u8; 4]);
    hasher.update(bytes);
    let body = &data[body_start..];
    if is_link {
        if !body.is_empty() {
            return Err(FilezError::SymlinkContent);
        }
    } else {
        let actual = inflate_into(body, &mut hasher)?;
        if actual != size {
            return Err(FilezError::Size {
                declared: size,
                actual,
            });
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Inflates raw deflate `input` into the hasher; the uncompressed length.
fn inflate_into(input: &[u8], hasher: &mut Sha256) -> Result<u64, FilezError> {
    thread_local! {
        // One inflater and output buffer per worker thread, not fresh ones per object.
        static STATE: std::cell::RefCell<(Decompress, Vec<u8>)> =
            std::cell::RefCell::new((Decompress::new(false), vec![0u8; 128 * 1024]));
    }
    STATE.with_borrow_mut(|(inflater, out)| {
        inflater.reset(false);
        inflate_with(inflater, input, hasher, out)
    })
}

fn inflate_with(
    inflater: &mut Decompress,
    input: &[u8],
    hasher: &mut Sha256,
    out: &mut [u8],
) -> Result<u64, FilezError> {
    loop {
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(&input[before_in as usize..], out, FlushDecompress::None)
            .map_err(|e| FilezError::Inflate(e.to_string()))?;
        let produced = (inflater.total_out() - before_out) as usize;
        hasher.update(&out[..produced]);
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                if inflater.total_in() == before_in && produced == 0 {
                    return Err(FilezError::Inflate("truncated stream".into()));
                }
            }
        }
    }
    if inflater.total_in() as usize != input.len() {
        return Err(FilezError::Trailing);
    }
    Ok(inflater.total_out())
}
