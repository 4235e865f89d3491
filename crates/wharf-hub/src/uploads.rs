//! Bounds on request bodies that are uploads (LFS objects, Xet xorbs and shards, commit
//! bodies): each must keep arriving at a minimal average pace once a grace period is over,
//! so a client trickling a byte a second cannot hold the memory, threads and connections its
//! upload ties up for hours; and one user may run only so many uploads at once, so a single
//! write token cannot occupy the server's upload capacity.

use crate::Hub;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use wharf_blob::ByteStream;
use wharf_core::{Error, ErrorKind, Result};

/// After this grace period an upload must have averaged at least [`MIN_BYTES_PER_SEC`].
pub const PACE_GRACE: Duration = Duration::from_secs(30);
/// The slowest average pace an upload may keep (a 1 Mbit/s link sends twice that).
pub const MIN_BYTES_PER_SEC: u64 = 64 * 1024;
/// Uploads one user may run at once: room for a client uploading in parallel (32 writers
/// committing to one branch is an expected load), while the pace rule ends slow ones in 30 s.
pub const UPLOADS_PER_USER: usize = 64;

/// Whether `received` bytes after `elapsed` is still a fair pace.
fn on_pace(received: u64, elapsed: Duration) -> bool {
    let Some(paced) = elapsed.checked_sub(PACE_GRACE) else {
        return true;
    };
    let owed = (paced.as_millis() as u64).saturating_mul(MIN_BYTES_PER_SEC) / 1000;
    received >= owed
}

fn too_slow() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "upload too slow: the body must arrive at 64 KiB/s on average after 30 s",
    )
}

/// `body`, cut off with an error once it falls behind the minimal pace. Checked as each piece
/// arrives and, while nothing arrives, when the client would next be behind (so silence is
/// cut too, not only slow pieces).
pub fn paced(body: ByteStream) -> ByteStream {
    let started = Instant::now();
    futures::stream::unfold(
        (body, 0u64, false),
        move |(mut body, received, failed)| async move {
            if failed {
                return None;
            }
            // The moment this client would fall behind if nothing more arrives.
            let owed_secs = received / MIN_BYTES_PER_SEC;
            let deadline = started + PACE_GRACE + Duration::from_secs(owed_secs + 1);
            let next = tokio::time::timeout_at(deadline, body.next()).await;
            match next {
                Err(_) => Some((Err(too_slow()), (body, received, true))),
                Ok(None) => None,
                Ok(Some(Err(e))) => Some((Err(e), (body, received, true))),
                Ok(Some(Ok(piece))) => {
                    let received = received + piece.len() as u64;
                    if on_pace(received, started.elapsed()) {
                        Some((Ok::<Bytes, std::io::Error>(piece), (body, received, false)))
                    } else {
                        Some((Err(too_slow()), (body, received, true)))
                    }
                }
            }
        },
    )
    .boxed()
}

/// Uploads running per user.
#[derive(Default)]
pub(crate) struct UploadCounts {
    running: Arc<Mutex<HashMap<i64, usize>>>,
}

/// One running upload; dropping it frees the slot.
pub struct UploadSlot {
    running: Arc<Mutex<HashMap<i64, usize>>>,
    user: i64,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.user);
            }
        }
    }
}

impl Hub {
    /// A slot for one more upload by `user`; `TooManyRequests` past [`UPLOADS_PER_USER`].
    pub fn upload_slot(&self, user: i64) -> Result<UploadSlot> {
        let running = self.uploads.running.clone();
        {
            let mut map = running.lock().unwrap_or_else(PoisonError::into_inner);
            let n = map.entry(user).or_default();
            if *n >= UPLOADS_PER_USER {
                return Err(Error::new(
                    ErrorKind::TooManyRequests { retry_after: 1 },
                    format!("At most {UPLOADS_PER_USER} uploads at once per user"),
                ));
            }
            *n += 1;
        }
        Ok(UploadSlot { running, user })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_is_an_average_after_the_grace_period() {
        assert!(on_pace(0, Duration::from_secs(30)));
        assert!(!on_pace(0, Duration::from_secs(31)));
        assert!(on_pace(64 * 1024 * 10, Duration::from_secs(40)));
        assert!(!on_pace(64 * 1024 * 9, Duration::from_secs(40)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_and_a_steady_body_is_not() {
        // One byte a second: cut soon after the grace period.
        let trickle = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((Ok(Bytes::from_static(b"x")), ()))
        })
        .boxed();
        let mut body = paced(trickle);
        let mut got = 0;
        let err = loop {
            match body.next().await {
                Some(Ok(p)) => got += p.len(),
                Some(Err(e)) => break e,
                None => panic!("a trickle never ends by itself"),
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!((29..=32).contains(&got), "{got}");
        // Silence after a good start is cut as well.
        let silent = futures::stream::once(async { Ok(Bytes::from(vec![0u8; 1 << 20])) })
            .chain(futures::stream::pending())
            .boxed();
        let mut body = paced(silent);
        assert!(matches!(body.next().await, Some(Ok(_))));
        assert!(matches!(body.next().await, Some(Err(_))));
        // 128 KiB a second for a minute passes.
        let steady = futures::stream::iter(0..60)
            .then(|_| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(Bytes::from(vec![0u8; 128 * 1024]))
            })
            .boxed();
        let all: Vec<_> = paced(steady).collect().await;
        assert!(all.iter().all(Result::is_ok) && all.len() == 60);
    }

    #[tokio::test]
    async fn users_have_a_bounded_number_of_uploads() {
        let (_dir, hub) = crate::web::test_support::hub().await;
        let held: Vec<_> = (0..UPLOADS_PER_USER)
            .map(|_| hub.upload_slot(7).expect("slot"))
            .collect();
        let e = hub.upload_slot(7).err().expect("full");
        assert!(matches!(e.kind, ErrorKind::TooManyRequests { .. }));
        assert!(hub.upload_slot(8).is_ok(), "another user");
        drop(held);
        assert!(hub.upload_slot(7).is_ok(), "freed");
    }
}
