//! Metadata store: accounts (users and organizations), memberships, tokens, repositories and
//! their indexed model-card fields. One trait, [`MetaStore`]; the embedded implementation is
//! [`SqliteStore`] (sqlx, migrations under `migrations/sqlite`). A PostgreSQL implementation can be
//! added behind the same trait. All methods return `wharf_core::Error`: `Conflict` for unique
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
}
