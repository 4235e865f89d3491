//! Repository rows against repository folders, and the per-repository checks that read git:
//! side areas of interrupted creates and deletes, rows without folders, folders without rows,
//! `git fsck`, and the index against `main`.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use wharf_core::{RepoType, Result};
use wharf_meta::RepoHead;

use super::index::{self, Head, Indexed};
use super::{Check, Run, git, layout};
use crate::Hub;
use crate::repo_folders::{
    CREATING, DELETING, TRASH, discard_folder, move_folder, remove_tree, storage_id_of,
};

/// How long a running server gets to index a push whose refs already moved, per confirmation.
const INDEX_SETTLE: Duration = Duration::from_secs(2);
/// Pauses after which an index disagreement that did not move counts as real.
const INDEX_CONFIRMATIONS: usize = 3;
/// Pause before `git fsck` is run again on a repository a running server may be repacking.
const FSCK_RETRY: Duration = Duration::from_secs(1);

/// A repository whose index disagreed with `main` once; confirmed before it is reported.
pub(crate) struct Suspect {
    head: RepoHead,
    git: Head,
    problem: String,
}

/// `alice/x` for a model, `datasets/alice/x` otherwise (as the Hub spells repository ids).
pub(crate) fn label(head: &RepoHead) -> String {
    match head.repo_type {
        RepoType::Model => format!("{}/{}", head.namespace, head.name),
        other => format!("{}s/{}/{}", other.as_str(), head.namespace, head.name),
    }
}

impl Hub {
    /// Folders a crash left in `repos/.creating` or `repos/.deleting` go back into place when
    /// their row exists (the create finishes, the delete is undone) and are discarded when it
    /// does not; whatever is in `repos/.trash` is removed.
    pub(crate) async fn check_side_areas(&self, run: &mut Run) -> Result<()> {
        for area in [CREATING, DELETING] {
            for entry in layout::list(&self.repos_dir().join(area))? {
                run.examined(Check::RepoFolders, 1);
                if run.abandoned(entry.modified_ms) {
                    self.settle_side_folder(run, area, &entry).await?;
                }
            }
        }
        for entry in layout::list(&self.repos_dir().join(TRASH))? {
            if run.abandoned(entry.modified_ms) {
                let path = entry.path.clone();
                let repaired = run.repair
                    && super::repair_off_thread(&entry.path, move || remove_tree(&path)).await;
                let subject = format!("repos/{TRASH}/{}", entry.name);
                run.found(
                    Check::OrphanFolders,
                    subject,
                    "its removal was interrupted",
                    repaired,
                );
            }
        }
        Ok(())
    }

    async fn settle_side_folder(
        &self,
        run: &mut Run,
        area: &str,
        entry: &layout::Entry,
    ) -> Result<()> {
        let what = if area == CREATING { "create" } else { "delete" };
        let sid = storage_id_of(&entry.name);
        let row = match sid {
            Some(sid) => self.meta.repo_by_storage_id(sid).await?,
            None => None,
        };
        if let (Some(repo), Some(sid)) = (row, sid) {
            let target = self.repo_path(sid);
            if !target.exists() {
                let from = entry.path.clone();
                let repaired = run.repair
                    && super::repair_off_thread(&entry.path, move || move_folder(&from, &target))
                        .await;
                let head = head_of(&repo);
                let problem =
                    format!("its folder was left in repos/{area} by an interrupted {what}");
                run.found(Check::RepoFolders, label(&head), problem, repaired);
                return Ok(());
            }
        }
        let repaired = run.repair && self.discard(&entry.path).await;
        let subject = format!("repos/{area}/{}", entry.name);
        let problem = format!("left by an interrupted {what}; no repository needs it");
        run.found(Check::OrphanFolders, subject, problem, repaired);
        Ok(())
    }

    /// Rows whose folder is missing (reported: the content is lost). Returns the rows that
    /// have their folder.
    pub(crate) async fn check_repo_folders(
        &self,
        run: &mut Run,
        heads: Vec<RepoHead>,
    ) -> Result<Vec<RepoHead>> {
        let mut present = Vec::with_capacity(heads.len());
        for head in heads {
            run.examined(Check::RepoFolders, 1);
            let path = self.repo_path(&head.storage_id);
            if path.is_dir() {
                present.push(head);
                continue;
            }
            // A create or delete in progress has its folder in a side area; a row deleted
            // meanwhile needs nothing.
            let in_side_area = [CREATING, DELETING]
                .iter()
                .any(|area| self.side_path(area, &head.storage_id).exists());
            if in_side_area
                || self
                    .meta
                    .repo_by_storage_id(&head.storage_id)
                    .await?
                    .is_none()
            {
                continue;
            }
            let problem = format!(
                "no git folder repos/{}.git: its content is lost (restore the folder from a \
                 backup, or delete the repository)",
                head.storage_id
            );
            run.found(Check::RepoFolders, label(&head), problem, false);
        }
        Ok(present)
    }

    /// Git folders no row names: moved to the trash and removed (at start-up only logged, since
    /// a database restored from an older backup shows the same way).
    pub(crate) async fn check_orphan_folders(
        &self,
        run: &mut Run,
        known: &HashSet<String>,
    ) -> Result<()> {
        for entry in layout::list(self.repos_dir())? {
            let Some(sid) = storage_id_of(&entry.name) else {
                continue;
            };
            run.examined(Check::OrphanFolders, 1);
            if known.contains(sid) || !run.abandoned(entry.modified_ms) {
                continue;
            }
            if self.meta.repo_by_storage_id(sid).await?.is_some() {
                continue;
            }
            let repaired = run.repair && !run.startup && self.discard(&entry.path).await;
            let subject = format!("repos/{}", entry.name);
            run.found(
                Check::OrphanFolders,
                subject,
                "a git folder no repository row names",
                repaired,
            );
        }
        Ok(())
    }

    /// Stale lock files and temporary files in one repository's git folder: removed.
    pub(crate) async fn check_git_leftovers(&self, run: &mut Run, head: &RepoHead) -> Result<()> {
        let scan = self.repo_path(&head.storage_id);
        let entries = crate::blocking(move || Ok(layout::repo_leftovers(&scan)?)).await?;
        self.note_leftovers(run, head, entries);
        Ok(())
    }

    /// Reports (and removes) the abandoned ones of `entries`, found in `head`'s git folder.
    pub(crate) fn note_leftovers(
        &self,
        run: &mut Run,
        head: &RepoHead,
        entries: Vec<layout::Entry>,
    ) {
        run.examined(Check::GitLeftovers, 1);
        let path = self.repo_path(&head.storage_id);
        for entry in entries {
            if !run.abandoned(entry.modified_ms) {
                continue;
            }
            let rel = layout::shown(&path, &entry.path);
            let problem = if rel.ends_with(".lock") {
                format!("{rel}: stale lock file (it blocks every update of that file)")
            } else {
                format!("{rel}: left by an interrupted write")
            };
            let repaired = run.repair && super::remove(&entry.path);
            run.found(Check::GitLeftovers, label(head), problem, repaired);
        }
    }

    /// `git fsck` of one repository (tried again after a pause while a server runs: a
    /// background `git gc` may be repacking).
    pub(crate) async fn check_git_fsck(&self, run: &mut Run, head: &RepoHead) -> Result<()> {
        if run.startup {
            return Ok(());
        }
        run.examined(Check::GitFsck, 1);
        let path = self.repo_path(&head.storage_id);
        let mut complaint = git::fsck(&path, run.full()).await?;
        if complaint.is_some() && run.server_running() {
            tokio::time::sleep(FSCK_RETRY).await;
            complaint = git::fsck(&path, run.full()).await?;
        }
        if let Some(complaint) = complaint
            && self.still_there(head, &path).await?
        {
            run.found(Check::GitFsck, label(head), complaint, false);
        }
        Ok(())
    }

    /// Compares the index with `main`; a disagreement becomes a suspect, confirmed (and
    /// repaired) by [`settle_index`](Hub::settle_index).
    pub(crate) async fn check_index(
        &self,
        run: &mut Run,
        head: &RepoHead,
    ) -> Result<Option<Suspect>> {
        let git = index::read_head(self.repo_path(&head.storage_id)).await?;
        let suspect = index_suspect(run, head, git);
        if suspect.is_some() || run.startup {
            return Ok(suspect);
        }
        // Same head: the card fields must be what that head derives.
        let Some(repo) = self.meta.repo_by_id(head.id).await? else {
            return Ok(None);
        };
        let Some(sha) = repo.sha.clone() else {
            return Ok(None);
        };
        let problem = self.card_problem(&repo, &sha).await?;
        Ok(problem.map(|problem| Suspect {
            git: Head {
                sha: Some(sha),
                ref_modified_ms: None,
            },
            head: head.clone(),
            problem,
        }))
    }

    /// Reports (and repairs) the suspects whose disagreement holds: while a server runs, only
    /// if neither the row nor `main` moved during [`INDEX_CONFIRMATIONS`] pauses (a push
    /// indexes a moment after its refs move, and a busy server may take a while).
    pub(crate) async fn settle_index(
        &self,
        run: &mut Run,
        mut suspects: Vec<Suspect>,
    ) -> Result<()> {
        if run.server_running() {
            for _ in 0..INDEX_CONFIRMATIONS {
                if suspects.is_empty() {
                    break;
                }
                tokio::time::sleep(INDEX_SETTLE).await;
                let mut holding = Vec::with_capacity(suspects.len());
                for s in suspects {
                    if self.suspect_holds(&s).await? {
                        holding.push(s);
                    }
                }
                suspects = holding;
            }
        }
        for s in suspects {
            let indexed = Indexed {
                sha: s.head.sha.as_deref(),
                last_modified: s.head.last_modified,
            };
            let repaired = run.repair
                && index::reindex_helps(&s.git)
                && match self.reindex(s.head.id, &s.head.storage_id, indexed).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(repo = %label(&s.head), error = %e, "could not re-index");
                        false
                    }
                };
            run.found(Check::Index, label(&s.head), s.problem, repaired);
        }
        Ok(())
    }

    async fn suspect_holds(&self, s: &Suspect) -> Result<bool> {
        let Some(row) = self.meta.repo_by_id(s.head.id).await? else {
            return Ok(false);
        };
        if row.sha != s.head.sha || row.last_modified != s.head.last_modified {
            return Ok(false);
        }
        match index::read_head(self.repo_path(&s.head.storage_id)).await {
            Ok(again) => Ok(again.sha == s.git.sha),
            Err(_) => Ok(false),
        }
    }

    /// Moves a folder to the trash and removes it (see `repo_folders`).
    async fn discard(&self, path: &Path) -> bool {
        let (repos, folder) = (self.repos_dir().to_path_buf(), path.to_path_buf());
        super::repair_off_thread(path, move || discard_folder(&repos, &folder)).await
    }

    /// Whether the repository still has its row and folder (a delete may have run meanwhile).
    pub(crate) async fn still_there(&self, head: &RepoHead, path: &Path) -> Result<bool> {
        Ok(path.is_dir()
            && self
                .meta
                .repo_by_storage_id(&head.storage_id)
                .await?
                .is_some())
    }
}

/// The cheap comparison of one repository's index with `main` as read.
pub(crate) fn index_suspect(run: &mut Run, head: &RepoHead, git: Head) -> Option<Suspect> {
    run.examined(Check::Index, 1);
    let indexed = Indexed {
        sha: head.sha.as_deref(),
        last_modified: head.last_modified,
    };
    index::head_problem(indexed, &git).map(|problem| Suspect {
        head: head.clone(),
        git,
        problem,
    })
}

fn head_of(repo: &wharf_meta::Repo) -> RepoHead {
    RepoHead {
        id: repo.id,
        storage_id: repo.storage_id.clone(),
        repo_type: repo.repo_type,
        namespace: repo.namespace.clone(),
        name: repo.name.clone(),
        sha: repo.sha.clone(),
        last_modified: repo.last_modified,
    }
}
