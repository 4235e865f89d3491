//! Metadata store: accounts (users and organizations), memberships, tokens, repositories and
//! their indexed model-card fields, and the web interface's log-in sessions. One trait,
//! [`MetaStore`]; the embedded implementation is [`SqliteStore`] (sqlx, migrations under
//! `migrations/sqlite`). A PostgreSQL implementation can be added behind the same trait. All methods return `wharf_core::Error`: `Conflict` for unique
//! violations, `Internal` for database faults.

mod sqlite;
mod sqlite_fsck;
mod sqlite_storage;
mod sqlite_xet;
mod types;

pub use sqlite::SqliteStore;
pub use types::*;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use wharf_core::{RepoType, Result, Role};

/// Everything Wharf keeps besides git objects and LFS blobs.
#[async_trait]
pub trait MetaStore: Send + Sync {
    // --- accounts -------------------------------------------------------------------------
    /// Creates a user or organization. `Conflict` when the name is taken (case-insensitively,
    /// users and organizations share one namespace).
    async fn create_account(&self, new: NewAccount) -> Result<Account>;
    /// Case-insensitive lookup.
    async fn account_by_name(&self, name: &str) -> Result<Option<Account>>;
    async fn account_by_id(&self, id: i64) -> Result<Option<Account>>;

    // --- organizations --------------------------------------------------------------------
    /// Adds or changes a member's role.
    async fn set_membership(&self, org_id: i64, user_id: i64, role: Role) -> Result<()>;
    async fn role_in_org(&self, org_id: i64, user_id: i64) -> Result<Option<Role>>;
    /// The organizations a user belongs to, with the user's role, ordered by name.
    async fn orgs_of_user(&self, user_id: i64) -> Result<Vec<(Account, Role)>>;

    // --- tokens ---------------------------------------------------------------------------
    /// Stores a token by the SHA-256 hex of its value (never the value). `Conflict` on a duplicate.
    async fn create_token(&self, new: NewToken) -> Result<Token>;
    /// The live (not revoked) token with this hash, and its owner.
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<(Token, Account)>>;
    /// Revokes; false when no live token had that hash.
    async fn revoke_token(&self, token_hash: &str) -> Result<bool>;
    /// The live (not revoked) token with this id: what re-checks a credential minted from it.
    async fn live_token(&self, token_id: i64) -> Result<Option<Token>>;

    // --- repositories ---------------------------------------------------------------------
    /// `Conflict` when (type, namespace, name) exists, case-insensitively.
    async fn create_repo(&self, new: NewRepo) -> Result<Repo>;
    /// Case-insensitive lookup of a current name.
    async fn repo_by_name(
        &self,
        repo_type: RepoType,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Repo>>;
    /// The repo that used to be called so before a move (case-insensitive), if any.
    async fn repo_by_old_name(
        &self,
        repo_type: RepoType,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Repo>>;
    async fn repo_by_id(&self, id: i64) -> Result<Option<Repo>>;
    /// The repo with this current name, else the one that used to be called so, in one query,
    /// so that a missing name costs the same as an existing one (no timing oracle).
    async fn repo_by_current_or_old_name(
        &self,
        repo_type: RepoType,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Repo>>;
    /// Filtered, sorted, paged listing. See [`RepoQuery`].
    async fn list_repos(&self, query: &RepoQuery) -> Result<Vec<Repo>>;
    /// Removes the repo row and everything hanging off it (tags, redirects, LFS links).
    async fn delete_repo(&self, id: i64) -> Result<()>;
    /// Renames; `Conflict` when the target exists. Records a redirect from the old name and
    /// drops any redirect that the new name shadowed.
    async fn move_repo(&self, id: i64, namespace: &str, name: &str) -> Result<()>;
    async fn set_private(&self, id: i64, private: bool) -> Result<()>;
    /// `None` = not gated, or `"auto"` / `"manual"`.
    async fn set_gated(&self, id: i64, gated: Option<&str>) -> Result<()>;
    /// After a commit: sets `last_modified`, and when `main` moved, `sha` and the card fields
    /// (replacing the repo's tag rows) in one transaction.
    async fn record_commit(
        &self,
        id: i64,
        last_modified: i64,
        main: Option<MainState>,
    ) -> Result<()>;
    /// Adds to the download counter.
    async fn add_downloads(&self, id: i64, n: i64) -> Result<()>;

    // --- LFS objects ----------------------------------------------------------------------
    /// Records that this repo owns an uploaded, verified LFS object (idempotent).
    async fn link_lfs_object(&self, repo_id: i64, oid: &str, size: i64) -> Result<()>;
    /// The size of the object when this repo owns it.
    async fn repo_lfs_object(&self, repo_id: i64, oid: &str) -> Result<Option<i64>>;
    /// Of `oids`, those this repo owns, with their sizes.
    async fn repo_lfs_objects(&self, repo_id: i64, oids: &[String])
    -> Result<HashMap<String, i64>>;

    // --- web interface --------------------------------------------------------------------
    /// The oldest user account with this e-mail address (case-insensitive); organizations never
    /// match.
    async fn user_by_email(&self, email: &str) -> Result<Option<Account>>;
    /// The members of an organization with their roles, ordered by name.
    async fn org_members(&self, org_id: i64) -> Result<Vec<(Account, Role)>>;
    /// A user's live (not revoked) tokens, newest first.
    async fn tokens_of_user(&self, user_id: i64) -> Result<Vec<Token>>;
    /// Revokes one of the user's own live tokens by id; false when the user has no such token.
    async fn revoke_token_of_user(&self, user_id: i64, token_id: i64) -> Result<bool>;
    /// How many repos [`list_repos`](MetaStore::list_repos) would return without paging
    /// (`offset`, `limit` and the sort are ignored).
    async fn count_repos(&self, query: &RepoQuery) -> Result<i64>;
    /// How many of the repos matching `query` (paging ignored) carry each tag, most frequent
    /// first, ties by tag name.
    async fn tag_counts(&self, query: &RepoQuery) -> Result<Vec<(String, i64)>>;

    // --- sessions -------------------------------------------------------------------------
    /// Stores a session by the SHA-256 hex of its value. `Conflict` on a duplicate.
    async fn create_session(&self, new: NewSession) -> Result<Session>;
    /// The session with this hash and its user, when it has not expired at `now` (epoch ms).
    async fn session_by_hash(
        &self,
        session_hash: &str,
        now: i64,
    ) -> Result<Option<(Session, Account)>>;
    /// Ends a session; false when none had that hash.
    async fn delete_session(&self, session_hash: &str) -> Result<bool>;
    /// Removes every session expired at `now`; returns how many.
    async fn delete_expired_sessions(&self, now: i64) -> Result<u64>;

    // --- Xet storage ----------------------------------------------------------------------
    /// Records a xorb whose object is already stored durably, with its dedup index rows, in one
    /// transaction. Idempotent: false when the xorb was already known (nothing is changed then).
    async fn insert_xet_xorb(&self, xorb: &XetXorb, dedup: &[XetChunkRef]) -> Result<bool>;
    async fn xet_xorb(&self, hash: &str) -> Result<Option<XetXorb>>;
    /// The known xorbs among `hashes` (unknown ones are left out; order unspecified).
    async fn xet_xorbs(&self, hashes: &[String]) -> Result<Vec<XetXorb>>;
    /// A registered file with its terms in order.
    async fn xet_file(&self, file_hash: &str) -> Result<Option<XetFile>>;
    /// For each of `sha256s` that has a registered Xet file, the hash of the oldest such file.
    async fn xet_hashes_for_sha256s(&self, sha256s: &[String]) -> Result<HashMap<String, String>>;
    /// In one transaction: registers the files not yet known (with their terms; every term's
    /// xorb must be recorded), links each file's (sha256, size) to `link_to` like an LFS upload
    /// (`None`: an LFS conversion, which links nothing new), and adds the dedup rows. A file hash
    /// already registered with another sha256 or size is a `BadRequest` and nothing is changed.
    async fn register_xet_files(
        &self,
        link_to: Option<i64>,
        files: &[NewXetFile],
        dedup: &[XetChunkRef],
    ) -> Result<XetRegistration>;
    /// Whether `repo_id` owns (has linked) the sha256 of the registered file `file_hash`.
    async fn repo_has_xet_file(&self, repo_id: i64, file_hash: &str) -> Result<bool>;
    /// Up to `limit` xorbs that hold `chunk_hash` (per the dedup index) and are visible: some
    /// registered file uses them whose sha256 a repository `visible` may see has linked.
    async fn xet_dedup_lookup(
        &self,
        chunk_hash: &str,
        visible: &XetVisibility,
        limit: i64,
    ) -> Result<Vec<String>>;

    /// Up to `limit` xorbs used by the visible files (linked by a repository `visible` may
    /// see) that use any of `xorbs`: the rest of the uploads a dedup match belongs to, which is
    /// what the Hub's answer (the whole shard of an upload) covers too.
    async fn xet_dedup_siblings(
        &self,
        xorbs: &[String],
        visible: &XetVisibility,
        limit: i64,
    ) -> Result<Vec<String>>;

    // --- LFS -> Xet conversion jobs -------------------------------------------------------
    /// Queues the conversion of an LFS object, to run at `due` or later. A queued job is only
    /// postponed (to the later of both times); a done or failed one is left as it is.
    async fn enqueue_xet_job(&self, oid: &str, due: i64) -> Result<()>;
    /// The queued job that may run at `now` and has waited longest.
    async fn next_xet_job(&self, now: i64) -> Result<Option<String>>;
    /// When the earliest queued job becomes due, if any job is queued.
    async fn next_xet_due(&self) -> Result<Option<i64>>;
    /// Marks a job done (`error` None) or records a failed attempt: it is queued again at
    /// `retry_at`, or marked failed when `retry_at` is None.
    async fn finish_xet_job(
        &self,
        oid: &str,
        error: Option<&str>,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<XetJobState>;
    /// How many attempts a job has made so far (0 when unknown).
    async fn xet_job_attempts(&self, oid: &str) -> Result<i64>;
    /// LFS objects some repository links that have neither a Xet file nor a job (backfill).
    async fn lfs_oids_without_xet(&self, limit: i64) -> Result<Vec<String>>;

    // --- storage accounting and garbage collection ----------------------------------------
    /// Records another upload of a known xorb: its `created_at` moves up to `now`, so garbage
    /// collection's grace period counts from the latest upload. False when the xorb is not
    /// recorded (the caller stores it then). Garbage collection deletes a xorb's row only if
    /// this did not happen after its cutoff, which makes "re-upload while collecting" safe.
    async fn touch_xet_xorb(&self, hash: &str, now: i64) -> Result<bool>;
    /// The ownership links of one repository, or of all (`None`), ordered by repository, oid.
    async fn lfs_links(&self, repo_id: Option<i64>) -> Result<Vec<LfsLink>>;
    /// Of `oids`, those some repository links.
    async fn linked_lfs_oids(&self, oids: &[String]) -> Result<HashSet<String>>;
    /// Per repository (one, or all with `None`): the distinct xorbs used by the Xet files of
    /// the objects it links, and their stored bytes. Repositories using none are left out.
    async fn xet_usage(&self, repo_id: Option<i64>) -> Result<Vec<XetRepoUsage>>;
    async fn xet_totals(&self) -> Result<XetTotals>;
    /// The mark phase of garbage collection. Live files: linked by some repository, or
    /// created at or after `cutoff`. Live xorbs: used by a live file, or recorded at or after
    /// `cutoff` (an upload whose shard has not arrived yet). Everything else is garbage.
    async fn xet_garbage(&self, cutoff: i64) -> Result<XetGarbage>;
    /// Deletes a registered file (and its terms) if it is still garbage as of `cutoff`, in
    /// one statement; false when it is live again (or gone).
    async fn delete_xet_file_if_garbage(&self, file_hash: &str, cutoff: i64) -> Result<bool>;
    /// Deletes a xorb's row (and its dedup rows) if no file uses it and it was not recorded or
    /// touched at or after `cutoff`, in one statement; false otherwise.
    async fn delete_xet_xorb_if_garbage(&self, hash: &str, cutoff: i64) -> Result<bool>;

    // --- consistency checks (wharf fsck) ---------------------------------------------------
    /// The repo whose folder is named `storage_id`, if any.
    async fn repo_by_storage_id(&self, storage_id: &str) -> Result<Option<Repo>>;
    /// Every repository's folder, indexed head of `main` and last modification, by id: what
    /// the start-up reconciliation compares with the refs (no card fields, no paging).
    async fn repo_heads(&self) -> Result<Vec<RepoHead>>;
    /// The distinct xorbs the terms of each registered Xet file use, by file.
    async fn xet_file_xorbs(&self) -> Result<Vec<XetFileXorb>>;

    // --- caches of derived git data --------------------------------------------------------
    /// The stored last-commit answer (JSON `{path: commit id}`) of folder `dir` at `commit`.
    async fn folder_last_commits(
        &self,
        repo_id: i64,
        dir: &str,
        commit: &str,
    ) -> Result<Option<String>>;
    /// Stores a last-commit answer and keeps only the `keep` newest of that folder.
    async fn store_folder_last_commits(
        &self,
        repo_id: i64,
        dir: &str,
        commit: &str,
        entries: &str,
        keep: i64,
    ) -> Result<()>;
}
