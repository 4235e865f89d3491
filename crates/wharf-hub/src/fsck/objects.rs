//! Git's LFS pointers against the ownership links, the links against the blob store, Xet
//! files against their xorbs, and what an interrupted `wharf gc` left aside.

use std::collections::{BTreeMap, HashSet};

use wharf_blob::{ObjectKind, Space};
use wharf_core::Result;
use wharf_meta::RepoHead;

use super::repos::label;
use super::{Check, Run, git, layout};
use crate::Hub;
use crate::repo_folders::remove_tree;
use crate::storage::GcReport;

const XORBS: ObjectKind = ObjectKind::Keyed(Space::Xorb);

/// A Xet file's LFS oid and the xorbs it needs.
struct XetFileNeeds {
    sha256: String,
    xorbs: Vec<String>,
}

impl Hub {
    /// Every LFS pointer reachable from any ref of the repository names an object the
    /// repository uploaded, with that size. Not repaired: linking an object because a pointer
    /// names it would hand the repository whatever someone else uploaded under that id.
    pub(crate) async fn check_lfs_pointers(&self, run: &mut Run, head: &RepoHead) -> Result<()> {
        if run.startup {
            return Ok(());
        }
        let path = self.repo_path(&head.storage_id);
        let pointers = match git::reachable_pointers(&path).await {
            Ok(p) => p,
            Err(e) => {
                if self.still_there(head, &path).await? {
                    run.found(
                        Check::LfsPointers,
                        label(head),
                        format!("cannot walk the refs: {e}"),
                        false,
                    );
                }
                return Ok(());
            }
        };
        run.examined(Check::LfsPointers, pointers.len() as u64);
        let oids: Vec<String> = pointers
            .iter()
            .map(|p| p.pointer.oid.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let owned = self.meta.repo_lfs_objects(head.id, &oids).await?;
        let mut problems = Vec::new();
        for p in pointers {
            let (oid, size) = (&p.pointer.oid, p.pointer.size);
            problems.push(
                match owned.get(oid).map(|s| u64::try_from(*s).unwrap_or(0)) {
                    Some(linked) if linked == size => continue,
                    Some(linked) => format!(
                        "{}: the pointer says LFS object {oid} has {size} bytes, the repository \
                     uploaded it with {linked}",
                        p.path
                    ),
                    None => format!(
                        "{}: names LFS object {oid}, which this repository never uploaded (it is \
                     served as a plain file)",
                        p.path
                    ),
                },
            );
        }
        // A repository deleted meanwhile has lost its links with its row.
        if !problems.is_empty() && self.meta.repo_by_id(head.id).await?.is_some() {
            for problem in problems {
                run.found(Check::LfsPointers, label(head), problem, false);
            }
        }
        Ok(())
    }

    /// Every linked LFS object is stored, as a blob of the linked size or as a Xet file whose
    /// xorbs are all stored; every registered Xet file's xorbs are stored. Not repaired: the
    /// bytes are gone (restore them from a backup, or upload the object again).
    pub(crate) async fn check_stored_objects(&self, run: &mut Run) -> Result<()> {
        if run.startup {
            return Ok(());
        }
        // Rows first, files second: a file registered meanwhile had its xorbs stored before.
        let files = self.xet_file_needs().await?;
        let xorbs_stored: HashSet<String> = self
            .blobs
            .list(XORBS)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        let mut broken_files = HashSet::new();
        run.examined(Check::XetXorbs, files.len() as u64);
        for (file, needs) in &files {
            let missing: Vec<&String> = needs
                .xorbs
                .iter()
                .filter(|x| !xorbs_stored.contains(*x))
                .collect();
            if let Some(first) = missing.first() {
                broken_files.insert(file.clone());
                let problem = format!(
                    "{} of its {} xorbs are not stored (first: {first}); it holds LFS object {}",
                    missing.len(),
                    needs.xorbs.len(),
                    needs.sha256
                );
                run.found(Check::XetXorbs, format!("xet file {file}"), problem, false);
            }
        }
        self.check_linked_objects(run, &broken_files).await
    }

    /// Linked objects without a blob need a Xet file that is not broken.
    async fn check_linked_objects(
        &self,
        run: &mut Run,
        broken_files: &HashSet<String>,
    ) -> Result<()> {
        let mut linked: BTreeMap<String, (i64, u64)> = BTreeMap::new();
        // Links first, blobs second: an object is stored before it is linked.
        for link in self.meta.lfs_links(None).await? {
            let entry = linked.entry(link.oid).or_insert((link.size, 0));
            entry.1 += 1;
        }
        run.examined(Check::LfsObjects, linked.len() as u64);
        let blobs = self.lfs_blob_sizes().await?;
        let without_blob: Vec<String> = linked
            .keys()
            .filter(|o| !blobs.contains_key(*o))
            .cloned()
            .collect();
        let xet = self.meta.xet_hashes_for_sha256s(&without_blob).await?;
        for (oid, (size, repos)) in &linked {
            let problem = match (blobs.get(oid), xet.get(oid)) {
                (Some(stored), _) if i64::try_from(*stored).ok() == Some(*size) => continue,
                (Some(stored), _) => {
                    format!("its blob has {stored} bytes, it was linked with {size}")
                }
                (None, Some(file)) if !broken_files.contains(file) => continue,
                (None, Some(file)) => format!("no blob, and its Xet file {file} misses xorbs"),
                (None, None) => "stored nowhere (no blob, no Xet file)".to_string(),
            };
            let problem = format!("{problem}; linked by {repos} repositories");
            run.found(
                Check::LfsObjects,
                format!("lfs object {oid}"),
                problem,
                false,
            );
        }
        Ok(())
    }

    /// Every registered Xet file with its LFS oid and xorbs.
    async fn xet_file_needs(&self) -> Result<BTreeMap<String, XetFileNeeds>> {
        let mut files: BTreeMap<String, XetFileNeeds> = BTreeMap::new();
        for row in self.meta.xet_file_xorbs().await? {
            files
                .entry(row.file_hash)
                .or_insert_with(|| XetFileNeeds {
                    sha256: row.sha256,
                    xorbs: Vec::new(),
                })
                .xorbs
                .push(row.xorb_hash);
        }
        Ok(files)
    }

    /// Objects an interrupted `wharf gc` moved aside: readers see them as missing. Repair does
    /// what the next `wharf gc` would: back in place when still recorded or linked, else
    /// deleted.
    pub(crate) async fn check_gc_quarantine(&self, run: &mut Run) -> Result<()> {
        if run.startup {
            return Ok(());
        }
        let lfs = self.blobs.quarantined(ObjectKind::Lfs).await?;
        let xorbs = self.blobs.quarantined(XORBS).await?;
        run.examined(Check::GcQuarantine, (lfs.len() + xorbs.len()) as u64);
        if lfs.is_empty() && xorbs.is_empty() {
            return Ok(());
        }
        let repaired = run.repair && {
            let mut gc = GcReport::default();
            self.recover_quarantine(&mut gc).await?;
            true
        };
        let subjects = lfs
            .iter()
            .map(|o| format!("lfs object {o}"))
            .chain(xorbs.iter().map(|x| format!("xorb {x}")));
        for subject in subjects {
            run.found(
                Check::GcQuarantine,
                subject,
                "left aside by an interrupted wharf gc",
                repaired,
            );
        }
        Ok(())
    }

    /// Staging files of uploads, inference snapshots and the hook script: removed.
    pub(crate) async fn check_temp_files(&self, run: &mut Run) -> Result<()> {
        let data = self.data_dir().to_path_buf();
        let scan = data.clone();
        let entries = crate::blocking(move || Ok(layout::temp_files(&scan)?)).await?;
        run.examined(Check::TempFiles, entries.len() as u64);
        for entry in entries {
            if !run.abandoned(entry.modified_ms) {
                continue;
            }
            let path = entry.path.clone();
            let repaired = run.repair
                && super::repair_off_thread(&entry.path, move || remove_tree(&path)).await;
            let problem = "staging file of an interrupted upload, copy or rewrite";
            run.found(
                Check::TempFiles,
                layout::shown(&data, &entry.path),
                problem,
                repaired,
            );
        }
        Ok(())
    }
}
