//! Commit metadata, history pages and "last commit that touched a path".

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;

use gix::ObjectId;
use gix::objs::tree::EntryMode;
use gix::revision::walk::Sorting;
use gix::traverse::commit::simple::CommitTimeOrder;
use wharf_core::Result;

use crate::odb::{self, internal};
use crate::{CommitInfo, GitRepo};

/// Decoded trees kept while searching history; beyond this the cache starts over.
const MAX_CACHED_TREES: usize = 20_000;

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
        order.push(nodes[i].0);
        for p in nodes[i].2.iter().filter_map(|p| index.get(p)) {
            pending_children[*p] -= 1;
            if pending_children[*p] == 0 {
                ready.push((nodes[*p].1, Reverse(*p)));
            }
        }
    }
    Ok(order)
}

type TreeIndex = Rc<HashMap<Vec<u8>, (EntryMode, ObjectId)>>;
/// What a path looks like in one commit: (mode, id), compared as values.
pub(crate) type Snapshot = (u16, ObjectId);

pub(crate) struct CommitNode {
    pub(crate) tree: ObjectId,
    pub(crate) parents: Vec<ObjectId>,
    time: i64,
}

/// One pass over history shared by all requested paths: commits are visited newest first, each
/// carrying the paths whose search currently stands there.
pub(crate) struct LastCommitSearch<'r> {
    repo: &'r gix::Repository,
    trees: HashMap<ObjectId, TreeIndex>,
    commits: HashMap<ObjectId, Rc<CommitNode>>,
}

impl<'r> LastCommitSearch<'r> {
    pub(crate) fn new(repo: &'r gix::Repository) -> Self {
        LastCommitSearch {
            repo,
            trees: HashMap::new(),
            commits: HashMap::new(),
        }
    }

    fn run(mut self, tip: ObjectId, paths: &[String]) -> Result<HashMap<String, ObjectId>> {
        let mut pending: HashMap<ObjectId, Vec<(String, Snapshot)>> = HashMap::new();
        let tip_node = self.commit(tip)?;
        for path in paths {
            let Some(parts) = odb::components(path) else {
                continue;
            };
            if let Some(snapshot) = self.lookup(tip_node.tree, &parts)? {
                pending
                    .entry(tip)
                    .or_default()
                    .push((path.clone(), snapshot));
            }
        }
        let mut queue = BinaryHeap::from([(tip_node.time, tip)]);
        let mut found = HashMap::new();
        while let Some((_, id)) = queue.pop() {
            let Some(items) = pending.remove(&id) else {
                continue;
            };
            let node = self.commit(id)?;
            let parents = node
                .parents
                .iter()
                .map(|p| self.commit(*p).map(|n| (*p, n)))
                .collect::<Result<Vec<_>>>()?;
            for (path, snapshot) in items {
                match self.same_in_parent(&parents, &path, snapshot)? {
                    Some((parent, time)) => {
                        let list = pending.entry(parent).or_default();
                        if list.is_empty() {
                            queue.push((time, parent));
                        }
                        list.push((path, snapshot));
                    }
                    None => {
                        found.insert(path, id);
                    }
                }
            }
        }
        Ok(found)
    }

    /// The first parent in which `path` looks exactly like `snapshot`, with that parent's time.
    fn same_in_parent(
        &mut self,
        parents: &[(ObjectId, Rc<CommitNode>)],
        path: &str,
        snapshot: Snapshot,
    ) -> Result<Option<(ObjectId, i64)>> {
        let parts = odb::components(path).unwrap_or_default();
        for (id, node) in parents {
            if self.lookup(node.tree, &parts)? == Some(snapshot) {
                return Ok(Some((*id, node.time)));
            }
        }
        Ok(None)
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

    /// The path's (mode, id) below `root`; the root itself for the empty path.
    pub(crate) fn lookup(&mut self, root: ObjectId, parts: &[&str]) -> Result<Option<Snapshot>> {
        let mut current: Snapshot = (gix::objs::tree::EntryKind::Tree as u16, root);
        for part in parts {
            if current.0 != gix::objs::tree::EntryKind::Tree as u16 {
                return Ok(None);
            }
            let index = self.tree(current.1)?;
            match index.get(part.as_bytes()) {
                Some((mode, oid)) => current = (mode.kind() as u16, *oid),
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    fn tree(&mut self, id: ObjectId) -> Result<TreeIndex> {
        if let Some(index) = self.trees.get(&id) {
            return Ok(index.clone());
        }
        if self.trees.len() >= MAX_CACHED_TREES {
            self.trees.clear();
        }
        let entries = odb::read_tree(self.repo, id)?;
        let index: TreeIndex = Rc::new(
            entries
                .into_iter()
                .map(|e| (e.filename.into(), (e.mode, e.oid)))
                .collect(),
        );
        self.trees.insert(id, index.clone());
        Ok(index)
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
