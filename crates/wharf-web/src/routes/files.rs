//! `/{ns}/{name}/tree/{rev}/{path}` (folder listing with the last commit of each entry) and
//! `/{ns}/{name}/blob/{rev}/{path}` (one file: highlighted text with line numbers, LFS
//! details, a safetensors header table, raw and download links).

use crate::WebState;
use crate::error::{WebError, WebResult};
use crate::format::{date_time, human_size, path_url, segment, short_sha, time_ago};
use crate::routes::{ListParams, Target, page};
use crate::session::{Chrome, Ctx};
use crate::views::{PageLink, RepoHead, RevOption, pager, rev_options};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use futures::StreamExt;
use std::sync::Arc;
use wharf_card::highlight::{Budget, HtmlLines, highlight_file};
use wharf_hub::{EntryKind, FileContent, Need, RepoAddress};

/// Entries per tree page.
const TREE_PAGE: usize = 1000;
/// Text files up to this size are shown inline.
const MAX_INLINE: u64 = 1024 * 1024;
/// Rows of a safetensors header shown.
const MAX_TENSORS: usize = 5000;

/// Loads the repository a page is about (cheap: no tree walk) and its header.
pub async fn repo_head(
    s: &WebState,
    ctx: &Ctx,
    t: &Target,
    tab: &'static str,
) -> WebResult<(RepoHead, RepoAddress)> {
    let handle = s.hub.repo(&ctx.caller, &t.addr, Need::Read).await?;
    let head = RepoHead::new(&handle.repo, &ctx.caller, tab);
    let addr = head.address();
    Ok((head, addr))
}

/// A file at a revision and, when it is small text (not LFS, valid UTF-8 without NUL), its
/// content. `None` when the file does not exist.
pub async fn read_text(
    s: &WebState,
    ctx: &Ctx,
    addr: &RepoAddress,
    rev: &str,
    path: &str,
    max: u64,
) -> WebResult<Option<(FileContent, Option<String>)>> {
    let (_, found) = s.hub.resolve_file(&ctx.caller, addr, rev, path).await?;
    let Some(file) = found else {
        return Ok(None);
    };
    if file.lfs.is_some() || file.size > max {
        return Ok(Some((file, None)));
    }
    let mut stream = s.hub.read_file(&file, None).await?;
    let mut bytes = Vec::with_capacity(file.size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(wharf_core::Error::from)?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > max {
            return Ok(Some((file, None)));
        }
    }
    let text = if bytes.contains(&0) {
        None
    } else {
        String::from_utf8(bytes).ok()
    };
    Ok(Some((file, text)))
}

/// One link of the path above a listing or file.
pub struct Crumb {
    pub name: String,
    pub href: String,
}

/// `repo / a / b` links for `path` at `rev`.
pub fn crumbs(repo_url: &str, rev: &str, path: &str) -> Vec<Crumb> {
    let mut out = Vec::new();
    let mut so_far = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        out.push(Crumb {
            name: part.to_string(),
            href: format!("{repo_url}/tree/{}/{}", segment(rev), path_url(&so_far)),
        });
    }
    out
}

pub struct EntryRow {
    pub name: String,
    pub is_dir: bool,
    pub href: String,
    pub size: String,
    pub lfs: bool,
    pub commit_title: String,
    pub commit_href: String,
    pub commit_when: String,
    pub commit_date: String,
}

pub struct LatestCommit {
    pub title: String,
    pub author: String,
    pub short: String,
    pub href: String,
    pub when: String,
    pub date: String,
}

#[derive(Template)]
#[template(path = "tree.html")]
struct TreePage {
    chrome: Chrome,
    repo: RepoHead,
    rev: String,
    rev_url: String,
    path: String,
    crumbs: Vec<Crumb>,
    revs: Vec<RevOption>,
    parent_href: Option<String>,
    entries: Vec<EntryRow>,
    latest: Option<LatestCommit>,
    pages: Vec<PageLink>,
    history_href: String,
}

/// `GET /{ns}/{name}/tree/{rev}[/{path}]`.
pub async fn tree(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    q: ListParams,
) -> WebResult<Response> {
    let (head, addr) = repo_head(&s, &ctx, &t, "files").await?;
    let p = q.page();
    let listing = s
        .hub
        .tree(
            &ctx.caller,
            &addr,
            &t.rev,
            &t.path,
            false,
            true,
            p.saturating_mul(TREE_PAGE),
            TREE_PAGE,
        )
        .await?;
    let refs = s.hub.refs(&ctx.caller, &addr).await?;
    let latest = s.hub.commits(&ctx.caller, &addr, &t.rev, 0, 1).await?;
    let rev_url = segment(&t.rev);
    let mut entries: Vec<EntryRow> = listing
        .entries
        .iter()
        .map(|e| {
            let is_dir = e.kind == EntryKind::Directory;
            let view = if is_dir { "tree" } else { "blob" };
            let last = listing.last_commits.get(&e.path);
            EntryRow {
                name: e.path.rsplit('/').next().unwrap_or(&e.path).to_string(),
                is_dir,
                href: format!("{}/{view}/{rev_url}/{}", head.url, path_url(&e.path)),
                size: if is_dir {
                    String::new()
                } else {
                    human_size(e.lfs.as_ref().map_or(e.size, |l| l.size))
                },
                lfs: e.lfs.is_some(),
                commit_title: last.map(|c| c.title.clone()).unwrap_or_default(),
                commit_href: last
                    .map(|c| format!("{}/commit/{}", head.url, c.id))
                    .unwrap_or_default(),
                commit_when: last.map(|c| time_ago(c.date_ms)).unwrap_or_default(),
                commit_date: last.map(|c| date_time(c.date_ms)).unwrap_or_default(),
            }
        })
        .collect();
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    let path = t.path.clone();
    let parent_href = (!path.is_empty()).then(|| {
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        if parent.is_empty() {
            format!("{}/tree/{rev_url}", head.url)
        } else {
            format!("{}/tree/{rev_url}/{}", head.url, path_url(parent))
        }
    });
    let suffix = if path.is_empty() {
        String::new()
    } else {
        format!("/{}", path_url(&path))
    };
    let base = format!("{}/tree/{rev_url}{suffix}", head.url);
    let page_view = TreePage {
        chrome: ctx.chrome(),
        revs: rev_options(&refs, &t.rev, |r| {
            format!("{}/tree/{}{suffix}", head.url, segment(r))
        }),
        crumbs: crumbs(&head.url, &t.rev, &path),
        latest: latest.commits.first().map(|c| LatestCommit {
            title: c.title.clone(),
            author: c.author_name.clone(),
            short: short_sha(&c.id),
            href: format!("{}/commit/{}", head.url, c.id),
            when: time_ago(c.date_ms),
            date: date_time(c.date_ms),
        }),
        pages: pager(p, listing.has_more, |n| format!("{base}?p={n}")),
        history_href: format!("{}/commits/{rev_url}", head.url),
        parent_href,
        entries,
        rev: t.rev.clone(),
        rev_url,
        path,
        repo: head,
    };
    page(&page_view)
}

pub struct TensorRow {
    pub name: String,
    pub dtype: String,
    pub shape: String,
}

#[derive(Template)]
#[template(path = "blob.html")]
struct BlobPage {
    chrome: Chrome,
    repo: RepoHead,
    rev_url: String,
    path: String,
    file_name: String,
    crumbs: Vec<Crumb>,
    revs: Vec<RevOption>,
    size: String,
    lfs_oid: Option<String>,
    blob_oid: String,
    raw_href: String,
    download_href: String,
    history_href: String,
    edit_href: Option<String>,
    delete_action: Option<String>,
    /// The text as HTML lines (escaped, and highlighted when the language is known).
    code: Arc<HtmlLines>,
    is_text: bool,
    tensors: Vec<TensorRow>,
    tensors_cut: bool,
}

/// `GET /{ns}/{name}/blob/{rev}/{path}`.
pub async fn blob(State(s): State<WebState>, ctx: Ctx, t: Target) -> WebResult<Response> {
    let (head, addr) = repo_head(&s, &ctx, &t, "files").await?;
    if t.path.is_empty() {
        return Err(WebError::not_found());
    }
    let Some((file, text)) = read_text(&s, &ctx, &addr, &t.rev, &t.path, MAX_INLINE).await? else {
        return Err(wharf_core::Error::entry_not_found(&t.path).into());
    };
    let refs = s.hub.refs(&ctx.caller, &addr).await?;
    let path_part = path_url(&file.path);
    let rev_url = segment(&t.rev);
    let mut tensors = Vec::new();
    let mut tensors_cut = false;
    if file.path.ends_with(".safetensors")
        && let Some(header) = s
            .hub
            .file_safetensors_header(&ctx.caller, &addr, &t.rev, &file.path)
            .await?
    {
        tensors_cut = header.len() > MAX_TENSORS;
        tensors = header
            .into_iter()
            .take(MAX_TENSORS)
            .map(|(name, dtype, shape)| TensorRow {
                name,
                dtype,
                shape: format!(
                    "[{}]",
                    shape
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect();
    }
    let is_text = text.is_some();
    let code = match text {
        Some(text) => highlighted(&file, text).await?,
        None => Arc::default(),
    };
    let raw_href = format!("{}/resolve/{rev_url}/{path_part}", head.url);
    let page_view = BlobPage {
        chrome: ctx.chrome(),
        revs: rev_options(&refs, &t.rev, |r| {
            format!("{}/blob/{}/{path_part}", head.url, segment(r))
        }),
        crumbs: crumbs(&head.url, &t.rev, &file.path),
        file_name: file
            .path
            .rsplit('/')
            .next()
            .unwrap_or(&file.path)
            .to_string(),
        size: human_size(file.size),
        lfs_oid: file.lfs.as_ref().map(|p| p.oid.clone()),
        blob_oid: file.blob_oid.clone(),
        download_href: format!("{raw_href}?download=true"),
        raw_href,
        history_href: format!(
            "{}/commits/{rev_url}?path={}",
            head.url,
            crate::format::query_value(&file.path)
        ),
        edit_href: (head.can_write && is_text)
            .then(|| format!("{}/edit/{rev_url}/{path_part}", head.url)),
        delete_action: head
            .can_write
            .then(|| format!("{}/delete/{rev_url}/{path_part}", head.url)),
        code,
        is_text,
        tensors,
        tensors_cut,
        rev_url,
        path: file.path.clone(),
        repo: head,
    };
    page(&page_view)
}

/// The file's text as HTML lines, highlighted off the async workers once per blob and path.
async fn highlighted(file: &FileContent, text: String) -> WebResult<Arc<HtmlLines>> {
    let key = format!("{}:{}", file.blob_oid, file.path);
    if let Some(hit) = crate::cache::FILES.get(&key) {
        return Ok(hit);
    }
    let path = file.path.clone();
    let lines =
        crate::cache::blocking(move || highlight_file(&path, &text, &mut Budget::for_file()))
            .await?;
    let weight = lines.weight();
    Ok(crate::cache::FILES.insert(key, lines, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crumbs_link_each_folder() {
        let c = crumbs("/a/m", "refs/pr/1", "dir one/sub/file.txt");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].href, "/a/m/tree/refs%2Fpr%2F1/dir%20one");
        assert_eq!(c[2].href, "/a/m/tree/refs%2Fpr%2F1/dir%20one/sub/file.txt");
    }
}
