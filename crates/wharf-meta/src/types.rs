//! Rows and queries of the metadata store.

use serde_json::Value;
use wharf_core::{RepoType, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    User,
    Org,
}

/// A user or an organization (they share one namespace).
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub kind: AccountKind,
    pub fullname: String,
    pub email: Option<String>,
    /// Argon2 PHC string; users only, and only when a password was set.
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub fullname: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub id: i64,
    pub user_id: i64,
    pub role: Role,
    pub label: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: i64,
    /// SHA-256 hex of the token value.
    pub token_hash: String,
    pub role: Role,
    pub label: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub id: i64,
    /// Opaque, immutable name of the repo's folder on disk, so renames touch only the database.
    pub storage_id: String,
    pub repo_type: RepoType,
    pub namespace: String,
    pub name: String,
    pub private: bool,
    /// `None`, `"auto"` or `"manual"`.
    pub gated: Option<String>,
    pub created_at: i64,
    pub last_modified: i64,
    /// Head of `main` when last recorded.
    pub sha: Option<String>,
    /// README.md front matter at `main`, as JSON.
    pub card_data: Option<Value>,
    pub tags: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    pub downloads: i64,
    pub likes: i64,
}

#[derive(Debug, Clone)]
pub struct NewRepo {
    pub storage_id: String,
    pub repo_type: RepoType,
    pub namespace: String,
    pub name: String,
    pub private: bool,
    pub created_at: i64,
}

/// What `main` looks like after a commit, for the indexed columns.
#[derive(Debug, Clone, Default)]
pub struct MainState {
    pub sha: String,
    pub card_data: Option<Value>,
    pub tags: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoSort {
    /// By id (creation order), ascending: the default listing order.
    Id,
    LastModified,
    CreatedAt,
    Downloads,
    Likes,
}

/// A listing query. Private repos are returned only when their namespace is in
/// `visible_namespaces` (the caller's own name and organizations) or `see_all` is set (admins).
#[derive(Debug, Clone)]
pub struct RepoQuery {
    pub repo_type: RepoType,
    /// Case-insensitive substring of `namespace/name`.
    pub search: Option<String>,
    /// Exact namespace, case-insensitive.
    pub author: Option<String>,
    /// Every one of these tags must be present.
    pub tags: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub visible_namespaces: Vec<String>,
    pub see_all: bool,
    pub sort: RepoSort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// A browser log-in session (the web interface's equivalent of a token).
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub created_at: i64,
    /// Epoch milliseconds after which the session no longer authenticates.
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: i64,
    /// SHA-256 hex of the session value (the value itself is never stored).
    pub session_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}
