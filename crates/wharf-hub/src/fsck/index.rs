//! The metadata index against `refs/heads/main`: `repos.sha`, the card fields derived from the
//! README at that commit, and `last_modified`.
//!
//! A commit or push moves the ref first and indexes after, so a crash in between leaves the
//! row showing an older head. The cheap comparison (start-up) reads one ref and stats one file
//! per repository: the sha, and the loose ref file's modification time against
//! `last_modified` (the index is always written after the ref, by the same clock, so a ref file
//! newer than `last_modified` was never indexed). The full one also derives the card fields.
//! Other branches are not compared: creating a branch or tag does not touch `last_modified`,
//! so nothing tells a crash after a commit to another branch from a plain branch creation.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use wharf_core::{Error, Result, time::now_ms};
use wharf_git::GitRepo;
use wharf_meta::{MainState, Repo};

use crate::cards::card_state;
use crate::{Hub, blocking};

/// Times the repair re-reads `main` when a concurrent writer moved it meanwhile.
const REINDEX_ATTEMPTS: usize = 5;

/// `refs/heads/main` of one repository as git has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub sha: Option<String>,
    /// Modification time of the loose ref file (None when the ref is packed or absent).
    pub ref_modified_ms: Option<i64>,
}

/// What the index of one repository says about `main`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Indexed<'a> {
    pub sha: Option<&'a str>,
    pub last_modified: i64,
}

/// Reads `main` without keeping the repository open (start-up visits every repository once).
pub(crate) async fn read_head(git_dir: PathBuf) -> Result<Head> {
    blocking(move || read_head_now(&git_dir)).await
}

/// Reads `main`: from its loose ref file when there is one (every commit and push writes
/// one), the sha and the time from the same open file; else through git's packed refs.
pub(crate) fn read_head_now(git_dir: &Path) -> Result<Head> {
    let loose = git_dir.join("refs/heads/main");
    match std::fs::File::open(&loose) {
        Ok(mut file) => {
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            let sha = text.trim();
            if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                let modified = file.metadata()?.modified()?;
                let ms = modified
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                return Ok(Head {
                    sha: Some(sha.to_ascii_lowercase()),
                    ref_modified_ms: Some(ms),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let git = GitRepo::open(git_dir)?;
    Ok(Head {
        sha: git.ref_target("refs/heads/main")?,
        ref_modified_ms: super::layout::modified_at(&loose)?,
    })
}

fn short(sha: Option<&str>) -> &str {
    sha.map_or("nothing", |s| s.get(..12).unwrap_or(s))
}

/// Why the index disagrees with `head` (sha and time only), or None.
pub(crate) fn head_problem(indexed: Indexed<'_>, head: &Head) -> Option<String> {
    let Some(sha) = head.sha.as_deref() else {
        return Some("the repository has no main branch".to_string());
    };
    if indexed.sha != Some(sha) {
        return Some(format!(
            "the index shows main at {}, git has {}",
            short(indexed.sha),
            short(Some(sha))
        ));
    }
    match head.ref_modified_ms {
        Some(t) if t > indexed.last_modified => Some(format!(
            "last modified ({}) is older than main's last update ({t})",
            indexed.last_modified
        )),
        _ => None,
    }
}

/// Whether a re-index can settle `head_problem` (a missing main branch it cannot).
pub(crate) fn reindex_helps(head: &Head) -> bool {
    head.sha.is_some()
}

/// The card fields of the row against what `state` derives (tags compared as sets).
fn card_matches(repo: &Repo, state: &MainState) -> bool {
    let sorted = |tags: &[String]| {
        let mut t = tags.to_vec();
        t.sort();
        t.dedup();
        t
    };
    repo.card_data == state.card_data
        && sorted(&repo.tags) == sorted(&state.tags)
        && repo.pipeline_tag == state.pipeline_tag
        && repo.library_name == state.library_name
}

/// The `last_modified` a re-index records: when the loose ref was written, else now if main
/// moved without a trace of when; never earlier than what the row has.
fn last_modified_for(indexed: Indexed<'_>, head: &Head) -> i64 {
    let moved = indexed.sha != head.sha.as_deref();
    let changed = match head.ref_modified_ms {
        Some(t) => t,
        None if moved => now_ms(),
        None => indexed.last_modified,
    };
    changed.max(indexed.last_modified)
}

impl Hub {
    /// Full check: the card fields of `repo` against those derived at its head (which the
    /// caller found equal to `repo.sha`).
    pub(crate) async fn card_problem(&self, repo: &Repo, head: &str) -> Result<Option<String>> {
        let git = Arc::new(
            blocking({
                let path = self.repo_path(&repo.storage_id);
                move || GitRepo::open(&path)
            })
            .await?,
        );
        let state = card_state(git, head.to_string())
            .await?
            .into_main_state(head.to_string());
        Ok((!card_matches(repo, &state)).then(|| {
            "card data, tags, pipeline or library differ from what main's README derives"
                .to_string()
        }))
    }

    /// Re-indexes `main` until the index and the ref agree: a server running meanwhile may
    /// move main between our read and our write, so the ref is read again after writing and
    /// the write repeated if it moved. Returns the head indexed.
    pub(crate) async fn reindex(
        &self,
        repo_id: i64,
        storage_id: &str,
        indexed: Indexed<'_>,
    ) -> Result<Option<String>> {
        let path = self.repo_path(storage_id);
        for _ in 0..REINDEX_ATTEMPTS {
            let head = read_head(path.clone()).await?;
            let at = last_modified_for(indexed, &head);
            let done = self.index_main_at(repo_id, storage_id, at).await?;
            if read_head(path.clone()).await?.sha == done {
                return Ok(done);
            }
        }
        Err(Error::conflict(format!(
            "main of {storage_id} kept moving while it was re-indexed"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(sha: Option<&str>, at: Option<i64>) -> Head {
        Head {
            sha: sha.map(str::to_string),
            ref_modified_ms: at,
        }
    }

    fn row(sha: Option<&str>, last_modified: i64) -> Indexed<'_> {
        Indexed { sha, last_modified }
    }

    #[test]
    fn head_problems() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let a_row = |t| row(Some(a.as_str()), t);
        assert!(head_problem(a_row(100), &head(Some(&a), Some(100))).is_none());
        assert!(head_problem(a_row(100), &head(Some(&a), None)).is_none());
        assert!(head_problem(a_row(100), &head(Some(&b), Some(50))).is_some());
        assert!(head_problem(row(None, 100), &head(Some(&a), Some(50))).is_some());
        let late = head_problem(a_row(100), &head(Some(&a), Some(101)));
        assert!(late.is_some_and(|p| p.contains("last modified")));
        assert!(head_problem(a_row(100), &head(None, None)).is_some());
        // The time a re-index records.
        assert_eq!(
            last_modified_for(a_row(100), &head(Some(&b), Some(150))),
            150
        );
        assert_eq!(last_modified_for(a_row(100), &head(Some(&a), None)), 100);
        assert!(last_modified_for(a_row(100), &head(Some(&b), None)) > 100);
        assert_eq!(
            last_modified_for(a_row(200), &head(Some(&b), Some(150))),
            200
        );
    }
}
