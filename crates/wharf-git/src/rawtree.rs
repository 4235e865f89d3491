//! History searches read many trees and look at few entries of each: trees are kept as their
//! raw bytes and scanned in place (no per-entry allocation), and two trees are compared in one
//! merge pass over their sorted entries, descending only into subtrees whose ids differ.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use gix::ObjectId;
use gix::objs::Find as _;
use wharf_core::Result;

use crate::odb::internal;

/// Raw trees kept while searching history (bytes); the oldest go first beyond this.
const MAX_CACHED_BYTES: usize = 32 << 20;

/// Trees whose delta chains are looked at before reading ahead (see [`RawTrees::prefetch`]).
const PREFETCH_SAMPLE: usize = 8;

/// What a path looks like in one commit: (entry kind, id), compared as values.
pub(crate) type Snapshot = (u16, ObjectId);

/// The kind of an entry as its normalised mode: trees, links, submodules, and files with or
/// without the executable bit, as gix's `EntryMode::kind` tells them apart.
fn kind_code(mode: u32) -> u16 {
    match mode & 0o170000 {
        0o040000 => 0o040000,
        0o120000 => 0o120000,
        0o160000 => 0o160000,
        _ if mode & 0o100 != 0 => 0o100755,
        _ => 0o100644,
    }
}

fn tree_kind() -> u16 {
    0o040000
}

/// One entry of a raw tree: `<octal mode> <name>\0<id bytes>`.
struct RawEntry<'a> {
    kind: u16,
    name: &'a [u8],
    oid: &'a [u8],
}

impl RawEntry<'_> {
    fn is_tree(&self) -> bool {
        self.kind == tree_kind()
    }

    fn snapshot(&self) -> Snapshot {
        (self.kind, ObjectId::from_bytes_or_panic(self.oid))
    }
}

fn malformed() -> wharf_core::Error {
    internal("malformed tree object")
}

/// The entry at `pos` of a raw tree and the position after it; None at the end.
fn parse_entry(raw: &[u8], pos: usize, hash_len: usize) -> Result<Option<(RawEntry<'_>, usize)>> {
    let Some(rest) = raw.get(pos..).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let space = rest.iter().position(|b| *b == b' ').ok_or_else(malformed)?;
    let mut mode = 0u32;
    for digit in &rest[..space] {
        if !(b'0'..=b'7').contains(digit) || mode > 0o7777777 {
            return Err(malformed());
        }
        mode = mode * 8 + u32::from(digit - b'0');
    }
    let name_start = space + 1;
    let nul = rest[name_start..]
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(malformed)?
        + name_start;
    let oid = rest
        .get(nul + 1..nul + 1 + hash_len)
        .ok_or_else(malformed)?;
    let entry = RawEntry {
        kind: kind_code(mode),
        name: &rest[name_start..nul],
        oid,
    };
    Ok(Some((entry, pos + nul + 1 + hash_len)))
}

/// The position after the entry at `pos`, found by its name's NUL alone; None at the end or
/// when the entry is cut short (then [`parse_entry`] reports it).
fn skip_entry(raw: &[u8], pos: usize, hash_len: usize) -> Option<usize> {
    let rest = raw.get(pos..)?;
    let nul = rest.iter().position(|b| *b == 0)?;
    let next = pos + nul + 1 + hash_len;
    (next <= raw.len()).then_some(next)
}

/// Git's tree order: names compared bytewise, a tree's name as if it ended in '/'.
fn git_order(a: &RawEntry<'_>, b: &RawEntry<'_>) -> std::cmp::Ordering {
    let n = a.name.len().min(b.name.len());
    a.name[..n].cmp(&b.name[..n]).then_with(|| {
        let next = |e: &RawEntry<'_>| e.name.get(n).copied().or(e.is_tree().then_some(b'/'));
        next(a).cmp(&next(b))
    })
}

/// Length of the common prefix of two byte strings.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 64;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + CHUNK <= n && a[i..i + CHUNK] == b[i..i + CHUNK] {
        i += CHUNK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Length of the common suffix of two byte strings.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 64;
    let n = a.len().min(b.len());
    let (mut i, la, lb) = (0, a.len(), b.len());
    while i + CHUNK <= n && a[la - i - CHUNK..la - i] == b[lb - i - CHUNK..lb - i] {
        i += CHUNK;
    }
    while i < n && a[la - i - 1] == b[lb - i - 1] {
        i += 1;
    }
    i
}

/// The components of the paths a search follows, sorted, so that the paths below one folder
/// form a contiguous run and each folder level is sorted by its component.
pub(crate) type PathTable<'p> = [Vec<&'p [u8]>];

pub(crate) struct RawTrees<'r> {
    repo: &'r gix::Repository,
    hash: gix::hash::Kind,
    hash_len: usize,
    cache: HashMap<ObjectId, Rc<[u8]>>,
    order: VecDeque<ObjectId>,
    cached_bytes: usize,
    buf: Vec<u8>,
    /// Calls of [`RawTrees::prefetch`] left to skip after the pack looked unsuited.
    skip_prefetch: usize,
}

/// One name that differs between two trees: its entry on either side.
struct Difference<'a> {
    name: &'a [u8],
    new: Option<Snapshot>,
    old: Option<Snapshot>,
}

impl<'r> RawTrees<'r> {
    pub(crate) fn new(repo: &'r gix::Repository) -> Self {
        RawTrees {
            repo,
            hash: repo.object_hash(),
            hash_len: repo.object_hash().len_in_bytes(),
            cache: HashMap::new(),
            order: VecDeque::new(),
            cached_bytes: 0,
            buf: Vec::new(),
            skip_prefetch: 0,
        }
    }

    pub(crate) fn empty_tree(&self) -> ObjectId {
        ObjectId::empty_tree(self.hash)
    }

    /// The raw bytes of tree `id` (empty for the empty tree, which need not be stored).
    fn get(&mut self, id: ObjectId) -> Result<Rc<[u8]>> {
        if let Some(data) = self.cache.get(&id) {
            return Ok(data.clone());
        }
        if id.is_empty_tree() {
            return Ok(Rc::from(&[][..]));
        }
        let data = self
            .repo
            .objects
            .try_find(&id, &mut self.buf)
            .map_err(internal)?
            .ok_or_else(|| internal(format!("tree {id} is missing")))?;
        if data.kind != gix::objs::Kind::Tree {
            return Err(internal(format!("{id} is a {}, not a tree", data.kind)));
        }
        let raw: Rc<[u8]> = Rc::from(data.data);
        self.cached_bytes += raw.len();
        while self.cached_bytes > MAX_CACHED_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.cache.remove(&old) {
                self.cached_bytes -= gone.len();
            }
        }
        self.cache.insert(id, raw.clone());
        self.order.push_back(id);
        Ok(raw)
    }

    /// Whether tree `id` is at hand without reading the object database.
    pub(crate) fn is_cached(&self, id: &ObjectId) -> bool {
        id.is_empty_tree() || self.cache.contains_key(id)
    }

    /// Reads the trees a walk will need next (`upcoming`, newest first) into the cache, oldest
    /// first, when the pack stores each as a delta against its older version (as `git
    /// fast-import` does). gix caches a resolved delta but never the whole object at the end
    /// of a chain, so reading such trees newest first inflates that base object for every one
    /// of them, while oldest first each read applies one delta to the one before. Packs made by
    /// `git pack-objects` store newer versions whole and older ones as deltas, which suits the
    /// walk's own order: nothing is read ahead then. The result is the same either way.
    pub(crate) fn prefetch(&mut self, upcoming: &[ObjectId]) -> Result<()> {
        if self.skip_prefetch > 0 {
            self.skip_prefetch -= 1;
            return Ok(());
        }
        let ids: Vec<ObjectId> = upcoming
            .iter()
            .copied()
            .filter(|id| !self.is_cached(id))
            .collect();
        let header = |id: &ObjectId| match gix::odb::Header::try_header(&self.repo.objects, id) {
            Ok(Some(gix::odb::find::Header::Packed(h))) => Some((h.num_deltas, h.object_size)),
            _ => None,
        };
        // Chain lengths of the next few: when each is one delta longer than the next older one,
        // every tree is a delta against its predecessor.
        let sample: Vec<(u32, u64)> = ids.iter().take(PREFETCH_SAMPLE).map_while(header).collect();
        let towards_older = sample.windows(2).filter(|w| w[0].0 == w[1].0 + 1).count();
        let Some(first) = sample.first() else {
            return Ok(());
        };
        if sample.len() < 2 || towards_older * 4 < (sample.len() - 1) * 3 {
            // Not such a pack, at least for a while: look again only much later.
            self.skip_prefetch = upcoming.len();
            return Ok(());
        }
        // Stay well within the cache.
        let size = usize::try_from(first.1).unwrap_or(usize::MAX).max(1);
        let count = ids.len().min(MAX_CACHED_BYTES / 4 / size);
        for id in ids[..count].iter().rev() {
            self.get(*id)?;
        }
        Ok(())
    }

    /// The entries that differ between the trees `new` and `old`, in one merge pass over both
    /// (entries are sorted in git order), sorted by name, with the two sides of a name that is a
    /// file on one side and a folder on the other brought together. The identical bytes at the
    /// start and at the end of the two trees are skipped without comparing entries.
    fn differences<'a>(&self, new: &'a [u8], old: &'a [u8]) -> Result<Vec<Difference<'a>>> {
        let hash_len = self.hash_len;
        // Entries that end within the common prefix are the same on both sides.
        let prefix = common_prefix(new, old);
        let mut start = 0;
        while let Some(next) = skip_entry(new, start, hash_len) {
            if next > prefix {
                break;
            }
            start = next;
        }
        // From positions with equally long, identical remainders on, nothing differs.
        let suffix = common_suffix(new, old);
        let same_rest = |pn: usize, po: usize| {
            let rest = new.len() - pn;
            rest == old.len() - po && rest <= suffix
        };
        let (mut pn, mut po) = (start, start);
        let mut n = parse_entry(new, pn, hash_len)?;
        let mut o = parse_entry(old, po, hash_len)?;
        let mut out: Vec<Difference<'a>> = Vec::new();
        loop {
            if same_rest(pn, po) {
                break;
            }
            let order = match (&n, &o) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((a, _)), Some((b, _))) => git_order(a, b),
            };
            if order.is_le() {
                if let Some((a, next)) = n.take() {
                    let old_side = match (&o, order.is_eq()) {
                        (Some((b, _)), true) => Some(b),
                        _ => None,
                    };
                    let differs = old_side.is_none_or(|b| (a.kind, a.oid) != (b.kind, b.oid));
                    if differs {
                        out.push(Difference {
                            name: a.name,
                            new: Some(a.snapshot()),
                            old: old_side.map(RawEntry::snapshot),
                        });
                    }
                    pn = next;
                    n = parse_entry(new, pn, hash_len)?;
                }
                if order.is_eq()
                    && let Some((_, next)) = o.take()
                {
                    po = next;
                    o = parse_entry(old, po, hash_len)?;
                }
            } else if let Some((b, next)) = o.take() {
                out.push(Difference {
                    name: b.name,
                    new: None,
                    old: Some(b.snapshot()),
                });
                po = next;
                o = parse_entry(old, po, hash_len)?;
            }
        }
        // A file `a` and a folder `a` sort apart ("a" < "a-b" < "a/"): join their sides.
        out.sort_by(|x, y| x.name.cmp(y.name));
        let mut joined: Vec<Difference<'a>> = Vec::with_capacity(out.len());
        for d in out {
            match joined.last_mut() {
                Some(last) if last.name == d.name => {
                    last.new = last.new.or(d.new);
                    last.old = last.old.or(d.old);
                }
                _ => joined.push(d),
            }
        }
        Ok(joined)
    }

    /// Appends to `changed` the items (indices into `table`, sorted ascending) whose path looks
    /// different below root tree `new` than below root tree `old` (present on one side only, or
    /// with another kind or id). Unchanged subtrees (same id) are never opened.
    pub(crate) fn changed_items(
        &mut self,
        new: ObjectId,
        old: ObjectId,
        table: &PathTable<'_>,
        items: &[u32],
        changed: &mut Vec<u32>,
    ) -> Result<()> {
        if new == old {
            return Ok(());
        }
        // The root path itself (no components) sorts first.
        let roots = items
            .iter()
            .take_while(|i| table[**i as usize].is_empty())
            .count();
        changed.extend_from_slice(&items[..roots]);
        // (new tree, old tree, depth, the items below both, all sharing `depth` components).
        let mut work: Vec<(ObjectId, ObjectId, usize, &[u32])> =
            vec![(new, old, 0, &items[roots..])];
        while let Some((new, old, depth, items)) = work.pop() {
            if new == old || items.is_empty() {
                continue;
            }
            let (new_raw, old_raw) = (self.get(new)?, self.get(old)?);
            let differences = self.differences(&new_raw, &old_raw)?;
            let mut rest = items;
            for d in differences {
                let component = |i: &u32| table[*i as usize][depth];
                let start = rest.partition_point(|i| component(i) < d.name);
                rest = &rest[start..];
                let end = rest.partition_point(|i| component(i) == d.name);
                let (mut below, after) = rest.split_at(end);
                rest = after;
                if below.is_empty() {
                    continue;
                }
                // The entry itself sorts before the paths inside it.
                if table[below[0] as usize].len() == depth + 1 {
                    changed.push(below[0]);
                    below = &below[1..];
                }
                if below.is_empty() {
                    continue;
                }
                // Below a side that is no folder (absent, or a file) there is nothing: compare
                // with the empty tree, where everything present on the other side differs.
                let folder = |side: Option<Snapshot>| match side {
                    Some((kind, id)) if kind == tree_kind() => id,
                    _ => self.empty_tree(),
                };
                work.push((folder(d.new), folder(d.old), depth + 1, below));
            }
        }
        Ok(())
    }

    /// Every path whose entry differs between root trees `new` and `old` as
    /// [`RawTrees::changed_items`] tells it, at every depth (folders as well as what is in
    /// them), components joined with '/', and "" for the root when the trees differ at all;
    /// unsorted. None as soon as there are more than `limit`.
    pub(crate) fn changed_paths(
        &mut self,
        new: ObjectId,
        old: ObjectId,
        limit: usize,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        if new == old {
            return Ok(Some(Vec::new()));
        }
        let mut out = vec![Vec::new()];
        let mut work: Vec<(ObjectId, ObjectId, Vec<u8>)> = vec![(new, old, Vec::new())];
        while let Some((new, old, prefix)) = work.pop() {
            if new == old {
                continue;
            }
            let (new_raw, old_raw) = (self.get(new)?, self.get(old)?);
            for d in self.differences(&new_raw, &old_raw)? {
                let mut path = prefix.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(d.name);
                // As in `changed_items`: below a side that is no folder there is nothing.
                let folder = |side: Option<Snapshot>| match side {
                    Some((kind, id)) if kind == tree_kind() => id,
                    _ => self.empty_tree(),
                };
                let (new_dir, old_dir) = (folder(d.new), folder(d.old));
                if new_dir != old_dir {
                    work.push((new_dir, old_dir, path.clone()));
                }
                out.push(path);
                if out.len() > limit {
                    return Ok(None);
                }
            }
        }
        Ok(Some(out))
    }
}
