//! Preupload and the NDJSON commit endpoint (the body itself is read by `ndjson.rs`), plus the
//! JSON body extractor every route uses (its rejections speak the Hub's error dialect).

use super::RepoPath;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, BaseUrl, QueryPairs};
use crate::ndjson::read_commit;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::HeaderMap;
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wharf_core::Error;
use wharf_hub::PreuploadFile;

/// `Json<T>` whose failures are 400s with `X-Error-Message`, not axum's plain-text rejections.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let too_large = e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE;
            let kind = if too_large {
                wharf_core::ErrorKind::PayloadTooLarge
            } else {
                wharf_core::ErrorKind::BadRequest
            };
            ApiError::new(kind, e.body_text())
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::bad_request(format!("Invalid JSON body: {e}")).into())
    }
}

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(wharf_core::ErrorKind::BadRequest, e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(|v| Some(JsonBody(v)))
            .map_err(|e| Error::bad_request(format!("Invalid JSON body: {e}")).into())
    }
}

#[derive(Deserialize)]
pub struct PreuploadRequest {
    files: Vec<PreuploadEntry>,
    #[serde(default, rename = "gitIgnore")]
    git_ignore: Option<String>,
}

#[derive(Deserialize)]
struct PreuploadEntry {
    path: String,
    #[serde(default)]
    sample: String,
    size: u64,
}

fn b64(s: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| Error::bad_request(format!("Invalid base64: {e}")))
}

pub async fn preupload(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(p): Path<RepoPath>,
    JsonBody(req): JsonBody<PreuploadRequest>,
) -> ApiResult<Json<Value>> {
    // The client sends 256 files per call and a 512-byte sample of each.
    if req.files.len() > MAX_PREUPLOAD_FILES {
        return Err(Error::bad_request(format!(
            "Too many files in one preupload call (at most {MAX_PREUPLOAD_FILES})"
        ))
        .into());
    }
    if req.files.iter().any(|f| f.sample.len() > MAX_SAMPLE_BASE64) {
        return Err(Error::bad_request("A preupload sample is longer than 512 bytes").into());
    }
    let mut files = Vec::with_capacity(req.files.len());
    for f in req.files {
        files.push(PreuploadFile {
            path: f.path,
            sample: b64(&f.sample)?,
            size: f.size,
        });
    }
    let results = s
        .hub
        .preupload(&c, &p.address()?, p.rev(), files, req.git_ignore)
        .await?;
    let out: Vec<Value> = results
        .iter()
        .map(|r| json!({ "path": r.path, "uploadMode": if r.lfs { "lfs" } else { "regular" }, "shouldIgnore": r.should_ignore, "oid": r.oid }))
        .collect();
    Ok(Json(json!({ "files": out })))
}

/// `POST /api/{t}/{id}/commit/{rev}`. The caller's right to write was checked before a byte of
/// the body is read (`middleware::access_before_body`); then the NDJSON is parsed as it streams
/// in, at the hub's minimal upload pace, with memory reserved from the server's budget as it
/// is read.
pub async fn create_commit(
    State(s): State<AppState>,
    Auth(c): Auth,
    BaseUrl(base): BaseUrl,
    Path(p): Path<RepoPath>,
    q: QueryPairs,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let addr = p.address()?;
    let declared = declared_length(&headers)?;
    if declared.is_some_and(|n| n > COMMIT_BODY_LIMIT as u64) {
        return Err(body_too_large().into());
    }
    // One of the writer's running uploads; memory is reserved as the body arrives.
    let _slot = s.hub.upload_slot(c.user.as_ref().map_or(0, |u| u.id))?;
    let mut memory = s.hub.reserve_memory(1 << 20).await?;
    let (header, ops) = read_commit(body, COMMIT_BODY_LIMIT, &mut memory).await?;
    let create_pr = q.flag("create_pr", false);
    let outcome = s
        .hub
        .commit(&c, &addr, p.rev(), header, ops, create_pr)
        .await?;
    let repo_url = format!(
        "{base}/{}{}/{}",
        addr.repo_type.url_prefix(),
        addr.namespace,
        addr.name
    );
    let pr_url = outcome
        .pr_num
        .map(|n| format!("{repo_url}/discussions/{n}"));
    Ok(Json(json!({
        "success": true,
        "commitOid": outcome.commit_oid,
        "commitUrl": format!("{repo_url}/commit/{}", outcome.commit_oid),
        "pullRequestUrl": pr_url,
        "hookOutput": "",
    })))
}

/// Most files announced in one preupload call.
const MAX_PREUPLOAD_FILES: usize = 10_000;
/// A 512-byte sample in base64, with room for line breaks.
const MAX_SAMPLE_BASE64: usize = 1024;

/// Largest commit body.
const COMMIT_BODY_LIMIT: usize = 256 << 20;

fn body_too_large() -> Error {
    Error::new(
        wharf_core::ErrorKind::PayloadTooLarge,
        "The commit body is larger than 256 MiB: upload large files with LFS",
    )
}

/// The request's `Content-Length`, when it sends one; junk is a 400.
pub fn declared_length(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    match headers.get(axum::http::header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| Error::bad_request("Invalid Content-Length").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_read_or_refused() {
        let mut h = HeaderMap::new();
        assert!(matches!(declared_length(&h), Ok(None)));
        h.insert("content-length", axum::http::HeaderValue::from_static("12"));
        assert!(matches!(declared_length(&h), Ok(Some(12))));
        h.insert("content-length", axum::http::HeaderValue::from_static("x"));
        assert!(declared_length(&h).is_err());
    }
}
