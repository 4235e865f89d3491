//! Bounded in-memory caches of rendered HTML, keyed by git blob id.
//!
//! Highlighting a 1,000-line file, or sanitising a card full of highlighted code, takes far
//! longer than a page may (about 120 ms for 1,000 lines of Python in a release build). A blob
//! id names its content for good, so what was rendered from it never goes stale: the caches
//! only need a size bound. Eviction is first-in first-out, which is enough for keeping the
//! pages people are looking at now.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use wharf_card::highlight::HtmlLines;

/// Highlighted files, by blob id and path (the path picks the grammar).
pub static FILES: LazyLock<Cache<HtmlLines>> = LazyLock::new(|| Cache::new(48 << 20));
/// Sanitised card HTML (before its links are made absolute), by README blob id.
pub static CARDS: LazyLock<Cache<String>> = LazyLock::new(|| Cache::new(16 << 20));

/// Runs CPU-heavy rendering off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> crate::error::WebResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "rendering task failed");
        crate::error::WebError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on the server.",
        )
    })
}

/// A map with a total size bound.
pub struct Cache<V> {
    inner: Mutex<Inner<V>>,
    capacity: usize,
}

struct Inner<V> {
    map: HashMap<String, (Arc<V>, usize)>,
    order: VecDeque<String>,
    size: usize,
}

impl<V> Cache<V> {
    /// A cache holding at most `capacity` bytes (as weighed by the caller).
    pub fn new(capacity: usize) -> Cache<V> {
        Cache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                size: 0,
            }),
            capacity,
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.map.get(key).map(|(v, _)| v.clone())
    }

    /// Stores `value` of `size` bytes (unless it alone exceeds the bound), evicting the
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_capacity() {
        let c: Cache<u32> = Cache::new(10);
        c.insert("a".into(), 1, 4);
        c.insert("b".into(), 2, 4);
        assert_eq!(c.get("a").as_deref(), Some(&1));
        c.insert("c".into(), 3, 4);
        assert!(c.get("a").is_none());
        assert_eq!(c.get("b").as_deref(), Some(&2));
        assert_eq!(c.get("c").as_deref(), Some(&3));
        // Too big to keep, but still handed back.
        assert_eq!(*c.insert("d".into(), 4, 11), 4);
        assert!(c.get("d").is_none());
        // Replacing a key does not count it twice.
        c.insert("c".into(), 5, 4);
        c.insert("e".into(), 6, 2);
        assert_eq!(c.get("b").as_deref(), Some(&2));
        assert_eq!(c.get("c").as_deref(), Some(&5));
    }
}
