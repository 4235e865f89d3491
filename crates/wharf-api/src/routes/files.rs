//! Tree listings and paths-info.

use super::RepoPath;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, BaseUrl, QueryPairs, next_page_link};
use crate::json::tree_entry;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use wharf_core::Error;
use wharf_hub::{Caller, RepoAddress};

pub async fn tree_root(
    State(s): State<AppState>,
    Auth(c): Auth,
    BaseUrl(b): BaseUrl,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
) -> ApiResult<Response> {
    let addr = p.address()?;
    tree(&s, &c, &b, addr, p.rev(), "", &q).await
}

pub async fn tree_path(
    State(s): State<AppState>,
    Auth(c): Auth,
    BaseUrl(b): BaseUrl,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
) -> ApiResult<Response> {
    let addr = p.address()?;
    tree(
        &s,
        &c,
        &b,
        addr,
        p.rev(),
        p.path.as_deref().unwrap_or(""),
        &q,
    )
    .await
}

async fn tree(
    s: &AppState,
    caller: &Caller,
    base: &str,
    addr: RepoAddress,
    rev: &str,
    path: &str,
    q: &QueryPairs,
) -> ApiResult<Response> {
    let expand = q.flag("expand", false);
    // The Hub's page sizes: expanding costs a history walk per entry.
    let page = if expand { 50 } else { 1000 };
    let limit = q
        .number("limit")?
        .map_or(page, |l| (l as usize).clamp(1, page));
    let offset = q.number("cursor")?.unwrap_or(0) as usize;
    let result = s
        .hub
        .tree(
            caller,
            &addr,
            rev,
            path,
            q.flag("recursive", false),
            expand,
            offset,
            limit,
        )
        .await?;
    let body: Vec<Value> = result
        .entries
        .iter()
        .map(|e| tree_entry(e, &result.last_commits, &result.xet_hashes, expand))
        .collect();
    let mut response = Json(body).into_response();
    if result.has_more {
        let enc = |x: &str| {
            percent_encoding::utf8_percent_encode(x, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut p = format!(
            "/api/{}/{}/{}/tree/{}",
            addr.repo_type.plural(),
            addr.namespace,
            addr.name,
            enc(rev)
        );
        if !path.is_empty() {
            p = format!("{p}/{}", enc(path));
        }
        if let Ok(v) = HeaderValue::from_str(&next_page_link(base, &p, q, offset + limit)) {
            response.headers_mut().insert("link", v);
        }
    }
    response.headers_mut().insert(
        "x-repo-commit",
        HeaderValue::from_str(&result.commit).unwrap_or(HeaderValue::from_static("")),
    );
    Ok(response)
}

#[derive(Deserialize)]
struct PathsInfoJson {
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    expand: Option<Value>,
}

/// The client sends a form (`paths=a&paths=b&expand=false`); JSON is accepted too.
fn parse_paths_info(headers: &HeaderMap, body: &[u8]) -> ApiResult<(Vec<String>, bool)> {
    let is_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        let req: PathsInfoJson = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("Invalid JSON body: {e}")))?;
        let expand = matches!(req.expand, Some(Value::Bool(true)))
            || matches!(&req.expand, Some(Value::String(s)) if s.eq_ignore_ascii_case("true"));
        return Ok((req.paths, expand));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| Error::bad_request("Form body is not UTF-8"))?;
    let q = QueryPairs::parse(Some(text))?;
    Ok((q.all("paths"), q.flag("expand", false)))
}

pub async fn paths_info(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(p): Path<RepoPath>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Vec<Value>>> {
    let addr = p.address()?;
    let (paths, expand) = parse_paths_info(&headers, &body)?;
    if paths.len() > 10_000 {
        return Err(Error::bad_request("Too many paths (at most 10000)").into());
    }
    let result = s.hub.paths_info(&c, &addr, p.rev(), &paths, expand).await?;
    Ok(Json(
        result
            .entries
            .iter()
            .map(|e| tree_entry(e, &result.last_commits, &result.xet_hashes, expand))
            .collect(),
    ))
}
