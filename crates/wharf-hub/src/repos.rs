//! Repository lifecycle (create, delete, move, settings) and the read side (info, listing).

use crate::access::Need;
use crate::blob_rules::MAX_GIT_BLOB;
use crate::cards::card_state;
use crate::repo_folders::{CREATING, DELETING};
use crate::{Caller, Hub, RepoAddress, RepoHandle, blocking};
use serde_json::Value;
use wharf_card::DerivedInfo;
use wharf_core::lfs_pointer::LfsPointer;
use wharf_core::{
    Error, ErrorKind, RepoType, Result, normalize_repo_path, time::now_ms, validate_namespace,
    validate_repo_name,
};
use wharf_git::{GitRepo, Signature, TreeChange, TreeEntry};
use wharf_lfs::attributes::{DATASET_EXTRA_GITATTRIBUTES, DEFAULT_GITATTRIBUTES};
use wharf_meta::{NewRepo, Repo, RepoQuery, RepoSort};

/// `gated` as the settings endpoint takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatedSetting {
    Off,
    Auto,
    Manual,
}

/// A settings change; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    pub private: Option<bool>,
    pub gated: Option<GatedSetting>,
}

/// A repo as seen at one revision.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    pub repo: Repo,
    pub sha: String,
    /// Every file at that revision (no directories).
    pub files: Vec<TreeEntry>,
    pub card_data: Option<Value>,
    pub derived: DerivedInfo,
    /// Logical bytes of the repository (all revisions), see [`Hub::used_storage`].
    pub used_storage: u64,
}

/// A file a new repository starts with, committed (as `summary`) right after its initial
/// commit, before the repository exists for anyone: the web form's README with its license.
#[derive(Debug, Clone)]
pub struct StarterFile {
    pub path: String,
    pub content: Vec<u8>,
    pub summary: String,
}

/// A listing request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub repo_type: RepoType,
    pub search: Option<String>,
    pub author: Option<String>,
    pub filters: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub sort: RepoSort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
    /// Include each repo's file list (at `main`).
    pub with_files: bool,
}

fn new_storage_id() -> Result<String> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(Error::internal)?;
    Ok(hex::encode(raw))
}

fn initial_gitattributes(repo_type: RepoType) -> String {
    match repo_type {
        RepoType::Dataset => format!("{DEFAULT_GITATTRIBUTES}{DATASET_EXTRA_GITATTRIBUTES}"),
        _ => DEFAULT_GITATTRIBUTES.to_string(),
    }
}

/// The author of commits made through the API and the web: the account's name with a no-reply
/// address, as the Hub writes them. The account's real e-mail would otherwise be published in
/// the history of every public repository it commits to.
pub(crate) fn signature_of(caller: &Caller) -> Signature {
    let (name, email) = match &caller.user {
        Some(u) => (u.name.clone(), format!("{}@users.noreply.wharf", u.name)),
        None => ("wharf".to_string(), "wharf@localhost".to_string()),
    };
    Signature {
        name,
        email,
        time_ms: now_ms(),
    }
}

/// A starter file with its path normalized, refused unless a commit would take it.
fn check_starter(mut file: StarterFile) -> Result<StarterFile> {
    file.path = normalize_repo_path(&file.path)?;
    if file.content.len() as u64 > MAX_GIT_BLOB {
        return Err(Error::bad_request(format!(
            "{} is larger than 10 MiB: upload it after creating the repository",
            file.path
        )));
    }
    if LfsPointer::parse(&file.content).is_some() {
        return Err(Error::bad_request(format!(
            "{}: a new repository has no LFS objects for a pointer to name",
            file.path
        )));
    }
    Ok(file)
}

/// A new bare repository at `path` with the initial commit (`.gitattributes`) on `main`, and
/// the starter file committed on top of it.
fn init_with_history(
    path: &std::path::Path,
    attributes: String,
    starter: Option<StarterFile>,
    author: &Signature,
) -> Result<()> {
    let git = GitRepo::init(path)?;
    let change = TreeChange::Upsert {
        path: ".gitattributes".into(),
        data: attributes.into_bytes(),
    };
    let first = git.commit(
        "refs/heads/main",
        None,
        vec![change],
        author,
        "initial commit",
    )?;
    if let Some(file) = starter {
        let change = TreeChange::Upsert {
            path: file.path,
            data: file.content,
        };
        git.commit(
            "refs/heads/main",
            Some(&first),
            vec![change],
            author,
            &file.summary,
        )?;
    }
    Ok(())
}

/// The store query for a listing by `caller`: private repos only where the caller may see them.
pub(crate) fn repo_query(caller: &Caller, q: &ListQuery) -> RepoQuery {
    RepoQuery {
        repo_type: q.repo_type,
        search: q.search.clone(),
        author: q.author.clone(),
        tags: q.filters.clone(),
        pipeline_tag: q.pipeline_tag.clone(),
        visible_namespaces: caller.visible_namespaces(),
        see_all: caller.sees_everything(),
        sort: q.sort,
        descending: q.descending,
        offset: q.offset,
        limit: q.limit,
    }
}

impl Hub {
    /// Creates a repo with the Hub's initial commit (a `.gitattributes` routing weights to LFS).
    pub async fn create_repo(
        &self,
        caller: &Caller,
        repo_type: RepoType,
        namespace: Option<&str>,
        name: &str,
        private: bool,
    ) -> Result<Repo> {
        self.create_repo_with(caller, repo_type, namespace, name, private, None)
            .await
    }

    /// [`create_repo`](Hub::create_repo), with `starter` committed on top of the initial commit.
    /// One step: the repository appears with both commits or not at all (whatever fails, its
    /// git folder and its row are removed). The starter file follows the rules of a commit's
    /// regular files: a valid path, at most 10 MiB, and not an LFS pointer (a new repository
    /// has no LFS objects for it to name).
    pub async fn create_repo_with(
        &self,
        caller: &Caller,
        repo_type: RepoType,
        namespace: Option<&str>,
        name: &str,
        private: bool,
        starter: Option<StarterFile>,
    ) -> Result<Repo> {
        let namespace = match namespace.or(caller.name()) {
            Some(ns) => ns.to_string(),
            None => {
                return Err(Error::unauthorized(
                    "You must be authenticated to create a repo",
                ));
            }
        };
        validate_repo_name(name)?;
        caller.check_namespace(&namespace, Need::Write)?;
        let namespace = self.canonical_namespace(&namespace).await?;
        let starter = starter.map(check_starter).transpose()?;
        if self
            .meta
            .repo_by_name(repo_type, &namespace, name)
            .await?
            .is_some()
        {
            return Err(Error::conflict(format!(
                "You already created this {} repo",
                repo_type.as_str()
            )));
        }
        let storage_id = new_storage_id()?;
        let author = signature_of(caller);
        let attributes = initial_gitattributes(repo_type);
        // Built aside, then the row, then renamed into place (see `repo_folders`): a crash
        // leaves no folder in place without its row.
        self.build_repo_folder(&storage_id, move |path| {
            init_with_history(path, attributes, starter, &author)
        })
        .await?;
        let new = NewRepo {
            storage_id: storage_id.clone(),
            repo_type,
            namespace,
            name: name.to_string(),
            private,
            created_at: now_ms(),
        };
        let repo = match self.meta.create_repo(new).await {
            Ok(r) => r,
            Err(e) => {
                let staging = self.side_path(CREATING, &storage_id);
                let _ = self.discard_repo_folder(staging).await;
                return Err(e);
            }
        };
        if let Err(e) = self.publish_repo_folder(&storage_id).await {
            // Without its folder the row must not stay; a failure here is repaired at start-up.
            let _ = self.meta.delete_repo(repo.id).await;
            let staging = self.side_path(CREATING, &storage_id);
            let _ = self.discard_repo_folder(staging).await;
            return Err(e);
        }
        match self.index_main(&repo).await {
            Ok(()) => self
                .meta
                .repo_by_id(repo.id)
                .await?
                .ok_or_else(Error::repo_not_found),
            Err(e) => {
                // Nothing half-made stays behind: the row goes, then its folder (a crash in
                // between leaves an orphan folder, which fsck removes).
                if let Err(undo) = self.meta.delete_repo(repo.id).await {
                    tracing::warn!(error = %undo, "could not remove a repo whose creation failed");
                }
                self.forget_git(&storage_id);
                self.remove_repo_folder(&storage_id).await;
                Err(e)
            }
        }
    }

    /// Removes the git folder of a repository that is not (or no longer) in the store.
    async fn remove_repo_folder(&self, storage_id: &str) {
        let path = self.repo_path(storage_id);
        if let Err(e) = tokio::fs::remove_dir_all(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a repo folder");
        }
    }

    /// Namespaces `caller` may create repositories in (and move them to): their own name,
    /// then the organizations where they may write, as [`Caller::check_namespace`] decides.
    /// Empty for anonymous callers and read-only credentials.
    pub fn writable_namespaces(&self, caller: &Caller) -> Vec<String> {
        let own = caller.name().map(str::to_string);
        let orgs = caller.orgs.iter().map(|(org, _)| org.name.clone());
        own.into_iter()
            .chain(orgs)
            .filter(|ns| caller.check_namespace(ns, Need::Write).is_ok())
            .collect()
    }

    /// The account's own spelling of a namespace (lookups are case-insensitive, ids keep the
    /// account's case). An unknown namespace is refused.
    async fn canonical_namespace(&self, namespace: &str) -> Result<String> {
        validate_namespace(namespace)?;
        match self.meta.account_by_name(namespace).await? {
            Some(account) => Ok(account.name),
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("Namespace '{namespace}' does not exist"),
            )),
        }
    }

    /// Re-indexes `main` after it moved (card data, tags, sha, last modified). It reads the
    /// branch itself, under the repo's write lock held by the caller, so concurrent writers
    /// (API commits, git pushes) always leave the index showing the latest head.
    pub(crate) async fn index_main(&self, repo: &Repo) -> Result<()> {
        self.index_main_at(repo.id, &repo.storage_id, now_ms())
            .await
            .map(drop)
    }

    /// [`index_main`](Hub::index_main) recording `last_modified` as the time of the change;
    /// returns the head it indexed (None when `main` does not exist).
    pub(crate) async fn index_main_at(
        &self,
        repo_id: i64,
        storage_id: &str,
        last_modified: i64,
    ) -> Result<Option<String>> {
        let git = self.git_for(storage_id).await?;
        let g = git.clone();
        let Some(sha) = blocking(move || g.ref_target("refs/heads/main")).await? else {
            self.meta
                .record_commit(repo_id, last_modified, None)
                .await?;
            return Ok(None);
        };
        let state = card_state(git, sha.clone()).await?;
        self.meta
            .record_commit(
                repo_id,
                last_modified,
                Some(state.into_main_state(sha.clone())),
            )
            .await?;
        Ok(Some(sha))
    }

    /// Deletes the repository: its folder goes aside first, then its row, then the folder
    /// (see `repo_folders`), so a crash never leaves a folder in place without its row.
    pub async fn delete_repo(&self, caller: &Caller, addr: &RepoAddress) -> Result<()> {
        let repo = self
            .find_repo_row(addr)
            .await?
            .ok_or_else(Error::repo_not_found)?;
        caller.check_repo(&repo, Need::Admin)?;
        let lock = self.write_lock(repo.id);
        let _guard = lock.lock().await;
        let moved = self.set_repo_folder_aside(&repo.storage_id).await?;
        self.forget_git(&repo.storage_id);
        if let Err(e) = self.meta.delete_repo(repo.id).await {
            if moved {
                self.restore_repo_folder(&repo.storage_id).await?;
            }
            return Err(e);
        }
        // The row is gone, so the folder is unreachable; removing it is cleanup, not
        // correctness (what a failure leaves is discarded at the next start).
        let aside = self.side_path(DELETING, &repo.storage_id);
        if let Err(e) = self.discard_repo_folder(aside.clone()).await {
            tracing::warn!(path = %aside.display(), error = %e, "could not remove a deleted repo's folder");
        }
        Ok(())
    }

    pub async fn move_repo(
        &self,
        caller: &Caller,
        from: &RepoAddress,
        to_namespace: &str,
        to_name: &str,
    ) -> Result<()> {
        validate_repo_name(to_name)?;
        let repo = self
            .find_repo_row(from)
            .await?
            .ok_or_else(Error::repo_not_found)?;
        caller.check_repo(&repo, Need::Admin)?;
        caller.check_namespace(to_namespace, Need::Write)?;
        let to_namespace = &self.canonical_namespace(to_namespace).await?;
        self.meta
            .move_repo(repo.id, to_namespace, to_name)
            .await
            .map_err(|e| match e.kind {
                ErrorKind::Conflict => Error::conflict(format!(
                    "A {} repository called {to_namespace}/{to_name} already exists",
                    from.repo_type.as_str()
                )),
                _ => e,
            })
    }

    pub async fn update_settings(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        update: SettingsUpdate,
    ) -> Result<()> {
        let repo = self
            .find_repo_row(addr)
            .await?
            .ok_or_else(Error::repo_not_found)?;
        caller.check_repo(&repo, Need::Admin)?;
        if let Some(private) = update.private {
            self.meta.set_private(repo.id, private).await?;
        }
        if let Some(gated) = update.gated {
            let value = match gated {
                GatedSetting::Off => None,
                GatedSetting::Auto => Some("auto"),
                GatedSetting::Manual => Some("manual"),
            };
            self.meta.set_gated(repo.id, value).await?;
        }
        Ok(())
    }

    /// Resolves a revision of a repo the caller may read; `RevisionNotFound` when unknown.
    pub async fn resolve_revision(&self, handle: &RepoHandle, rev: &str) -> Result<String> {
        let git = handle.git.clone();
        let owned = rev.to_string();
        blocking(move || git.resolve(&owned))
            .await?
            .ok_or_else(|| Error::revision_not_found(rev))
    }

    /// Repo info at `revision` (default `main`).
    pub async fn repo_info(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        revision: Option<&str>,
    ) -> Result<RepoInfo> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let sha = self
            .resolve_revision(&handle, revision.unwrap_or("main"))
            .await?;
        let state = self.cached_card_state(&handle.repo, &sha).await?;
        let used_storage = self.used_storage(&handle.repo).await?;
        Ok(RepoInfo {
            repo: handle.repo,
            sha,
            files: state.files.clone(),
            card_data: state.card_data.clone(),
            derived: state.derived.clone(),
            used_storage,
        })
    }

    /// Listing with search and filters; private repos only for those who may see them.
    pub async fn list_repos(
        &self,
        caller: &Caller,
        q: &ListQuery,
    ) -> Result<Vec<(Repo, Option<Vec<TreeEntry>>)>> {
        let repos = self.meta.list_repos(&repo_query(caller, q)).await?;
        let mut out = Vec::with_capacity(repos.len());
        for repo in repos {
            let files = match (&repo.sha, q.with_files) {
                (Some(sha), true) => Some(self.cached_card_state(&repo, sha).await?.files.clone()),
                _ => None,
            };
            out.push((repo, files));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::test_support::{hub, user_caller};

    fn readme(content: &str) -> Option<StarterFile> {
        Some(StarterFile {
            path: "README.md".into(),
            content: content.as_bytes().to_vec(),
            summary: "Add README.md with license".into(),
        })
    }

    /// The repositories' git folders under the hub's repos folder, and anything left in its
    /// side areas (`.creating`, `.deleting`, `.trash`).
    fn folders(hub: &Hub) -> usize {
        let entries = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
            std::fs::read_dir(dir).map_or(Vec::new(), |d| d.flatten().map(|e| e.path()).collect())
        };
        entries(&hub.repos_dir)
            .into_iter()
            .map(|p| {
                let side = p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if side { entries(&p).len() } else { 1 }
            })
            .sum()
    }

    #[tokio::test]
    async fn a_repo_starts_with_its_readme_or_not_at_all() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let repo = hub
            .create_repo_with(
                &alice,
                RepoType::Model,
                None,
                "m",
                false,
                readme("---\nlicense: mit\n---\n# m\n"),
            )
            .await
            .expect("create");
        let addr = RepoAddress::new(RepoType::Model, "alice", "m");
        let info = hub.repo_info(&alice, &addr, None).await.expect("info");
        assert_eq!(
            Some(info.sha.clone()),
            repo.sha,
            "indexed at the README commit"
        );
        assert_eq!(
            info.card_data.and_then(|c| c.get("license").cloned()),
            Some(serde_json::json!("mit"))
        );
        let titles: Vec<String> = hub
            .commits(&alice, &addr, "main", 0, 10)
            .await
            .expect("log")
            .commits
            .into_iter()
            .map(|c| c.title)
            .collect();
        assert_eq!(titles, ["Add README.md with license", "initial commit"]);
        assert_eq!(folders(&hub), 1);

        // A starter file a commit would refuse leaves nothing behind.
        let pointer = wharf_core::lfs_pointer::LfsPointer {
            oid: "a".repeat(64),
            size: 5,
        };
        for bad in [
            readme(&pointer.to_text()),
            Some(StarterFile {
                path: "../escape".into(),
                content: b"x".to_vec(),
                summary: "x".into(),
            }),
        ] {
            assert!(
                hub.create_repo_with(&alice, RepoType::Model, None, "bad", false, bad)
                    .await
                    .is_err()
            );
        }
        // Nor does a name that is taken.
        let e = hub
            .create_repo_with(&alice, RepoType::Model, None, "m", false, readme("# m\n"))
            .await
            .err()
            .map(|e| e.kind);
        assert_eq!(e, Some(ErrorKind::Conflict));
        let bad = RepoAddress::new(RepoType::Model, "alice", "bad");
        assert!(hub.repo_info(&alice, &bad, None).await.is_err());
        assert_eq!(folders(&hub), 1, "no folder was left behind");
    }

    #[tokio::test]
    async fn writable_namespaces_follow_the_namespace_rule() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        user_caller(&hub, "bob").await;
        hub.add_org("acme", "bob", None).await.expect("org");
        hub.add_org("beta", "bob", None).await.expect("org");
        hub.set_org_member("acme", "alice", wharf_core::Role::Write)
            .await
            .expect("member");
        hub.set_org_member("beta", "alice", wharf_core::Role::Read)
            .await
            .expect("member");
        let alice = Caller {
            orgs: hub
                .meta
                .orgs_of_user(alice.user.as_ref().expect("user").id)
                .await
                .expect("orgs"),
            ..alice
        };
        assert_eq!(hub.writable_namespaces(&alice), ["alice", "acme"]);
        let read_only = Caller {
            scope: Some(wharf_core::Role::Read),
            ..alice.clone()
        };
        assert!(hub.writable_namespaces(&read_only).is_empty());
        assert!(hub.writable_namespaces(&Caller::anonymous()).is_empty());
    }
}
