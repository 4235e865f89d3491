//! Which paths a commit changed relative to one of its parents, kept per repository.
//!
//! `git log -- path` asks, for every commit it walks, whether the path looks the same in the
//! commit and a parent. Answering that from the trees means inflating two root trees per
//! commit, every request (expensive when the root folder is large). Commits are immutable, so
//! the full set of differing paths of a (commit, parent) pair is computed once and kept; later
//! questions about any path are a binary search.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use wharf_core::Result;

use crate::history::LastCommitSearch;

/// Change sets larger than this many paths (an initial import, say) are not kept: questions
/// about such a commit are answered from its trees each time.
const MAX_SET_PATHS: usize = 50_000;

/// Estimated bytes kept per repository; the oldest entries go first beyond this. Modest
/// because the hub keeps every repository it has opened (a commit touching three files costs
/// about 200 bytes, so this holds the change sets of roughly 150,000 such commits).
const MAX_CACHED_BYTES: usize = 32 << 20;

/// Bookkeeping per entry besides the paths themselves: key, map slot, queue slot, `Arc`.
const ENTRY_OVERHEAD: usize = 128;

/// The paths whose entries differ between a commit's root tree and its parent's: files,
/// links, submodules and folders at every depth, joined with '/'; "" (the root) when the two
/// root trees differ at all. Sorted bytewise, stored back to back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChangeSet {
    bytes: Box<[u8]>,
    /// End offset in `bytes` of each path.
    ends: Box<[u32]>,
}

impl ChangeSet {
    /// None when the paths are too many or too long to be kept.
    fn new(mut paths: Vec<Vec<u8>>) -> Option<ChangeSet> {
        if paths.len() > MAX_SET_PATHS {
            return None;
        }
        paths.sort_unstable();
        paths.dedup();
        let total: usize = paths.iter().map(Vec::len).sum();
        u32::try_from(total).ok()?;
        let mut bytes = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(paths.len());
        for path in &paths {
            bytes.extend_from_slice(path);
            ends.push(u32::try_from(bytes.len()).ok()?);
        }
        Some(ChangeSet {
            bytes: bytes.into(),
            ends: ends.into(),
        })
    }

    fn path(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    /// Whether `path` (components joined with '/', "" for the root) differs.
    pub(crate) fn contains(&self, path: &[u8]) -> bool {
        let (mut lo, mut hi) = (0, self.ends.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.path(mid).cmp(path) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.len() + self.ends.len() * size_of::<u32>()
    }
}

/// What is known about one (commit, parent) pair.
#[derive(Debug)]
pub(crate) enum Changes {
    Paths(ChangeSet),
    /// Over [`MAX_SET_PATHS`]: compare the trees for each question.
    TooLarge,
}

/// (commit, parent); the parent of a root commit is the null id (the empty tree).
pub(crate) type Key = (ObjectId, ObjectId);

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Arc<Changes>>,
    /// Insertion order, for eviction.
    order: VecDeque<Key>,
    bytes: usize,
}

/// Per-repository cache of [`Changes`] by (commit, parent). Entries never go stale.
#[derive(Default)]
pub(crate) struct ChangeCache {
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

fn entry_bytes(changes: &Changes) -> usize {
    ENTRY_OVERHEAD
        + match changes {
            Changes::Paths(set) => set.heap_bytes(),
            Changes::TooLarge => 0,
        }
}

impl ChangeCache {
    fn get(&self, key: &Key) -> Option<Arc<Changes>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.map.get(key).cloned()
    }

    pub(crate) fn put(&self, key: Key, changes: Arc<Changes>) {
        let size = entry_bytes(&changes);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.map.insert(key, changes).is_some() {
            // Another request computed the same pair meanwhile; the size is the same.
            return;
        }
        inner.order.push_back(key);
        inner.bytes += size;
        while inner.bytes > MAX_CACHED_BYTES {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.map.remove(&old) {
                inner.bytes -= entry_bytes(&gone);
            }
        }
    }

    /// (hits, misses) so far, for tests.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The changes of `commit` against `parent` (None for a root commit: against the empty
    /// tree), from the cache or computed with `search` and kept.
    pub(crate) fn changes(
        &self,
        search: &mut LastCommitSearch<'_>,
        commit: ObjectId,
        parent: Option<ObjectId>,
    ) -> Result<Arc<Changes>> {
        let key = (commit, parent.unwrap_or_else(|| commit.kind().null()));
        if let Some(found) = self.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let node = search.commit(commit)?;
        search.read_ahead(&node)?;
        let old = match parent {
            Some(p) => search.commit(p)?.tree,
            None => search.trees.empty_tree(),
        };
        let changes = match search
            .trees
            .changed_paths(node.tree, old, MAX_SET_PATHS)?
            .and_then(ChangeSet::new)
        {
            Some(set) => Changes::Paths(set),
            None => Changes::TooLarge,
        };
        let changes = Arc::new(changes);
        self.put(key, changes.clone());
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> ChangeSet {
        ChangeSet::new(paths.iter().map(|p| p.as_bytes().to_vec()).collect()).expect("small")
    }

    #[test]
    fn change_set_lookup() {
        let s = set(&["dir/b", "", "dir", "a.txt", "dir/a"]);
        for p in ["", "a.txt", "dir", "dir/a", "dir/b"] {
            assert!(s.contains(p.as_bytes()), "{p}");
        }
        for p in ["a", "dir/", "dir/c", "z", "a.txt/x"] {
            assert!(!s.contains(p.as_bytes()), "{p}");
        }
        assert!(!set(&[]).contains(b""));
    }

    #[test]
    fn too_many_paths_are_not_kept() {
        let many = (0..=MAX_SET_PATHS)
            .map(|i| i.to_string().into_bytes())
            .collect();
        assert!(ChangeSet::new(many).is_none());
    }

    #[test]
    fn cache_evicts_oldest_beyond_budget() {
        let cache = ChangeCache::default();
        let id = |i: u32| {
            let mut raw = [0u8; 20];
            raw[..4].copy_from_slice(&i.to_be_bytes());
            ObjectId::from_bytes_or_panic(&raw)
        };
        let n = MAX_CACHED_BYTES / ENTRY_OVERHEAD + 10;
        for i in 0..n as u32 {
            cache.put((id(i), id(i)), Arc::new(Changes::TooLarge));
        }
        assert!(cache.get(&(id(0), id(0))).is_none());
        assert!(cache.get(&(id(n as u32 - 1), id(n as u32 - 1))).is_some());
        let inner = cache.inner.lock().expect("lock");
        assert!(inner.bytes <= MAX_CACHED_BYTES);
        assert_eq!(inner.map.len(), inner.order.len());
    }
}
