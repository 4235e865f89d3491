//! Model-card state of a revision: README.md front matter, and the tags derived from it and
//! from the file list, computed from git so that API commits and git pushes index the same way.

use crate::blocking;
use serde_json::Value;
use std::sync::Arc;
use wharf_card::DerivedInfo;
use wharf_core::Result;
use wharf_git::{EntryKind, GitRepo, TreeEntry};
use wharf_meta::MainState;

/// Cards and configs larger than this are not parsed (they are still served as files).
const MAX_PARSED_FILE: u64 = 1 << 20;

/// Everything a revision says about itself.
#[derive(Debug, Clone)]
pub(crate) struct CardState {
    pub files: Vec<TreeEntry>,
    pub card_data: Option<Value>,
    pub derived: DerivedInfo,
}

impl CardState {
    pub fn into_main_state(self, sha: String) -> MainState {
        MainState {
            sha,
            card_data: self.card_data,
            tags: self.derived.tags,
            pipeline_tag: self.derived.pipeline_tag,
            library_name: self.derived.library_name,
        }
    }
}

fn small_file<'a>(files: &'a [TreeEntry], path: &str) -> Option<&'a TreeEntry> {
    files.iter().find(|e| {
        e.kind == EntryKind::File && e.path == path && e.lfs.is_none() && e.size <= MAX_PARSED_FILE
    })
}

fn read_text(git: &GitRepo, entry: Option<&TreeEntry>) -> Result<Option<String>> {
    match entry {
        Some(e) => Ok(Some(
            String::from_utf8_lossy(&git.read_blob(&e.oid)?).into_owned(),
        )),
        None => Ok(None),
    }
}

fn model_type(config: Option<String>) -> Option<String> {
    let value: Value = serde_json::from_str(&config?).ok()?;
    value.get("model_type")?.as_str().map(str::to_string)
}

/// Computes the card state of `commit`.
pub(crate) async fn card_state(git: Arc<GitRepo>, commit: String) -> Result<CardState> {
    blocking(move || {
        let all = git.list_tree(&commit, "", true)?.unwrap_or_default();
        let files: Vec<TreeEntry> = all
            .into_iter()
            .filter(|e| e.kind == EntryKind::File)
            .collect();
        let readme = read_text(&git, small_file(&files, "README.md"))?;
        let card_data = readme
            .as_deref()
            .and_then(|text| wharf_card::parse_card(text).ok().flatten());
        let config = read_text(&git, small_file(&files, "config.json"))?;
        let names: Vec<String> = files.iter().map(|e| e.path.clone()).collect();
        let derived =
            wharf_card::derive_info(card_data.as_ref(), &names, model_type(config).as_deref());
        Ok(CardState {
            files,
            card_data,
            derived,
        })
    })
    .await
}
