//! Native-path ingest: every object the pusher streams is verified before it is stored in the
//! push's staging repo — metadata by sha256 and GVariant structure, content by parsing the
//! content stream and recomputing its checksum over the decompressed data. Verified `.filez`
//! bytes are stored as they came (no re-compression) when the target is an archive repo.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ostree::gio::prelude::*;
use ostree::{gio, glib};
use wire::{objtype, ObjectId, FLAG_COMPRESSED};

use super::commit::sha256_hex;
use super::present::open_objects_dir;
use super::writeback::Writeback;
use super::ReceiveError;

/// Writes verified objects into one staging repo; one per worker thread.
pub struct Ingest {
    /// The staging repo's `objects` directory: files are opened relative to it, not by their
    /// full path (a path walk of a dozen components per object otherwise).
    objects: OwnedFd,
    /// Raw `.filez` can be stored as-is (the staging repo is an archive repo).
    archive: bool,
    converter: Arc<Converter>,
    writeback: Arc<Writeback>,
}

/// The staging repo's one libostree transaction, for objects libostree must convert (another
/// representation than the staging repo's). Shared by the workers: two transactions on one
/// repo in one process take each other's staging directories (libostree's tmpdir locks are
/// per process), which failed pushes with "opendir(staging-…): No such file or directory".
pub struct Converter {
    path: PathBuf,
    repo: Mutex<Option<LockedRepo>>,
}

/// An `ostree::Repo` used by one thread at a time, under `Converter::repo`'s mutex.
struct LockedRepo(ostree::Repo);
// SAFETY: the repo is only reached through the mutex, so one thread at a time uses it;
// libostree objects are not bound to the thread that made them.
unsafe impl Send for LockedRepo {}

impl Converter {
    pub fn new(staging: &Path) -> Arc<Converter> {
        Arc::new(Converter {
            path: staging.to_path_buf(),
            repo: Mutex::new(None),
        })
    }

    /// Writes a content stream through libostree (which checksums it again on the way).
    fn write(&self, id: &ObjectId, content: &gio::InputStream, length: u64) -> Result<(), ReceiveError> {
        let mut slot = self.repo.lock().expect("converter lock");
        if slot.is_none() {
            let repo = ostree::Repo::new_for_path(&self.path);
            repo.open(gio::Cancellable::NONE)?;
            repo.set_disable_fsync(true);
            repo.prepare_transaction(gio::Cancellable::NONE)?;
            *slot = Some(LockedRepo(repo));
        }
        let repo = &slot.as_ref().expect("opened").0;
        repo.write_content(Some(&id.hex()), content, length, gio::Cancellable::NONE)
            .map_err(|e| rejected(id, e))?;
        Ok(())
    }

    /// Commits what libostree staged, once every worker is done.
    pub fn finish(&self) -> Result<(), ReceiveError> {
        if let Some(LockedRepo(repo)) = self.repo.lock().expect("converter lock").take() {
            repo.commit_transaction(gio::Cancellable::NONE)?;
        }
        Ok(())
    }
}

fn rejected(id: &ObjectId, why: impl std::fmt::Display) -> ReceiveError {
    ReceiveError::BadObject(format!("{}.{}: {why}", id.hex(), ext(id.objtype)))
}

pub fn ext(objtype: u8) -> &'static str {
    match objtype {
        objtype::FILE => "file",
        objtype::DIR_TREE => "dirtree",
        objtype::DIR_META => "dirmeta",
        objtype::COMMIT => "commit",
        _ => "unknown",
    }
}

fn gvariant_type(objtype: u8) -> Option<&'static str> {
    match objtype {
        objtype::DIR_TREE => Some("(a(say)a(sayay))"),
        objtype::DIR_META => Some("(uuua(ayay))"),
        objtype::COMMIT => Some(super::commit::COMMIT_TYPE),
        _ => None,
    }
}

impl Ingest {
    pub fn new(
        staging: &Path,
        archive: bool,
        converter: Arc<Converter>,
        writeback: Arc<Writeback>,
    ) -> Result<Ingest, ReceiveError> {
        Ok(Ingest {
            objects: open_objects_dir(staging)?,
            archive,
            converter,
            writeback,
        })
    }

    /// Verifies one object and stores it. Nothing is stored for a rejected object.
    pub fn store(&mut self, id: &ObjectId, flags: u8, data: &[u8]) -> Result<(), ReceiveError> {
        match id.objtype {
            objtype::FILE => self.store_content(id, flags, data),
            _ => {
                Self::check_metadata(id, data)?;
                write_loose(&self.objects, id, ext(id.objtype), data)?;
                // Metadata stays cached: the completeness proof reads every dirtree again.
                self.writeback.wrote(None, data.len() as u64);
                Ok(())
            }
        }
    }

    /// A metadata object is what its name says: sha256 over its bytes, and a GVariant of its
    /// type in normal form (so any reader parses it the same way).
    pub fn check_metadata(id: &ObjectId, data: &[u8]) -> Result<(), ReceiveError> {
        let Some(ty) = gvariant_type(id.objtype) else {
            return Err(rejected(id, format!("unknown object type {}", id.objtype)));
        };
        let actual = sha256_hex(data);
        if actual != id.hex() {
            return Err(rejected(
                id,
                format!("content has checksum {actual} (corrupted or forged)"),
            ));
        }
        let ty = glib::VariantTy::new(ty).expect("valid");
        if !glib::Variant::from_bytes_with_type(&glib::Bytes::from(data), ty).is_normal_form() {
            return Err(rejected(id, "not a valid object of this type"));
        }
        Ok(())
    }

    fn store_content(&mut self, id: &ObjectId, flags: u8, data: &[u8]) -> Result<(), ReceiveError> {
        let compressed = flags & FLAG_COMPRESSED != 0;
        let parse = || parse_content(compressed, data);
        let actual = if compressed {
            super::filez::checksum(data).map_err(|e| rejected(id, format!("not a content object: {e}")))?
        } else {
            // An uncompressed stream (a bare pusher repo): rare, libostree's own code.
            let (stream, info, xattrs) =
                parse().map_err(|e| rejected(id, format!("not a content object: {e}")))?;
            ostree::checksum_file_from_input(
                &info,
                Some(&xattrs),
                stream.as_ref(),
                ostree::ObjectType::File,
                gio::Cancellable::NONE,
            )
            .map_err(|e| rejected(id, format!("cannot checksum: {e}")))?
            .to_hex()
        };
        if actual != id.hex() {
            return Err(rejected(
                id,
                format!("content has checksum {actual} (corrupted or forged)"),
            ));
        }
        if self.archive && compressed {
            let path = write_loose(&self.objects, id, "filez", data)?;
            self.writeback.wrote(Some(path), data.len() as u64);
            return Ok(());
        }
        // Another representation than the staging repo's: let libostree convert it.
        let (stream, info, xattrs) = parse()?;
        // Symlinks have no content stream: an empty one stands in for the conversion.
        let stream = stream.unwrap_or_else(|| gio::MemoryInputStream::new().upcast());
        let (content, length) =
            ostree::raw_file_to_content_stream(&stream, &info, Some(&xattrs), gio::Cancellable::NONE)?;
        self.converter.write(id, &content, length)
    }
}

/// Writes the object file of an archive-layout repo in place: the staging repo is private
/// to this push and nothing reads it before every worker has finished, so no temp file +
/// rename is needed (that was a third of the gateway's CPU on an initial push). An
/// `objects/XX` directory is made when its first object comes (making all 256 up front,
/// and removing them, cost an incremental push ~0.1 s).
/// Returns the file's path under `objects`.
fn write_loose(objects: &OwnedFd, id: &ObjectId, ext: &str, data: &[u8]) -> Result<String, ReceiveError> {
    use rustix::fs::{Mode, OFlags};
    let hex = id.hex();
    let path = format!("{}/{}.{ext}", &hex[..2], &hex[2..]);
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o644);
    let open = || rustix::fs::openat(objects, &path, flags, mode);
    let file = match open() {
        Err(rustix::io::Errno::NOENT) => {
            match rustix::fs::mkdirat(objects, &hex[..2], Mode::from_raw_mode(0o775)) {
                // The other worker may have made it meanwhile.
                Ok(()) | Err(rustix::io::Errno::EXIST) => open(),
                Err(e) => return Err(std::io::Error::from(e).into()),
            }
        }
        other => other,
    };
    match file {
        Ok(fd) => {
            std::fs::File::from(fd).write_all(data)?;
            Ok(path)
        }
        // Verified under the same name before: the same bytes, by construction.
        Err(rustix::io::Errno::EXIST) => Ok(path),
        Err(e) => Err(std::io::Error::from(e).into()),
    }
}

/// Stores commits already verified by `commit::parse`, with their detached metadata, into the
/// staging repo at `root` (the same files in every repo mode).
pub fn store_commits(root: &Path, commits: &[super::commit::CommitInfo]) -> Result<(), ReceiveError> {
    let objects = open_objects_dir(root)?;
    for commit in commits {
        let id = ObjectId::from_hex(objtype::COMMIT, &commit.checksum).expect("verified checksum");
        write_loose(&objects, &id, "commit", &commit.bytes)?;
        if let Some(meta) = &commit.detached {
            write_loose(&objects, &id, "commitmeta", meta)?;
        }
    }
    Ok(())
}

/// `ostree_content_stream_parse`, except that the content stream is an `Option`: libostree
/// returns NULL for symlinks, and the generated binding would wrap that NULL in an object
/// (undefined behaviour; GLib reported it as a critical for every symlink).
fn parse_content(
    compressed: bool,
    data: &[u8],
) -> Result<(Option<gio::InputStream>, gio::FileInfo, glib::Variant), glib::Error> {
    use glib::translate::{from_glib_full, IntoGlib, ToGlibPtr};
    let input = gio::MemoryInputStream::from_bytes(&glib::Bytes::from(data));
    let input: &gio::InputStream = input.upcast_ref();
    let mut out_input = std::ptr::null_mut();
    let mut out_info = std::ptr::null_mut();
    let mut out_xattrs = std::ptr::null_mut();
    let mut error = std::ptr::null_mut();
    // SAFETY: valid input stream; every out-pointer is owned by us after the call and is
    // only wrapped when non-NULL.
    unsafe {
        ostree::ffi::ostree_content_stream_parse(
            compressed.into_glib(),
            input.to_glib_none().0,
            data.len() as u64,
            false.into_glib(),
            &mut out_input,
            &mut out_info,
            &mut out_xattrs,
            std::ptr::null_mut(),
            &mut error,
        );
        if !error.is_null() {
            return Err(from_glib_full(error));
        }
        let stream = (!out_input.is_null()).then(|| from_glib_full(out_input));
        Ok((stream, from_glib_full(out_info), from_glib_full(out_xattrs)))
    }
}
