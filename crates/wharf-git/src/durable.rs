//! fsync of what gix wrote. gix persists files by rename but never flushes them, so after a
//! power loss a ref could name an object whose bytes never reached the disk. We flush objects
//! before a ref moves and the ref (with its directories) before we report success.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::Path;

use gix::ObjectId;
use wharf_core::Result;

/// Flushes the loose files of `ids` and the directories holding them. Ids without a loose file
/// were already stored (in a pack, or before we looked) and are skipped.
pub(crate) fn sync_objects(objects_dir: &Path, ids: &[ObjectId]) -> Result<()> {
    let unique: BTreeSet<ObjectId> = ids.iter().copied().collect();
    let mut dirs = BTreeSet::new();
    for id in unique {
        let hex = id.to_hex().to_string();
        let dir = objects_dir.join(&hex[..2]);
        if sync_file_if_present(&dir.join(&hex[2..]))? {
            dirs.insert(dir);
        }
    }
    for dir in &dirs {
        sync_dir(dir)?;
    }
    if !dirs.is_empty() {
        // A fan-out directory may be new, so its entry in objects/ must be durable too.
        sync_dir(objects_dir)?;
    }
    Ok(())
}

/// Flushes a loose ref file, every directory from its parent up to the git dir (some may have
/// just been created, e.g. refs/pr/), and packed-refs, which a deletion may have rewritten.
pub(crate) fn sync_ref(git_dir: &Path, full_ref: &str) -> Result<()> {
    let ref_path = git_dir.join(full_ref);
    sync_file_if_present(&ref_path)?;
    sync_file_if_present(&git_dir.join("packed-refs"))?;
    let mut dir = ref_path.parent();
    while let Some(d) = dir {
        if d.exists() {
            sync_dir(d)?;
        }
        if d == git_dir {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// Flushes the files and directories a fresh repository consists of.
pub(crate) fn sync_tree(root: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(root)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(root)? {
            sync_tree(&entry?.path())?;
        }
        sync_dir(root)?;
    } else if meta.is_file() {
        sync_file_if_present(root)?;
    }
    Ok(())
}

/// True if the file existed and was flushed.
fn sync_file_if_present(path: &Path) -> Result<bool> {
    match File::open(path) {
        Ok(file) => {
            file.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)?.sync_all()?;
    Ok(())
}
