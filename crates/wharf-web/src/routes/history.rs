//! `/{ns}/{name}/commits/{rev}` (history, or one file's with `?path=`), `/commit/{sha}` (its
//! diff) and `/compare/{base}...{head}`.

use crate::WebState;
use crate::diff::{DiffRow, parse_patch, stats};
use crate::error::WebResult;
use crate::format::{
    date_time, human_size, path_url, query_value, redirect, segment, short_sha, time_ago,
};
use crate::routes::files::repo_head;
use crate::routes::{ListParams, Target, page};
use crate::session::{Chrome, Ctx};
use crate::views::{PageLink, RepoHead, RevOption, pager, rev_options};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use wharf_core::Error;
use wharf_hub::{ChangeKind, CommitInfo, DiffReport, FileDiff, PAGE_DIFF_LIMITS, Withheld};

/// Commits per history page.
const COMMITS_PAGE: usize = 50;
/// Diff rows one page draws in all (each file is also cut at [`crate::diff::MAX_ROWS`]); later
/// files are listed without their rows, so that a page stays a size a browser can show.
const MAX_PAGE_ROWS: usize = 20_000;

pub struct CommitRow {
    pub title: String,
    pub author: String,
    pub short: String,
    pub href: String,
    pub browse_href: String,
    pub when: String,
    pub date: String,
}

fn commit_row(repo_url: &str, c: &CommitInfo) -> CommitRow {
    CommitRow {
        title: c.title.clone(),
        author: c.author_name.clone(),
        short: short_sha(&c.id),
        href: format!("{repo_url}/commit/{}", c.id),
        browse_href: format!("{repo_url}/tree/{}", c.id),
        when: time_ago(c.date_ms),
        date: date_time(c.date_ms),
    }
}

#[derive(Template)]
#[template(path = "commits.html")]
struct CommitsPage {
    chrome: Chrome,
    repo: RepoHead,
    rev: String,
    path: String,
    path_href: String,
    revs: Vec<RevOption>,
    commits: Vec<CommitRow>,
    pages: Vec<PageLink>,
}

/// `GET /{ns}/{name}/commits/{rev}[?path=…][&p=…]`: 50 commits a page.
pub async fn commits(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    q: ListParams,
) -> WebResult<Response> {
    let (head, addr) = repo_head(&s, &ctx, &t, "files").await?;
    let p = q.page();
    let offset = p.saturating_mul(COMMITS_PAGE);
    let path = q.get("path").unwrap_or("").trim_matches('/').to_string();
    let history = if path.is_empty() {
        s.hub
            .commits(&ctx.caller, &addr, &t.rev, offset, COMMITS_PAGE)
            .await?
    } else {
        s.hub
            .file_history(&ctx.caller, &addr, &t.rev, &path, offset, COMMITS_PAGE)
            .await?
    };
    let refs = s.hub.refs(&ctx.caller, &addr).await?;
    let path_query = if path.is_empty() {
        String::new()
    } else {
        format!("path={}&", query_value(&path))
    };
    let base = format!("{}/commits/{}", head.url, segment(&t.rev));
    let page_view = CommitsPage {
        chrome: ctx.chrome(),
        revs: rev_options(&refs, &t.rev, |r| {
            let url = format!("{}/commits/{}", head.url, segment(r));
            match path_query.strip_suffix('&') {
                Some(q) => format!("{url}?{q}"),
                None => url,
            }
        }),
        commits: history
            .commits
            .iter()
            .map(|c| commit_row(&head.url, c))
            .collect(),
        pages: pager(p, history.has_more, |n| format!("{base}?{path_query}p={n}")),
        path_href: format!("{}/blob/{}/{}", head.url, segment(&t.rev), path_url(&path)),
        rev: t.rev.clone(),
        path,
        repo: head,
    };
    page(&page_view)
}

/// One file of a diff page.
pub struct FileView {
    pub path: String,
    pub anchor: String,
    pub change: &'static str,
    pub note: Option<String>,
    pub rows: Vec<DiffRow>,
    pub truncated: bool,
    pub added: usize,
    pub removed: usize,
    pub href: Option<String>,
}

/// The note under a file's header: why it shows no lines, when it shows none.
fn file_note(f: &FileDiff, rows_left: bool) -> Option<String> {
    let sizes = || format!("{} → {}", human_size(f.old_size), human_size(f.new_size));
    if f.lfs {
        return Some(format!("LFS file: {}", sizes()));
    }
    if f.binary {
        return Some(format!("Binary file: {}", sizes()));
    }
    match (f.withheld, f.patch.as_deref()) {
        (Some(Withheld::TooLarge), _) => Some(format!(
            "Diff too large to show: {} (files up to {} and {} lines are shown).",
            sizes(),
            human_size(PAGE_DIFF_LIMITS.max_patch_side),
            PAGE_DIFF_LIMITS.max_patch_lines
        )),
        (Some(Withheld::OverBudget), _) | (None, None) => {
            Some("Diff too large to show: this page shows no more changes.".to_string())
        }
        (None, Some("")) => Some("File mode changed.".to_string()),
        (None, Some(_)) if !rows_left => {
            Some("Diff too large to show: this page shows no more changes.".to_string())
        }
        (None, Some(_)) => None,
    }
}

fn file_views(repo_url: &str, new_rev: &str, files: &[FileDiff]) -> Vec<FileView> {
    let mut rows_left = MAX_PAGE_ROWS;
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let change = match f.change {
                ChangeKind::Added => "added",
                ChangeKind::Modified => "modified",
                ChangeKind::Deleted => "deleted",
            };
            let note = file_note(f, rows_left > 0);
            let (rows, truncated) = match &f.patch {
                Some(p) if note.is_none() => parse_patch(p, rows_left),
                _ => (Vec::new(), false),
            };
            rows_left = rows_left.saturating_sub(rows.len());
            let (added, removed) = stats(&rows);
            FileView {
                anchor: format!("file-{i}"),
                href: (f.change != ChangeKind::Deleted)
                    .then(|| format!("{repo_url}/blob/{}/{}", segment(new_rev), path_url(&f.path))),
                path: f.path.clone(),
                change,
                note,
                rows,
                truncated,
                added,
                removed,
            }
        })
        .collect()
}

/// What a diff page says above its files when it does not show everything.
fn diff_notice(report: &DiffReport) -> Option<String> {
    if report.more_files {
        Some(format!(
            "Diff too large to show in full: only the first {} changed files are listed.",
            report.files.len()
        ))
    } else if report.over_budget {
        Some("Diff too large to show in full: some files are listed without their changes.".into())
    } else {
        None
    }
}

#[derive(Template)]
#[template(path = "commit.html")]
struct CommitPage {
    chrome: Chrome,
    repo: RepoHead,
    title: String,
    message: String,
    author: String,
    sha: String,
    date: String,
    parents: Vec<(String, String)>,
    browse_href: String,
    files: Vec<FileView>,
    notice: Option<String>,
}

/// `GET /{ns}/{name}/commit/{sha}`: every file the commit changed, with coloured patches.
pub async fn commit(State(s): State<WebState>, ctx: Ctx, t: Target) -> WebResult<Response> {
    let (head, addr) = repo_head(&s, &ctx, &t, "files").await?;
    let diff = s.hub.commit_diff(&ctx.caller, &addr, &t.sha).await?;
    let c = &diff.commit;
    let page_view = CommitPage {
        chrome: ctx.chrome(),
        title: c.title.clone(),
        message: c.message.clone(),
        author: c.author_name.clone(),
        sha: c.id.clone(),
        date: date_time(c.date_ms),
        parents: c
            .parents
            .iter()
            .map(|p| (short_sha(p), format!("{}/commit/{p}", head.url)))
            .collect(),
        browse_href: format!("{}/tree/{}", head.url, c.id),
        files: file_views(&head.url, &c.id, &diff.diff.files),
        notice: diff_notice(&diff.diff),
        repo: head,
    };
    page(&page_view)
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    chrome: Chrome,
    repo: RepoHead,
    base: String,
    head_rev: String,
    action: String,
    files: Vec<FileView>,
    notice: Option<String>,
}

/// `GET /{ns}/{name}/compare/{base}...{head}` (`?base=&head=` from the form redirects there).
pub async fn compare(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    q: ListParams,
) -> WebResult<Response> {
    let (head, addr) = repo_head(&s, &ctx, &t, "files").await?;
    if let (Some(b), Some(h)) = (q.get("base"), q.get("head")) {
        return Ok(redirect(&format!(
            "{}/compare/{}...{}",
            head.url,
            segment(b),
            segment(h)
        )));
    }
    let Some((base, head_rev)) = t.spec.split_once("...") else {
        return Err(Error::bad_request("Compare two revisions as /compare/BASE...HEAD.").into());
    };
    let report = s.hub.compare(&ctx.caller, &addr, base, head_rev).await?;
    let page_view = ComparePage {
        chrome: ctx.chrome(),
        action: format!("{}/compare/{}", head.url, segment(&t.spec)),
        files: file_views(&head.url, head_rev, &report.files),
        notice: diff_notice(&report),
        base: base.to_string(),
        head_rev: head_rev.to_string(),
        repo: head,
    };
    page(&page_view)
}
