//! Bounded in-memory caches for what the repository pages compute from content that never
//! changes under its name (a blob id, an LFS oid, a pair of commits): parsed safetensors
//! headers and diffs here, highlighted files and rendered cards in the web crate. A key names its content for good, so entries never go stale and the
//! caches only need a size bound; eviction is first-in first-out. Each cache counts what it
//! computed and what it answered from memory, so tests can see that work was done once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A map with a total size bound (as the caller weighs its values).
pub struct BoundedCache<V> {
    inner: Mutex<Entries<V>>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Entries<V> {
    map: HashMap<String, (Arc<V>, usize)>,
    order: VecDeque<String>,
    size: usize,
}

/// How often a cache answered from memory, and how often its value had to be computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

impl<V> BoundedCache<V> {
    /// A cache holding at most `capacity` bytes of values.
    pub fn new(capacity: usize) -> BoundedCache<V> {
        BoundedCache {
            inner: Mutex::new(Entries {
                map: HashMap::new(),
                order: VecDeque::new(),
                size: 0,
            }),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The value under `key`, counted as a hit or a miss.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let found = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get(key)
            .map(|(v, _)| v.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores `value` weighing `size` bytes (unless it alone exceeds the bound), evicting the
    /// oldest entries to make room; returns it shared.
    pub fn insert(&self, key: String, value: V, size: usize) -> Arc<V> {
        let value = Arc::new(value);
        if size > self.capacity {
            return value;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, old)) = inner.map.remove(&key) {
            inner.size -= old;
            inner.order.retain(|k| k != &key);
        }
        while inner.size + size > self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, s)) = inner.map.remove(&oldest) {
                inner.size -= s;
            }
        }
        inner.size += size;
        inner.order.push_back(key.clone());
        inner.map.insert(key, (value.clone(), size));
        value
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_capacity_and_counts() {
        let c: BoundedCache<u32> = BoundedCache::new(10);
        c.insert("a".into(), 1, 4);
        c.insert("b".into(), 2, 4);
        assert_eq!(c.get("a").as_deref(), Some(&1));
        c.insert("c".into(), 3, 4);
        assert!(c.get("a").is_none());
        assert_eq!(c.get("b").as_deref(), Some(&2));
        // Too big to keep, but still handed back.
        assert_eq!(*c.insert("d".into(), 4, 11), 4);
        assert!(c.get("d").is_none());
        // Replacing a key does not count it twice.
        c.insert("c".into(), 5, 4);
        c.insert("e".into(), 6, 2);
        assert_eq!(c.get("b").as_deref(), Some(&2));
        assert_eq!(c.get("c").as_deref(), Some(&5));
        assert_eq!(c.stats(), CacheStats { hits: 4, misses: 2 });
    }
}
