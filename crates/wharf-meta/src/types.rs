//! Rows and queries of the metadata store.

use serde_json::Value;
use wharf_core::{RepoType, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    User,
    Org,
}

/// A user or an organization (they share one namespace).
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub kind: AccountKind,
    pub fullname: String,
    pub email: Option<String>,
    /// Argon2 PHC string; users only, and only when a password was set.
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub fullname: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub id: i64,
    pub user_id: i64,
    pub role: Role,
    pub label: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: i64,
    /// SHA-256 hex of the token value.
    pub token_hash: String,
    pub role: Role,
    pub label: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub id: i64,
    /// Opaque, immutable name of the repo's folder on disk, so renames touch only the database.
    pub storage_id: String,
    pub repo_type: RepoType,
    pub namespace: String,
    pub name: String,
    pub private: bool,
    /// `None`, `"auto"` or `"manual"`.
    pub gated: Option<String>,
    pub created_at: i64,
    pub last_modified: i64,
    /// Head of `main` when last recorded.
    pub sha: Option<String>,
    /// README.md front matter at `main`, as JSON.
    pub card_data: Option<Value>,
    pub tags: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    pub downloads: i64,
    pub likes: i64,
}

#[derive(Debug, Clone)]
pub struct NewRepo {
    pub storage_id: String,
    pub repo_type: RepoType,
    pub namespace: String,
    pub name: String,
    pub private: bool,
    pub created_at: i64,
}

/// What `main` looks like after a commit, for the indexed columns.
#[derive(Debug, Clone, Default)]
pub struct MainState {
    pub sha: String,
    pub card_data: Option<Value>,
    pub tags: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoSort {
    /// By id (creation order), ascending: the default listing order.
    Id,
    LastModified,
    CreatedAt,
    Downloads,
    Likes,
}

/// A listing query. Private repos are returned only when their namespace is in
/// `visible_namespaces` (the caller's own name and organizations) or `see_all` is set (admins).
#[derive(Debug, Clone)]
pub struct RepoQuery {
    pub repo_type: RepoType,
    /// Case-insensitive substring of `namespace/name`.
    pub search: Option<String>,
    /// Exact namespace, case-insensitive.
    pub author: Option<String>,
    /// Every one of these tags must be present.
    pub tags: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub visible_namespaces: Vec<String>,
    pub see_all: bool,
    pub sort: RepoSort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// A browser log-in session (the web interface's equivalent of a token).
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub created_at: i64,
    /// Epoch milliseconds after which the session no longer authenticates.
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: i64,
    /// SHA-256 hex of the session value (the value itself is never stored).
    pub session_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

// --- Xet storage ------------------------------------------------------------------------------

/// A xorb Wharf verified and stored (hashes are Xet hash strings, 64 lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XetXorb {
    pub hash: String,
    pub num_chunks: i64,
    /// Sum of the uncompressed chunk sizes.
    pub raw_size: i64,
    /// Bytes of the chunk stream; the stored footer starts here and fetches stay below it.
    pub data_size: i64,
    /// Bytes in the blob store, footer included.
    pub stored_size: i64,
    /// `num_chunks` × (u32 LE physical end, u32 LE raw end): the chunk table's database form.
    pub chunk_ends: Vec<u8>,
    pub created_at: i64,
}

/// One term of a Xet file: chunks `[chunk_start, chunk_end)` of a xorb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XetTerm {
    pub xorb_hash: String,
    pub chunk_start: i64,
    pub chunk_end: i64,
    /// Uncompressed bytes of those chunks.
    pub raw_size: i64,
}

/// Where a registered Xet file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XetSource {
    /// An uploaded, verified shard.
    Xet,
    /// Wharf's own conversion of an LFS object.
    Lfs,
}

impl XetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            XetSource::Xet => "xet",
            XetSource::Lfs => "lfs",
        }
    }
}

/// A registered Xet file and its terms, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XetFile {
    pub file_hash: String,
    /// The LFS oid, recomputed by Wharf from the reconstructed bytes.
    pub sha256: String,
    pub size: i64,
    pub terms: Vec<XetTerm>,
    pub created_at: i64,
}

/// A file to register (see [`crate::MetaStore::register_xet_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewXetFile {
    pub file_hash: String,
    pub sha256: String,
    pub size: i64,
    pub source: XetSource,
    pub terms: Vec<XetTerm>,
    pub created_at: i64,
}

/// One row of the global dedup index: this chunk is chunk `chunk_index` of that xorb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XetChunkRef {
    pub chunk_hash: String,
    pub xorb_hash: String,
    pub chunk_index: i64,
}

/// What a registration changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XetRegistration {
    /// Files that were not registered before.
    pub files_added: u64,
    /// (repository, sha256) ownership links that did not exist before.
    pub links_added: u64,
}

/// Whose repositories' Xet data a dedup lookup may reveal: public repositories always, private
/// ones in these namespaces (the caller's own name and organizations), or all with `see_all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XetVisibility {
    pub namespaces: Vec<String>,
    pub see_all: bool,
}

/// Where a conversion job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XetJobState {
    Queued,
    Done,
    Failed,
}

// --- storage accounting and garbage collection ---------------------------------------------------

/// A repository's ownership of an LFS object (uploaded through LFS or registered through Xet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfsLink {
    pub repo_id: i64,
    pub oid: String,
    pub size: i64,
}

/// The xorbs a repository's objects use through their Xet files, each xorb counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XetRepoUsage {
    pub repo_id: i64,
    pub xorbs: i64,
    /// Σ `stored_size` of those xorbs.
    pub stored_bytes: i64,
}

/// Everything the Xet index holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XetTotals {
    pub files: i64,
    pub xorbs: i64,
    /// Σ `stored_size` of every recorded xorb.
    pub stored_bytes: i64,
}

/// One object garbage collection may remove: its key and the bytes it frees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarbageItem {
    pub key: String,
    pub size: i64,
}

/// What no repository needs any more, as of a cutoff time (see
/// [`crate::MetaStore::xet_garbage`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XetGarbage {
    /// Registered files whose sha256 no repository links (`size` = the file's size).
    pub files: Vec<GarbageItem>,
    /// Xorbs no live file uses (`size` = stored bytes).
    pub xorbs: Vec<GarbageItem>,
}

// --- consistency checks (wharf fsck) -------------------------------------------------------------

/// What the start-up reconciliation compares with a repository's refs: its folder, the head of
/// `main` the index shows, and when it was last modified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoHead {
    pub id: i64,
    pub storage_id: String,
    pub repo_type: RepoType,
    pub namespace: String,
    pub name: String,
    pub sha: Option<String>,
    pub last_modified: i64,
}

/// One xorb a registered Xet file's terms use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XetFileXorb {
    pub file_hash: String,
    /// The LFS oid of the file.
    pub sha256: String,
    pub xorb_hash: String,
}
