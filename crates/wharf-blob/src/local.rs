//! Objects as files under `{root}/objects/{aa}/{bb}/{oid}`; uploads are staged in `{root}/tmp`
//! on the same filesystem, fsynced, then renamed into place, and the directory is fsynced.

use crate::{BlobStore, ByteRange, ByteStream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::io::SeekFrom;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use wharf_core::lfs_pointer::is_sha256_hex;
use wharf_core::{Error, ErrorKind, Result};

/// Chunk size when streaming objects out: large reads keep syscalls and wakeups few.
const READ_CHUNK: usize = 1 << 20;

/// LFS objects on local disk.
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Opens (creating) a store rooted at `root`, and clears staging files a crash left behind.
    pub async fn open(root: &Path) -> Result<LocalBlobStore> {
        fs::create_dir_all(root.join("objects")).await?;
        let tmp = root.join("tmp");
        if fs::try_exists(&tmp).await? {
            fs::remove_dir_all(&tmp).await?;
        }
        fs::create_dir_all(&tmp).await?;
        Ok(LocalBlobStore {
            root: root.to_path_buf(),
        })
    }

    /// The final path of an object. Only called with validated ids.
    fn object_path(&self, oid: &str) -> PathBuf {
        self.root
            .join("objects")
            .join(&oid[0..2])
            .join(&oid[2..4])
            .join(oid)
    }

    /// Makes a fully written staging file visible as `oid`: fsync, rename into place, fsync the
    /// directory. On failure the staging file is removed.
    async fn publish(&self, file: File, staging: &Path, oid: &str) -> Result<()> {
        let done = async {
            file.sync_all().await?;
            drop(file);
            let target = self.object_path(oid);
            let dir = target.parent().ok_or_else(|| {
                Error::internal(format!("object path {} has no parent", target.display()))
            })?;
            fs::create_dir_all(dir).await?;
            fs::rename(staging, &target).await?;
            fsync_dir(dir).await
        }
        .await;
        if done.is_err() {
            let _ = fs::remove_file(staging).await;
        }
        done
    }

    fn staging_path(&self) -> PathBuf {
        let mut rnd = [0u8; 12];
        // A collision is harmless (create_new below fails and the upload is retried), so a
        // failing random source only degrades uniqueness.
        let _ = getrandom::fill(&mut rnd);
        self.root.join("tmp").join(hex::encode(rnd))
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
        match fs::metadata(self.object_path(oid)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
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
        let mut file = match File::open(self.object_path(oid)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::entry_not_found(oid));
            }
            Err(e) => return Err(e.into()),
        };
        let stream: ByteStream = match range {
            None => ReaderStream::with_capacity(file, READ_CHUNK).boxed(),
            Some(r) => {
                file.seek(SeekFrom::Start(r.start)).await?;
                let len = r.end.saturating_sub(r.start) + 1;
                ReaderStream::with_capacity(file.take(len), READ_CHUNK).boxed()
            }
        };
        Ok(stream)
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
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
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
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
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
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
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
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
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
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
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
    async fn invalid_ids_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
        assert!(store.size("../../etc/passwd").await.is_err());
        assert!(store.read(&"A".repeat(64), None).await.is_err());
    }
}
