//! What changed between two commits, file by file with unified patches, and the history of one
//! path (`git log -- path`).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

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
        let repo = self.repo();
        let old_tree = match old {
            Some(sha) => Some(odb::commit_tree_and_parents(&repo, odb::commit_id(&repo, sha)?)?.0),
            None => None,
        };
        let new_tree = odb::commit_tree_and_parents(&repo, odb::commit_id(&repo, new)?)?.0;
        let mut changes = tree_changes(&repo, old_tree, Some(new_tree))?;
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        changes
            .into_iter()
            .map(|c| describe_change(&repo, c))
            .collect()
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

/// The file-level changes between two trees (None = empty). An explicit work list instead of
/// recursion, because pushed trees may nest deeper than the stack allows.
fn tree_changes(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
) -> Result<Vec<RawChange>> {
    let mut out = Vec::new();
    let mut work = vec![(String::new(), old, new)];
    while let Some((prefix, old, new)) = work.pop() {
        if old == new {
            continue;
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
                out.push(RawChange {
                    path,
                    old: old_file,
                    new: new_file,
                });
            }
        }
    }
    Ok(out)
}

/// One side of a change, read and classified.
struct Loaded {
    oid: String,
    /// The blob's own size.
    blob_size: u64,
    pointer: Option<LfsPointer>,
    /// The content when it was read whole (blobs up to [`MAX_PATCH_SIDE`]).
    data: Option<Vec<u8>>,
    binary: bool,
}

impl Loaded {
    fn size(&self) -> u64 {
        self.pointer.as_ref().map_or(self.blob_size, |p| p.size)
    }
}

fn load(repo: &gix::Repository, (_, id): Blob) -> Result<Loaded> {
    let blob_size = repo.find_header(id).map_err(internal)?.size();
    let mut loaded = Loaded {
        oid: id.to_string(),
        blob_size,
        pointer: None,
        data: None,
        binary: false,
    };
    if blob_size > MAX_SNIFFED_BLOB {
        loaded.binary = true;
        return Ok(loaded);
    }
    let data = repo.find_blob(id).map_err(internal)?.take_data();
    if blob_size <= MAX_POINTER_SIZE {
        loaded.pointer = LfsPointer::parse(&data);
        if loaded.pointer.is_some() {
            return Ok(loaded);
        }
    }
    if blob_size <= MAX_PATCH_SIDE {
        loaded.binary = looks_binary(&data, true);
        loaded.data = Some(data);
    } else {
        let head = &data[..data.len().min(SNIFF_BYTES)];
        loaded.binary = looks_binary(head, false);
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

fn describe_change(repo: &gix::Repository, change: RawChange) -> Result<FileDiff> {
    let old = change.old.map(|b| load(repo, b)).transpose()?;
    let new = change.new.map(|b| load(repo, b)).transpose()?;
    let kind = match (&old, &new) {
        (None, _) => ChangeKind::Added,
        (_, None) => ChangeKind::Deleted,
        _ => ChangeKind::Modified,
    };
    let lfs = [&old, &new]
        .iter()
        .any(|s| s.as_ref().is_some_and(|l| l.pointer.is_some()));
    let binary = [&old, &new]
        .iter()
        .any(|s| s.as_ref().is_some_and(|l| l.binary));
    let text = |side: &Option<Loaded>| -> Option<Vec<u8>> {
        match side {
            None => Some(Vec::new()),
            Some(l) => l.data.clone(),
        }
    };
    let patch = if lfs || binary {
        None
    } else {
        match (text(&old), text(&new)) {
            (Some(before), Some(after)) => Some(unified_patch(&before, &after)?),
            _ => None,
        }
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

    #[test]
    fn binary_sniffing() {
        assert!(!looks_binary(b"text\n", true));
        assert!(looks_binary(b"a\0b", true));
        assert!(looks_binary(&[0xff, 0x41], true));
        assert!(looks_binary(&"é".as_bytes()[..1], true));
        assert!(!looks_binary(&"é".as_bytes()[..1], false));
    }
}
