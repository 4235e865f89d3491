//! Content-addressed storage of LFS objects and Xet xorbs. [`BlobStore`] is the seam for a
//! scale-out backend (S3); [`LocalBlobStore`] keeps objects on local disk. Every LFS put hashes
//! the bytes while they stream in and publishes the object only when its SHA-256 and size match
//! what was announced: nothing partial or wrong is ever visible under an object id. Keyed spaces
//! ([`Space`]) hold objects their caller verified before storing (a xorb is checked against its
//! Xet hash by `wharf-xet`); they are published just as atomically and durably.

mod local;

pub use local::LocalBlobStore;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use wharf_core::Result;

/// A stream of body chunks, as it comes off the network.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// An inclusive byte range `start..=end` inside an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// A key space for objects the caller verifies itself, keyed by 64 lowercase hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Xet xorbs in their stored form (chunk stream + footer), keyed by their Xet hash string.
    Xorb,
}

/// Which objects a maintenance call (listing, garbage collection) addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Whole-file LFS objects, keyed by their SHA-256.
    Lfs,
    /// Objects of a keyed space.
    Keyed(Space),
}

/// An object as it lies in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    /// Last time its bytes were written or re-published, epoch milliseconds.
    pub modified_ms: i64,
}

/// Where LFS content lives, keyed by its lowercase hex SHA-256.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// The stored size of the object, or None when it is absent.
    async fn size(&self, oid: &str) -> Result<Option<u64>>;
    /// Streams `body` into the store. It becomes visible under `oid` only if exactly `size` bytes
    /// arrived and their SHA-256 is `oid`; otherwise nothing is kept and a `BadRequest` error says
    /// what differed. Putting an object that already exists re-verifies the body and keeps one copy.
    async fn put_verified(&self, oid: &str, size: u64, body: ByteStream) -> Result<()>;
    /// Streams `body` into the store without knowing its id in advance: the bytes are hashed
    /// while they are staged, then published under their SHA-256 (atomically, durably, like
    /// [`put_verified`](BlobStore::put_verified)). Returns `(oid, size)`. More than `max_size`
    /// bytes is `PayloadTooLarge` and nothing is kept. Storing content that already exists keeps
    /// one copy.
    async fn put_hashing(&self, body: ByteStream, max_size: u64) -> Result<(String, u64)>;
    /// Reads the object, or one range of it. `EntryNotFound` when absent.
    async fn read(&self, oid: &str, range: Option<ByteRange>) -> Result<ByteStream>;

    /// Stores the concatenation of `parts`, already verified by the caller, under `key` in
    /// `space`: staged, made durable, then published atomically. Idempotent: when the key exists
    /// the bytes are not written again (keys name their content).
    async fn put_checked(&self, space: Space, key: &str, parts: Vec<Bytes>) -> Result<()>;
    /// Reads an object of a keyed space, or one range of it. `EntryNotFound` when absent.
    async fn read_keyed(
        &self,
        space: Space,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ByteStream>;
    /// The stored size of an object of a keyed space, or None when it is absent.
    async fn size_keyed(&self, space: Space, key: &str) -> Result<Option<u64>>;

    // --- maintenance (garbage collection) -------------------------------------------------
    /// Every published object of one kind (staging and quarantined files are not listed).
    async fn list(&self, kind: ObjectKind) -> Result<Vec<StoredObject>>;
    /// Moves a published object out of sight in one atomic step: readers see it absent and a
    /// new put publishes it afresh. Returns what was moved, or None when it was absent. Until
    /// [`purge`](BlobStore::purge) nothing is lost: [`restore`](BlobStore::restore) undoes it.
    async fn quarantine(&self, kind: ObjectKind, key: &str) -> Result<Option<StoredObject>>;
    /// Puts a quarantined object back (over a copy published meanwhile: a key names its bytes).
    async fn restore(&self, kind: ObjectKind, key: &str) -> Result<()>;
    /// Deletes a quarantined object for good (absent is fine).
    async fn purge(&self, kind: ObjectKind, key: &str) -> Result<()>;
    /// The keys in quarantine: what an interrupted garbage collection left behind.
    async fn quarantined(&self, kind: ObjectKind) -> Result<Vec<String>>;
}
