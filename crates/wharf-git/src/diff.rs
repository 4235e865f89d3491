//! What changed between two commits, file by file with unified patches, and the history of one
//! path (`git log -- path`). A diff shown to anyone who asks (the commit and compare pages) runs
//! under [`DiffLimits`]: how many files it lists and patches, how large a file may be to get a
//! patch, how many blob bytes it reads and how long it runs. Whatever is past a limit is still
//! listed, marked [`Withheld`], but never read.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::diff::blob::unified_diff::{ConsumeHunk, ContextSize, DiffLineKind, HunkHeader};
use gix::diff::blob::{Algorithm, InternedInput, UnifiedDiff, diff_with_slider_heuristics};
use gix::objs::tree::{EntryKind as GitEntryKind, EntryMode};
use wharf_core::Result;
use wharf_core::lfs_pointer::{LfsPointer, MAX_POINTER_SIZE};

use crate::changes::{ChangeCache, Changes};
use crate::history::{LastCommitSearch, date_topo_parents, read_info};
use crate::odb::{self, internal};
use crate::{CommitInfo, GitRepo};

/// Patches are made only when both sides are at most this large.
const MAX_PATCH_SIDE: u64 = 1 << 20;
/// Lines of context around each change in a patch.
const CONTEXT_LINES: u32 = 3;
/// Blobs larger than [`MAX_PATCH_SIDE`] are sniffed for binary content on this many leading
/// bytes only (git's own heuristic looks at the first 8000 bytes).
const SNIFF_BYTES: usize = 8000;
/// Blobs larger than this are not read at all to classify them; they count as binary.
const MAX_SNIFFED_BLOB: u64 = 64 << 20;

/// What one diff may cost. The default is unbounded but for the fixed per-file rules (patches
/// for sides up to 1 MiB, blobs over 64 MiB never read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffLimits {
    /// Changed files listed; the walk stops after this many (see [`DiffReport::more_files`]).
    pub max_files: usize,
    /// Files given a patch; later text files are listed as [`Withheld::OverBudget`].
    pub max_patched_files: usize,
    /// A file gets a patch only when both sides are at most this large
    /// ([`Withheld::TooLarge`] otherwise).
    pub max_patch_side: u64,
    /// A file gets a patch only when both sides have at most this many lines (the diff's time
    /// grows faster than its line count on repetitive text).
    pub max_patch_lines: usize,
    /// A side larger than this is not read at all (not even to tell text from binary).
    pub max_read_side: u64,
    /// Blob bytes read for the whole diff; a side that would go past it is not read.
    pub max_total_bytes: u64,
    /// Time for the whole diff; once spent, the remaining files are listed without being read.
    pub max_time: Duration,
}

impl Default for DiffLimits {
    fn default() -> Self {
        DiffLimits {
            max_files: usize::MAX,
            max_patched_files: usize::MAX,
            max_patch_side: MAX_PATCH_SIDE,
            max_patch_lines: usize::MAX,
            max_read_side: MAX_SNIFFED_BLOB,
            max_total_bytes: u64::MAX,
            max_time: Duration::MAX,
        }
    }
}

/// Why a text file's patch is not in its [`FileDiff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// A side is larger than [`DiffLimits::max_patch_side`] or
    /// [`DiffLimits::max_patch_lines`] (or than what is read at all).
    TooLarge,
    /// The diff's budget (files patched, bytes read or time) was spent before this file.
    OverBudget,
}

/// A diff made under [`DiffLimits`].
#[derive(Debug, Clone, Default)]
pub struct DiffReport {
    /// The changed files listed, sorted by path.
    pub files: Vec<FileDiff>,
    /// More files changed than [`DiffLimits::max_files`]: they are not listed.
    pub more_files: bool,
    /// Some file was withheld because the budget ran out (not for its own size).
    pub over_budget: bool,
    /// The time budget ran out (the result depends on how busy the server was).
    pub timed_out: bool,
}

/// What a diff has spent so far against its limits.
struct Spend {
    limits: DiffLimits,
    started: Instant,
    bytes: u64,
    patched: usize,
    over_budget: bool,
    timed_out: bool,
}

impl Spend {
    fn new(limits: DiffLimits) -> Spend {
        Spend {
            limits,
            started: Instant::now(),
            bytes: 0,
            patched: 0,
            over_budget: false,
            timed_out: false,
        }
    }

    /// Whether the time budget is spent (remembered once it is).
    fn out_of_time(&mut self) -> bool {
        if !self.timed_out && self.started.elapsed() >= self.limits.max_time {
            self.timed_out = true;
            self.over_budget = true;
        }
        self.timed_out
    }

    /// Takes `n` bytes from the read budget; false (and nothing taken) when they do not fit.
    fn take_bytes(&mut self, n: u64) -> bool {
        match self.bytes.checked_add(n) {
            Some(total) if total <= self.limits.max_total_bytes => {
                self.bytes = total;
                true
            }
            _ => {
                self.over_budget = true;
                false
            }
        }
    }

    /// Takes one patch from the budget; false when none is left (or time is up).
    fn take_patch(&mut self) -> bool {
        if self.out_of_time() || self.patched >= self.limits.max_patched_files {
            self.over_budget = true;
            return false;
        }
        self.patched += 1;
        true
    }
}

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One changed file between two commits.
#[derive(Debug, Clone)]
pub struct FileDiff {
    /// Full path from the repository root.
    pub path: String,
    pub change: ChangeKind,
    /// Git blob id (40 hex digits) of the old side; None when added. For LFS files this is the
    /// pointer's blob id.
    pub old_oid: Option<String>,
    /// Git blob id of the new side; None when deleted.
    pub new_oid: Option<String>,
    /// Size of the old side in bytes (the real object's size for an LFS pointer); 0 when added.
    pub old_size: u64,
    /// Size of the new side in bytes (the real object's size for an LFS pointer); 0 when deleted.
    pub new_size: u64,
    /// Either side has a NUL byte or is not UTF-8 (for blobs over 1 MiB only their first 8000
    /// bytes are looked at; blobs over 64 MiB always count as binary).
    pub binary: bool,
    /// Either side is an LFS pointer.
    pub lfs: bool,
    /// The unified diff with 3 lines of context, for text files whose sides are both at most
    /// 1 MiB and neither is an LFS pointer. Only the hunks: it starts at the first `@@` line (no
    /// `---`/`+++` file header), and a side without a final newline is marked with git's
    /// `\ No newline at end of file` line. `Some("")` when only the file mode changed.
    pub patch: Option<String>,
    /// Why a file that is neither binary nor LFS has no patch.
    pub withheld: Option<Withheld>,
}

/// A file entry of a tree: blob or symlink, with its mode and id.
type Blob = (EntryMode, ObjectId);

struct RawChange {
    path: String,
    old: Option<Blob>,
    new: Option<Blob>,
}

impl GitRepo {
    /// Every file that differs between commit `old` (None = the empty tree) and commit `new`,
    /// sorted by path. Directories are expanded to the files below them; submodule links are
    /// left out. Renames show as a deletion and an addition.
    pub fn diff(&self, old: Option<&str>, new: &str) -> Result<Vec<FileDiff>> {
        Ok(self.diff_within(old, new, DiffLimits::default())?.files)
    }

    /// [`diff`](GitRepo::diff) under `limits`: past them files are listed without being read,
    /// or not listed at all (past [`DiffLimits::max_files`]).
    pub fn diff_within(
        &self,
        old: Option<&str>,
        new: &str,
        limits: DiffLimits,
    ) -> Result<DiffReport> {
        let repo = self.repo();
        let old_tree = match old {
            Some(sha) => Some(odb::commit_tree_and_parents(&repo, odb::commit_id(&repo, sha)?)?.0),
            None => None,
        };
        let new_tree = odb::commit_tree_and_parents(&repo, odb::commit_id(&repo, new)?)?.0;
        let mut spend = Spend::new(limits);
        let (mut changes, more_files) = tree_changes(&repo, old_tree, Some(new_tree), &mut spend)?;
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        let files = changes
            .into_iter()
            .map(|c| describe_change(&repo, c, &mut spend))
            .collect::<Result<Vec<_>>>()?;
        Ok(DiffReport {
            files,
            more_files,
            over_budget: spend.over_budget,
            timed_out: spend.timed_out,
        })
    }

    /// A page of the commits reachable from `from` that changed `path` (a file or a folder; ""
    /// is the whole tree), newest first, as `git log -- path` lists them: a commit identical for
    /// the path to one of its parents is left out and only that parent's side is followed; a
    /// commit that differs from all of its parents (or has none and contains the path) changed
    /// it. Returns whether more commits follow the page.
    pub fn path_log(
        &self,
        from: &str,
        path: &str,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<CommitInfo>, bool)> {
        let repo = self.repo();
        let tip = odb::commit_id(&repo, from)?;
        let Some(parts) = odb::components(path) else {
            return Ok((Vec::new(), false));
        };
        let order = date_topo_parents(&repo, tip)?;
        let mut probe = PathProbe {
            cache: &self.changes,
            search: LastCommitSearch::new(&repo),
            table: [parts.iter().map(|p| p.as_bytes()).collect()],
            joined: parts.join("/").into_bytes(),
        };
        // Commits on the simplified history; children always come before their parents in
        // `order`, so a commit's membership is settled by the time it is reached.
        let mut live: HashSet<ObjectId> = HashSet::from([tip]);
        let wanted = skip.saturating_add(limit);
        let mut hits = Vec::new();
        let mut more = false;
        for (id, parents) in order {
            if !live.contains(&id) {
                continue;
            }
            let mut same_parent = None;
            for parent in &parents {
                if !probe.differs(id, Some(*parent))? {
                    same_parent = Some(*parent);
                    break;
                }
            }
            if let Some(parent) = same_parent {
                live.insert(parent);
                continue;
            }
            // A root commit without the path did not change it.
            if parents.is_empty() && !parts.is_empty() && !probe.differs(id, None)? {
                continue;
            }
            live.extend(parents);
            if hits.len() == wanted {
                more = true;
                break;
            }
            hits.push(id);
        }
        let page = hits
            .into_iter()
            .skip(skip)
            .map(|id| read_info(&repo, id))
            .collect::<Result<Vec<_>>>()?;
        Ok((page, more))
    }
}

/// Whether one path differs between commits and their parents, answered from the
/// repository's [`ChangeCache`] when it knows the pair, else by comparing the trees once.
struct PathProbe<'a, 'r> {
    cache: &'a ChangeCache,
    search: LastCommitSearch<'r>,
    /// The path's components, as [`crate::rawtree::RawTrees::changed_items`] takes them.
    table: [Vec<&'a [u8]>; 1],
    /// The components joined with '/', as change sets hold paths.
    joined: Vec<u8>,
}

impl PathProbe<'_, '_> {
    /// Whether the path looks different in `commit` than in `parent` (None = the empty tree).
    fn differs(&mut self, commit: ObjectId, parent: Option<ObjectId>) -> Result<bool> {
        match &*self.cache.changes(&mut self.search, commit, parent)? {
            Changes::Paths(set) => Ok(set.contains(&self.joined)),
            Changes::TooLarge => {
                let new = self.search.commit(commit)?.tree;
                let old = match parent {
                    Some(p) => self.search.commit(p)?.tree,
                    None => self.search.trees.empty_tree(),
                };
                let mut changed = Vec::new();
                self.search
                    .trees
                    .changed_items(new, old, &self.table, &[0], &mut changed)?;
                Ok(!changed.is_empty())
            }
        }
    }
}

fn is_file(mode: EntryMode) -> bool {
    matches!(
        mode.kind(),
        GitEntryKind::Blob | GitEntryKind::BlobExecutable | GitEntryKind::Link
    )
}

/// What a tree entry is, for the comparison: a file, a directory, or nothing we diff.
enum Side {
    Absent,
    File(Blob),
    Dir(ObjectId),
}

fn side(entry: Option<&(EntryMode, ObjectId)>) -> Side {
    match entry {
        Some((mode, oid)) if mode.is_tree() => Side::Dir(*oid),
        Some((mode, oid)) if is_file(*mode) => Side::File((*mode, *oid)),
        // Submodule links name commits of other repositories.
        _ => Side::Absent,
    }
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The file-level changes between two trees (None = empty), at most `max_files` of them (and
/// whether there were more; the walk also stops when the time budget is spent). An explicit
/// work list instead of recursion, because pushed trees may nest deeper than the stack allows.
fn tree_changes(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    spend: &mut Spend,
) -> Result<(Vec<RawChange>, bool)> {
    let mut out = Vec::new();
    let mut work = vec![(String::new(), old, new)];
    while let Some((prefix, old, new)) = work.pop() {
        if old == new {
            continue;
        }
        if spend.out_of_time() {
            return Ok((out, true));
        }
        let read = |tree: Option<ObjectId>| -> Result<BTreeMap<Vec<u8>, (EntryMode, ObjectId)>> {
            Ok(match tree {
                Some(id) => odb::read_tree(repo, id)?
                    .into_iter()
                    .map(|e| (e.filename.into(), (e.mode, e.oid)))
                    .collect(),
                None => BTreeMap::new(),
            })
        };
        let old_entries = read(old)?;
        let new_entries = read(new)?;
        let mut names: Vec<&Vec<u8>> = old_entries.keys().chain(new_entries.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let path = join(&prefix, name);
            let (o, n) = (side(old_entries.get(name)), side(new_entries.get(name)));
            let (old_file, old_dir) = match o {
                Side::File(b) => (Some(b), None),
                Side::Dir(t) => (None, Some(t)),
                Side::Absent => (None, None),
            };
            let (new_file, new_dir) = match n {
                Side::File(b) => (Some(b), None),
                Side::Dir(t) => (None, Some(t)),
                Side::Absent => (None, None),
            };
            if (old_dir.is_some() || new_dir.is_some()) && old_dir != new_dir {
                work.push((path.clone(), old_dir, new_dir));
            }
            if (old_file.is_some() || new_file.is_some()) && old_file != new_file {
                if out.len() >= spend.limits.max_files {
                    return Ok((out, true));
                }
                out.push(RawChange {
                    path,
                    old: old_file,
                    new: new_file,
                });
            }
        }
    }
    Ok((out, false))
}

/// One side of a change, read and classified.
struct Loaded {
    oid: String,
    /// The blob's own size.
    blob_size: u64,
    pointer: Option<LfsPointer>,
    /// The content when it was read whole (blobs up to [`DiffLimits::max_patch_side`]).
    data: Option<Vec<u8>>,
    binary: bool,
    /// Why the content is not in `data` when it is not.
    withheld: Option<Withheld>,
}

impl Loaded {
    fn size(&self) -> u64 {
        self.pointer.as_ref().map_or(self.blob_size, |p| p.size)
    }
}

/// Reads and classifies one side, within the budget: a side over
/// [`DiffLimits::max_read_side`], or one the byte budget cannot pay for, is not read (its
/// `withheld` says why); LFS pointers are always read (they are tiny).
fn load(repo: &gix::Repository, (_, id): Blob, spend: &mut Spend) -> Result<Loaded> {
    let blob_size = repo.find_header(id).map_err(internal)?.size();
    let mut loaded = Loaded {
        oid: id.to_string(),
        blob_size,
        pointer: None,
        data: None,
        binary: false,
        withheld: None,
    };
    if blob_size > spend.limits.max_read_side {
        // Past what is ever read: huge blobs count as binary, as they always have.
        loaded.binary = blob_size > MAX_SNIFFED_BLOB;
        loaded.withheld = Some(Withheld::TooLarge);
        return Ok(loaded);
    }
    if blob_size > MAX_POINTER_SIZE && (spend.out_of_time() || !spend.take_bytes(blob_size)) {
        loaded.withheld = Some(Withheld::OverBudget);
        return Ok(loaded);
    }
    let data = repo.find_blob(id).map_err(internal)?.take_data();
    if blob_size <= MAX_POINTER_SIZE {
        loaded.pointer = LfsPointer::parse(&data);
        if loaded.pointer.is_some() {
            return Ok(loaded);
        }
    }
    let line_count = || data.iter().filter(|b| **b == b'\n').count();
    if blob_size <= spend.limits.max_patch_side && line_count() <= spend.limits.max_patch_lines {
        loaded.binary = looks_binary(&data, true);
        loaded.data = Some(data);
    } else {
        let head = &data[..data.len().min(SNIFF_BYTES)];
        loaded.binary = looks_binary(head, false);
        loaded.withheld = Some(Withheld::TooLarge);
    }
    Ok(loaded)
}

/// A NUL byte or invalid UTF-8. With `whole = false` the bytes are a prefix, so a multi-byte
/// character cut at the end is not held against them.
fn looks_binary(data: &[u8], whole: bool) -> bool {
    if data.contains(&0) {
        return true;
    }
    match std::str::from_utf8(data) {
        Ok(_) => false,
        Err(e) => whole || e.error_len().is_some(),
    }
}

fn describe_change(
    repo: &gix::Repository,
    change: RawChange,
    spend: &mut Spend,
) -> Result<FileDiff> {
    let old = change.old.map(|b| load(repo, b, spend)).transpose()?;
    let new = change.new.map(|b| load(repo, b, spend)).transpose()?;
    let kind = match (&old, &new) {
        (None, _) => ChangeKind::Added,
        (_, None) => ChangeKind::Deleted,
        _ => ChangeKind::Modified,
    };
    let sides = [&old, &new];
    let lfs = sides
        .iter()
        .any(|s| s.as_ref().is_some_and(|l| l.pointer.is_some()));
    let binary = sides.iter().any(|s| s.as_ref().is_some_and(|l| l.binary));
    // Too large wins over the budget: it says something about the file itself.
    let mut withheld = sides
        .iter()
        .filter_map(|s| s.as_ref().and_then(|l| l.withheld))
        .min_by_key(|w| *w != Withheld::TooLarge);
    let text = |side: &Option<Loaded>| -> Option<Vec<u8>> {
        match side {
            None => Some(Vec::new()),
            Some(l) => l.data.clone(),
        }
    };
    let patch = match (text(&old), text(&new)) {
        _ if lfs || binary => None,
        (Some(before), Some(after)) if spend.take_patch() => Some(unified_patch(&before, &after)?),
        (Some(_), Some(_)) => {
            withheld = Some(Withheld::OverBudget);
            None
        }
        _ => None,
    };
    Ok(FileDiff {
        path: change.path,
        change: kind,
        old_size: old.as_ref().map_or(0, Loaded::size),
        new_size: new.as_ref().map_or(0, Loaded::size),
        old_oid: old.map(|l| l.oid),
        new_oid: new.map(|l| l.oid),
        binary,
        lfs,
        patch,
        withheld: if lfs || binary { None } else { withheld },
    })
}

/// Collects hunks as text in git's format.
struct PatchText {
    out: String,
}

/// `start,len` as git prints it: `len` omitted when 1; an empty side names the line before.
fn hunk_range(start: u32, len: u32) -> String {
    match len {
        0 => format!("{},0", start.saturating_sub(1)),
        1 => start.to_string(),
        n => format!("{start},{n}"),
    }
}

impl ConsumeHunk for PatchText {
    type Out = String;

    fn consume_hunk(
        &mut self,
        header: HunkHeader,
        lines: &[(DiffLineKind, &[u8])],
    ) -> std::io::Result<()> {
        let _ = writeln!(
            self.out,
            "@@ -{} +{} @@",
            hunk_range(header.before_hunk_start, header.before_hunk_len),
            hunk_range(header.after_hunk_start, header.after_hunk_len)
        );
        for (kind, content) in lines {
            self.out.push(kind.to_prefix());
            self.out.push_str(&String::from_utf8_lossy(content));
            if !content.ends_with(b"\n") {
                self.out.push_str("\n\\ No newline at end of file\n");
            }
        }
        Ok(())
    }

    fn finish(self) -> String {
        self.out
    }
}

/// The unified diff (hunks only) turning `before` into `after`, both UTF-8 text.
fn unified_patch(before: &[u8], after: &[u8]) -> Result<String> {
    let input = InternedInput::new(before, after);
    let diff = diff_with_slider_heuristics(Algorithm::Histogram, &input);
    UnifiedDiff::new(
        &diff,
        &input,
        PatchText { out: String::new() },
        ContextSize::symmetrical(CONTEXT_LINES),
    )
    .consume()
    .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_look_like_gits() {
        let p = unified_patch(b"a\nb\nc\n", b"a\nB\nc\n").expect("patch");
        assert_eq!(p, "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        let p = unified_patch(b"", b"one\n").expect("patch");
        assert_eq!(p, "@@ -0,0 +1 @@\n+one\n");
        let p = unified_patch(b"x\ny\n", b"").expect("patch");
        assert_eq!(p, "@@ -1,2 +0,0 @@\n-x\n-y\n");
        let p = unified_patch(b"same\n", b"same\n").expect("patch");
        assert_eq!(p, "");
        let p = unified_patch(b"a\nb", b"a\nc").expect("patch");
        assert_eq!(
            p,
            "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn distant_changes_make_separate_hunks() {
        let line = |i: u32| match i {
            2 => "two\n".to_string(),
            18 => "eighteen\n".to_string(),
            i => format!("{i}\n"),
        };
        let before: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let after: String = (1..=20).map(line).collect();
        let p = unified_patch(before.as_bytes(), after.as_bytes()).expect("patch");
        let headers: Vec<&str> = p.lines().filter(|l| l.starts_with("@@")).collect();
        assert_eq!(headers, ["@@ -1,5 +1,5 @@", "@@ -15,6 +15,6 @@"]);
    }

    #[test]
    fn path_log_reuses_change_sets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = GitRepo::init(&dir.path().join("r.git")).expect("init");
        let sig = |secs: i64| crate::Signature {
            name: "T".into(),
            email: "t@example.com".into(),
            time_ms: secs * 1000,
        };
        let up = |path: &str, data: &str| crate::TreeChange::Upsert {
            path: path.into(),
            data: data.as_bytes().to_vec(),
        };
        let mut tip: Option<String> = None;
        for i in 0..6i64 {
            let changes = vec![up(&format!("f{}.txt", i % 3), &i.to_string())];
            let base = tip.as_deref();
            let id = repo
                .commit(
                    "refs/heads/main",
                    base,
                    changes,
                    &sig(1_700_000_000 + i),
                    "c",
                )
                .expect("commit");
            tip = Some(id);
        }
        let tip = tip.expect("tip");
        let ids = |page: Vec<CommitInfo>| page.into_iter().map(|c| c.id).collect::<Vec<_>>();
        let (first, more) = repo.path_log(&tip, "f1.txt", 0, 10).expect("log");
        let first = ids(first);
        assert_eq!((first.len(), more), (2, false));
        let (_, misses) = repo.changes.stats();
        // One comparison per commit: five with a parent, the root with the empty tree.
        assert_eq!(misses, 6);
        let (second, _) = repo.path_log(&tip, "f1.txt", 0, 10).expect("log");
        assert_eq!(ids(second), first);
        let (other, _) = repo.path_log(&tip, "f0.txt", 0, 10).expect("log");
        assert_eq!(other.len(), 2);
        let (hits, misses) = repo.changes.stats();
        assert_eq!(misses, 6, "the second and third walks read no trees");
        assert!(hits >= 12);
    }

    #[test]
    fn too_large_change_sets_compare_trees() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = GitRepo::init(&dir.path().join("r.git")).expect("init");
        let sig = crate::Signature {
            name: "T".into(),
            email: "t@example.com".into(),
            time_ms: 1_700_000_000_000,
        };
        let up = |path: &str, data: &str| crate::TreeChange::Upsert {
            path: path.into(),
            data: data.as_bytes().to_vec(),
        };
        let c1 = repo
            .commit("refs/heads/main", None, vec![up("d/a", "1")], &sig, "one")
            .expect("commit");
        let c2 = repo
            .commit(
                "refs/heads/main",
                Some(&c1),
                vec![up("b", "2")],
                &sig,
                "two",
            )
            .expect("commit");
        let c3 = repo
            .commit(
                "refs/heads/main",
                Some(&c2),
                vec![up("d/a", "3")],
                &sig,
                "three",
            )
            .expect("commit");
        let id = |hex: &str| ObjectId::from_hex(hex.as_bytes()).expect("hex");
        let too_large = || std::sync::Arc::new(Changes::TooLarge);
        repo.changes
            .put((id(&c1), id(&c1).kind().null()), too_large());
        repo.changes.put((id(&c2), id(&c1)), too_large());
        repo.changes.put((id(&c3), id(&c2)), too_large());
        let ids = |path: &str| -> Vec<String> {
            let (page, _) = repo.path_log(&c3, path, 0, 10).expect("log");
            page.into_iter().map(|c| c.id).collect()
        };
        assert_eq!(ids("d/a"), [c3.as_str(), c1.as_str()]);
        assert_eq!(ids("d"), [c3.as_str(), c1.as_str()]);
        assert_eq!(ids("b"), [c2.as_str()]);
        assert_eq!(ids(""), [c3.as_str(), c2.as_str(), c1.as_str()]);
        assert!(ids("x").is_empty());
        assert_eq!(repo.changes.stats().1, 0, "nothing was computed");
    }

    /// A repository whose second commit changes `files` (path, before, after).
    fn two_commits(
        files: &[(&str, String, String)],
    ) -> (tempfile::TempDir, GitRepo, String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = GitRepo::init(&dir.path().join("r.git")).expect("init");
        let sig = crate::Signature {
            name: "T".into(),
            email: "t@example.com".into(),
            time_ms: 1_700_000_000_000,
        };
        let side = |after: bool| -> Vec<crate::TreeChange> {
            files
                .iter()
                .map(|(path, before, now)| crate::TreeChange::Upsert {
                    path: (*path).into(),
                    data: if after { now } else { before }.as_bytes().to_vec(),
                })
                .collect()
        };
        let c1 = repo
            .commit("refs/heads/main", None, side(false), &sig, "one")
            .expect("commit");
        let c2 = repo
            .commit("refs/heads/main", Some(&c1), side(true), &sig, "two")
            .expect("commit");
        (dir, repo, c1, c2)
    }

    fn lines(n: usize, tag: &str) -> String {
        (0..n)
            .map(|i| format!("{tag} line {i} of some text\n"))
            .collect()
    }

    #[test]
    fn large_files_are_withheld_not_diffed() {
        // Two files of ~800 KB each, every line changed: the costly case pages used to diff.
        let big = |tag: &str| lines(30_000, tag);
        let (_dir, repo, c1, c2) = two_commits(&[
            ("a.txt", big("old a"), big("new a")),
            ("b.txt", big("old b"), big("new b")),
            ("small.txt", "x\n".into(), "y\n".into()),
        ]);
        let limits = DiffLimits {
            max_patch_side: 256 << 10,
            max_read_side: 256 << 10,
            ..DiffLimits::default()
        };
        let report = repo.diff_within(Some(&c1), &c2, limits).expect("diff");
        let withheld: Vec<_> = report.files.iter().map(|f| f.withheld).collect();
        assert_eq!(
            withheld,
            [Some(Withheld::TooLarge), Some(Withheld::TooLarge), None]
        );
        assert!(
            report.files[..2]
                .iter()
                .all(|f| f.patch.is_none() && !f.binary)
        );
        assert_eq!(
            report.files[2].patch.as_deref(),
            Some("@@ -1 +1 @@\n-x\n+y\n")
        );
        assert!(!report.over_budget && !report.more_files);
        // Many short lines are too large too, whatever their bytes.
        let limits = DiffLimits {
            max_patch_lines: 100,
            ..DiffLimits::default()
        };
        let report = repo.diff_within(Some(&c1), &c2, limits).expect("diff");
        assert_eq!(report.files[0].withheld, Some(Withheld::TooLarge));
        assert!(report.files[2].patch.is_some());
        // Unbounded, the same files get their patches.
        let full = repo.diff(Some(&c1), &c2).expect("diff");
        assert!(
            full.iter()
                .all(|f| f.patch.is_some() && f.withheld.is_none())
        );
    }

    #[test]
    fn budgets_cut_the_rest_of_a_diff() {
        let files: Vec<(String, String, String)> = (0..5)
            .map(|i| {
                (
                    format!("f{i}.txt"),
                    lines(100, &format!("old {i}")),
                    lines(100, &format!("new {i}")),
                )
            })
            .collect();
        let files: Vec<(&str, String, String)> = files
            .iter()
            .map(|(p, a, b)| (p.as_str(), a.clone(), b.clone()))
            .collect();
        let (_dir, repo, c1, c2) = two_commits(&files);
        let side = lines(100, "old 0").len() as u64;

        let report = repo
            .diff_within(
                Some(&c1),
                &c2,
                DiffLimits {
                    max_total_bytes: 4 * side,
                    ..DiffLimits::default()
                },
            )
            .expect("diff");
        let patched = report.files.iter().filter(|f| f.patch.is_some()).count();
        assert_eq!(patched, 2, "two files' sides fit in the byte budget");
        assert_eq!(report.files[4].withheld, Some(Withheld::OverBudget));
        assert!(report.over_budget && !report.timed_out);

        let report = repo
            .diff_within(
                Some(&c1),
                &c2,
                DiffLimits {
                    max_patched_files: 3,
                    ..DiffLimits::default()
                },
            )
            .expect("diff");
        let withheld: Vec<_> = report.files.iter().map(|f| f.withheld).collect();
        assert_eq!(withheld[..3], [None, None, None]);
        assert_eq!(
            withheld[3..],
            [Some(Withheld::OverBudget), Some(Withheld::OverBudget)]
        );

        let report = repo
            .diff_within(
                Some(&c1),
                &c2,
                DiffLimits {
                    max_files: 2,
                    ..DiffLimits::default()
                },
            )
            .expect("diff");
        assert_eq!((report.files.len(), report.more_files), (2, true));

        let report = repo
            .diff_within(
                Some(&c1),
                &c2,
                DiffLimits {
                    max_time: Duration::ZERO,
                    ..DiffLimits::default()
                },
            )
            .expect("diff");
        assert!(report.timed_out && report.over_budget);
        assert!(report.files.iter().all(|f| f.patch.is_none()));
    }

    #[test]
    fn binary_sniffing() {
        assert!(!looks_binary(b"text\n", true));
        assert!(looks_binary(b"a\0b", true));
        assert!(looks_binary(&[0xff, 0x41], true));
        assert!(looks_binary(&"é".as_bytes()[..1], true));
        assert!(!looks_binary(&"é".as_bytes()[..1], false));
    }
}
