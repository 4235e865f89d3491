//! `{data}/serve.lock`: who may treat every temporary file of the data folder as abandoned.
//!
//! `wharf serve` holds an exclusive lock on it for as long as it runs, and so do the processes
//! it starts (git's services and their hooks inherit the descriptor): a server killed in the
//! middle of a push releases the lock only once its orphaned `git receive-pack` has finished
//! too, so the next server reconciles the index after the last ref that old push could move.
//! A server waits at most ten seconds for it (a detached `git gc --auto` that a push started
//! holds it too), then starts without it and cleans only old leftovers.
//! `wharf fsck` takes the same lock: when it gets it, no server runs, nothing is in progress,
//! and leftovers need no grace period; when it does not, only old leftovers are touched.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use wharf_core::{Error, Result};

/// The lock file, in the data folder.
pub(crate) const SERVE_LOCK: &str = "serve.lock";

/// How often a starting server tries the lock again.
const RETRY: Duration = Duration::from_millis(100);

/// The exclusive lock on the data folder; released when dropped (and when every process that
/// inherited it has exited).
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

fn open(data: &Path) -> Result<File> {
    let path = data.join(SERVE_LOCK);
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))
}

impl ServerLock {
    /// The lock if nobody holds it, else None (a server, its children, or another fsck).
    pub(crate) fn try_acquire(data: &Path) -> Result<Option<ServerLock>> {
        let file = open(data)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ServerLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// For a starting server: waits up to `wait` for the lock (a killed server's children
    /// finishing), then makes it inheritable by the processes the server starts. None when
    /// it stayed busy: another server (or `wharf fsck`) works on this data folder.
    pub(crate) async fn acquire_for_server(
        data: &Path,
        wait: Duration,
    ) -> Result<Option<ServerLock>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(lock) = ServerLock::try_acquire(data)? {
                rustix::io::fcntl_setfd(&lock._file, rustix::io::FdFlags::empty())
                    .map_err(|e| Error::internal(format!("cannot share {SERVE_LOCK}: {e}")))?;
                return Ok(Some(lock));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = ServerLock::acquire_for_server(dir.path(), Duration::ZERO)
            .await
            .expect("lock")
            .expect("free");
        assert!(ServerLock::try_acquire(dir.path()).expect("try").is_none());
        assert!(
            ServerLock::acquire_for_server(dir.path(), Duration::from_millis(150))
                .await
                .expect("wait")
                .is_none()
        );
        drop(held);
        assert!(ServerLock::try_acquire(dir.path()).expect("try").is_some());
    }
}
