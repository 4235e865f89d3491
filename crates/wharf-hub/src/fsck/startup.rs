//! The cheap form of `wharf fsck` that `wharf serve` runs before it listens: what a crash of
//! the previous server can have left is settled, at the cost of one ref read and a few small
//! folder listings per repository (no tree walk, no object read):
//! - creates and deletes it interrupted are finished or undone (`repos/.creating`,
//!   `repos/.deleting`), the trash is emptied;
//! - stale lock and temporary files in git folders are removed (a stale ref lock would refuse
//!   every later commit to that branch);
//! - every repository whose `repos.sha` is not `refs/heads/main` (or whose main moved after its
//!   `last_modified`) is re-indexed;
//! - staging files of uploads are removed.
//!
//! Rows without folders and folders without rows are only logged: the first cannot be
//! repaired, the second may be a database restored from an older backup (`wharf fsck --repair`
//! removes them). Everything is logged; the report says how much was fixed.

use std::time::{Duration, Instant};

use wharf_core::Result;

use futures::StreamExt;
use wharf_meta::RepoHead;

use super::lock::{SERVE_LOCK, ServerLock};
use super::repos::{Suspect, index_suspect, label};
use super::{Check, Run, index, layout};
use crate::Hub;

/// How long a starting server waits for a killed predecessor's git processes to finish.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// Git folders read at once (the reads are small; the disk and the blocking pool do the rest).
const SCANS: usize = 8;
/// Without the lock (someone else works on the data folder), leftovers younger than this may be
/// in progress.
const SHARED_GRACE: Duration = Duration::from_secs(3600);

/// What the start-up reconciliation did. Holds the server's `serve.lock` (when it got it):
/// keep it for as long as the server runs.
#[derive(Debug)]
pub struct StartupReport {
    pub repos: u64,
    /// Inconsistencies fixed (and logged).
    pub fixed: u64,
    /// Inconsistencies left for `wharf fsck` (logged as warnings).
    pub left: u64,
    /// The server holds `serve.lock`: nothing else works on the data folder.
    pub exclusive: bool,
    pub elapsed: Duration,
    _lock: Option<ServerLock>,
}

impl Hub {
    /// Run by `wharf serve` once, before it listens; see the module comment.
    pub async fn reconcile_at_start(&self) -> Result<StartupReport> {
        let started = Instant::now();
        let lock = ServerLock::acquire_for_server(self.data_dir(), LOCK_WAIT).await?;
        if lock.is_none() {
            tracing::warn!(
                lock = %self.data_dir().join(SERVE_LOCK).display(),
                "another process holds the data folder's lock (a second server, or wharf fsck): \
                 only leftovers older than an hour are cleaned"
            );
        }
        let mut run = Run::new(true, lock.is_none(), SHARED_GRACE, false);
        run.startup = true;
        self.check_side_areas(&mut run).await?;
        let heads = self.meta.repo_heads().await?;
        run.report.repos = heads.len() as u64;
        let known = heads.iter().map(|h| h.storage_id.clone()).collect();
        let present = self.check_repo_folders(&mut run, heads).await?;
        self.check_orphan_folders(&mut run, &known).await?;
        let suspects = self.scan_repos(&mut run, &present).await?;
        self.settle_index(&mut run, suspects).await?;
        self.check_temp_files(&mut run).await?;
        let report = StartupReport {
            repos: run.report.repos,
            fixed: (run.report.problems() - run.report.unrepaired()) as u64,
            left: run.report.unrepaired() as u64,
            exclusive: lock.is_some(),
            elapsed: started.elapsed(),
            _lock: lock,
        };
        log_findings(&run);
        tracing::info!(
            repos = report.repos,
            fixed = report.fixed,
            left = report.left,
            ms = report.elapsed.as_millis() as u64,
            "start-up reconciliation done"
        );
        Ok(report)
    }
}

impl Hub {
    /// Leftovers and `main` of every repository, read [`SCANS`] at a time; the leftovers are
    /// settled here, the index disagreements returned.
    async fn scan_repos(&self, run: &mut Run, present: &[RepoHead]) -> Result<Vec<Suspect>> {
        let scans: Vec<Result<Scan>> = futures::stream::iter(present.iter().map(|head| {
            let dir = self.repo_path(&head.storage_id);
            crate::blocking(move || {
                Ok(Scan {
                    leftovers: layout::repo_leftovers(&dir)?,
                    head: index::read_head_now(&dir)?,
                })
            })
        }))
        .buffered(SCANS)
        .collect()
        .await;
        let mut suspects = Vec::new();
        for (head, scan) in present.iter().zip(scans) {
            match scan {
                Ok(scan) => {
                    self.note_leftovers(run, head, scan.leftovers);
                    suspects.extend(index_suspect(run, head, scan.head));
                }
                Err(e) => {
                    let problem = format!("could not be read: {e}");
                    run.found(Check::Index, label(head), problem, false);
                }
            }
        }
        Ok(suspects)
    }
}

/// What start-up reads from one git folder.
struct Scan {
    leftovers: Vec<layout::Entry>,
    head: index::Head,
}

fn log_findings(run: &Run) {
    for check in &run.report.checks {
        for f in &check.findings {
            let name = Check::name(check.check);
            if f.repaired {
                tracing::info!(check = name, subject = %f.subject, problem = %f.problem, "repaired at start-up");
            } else {
                tracing::warn!(check = name, subject = %f.subject, problem = %f.problem, "left as it is: see wharf fsck");
            }
        }
    }
}
