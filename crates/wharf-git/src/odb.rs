//! Small object-database helpers shared by the read and write paths.

use gix::ObjectId;
use gix::objs::Kind;
use wharf_core::{Error, Result};

/// Tags can point at tags; real repositories never nest deeply, hostile ones might loop.
const MAX_TAG_DEPTH: usize = 16;

/// Maps a gix fault to an internal error; Debug keeps the whole cause chain for the log.
pub(crate) fn internal(e: impl std::fmt::Debug) -> Error {
    Error::internal(format!("git: {e:?}"))
}

/// Parses exactly 40 hex digits (either case) into an object id.
pub(crate) fn parse_full_oid(s: &str) -> Option<ObjectId> {
    if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    ObjectId::from_hex(s.to_ascii_lowercase().as_bytes()).ok()
}

/// The kind of the object, None if it is absent.
pub(crate) fn kind_of(repo: &gix::Repository, id: ObjectId) -> Result<Option<Kind>> {
    let header = repo.try_find_header(id).map_err(internal)?;
    Ok(header.map(|h| h.kind()))
}

/// Follows tag objects from `id` to a commit; None when the chain is missing or ends elsewhere.
pub(crate) fn peel_to_commit(repo: &gix::Repository, mut id: ObjectId) -> Result<Option<ObjectId>> {
    for _ in 0..MAX_TAG_DEPTH {
        match kind_of(repo, id)? {
            Some(Kind::Commit) => return Ok(Some(id)),
            Some(Kind::Tag) => {
                let object = repo.find_object(id).map_err(internal)?;
                let tag = object.try_to_tag_ref().map_err(internal)?;
                id = tag.target();
            }
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// The commit named by a full sha; RevisionNotFound when it is malformed, absent or not a commit.
pub(crate) fn commit_id(repo: &gix::Repository, sha: &str) -> Result<ObjectId> {
    let id = parse_full_oid(sha).ok_or_else(|| Error::revision_not_found(sha))?;
    match kind_of(repo, id)? {
        Some(Kind::Commit) => Ok(id),
        _ => Err(Error::revision_not_found(sha)),
    }
}

/// Root tree and parents of a commit.
pub(crate) fn commit_tree_and_parents(
    repo: &gix::Repository,
    id: ObjectId,
) -> Result<(ObjectId, Vec<ObjectId>)> {
    let commit = repo.find_commit(id).map_err(internal)?;
    let decoded = commit.decode().map_err(internal)?;
    Ok((decoded.tree(), decoded.parents().collect()))
}

/// Decodes a tree into owned entries, in git order.
pub(crate) fn read_tree(
    repo: &gix::Repository,
    id: ObjectId,
) -> Result<Vec<gix::objs::tree::Entry>> {
    if id.is_empty_tree() {
        return Ok(Vec::new());
    }
    let tree = repo.find_tree(id).map_err(internal)?;
    let decoded = tree.decode().map_err(internal)?;
    Ok(decoded.into_owned().entries)
}

/// Splits a repository path into components, ignoring leading and trailing slashes.
/// None when a component is empty (`a//b`), which can never name an entry.
pub(crate) fn components(path: &str) -> Option<Vec<&str>> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts)
}

/// The (mode, id) of the entry at `path` below the tree `root`; the root itself for no components.
pub(crate) fn lookup_path(
    repo: &gix::Repository,
    root: ObjectId,
    parts: &[&str],
) -> Result<Option<(gix::objs::tree::EntryMode, ObjectId)>> {
    let mut current: (gix::objs::tree::EntryMode, ObjectId) =
        (gix::objs::tree::EntryKind::Tree.into(), root);
    for part in parts {
        if !current.0.is_tree() {
            return Ok(None);
        }
        let entries = read_tree(repo, current.1)?;
        match entries.into_iter().find(|e| e.filename == part.as_bytes()) {
            Some(e) => current = (e.mode, e.oid),
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}
