//! Repository folders on disk and how they appear and disappear without leaving orphans.
//!
//! A repository lives in `repos/{storage_id}.git`. Creating one builds the whole bare repository
//! (initial commit included) in `repos/.creating/{storage_id}.git`, inserts the row, then renames
//! the folder into place; deleting one renames the folder to `repos/.deleting/{storage_id}.git`,
//! deletes the row, then removes the folder. So a crash at any point leaves either nothing, or a
//! folder in a side area that the row decides about: with a row and no folder in place it is
//! moved back (the create finishes, the delete is undone), without a row it is discarded. A
//! folder in place without its row therefore never comes from Wharf itself (a database restored
//! from an older backup would show as such). Discarded folders go through `repos/.trash` first,
//! so what is left half-deleted by a crash is never mistaken for a repository.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use wharf_core::Result;

use crate::Hub;

/// Side area of repositories being created: built here, renamed into place once their row exists.
pub(crate) const CREATING: &str = ".creating";
/// Side area of repositories being deleted: moved here before their row goes.
pub(crate) const DELETING: &str = ".deleting";
/// Folders being removed for good.
pub(crate) const TRASH: &str = ".trash";

/// `{storage_id}.git`.
pub(crate) fn folder_name(storage_id: &str) -> String {
    format!("{storage_id}.git")
}

/// The storage id of a folder name `{storage_id}.git`; None for anything else (side areas,
/// stray files).
pub(crate) fn storage_id_of(name: &str) -> Option<&str> {
    let id = name.strip_suffix(".git")?;
    let plain = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then_some(id)
}

/// Flushes a directory's entries (a rename is durable only once its directories are).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Renames `from` to `to` (creating `to`'s parent) and makes both directories durable.
pub(crate) fn move_folder(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(from, to)?;
    for dir in [from.parent(), to.parent()].into_iter().flatten() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Marks a folder as touched now: its modification time is what tells a move in progress from
/// one a crash left behind (a rename does not update it).
pub(crate) fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.set_modified(SystemTime::now())
}

/// Moves `path` into `{repos}/.trash` under a fresh name, then deletes it. A crash in between
/// leaves it in the trash, which is emptied at the next start.
pub(crate) fn discard_folder(repos_dir: &Path, path: &Path) -> std::io::Result<()> {
    let mut nonce = [0u8; 8];
    // A failing random source only risks a name clash, which makes the rename fail.
    let _ = getrandom::fill(&mut nonce);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = repos_dir
        .join(TRASH)
        .join(format!("{name}-{}", hex::encode(nonce)));
    match move_folder(path, &aside) {
        // Touched so that a concurrent `wharf fsck` sees a removal in progress, not a leftover.
        Ok(()) => touch(&aside).and_then(|()| remove_tree(&aside)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a file or a whole folder; absent is fine (another cleaner may have been first).
pub(crate) fn remove_tree(path: &Path) -> std::io::Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl Hub {
    /// Where repository `storage_id` waits in side area `area` (`CREATING` or `DELETING`).
    pub(crate) fn side_path(&self, area: &str, storage_id: &str) -> PathBuf {
        self.repos_dir.join(area).join(folder_name(storage_id))
    }

    /// The repositories folder (`{data}/repos`).
    pub(crate) fn repos_dir(&self) -> &Path {
        &self.repos_dir
    }

    /// The data folder: the parent of `repos/` in the embedded layout.
    pub(crate) fn data_dir(&self) -> &Path {
        self.repos_dir.parent().unwrap_or(&self.repos_dir)
    }

    /// Builds a new repository in the creating area; `build` gets the folder to fill.
    pub(crate) async fn build_repo_folder(
        &self,
        storage_id: &str,
        build: impl FnOnce(&Path) -> Result<()> + Send + 'static,
    ) -> Result<PathBuf> {
        let staging = self.side_path(CREATING, storage_id);
        let path = staging.clone();
        crate::blocking(move || {
            if let Err(e) = build(&path) {
                let _ = remove_tree(&path);
                return Err(e);
            }
            Ok(())
        })
        .await?;
        Ok(staging)
    }

    /// Renames a built repository into place (its row exists by now).
    pub(crate) async fn publish_repo_folder(&self, storage_id: &str) -> Result<()> {
        let from = self.side_path(CREATING, storage_id);
        let to = self.repo_path(storage_id);
        crate::blocking(move || Ok(move_folder(&from, &to)?)).await
    }

    /// Moves a repository's folder out of sight before its row is deleted. False when it had
    /// no folder in place.
    pub(crate) async fn set_repo_folder_aside(&self, storage_id: &str) -> Result<bool> {
        let from = self.repo_path(storage_id);
        let to = self.side_path(DELETING, storage_id);
        crate::blocking(move || match move_folder(&from, &to) {
            Ok(()) => {
                touch(&to)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        })
        .await
    }

    /// Puts a folder set aside by [`set_repo_folder_aside`](Hub::set_repo_folder_aside) back
    /// (its row could not be deleted).
    pub(crate) async fn restore_repo_folder(&self, storage_id: &str) -> Result<()> {
        let from = self.side_path(DELETING, storage_id);
        let to = self.repo_path(storage_id);
        crate::blocking(move || Ok(move_folder(&from, &to)?)).await
    }

    /// Removes a folder whose row is gone (from a side area), through the trash.
    pub(crate) async fn discard_repo_folder(&self, path: PathBuf) -> Result<()> {
        let repos = self.repos_dir.clone();
        crate::blocking(move || Ok(discard_folder(&repos, &path)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(storage_id_of(&folder_name(id)), Some(id));
        assert_eq!(storage_id_of(".creating"), None);
        assert_eq!(storage_id_of(".x.git"), None);
        assert_eq!(storage_id_of(".git"), None);
        assert_eq!(storage_id_of("notes.txt"), None);
    }

    #[test]
    fn discarding_goes_through_the_trash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = dir.path();
        let victim = repos.join(DELETING).join("a.git");
        std::fs::create_dir_all(victim.join("refs/heads")).expect("mkdir");
        std::fs::write(victim.join("HEAD"), b"ref: refs/heads/main\n").expect("write");
        discard_folder(repos, &victim).expect("discard");
        assert!(!victim.exists());
        let trash: Vec<_> = std::fs::read_dir(repos.join(TRASH))
            .expect("trash")
            .collect();
        assert!(trash.is_empty(), "removed after the move");
        // Absent is fine.
        discard_folder(repos, &victim).expect("again");
    }
}
