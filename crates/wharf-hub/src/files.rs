//! The read side of files: tree listings, paths-info, and resolving a path at a revision to
//! bytes (from git for regular files, from the blob store for LFS files, reconstructed from Xet
//! storage for LFS files that only exist there).

use crate::access::Need;
use crate::{Caller, Hub, RepoAddress, RepoHandle, blocking};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use wharf_blob::{ByteRange, ByteStream};
use wharf_core::{Error, Result, lfs_pointer::LfsPointer, normalize_repo_path};
use wharf_git::{CommitInfo, EntryKind, GitRepo, TreeEntry};

/// One page of a tree listing.
#[derive(Debug, Clone)]
pub struct TreePage {
    pub commit: String,
    pub entries: Vec<TreeEntry>,
    /// Filled only when expanded.
    pub last_commits: HashMap<String, CommitInfo>,
    /// The Xet file hash of each LFS entry stored in Xet, keyed by LFS oid (sha256).
    pub xet_hashes: HashMap<String, String>,
    pub has_more: bool,
}

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub enum FileSource {
    Git {
        oid: String,
    },
    Lfs {
        oid: String,
    },
    /// An LFS file whose object exists only in Xet storage: reconstructed from xorbs.
    Xet {
        oid: String,
        file_hash: String,
    },
}

/// A resolved file, ready to be described in headers and streamed.
#[derive(Clone)]
pub struct FileContent {
    pub repo_id: i64,
    pub commit: String,
    pub path: String,
    /// The real size (of the LFS object for LFS files).
    pub size: u64,
    /// The git blob id (of the pointer for LFS files).
    pub blob_oid: String,
    pub lfs: Option<LfsPointer>,
    pub source: FileSource,
    /// The Xet file hash when the LFS object is registered in Xet storage (even if the LFS
    /// blob exists too): Xet clients can then download through the CAS.
    pub xet_hash: Option<String>,
    git: Arc<GitRepo>,
}

impl FileContent {
    /// The content's identity for caches: git blob sha1, or the LFS sha256.
    pub fn etag(&self) -> &str {
        match &self.source {
            FileSource::Git { oid } | FileSource::Lfs { oid } | FileSource::Xet { oid, .. } => oid,
        }
    }
}

/// Git blobs up to this size are read whole; larger ones (and any range of them) stream from
/// `git cat-file`, so a request never holds more than a pipe's worth of a big blob.
const WHOLE_BLOB_READ: u64 = 1 << 20;

impl Hub {
    /// Lists `path` ("" = root) at `rev`; `offset`/`limit` page through the entries.
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the query parameters of the tree endpoint"
    )]
    pub async fn tree(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        path: &str,
        recursive: bool,
        expand: bool,
        offset: usize,
        limit: usize,
    ) -> Result<TreePage> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let commit = self.resolve_revision(&handle, rev).await?;
        let dir = if path.trim_matches('/').is_empty() {
            String::new()
        } else {
            normalize_repo_path(path)?
        };
        let git = handle.git.clone();
        let (c, d) = (commit.clone(), dir.clone());
        let all = blocking(move || git.list_tree(&c, &d, recursive)).await?;
        let all = all.ok_or_else(|| Error::entry_not_found(&dir))?;
        let has_more = all.len() > offset.saturating_add(limit);
        let mut entries: Vec<TreeEntry> = all.into_iter().skip(offset).take(limit).collect();
        self.vet_pointers(handle.repo.id, &mut entries).await?;
        let last_commits = if expand && !recursive {
            // A folder listing: the cached, incrementally maintained answer.
            let all = self.folder_last_commits(&handle, &commit, &dir).await?;
            entries
                .iter()
                .filter_map(|e| Some((e.path.clone(), all.get(&e.path)?.clone())))
                .collect()
        } else {
            self.last_commits(&handle, &commit, &entries, expand)
                .await?
        };
        let xet_hashes = self.xet_hashes_of(&entries).await?;
        Ok(TreePage {
            commit,
            entries,
            last_commits,
            xet_hashes,
            has_more,
        })
    }

    /// The entries for `paths` that exist at `rev`; others are silently left out.
    pub async fn paths_info(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        paths: &[String],
        expand: bool,
    ) -> Result<TreePage> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let commit = self.resolve_revision(&handle, rev).await?;
        let wanted: Vec<String> = paths
            .iter()
            .filter_map(|p| normalize_repo_path(p).ok())
            .collect();
        let git = handle.git.clone();
        let c = commit.clone();
        let mut entries = blocking(move || {
            let mut found = Vec::new();
            for p in &wanted {
                if let Some(e) = git.entry(&c, p)? {
                    found.push(e);
                }
            }
            Ok(found)
        })
        .await?;
        self.vet_pointers(handle.repo.id, &mut entries).await?;
        let last_commits = self
            .last_commits(&handle, &commit, &entries, expand)
            .await?;
        let xet_hashes = self.xet_hashes_of(&entries).await?;
        Ok(TreePage {
            commit,
            entries,
            last_commits,
            xet_hashes,
            has_more: false,
        })
    }

    /// Turns entries whose pointer names an object this repository does not own (with that
    /// size) into the plain files they are. Content is only ever served from objects linked to
    /// the repository being read, so knowing another repository's hash never reads its data;
    /// every read of a tree entry's content goes through here first.
    pub(crate) async fn vet_pointers(&self, repo_id: i64, entries: &mut [TreeEntry]) -> Result<()> {
        let oids: Vec<String> = entries
            .iter()
            .filter_map(|e| e.lfs.as_ref().map(|p| p.oid.clone()))
            .collect();
        if oids.is_empty() {
            return Ok(());
        }
        let owned = self.meta.repo_lfs_objects(repo_id, &oids).await?;
        for entry in entries.iter_mut() {
            let keep = entry.lfs.as_ref().is_some_and(|p| {
                owned
                    .get(&p.oid)
                    .is_some_and(|size| u64::try_from(*size).ok() == Some(p.size))
            });
            if !keep {
                entry.lfs = None;
            }
        }
        Ok(())
    }

    /// One entry, vetted like [`vet_pointers`](Hub::vet_pointers).
    pub(crate) async fn vet_pointer(&self, repo_id: i64, entry: TreeEntry) -> Result<TreeEntry> {
        let mut one = [entry];
        self.vet_pointers(repo_id, &mut one).await?;
        let [entry] = one;
        Ok(entry)
    }

    /// The Xet file hashes of the LFS entries among `entries`, keyed by LFS oid.
    async fn xet_hashes_of(&self, entries: &[TreeEntry]) -> Result<HashMap<String, String>> {
        let oids: Vec<String> = entries
            .iter()
            .filter_map(|e| e.lfs.as_ref().map(|p| p.oid.clone()))
            .collect();
        if oids.is_empty() {
            return Ok(HashMap::new());
        }
        self.meta.xet_hashes_for_sha256s(&oids).await
    }

    /// The last commit of each entry, when `expand` asks for it (a history walk).
    async fn last_commits(
        &self,
        handle: &RepoHandle,
        commit: &str,
        entries: &[TreeEntry],
        expand: bool,
    ) -> Result<HashMap<String, CommitInfo>> {
        if !expand {
            return Ok(HashMap::new());
        }
        let git = handle.git.clone();
        let paths: Vec<String> = entries.iter().map(|e| e.path.clone()).collect();
        let c = commit.to_string();
        blocking(move || git.last_commits(&c, &paths)).await
    }

    /// Resolves `path` at `rev` for reading its content. `Ok((commit, None))` when the file
    /// does not exist at that commit, so the caller can still report which commit it looked at.
    pub async fn resolve_file(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        path: &str,
    ) -> Result<(String, Option<FileContent>)> {
        let handle = self.repo(caller, addr, Need::Download).await?;
        let commit = self.resolve_revision(&handle, rev).await?;
        let Ok(path) = normalize_repo_path(path) else {
            return Ok((commit, None));
        };
        let git = handle.git.clone();
        let (c, p) = (commit.clone(), path.clone());
        let entry = blocking(move || git.entry(&c, &p)).await?;
        let Some(entry) = entry.filter(|e| e.kind == EntryKind::File) else {
            return Ok((commit, None));
        };
        let entry = self.vet_pointer(handle.repo.id, entry).await?;
        let content = self.describe(&handle, commit.clone(), entry).await?;
        Ok((commit, Some(content)))
    }

    async fn describe(
        &self,
        handle: &RepoHandle,
        commit: String,
        entry: TreeEntry,
    ) -> Result<FileContent> {
        let git = handle.git.clone();
        // `entry` was vetted: a pointer here names an object this repository owns. The LFS
        // blob when it exists (the fast path), else the Xet file. A pointer whose object is
        // missing in both is served as the text it is.
        let (lfs, source, xet_hash) = match &entry.lfs {
            Some(p) => {
                let xet_hash = self.xet_hash_of(&p.oid).await?;
                if self.blobs.size(&p.oid).await?.is_some() {
                    let source = FileSource::Lfs { oid: p.oid.clone() };
                    (Some(p.clone()), source, xet_hash)
                } else if let Some(file_hash) = xet_hash.clone() {
                    let source = FileSource::Xet {
                        oid: p.oid.clone(),
                        file_hash,
                    };
                    (Some(p.clone()), source, xet_hash)
                } else {
                    let source = FileSource::Git {
                        oid: entry.oid.clone(),
                    };
                    (None, source, None)
                }
            }
            None => {
                let source = FileSource::Git {
                    oid: entry.oid.clone(),
                };
                (None, source, None)
            }
        };
        let size = lfs.as_ref().map_or(entry.size, |p| p.size);
        Ok(FileContent {
            repo_id: handle.repo.id,
            commit,
            path: entry.path,
            size,
            blob_oid: entry.oid,
            lfs,
            source,
            xet_hash,
            git,
        })
    }

    /// Streams a resolved file, or one inclusive range of it.
    pub async fn read_file(
        &self,
        file: &FileContent,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        match &file.source {
            FileSource::Lfs { oid } => self.blobs.read(oid, range).await,
            FileSource::Xet { file_hash, .. } => self.read_xet_file(file_hash, range).await,
            FileSource::Git { oid } if file.size <= WHOLE_BLOB_READ && range.is_none() => {
                let git = file.git.clone();
                let oid = oid.clone();
                let data = blocking(move || git.read_blob(&oid)).await?;
                let bytes = Bytes::from(data);
                Ok(futures::stream::once(async move { Ok(bytes) }).boxed())
            }
            FileSource::Git { oid } => {
                let window = range.unwrap_or(ByteRange {
                    start: 0,
                    end: file.size.saturating_sub(1),
                });
                wharf_git::transport::blob_stream(file.git.path(), oid, window.start, window.end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::web::test_support::{collect, hub, user_caller};
    use crate::{Caller, CommitHeader, CommitOp, RepoAddress};
    use wharf_core::RepoType;
    use wharf_core::lfs_pointer::LfsPointer;
    use wharf_git::{Signature, TreeChange};

    /// A pointer naming another repository's object, written into git directly (as data from
    /// before the write rules, or any path that missed them would leave it), reads as the text
    /// it is: resolve, tree entries and paths-info never follow it.
    #[tokio::test]
    async fn pointers_to_objects_of_other_repositories_are_plain_files() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        hub.create_repo(&alice, RepoType::Model, None, "secret", true)
            .await
            .expect("create");
        let secret = b"private weights".to_vec();
        let (oid, size) = hub
            .blobs
            .put_hashing(crate::web::test_support::stream(secret.clone()), 1 << 20)
            .await
            .expect("store");
        let repo = hub
            .repo(
                &alice,
                &RepoAddress::new(RepoType::Model, "alice", "secret"),
                crate::Need::Write,
            )
            .await
            .expect("repo");
        hub.meta
            .link_lfs_object(repo.repo.id, &oid, size as i64)
            .await
            .expect("link");

        hub.create_repo(&bob, RepoType::Model, None, "thief", false)
            .await
            .expect("create");
        let thief = RepoAddress::new(RepoType::Model, "bob", "thief");
        let handle = hub
            .repo(&bob, &thief, crate::Need::Write)
            .await
            .expect("repo");
        let pointer = LfsPointer {
            oid: oid.clone(),
            size,
        }
        .to_text()
        .into_bytes();
        let head = handle
            .git
            .ref_target("refs/heads/main")
            .expect("ref")
            .expect("main");
        let author = Signature {
            name: "bob".into(),
            email: "bob@example.com".into(),
            time_ms: 0,
        };
        handle
            .git
            .commit(
                "refs/heads/main",
                Some(&head),
                vec![TreeChange::Upsert {
                    path: "stolen.bin".into(),
                    data: pointer.clone(),
                }],
                &author,
                "sneak",
            )
            .expect("raw commit");

        let anon = Caller::anonymous();
        let (_, file) = hub
            .resolve_file(&anon, &thief, "main", "stolen.bin")
            .await
            .expect("resolve");
        let file = file.expect("exists");
        assert!(file.lfs.is_none() && file.xet_hash.is_none());
        assert_eq!(file.size, pointer.len() as u64);
        let read = collect(hub.read_file(&file, None).await.expect("read")).await;
        assert_eq!(read, pointer, "the pointer text, never the private bytes");
        let page = hub
            .tree(&anon, &thief, "main", "", false, false, 0, 100)
            .await
            .expect("tree");
        let entry = page
            .entries
            .iter()
            .find(|e| e.path == "stolen.bin")
            .expect("entry");
        assert!(entry.lfs.is_none() && page.xet_hashes.is_empty());
        let info = hub
            .paths_info(&anon, &thief, "main", &["stolen.bin".into()], false)
            .await
            .expect("paths-info");
        assert!(info.entries[0].lfs.is_none());

        // The same pointer in the owner's repository is the LFS file it names.
        let mine = RepoAddress::new(RepoType::Model, "alice", "secret");
        hub.commit(
            &alice,
            &mine,
            "main",
            CommitHeader::default(),
            vec![CommitOp::LfsFile {
                path: "w.bin".into(),
                oid,
                size: Some(size as i64),
            }],
            false,
        )
        .await
        .expect("commit");
        let (_, file) = hub
            .resolve_file(&alice, &mine, "main", "w.bin")
            .await
            .expect("resolve");
        let file = file.expect("exists");
        assert_eq!(
            collect(hub.read_file(&file, None).await.expect("read")).await,
            secret
        );
    }
}
