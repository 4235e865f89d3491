//! Card states (file list, card data, derived tags) of revisions, cached: a commit never
//! changes, so what `repo_info`, listings with `full=true` and the inference planner compute
//! for one is kept, keyed by repository and commit, with LFS pointers already vetted against
//! the repository's objects. The cache is bounded by the number of file entries it holds, so
//! an anonymous visitor asking again and again for a large repository pays one tree walk.

use crate::Hub;
use crate::cards::{CardState, card_state};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use wharf_core::Result;
use wharf_meta::Repo;

/// File entries kept across all cached states.
const MAX_ENTRIES: usize = 400_000;

#[derive(Default)]
pub(crate) struct CardCache {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    states: HashMap<(i64, String), Arc<CardState>>,
    /// Insertion order, oldest first (evicted first).
    order: VecDeque<(i64, String)>,
    held: usize,
}

impl CardCache {
    fn get(&self, key: &(i64, String)) -> Option<Arc<CardState>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.states.get(key).cloned()
    }

    fn put(&self, key: (i64, String), state: Arc<CardState>) {
        let size = state.files.len().max(1);
        if size > MAX_ENTRIES {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.states.contains_key(&key) {
            return;
        }
        while inner.held + size > MAX_ENTRIES {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.states.remove(&old) {
                inner.held -= gone.files.len().max(1);
            }
        }
        inner.held += size;
        inner.order.push_back(key.clone());
        inner.states.insert(key, state);
    }
}

impl Hub {
    /// The card state of `commit` in `repo`, computed once per (repository, commit).
    pub(crate) async fn card_state_of(&self, repo: &Repo, commit: &str) -> Result<Arc<CardState>> {
        let key = (repo.id, commit.to_string());
        if let Some(state) = self.card_cache.get(&key) {
            return Ok(state);
        }
        let git = self.git_for(&repo.storage_id).await?;
        let mut state = card_state(git, commit.to_string()).await?;
        self.vet_pointers(repo.id, &mut state.files).await?;
        let state = Arc::new(state);
        self.card_cache.put(key, state.clone());
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(files: usize) -> Arc<CardState> {
        let entry = wharf_git::TreeEntry {
            path: "f".into(),
            kind: wharf_git::EntryKind::File,
            oid: "0".repeat(40),
            size: 1,
            lfs: None,
        };
        Arc::new(CardState {
            files: vec![entry; files],
            card_data: None,
            derived: Default::default(),
        })
    }

    #[test]
    fn the_cache_holds_a_bounded_number_of_entries() {
        let cache = CardCache::default();
        for i in 0..10 {
            cache.put((i, "c".into()), state(MAX_ENTRIES / 4));
        }
        let inner = cache.inner.lock().expect("lock");
        assert!(inner.held <= MAX_ENTRIES);
        assert_eq!(inner.states.len(), 4);
        assert!(
            inner.states.contains_key(&(9, "c".to_string())),
            "newest kept"
        );
        drop(inner);
        cache.put((99, "big".into()), state(MAX_ENTRIES + 1));
        assert!(
            cache.get(&(99, "big".to_string())).is_none(),
            "too big to keep"
        );
    }
}
