//! `wharf fsck`: the data folder checked against itself, and repaired where that loses
//! nothing; and its cheap form, run by `wharf serve` at start-up.
//!
//! The checks ([`Check`]), each with what `--repair` does:
//! - **repo-folders**: every repository row has its git folder. A folder a crash left in a side
//!   area (`repos/.creating`, `repos/.deleting`, see `repo_folders`) while its row exists is
//!   moved back; a row whose folder is lost is reported only.
//! - **orphan-folders**: git folders no row names, and side-area folders whose row is gone:
//!   moved to `repos/.trash`, then removed.
//! - **git-leftovers**: stale `*.lock` files (a stale ref lock blocks every later update of
//!   that ref), push quarantines and temporary object files in a repository: removed.
//! - **git-fsck**: `git fsck --connectivity-only` (`--full`: every object re-hashed). Reported.
//! - **index**: `repos.sha`, the card fields and `last_modified` against `refs/heads/main`:
//!   re-indexed.
//! - **lfs-pointers**: every LFS pointer reachable from any ref names an object its repository
//!   uploaded (`repo_lfs_objects`) with that size. Reported (linking it would hand the
//!   repository someone else's object).
//! - **lfs-objects**: every linked object is stored, as a blob or as a Xet file whose xorbs
//!   are all stored. Reported (the bytes are gone).
//! - **xet-xorbs**: every registered Xet file's xorbs are stored. Reported.
//! - **gc-quarantine**: objects an interrupted `wharf gc` left aside: put back when still
//!   needed, else deleted (what the next `wharf gc` would do).
//! - **temp-files**: staging files of uploads, inference snapshots and the hook script: removed.
//!
//! Safe while `serve` runs: it never writes what a request could be writing. Leftovers younger
//! than the grace period may belong to work in progress and are left alone, unless the check
//! holds `serve.lock` (no server runs, see `lock`); every finding is confirmed again just before
//! it is reported or repaired (the row still there, the folder still missing); an index that
//! disagrees is read again after a pause, since a push indexes a moment after its refs move.
//! The caller keeps `wharf gc` from running meanwhile (the command line holds `gc.lock`).

mod git;
mod index;
mod layout;
mod lock;
mod objects;
mod repos;
mod startup;
#[cfg(test)]
mod tests;

pub use lock::ServerLock;
pub use startup::StartupReport;

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use wharf_core::{Result, time::now_ms};

use crate::Hub;

/// One kind of consistency check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    RepoFolders,
    OrphanFolders,
    GitLeftovers,
    GitFsck,
    Index,
    LfsPointers,
    LfsObjects,
    XetXorbs,
    GcQuarantine,
    TempFiles,
}

impl Check {
    /// Every check, in the order they run and are reported.
    pub const ALL: [Check; 10] = [
        Check::RepoFolders,
        Check::OrphanFolders,
        Check::GitLeftovers,
        Check::GitFsck,
        Check::Index,
        Check::LfsPointers,
        Check::LfsObjects,
        Check::XetXorbs,
        Check::GcQuarantine,
        Check::TempFiles,
    ];

    /// The check's name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Check::RepoFolders => "repo-folders",
            Check::OrphanFolders => "orphan-folders",
            Check::GitLeftovers => "git-leftovers",
            Check::GitFsck => "git-fsck",
            Check::Index => "index",
            Check::LfsPointers => "lfs-pointers",
            Check::LfsObjects => "lfs-objects",
            Check::XetXorbs => "xet-xorbs",
            Check::GcQuarantine => "gc-quarantine",
            Check::TempFiles => "temp-files",
        }
    }

    /// What holds when the check finds nothing.
    pub fn title(self) -> &'static str {
        match self {
            Check::RepoFolders => "every repository row has its git folder",
            Check::OrphanFolders => "every git folder has its repository row",
            Check::GitLeftovers => "no stale lock or temporary file in a git folder",
            Check::GitFsck => "git fsck passes on every repository",
            Check::Index => "the index (sha, card fields, last modified) matches main",
            Check::LfsPointers => "every reachable LFS pointer names an object its repo uploaded",
            Check::LfsObjects => "every linked LFS object is stored (blob or Xet)",
            Check::XetXorbs => "every Xet file's xorbs are stored",
            Check::GcQuarantine => "nothing left aside by an interrupted gc",
            Check::TempFiles => "no stale staging file",
        }
    }
}

/// One inconsistency.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What it is about: a repository, a path in the data folder, an object id.
    pub subject: String,
    pub problem: String,
    /// Set when `--repair` fixed it.
    pub repaired: bool,
}

/// What one check examined and found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub check: Check,
    pub title: &'static str,
    /// Items looked at (repositories, folders, pointers, objects, files).
    pub examined: u64,
    pub findings: Vec<Finding>,
}

/// The outcome of `wharf fsck`.
#[derive(Debug, Clone, Serialize)]
pub struct FsckReport {
    pub repair: bool,
    /// A server (or its children) held `serve.lock`: young leftovers were left alone.
    pub server_running: bool,
    pub full: bool,
    pub repos: u64,
    pub checks: Vec<CheckReport>,
}

impl FsckReport {
    fn new(repair: bool, server_running: bool, full: bool) -> FsckReport {
        FsckReport {
            repair,
            server_running,
            full,
            repos: 0,
            checks: Check::ALL
                .iter()
                .map(|&check| CheckReport {
                    check,
                    title: check.title(),
                    examined: 0,
                    findings: Vec::new(),
                })
                .collect(),
        }
    }

    fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.checks.iter().flat_map(|c| c.findings.iter())
    }

    /// Everything found, repaired or not.
    pub fn problems(&self) -> usize {
        self.findings().count()
    }

    /// What is still wrong.
    pub fn unrepaired(&self) -> usize {
        self.findings().filter(|f| !f.repaired).count()
    }

    /// True when nothing is wrong any more.
    pub fn is_clean(&self) -> bool {
        self.unrepaired() == 0
    }

    /// The report as pretty-printed JSON (`wharf fsck --json`).
    pub fn to_json(&self) -> String {
        // Plain structs of numbers and strings always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// How `wharf fsck` runs.
#[derive(Debug, Clone, Copy)]
pub struct FsckOptions {
    /// Fix what can be fixed without losing anything.
    pub repair: bool,
    /// While a server runs, leftovers younger than this may be work in progress.
    pub grace: Duration,
    /// `git fsck` re-hashes every object (without it: connectivity only).
    pub full: bool,
}

/// The state of one run: what it may do, and what it found so far.
pub(crate) struct Run {
    repair: bool,
    /// Leftovers modified before this (epoch ms) are abandoned.
    cutoff_ms: i64,
    /// The cheap form of `serve`'s start-up: no git fsck, no object walks, orphans only logged.
    startup: bool,
    report: FsckReport,
}

impl Run {
    fn new(repair: bool, server_running: bool, grace: Duration, full: bool) -> Run {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        Run {
            repair,
            cutoff_ms: if server_running {
                now_ms().saturating_sub(grace_ms)
            } else {
                i64::MAX
            },
            startup: false,
            report: FsckReport::new(repair, server_running, full),
        }
    }

    fn check(&mut self, check: Check) -> &mut CheckReport {
        let i = Check::ALL.iter().position(|c| *c == check).unwrap_or(0);
        &mut self.report.checks[i]
    }

    fn examined(&mut self, check: Check, n: u64) {
        self.check(check).examined += n;
    }

    fn found(
        &mut self,
        check: Check,
        subject: impl Into<String>,
        problem: impl Into<String>,
        repaired: bool,
    ) {
        self.check(check).findings.push(Finding {
            subject: subject.into(),
            problem: problem.into(),
            repaired,
        });
    }

    /// Whether something last modified at `modified_ms` is abandoned (not work in progress).
    fn abandoned(&self, modified_ms: i64) -> bool {
        modified_ms < self.cutoff_ms
    }

    fn server_running(&self) -> bool {
        self.report.server_running
    }

    fn full(&self) -> bool {
        self.report.full
    }
}

impl Hub {
    /// A check that failed on one repository (a broken repository fails to read) is a finding
    /// about it, not the end of the run; unless the repository was deleted meanwhile.
    async fn unchecked(
        &self,
        run: &mut Run,
        head: &wharf_meta::RepoHead,
        check: Check,
        outcome: Result<()>,
    ) -> Result<()> {
        let Err(e) = outcome else {
            return Ok(());
        };
        if self
            .still_there(head, &self.repo_path(&head.storage_id))
            .await?
        {
            run.found(
                check,
                repos::label(head),
                format!("could not be checked: {e}"),
                false,
            );
        }
        Ok(())
    }
}

/// Removes a small leftover (a lock or temporary file); false (with a warning) when that failed.
fn remove(path: &std::path::Path) -> bool {
    warn_unless_done(path, crate::repo_folders::remove_tree(path))
}

/// Runs a repair of `path` off the async workers (a folder may hold gigabytes); false (with a
/// warning) when it failed.
async fn repair_off_thread(
    path: &std::path::Path,
    action: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> bool {
    let done = crate::blocking(move || Ok(action()?)).await;
    warn_unless_done(path, done.map_err(std::io::Error::other))
}

fn warn_unless_done(path: &std::path::Path, done: std::io::Result<()>) -> bool {
    match done {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not repair");
            false
        }
    }
}

impl Hub {
    /// `wharf fsck`: every check of the module comment; with `repair`, fixes what can be fixed.
    /// The caller keeps `wharf gc` from running meanwhile (the command line holds `gc.lock`).
    pub async fn fsck(&self, options: FsckOptions) -> Result<FsckReport> {
        let lock = ServerLock::try_acquire(self.data_dir())?;
        let mut run = Run::new(options.repair, lock.is_none(), options.grace, options.full);
        self.check_side_areas(&mut run).await?;
        let heads = self.meta.repo_heads().await?;
        run.report.repos = heads.len() as u64;
        let known: HashSet<String> = heads.iter().map(|h| h.storage_id.clone()).collect();
        let present = self.check_repo_folders(&mut run, heads).await?;
        self.check_orphan_folders(&mut run, &known).await?;
        let mut suspects = Vec::new();
        for head in &present {
            let leftovers = self.check_git_leftovers(&mut run, head).await;
            self.unchecked(&mut run, head, Check::GitLeftovers, leftovers)
                .await?;
            let fsck = self.check_git_fsck(&mut run, head).await;
            self.unchecked(&mut run, head, Check::GitFsck, fsck).await?;
            match self.check_index(&mut run, head).await {
                Ok(suspect) => suspects.extend(suspect),
                Err(e) => self.unchecked(&mut run, head, Check::Index, Err(e)).await?,
            }
            let pointers = self.check_lfs_pointers(&mut run, head).await;
            self.unchecked(&mut run, head, Check::LfsPointers, pointers)
                .await?;
        }
        self.settle_index(&mut run, suspects).await?;
        // Objects put back from the quarantine are stored again for the next check.
        self.check_gc_quarantine(&mut run).await?;
        self.check_stored_objects(&mut run).await?;
        self.check_temp_files(&mut run).await?;
        drop(lock);
        Ok(run.report)
    }
}
