//! Branches, tags and history.

use crate::access::Need;
use crate::ref_rules;
use crate::{Caller, Hub, RepoAddress, blocking};
use wharf_core::{Error, Result};
use wharf_git::{CommitInfo, RefExpect, Refs, is_valid_ref_name};

/// One page of history, newest first.
#[derive(Debug, Clone)]
pub struct CommitPage {
    pub commits: Vec<CommitInfo>,
    pub has_more: bool,
}

fn check_short_ref_name(name: &str, what: &str) -> Result<()> {
    if name.starts_with("refs/") || !is_valid_ref_name(name) {
        return Err(Error::bad_request(format!(
            "Invalid reference for a {what}: {name}"
        )));
    }
    Ok(())
}

impl Hub {
    pub async fn refs(&self, caller: &Caller, addr: &RepoAddress) -> Result<Refs> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let git = handle.git.clone();
        blocking(move || git.refs()).await
    }

    pub async fn commits(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        offset: usize,
        limit: usize,
    ) -> Result<CommitPage> {
        let handle = self.repo(caller, addr, Need::Read).await?;
        let head = self.resolve_revision(&handle, rev).await?;
        let git = handle.git.clone();
        let (commits, has_more) = blocking(move || git.log(&head, offset, limit)).await?;
        Ok(CommitPage { commits, has_more })
    }

    pub async fn create_branch(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        branch: &str,
        starting_point: Option<&str>,
    ) -> Result<()> {
        check_short_ref_name(branch, "branch")?;
        let handle = self.repo(caller, addr, Need::Write).await?;
        let target = self
            .resolve_revision(&handle, starting_point.unwrap_or("main"))
            .await?;
        let git = handle.git.clone();
        let full = format!("refs/heads/{branch}");
        blocking(move || {
            ref_rules::check_room(ref_rules::count(&git.refs()?), 1)?;
            git.set_ref(&full, &target, RefExpect::MustNotExist)
        })
        .await
    }

    pub async fn delete_branch(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        branch: &str,
    ) -> Result<()> {
        let handle = self.repo(caller, addr, Need::Write).await?;
        if branch == "main" {
            return Err(Error::forbidden("Cannot delete refs/heads/main"));
        }
        let git = handle.git.clone();
        let full = format!("refs/heads/{branch}");
        let existed = blocking(move || git.delete_ref(&full)).await?;
        if existed {
            Ok(())
        } else {
            Err(Error::revision_not_found(branch))
        }
    }

    pub async fn create_tag(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        rev: &str,
        tag: &str,
    ) -> Result<()> {
        check_short_ref_name(tag, "tag")?;
        let handle = self.repo(caller, addr, Need::Write).await?;
        let target = self.resolve_revision(&handle, rev).await?;
        let git = handle.git.clone();
        let full = format!("refs/tags/{tag}");
        blocking(move || {
            ref_rules::check_room(ref_rules::count(&git.refs()?), 1)?;
            git.set_ref(&full, &target, RefExpect::MustNotExist)
        })
        .await
    }

    pub async fn delete_tag(&self, caller: &Caller, addr: &RepoAddress, tag: &str) -> Result<()> {
        let handle = self.repo(caller, addr, Need::Write).await?;
        let git = handle.git.clone();
        let full = format!("refs/tags/{tag}");
        let existed = blocking(move || git.delete_ref(&full)).await?;
        if existed {
            Ok(())
        } else {
            Err(Error::revision_not_found(tag))
        }
    }
}
