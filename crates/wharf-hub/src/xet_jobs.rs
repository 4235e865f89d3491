//! Background conversion of LFS objects into Xet storage (`docs/xet.md` §3.10), so that Xet
//! clients download objects uploaded through LFS (or git-lfs, or the web interface) through the
//! CAS too. One worker, one job at a time; a failed job is retried with back-off and given up
//! after a few attempts, and never blocks anything: the LFS blob keeps serving.
//!
//! A job reads the blob (its SHA-256 was verified at upload), chunks it with the same CDC as
//! hf_xet, packs the chunks into xorbs of its own (objects never share a xorb), verifies and
//! stores each xorb like an upload, checks that the bytes still hash to the oid, and registers
//! the file. It links nothing: the repositories that own the object already link it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use wharf_core::{Error, Result, time::now_ms};
use wharf_meta::{NewXetFile, XetChunkRef, XetJobState, XetSource, XetTerm};
use wharf_xet::XetHash;
use wharf_xet::chunker::FilePacker;
use wharf_xet::xorb::IngestedXorb;

use crate::{Hub, blocking};

/// Attempts before a job is marked failed.
const MAX_ATTEMPTS: i64 = 5;
/// Back-off after the first failure; doubled after each further one.
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Longest the idle worker sleeps without looking at the queue again.
const IDLE_WAIT: Duration = Duration::from_secs(30);
/// Objects enqueued per backfill query.
const BACKFILL_BATCH: i64 = 1000;

impl Hub {
    /// Queues the conversion of LFS object `oid`, due once it has been left alone for the
    /// conversion delay, and wakes the worker. Failures are logged: conversion is an
    /// optimisation, never a reason to fail the upload that triggered it.
    pub(crate) async fn queue_xet_conversion(&self, oid: &str) {
        if let Err(e) = self.meta.enqueue_xet_job(oid, self.xet_due()).await {
            tracing::warn!(%oid, error = %e, "could not queue the Xet conversion of an LFS object");
        }
        self.xet_wake.notify_one();
    }

    /// When a job queued now may run: after the conversion delay, so that conversion does not
    /// compete with a burst of uploads and downloads of the same objects.
    fn xet_due(&self) -> i64 {
        now_ms().saturating_add(self.xet_convert_delay_ms.load(Ordering::Relaxed))
    }

    /// Starts the conversion worker on the current runtime; objects are converted once nothing
    /// queued them for `delay`. The server calls this once.
    pub fn start_xet_worker(self: &Arc<Self>, delay: Duration) -> tokio::task::JoinHandle<()> {
        let ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        self.xet_convert_delay_ms.store(ms, Ordering::Relaxed);
        let hub = self.clone();
        tokio::spawn(async move { hub.xet_worker().await })
    }

    async fn xet_worker(self: Arc<Self>) {
        self.backfill_xet_jobs().await;
        loop {
            match self.meta.next_xet_job(now_ms()).await {
                Ok(Some(oid)) => self.run_xet_job(&oid).await,
                Ok(None) => {
                    // Woken by a new job, or when the next queued one becomes due.
                    let wait = match self.meta.next_xet_due().await {
                        Ok(Some(due)) => Duration::from_millis(
                            u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0),
                        )
                        .min(IDLE_WAIT),
                        _ => IDLE_WAIT,
                    };
                    tokio::select! {
                        _ = self.xet_wake.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Xet conversion queue unavailable");
                    tokio::time::sleep(IDLE_WAIT).await;
                }
            }
        }
    }

    /// Queues every linked LFS object that has neither a Xet file nor a job (objects stored
    /// before conversion existed).
    async fn backfill_xet_jobs(&self) {
        loop {
            let oids = match self.meta.lfs_oids_without_xet(BACKFILL_BATCH).await {
                Ok(oids) => oids,
                Err(e) => {
                    tracing::warn!(error = %e, "Xet conversion backfill failed");
                    return;
                }
            };
            if oids.is_empty() {
                return;
            }
            for oid in &oids {
                if let Err(e) = self.meta.enqueue_xet_job(oid, self.xet_due()).await {
                    tracing::warn!(%oid, error = %e, "Xet conversion backfill failed");
                    return;
                }
            }
        }
    }

    async fn run_xet_job(&self, oid: &str) {
        let started = std::time::Instant::now();
        let outcome = self.convert_lfs_object(oid).await;
        let now = now_ms();
        let result = match &outcome {
            Ok(()) => self.meta.finish_xet_job(oid, None, None, now).await,
            Err(e) => {
                let attempts = self
                    .meta
                    .xet_job_attempts(oid)
                    .await
                    .unwrap_or(MAX_ATTEMPTS);
                let retry_at = (attempts + 1 < MAX_ATTEMPTS).then(|| {
                    let wait = FIRST_RETRY.as_millis() as i64 * (1i64 << attempts.clamp(0, 10));
                    now + wait
                });
                let message = e.to_string();
                self.meta
                    .finish_xet_job(oid, Some(&message), retry_at, now)
                    .await
            }
        };
        match (outcome, result) {
            (Ok(()), Ok(_)) => {
                tracing::info!(%oid, elapsed_ms = started.elapsed().as_millis() as u64, "LFS object converted to Xet");
            }
            (Err(e), Ok(XetJobState::Failed)) => {
                tracing::error!(%oid, error = %e, "giving up the Xet conversion of an LFS object");
            }
            (Err(e), Ok(_)) => {
                tracing::warn!(%oid, error = %e, "Xet conversion failed; it will be retried");
            }
            (_, Err(e)) => {
                tracing::warn!(%oid, error = %e, "could not record a Xet conversion");
            }
        }
    }

    /// Converts one stored LFS object into a registered Xet file (idempotent).
    pub(crate) async fn convert_lfs_object(&self, oid: &str) -> Result<()> {
        if self.xet_hash_of(oid).await?.is_some() {
            return Ok(());
        }
        match self.blobs.size(oid).await? {
            None => return Err(Error::internal(format!("LFS object {oid} is not stored"))),
            // An empty object has no chunks: nothing to convert.
            Some(0) => return Ok(()),
            Some(_) => {}
        }
        let mut body = self.blobs.read(oid, None).await?;
        let mut packer = FilePacker::new();
        let mut first_chunk = None;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(Error::internal)?;
            let (p, xorbs) = blocking(move || {
                packer.update(&piece)?;
                let sealed = packer.take_xorbs();
                Ok((packer, sealed))
            })
            .await?;
            packer = p;
            for x in xorbs {
                self.store_converted_xorb(x, &mut first_chunk).await?;
            }
        }
        let mut packed = blocking(move || Ok(packer.finish()?)).await?;
        for x in std::mem::take(&mut packed.xorbs) {
            self.store_converted_xorb(x, &mut first_chunk).await?;
        }
        if packed.sha256 != oid {
            return Err(Error::internal(format!(
                "LFS object {oid} reads back with sha256 {}",
                packed.sha256
            )));
        }
        let file = NewXetFile {
            file_hash: packed.file_hash.to_string(),
            sha256: packed.sha256,
            size: packed.size as i64,
            source: XetSource::Lfs,
            terms: packed
                .terms
                .iter()
                .map(|t| XetTerm {
                    xorb_hash: t.xorb.to_string(),
                    chunk_start: i64::from(t.start),
                    chunk_end: i64::from(t.end),
                    raw_size: i64::from(t.raw_len),
                })
                .collect(),
            created_at: now_ms(),
        };
        let dedup: Vec<XetChunkRef> = first_chunk
            .map(|(xorb, chunk): (XetHash, XetHash)| XetChunkRef {
                chunk_hash: chunk.to_string(),
                xorb_hash: xorb.to_string(),
                chunk_index: 0,
            })
            .into_iter()
            .collect();
        self.meta.register_xet_files(None, &[file], &dedup).await?;
        Ok(())
    }

    /// Stores a xorb the packer built (and verified with `xorb::ingest`), then records it.
    async fn store_converted_xorb(
        &self,
        x: IngestedXorb,
        first_chunk: &mut Option<(XetHash, XetHash)>,
    ) -> Result<()> {
        if first_chunk.is_none()
            && let Some(h) = x.chunk_hashes.first()
        {
            *first_chunk = Some((x.hash, XetHash::from_merkle(*h)));
        }
        let chunks = x.to_chunks();
        self.record_xorb(chunks, x.raw_size, x.data_size, vec![Bytes::from(x.stored)])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::test_support::{collect, hub, user_caller};
    use crate::{CommitHeader, CommitOp, RepoAddress};
    use wharf_core::RepoType;
    use wharf_xet::testdata::{DET_FILE_HASH, DET_SHA256, det_bin};

    #[tokio::test]
    async fn an_lfs_object_converts_to_the_file_hf_xet_would_upload() {
        let (dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let repo = hub
            .create_repo(&alice, RepoType::Model, None, "m", true)
            .await
            .expect("repo");
        let data = det_bin();
        let size = data.len() as u64;
        let body = futures::stream::once({
            let data = Bytes::from(data.clone());
            async move { Ok(data) }
        })
        .boxed();
        hub.blobs
            .put_verified(DET_SHA256, size, body)
            .await
            .expect("blob");
        hub.meta
            .link_lfs_object(repo.id, DET_SHA256, size as i64)
            .await
            .expect("link");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        let ops = vec![CommitOp::LfsFile {
            path: "det.bin".into(),
            oid: DET_SHA256.into(),
            size: Some(size as i64),
        }];
        hub.commit(&alice, &addr, "main", CommitHeader::default(), ops, false)
            .await
            .expect("commit");

        hub.convert_lfs_object(DET_SHA256).await.expect("convert");
        // The same file hash hf_xet 1.8.0 computed for these bytes (docs/xet.md §1.7).
        let file_hash = hub.xet_hash_of(DET_SHA256).await.expect("lookup");
        assert_eq!(file_hash.as_deref(), Some(DET_FILE_HASH));
        // It links nothing new, and a second run changes nothing.
        hub.convert_lfs_object(DET_SHA256).await.expect("again");
        assert!(
            hub.meta
                .repo_has_xet_file(repo.id, DET_FILE_HASH)
                .await
                .expect("owned")
        );

        // The blob stays the fast path; Xet clients are told about the Xet file.
        let (_, file) = hub
            .resolve_file(&alice, &addr, "main", "det.bin")
            .await
            .expect("resolve");
        let file = file.expect("file");
        assert!(matches!(file.source, crate::FileSource::Lfs { .. }));
        assert_eq!(file.xet_hash.as_deref(), Some(DET_FILE_HASH));
        let got = collect(hub.read_xet_file(DET_FILE_HASH, None).await.expect("read")).await;
        assert_eq!(got, data);

        // The files and objects of conversion are verified xorbs like any other.
        let stored: usize = std::fs::read_dir(dir.path().join("data/xet/xorbs"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(stored > 0);
    }

    #[tokio::test]
    async fn a_corrupt_blob_is_not_converted() {
        let (dir, hub) = hub().await;
        let data = b"some bytes that will not survive".to_vec();
        let oid = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
        let body = futures::stream::once({
            let data = Bytes::from(data.clone());
            async move { Ok(data) }
        })
        .boxed();
        hub.blobs
            .put_verified(&oid, data.len() as u64, body)
            .await
            .expect("blob");
        // Bit rot on disk after the upload.
        let path = dir
            .path()
            .join("data/lfs/objects")
            .join(&oid[0..2])
            .join(&oid[2..4])
            .join(&oid);
        let mut rotten = data.clone();
        rotten[3] ^= 1;
        std::fs::write(&path, &rotten).expect("rot");
        let e = hub.convert_lfs_object(&oid).await.expect_err("corrupt");
        assert_eq!(e.kind, wharf_core::ErrorKind::Internal);
        assert_eq!(hub.xet_hash_of(&oid).await.expect("lookup"), None);
        // Missing objects fail too; empty ones have nothing to convert.
        let e = hub
            .convert_lfs_object(&"7".repeat(64))
            .await
            .expect_err("missing");
        assert_eq!(e.kind, wharf_core::ErrorKind::Internal);
    }

    #[tokio::test]
    async fn failed_jobs_are_retried_then_given_up() {
        let (_dir, hub) = hub().await;
        let oid = "8".repeat(64); // never stored: every attempt fails
        hub.queue_xet_conversion(&oid).await;
        for attempt in 1..=MAX_ATTEMPTS {
            let due = hub
                .meta
                .next_xet_job(i64::MAX)
                .await
                .expect("next")
                .expect("queued");
            assert_eq!(due, oid);
            hub.run_xet_job(&oid).await;
            assert_eq!(hub.meta.xet_job_attempts(&oid).await.expect("n"), attempt);
            if attempt < MAX_ATTEMPTS {
                assert_eq!(
                    hub.meta.next_xet_job(now_ms()).await.expect("next"),
                    None,
                    "backs off"
                );
            }
        }
        assert_eq!(hub.meta.next_xet_job(i64::MAX).await.expect("next"), None);
    }
}
