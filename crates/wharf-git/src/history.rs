//! Commit metadata, history pages and "last commit that touched a path".

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;

use gix::ObjectId;
use gix::revision::walk::Sorting;
use gix::traverse::commit::simple::CommitTimeOrder;
use wharf_core::Result;

use crate::odb::{self, internal};
use crate::rawtree::RawTrees;
use crate::{CommitInfo, GitRepo};

impl GitRepo {
    pub fn commit_info(&self, sha: &str) -> Result<CommitInfo> {
        let repo = self.repo();
        let id = odb::commit_id(&repo, sha)?;
        read_info(&repo, id)
    }

    /// A page of the history reachable from `from`, newest first, children before parents;
    /// returns whether more commits follow the page.
    pub fn log(&self, from: &str, skip: usize, limit: usize) -> Result<(Vec<CommitInfo>, bool)> {
        let repo = self.repo();
        let tip = odb::commit_id(&repo, from)?;
        if let Some(page) = linear_page(&repo, tip, skip, limit)? {
            return Ok(page);
        }
        let order = date_topo_order(&repo, tip)?;
        let page = order
            .iter()
            .skip(skip)
            .take(limit)
            .map(|id| read_info(&repo, *id))
            .collect::<Result<Vec<_>>>()?;
        let more = skip.saturating_add(limit) < order.len();
        Ok((page, more))
    }

    /// Number of commits reachable from `from`.
    pub fn count_commits(&self, from: &str) -> Result<usize> {
        let repo = self.repo();
        let tip = odb::commit_id(&repo, from)?;
        let mut count = 0;
        for info in repo.rev_walk([tip]).all().map_err(internal)? {
            info.map_err(internal)?;
            count += 1;
        }
        Ok(count)
    }

    /// For each path present at `commit`, the newest commit that changed it, as `git log -1 -- path`
    /// finds it: a commit that is identical for the path to one of its parents passes the search on
    /// to that parent; one that differs from all its parents (or has none) changed the path.
    pub fn last_commits(
        &self,
        commit: &str,
        paths: &[String],
    ) -> Result<HashMap<String, CommitInfo>> {
        let repo = self.repo();
        let tip = odb::commit_id(&repo, commit)?;
        let found = LastCommitSearch::new(&repo).run(tip, paths)?;
        let mut infos: HashMap<ObjectId, CommitInfo> = HashMap::new();
        let mut out = HashMap::with_capacity(found.len());
        for (path, id) in found {
            let info = match infos.entry(id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(read_info(&repo, id)?),
            };
            out.insert(path, info.clone());
        }
        Ok(out)
    }
}

pub(crate) fn read_info(repo: &gix::Repository, id: ObjectId) -> Result<CommitInfo> {
    let commit = repo.find_commit(id).map_err(internal)?;
    let decoded = commit.decode().map_err(internal)?;
    let author = decoded.author().map_err(internal)?.trim();
    let (title, message) = split_message(&String::from_utf8_lossy(decoded.message));
    Ok(CommitInfo {
        id: id.to_string(),
        title,
        message,
        author_name: author.name.to_string(),
        author_email: author.email.to_string(),
        date_ms: author.seconds().saturating_mul(1000),
        parents: decoded.parents().map(|p| p.to_string()).collect(),
    })
}

/// The page of [`GitRepo::log`] when the history down to the end of the page is a single line.
///
/// While every commit met has exactly one parent, the date-topological order is the walk order:
/// a commit of that line has no other child among the commits reachable from the tip (it would
/// be reachable from its own parent), so it is the only commit ready once its child is listed.
/// This holds up to and including the first commit with no or several parents. None when such a
/// merge comes before the page is complete; the caller then sorts the whole history.
fn linear_page(
    repo: &gix::Repository,
    tip: ObjectId,
    skip: usize,
    limit: usize,
) -> Result<Option<(Vec<CommitInfo>, bool)>> {
    // One commit past the page tells whether more follow.
    let wanted = skip.saturating_add(limit).saturating_add(1);
    let mut page = Vec::new();
    let mut current = Some(tip);
    let mut walked = 0usize;
    while let Some(id) = current {
        if walked == wanted {
            return Ok(Some((page, true)));
        }
        let (parents, info) = if walked >= skip && page.len() < limit {
            let info = read_info(repo, id)?;
            let parents: Vec<ObjectId> = info
                .parents
                .iter()
                .map(|p| ObjectId::from_hex(p.as_bytes()).map_err(internal))
                .collect::<Result<_>>()?;
            (parents, Some(info))
        } else {
            (odb::commit_tree_and_parents(repo, id)?.1, None)
        };
        page.extend(info);
        walked += 1;
        current = match parents.as_slice() {
            [] => None,
            [one] => Some(*one),
            // A merge: listed in order itself, but what follows needs the full sort.
            _ if walked == wanted => return Ok(Some((page, true))),
            _ => return Ok(None),
        };
    }
    // The root commit ended the history within the page.
    Ok(Some((page, false)))
}

/// Splits a message into its first line and the body after the blank line.
fn split_message(raw: &str) -> (String, String) {
    let (title, rest) = raw.split_once('\n').unwrap_or((raw, ""));
    let body = rest.trim_start_matches(['\r', '\n']).trim_end();
    (title.trim_end_matches('\r').to_string(), body.to_string())
}

/// All commits reachable from `tip`, newest commit time first, never a parent before one of its
/// children (git's `--date-order`). Commits made within one second are common, so time alone
/// cannot order them.
pub(crate) fn date_topo_order(repo: &gix::Repository, tip: ObjectId) -> Result<Vec<ObjectId>> {
    Ok(date_topo_parents(repo, tip)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// [`date_topo_order`] with each commit's parents.
pub(crate) fn date_topo_parents(
    repo: &gix::Repository,
    tip: ObjectId,
) -> Result<Vec<(ObjectId, Vec<ObjectId>)>> {
    let walk = repo
        .rev_walk([tip])
        .sorting(Sorting::ByCommitTime(CommitTimeOrder::NewestFirst));
    let mut nodes = Vec::new();
    for info in walk.all().map_err(internal)? {
        let info = info.map_err(internal)?;
        nodes.push((
            info.id,
            info.commit_time.unwrap_or(0),
            info.parent_ids.to_vec(),
        ));
    }
    let index: HashMap<ObjectId, usize> = nodes.iter().enumerate().map(|(i, n)| (n.0, i)).collect();
    let mut pending_children = vec![0usize; nodes.len()];
    for (_, _, parents) in &nodes {
        for p in parents.iter().filter_map(|p| index.get(p)) {
            pending_children[*p] += 1;
        }
    }
    // Ready commits, newest first; ties go to the one the time-ordered walk met first.
    let mut ready: BinaryHeap<(i64, Reverse<usize>)> = (0..nodes.len())
        .filter(|i| pending_children[*i] == 0)
        .map(|i| (nodes[i].1, Reverse(i)))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some((_, Reverse(i))) = ready.pop() {
        for p in nodes[i].2.iter().filter_map(|p| index.get(p)) {
            pending_children[*p] -= 1;
            if pending_children[*p] == 0 {
                ready.push((nodes[*p].1, Reverse(*p)));
            }
        }
        order.push((nodes[i].0, std::mem::take(&mut nodes[i].2)));
    }
    Ok(order)
}

/// Root trees read ahead of a history walk at once (see [`RawTrees::prefetch`]).
const READ_AHEAD: usize = 64;

pub(crate) struct CommitNode {
    pub(crate) tree: ObjectId,
    pub(crate) parents: Vec<ObjectId>,
    time: i64,
}

/// One pass over history shared by all requested paths: commits are visited newest first, each
/// carrying the paths whose search currently stands there. At each commit the paths are compared
/// with a parent's in one pass over the two trees ([`RawTrees::changed_items`]).
pub(crate) struct LastCommitSearch<'r> {
    repo: &'r gix::Repository,
    pub(crate) trees: RawTrees<'r>,
    commits: HashMap<ObjectId, Rc<CommitNode>>,
}

impl<'r> LastCommitSearch<'r> {
    pub(crate) fn new(repo: &'r gix::Repository) -> Self {
        LastCommitSearch {
            repo,
            trees: RawTrees::new(repo),
            commits: HashMap::new(),
        }
    }

    fn run(mut self, tip: ObjectId, paths: &[String]) -> Result<HashMap<String, ObjectId>> {
        // The distinct paths, sorted by components; each with the names it was asked by.
        let mut named: Vec<(Vec<&[u8]>, &String)> = paths
            .iter()
            .filter_map(|p| {
                let parts = odb::components(p)?;
                Some((parts.into_iter().map(str::as_bytes).collect(), p))
            })
            .collect();
        named.sort();
        let mut table: Vec<Vec<&[u8]>> = Vec::new();
        let mut names: Vec<Vec<&String>> = Vec::new();
        for (parts, name) in named {
            if table.last() != Some(&parts) {
                table.push(parts);
                names.push(Vec::new());
            }
            if let Some(last) = names.last_mut() {
                last.push(name);
            }
        }
        let all: Vec<u32> = (0..table.len() as u32).collect();
        // Only the paths present at the tip are searched: those that differ from the empty tree.
        let tip_node = self.commit(tip)?;
        let mut present = Vec::new();
        let empty = self.trees.empty_tree();
        self.trees
            .changed_items(tip_node.tree, empty, &table, &all, &mut present)?;
        // The root path is always present, even in an empty tree.
        present.extend(all.iter().take_while(|i| table[**i as usize].is_empty()));
        present.sort_unstable();
        present.dedup();

        let mut found: HashMap<String, ObjectId> = HashMap::new();
        let mut pending: HashMap<ObjectId, Vec<u32>> = HashMap::from([(tip, present)]);
        let mut queue = BinaryHeap::from([(tip_node.time, tip)]);
        let mut changed = Vec::new();
        while let Some((_, id)) = queue.pop() {
            let Some(mut items) = pending.remove(&id) else {
                continue;
            };
            // Lists meeting at a merge base arrive in two runs.
            items.sort_unstable();
            let node = self.commit(id)?;
            self.read_ahead(&node)?;
            for parent in &node.parents {
                if items.is_empty() {
                    break;
                }
                let parent_node = self.commit(*parent)?;
                changed.clear();
                self.trees.changed_items(
                    node.tree,
                    parent_node.tree,
                    &table,
                    &items,
                    &mut changed,
                )?;
                changed.sort_unstable();
                // The items that look the same in this parent move there; the rest stay.
                let mut stay = Vec::with_capacity(changed.len());
                let mut go = Vec::with_capacity(items.len() - changed.len().min(items.len()));
                let mut c = changed.iter().peekable();
                for item in items.drain(..) {
                    if c.peek() == Some(&&item) {
                        c.next();
                        stay.push(item);
                    } else {
                        go.push(item);
                    }
                }
                items = stay;
                if go.is_empty() {
                    continue;
                }
                let list = pending.entry(*parent).or_default();
                if list.is_empty() {
                    queue.push((parent_node.time, *parent));
                }
                list.extend(go);
            }
            for item in items {
                for name in &names[item as usize] {
                    found.insert((*name).clone(), id);
                }
            }
        }
        Ok(found)
    }

    /// Before `node` is compared with its first parent: when that parent's tree is not at hand,
    /// reads the root trees of the next [`READ_AHEAD`] commits of the first-parent line at once
    /// (see [`RawTrees::prefetch`]).
    pub(crate) fn read_ahead(&mut self, node: &CommitNode) -> Result<()> {
        let Some(parent) = node.parents.first() else {
            return Ok(());
        };
        let parent_tree = self.commit(*parent)?.tree;
        if self.trees.is_cached(&parent_tree) {
            return Ok(());
        }
        let mut trees = Vec::with_capacity(READ_AHEAD);
        let mut current = Some(*parent);
        while let Some(id) = current.filter(|_| trees.len() < READ_AHEAD) {
            let node = self.commit(id)?;
            trees.push(node.tree);
            current = node.parents.first().copied();
        }
        self.trees.prefetch(&trees)
    }

    pub(crate) fn commit(&mut self, id: ObjectId) -> Result<Rc<CommitNode>> {
        if let Some(node) = self.commits.get(&id) {
            return Ok(node.clone());
        }
        let commit = self.repo.find_commit(id).map_err(internal)?;
        let decoded = commit.decode().map_err(internal)?;
        let time = decoded.committer().map_err(internal)?.seconds();
        let node = Rc::new(CommitNode {
            tree: decoded.tree(),
            parents: decoded.parents().collect(),
            time,
        });
        self.commits.insert(id, node.clone());
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::split_message;

    #[test]
    fn splits_title_and_body() {
        assert_eq!(split_message("Title\n"), ("Title".into(), "".into()));
        assert_eq!(
            split_message("Title\n\nBody line\nmore\n"),
            ("Title".into(), "Body line\nmore".into())
        );
        assert_eq!(
            split_message("Title\r\n\r\nBody\r\n"),
            ("Title".into(), "Body".into())
        );
        assert_eq!(split_message(""), ("".into(), "".into()));
    }
}
