//! Editing in the browser: `/{ns}/{name}/edit/{rev}/{path}`, `/{ns}/{name}/new/{rev}`, file
//! deletion, and `POST /-/preview` (the editor's live card preview).

use crate::WebState;
use crate::error::{WebResult, html_fragment};
use crate::format::{path_url, redirect, segment};
use crate::frontmatter::{MetaValue, list_field, set_keys};
use crate::markdown;
use crate::routes::facets::TASKS;
use crate::routes::files::read_text;
use crate::routes::repo::LICENSES;
use crate::routes::{ListParams, Target, WebForm, page};
use crate::session::{Chrome, Ctx};
use crate::views::RepoHead;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use wharf_core::Error;
use wharf_hub::{CommitHeader, CommitOp, RepoAddress};

/// Files larger than this are not editable in the browser.
const MAX_EDITABLE: u64 = 4 * 1024 * 1024;
const README: &str = "README.md";

/// The metadata form of a README: current values, and the choices offered.
pub struct MetaForm {
    pub license: String,
    pub pipeline_tag: String,
    pub tags: String,
    pub licenses: &'static [&'static str],
    pub tasks: &'static [&'static str],
}

impl MetaForm {
    fn from_card(card: Option<&Value>) -> MetaForm {
        let text = |key: &str| -> String {
            match card.and_then(|c| c.get(key)) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            }
        };
        MetaForm {
            license: text("license"),
            pipeline_tag: text("pipeline_tag"),
            tags: text("tags"),
            licenses: LICENSES,
            tasks: TASKS,
        }
    }
}

#[derive(Template)]
#[template(path = "edit.html")]
struct EditPage {
    chrome: Chrome,
    repo: RepoHead,
    rev: String,
    /// The file being edited; empty on the new-file page (a path field is shown instead).
    path: String,
    is_new: bool,
    action: String,
    cancel_href: String,
    content: String,
    parent: String,
    meta: Option<MetaForm>,
    is_readme: bool,
}

/// The header of a page that changes the repository: logged in (else to the login page), and
/// the hub's say on whether the caller may change this branch.
pub async fn writable_head(
    s: &WebState,
    ctx: &Ctx,
    t: &Target,
) -> WebResult<(RepoHead, RepoAddress)> {
    ctx.require_user()?;
    let handle = s.hub.writable_branch(&ctx.caller, &t.addr, &t.rev).await?;
    let head = RepoHead::new(&handle.repo, &ctx.caller, "files");
    let addr = head.address();
    Ok((head, addr))
}

/// `GET /{ns}/{name}/edit/{rev}/{path}`.
pub async fn edit_form(State(s): State<WebState>, ctx: Ctx, t: Target) -> WebResult<Response> {
    let (head, addr) = writable_head(&s, &ctx, &t).await?;
    let Some((file, text)) = read_text(&s, &ctx, &addr, &t.rev, &t.path, MAX_EDITABLE).await?
    else {
        return Err(wharf_core::Error::entry_not_found(&t.path).into());
    };
    let Some(content) = text else {
        return Err(Error::unprocessable(
            "Only text files up to 4 MB can be edited in the browser.",
        )
        .into());
    };
    let is_readme = file.path == README;
    let meta = if is_readme {
        let info = s
            .hub
            .repo_info(&ctx.caller, &addr, Some(&file.commit))
            .await?;
        Some(MetaForm::from_card(info.card_data.as_ref()))
    } else {
        None
    };
    let rev_url = segment(&t.rev);
    let path_part = path_url(&file.path);
    page(&EditPage {
        chrome: ctx.chrome(),
        action: format!("{}/edit/{rev_url}/{path_part}", head.url),
        cancel_href: format!("{}/blob/{rev_url}/{path_part}", head.url),
        rev: t.rev.clone(),
        path: file.path.clone(),
        is_new: false,
        content,
        parent: file.commit.clone(),
        meta,
        is_readme,
        repo: head,
    })
}

/// `GET /{ns}/{name}/new/{rev}[?filename=…]`.
pub async fn new_form(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    q: ListParams,
) -> WebResult<Response> {
    let (head, _) = writable_head(&s, &ctx, &t).await?;
    let path = q.get("filename").unwrap_or("").to_string();
    let is_readme = path == README;
    let rev_url = segment(&t.rev);
    page(&EditPage {
        chrome: ctx.chrome(),
        action: format!("{}/new/{rev_url}", head.url),
        cancel_href: format!("{}/tree/{rev_url}", head.url),
        rev: t.rev.clone(),
        is_new: true,
        content: String::new(),
        parent: String::new(),
        meta: is_readme.then(|| MetaForm::from_card(None)),
        is_readme,
        path,
        repo: head,
    })
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    description: String,
    /// The commit the edit started from; a newer head makes the commit fail with 412.
    #[serde(default)]
    parent: String,
    license: Option<String>,
    pipeline_tag: Option<String>,
    tags: Option<String>,
    orig_license: Option<String>,
    orig_pipeline_tag: Option<String>,
    orig_tags: Option<String>,
}

impl EditForm {
    /// The file's new text: browser line breaks made `\n`, and for a README the metadata
    /// fields that changed written into its front matter.
    fn text(&self, path: &str) -> String {
        let content = self.content.replace("\r\n", "\n");
        if path != README {
            return content;
        }
        let changed = |new: &Option<String>, orig: &Option<String>| match (new, orig) {
            (Some(n), Some(o)) => n.trim() != o.trim(),
            (Some(_), None) => true,
            _ => false,
        };
        let mut updates: Vec<(&str, Option<MetaValue>)> = Vec::new();
        if let Some(v) = &self.license
            && changed(&self.license, &self.orig_license)
        {
            updates.push(("license", Some(MetaValue::Scalar(v.trim().to_string()))));
        }
        if let Some(v) = &self.pipeline_tag
            && changed(&self.pipeline_tag, &self.orig_pipeline_tag)
        {
            updates.push((
                "pipeline_tag",
                Some(MetaValue::Scalar(v.trim().to_string())),
            ));
        }
        if let Some(v) = &self.tags
            && changed(&self.tags, &self.orig_tags)
        {
            updates.push(("tags", Some(MetaValue::List(list_field(v)))));
        }
        if updates.is_empty() {
            content
        } else {
            set_keys(&content, &updates)
        }
    }

    fn header(&self, default_summary: String) -> CommitHeader {
        let summary = self.summary.trim();
        CommitHeader {
            summary: if summary.is_empty() {
                default_summary
            } else {
                summary.to_string()
            },
            description: self.description.clone(),
            parent_commit: Some(self.parent.trim().to_string()).filter(|p| !p.is_empty()),
        }
    }
}

/// Commits one file and shows it.
async fn save(
    s: &WebState,
    ctx: &Ctx,
    head: &RepoHead,
    rev: &str,
    path: &str,
    f: &EditForm,
    verb: &str,
) -> WebResult<Response> {
    let path = wharf_core::normalize_repo_path(path)?;
    let op = CommitOp::File {
        path: path.clone(),
        content: f.text(&path).into_bytes(),
    };
    let header = f.header(format!("{verb} {path}"));
    s.hub
        .commit(&ctx.caller, &head.address(), rev, header, vec![op], false)
        .await?;
    Ok(redirect(&format!(
        "{}/blob/{}/{}",
        head.url,
        segment(rev),
        path_url(&path)
    )))
}

/// `POST /{ns}/{name}/edit/{rev}/{path}`.
pub async fn save_edit(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    WebForm(f): WebForm<EditForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    let (head, _) = writable_head(&s, &ctx, &t).await?;
    save(&s, &ctx, &head, &t.rev, &t.path, &f, "Update").await
}

/// `POST /{ns}/{name}/new/{rev}`: refuses to overwrite an existing file.
pub async fn save_new(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    WebForm(f): WebForm<EditForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    let (head, addr) = writable_head(&s, &ctx, &t).await?;
    let path = wharf_core::normalize_repo_path(f.path.trim())?;
    let (_, existing) = s
        .hub
        .resolve_file(&ctx.caller, &addr, &t.rev, &path)
        .await?;
    if existing.is_some() {
        return Err(Error::conflict(format!(
            "A file named {path} already exists; edit it instead."
        ))
        .into());
    }
    save(&s, &ctx, &head, &t.rev, &path, &f, "Create").await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    summary: String,
}

/// `POST /{ns}/{name}/delete/{rev}/{path}`: one commit deleting the file.
pub async fn delete(
    State(s): State<WebState>,
    ctx: Ctx,
    t: Target,
    WebForm(f): WebForm<DeleteForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    let (head, addr) = writable_head(&s, &ctx, &t).await?;
    let summary = match f.summary.trim() {
        "" => format!("Delete {}", t.path),
        s => s.to_string(),
    };
    let header = CommitHeader {
        summary,
        ..CommitHeader::default()
    };
    let op = CommitOp::DeletedFile {
        path: t.path.clone(),
    };
    s.hub
        .commit(&ctx.caller, &addr, &t.rev, header, vec![op], false)
        .await?;
    let parent = t.path.rsplit_once('/').map_or("", |(p, _)| p);
    let mut to = format!("{}/tree/{}", head.url, segment(&t.rev));
    if !parent.is_empty() {
        to.push('/');
        to.push_str(&path_url(parent));
    }
    Ok(redirect(&to))
}

#[derive(Deserialize)]
pub struct PreviewForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    content: String,
    /// The repository's web path, for relative links (`/ns/name`, `/datasets/ns/name`).
    #[serde(default)]
    repo: String,
    #[serde(default)]
    rev: String,
}

/// Whether `repo` looks like a repository's web path (it is only used as a link prefix).
fn plausible_repo_path(repo: &str) -> bool {
    repo.starts_with('/')
        && !repo.starts_with("//")
        && repo.len() < 300
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
}

/// `POST /-/preview`: the sanitized HTML of a card as the editor shows it (without its front
/// matter). The hub renders it for signed-in users only (401 otherwise) and up to 1 MiB (413).
pub async fn preview(
    State(s): State<WebState>,
    ctx: Ctx,
    WebForm(f): WebForm<PreviewForm>,
) -> WebResult<Response> {
    ctx.check_csrf(&s, &f.csrf)?;
    let text = f.content.replace("\r\n", "\n");
    let rendered = s.hub.preview_card(&ctx.caller, text).await?;
    let rendered = if plausible_repo_path(&f.repo) {
        let rev = if f.rev.is_empty() { "main" } else { &f.rev };
        markdown::link_into_repo(&rendered, f.repo.trim_end_matches('/'), rev)
    } else {
        rendered
    };
    Ok(html_fragment(rendered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(content: &str) -> EditForm {
        EditForm {
            csrf: String::new(),
            path: String::new(),
            content: content.into(),
            summary: String::new(),
            description: String::new(),
            parent: String::new(),
            license: None,
            pipeline_tag: None,
            tags: None,
            orig_license: None,
            orig_pipeline_tag: None,
            orig_tags: None,
        }
    }

    #[test]
    fn readme_metadata_applies_only_changed_fields() {
        let mut f = form("---\r\nlicense: mit\r\n---\r\n# Hi\r\n");
        f.license = Some("mit".into());
        f.orig_license = Some("mit".into());
        f.pipeline_tag = Some("fill-mask".into());
        f.tags = Some("a, b".into());
        assert_eq!(
            f.text(README),
            "---\nlicense: mit\npipeline_tag: fill-mask\ntags:\n- a\n- b\n---\n# Hi\n"
        );
        assert_eq!(f.text("other.md"), "---\nlicense: mit\n---\n# Hi\n");
    }

    #[test]
    fn preview_repo_paths() {
        assert!(plausible_repo_path("/datasets/alice/d"));
        assert!(!plausible_repo_path("//evil.com/x"));
        assert!(!plausible_repo_path("/a\"onload=x"));
    }
}
