//! Server-side commits (the NDJSON commit endpoint) and the preupload decision that precedes
//! them. Operations apply in order; the branch moves by compare-and-swap, so a concurrent
//! commit or git push is never overwritten: one of them gets `PreconditionFailed`.

use crate::access::Need;
use crate::blob_rules;
use crate::repos::signature_of;
use crate::{Caller, Hub, RepoAddress, RepoHandle, blocking};
use wharf_core::{Error, Result, lfs_pointer::LfsPointer, normalize_repo_path, time::now_ms};
use wharf_git::{EntryKind, RefExpect, TreeChange};
use wharf_lfs::LfsRules;

/// Files above this size always go to LFS, whatever `.gitattributes` says: the size above
/// which git refuses regular files.
pub(crate) const LFS_THRESHOLD: u64 = crate::blob_rules::MAX_GIT_BLOB;

pub use wharf_core::commit_lines::{CommitHeader, CommitOp};

#[derive(Debug, Clone)]
pub struct CommitOutcome {
    pub commit_oid: String,
    /// Set when the commit opened a pull request (`refs/pr/N`).
    pub pr_num: Option<u64>,
}

/// One file announced to preupload.
#[derive(Debug, Clone)]
pub struct PreuploadFile {
    pub path: String,
    pub sample: Vec<u8>,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct PreuploadResult {
    pub path: String,
    pub lfs: bool,
    pub should_ignore: bool,
    /// The current content id at the revision: git blob sha1 for regular files, sha256 for LFS.
    pub oid: Option<String>,
}

/// The full ref a commit to `rev` targets: a branch name, `refs/heads/x` or `refs/pr/N`.
pub(crate) fn target_ref(rev: &str) -> Result<String> {
    if rev.starts_with("refs/heads/") || rev.starts_with("refs/pr/") {
        return Ok(rev.to_string());
    }
    if rev.starts_with("refs/") || !wharf_git::is_valid_ref_name(rev) {
        return Err(Error::revision_not_found(rev));
    }
    Ok(format!("refs/heads/{rev}"))
}

/// A small text file at the root of `commit` ("" when absent).
pub(crate) fn root_text_file(git: &wharf_git::GitRepo, commit: &str, name: &str) -> Result<String> {
    match git.entry(commit, name)? {
        Some(e) if e.kind == EntryKind::File && e.size <= 1 << 20 => {
            Ok(String::from_utf8_lossy(&git.read_blob(&e.oid)?).into_owned())
        }
        _ => Ok(String::new()),
    }
}

/// Compiles gitignore texts; unparsable lines are skipped, as git does.
fn ignore_rules(texts: &[String]) -> ignore::gitignore::Gitignore {
    let mut builder = ignore::gitignore::GitignoreBuilder::new("");
    for line in texts.iter().flat_map(|t| t.lines()) {
        let _ = builder.add_line(None, line);
    }
    builder
        .build()
        .unwrap_or_else(|_| ignore::gitignore::Gitignore::empty())
}

/// Whether `given` names `head`: the full sha, or a prefix of at least 7 hex digits as the
/// client's documentation allows.
fn names_commit(given: &str, head: &str) -> bool {
    let given = given.to_ascii_lowercase();
    given.len() >= 7
        && given.len() <= 40
        && given.bytes().all(|b| b.is_ascii_hexdigit())
        && head.starts_with(&given)
}

/// The sample looks binary when it has a NUL byte or is not UTF-8 (a cut at the end is fine).
fn looks_binary(sample: &[u8]) -> bool {
    if sample.contains(&0) {
        return true;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => false,
        Err(e) => e.error_len().is_some(),
    }
}

/// Whether a file goes to LFS: the repository's `.gitattributes` says so, it is over the size
/// threshold, or its first bytes look binary. Empty files never do.
pub(crate) fn wants_lfs(rules: &LfsRules, path: &str, size: u64, sample: &[u8]) -> bool {
    size > 0 && (rules.is_lfs(path) || size > LFS_THRESHOLD || looks_binary(sample))
}

/// Longest commit title and description: every history page shows them.
const MAX_SUMMARY_BYTES: usize = 1024;
const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;

fn check_message(header: &CommitHeader) -> Result<()> {
    if header.summary.len() > MAX_SUMMARY_BYTES {
        return Err(Error::bad_request("The commit title is longer than 1 KiB"));
    }
    if header.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(Error::bad_request(
            "The commit description is longer than 64 KiB",
        ));
    }
    Ok(())
}

fn commit_message(header: &CommitHeader) -> String {
    let summary = if header.summary.trim().is_empty() {
        "Commit with Wharf"
    } else {
        header.summary.trim()
    };
    match header.description.trim() {
        "" => summary.to_string(),
        d => format!("{summary}\n\n{d}"),
    }
}

impl Hub {
    async fn branch_head(&self, handle: &RepoHandle, full_ref: &str, rev: &str) -> Result<String> {
        let git = handle.git.clone();
        let r = full_ref.to_string();
        blocking(move || git.ref_target(&r))
            .await?
            .ok_or_else(|| Error::revision_not_found(rev))
    }

    pub async fn preupload(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        files: Vec<PreuploadFile>,
        git_ignore: Option<String>,
    ) -> Result<Vec<PreuploadResult>> {
        let handle = self.repo(caller, addr, Need::Write).await?;
        let head = self.branch_head(&handle, &target_ref(rev)?, rev).await?;
        let git = handle.git.clone();
        blocking(move || {
            let rules = LfsRules::parse(&root_text_file(&git, &head, ".gitattributes")?);
            // The repo's .gitignore, plus the one being uploaded in the same commit.
            let ignored = ignore_rules(&[
                root_text_file(&git, &head, ".gitignore")?,
                git_ignore.unwrap_or_default(),
            ]);
            let mut out = Vec::with_capacity(files.len());
            for f in files {
                let lfs = wants_lfs(&rules, &f.path, f.size, &f.sample);
                let current = match normalize_repo_path(&f.path) {
                    Ok(p) => git.entry(&head, &p)?,
                    Err(_) => None,
                };
                let oid = current
                    .filter(|e| e.kind == EntryKind::File)
                    .map(|e| match e.lfs {
                        Some(p) => p.oid,
                        None => e.oid,
                    });
                let should_ignore = ignored
                    .matched_path_or_any_parents(&f.path, false)
                    .is_ignore();
                out.push(PreuploadResult {
                    path: f.path,
                    lfs,
                    should_ignore,
                    oid,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Turns operations into tree changes, checking paths and that LFS objects belong to the repo.
    async fn plan_changes(
        &self,
        handle: &RepoHandle,
        ops: Vec<CommitOp>,
    ) -> Result<Vec<TreeChange>> {
        let mut changes = Vec::with_capacity(ops.len());
        for op in ops {
            changes.push(match op {
                CommitOp::File { path, content } => {
                    let path = normalize_repo_path(&path)?;
                    let size = content.len() as u64;
                    let refusal =
                        blob_rules::refusal_of(self.meta.as_ref(), handle.repo.id, size, &content)
                            .await?;
                    if let Some(refusal) = refusal {
                        return Err(Error::bad_request(refusal.message(&path)));
                    }
                    TreeChange::Upsert {
                        path,
                        data: content,
                    }
                }
                CommitOp::LfsFile { path, oid, size } => {
                    let path = normalize_repo_path(&path)?;
                    let stored = self.meta.repo_lfs_object(handle.repo.id, &oid).await?;
                    let Some(stored) = stored else {
                        return Err(Error::bad_request(format!(
                            "LFS object {oid} for '{path}' was not uploaded to this repository"
                        )));
                    };
                    if size.is_some_and(|s| s != stored) {
                        return Err(Error::bad_request(format!(
                            "LFS object {oid} has size {stored}, not {}",
                            size.unwrap_or_default()
                        )));
                    }
                    let pointer = LfsPointer {
                        oid,
                        size: stored as u64,
                    };
                    TreeChange::Upsert {
                        path,
                        data: pointer.to_text().into_bytes(),
                    }
                }
                CommitOp::DeletedFile { path } => TreeChange::Delete {
                    path: normalize_repo_path(&path)?,
                },
                CommitOp::DeletedFolder { path } => TreeChange::DeleteFolder {
                    path: normalize_repo_path(&path)?,
                },
            });
        }
        Ok(changes)
    }

    /// Commits `ops` on `rev` (or on a new pull request opened from it).
    pub async fn commit(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        header: CommitHeader,
        ops: Vec<CommitOp>,
        create_pr: bool,
    ) -> Result<CommitOutcome> {
        let handle = self.repo(caller, addr, Need::Write).await?;
        check_message(&header)?;
        let changes = self.plan_changes(&handle, ops).await?;
        let branch = target_ref(rev)?;
        let lock = self.write_lock(handle.repo.id);
        let _guard = lock.lock().await;
        let head = self.branch_head(&handle, &branch, rev).await?;
        let (target, base, pr_num) = if create_pr {
            // A pull request starts from `parentCommit` when given, else from the branch head.
            let base = match &header.parent_commit {
                Some(p) => self.resolve_revision(&handle, p).await?,
                None => head,
            };
            let (target, num) = self.open_pr_ref(&handle, &base).await?;
            (target, base, num)
        } else {
            if header
                .parent_commit
                .as_deref()
                .is_some_and(|p| !names_commit(p, &head))
            {
                return Err(Error::stale_parent());
            }
            (branch, head, None)
        };
        let git = handle.git.clone();
        let author = signature_of(caller);
        let message = commit_message(&header);
        let t = target.clone();
        let sha = blocking(move || git.commit(&t, Some(&base), changes, &author, &message)).await?;
        if target == "refs/heads/main" {
            self.index_main(&handle.repo).await?;
        } else {
            self.meta
                .record_commit(handle.repo.id, now_ms(), None)
                .await?;
        }
        self.warm_last_commits(&handle, &sha).await;
        Ok(CommitOutcome {
            commit_oid: sha,
            pr_num,
        })
    }

    /// Creates `refs/pr/N` at `head` with the next free number.
    async fn open_pr_ref(&self, handle: &RepoHandle, head: &str) -> Result<(String, Option<u64>)> {
        let git = handle.git.clone();
        let head = head.to_string();
        blocking(move || {
            let refs = git.refs()?;
            crate::ref_rules::check_room(crate::ref_rules::count(&refs), 1)?;
            let next = refs
                .pull_requests
                .iter()
                .filter_map(|r| r.name.strip_prefix("refs/pr/")?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
                + 1;
            let full = format!("refs/pr/{next}");
            git.set_ref(&full, &head, RefExpect::MustNotExist)?;
            Ok((full, Some(next)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_for_commits() {
        assert_eq!(target_ref("main").ok().as_deref(), Some("refs/heads/main"));
        assert_eq!(target_ref("refs/pr/3").ok().as_deref(), Some("refs/pr/3"));
        assert!(target_ref("refs/tags/v1").is_err());
        assert!(target_ref("a..b").is_err());
    }

    #[test]
    fn gitignore_rules() {
        let rules = ignore_rules(&["*.log\n".to_string(), "secret/\n!keep.log\n".to_string()]);
        assert!(
            rules
                .matched_path_or_any_parents("logs/train.log", false)
                .is_ignore()
        );
        assert!(
            rules
                .matched_path_or_any_parents("secret/key.txt", false)
                .is_ignore()
        );
        assert!(
            !rules
                .matched_path_or_any_parents("keep.log", false)
                .is_ignore()
        );
        assert!(
            !rules
                .matched_path_or_any_parents("config.json", false)
                .is_ignore()
        );
    }

    #[test]
    fn parent_commit_prefixes() {
        let head = "4c77982aaaabbbbbccccc1111122222333334444";
        assert!(names_commit(head, head));
        assert!(names_commit("4C77982", head));
        assert!(!names_commit("4c7798", head), "too short");
        assert!(!names_commit("4c77983", head));
        assert!(!names_commit("zzzzzzz", head));
    }

    #[test]
    fn commit_messages_are_bounded() {
        let ok = CommitHeader {
            summary: "s".repeat(MAX_SUMMARY_BYTES),
            description: "d".repeat(MAX_DESCRIPTION_BYTES),
            parent_commit: None,
        };
        assert!(check_message(&ok).is_ok());
        let long_title = CommitHeader {
            summary: "s".repeat(MAX_SUMMARY_BYTES + 1),
            ..ok.clone()
        };
        assert!(check_message(&long_title).is_err());
        let long_text = CommitHeader {
            description: "d".repeat(MAX_DESCRIPTION_BYTES + 1),
            ..ok
        };
        assert!(check_message(&long_text).is_err());
    }

    #[test]
    fn binary_detection() {
        assert!(!looks_binary(b"hello"));
        assert!(looks_binary(b"a\0b"));
        assert!(looks_binary(&[0xff, 0xfe, 0x41]));
        // A multi-byte character cut by the 512-byte sample is still text.
        assert!(!looks_binary(&"é".as_bytes()[..1]));
    }
}
