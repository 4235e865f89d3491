//! The use cases of Wharf, and the only place where they are decided: who may see and change
//! what, how a commit becomes git objects plus indexed metadata, how LFS content is admitted,
//! how a revision and a path become bytes. It composes the metadata store, the blob store and
//! git, and knows nothing of HTTP.

mod access;
mod admin;
mod blob_rules;
mod budget;
mod cards;
mod commits;
mod delegation;
mod downloads;
mod files;
mod fsck;
#[cfg(feature = "inference")]
mod inference;
mod last_commits;
mod lfs;
mod page_cache;
mod passwords;
pub mod push;
mod push_trees;
mod ratelimit;
mod ref_rules;
mod refs;
mod repo_folders;
mod repos;
mod safetensors;
mod sessions;
mod storage;
pub mod uploads;
mod web;
mod xet;
mod xet_jobs;
mod xet_read;

pub use access::{Caller, Credentials, Need};
pub use admin::{NewUser, WhoAmI};
pub use blob_rules::MAX_GIT_BLOB;
pub use budget::MemoryReservation;
pub use cards::CardText;
pub use commits::{CommitHeader, CommitOp, CommitOutcome, PreuploadFile, PreuploadResult};
pub use delegation::Principal;
pub use files::{FileContent, FileSource, TreePage};
pub use fsck::{Check, CheckReport, Finding, FsckOptions, FsckReport, ServerLock, StartupReport};
#[cfg(feature = "inference")]
pub use inference::{
    InferenceConfig, InferenceEvents, InferenceReply, InferenceRequest, SUPPORTED_MODELS, Task,
    legacy_zero_shot_answer, sse_frames, wants_stream,
};
pub use lfs::{LfsBatchOutcome, UploadTicket};
pub use page_cache::{BoundedCache, CacheStats};
pub use ratelimit::{RateClass, RateLimiter, RateLimits, RateStatus};
pub use ref_rules::MAX_REFS;
pub use refs::CommitPage;
pub use repos::{GatedSetting, ListQuery, RepoInfo, SettingsUpdate, StarterFile};
pub use safetensors::{MAX_VIEWED_HEADER, SUMMARY_LIMITS, SafetensorsSummary, SummaryLimits};
pub use sessions::CreatedToken;
pub use storage::{GcCount, GcOptions, GcReport, RepoStorage, StorageReport};
pub use web::{CommitDiff, MAX_BROWSER_UPLOAD, MAX_PREVIEW_BYTES, PAGE_DIFF_LIMITS, StagedFile};
pub use wharf_blob::{ByteRange, ByteStream};
pub use wharf_card::{Validation, render_markdown, validate_card};
pub use wharf_git::transport::Service as GitService;
pub use wharf_git::{
    ChangeKind, CommitInfo, DiffLimits, DiffReport, EntryKind, FileDiff, RefInfo, Refs, TreeEntry,
    Withheld,
};
pub use wharf_lfs::batch::{BatchRequest, BatchResponse, VerifyRequest};
pub use wharf_meta::{Account, AccountKind, Repo, RepoSort, Token};
pub use xet::{
    ShardProgress, ShardUpload, XetCaller, XetFetch, XetFetchUrl, XetReconstruction, XetScope,
    XetTokenGrant,
};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wharf_blob::{BlobStore, LocalBlobStore};
use wharf_core::{Error, RepoType, Result};
use wharf_git::GitRepo;
use wharf_lfs::Signer;
use wharf_meta::{MetaStore, SqliteStore};

/// Where the embedded default keeps everything.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub data_dir: PathBuf,
}

/// The hub: shared by every request.
pub struct Hub {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    repos_dir: PathBuf,
    hooks_dir: PathBuf,
    signer: Signer,
    /// The server secret, also keying the web interface's CSRF tokens.
    secret: Vec<u8>,
    open_repos: Mutex<HashMap<String, Arc<GitRepo>>>,
    /// One writer per repository at a time inside this process; git's ref locks cover the rest.
    write_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    last_commit_cache: last_commits::LastCommitCache,
    /// File lists and card data by commit (repository pages and info).
    card_states: cards::CardStateCache,
    /// Parsed safetensors headers by content id (the model page's parameter summary).
    safetensors_headers: safetensors::HeaderCache,
    /// `usedStorage` by repository and last change.
    used_storage_cache: page_cache::BoundedCache<u64>,
    /// Diffs of the commit and compare pages, by commit pair.
    diffs: web::DiffCache,
    /// Which clients were counted as downloading which repository lately.
    download_counter: downloads::DownloadCounter,
    /// Request and sign-in limits.
    pub rate_limiter: ratelimit::RateLimiter,
    /// Where Argon2 runs (bounded).
    passwords: passwords::PasswordPool,
    /// Memory lent to request bodies held whole.
    memory: budget::MemoryBudget,
    /// Uploads running per user.
    uploads: uploads::UploadCounts,
    /// Signs Xet access tokens and xorb fetch URLs (keys derived from the server secret).
    xet_signer: wharf_xet::token::XetTokenSigner,
    /// Shard verifications running at once (each may reconstruct files to hash them).
    xet_slots: tokio::sync::Semaphore,
    /// Wakes the LFS → Xet conversion worker when a job is queued.
    xet_wake: tokio::sync::Notify,
    /// How long an LFS object must stay untouched before its conversion runs.
    xet_convert_delay_ms: std::sync::atomic::AtomicI64,
    /// Loaded models and the worker pool of the inference API (`{data}/inference` snapshots).
    #[cfg(feature = "inference")]
    inference: inference::Engine,
}

/// A repository the caller has been allowed to use, with its git handle.
#[derive(Clone)]
pub struct RepoHandle {
    pub repo: Repo,
    pub git: Arc<GitRepo>,
}

impl Hub {
    /// Opens the embedded default: SQLite at `{data}/wharf.db`, LFS objects under `{data}/lfs`,
    /// Xet xorbs under `{data}/xet`, bare git repos under `{data}/repos`, the URL-signing secret
    /// in `{data}/secret.key`.
    pub async fn open(config: &HubConfig) -> Result<Hub> {
        let data = &config.data_dir;
        tokio::fs::create_dir_all(data).await?;
        let meta = SqliteStore::open(&data.join("wharf.db")).await?;
        let blobs = LocalBlobStore::open(&data.join("lfs"), &data.join("xet")).await?;
        let secret = load_or_create_secret(&data.join("secret.key")).await?;
        let repos_dir = data.join("repos");
        tokio::fs::create_dir_all(&repos_dir).await?;
        let data_dir = data.clone();
        let hooks_dir = blocking(move || push::install_hooks(&data_dir)).await?;
        Ok(Hub::from_parts(
            Arc::new(meta),
            Arc::new(blobs),
            repos_dir,
            hooks_dir,
            &secret,
        ))
    }

    /// Builds a hub from already opened stores (scale-out backends, tests).
    pub fn from_parts(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        repos_dir: PathBuf,
        hooks_dir: PathBuf,
        secret: &[u8],
    ) -> Hub {
        #[cfg(feature = "inference")]
        let inference =
            inference::Engine::new(repos_dir.parent().unwrap_or(&repos_dir).join("inference"));
        Hub {
            meta,
            blobs,
            repos_dir,
            hooks_dir,
            signer: Signer::new(secret),
            secret: secret.to_vec(),
            open_repos: Mutex::new(HashMap::new()),
            write_locks: Mutex::new(HashMap::new()),
            last_commit_cache: Default::default(),
            card_states: cards::new_card_state_cache(),
            safetensors_headers: safetensors::new_header_cache(),
            used_storage_cache: page_cache::BoundedCache::new(storage::USED_STORAGE_ENTRIES),
            diffs: web::new_diff_cache(),
            download_counter: Default::default(),
            rate_limiter: Default::default(),
            passwords: Default::default(),
            memory: Default::default(),
            uploads: Default::default(),
            xet_signer: wharf_xet::token::XetTokenSigner::new(secret),
            xet_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            xet_wake: tokio::sync::Notify::new(),
            xet_convert_delay_ms: std::sync::atomic::AtomicI64::new(60_000),
            #[cfg(feature = "inference")]
            inference,
        }
    }

    fn repo_path(&self, storage_id: &str) -> PathBuf {
        self.repos_dir.join(format!("{storage_id}.git"))
    }

    /// The on-disk path of a repository's bare git directory (for the smart-HTTP transport).
    pub fn git_dir(&self, handle: &RepoHandle) -> PathBuf {
        self.repo_path(&handle.repo.storage_id)
    }

    async fn git_for(&self, storage_id: &str) -> Result<Arc<GitRepo>> {
        if let Some(g) = self
            .open_repos
            .lock()
            .map_err(Error::internal)?
            .get(storage_id)
        {
            return Ok(g.clone());
        }
        let path = self.repo_path(storage_id);
        let git = Arc::new(blocking(move || GitRepo::open(&path)).await?);
        self.open_repos
            .lock()
            .map_err(Error::internal)?
            .insert(storage_id.to_string(), git.clone());
        Ok(git)
    }

    fn forget_git(&self, storage_id: &str) {
        if let Ok(mut map) = self.open_repos.lock() {
            map.remove(storage_id);
        }
    }

    /// The write lock of one repository.
    pub fn write_lock(&self, repo_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.write_locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        locks.entry(repo_id).or_default().clone()
    }
}

/// Runs blocking git work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}

/// Reads the 32-byte secret, or creates it atomically (temp file, fsync, rename).
async fn load_or_create_secret(path: &Path) -> Result<Vec<u8>> {
    match tokio::fs::read(path).await {
        Ok(bytes) if bytes.len() >= 32 => return Ok(bytes),
        Ok(_) => return Err(Error::internal(format!("{} is truncated", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(Error::internal)?;
    let tmp = path.with_extension("tmp");
    {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(&secret).await?;
        f.sync_all().await?;
    }
    tokio::fs::rename(&tmp, path).await?;
    Ok(secret)
}

/// A type plus `namespace/name`, as the API addresses repositories.
#[derive(Debug, Clone)]
pub struct RepoAddress {
    pub repo_type: RepoType,
    pub namespace: String,
    pub name: String,
}

impl RepoAddress {
    pub fn new(repo_type: RepoType, namespace: &str, name: &str) -> RepoAddress {
        RepoAddress {
            repo_type,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
