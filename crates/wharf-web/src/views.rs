//! What templates show, computed once in Rust so that templates stay simple: display strings,
//! URLs, and the caller's rights (as the hub decides them).

use crate::format::{date_time, repo_url, short_count, time_ago};
use wharf_core::RepoType;
use wharf_hub::{Caller, Need, Repo, RepoAddress};

/// The header and tabs of every repository page.
#[derive(Clone)]
pub struct RepoHead {
    /// `model`, `dataset` or `space`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// `ns/name`.
    pub id: String,
    /// `/{prefix}{ns}/{name}`.
    pub url: String,
    pub private: bool,
    pub gated: bool,
    pub downloads: String,
    pub likes: String,
    pub can_write: bool,
    pub can_admin: bool,
    /// Which tab is active: `card`, `files`, `commits` or `settings`.
    pub tab: &'static str,
}

impl RepoHead {
    pub fn new(repo: &Repo, caller: &Caller, tab: &'static str) -> RepoHead {
        RepoHead {
            kind: repo.repo_type.as_str(),
            namespace: repo.namespace.clone(),
            name: repo.name.clone(),
            id: format!("{}/{}", repo.namespace, repo.name),
            url: repo_url(repo.repo_type, &repo.namespace, &repo.name),
            private: repo.private,
            gated: repo.gated.is_some(),
            downloads: short_count(repo.downloads),
            likes: short_count(repo.likes),
            can_write: caller.check_repo(repo, Need::Write).is_ok(),
            can_admin: caller.check_repo(repo, Need::Admin).is_ok(),
            tab,
        }
    }

    /// The title of the card tab.
    pub fn card_label(&self) -> &'static str {
        match self.kind {
            "dataset" => "Dataset card",
            "space" => "App",
            _ => "Model card",
        }
    }

    /// The address the hub takes for this repo (its current name).
    pub fn address(&self) -> RepoAddress {
        let repo_type = RepoType::from_singular(self.kind).unwrap_or(RepoType::Model);
        RepoAddress::new(repo_type, &self.namespace, &self.name)
    }
}

/// One result of a listing.
pub struct RepoCard {
    pub id: String,
    pub url: String,
    pub kind: &'static str,
    pub task: Option<String>,
    pub updated: String,
    pub updated_title: String,
    pub downloads: String,
    pub likes: String,
    pub private: bool,
}

impl RepoCard {
    pub fn new(repo: &Repo) -> RepoCard {
        RepoCard {
            id: format!("{}/{}", repo.namespace, repo.name),
            url: repo_url(repo.repo_type, &repo.namespace, &repo.name),
            kind: repo.repo_type.as_str(),
            task: repo.pipeline_tag.clone(),
            updated: time_ago(repo.last_modified),
            updated_title: date_time(repo.last_modified),
            downloads: short_count(repo.downloads),
            likes: short_count(repo.likes),
            private: repo.private,
        }
    }
}

/// A branch or tag in the revision selector.
pub struct RevOption {
    pub name: String,
    pub kind: &'static str,
    pub selected: bool,
    /// Where choosing it leads (same page kind and path at that revision).
    pub href: String,
}

/// Builds the revision selector: branches, then tags, then the current revision when it is a
/// commit id or another ref not listed.
pub fn rev_options(
    refs: &wharf_hub::Refs,
    current: &str,
    href: impl Fn(&str) -> String,
) -> Vec<RevOption> {
    let mut out = Vec::new();
    for (list, kind) in [(&refs.branches, "branch"), (&refs.tags, "tag")] {
        for r in list {
            out.push(RevOption {
                name: r.name.clone(),
                kind,
                selected: r.name == current,
                href: href(&r.name),
            });
        }
    }
    if !out.iter().any(|o| o.selected) {
        out.push(RevOption {
            name: current.to_string(),
            kind: "revision",
            selected: true,
            href: href(current),
        });
    }
    out
}

/// One page link of a paginated list.
pub struct PageLink {
    pub label: String,
    pub href: String,
    pub current: bool,
}

/// Previous / next links for list pages (`p` is zero-based).
pub fn pager(p: usize, has_more: bool, href: impl Fn(usize) -> String) -> Vec<PageLink> {
    let mut links = Vec::new();
    if p > 0 {
        links.push(PageLink {
            label: "← Previous".into(),
            href: href(p - 1),
            current: false,
        });
    }
    if p > 0 || has_more {
        links.push(PageLink {
            label: format!("Page {}", p + 1),
            href: href(p),
            current: true,
        });
    }
    if has_more {
        links.push(PageLink {
            label: "Next →".into(),
            href: href(p + 1),
            current: false,
        });
    }
    links
}
