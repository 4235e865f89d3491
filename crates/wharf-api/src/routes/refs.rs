//! Refs, history, branches and tags.

use crate::error::ApiResult;
use crate::extract::{Auth, BaseUrl, QueryPairs, next_page_link};
use crate::routes::commit::JsonBody;
use crate::{AppState, json};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json as j};
use wharf_hub::Refs;

use super::RepoPath;

fn ref_list(refs: &[wharf_hub::RefInfo]) -> Vec<Value> {
    refs.iter()
        .map(|r| j!({ "name": r.name, "ref": r.full_ref, "targetCommit": r.target_commit }))
        .collect()
}

fn refs_json(refs: &Refs, include_prs: bool) -> Value {
    let mut v = j!({ "branches": ref_list(&refs.branches), "tags": ref_list(&refs.tags), "converts": ref_list(&refs.converts) });
    if include_prs {
        v["pullRequests"] = Value::Array(ref_list(&refs.pull_requests));
    }
    v
}

pub async fn list_refs(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let refs = s.hub.refs(&c, &p.address()?).await?;
    Ok(Json(refs_json(&refs, q.flag("include_prs", false))))
}

/// Commits per page when the client gives no limit.
const COMMITS_PAGE: usize = 100;

pub async fn list_commits(
    State(s): State<AppState>,
    Auth(c): Auth,
    BaseUrl(b): BaseUrl,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
) -> ApiResult<Response> {
    let addr = p.address()?;
    let offset = q.number("cursor")?.unwrap_or(0) as usize;
    let limit = q
        .number("limit")?
        .map_or(COMMITS_PAGE, |l| (l as usize).clamp(1, 1000));
    let page = s.hub.commits(&c, &addr, p.rev(), offset, limit).await?;
    let body: Vec<Value> = page.commits.iter().map(json::commit).collect();
    let mut response = Json(body).into_response();
    if page.has_more {
        let rev =
            percent_encoding::utf8_percent_encode(p.rev(), percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let path = format!("/api/{}/{}/{}/commits/{rev}", p.kind, p.ns, p.name);
        if let Ok(v) = HeaderValue::from_str(&next_page_link(&b, &path, &q, offset + limit)) {
            response.headers_mut().insert("link", v);
        }
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
pub struct CreateBranch {
    #[serde(default, rename = "startingPoint")]
    starting_point: Option<String>,
}

pub async fn create_branch(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(p): Path<RepoPath>,
    body: Option<JsonBody<CreateBranch>>,
) -> ApiResult<Json<Value>> {
    let addr = p.address()?;
    let req = body.map(|b| b.0).unwrap_or_default();
    s.hub
        .create_branch(
            &c,
            &addr,
            p.branch.as_deref().unwrap_or(""),
            req.starting_point.as_deref(),
        )
        .await?;
    Ok(Json(j!({})))
}

pub async fn delete_branch(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(p): Path<RepoPath>,
) -> ApiResult<Json<Value>> {
    let addr = p.address()?;
    s.hub
        .delete_branch(&c, &addr, p.branch.as_deref().unwrap_or(""))
        .await?;
    Ok(Json(j!({})))
}

#[derive(Deserialize)]
pub struct CreateTag {
    tag: String,
    #[serde(default)]
    #[allow(dead_code)]
    message: Option<String>,
}

/// `POST …/tag/{rev}` creates `tag` at `rev`.
pub async fn create_tag(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(p): Path<RepoPath>,
    JsonBody(req): JsonBody<CreateTag>,
) -> ApiResult<Json<Value>> {
    s.hub
        .create_tag(&c, &p.address()?, p.rev(), &req.tag)
        .await?;
    Ok(Json(j!({})))
}

/// `DELETE …/tag/{tag}`.
pub async fn delete_tag(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(p): Path<RepoPath>,
) -> ApiResult<Json<Value>> {
    s.hub.delete_tag(&c, &p.address()?, p.rev()).await?;
    Ok(Json(j!({})))
}
