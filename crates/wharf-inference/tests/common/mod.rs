//! What the integration tests share: the tiny models written once by the `make_tiny_models`
//! example, and copies of them to break on purpose.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

#[path = "../../examples/make_tiny_models.rs"]
#[allow(dead_code)]
mod make_tiny_models;

/// The folder holding every tiny model.
pub fn models_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Shared between runs, keyed by the generator's source: written once to a private
        // directory, then renamed into place, so parallel runs never see half-written files.
        let source = include_str!("../../examples/make_tiny_models.rs");
        let key = source.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = root.join(format!("wharf-tiny-models-{key:016x}"));
        if !dir.is_dir() {
            let tmp = root.join(format!("wharf-tiny-models-tmp-{}", std::process::id()));
            make_tiny_models::write_all(&tmp).expect("write tiny models");
            if std::fs::rename(&tmp, &dir).is_err() {
                // Another run won the race; its copy is identical.
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        dir
    })
}

/// The `pipeline_tag` of a tiny model's card.
pub fn card_tag(name: &str) -> Option<String> {
    let readme = std::fs::read_to_string(models_dir().join(name).join("README.md")).ok()?;
    readme
        .lines()
        .find_map(|l| l.strip_prefix("pipeline_tag: ").map(str::to_string))
}

/// A private copy of a tiny model (every file, sub-folders included) to break on purpose.
pub fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dst = tmp.path().join(name);
    copy_tree(&models_dir().join(name), &dst);
    (tmp, dst)
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("dir");
    for entry in std::fs::read_dir(src).expect("read dir").flatten() {
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if from.is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
}

/// Reads, changes and writes back a JSON file of a model folder.
pub fn edit_json(dir: &Path, file: &str, change: impl FnOnce(&mut Value)) {
    let path = dir.join(file);
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    change(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).expect("encode")).expect("write");
}
