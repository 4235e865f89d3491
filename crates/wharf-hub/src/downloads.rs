//! Download counts, as the Hub keeps them: a `GET` of a model's counted file (`config.json`)
//! counts once per client per window, so `HEAD` requests (the client's metadata checks), page
//! views and repeated downloads by the same client do not inflate the number. Clients are told
//! apart by a key the HTTP layer gives (the user, else the address); the set of keys seen is
//! bounded in memory.

use crate::Hub;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wharf_core::{RepoType, Result};

/// The file whose downloads are counted, as the Hub does for models.
const COUNTED_FILE: &str = "config.json";
/// A client counts once per repository in this window.
const WINDOW: Duration = Duration::from_secs(3600);
/// Keys remembered per window; beyond it the window turns early (bounded memory).
const MAX_KEYS: usize = 100_000;

/// Which (repository, client) pairs were counted in the current and previous window.
pub(crate) struct DownloadCounter {
    state: Mutex<Windows>,
}

struct Windows {
    started: Instant,
    current: HashSet<(i64, String)>,
    previous: HashSet<(i64, String)>,
}

impl Default for DownloadCounter {
    fn default() -> Self {
        DownloadCounter {
            state: Mutex::new(Windows {
                started: Instant::now(),
                current: HashSet::new(),
                previous: HashSet::new(),
            }),
        }
    }
}

impl DownloadCounter {
    /// Whether this (repository, client) counts now; remembers it if so.
    fn first_in_window(&self, repo_id: i64, client: &str, now: Instant) -> bool {
        let mut w = match self.state.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        if now.duration_since(w.started) >= WINDOW || w.current.len() >= MAX_KEYS {
            w.previous = std::mem::take(&mut w.current);
            w.started = now;
        }
        let key = (repo_id, client.to_string());
        if w.current.contains(&key) || w.previous.contains(&key) {
            return false;
        }
        w.current.insert(key);
        true
    }
}

impl Hub {
    /// Notes a `GET` of `path` in a repository by `client`: counted when it is the model's
    /// counted file and this client was not counted for it within the window.
    pub async fn note_download(
        &self,
        repo_id: i64,
        repo_type: RepoType,
        path: &str,
        client: &str,
    ) -> Result<()> {
        if repo_type != RepoType::Model || path != COUNTED_FILE {
            return Ok(());
        }
        if self
            .download_counter
            .first_in_window(repo_id, client, Instant::now())
        {
            self.meta.add_downloads(repo_id, 1).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_client_and_window() {
        let c = DownloadCounter::default();
        let t0 = Instant::now();
        assert!(c.first_in_window(1, "a", t0));
        assert!(!c.first_in_window(1, "a", t0), "same client, same window");
        assert!(c.first_in_window(1, "b", t0), "another client");
        assert!(c.first_in_window(2, "a", t0), "another repository");
        // The next window still remembers the previous one, the one after does not.
        assert!(!c.first_in_window(1, "a", t0 + WINDOW));
        assert!(c.first_in_window(1, "a", t0 + WINDOW * 2 + Duration::from_secs(1)));
    }

    #[test]
    fn memory_stays_bounded() {
        let c = DownloadCounter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS * 3) {
            c.first_in_window(1, &i.to_string(), t0);
        }
        let w = c.state.lock().expect("lock");
        assert!(w.current.len() <= MAX_KEYS && w.previous.len() <= MAX_KEYS);
    }
}
