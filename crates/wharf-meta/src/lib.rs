//! Metadata store: accounts (users and organizations), memberships, tokens, repositories and
//! their indexed model-card fields, and the web interface's log-in sessions. One trait,
//! [`MetaStore`]; the embedded implementation is [`SqliteStore`] (sqlx, migrations under
//! `migrations/sqlite`). A PostgreSQL implementation can be added behind the same trait. All methods return `wharf_core::Error`: `Conflict` for unique
//! violations, `Internal` for database faults.

mod sqlite;
mod types;

pub use sqlite::SqliteStore;
pub use types::*;

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
}
