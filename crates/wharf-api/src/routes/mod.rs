//! Handlers, one module per area of the Hub API.

pub mod account;
pub mod commit;
pub mod files;
pub mod inference;
pub mod lfs;
pub mod listing;
pub mod refs;
pub mod repo_paths;
pub mod repos;
pub mod xet;

use crate::error::{ApiError, ApiResult};
use wharf_core::{Error, RepoType};
use wharf_hub::RepoAddress;

/// Path parameters of every `/api/{kind}/{ns}/{name}/…` route; the optional ones are present
/// when the route names them.
#[derive(serde::Deserialize)]
pub struct RepoPath {
    pub kind: String,
    pub ns: String,
    pub name: String,
    #[serde(default)]
    pub rev: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
}

impl RepoPath {
    pub fn address(&self) -> ApiResult<RepoAddress> {
        let t = repo_kind(&self.kind)?;
        Ok(RepoAddress::new(t, &self.ns, &self.name))
    }

    /// The `{rev}` segment (routes without one never call this).
    pub fn rev(&self) -> &str {
        self.rev.as_deref().unwrap_or("main")
    }
}

/// `models` / `datasets` / `spaces`; anything else is an unknown route.
pub fn repo_kind(kind: &str) -> ApiResult<RepoType> {
    RepoType::from_plural(kind)
        .ok_or_else(|| ApiError::from(Error::new(wharf_core::ErrorKind::NotFound, "Not found")))
}
