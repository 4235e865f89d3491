//! The page routes, and the extractors they share.
//!
//! Repository pages exist three times (`/{ns}/{name}/…`, `/datasets/…`, `/spaces/…`); the
//! repository type reaches handlers as a request extension set on each copy. Paths the API
//! router owns (`resolve`, `info/refs`, `git-upload-pack`, `git-receive-pack`, `*.git`) are
//! not registered, so they fall through to its fallback.

pub mod auth;
pub mod edit;
pub mod facets;
pub mod files;
pub mod history;
pub mod listing;
pub mod repo;
pub mod settings;
pub mod upload;
pub mod widget;

use crate::WebState;
use crate::error::{WebError, WebResult, html};
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use wharf_core::RepoType;
use wharf_hub::RepoAddress;

/// Bodies of the editor's forms (the file's text, URL-encoded).
const EDITOR_LIMIT: usize = 16 * 1024 * 1024;
/// Bodies of every other form (log-in, sign-up, tokens, a new repository, settings): a few
/// short fields, so a larger body is refused (413) before anything reads it.
const SMALL_FORM_LIMIT: usize = 64 * 1024;
/// The editor's live preview: at most 1 MiB of text (the hub's cap), URL-encoded.
const PREVIEW_LIMIT: usize = 4 * 1024 * 1024;
/// Bodies of the inference widget's form (prompts, contexts, sentences).
const WIDGET_LIMIT: usize = 1024 * 1024;

/// Every page route.
pub fn routes() -> Router<WebState> {
    let preview = Router::new()
        .route("/-/preview", post(edit::preview))
        .layer(DefaultBodyLimit::max(PREVIEW_LIMIT));
    Router::new()
        .route("/", get(listing::home))
        .route("/models", get(listing::models))
        .route("/datasets", get(listing::datasets))
        .route("/spaces", get(listing::spaces))
        .route("/{ns}", get(listing::account))
        .route("/-/static/{file}", get(crate::assets::asset))
        .route("/login", get(auth::login_form).post(auth::log_in))
        .route("/join", get(auth::join_form).post(auth::sign_up))
        .route("/logout", post(auth::log_out))
        .route("/new", get(repo::new_form).post(repo::create))
        .route(
            "/settings/tokens",
            get(auth::tokens).post(auth::create_token),
        )
        .route("/settings/tokens/revoke", post(auth::revoke_token))
        .layer(DefaultBodyLimit::max(SMALL_FORM_LIMIT))
        .merge(preview)
        .merge(repo_routes("", RepoType::Model))
        .merge(repo_routes("/datasets", RepoType::Dataset))
        .merge(repo_routes("/spaces", RepoType::Space))
        // Last, so that it reaches every route above (axum adds the `Allow` header).
        .method_not_allowed_fallback(method_not_allowed)
}

/// A known page asked for with a method it does not take.
async fn method_not_allowed() -> WebError {
    WebError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "This page does not take that kind of request.",
    )
}

fn repo_routes(prefix: &str, kind: RepoType) -> Router<WebState> {
    let at = |rest: &str| format!("{prefix}/{{ns}}/{{name}}{rest}");
    let editor = Router::new()
        .route(&at("/new/{rev}"), get(edit::new_form).post(edit::save_new))
        .route(
            &at("/edit/{rev}/{*path}"),
            get(edit::edit_form).post(edit::save_edit),
        )
        .layer(DefaultBodyLimit::max(EDITOR_LIMIT));
    let uploads = Router::new()
        .route(&at("/upload/{rev}"), get(upload::form).post(upload::upload))
        .layer(DefaultBodyLimit::disable());
    // Only models have the inference widget.
    let mut widget = Router::new();
    if kind == RepoType::Model {
        widget = widget
            .route(&at("/widget"), post(widget::run))
            .layer(DefaultBodyLimit::max(WIDGET_LIMIT));
    }
    Router::new()
        .route(&at(""), get(repo::card))
        .route(&at("/tree/{rev}"), get(files::tree))
        .route(&at("/tree/{rev}/{*path}"), get(files::tree))
        .route(&at("/blob/{rev}/{*path}"), get(files::blob))
        .route(&at("/commits/{rev}"), get(history::commits))
        .route(&at("/commit/{sha}"), get(history::commit))
        .route(&at("/compare/{spec}"), get(history::compare))
        .route(&at("/delete/{rev}/{*path}"), post(edit::delete))
        .route(&at("/settings"), get(settings::show).post(settings::update))
        .layer(DefaultBodyLimit::max(SMALL_FORM_LIMIT))
        .merge(editor)
        .merge(uploads)
        .merge(widget)
        .layer(axum::Extension(kind))
}

/// Renders a template as a 200 page.
pub fn page(t: &impl Template) -> WebResult<Response> {
    page_with_status(StatusCode::OK, t)
}

pub fn page_with_status(status: StatusCode, t: &impl Template) -> WebResult<Response> {
    let body = t
        .render()
        .map_err(|e| wharf_core::Error::internal(format!("template failed: {e}")))?;
    Ok(html(status, body))
}

#[derive(Deserialize)]
struct RepoParams {
    ns: String,
    name: String,
    rev: Option<String>,
    path: Option<String>,
    sha: Option<String>,
    spec: Option<String>,
}

/// The repository a page is about, with the rest of its path parameters.
pub struct Target {
    pub addr: RepoAddress,
    /// The revision in the URL ("main" when the route has none).
    pub rev: String,
    /// The file or folder path ("" when none).
    pub path: String,
    pub sha: String,
    pub spec: String,
}

impl Target {
    pub fn repo_type(&self) -> RepoType {
        self.addr.repo_type
    }
}

impl FromRequestParts<WebState> for Target {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> WebResult<Target> {
        let kind = parts
            .extensions
            .get::<RepoType>()
            .copied()
            .unwrap_or(RepoType::Model);
        let axum::extract::Path(p) =
            axum::extract::Path::<RepoParams>::from_request_parts(parts, state)
                .await
                .map_err(|_| WebError::not_found())?;
        Ok(Target {
            addr: RepoAddress::new(kind, &p.ns, &p.name),
            rev: p.rev.unwrap_or_else(|| "main".to_string()),
            path: p.path.unwrap_or_default().trim_matches('/').to_string(),
            sha: p.sha.unwrap_or_default(),
            spec: p.spec.unwrap_or_default(),
        })
    }
}

/// `Form<T>` whose rejections are error pages (400, 413; 403 for a body that is no form), not
/// plain text.
pub struct WebForm<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for WebForm<T> {
    type Rejection = WebError;

    async fn from_request(req: axum::extract::Request, state: &S) -> WebResult<WebForm<T>> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(WebForm(v)),
            // A POST that is not a form cannot carry the CSRF token: refused like a forgery.
            Err(e) if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(WebError::csrf()),
            Err(e) => Err(WebError::new(e.status(), e.body_text())),
        }
    }
}

/// Where to go after logging in: only paths on this site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// A query string as ordered pairs; unparsable strings count as empty (pages never fail on
/// a mangled query).
#[derive(Default, Clone)]
pub struct ListParams(pub Vec<(String, String)>);

impl ListParams {
    pub fn parse(raw: Option<&str>) -> ListParams {
        ListParams(serde_urlencoded::from_str(raw.unwrap_or("")).unwrap_or_default())
    }

    /// The first non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// The zero-based page number `p` (junk is page 0).
    pub fn page(&self) -> usize {
        self.get("p")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(0)
            .min(100_000)
    }

    /// `base` with this query, where `changes` set (`Some`) or remove (`None`) keys; the page
    /// number is dropped unless it is one of the changes.
    pub fn href(&self, base: &str, changes: &[(&str, Option<&str>)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(k, v)| {
                k != "p" && !v.trim().is_empty() && !changes.iter().any(|(c, _)| c == k)
            })
            .cloned()
            .collect();
        for (k, v) in changes {
            if let Some(v) = v {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if qs.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{qs}")
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListParams {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> WebResult<ListParams> {
        Ok(ListParams::parse(parts.uri.query()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_edit_links() {
        let q = ListParams::parse(Some("search=bert&p=2&license=mit&pipeline_tag="));
        assert_eq!(q.get("search"), Some("bert"));
        assert_eq!(q.get("pipeline_tag"), None);
        assert_eq!(q.page(), 2);
        assert_eq!(
            q.href("/models", &[("license", None)]),
            "/models?search=bert"
        );
        assert_eq!(
            q.href("/models", &[("p", Some("3"))]),
            "/models?search=bert&license=mit&p=3"
        );
        assert_eq!(ListParams::parse(Some("%%%")).page(), 0);
    }
}
