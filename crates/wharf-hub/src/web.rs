//! Use cases behind the web interface's repository pages: listing counts and tag facets,
//! commit diffs and comparisons (bounded by [`PAGE_DIFF_LIMITS`] and cached by commit pair),
//! per-file history, the editor's card preview, which branch a page may change, and browser
//! uploads (streamed into the blob store, then committed through [`Hub::commit`], so every
//! commit rule and the indexing stay in one place). The safetensors summary lives in
//! `safetensors.rs`.

use std::time::Duration;

use futures::StreamExt;
use wharf_blob::{ByteRange, ByteStream};
use wharf_core::{Error, ErrorKind, Result, normalize_repo_path};
use wharf_git::{CommitInfo, DiffLimits, DiffReport, EntryKind};
use wharf_lfs::LfsRules;

use crate::access::Need;
use crate::blob_rules;
use crate::commits::{root_text_file, target_ref, wants_lfs};
use crate::repos::repo_query;
use crate::{
    Caller, CommitHeader, CommitOp, CommitOutcome, CommitPage, Hub, ListQuery, RepoAddress,
    RepoHandle, blocking,
};

/// The largest single file a browser upload accepts.
pub const MAX_BROWSER_UPLOAD: u64 = 50 << 30;
/// How many leading bytes decide whether an upload looks binary (as preupload's sample).
const SNIFF_BYTES: u64 = 512;
/// The largest text the editor's live preview renders.
pub const MAX_PREVIEW_BYTES: usize = 1 << 20;
/// Diffs kept in memory, weighed by their patches.
const DIFF_CACHE_BYTES: usize = 32 << 20;

/// What one commit or compare page may cost: it is open to anyone who may download, so each
/// view lists at most 3,000 files, patches at most 300 of them (each side at most 256 KiB and
/// 10,000 lines; larger files are never read), reads at most 4 MiB of blobs and stops starting
/// new work after 2 seconds. What is past a limit is listed as withheld.
pub const PAGE_DIFF_LIMITS: DiffLimits = DiffLimits {
    max_files: 3000,
    max_patched_files: 300,
    max_patch_side: 256 << 10,
    max_patch_lines: 10_000,
    max_read_side: 256 << 10,
    max_total_bytes: 4 << 20,
    max_time: Duration::from_secs(2),
};

/// Diffs by commit pair, as pages show them.
pub(crate) type DiffCache = crate::page_cache::BoundedCache<DiffReport>;

pub(crate) fn new_diff_cache() -> DiffCache {
    crate::page_cache::BoundedCache::new(DIFF_CACHE_BYTES)
}

/// One commit and what it changed against its first parent.
#[derive(Debug, Clone)]
pub struct CommitDiff {
    pub commit: CommitInfo,
    /// The changed files (sorted by path) within [`PAGE_DIFF_LIMITS`].
    pub diff: DiffReport,
}

/// A file uploaded from a browser and stored, waiting to be committed by
/// [`Hub::commit_staged`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// The normalised path it will have in the repository.
    pub path: String,
    /// SHA-256 of the content (lowercase hex), its key in the blob store.
    pub oid: String,
    pub size: u64,
    /// Committed as an LFS pointer (else as a regular git blob).
    pub lfs: bool,
}

/// Reads a whole stream, failing when it holds more than `cap` bytes.
pub(crate) async fn collect_stream(mut stream: ByteStream, cap: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if (out.len() as u64).saturating_add(chunk.len() as u64) > cap {
            return Err(Error::internal("stored object is larger than expected"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

impl Hub {
    /// How many repos [`list_repos`](Hub::list_repos) would list for `q` without paging, with
    /// the same visibility rules.
    pub async fn count_repos(&self, caller: &Caller, q: &ListQuery) -> Result<i64> {
        self.meta.count_repos(&repo_query(caller, q)).await
    }

    /// How many of the repos matching `q` (paging ignored) and visible to the caller carry each
    /// tag, most frequent first (ties by name).
    pub async fn facet_counts(&self, caller: &Caller, q: &ListQuery) -> Result<Vec<(String, i64)>> {
        self.meta.tag_counts(&repo_query(caller, q)).await
    }

    /// The commit `rev` resolves to and its changes against its first parent (everything is
    /// added for a root commit), within [`PAGE_DIFF_LIMITS`]. Gated repos show diffs only to
    /// those who may download.
    pub async fn commit_diff(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
    ) -> Result<CommitDiff> {
        let handle = self.repo(caller, addr, Need::Download).await?;
        let sha = self.resolve_revision(&handle, rev).await?;
        let git = handle.git.clone();
        let s = sha.clone();
        let commit = blocking(move || git.commit_info(&s)).await?;
        let parent = commit.parents.first().cloned();
        let diff = self.page_diff(&handle, parent, sha).await?;
        Ok(CommitDiff {
            commit,
            diff: (*diff).clone(),
        })
    }

    /// What changed from revision `base` to revision `head` (a two-dot tree comparison),
    /// within [`PAGE_DIFF_LIMITS`].
    pub async fn compare(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        base: &str,
        head: &str,
    ) -> Result<DiffReport> {
        let handle = self.repo(caller, addr, Need::Download).await?;
        let base = self.resolve_revision(&handle, base).await?;
        let head = self.resolve_revision(&handle, head).await?;
        let diff = self.page_diff(&handle, Some(base), head).await?;
        Ok((*diff).clone())
    }

    /// The diff between two commits (None = the empty tree) of a repository, from the cache
    /// when it was made before. A diff cut short by the clock is not kept: the next view,
    /// on a quieter server, may do better.
    async fn page_diff(
        &self,
        handle: &RepoHandle,
        old: Option<String>,
        new: String,
    ) -> Result<std::sync::Arc<DiffReport>> {
        // Commit ids name their trees for good; the repository keeps pairs of two
        // repositories that share history apart.
        let key = format!(
            "{}:{}..{new}",
            handle.repo.storage_id,
            old.as_deref().unwrap_or("")
        );
        if let Some(hit) = self.diffs.get(&key) {
            return Ok(hit);
        }
        let git = handle.git.clone();
        let report =
            blocking(move || git.diff_within(old.as_deref(), &new, PAGE_DIFF_LIMITS)).await?;
        let weight = report
            .files
            .iter()
            .map(|f| f.path.len() + f.patch.as_ref().map_or(0, String::len) + 200)
            .sum();
        if report.timed_out {
            return Ok(std::sync::Arc::new(report));
        }
        Ok(self.diffs.insert(key, report, weight))
    }

    /// How often the diff cache answered from memory, and how often a diff was computed.
    pub fn diff_cache_stats(&self) -> crate::CacheStats {
        self.diffs.stats()
    }

    /// A page of the commits reachable from `rev` that changed `path` (a file or a folder; ""
    /// for the whole repository), newest first, like `git log -- path`.
    pub async fn file_history(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        path: &str,
        offset: usize,
        limit: usize,
    ) -> Result<CommitPage> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let head = self.resolve_revision(&handle, rev).await?;
        let path = if path.trim_matches('/').is_empty() {
            String::new()
        } else {
            normalize_repo_path(path)?
        };
        let git = handle.git.clone();
        let (commits, has_more) =
            blocking(move || git.path_log(&head, &path, offset, limit)).await?;
        Ok(CommitPage { commits, has_more })
    }

    /// The sanitized HTML of a card as the editor previews it: the text without its front
    /// matter, rendered. Only for signed-in callers (`Unauthorized`): rendering costs CPU and
    /// visitors have nothing to edit; at most [`MAX_PREVIEW_BYTES`] (`PayloadTooLarge`).
    pub async fn preview_card(&self, caller: &Caller, text: String) -> Result<String> {
        if caller.user.is_none() {
            return Err(Error::unauthorized("Log in to preview a card"));
        }
        if text.len() > MAX_PREVIEW_BYTES {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                "The preview shows texts up to 1 MiB",
            ));
        }
        blocking(move || {
            let body = wharf_card::split_front_matter(&text).map_or(text.as_str(), |(_, b)| b);
            Ok(wharf_card::render_markdown(body))
        })
        .await
    }

    /// The repository a page that changes files (editor, upload) works on: the caller may
    /// write to it and `rev` is an existing branch (a tag or a commit cannot be changed).
    /// Checked before the page is shown and again, by the commit, when it is sent.
    pub async fn writable_branch(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
    ) -> Result<RepoHandle> {
        let handle = self.repo(caller, addr, Need::Write).await?;
        let branch = target_ref(rev)?;
        let git = handle.git.clone();
        match blocking(move || git.ref_target(&branch)).await? {
            Some(_) => Ok(handle),
            None => Err(Error::revision_not_found(rev)),
        }
    }

    /// Stores one file uploaded from a browser, streaming (never whole in memory): hashed into
    /// the blob store, linked to the repository, and classified as LFS or regular the way
    /// preupload does (the `.gitattributes` of `main`, over 10 MiB, or binary-looking first
    /// bytes). Commit it with [`commit_staged`](Hub::commit_staged). At most 50 GiB.
    pub async fn upload_file(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        path: &str,
        body: ByteStream,
    ) -> Result<StagedFile> {
        let handle = self.repo(caller, addr, Need::Write).await?;
        let path = normalize_repo_path(path)?;
        let (oid, size) = self.blobs.put_hashing(body, MAX_BROWSER_UPLOAD).await?;
        let stored = i64::try_from(size).map_err(Error::internal)?;
        self.meta
            .link_lfs_object(handle.repo.id, &oid, stored)
            .await?;
        let sample = if size > 0 {
            let range = ByteRange {
                start: 0,
                end: size.min(SNIFF_BYTES) - 1,
            };
            collect_stream(self.blobs.read(&oid, Some(range)).await?, SNIFF_BYTES).await?
        } else {
            Vec::new()
        };
        let rules = self.lfs_rules_at_main(&handle).await?;
        let lfs = wants_lfs(&rules, &path, size, &sample);
        if lfs {
            self.queue_xet_conversion(&oid).await;
        }
        Ok(StagedFile {
            path,
            oid,
            size,
            lfs,
        })
    }

    async fn lfs_rules_at_main(&self, handle: &RepoHandle) -> Result<LfsRules> {
        let git = handle.git.clone();
        blocking(move || {
            let text = match git.ref_target("refs/heads/main")? {
                Some(head) => root_text_file(&git, &head, ".gitattributes")?,
                None => String::new(),
            };
            Ok(LfsRules::parse(&text))
        })
        .await
    }

    /// Commits files staged by [`upload_file`](Hub::upload_file) and deletions (files or
    /// folders) on branch `rev`: deletions first, then the files in order. LFS files become
    /// pointers; regular ones (at most 10 MiB) are read back and stored as git blobs. Every
    /// staged object must have been uploaded to this repository. Goes through
    /// [`Hub::commit`], so its rules, locking and indexing apply.
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the upload form's fields"
    )]
    pub async fn commit_staged(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        files: Vec<StagedFile>,
        deletions: Vec<String>,
        summary: &str,
        description: &str,
    ) -> Result<CommitOutcome> {
        if files.is_empty() && deletions.is_empty() {
            return Err(Error::bad_request("Nothing to commit"));
        }
        let handle = self.repo(caller, addr, Need::Write).await?;
        let mut ops = Vec::with_capacity(files.len() + deletions.len());
        if !deletions.is_empty() {
            let branch = target_ref(rev)?;
            let git = handle.git.clone();
            let wanted = deletions
                .iter()
                .map(|d| normalize_repo_path(d))
                .collect::<Result<Vec<_>>>()?;
            let r = rev.to_string();
            let deletes = blocking(move || {
                let head = git
                    .ref_target(&branch)?
                    .ok_or_else(|| Error::revision_not_found(&r))?;
                let mut out = Vec::with_capacity(wanted.len());
                for path in wanted {
                    let is_dir = git
                        .entry(&head, &path)?
                        .is_some_and(|e| e.kind == EntryKind::Directory);
                    out.push(if is_dir {
                        CommitOp::DeletedFolder { path }
                    } else {
                        CommitOp::DeletedFile { path }
                    });
                }
                Ok(out)
            })
            .await?;
            ops.extend(deletes);
        }
        for file in files {
            let path = normalize_repo_path(&file.path)?;
            let size = i64::try_from(file.size)
                .map_err(|_| Error::bad_request(format!("Invalid size for '{path}'")))?;
            let linked = self.meta.repo_lfs_object(handle.repo.id, &file.oid).await?;
            if linked != Some(size) {
                return Err(Error::bad_request(format!(
                    "The file '{path}' was not uploaded to this repository"
                )));
            }
            if file.lfs {
                ops.push(CommitOp::LfsFile {
                    path,
                    oid: file.oid,
                    size: Some(size),
                });
            } else {
                // Refused before it is read into memory; the commit applies the same rule.
                if let Some(refusal) =
                    blob_rules::refusal_of(self.meta.as_ref(), handle.repo.id, file.size, &[])
                        .await?
                {
                    return Err(Error::bad_request(refusal.message(&path)));
                }
                let content =
                    collect_stream(self.blobs.read(&file.oid, None).await?, file.size).await?;
                ops.push(CommitOp::File { path, content });
            }
        }
        let header = CommitHeader {
            summary: summary.to_string(),
            description: description.to_string(),
            parent_commit: None,
        };
        self.commit(caller, addr, rev, header, ops, false).await
    }
}

/// A hub on a temporary folder, and callers, for the crate's tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::{Caller, Hub, HubConfig, NewUser};
    use wharf_core::Role;

    pub(crate) async fn hub() -> (tempfile::TempDir, Hub) {
        let dir = tempfile::tempdir().expect("temp dir");
        let hub = Hub::open(&HubConfig {
            data_dir: dir.path().join("data"),
        })
        .await
        .expect("open hub");
        (dir, hub)
    }

    /// Creates a user (no password: hashing is slow in debug builds) and its write caller.
    pub(crate) async fn user_caller(hub: &Hub, name: &str) -> Caller {
        let user = hub
            .add_user(NewUser {
                name: name.to_string(),
                email: format!("{name}@example.com"),
                fullname: None,
                password: None,
                admin: false,
            })
            .await
            .expect("user");
        let orgs = hub.meta.orgs_of_user(user.id).await.expect("orgs");
        Caller {
            user: Some(user),
            scope: Some(Role::Write),
            token_label: None,
            token_id: None,
            orgs,
        }
    }

    /// A byte stream of `data`, in several chunks as a network body arrives.
    pub(crate) fn body(data: Vec<u8>) -> wharf_blob::ByteStream {
        let chunks: Vec<std::io::Result<bytes::Bytes>> = data
            .chunks(1000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        futures::StreamExt::boxed(futures::stream::iter(chunks))
    }

    /// A safetensors file: the header for `tensors`, then zeroed data.
    pub(crate) fn safetensors(tensors: &[(&str, &str, &[u64])]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let mut offset = 0u64;
        for (name, dtype, shape) in tensors {
            let n: u64 = shape.iter().product::<u64>() * 4;
            header.insert(
                (*name).into(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}),
            );
            offset += n;
        }
        let text = serde_json::to_vec(&header).expect("json");
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&text);
        out.resize(out.len() + offset as usize, 0);
        out
    }

    /// A byte stream of `data`, as a request body would arrive.
    pub(crate) fn stream(data: Vec<u8>) -> wharf_blob::ByteStream {
        use futures::StreamExt;
        futures::stream::once(async move { Ok(bytes::Bytes::from(data)) }).boxed()
    }

    /// Everything a byte stream yields.
    pub(crate) async fn collect(mut s: wharf_blob::ByteStream) -> Vec<u8> {
        use futures::StreamExt;
        let mut out = Vec::new();
        while let Some(piece) = s.next().await {
            out.extend_from_slice(&piece.expect("read"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{body, hub, safetensors, user_caller};
    use super::*;
    use crate::FileSource;
    use wharf_core::{ErrorKind, RepoType};
    use wharf_git::ChangeKind;
    use wharf_meta::RepoSort;

    fn list_query(repo_type: RepoType) -> ListQuery {
        ListQuery {
            repo_type,
            search: None,
            author: None,
            filters: Vec::new(),
            pipeline_tag: None,
            sort: RepoSort::Id,
            descending: false,
            offset: 0,
            limit: 1,
            with_files: false,
        }
    }

    async fn read_all(hub: &Hub, caller: &Caller, addr: &RepoAddress, path: &str) -> Vec<u8> {
        let (_, file) = hub
            .resolve_file(caller, addr, "main", path)
            .await
            .expect("resolve");
        let file = file.expect("file exists");
        collect_stream(hub.read_file(&file, None).await.expect("read"), 1 << 30)
            .await
            .expect("collect")
    }

    #[tokio::test]
    async fn counts_and_facets_follow_visibility() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        for (name, private, tags) in [
            ("one", false, "- vision\n- demo\n"),
            ("two", false, "- vision\n"),
            ("hidden", true, "- vision\n- secret\n"),
        ] {
            hub.create_repo(&alice, RepoType::Model, None, name, private)
                .await
                .expect("create");
            let addr = RepoAddress::new(RepoType::Model, "alice", name);
            let card = format!("---\ntags:\n{tags}---\n# {name}\n");
            hub.commit(
                &alice,
                &addr,
                "main",
                CommitHeader::default(),
                vec![CommitOp::File {
                    path: "README.md".into(),
                    content: card.into_bytes(),
                }],
                false,
            )
            .await
            .expect("card");
        }
        let q = list_query(RepoType::Model);
        assert_eq!(hub.count_repos(&alice, &q).await.expect("count"), 3);
        assert_eq!(hub.count_repos(&bob, &q).await.expect("count"), 2);
        let anon = Caller::anonymous();
        assert_eq!(hub.count_repos(&anon, &q).await.expect("count"), 2);
        let facets = hub.facet_counts(&bob, &q).await.expect("facets");
        assert!(facets.contains(&("vision".to_string(), 2)), "{facets:?}");
        assert!(
            facets.windows(2).all(|w| w[0].1 >= w[1].1),
            "most frequent first: {facets:?}"
        );
        assert!(facets.contains(&("demo".to_string(), 1)));
        assert!(!facets.iter().any(|(t, _)| t == "secret"));
        let facets = hub.facet_counts(&alice, &q).await.expect("facets");
        assert!(facets.contains(&("vision".to_string(), 3)), "{facets:?}");
        assert!(facets.contains(&("secret".to_string(), 1)));
        let mut q = list_query(RepoType::Model);
        q.filters = vec!["demo".into()];
        assert_eq!(hub.count_repos(&anon, &q).await.expect("count"), 1);
        assert_eq!(
            hub.count_repos(&anon, &list_query(RepoType::Dataset))
                .await
                .expect("count"),
            0
        );
    }

    #[tokio::test]
    async fn diffs_compare_and_history() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", true)
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        let file = |path: &str, text: &str| CommitOp::File {
            path: path.into(),
            content: text.as_bytes().to_vec(),
        };
        let c1 = hub
            .commit(
                &alice,
                &addr,
                "main",
                CommitHeader {
                    summary: "add config".into(),
                    ..CommitHeader::default()
                },
                vec![file("config.json", "{\"a\": 1}\n"), file("src/x.py", "x\n")],
                false,
            )
            .await
            .expect("c1")
            .commit_oid;
        let c2 = hub
            .commit(
                &alice,
                &addr,
                "main",
                CommitHeader {
                    summary: "change config".into(),
                    ..CommitHeader::default()
                },
                vec![file("config.json", "{\"a\": 2}\n")],
                false,
            )
            .await
            .expect("c2")
            .commit_oid;

        let d = hub.commit_diff(&alice, &addr, "main").await.expect("diff");
        assert_eq!(d.commit.id, c2);
        assert_eq!(d.commit.title, "change config");
        assert_eq!(d.diff.files.len(), 1);
        assert_eq!(d.diff.files[0].path, "config.json");
        assert_eq!(d.diff.files[0].change, ChangeKind::Modified);
        assert_eq!(
            d.diff.files[0].patch.as_deref(),
            Some("@@ -1 +1 @@\n-{\"a\": 1}\n+{\"a\": 2}\n")
        );
        let d = hub.commit_diff(&alice, &addr, &c1).await.expect("diff");
        let paths: Vec<&str> = d.diff.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["config.json", "src/x.py"]);

        let initial = d.commit.parents[0].clone();
        let cmp = hub
            .compare(&alice, &addr, &initial, "main")
            .await
            .expect("compare");
        let paths: Vec<&str> = cmp.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["config.json", "src/x.py"]);
        assert!(cmp.files.iter().all(|f| f.change == ChangeKind::Added));

        let page = hub
            .file_history(&alice, &addr, "main", "config.json", 0, 10)
            .await
            .expect("history");
        let ids: Vec<&str> = page.commits.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, [c2.as_str(), c1.as_str()]);
        assert!(!page.has_more);
        let page = hub
            .file_history(&alice, &addr, "main", "/src/", 0, 10)
            .await
            .expect("folder");
        assert_eq!(page.commits.len(), 1);
        let page = hub
            .file_history(&alice, &addr, "main", "", 0, 2)
            .await
            .expect("all");
        assert!(page.has_more, "three commits in all");
        let e = hub
            .file_history(&alice, &addr, "main", "../x", 0, 10)
            .await
            .expect_err("bad path");
        assert_eq!(e.kind, ErrorKind::Unprocessable);

        // A private repo looks missing to others, on every page.
        let e = hub
            .commit_diff(&bob, &addr, "main")
            .await
            .expect_err("hidden");
        assert_eq!(e.kind, ErrorKind::RepoNotFound);
        let e = hub
            .compare(&bob, &addr, &c1, &c2)
            .await
            .expect_err("hidden");
        assert_eq!(e.kind, ErrorKind::RepoNotFound);
        let e = hub
            .file_history(&bob, &addr, "main", "", 0, 1)
            .await
            .expect_err("hidden");
        assert_eq!(e.kind, ErrorKind::RepoNotFound);
        let e = hub
            .commit_diff(&alice, &addr, "nope")
            .await
            .expect_err("unknown rev");
        assert_eq!(e.kind, ErrorKind::RevisionNotFound);
    }

    #[tokio::test]
    async fn browser_upload_and_commit() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", false)
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");

        let text = b"hello from the browser\n".to_vec();
        let notes = hub
            .upload_file(&alice, &addr, "/docs/notes.txt", body(text.clone()))
            .await
            .expect("upload");
        assert_eq!(notes.path, "docs/notes.txt");
        assert_eq!(notes.size, text.len() as u64);
        assert!(!notes.lfs, "small text stays in git");

        let weights = safetensors(&[("w", "F32", &[4, 4])]);
        let model = hub
            .upload_file(&alice, &addr, "model.safetensors", body(weights.clone()))
            .await
            .expect("upload");
        assert!(model.lfs, ".gitattributes routes safetensors to LFS");

        let mut blob = vec![0u8; 3000];
        blob[0] = 7;
        let data = hub
            .upload_file(&alice, &addr, "data.dat", body(blob.clone()))
            .await
            .expect("upload");
        assert!(data.lfs, "binary content goes to LFS");

        let empty = hub
            .upload_file(&alice, &addr, "empty.bin", body(Vec::new()))
            .await
            .expect("upload");
        assert!(!empty.lfs, "empty files never go to LFS");

        let e = hub
            .upload_file(&bob, &addr, "x.txt", body(b"x".to_vec()))
            .await
            .expect_err("not bob's");
        assert_eq!(e.kind, ErrorKind::Forbidden);
        let e = hub
            .upload_file(&alice, &addr, "../escape", body(b"x".to_vec()))
            .await
            .expect_err("bad path");
        assert_eq!(e.kind, ErrorKind::Unprocessable);

        let out = hub
            .commit_staged(
                &alice,
                &addr,
                "main",
                vec![notes.clone(), model.clone(), data.clone(), empty],
                Vec::new(),
                "Upload files",
                "from the browser",
            )
            .await
            .expect("commit");
        let info = hub.repo_info(&alice, &addr, None).await.expect("info");
        assert_eq!(info.sha, out.commit_oid);
        let entry = |p: &str| {
            info.files
                .iter()
                .find(|e| e.path == p)
                .unwrap_or_else(|| panic!("{p} missing"))
                .clone()
        };
        assert!(entry("docs/notes.txt").lfs.is_none());
        assert_eq!(
            entry("model.safetensors").lfs.map(|p| (p.oid, p.size)),
            Some((model.oid.clone(), weights.len() as u64))
        );
        assert!(entry("data.dat").lfs.is_some());
        assert_eq!(read_all(&hub, &alice, &addr, "docs/notes.txt").await, text);
        assert_eq!(read_all(&hub, &alice, &addr, "data.dat").await, blob);
        let (_, f) = hub
            .resolve_file(&alice, &addr, "main", "model.safetensors")
            .await
            .expect("resolve");
        assert!(matches!(f.expect("file").source, FileSource::Lfs { .. }));
        let d = hub.commit_diff(&alice, &addr, "main").await.expect("diff");
        assert_eq!(d.commit.title, "Upload files");
        assert_eq!(d.commit.message, "from the browser");

        // Deleting a folder and a file in one commit.
        hub.commit_staged(
            &alice,
            &addr,
            "main",
            Vec::new(),
            vec!["docs".into(), "data.dat".into()],
            "",
            "",
        )
        .await
        .expect("delete");
        let info = hub.repo_info(&alice, &addr, None).await.expect("info");
        assert!(!info.files.iter().any(|e| e.path.starts_with("docs/")));
        assert!(!info.files.iter().any(|e| e.path == "data.dat"));

        // Objects of another repository cannot be committed by naming them.
        hub.create_repo(&bob, RepoType::Model, None, "b", false)
            .await
            .expect("create");
        let bob_addr = RepoAddress::new(RepoType::Model, "bob", "b");
        for staged in [notes.clone(), model.clone()] {
            let e = hub
                .commit_staged(&bob, &bob_addr, "main", vec![staged], Vec::new(), "", "")
                .await
                .expect_err("not uploaded here");
            assert_eq!(e.kind, ErrorKind::BadRequest);
        }
        let mut lying = notes.clone();
        lying.size += 1;
        let e = hub
            .commit_staged(&alice, &addr, "main", vec![lying], Vec::new(), "", "")
            .await
            .expect_err("wrong size");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = hub
            .commit_staged(&alice, &addr, "main", Vec::new(), Vec::new(), "", "")
            .await
            .expect_err("nothing");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = hub
            .commit_staged(&alice, &addr, "nope", vec![notes], Vec::new(), "", "")
            .await
            .expect_err("no branch");
        assert_eq!(e.kind, ErrorKind::RevisionNotFound);
    }

    #[tokio::test]
    async fn page_diffs_withhold_large_files_and_are_cached() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", false)
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        // Two ~800 KB text files, every line changed: what a page used to spend seconds on.
        let big = |tag: &str| -> Vec<u8> {
            (0..30_000)
                .map(|i| format!("{tag} line {i} of some text\n"))
                .collect::<String>()
                .into_bytes()
        };
        let commit = |files: Vec<(&str, Vec<u8>)>| {
            let ops = files
                .into_iter()
                .map(|(path, content)| CommitOp::File {
                    path: path.into(),
                    content,
                })
                .collect();
            hub.commit(&alice, &addr, "main", CommitHeader::default(), ops, false)
        };
        commit(vec![
            ("a.txt", big("a")),
            ("b.txt", big("b")),
            ("c.txt", b"c\n".to_vec()),
        ])
        .await
        .expect("first");
        commit(vec![
            ("a.txt", big("A")),
            ("b.txt", big("B")),
            ("c.txt", b"C\n".to_vec()),
        ])
        .await
        .expect("second");
        let anon = Caller::anonymous();
        let d = hub.commit_diff(&anon, &addr, "main").await.expect("diff");
        let withheld: Vec<_> = d.diff.files.iter().map(|f| f.withheld).collect();
        assert_eq!(
            withheld,
            [
                Some(crate::Withheld::TooLarge),
                Some(crate::Withheld::TooLarge),
                None
            ]
        );
        assert_eq!(
            d.diff.files[2].patch.as_deref(),
            Some("@@ -1 +1 @@\n-c\n+C\n")
        );
        assert_eq!(hub.diff_cache_stats().misses, 1);
        let again = hub.commit_diff(&anon, &addr, "main").await.expect("diff");
        assert_eq!(again.diff.files.len(), 3);
        assert_eq!(
            hub.diff_cache_stats(),
            crate::CacheStats { hits: 1, misses: 1 },
            "the second view is answered from memory"
        );
    }

    #[tokio::test]
    async fn previews_are_for_signed_in_callers_and_small_texts() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let html = hub
            .preview_card(
                &alice,
                "---\nlicense: mit\n---\n# Hi <script>x</script>\n".into(),
            )
            .await
            .expect("preview");
        assert!(html.contains("Hi") && !html.contains("license") && !html.contains("<script"));
        let e = hub
            .preview_card(&Caller::anonymous(), "# Hi".into())
            .await
            .expect_err("anonymous");
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        let e = hub
            .preview_card(&alice, "x".repeat(MAX_PREVIEW_BYTES + 1))
            .await
            .expect_err("too large");
        assert_eq!(e.kind, ErrorKind::PayloadTooLarge);
    }

    #[tokio::test]
    async fn only_writers_get_a_writable_branch() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        hub.create_repo(&alice, RepoType::Model, None, "pub", false)
            .await
            .expect("create");
        hub.create_repo(&alice, RepoType::Model, None, "priv", true)
            .await
            .expect("create");
        let public = RepoAddress::new(RepoType::Model, "alice", "pub");
        let private = RepoAddress::new(RepoType::Model, "alice", "priv");
        let handle = hub
            .writable_branch(&alice, &public, "main")
            .await
            .expect("alice writes main");
        assert_eq!(handle.repo.name, "pub");
        let head = handle.repo.sha.clone().expect("indexed");
        for (who, addr, rev, kind) in [
            (&alice, &public, "nope", ErrorKind::RevisionNotFound),
            (&alice, &public, head.as_str(), ErrorKind::RevisionNotFound),
            (&alice, &public, "refs/tags/v1", ErrorKind::RevisionNotFound),
            (&bob, &public, "main", ErrorKind::Forbidden),
            (&bob, &private, "main", ErrorKind::RepoNotFound),
        ] {
            let e = hub.writable_branch(who, addr, rev).await.err();
            assert_eq!(e.map(|e| e.kind), Some(kind), "{rev}");
        }
        let e = hub
            .writable_branch(&Caller::anonymous(), &public, "main")
            .await
            .err();
        assert_eq!(e.map(|e| e.kind), Some(ErrorKind::Unauthorized));
    }
}
