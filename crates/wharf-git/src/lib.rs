//! Git storage of Wharf repositories: bare repositories read and written in-process with gix.
//!
//! Every function is blocking; async callers wrap calls in `spawn_blocking`. The wire protocol
//! (clone, fetch, push) is served by the `git` binary elsewhere, so everything written here must
//! stay compatible with it: git-style `.lock` files for refs, loose objects, and explicit fsyncs
//! because gix never flushes to disk.

mod changes;
mod diff;
mod durable;
mod editor;
mod history;
mod init;
pub mod limits;
mod odb;
mod rawtree;
mod refname;
mod refs;
pub mod transport;
mod tree;
mod write;

use std::path::{Path, PathBuf};

pub use diff::{ChangeKind, DiffLimits, DiffReport, FileDiff, Withheld};
pub use refname::is_valid_ref_name;
pub use wharf_core::lfs_pointer::LfsPointer;
use wharf_core::{Error, Result};

/// Author/committer identity.
#[derive(Debug, Clone)]
pub struct Signature {
    pub name: String,
    pub email: String,
    pub time_ms: i64,
}

#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// 40 lowercase hex digits.
    pub id: String,
    /// First line of the message.
    pub title: String,
    /// The rest after the title and the blank line, "" if none.
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// Author time, epoch milliseconds.
    pub date_ms: i64,
    pub parents: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
}

#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// Full path from the repository root, no leading '/'.
    pub path: String,
    pub kind: EntryKind,
    /// Git blob or tree id, 40 hex digits.
    pub oid: String,
    /// Blob size in bytes (the pointer's size for LFS files); 0 for directories.
    pub size: u64,
    /// Set when the blob is a small, valid LFS pointer.
    pub lfs: Option<LfsPointer>,
}

#[derive(Debug, Clone)]
pub struct RefInfo {
    /// "main" for refs/heads/main, "v1.0" for refs/tags/v1.0, the full name for PRs and converts.
    pub name: String,
    pub full_ref: String,
    /// The commit the ref points to, annotated tags peeled.
    pub target_commit: String,
}

#[derive(Debug, Clone, Default)]
pub struct Refs {
    pub branches: Vec<RefInfo>,
    pub tags: Vec<RefInfo>,
    pub pull_requests: Vec<RefInfo>,
    pub converts: Vec<RefInfo>,
}

/// One change of a server-side commit; applied in order, a later change on the same path wins.
#[derive(Debug, Clone)]
pub enum TreeChange {
    /// Writes a regular file (mode 100644), creating parent directories.
    Upsert { path: String, data: Vec<u8> },
    /// Removes a file; EntryNotFound if there is none.
    Delete { path: String },
    /// Removes a directory (a trailing '/' is allowed); EntryNotFound if there is none.
    DeleteFolder { path: String },
}

/// What a ref must look like before it is moved.
#[derive(Debug, Clone, Copy)]
pub enum RefExpect<'a> {
    MustNotExist,
    MustEqual(&'a str),
    Any,
}

/// A bare repository on disk. Cheap to share between threads; each call opens a thread-local view.
pub struct GitRepo {
    inner: gix::ThreadSafeRepository,
    path: PathBuf,
    /// Size and LFS pointer of blobs already described by tree listings (blobs never change).
    blob_info: tree::BlobInfoCache,
    /// Paths changed by (commit, parent) pairs already compared by `path_log`.
    changes: changes::ChangeCache,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo").field("path", &self.path).finish()
    }
}

impl GitRepo {
    /// Creates a bare repository at `path` with HEAD on `main` and the configuration the
    /// smart-HTTP server needs. Conflict if something already exists there.
    pub fn init(path: &Path) -> Result<GitRepo> {
        init::create_bare(path)?;
        GitRepo::open(path)
    }

    /// Opens an existing bare repository; RepoNotFound if there is none at `path`.
    pub fn open(path: &Path) -> Result<GitRepo> {
        if !path.join("HEAD").is_file() {
            return Err(Error::repo_not_found());
        }
        // Isolated: the server's behaviour must not depend on the user's or system git config.
        let options = gix::open::Options::isolated()
            .open_path_as_is(true)
            .with(gix::sec::Trust::Full);
        let inner = gix::ThreadSafeRepository::open_opts(path, options).map_err(odb::internal)?;
        Ok(GitRepo {
            inner,
            path: path.to_path_buf(),
            blob_info: tree::BlobInfoCache::default(),
            changes: changes::ChangeCache::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A thread-local handle; cheap, and required because `gix::Repository` is not `Sync`.
    fn repo(&self) -> gix::Repository {
        self.inner.to_thread_local()
    }

    fn objects_dir(&self) -> &Path {
        self.inner.objects_dir()
    }

    fn git_dir(&self) -> &Path {
        self.inner.git_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_repo_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GitRepo>();
    }
}
