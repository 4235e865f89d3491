//! LFS objects as files under `{lfs}/objects/{aa}/{bb}/{oid}`, xorbs under
//! `{xet}/xorbs/{aa}/{bb}/{hash}`; uploads are staged in `{lfs}/tmp` or `{xet}/tmp` on the same
//! filesystem, fsynced, then renamed into place, and the directory is fsynced. Garbage
//! collection moves objects aside into `{lfs}/gc` or `{xet}/gc` (one rename) before it deletes
//! them, so that a decision it has to take back costs one rename, not the bytes.

use crate::{BlobStore, ByteRange, ByteStream, ObjectKind, Space, StoredObject};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::fs::{self, File};
use tokio::io::AsyncWriteExt;
use wharf_core::lfs_pointer::is_sha256_hex;
use wharf_core::{Error, ErrorKind, Result};

/// Chunk size when streaming objects out: large enough to keep syscalls and wakeups few, small
/// enough that a stream holds little. Each chunk is one buffer, read in place with `pread` and
/// handed on as it is (no second copy, no buffer kept between reads); with the server's
/// 128 KiB write queue a download holds about three chunks. (200 concurrent downloads held
/// 530 MiB with 1 MiB chunks, 460 MiB with 256 KiB ones through `tokio::fs`, which buffers
/// every read a second time.)
const READ_CHUNK: usize = 128 << 10;

/// Chunk reads running at once, server-wide: reads from the page cache take microseconds, so a
/// few keep every download fed, and hundreds of downloads do not each hold a thread of the
/// blocking pool (and its memory).
static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);

/// LFS objects and xorbs on local disk.
pub struct LocalBlobStore {
    root: PathBuf,
    xet_root: PathBuf,
}

/// Staging files untouched for this long are leftovers of a crash. Younger ones may belong to
/// an upload of a running server: administration commands (`wharf gc`, `wharf user add`) open
/// the store while it serves.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// Creates `{root}/{objects}`, `{root}/gc` and `{root}/tmp`, and drops stale staging files.
async fn prepare(root: &Path, objects: &str) -> Result<()> {
    fs::create_dir_all(root.join(objects)).await?;
    fs::create_dir_all(root.join(QUARANTINE)).await?;
    let tmp = root.join("tmp");
    fs::create_dir_all(&tmp).await?;
    let mut entries = fs::read_dir(&tmp).await?;
    while let Some(entry) = entries.next_entry().await? {
        let meta = entry.metadata().await?;
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        if age.is_some_and(|a| a >= STALE_STAGING) {
            let _ = fs::remove_file(entry.path()).await;
        }
    }
    Ok(())
}

/// The folder (under each root) holding objects garbage collection moved aside.
const QUARANTINE: &str = "gc";

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The objects under a sharded folder `{base}/{aa}/{bb}/{key}`; foreign names are skipped.
fn list_sharded(base: &Path) -> std::io::Result<Vec<StoredObject>> {
    let mut out = Vec::new();
    for level1 in read_dirs(base)? {
        for level2 in read_dirs(&level1)? {
            for entry in std::fs::read_dir(&level2)? {
                let entry = entry?;
                let key = entry.file_name().to_string_lossy().into_owned();
                let meta = entry.metadata()?;
                if !meta.is_file() || !is_sha256_hex(&key) {
                    continue;
                }
                out.push(StoredObject {
                    key,
                    size: meta.len(),
                    modified_ms: meta.modified().map_or(0, epoch_ms),
                });
            }
        }
    }
    Ok(out)
}

/// The sub-folders of `dir` (none when it does not exist).
fn read_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// `{base}/{aa}/{bb}/{key}`. Only called with validated keys.
fn sharded(base: PathBuf, key: &str) -> PathBuf {
    base.join(&key[0..2]).join(&key[2..4]).join(key)
}

impl LocalBlobStore {
    /// Opens (creating) a store with LFS objects under `root` and xorbs under `xet_root`, and
    /// clears staging files a crash left behind.
    pub async fn open(root: &Path, xet_root: &Path) -> Result<LocalBlobStore> {
        prepare(root, "objects").await?;
        prepare(xet_root, "xorbs").await?;
        Ok(LocalBlobStore {
            root: root.to_path_buf(),
            xet_root: xet_root.to_path_buf(),
        })
    }

    /// The final path of an object. Only called with validated ids.
    fn object_path(&self, oid: &str) -> PathBuf {
        sharded(self.root.join("objects"), oid)
    }

    /// The final path of a keyed object. Only called with validated keys.
    fn keyed_path(&self, space: Space, key: &str) -> PathBuf {
        match space {
            Space::Xorb => sharded(self.xet_root.join("xorbs"), key),
        }
    }

    /// Makes a fully written staging file visible as `oid`: fsync, rename into place, fsync the
    /// directory. On failure the staging file is removed.
    async fn publish(&self, file: File, staging: &Path, oid: &str) -> Result<()> {
        publish_at(file, staging, &self.object_path(oid)).await
    }

    fn staging_path(&self) -> PathBuf {
        staging_in(&self.root)
    }

    /// The root of one kind of object.
    fn root_of(&self, kind: ObjectKind) -> &Path {
        match kind {
            ObjectKind::Lfs => &self.root,
            ObjectKind::Keyed(Space::Xorb) => &self.xet_root,
        }
    }

    /// The published path of an object of any kind. Only called with validated keys.
    fn path_of(&self, kind: ObjectKind, key: &str) -> PathBuf {
        match kind {
            ObjectKind::Lfs => self.object_path(key),
            ObjectKind::Keyed(space) => self.keyed_path(space, key),
        }
    }

    /// Where a quarantined object waits. Only called with validated keys.
    fn quarantine_path(&self, kind: ObjectKind, key: &str) -> PathBuf {
        self.root_of(kind).join(QUARANTINE).join(key)
    }
}

/// Publishes a fully written staging file at `target` (see [`LocalBlobStore::publish`]).
async fn publish_at(file: File, staging: &Path, target: &Path) -> Result<()> {
    let done = async {
        file.sync_all().await?;
        drop(file);
        let dir = target.parent().ok_or_else(|| {
            Error::internal(format!("object path {} has no parent", target.display()))
        })?;
        fs::create_dir_all(dir).await?;
        fs::rename(staging, target).await?;
        fsync_dir(dir).await
    }
    .await;
    if done.is_err() {
        let _ = fs::remove_file(staging).await;
    }
    done
}

/// A fresh staging path in `{root}/tmp`.
fn staging_in(root: &Path) -> PathBuf {
    let mut rnd = [0u8; 12];
    // A collision is harmless (create_new fails and the upload is retried), so a failing random
    // source only degrades uniqueness.
    let _ = getrandom::fill(&mut rnd);
    root.join("tmp").join(hex::encode(rnd))
}

/// Opens an object file for reading, or one range of it, as a stream.
async fn read_path(path: &Path, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    let file = match File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::entry_not_found(key));
        }
        Err(e) => return Err(e.into()),
    };
    let (start, end) = match range {
        None => (0, file.metadata().await?.len()),
        Some(r) => (r.start, r.end.saturating_add(1)),
    };
    Ok(chunks_of(std::sync::Arc::new(file.into_std().await), start, end))
}

/// The bytes `start..end` of `file`, one [`READ_CHUNK`] at a time, each read on the blocking
/// pool straight into the buffer that is sent. A file shorter than `end` ends the stream with
/// an error (the length was promised in the headers).
fn chunks_of(file: std::sync::Arc<std::fs::File>, start: u64, end: u64) -> ByteStream {
    futures::stream::try_unfold(start, move |offset| {
        let file = file.clone();
        async move {
            if offset >= end {
                return Ok(None);
            }
            let want = usize::try_from(end - offset).map_or(READ_CHUNK, |n| n.min(READ_CHUNK));
            // The buffer is allocated here, on a runtime thread, where it is also freed once
            // sent: allocated on the blocking pool's threads, each thread's malloc arena kept
            // what it once held (200 downloads: 990 MiB of RSS that never came back).
            let buf = vec![0u8; want];
            let _turn = READS.acquire().await.map_err(std::io::Error::other)?;
            let chunk = tokio::task::spawn_blocking(move || read_chunk(&file, offset, buf))
                .await
                .map_err(std::io::Error::other)??;
            let next = offset + chunk.len() as u64;
            Ok(Some((chunk, next)))
        }
    })
    .boxed()
}

/// `buf` filled from `file` at `offset` (shorter only at the end of the file).
fn read_chunk(file: &std::fs::File, offset: u64, mut buf: Vec<u8>) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if filled == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

async fn size_of(path: &Path) -> Result<Option<u64>> {
    match fs::metadata(path).await {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn check_oid(oid: &str) -> Result<()> {
    if is_sha256_hex(oid) {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "Invalid object id '{}': expected 64 lowercase hex digits",
            oid.escape_debug()
        )))
    }
}

/// Write buffer of the writer thread: small network chunks are gathered, chunks at least this
/// large go straight to the file without a copy.
const WRITE_BUFFER: usize = 256 << 10;
/// Chunks in flight towards each of the hashing and writing threads (hyper hands over up to a
/// few hundred KiB per chunk, so this bounds the memory of one upload to a few MiB).
const PIPELINE_DEPTH: usize = 8;

/// Copies the stream into `file` while hashing; returns (bytes received, sha256 hex).
/// Hashing and writing run on two blocking threads fed with the same chunks (a `Bytes` clone
/// is a reference count), so an upload costs about max(hash, write) rather than their sum.
/// Stops early once more than `limit` bytes arrived, so a lying client cannot fill the disk.
async fn write_hashing(file: &mut File, mut body: ByteStream, limit: u64) -> Result<(u64, String)> {
    let target = file.try_clone().await?.into_std().await;
    let (hash_tx, mut hash_rx) = tokio::sync::mpsc::channel::<Bytes>(PIPELINE_DEPTH);
    let (write_tx, mut write_rx) = tokio::sync::mpsc::channel::<Bytes>(PIPELINE_DEPTH);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        while let Some(chunk) = hash_rx.blocking_recv() {
            hasher.update(&chunk);
        }
        hex::encode(hasher.finalize())
    });
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, target);
        while let Some(chunk) = write_rx.blocking_recv() {
            out.write_all(&chunk)?;
        }
        out.flush()
    });
    let mut received = 0u64;
    let mut interrupted = None;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                interrupted = Some(Error::bad_request(format!("Upload interrupted: {e}")));
                break;
            }
        };
        received += chunk.len() as u64;
        // A closed channel means the writer failed; its error is reported below.
        if received > limit
            || hash_tx.send(chunk.clone()).await.is_err()
            || write_tx.send(chunk).await.is_err()
        {
            break;
        }
    }
    drop((hash_tx, write_tx));
    let digest = hasher.await.map_err(Error::internal)?;
    writer.await.map_err(Error::internal)??;
    match interrupted {
        Some(e) => Err(e),
        None if received > limit => Ok((received, String::new())),
        None => Ok((received, digest)),
    }
}

async fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).await?.sync_all().await?;
    Ok(())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn size(&self, oid: &str) -> Result<Option<u64>> {
        check_oid(oid)?;
        size_of(&self.object_path(oid)).await
    }

    async fn put_verified(&self, oid: &str, size: u64, body: ByteStream) -> Result<()> {
        check_oid(oid)?;
        let staging = self.staging_path();
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .await?;
        let outcome = write_hashing(&mut file, body, size).await;
        let verdict = match outcome {
            Ok((n, _)) if n != size => Err(Error::bad_request(format!(
                "Size mismatch: expected {size} bytes, received {n}"
            ))),
            Ok((_, digest)) if digest != oid => Err(Error::bad_request(format!(
                "Hash mismatch: expected sha256 {oid}, received {digest}"
            ))),
            other => other.map(|_| ()),
        };
        if let Err(e) = verdict {
            drop(file);
            let _ = fs::remove_file(&staging).await;
            return Err(e);
        }
        self.publish(file, &staging, oid).await
    }

    async fn put_hashing(&self, body: ByteStream, max_size: u64) -> Result<(String, u64)> {
        let staging = self.staging_path();
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .await?;
        let outcome = match write_hashing(&mut file, body, max_size).await {
            Ok((n, _)) if n > max_size => Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!("The upload is larger than the limit of {max_size} bytes"),
            )),
            other => other,
        };
        let (size, oid) = match outcome {
            Ok(done) => done,
            Err(e) => {
                drop(file);
                let _ = fs::remove_file(&staging).await;
                return Err(e);
            }
        };
        self.publish(file, &staging, &oid).await?;
        Ok((oid, size))
    }

    async fn read(&self, oid: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        check_oid(oid)?;
        read_path(&self.object_path(oid), oid, range).await
    }

    async fn put_checked(&self, space: Space, key: &str, parts: Vec<Bytes>) -> Result<()> {
        check_oid(key)?;
        let target = self.keyed_path(space, key);
        if fs::try_exists(&target).await? {
            return Ok(());
        }
        let staging = staging_in(&self.xet_root);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .await?;
        for part in &parts {
            if let Err(e) = file.write_all(part).await {
                drop(file);
                let _ = fs::remove_file(&staging).await;
                return Err(e.into());
            }
        }
        publish_at(file, &staging, &target).await
    }

    async fn read_keyed(
        &self,
        space: Space,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        check_oid(key)?;
        read_path(&self.keyed_path(space, key), key, range).await
    }

    async fn size_keyed(&self, space: Space, key: &str) -> Result<Option<u64>> {
        check_oid(key)?;
        size_of(&self.keyed_path(space, key)).await
    }

    async fn list(&self, kind: ObjectKind) -> Result<Vec<StoredObject>> {
        let base = match kind {
            ObjectKind::Lfs => self.root.join("objects"),
            ObjectKind::Keyed(Space::Xorb) => self.xet_root.join("xorbs"),
        };
        let listed = tokio::task::spawn_blocking(move || list_sharded(&base))
            .await
            .map_err(Error::internal)?;
        Ok(listed?)
    }

    async fn quarantine(&self, kind: ObjectKind, key: &str) -> Result<Option<StoredObject>> {
        check_oid(key)?;
        let from = self.path_of(kind, key);
        let to = self.quarantine_path(kind, key);
        match fs::rename(&from, &to).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let meta = fs::metadata(&to).await?;
        Ok(Some(StoredObject {
            key: key.to_owned(),
            size: meta.len(),
            modified_ms: meta.modified().map_or(0, epoch_ms),
        }))
    }

    async fn restore(&self, kind: ObjectKind, key: &str) -> Result<()> {
        check_oid(key)?;
        let target = self.path_of(kind, key);
        let dir = target.parent().ok_or_else(|| {
            Error::internal(format!("object path {} has no parent", target.display()))
        })?;
        fs::create_dir_all(dir).await?;
        fs::rename(self.quarantine_path(kind, key), &target).await?;
        fsync_dir(dir).await
    }

    async fn purge(&self, kind: ObjectKind, key: &str) -> Result<()> {
        check_oid(key)?;
        match fs::remove_file(self.quarantine_path(kind, key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn quarantined(&self, kind: ObjectKind) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut entries = fs::read_dir(self.root_of(kind).join(QUARANTINE)).await?;
        while let Some(entry) = entries.next_entry().await? {
            let key = entry.file_name().to_string_lossy().into_owned();
            if is_sha256_hex(&key) {
                out.push(key);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    async fn collect(s: ByteStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.expect("read"));
        }
        out
    }

    #[tokio::test]
    async fn verified_put_then_read_and_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path(), &dir.path().join("xet"))
            .await
            .expect("open");
        let oid = sha(b"hello world");
        store
            .put_verified(&oid, 11, body(&[b"hello ", b"world"]))
            .await
            .expect("put");
        assert_eq!(store.size(&oid).await.expect("size"), Some(11));
        assert_eq!(
            collect(store.read(&oid, None).await.expect("read")).await,
            b"hello world"
        );
        let part = store
            .read(&oid, Some(ByteRange { start: 6, end: 10 }))
            .await
            .expect("range");
        assert_eq!(collect(part).await, b"world");
    }

    #[tokio::test]
    async fn wrong_hash_or_size_is_not_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path(), &dir.path().join("xet"))
            .await
            .expect("open");
        let oid = sha(b"hello world");
        let e = store
            .put_verified(&oid, 11, body(&[b"hello there"]))
            .await
            .expect_err("hash");
        assert_eq!(e.kind, wharf_core::ErrorKind::BadRequest);
        let e = store
            .put_verified(&oid, 11, body(&[b"hello world!"]))
            .await
            .expect_err("size");
        assert!(e.message.contains("Size mismatch"), "{}", e.message);
        assert_eq!(store.size(&oid).await.expect("size"), None);
        let leftovers = std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0, "staging files must be removed");
    }

    #[tokio::test]
    async fn hashing_put_stores_under_the_computed_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path(), &dir.path().join("xet"))
            .await
            .expect("open");
        let (oid, size) = store
            .put_hashing(body(&[b"hello ", b"", b"world"]), 11)
            .await
            .expect("put");
        assert_eq!(oid, sha(b"hello world"));
        assert_eq!(size, 11);
        assert_eq!(
            collect(store.read(&oid, None).await.expect("read")).await,
            b"hello world"
        );
        // The same content again keeps one copy and answers the same id.
        let again = store
            .put_hashing(body(&[b"hello world"]), 100)
            .await
            .expect("again");
        assert_eq!(again, (oid.clone(), 11));
        // An empty body is a valid, empty object.
        let (empty, n) = store.put_hashing(body(&[]), 0).await.expect("empty");
        assert_eq!((empty.as_str(), n), (sha(b"").as_str(), 0));
        assert_eq!(store.size(&empty).await.expect("size"), Some(0));
        let leftovers = std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn hashing_put_refuses_oversized_bodies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path(), &dir.path().join("xet"))
            .await
            .expect("open");
        let e = store
            .put_hashing(body(&[b"hello ", b"world"]), 10)
            .await
            .expect_err("too large");
        assert_eq!(e.kind, wharf_core::ErrorKind::PayloadTooLarge);
        assert_eq!(store.size(&sha(b"hello world")).await.expect("size"), None);
        assert_eq!(store.size(&sha(b"hello ")).await.expect("size"), None);
        let leftovers = std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0, "staging files must be removed");
    }

    #[tokio::test]
    async fn hashing_put_drops_interrupted_bodies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path(), &dir.path().join("xet"))
            .await
            .expect("open");
        let broken: ByteStream = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"partial")),
            Err(std::io::Error::other("connection reset")),
        ])
        .boxed();
        let e = store.put_hashing(broken, 100).await.expect_err("broken");
        assert_eq!(e.kind, wharf_core::ErrorKind::BadRequest);
        assert_eq!(store.size(&sha(b"partial")).await.expect("size"), None);
        let leftovers = std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn keyed_space_put_read_and_idempotence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path(), &dir.path().join("xet"))
            .await
            .expect("open");
        let key = "5d8d74fff21a49bf3e66d5854e81bd6c2efea4e757846885a66a7666e038733f";
        assert_eq!(
            store.size_keyed(Space::Xorb, key).await.expect("size"),
            None
        );
        let e = store
            .read_keyed(Space::Xorb, key, None)
            .await
            .err()
            .expect("absent");
        assert_eq!(e.kind, wharf_core::ErrorKind::EntryNotFound);
        store
            .put_checked(
                Space::Xorb,
                key,
                vec![Bytes::from_static(b"xorb "), Bytes::from_static(b"bytes")],
            )
            .await
            .expect("put");
        assert_eq!(
            store.size_keyed(Space::Xorb, key).await.expect("size"),
            Some(10)
        );
        let path = dir.path().join("xet/xorbs/5d/8d").join(key);
        assert!(path.exists(), "stored under xet/xorbs/aa/bb");
        // A second put keeps the first copy.
        store
            .put_checked(Space::Xorb, key, vec![Bytes::from_static(b"other")])
            .await
            .expect("put again");
        assert_eq!(
            collect(
                store
                    .read_keyed(Space::Xorb, key, None)
                    .await
                    .expect("read")
            )
            .await,
            b"xorb bytes"
        );
        let part = store
            .read_keyed(Space::Xorb, key, Some(ByteRange { start: 5, end: 9 }))
            .await
            .expect("range");
        assert_eq!(collect(part).await, b"bytes");
        // Keyed objects and LFS objects do not share a namespace.
        assert_eq!(store.size(key).await.expect("size"), None);
        let leftovers = std::fs::read_dir(dir.path().join("xet/tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0);
        for bad in ["../../etc/passwd", "ABC", &"A".repeat(64)] {
            assert!(store.size_keyed(Space::Xorb, bad).await.is_err());
            assert!(
                store
                    .put_checked(Space::Xorb, bad, vec![Bytes::new()])
                    .await
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn invalid_ids_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path(), &dir.path().join("xet"))
            .await
            .expect("open");
        assert!(store.size("../../etc/passwd").await.is_err());
        assert!(store.read(&"A".repeat(64), None).await.is_err());
    }

    #[tokio::test]
    async fn list_quarantine_restore_and_purge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path(), &dir.path().join("xet"))
            .await
            .expect("open");
        let oid = sha(b"hello world");
        store
            .put_verified(&oid, 11, body(&[b"hello world"]))
            .await
            .expect("put");
        let key = "5d8d74fff21a49bf3e66d5854e81bd6c2efea4e757846885a66a7666e038733f";
        store
            .put_checked(Space::Xorb, key, vec![Bytes::from_static(b"xorb")])
            .await
            .expect("put xorb");
        let lfs = store.list(ObjectKind::Lfs).await.expect("list");
        assert_eq!(lfs.len(), 1);
        assert_eq!((lfs[0].key.as_str(), lfs[0].size), (oid.as_str(), 11));
        assert!(lfs[0].modified_ms > 0);
        let xorbs = store
            .list(ObjectKind::Keyed(Space::Xorb))
            .await
            .expect("list");
        assert_eq!(xorbs.len(), 1);
        assert_eq!(xorbs[0].key, key);

        // Quarantined: invisible, listed as quarantined, restorable.
        let moved = store.quarantine(ObjectKind::Lfs, &oid).await.expect("q");
        assert_eq!(moved.map(|m| m.size), Some(11));
        assert_eq!(store.size(&oid).await.expect("size"), None);
        assert!(store.list(ObjectKind::Lfs).await.expect("list").is_empty());
        assert_eq!(
            store
                .quarantined(ObjectKind::Lfs)
                .await
                .expect("quarantined"),
            vec![oid.clone()]
        );
        store.restore(ObjectKind::Lfs, &oid).await.expect("restore");
        assert_eq!(store.size(&oid).await.expect("size"), Some(11));
        assert!(
            store
                .quarantined(ObjectKind::Lfs)
                .await
                .expect("q")
                .is_empty()
        );

        // Purged: gone for good; purging or quarantining again is harmless.
        let kind = ObjectKind::Keyed(Space::Xorb);
        assert!(store.quarantine(kind, key).await.expect("q").is_some());
        store.purge(kind, key).await.expect("purge");
        store.purge(kind, key).await.expect("purge again");
        assert!(store.quarantine(kind, key).await.expect("q").is_none());
        assert_eq!(
            store.size_keyed(Space::Xorb, key).await.expect("size"),
            None
        );
        assert!(store.quarantined(kind).await.expect("q").is_empty());
        assert!(store.quarantine(kind, "../x").await.is_err());
    }

    #[tokio::test]
    async fn opening_keeps_fresh_staging_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let xet = dir.path().join("xet");
        LocalBlobStore::open(dir.path(), &xet).await.expect("open");
        // An upload of a running server is being staged while an admin command opens the store.
        let fresh = dir.path().join("tmp").join("in-flight");
        std::fs::write(&fresh, b"partial").expect("write");
        let stale = dir.path().join("tmp").join("crashed");
        std::fs::write(&stale, b"old").expect("write");
        let old = SystemTime::now() - Duration::from_secs(2 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .and_then(|f| f.set_modified(old))
            .expect("age");
        LocalBlobStore::open(dir.path(), &xet)
            .await
            .expect("reopen");
        assert!(fresh.exists(), "a fresh staging file must survive");
        assert!(!stale.exists(), "a stale staging file is dropped");
    }
}
