//! What a crash can leave lying in the data folder, found by listing it: entries of a folder
//! with their ages, the stale lock and temporary files of one git repository, and the staging
//! files of uploads and inference snapshots. Listing only; deciding is the caller's.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// A file or folder and when it was last modified (epoch ms).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub path: PathBuf,
    pub name: String,
    pub modified_ms: i64,
}

fn modified_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The modification time of `path`, None when it does not exist.
pub(crate) fn modified_at(path: &Path) -> std::io::Result<Option<i64>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(modified_ms(&m))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The entries of `dir` (none when it does not exist), by name. An entry that vanishes while
/// it is listed is left out: a running server may be moving it.
pub(crate) fn list(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.push(Entry {
            path: entry.path(),
            name: entry.file_name().to_string_lossy().into_owned(),
            modified_ms: modified_ms(&meta),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Lock files at the top of a git directory (git and gix take `<file>.lock` to update a file).
const TOP_LOCKS: [&str; 5] = [
    "HEAD.lock",
    "config.lock",
    "packed-refs.lock",
    "shallow.lock",
    "index.lock",
];

/// What an interrupted writer leaves in a git directory: lock files (`*.lock` under `refs/`
/// and the top-level ones; a stale one blocks every later update of its file), push quarantines
/// (`objects/incoming-*`), and temporary object and pack files (`objects/.tmp*`,
/// `objects/tmp_obj_*`, `objects/pack/tmp_*`, `objects/pack/.tmp-*`). Reads a few folders,
/// never the object fan-out.
pub(crate) fn repo_leftovers(git_dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out: Vec<Entry> = list(git_dir)?
        .into_iter()
        .filter(|e| TOP_LOCKS.contains(&e.name.as_str()))
        .collect();
    out.extend(ref_locks(&git_dir.join("refs"))?);
    out.extend(list(&git_dir.join("objects"))?.into_iter().filter(|e| {
        e.name.starts_with("incoming-")
            || e.name.starts_with(".tmp")
            || e.name.starts_with("tmp_obj_")
    }));
    out.extend(
        list(&git_dir.join("objects").join("pack"))?
            .into_iter()
            .filter(|e| e.name.starts_with("tmp_") || e.name.starts_with(".tmp")),
    );
    Ok(out)
}

/// `*.lock` files anywhere under `refs/`.
fn ref_locks(refs: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut pending = vec![refs.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in list(&dir)? {
            if entry.name.ends_with(".lock") {
                out.push(entry);
            } else if entry.path.is_dir() {
                pending.push(entry.path);
            }
        }
    }
    Ok(out)
}

/// Staging files of the data folder: uploads being written (`lfs/tmp`, `xet/tmp`), inference
/// snapshots being copied or removed (`inference/.tmp-*`, `inference/.trash-*`), and the
/// temporary files of the hook script and the server secret.
pub(crate) fn temp_files(data: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = list(&data.join("lfs").join("tmp"))?;
    out.extend(list(&data.join("xet").join("tmp"))?);
    out.extend(
        list(&data.join("inference"))?
            .into_iter()
            .filter(|e| e.name.starts_with(".tmp-") || e.name.starts_with(".trash-")),
    );
    out.extend(
        list(&data.join("hooks"))?
            .into_iter()
            .filter(|e| e.name.ends_with(".tmp")),
    );
    out.extend(list(data)?.into_iter().filter(|e| e.name == "secret.tmp"));
    Ok(out)
}

/// `path` relative to `base` for messages (the whole path when it is not under it).
pub(crate) fn shown(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_a_git_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = dir.path();
        for d in [
            "refs/heads/feature",
            "objects/pack",
            "objects/ab",
            "objects/incoming-x1",
        ] {
            std::fs::create_dir_all(git.join(d)).expect("mkdir");
        }
        for f in [
            "HEAD",
            "packed-refs.lock",
            "refs/heads/main",
            "refs/heads/main.lock",
            "refs/heads/feature/a.lock",
            "objects/ab/cdef",
            "objects/.tmpXYZ",
            "objects/pack/tmp_pack_1",
            "objects/pack/pack-1.pack",
        ] {
            std::fs::write(git.join(f), b"x").expect("write");
        }
        let mut names: Vec<String> = repo_leftovers(git)
            .expect("scan")
            .into_iter()
            .map(|e| shown(git, &e.path))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "objects/.tmpXYZ",
                "objects/incoming-x1",
                "objects/pack/tmp_pack_1",
                "packed-refs.lock",
                "refs/heads/feature/a.lock",
                "refs/heads/main.lock",
            ]
        );
    }

    #[test]
    fn temp_files_of_the_data_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path();
        for d in [
            "lfs/tmp",
            "xet/tmp",
            "inference/.tmp-abc-1",
            "inference/ccc",
            "hooks",
        ] {
            std::fs::create_dir_all(data.join(d)).expect("mkdir");
        }
        for f in [
            "lfs/tmp/a",
            "xet/tmp/b",
            "hooks/pre-receive",
            "hooks/pre-receive.tmp",
        ] {
            std::fs::write(data.join(f), b"x").expect("write");
        }
        let mut names: Vec<String> = temp_files(data)
            .expect("scan")
            .into_iter()
            .map(|e| shown(data, &e.path))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "hooks/pre-receive.tmp",
                "inference/.tmp-abc-1",
                "lfs/tmp/a",
                "xet/tmp/b"
            ]
        );
        assert!(modified_at(&data.join("nothing")).expect("stat").is_none());
    }
}
