//! Storage accounting (`wharf storage stats`, `usedStorage` in repo info) and garbage
//! collection (`wharf gc`).
//!
//! **Logical** bytes of a repository are what it holds from its users' point of view: the
//! sizes of the LFS objects it links (uploaded through LFS or Xet, every revision included)
//! plus its git directory. **Physical** bytes are what it occupies on disk after dedup: its git
//! directory, the whole-file LFS blobs still stored for its objects, and every xorb its
//! objects' Xet files use, each xorb counted once (a xorb shared with another repository is
//! counted in both, so per-repository physical bytes do not add up to the total; the total
//! counts every stored byte once).
//!
//! **Garbage collection** takes the `repo_lfs_objects` links as its roots instead of walking
//! every commit of every repository: a commit (API, web or git push) may only name LFS objects
//! linked to its own repository, and links go only with their repository, so the links cover
//! every pointer of every retained revision (refs/pr/* and deleted branches included) at the
//! cost of a query. What it does not see: an object that was uploaded or dropped from history
//! but whose repository still exists stays (the Hub bills such objects too).
//!
//! The sweep is safe while the server runs. Each object is first moved aside (one rename), then
//! its row is deleted by a statement that re-checks that it is still garbage, and only then are
//! its bytes deleted; when the re-check fails the object is moved back. An upload of a known
//! xorb touches its row before anything else (`touch_xet_xorb`), so a xorb re-uploaded during
//! the sweep keeps its row, and one re-uploaded after its row went is stored again from
//! scratch. LFS blobs have no row: a blob whose file was written after the cutoff is moved back,
//! which covers an upload racing with the sweep (the upload writes before it links). A crash
//! between the rename and the row's deletion leaves the object aside with its row; the next
//! `wharf gc` run puts it back first. A xorb file without a row (an upload that stopped between
//! storing and recording it) is moved aside and deleted unless a row appeared meanwhile; an
//! upload that found such a file already there checks after recording that it still is, and
//! stores it again if the sweep took it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use wharf_blob::{ObjectKind, Space};
use wharf_core::{RepoType, Result, time::now_ms};
use wharf_meta::{RepoQuery, RepoSort};

use crate::{Hub, Repo, blocking};

/// Repositories per listing page while the report walks them all.
const PAGE: i64 = 500;
const XORBS: ObjectKind = ObjectKind::Keyed(Space::Xorb);

/// The storage of one repository.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoStorage {
    /// `{type}s/{namespace}/{name}` (models without the prefix, as the Hub spells ids).
    pub repo: String,
    pub logical_bytes: u64,
    pub physical_bytes: u64,
    pub git_bytes: u64,
    /// LFS objects the repository links, and their sizes.
    pub lfs_objects: u64,
    pub lfs_bytes: u64,
    /// Whole-file blobs still stored for those objects.
    pub lfs_blob_bytes: u64,
    /// Distinct xorbs its objects' Xet files use, and their stored bytes.
    pub xorbs: u64,
    pub xorb_bytes: u64,
}

/// Every repository and the totals of the instance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StorageReport {
    pub repos: Vec<RepoStorage>,
    /// Σ logical bytes of all repositories.
    pub total_logical_bytes: u64,
    /// Every byte on disk once: git directories, LFS blobs, xorbs.
    pub total_physical_bytes: u64,
    pub git_bytes: u64,
    pub lfs_blobs: u64,
    pub lfs_blob_bytes: u64,
    pub xorbs: u64,
    pub xorb_bytes: u64,
    pub xet_files: u64,
    /// Logical ÷ physical (1.0 for an empty instance).
    pub dedup_ratio: f64,
}

/// How `wharf gc` runs.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Objects written or recorded more recently than this are never removed: an upload may be
    /// between its xorbs and its shard, or between its LFS PUT and its link.
    pub grace: Duration,
    /// False: report only.
    pub apply: bool,
}

/// Objects of one kind found (dry run) or removed (apply), and their bytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GcCount {
    pub count: u64,
    pub bytes: u64,
}

impl GcCount {
    fn add(&mut self, bytes: i64) {
        self.count += 1;
        self.bytes += u64::try_from(bytes).unwrap_or(0);
    }
}

/// What a garbage collection found or did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GcReport {
    pub applied: bool,
    /// Registered Xet files (bytes: their logical size; they occupy only index rows).
    pub xet_files: GcCount,
    pub xorbs: GcCount,
    /// Xorb files without a row: an upload that stopped between storing a xorb and recording it.
    pub stray_xorbs: GcCount,
    pub lfs_blobs: GcCount,
    /// Candidates that turned out to be needed again during the sweep and were kept.
    pub kept_in_race: u64,
    /// Objects an interrupted earlier run had moved aside: put back, or deleted.
    pub restored: u64,
    pub purged: u64,
}

impl GcReport {
    /// Bytes on disk freed (or that would be).
    pub fn freed_bytes(&self) -> u64 {
        self.xorbs.bytes + self.stray_xorbs.bytes + self.lfs_blobs.bytes
    }

    /// The report as pretty-printed JSON (`wharf gc --json`).
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

impl StorageReport {
    /// The report as pretty-printed JSON (`wharf storage stats --json`).
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

fn to_json(value: &impl Serialize) -> String {
    // Plain structs of numbers and strings always serialize.
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn repo_label(r: &Repo) -> String {
    match r.repo_type {
        RepoType::Model => format!("{}/{}", r.namespace, r.name),
        other => format!("{}s/{}/{}", other.as_str(), r.namespace, r.name),
    }
}

fn bytes(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Bytes of the regular files under `dir` (0 when it does not exist).
fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            // A running commit or push creates and renames temporary files as we walk: an
            // entry gone by the time it is looked at is simply not counted.
            let counted = entry.and_then(|entry| {
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    pending.push(entry.path());
                    Ok(0)
                } else if kind.is_file() {
                    Ok(entry.metadata()?.len())
                } else {
                    Ok(0)
                }
            });
            match counted {
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(total)
}

impl Hub {
    async fn git_size(&self, storage_id: &str) -> Result<u64> {
        let path: PathBuf = self.repo_path(storage_id);
        blocking(move || Ok(dir_size(&path)?)).await
    }

    /// `usedStorage` of repo info: the repository's logical bytes (its LFS objects, every
    /// revision, plus its git directory). Logical, not physical: physical bytes depend on what
    /// other repositories share with this one, which must not show through the API.
    /// Remembered per repository until it changes (`last_modified`), since it walks the git
    /// folder and every link: repo info, which anyone may ask for again and again, shows it.
    pub async fn used_storage(&self, repo: &Repo) -> Result<u64> {
        let key = format!("{}:{}", repo.id, repo.last_modified);
        if let Some(known) = self.used_storage_cache.get(&key) {
            return Ok(*known);
        }
        let links = self.meta.lfs_links(Some(repo.id)).await?;
        let lfs: u64 = links.iter().map(|l| bytes(l.size)).sum();
        let total = lfs + self.git_size(&repo.storage_id).await?;
        self.used_storage_cache.insert(key, total, 1);
        Ok(total)
    }

    /// Every repository, of every type (administration: no visibility filter).
    async fn all_repos(&self) -> Result<Vec<Repo>> {
        let mut out = Vec::new();
        for repo_type in [RepoType::Model, RepoType::Dataset, RepoType::Space] {
            let mut offset = 0;
            loop {
                let page = self
                    .meta
                    .list_repos(&RepoQuery {
                        repo_type,
                        search: None,
                        author: None,
                        tags: Vec::new(),
                        pipeline_tag: None,
                        visible_namespaces: Vec::new(),
                        see_all: true,
                        sort: RepoSort::Id,
                        descending: false,
                        offset,
                        limit: PAGE,
                    })
                    .await?;
                let n = page.len() as i64;
                out.extend(page);
                if n < PAGE {
                    break;
                }
                offset += n;
            }
        }
        Ok(out)
    }

    /// Every stored LFS blob's size, by oid.
    pub(crate) async fn lfs_blob_sizes(&self) -> Result<HashMap<String, u64>> {
        Ok(self
            .blobs
            .list(ObjectKind::Lfs)
            .await?
            .into_iter()
            .map(|o| (o.key, o.size))
            .collect())
    }

    /// The storage of every repository and of the instance (`wharf storage stats`).
    pub async fn storage_report(&self) -> Result<StorageReport> {
        let blobs = self.lfs_blob_sizes().await?;
        let xorbs_on_disk = self.blobs.list(XORBS).await?;
        let mut links: HashMap<i64, Vec<wharf_meta::LfsLink>> = HashMap::new();
        for link in self.meta.lfs_links(None).await? {
            links.entry(link.repo_id).or_default().push(link);
        }
        let usage: HashMap<i64, wharf_meta::XetRepoUsage> = self
            .meta
            .xet_usage(None)
            .await?
            .into_iter()
            .map(|u| (u.repo_id, u))
            .collect();
        let mut report = StorageReport::default();
        for repo in self.all_repos().await? {
            let mut s = RepoStorage {
                repo: repo_label(&repo),
                git_bytes: self.git_size(&repo.storage_id).await?,
                ..RepoStorage::default()
            };
            for link in links.get(&repo.id).map(Vec::as_slice).unwrap_or_default() {
                s.lfs_objects += 1;
                s.lfs_bytes += bytes(link.size);
                s.lfs_blob_bytes += blobs.get(&link.oid).copied().unwrap_or(0);
            }
            if let Some(u) = usage.get(&repo.id) {
                s.xorbs = bytes(u.xorbs);
                s.xorb_bytes = bytes(u.stored_bytes);
            }
            s.logical_bytes = s.git_bytes + s.lfs_bytes;
            s.physical_bytes = s.git_bytes + s.lfs_blob_bytes + s.xorb_bytes;
            report.total_logical_bytes += s.logical_bytes;
            report.git_bytes += s.git_bytes;
            report.repos.push(s);
        }
        report.lfs_blobs = blobs.len() as u64;
        report.lfs_blob_bytes = blobs.values().sum();
        report.xorbs = xorbs_on_disk.len() as u64;
        report.xorb_bytes = xorbs_on_disk.iter().map(|o| o.size).sum();
        report.xet_files = bytes(self.meta.xet_totals().await?.files);
        report.total_physical_bytes = report.git_bytes + report.lfs_blob_bytes + report.xorb_bytes;
        report.dedup_ratio = match report.total_physical_bytes {
            0 => 1.0,
            p => report.total_logical_bytes as f64 / p as f64,
        };
        Ok(report)
    }

    /// Garbage collection (`wharf gc`): unreferenced Xet files, the xorbs only they used, and
    /// LFS blobs no repository links, all older than the grace period. See the module comment
    /// for why this is safe while the server runs. Only one collection may run at a time (the
    /// command line holds a lock file).
    pub async fn collect_garbage(&self, options: GcOptions) -> Result<GcReport> {
        let grace_ms = i64::try_from(options.grace.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(grace_ms);
        let mut report = GcReport {
            applied: options.apply,
            ..GcReport::default()
        };
        if options.apply {
            self.recover_quarantine(&mut report).await?;
        }
        let garbage = self.meta.xet_garbage(cutoff).await?;
        for f in &garbage.files {
            if !options.apply || self.meta.delete_xet_file_if_garbage(&f.key, cutoff).await? {
                report.xet_files.add(f.size);
            } else {
                report.kept_in_race += 1;
            }
        }
        for x in &garbage.xorbs {
            if !options.apply || self.sweep_xorb(&x.key, cutoff).await? {
                report.xorbs.add(x.size);
            } else {
                report.kept_in_race += 1;
            }
        }
        self.collect_stray_xorbs(cutoff, options.apply, &mut report)
            .await?;
        self.collect_lfs_blobs(cutoff, options.apply, &mut report)
            .await?;
        Ok(report)
    }

    /// Xorb files written before the cutoff that have no row.
    async fn collect_stray_xorbs(
        &self,
        cutoff: i64,
        apply: bool,
        report: &mut GcReport,
    ) -> Result<()> {
        for file in self.blobs.list(XORBS).await? {
            if file.modified_ms >= cutoff || self.meta.xet_xorb(&file.key).await?.is_some() {
                continue;
            }
            if !apply || self.sweep_stray_xorb(&file.key).await? {
                report.stray_xorbs.add(file.size as i64);
            } else {
                report.kept_in_race += 1;
            }
        }
        Ok(())
    }

    /// Aside; back in place when an upload recorded it meanwhile, else deleted. An upload that
    /// found the file before it went aside re-checks it after recording (`record_xorb`).
    async fn sweep_stray_xorb(&self, hash: &str) -> Result<bool> {
        if self.blobs.quarantine(XORBS, hash).await?.is_none() {
            return Ok(false);
        }
        let recorded = match self.meta.xet_xorb(hash).await {
            Ok(row) => row.is_some(),
            Err(e) => {
                self.blobs.restore(XORBS, hash).await?;
                return Err(e);
            }
        };
        if recorded {
            self.blobs.restore(XORBS, hash).await?;
        } else {
            self.blobs.purge(XORBS, hash).await?;
        }
        Ok(!recorded)
    }

    /// Aside, row deleted if still garbage, then bytes deleted; or back in place.
    async fn sweep_xorb(&self, hash: &str, cutoff: i64) -> Result<bool> {
        let moved = self.blobs.quarantine(XORBS, hash).await?;
        let deleted = match self.meta.delete_xet_xorb_if_garbage(hash, cutoff).await {
            Ok(d) => d,
            Err(e) => {
                if moved.is_some() {
                    self.blobs.restore(XORBS, hash).await?;
                }
                return Err(e);
            }
        };
        match (deleted, moved.is_some()) {
            (true, _) => self.blobs.purge(XORBS, hash).await?,
            (false, true) => self.blobs.restore(XORBS, hash).await?,
            (false, false) => {}
        }
        Ok(deleted)
    }

    /// LFS blobs no repository links, written before the cutoff.
    async fn collect_lfs_blobs(
        &self,
        cutoff: i64,
        apply: bool,
        report: &mut GcReport,
    ) -> Result<()> {
        let old: Vec<_> = self
            .blobs
            .list(ObjectKind::Lfs)
            .await?
            .into_iter()
            .filter(|o| o.modified_ms < cutoff)
            .collect();
        let keys: Vec<String> = old.iter().map(|o| o.key.clone()).collect();
        let linked = self.meta.linked_lfs_oids(&keys).await?;
        for blob in old.into_iter().filter(|o| !linked.contains(&o.key)) {
            if !apply || self.sweep_lfs_blob(&blob.key, cutoff).await? {
                report.lfs_blobs.add(blob.size as i64);
            } else {
                report.kept_in_race += 1;
            }
        }
        Ok(())
    }

    /// Aside; back in place when it was re-written after the cutoff or is linked by now.
    async fn sweep_lfs_blob(&self, oid: &str, cutoff: i64) -> Result<bool> {
        let Some(moved) = self.blobs.quarantine(ObjectKind::Lfs, oid).await? else {
            return Ok(false);
        };
        let needed = match self.meta.linked_lfs_oids(&[oid.to_owned()]).await {
            Ok(linked) => moved.modified_ms >= cutoff || !linked.is_empty(),
            Err(e) => {
                self.blobs.restore(ObjectKind::Lfs, oid).await?;
                return Err(e);
            }
        };
        if needed {
            self.blobs.restore(ObjectKind::Lfs, oid).await?;
        } else {
            self.blobs.purge(ObjectKind::Lfs, oid).await?;
        }
        Ok(!needed)
    }

    /// Finishes what an interrupted collection left aside: objects still recorded or linked go
    /// back, the others are deleted.
    pub(crate) async fn recover_quarantine(&self, report: &mut GcReport) -> Result<()> {
        for hash in self.blobs.quarantined(XORBS).await? {
            if self.meta.xet_xorb(&hash).await?.is_some() {
                self.blobs.restore(XORBS, &hash).await?;
                report.restored += 1;
            } else {
                self.blobs.purge(XORBS, &hash).await?;
                report.purged += 1;
            }
        }
        let aside = self.blobs.quarantined(ObjectKind::Lfs).await?;
        let linked = self.meta.linked_lfs_oids(&aside).await?;
        for oid in aside {
            if linked.contains(&oid) {
                self.blobs.restore(ObjectKind::Lfs, &oid).await?;
                report.restored += 1;
            } else {
                self.blobs.purge(ObjectKind::Lfs, &oid).await?;
                report.purged += 1;
            }
        }
        Ok(())
    }
}

/// Repositories whose `usedStorage` is remembered.
pub(crate) const USED_STORAGE_ENTRIES: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RepoAddress;
    use crate::web::test_support::{hub, user_caller};
    use bytes::Bytes;
    use futures::StreamExt;
    use wharf_xet::testdata::{DET_SHA256, det_bin};

    fn body(data: Vec<u8>) -> wharf_blob::ByteStream {
        futures::stream::once(async move { Ok(Bytes::from(data)) }).boxed()
    }

    fn options(grace_secs: u64, apply: bool) -> GcOptions {
        GcOptions {
            grace: Duration::from_secs(grace_secs),
            apply,
        }
    }

    /// Repos a and b both link det.bin (blob + its Xet conversion); an orphan blob nobody links.
    async fn fixture() -> (tempfile::TempDir, Hub, crate::Caller, i64, String) {
        let (dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let data = det_bin();
        let size = data.len() as u64;
        hub.blobs
            .put_verified(DET_SHA256, size, body(data))
            .await
            .expect("blob");
        for name in ["a", "b"] {
            let repo = hub
                .create_repo(&alice, RepoType::Model, None, name, false)
                .await
                .expect("repo");
            hub.meta
                .link_lfs_object(repo.id, DET_SHA256, size as i64)
                .await
                .expect("link");
        }
        hub.convert_lfs_object(DET_SHA256).await.expect("convert");
        let orphan = b"uploaded, never linked".to_vec();
        let (orphan_oid, _) = hub
            .blobs
            .put_hashing(body(orphan), 1 << 20)
            .await
            .expect("orphan");
        (dir, hub, alice, size as i64, orphan_oid)
    }

    #[tokio::test]
    async fn accounting_counts_logical_and_deduplicated_bytes() {
        let (_dir, hub, _alice, size, _orphan) = fixture().await;
        let report = hub.storage_report().await.expect("report");
        assert_eq!(report.repos.len(), 2);
        let xorb_bytes = hub.meta.xet_totals().await.expect("totals").stored_bytes as u64;
        assert!(xorb_bytes > 0);
        for r in &report.repos {
            assert_eq!((r.lfs_objects, r.lfs_bytes), (1, size as u64));
            assert_eq!(r.lfs_blob_bytes, size as u64);
            assert_eq!(r.xorb_bytes, xorb_bytes);
            assert!(r.git_bytes > 0);
            assert_eq!(r.logical_bytes, r.git_bytes + size as u64);
            assert_eq!(r.physical_bytes, r.git_bytes + size as u64 + xorb_bytes);
        }
        // On disk every byte once: the shared blob and xorbs are not counted per repository.
        assert_eq!(report.lfs_blobs, 2, "det.bin and the orphan");
        assert_eq!(report.xorb_bytes, xorb_bytes);
        assert_eq!(
            report.total_physical_bytes,
            report.git_bytes + report.lfs_blob_bytes + report.xorb_bytes
        );
        assert_eq!(
            report.total_logical_bytes,
            report.git_bytes + 2 * size as u64
        );
        let repo = hub
            .meta
            .repo_by_name(RepoType::Model, "alice", "a")
            .await
            .expect("lookup")
            .expect("repo");
        assert_eq!(
            hub.used_storage(&repo).await.expect("used"),
            report.repos[0].logical_bytes
        );
    }

    #[tokio::test]
    async fn gc_keeps_what_a_repo_links_and_removes_the_rest() {
        let (_dir, hub, alice, size, orphan) = fixture().await;
        let xorbs = hub.blobs.list(XORBS).await.expect("list").len() as u64;
        // Only the orphan blob is garbage; a dry run deletes nothing.
        let dry = hub.collect_garbage(options(0, false)).await.expect("dry");
        assert_eq!((dry.xet_files.count, dry.xorbs.count), (0, 0));
        assert_eq!(dry.lfs_blobs.count, 1);
        assert!(hub.blobs.size(&orphan).await.expect("size").is_some());

        // One repository gone: the other still links det.bin.
        hub.delete_repo(&alice, &RepoAddress::new(RepoType::Model, "alice", "a"))
            .await
            .expect("delete a");
        let dry = hub.collect_garbage(options(0, false)).await.expect("dry");
        assert_eq!((dry.xet_files.count, dry.xorbs.count), (0, 0));
        hub.delete_repo(&alice, &RepoAddress::new(RepoType::Model, "alice", "b"))
            .await
            .expect("delete b");
        // Within the grace period nothing goes.
        let young = hub
            .collect_garbage(options(3600, true))
            .await
            .expect("young");
        assert_eq!(young.freed_bytes(), 0);
        let dry = hub.collect_garbage(options(0, false)).await.expect("dry");
        assert_eq!(dry.xet_files.count, 1);
        assert_eq!(dry.xorbs.count, xorbs);
        assert_eq!(dry.lfs_blobs.count, 2);
        assert_eq!(
            hub.blobs.list(XORBS).await.expect("list").len() as u64,
            xorbs
        );

        let done = hub.collect_garbage(options(0, true)).await.expect("apply");
        assert_eq!(
            (done.xet_files.count, done.xorbs.count, done.lfs_blobs.count),
            (1, xorbs, 2)
        );
        assert_eq!(done.lfs_blobs.bytes, size as u64 + 22);
        assert!(hub.blobs.list(XORBS).await.expect("list").is_empty());
        assert!(
            hub.blobs
                .list(ObjectKind::Lfs)
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            hub.meta.xet_totals().await.expect("totals"),
            wharf_meta::XetTotals::default()
        );
        assert!(hub.xet_hash_of(DET_SHA256).await.expect("lookup").is_none());
    }

    #[tokio::test]
    async fn stray_xorb_files_without_a_row_are_removed() {
        let (_dir, hub, _alice, _size, _orphan) = fixture().await;
        let recorded = hub.blobs.list(XORBS).await.expect("list").len();
        let stray = "ab".repeat(32);
        hub.blobs
            .put_checked(
                Space::Xorb,
                &stray,
                vec![Bytes::from_static(b"stored, never recorded")],
            )
            .await
            .expect("stray");
        // Within the grace period it stays (an upload may be about to record it).
        let young = hub
            .collect_garbage(options(3600, true))
            .await
            .expect("young");
        assert_eq!(young.stray_xorbs.count, 0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let dry = hub.collect_garbage(options(0, false)).await.expect("dry");
        assert_eq!((dry.stray_xorbs.count, dry.stray_xorbs.bytes), (1, 22));
        assert_eq!(dry.xorbs.count, 0, "recorded xorbs still used by repos");
        let done = hub.collect_garbage(options(0, true)).await.expect("apply");
        assert_eq!(done.stray_xorbs.count, 1);
        let left = hub.blobs.list(XORBS).await.expect("list");
        assert_eq!(left.len(), recorded);
        assert!(left.iter().all(|x| x.key != stray));
        assert!(hub.xet_hash_of(DET_SHA256).await.expect("lookup").is_some());
    }

    #[tokio::test]
    async fn a_xorb_reuploaded_during_the_sweep_stays_whole() {
        let (_dir, hub, alice, _size, _orphan) = fixture().await;
        for name in ["a", "b"] {
            let addr = RepoAddress::new(RepoType::Model, "alice", name);
            hub.delete_repo(&alice, &addr).await.expect("delete");
        }
        let cutoff = now_ms() + 1;
        let garbage = hub.meta.xet_garbage(cutoff).await.expect("mark");
        for f in &garbage.files {
            assert!(
                hub.meta
                    .delete_xet_file_if_garbage(&f.key, cutoff)
                    .await
                    .expect("file")
            );
        }
        let hash = &garbage.xorbs.first().expect("a xorb").key;
        // An upload of the same xorb touches its row between the mark and the sweep.
        assert!(
            hub.meta
                .touch_xet_xorb(hash, cutoff + 1)
                .await
                .expect("touch")
        );
        assert!(!hub.sweep_xorb(hash, cutoff).await.expect("sweep"));
        assert!(hub.meta.xet_xorb(hash).await.expect("row").is_some());
        assert!(
            hub.blobs
                .size_keyed(Space::Xorb, hash)
                .await
                .expect("size")
                .is_some()
        );
        assert!(
            hub.blobs
                .quarantined(XORBS)
                .await
                .expect("aside")
                .is_empty()
        );

        // A crash after the move: the next run puts the object back since its row is there.
        hub.blobs.quarantine(XORBS, hash).await.expect("aside");
        let next = hub
            .collect_garbage(options(3600, true))
            .await
            .expect("recover");
        assert_eq!((next.restored, next.purged), (1, 0));
        assert!(
            hub.blobs
                .size_keyed(Space::Xorb, hash)
                .await
                .expect("size")
                .is_some()
        );
    }
}
