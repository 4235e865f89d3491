//! Hosted inference: a model repository answers `POST /models/{ns}/{name}` the way the Hub's
//! serverless API does. Access is exactly that of file reads. A revision resolves to a commit;
//! (repository, commit) is the cache key. The files `wharf_inference::plan_files` picks are
//! copied through the hub's own read path (git, LFS, Xet) into `{data}/inference/{commit}/`
//! (temp dir, fsync, rename), loaded in the background, kept in an LRU under a memory budget,
//! and run on a bounded pool of blocking workers; queued encoder requests for one model are
//! batched into one forward pass.

use crate::access::Need;
use crate::cards::card_state;
use crate::{Caller, Hub, RepoAddress, RepoHandle};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use wharf_core::{Error, RepoType, Result, normalize_repo_path};
use wharf_inference::{InferenceError, Model};

pub use wharf_inference::{
    SUPPORTED as SUPPORTED_MODELS, Task, legacy_zero_shot_answer, wants_stream,
};

/// Encoder requests folded into one `infer_batch` call at most.
const MAX_BATCH: usize = 32;
/// How long a failed load that may pass (storage, I/O) is remembered, so a broken repository
/// is not reloaded on every request. Refusals (400s) are remembered until the revision moves.
const FAILURE_TTL: Duration = Duration::from_secs(30);
/// Failed loads remembered at most; the oldest are forgotten beyond it.
const MAX_FAILURES: usize = 4096;
/// (repository, revision) pairs tracked before those of uncached models are forgotten.
const MAX_HEADS: usize = 10_000;
/// Tokens buffered between a generating worker and the response body.
const STREAM_BUFFER: usize = 64;
/// Rough copy-and-load speed used for the `estimated_time` of a loading model.
const LOAD_BYTES_PER_SECOND: f64 = 100e6;

/// Server-wide switches of the inference API.
#[derive(Debug, Clone)]
pub struct InferenceConfig {
    pub enabled: bool,
    /// Bytes of loaded weights kept in memory; least recently used models are dropped beyond it.
    pub memory_budget: u64,
    /// Requests running at once (each on a blocking thread).
    pub workers: usize,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            enabled: true,
            memory_budget: 2 << 30,
            workers: 2,
        }
    }
}

/// One inference call as the API received it.
#[derive(Debug, Clone)]
pub struct InferenceRequest {
    pub addr: RepoAddress,
    /// Branch, tag or commit; `main` when absent.
    pub revision: Option<String>,
    /// The `/pipeline/{task}` override; otherwise the model's task and the body's shape decide.
    pub task: Option<Task>,
    /// The whole JSON body (`{"inputs": …, "parameters": …, "options": …}`).
    pub body: Value,
    /// `X-Wait-For-Model: true` (the body's `options.wait_for_model` counts too).
    pub wait_for_model: bool,
}

/// An answer, or the Hub's "currently loading" (503 with `estimated_time`).
pub enum InferenceReply<T> {
    Ready(T),
    Loading {
        message: String,
        /// Seconds until the model is expected to be ready.
        estimated_time: f64,
    },
}

impl<T> InferenceReply<T> {
    /// The ready value, or the same "loading" answer for a reply of another type.
    fn ready<U>(self) -> std::result::Result<T, InferenceReply<U>> {
        match self {
            InferenceReply::Ready(t) => Ok(t),
            InferenceReply::Loading {
                message,
                estimated_time,
            } => Err(InferenceReply::Loading {
                message,
                estimated_time,
            }),
        }
    }
}

/// Server-sent events of a streamed generation: one JSON object per token (TGI's format), or
/// `{"error": …, "error_type": "generation"}` when generation fails midway.
pub type InferenceEvents = BoxStream<'static, Value>;

/// The events as server-sent-event frames (`data:{json}` and a blank line each), the framing
/// TGI and the Hub's inference API stream with; the HTTP layers add only their headers.
pub fn sse_frames(
    events: InferenceEvents,
) -> impl futures::Stream<Item = std::result::Result<bytes::Bytes, std::convert::Infallible>> + Send
{
    events.map(|event| Ok(bytes::Bytes::from(format!("data:{event}\n\n"))))
}

type Key = (i64, String);

/// The inference state the hub owns.
pub(crate) struct Engine {
    dir: PathBuf,
    config: RwLock<InferenceConfig>,
    workers: Arc<Semaphore>,
    permits: Mutex<usize>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, Slot>,
    /// The commit each (repository, revision) resolved to last, to drop models of old commits.
    heads: HashMap<Key, String>,
    next_load: u64,
}

enum Slot {
    Loading {
        id: u64,
        started: Instant,
        estimate: f64,
        done: watch::Receiver<bool>,
    },
    Ready {
        loaded: Arc<Loaded>,
        last_used: Instant,
    },
    Failed {
        error: Error,
        /// When it is tried again; None for a refusal, which the same commit cannot change.
        until: Option<Instant>,
        at: Instant,
    },
}

/// A loaded model and its queue of encoder requests waiting to be batched.
struct Loaded {
    model: Arc<Model>,
    bytes: u64,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// A drain task is running for this model; it takes every job queued meanwhile.
    draining: bool,
}

struct Job {
    body: Value,
    reply: oneshot::Sender<std::result::Result<Value, InferenceError>>,
}

/// What a load needs, worked out from the revision's files and card before it starts.
struct Plan {
    files: Vec<String>,
    pipeline_tag: Option<String>,
    estimate: f64,
}

enum Event {
    Token(Value),
    Failed(InferenceError),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The hub's error for a failure of the inference crate.
fn hub_error(e: InferenceError) -> Error {
    match e {
        InferenceError::Unsupported(m)
        | InferenceError::BadInput(m)
        | InferenceError::TooLarge(m) => Error::bad_request(m),
        InferenceError::Load(m) => {
            Error::bad_request(format!("The model could not be loaded: {m}"))
        }
        InferenceError::Internal(m) => Error::internal(format!("inference: {m}")),
    }
}

impl Engine {
    pub(crate) fn new(dir: PathBuf) -> Engine {
        let config = InferenceConfig::default();
        Engine {
            dir,
            workers: Arc::new(Semaphore::new(config.workers)),
            permits: Mutex::new(config.workers),
            config: RwLock::new(config),
            cache: Mutex::new(Cache::default()),
        }
    }

    fn config(&self) -> InferenceConfig {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A model's files, per repository and commit: two repositories may hold one commit whose
    /// pointers resolve to different objects (content is read only from the objects each
    /// repository owns), so one's snapshot never serves the other.
    fn snapshot_dir(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}-{}", key.0, key.1))
    }

    /// Records that `(repo, rev)` now means `commit`; models of a commit no revision names
    /// any more are dropped. Returns the snapshot folders to delete.
    fn note_head(&self, repo_id: i64, rev: &str, commit: &str) -> Vec<PathBuf> {
        let mut cache = lock(&self.cache);
        if cache.heads.len() >= MAX_HEADS {
            // Revisions of models no longer cached need no tracking.
            let Cache { heads, entries, .. } = &mut *cache;
            heads.retain(|(id, _), c| entries.contains_key(&(*id, c.clone())));
        }
        let old = cache
            .heads
            .insert((repo_id, rev.to_string()), commit.to_string());
        let Some(old) = old.filter(|o| o != commit) else {
            return Vec::new();
        };
        let still_named = cache
            .heads
            .iter()
            .any(|((id, _), c)| *id == repo_id && *c == old);
        if still_named {
            return Vec::new();
        }
        let gone = (repo_id, old);
        cache.entries.remove(&gone);
        self.retire_snapshots(&cache, vec![gone])
    }

    /// Moves the snapshot folders of `commits` that no cache entry uses any more out of the
    /// way, and returns where they went (to delete later). The caller holds the cache lock, so
    /// no load of the same commit can pick a folder up while it is being deleted.
    fn retire_snapshots(&self, cache: &Cache, keys: Vec<Key>) -> Vec<PathBuf> {
        let mut retired = Vec::new();
        for key in keys {
            if cache.entries.contains_key(&key) {
                continue;
            }
            let commit = &key.1;
            let mut nonce = [0u8; 8];
            // A failing random source only risks a name clash, which makes the rename fail.
            let _ = getrandom::fill(&mut nonce);
            let trash = self
                .dir
                .join(format!(".trash-{}-{commit}-{}", key.0, hex::encode(nonce)));
            match std::fs::rename(self.snapshot_dir(&key), &trash) {
                Ok(()) => retired.push(trash),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(%commit, error = %e, "could not retire an inference snapshot")
                }
            }
        }
        retired
    }

    /// The state of `key`'s model; an expired failure is forgotten (Missing: load again).
    fn lookup(&self, key: &Key) -> Lookup {
        let mut cache = lock(&self.cache);
        match cache.entries.get_mut(key) {
            None => Lookup::Missing,
            Some(Slot::Ready { loaded, last_used }) => {
                *last_used = Instant::now();
                Lookup::Ready(loaded.clone())
            }
            Some(Slot::Loading {
                started,
                estimate,
                done,
                ..
            }) => {
                let left = (*estimate - started.elapsed().as_secs_f64()).max(0.1);
                Lookup::Loading(done.clone(), (left * 100.0).round() / 100.0)
            }
            Some(Slot::Failed { error, until, .. })
                if until.is_none_or(|until| until > Instant::now()) =>
            {
                Lookup::Failed(error.clone())
            }
            Some(Slot::Failed { .. }) => {
                cache.entries.remove(key);
                Lookup::Missing
            }
        }
    }

    /// Drops least recently used models until the loaded weights fit the budget again.
    fn evict_over_budget(&self, cache: &mut Cache, keep: &Key) -> Vec<PathBuf> {
        let budget = self.config().memory_budget;
        let mut evicted = Vec::new();
        loop {
            let ready = cache.entries.iter().filter_map(|(k, s)| match s {
                Slot::Ready { loaded, last_used } => Some((k, loaded.bytes, *last_used)),
                _ => None,
            });
            let total: u64 = ready.clone().map(|(_, b, _)| b).sum();
            if total <= budget {
                break;
            }
            let victim = ready
                .filter(|(k, _, _)| *k != keep)
                .min_by_key(|(_, _, used)| *used)
                .map(|(k, _, _)| k.clone());
            let Some(victim) = victim else { break };
            cache.entries.remove(&victim);
            tracing::info!(repo = victim.0, commit = %victim.1, "inference model evicted (memory budget)");
            evicted.push(victim);
        }
        self.retire_snapshots(cache, evicted)
    }
}

/// Records a failed load of `key`. A refusal (a 400: the card, the checkpoint or its size is at
/// fault) is final for the commit and the server's settings, so it is kept until the revision
/// moves: a hostile repository is read once, not once per request or per 30 s. Other failures
/// are retried after [`FAILURE_TTL`].
fn remember_failure(cache: &mut Cache, key: &Key, error: Error) {
    let failures = cache
        .entries
        .values()
        .filter(|s| matches!(s, Slot::Failed { .. }))
        .count();
    if failures >= MAX_FAILURES {
        let oldest = cache
            .entries
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Failed { at, .. } => Some((k.clone(), *at)),
                _ => None,
            })
            .min_by_key(|(_, at)| *at)
            .map(|(k, _)| k);
        if let Some(k) = oldest {
            cache.entries.remove(&k);
        }
    }
    let now = Instant::now();
    let until = (error.kind != wharf_core::ErrorKind::BadRequest).then(|| now + FAILURE_TTL);
    cache.entries.insert(
        key.clone(),
        Slot::Failed {
            error,
            until,
            at: now,
        },
    );
}

/// Deletes retired snapshot folders in the background (a leftover is cleared at start).
fn remove_snapshots(dirs: Vec<PathBuf>) {
    if dirs.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for dir in dirs {
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove an inference snapshot");
            }
        }
    });
}

impl Hub {
    /// Whether this server answers inference requests (`serve --no-inference` switches it off).
    pub fn inference_enabled(&self) -> bool {
        self.inference.config().enabled
    }

    /// Whether a model card turns hosted inference off (`inference: false` in its metadata,
    /// as on the Hub). The inference API and the model page's widget both ask this, so they
    /// always decide alike.
    pub fn card_disables_inference(card_data: Option<&Value>) -> bool {
        card_data
            .and_then(|d| d.get("inference"))
            .is_some_and(|v| *v == Value::Bool(false))
    }

    /// Applies the server's inference settings and clears snapshots left by a previous run
    /// (nothing is loaded yet, so none of them is in use). Called once at start.
    pub fn configure_inference(&self, config: InferenceConfig) {
        let engine = &self.inference;
        let workers = config.workers.max(1);
        {
            let mut permits = lock(&engine.permits);
            if workers > *permits {
                engine.workers.add_permits(workers - *permits);
            } else {
                engine.workers.forget_permits(*permits - workers);
            }
            *permits = workers;
        }
        match engine.config.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        if let Err(e) = std::fs::remove_dir_all(&engine.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %engine.dir.display(), error = %e, "could not clear old inference snapshots");
        }
    }

    /// Runs one inference request and answers with the task's JSON.
    pub async fn infer(
        self: &Arc<Self>,
        caller: &Caller,
        req: InferenceRequest,
    ) -> Result<InferenceReply<Value>> {
        let loaded = match self.ready_model(caller, &req).await?.ready() {
            Ok(l) => l,
            Err(loading) => return Ok(loading),
        };
        let batched = req.task.is_none() && loaded.model.task().is_encoder();
        let answer = if batched {
            self.run_batched(loaded, req.body).await
        } else {
            self.run_single(loaded, req.task, req.body).await
        };
        answer.map(InferenceReply::Ready).map_err(hub_error)
    }

    /// Runs a text-generation request with `"stream": true`: the answer is a stream of token
    /// events, produced as the worker generates them.
    pub async fn infer_stream(
        self: &Arc<Self>,
        caller: &Caller,
        req: InferenceRequest,
    ) -> Result<InferenceReply<InferenceEvents>> {
        let loaded = match self.ready_model(caller, &req).await?.ready() {
            Ok(l) => l,
            Err(loading) => return Ok(loading),
        };
        let task = req.task.unwrap_or_else(|| loaded.model.task());
        if task != Task::TextGeneration {
            return Err(Error::bad_request(format!(
                "Streaming (\"stream\": true) is only available for text-generation; this request is {}",
                task.as_str()
            )));
        }
        self.run_stream(loaded, req.body).await
    }

    /// The loaded model for the request's repository and revision, or how long it will take.
    async fn ready_model(
        self: &Arc<Self>,
        caller: &Caller,
        req: &InferenceRequest,
    ) -> Result<InferenceReply<Arc<Loaded>>> {
        if !self.inference.config().enabled {
            return Err(Error::bad_request(
                "The inference API is switched off on this server",
            ));
        }
        if req.addr.repo_type != RepoType::Model {
            return Err(Error::repo_not_found());
        }
        let handle = self.repo(caller, &req.addr, Need::Download).await?;
        let rev = req.revision.as_deref().unwrap_or("main");
        let commit = self.resolve_revision(&handle, rev).await?;
        remove_snapshots(self.inference.note_head(handle.repo.id, rev, &commit));
        let key = (handle.repo.id, commit);
        let wait = req.wait_for_model || wants_to_wait(&req.body);
        // Missing → Loading → (waited) Ready or Failed: a few passes settle every race.
        for _ in 0..4 {
            match self.lookup(&key) {
                Lookup::Ready(loaded) => return Ok(InferenceReply::Ready(loaded)),
                Lookup::Failed(e) => return Err(e),
                Lookup::Loading(mut done, estimated_time) => {
                    if !wait {
                        return Ok(loading(&req.addr, estimated_time));
                    }
                    // The sender lives in the load task; it is dropped (an error) only once
                    // the slot is settled, so either way the next lookup sees the outcome.
                    let _ = done.wait_for(|d| *d).await;
                }
                Lookup::Missing => {
                    let estimate = self.start_load(caller, &handle, &key).await?;
                    if !wait {
                        return Ok(loading(&req.addr, estimate));
                    }
                }
            }
        }
        Ok(loading(&req.addr, 1.0))
    }

    fn lookup(&self, key: &Key) -> Lookup {
        self.inference.lookup(key)
    }

    /// Plans the load and starts it in the background (unless another request just did);
    /// returns the estimated seconds. A plan that fails (inference switched off by the card,
    /// pickle-only weights, too large) is remembered like a failed load.
    async fn start_load(
        self: &Arc<Self>,
        caller: &Caller,
        handle: &RepoHandle,
        key: &Key,
    ) -> Result<f64> {
        let plan = match self.plan_load(handle, &key.1).await {
            Ok(plan) => plan,
            Err(error) => {
                remember_failure(&mut lock(&self.inference.cache), key, error.clone());
                return Err(error);
            }
        };
        let (tx, rx) = watch::channel(false);
        let id = {
            let mut cache = lock(&self.inference.cache);
            if cache.entries.contains_key(key) {
                return Ok(plan.estimate);
            }
            cache.next_load += 1;
            let id = cache.next_load;
            let slot = Slot::Loading {
                id,
                started: Instant::now(),
                estimate: plan.estimate,
                done: rx,
            };
            cache.entries.insert(key.clone(), slot);
            id
        };
        let estimate = plan.estimate;
        let hub = self.clone();
        let (caller, addr, key) = (caller.clone(), address_of(handle), key.clone());
        tokio::spawn(async move {
            let outcome = hub.load(&caller, &addr, &key, plan).await;
            hub.settle(&key, id, outcome);
            let _ = tx.send(true);
        });
        Ok(estimate)
    }

    /// Reads the revision's card and file list: whether inference is allowed, the task, and
    /// the files to fetch.
    async fn plan_load(&self, handle: &RepoHandle, commit: &str) -> Result<Plan> {
        let card = card_state(handle.git.clone(), commit.to_string()).await?;
        let id = format!("{}/{}", handle.repo.namespace, handle.repo.name);
        if Hub::card_disables_inference(card.card_data.as_ref()) {
            return Err(Error::bad_request(format!(
                "Inference is turned off for {id}: its model card sets `inference: false`"
            )));
        }
        let paths: Vec<String> = card.files.iter().map(|e| e.path.clone()).collect();
        let files = wharf_inference::plan_files(&paths).map_err(hub_error)?;
        let size_of = |p: &String| {
            let e = card.files.iter().find(|e| &e.path == p);
            e.map_or(0, |e| e.lfs.as_ref().map_or(e.size, |l| l.size))
        };
        let total: u64 = files.iter().map(size_of).sum();
        let weights: u64 = files
            .iter()
            .filter(|p| p.ends_with(".safetensors"))
            .map(size_of)
            .sum();
        let budget = self.inference.config().memory_budget;
        if weights > budget {
            return Err(Error::bad_request(format!(
                "{id} needs about {} MB of memory for its weights; this server's inference budget is {} MB",
                weights >> 20,
                budget >> 20
            )));
        }
        Ok(Plan {
            files,
            pipeline_tag: card.derived.pipeline_tag,
            estimate: 0.5 + total as f64 / LOAD_BYTES_PER_SECOND,
        })
    }

    /// Copies the planned files into the snapshot folder and loads the model from it.
    async fn load(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        key: &Key,
        plan: Plan,
    ) -> Result<Arc<Loaded>> {
        let t0 = Instant::now();
        let dir = self.materialize(caller, addr, key, &plan.files).await?;
        let tag = plan.pipeline_tag;
        // The crate checks the checkpoint against its limits and its estimated memory (weights,
        // derived tables, tokenizer) against the budget before it reads any weights.
        let budget = self.inference.config().memory_budget;
        let model =
            tokio::task::spawn_blocking(move || Model::load_within(&dir, tag.as_deref(), budget))
                .await
                .map_err(Error::internal)?
                .map_err(|e| match e {
                    InferenceError::TooLarge(m) => {
                        Error::bad_request(format!("{}: {m}", addr.id()))
                    }
                    e => hub_error(e),
                })?;
        let bytes = model.approx_bytes();
        tracing::info!(
            model = %addr.id(), commit = %key.1, task = model.task().as_str(),
            architecture = model.architecture(), mb = bytes >> 20,
            ms = t0.elapsed().as_millis() as u64, "inference model loaded"
        );
        Ok(Arc::new(Loaded {
            model: Arc::new(model),
            bytes,
            queue: Mutex::new(Queue::default()),
        }))
    }

    /// Puts a finished load into the cache, unless its slot was dropped meanwhile (a newer
    /// commit, or a newer load of the same key).
    fn settle(&self, key: &Key, id: u64, outcome: Result<Arc<Loaded>>) {
        let engine = &self.inference;
        let mut cache = lock(&engine.cache);
        let ours = matches!(cache.entries.get(key), Some(Slot::Loading { id: i, .. }) if *i == id);
        let mut stale = Vec::new();
        match outcome {
            Ok(loaded) if ours => {
                let slot = Slot::Ready {
                    loaded,
                    last_used: Instant::now(),
                };
                cache.entries.insert(key.clone(), slot);
                stale = engine.evict_over_budget(&mut cache, key);
            }
            Err(error) if ours => {
                tracing::warn!(repo = key.0, commit = %key.1, error = %error, "inference model failed to load");
                remember_failure(&mut cache, key, error);
                stale = engine.retire_snapshots(&cache, vec![key.clone()]);
            }
            _ => {}
        }
        if !ours {
            stale = engine.retire_snapshots(&cache, vec![key.clone()]);
        }
        drop(cache);
        remove_snapshots(stale);
    }

    /// Queues an encoder request; a drain task folds everything queued for the model into one
    /// `infer_batch` call per worker slot.
    async fn run_batched(
        &self,
        loaded: Arc<Loaded>,
        body: Value,
    ) -> std::result::Result<Value, InferenceError> {
        let (reply, answer) = oneshot::channel();
        let start_drain = {
            let mut queue = lock(&loaded.queue);
            queue.jobs.push_back(Job { body, reply });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start_drain {
            tokio::spawn(drain(self.inference.workers.clone(), loaded));
        }
        answer
            .await
            .map_err(|_| InferenceError::Internal("the inference worker stopped".into()))?
    }

    /// Runs one request on a worker slot (generation, or a `/pipeline/{task}` override).
    async fn run_single(
        &self,
        loaded: Arc<Loaded>,
        task: Option<Task>,
        body: Value,
    ) -> std::result::Result<Value, InferenceError> {
        let permit = self.inference.workers.clone().acquire_owned().await;
        let permit = permit.map_err(|e| InferenceError::Internal(e.to_string()))?;
        let model = loaded.model.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match task {
                Some(task) => model.infer_as(task, &body),
                None => model.infer(&body),
            }
        })
        .await
        .map_err(|e| InferenceError::Internal(e.to_string()))?
    }

    /// Generates on a worker slot, sending each token through a channel. Errors before the
    /// first token become the HTTP answer; later ones an error event.
    async fn run_stream(
        &self,
        loaded: Arc<Loaded>,
        body: Value,
    ) -> Result<InferenceReply<InferenceEvents>> {
        let permit = self.inference.workers.clone().acquire_owned().await;
        let permit = permit.map_err(Error::internal)?;
        let (tx, mut rx) = mpsc::channel::<Event>(STREAM_BUFFER);
        let model = loaded.model.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // A closed channel means the client went away: stop generating.
            let mut on_token = |t: &wharf_inference::StreamToken| {
                tx.blocking_send(Event::Token(t.to_json())).is_ok()
            };
            if let Err(e) = model.generate_stream(&body, &mut on_token) {
                let _ = tx.blocking_send(Event::Failed(e));
            }
        });
        let first = match rx.recv().await {
            // Every generation sends a token or an error: a silent end is a dead worker.
            None => return Err(Error::internal("the inference worker stopped")),
            Some(Event::Failed(e)) => return Err(hub_error(e)),
            Some(Event::Token(v)) => v,
        };
        let rest = futures::stream::unfold(rx, |mut rx| async move {
            let event = rx.recv().await?;
            Some((event_json(event), rx))
        });
        Ok(InferenceReply::Ready(
            futures::stream::once(async move { first })
                .chain(rest)
                .boxed(),
        ))
    }

    /// Copies `files` at the key's commit into `{data}/inference/{repo id}-{commit}/`: into a
    /// temp folder first, every file fsynced, then renamed, so a crash never leaves a half
    /// snapshot behind.
    async fn materialize(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        key: &Key,
        files: &[String],
    ) -> Result<PathBuf> {
        let root = &self.inference.dir;
        let commit = key.1.as_str();
        let dir = self.inference.snapshot_dir(key);
        if tokio::fs::try_exists(&dir).await? {
            return Ok(dir);
        }
        tokio::fs::create_dir_all(root).await?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(Error::internal)?;
        let tmp = root.join(format!(".tmp-{commit}-{}", hex::encode(nonce)));
        let filled = self.fill_snapshot(caller, addr, commit, files, &tmp).await;
        let renamed = match filled {
            Ok(()) => tokio::fs::rename(&tmp, &dir).await,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&tmp).await;
                return Err(e);
            }
        };
        if let Err(e) = renamed {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            // Another load of the same repository and commit finished first.
            if !tokio::fs::try_exists(&dir).await? {
                return Err(e.into());
            }
        }
        sync_dir(root.clone()).await?;
        Ok(dir)
    }

    async fn fill_snapshot(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        commit: &str,
        files: &[String],
        tmp: &Path,
    ) -> Result<()> {
        tokio::fs::create_dir_all(tmp).await?;
        let mut dirs = vec![tmp.to_path_buf()];
        for path in files {
            let path = normalize_repo_path(path)?;
            let target = tmp.join(&path);
            if let Some(parent) = target.parent().filter(|p| !dirs.iter().any(|d| d == p)) {
                tokio::fs::create_dir_all(parent).await?;
                dirs.push(parent.to_path_buf());
            }
            self.copy_file(caller, addr, commit, &path, &target).await?;
        }
        for dir in dirs {
            sync_dir(dir).await?;
        }
        Ok(())
    }

    async fn copy_file(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        commit: &str,
        path: &str,
        target: &Path,
    ) -> Result<()> {
        let (_, content) = self.resolve_file(caller, addr, commit, path).await?;
        let content = content.ok_or_else(|| Error::entry_not_found(path))?;
        let mut stream = self.read_file(&content, None).await?;
        let mut file = tokio::fs::File::create(target).await?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?).await?;
        }
        file.sync_all().await?;
        Ok(())
    }
}

enum Lookup {
    Missing,
    Ready(Arc<Loaded>),
    Loading(watch::Receiver<bool>, f64),
    Failed(Error),
}

/// Takes what is queued for a model, one batch per worker slot, until the queue is empty.
async fn drain(workers: Arc<Semaphore>, loaded: Arc<Loaded>) {
    loop {
        // Waiting for a slot first lets more requests join the batch.
        let Ok(permit) = workers.clone().acquire_owned().await else {
            return;
        };
        let jobs: Vec<Job> = {
            let mut queue = lock(&loaded.queue);
            let n = queue.jobs.len().min(MAX_BATCH);
            if n == 0 {
                queue.draining = false;
                return;
            }
            queue.jobs.drain(..n).collect()
        };
        tracing::debug!(requests = jobs.len(), "inference batch");
        let (bodies, replies): (Vec<Value>, Vec<_>) =
            jobs.into_iter().map(|j| (j.body, j.reply)).unzip();
        let model = loaded.model.clone();
        let results = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            model.infer_batch(&bodies)
        })
        .await;
        let mut results = match results {
            Ok(r) => r.into_iter(),
            Err(e) => {
                tracing::error!(error = %e, "inference batch worker failed");
                Vec::new().into_iter()
            }
        };
        for reply in replies {
            let answer = results
                .next()
                .unwrap_or_else(|| Err(InferenceError::Internal("no answer in the batch".into())));
            let _ = reply.send(answer);
        }
    }
}

fn event_json(event: Event) -> Value {
    match event {
        Event::Token(v) => v,
        Event::Failed(e) => {
            let message = match hub_error(e) {
                err if err.kind == wharf_core::ErrorKind::Internal => "Internal error".to_string(),
                err => err.message,
            };
            json!({ "error": message, "error_type": "generation" })
        }
    }
}

fn loading<T>(addr: &RepoAddress, estimated_time: f64) -> InferenceReply<T> {
    InferenceReply::Loading {
        message: format!("Model {} is currently loading", addr.id()),
        estimated_time,
    }
}

/// `{"options": {"wait_for_model": true}}` in the body.
fn wants_to_wait(body: &Value) -> bool {
    body.pointer("/options/wait_for_model")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The address the repository has now (the request may have used a former name).
fn address_of(handle: &RepoHandle) -> RepoAddress {
    let r = &handle.repo;
    RepoAddress::new(r.repo_type, &r.namespace, &r.name)
}

/// fsyncs a folder so the entries just created or renamed in it survive a crash.
async fn sync_dir(dir: PathBuf) -> Result<()> {
    crate::blocking(move || Ok(std::fs::File::open(&dir)?.sync_all()?)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_flag_comes_from_options() {
        assert!(wants_to_wait(
            &json!({"inputs": "x", "options": {"wait_for_model": true}})
        ));
        assert!(!wants_to_wait(
            &json!({"inputs": "x", "options": {"wait_for_model": "yes"}})
        ));
        assert!(!wants_to_wait(&json!({"inputs": "x"})));
    }

    #[test]
    fn inference_errors_map_to_hub_errors() {
        let e = hub_error(InferenceError::Unsupported("only safetensors".into()));
        assert_eq!(e.kind, wharf_core::ErrorKind::BadRequest);
        assert_eq!(e.message, "only safetensors");
        let e = hub_error(InferenceError::Internal("candle exploded".into()));
        assert_eq!(e.kind, wharf_core::ErrorKind::Internal);
        assert_eq!(e.message, "Internal error");
    }

    #[test]
    fn one_rule_reads_inference_false() {
        assert!(Hub::card_disables_inference(Some(
            &json!({"inference": false})
        )));
        assert!(!Hub::card_disables_inference(Some(
            &json!({"inference": true})
        )));
        assert!(!Hub::card_disables_inference(Some(
            &json!({"inference": "false"})
        )));
        assert!(!Hub::card_disables_inference(Some(
            &json!({"pipeline_tag": "fill-mask"})
        )));
        assert!(!Hub::card_disables_inference(None));
    }

    #[test]
    fn refusals_are_remembered_until_the_revision_moves() {
        let mut cache = Cache::default();
        let refused = (1, "aaa".to_string());
        remember_failure(&mut cache, &refused, Error::bad_request("too many layers"));
        let flaky = (1, "bbb".to_string());
        remember_failure(&mut cache, &flaky, Error::internal("disk"));
        assert!(matches!(
            cache.entries.get(&refused),
            Some(Slot::Failed { until: None, .. })
        ));
        assert!(matches!(
            cache.entries.get(&flaky),
            Some(Slot::Failed { until: Some(_), .. })
        ));
        // Bounded: the oldest failures are forgotten first.
        for i in 0..MAX_FAILURES as i64 {
            remember_failure(&mut cache, &(i + 10, "c".into()), Error::bad_request("x"));
        }
        assert_eq!(cache.entries.len(), MAX_FAILURES);
        assert!(!cache.entries.contains_key(&refused));
        assert!(!cache.entries.contains_key(&flaky));
    }

    #[test]
    fn a_remembered_refusal_answers_without_loading() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let engine = Engine::new(tmp.path().to_path_buf());
        let (refused, flaky) = ((7, "abc".to_string()), (7, "def".to_string()));
        remember_failure(&mut lock(&engine.cache), &refused, Error::bad_request("no"));
        remember_failure(&mut lock(&engine.cache), &flaky, Error::internal("disk"));
        if let Some(Slot::Failed { until, .. }) = lock(&engine.cache).entries.get_mut(&flaky) {
            *until = Some(Instant::now());
        }
        assert!(matches!(engine.lookup(&refused), Lookup::Failed(e) if e.message == "no"));
        // A failure that may pass is tried again once it expires.
        assert!(matches!(engine.lookup(&flaky), Lookup::Missing));
    }

    #[test]
    fn models_of_commits_no_revision_names_are_dropped() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let engine = Engine::new(tmp.path().to_path_buf());
        std::fs::create_dir_all(tmp.path().join("1-aaa")).expect("snapshot dir");
        assert!(engine.note_head(1, "main", "aaa").is_empty());
        lock(&engine.cache).entries.insert(
            (1, "aaa".into()),
            Slot::Failed {
                error: Error::bad_request("x"),
                until: Some(Instant::now()),
                at: Instant::now(),
            },
        );
        // A second revision naming the same commit keeps it; moving main alone does not drop it.
        assert!(engine.note_head(1, "v1", "aaa").is_empty());
        assert!(engine.note_head(1, "main", "bbb").is_empty());
        let retired = engine.note_head(1, "v1", "ccc");
        assert!(lock(&engine.cache).entries.is_empty());
        // The snapshot is moved aside at once, so a new load of "aaa" cannot pick it up.
        assert_eq!(retired.len(), 1);
        assert!(retired[0].is_dir() && !tmp.path().join("1-aaa").exists());
    }
}
