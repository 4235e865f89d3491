//! In-memory editing of a tree with the Hub's rules: a file written where a directory is (or
//! below a file) replaces it, deletions of missing entries fail, and directories left empty
//! vanish. Subtrees are loaded only when an edit goes through them; untouched ones keep their id.
//!
//! gix's own tree editor is not used because it cannot tell whether an entry exists in
//! not-yet-loaded subtrees, and it may resurrect stale subtrees when a path turns from a
//! directory into a file and back within one commit.

use std::collections::BTreeMap;

use gix::ObjectId;
use gix::objs::tree::{Entry, EntryKind, EntryMode};
use wharf_core::{Error, ErrorKind, Result};

use crate::odb::{self, internal};

/// Deeper paths are refused: nobody needs them, and the write-out recurses per level.
const MAX_DEPTH: usize = 256;

enum Node {
    /// A blob, symlink or submodule entry, kept as it is.
    Leaf(EntryMode, ObjectId),
    /// A directory nobody touched yet.
    Stored(ObjectId),
    /// A directory loaded for editing.
    Loaded(Dir),
}

#[derive(Default)]
struct Dir {
    entries: BTreeMap<Vec<u8>, Node>,
}

pub(crate) struct TreeEditor<'r> {
    repo: &'r gix::Repository,
    root: Dir,
    /// Every object id this editor wrote or reused, for fsync.
    pub(crate) written: Vec<ObjectId>,
}

impl<'r> TreeEditor<'r> {
    pub(crate) fn new(repo: &'r gix::Repository, root_tree: ObjectId) -> Result<Self> {
        Ok(TreeEditor {
            repo,
            root: load(repo, root_tree)?,
            written: Vec::new(),
        })
    }

    /// Writes `data` as a regular file at `path`.
    pub(crate) fn upsert(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let parts = checked_components(path)?;
        let blob = self.repo.write_blob(data).map_err(internal)?.detach();
        self.written.push(blob);
        let (last, parents) = parts.split_last().ok_or_else(|| invalid_path(path))?;
        let mut dir = &mut self.root;
        for part in parents {
            let node = dir
                .entries
                .entry(part.as_bytes().to_vec())
                .or_insert_with(|| Node::Loaded(Dir::default()));
            dir = make_dir(self.repo, node)?;
        }
        dir.entries.insert(
            last.as_bytes().to_vec(),
            Node::Leaf(EntryKind::Blob.into(), blob),
        );
        Ok(())
    }

    /// Removes the file at `path`.
    pub(crate) fn delete_file(&mut self, path: &str) -> Result<()> {
        let missing = || {
            Error::new(
                ErrorKind::EntryNotFound,
                "A file with this name doesn't exist",
            )
        };
        self.remove(path, false)
            .and_then(|found| if found { Ok(()) } else { Err(missing()) })
    }

    /// Removes the directory at `path` and everything below it.
    pub(crate) fn delete_folder(&mut self, path: &str) -> Result<()> {
        let missing = || {
            Error::new(
                ErrorKind::EntryNotFound,
                "A folder with this name doesn't exist",
            )
        };
        self.remove(path, true)
            .and_then(|found| if found { Ok(()) } else { Err(missing()) })
    }

    /// Writes all changed trees and returns the root tree id.
    pub(crate) fn write(mut self) -> Result<(ObjectId, Vec<ObjectId>)> {
        let root = std::mem::take(&mut self.root);
        let id = match write_dir(self.repo, root, &mut self.written)? {
            Some(id) => id,
            None => {
                // git treats the empty tree as always present; we store it anyway so that
                // every tool (and fsck) finds a real object.
                let id = self
                    .repo
                    .write_object(gix::objs::Tree::empty())
                    .map_err(internal)?
                    .detach();
                self.written.push(id);
                id
            }
        };
        Ok((id, self.written))
    }

    /// Removes the entry at `path` if it has the wanted kind; false if there is none.
    fn remove(&mut self, path: &str, want_dir: bool) -> Result<bool> {
        let Ok(parts) = checked_components(path) else {
            return Ok(false);
        };
        let Some((last, parents)) = parts.split_last() else {
            return Ok(false);
        };
        let mut dir = &mut self.root;
        for part in parents {
            match dir.entries.get_mut(part.as_bytes()) {
                Some(node @ (Node::Stored(_) | Node::Loaded(_))) => {
                    dir = make_dir(self.repo, node)?
                }
                _ => return Ok(false),
            }
        }
        let is_dir = match dir.entries.get(last.as_bytes()) {
            None => return Ok(false),
            Some(Node::Leaf(..)) => false,
            Some(Node::Stored(_) | Node::Loaded(_)) => true,
        };
        if is_dir != want_dir {
            return Ok(false);
        }
        dir.entries.remove(last.as_bytes());
        Ok(true)
    }
}

/// Turns `node` into an editable directory: loads a stored tree, replaces a file by an empty directory.
fn make_dir<'n>(repo: &gix::Repository, node: &'n mut Node) -> Result<&'n mut Dir> {
    let replacement = match node {
        Node::Loaded(_) => None,
        Node::Stored(id) => Some(load(repo, *id)?),
        Node::Leaf(..) => Some(Dir::default()),
    };
    if let Some(dir) = replacement {
        *node = Node::Loaded(dir);
    }
    match node {
        Node::Loaded(dir) => Ok(dir),
        _ => unreachable!("the node was just made a loaded directory"),
    }
}

fn load(repo: &gix::Repository, id: ObjectId) -> Result<Dir> {
    let mut dir = Dir::default();
    for entry in odb::read_tree(repo, id)? {
        let node = if entry.mode.is_tree() {
            Node::Stored(entry.oid)
        } else {
            Node::Leaf(entry.mode, entry.oid)
        };
        dir.entries.insert(entry.filename.into(), node);
    }
    Ok(dir)
}

/// Writes a loaded directory bottom-up; None when it ended up empty (git has no empty dirs).
fn write_dir(
    repo: &gix::Repository,
    dir: Dir,
    written: &mut Vec<ObjectId>,
) -> Result<Option<ObjectId>> {
    let mut entries = Vec::with_capacity(dir.entries.len());
    for (name, node) in dir.entries {
        let (mode, oid) = match node {
            Node::Leaf(mode, oid) => (mode, oid),
            Node::Stored(oid) => (EntryKind::Tree.into(), oid),
            Node::Loaded(sub) => match write_dir(repo, sub, written)? {
                Some(oid) => (EntryKind::Tree.into(), oid),
                None => continue,
            },
        };
        entries.push(Entry {
            mode,
            filename: name.into(),
            oid,
        });
    }
    if entries.is_empty() {
        return Ok(None);
    }
    // Git orders a directory as if its name ended in '/'; Entry's Ord implements exactly that.
    entries.sort();
    let id = repo
        .write_object(gix::objs::Tree { entries })
        .map_err(internal)?
        .detach();
    written.push(id);
    Ok(Some(id))
}

/// Path components, refusing names git would reject (fsck) or that could escape the tree.
fn checked_components(path: &str) -> Result<Vec<&str>> {
    let parts = odb::components(path).ok_or_else(|| invalid_path(path))?;
    if parts.is_empty() || parts.len() > MAX_DEPTH {
        return Err(invalid_path(path));
    }
    let bad =
        |p: &&str| *p == "." || *p == ".." || p.eq_ignore_ascii_case(".git") || p.contains('\0');
    if parts.iter().any(bad) {
        return Err(invalid_path(path));
    }
    Ok(parts)
}

fn invalid_path(path: &str) -> Error {
    Error::unprocessable(format!("Invalid path: {path:?}"))
}
