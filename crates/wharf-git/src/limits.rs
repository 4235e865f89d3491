//! How large a repository's tree may be, once expanded. A push of a few dozen objects can
//! describe millions of paths when subtrees are reused (a "tree bomb": each level names the
//! same subtree many times), and every listing, card derivation or clone would then pay for
//! all of them. Pushes are measured before they are accepted, by walking each new root tree
//! with every distinct subtree read once (memoized), so measuring costs what was sent, not
//! what it expands to; reads stop at the same bounds.

use std::collections::HashMap;

/// Most entries (files and folders) a tree may hold once expanded.
pub const MAX_TREE_ENTRIES: u64 = 250_000;
/// Deepest folder nesting.
pub const MAX_TREE_DEPTH: u32 = 64;

/// Why a tree is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeLimit {
    #[error("the tree holds more than {MAX_TREE_ENTRIES} files and folders")]
    TooManyEntries,
    #[error("folders nest deeper than {MAX_TREE_DEPTH} levels")]
    TooDeep,
    #[error("tree {0} is malformed")]
    Malformed(String),
    #[error("cannot read tree {0}: {1}")]
    Unreadable(String, String),
}

/// A tree's expanded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeSize {
    pub entries: u64,
    /// 1 for a tree of files only.
    pub depth: u32,
}

/// The entries of a raw (sha1) git tree: whether each is a tree, and the subtree ids.
fn subtrees(raw: &[u8], id: &str) -> Result<(u64, Vec<[u8; 20]>), TreeLimit> {
    let malformed = || TreeLimit::Malformed(id.to_string());
    let (mut pos, mut count, mut trees) = (0usize, 0u64, Vec::new());
    while pos < raw.len() {
        let space = raw[pos..]
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(malformed)?;
        let mode = &raw[pos..pos + space];
        let nul = raw[pos + space..]
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(malformed)?;
        let hash_at = pos + space + nul + 1;
        let hash: [u8; 20] = raw
            .get(hash_at..hash_at + 20)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(malformed)?;
        if mode == b"40000" || mode == b"040000" {
            trees.push(hash);
        }
        count += 1;
        pos = hash_at + 20;
    }
    Ok((count, trees))
}

/// Measures trees, remembering every subtree it has measured (across calls).
#[derive(Default)]
pub struct TreeMeasure {
    known: HashMap<[u8; 20], TreeSize>,
}

/// One tree being measured: its pending subtrees and what is counted so far.
struct Frame {
    id: [u8; 20],
    pending: Vec<[u8; 20]>,
    size: TreeSize,
}

impl TreeMeasure {
    /// The expanded size of tree `root`, reading raw tree objects through `read`; stops as soon
    /// as a limit is passed.
    pub fn measure(
        &mut self,
        root: [u8; 20],
        read: &mut dyn FnMut(&[u8; 20]) -> Result<Vec<u8>, String>,
    ) -> Result<TreeSize, TreeLimit> {
        if let Some(size) = self.known.get(&root) {
            return Ok(*size);
        }
        let mut stack = vec![self.open(root, read)?];
        loop {
            let Some(top) = stack.last_mut() else {
                return Err(TreeLimit::Malformed(hex::encode(root)));
            };
            match top.pending.pop() {
                Some(child) => match self.known.get(&child) {
                    Some(size) => add(&mut top.size, *size)?,
                    None => {
                        if stack.len() as u32 >= MAX_TREE_DEPTH {
                            return Err(TreeLimit::TooDeep);
                        }
                        let frame = self.open(child, read)?;
                        stack.push(frame);
                    }
                },
                None => {
                    let done = stack
                        .pop()
                        .ok_or_else(|| TreeLimit::Malformed(hex::encode(root)))?;
                    self.known.insert(done.id, done.size);
                    match stack.last_mut() {
                        Some(parent) => add(&mut parent.size, done.size)?,
                        None => return Ok(done.size),
                    }
                }
            }
        }
    }

    fn open(
        &self,
        id: [u8; 20],
        read: &mut dyn FnMut(&[u8; 20]) -> Result<Vec<u8>, String>,
    ) -> Result<Frame, TreeLimit> {
        let hex_id = hex::encode(id);
        let raw = read(&id).map_err(|e| TreeLimit::Unreadable(hex_id.clone(), e))?;
        let (count, pending) = subtrees(&raw, &hex_id)?;
        if count > MAX_TREE_ENTRIES {
            return Err(TreeLimit::TooManyEntries);
        }
        Ok(Frame {
            id,
            pending,
            size: TreeSize {
                entries: count,
                depth: 1,
            },
        })
    }
}

/// Folds a measured subtree into its parent's size.
fn add(parent: &mut TreeSize, child: TreeSize) -> Result<(), TreeLimit> {
    parent.entries = parent.entries.saturating_add(child.entries);
    parent.depth = parent.depth.max(child.depth.saturating_add(1));
    if parent.entries > MAX_TREE_ENTRIES {
        return Err(TreeLimit::TooManyEntries);
    }
    if parent.depth > MAX_TREE_DEPTH {
        return Err(TreeLimit::TooDeep);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw tree entry.
    fn entry(mode: &str, name: &str, id: [u8; 20]) -> Vec<u8> {
        let mut out = format!("{mode} {name}\0").into_bytes();
        out.extend_from_slice(&id);
        out
    }

    fn id(n: u8) -> [u8; 20] {
        [n; 20]
    }

    /// A bomb: each level names the level below `width` times; one blob at the bottom.
    fn bomb(levels: u8, width: usize) -> HashMap<[u8; 20], Vec<u8>> {
        let mut trees = HashMap::new();
        trees.insert(id(1), entry("100644", "f", id(200)));
        for level in 2..=levels {
            let raw: Vec<u8> = (0..width)
                .flat_map(|i| entry("40000", &format!("d{i}"), id(level - 1)))
                .collect();
            trees.insert(id(level), raw);
        }
        trees
    }

    fn reader(
        trees: &HashMap<[u8; 20], Vec<u8>>,
        reads: &mut u32,
    ) -> impl FnMut(&[u8; 20]) -> Result<Vec<u8>, String> {
        move |k| {
            *reads += 1;
            trees.get(k).cloned().ok_or_else(|| "missing".to_string())
        }
    }

    #[test]
    fn a_small_bomb_is_measured_by_reading_each_tree_once() {
        let trees = bomb(4, 10); // 10 + 100 + 1000 folders, 1000 files
        let mut reads = 0;
        let size = TreeMeasure::default()
            .measure(id(4), &mut reader(&trees, &mut reads))
            .expect("within limits");
        assert_eq!(
            size,
            TreeSize {
                entries: 10 + 100 + 1000 + 1000,
                depth: 4
            }
        );
        assert_eq!(reads, 4, "each distinct tree read once");
    }

    #[test]
    fn a_million_paths_are_refused_after_a_handful_of_reads() {
        let trees = bomb(7, 10);
        let mut reads = 0;
        let e = TreeMeasure::default()
            .measure(id(7), &mut reader(&trees, &mut reads))
            .expect_err("bomb");
        assert_eq!(e, TreeLimit::TooManyEntries);
        assert!(reads <= 7);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let trees = bomb(70, 1);
        let mut reads = 0;
        let e = TreeMeasure::default()
            .measure(id(70), &mut reader(&trees, &mut reads))
            .expect_err("deep");
        assert_eq!(e, TreeLimit::TooDeep);
    }

    #[test]
    fn malformed_trees_are_errors_not_panics() {
        for raw in [&b"100644 f"[..], b"100644 f\0short", b"40000"] {
            let mut read = |_: &[u8; 20]| Ok(raw.to_vec());
            let e = TreeMeasure::default()
                .measure(id(1), &mut read)
                .expect_err("bad");
            assert!(matches!(e, TreeLimit::Malformed(_)), "{raw:?}");
        }
    }
}
