//! `/`, `/models`, `/datasets`, `/spaces` (search, filters, facets, sort, pages) and `/{ns}`.

use crate::WebState;
use crate::error::{WebError, WebResult};
use crate::routes::{ListParams, facets, page};
use crate::session::{Chrome, Ctx};
use crate::views::{PageLink, RepoCard, pager};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use wharf_core::RepoType;
use wharf_hub::{ListQuery, RepoSort};

/// Results per listing page.
const PER_PAGE: i64 = 30;

/// The filters a listing understands, in the order the sidebar shows them.
pub const FILTER_KEYS: [&str; 6] = [
    "pipeline_tag",
    "library",
    "language",
    "license",
    "dataset",
    "other",
];

const SORTS: [(&str, &str); 4] = [
    ("lastModified", "Recently updated"),
    ("downloads", "Most downloads"),
    ("likes", "Most likes"),
    ("createdAt", "Recently created"),
];

fn sort_of(s: &str) -> RepoSort {
    match s {
        "downloads" => RepoSort::Downloads,
        "likes" => RepoSort::Likes,
        "createdAt" => RepoSort::CreatedAt,
        _ => RepoSort::LastModified,
    }
}

/// The hub's listing query for these parameters: a filter is a tag of the repo.
pub fn list_query(repo_type: RepoType, q: &ListParams, offset: i64, limit: i64) -> ListQuery {
    let mut filters = Vec::new();
    if let Some(v) = q.get("library") {
        filters.push(v.to_string());
    }
    if let Some(v) = q.get("language") {
        filters.push(v.to_string());
    }
    if let Some(v) = q.get("license") {
        filters.push(format!("license:{v}"));
    }
    if let Some(v) = q.get("dataset") {
        filters.push(format!("dataset:{v}"));
    }
    if let Some(v) = q.get("other") {
        filters.push(v.to_string());
    }
    ListQuery {
        repo_type,
        search: q.get("search").map(str::to_string),
        author: None,
        filters,
        pipeline_tag: q.get("pipeline_tag").map(str::to_string),
        sort: sort_of(q.get("sort").unwrap_or("")),
        descending: true,
        offset,
        limit,
        with_files: false,
    }
}

pub struct SortOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct ActiveFilter {
    pub key: &'static str,
    pub value: String,
    /// The same listing without this filter.
    pub remove_href: String,
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    chrome: Chrome,
    kind_plural: &'static str,
    title: String,
    search: String,
    total: i64,
    cards: Vec<RepoCard>,
    sorts: Vec<SortOption>,
    groups: Vec<facets::FacetGroup>,
    active: Vec<ActiveFilter>,
    pages: Vec<PageLink>,
}

/// `GET /models`, `/datasets`, `/spaces`.
pub async fn list(
    State(s): State<WebState>,
    ctx: Ctx,
    repo_type: RepoType,
    q: ListParams,
) -> WebResult<Response> {
    let p = q.page();
    let offset = p.saturating_mul(PER_PAGE as usize) as i64;
    let query = list_query(repo_type, &q, offset, PER_PAGE + 1);
    let mut rows = s.hub.list_repos(&ctx.caller, &query).await?;
    let has_more = rows.len() as i64 > PER_PAGE;
    rows.truncate(PER_PAGE as usize);
    let total = s.hub.count_repos(&ctx.caller, &query).await?;
    let counts = s.hub.facet_counts(&ctx.caller, &query).await?;
    let base = format!("/{}", repo_type.plural());
    let current_sort = q.get("sort").unwrap_or("lastModified");
    let page_view = ListPage {
        chrome: ctx.chrome(),
        kind_plural: repo_type.plural(),
        title: title_case(repo_type.plural()),
        search: q.get("search").unwrap_or_default().to_string(),
        total,
        cards: rows.iter().map(|(r, _)| RepoCard::new(r)).collect(),
        sorts: SORTS
            .iter()
            .map(|(value, label)| SortOption {
                value,
                label,
                selected: *value == current_sort,
            })
            .collect(),
        groups: facets::groups(&counts, &q, &base),
        active: FILTER_KEYS
            .iter()
            .filter_map(|k| {
                q.get(k).map(|v| ActiveFilter {
                    key: k,
                    value: v.to_string(),
                    remove_href: q.href(&base, &[(k, None)]),
                })
            })
            .collect(),
        pages: pager(p, has_more, |n| {
            let n = n.to_string();
            q.href(&base, &[("p", Some(&n))])
        }),
    };
    page(&page_view)
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

pub async fn models(state: State<WebState>, ctx: Ctx, q: ListParams) -> WebResult<Response> {
    list(state, ctx, RepoType::Model, q).await
}
pub async fn datasets(state: State<WebState>, ctx: Ctx, q: ListParams) -> WebResult<Response> {
    list(state, ctx, RepoType::Dataset, q).await
}
pub async fn spaces(state: State<WebState>, ctx: Ctx, q: ListParams) -> WebResult<Response> {
    list(state, ctx, RepoType::Space, q).await
}

pub struct HomeSection {
    pub title: &'static str,
    pub href: &'static str,
    pub cards: Vec<RepoCard>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    sections: Vec<HomeSection>,
}

/// `GET /`: the most recently updated repositories of each kind.
pub async fn home(State(s): State<WebState>, ctx: Ctx) -> WebResult<Response> {
    let mut sections = Vec::new();
    for (repo_type, title, href) in [
        (RepoType::Model, "Models", "/models"),
        (RepoType::Dataset, "Datasets", "/datasets"),
        (RepoType::Space, "Spaces", "/spaces"),
    ] {
        let query = list_query(repo_type, &ListParams::default(), 0, 8);
        let rows = s.hub.list_repos(&ctx.caller, &query).await?;
        sections.push(HomeSection {
            title,
            href,
            cards: rows.iter().map(|(r, _)| RepoCard::new(r)).collect(),
        });
    }
    page(&HomePage {
        chrome: ctx.chrome(),
        sections,
    })
}

pub struct Member {
    pub name: String,
    pub fullname: String,
    pub role: &'static str,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    name: String,
    fullname: String,
    is_org: bool,
    sections: Vec<HomeSection>,
    members: Vec<Member>,
}

/// Repositories shown per kind on an account page.
const ACCOUNT_REPOS: i64 = 100;

/// `GET /{ns}`: a user's or organization's repositories (and an organization's members).
pub async fn account(
    State(s): State<WebState>,
    ctx: Ctx,
    ns: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> WebResult<Response> {
    let Ok(Path(ns)) = ns else {
        return Err(WebError::not_found());
    };
    let Some(account) = s.hub.account(&ns).await? else {
        return Err(WebError::not_found());
    };
    let is_org = account.kind == wharf_hub::AccountKind::Org;
    let mut sections = Vec::new();
    for (repo_type, title, href) in [
        (RepoType::Model, "Models", "/models"),
        (RepoType::Dataset, "Datasets", "/datasets"),
        (RepoType::Space, "Spaces", "/spaces"),
    ] {
        let mut query = list_query(repo_type, &ListParams::default(), 0, ACCOUNT_REPOS);
        query.author = Some(account.name.clone());
        let rows = s.hub.list_repos(&ctx.caller, &query).await?;
        if !rows.is_empty() {
            sections.push(HomeSection {
                title,
                href,
                cards: rows.iter().map(|(r, _)| RepoCard::new(r)).collect(),
            });
        }
    }
    let members = if is_org {
        s.hub
            .org_members(&account.name)
            .await?
            .into_iter()
            .map(|(a, role)| Member {
                name: a.name,
                fullname: a.fullname,
                role: role.as_str(),
            })
            .collect()
    } else {
        Vec::new()
    };
    page(&AccountPage {
        chrome: ctx.chrome(),
        name: account.name,
        fullname: account.fullname,
        is_org,
        sections,
        members,
    })
}
