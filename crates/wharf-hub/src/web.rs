//! Use cases behind the web interface's repository pages: listing counts and tag facets,
//! commit diffs, comparisons and per-file history, the safetensors parameter summary, and
//! browser uploads (streamed into the blob store, then committed through [`Hub::commit`], so
//! every commit rule and the indexing stay in one place).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use wharf_blob::{ByteRange, ByteStream};
use wharf_core::safetensors::{TensorInfo, count_parameters, header_len, parse_header};
use wharf_core::{Error, Result, normalize_repo_path};
use wharf_git::{CommitInfo, EntryKind, FileDiff, GitRepo, TreeEntry};
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

/// One commit and what it changed against its first parent.
#[derive(Debug, Clone)]
pub struct CommitDiff {
    pub commit: CommitInfo,
    /// Changed files, sorted by path.
    pub files: Vec<FileDiff>,
}

/// Parameter counts of a revision's safetensors files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SafetensorsSummary {
    /// Elements per dtype (`"F32"`, `"BF16"`, …), summed over every tensor of every file.
    pub parameters: BTreeMap<String, u64>,
    /// The sum over all dtypes.
    pub total: u64,
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
async fn collect_stream(mut stream: ByteStream, cap: u64) -> Result<Vec<u8>> {
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
    /// added for a root commit). Gated repos show diffs only to those who may download.
    pub async fn commit_diff(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
    ) -> Result<CommitDiff> {
        let handle = self.repo(caller, addr, Need::Download).await?;
        let sha = self.resolve_revision(&handle, rev).await?;
        let git = handle.git.clone();
        blocking(move || {
            let commit = git.commit_info(&sha)?;
            let files = git.diff(commit.parents.first().map(String::as_str), &sha)?;
            Ok(CommitDiff { commit, files })
        })
        .await
    }

    /// What changed from revision `base` to revision `head` (a two-dot tree comparison).
    pub async fn compare(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        base: &str,
        head: &str,
    ) -> Result<Vec<FileDiff>> {
        let handle = self.repo(caller, addr, Need::Download).await?;
        let base = self.resolve_revision(&handle, base).await?;
        let head = self.resolve_revision(&handle, head).await?;
        let git = handle.git.clone();
        blocking(move || git.diff(Some(&base), &head)).await
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

    /// Parameter counts per dtype over every `*.safetensors` file at `rev` (LFS or regular),
    /// reading only each file's header. Files whose header is missing, malformed or over
    /// 100 MiB are skipped; None when no file could be counted.
    pub async fn safetensors_summary(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
    ) -> Result<Option<SafetensorsSummary>> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let commit = self.resolve_revision(&handle, rev).await?;
        let git = handle.git.clone();
        let files = blocking(move || {
            Ok(git
                .list_tree(&commit, "", true)?
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.kind == EntryKind::File && e.path.ends_with(".safetensors"))
                .collect::<Vec<_>>())
        })
        .await?;
        let mut summary = SafetensorsSummary::default();
        let mut counted = false;
        for entry in files {
            let Some(tensors) = self.safetensors_tensors(&handle.git, &entry).await? else {
                continue;
            };
            let Ok(counts) = count_parameters(&tensors) else {
                continue;
            };
            let mut next = summary.clone();
            let mut overflow = false;
            for (dtype, n) in counts {
                let slot = next.parameters.entry(dtype).or_default();
                match (slot.checked_add(n), next.total.checked_add(n)) {
                    (Some(s), Some(t)) => {
                        *slot = s;
                        next.total = t;
                    }
                    _ => overflow = true,
                }
            }
            if !overflow {
                summary = next;
                counted = true;
            }
        }
        Ok(counted.then_some(summary))
    }

    /// The tensors (name, dtype, shape; sorted by name) of one safetensors file at `rev`.
    /// `EntryNotFound` when there is no such file; None when its header cannot be read.
    pub async fn file_safetensors_header(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        path: &str,
    ) -> Result<Option<Vec<(String, String, Vec<u64>)>>> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let commit = self.resolve_revision(&handle, rev).await?;
        let path = normalize_repo_path(path)?;
        let git = handle.git.clone();
        let p = path.clone();
        let entry = blocking(move || git.entry(&commit, &p)).await?;
        let Some(entry) = entry.filter(|e| e.kind == EntryKind::File) else {
            return Err(Error::entry_not_found(&path));
        };
        self.safetensors_tensors(&handle.git, &entry).await
    }

    /// Reads and parses one file's safetensors header: a range read from the blob store for
    /// LFS files, the git blob otherwise. None when it is absent or malformed.
    async fn safetensors_tensors(
        &self,
        git: &Arc<GitRepo>,
        entry: &TreeEntry,
    ) -> Result<Option<Vec<TensorInfo>>> {
        let header = match &entry.lfs {
            Some(pointer) => {
                let Some(size) = self.lfs_object_size(&pointer.oid).await? else {
                    return Ok(None);
                };
                if size < 8 {
                    return Ok(None);
                }
                let prefix = self
                    .read_lfs_object(&pointer.oid, Some(ByteRange { start: 0, end: 7 }))
                    .await?;
                let prefix = collect_stream(prefix, 8).await?;
                let Ok(n) = header_len(&prefix, size) else {
                    return Ok(None);
                };
                let range = ByteRange {
                    start: 8,
                    end: 8 + n - 1,
                };
                let body = self.read_lfs_object(&pointer.oid, Some(range)).await?;
                collect_stream(body, n).await?
            }
            None => {
                let git = git.clone();
                let oid = entry.oid.clone();
                let data = blocking(move || git.read_blob(&oid)).await?;
                let Ok(n) = header_len(&data, data.len() as u64) else {
                    return Ok(None);
                };
                // header_len checked that 8 + n fits in the data.
                data.get(8..8 + n as usize)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            }
        };
        Ok(parse_header(&header).ok())
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
    use super::test_support::{hub, user_caller};
    use super::*;
    use crate::FileSource;
    use bytes::Bytes;
    use wharf_core::{ErrorKind, RepoType};
    use wharf_git::ChangeKind;
    use wharf_meta::RepoSort;

    fn body(data: Vec<u8>) -> ByteStream {
        // Several chunks, as a network body arrives.
        let chunks: Vec<std::io::Result<Bytes>> = data
            .chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks).boxed()
    }

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

    /// A safetensors file: the header for `tensors`, then zeroed data.
    fn safetensors(tensors: &[(&str, &str, &[u64])]) -> Vec<u8> {
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
        assert_eq!(d.files.len(), 1);
        assert_eq!(d.files[0].path, "config.json");
        assert_eq!(d.files[0].change, ChangeKind::Modified);
        assert_eq!(
            d.files[0].patch.as_deref(),
            Some("@@ -1 +1 @@\n-{\"a\": 1}\n+{\"a\": 2}\n")
        );
        let d = hub.commit_diff(&alice, &addr, &c1).await.expect("diff");
        let paths: Vec<&str> = d.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["config.json", "src/x.py"]);

        let initial = d.commit.parents[0].clone();
        let cmp = hub
            .compare(&alice, &addr, &initial, "main")
            .await
            .expect("compare");
        let paths: Vec<&str> = cmp.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["config.json", "src/x.py"]);
        assert!(cmp.iter().all(|f| f.change == ChangeKind::Added));

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
    async fn safetensors_parameters() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", false)
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        assert_eq!(
            hub.safetensors_summary(&alice, &addr, "main")
                .await
                .expect("summary"),
            None
        );

        let shard1 = safetensors(&[("a.weight", "F32", &[2, 3]), ("a.bias", "F32", &[3])]);
        let shard2 = safetensors(&[("b", "BF16", &[10, 10]), ("scalar", "F32", &[])]);
        let mut staged = Vec::new();
        for (path, data) in [
            ("model-00001-of-00002.safetensors", shard1),
            ("model-00002-of-00002.safetensors", shard2),
        ] {
            staged.push(
                hub.upload_file(&alice, &addr, path, body(data))
                    .await
                    .expect("upload"),
            );
        }
        assert!(staged.iter().all(|s| s.lfs));
        let mut ops = vec![
            // A regular (non-LFS) safetensors file is read from git.
            CommitOp::File {
                path: "small/tiny.safetensors".into(),
                content: safetensors(&[("t", "I8", &[5])]),
            },
            // Malformed files are skipped, never an error.
            CommitOp::File {
                path: "broken.safetensors".into(),
                content: b"\xff\xff\xff\xff\xff\xff\xff\xffnot json".to_vec(),
            },
            CommitOp::File {
                path: "short.safetensors".into(),
                content: b"abc".to_vec(),
            },
            CommitOp::File {
                path: "bad_json.safetensors".into(),
                content: {
                    let mut v = 5u64.to_le_bytes().to_vec();
                    v.extend_from_slice(b"{nope");
                    v
                },
            },
            CommitOp::File {
                path: "huge_shape.safetensors".into(),
                content: {
                    let header = format!(
                        "{{\"h\": {{\"dtype\": \"F32\", \"shape\": [{}, 2], \"data_offsets\": [0, 0]}}}}",
                        u64::MAX
                    );
                    let mut v = (header.len() as u64).to_le_bytes().to_vec();
                    v.extend_from_slice(header.as_bytes());
                    v
                },
            },
        ];
        ops.push(CommitOp::LfsFile {
            path: "model-00001-of-00002.safetensors".into(),
            oid: staged[0].oid.clone(),
            size: None,
        });
        ops.push(CommitOp::LfsFile {
            path: "model-00002-of-00002.safetensors".into(),
            oid: staged[1].oid.clone(),
            size: None,
        });
        hub.commit(&alice, &addr, "main", CommitHeader::default(), ops, false)
            .await
            .expect("commit");

        let summary = hub
            .safetensors_summary(&alice, &addr, "main")
            .await
            .expect("summary")
            .expect("some");
        let expected: BTreeMap<String, u64> = [("BF16", 100), ("F32", 10), ("I8", 5)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(summary.parameters, expected);
        assert_eq!(summary.total, 115);

        let tensors = hub
            .file_safetensors_header(&alice, &addr, "main", "model-00001-of-00002.safetensors")
            .await
            .expect("header")
            .expect("some");
        assert_eq!(
            tensors,
            vec![
                ("a.bias".to_string(), "F32".to_string(), vec![3]),
                ("a.weight".to_string(), "F32".to_string(), vec![2, 3]),
            ]
        );
        let tiny = hub
            .file_safetensors_header(&alice, &addr, "main", "small/tiny.safetensors")
            .await
            .expect("header");
        assert_eq!(tiny.map(|t| t.len()), Some(1));
        for broken in [
            "broken.safetensors",
            "short.safetensors",
            "bad_json.safetensors",
        ] {
            assert_eq!(
                hub.file_safetensors_header(&alice, &addr, "main", broken)
                    .await
                    .expect("no error"),
                None,
                "{broken}"
            );
        }
        let e = hub
            .file_safetensors_header(&alice, &addr, "main", "missing.safetensors")
            .await
            .expect_err("missing");
        assert_eq!(e.kind, ErrorKind::EntryNotFound);
    }
}
