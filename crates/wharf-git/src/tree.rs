//! Reading trees and blobs at a commit.

use std::collections::HashMap;
use std::sync::Mutex;

use gix::ObjectId;
use gix::objs::Kind;
use gix::objs::tree::{EntryKind as GitEntryKind, EntryMode};
use wharf_core::lfs_pointer::{LfsPointer, MAX_POINTER_SIZE};
use wharf_core::{Error, Result};

use crate::limits::{MAX_TREE_DEPTH, MAX_TREE_ENTRIES};
use crate::odb::{self, internal};
use crate::{EntryKind, GitRepo, TreeEntry};

/// Blob descriptions kept per repository (about 80 bytes each, more for LFS pointers); beyond
/// this many the cache starts over. Kept modest because the hub keeps every repository it has
/// opened.
const MAX_CACHED_BLOBS: usize = 32_768;

/// Blob id → (size, LFS pointer). Blobs are immutable, so entries never go stale.
#[derive(Default)]
pub(crate) struct BlobInfoCache(Mutex<HashMap<ObjectId, (u64, Option<LfsPointer>)>>);

impl BlobInfoCache {
    fn get(&self, id: &ObjectId) -> Option<(u64, Option<LfsPointer>)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).cloned()
    }

    fn put(&self, id: ObjectId, info: (u64, Option<LfsPointer>)) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CACHED_BLOBS {
            map.clear();
        }
        map.insert(id, info);
    }
}

/// The size of a blob and the LFS pointer it holds, read once per blob id: the size from the
/// object header, the content only when it is small enough to be a pointer.
fn blob_info(
    repo: &gix::Repository,
    cache: &BlobInfoCache,
    oid: ObjectId,
) -> Result<(u64, Option<LfsPointer>)> {
    if let Some(info) = cache.get(&oid) {
        return Ok(info);
    }
    let size = repo.find_header(oid).map_err(internal)?.size();
    let lfs = if size <= MAX_POINTER_SIZE {
        LfsPointer::parse(&repo.find_blob(oid).map_err(internal)?.data)
    } else {
        None
    };
    cache.put(oid, (size, lfs.clone()));
    Ok((size, lfs))
}

impl GitRepo {
    /// Entries of directory `dir` ("" = root) at `commit`: direct children, or with `recursive`
    /// every file and directory below, depth-first in git order. None if `dir` is not a directory.
    pub fn list_tree(
        &self,
        commit: &str,
        dir: &str,
        recursive: bool,
    ) -> Result<Option<Vec<TreeEntry>>> {
        let repo = self.repo();
        let Some(parts) = odb::components(dir) else {
            return Ok(None);
        };
        let root = root_tree(&repo, commit)?;
        let Some((mode, tree)) = odb::lookup_path(&repo, root, &parts)? else {
            return Ok(None);
        };
        if !mode.is_tree() {
            return Ok(None);
        }
        let prefix = parts.join("/");
        let entries = if recursive {
            list_recursive(&repo, &self.blob_info, tree, prefix)?
        } else {
            list_children(&repo, &self.blob_info, tree, &prefix)?
        };
        Ok(Some(entries))
    }

    /// The file or directory at `path` at `commit` ("" is the root directory); None if absent.
    pub fn entry(&self, commit: &str, path: &str) -> Result<Option<TreeEntry>> {
        let repo = self.repo();
        let Some(parts) = odb::components(path) else {
            return Ok(None);
        };
        let root = root_tree(&repo, commit)?;
        match odb::lookup_path(&repo, root, &parts)? {
            Some((mode, oid)) => to_entry(&repo, &self.blob_info, parts.join("/"), mode, oid),
            None => Ok(None),
        }
    }

    /// The whole content of a blob; EntryNotFound if `oid` names no blob.
    pub fn read_blob(&self, oid: &str) -> Result<Vec<u8>> {
        let repo = self.repo();
        let id = odb::parse_full_oid(oid).ok_or_else(|| Error::entry_not_found(oid))?;
        if odb::kind_of(&repo, id)? != Some(Kind::Blob) {
            return Err(Error::entry_not_found(oid));
        }
        let mut blob = repo.find_blob(id).map_err(internal)?;
        Ok(blob.take_data())
    }
}

fn root_tree(repo: &gix::Repository, commit: &str) -> Result<ObjectId> {
    let id = odb::commit_id(repo, commit)?;
    Ok(odb::commit_tree_and_parents(repo, id)?.0)
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn list_children(
    repo: &gix::Repository,
    cache: &BlobInfoCache,
    tree: ObjectId,
    prefix: &str,
) -> Result<Vec<TreeEntry>> {
    let mut out = Vec::new();
    for e in odb::read_tree(repo, tree)? {
        if let Some(entry) = to_entry(repo, cache, join(prefix, &e.filename), e.mode, e.oid)? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// A tree past the limits pushes are held to (one pushed before they existed).
fn too_large() -> Error {
    Error::unprocessable(format!(
        "This tree is too large to list: more than {MAX_TREE_ENTRIES} files and folders, or \
         folders nested deeper than {MAX_TREE_DEPTH} levels"
    ))
}

/// Depth-first with an explicit stack: pushed repositories may nest deeper than our stack
/// allows. Stops at the limits pushes are held to, so an old tree bomb costs a bounded read.
fn list_recursive(
    repo: &gix::Repository,
    cache: &BlobInfoCache,
    tree: ObjectId,
    prefix: String,
) -> Result<Vec<TreeEntry>> {
    let mut out = Vec::new();
    let mut stack = vec![(prefix, odb::read_tree(repo, tree)?.into_iter())];
    while let Some((prefix, iter)) = stack.last_mut() {
        let Some(e) = iter.next() else {
            stack.pop();
            continue;
        };
        if out.len() as u64 >= MAX_TREE_ENTRIES {
            return Err(too_large());
        }
        let path = join(prefix, &e.filename);
        if e.mode.is_tree() {
            if stack.len() as u32 >= MAX_TREE_DEPTH {
                return Err(too_large());
            }
            let children = odb::read_tree(repo, e.oid)?;
            stack.push((path.clone(), children.into_iter()));
        }
        if let Some(entry) = to_entry(repo, cache, path, e.mode, e.oid)? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Describes one tree entry; None for submodule links, whose commits live in other repositories.
fn to_entry(
    repo: &gix::Repository,
    cache: &BlobInfoCache,
    path: String,
    mode: EntryMode,
    oid: ObjectId,
) -> Result<Option<TreeEntry>> {
    let oid_hex = oid.to_string();
    match mode.kind() {
        GitEntryKind::Tree => Ok(Some(TreeEntry {
            path,
            kind: EntryKind::Directory,
            oid: oid_hex,
            size: 0,
            lfs: None,
        })),
        GitEntryKind::Commit => Ok(None),
        GitEntryKind::Blob | GitEntryKind::BlobExecutable | GitEntryKind::Link => {
            let (size, lfs) = blob_info(repo, cache, oid)?;
            Ok(Some(TreeEntry {
                path,
                kind: EntryKind::File,
                oid: oid_hex,
                size,
                lfs,
            }))
        }
    }
}
