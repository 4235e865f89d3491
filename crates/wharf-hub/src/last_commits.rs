//! The "last commit" column of directory listings, cached per (repository, commit, folder).
//! Commits are immutable, so a cached answer never goes stale. When a folder's answer for a
//! commit's only parent is cached, the new answer is derived from it by comparing the two
//! listings (entries whose id did not change keep their last commit; the others get this
//! commit) instead of walking history again. Writes warm the cache for the new head's root, so
//! the common path (commit, then open the repo page) costs one listing comparison. Answers are
//! also kept in the metadata store (the newest few per folder), so a restart does not turn
//! the next listing of a large folder into a history walk.

use crate::{Hub, RepoHandle, blocking};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use wharf_core::Result;
use wharf_git::{CommitInfo, GitRepo};

/// A folder's answer: entry path → its last commit.
pub(crate) type FolderCommits = Arc<HashMap<String, CommitInfo>>;

type Key = (String, String, String);

/// Answers kept in memory; each holds one folder's entries (about 200 bytes each).
const CAPACITY: usize = 128;
/// Answers kept in the metadata store per (repository, folder): the newest few, enough for the
/// next commit's answer to be derived from its parent's after a restart.
const STORED_PER_FOLDER: i64 = 4;

/// A small least-recently-inserted cache.
#[derive(Default)]
pub(crate) struct LastCommitCache {
    entries: Mutex<(HashMap<Key, FolderCommits>, VecDeque<Key>)>,
}

impl LastCommitCache {
    #[cfg(test)]
    fn clear(&self) {
        if let Ok(mut guard) = self.entries.lock() {
            guard.0.clear();
            guard.1.clear();
        }
    }

    fn get(&self, key: &Key) -> Option<FolderCommits> {
        self.entries.lock().ok()?.0.get(key).cloned()
    }

    fn put(&self, key: Key, value: FolderCommits) {
        let Ok(mut guard) = self.entries.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        if map.insert(key.clone(), value).is_none() {
            order.push_back(key);
        }
        while order.len() > CAPACITY {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

/// Derives a folder's answer at `commit` from its parent's, or walks history when that is
/// not possible (merge commits, root commits).
fn compute(
    git: &GitRepo,
    commit: &str,
    dir: &str,
    parent_answer: Option<(String, FolderCommits)>,
) -> Result<HashMap<String, CommitInfo>> {
    let now = git.list_tree(commit, dir, false)?.unwrap_or_default();
    let Some((parent, previous)) = parent_answer else {
        let paths: Vec<String> = now.iter().map(|e| e.path.clone()).collect();
        return git.last_commits(commit, &paths);
    };
    let before: HashMap<String, String> = git
        .list_tree(&parent, dir, false)?
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.path, e.oid))
        .collect();
    let this = git.commit_info(commit)?;
    let mut out = HashMap::with_capacity(now.len());
    for entry in now {
        let unchanged = before.get(&entry.path) == Some(&entry.oid);
        let last = match previous.get(&entry.path) {
            Some(c) if unchanged => c.clone(),
            _ => this.clone(),
        };
        out.insert(entry.path, last);
    }
    Ok(out)
}

impl Hub {
    /// The last commit of every entry of folder `dir` at `commit`.
    pub(crate) async fn folder_last_commits(
        &self,
        handle: &RepoHandle,
        commit: &str,
        dir: &str,
    ) -> Result<FolderCommits> {
        let key = (
            handle.repo.storage_id.clone(),
            commit.to_string(),
            dir.to_string(),
        );
        if let Some(hit) = self.cached_last_commits(handle, commit, dir).await {
            return Ok(hit);
        }
        let git = handle.git.clone();
        let c = commit.to_string();
        let parents = blocking(move || git.commit_info(&c).map(|i| i.parents)).await?;
        let parent_answer = match parents.as_slice() {
            [only] => self
                .cached_last_commits(handle, only, dir)
                .await
                .map(|v| (only.clone(), v)),
            _ => None,
        };
        let git = handle.git.clone();
        let (c, d) = (commit.to_string(), dir.to_string());
        let answer = Arc::new(blocking(move || compute(&git, &c, &d, parent_answer)).await?);
        self.last_commit_cache.put(key, answer.clone());
        self.store_last_commits(handle, commit, dir, &answer).await;
        Ok(answer)
    }

    /// A folder's answer from memory, else from the metadata store (answers survive restarts;
    /// a history walk over a large folder costs tens of milliseconds).
    async fn cached_last_commits(
        &self,
        handle: &RepoHandle,
        commit: &str,
        dir: &str,
    ) -> Option<FolderCommits> {
        let key = (
            handle.repo.storage_id.clone(),
            commit.to_string(),
            dir.to_string(),
        );
        if let Some(hit) = self.last_commit_cache.get(&key) {
            return Some(hit);
        }
        let stored = self
            .meta
            .folder_last_commits(handle.repo.id, dir, commit)
            .await
            .ok()??;
        let ids: HashMap<String, String> = serde_json::from_str(&stored).ok()?;
        let git = handle.git.clone();
        // Each distinct commit is read once; a stored id that no longer resolves (it cannot,
        // commits are immutable, but the row is only a cache) makes the row a miss.
        let answer = blocking(move || {
            let mut infos: HashMap<String, CommitInfo> = HashMap::new();
            let mut out = HashMap::with_capacity(ids.len());
            for (path, id) in ids {
                let info = match infos.get(&id) {
                    Some(i) => i.clone(),
                    None => {
                        let i = git.commit_info(&id)?;
                        infos.insert(id, i.clone());
                        i
                    }
                };
                out.insert(path, info);
            }
            Ok(out)
        })
        .await
        .ok()?;
        let answer = Arc::new(answer);
        self.last_commit_cache.put(key, answer.clone());
        Some(answer)
    }

    /// Keeps an answer across restarts (best effort: it is a cache).
    async fn store_last_commits(
        &self,
        handle: &RepoHandle,
        commit: &str,
        dir: &str,
        answer: &FolderCommits,
    ) {
        let ids: HashMap<&str, &str> = answer
            .iter()
            .map(|(path, info)| (path.as_str(), info.id.as_str()))
            .collect();
        let Ok(json) = serde_json::to_string(&ids) else {
            return;
        };
        if let Err(e) = self
            .meta
            .store_folder_last_commits(handle.repo.id, dir, commit, &json, STORED_PER_FOLDER)
            .await
        {
            tracing::debug!(error = %e, "could not store a last-commit answer");
        }
    }

    /// After a write: keeps the root folder's answer current for the new head when the old
    /// head's is cached (a cheap listing comparison; never a history walk on the write path).
    pub(crate) async fn warm_last_commits(&self, handle: &RepoHandle, head: &str) {
        let git = handle.git.clone();
        let h = head.to_string();
        let Ok(parents) = blocking(move || git.commit_info(&h).map(|i| i.parents)).await else {
            return;
        };
        let [parent] = parents.as_slice() else { return };
        if self.cached_last_commits(handle, parent, "").await.is_some()
            && let Err(e) = self.folder_last_commits(handle, head, "").await
        {
            tracing::debug!(error = %e, "could not warm the last-commit cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        Caller, CommitHeader, CommitOp, Credentials, Hub, HubConfig, NewUser, RepoAddress,
    };
    use wharf_core::{RepoType, Role};

    fn file(path: &str, content: &str) -> CommitOp {
        CommitOp::File {
            path: path.into(),
            content: content.as_bytes().to_vec(),
        }
    }

    async fn commit(
        hub: &Hub,
        caller: &Caller,
        addr: &RepoAddress,
        ops: Vec<CommitOp>,
        title: &str,
    ) -> String {
        let header = CommitHeader {
            summary: title.into(),
            ..Default::default()
        };
        hub.commit(caller, addr, "main", header, ops, false)
            .await
            .expect("commit")
            .commit_oid
    }

    /// The incremental answer equals a full history walk, commit after commit.
    #[tokio::test]
    async fn incremental_answers_match_a_full_walk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = Hub::open(&HubConfig {
            data_dir: dir.path().to_path_buf(),
        })
        .await
        .expect("hub");
        let user = NewUser {
            name: "alice".into(),
            email: "a@x".into(),
            fullname: None,
            password: None,
            admin: false,
        };
        hub.add_user(user).await.expect("user");
        let token = hub
            .add_token("alice", Role::Write, None, None)
            .await
            .expect("token");
        let caller = hub
            .authenticate(&Credentials::Token(token), "test")
            .await
            .expect("caller");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        hub.create_repo(&caller, RepoType::Model, None, "m", false)
            .await
            .expect("repo");
        commit(
            &hub,
            &caller,
            &addr,
            vec![file("a.txt", "1"), file("b.txt", "1"), file("d/c.txt", "1")],
            "first",
        )
        .await;
        let page = hub
            .tree(&caller, &addr, "main", "", false, true, 0, 100)
            .await
            .expect("tree");
        assert_eq!(page.last_commits["a.txt"].title, "first");
        let steps: [(Vec<CommitOp>, &str); 3] = [
            (vec![file("a.txt", "2")], "second"),
            (
                vec![
                    file("d/c.txt", "2"),
                    CommitOp::DeletedFile {
                        path: "b.txt".into(),
                    },
                ],
                "third",
            ),
            (vec![file("e.txt", "1")], "fourth"),
        ];
        for (ops, title) in steps {
            let head = commit(&hub, &caller, &addr, ops, title).await;
            let handle = hub
                .repo(&caller, &addr, crate::Need::Read)
                .await
                .expect("handle");
            let cached = hub
                .folder_last_commits(&handle, &head, "")
                .await
                .expect("cached");
            let paths: Vec<String> = cached.keys().cloned().collect();
            let walked = handle.git.last_commits(&head, &paths).expect("walk");
            for p in &paths {
                assert_eq!(cached[p].id, walked[p].id, "{p} after {title}");
            }
            assert_eq!(cached.len(), walked.len());
            // As after a restart: memory is empty, the stored answer is used as it was.
            hub.last_commit_cache.clear();
            let stored = hub
                .meta
                .folder_last_commits(handle.repo.id, "", &head)
                .await
                .expect("lookup");
            assert!(stored.is_some(), "answer stored after {title}");
            let reloaded = hub
                .folder_last_commits(&handle, &head, "")
                .await
                .expect("reloaded");
            for p in &paths {
                assert_eq!(reloaded[p].id, walked[p].id, "{p} reloaded after {title}");
                assert_eq!(reloaded[p].title, walked[p].title);
            }
        }
    }
}
