//! The native push protocol: framed messages on the stdin/stdout of one SSH exec channel
//! (`ostree-gateway-receive`); stderr carries human text only.
//!
//! Every frame is `kind: u8, length: u32 (big endian), payload`. Control messages are JSON;
//! object lists and objects are binary, so bulk data is never re-encoded. One round trip
//! negotiates everything, then objects stream without per-object requests:
//!
//! ```text
//! client                                   gateway
//! Hello, Request(repo, refs → new)  ──▶
//!                                   ◀──  RefStatus (current value, early verdict per ref)
//! Commit × n (new commits + chain down
//!   to the gateway's current value),
//! CommitsDone                       ──▶
//!                                   ◀──  Decisions (policy verdict per ref)
//! ObjectList × n, ListDone          ──▶
//!                                   ◀──  Need × n, NeedDone (what the gateway lacks)
//! Object × n, ObjectsDone           ──▶
//!                                   ◀──  Progress …, Final (result per ref, exit code)
//! ```
//! Either side may send `Error` and stop. The client keeps its side of the stream open until
//! `Final`: closing it earlier (Ctrl-C, a crash) cancels the push unless its ref move began.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const PROTOCOL_VERSION: u32 = 1;
/// The exec command the gateway answers with this protocol.
pub const COMMAND: &str = "ostree-gateway-receive";
/// No frame may be larger: objects above it are refused by size before any allocation.
pub const MAX_FRAME: u32 = 1 << 30;

pub mod treediff;

pub mod kind {
    pub const HELLO: u8 = b'H';
    pub const REQUEST: u8 = b'R';
    pub const REF_STATUS: u8 = b'S';
    pub const COMMIT: u8 = b'C';
    pub const COMMITS_DONE: u8 = b'c';
    pub const DECISIONS: u8 = b'D';
    pub const OBJECT_LIST: u8 = b'L';
    pub const LIST_DONE: u8 = b'l';
    pub const NEED: u8 = b'N';
    pub const NEED_DONE: u8 = b'n';
    pub const OBJECT: u8 = b'O';
    pub const OBJECTS_DONE: u8 = b'o';
    pub const PROGRESS: u8 = b'P';
    pub const FINAL: u8 = b'F';
    pub const ERROR: u8 = b'E';
}

/// OSTree object types, numbered as libostree numbers them.
pub mod objtype {
    pub const FILE: u8 = 1;
    pub const DIR_TREE: u8 = 2;
    pub const DIR_META: u8 = 3;
    pub const COMMIT: u8 = 4;
}

/// Object frame flag: the payload is an archive-repo `.filez` (zlib-compressed content
/// stream). Without it a content object is the uncompressed content stream.
pub const FLAG_COMPRESSED: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("frame of {0} bytes is larger than allowed")]
    TooLarge(u64),
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hello {
    pub version: u32,
    pub client: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefRequest {
    pub name: String,
    /// The commit the ref should point at; `None` deletes the ref.
    pub new: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    pub repo: String,
    pub refs: Vec<RefRequest>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub no_update: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Early verdict: will be decided after the commits arrive.
    Pending,
    UpToDate,
    Allowed,
    Created,
    Updated,
    ForceUpdated,
    Deleted,
    DryRun,
    Rejected,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefResult {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefStatus {
    pub version: u32,
    pub refs: Vec<RefResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Decisions {
    pub refs: Vec<RefResult>,
    /// False when any ref was denied: the push stops here.
    pub proceed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NeedDone {
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Progress {
    pub received: u64,
    pub total: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Final {
    pub refs: Vec<RefResult>,
    pub exit_code: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorMessage {
    pub message: String,
}

/// An object name on the wire: type byte + 32-byte sha256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub objtype: u8,
    pub checksum: [u8; 32],
}

impl ObjectId {
    pub const LEN: usize = 33;

    pub fn hex(&self) -> String {
        hex(&self.checksum)
    }

    pub fn from_hex(objtype: u8, checksum: &str) -> Option<ObjectId> {
        Some(ObjectId {
            objtype,
            checksum: unhex(checksum)?,
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

pub fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Encodes ids into a list payload.
pub fn encode_ids(ids: &[ObjectId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * ObjectId::LEN);
    for id in ids {
        out.push(id.objtype);
        out.extend_from_slice(&id.checksum);
    }
    out
}

pub fn decode_ids(payload: &[u8]) -> Result<Vec<ObjectId>, WireError> {
    if payload.len() % ObjectId::LEN != 0 {
        return Err(WireError::Protocol(
            "object list length is not a multiple of 33".into(),
        ));
    }
    Ok(payload
        .chunks(ObjectId::LEN)
        .map(|c| ObjectId {
            objtype: c[0],
            checksum: c[1..].try_into().expect("32 bytes"),
        })
        .collect())
}

/// `Commit` payload: checksum, commit length, commit bytes, detached metadata (may be empty).
pub fn encode_commit(checksum: &[u8; 32], commit: &[u8], detached: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + commit.len() + detached.map_or(0, <[u8]>::len));
    out.extend_from_slice(checksum);
    out.extend_from_slice(&(commit.len() as u32).to_be_bytes());
    out.extend_from_slice(commit);
    if let Some(meta) = detached {
        out.extend_from_slice(meta);
    }
    out
}

pub type CommitParts<'a> = ([u8; 32], &'a [u8], Option<&'a [u8]>);

pub fn decode_commit(payload: &[u8]) -> Result<CommitParts<'_>, WireError> {
    let bad = || WireError::Protocol("malformed commit frame".into());
    if payload.len() < 36 {
        return Err(bad());
    }
    let checksum: [u8; 32] = payload[..32].try_into().expect("32 bytes");
    let len = u32::from_be_bytes(payload[32..36].try_into().expect("4 bytes")) as usize;
    let rest = &payload[36..];
    if rest.len() < len {
        return Err(bad());
    }
    let (commit, meta) = rest.split_at(len);
    Ok((checksum, commit, (!meta.is_empty()).then_some(meta)))
}

/// `Object` header: type, flags, checksum; the payload follows.
pub const OBJECT_HEADER: usize = 34;

pub fn object_header(id: &ObjectId, flags: u8) -> [u8; OBJECT_HEADER] {
    let mut out = [0u8; OBJECT_HEADER];
    out[0] = id.objtype;
    out[1] = flags;
    out[2..].copy_from_slice(&id.checksum);
    out
}

pub fn decode_object(payload: &[u8]) -> Result<(ObjectId, u8, &[u8]), WireError> {
    if payload.len() < OBJECT_HEADER {
        return Err(WireError::Protocol("malformed object frame".into()));
    }
    let id = ObjectId {
        objtype: payload[0],
        checksum: payload[2..OBJECT_HEADER].try_into().expect("32 bytes"),
    };
    Ok((id, payload[1], &payload[OBJECT_HEADER..]))
}

/// Writes one frame (header and payload parts, without copying them together).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    parts: &[&[u8]],
) -> Result<(), WireError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len as u64 > MAX_FRAME as u64 {
        return Err(WireError::TooLarge(len as u64));
    }
    let mut header = [0u8; 5];
    header[0] = kind;
    header[1..].copy_from_slice(&(len as u32).to_be_bytes());
    w.write_all(&header).await?;
    for part in parts {
        w.write_all(part).await?;
    }
    Ok(())
}

pub async fn write_json<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    kind: u8,
    value: &T,
) -> Result<(), WireError> {
    let payload = serde_json::to_vec(value)?;
    write_frame(w, kind, &[&payload]).await
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames. A frame longer
/// than `max` is refused before its payload is read.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: u32,
) -> Result<Option<(u8, Vec<u8>)>, WireError> {
    let mut header = [0u8; 5];
    match r.read_exact(&mut header[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut header[1..]).await.map_err(truncated)?;
    let len = u32::from_be_bytes(header[1..].try_into().expect("4 bytes"));
    if len > max.min(MAX_FRAME) {
        return Err(WireError::TooLarge(len as u64));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await.map_err(truncated)?;
    Ok(Some((header[0], payload)))
}

fn truncated(e: std::io::Error) -> WireError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        WireError::Protocol("stream ended in the middle of a frame".into())
    } else {
        e.into()
    }
}

pub fn parse_json<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, WireError> {
    Ok(serde_json::from_slice(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_limits() {
        let mut buf = Vec::new();
        write_json(
            &mut buf,
            kind::HELLO,
            &Hello {
                version: 1,
                client: "t".into(),
            },
        )
        .await
        .unwrap();
        let id = ObjectId {
            objtype: objtype::FILE,
            checksum: [7; 32],
        };
        write_frame(
            &mut buf,
            kind::OBJECT,
            &[&object_header(&id, FLAG_COMPRESSED), b"data"],
        )
        .await
        .unwrap();
        let mut r = &buf[..];
        let (k, p) = read_frame(&mut r, 1024).await.unwrap().unwrap();
        assert_eq!(k, kind::HELLO);
        assert_eq!(parse_json::<Hello>(&p).unwrap().version, 1);
        let (k, p) = read_frame(&mut r, 1024).await.unwrap().unwrap();
        assert_eq!(k, kind::OBJECT);
        let (got, flags, data) = decode_object(&p).unwrap();
        assert_eq!((got, flags, data), (id, FLAG_COMPRESSED, &b"data"[..]));
        assert!(read_frame(&mut r, 1024).await.unwrap().is_none());
        // Too large: refused from the header.
        let mut r = &buf[..];
        assert!(matches!(read_frame(&mut r, 4).await, Err(WireError::TooLarge(_))));
        // Truncated.
        let mut r = &buf[..buf.len() - 1];
        read_frame(&mut r, 1024).await.unwrap();
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(WireError::Protocol(_))
        ));
    }

    #[test]
    fn ids_and_commits() {
        let ids = vec![
            ObjectId {
                objtype: 2,
                checksum: [1; 32],
            },
            ObjectId {
                objtype: 1,
                checksum: [2; 32],
            },
        ];
        assert_eq!(decode_ids(&encode_ids(&ids)).unwrap(), ids);
        assert!(decode_ids(&[0; 34]).is_err());
        let frame = encode_commit(&[3; 32], b"commit", Some(b"meta"));
        assert_eq!(
            decode_commit(&frame).unwrap(),
            ([3; 32], &b"commit"[..], Some(&b"meta"[..]))
        );
        assert_eq!(
            decode_commit(&encode_commit(&[3; 32], b"c", None)).unwrap().2,
            None
        );
        assert!(decode_commit(&frame[..30]).is_err());
        let h = hex(&[0xab; 32]);
        assert_eq!(unhex(&h), Some([0xab; 32]));
        assert_eq!(unhex("zz"), None);
    }
}
