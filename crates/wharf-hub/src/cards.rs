//! Model-card state of a revision: README.md front matter, and the tags derived from it and
//! from the file list, computed from git so that API commits and git pushes index the same way;
//! and the card's text as the repository page shows it.

use crate::access::Need;
use crate::{Caller, Hub, RepoAddress, blocking};
use serde_json::Value;
use std::sync::Arc;
use wharf_card::DerivedInfo;
use wharf_core::Result;
use wharf_git::{EntryKind, GitRepo, TreeEntry};
use wharf_meta::MainState;

/// The card shown on a repository page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardText {
    /// The README's git blob id (what rendered cards are cached under).
    pub blob_oid: String,
    pub text: String,
}

/// Cards and configs larger than this are not parsed (they are still served as files).
const MAX_PARSED_FILE: u64 = 1 << 20;
/// Card states kept in memory (file lists and card data of the revisions pages look at).
const STATE_CACHE_BYTES: usize = 32 << 20;

/// Card states by commit id (a commit names its tree for good).
pub(crate) type CardStateCache = crate::page_cache::BoundedCache<CardState>;

pub(crate) fn new_card_state_cache() -> CardStateCache {
    crate::page_cache::BoundedCache::new(STATE_CACHE_BYTES)
}

/// About what a card state holds in memory.
fn weight_of(state: &CardState) -> usize {
    let files: usize = state.files.iter().map(|e| e.path.len() + 160).sum();
    let card = state
        .card_data
        .as_ref()
        .and_then(|c| serde_json::to_vec(c).ok())
        .map_or(0, |v| v.len());
    files + card + 256
}

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

impl Hub {
    /// [`card_state`] of `commit` in `repo`, its LFS pointers vetted against the repository's
    /// objects, remembered per repository and commit: every page view of a repository (and
    /// its API info, and full listings) would otherwise list the whole tree and parse the card
    /// again.
    pub(crate) async fn cached_card_state(
        &self,
        repo: &wharf_meta::Repo,
        commit: &str,
    ) -> Result<Arc<CardState>> {
        let key = format!("{}:{commit}", repo.id);
        if let Some(hit) = self.card_states.get(&key) {
            return Ok(hit);
        }
        let git = self.git_for(&repo.storage_id).await?;
        let mut state = card_state(git, commit.to_string()).await?;
        self.vet_pointers(repo.id, &mut state.files).await?;
        let weight = weight_of(&state);
        Ok(self.card_states.insert(key, state, weight))
    }

    /// How often the card-state cache answered from memory, and how often a revision's file
    /// list and card were read.
    pub fn card_state_cache_stats(&self) -> crate::CacheStats {
        self.card_states.stats()
    }

    /// The README.md of `rev` as the repository page shows it: a regular file of at most `max`
    /// bytes of UTF-8 text (None otherwise, or when there is none). The card is what a gated
    /// repository shows everyone, like its file list, so this needs only `Read`; its other
    /// files' contents stay behind the gate.
    pub async fn card_text(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        max: u64,
    ) -> Result<Option<CardText>> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let commit = self.resolve_revision(&handle, rev).await?;
        let git = handle.git.clone();
        let entry = blocking(move || git.entry(&commit, "README.md")).await?;
        let Some(entry) = entry.filter(|e| e.kind == EntryKind::File && e.size <= max) else {
            return Ok(None);
        };
        // A README that is an LFS pointer of this repository is not text to render.
        let entry = self.vet_pointer(handle.repo.id, entry).await?;
        if entry.lfs.is_some() {
            return Ok(None);
        }
        let git = handle.git.clone();
        let oid = entry.oid.clone();
        let data = blocking(move || git.read_blob(&oid)).await?;
        if data.contains(&0) {
            return Ok(None);
        }
        Ok(String::from_utf8(data).ok().map(|text| CardText {
            blob_oid: entry.oid,
            text,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::test_support::{hub, user_caller};
    use crate::{CommitHeader, CommitOp, GatedSetting, SettingsUpdate};
    use wharf_core::{ErrorKind, RepoType};

    #[tokio::test]
    async fn gated_repositories_show_their_card_but_not_their_files() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        hub.create_repo(&alice, RepoType::Model, None, "g", false)
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "g");
        let ops = vec![
            CommitOp::File {
                path: "README.md".into(),
                content: b"---\nlicense: mit\n---\n# Gated\n".to_vec(),
            },
            CommitOp::File {
                path: "secret.txt".into(),
                content: b"the weights\n".to_vec(),
            },
        ];
        hub.commit(&alice, &addr, "main", CommitHeader::default(), ops, false)
            .await
            .expect("commit");
        let gate = SettingsUpdate {
            private: None,
            gated: Some(GatedSetting::Manual),
        };
        hub.update_settings(&alice, &addr, gate)
            .await
            .expect("gate");
        for who in [&bob, &Caller::anonymous()] {
            let card = hub
                .card_text(who, &addr, "main", 1 << 20)
                .await
                .expect("the card is public")
                .expect("some");
            assert!(card.text.contains("# Gated"));
            let e = hub
                .resolve_file(who, &addr, "main", "secret.txt")
                .await
                .err()
                .map(|e| e.kind);
            assert_eq!(e, Some(ErrorKind::GatedRepo), "files are gated");
            let e = hub
                .commit_diff(who, &addr, "main")
                .await
                .expect_err("diffs show contents");
            assert_eq!(e.kind, ErrorKind::GatedRepo);
        }
        assert_eq!(
            hub.card_text(&alice, &addr, "main", 4).await.expect("card"),
            None,
            "over the size the page renders"
        );
    }

    #[tokio::test]
    async fn a_revisions_card_state_is_read_once() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", false)
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        let before = hub.card_state_cache_stats();
        for _ in 0..3 {
            hub.repo_info(&Caller::anonymous(), &addr, None)
                .await
                .expect("info");
        }
        hub.safetensors_summary(&Caller::anonymous(), &addr, "main")
            .await
            .expect("summary");
        let after = hub.card_state_cache_stats();
        assert_eq!(after.misses - before.misses, 1, "the tree was listed once");
        assert_eq!(after.hits - before.hits, 3);
    }
}
