//! Passwords: Argon2id hashing and checking, on a bounded pool. Each check costs tens of
//! milliseconds and about 19 MiB, so only as many run at once as there are cores, a short queue
//! may wait, and beyond it a sign-in is refused as busy instead of growing memory and threads.
//! A check for an unknown account (or one without a password) verifies against a dummy hash,
//! so a failure takes the same time whether or not the name exists.

use crate::Hub;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;
use wharf_core::{Error, ErrorKind, Result};

/// Checks that may wait for a slot; more are refused as busy.
const MAX_WAITING: usize = 32;

/// A hash to verify against when there is no real one, for constant work.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_password("wharf-no-such-account").ok());

/// Hashes a password with Argon2id (PHC string).
pub(crate) fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(Error::internal)
}

fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The slots password work runs in.
pub(crate) struct PasswordPool {
    slots: Semaphore,
    waiting: AtomicUsize,
    /// Checks run so far (real and dummy alike), for tests and metrics.
    checks: std::sync::atomic::AtomicU64,
}

impl Default for PasswordPool {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        PasswordPool {
            slots: Semaphore::new(cores),
            waiting: AtomicUsize::new(0),
            checks: Default::default(),
        }
    }
}

impl PasswordPool {
    /// Runs `work` on a blocking thread once a slot is free; `Busy` when the queue is full.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::new(
                ErrorKind::Busy,
                "Too many sign-ins at once; try again in a moment",
            ));
        }
        let permit = self.slots.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|_| Error::internal("password pool closed"))?;
        crate::blocking(work).await
    }
}

impl Hub {
    /// Whether `password` matches `hash`; with no hash, verifies against a dummy one (same
    /// cost) and answers false.
    pub(crate) async fn password_matches(
        &self,
        hash: Option<String>,
        password: &str,
    ) -> Result<bool> {
        let password = password.to_string();
        self.passwords.checks.fetch_add(1, Ordering::Relaxed);
        self.passwords
            .run(move || {
                Ok(match hash {
                    Some(h) => verify_password(&password, &h),
                    None => {
                        if let Some(dummy) = DUMMY_HASH.as_deref() {
                            verify_password(&password, dummy);
                        }
                        false
                    }
                })
            })
            .await
    }

    /// The Argon2id hash of a new password.
    pub(crate) async fn hash_new_password(&self, password: &str) -> Result<String> {
        let password = password.to_string();
        self.passwords.run(move || hash_password(&password)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("s3cret-pass").expect("hash");
        assert!(verify_password("s3cret-pass", &h));
        assert!(!verify_password("other", &h));
        assert!(!verify_password("s3cret-pass", "not-a-phc"));
    }

    /// HTTP Basic with an unknown user name does the same Argon2 work as a wrong password, so
    /// the answer's timing does not tell which names exist.
    #[tokio::test]
    async fn unknown_users_cost_a_password_check_too() {
        let (_dir, hub) = crate::web::test_support::hub().await;
        hub.add_user(crate::NewUser {
            name: "alice".into(),
            email: "alice@example.com".into(),
            fullname: None,
            password: Some("right-password".into()),
            admin: false,
        })
        .await
        .expect("user");
        let before = hub.passwords.checks.load(Ordering::Relaxed);
        for user in ["alice", "nobody-at-all"] {
            let creds = crate::Credentials::Password {
                user: user.into(),
                password: "wrong-password".into(),
            };
            let e = hub.authenticate(&creds, "test").await.expect_err("refused");
            assert_eq!(e.kind, ErrorKind::Unauthorized);
        }
        assert_eq!(hub.passwords.checks.load(Ordering::Relaxed) - before, 2);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_not_grown() {
        let pool = std::sync::Arc::new(PasswordPool {
            slots: Semaphore::new(1),
            waiting: AtomicUsize::new(0),
            checks: Default::default(),
        });
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || Ok(hold.recv().is_ok())).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut queued = Vec::new();
        for _ in 0..MAX_WAITING {
            let pool = pool.clone();
            queued.push(tokio::spawn(async move { pool.run(|| Ok(true)).await }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let refused = pool.run(|| Ok(true)).await.expect_err("queue full");
        assert_eq!(refused.kind, ErrorKind::Busy);
        release.send(()).expect("release");
        assert!(busy.await.expect("join").expect("ran"));
        for q in queued {
            assert!(q.await.expect("join").expect("ran"));
        }
    }
}
