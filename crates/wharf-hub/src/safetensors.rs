//! Safetensors headers as the repository pages show them: the parameter summary of a model
//! page and the tensor table of one file. Anyone may open a model page, so its cost is bounded:
//! a header is parsed once per content (LFS oid or git blob id, kept in a bounded cache), a
//! view looks at no more than [`SUMMARY_LIMITS`] files and reads no more than its byte budget
//! from storage, and a summary cut short says so ([`SafetensorsSummary::complete`]). Content is
//! only read from tree entries vetted by [`Hub::vet_pointers`], so a pointer naming another
//! repository's object reads nothing of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use wharf_blob::ByteRange;
use wharf_core::{Error, Result, normalize_repo_path};
use wharf_git::{EntryKind, GitRepo, TreeEntry};

use crate::access::Need;
use crate::page_cache::{BoundedCache, CacheStats};
use crate::web::collect_stream;
use crate::{Caller, Hub, RepoAddress, blocking};
use wharf_core::safetensors::parse_header;

/// Parsed headers kept in memory, weighed by their size in the file.
const CACHE_BYTES: usize = 64 << 20;
/// What a cached "this file has no usable header" weighs.
const EMPTY_ENTRY_WEIGHT: usize = 64;
/// The largest header one file's page reads (a few hundred KB in real checkpoints): larger
/// ones would cost every anonymous view a parse, as they would not fit the cache either.
pub const MAX_VIEWED_HEADER: u64 = 16 << 20;

/// What one model page may spend on its parameter summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryLimits {
    /// `*.safetensors` files looked at (in path order).
    pub max_files: usize,
    /// Bytes read from storage for headers not yet in the cache (a git blob is read whole).
    pub max_read: u64,
}

/// The model page's limits: enough for any real checkpoint (a few hundred shards with
/// headers of a few hundred KB), far below what an anonymous view could otherwise cost.
pub const SUMMARY_LIMITS: SummaryLimits = SummaryLimits {
    max_files: 1000,
    max_read: 16 << 20,
};

/// Parameter counts of a revision's safetensors files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SafetensorsSummary {
    /// Elements per dtype (`"F32"`, `"BF16"`, …), summed over every tensor of every file.
    pub parameters: BTreeMap<String, u64>,
    /// The sum over all dtypes.
    pub total: u64,
    /// Files whose parameters were counted.
    pub files: usize,
    /// Distinct headers (by content) among those files: each was parsed at most once.
    pub distinct_headers: usize,
    /// False when some files were not looked at (over [`SummaryLimits`]): not all counted.
    pub complete: bool,
}

/// One tensor of a safetensors header: name, dtype, shape.
pub(crate) use wharf_core::safetensors::TensorInfo;

/// A parsed header, as cached.
pub(crate) struct ParsedHeader {
    /// Sorted by name.
    tensors: Vec<TensorInfo>,
    /// Elements per dtype; None when a count overflows.
    counts: Option<BTreeMap<String, u64>>,
}

/// Parsed headers by content id; `None` for content that has no usable header.
pub(crate) type HeaderCache = BoundedCache<Option<ParsedHeader>>;

pub(crate) fn new_header_cache() -> HeaderCache {
    BoundedCache::new(CACHE_BYTES)
}

/// What looking up one file's header came to.
enum Lookup {
    Header(Arc<Option<ParsedHeader>>),
    /// Reading it would go past the view's byte budget.
    OverBudget,
    /// Its content is not in storage (nothing to cache: it may arrive later).
    Absent,
}

/// Bytes a request may still read.
struct ReadBudget {
    left: u64,
}

impl ReadBudget {
    fn take(&mut self, n: u64) -> bool {
        match self.left.checked_sub(n) {
            Some(rest) => {
                self.left = rest;
                true
            }
            None => false,
        }
    }
}

/// Parses a safetensors JSON header; None when it is malformed in any way.
fn parse_safetensors_header(bytes: &[u8]) -> Option<Vec<TensorInfo>> {
    parse_header(bytes).ok()
}

/// Elements per dtype of one file's tensors; None when a count overflows.
fn count_parameters(tensors: &[TensorInfo]) -> Option<BTreeMap<String, u64>> {
    wharf_core::safetensors::count_parameters(tensors).ok()
}

/// The length announced by a safetensors file's first 8 bytes, if usable.
fn header_len(prefix: &[u8], file_size: u64) -> Option<u64> {
    wharf_core::safetensors::header_len(prefix, file_size).ok()
}

/// The header bytes of a whole safetensors file held in memory, if usable.
fn header_of(data: &[u8]) -> Option<&[u8]> {
    let n = header_len(data, data.len() as u64)?;
    data.get(8..8usize.checked_add(usize::try_from(n).ok()?)?)
}

/// The key naming an entry's content: its (vetted) LFS oid, else its git blob id.
fn content_key(entry: &TreeEntry) -> String {
    match &entry.lfs {
        Some(pointer) => format!("lfs:{}", pointer.oid),
        None => format!("git:{}", entry.oid),
    }
}

/// Adds one file's counts to `summary`; false (and nothing added) when a sum would overflow.
fn add_counts(summary: &mut SafetensorsSummary, counts: &BTreeMap<String, u64>) -> bool {
    let mut next = summary.parameters.clone();
    let mut total = summary.total;
    for (dtype, n) in counts {
        let slot = next.entry(dtype.clone()).or_default();
        match (slot.checked_add(*n), total.checked_add(*n)) {
            (Some(s), Some(t)) => {
                *slot = s;
                total = t;
            }
            _ => return false,
        }
    }
    summary.parameters = next;
    summary.total = total;
    true
}

impl Hub {
    /// Parameter counts per dtype over the `*.safetensors` files at `rev` (LFS or regular),
    /// reading only each file's header, within [`SUMMARY_LIMITS`]. Files whose header is
    /// missing, malformed or over 100 MiB are skipped; None when no file could be counted.
    pub async fn safetensors_summary(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
    ) -> Result<Option<SafetensorsSummary>> {
        self.safetensors_summary_within(caller, addr, rev, SUMMARY_LIMITS)
            .await
    }

    /// [`safetensors_summary`](Hub::safetensors_summary) under other limits.
    pub async fn safetensors_summary_within(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        limits: SummaryLimits,
    ) -> Result<Option<SafetensorsSummary>> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let commit = self.resolve_revision(&handle, rev).await?;
        // The revision's file list as the page already has it (listed once per commit).
        let state = self.cached_card_state(&handle.repo, &commit).await?;
        let mut files: Vec<TreeEntry> = state
            .files
            .iter()
            .filter(|e| e.kind == EntryKind::File && e.path.ends_with(".safetensors"))
            .cloned()
            .collect();
        let mut summary = SafetensorsSummary {
            complete: files.len() <= limits.max_files,
            ..SafetensorsSummary::default()
        };
        files.truncate(limits.max_files);
        self.vet_pointers(handle.repo.id, &mut files).await?;
        let mut budget = ReadBudget {
            left: limits.max_read,
        };
        let mut distinct = BTreeSet::new();
        for entry in &files {
            let header = match self.header_for(&handle.git, entry, &mut budget).await? {
                Lookup::Header(header) => header,
                Lookup::OverBudget => {
                    summary.complete = false;
                    continue;
                }
                Lookup::Absent => continue,
            };
            let Some(counts) = header.as_ref().as_ref().and_then(|h| h.counts.as_ref()) else {
                continue;
            };
            if add_counts(&mut summary, counts) {
                summary.files += 1;
                distinct.insert(content_key(entry));
            }
        }
        summary.distinct_headers = distinct.len();
        Ok((summary.files > 0).then_some(summary))
    }

    /// How often the parsed-header cache answered from memory, and how often a header was read
    /// and parsed.
    pub fn safetensors_cache_stats(&self) -> CacheStats {
        self.safetensors_headers.stats()
    }

    /// The tensors (name, dtype, shape; sorted by name) of one safetensors file at `rev`: its
    /// content, so gated repositories show it only to those who may download.
    /// `EntryNotFound` when there is no such file; None when its header cannot be read or is
    /// larger than [`MAX_VIEWED_HEADER`].
    pub async fn file_safetensors_header(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        path: &str,
    ) -> Result<Option<Vec<TensorInfo>>> {
        self.file_safetensors_header_within(caller, addr, rev, path, MAX_VIEWED_HEADER)
            .await
    }

    async fn file_safetensors_header_within(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        path: &str,
        max_header: u64,
    ) -> Result<Option<Vec<TensorInfo>>> {
        let handle = self.repo(caller, addr, Need::Download).await?;
        let commit = self.resolve_revision(&handle, rev).await?;
        let path = normalize_repo_path(path)?;
        let git = handle.git.clone();
        let p = path.clone();
        let entry = blocking(move || git.entry(&commit, &p)).await?;
        let Some(entry) = entry.filter(|e| e.kind == EntryKind::File) else {
            return Err(Error::entry_not_found(&path));
        };
        let entry = self.vet_pointer(handle.repo.id, entry).await?;
        // The header and its 8-byte length.
        let mut budget = ReadBudget {
            left: max_header.saturating_add(8),
        };
        Ok(
            match self.header_for(&handle.git, &entry, &mut budget).await? {
                Lookup::Header(header) => header.as_ref().as_ref().map(|h| h.tensors.clone()),
                Lookup::OverBudget | Lookup::Absent => None,
            },
        )
    }

    /// One (vetted) entry's parsed header: from the cache, else read within `budget`, parsed
    /// and cached under its content id.
    async fn header_for(
        &self,
        git: &Arc<GitRepo>,
        entry: &TreeEntry,
        budget: &mut ReadBudget,
    ) -> Result<Lookup> {
        let key = content_key(entry);
        if let Some(hit) = self.safetensors_headers.get(&key) {
            return Ok(Lookup::Header(hit));
        }
        let bytes = match &entry.lfs {
            Some(pointer) => self.lfs_header_bytes(&pointer.oid, budget).await?,
            None => git_header_bytes(git, entry, budget).await?,
        };
        let bytes = match bytes {
            Read::Bytes(bytes) => bytes,
            Read::OverBudget => return Ok(Lookup::OverBudget),
            Read::Absent => return Ok(Lookup::Absent),
        };
        let weight = bytes.as_ref().map_or(EMPTY_ENTRY_WEIGHT, |b| {
            b.len().saturating_add(EMPTY_ENTRY_WEIGHT)
        });
        let parsed = match bytes {
            Some(bytes) => blocking(move || Ok(parse_safetensors_header(&bytes))).await?,
            None => None,
        };
        let parsed = parsed.map(|mut tensors| {
            tensors.sort_by(|a, b| a.0.cmp(&b.0));
            ParsedHeader {
                counts: count_parameters(&tensors),
                tensors,
            }
        });
        Ok(Lookup::Header(
            self.safetensors_headers.insert(key, parsed, weight),
        ))
    }

    /// The header bytes of an LFS object: its first 8 bytes, then the length they announce.
    async fn lfs_header_bytes(&self, oid: &str, budget: &mut ReadBudget) -> Result<Read> {
        let Some(size) = self.lfs_object_size(oid).await? else {
            return Ok(Read::Absent);
        };
        if size < 8 {
            return Ok(Read::Bytes(None));
        }
        if !budget.take(8) {
            return Ok(Read::OverBudget);
        }
        let prefix = self
            .read_lfs_object(oid, Some(ByteRange { start: 0, end: 7 }))
            .await?;
        let prefix = collect_stream(prefix, 8).await?;
        let Some(n) = header_len(&prefix, size) else {
            return Ok(Read::Bytes(None));
        };
        if !budget.take(n) {
            return Ok(Read::OverBudget);
        }
        let range = ByteRange {
            start: 8,
            end: 8 + n - 1,
        };
        let body = self.read_lfs_object(oid, Some(range)).await?;
        Ok(Read::Bytes(Some(collect_stream(body, n).await?)))
    }
}

/// What reading a header's bytes came to: the bytes (None when the content has no usable
/// header), or why nothing was read.
enum Read {
    Bytes(Option<Vec<u8>>),
    OverBudget,
    Absent,
}

/// The header bytes of a regular git file (read whole: git blobs are small).
async fn git_header_bytes(
    git: &Arc<GitRepo>,
    entry: &TreeEntry,
    budget: &mut ReadBudget,
) -> Result<Read> {
    if !budget.take(entry.size) {
        return Ok(Read::OverBudget);
    }
    let git = git.clone();
    let oid = entry.oid.clone();
    let data = blocking(move || git.read_blob(&oid)).await?;
    Ok(Read::Bytes(header_of(&data).map(<[u8]>::to_vec)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::test_support::{body, hub, safetensors, user_caller};
    use crate::{CommitHeader, CommitOp};
    use wharf_core::{ErrorKind, RepoType};

    #[tokio::test]
    async fn safetensors_parameters() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        hub.create_repo(&alice, RepoType::Model, None, "m", false)
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        assert_eq!(
            hub.safetensors_summary(&alice, &addr, "main")
                .await
                .expect("summary"),
            None
        );

        let shard1 = safetensors(&[("a.weight", "F32", &[2, 3]), ("a.bias", "F32", &[3])]);
        let shard2 = safetensors(&[("b", "BF16", &[10, 10]), ("scalar", "F32", &[])]);
        let mut staged = Vec::new();
        for (path, data) in [
            ("model-00001-of-00002.safetensors", shard1),
            ("model-00002-of-00002.safetensors", shard2),
        ] {
            staged.push(
                hub.upload_file(&alice, &addr, path, body(data))
                    .await
                    .expect("upload"),
            );
        }
        assert!(staged.iter().all(|s| s.lfs));
        let mut ops = vec![
            // A regular (non-LFS) safetensors file is read from git.
            CommitOp::File {
                path: "small/tiny.safetensors".into(),
                content: safetensors(&[("t", "I8", &[5])]),
            },
            // Malformed files are skipped, never an error.
            CommitOp::File {
                path: "broken.safetensors".into(),
                content: b"\xff\xff\xff\xff\xff\xff\xff\xffnot json".to_vec(),
            },
            CommitOp::File {
                path: "short.safetensors".into(),
                content: b"abc".to_vec(),
            },
            CommitOp::File {
                path: "bad_json.safetensors".into(),
                content: {
                    let mut v = 5u64.to_le_bytes().to_vec();
                    v.extend_from_slice(b"{nope");
                    v
                },
            },
            CommitOp::File {
                path: "huge_shape.safetensors".into(),
                content: {
                    let header = format!(
                        "{{\"h\": {{\"dtype\": \"F32\", \"shape\": [{}, 2], \"data_offsets\": [0, 0]}}}}",
                        u64::MAX
                    );
                    let mut v = (header.len() as u64).to_le_bytes().to_vec();
                    v.extend_from_slice(header.as_bytes());
                    v
                },
            },
        ];
        ops.push(CommitOp::LfsFile {
            path: "model-00001-of-00002.safetensors".into(),
            oid: staged[0].oid.clone(),
            size: None,
        });
        ops.push(CommitOp::LfsFile {
            path: "model-00002-of-00002.safetensors".into(),
            oid: staged[1].oid.clone(),
            size: None,
        });
        hub.commit(&alice, &addr, "main", CommitHeader::default(), ops, false)
            .await
            .expect("commit");

        let summary = hub
            .safetensors_summary(&alice, &addr, "main")
            .await
            .expect("summary")
            .expect("some");
        let expected: BTreeMap<String, u64> = [("BF16", 100), ("F32", 10), ("I8", 5)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(summary.parameters, expected);
        assert_eq!(summary.total, 115);
        assert_eq!((summary.files, summary.distinct_headers), (3, 3));
        assert!(summary.complete);

        let tensors = hub
            .file_safetensors_header(&alice, &addr, "main", "model-00001-of-00002.safetensors")
            .await
            .expect("header")
            .expect("some");
        assert_eq!(
            tensors,
            vec![
                ("a.bias".to_string(), "F32".to_string(), vec![3]),
                ("a.weight".to_string(), "F32".to_string(), vec![2, 3]),
            ]
        );
        let tiny = hub
            .file_safetensors_header(&alice, &addr, "main", "small/tiny.safetensors")
            .await
            .expect("header");
        assert_eq!(tiny.map(|t| t.len()), Some(1));
        for broken in [
            "broken.safetensors",
            "short.safetensors",
            "bad_json.safetensors",
        ] {
            assert_eq!(
                hub.file_safetensors_header(&alice, &addr, "main", broken)
                    .await
                    .expect("no error"),
                None,
                "{broken}"
            );
        }
        let e = hub
            .file_safetensors_header(&alice, &addr, "main", "missing.safetensors")
            .await
            .expect_err("missing");
        assert_eq!(e.kind, ErrorKind::EntryNotFound);
    }

    /// A model whose `paths` all name one LFS safetensors object with a header of about
    /// `header_bytes`.
    async fn many_paths_to_one_header(
        hub: &Hub,
        alice: &Caller,
        paths: usize,
        header_bytes: usize,
    ) -> RepoAddress {
        hub.create_repo(alice, RepoType::Model, None, "many", false)
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "many");
        let tensors: Vec<(String, &str, &[u64])> = (0..header_bytes / 80)
            .map(|i| (format!("layer.{i}.weight"), "F16", &[2u64, 2][..]))
            .collect();
        let tensors: Vec<(&str, &str, &[u64])> = tensors
            .iter()
            .map(|(n, d, s)| (n.as_str(), *d, *s))
            .collect();
        let staged = hub
            .upload_file(alice, &addr, "w.safetensors", body(safetensors(&tensors)))
            .await
            .expect("upload");
        let ops = (0..paths)
            .map(|i| CommitOp::LfsFile {
                path: format!("copies/{i:03}.safetensors"),
                oid: staged.oid.clone(),
                size: None,
            })
            .collect();
        hub.commit(alice, &addr, "main", CommitHeader::default(), ops, false)
            .await
            .expect("commit");
        addr
    }

    #[tokio::test]
    async fn one_header_behind_many_paths_is_parsed_once() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let addr = many_paths_to_one_header(&hub, &alice, 200, 64 << 10).await;
        let tensors = (64 << 10) / 80;
        for view in 1..=2u64 {
            let summary = hub
                .safetensors_summary(&Caller::anonymous(), &addr, "main")
                .await
                .expect("summary")
                .expect("some");
            assert_eq!(summary.total, 200 * 4 * tensors as u64);
            assert_eq!((summary.files, summary.distinct_headers), (200, 1));
            assert!(summary.complete);
            let stats = hub.safetensors_cache_stats();
            assert_eq!(stats.misses, 1, "read and parsed once, view {view}");
            assert_eq!(stats.hits, 200 * view - 1);
        }
    }

    #[tokio::test]
    async fn a_view_stops_at_its_limits_and_says_so() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let addr = many_paths_to_one_header(&hub, &alice, 5, 4 << 10).await;
        // A header larger than what the view may read is not read at all.
        let no_bytes = SummaryLimits {
            max_files: 10,
            max_read: 1 << 10,
        };
        let summary = hub
            .safetensors_summary_within(&alice, &addr, "main", no_bytes)
            .await
            .expect("summary");
        assert_eq!(summary, None);
        assert_eq!(
            hub.safetensors_cache_stats(),
            CacheStats { hits: 0, misses: 5 },
            "nothing was read, so nothing was cached"
        );

        let few_files = SummaryLimits {
            max_files: 3,
            max_read: 1 << 20,
        };
        let summary = hub
            .safetensors_summary_within(&alice, &addr, "main", few_files)
            .await
            .expect("summary")
            .expect("some");
        assert_eq!((summary.files, summary.distinct_headers), (3, 1));
        assert!(!summary.complete, "not all files counted");
    }

    #[tokio::test]
    async fn a_file_page_reads_no_header_over_its_limit() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let addr = many_paths_to_one_header(&hub, &alice, 1, 4 << 10).await;
        let path = "copies/000.safetensors";
        let shown = hub
            .file_safetensors_header_within(&alice, &addr, "main", path, 1 << 10)
            .await
            .expect("header");
        assert_eq!(shown, None, "over the limit: not read");
        assert_eq!(hub.safetensors_cache_stats().misses, 1);
        let shown = hub
            .file_safetensors_header(&alice, &addr, "main", path)
            .await
            .expect("header");
        assert_eq!(shown.map(|t| t.len()), Some((4 << 10) / 80));
    }

    #[tokio::test]
    async fn pointers_to_objects_of_other_repositories_read_nothing() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        let secret = many_paths_to_one_header(&hub, &alice, 1, 1 << 10).await;
        let info = hub.repo_info(&alice, &secret, None).await.expect("info");
        let pointer = info
            .files
            .iter()
            .find_map(|e| e.lfs.clone())
            .expect("an LFS file");
        hub.create_repo(&bob, RepoType::Model, None, "thief", false)
            .await
            .expect("create");
        let thief = RepoAddress::new(RepoType::Model, "bob", "thief");
        // A pointer-shaped regular file naming alice's object (as an old push could leave).
        let git = hub.repo(&bob, &thief, Need::Write).await.expect("repo").git;
        let text = pointer.to_text();
        blocking(move || {
            let head = git
                .ref_target("refs/heads/main")?
                .ok_or_else(|| Error::internal("no main"))?;
            let change = wharf_git::TreeChange::Upsert {
                path: "stolen.safetensors".into(),
                data: text.into_bytes(),
            };
            let author = wharf_git::Signature {
                name: "bob".into(),
                email: "bob@example.com".into(),
                time_ms: 0,
            };
            git.commit(
                "refs/heads/main",
                Some(&head),
                vec![change],
                &author,
                "steal",
            )
            .map(drop)
        })
        .await
        .expect("raw commit");
        assert_eq!(
            hub.safetensors_summary(&bob, &thief, "main")
                .await
                .expect("summary"),
            None
        );
        assert_eq!(
            hub.file_safetensors_header(&bob, &thief, "main", "stolen.safetensors")
                .await
                .expect("header"),
            None
        );
    }

    #[test]
    fn header_parsing_edge_cases() {
        assert_eq!(header_len(&[0; 4], 100), None);
        assert_eq!(header_len(&5u64.to_le_bytes(), 13), Some(5));
        assert_eq!(header_len(&5u64.to_le_bytes(), 12), None, "past the end");
        assert_eq!(header_len(&0u64.to_le_bytes(), 100), None);
        assert_eq!(header_len(&u64::MAX.to_le_bytes(), u64::MAX), None);
        assert_eq!(
            header_len(
                &(wharf_core::safetensors::MAX_SAFETENSORS_HEADER + 1).to_le_bytes(),
                u64::MAX
            ),
            None
        );
        assert!(parse_safetensors_header(b"[]").is_none());
        assert!(parse_safetensors_header(br#"{"a": {"dtype": "F32"}}"#).is_none());
        assert!(parse_safetensors_header(br#"{"a": {"dtype": "F32", "shape": [-1]}}"#).is_none());
        assert_eq!(
            parse_safetensors_header(br#"{"__metadata__": {"x": "y"}}"#),
            Some(Vec::new())
        );
        let t = vec![("x".to_string(), "F16".to_string(), vec![u64::MAX, 2])];
        assert!(count_parameters(&t).is_none());
    }
}
