//! What a file stored in git itself (not in LFS) may be: one rule for API commits, the web
//! editor and browser uploads, and git pushes. A regular file over 10 MiB belongs in LFS; a
//! small file shaped like an LFS pointer must name an object uploaded to this same repository
//! (with that size), since reads would otherwise follow it to someone else's content.

use wharf_core::Result;
use wharf_core::lfs_pointer::{LfsPointer, MAX_POINTER_SIZE};
use wharf_meta::MetaStore;

/// Regular files above this size must go through LFS (the commit format refuses them too).
pub use wharf_core::commit_lines::MAX_GIT_BLOB;

/// Why a git blob may not enter a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlobRefusal {
    TooLarge { size: u64 },
    ForeignPointer { oid: String },
}

impl BlobRefusal {
    /// The message for the file at `path`, with what to do about it.
    pub(crate) fn message(&self, path: &str) -> String {
        match self {
            BlobRefusal::TooLarge { size } => format!(
                "{path} is {size} bytes: files over 10 MiB must be stored with LFS \
                 (with git: git lfs install; git lfs track \"{}\"; git add .gitattributes; \
                 then commit again)",
                lfs_track_pattern(path)
            ),
            BlobRefusal::ForeignPointer { oid } => format!(
                "{path}: LFS object {oid} was not uploaded to this repository \
                 (upload it first, e.g. `git lfs push --all origin`)"
            ),
        }
    }
}

/// Whether `content` may not be stored as a git blob of repository `repo_id`. `size` is the
/// blob's size; `content` is only looked at when the blob is small enough to be a pointer
/// (callers may pass an empty slice above [`MAX_POINTER_SIZE`]).
pub(crate) async fn refusal_of(
    meta: &dyn MetaStore,
    repo_id: i64,
    size: u64,
    content: &[u8],
) -> Result<Option<BlobRefusal>> {
    if size > MAX_GIT_BLOB {
        return Ok(Some(BlobRefusal::TooLarge { size }));
    }
    if size > MAX_POINTER_SIZE {
        return Ok(None);
    }
    let Some(pointer) = LfsPointer::parse(content) else {
        return Ok(None);
    };
    let owned = meta.repo_lfs_object(repo_id, &pointer.oid).await?;
    if owned.is_some_and(|s| u64::try_from(s).ok() == Some(pointer.size)) {
        return Ok(None);
    }
    Ok(Some(BlobRefusal::ForeignPointer { oid: pointer.oid }))
}

/// The `git lfs track` pattern suggested for a path: `*.ext`, or the file name.
fn lfs_track_pattern(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() => format!("*.{ext}"),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_patterns() {
        assert_eq!(lfs_track_pattern("dir/model.bin"), "*.bin");
        assert_eq!(lfs_track_pattern("Makefile"), "Makefile");
    }

    #[test]
    fn messages_name_the_path_and_the_fix() {
        let big = BlobRefusal::TooLarge { size: 11 << 20 }.message("w/model.bin");
        assert!(big.contains("w/model.bin") && big.contains("git lfs track \"*.bin\""));
        let foreign = BlobRefusal::ForeignPointer { oid: "ab".into() }.message("x");
        assert!(foreign.contains("LFS object ab was not uploaded to this repository"));
    }
}
