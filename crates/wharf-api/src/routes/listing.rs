//! `GET /api/models|datasets|spaces`: search, filters, sort, and Link-header pagination.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, BaseUrl, QueryPairs, next_page_link};
use crate::json::{ListShape, listed_repo};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use wharf_core::Error;
use wharf_hub::{ListQuery, RepoSort};

/// The page size when the client gives no limit (it then follows Link headers).
const PAGE: i64 = 1000;

fn sort_of(q: &QueryPairs) -> ApiResult<(RepoSort, bool)> {
    // Newer clients always mean descending; 0.x sends direction=-1 (or 1 for ascending).
    let descending = q.get("direction") != Some("1");
    let sort = match q.get("sort") {
        None | Some("") => return Ok((RepoSort::Id, false)),
        Some("lastModified" | "last_modified") => RepoSort::LastModified,
        Some("createdAt" | "created_at") => RepoSort::CreatedAt,
        Some("downloads") => RepoSort::Downloads,
        Some("likes" | "trendingScore" | "trending_score") => RepoSort::Likes,
        Some("id" | "modelId") => RepoSort::Id,
        Some(other) => return Err(Error::bad_request(format!("Invalid sort '{other}'")).into()),
    };
    Ok((sort, descending))
}

pub async fn list_repos(
    State(s): State<AppState>,
    Auth(caller): Auth,
    BaseUrl(base): BaseUrl,
    Path(kind): Path<String>,
    q: QueryPairs,
) -> ApiResult<Response> {
    let repo_type = super::repo_kind(&kind)?;
    let (sort, descending) = sort_of(&q)?;
    let offset = q.number("cursor")?.unwrap_or(0);
    let wanted = q.number("limit")?;
    let limit = wanted.map_or(PAGE, |l| l.min(PAGE));
    let shape = ListShape {
        full: q.flag("full", false),
        card_data: q.flag("cardData", false),
        expand: q.all("expand"),
    };
    let with_files = shape.full || shape.expand.iter().any(|e| e == "siblings");
    let query = ListQuery {
        repo_type,
        search: q
            .get("search")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        author: q
            .get("author")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        filters: q
            .all("filter")
            .into_iter()
            .chain(q.all("library"))
            .flat_map(|f| f.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|f| !f.is_empty())
            .collect(),
        pipeline_tag: q
            .get("pipeline_tag")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        sort,
        descending,
        offset,
        limit: limit + 1,
        with_files,
    };
    let mut rows = s.hub.list_repos(&caller, &query).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let body: Vec<Value> = rows
        .iter()
        .map(|(repo, files)| listed_repo(repo, files.as_deref(), &shape))
        .collect();
    let mut response = Json(body).into_response();
    // The client stops by itself once it has `limit` results, so a link is only needed when
    // there is no limit or the limit is larger than a page.
    if more && wanted.is_none_or(|w| w > PAGE) {
        let link = next_page_link(
            &base,
            &format!("/api/{kind}"),
            &q,
            (offset + limit) as usize,
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().insert("link", v);
        }
    }
    Ok(response)
}
